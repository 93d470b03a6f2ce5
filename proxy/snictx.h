/*
 * Our own choice of certificate by SNI, and of ALPN protocol by server
 * name.  Given every pair, libtls makes one SSL_CTX per pair (in
 * OpenSSL 3 some 40 kB each, which every fork copies the page tables of)
 * and its servername callback decodes the certificates of the pairs
 * after the default, one by one, at every handshake (tls_check_name()).
 * So the spawner gives libtls the default pair alone, and itself loads
 * every pair (key reference, leaf, chain: a few kB each; the pairs of
 * one CA share one parsed chain, the default's included) and the table
 * of names (snimap.h); it catches the one SSL_CTX libtls makes (an
 * ex_data "new" callback) and puts on it, in place of libtls's, its own
 * objects of the default pair and:
 *   - a servername callback: a table lookup, then the chosen pair's
 *     certificate, chain and key on the connection
 *     (SSL_use_cert_and_key(), after SSL_certs_clear()); the name is kept
 *     for the child (snictx_servername(): libtls's tls_conn_servername()
 *     is now never set);
 *   - an OCSP status callback that staples the chosen pair's staple;
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
 * snictx_prepare(err, errlen):
 * In a spawner, just before it makes its libtls context of its
 * listener's default pair: note the SSL_CTX libtls makes.  Return 0, or
 * -1 with a message in err.
 */
int	snictx_prepare(char *err, size_t errlen);

/*
 * snictx_setup(l, pems, npems, err, errlen):
 * In a spawner, once that context is made: load l's npems pairs, build
 * the table of names, and install the default pair's objects and the
 * callbacks above on libtls's SSL_CTX.  l must live as long as the
 * process (the children read its routes and alpn).  Return 0, or -1
 * with a message in err.
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
