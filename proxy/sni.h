/*
 * Several certificates per listener, chosen by the client's SNI.  libtls
 * does the choosing (tls_config_add_keypair_mem(): the first pair is the
 * default, the others are matched by their certificates' names); this
 * module adds what libtls does not: strict-sni (an unknown name gets the
 * unrecognized_name alert, not the default certificate), the chosen
 * certificate's name for the access line, and the warning for two
 * certificates that claim one name.
 */
#ifndef SNI_H
#define SNI_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "config/conf.h"
#include "proxy/tlsconf.h"

/*
 * sni_init(pems, npems, strict, err, errlen):
 * In a spawner, before the first fork: remember the leaf certificates of
 * the listener's npems pairs, if strict (strict-sni yes), for the check
 * sni_hook() installs in each child.  Return 0, or -1 with a message in
 * err.
 */
int	sni_init(const struct tlsconf_pem *pems, size_t npems, int strict,
	    char *err, size_t errlen);

/*
 * sni_hook(ssl):
 * Called by tlshook for the connection's SSL object, as it is made.  With
 * strict-sni, installs a ClientHello callback that ends the handshake with
 * the unrecognized_name alert when the client names a host (a DNS name,
 * not an address literal, which libtls ignores) that none of the
 * listener's certificates claims.  A ClientHello without SNI gets the
 * default certificate.
 */
void	sni_hook(SSL *ssl);

/*
 * sni_cert_name(buf, len):
 * In a child, after the handshake: the first DNS name (else the common
 * name) of the certificate the connection was served, escaped for the
 * log, in buf.  Return buf, or NULL if there is none.
 */
const char	*sni_cert_name(char *buf, size_t len);

/*
 * sni_dups(pems, npems, cb, arg):
 * For each name (DNS subjectAltName, or common name without any, compared
 * without case) that several of the npems leaf certificates claim, call
 * cb(arg, last, msg): last is the index of the last pair claiming it, msg
 * says which pairs and which of them libtls serves for that name (the
 * first one after the default that claims it; the default only if no
 * other does).  Return the number of such names, or -1 if a chain does
 * not parse.
 */
int	sni_dups(const struct tlsconf_pem *pems, size_t npems,
	    void (*cb)(void *, size_t, const char *), void *arg);

/*
 * sni_names_warn_files(l):
 * For recluse -n: read l's certificate files and print to stderr a
 * "FILE:LINE: warning: ..." for each name that two of them claim.
 */
void	sni_names_warn_files(const struct conf_listener *l);

#endif
