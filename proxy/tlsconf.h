/*
 * A listener's certificate and libtls server context.  The parent reads
 * the chain once when it loads the configuration, checks that a server
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

/* What the parent holds for one listener's certificate. */
struct tlsconf {
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

/*
 * tlsconf_load(l, tc, err, errlen):
 * In the parent: read l's certificate chain once, build its key reference,
 * check that a libtls server context configured with them (protocols,
 * ECDHE-only ciphers) can be made, and keep the chain in a sealed memfd,
 * so that every spawner of l gets these very bytes, whatever becomes of
 * the file.  Read l's ocsp-staple, if any, and keep it if it is good for
 * the chain (ocsp.h); if not, warn why and keep none (not an error).
 * Return 0, or -1 with "FILE: message" in err.
 */
int	tlsconf_load(const struct conf_listener *l, struct tlsconf *tc,
	    char *err, size_t errlen);

/*
 * tlsconf_clear(tc):
 * Free and close what tlsconf_load() made.  Safe on a struct whose chainfd
 * is -1 and the rest zero.
 */
void	tlsconf_clear(struct tlsconf *tc);

/*
 * tlsconf_server(l, chain, chainlen, ref, reflen, staple, staplelen,
 *     err, errlen):
 * Make a libtls server context for listener l from its chain and key
 * reference PEM (in a spawner: from the bytes the parent sent), stapling
 * the DER OCSP response staple unless it is NULL.  Return it, or NULL with
 * "FILE: message" in err.
 */
struct tls	*tlsconf_server(const struct conf_listener *l,
		    const uint8_t *chain, size_t chainlen, const char *ref,
		    size_t reflen, const uint8_t *staple, size_t staplelen,
		    char *err, size_t errlen);

#endif
