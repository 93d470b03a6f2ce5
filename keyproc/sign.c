/*
 * Private-key operations: see sign.h.
 *
 * Everything here runs in a library context of its own with only the
 * "default" provider, so the "keyproc" provider (loaded into the default
 * context of the parent) never sees a real private key, and a real key
 * never reaches the provider.
 */
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "lib/wire.h"
#include "keyproc/sign.h"

#define SIGN_RSA_MIN	2048
#define SIGN_RSA_MAX	4096

struct sign_key {
	EVP_PKEY	*pkey;
	int		 type;		/* enum sign_key_type */
};

/* The closed set of algorithms: enum kp_alg -> key type, digest, padding. */
static const struct sign_alg {
	uint32_t	 alg;
	int		 type;
	const char	*md;
	int		 pad;		/* RSA only */
	const char	*name;
} sign_algs[] = {
	{ KP_ALG_RSA_PKCS1_SHA256, SIGN_KEY_RSA, "SHA2-256", RSA_PKCS1_PADDING,
	    "rsa_pkcs1_sha256" },
	{ KP_ALG_RSA_PKCS1_SHA384, SIGN_KEY_RSA, "SHA2-384", RSA_PKCS1_PADDING,
	    "rsa_pkcs1_sha384" },
	{ KP_ALG_RSA_PKCS1_SHA512, SIGN_KEY_RSA, "SHA2-512", RSA_PKCS1_PADDING,
	    "rsa_pkcs1_sha512" },
	{ KP_ALG_RSA_PSS_SHA256, SIGN_KEY_RSA, "SHA2-256",
	    RSA_PKCS1_PSS_PADDING, "rsa_pss_rsae_sha256" },
	{ KP_ALG_RSA_PSS_SHA384, SIGN_KEY_RSA, "SHA2-384",
	    RSA_PKCS1_PSS_PADDING, "rsa_pss_rsae_sha384" },
	{ KP_ALG_RSA_PSS_SHA512, SIGN_KEY_RSA, "SHA2-512",
	    RSA_PKCS1_PSS_PADDING, "rsa_pss_rsae_sha512" },
	{ KP_ALG_ECDSA_SHA256, SIGN_KEY_EC, "SHA2-256", 0, "ecdsa_sha256" },
	{ KP_ALG_ECDSA_SHA384, SIGN_KEY_EC, "SHA2-384", 0, "ecdsa_sha384" },
	{ KP_ALG_ECDSA_SHA512, SIGN_KEY_EC, "SHA2-512", 0, "ecdsa_sha512" },
};

static OSSL_LIB_CTX	*sign_libctx;

static const struct sign_alg *
sign_alg_find(uint32_t alg)
{
	size_t i;

	for (i = 0; i < sizeof(sign_algs) / sizeof(sign_algs[0]); i++)
		if (sign_algs[i].alg == alg)
			return &sign_algs[i];
	return NULL;
}

/* Our own library context, made once, with only the default provider. */
static OSSL_LIB_CTX *
sign_ctx(void)
{
	if (sign_libctx != NULL)
		return sign_libctx;
	if ((sign_libctx = OSSL_LIB_CTX_new()) == NULL)
		return NULL;
	if (OSSL_PROVIDER_load(sign_libctx, "default") == NULL) {
		OSSL_LIB_CTX_free(sign_libctx);
		sign_libctx = NULL;
	}
	return sign_libctx;
}

/* The whole file, from offset 0, into a buffer the caller wipes. */
static int
sign_read_fd(int fd, uint8_t *buf, size_t bufsize, size_t *lenp,
    const char *path, char *err, size_t errlen)
{
	size_t len = 0;
	ssize_t n;

	for (;;) {
		if (len == bufsize) {
			snprintf(err, errlen, "%s: key file larger than %zu bytes",
			    path, bufsize - 1);
			return -1;
		}
		n = pread(fd, buf + len, bufsize - len, (off_t)len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	*lenp = len;
	return 0;
}

/* A passphrase callback that only notes it was asked: no encrypted keys. */
static int
sign_no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	*(int *)arg = 1;
	return -1;
}

static EVP_PKEY *
sign_decode(const uint8_t *pem, size_t len, const char *path, char *err,
    size_t errlen)
{
	EVP_PKEY *pkey = NULL;
	BIO *bio;
	int asked = 0;

	if (len > INT_MAX || (bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	ERR_set_mark();
	pkey = PEM_read_bio_PrivateKey_ex(bio, NULL, sign_no_passphrase,
	    &asked, sign_ctx(), NULL);
	ERR_pop_to_mark();
	BIO_free(bio);
	if (pkey == NULL && asked)
		snprintf(err, errlen, "%s: encrypted private keys are not "
		    "supported", path);
	else if (pkey == NULL)
		snprintf(err, errlen, "%s: no PEM private key found", path);
	return pkey;
}

/* RSA 2048..4096 bits, EC on P-256 or P-384; nothing else. */
static int
sign_check_type(EVP_PKEY *pkey, const char *path, char *err, size_t errlen)
{
	char group[64];
	size_t glen;
	int bits;

	if (EVP_PKEY_is_a(pkey, "RSA")) {
		bits = EVP_PKEY_get_bits(pkey);
		if (bits < SIGN_RSA_MIN || bits > SIGN_RSA_MAX) {
			snprintf(err, errlen, "%s: RSA key of %d bits (only %d "
			    "to %d)", path, bits, SIGN_RSA_MIN, SIGN_RSA_MAX);
			return -1;
		}
		return SIGN_KEY_RSA;
	}
	if (EVP_PKEY_is_a(pkey, "EC")) {
		if (EVP_PKEY_get_group_name(pkey, group, sizeof(group),
		    &glen) != 1)
			snprintf(group, sizeof(group), "explicit parameters");
		if (strcmp(group, "prime256v1") == 0 ||
		    strcmp(group, "secp384r1") == 0)
			return SIGN_KEY_EC;
		snprintf(err, errlen, "%s: EC key on curve %s (only P-256 and "
		    "P-384)", path, group);
		return -1;
	}
	snprintf(err, errlen, "%s: unsupported key type %s (only RSA and EC)",
	    path, EVP_PKEY_get0_type_name(pkey) != NULL ?
	    EVP_PKEY_get0_type_name(pkey) : "unknown");
	return -1;
}

static int
sign_check_match(EVP_PKEY *pkey, const uint8_t *spki, size_t spkilen,
    const char *path, char *err, size_t errlen)
{
	const unsigned char *p = spki;
	EVP_PKEY *pub = NULL;
	int eq;

	if (spkilen > 0 && spkilen <= KP_SPKI_MAX)
		pub = d2i_PUBKEY_ex(NULL, &p, (long)spkilen, sign_ctx(), NULL);
	if (pub == NULL || p != spki + spkilen) {
		EVP_PKEY_free(pub);
		ERR_clear_error();
		snprintf(err, errlen, "%s: the certificate's public key is "
		    "not readable", path);
		return -1;
	}
	eq = EVP_PKEY_eq(pkey, pub);
	EVP_PKEY_free(pub);
	if (eq != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "%s: key does not match the certificate",
		    path);
		return -1;
	}
	return 0;
}

struct sign_key *
sign_key_load(int fd, const char *path, const uint8_t *spki, size_t spkilen,
    char *err, size_t errlen)
{
	struct sign_key *k = NULL;
	EVP_PKEY *pkey = NULL;
	uint8_t *buf;
	size_t len;
	int type;

	if (sign_ctx() == NULL) {
		snprintf(err, errlen, "%s: cannot set up libcrypto", path);
		return NULL;
	}
	if ((buf = malloc(SIGN_FILE_MAX)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	if (sign_read_fd(fd, buf, SIGN_FILE_MAX, &len, path, err,
	    errlen) == -1)
		goto err;
	if ((pkey = sign_decode(buf, len, path, err, errlen)) == NULL)
		goto err;
	if ((type = sign_check_type(pkey, path, err, errlen)) == -1 ||
	    sign_check_match(pkey, spki, spkilen, path, err, errlen) == -1)
		goto err;
	if ((k = calloc(1, sizeof(*k))) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto err;
	}
	k->pkey = pkey;
	k->type = type;
	OPENSSL_cleanse(buf, SIGN_FILE_MAX);
	free(buf);
	return k;
err:
	EVP_PKEY_free(pkey);
	OPENSSL_cleanse(buf, SIGN_FILE_MAX);
	free(buf);
	return NULL;
}

int
sign_key_type(const struct sign_key *k)
{
	return k->type;
}

size_t
sign_key_size(const struct sign_key *k)
{
	int n = EVP_PKEY_get_size(k->pkey);

	return n > 0 ? (size_t)n : 0;
}

const char *
sign_alg_name(uint32_t alg)
{
	const struct sign_alg *a = sign_alg_find(alg);

	return a != NULL ? a->name : NULL;
}

int
sign_key_bits(const struct sign_key *k)
{
	return EVP_PKEY_get_bits(k->pkey);
}

/* RSA padding, PSS salt (= digest length) and MGF1 digest (= digest). */
static int
sign_set_rsa(EVP_PKEY_CTX *pctx, const struct sign_alg *a)
{
	if (EVP_PKEY_CTX_set_rsa_padding(pctx, a->pad) <= 0)
		return -1;
	if (a->pad != RSA_PKCS1_PSS_PADDING)
		return 0;
	if (EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, a->md, NULL) <= 0)
		return -1;
	return 0;
}

int
sign_key_sign(struct sign_key *k, uint32_t alg, const uint8_t *tbs,
    size_t tbslen, uint8_t *sig, size_t sigsize, size_t *siglenp,
    char *err, size_t errlen)
{
	const struct sign_alg *a;
	EVP_MD_CTX *mdctx = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	size_t siglen = sigsize;
	int rc = -1;

	if ((a = sign_alg_find(alg)) == NULL || a->type != k->type) {
		snprintf(err, errlen, "algorithm %u does not fit the key", alg);
		return -1;
	}
	if (sigsize < sign_key_size(k)) {
		snprintf(err, errlen, "signature buffer too small");
		return -1;
	}
	if ((mdctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit_ex(mdctx, &pctx, a->md, sign_ctx(), NULL,
	    k->pkey, NULL) != 1 ||
	    (k->type == SIGN_KEY_RSA && sign_set_rsa(pctx, a) == -1) ||
	    EVP_DigestSign(mdctx, sig, &siglen, tbs, tbslen) != 1 ||
	    siglen > sigsize) {
		snprintf(err, errlen, "%s signature failed: %s", a->name,
		    ERR_reason_error_string(ERR_peek_last_error()) != NULL ?
		    ERR_reason_error_string(ERR_peek_last_error()) : "?");
		ERR_clear_error();
		goto out;
	}
	*siglenp = siglen;
	rc = 0;
out:
	EVP_MD_CTX_free(mdctx);
	return rc;
}

void
sign_key_free(struct sign_key *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}
