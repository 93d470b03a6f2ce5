/*
 * What keyproc agrees to sign: only the two TLS inputs a server signs,
 * only for the TLS versions the child's listener allows, and only with an
 * algorithm TLS allows for the key.  A pure function of the request and of
 * what the parent said of the listener, so it can be tested alone.
 */
#ifndef POLICY_H
#define POLICY_H

#include <stddef.h>
#include <stdint.h>

enum policy_shape {
	POLICY_TLS13_SERVER_CV = 1,	/* TLS 1.3 server CertificateVerify */
	POLICY_TLS12_SKE = 2		/* TLS 1.2 ECDHE ServerKeyExchange */
};

/* The keys keyproc loads (sign.h), as far as the policy cares. */
enum policy_key {
	POLICY_KEY_RSA = 1,
	POLICY_KEY_P256 = 2,
	POLICY_KEY_P384 = 3
};

/* TLS 1.3 (RFC 8446 4.4.3): 64 spaces, the context string, a zero byte. */
#define POLICY_TLS13_PAD	64
#define POLICY_TLS13_SERVER	"TLS 1.3, server CertificateVerify"
#define POLICY_TLS13_CLIENT	"TLS 1.3, client CertificateVerify"
#define POLICY_TLS13_CTXLEN	33

/*
 * policy_check(protocols, key, alg, tbs, tbslen, reasonp):
 * Check that the tbslen bytes of tbs may be signed with enum kp_alg alg by
 * a key of kind key (enum policy_key) for a listener that allows the TLS
 * versions protocols (KP_PROTO_* bits, as the parent sent them):
 * - alg is one of the key's kind: RSA PKCS#1 v1.5 or PSS for RSA, ECDSA
 *   for EC;
 * - tbs is one of:
 *   - a TLS 1.3 server CertificateVerify input: 64 bytes 0x20, "TLS 1.3,
 *     server CertificateVerify", 0x00, then a transcript hash of 32 or 48
 *     bytes (the length of the cipher suite's hash, which need not be the
 *     signature algorithm's: TLS_AES_256_GCM_SHA384 with
 *     ecdsa_secp256r1_sha256 gives 48);
 *   - a TLS 1.2 ECDHE ServerKeyExchange input (RFC 8422 5.4): client
 *     random (32), server random (32), curve_type 3 (named_curve), a
 *     2-byte named group among x25519, x448, secp256r1, secp384r1,
 *     secp521r1, a 1-byte point length equal to that group's
 *     (uncompressed points for the NIST curves), the point, and nothing
 *     after it;
 * - that TLS version is in protocols;
 * - in TLS 1.3 (RFC 8446 4.2.3): never RSA PKCS#1 v1.5, and ECDSA only
 *   with its curve's hash (P-256 with SHA-256, P-384 with SHA-384).
 * Return the enum policy_shape, or -1 with a static reason in *reasonp.
 */
int	policy_check(uint32_t protocols, int key, uint32_t alg,
	    const uint8_t *tbs, size_t tbslen, const char **reasonp);

/*
 * policy_alg_known(alg):
 * Return 1 if alg is one of enum kp_alg, the set keyproc performs, else 0.
 */
int	policy_alg_known(uint32_t alg);

#endif
