/*
 * A certificate's remaining life, for warnings at `recluse -n`, at start
 * and at reload.  An expired certificate is warned about, loudly, and not
 * refused: refusing it would stop every listener at start, or keep the
 * running configuration (with the same expired certificate) at reload,
 * over something clients refuse anyway and a renewal plus a reload fixes.
 */
#ifndef CERTCHECK_H
#define CERTCHECK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define CERT_WARN_DAYS	14	/* warn this many days before expiry */

/*
 * cert_expiry(chain, len, now, msg, msglen):
 * Look at the first certificate of the PEM chain of len bytes.  If it has
 * expired at now, or expires within CERT_WARN_DAYS days of now, return 1
 * with "expired on DATE" or "expires on DATE, in N days" in msg (DATE in
 * UTC); return 0 if it has longer, -1 if it cannot be read.
 */
int	cert_expiry(const uint8_t *chain, size_t len, time_t now, char *msg,
	    size_t msglen);

#endif
