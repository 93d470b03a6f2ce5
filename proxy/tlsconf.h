/*
 * The parent's libtls server contexts: one per listener, built once before
 * the children are forked, with a key reference (kp_provider.h) in place
 * of the private key.
 */
#ifndef TLSCONF_H
#define TLSCONF_H

#include <stddef.h>
#include <stdint.h>

#include "config/conf.h"

struct tls;

/* What the parent holds for one listener's certificate. */
struct tlsconf {
	struct tls	*tls;		/* server context for the children */
	uint8_t		*spki;		/* leaf public key, DER, for keyproc */
	size_t		 spkilen;
};

/*
 * tlsconf_build(l, tc, err, errlen):
 * Read l's certificate chain, build its key reference and a configured
 * libtls server context (protocols, ECDHE-only ciphers) into *tc.
 * Return 0, or -1 with "FILE: message" in err.
 */
int	tlsconf_build(const struct conf_listener *l, struct tlsconf *tc,
	    char *err, size_t errlen);

/*
 * tlsconf_clear(tc):
 * Free what tlsconf_build() made.  Safe on a zeroed struct.
 */
void	tlsconf_clear(struct tlsconf *tc);

#endif
