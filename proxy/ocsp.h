/*
 * OCSP staples from a file (recluse.conf(5) ocsp-staple).  The parent
 * reads a certificate's staple when it loads the configuration (at start
 * and at each reload) and checks it against that certificate's chain; only
 * a staple that passes is sent to the listener's spawner, which gives it
 * to libtls.  A staple that fails is warned about and not sent: the
 * listener serves without one, which clients accept, rather than with one
 * they would refuse (or with none at all because of it: it is not an
 * error).  The file is public data, not a secret; its bytes are parsed by
 * OpenSSL in the parent, which is as far as the operator's own fetch
 * script (systemd/recluse-ocsp-fetch) is trusted.
 */
#ifndef OCSP_H
#define OCSP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config/conf.h"

#define OCSP_SKEW	300	/* s: a thisUpdate this far ahead is fine */

/*
 * ocsp_check(chain, chainlen, der, derlen, now, why, whylen):
 * Is der (derlen bytes, a DER OCSPResponse) a good staple at now for the
 * first certificate of the PEM chain (chainlen bytes)?  Good: the response
 * status is successful; it is a basic response signed by the leaf's issuer
 * (found in the chain) or by a responder that issuer delegated to; one of
 * its single responses has the cert id of the leaf and that issuer (in
 * whichever hash it uses); that status is good; its thisUpdate is not more
 * than OCSP_SKEW s ahead of now and its nextUpdate, if any, after now.
 * Return 0 with "good until DATE" (or "good, no nextUpdate") in why, or -1
 * with the reason it is not good in why.
 */
int	ocsp_check(const uint8_t *chain, size_t chainlen, const uint8_t *der,
	    size_t derlen, time_t now, char *why, size_t whylen);

/*
 * ocsp_staple_load(path, where, chain, chainlen, now, derp, lenp, msg,
 *     msglen):
 * Read the staple file path (a regular file of 1 .. SPAWNER_OCSP_MAX
 * bytes; opened non-blocking, so a FIFO cannot hang the parent) and check
 * it with ocsp_check().  Return 0 with the bytes in *derp (malloc'd) and
 * *lenp, and "FILE:LINE: ocsp-staple "PATH": good until DATE" in msg; or
 * -1, *derp NULL, with "FILE:LINE: warning: ocsp-staple "PATH": REASON;
 * not stapling" in msg (where is the ocsp-staple line).
 */
int	ocsp_staple_load(const char *path, const struct conf_where *where,
	    const uint8_t *chain, size_t chainlen, time_t now, uint8_t **derp,
	    size_t *lenp, char *msg, size_t msglen);

#endif
