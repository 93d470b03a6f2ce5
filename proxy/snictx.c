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
#include <openssl/x509v3.h>

#include "proxy/route.h"
#include "proxy/snictx.h"
#include "proxy/snimap.h"

struct snictx_bytes {
	unsigned char	*p;
	size_t		 len;
};

/* A pair after the default, as the servername callback installs it. */
struct snictx_pair {
	X509		*leaf;
	STACK_OF(X509)	*chain;		/* the certificates after the leaf,
					   shared by pairs of one CA */
	EVP_PKEY	*pkey;		/* the key reference's */
};

/* The spawner's, read by each child: set once, before any fork. */
static int			  snictx_capturing;
static SSL_CTX			**snictx_seen;	/* made while capturing */
static size_t			  snictx_nseen, snictx_maxseen;
static SSL_CTX			 *snictx_main;	/* libtls's, the default's */
static X509			 *snictx_default;	/* its leaf, parsed */
static struct snictx_pair	 *snictx_pairs;	/* by pair; [0] unused */
static struct snictx_bytes	 *snictx_staple;	/* by pair */
static struct snictx_bytes	 *snictx_alpn;	/* by route, 0 .. nroutes */
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
	if (snictx_capturing != 1)
		return;
	if (snictx_nseen == snictx_maxseen) {
		snictx_capturing = -1;	/* snictx_setup() fails */
		return;
	}
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
	/* Only the default's certificate and key are in place: a pair of
	 * another type must not leave them beside its own. */
	snictx_chosen = i;
	SSL_certs_clear(ssl);
	if (SSL_use_cert_and_key(ssl, snictx_pairs[i].leaf,
	    snictx_pairs[i].pkey, snictx_pairs[i].chain, 1) != 1) {
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

/* The PEM text after a chain's first certificate: its chain proper. */
static const uint8_t *
snictx_rest(const struct tlsconf_pem *pem, size_t *len)
{
	static const char end[] = "-----END CERTIFICATE-----";
	const uint8_t *e;

	if ((e = memmem(pem->chain, pem->chainlen, end,
	    sizeof(end) - 1)) == NULL) {
		*len = 0;
		return pem->chain + pem->chainlen;
	}
	e += sizeof(end) - 1;
	*len = pem->chainlen - (size_t)(e - pem->chain);
	return e;
}

/*
 * The first pair whose chain (the certificates after the leaf) is the
 * same text as pems[i]'s: i if none before it.  Pairs signed by one CA
 * share one parsed chain, the default's included.
 */
static size_t
snictx_same_chain(const struct tlsconf_pem *pems, size_t i)
{
	const uint8_t *a, *b;
	size_t j, alen, blen;

	a = snictx_rest(&pems[i], &alen);
	for (j = 0; j < i; j++) {
		b = snictx_rest(&pems[j], &blen);
		if (alen == blen && memcmp(a, b, alen) == 0)
			return j;
	}
	return i;
}

/*
 * Compute what OpenSSL caches in a certificate at its first use (its
 * extensions, key usage, signature algorithm), here, once: a child that
 * served the pair would write it into pages it shares with us.
 */
static void
snictx_cache(X509 *x)
{
	(void)X509_check_purpose(x, -1, 0);
}

/* The key reference of pem, parsed, or NULL. */
static EVP_PKEY *
snictx_key(const struct tlsconf_pem *pem)
{
	EVP_PKEY *k;
	BIO *bio;

	if (pem->reflen > INT_MAX ||
	    (bio = BIO_new_mem_buf(pem->ref, (int)pem->reflen)) == NULL)
		return NULL;
	k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	return k;
}

/* The certificates of bio after its leaf, each cached, into chain. */
static int
snictx_chain(BIO *bio, STACK_OF(X509) *chain)
{
	X509 *x;

	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		snictx_cache(x);
		if (sk_X509_push(chain, x) == 0) {
			X509_free(x);
			return -1;
		}
	}
	return 0;
}

/*
 * Pair i from its PEM chain and key reference: its key, leaf and chain.
 * The key first: its object and the leaf's then lie side by side, and a
 * child that takes the pair's references writes one page for both, not
 * two.  0 or -1.
 */
static int
snictx_load(const struct tlsconf_pem *pems, size_t i)
{
	const struct tlsconf_pem *pem = &pems[i];
	struct snictx_pair *p = &snictx_pairs[i];
	size_t same;
	BIO *bio;
	int rc = -1;

	if ((p->pkey = snictx_key(pem)) == NULL)
		return -1;
	if (pem->chainlen > INT_MAX ||
	    (bio = BIO_new_mem_buf(pem->chain, (int)pem->chainlen)) == NULL)
		return -1;
	if ((p->leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL)
		goto out;
	snictx_cache(p->leaf);
	if ((same = snictx_same_chain(pems, i)) < i)
		p->chain = snictx_pairs[same].chain;
	else if ((p->chain = sk_X509_new_null()) == NULL ||
	    snictx_chain(bio, p->chain) == -1)
		goto out;
	/* What SSL_use_cert_and_key() checks, here: the comparison leaves
	 * the exported key in the key's cache, not in a child's pages. */
	if (EVP_PKEY_eq(X509_get0_pubkey(p->leaf), p->pkey) != 1)
		goto out;
	rc = 0;
out:
	BIO_free(bio);
	return rc;
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

/* The most SSL_CTXs libtls makes for one server context: one. */
#define SNICTX_SEEN_MAX	8

int
snictx_prepare(char *err, size_t errlen)
{
	if ((snictx_seen = calloc(SNICTX_SEEN_MAX,
	    sizeof(*snictx_seen))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL_CTX, 0, NULL,
	    snictx_new, NULL, snictx_gone) == -1) {
		snprintf(err, errlen, "cannot register the SSL_CTX hook");
		return -1;
	}
	snictx_maxseen = SNICTX_SEEN_MAX;
	snictx_capturing = 1;
	return 0;
}

/* Every pair, the table of names, the staples and the ALPN lists. */
static int
snictx_load_all(const struct conf_listener *l,
    const struct tlsconf_pem *pems, size_t npems, char *err, size_t errlen)
{
	X509 **leaves;
	size_t i;
	int rc = -1;

	snictx_l = l;
	if ((leaves = calloc(npems, sizeof(*leaves))) == NULL ||
	    (snictx_pairs = calloc(npems, sizeof(*snictx_pairs))) == NULL ||
	    (snictx_staple = calloc(npems, sizeof(*snictx_staple))) == NULL ||
	    (snictx_alpn = calloc(l->nroutes + 1,
	    sizeof(*snictx_alpn))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (i = 0; i < npems; i++) {
		if (snictx_load(pems, i) == -1) {
			snprintf(err, errlen, "%s: cannot load the certificate "
			    "and key reference", pems[i].name);
			goto out;
		}
		leaves[i] = snictx_pairs[i].leaf;
	}
	snictx_default = snictx_pairs[0].leaf;
	if ((snictx_map = snimap_new(leaves, npems)) == NULL ||
	    snictx_copy(l, pems, npems) == -1) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	rc = 0;
out:
	free(leaves);
	ERR_clear_error();
	return rc;
}

int
snictx_setup(const struct conf_listener *l, const struct tlsconf_pem *pems,
    size_t npems, char *err, size_t errlen)
{
	X509 *x;
	size_t i;

	if (snictx_capturing != 1) {
		snprintf(err, errlen, "SSL contexts not captured");
		return -1;
	}
	snictx_capturing = 0;
	if (snictx_load_all(l, pems, npems, err, errlen) == -1)
		return -1;
	for (i = 0; i < snictx_nseen && snictx_main == NULL; i++)
		if (snictx_seen[i] != NULL && (x = SSL_CTX_get0_certificate(
		    snictx_seen[i])) != NULL && X509_cmp(x, snictx_default) == 0)
			snictx_main = snictx_seen[i];
	ERR_clear_error();
	if (snictx_main == NULL) {
		snprintf(err, errlen, "libtls made no context of the default "
		    "certificate");
		return -1;
	}
	/* Our objects of the default pair in place of libtls's: its chain
	 * is then the one other pairs of its CA share. */
	if (SSL_CTX_use_cert_and_key(snictx_main, snictx_pairs[0].leaf,
	    snictx_pairs[0].pkey, snictx_pairs[0].chain, 1) != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "cannot install the default pair");
		return -1;
	}
	SSL_CTX_set_tlsext_servername_callback(snictx_main,
	    snictx_servername_cb);
	SSL_CTX_set_tlsext_servername_arg(snictx_main, NULL);
	SSL_CTX_set_tlsext_status_cb(snictx_main, snictx_status_cb);
	if (snictx_l->nalpn > 0)
		SSL_CTX_set_alpn_select_cb(snictx_main, snictx_alpn_cb, NULL);
	return 0;
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
