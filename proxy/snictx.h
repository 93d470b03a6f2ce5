/*
 * Our own choice of certificate by SNI, and of ALPN protocol by server
 * name, on the OpenSSL contexts libtls makes.  libtls makes one SSL_CTX
 * for the default pair and one for each other pair, and its servername
 * callback decodes the certificates of the other pairs, one by one, at
 * every handshake (tls_check_name()): CPU, and pages of the spawner's
 * copied into each child.  So the spawner catches each SSL_CTX as
 * tls_configure() makes it (an ex_data "new" callback), matches it to its
 * pair by its certificate, builds the table of names once (snimap.h) and
 * puts on every context, in place of libtls's:
 *   - a servername callback: a table lookup, then SSL_set_SSL_CTX() to
 *     the chosen pair's context, as libtls does; the name is kept for the
 *     child (snictx_servername(): libtls's tls_conn_servername() is now
 *     never set);
 *   - an OCSP status callback that staples the chosen pair's staple
 *     (libtls's looks at the pair its own callback recorded);
 *   - with alpn, an ALPN callback that offers the list of the
 *     connection's route (its server-name block's alpn, else the
 *     listener's), with libretls's rule: the server's order of
 *     preference; no common protocol, no protocol agreed (the handshake
 *     goes on).
 * A child then touches no certificate but the one it serves.
 */
#ifndef SNICTX_H
#define SNICTX_H

#include <stddef.h>

#include "config/conf.h"
#include "proxy/tlsconf.h"

/*
 * snictx_capture():
 * In a spawner, just before it makes its libtls context: note every
 * SSL_CTX made from now on, until snictx_setup().  Return 0 or -1.
 */
int	snictx_capture(void);

/*
 * snictx_setup(l, pems, npems, err, errlen):
 * In a spawner, once its libtls context for l's npems pairs is made:
 * find the context of each pair, build the table of names and install
 * the callbacks above on each.  l must live as long as the process (the
 * children read its routes and alpn).  Return 0, or -1 with a message in
 * err.
 */
int	snictx_setup(const struct conf_listener *l,
	    const struct tlsconf_pem *pems, size_t npems, char *err,
	    size_t errlen);

/*
 * snictx_lookup(name):
 * The index of the pair that serves a client naming host name (not an
 * address literal): as snimap_lookup(); -1 if no certificate claims it.
 */
long	snictx_lookup(const char *name);

/*
 * snictx_servername():
 * In a child, once the ClientHello is read: the host name its client
 * sent, or NULL (none, or an address literal, which libtls ignores too).
 */
const char	*snictx_servername(void);

#endif
