/*
 * A listener's certificate names, looked up by SNI: see snimap.h.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "proxy/snimap.h"

/* The default loses to any other pair: libtls tries it last. */
#define RANK_DEFAULT	UINT32_MAX

struct snimap_entry {
	char		*key;	/* a name; for a wildcard, ".DOMAIN" */
	uint32_t	 rank;	/* the pair's index; the default's is last */
};

struct snimap_table {
	struct snimap_entry	*e;
	size_t			 n;
};

struct snimap {
	struct snimap_table	exact, wild;
};

static int
entry_cmp(const void *a, const void *b)
{
	const struct snimap_entry *x = a, *y = b;
	int c;

	if ((c = strcasecmp(x->key, y->key)) != 0)
		return c;
	return x->rank < y->rank ? -1 : x->rank > y->rank;
}

static int
entry_find(const void *key, const void *b)
{
	const struct snimap_entry *y = b;

	return strcasecmp(key, y->key);
}

static int
table_add(struct snimap_table *t, const char *key, uint32_t rank)
{
	struct snimap_entry *e;

	if ((e = reallocarray(t->e, t->n + 1, sizeof(*e))) == NULL)
		return -1;
	t->e = e;
	if ((e[t->n].key = strdup(key)) == NULL)
		return -1;
	e[t->n++].rank = rank;
	return 0;
}

/* Sorted, one entry per key: the best rank. */
static void
table_settle(struct snimap_table *t)
{
	size_t i, j;

	if (t->n == 0)
		return;
	qsort(t->e, t->n, sizeof(*t->e), entry_cmp);
	for (i = 1, j = 0; i < t->n; i++) {
		if (strcasecmp(t->e[i].key, t->e[j].key) == 0) {
			free(t->e[i].key);
			continue;
		}
		t->e[++j] = t->e[i];
	}
	t->n = j + 1;
}

/* The ".DOMAIN" of a wildcard libtls honours ("*.a.b"), or NULL. */
static const char *
wild_domain(const char *name)
{
	const char *dot;

	if (name[0] != '*' || name[1] != '.' || name[2] == '.' ||
	    name[2] == '\0')
		return NULL;
	if ((dot = strchr(name + 2, '.')) == NULL || dot[1] == '.')
		return NULL;
	return name + 1;
}

/* One name of pair rank, as written in its certificate. */
static int
map_add(struct snimap *m, const char *name, uint32_t rank)
{
	const char *d;

	if (table_add(&m->exact, name, rank) == -1)
		return -1;
	if ((d = wild_domain(name)) != NULL &&
	    table_add(&m->wild, d, rank) == -1)
		return -1;
	return 0;
}

/* x's DNS subjectAltNames; *exists: it has a DNS or IP one. */
static int
map_add_san(struct snimap *m, X509 *x, uint32_t rank, int *exists)
{
	GENERAL_NAMES *gens;
	GENERAL_NAME *gen;
	const char *s;
	int i, len, rc = 0;

	*exists = 0;
	if ((gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL,
	    NULL)) == NULL)
		return 0;
	for (i = 0; rc == 0 && i < sk_GENERAL_NAME_num(gens); i++) {
		gen = sk_GENERAL_NAME_value(gens, i);
		if (gen->type == GEN_DNS || gen->type == GEN_IPADD)
			*exists = 1;
		if (gen->type != GEN_DNS ||
		    ASN1_STRING_type(gen->d.dNSName) != V_ASN1_IA5STRING)
			continue;
		s = (const char *)ASN1_STRING_get0_data(gen->d.dNSName);
		len = ASN1_STRING_length(gen->d.dNSName);
		if (len <= 0 || (size_t)len != strlen(s) || strcmp(s, " ") == 0)
			continue;
		rc = map_add(m, s, rank);
	}
	GENERAL_NAMES_free(gens);
	return rc;
}

/* x's common name, when it has no DNS or IP subjectAltName. */
static int
map_add_cn(struct snimap *m, X509 *x, uint32_t rank)
{
	X509_NAME *subject;
	char *cn;
	int len, rc = 0;

	if ((subject = X509_get_subject_name(x)) == NULL ||
	    (len = X509_NAME_get_text_by_NID(subject, NID_commonName, NULL,
	    0)) <= 0)
		return 0;
	if ((cn = calloc((size_t)len + 1, 1)) == NULL)
		return -1;
	if (X509_NAME_get_text_by_NID(subject, NID_commonName, cn,
	    len + 1) == len && strlen(cn) == (size_t)len)
		rc = map_add(m, cn, rank);
	free(cn);
	return rc;
}

struct snimap *
snimap_new(X509 *const *leaves, size_t n)
{
	struct snimap *m;
	uint32_t rank;
	size_t i;
	int exists;

	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		rank = i == 0 ? RANK_DEFAULT : (uint32_t)i;
		if (map_add_san(m, leaves[i], rank, &exists) == -1 ||
		    (!exists && map_add_cn(m, leaves[i], rank) == -1)) {
			snimap_free(m);
			ERR_clear_error();
			return NULL;
		}
	}
	ERR_clear_error();
	table_settle(&m->exact);
	table_settle(&m->wild);
	return m;
}

static uint32_t
table_rank(const struct snimap_table *t, const char *key)
{
	const struct snimap_entry *e;

	if (t->n == 0 || (e = bsearch(key, t->e, t->n, sizeof(*t->e),
	    entry_find)) == NULL)
		return 0;
	return e->rank;
}

long
snimap_lookup(const struct snimap *m, const char *name)
{
	uint32_t a, b;
	const char *d;

	a = table_rank(&m->exact, name);
	b = 0;
	if (name[0] != '.' && (d = strchr(name, '.')) != NULL)
		b = table_rank(&m->wild, d);
	if (a == 0 || (b != 0 && b < a))
		a = b;
	if (a == 0)
		return -1;
	return a == RANK_DEFAULT ? 0 : (long)a;
}

static void
table_free(struct snimap_table *t)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		free(t->e[i].key);
	free(t->e);
}

void
snimap_free(struct snimap *m)
{
	if (m == NULL)
		return;
	table_free(&m->exact);
	table_free(&m->wild);
	free(m);
}
