/*
 * libtls server contexts: see tlsconf.h.
 */
#include <sys/mman.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <tls.h>

#include "keyproc/kp_provider.h"
#include "lib/log.h"
#include "lib/wire.h"
#include "proxy/certcheck.h"
#include "proxy/ocsp.h"
#include "proxy/tlsconf.h"

static int
tlsconf_configure(const struct conf_listener *l, struct tls_config *cfg,
    const uint8_t *cert, size_t certlen, const char *ref, size_t reflen,
    const uint8_t *staple, size_t staplelen, char *err, size_t errlen)
{
	const char *protocols, *ciphers;
	uint32_t proto;

	protocols = l->protocols != NULL ? l->protocols : CONF_DEFAULT_PROTOCOLS;
	ciphers = l->ciphers != NULL ? l->ciphers : CONF_DEFAULT_CIPHERS;
	if (tls_config_set_keypair_mem(cfg, cert, certlen,
	    (const uint8_t *)ref, reflen) == -1 ||
	    tls_config_parse_protocols(&proto, protocols) == -1 ||
	    tls_config_set_protocols(cfg, proto) == -1 ||
	    tls_config_set_ciphers(cfg, ciphers) == -1 ||
	    (staple != NULL && tls_config_set_ocsp_staple_mem(cfg, staple,
	    staplelen) == -1)) {
		snprintf(err, errlen, "%s: %s", l->certificate,
		    tls_config_error(cfg) ? tls_config_error(cfg) :
		    "bad protocols");
		return -1;
	}
	return 0;
}

struct tls *
tlsconf_server(const struct conf_listener *l, const uint8_t *chain,
    size_t chainlen, const char *ref, size_t reflen, const uint8_t *staple,
    size_t staplelen, char *err, size_t errlen)
{
	struct tls_config *cfg;
	struct tls *tls = NULL;

	if ((cfg = tls_config_new()) == NULL) {
		snprintf(err, errlen, "tls_config_new failed");
		return NULL;
	}
	if (tlsconf_configure(l, cfg, chain, chainlen, ref, reflen, staple,
	    staplelen, err, errlen) == -1)
		goto out;
	if ((tls = tls_server()) == NULL) {
		snprintf(err, errlen, "tls_server failed");
		goto out;
	}
	if (tls_configure(tls, cfg) == -1) {
		snprintf(err, errlen, "%s: %s", l->certificate, tls_error(tls));
		tls_free(tls);
		tls = NULL;
	}
out:
	tls_config_free(cfg);
	return tls;
}

/* The chain in a memfd that nobody can change any more. */
static int
tlsconf_seal(const uint8_t *chain, size_t len)
{
	size_t off = 0;
	ssize_t n;
	int fd;

	if ((fd = memfd_create("recluse-chain", MFD_CLOEXEC |
	    MFD_ALLOW_SEALING)) == -1)
		return -1;
	while (off < len) {
		if ((n = write(fd, chain + off, len - off)) == -1) {
			if (errno == EINTR)
				continue;
			goto err;
		}
		off += (size_t)n;
	}
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW |
	    F_SEAL_WRITE | F_SEAL_SEAL) == -1)
		goto err;
	return fd;
err:
	close(fd);
	return -1;
}

/* l's staple into tc if it is good for the chain; else a warning. */
static void
tlsconf_staple(const struct conf_listener *l, struct tlsconf *tc,
    const uint8_t *cert, size_t certlen)
{
	char msg[CONF_ERR_MAX + 256];

	if (ocsp_staple_load(l->ocsp_staple, &l->ocsp_staple_where, cert,
	    certlen, time(NULL), &tc->staple, &tc->staplelen, msg,
	    sizeof(msg)) == 0)
		log_info("listener %s: %s", l->name, msg);
	else
		log_warnx("listener %s: %s", l->name, msg);
}

int
tlsconf_load(const struct conf_listener *l, struct tlsconf *tc,
    char *err, size_t errlen)
{
	struct tls *tls;
	uint8_t *cert = NULL;
	size_t certlen;
	char kerr[256];
	int rc = -1;

	memset(tc, 0, sizeof(*tc));
	tc->chainfd = -1;
	if ((cert = tls_load_file(l->certificate, &certlen, NULL)) == NULL) {
		snprintf(err, errlen, "%s: cannot read certificate",
		    l->certificate);
		goto out;
	}
	if (certlen > SPAWNER_CHAIN_MAX) {
		snprintf(err, errlen, "%s: larger than %d bytes",
		    l->certificate, SPAWNER_CHAIN_MAX);
		goto out;
	}
	if (kp_ref_from_cert(cert, certlen, 0, &tc->ref, &tc->reflen,
	    &tc->spki, &tc->spkilen, kerr, sizeof(kerr)) == -1) {
		snprintf(err, errlen, "%s: %s", l->certificate, kerr);
		goto out;
	}
	/* The check the spawner's tls_configure() will repeat. */
	if ((tls = tlsconf_server(l, cert, certlen, tc->ref, tc->reflen, NULL,
	    0, err, errlen)) == NULL)
		goto out;
	tls_free(tls);
	if (cert_expiry(cert, certlen, time(NULL), kerr, sizeof(kerr)) == 1)
		log_warnx("listener %s: certificate %s %s", l->name,
		    l->certificate, kerr);
	if (l->ocsp_staple != NULL)
		tlsconf_staple(l, tc, cert, certlen);
	if ((tc->chainfd = tlsconf_seal(cert, certlen)) == -1) {
		snprintf(err, errlen, "%s: memfd: %s", l->certificate,
		    strerror(errno));
		goto out;
	}
	tc->chainlen = certlen;
	rc = 0;
out:
	if (cert != NULL)
		tls_unload_file(cert, certlen);
	if (rc == -1)
		tlsconf_clear(tc);
	return rc;
}

void
tlsconf_clear(struct tlsconf *tc)
{
	if (tc->chainfd != -1)
		close(tc->chainfd);
	free(tc->ref);
	free(tc->spki);
	free(tc->staple);
	memset(tc, 0, sizeof(*tc));
	tc->chainfd = -1;
}
