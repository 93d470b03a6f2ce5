/*
 * A listener's certificates and libtls server context.  The parent reads
 * each chain once when it loads the configuration, checks that a server
 * context can be made of it, and keeps the bytes (never the context) for
 * the listener's spawner, which builds the context the children use.
 * Both use a key reference (kp_provider.h) in place of the private key.
 */
#ifndef TLSCONF_H
#define TLSCONF_H

#include <stddef.h>
#include <stdint.h>

#include "config/conf.h"

struct tls;

/* What the parent holds for one certificate of a listener. */
struct tlsconf_cert {
	int		 chainfd;	/* the chain PEM as read: sealed memfd */
	size_t		 chainlen;
	char		*ref;		/* the key reference PEM */
	size_t		 reflen;
	uint8_t		*spki;		/* leaf public key, DER, for keyproc */
	size_t		 spkilen;
	uint8_t		*staple;	/* a good OCSP staple (ocsp.h), DER,
					   or NULL: none to send */
	size_t		 staplelen;
};

/* What the parent holds for one listener: conf_listener.certs, in order. */
struct tlsconf {
	struct tlsconf_cert	*certs;
	size_t			 ncerts;
};

/* One certificate/key pair as libtls takes it: PEM bytes in memory. */
struct tlsconf_pem {
	const char	*name;		/* the certificate's file, for messages */
	const uint8_t	*chain;
	size_t		 chainlen;
	const char	*ref;		/* the key reference PEM */
	size_t		 reflen;
	const uint8_t	*staple;	/* its OCSP staple, DER, or NULL */
	size_t		 staplelen;
};

/*
 * tlsconf_load(l, tc, err, errlen):
 * In the parent: read each of l's certificate chains once, build its key
 * reference (key index: its place in l->certs), check that a libtls
 * server context configured with all of them (protocols, ECDHE-only
 * ciphers) can be made, and keep each chain in a sealed memfd, so that
 * every spawner of l gets these very bytes, whatever becomes of the
 * files.  Read each certificate's ocsp-staple, if any, and keep it if it
 * is good for the chain (ocsp.h); if not, warn why and keep none (not an
 * error).  Return 0, or -1 with "FILE:LINE: message" in err.
 */
int	tlsconf_load(const struct conf_listener *l, struct tlsconf *tc,
	    char *err, size_t errlen);

/*
 * tlsconf_clear(tc):
 * Free and close what tlsconf_load() made.  Safe on a zeroed struct.
 */
void	tlsconf_clear(struct tlsconf *tc);

/*
 * tlsconf_server(l, pems, npems, err, errlen):
 * Make a libtls server context for listener l from its npems (at least
 * one) chains and key reference PEMs (in a spawner: from the bytes the
 * parent sent).  The first pair is the default; libtls picks one of the
 * others when the client's SNI matches that certificate's names.  Each
 * pair's staple, unless NULL, is stapled when that pair serves.  Return
 * it, or NULL with "FILE: message" in err.
 */
struct tls	*tlsconf_server(const struct conf_listener *l,
		    const struct tlsconf_pem *pems, size_t npems, char *err,
		    size_t errlen);

#endif
