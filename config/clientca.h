/*
 * A listener's client certificate settings (client-ca, client-crl): read
 * and checked by the parent when it loads the configuration, kept as PEM
 * bytes for the listener's spawner, which gives them to libtls.  Children
 * never read a file.
 */
#ifndef CLIENTCA_H
#define CLIENTCA_H

#include <stddef.h>
#include <time.h>

#include "config/conf.h"

#define CLIENTCA_MAX	(4 * 1024 * 1024)	/* bytes: CAs, and CRLs */

/*
 * clientca_load(l, err, errlen):
 * If l has a client-ca, read it into l->client_ca_pem: a file of PEM
 * certificates, or a directory whose files (not those whose names begin
 * with ".") each hold PEM certificates, concatenated in name order, a
 * file reached twice (a c_rehash link) once.  If l has a client-crl, read
 * it into l->client_crl_pem: PEM CRLs, each signed by a certificate of
 * client-ca, and one for every certificate of client-ca (libtls checks
 * the whole chain).  Set client_verify's default.  A client-crl or
 * client-verify without client-ca is an error.  Return 0, or -1 with
 * "FILE:LINE: message" in err.
 */
int	clientca_load(struct conf_listener *l, char *err, size_t errlen);

/*
 * clientca_warn(l, now, buf, len):
 * After clientca_load(): if something of l's client-ca or client-crl is
 * out of date at now (a CRL past its next update, which refuses every
 * client; a CA certificate that has expired), a message in buf and the
 * place of the statement (for "FILE:LINE: warning: ..."); else NULL.  The
 * first such thing only.
 */
const struct conf_where	*clientca_warn(const struct conf_listener *l,
			    time_t now, char *buf, size_t len);

/*
 * clientca_dump(l, fp):
 * Print l's client-ca, client-verify and client-crl lines (none if no
 * client-ca), for conf_dump().
 */
void	clientca_dump(const struct conf_listener *l, FILE *fp);

/*
 * clientca_free(l):
 * Free what the parser and clientca_load() set in l.
 */
void	clientca_free(struct conf_listener *l);

#endif
