/*
 * The "keyproc" OpenSSL 3 provider (kp_provider.h).
 *
 * decoder    the key reference PEM -> a key object: the public key (held
 *            by the "default" provider) and the key's index in keyproc
 * keymgmt    RSA and EC key objects; public-key import and match for
 *            SSL_CTX_check_private_key(), parameters answered by the
 *            public key.  Deliberately no export: an exportable key would
 *            be moved to the default provider, which cannot sign with it.
 * signature  RSA (PKCS#1 v1.5, PSS) and ECDSA, digest-sign only: the whole
 *            to-be-signed message is collected here and sent to keyproc,
 *            which hashes and signs it.  No raw (pre-hashed) signing and no
 *            decryption: keyproc would refuse them anyway.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "lib/msg.h"
#include "keyproc/kp_provider.h"
#include "lib/wire.h"
#include "lib/deadline.h"

#define KP_DEFPROPQ	"provider=default"	/* our own libcrypto calls */
#define KP_PEM_MAX	65536			/* input the decoder reads */

enum kp_keytype {
	KP_KEY_RSA = 1,
	KP_KEY_EC = 2
};

enum kp_md {
	KP_MD_NONE = 0,
	KP_MD_SHA256 = 32,	/* = digest length */
	KP_MD_SHA384 = 48,
	KP_MD_SHA512 = 64
};

struct kp_pkey {
	int		 type;		/* enum kp_keytype */
	int		 isref;		/* keyproc holds the private half */
	uint32_t	 index;		/* key index within the listener */
	EVP_PKEY	*pub;		/* default provider, public key only */
};

struct kp_sigctx {
	int		 type;
	struct kp_pkey	*key;
	int		 md;		/* enum kp_md */
	int		 pad;		/* RSA_PKCS1_PADDING, _PSS_PADDING */
	int		 saltlen;	/* RSA_PSS_SALTLEN_DIGEST or bytes */
	int		 mgf1;		/* enum kp_md; NONE: same as md */
	int		 overflow;	/* more than KP_TBS_MAX bytes came */
	size_t		 tbslen;
	uint8_t		 tbs[KP_TBS_MAX];
};

static OSSL_FUNC_BIO_read_ex_fn	*kp_bio_read_ex;
static int			 kp_chanfd = -1;
static uint32_t			 kp_reqid;
static char			 kp_lasterr[128];	/* kp_provider_error() */
static int			 kp_sign_state;	/* enum chan_sign */
static uint32_t			 kp_sign_us;	/* of the last request */

void
kp_provider_set_channel(int fd)
{
	kp_chanfd = fd;
	if (kp_lasterr[0] != '\0')	/* a spawner's warm-up (warmup.h) */
		kp_lasterr[0] = '\0';
}

void
kp_provider_forget(void)
{
	kp_lasterr[0] = '\0';
	kp_sign_state = CHAN_SIGN_NONE;
	kp_sign_us = 0;
}

static const char *
kp_typename(int type)
{
	return type == KP_KEY_RSA ? "RSA" : "EC";
}

const char *
kp_provider_error(void)
{
	return kp_lasterr[0] != '\0' ? kp_lasterr : NULL;
}

static void __attribute__((format(printf, 1, 2)))
kp_raise(const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(kp_lasterr, sizeof(kp_lasterr), "keyproc: ");
	va_start(ap, fmt);
	vsnprintf(kp_lasterr + n, sizeof(kp_lasterr) - (size_t)n, fmt, ap);
	va_end(ap);
	ERR_raise_data(ERR_LIB_PROV, ERR_R_OPERATION_FAIL, "%s", kp_lasterr);
}

/* ------------------------------------------------------------------ */
/* key objects                                                         */

static struct kp_pkey *
kp_pkey_new(int type)
{
	struct kp_pkey *k;

	if ((k = calloc(1, sizeof(*k))) != NULL)
		k->type = type;
	return k;
}

static void
kp_pkey_free(void *vk)
{
	struct kp_pkey *k = vk;

	if (k == NULL)
		return;
	EVP_PKEY_free(k->pub);
	free(k);
}

static void *
km_rsa_new(void *provctx)
{
	return kp_pkey_new(KP_KEY_RSA);
}

static void *
km_ec_new(void *provctx)
{
	return kp_pkey_new(KP_KEY_EC);
}

/* The decoder hands its object over by reference: take ownership. */
static void *
km_load(const void *reference, size_t reference_sz)
{
	struct kp_pkey *k;

	if (reference == NULL || reference_sz != sizeof(k))
		return NULL;
	memcpy(&k, reference, sizeof(k));
	memset((void *)reference, 0, sizeof(k));
	return k;
}

/* "Has a private key" means "is a reference to a key in keyproc". */
static int
km_has(const void *vk, int selection)
{
	const struct kp_pkey *k = vk;

	if (k == NULL)
		return 0;
	if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0 && !k->isref)
		return 0;
	if ((selection & (OSSL_KEYMGMT_SELECT_PUBLIC_KEY |
	    OSSL_KEYMGMT_SELECT_ALL_PARAMETERS)) != 0 && k->pub == NULL)
		return 0;
	return 1;
}

static int
km_match(const void *vk1, const void *vk2, int selection)
{
	const struct kp_pkey *k1 = vk1, *k2 = vk2;

	if (k1->pub == NULL || k2->pub == NULL)
		return 0;
	if ((selection & OSSL_KEYMGMT_SELECT_KEYPAIR) != 0)
		return EVP_PKEY_eq(k1->pub, k2->pub) == 1;
	return EVP_PKEY_parameters_eq(k1->pub, k2->pub) == 1;
}

/*
 * Public keys only (the certificate's key, for the key/certificate match):
 * this provider never holds a private key.
 */
static int
km_import(void *vk, int selection, const OSSL_PARAM params[])
{
	struct kp_pkey *k = vk;
	EVP_PKEY_CTX *ctx;
	int ok = 0;

	if (k == NULL || k->pub != NULL ||
	    (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0)
		return 0;
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, kp_typename(k->type),
	    KP_DEFPROPQ)) == NULL)
		return 0;
	if (EVP_PKEY_fromdata_init(ctx) == 1 &&
	    EVP_PKEY_fromdata(ctx, &k->pub, EVP_PKEY_PUBLIC_KEY,
	    (OSSL_PARAM *)params) == 1)
		ok = 1;
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

static const OSSL_PARAM *
km_rsa_import_types(int selection)
{
	static const OSSL_PARAM types[] = {
		OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
		OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
		OSSL_PARAM_END
	};

	return types;
}

static const OSSL_PARAM *
km_ec_import_types(int selection)
{
	static const OSSL_PARAM types[] = {
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
		    NULL, 0),
		OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
		OSSL_PARAM_END
	};

	return types;
}

/* Whatever the default provider's keymgmt can answer about a key. */
static const OSSL_PARAM *
km_gettable(int type)
{
	static const OSSL_PARAM *cache[2];
	EVP_KEYMGMT *km;
	int i = type == KP_KEY_RSA ? 0 : 1;

	if (cache[i] != NULL)
		return cache[i];
	if ((km = EVP_KEYMGMT_fetch(NULL, kp_typename(type),
	    KP_DEFPROPQ)) == NULL)
		return NULL;
	cache[i] = EVP_KEYMGMT_gettable_params(km);	/* a static table */
	EVP_KEYMGMT_free(km);
	return cache[i];
}

static const OSSL_PARAM *
km_rsa_gettable(void *provctx)
{
	return km_gettable(KP_KEY_RSA);
}

static const OSSL_PARAM *
km_ec_gettable(void *provctx)
{
	return km_gettable(KP_KEY_EC);
}

/* bits, security-bits, max-size, group, default digest: all public. */
static int
km_get_params(void *vk, OSSL_PARAM params[])
{
	struct kp_pkey *k = vk;

	if (k == NULL || k->pub == NULL)
		return 0;
	return EVP_PKEY_get_params(k->pub, params);
}

static const char *
km_rsa_query(int operation_id)
{
	return operation_id == OSSL_OP_SIGNATURE ? "RSA" : NULL;
}

static const char *
km_ec_query(int operation_id)
{
	return operation_id == OSSL_OP_SIGNATURE ? "ECDSA" : NULL;
}

#define KP_KEYMGMT(pfx)							\
	{ OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))km_##pfx##_new },	\
	{ OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))kp_pkey_free },	\
	{ OSSL_FUNC_KEYMGMT_LOAD, (void (*)(void))km_load },		\
	{ OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))km_has },		\
	{ OSSL_FUNC_KEYMGMT_MATCH, (void (*)(void))km_match },		\
	{ OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void))km_import },	\
	{ OSSL_FUNC_KEYMGMT_IMPORT_TYPES,				\
	    (void (*)(void))km_##pfx##_import_types },			\
	{ OSSL_FUNC_KEYMGMT_GET_PARAMS, (void (*)(void))km_get_params },	\
	{ OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS,				\
	    (void (*)(void))km_##pfx##_gettable },			\
	{ OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME,			\
	    (void (*)(void))km_##pfx##_query },				\
	{ 0, NULL }

static const OSSL_DISPATCH km_rsa_functions[] = { KP_KEYMGMT(rsa) };
static const OSSL_DISPATCH km_ec_functions[] = { KP_KEYMGMT(ec) };

/* ------------------------------------------------------------------ */
/* decoder                                                             */

static void *
dec_rsa_newctx(void *provctx)
{
	static const int type = KP_KEY_RSA;

	return (void *)&type;
}

static void *
dec_ec_newctx(void *provctx)
{
	static const int type = KP_KEY_EC;

	return (void *)&type;
}

static void
dec_freectx(void *vctx)
{
}

/* The whole input: reference PEMs are small, other PEMs are not ours. */
static BIO *
dec_slurp(OSSL_CORE_BIO *cin, uint8_t **bufp)
{
	size_t len = 0, n;
	BIO *mem;

	if ((*bufp = malloc(KP_PEM_MAX)) == NULL)
		return NULL;
	while (len < KP_PEM_MAX &&
	    kp_bio_read_ex(cin, *bufp + len, KP_PEM_MAX - len, &n) && n > 0)
		len += n;
	if ((mem = BIO_new_mem_buf(*bufp, (int)len)) == NULL) {
		free(*bufp);
		*bufp = NULL;
	}
	return mem;
}

/* Body: KP_REF_MAGIC, index (big-endian), SubjectPublicKeyInfo. */
static struct kp_pkey *
dec_parse(int type, const unsigned char *der, long derlen)
{
	const unsigned char *p;
	struct kp_pkey *k;

	if (derlen <= KP_REF_HDRLEN || memcmp(der, KP_REF_MAGIC, 4) != 0)
		return NULL;
	if ((k = kp_pkey_new(type)) == NULL)
		return NULL;
	k->isref = 1;
	k->index = (uint32_t)der[4] << 24 | (uint32_t)der[5] << 16 |
	    (uint32_t)der[6] << 8 | der[7];
	p = der + KP_REF_HDRLEN;
	k->pub = d2i_PUBKEY_ex(NULL, &p, derlen - KP_REF_HDRLEN, NULL,
	    KP_DEFPROPQ);
	if (k->pub == NULL || p != der + derlen ||
	    !EVP_PKEY_is_a(k->pub, kp_typename(type))) {
		kp_pkey_free(k);
		return NULL;
	}
	return k;
}

/*
 * A PEM block labelled KP_REF_PEM_LABEL of our key type becomes a key
 * object; anything else leaves us empty-handed (return 1, no callback),
 * which is not an error: another decoder will take it.
 */
static int
dec_decode(void *vctx, OSSL_CORE_BIO *cin, int selection,
    OSSL_CALLBACK *data_cb, void *data_cbarg,
    OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
	int type = *(const int *)vctx, objtype = OSSL_OBJECT_PKEY, ok = 1;
	char *name = NULL, *header = NULL;
	unsigned char *der = NULL;
	struct kp_pkey *k = NULL;
	uint8_t *buf = NULL;
	OSSL_PARAM params[4];
	long derlen = 0;
	BIO *mem;

	if ((mem = dec_slurp(cin, &buf)) == NULL)
		return 0;
	ERR_set_mark();
	while (PEM_read_bio(mem, &name, &header, &der, &derlen) == 1) {
		if (strcmp(name, KP_REF_PEM_LABEL) == 0 && header[0] == '\0')
			break;
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(der);
		name = header = NULL;
		der = NULL;
	}
	ERR_pop_to_mark();
	if (der != NULL && (k = dec_parse(type, der, derlen)) != NULL) {
		params[0] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE,
		    &objtype);
		params[1] = OSSL_PARAM_construct_utf8_string(
		    OSSL_OBJECT_PARAM_DATA_TYPE, (char *)kp_typename(type), 0);
		params[2] = OSSL_PARAM_construct_octet_string(
		    OSSL_OBJECT_PARAM_REFERENCE, &k, sizeof(k));
		params[3] = OSSL_PARAM_construct_end();
		ok = data_cb(params, data_cbarg);	/* km_load() takes k */
	}
	kp_pkey_free(k);
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(der);
	BIO_free(mem);
	free(buf);
	return ok;
}

static const OSSL_DISPATCH dec_rsa_functions[] = {
	{ OSSL_FUNC_DECODER_NEWCTX, (void (*)(void))dec_rsa_newctx },
	{ OSSL_FUNC_DECODER_FREECTX, (void (*)(void))dec_freectx },
	{ OSSL_FUNC_DECODER_DECODE, (void (*)(void))dec_decode },
	{ 0, NULL }
};

static const OSSL_DISPATCH dec_ec_functions[] = {
	{ OSSL_FUNC_DECODER_NEWCTX, (void (*)(void))dec_ec_newctx },
	{ OSSL_FUNC_DECODER_FREECTX, (void (*)(void))dec_freectx },
	{ OSSL_FUNC_DECODER_DECODE, (void (*)(void))dec_decode },
	{ 0, NULL }
};

/* ------------------------------------------------------------------ */
/* the request to keyproc                                              */

/*
 * Wait until fd is ready for events; -1 with errno ETIMEDOUT once the
 * deadline passes.
 */
static int
kp_wait(int fd, short events, const struct timespec *deadline)
{
	struct pollfd pfd;
	long ms;
	int n;

	for (;;) {
		if ((ms = deadline_ms_left(deadline)) == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		pfd.fd = fd;
		pfd.events = events;
		n = poll(&pfd, 1, (int)ms);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n > 0)
			return 0;
	}
}

static int
kp_rpc_send(const struct kp_sign_req *req, const uint8_t *tbs,
    const struct timespec *deadline)
{
	struct iovec iov[2];

	iov[0].iov_base = (void *)req;
	iov[0].iov_len = sizeof(*req);
	iov[1].iov_base = (void *)tbs;
	iov[1].iov_len = req->tbslen;
	for (;;) {
		if (msg_putv(kp_chanfd, KP_SIGN, iov, 2, -1,
		    MSG_DONTWAIT) == 0)
			return 0;
		if ((errno == EAGAIN || errno == EWOULDBLOCK) &&
		    kp_wait(kp_chanfd, POLLOUT, deadline) == 0)
			continue;
		return -1;
	}
}

/* The reply: our id, KP_OK, a signature no longer than the key allows. */
static int
kp_rpc_recv(uint32_t id, size_t maxlen, uint8_t *sig, size_t *siglenp,
    const struct timespec *deadline)
{
	uint8_t buf[sizeof(struct msg_hdr) + sizeof(struct kp_sign_rep) +
	    KP_SIG_MAX + 1];
	const uint8_t *body = buf + sizeof(struct msg_hdr);
	struct kp_sign_rep rep;
	struct msg_hdr hdr;
	ssize_t n;

	/* Wait first: the answer is never there as soon as the request
	 * went, and a read that says EAGAIN is a system call for nothing. */
	for (n = kp_wait(kp_chanfd, POLLIN, deadline); n == 0;
	    n = kp_wait(kp_chanfd, POLLIN, deadline)) {
		n = msg_get(kp_chanfd, buf, sizeof(buf), &hdr, NULL,
		    MSG_DONTWAIT);
		if (n != -1 || (errno != EAGAIN && errno != EWOULDBLOCK))
			break;
	}
	if (n == -1 && errno == ETIMEDOUT) {
		kp_raise("did not answer in %d.%d s", KP_SIGN_WAIT_MS / 1000,
		    KP_SIGN_WAIT_MS % 1000 / 100);
		return -1;
	}
	if (n == 0 || (n == -1 && errno == ECONNRESET)) {
		/* refused by the policy, or keyproc was killed or replaced
		 * (ECONNRESET: it never read our request) */
		kp_raise("closed the channel without an answer");
		return -1;
	}
	if (n == -1) {
		kp_raise("cannot read the answer: %s", strerror(errno));
		return -1;
	}
	if (hdr.type != KP_SIGNED || hdr.len < sizeof(rep)) {
		kp_raise("malformed answer");
		return -1;
	}
	memcpy(&rep, body, sizeof(rep));
	if (rep.id != id || rep.siglen > KP_SIG_MAX || rep.siglen > maxlen ||
	    !MSG_LEN_IS(&hdr, sizeof(rep) + rep.siglen)) {
		kp_raise("malformed answer");
		return -1;
	}
	if (rep.status != KP_OK || rep.siglen == 0) {
		kp_raise("signature failed");
		return -1;
	}
	memcpy(sig, body + sizeof(rep), rep.siglen);
	*siglenp = rep.siglen;
	return 0;
}

static int
kp_rpc(const struct kp_pkey *k, uint32_t alg, const uint8_t *tbs,
    size_t tbslen, uint8_t *sig, size_t sigsize, size_t *siglenp)
{
	struct kp_sign_req req;
	struct timespec deadline, t0, t1;
	long long us;
	size_t maxlen;
	int size, rc;

	kp_sign_state = CHAN_SIGN_REFUSED;	/* until it is signed */
	if (kp_chanfd == -1) {
		kp_raise("no channel");
		return -1;
	}
	if (tbslen == 0 || tbslen > KP_TBS_MAX) {
		kp_raise("input of a bad length");
		return -1;
	}
	if ((size = EVP_PKEY_get_size(k->pub)) <= 0)
		return -1;
	maxlen = (size_t)size < sigsize ? (size_t)size : sigsize;
	memset(&req, 0, sizeof(req));
	req.id = ++kp_reqid;
	req.key = k->index;
	req.alg = alg;
	req.tbslen = (uint32_t)tbslen;
	deadline_in_ms(&deadline, KP_SIGN_WAIT_MS);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (kp_rpc_send(&req, tbs, &deadline) == -1) {
		/* EPIPE: keyproc is gone; ETIMEDOUT: it does not read */
		kp_raise("cannot send the request: %s", strerror(errno));
		return -1;
	}
	rc = kp_rpc_recv(req.id, maxlen, sig, siglenp, &deadline);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	us = (long long)(t1.tv_sec - t0.tv_sec) * 1000000 +
	    (t1.tv_nsec - t0.tv_nsec) / 1000;
	kp_sign_us = us < 0 ? 0 : us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
	if (rc == 0)
		kp_sign_state = CHAN_SIGN_OK;
	return rc;
}

void
kp_provider_sign_stats(int *state, uint32_t *us)
{
	*state = kp_sign_state;
	*us = kp_sign_us;
}

/* ------------------------------------------------------------------ */
/* signature                                                           */

static int
kp_md_from_name(const char *name)
{
	static const struct {
		const char	*name;
		int		 md;
	} names[] = {
		{ "SHA256", KP_MD_SHA256 }, { "SHA2-256", KP_MD_SHA256 },
		{ "SHA-256", KP_MD_SHA256 },
		{ "2.16.840.1.101.3.4.2.1", KP_MD_SHA256 },
		{ "SHA384", KP_MD_SHA384 }, { "SHA2-384", KP_MD_SHA384 },
		{ "SHA-384", KP_MD_SHA384 },
		{ "2.16.840.1.101.3.4.2.2", KP_MD_SHA384 },
		{ "SHA512", KP_MD_SHA512 }, { "SHA2-512", KP_MD_SHA512 },
		{ "SHA-512", KP_MD_SHA512 },
		{ "2.16.840.1.101.3.4.2.3", KP_MD_SHA512 },
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(name, names[i].name) == 0)
			return names[i].md;
	return KP_MD_NONE;
}

static const char *
kp_md_name(int md)
{
	switch (md) {
	case KP_MD_SHA256:
		return "SHA2-256";
	case KP_MD_SHA384:
		return "SHA2-384";
	case KP_MD_SHA512:
		return "SHA2-512";
	}
	return "";
}

/* (key type, padding, digest) -> enum kp_alg, or 0: keyproc can't. */
static uint32_t
kp_alg(const struct kp_sigctx *s)
{
	static const uint32_t ec[] = { KP_ALG_ECDSA_SHA256,
	    KP_ALG_ECDSA_SHA384, KP_ALG_ECDSA_SHA512 };
	static const uint32_t pkcs1[] = { KP_ALG_RSA_PKCS1_SHA256,
	    KP_ALG_RSA_PKCS1_SHA384, KP_ALG_RSA_PKCS1_SHA512 };
	static const uint32_t pss[] = { KP_ALG_RSA_PSS_SHA256,
	    KP_ALG_RSA_PSS_SHA384, KP_ALG_RSA_PSS_SHA512 };
	int i;

	switch (s->md) {
	case KP_MD_SHA256:
		i = 0;
		break;
	case KP_MD_SHA384:
		i = 1;
		break;
	case KP_MD_SHA512:
		i = 2;
		break;
	default:
		return 0;
	}
	if (s->type == KP_KEY_EC)
		return ec[i];
	if (s->pad == RSA_PKCS1_PADDING)
		return pkcs1[i];
	if (s->pad != RSA_PKCS1_PSS_PADDING ||
	    (s->saltlen != RSA_PSS_SALTLEN_DIGEST && s->saltlen != s->md) ||
	    (s->mgf1 != KP_MD_NONE && s->mgf1 != s->md))
		return 0;
	return pss[i];
}

static void *
sig_newctx(int type)
{
	struct kp_sigctx *s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->type = type;
	s->pad = RSA_PKCS1_PADDING;
	s->saltlen = RSA_PSS_SALTLEN_DIGEST;
	return s;
}

static void *
sig_rsa_newctx(void *provctx, const char *propq)
{
	return sig_newctx(KP_KEY_RSA);
}

static void *
sig_ec_newctx(void *provctx, const char *propq)
{
	return sig_newctx(KP_KEY_EC);
}

static void
sig_freectx(void *vs)
{
	free(vs);
}

/* EVP_DigestSignFinal() signs with a copy unless told otherwise. */
static void *
sig_dupctx(void *vs)
{
	struct kp_sigctx *n;

	if ((n = malloc(sizeof(*n))) != NULL)
		memcpy(n, vs, sizeof(*n));
	return n;
}

static int
sig_param_pad(struct kp_sigctx *s, const OSSL_PARAM *p)
{
	const char *str;

	if (p->data_type == OSSL_PARAM_UTF8_STRING) {
		if (!OSSL_PARAM_get_utf8_string_ptr(p, &str))
			return 0;
		if (strcmp(str, OSSL_PKEY_RSA_PAD_MODE_PKCSV15) == 0)
			s->pad = RSA_PKCS1_PADDING;
		else if (strcmp(str, OSSL_PKEY_RSA_PAD_MODE_PSS) == 0)
			s->pad = RSA_PKCS1_PSS_PADDING;
		else
			return 0;
		return 1;
	}
	if (!OSSL_PARAM_get_int(p, &s->pad))
		return 0;
	return s->pad == RSA_PKCS1_PADDING || s->pad == RSA_PKCS1_PSS_PADDING;
}

/* Only "digest" or the digest's length will do; checked at signing. */
static int
sig_param_saltlen(struct kp_sigctx *s, const OSSL_PARAM *p)
{
	const char *str;
	char *end;
	long n;

	if (p->data_type != OSSL_PARAM_UTF8_STRING)
		return OSSL_PARAM_get_int(p, &s->saltlen);
	if (!OSSL_PARAM_get_utf8_string_ptr(p, &str))
		return 0;
	if (strcmp(str, OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST) == 0) {
		s->saltlen = RSA_PSS_SALTLEN_DIGEST;
		return 1;
	}
	errno = 0;
	n = strtol(str, &end, 10);
	if (*str == '\0' || *end != '\0' || errno != 0 || n < 0 || n > 1024)
		return 0;
	s->saltlen = (int)n;
	return 1;
}

static int
sig_param_md(int *mdp, const OSSL_PARAM *p)
{
	const char *str;

	if (!OSSL_PARAM_get_utf8_string_ptr(p, &str) ||
	    (*mdp = kp_md_from_name(str)) == KP_MD_NONE)
		return 0;
	return 1;
}

static int
sig_set_ctx_params(void *vs, const OSSL_PARAM params[])
{
	struct kp_sigctx *s = vs;
	const OSSL_PARAM *p;

	if (params == NULL)
		return 1;
	if ((p = OSSL_PARAM_locate_const(params,
	    OSSL_SIGNATURE_PARAM_DIGEST)) != NULL && !sig_param_md(&s->md, p))
		return 0;
	if (s->type != KP_KEY_RSA)
		return 1;
	if ((p = OSSL_PARAM_locate_const(params,
	    OSSL_SIGNATURE_PARAM_PAD_MODE)) != NULL && !sig_param_pad(s, p))
		return 0;
	if ((p = OSSL_PARAM_locate_const(params,
	    OSSL_SIGNATURE_PARAM_PSS_SALTLEN)) != NULL &&
	    !sig_param_saltlen(s, p))
		return 0;
	if ((p = OSSL_PARAM_locate_const(params,
	    OSSL_SIGNATURE_PARAM_MGF1_DIGEST)) != NULL &&
	    !sig_param_md(&s->mgf1, p))
		return 0;
	return 1;
}

/* EVP_PKEY_CTX_set_rsa_padding() and friends check this list first. */
static const OSSL_PARAM *
sig_rsa_settable(void *vs, void *provctx)
{
	static const OSSL_PARAM table[] = {
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
		OSSL_PARAM_END
	};

	return table;
}

static const OSSL_PARAM *
sig_ec_settable(void *vs, void *provctx)
{
	static const OSSL_PARAM table[] = {
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, NULL, 0),
		OSSL_PARAM_END
	};

	return table;
}

static int
sig_get_ctx_params(void *vs, OSSL_PARAM params[])
{
	struct kp_sigctx *s = vs;
	OSSL_PARAM *p;

	if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_DIGEST)) != NULL &&
	    !OSSL_PARAM_set_utf8_string(p, kp_md_name(s->md)))
		return 0;
	if ((p = OSSL_PARAM_locate(params,
	    OSSL_SIGNATURE_PARAM_PAD_MODE)) != NULL &&
	    !OSSL_PARAM_set_int(p, s->pad))
		return 0;
	return 1;
}

static const OSSL_PARAM *
sig_gettable(void *vs, void *provctx)
{
	static const OSSL_PARAM table[] = {
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
		OSSL_PARAM_int(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL),
		OSSL_PARAM_END
	};

	return table;
}

static int
sig_digest_sign_init(void *vs, const char *mdname, void *vk,
    const OSSL_PARAM params[])
{
	struct kp_sigctx *s = vs;
	struct kp_pkey *k = vk;

	if (k != NULL)
		s->key = k;
	if (s->key == NULL || !s->key->isref || s->key->type != s->type)
		return 0;	/* a public key only: nothing to sign with */
	s->tbslen = 0;
	s->overflow = 0;
	if (mdname != NULL && mdname[0] != '\0') {
		if ((s->md = kp_md_from_name(mdname)) == KP_MD_NONE)
			return 0;
	} else if (s->md == KP_MD_NONE)
		s->md = KP_MD_SHA256;
	return sig_set_ctx_params(s, params);
}

/* Collect the message: keyproc must see all of it to check it. */
static int
sig_digest_sign_update(void *vs, const unsigned char *data, size_t len)
{
	struct kp_sigctx *s = vs;

	if (s->overflow || len > sizeof(s->tbs) - s->tbslen) {
		s->overflow = 1;
		kp_raise("input too long");
		return 0;
	}
	memcpy(s->tbs + s->tbslen, data, len);
	s->tbslen += len;
	return 1;
}

static int
sig_sign_tbs(struct kp_sigctx *s, unsigned char *sig, size_t *siglen,
    size_t sigsize, const unsigned char *tbs, size_t tbslen)
{
	uint32_t alg;
	int size;

	if ((size = EVP_PKEY_get_size(s->key->pub)) <= 0)
		return 0;
	if (sig == NULL) {
		*siglen = (size_t)size;
		return 1;
	}
	if ((alg = kp_alg(s)) == 0) {
		kp_raise("signature parameters it does not offer");
		return 0;
	}
	return kp_rpc(s->key, alg, tbs, tbslen, sig, sigsize, siglen) == 0;
}

static int
sig_digest_sign_final(void *vs, unsigned char *sig, size_t *siglen,
    size_t sigsize)
{
	struct kp_sigctx *s = vs;

	if (s->overflow)
		return 0;
	return sig_sign_tbs(s, sig, siglen, sigsize, s->tbs, s->tbslen);
}

/* EVP_DigestSign() in one call, as libssl makes it. */
static int
sig_digest_sign(void *vs, unsigned char *sig, size_t *siglen, size_t sigsize,
    const unsigned char *tbs, size_t tbslen)
{
	return sig_sign_tbs(vs, sig, siglen, sigsize, tbs, tbslen);
}

#define KP_SIGNATURE(pfx)						\
	{ OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))sig_##pfx##_newctx },	\
	{ OSSL_FUNC_SIGNATURE_FREECTX, (void (*)(void))sig_freectx },	\
	{ OSSL_FUNC_SIGNATURE_DUPCTX, (void (*)(void))sig_dupctx },	\
	{ OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT,				\
	    (void (*)(void))sig_digest_sign_init },			\
	{ OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE,			\
	    (void (*)(void))sig_digest_sign_update },			\
	{ OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL,				\
	    (void (*)(void))sig_digest_sign_final },			\
	{ OSSL_FUNC_SIGNATURE_DIGEST_SIGN,				\
	    (void (*)(void))sig_digest_sign },				\
	{ OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS,				\
	    (void (*)(void))sig_get_ctx_params },			\
	{ OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS,			\
	    (void (*)(void))sig_gettable },				\
	{ OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS,				\
	    (void (*)(void))sig_set_ctx_params },			\
	{ OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS,			\
	    (void (*)(void))sig_##pfx##_settable },			\
	{ 0, NULL }

static const OSSL_DISPATCH sig_rsa_functions[] = { KP_SIGNATURE(rsa) };
static const OSSL_DISPATCH sig_ec_functions[] = { KP_SIGNATURE(ec) };

/* ------------------------------------------------------------------ */
/* the provider                                                        */

/* The default provider's names: libssl asks EVP_PKEY_is_a(pkey, "RSA"). */
#define KP_RSA_NAMES	"RSA:rsaEncryption:1.2.840.113549.1.1.1"
#define KP_EC_NAMES	"EC:id-ecPublicKey:1.2.840.10045.2.1"
#define KP_PROPS	"provider=" KP_PROVIDER_NAME

static const OSSL_ALGORITHM kp_decoders[] = {
	{ KP_RSA_NAMES, KP_PROPS ",input=pem", dec_rsa_functions,
	    "recluse key reference" },
	{ KP_EC_NAMES, KP_PROPS ",input=pem", dec_ec_functions,
	    "recluse key reference" },
	{ NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM kp_keymgmt[] = {
	{ KP_RSA_NAMES, KP_PROPS, km_rsa_functions, "keyproc RSA key" },
	{ KP_EC_NAMES, KP_PROPS, km_ec_functions, "keyproc EC key" },
	{ NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM kp_signatures[] = {
	{ KP_RSA_NAMES, KP_PROPS, sig_rsa_functions, "keyproc RSA" },
	{ "ECDSA", KP_PROPS, sig_ec_functions, "keyproc ECDSA" },
	{ NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM *
kp_query(void *provctx, int operation_id, int *no_cache)
{
	*no_cache = 0;
	switch (operation_id) {
	case OSSL_OP_DECODER:
		return kp_decoders;
	case OSSL_OP_KEYMGMT:
		return kp_keymgmt;
	case OSSL_OP_SIGNATURE:
		return kp_signatures;
	}
	return NULL;
}

static const OSSL_DISPATCH kp_dispatch[] = {
	{ OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))kp_query },
	{ 0, NULL }
};

static int
kp_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
    const OSSL_DISPATCH **out, void **provctx)
{
	for (; in->function_id != 0; in++)
		if (in->function_id == OSSL_FUNC_BIO_READ_EX)
			kp_bio_read_ex = OSSL_FUNC_BIO_read_ex(in);
	if (kp_bio_read_ex == NULL)
		return 0;
	*out = kp_dispatch;
	*provctx = (void *)handle;
	return 1;
}

int
kp_provider_load(void)
{
	/*
	 * Loading a provider by hand turns off the implicit load of
	 * "default": load it first, and prefer it for everything that is
	 * not a key reference.
	 */
	if (OSSL_PROVIDER_add_builtin(NULL, KP_PROVIDER_NAME,
	    kp_provider_init) != 1 ||
	    OSSL_PROVIDER_load(NULL, "default") == NULL ||
	    OSSL_PROVIDER_load(NULL, KP_PROVIDER_NAME) == NULL ||
	    EVP_set_default_properties(NULL, "?provider=default") != 1)
		return -1;
	return 0;
}
