/*
 * Choosing the certificate and the ALPN protocol by SNI: see snictx.h.
 */
#include <arpa/inet.h>

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/tls1.h>
#include <openssl/x509.h>

#include "proxy/route.h"
#include "proxy/snictx.h"
#include "proxy/snimap.h"

struct snictx_bytes {
	unsigned char	*p;
	size_t		 len;
};

/* The spawner's, read by each child: set once, before any fork. */
static int			  snictx_capturing;
static SSL_CTX			**snictx_seen;	/* made while capturing */
static size_t			  snictx_nseen;
static SSL_CTX			**snictx_ctx;	/* by pair */
static struct snictx_bytes	 *snictx_staple;	/* by pair */
static struct snictx_bytes	 *snictx_alpn;	/* by route, 0 .. nroutes */
static size_t			  snictx_npairs;
static struct snimap		 *snictx_map;
static const struct conf_listener *snictx_l;
/* A child's one connection. */
static char			  snictx_name[256];
static int			  snictx_named;
static long			  snictx_chosen;

static void
snictx_new(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
    long argl, void *argp)
{
	SSL_CTX **s;

	if (!snictx_capturing)
		return;
	if ((s = reallocarray(snictx_seen, snictx_nseen + 1,
	    sizeof(*s))) == NULL) {
		snictx_capturing = -1;	/* snictx_setup() fails */
		return;
	}
	snictx_seen = s;
	snictx_seen[snictx_nseen++] = parent;
}

static void
snictx_gone(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
    long argl, void *argp)
{
	size_t i;

	for (i = 0; i < snictx_nseen; i++)
		if (snictx_seen[i] == parent)
			snictx_seen[i] = NULL;
}

int
snictx_capture(void)
{
	if (CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL_CTX, 0, NULL,
	    snictx_new, NULL, snictx_gone) == -1)
		return -1;
	snictx_capturing = 1;
	return 0;
}

static int
snictx_servername_cb(SSL *ssl, int *al, void *arg)
{
	unsigned char addr[16];
	const char *name;
	long i;

	snictx_named = 0;
	snictx_chosen = 0;
	/* Called without a server_name extension too. */
	if ((name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) ==
	    NULL)
		return SSL_TLSEXT_ERR_NOACK;
	/* RFC 6066 forbids an address literal; libtls, for the clients that
	 * send one all the same, acts as if there were no extension. */
	if (inet_pton(AF_INET, name, addr) == 1 ||
	    inet_pton(AF_INET6, name, addr) == 1)
		return SSL_TLSEXT_ERR_NOACK;
	if (strlen(name) >= sizeof(snictx_name)) {
		*al = SSL_AD_UNRECOGNIZED_NAME;
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	}
	memcpy(snictx_name, name, strlen(name) + 1);
	snictx_named = 1;
	if ((i = snimap_lookup(snictx_map, name)) <= 0)
		return SSL_TLSEXT_ERR_OK;	/* the default serves */
	snictx_chosen = i;
	if (SSL_get_SSL_CTX(ssl) != snictx_ctx[i] &&
	    SSL_set_SSL_CTX(ssl, snictx_ctx[i]) == NULL) {
		*al = SSL_AD_INTERNAL_ERROR;
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	}
	return SSL_TLSEXT_ERR_OK;
}

static int
snictx_status_cb(SSL *ssl, void *arg)
{
	const struct snictx_bytes *st = &snictx_staple[snictx_chosen];
	unsigned char *p;

	if (st->p == NULL)
		return SSL_TLSEXT_ERR_NOACK;
	if ((p = malloc(st->len)) == NULL)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	memcpy(p, st->p, st->len);
	if (SSL_set_tlsext_status_ocsp_resp(ssl, p, (long)st->len) != 1) {
		free(p);
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	}
	return SSL_TLSEXT_ERR_OK;
}

static int
snictx_alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	const struct snictx_bytes *w;

	w = &snictx_alpn[route_find(snictx_l, snictx_servername())];
	if (SSL_select_next_proto((unsigned char **)out, outlen, w->p,
	    (unsigned int)w->len, in, inlen) == OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_OK;
	return SSL_TLSEXT_ERR_NOACK;	/* as libretls: none agreed */
}

/* The leaf (first) certificate of a PEM chain, or NULL. */
static X509 *
snictx_leaf(const uint8_t *chain, size_t len)
{
	X509 *x;
	BIO *bio;

	if (len > INT_MAX || (bio = BIO_new_mem_buf(chain, (int)len)) == NULL)
		return NULL;
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	return x;
}

/* The context libtls made for each pair, matched by its certificate. */
static int
snictx_match(X509 *const *leaves, size_t n, char *err, size_t errlen,
    const struct tlsconf_pem *pems)
{
	X509 *x;
	size_t i, j;

	for (i = 0; i < n; i++) {
		for (j = 0; j < snictx_nseen; j++) {
			if (snictx_seen[j] == NULL ||
			    (x = SSL_CTX_get0_certificate(snictx_seen[j])) ==
			    NULL || X509_cmp(x, leaves[i]) != 0)
				continue;
			snictx_ctx[i] = snictx_seen[j];
			snictx_seen[j] = NULL;	/* one pair each */
			break;
		}
		if (snictx_ctx[i] == NULL) {
			snprintf(err, errlen, "%s: libtls made no context "
			    "for it", pems[i].name);
			return -1;
		}
	}
	return 0;
}

/* The ALPN wire list ("\x02h2\x08http/1.1") of protos. */
static int
snictx_wire(struct snictx_bytes *w, char *const *protos, size_t n)
{
	size_t i, len, off = 0;

	for (i = 0, len = 0; i < n; i++)
		len += 1 + strlen(protos[i]);
	if ((w->p = malloc(len > 0 ? len : 1)) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		w->p[off++] = (unsigned char)strlen(protos[i]);
		memcpy(w->p + off, protos[i], strlen(protos[i]));
		off += strlen(protos[i]);
	}
	w->len = len;
	return 0;
}

static int
snictx_copy(const struct conf_listener *l, const struct tlsconf_pem *pems,
    size_t npems)
{
	const struct conf_route *r;
	size_t i;

	for (i = 0; i < npems; i++) {
		if (pems[i].staple == NULL || pems[i].staplelen == 0)
			continue;
		if ((snictx_staple[i].p = malloc(pems[i].staplelen)) == NULL)
			return -1;
		memcpy(snictx_staple[i].p, pems[i].staple, pems[i].staplelen);
		snictx_staple[i].len = pems[i].staplelen;
	}
	if (snictx_wire(&snictx_alpn[0], l->alpn, l->nalpn) == -1)
		return -1;
	for (i = 0; i < l->nroutes; i++) {
		r = &l->routes[i];
		if (snictx_wire(&snictx_alpn[i + 1], r->nalpn > 0 ? r->alpn :
		    l->alpn, r->nalpn > 0 ? r->nalpn : l->nalpn) == -1)
			return -1;
	}
	return 0;
}

static void
snictx_install(SSL_CTX *ctx, int alpn)
{
	SSL_CTX_set_tlsext_servername_callback(ctx, snictx_servername_cb);
	SSL_CTX_set_tlsext_servername_arg(ctx, NULL);
	SSL_CTX_set_tlsext_status_cb(ctx, snictx_status_cb);
	if (alpn)
		SSL_CTX_set_alpn_select_cb(ctx, snictx_alpn_cb, NULL);
}

int
snictx_setup(const struct conf_listener *l, const struct tlsconf_pem *pems,
    size_t npems, char *err, size_t errlen)
{
	X509 **leaves;
	size_t i;
	int rc = -1;

	if (snictx_capturing != 1) {
		snprintf(err, errlen, "SSL contexts not captured");
		return -1;
	}
	snictx_capturing = 0;
	snictx_l = l;
	snictx_npairs = npems;
	if ((leaves = calloc(npems, sizeof(*leaves))) == NULL ||
	    (snictx_ctx = calloc(npems, sizeof(*snictx_ctx))) == NULL ||
	    (snictx_staple = calloc(npems, sizeof(*snictx_staple))) == NULL ||
	    (snictx_alpn = calloc(l->nroutes + 1,
	    sizeof(*snictx_alpn))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (i = 0; i < npems; i++)
		if ((leaves[i] = snictx_leaf(pems[i].chain,
		    pems[i].chainlen)) == NULL) {
			snprintf(err, errlen, "%s: no PEM certificate",
			    pems[i].name);
			goto out;
		}
	if (snictx_match(leaves, npems, err, errlen, pems) == -1)
		goto out;
	if ((snictx_map = snimap_new(leaves, npems)) == NULL ||
	    snictx_copy(l, pems, npems) == -1) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (i = 0; i < npems; i++)
		snictx_install(snictx_ctx[i], l->nalpn > 0);
	rc = 0;
out:
	for (i = 0; leaves != NULL && i < npems; i++)
		X509_free(leaves[i]);
	free(leaves);
	free(snictx_seen);
	snictx_seen = NULL;
	snictx_nseen = 0;
	ERR_clear_error();
	return rc;
}

long
snictx_lookup(const char *name)
{
	return snictx_map != NULL ? snimap_lookup(snictx_map, name) : -1;
}

const char *
snictx_servername(void)
{
	return snictx_named ? snictx_name : NULL;
}
