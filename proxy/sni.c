/*
 * Certificates chosen by SNI: see sni.h.
 */
#include <arpa/inet.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <tls.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "config/parse.h"
#include "lib/log.h"
#include "proxy/sni.h"
#include "proxy/snictx.h"

/* The spawner's, inherited by each child: set once, before any fork. */
static int	  sni_strict;
/* A child makes exactly one SSL object: its connection's. */
static SSL	 *sni_ssl;

/* The leaf (first) certificate of a PEM chain, or NULL. */
static X509 *
sni_leaf(const uint8_t *chain, size_t len)
{
	X509 *x = NULL;
	BIO *bio;

	if (len > INT_MAX || (bio = BIO_new_mem_buf(chain, (int)len)) == NULL)
		return NULL;
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	ERR_clear_error();
	return x;
}

int
sni_init(const struct tlsconf_pem *pems, size_t npems, int strict,
    char *err, size_t errlen)
{
	sni_strict = strict;
	return 0;
}

/*
 * The first host_name of a server_name extension (RFC 6066 section 3),
 * in name (NUL-terminated); 0, or -1 if it is malformed or too long.
 */
static int
sni_parse(const unsigned char *p, size_t len, char *name, size_t namelen)
{
	size_t list, n;

	if (len < 2 || (list = (size_t)p[0] << 8 | p[1]) != len - 2)
		return -1;
	p += 2;
	while (list >= 3) {
		n = (size_t)p[1] << 8 | p[2];
		if (n > list - 3)
			return -1;
		if (p[0] == TLSEXT_NAMETYPE_host_name) {
			if (n == 0 || n >= namelen || memchr(p + 3, '\0', n))
				return -1;
			memcpy(name, p + 3, n);
			name[n] = '\0';
			return 0;
		}
		p += 3 + n;
		list -= 3 + n;
	}
	return -1;
}

/* Does one of the listener's certificates claim name, as libtls matches? */
static int
sni_known(const char *name)
{
	return snictx_lookup(name) != -1;
}

static int
sni_hello(SSL *ssl, int *al, void *arg)
{
	const unsigned char *ext;
	unsigned char addr[16];
	char name[256];
	size_t len;

	if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &ext,
	    &len))
		return SSL_CLIENT_HELLO_SUCCESS;	/* no SNI: default */
	if (sni_parse(ext, len, name, sizeof(name)) == -1) {
		*al = SSL_AD_UNRECOGNIZED_NAME;
		return SSL_CLIENT_HELLO_ERROR;
	}
	/* libtls ignores an address literal and serves the default. */
	if (inet_pton(AF_INET, name, addr) == 1 ||
	    inet_pton(AF_INET6, name, addr) == 1 || sni_known(name))
		return SSL_CLIENT_HELLO_SUCCESS;
	*al = SSL_AD_UNRECOGNIZED_NAME;
	return SSL_CLIENT_HELLO_ERROR;
}

void
sni_hook(SSL *ssl)
{
	sni_ssl = ssl;
	if (sni_strict)
		SSL_CTX_set_client_hello_cb(SSL_get_SSL_CTX(ssl), sni_hello,
		    NULL);
}

/* x's first DNS subjectAltName, else its CN, into buf; 0 or -1. */
static int
sni_first_name(X509 *x, char *buf, size_t len)
{
	GENERAL_NAMES *gens;
	GENERAL_NAME *gen;
	const unsigned char *s = NULL;
	int i, n = 0;

	gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
		gen = sk_GENERAL_NAME_value(gens, i);
		if (gen->type == GEN_DNS) {
			s = ASN1_STRING_get0_data(gen->d.dNSName);
			n = ASN1_STRING_length(gen->d.dNSName);
			break;
		}
	}
	if (s != NULL && n > 0)
		log_escape(buf, len, (const char *)s, (size_t)n);
	else if ((n = X509_NAME_get_text_by_NID(X509_get_subject_name(x),
	    NID_commonName, buf, (int)len)) > 0) {
		char cn[256];

		snprintf(cn, sizeof(cn), "%s", buf);
		log_escape(buf, len, cn, strlen(cn));
	}
	GENERAL_NAMES_free(gens);
	ERR_clear_error();
	return (s != NULL && n > 0) || n > 0 ? 0 : -1;
}

const char *
sni_cert_name(char *buf, size_t len)
{
	X509 *x;

	if (sni_ssl == NULL || (x = SSL_get_certificate(sni_ssl)) == NULL ||
	    sni_first_name(x, buf, len) == -1)
		return NULL;
	return buf;
}

/* Duplicate names. */

struct sni_claim {
	char	*name;
	size_t	 index;
};

static int
sni_claim_cmp(const void *a, const void *b)
{
	const struct sni_claim *x = a, *y = b;
	int c;

	if ((c = strcasecmp(x->name, y->name)) != 0)
		return c;
	return x->index < y->index ? -1 : x->index > y->index;
}

/* Add x's names (DNS, else CN) as claims of pair index; 0 or -1. */
static int
sni_claims_add(X509 *x, size_t index, struct sni_claim **cl, size_t *n)
{
	GENERAL_NAMES *gens;
	GENERAL_NAME *gen;
	struct sni_claim *c;
	char cn[256];
	const char *s;
	int i, k, dns = 0, rc = 0;

	gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	k = gens != NULL ? sk_GENERAL_NAME_num(gens) : 0;
	for (i = 0; rc == 0 && i <= k; i++) {
		if (i < k) {
			gen = sk_GENERAL_NAME_value(gens, i);
			if (gen->type != GEN_DNS)
				continue;
			dns = 1;
			s = (const char *)ASN1_STRING_get0_data(gen->d.dNSName);
			if (strlen(s) != (size_t)ASN1_STRING_length(
			    gen->d.dNSName))
				continue;
		} else {
			if (dns || X509_NAME_get_text_by_NID(
			    X509_get_subject_name(x), NID_commonName, cn,
			    sizeof(cn)) <= 0)
				break;
			s = cn;
		}
		if ((c = reallocarray(*cl, *n + 1, sizeof(**cl))) == NULL ||
		    (c[*n].name = strdup(s)) == NULL) {
			if (c != NULL)
				*cl = c;
			rc = -1;
			break;
		}
		*cl = c;
		c[*n].index = index;
		(*n)++;
	}
	GENERAL_NAMES_free(gens);
	ERR_clear_error();
	return rc;
}

/* One name claimed by cl[0..n-1] (n >= 2, by index): tell cb. */
static void
sni_dup_report(const struct tlsconf_pem *pems, const struct sni_claim *cl,
    size_t n, void (*cb)(void *, size_t, const char *), void *arg)
{
	char msg[1024], esc[256];
	size_t i, chosen, off;

	/* libtls tries the pairs after the default, in order */
	for (i = 0, chosen = 0; i < n && chosen == 0; i++)
		chosen = cl[i].index;
	log_escape(esc, sizeof(esc), cl[0].name, strlen(cl[0].name));
	off = (size_t)snprintf(msg, sizeof(msg), "name %s is claimed by "
	    "several certificates:", esc);
	for (i = 0; i < n && off < sizeof(msg); i++)
		if (i == 0 || cl[i].index != cl[i - 1].index)
			off += (size_t)snprintf(msg + off, sizeof(msg) - off,
			    " %s", pems[cl[i].index].name);
	if (off < sizeof(msg))
		snprintf(msg + off, sizeof(msg) - off, "; clients naming it "
		    "get %s", pems[chosen].name);
	cb(arg, cl[n - 1].index, msg);
}

int
sni_dups(const struct tlsconf_pem *pems, size_t npems,
    void (*cb)(void *, size_t, const char *), void *arg)
{
	struct sni_claim *cl = NULL;
	size_t i, j, n = 0, k;
	int dups = -1;
	X509 *x;

	for (i = 0; i < npems; i++) {
		if ((x = sni_leaf(pems[i].chain, pems[i].chainlen)) == NULL)
			goto out;
		if (sni_claims_add(x, i, &cl, &n) == -1) {
			X509_free(x);
			goto out;
		}
		X509_free(x);
	}
	if (n > 0)
		qsort(cl, n, sizeof(*cl), sni_claim_cmp);
	dups = 0;
	for (i = 0; i < n; i = j) {
		/* the claims of one name, one per pair */
		for (j = i + 1, k = 1; j < n &&
		    strcasecmp(cl[i].name, cl[j].name) == 0; j++)
			if (cl[j].index != cl[j - 1].index)
				k++;
		if (k > 1) {
			sni_dup_report(pems, cl + i, j - i, cb, arg);
			dups++;
		}
	}
out:
	for (i = 0; i < n; i++)
		free(cl[i].name);
	free(cl);
	return dups;
}

static void
sni_warn_file(void *arg, size_t last, const char *msg)
{
	const struct conf_listener *l = arg;
	const struct conf_where *w = &l->certs[last].certificate_where;

	fprintf(stderr, "%s:%d: warning: %s\n", w->file, w->line, msg);
}

void
sni_names_warn_files(const struct conf_listener *l)
{
	struct tlsconf_pem *pems;
	size_t i;

	if (l->ncerts < 2 || (pems = calloc(l->ncerts, sizeof(*pems))) == NULL)
		return;
	for (i = 0; i < l->ncerts; i++) {
		pems[i].name = l->certs[i].certificate;
		pems[i].chain = tls_load_file(l->certs[i].certificate,
		    &pems[i].chainlen, NULL);
		if (pems[i].chain == NULL)
			goto out;
	}
	(void)sni_dups(pems, l->ncerts, sni_warn_file, (void *)l);
out:
	for (i = 0; i < l->ncerts; i++)
		if (pems[i].chain != NULL)
			tls_unload_file((uint8_t *)pems[i].chain,
			    pems[i].chainlen);
	free(pems);
}
