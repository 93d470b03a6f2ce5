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

#include "config/parse.h"
#include "keyproc/kp_provider.h"
#include "lib/log.h"
#include "lib/wire.h"
#include "proxy/certcheck.h"
#include "proxy/route.h"
#include "proxy/mtls.h"
#include "proxy/ocsp.h"
#include "proxy/sni.h"
#include "proxy/tlsconf.h"

static int
tlsconf_configure(const struct conf_listener *l, struct tls_config *cfg,
    const struct tlsconf_pem *pems, size_t npems, char *err, size_t errlen)
{
	const char *protocols, *ciphers;
	uint32_t proto;
	size_t i;

	protocols = l->protocols != NULL ? l->protocols : CONF_DEFAULT_PROTOCOLS;
	ciphers = l->ciphers != NULL ? l->ciphers : CONF_DEFAULT_CIPHERS;
	/* The first pair is the default; libtls matches the SNI against
	 * the names of the others' certificates, in order. */
	for (i = 0; i < npems; i++) {
		if ((i == 0 ? tls_config_set_keypair_ocsp_mem :
		    tls_config_add_keypair_ocsp_mem)(cfg, pems[i].chain,
		    pems[i].chainlen, (const uint8_t *)pems[i].ref,
		    pems[i].reflen, pems[i].staple, pems[i].staplelen) == -1) {
			snprintf(err, errlen, "%s: %s", pems[i].name,
			    tls_config_error(cfg) ? tls_config_error(cfg) :
			    "bad certificate");
			return -1;
		}
	}
	if (tls_config_parse_protocols(&proto, protocols) == -1 ||
	    tls_config_set_protocols(cfg, proto) == -1 ||
	    tls_config_set_ciphers(cfg, ciphers) == -1) {
		snprintf(err, errlen, "%s: %s", pems[0].name,
		    tls_config_error(cfg) ? tls_config_error(cfg) :
		    "bad protocols");
		return -1;
	}
	return mtls_configure(l, cfg, err, errlen);
}

/* The ALPN protocols l offers, in its order of preference; none: no ALPN. */
static int
tlsconf_alpn(const struct conf_listener *l, struct tls_config *cfg,
    char *err, size_t errlen)
{
	char *list;
	int rc;

	if (l->nalpn == 0)
		return 0;
	if ((list = route_alpn_list(l)) == NULL) {
		snprintf(err, errlen, "alpn: %s", strerror(errno));
		return -1;
	}
	if ((rc = tls_config_set_alpn(cfg, list)) == -1)
		snprintf(err, errlen, "alpn \"%s\": %s", list,
		    tls_config_error(cfg));
	free(list);
	return rc;
}

struct tls *
tlsconf_server(const struct conf_listener *l, const struct tlsconf_pem *pems,
    size_t npems, char *err, size_t errlen)
{
	struct tls_config *cfg;
	struct tls *tls = NULL;

	if (npems == 0) {
		snprintf(err, errlen, "listener %s: no certificate", l->name);
		return NULL;
	}
	if ((cfg = tls_config_new()) == NULL) {
		snprintf(err, errlen, "tls_config_new failed");
		return NULL;
	}
	if (tlsconf_configure(l, cfg, pems, npems, err, errlen) == -1 ||
	    tlsconf_alpn(l, cfg, err, errlen) == -1)
		goto out;
	if ((tls = tls_server()) == NULL) {
		snprintf(err, errlen, "tls_server failed");
		goto out;
	}
	if (tls_configure(tls, cfg) == -1) {
		if (npems > 1)
			snprintf(err, errlen, "listener %s: %s", l->name,
			    tls_error(tls));
		else
			snprintf(err, errlen, "%s: %s", pems[0].name,
			    tls_error(tls));
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

/* cc's staple into tcc if it is good for the chain; else a warning. */
static void
tlsconf_staple(const struct conf_listener *l, const struct conf_cert *cc,
    struct tlsconf_cert *tcc, const uint8_t *cert, size_t certlen)
{
	char msg[CONF_ERR_MAX + 256];

	if (ocsp_staple_load(cc->ocsp_staple, &cc->ocsp_staple_where, cert,
	    certlen, time(NULL), &tcc->staple, &tcc->staplelen, msg,
	    sizeof(msg)) == 0)
		log_info("listener %s: %s", l->name, msg);
	else
		log_warnx("listener %s: %s", l->name, msg);
}

/* One pair: read, reference, checked alone (so an error names it). */
static int
tlsconf_load_cert(const struct conf_listener *l, size_t i,
    struct tlsconf_cert *tcc, char *err, size_t errlen)
{
	const struct conf_cert *cc = &l->certs[i];
	struct tlsconf_pem pem;
	struct tls *tls;
	uint8_t *cert = NULL;
	size_t certlen;
	char kerr[CONF_ERR_MAX];
	int rc = -1;

	tcc->chainfd = -1;
	if ((cert = tls_load_file(cc->certificate, &certlen, NULL)) == NULL) {
		conf_seterr(err, errlen, &cc->certificate_where,
		    "certificate \"%s\": cannot read", cc->certificate);
		goto out;
	}
	if (certlen > SPAWNER_CHAIN_MAX) {
		conf_seterr(err, errlen, &cc->certificate_where,
		    "certificate \"%s\": larger than %d bytes",
		    cc->certificate, SPAWNER_CHAIN_MAX);
		goto out;
	}
	if (kp_ref_from_cert(cert, certlen, (uint32_t)i, &tcc->ref,
	    &tcc->reflen, &tcc->spki, &tcc->spkilen, kerr,
	    sizeof(kerr)) == -1) {
		conf_seterr(err, errlen, &cc->certificate_where,
		    "certificate \"%s\": %s", cc->certificate, kerr);
		goto out;
	}
	pem.name = cc->certificate;
	pem.chain = cert;
	pem.chainlen = certlen;
	pem.ref = tcc->ref;
	pem.reflen = tcc->reflen;
	pem.staple = NULL;
	pem.staplelen = 0;
	/* The check the spawner's tls_configure() will repeat. */
	if ((tls = tlsconf_server(l, &pem, 1, kerr, sizeof(kerr))) == NULL) {
		conf_seterr(err, errlen, &cc->certificate_where, "%s", kerr);
		goto out;
	}
	tls_free(tls);
	if (cert_expiry(cert, certlen, time(NULL), kerr, sizeof(kerr)) == 1)
		log_warnx("listener %s: certificate %s %s", l->name,
		    cc->certificate, kerr);
	if (cc->ocsp_staple != NULL)
		tlsconf_staple(l, cc, tcc, cert, certlen);
	if ((tcc->chainfd = tlsconf_seal(cert, certlen)) == -1) {
		conf_seterr(err, errlen, &cc->certificate_where,
		    "certificate \"%s\": memfd: %s", cc->certificate,
		    strerror(errno));
		goto out;
	}
	tcc->chainlen = certlen;
	rc = 0;
out:
	if (cert != NULL)
		tls_unload_file(cert, certlen);
	return rc;
}

static void
tlsconf_warn_dup(void *arg, size_t last, const char *msg)
{
	const struct conf_listener *l = arg;

	log_warnx("listener %s: %s", l->name, msg);
}

/* The whole listener's context, from the sealed chains, as a spawner. */
static int
tlsconf_check_all(const struct conf_listener *l, const struct tlsconf *tc,
    char *err, size_t errlen)
{
	struct tlsconf_pem *pems;
	struct tls *tls = NULL;
	uint8_t **bufs;
	size_t i;

	pems = calloc(tc->ncerts, sizeof(*pems));
	bufs = calloc(tc->ncerts, sizeof(*bufs));
	if (pems == NULL || bufs == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (i = 0; i < tc->ncerts; i++) {
		if ((bufs[i] = malloc(tc->certs[i].chainlen)) == NULL ||
		    pread(tc->certs[i].chainfd, bufs[i], tc->certs[i].chainlen,
		    0) != (ssize_t)tc->certs[i].chainlen) {
			snprintf(err, errlen, "%s: cannot read its copy",
			    l->certs[i].certificate);
			goto out;
		}
		pems[i].name = l->certs[i].certificate;
		pems[i].chain = bufs[i];
		pems[i].chainlen = tc->certs[i].chainlen;
		pems[i].ref = tc->certs[i].ref;
		pems[i].reflen = tc->certs[i].reflen;
		pems[i].staple = tc->certs[i].staple;
		pems[i].staplelen = tc->certs[i].staplelen;
	}
	tls = tlsconf_server(l, pems, tc->ncerts, err, errlen);
	if (tls != NULL)
		(void)sni_dups(pems, tc->ncerts, tlsconf_warn_dup, (void *)l);
out:
	for (i = 0; bufs != NULL && i < tc->ncerts; i++)
		free(bufs[i]);
	free(bufs);
	free(pems);
	if (tls == NULL)
		return -1;
	tls_free(tls);
	return 0;
}

int
tlsconf_load(const struct conf_listener *l, struct tlsconf *tc,
    char *err, size_t errlen)
{
	size_t i;

	memset(tc, 0, sizeof(*tc));
	if ((tc->certs = calloc(l->ncerts, sizeof(*tc->certs))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (i = 0; i < l->ncerts; i++)
		tc->certs[i].chainfd = -1;
	tc->ncerts = l->ncerts;
	for (i = 0; i < l->ncerts; i++)
		if (tlsconf_load_cert(l, i, &tc->certs[i], err, errlen) == -1)
			goto err;
	if (tc->ncerts > 1 && tlsconf_check_all(l, tc, err, errlen) == -1)
		goto err;
	return 0;
err:
	tlsconf_clear(tc);
	return -1;
}

void
tlsconf_clear(struct tlsconf *tc)
{
	size_t i;

	for (i = 0; i < tc->ncerts; i++) {
		if (tc->certs[i].chainfd != -1)
			close(tc->certs[i].chainfd);
		free(tc->certs[i].ref);
		free(tc->certs[i].spki);
		free(tc->certs[i].staple);
	}
	free(tc->certs);
	memset(tc, 0, sizeof(*tc));
}
