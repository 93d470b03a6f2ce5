/*
 * What keyproc agrees to sign: see policy.h.
 *
 * The two shapes cannot be confused: a TLS 1.3 input is 130 or 146 bytes,
 * a TLS 1.2 one 100 (x25519), 124 (x448), 133 (P-256), 165 (P-384) or
 * 201 (P-521).  Neither is a prefix of an X.509 structure, a JWS, a code
 * signature or a TLS client CertificateVerify, so a signature keyproc
 * makes is only good as a TLS server signature.
 */
#include <string.h>

#include "lib/util.h"
#include "lib/wire.h"
#include "keyproc/policy.h"

#define TLS12_RANDOMS		64	/* client random, server random */
#define TLS12_NAMED_CURVE	3	/* ECCurveType named_curve */

static const struct policy_group {
	uint16_t	group;		/* TLS NamedGroup */
	uint8_t		pointlen;	/* its ECPoint length */
	uint8_t		uncompressed;	/* first point byte must be 4 */
} policy_groups[] = {
	{ 23, 65, 1 },		/* secp256r1 */
	{ 24, 97, 1 },		/* secp384r1 */
	{ 25, 133, 1 },		/* secp521r1 */
	{ 29, 32, 0 },		/* x25519 */
	{ 30, 56, 0 },		/* x448 */
};

/* What the policy needs of each enum kp_alg. */
static const struct policy_alg {
	uint32_t	alg;
	uint8_t		ecdsa;		/* else RSA */
	uint8_t		pkcs1;		/* RSA PKCS#1 v1.5 */
	uint16_t	hashbits;
} policy_algs[] = {
	{ KP_ALG_RSA_PKCS1_SHA256, 0, 1, 256 },
	{ KP_ALG_RSA_PKCS1_SHA384, 0, 1, 384 },
	{ KP_ALG_RSA_PKCS1_SHA512, 0, 1, 512 },
	{ KP_ALG_RSA_PSS_SHA256, 0, 0, 256 },
	{ KP_ALG_RSA_PSS_SHA384, 0, 0, 384 },
	{ KP_ALG_RSA_PSS_SHA512, 0, 0, 512 },
	{ KP_ALG_ECDSA_SHA256, 1, 0, 256 },
	{ KP_ALG_ECDSA_SHA384, 1, 0, 384 },
	{ KP_ALG_ECDSA_SHA512, 1, 0, 512 },
};

static const struct policy_alg *
policy_alg_find(uint32_t alg)
{
	size_t i;

	for (i = 0; i < NELEM(policy_algs); i++)
		if (policy_algs[i].alg == alg)
			return &policy_algs[i];
	return NULL;
}

/* The algorithm is one of the key's kind, in any TLS version. */
static int
policy_fits_key(int key, const struct policy_alg *a, const char **reasonp)
{
	switch (key) {
	case POLICY_KEY_RSA:
		if (a->ecdsa) {
			*reasonp = "ECDSA algorithm for an RSA key";
			return -1;
		}
		return 0;
	case POLICY_KEY_P256:
	case POLICY_KEY_P384:
		if (!a->ecdsa) {
			*reasonp = "RSA algorithm for an EC key";
			return -1;
		}
		return 0;
	default:
		*reasonp = "unknown kind of key";
		return -1;
	}
}

/*
 * TLS 1.3 names a signature scheme, not a hash and a key type (RFC 8446
 * 4.2.3): no PKCS#1 v1.5, and ECDSA schemes are bound to their curve.
 */
static int
policy_tls13_alg(int key, const struct policy_alg *a, const char **reasonp)
{
	if (a->pkcs1) {
		*reasonp = "RSA PKCS#1 v1.5 for a TLS 1.3 input";
		return -1;
	}
	if (key == POLICY_KEY_P256 && a->hashbits != 256) {
		*reasonp = "TLS 1.3 ECDSA on P-256 with a hash other than "
		    "SHA-256";
		return -1;
	}
	if (key == POLICY_KEY_P384 && a->hashbits != 384) {
		*reasonp = "TLS 1.3 ECDSA on P-384 with a hash other than "
		    "SHA-384";
		return -1;
	}
	return 0;
}

static int
policy_tls13(const uint8_t *tbs, size_t tbslen, const char **reasonp)
{
	const size_t head = POLICY_TLS13_PAD + POLICY_TLS13_CTXLEN + 1;
	size_t i;

	for (i = 0; i < POLICY_TLS13_PAD; i++)
		if (tbs[i] != 0x20)
			return -1;
	if (memcmp(tbs + POLICY_TLS13_PAD, POLICY_TLS13_CLIENT,
	    POLICY_TLS13_CTXLEN) == 0) {
		*reasonp = "TLS 1.3 client CertificateVerify context";
		return -1;
	}
	if (memcmp(tbs + POLICY_TLS13_PAD, POLICY_TLS13_SERVER,
	    POLICY_TLS13_CTXLEN) != 0 || tbs[head - 1] != 0) {
		*reasonp = "TLS 1.3 input with a bad context string";
		return -1;
	}
	if (tbslen - head != 32 && tbslen - head != 48) {
		*reasonp = "TLS 1.3 transcript hash of a bad length";
		return -1;
	}
	return POLICY_TLS13_SERVER_CV;
}

static int
policy_tls12(const uint8_t *tbs, size_t tbslen, const char **reasonp)
{
	const struct policy_group *g = NULL;
	const uint8_t *p = tbs + TLS12_RANDOMS;
	uint16_t group;
	size_t i;

	if (p[0] != TLS12_NAMED_CURVE) {
		*reasonp = "TLS 1.2 input without a named curve";
		return -1;
	}
	group = (uint16_t)(p[1] << 8 | p[2]);
	for (i = 0; i < NELEM(policy_groups); i++)
		if (policy_groups[i].group == group)
			g = &policy_groups[i];
	if (g == NULL) {
		*reasonp = "TLS 1.2 input with an unknown group";
		return -1;
	}
	if (p[3] != g->pointlen) {
		*reasonp = "TLS 1.2 point length does not fit its group";
		return -1;
	}
	if (tbslen - TLS12_RANDOMS - 4 != g->pointlen) {
		*reasonp = "TLS 1.2 input length does not fit its point";
		return -1;
	}
	if (g->uncompressed && p[4] != 4) {
		*reasonp = "TLS 1.2 point not uncompressed";
		return -1;
	}
	return POLICY_TLS12_SKE;
}

/* Which of the two inputs tbs is, whatever the algorithm. */
static int
policy_shape(const uint8_t *tbs, size_t tbslen, const char **reasonp)
{
	const char *reason13 = NULL;
	int shape;

	*reasonp = "not a TLS server signature input";
	if (tbslen > KP_TBS_MAX) {
		*reasonp = "input too long";
		return -1;
	}
	if (tbslen >= POLICY_TLS13_PAD + POLICY_TLS13_CTXLEN + 1 &&
	    (shape = policy_tls13(tbs, tbslen, &reason13)) != -1)
		return shape;
	if (tbslen >= TLS12_RANDOMS + 4 &&
	    (shape = policy_tls12(tbs, tbslen, reasonp)) != -1)
		return shape;
	/* 64 spaces: it meant to be TLS 1.3, say why it is not */
	if (reason13 != NULL)
		*reasonp = reason13;
	return -1;
}

int
policy_alg_known(uint32_t alg)
{
	return policy_alg_find(alg) != NULL;
}

int
policy_check(uint32_t protocols, int key, uint32_t alg, const uint8_t *tbs,
    size_t tbslen, const char **reasonp)
{
	const struct policy_alg *a;
	int shape;

	if ((a = policy_alg_find(alg)) == NULL) {
		*reasonp = "unknown algorithm";
		return -1;
	}
	if (policy_fits_key(key, a, reasonp) == -1 ||
	    (shape = policy_shape(tbs, tbslen, reasonp)) == -1)
		return -1;
	if (shape == POLICY_TLS13_SERVER_CV) {
		if (!(protocols & KP_PROTO_TLS13)) {
			*reasonp = "TLS 1.3 input for a listener without "
			    "TLS 1.3";
			return -1;
		}
		if (policy_tls13_alg(key, a, reasonp) == -1)
			return -1;
	} else if (!(protocols & KP_PROTO_TLS12)) {
		*reasonp = "TLS 1.2 input for a listener without TLS 1.2";
		return -1;
	}
	return shape;
}
