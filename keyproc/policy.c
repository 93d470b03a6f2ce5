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

static int
policy_is_pkcs1(uint32_t alg)
{
	return alg == KP_ALG_RSA_PKCS1_SHA256 ||
	    alg == KP_ALG_RSA_PKCS1_SHA384 || alg == KP_ALG_RSA_PKCS1_SHA512;
}

static int
policy_tls13(uint32_t alg, const uint8_t *tbs, size_t tbslen,
    const char **reasonp)
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
	if (policy_is_pkcs1(alg)) {
		*reasonp = "RSA PKCS#1 v1.5 for a TLS 1.3 input";
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
	for (i = 0; i < sizeof(policy_groups) / sizeof(policy_groups[0]); i++)
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

int
policy_check(uint32_t alg, const uint8_t *tbs, size_t tbslen,
    const char **reasonp)
{
	const char *reason13 = NULL;
	int shape;

	*reasonp = "not a TLS server signature input";
	if (tbslen > KP_TBS_MAX) {
		*reasonp = "input too long";
		return -1;
	}
	if (tbslen >= POLICY_TLS13_PAD + POLICY_TLS13_CTXLEN + 1 &&
	    (shape = policy_tls13(alg, tbs, tbslen, &reason13)) != -1)
		return shape;
	if (tbslen >= TLS12_RANDOMS + 4 &&
	    (shape = policy_tls12(tbs, tbslen, reasonp)) != -1)
		return shape;
	/* 64 spaces: it meant to be TLS 1.3, say why it is not */
	if (reason13 != NULL)
		*reasonp = reason13;
	return -1;
}
