/*
 * Client certificate authorities and CRLs: see clientca.h.
 *
 * The parent reads these files as root, as it reads certificates: local
 * files, never network input.  What it keeps is exactly what it checked.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "config/clientca.h"
#include "config/parse.h"

/* Bytes read so far, and the files they came from (dev, ino). */
struct buf {
	uint8_t		*p;
	size_t		 len;
	dev_t		*devs;
	ino_t		*inos;
	size_t		 nfiles;
};

/* Append the regular file path to b; 1 if it was read before, 0, -1. */
static int
buf_file(struct buf *b, const char *path, const char *what,
    const struct conf_where *w, char *err, size_t errlen)
{
	struct stat st;
	dev_t *d;
	ino_t *i;
	uint8_t *np;
	size_t k;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY |
	    O_NONBLOCK)) == -1)
		return conf_seterr(err, errlen, w, "%s \"%s\": %s", what, path,
		    strerror(errno));
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		return conf_seterr(err, errlen, w, "%s \"%s\": not a regular "
		    "file", what, path);
	}
	for (k = 0; k < b->nfiles; k++)
		if (b->devs[k] == st.st_dev && b->inos[k] == st.st_ino) {
			close(fd);
			return 1;
		}
	if (st.st_size > CLIENTCA_MAX || b->len + (size_t)st.st_size + 1 >
	    CLIENTCA_MAX) {
		close(fd);
		return conf_seterr(err, errlen, w, "%s \"%s\": more than %d "
		    "bytes", what, path, CLIENTCA_MAX);
	}
	if ((np = realloc(b->p, b->len + (size_t)st.st_size + 1)) == NULL)
		goto nomem;
	b->p = np;
	if ((d = reallocarray(b->devs, b->nfiles + 1, sizeof(*d))) == NULL)
		goto nomem;
	b->devs = d;
	if ((i = reallocarray(b->inos, b->nfiles + 1, sizeof(*i))) == NULL)
		goto nomem;
	b->inos = i;
	b->devs[b->nfiles] = st.st_dev;
	b->inos[b->nfiles++] = st.st_ino;
	n = pread(fd, b->p + b->len, (size_t)st.st_size, 0);
	close(fd);
	if (n != st.st_size)
		return conf_seterr(err, errlen, w, "%s \"%s\": %s", what, path,
		    n == -1 ? strerror(errno) : "changed while read");
	b->len += (size_t)n;
	/* files that do not end in a newline still make whole PEM blocks */
	if (n > 0 && b->p[b->len - 1] != '\n')
		b->p[b->len++] = '\n';
	return 0;
nomem:
	close(fd);
	return conf_seterr(err, errlen, w, "%s", strerror(ENOMEM));
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char * const *)a, *(char * const *)b);
}

/* Every file of the directory path (not dot files), in name order. */
static int
buf_dir(struct buf *b, const char *path, const struct conf_where *w,
    char *err, size_t errlen)
{
	struct dirent *de;
	char **names = NULL, **nn, file[PATH_MAX];
	size_t n = 0, i;
	DIR *d;
	int rc = 0;

	if ((d = opendir(path)) == NULL)
		return conf_seterr(err, errlen, w, "client-ca \"%s\": %s",
		    path, strerror(errno));
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if ((nn = reallocarray(names, n + 1, sizeof(*nn))) == NULL ||
		    (names = nn, (names[n] = strdup(de->d_name)) == NULL))
			rc = conf_seterr(err, errlen, w, "%s",
			    strerror(ENOMEM));
		else
			n++;
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), name_cmp);
	for (i = 0; rc == 0 && i < n; i++) {
		if ((size_t)snprintf(file, sizeof(file), "%s/%s", path,
		    names[i]) >= sizeof(file))
			rc = conf_seterr(err, errlen, w, "client-ca \"%s/%s\": "
			    "name too long", path, names[i]);
		else if (buf_file(b, file, "client-ca", w, err, errlen) == -1)
			rc = -1;
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (rc == 0 && b->nfiles == 0)
		rc = conf_seterr(err, errlen, w, "client-ca \"%s\": an empty "
		    "directory", path);
	return rc;
}

/*
 * The PEM blocks of p: each of type want ("CERTIFICATE" or "X509 CRL"),
 * parsed, onto sk (X509 or X509_CRL).  Return how many, or -1.
 */
static int
pem_all(const uint8_t *p, size_t len, const char *want, STACK_OF(X509) *certs,
    STACK_OF(X509_CRL) *crls, const char *what, const char *path,
    const struct conf_where *w, char *err, size_t errlen)
{
	char *name = NULL, *header = NULL;
	unsigned char *data = NULL;
	const unsigned char *d;
	unsigned long e;
	long dlen = 0;
	X509 *x;
	X509_CRL *c;
	BIO *bio;
	int n = 0, rc = 0;

	if ((bio = BIO_new_mem_buf(p, (int)len)) == NULL)
		return conf_seterr(err, errlen, w, "%s", strerror(ENOMEM));
	ERR_clear_error();
	while (rc == 0 && PEM_read_bio(bio, &name, &header, &data,
	    &dlen) == 1) {
		d = data;
		n++;
		if (strcmp(name, want) != 0)
			rc = conf_seterr(err, errlen, w, "%s \"%s\": block %d "
			    "is a %s, not a %s", what, path, n, name, want);
		else if (certs != NULL) {
			if ((x = d2i_X509(NULL, &d, dlen)) == NULL ||
			    d != data + dlen || !sk_X509_push(certs, x)) {
				X509_free(x);
				rc = conf_seterr(err, errlen, w, "%s \"%s\": "
				    "certificate %d does not parse", what,
				    path, n);
			}
		} else if ((c = d2i_X509_CRL(NULL, &d, dlen)) == NULL ||
		    d != data + dlen || !sk_X509_CRL_push(crls, c)) {
			X509_CRL_free(c);
			rc = conf_seterr(err, errlen, w, "%s \"%s\": CRL %d "
			    "does not parse", what, path, n);
		}
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(data);
		name = header = NULL;
		data = NULL;
	}
	e = ERR_peek_last_error();
	ERR_clear_error();
	BIO_free(bio);
	if (rc == 0 && e != 0 && (ERR_GET_LIB(e) != ERR_LIB_PEM ||
	    ERR_GET_REASON(e) != PEM_R_NO_START_LINE))
		rc = conf_seterr(err, errlen, w, "%s \"%s\": bad PEM data",
		    what, path);
	else if (rc == 0 && n == 0)
		rc = conf_seterr(err, errlen, w, "%s \"%s\": no PEM %s", what,
		    path, want);
	return rc == 0 ? n : -1;
}

/* A CRL of crls that x signed, or NULL. */
static X509_CRL *
crl_of(X509 *x, STACK_OF(X509_CRL) *crls)
{
	X509_CRL *c;
	EVP_PKEY *pub;
	int i;

	if ((pub = X509_get0_pubkey(x)) == NULL)
		return NULL;
	for (i = 0; i < sk_X509_CRL_num(crls); i++) {
		c = sk_X509_CRL_value(crls, i);
		if (X509_NAME_cmp(X509_CRL_get_issuer(c),
		    X509_get_subject_name(x)) == 0 &&
		    X509_CRL_verify(c, pub) == 1)
			return c;
	}
	ERR_clear_error();
	return NULL;
}

/* Every CA has its CRL, and every CRL its CA. */
static int
crl_match(const struct conf_listener *l, STACK_OF(X509) *certs,
    STACK_OF(X509_CRL) *crls, char *err, size_t errlen)
{
	const struct conf_where *w = &l->client_crl_where;
	char name[256];
	X509 *x;
	int i, j, found;

	for (i = 0; i < sk_X509_num(certs); i++) {
		x = sk_X509_value(certs, i);
		if (crl_of(x, crls) != NULL)
			continue;
		X509_NAME_oneline(X509_get_subject_name(x), name,
		    sizeof(name));
		return conf_seterr(err, errlen, w, "client-crl \"%s\": no CRL "
		    "signed by %s of client-ca \"%s\" (each CA needs its own: "
		    "the whole chain is checked)", l->client_crl, name,
		    l->client_ca);
	}
	for (j = 0; j < sk_X509_CRL_num(crls); j++) {
		for (i = 0, found = 0; i < sk_X509_num(certs) && !found; i++)
			found = crl_of(sk_X509_value(certs, i), crls) ==
			    sk_X509_CRL_value(crls, j);
		if (!found)
			return conf_seterr(err, errlen, w, "client-crl \"%s\": "
			    "CRL %d was not signed by a certificate of "
			    "client-ca \"%s\"", l->client_crl, j + 1,
			    l->client_ca);
	}
	return 0;
}

static int
load_ca(struct conf_listener *l, struct buf *b, STACK_OF(X509) *certs,
    char *err, size_t errlen)
{
	const struct conf_where *w = &l->client_ca_where;
	struct stat st;

	if (stat(l->client_ca, &st) == -1)
		return conf_seterr(err, errlen, w, "client-ca \"%s\": %s",
		    l->client_ca, strerror(errno));
	if (S_ISDIR(st.st_mode) ? buf_dir(b, l->client_ca, w, err,
	    errlen) == -1 : buf_file(b, l->client_ca, "client-ca", w, err,
	    errlen) == -1)
		return -1;
	return pem_all(b->p, b->len, PEM_STRING_X509, certs, NULL,
	    "client-ca", l->client_ca, w, err, errlen) == -1 ? -1 : 0;
}

static void
buf_free(struct buf *b)
{
	free(b->p);
	free(b->devs);
	free(b->inos);
	memset(b, 0, sizeof(*b));
}

int
clientca_load(struct conf_listener *l, char *err, size_t errlen)
{
	struct buf ca = { 0 }, crl = { 0 };
	STACK_OF(X509) *certs = NULL;
	STACK_OF(X509_CRL) *crls = NULL;
	int rc = -1;

	if (l->client_ca == NULL) {
		if (l->client_verify != CONF_VERIFY_UNSET)
			return conf_seterr(err, errlen,
			    &l->client_verify_where, "client-verify without "
			    "client-ca");
		if (l->client_crl != NULL)
			return conf_seterr(err, errlen, &l->client_crl_where,
			    "client-crl without client-ca");
		return 0;
	}
	if (l->client_verify == CONF_VERIFY_UNSET)
		l->client_verify = CONF_VERIFY_REQUIRED;
	if ((certs = sk_X509_new_null()) == NULL ||
	    (crls = sk_X509_CRL_new_null()) == NULL) {
		conf_seterr(err, errlen, &l->client_ca_where, "%s",
		    strerror(ENOMEM));
		goto out;
	}
	if (load_ca(l, &ca, certs, err, errlen) == -1)
		goto out;
	if (l->client_crl != NULL && (buf_file(&crl, l->client_crl,
	    "client-crl", &l->client_crl_where, err, errlen) == -1 ||
	    pem_all(crl.p, crl.len, PEM_STRING_X509_CRL, NULL, crls,
	    "client-crl", l->client_crl, &l->client_crl_where, err,
	    errlen) == -1 || crl_match(l, certs, crls, err, errlen) == -1))
		goto out;
	free(l->client_ca_pem);
	free(l->client_crl_pem);
	l->client_ca_pem = ca.p;
	l->client_ca_len = ca.len;
	l->client_crl_pem = crl.p;
	l->client_crl_len = crl.len;
	ca.p = crl.p = NULL;
	rc = 0;
out:
	sk_X509_pop_free(certs, X509_free);
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	buf_free(&ca);
	buf_free(&crl);
	return rc;
}

/* t as text ("Jan  2 00:00:00 2026 GMT"). */
static void
asn1_time_str(const ASN1_TIME *t, char *buf, size_t len)
{
	char *p;
	long n;
	BIO *b;

	snprintf(buf, len, "?");
	if ((b = BIO_new(BIO_s_mem())) == NULL)
		return;
	if (ASN1_TIME_print(b, t) == 1 && (n = BIO_get_mem_data(b, &p)) > 0)
		snprintf(buf, len, "%.*s", (int)n, p);
	BIO_free(b);
}

const struct conf_where *
clientca_warn(const struct conf_listener *l, time_t now, char *buf,
    size_t len)
{
	STACK_OF(X509) *certs = NULL;
	STACK_OF(X509_CRL) *crls = NULL;
	const ASN1_TIME *t;
	char when[64], name[256], err[CONF_ERR_MAX];
	const struct conf_where *rc = NULL;
	struct conf_where w = { "", 0 };
	int i;

	if (l->client_ca_pem == NULL)
		return NULL;
	if ((certs = sk_X509_new_null()) == NULL ||
	    (crls = sk_X509_CRL_new_null()) == NULL)
		goto out;
	if (pem_all(l->client_ca_pem, l->client_ca_len, PEM_STRING_X509,
	    certs, NULL, "client-ca", "", &w, err, sizeof(err)) == -1 ||
	    (l->client_crl_pem != NULL && pem_all(l->client_crl_pem,
	    l->client_crl_len, PEM_STRING_X509_CRL, NULL, crls, "client-crl",
	    "", &w, err, sizeof(err)) == -1))
		goto out;
	for (i = 0; i < sk_X509_CRL_num(crls) && rc == NULL; i++) {
		t = X509_CRL_get0_nextUpdate(sk_X509_CRL_value(crls, i));
		if (t == NULL || X509_cmp_time(t, &now) >= 0)
			continue;
		asn1_time_str(t, when, sizeof(when));
		X509_NAME_oneline(X509_CRL_get_issuer(sk_X509_CRL_value(crls,
		    i)), name, sizeof(name));
		snprintf(buf, len, "client-crl \"%s\": the CRL of %s is out of "
		    "date since %s: every client certificate it covers is "
		    "refused", l->client_crl, name, when);
		rc = &l->client_crl_where;
	}
	for (i = 0; i < sk_X509_num(certs) && rc == NULL; i++) {
		t = X509_get0_notAfter(sk_X509_value(certs, i));
		if (X509_cmp_time(t, &now) >= 0)
			continue;
		asn1_time_str(t, when, sizeof(when));
		X509_NAME_oneline(X509_get_subject_name(sk_X509_value(certs,
		    i)), name, sizeof(name));
		snprintf(buf, len, "client-ca \"%s\": certificate %s expired "
		    "on %s", l->client_ca, name, when);
		rc = &l->client_ca_where;
	}
out:
	sk_X509_pop_free(certs, X509_free);
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	ERR_clear_error();
	return rc;
}

static void
dump_line(FILE *fp, const char *kw, const char *s)
{
	fprintf(fp, "\t%s \"", kw);
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			putc('\\', fp);
		putc(*s, fp);
	}
	fputs("\"\n", fp);
}

void
clientca_dump(const struct conf_listener *l, FILE *fp)
{
	if (l->client_ca != NULL)
		dump_line(fp, "client-ca", l->client_ca);
	if (l->client_ca != NULL || l->client_verify != CONF_VERIFY_UNSET)
		fprintf(fp, "\tclient-verify %s\n", l->client_verify ==
		    CONF_VERIFY_OPTIONAL ? "optional" : "required");
	if (l->client_crl != NULL)
		dump_line(fp, "client-crl", l->client_crl);
}

void
clientca_free(struct conf_listener *l)
{
	free(l->client_ca);
	free(l->client_crl);
	free(l->client_ca_pem);
	free(l->client_crl_pem);
	l->client_ca = l->client_crl = NULL;
	l->client_ca_pem = l->client_crl_pem = NULL;
}
