/*
 * In a connection child: the client's certificate, as its handshake left
 * it, for the access line (client_cert=, client_subject=, client_fp=) and
 * for the PROXY v2 SSL TLV (haproxy's PP2_CLIENT_CERT_CONN,
 * PP2_SUBTYPE_SSL_CN and neighbours: proxy/pp.h).
 */
#ifndef CLIENTCERT_H
#define CLIENTCERT_H

#include <stddef.h>
#include <stdint.h>

enum clientcert_state {
	CLIENTCERT_OFF = 0,	/* the listener asks for none */
	CLIENTCERT_NONE,	/* asked, none given */
	CLIENTCERT_OK,		/* given and verified */
	CLIENTCERT_FAILED	/* given, and verification failed */
};

#define CLIENTCERT_STR_MAX	256

/*
 * What the client's certificate says.  The strings are the certificate's
 * own (UTF-8, NUL-terminated, truncated to fit), not escaped: whoever
 * writes them to a log escapes them (clientcert_log()).  They are the
 * claims of a certificate our CA signed, not of the network alone, but
 * still nothing to trust as text.
 */
struct clientcert {
	enum clientcert_state	 state;
	uint32_t		 verify;	/* X509_V_*; 0: verified (the
						   PP2 SSL TLV's verify) */
	char			 reason[32];	/* FAILED: expired, revoked,
						   unknown-ca, ... */
	char			 subject[CLIENTCERT_STR_MAX];	/* RFC 2253 */
	char			 cn[CLIENTCERT_STR_MAX];	/* subject CN */
	char			 san[CLIENTCERT_STR_MAX];	/* first SAN:
						   DNS, email, URI or IP */
	char			 fp[65];	/* SHA-256, lowercase hex */
};

/*
 * clientcert_get(cc, asked):
 * In a child, after its handshake (done or failed): fill cc from its
 * connection (tlshook_conn_ssl()).  asked: the listener asks for client
 * certificates; if not, cc->state is CLIENTCERT_OFF and the rest empty.
 */
void	clientcert_get(struct clientcert *cc, int asked);

/*
 * clientcert_log(cc, state, slen, subject, sublen, fp, fplen):
 * The access line's three values, escaped (a space, '%', '"', '\\' and
 * every byte outside printable ASCII as %XX): "-", "none", "ok" or
 * "failed:REASON"; the subject; the fingerprint; "-" for each that is
 * empty.
 */
void	clientcert_log(const struct clientcert *cc, char *state, size_t slen,
	    char *subject, size_t sublen, char *fp, size_t fplen);

/*
 * The client certificate fields of pp's struct pp_tls (proxy/pp.h), as
 * this module fills them: the lead joins the two at merge.  verified: 1
 * if a certificate was given and verified; cn, san, fp: NUL-terminated,
 * "" if none.
 */
struct clientcert_pp {
	int		 given;		/* PP2_CLIENT_CERT_CONN */
	int		 verified;	/* verify == 0 and given */
	uint32_t	 verify;	/* PP2 SSL TLV verify: 0 is success */
	char		 cn[CLIENTCERT_STR_MAX];
	char		 san[CLIENTCERT_STR_MAX];
	char		 fp[65];
};

/*
 * clientcert_pp(cc, out):
 * Fill out, the client-cert fields of a PROXY v2 SSL TLV, from cc.
 */
void	clientcert_pp(const struct clientcert *cc, struct clientcert_pp *out);

#endif
