/*
 * OCSP staples from a file: see ocsp.h.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "lib/wire.h"
#include "proxy/ocsp.h"

/* What one check needs and frees. */
struct ocsp_ctx {
	STACK_OF(X509)		*chain;		/* leaf first */
	X509			*leaf, *issuer;	/* in chain */
	OCSP_RESPONSE		*resp;
	OCSP_BASICRESP		*basic;
	OCSP_SINGLERESP		*single;	/* in basic */
};

static int __attribute__((__format__(__printf__, 3, 4)))
why_set(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -1;
}

static void
ocsp_ctx_free(struct ocsp_ctx *c)
{
	OCSP_BASICRESP_free(c->basic);
	OCSP_RESPONSE_free(c->resp);
	sk_X509_pop_free(c->chain, X509_free);
	ERR_clear_error();
}

/* An ASN1 time as "YYYY-MM-DD HH:MM:SS UTC" and a time_t. */
static int
asn1_date(const ASN1_GENERALIZEDTIME *t, char *buf, size_t len, time_t *tp)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(t, &tm) != 1)
		return -1;
	strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
	*tp = timegm(&tm);
	return 0;
}

/* The chain's certificates; the leaf and, among the others, its issuer. */
static int
load_chain(struct ocsp_ctx *c, const uint8_t *pem, size_t len, char *why,
    size_t whylen)
{
	X509 *x, *cand;
	BIO *bio = NULL;
	int i;

	if (len > INT_MAX || (bio = BIO_new_mem_buf(pem, (int)len)) == NULL ||
	    (c->chain = sk_X509_new_null()) == NULL) {
		BIO_free(bio);
		return why_set(why, whylen, "out of memory");
	}
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		if (sk_X509_push(c->chain, x) == 0) {
			X509_free(x);
			break;
		}
	BIO_free(bio);
	if (sk_X509_num(c->chain) == 0)
		return why_set(why, whylen, "the certificate file holds no "
		    "certificate");
	c->leaf = sk_X509_value(c->chain, 0);
	for (i = 1; i < sk_X509_num(c->chain) && c->issuer == NULL; i++) {
		cand = sk_X509_value(c->chain, i);
		if (X509_check_issued(cand, c->leaf) == X509_V_OK)
			c->issuer = cand;
	}
	if (c->issuer == NULL)
		return why_set(why, whylen, "the certificate file holds no "
		    "issuer of its first certificate, to check the staple "
		    "against (append the issuing CA's certificate)");
	return 0;
}

static int
parse_response(struct ocsp_ctx *c, const uint8_t *der, size_t len,
    char *why, size_t whylen)
{
	const unsigned char *p = der;
	int st;

	if (len > LONG_MAX || (c->resp = d2i_OCSP_RESPONSE(NULL, &p,
	    (long)len)) == NULL || p != der + len)
		return why_set(why, whylen, "not a DER OCSP response");
	if ((st = OCSP_response_status(c->resp)) !=
	    OCSP_RESPONSE_STATUS_SUCCESSFUL)
		return why_set(why, whylen, "the response status is %s",
		    OCSP_response_status_str(st));
	if ((c->basic = OCSP_response_get1_basic(c->resp)) == NULL)
		return why_set(why, whylen, "not a basic OCSP response");
	return 0;
}

/* A serial number in hex, into buf. */
static void
serial_hex(const ASN1_INTEGER *ai, char *buf, size_t len)
{
	BIGNUM *bn;
	char *hex = NULL;

	if ((bn = ASN1_INTEGER_to_BN(ai, NULL)) != NULL)
		hex = BN_bn2hex(bn);
	snprintf(buf, len, "%s", hex != NULL ? hex : "?");
	OPENSSL_free(hex);
	BN_free(bn);
}

/* The single response whose cert id is the leaf's, in its own hash. */
static int
find_single(struct ocsp_ctx *c, char *why, size_t whylen)
{
	ASN1_OBJECT *md_oid;
	ASN1_INTEGER *serial;
	OCSP_SINGLERESP *sr;
	OCSP_CERTID *mine;
	const OCSP_CERTID *cid;
	const EVP_MD *md;
	char theirs[128], ours[128];
	int i, n, same_serial = 0;

	n = OCSP_resp_count(c->basic);
	for (i = 0; i < n && c->single == NULL; i++) {
		sr = OCSP_resp_get0(c->basic, i);
		cid = OCSP_SINGLERESP_get0_id(sr);
		if (OCSP_id_get0_info(NULL, &md_oid, NULL, &serial,
		    (OCSP_CERTID *)cid) != 1 ||
		    (md = EVP_get_digestbyobj(md_oid)) == NULL)
			continue;
		if (ASN1_INTEGER_cmp(serial,
		    X509_get0_serialNumber(c->leaf)) == 0)
			same_serial = 1;
		if ((mine = OCSP_cert_to_id(md, c->leaf, c->issuer)) == NULL)
			continue;
		if (OCSP_id_cmp(mine, cid) == 0)
			c->single = sr;
		OCSP_CERTID_free(mine);
	}
	if (c->single != NULL)
		return 0;
	if (n == 0)
		return why_set(why, whylen, "it holds no single response");
	if (same_serial)
		return why_set(why, whylen, "it is for a certificate of "
		    "another issuer");
	theirs[0] = '?';
	theirs[1] = '\0';
	cid = OCSP_SINGLERESP_get0_id(OCSP_resp_get0(c->basic, 0));
	if (OCSP_id_get0_info(NULL, NULL, NULL, &serial,
	    (OCSP_CERTID *)cid) == 1)
		serial_hex(serial, theirs, sizeof(theirs));
	serial_hex(X509_get0_serialNumber(c->leaf), ours, sizeof(ours));
	return why_set(why, whylen, "it is for another certificate (serial "
	    "%s; the certificate's is %s)", theirs, ours);
}

/*
 * Signed by the issuer, or by a responder the issuer delegated to (which
 * OCSP_basic_verify() checks): the issuer is the one trust anchor, so an
 * intermediate CA works too (partial chain).
 */
static int
check_signature(struct ocsp_ctx *c, char *why, size_t whylen)
{
	X509_STORE *store;
	const char *reason;
	int rc = -1;

	if ((store = X509_STORE_new()) == NULL)
		return why_set(why, whylen, "out of memory");
	if (X509_STORE_add_cert(store, c->issuer) != 1 ||
	    X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN) != 1)
		why_set(why, whylen, "out of memory");
	else if (OCSP_basic_verify(c->basic, c->chain, store, 0) != 1) {
		reason = ERR_reason_error_string(ERR_peek_last_error());
		why_set(why, whylen, "it is not signed by the certificate's "
		    "issuer or a responder it delegated to (%s)",
		    reason != NULL ? reason : "bad signature");
	} else
		rc = 0;
	X509_STORE_free(store);
	return rc;
}

/* Good, and current at now. */
static int
check_status(struct ocsp_ctx *c, time_t now, char *why, size_t whylen)
{
	ASN1_GENERALIZEDTIME *rev, *thisupd, *nextupd;
	char date[32];
	time_t t;
	int st, reason;

	st = OCSP_single_get0_status(c->single, &reason, &rev, &thisupd,
	    &nextupd);
	if (st == V_OCSP_CERTSTATUS_REVOKED) {
		if (rev == NULL || asn1_date(rev, date, sizeof(date), &t) == -1)
			snprintf(date, sizeof(date), "?");
		return why_set(why, whylen, "the certificate is revoked "
		    "(on %s, reason: %s)", date, reason == -1 ? "none given" :
		    OCSP_crl_reason_str(reason));
	}
	if (st != V_OCSP_CERTSTATUS_GOOD)
		return why_set(why, whylen, "the certificate's status is "
		    "%s", OCSP_cert_status_str(st));
	if (thisupd == NULL || asn1_date(thisupd, date, sizeof(date),
	    &t) == -1)
		return why_set(why, whylen, "bad thisUpdate");
	if (t > now + OCSP_SKEW)
		return why_set(why, whylen, "not valid yet: thisUpdate is "
		    "%s (is the clock right?)", date);
	if (nextupd == NULL) {
		snprintf(why, whylen, "good, no nextUpdate");
		return 0;
	}
	if (asn1_date(nextupd, date, sizeof(date), &t) == -1)
		return why_set(why, whylen, "bad nextUpdate");
	if (t <= now)
		return why_set(why, whylen, "expired: nextUpdate was %s",
		    date);
	snprintf(why, whylen, "good until %s", date);
	return 0;
}

int
ocsp_check(const uint8_t *chain, size_t chainlen, const uint8_t *der,
    size_t derlen, time_t now, char *why, size_t whylen)
{
	struct ocsp_ctx c;
	int rc = -1;

	memset(&c, 0, sizeof(c));
	if (load_chain(&c, chain, chainlen, why, whylen) == 0 &&
	    parse_response(&c, der, derlen, why, whylen) == 0 &&
	    find_single(&c, why, whylen) == 0 &&
	    check_signature(&c, why, whylen) == 0 &&
	    check_status(&c, now, why, whylen) == 0)
		rc = 0;
	ocsp_ctx_free(&c);
	return rc;
}

/* The whole file, if it is a regular one of sane size. */
static int
read_staple(const char *path, uint8_t **derp, size_t *lenp, char *why,
    size_t whylen)
{
	struct stat st;
	size_t off = 0;
	ssize_t n;
	int fd;

	*derp = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY |
	    O_NONBLOCK)) == -1)
		return why_set(why, whylen, "%s", strerror(errno));
	if (fstat(fd, &st) == -1) {
		why_set(why, whylen, "%s", strerror(errno));
		goto err;
	}
	if (!S_ISREG(st.st_mode)) {
		why_set(why, whylen, "not a regular file");
		goto err;
	}
	if (st.st_size <= 0 || st.st_size > SPAWNER_OCSP_MAX) {
		if (st.st_size <= 0)
			why_set(why, whylen, "empty");
		else
			why_set(why, whylen, "larger than %d bytes",
			    SPAWNER_OCSP_MAX);
		goto err;
	}
	if ((*derp = malloc((size_t)st.st_size)) == NULL) {
		why_set(why, whylen, "%s", strerror(errno));
		goto err;
	}
	while (off < (size_t)st.st_size) {
		n = read(fd, *derp + off, (size_t)st.st_size - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			why_set(why, whylen, "%s", n == 0 ? "shorter than "
			    "its size" : strerror(errno));
			goto err;
		}
		off += (size_t)n;
	}
	close(fd);
	*lenp = off;
	return 0;
err:
	free(*derp);
	*derp = NULL;
	close(fd);
	return -1;
}

int
ocsp_staple_load(const char *path, const struct conf_where *where,
    const uint8_t *chain, size_t chainlen, time_t now, uint8_t **derp,
    size_t *lenp, char *msg, size_t msglen)
{
	char why[CONF_ERR_MAX];

	if (read_staple(path, derp, lenp, why, sizeof(why)) == 0 &&
	    ocsp_check(chain, chainlen, *derp, *lenp, now, why,
	    sizeof(why)) == 0) {
		snprintf(msg, msglen, "%s:%d: ocsp-staple \"%s\": %s",
		    where->file, where->line, path, why);
		return 0;
	}
	free(*derp);
	*derp = NULL;
	*lenp = 0;
	snprintf(msg, msglen, "%s:%d: warning: ocsp-staple \"%s\": %s; "
	    "not stapling", where->file, where->line, path, why);
	return -1;
}
