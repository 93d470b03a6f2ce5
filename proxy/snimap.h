/*
 * The names a listener's certificates answer to, as one table built once
 * in the spawner, so that choosing a certificate by SNI in a child is a
 * lookup: no certificate is decoded (and none written, which would copy
 * the page it lives on) per handshake.  It reproduces libtls's choice
 * (tls_servername_cb() and tls_check_name() of libretls): each
 * certificate's subjectAltName DNS names, else its common name when it
 * has no DNS or IP subjectAltName at all; a name matches without regard
 * to case, and "*.DOMAIN" matches one nonempty label then ".DOMAIN"
 * ("*.tld" and partial wildcards never match); the pairs after the
 * default are tried in order, and the default serves the rest.
 */
#ifndef SNIMAP_H
#define SNIMAP_H

#include <stddef.h>

#include <openssl/x509.h>

struct snimap;

/*
 * snimap_new(leaves, n):
 * A table of the names of the n leaf certificates (leaves[0]: the
 * default).  A name with a NUL byte, or " ", is left out (libtls ends
 * the handshake when it meets one).  Return it, or NULL (out of memory).
 */
struct snimap	*snimap_new(X509 *const *leaves, size_t n);

/*
 * snimap_lookup(m, name):
 * The index of the certificate libtls would serve to a client naming
 * name (a host name, not an address literal): the first pair after the
 * default that claims it, else 0 if the default claims it; -1 if none
 * does.
 */
long	snimap_lookup(const struct snimap *m, const char *name);

/*
 * snimap_free(m):
 * Free m; NULL is a no-op.
 */
void	snimap_free(struct snimap *m);

#endif
