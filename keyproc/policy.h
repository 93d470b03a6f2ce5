/*
 * What keyproc agrees to sign: only the two TLS inputs a server signs.
 * A pure function of the request, so it can be tested alone.
 */
#ifndef POLICY_H
#define POLICY_H

#include <stddef.h>
#include <stdint.h>

enum policy_shape {
	POLICY_TLS13_SERVER_CV = 1,	/* TLS 1.3 server CertificateVerify */
	POLICY_TLS12_SKE = 2		/* TLS 1.2 ECDHE ServerKeyExchange */
};

/* TLS 1.3 (RFC 8446 4.4.3): 64 spaces, the context string, a zero byte. */
#define POLICY_TLS13_PAD	64
#define POLICY_TLS13_SERVER	"TLS 1.3, server CertificateVerify"
#define POLICY_TLS13_CLIENT	"TLS 1.3, client CertificateVerify"
#define POLICY_TLS13_CTXLEN	33

/*
 * policy_check(alg, tbs, tbslen, reasonp):
 * Check that the tbslen bytes of tbs, to be signed with enum kp_alg alg,
 * are one of:
 * - a TLS 1.3 server CertificateVerify input: 64 bytes 0x20, "TLS 1.3,
 *   server CertificateVerify", 0x00, then a transcript hash of 32 or 48
 *   bytes (the length of the cipher suite's hash, which need not be the
 *   signature algorithm's: TLS_AES_256_GCM_SHA384 with
 *   ecdsa_secp256r1_sha256 gives 48); never with RSA PKCS#1 v1.5;
 * - a TLS 1.2 ECDHE ServerKeyExchange input (RFC 8422 5.4): client random
 *   (32), server random (32), curve_type 3 (named_curve), a 2-byte named
 *   group among x25519, x448, secp256r1, secp384r1, secp521r1, a 1-byte
 *   point length equal to that group's (uncompressed points for the NIST
 *   curves), the point, and nothing after it.
 * Return the enum policy_shape, or -1 with a static reason in *reasonp.
 */
int	policy_check(uint32_t alg, const uint8_t *tbs, size_t tbslen,
	    const char **reasonp);

#endif
