/*
 * libtls server contexts: see tlsconf.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tls.h>

#include "keyproc/kp_provider.h"
#include "proxy/tlsconf.h"

static int
tlsconf_configure(const struct conf_listener *l, struct tls_config *cfg,
    const uint8_t *cert, size_t certlen, const char *ref, size_t reflen,
    char *err, size_t errlen)
{
	const char *protocols, *ciphers;
	uint32_t proto;

	protocols = l->protocols != NULL ? l->protocols : CONF_DEFAULT_PROTOCOLS;
	ciphers = l->ciphers != NULL ? l->ciphers : CONF_DEFAULT_CIPHERS;
	if (tls_config_set_keypair_mem(cfg, cert, certlen,
	    (const uint8_t *)ref, reflen) == -1 ||
	    tls_config_parse_protocols(&proto, protocols) == -1 ||
	    tls_config_set_protocols(cfg, proto) == -1 ||
	    tls_config_set_ciphers(cfg, ciphers) == -1) {
		snprintf(err, errlen, "%s: %s", l->certificate,
		    tls_config_error(cfg) ? tls_config_error(cfg) :
		    "bad protocols");
		return -1;
	}
	return 0;
}

int
tlsconf_build(const struct conf_listener *l, struct tlsconf *tc,
    char *err, size_t errlen)
{
	struct tls_config *cfg = NULL;
	uint8_t *cert = NULL;
	size_t certlen, reflen = 0;
	char *ref = NULL, kerr[256];
	int rc = -1;

	memset(tc, 0, sizeof(*tc));
	if ((cert = tls_load_file(l->certificate, &certlen, NULL)) == NULL) {
		snprintf(err, errlen, "%s: cannot read certificate",
		    l->certificate);
		goto out;
	}
	if (kp_ref_from_cert(cert, certlen, 0, &ref, &reflen, &tc->spki,
	    &tc->spkilen, kerr, sizeof(kerr)) == -1) {
		snprintf(err, errlen, "%s: %s", l->certificate, kerr);
		goto out;
	}
	if ((cfg = tls_config_new()) == NULL) {
		snprintf(err, errlen, "tls_config_new failed");
		goto out;
	}
	if (tlsconf_configure(l, cfg, cert, certlen, ref, reflen, err,
	    errlen) == -1)
		goto out;
	if ((tc->tls = tls_server()) == NULL) {
		snprintf(err, errlen, "tls_server failed");
		goto out;
	}
	if (tls_configure(tc->tls, cfg) == -1) {
		snprintf(err, errlen, "%s: %s", l->certificate,
		    tls_error(tc->tls));
		goto out;
	}
	rc = 0;
out:
	tls_config_free(cfg);
	if (cert != NULL)
		tls_unload_file(cert, certlen);
	free(ref);
	if (rc == -1)
		tlsconf_clear(tc);
	return rc;
}

void
tlsconf_clear(struct tlsconf *tc)
{
	tls_free(tc->tls);
	free(tc->spki);
	memset(tc, 0, sizeof(*tc));
}
