/*
 * fuzz_kpcheck: keyproc's check of a child's request (keyproc/kp_check.c,
 * keyproc/policy.c), against a second, independent reading of the rules
 * (docs/ARCHITECTURE.md, "The policy"; lib/wire.h).
 *
 * Input: three bytes of scope, which the parent would have sent (the
 * listener's protocols, the signatures already made on the channel, which
 * listener the channel is for), then the datagram as a child sends it and
 * keyproc's reader receives it (at most its buffer), framed as msg_get()
 * checks it (msg_frame(), lib/msg.c).  The property, both ways: the
 * framing holds and kp_check() accepts the body exactly when it is
 * - a struct msg_hdr of type KP_SIGN and len more bytes: a struct
 *   kp_sign_req and exactly tbslen (1 .. KP_TBS_MAX) bytes;
 * - for a key of the channel's own listener (the key table is never asked
 *   about another listener), with an algorithm of that key's kind;
 * - a legal TLS shape: a TLS 1.3 server CertificateVerify input (64 spaces,
 *   the server context string, 0, a 32- or 48-byte hash; no PKCS#1 v1.5,
 *   ECDSA with its curve's hash) for a listener with TLS 1.3, or a TLS 1.2
 *   ECDHE ServerKeyExchange input (32 + 32 random, named_curve, a known
 *   group, its point length, the point, uncompressed for NIST curves,
 *   nothing after) for a listener with TLS 1.2;
 * - within the budget: fewer than KP_SIGN_BUDGET signatures made.
 * and then reports the shape the oracle sees.  Any difference aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyproc/kp_check.h"
#include "keyproc/policy.h"
#include "lib/msg.h"
#include "lib/wire.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define NLISTENERS	4	/* listener 3 has no key */
/* keyproc's buffer (kp_chan_read()) */
#define KP_BUF		(sizeof(struct msg_hdr) + sizeof(struct kp_sign_req) + \
			    KP_TBS_MAX + 1)

/* What the parent told keyproc of the keys: listener, key, kind. */
static const struct fkey {
	uint32_t	listener, key;
	int		kind;
} fkeys[] = {
	{ 0, 0, POLICY_KEY_RSA },
	{ 1, 0, POLICY_KEY_P256 },
	{ 1, 1, POLICY_KEY_RSA },
	{ 1, 7, POLICY_KEY_P384 },
	{ 2, 0, POLICY_KEY_P384 },
};

static uint32_t	asked_listener;

static int
fkey_kind(uint32_t listener, uint32_t key)
{
	size_t i;

	if (listener != asked_listener) {
		fprintf(stderr, "kp_check asked about listener %u, the "
		    "channel is for %u\n", listener, asked_listener);
		abort();
	}
	for (i = 0; i < sizeof(fkeys) / sizeof(fkeys[0]); i++)
		if (fkeys[i].listener == listener && fkeys[i].key == key)
			return fkeys[i].kind;
	return -1;
}

/* The oracle: RFC 8446 4.4.3. */
static int
is_tls13_server_cv(const uint8_t *t, size_t len)
{
	static const char ctx[] = "TLS 1.3, server CertificateVerify";
	size_t i;

	if (len != 64 + 33 + 1 + 32 && len != 64 + 33 + 1 + 48)
		return 0;
	for (i = 0; i < 64; i++)
		if (t[i] != ' ')
			return 0;
	return memcmp(t + 64, ctx, 33) == 0 && t[97] == 0;
}

/* The oracle: RFC 8422 5.4, the groups recluse's libssl offers. */
static int
is_tls12_ske(const uint8_t *t, size_t len)
{
	size_t pointlen;
	int nist = 1;

	if (len < 64 + 4 || t[64] != 3)
		return 0;
	switch (t[65] << 8 | t[66]) {
	case 23:
		pointlen = 65;
		break;
	case 24:
		pointlen = 97;
		break;
	case 25:
		pointlen = 133;
		break;
	case 29:
		pointlen = 32;
		nist = 0;
		break;
	case 30:
		pointlen = 56;
		nist = 0;
		break;
	default:
		return 0;
	}
	if (t[67] != pointlen || len != 64 + 4 + pointlen)
		return 0;
	return !nist || t[68] == 4;
}

static int
expect(uint32_t protocols, unsigned int nsigned, uint32_t listener,
    const uint8_t *m, size_t n)
{
	struct kp_sign_req req;
	const uint8_t *tbs = m + sizeof(req);
	int kind = -1, ecdsa, pkcs1;
	size_t i;

	if (n < sizeof(req))
		return -1;
	memcpy(&req, m, sizeof(req));
	if (n - sizeof(req) != req.tbslen || req.tbslen == 0 ||
	    req.tbslen > KP_TBS_MAX)
		return -1;
	for (i = 0; i < sizeof(fkeys) / sizeof(fkeys[0]); i++)
		if (fkeys[i].listener == listener && fkeys[i].key == req.key)
			kind = fkeys[i].kind;
	if (kind == -1 || req.alg < KP_ALG_RSA_PKCS1_SHA256 ||
	    req.alg > KP_ALG_ECDSA_SHA512)
		return -1;
	ecdsa = req.alg >= KP_ALG_ECDSA_SHA256;
	pkcs1 = req.alg <= KP_ALG_RSA_PKCS1_SHA512;
	if (ecdsa != (kind != POLICY_KEY_RSA))
		return -1;
	if (nsigned >= KP_SIGN_BUDGET)
		return -1;
	if (is_tls13_server_cv(tbs, req.tbslen)) {
		if (!(protocols & KP_PROTO_TLS13) || pkcs1 ||
		    (kind == POLICY_KEY_P256 &&
		    req.alg != KP_ALG_ECDSA_SHA256) ||
		    (kind == POLICY_KEY_P384 &&
		    req.alg != KP_ALG_ECDSA_SHA384))
			return -1;
		return POLICY_TLS13_SERVER_CV;
	}
	if (is_tls12_ske(tbs, req.tbslen))
		return protocols & KP_PROTO_TLS12 ? POLICY_TLS12_SKE : -1;
	return -1;
}

/* The framing, read again: a header of type KP_SIGN and len more bytes. */
static int
framed_sign(const uint8_t *d, size_t n)
{
	uint32_t type, len;

	if (n < 8)
		return 0;
	memcpy(&type, d, 4);
	memcpy(&len, d + 4, 4);
	return type == KP_SIGN && len == n - 8;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kp_scope scope;
	struct kp_sign_req req;
	struct msg_hdr hdr;
	char reason[256];
	uint8_t *m;
	size_t n;
	int got = -1, want = -1;

	if (size < 3 || size - 3 > KP_BUF)
		return 0;
	scope.protocols = data[0] & KP_PROTO_ALL;
	scope.nsigned = data[1] % (KP_SIGN_BUDGET + 2);
	scope.listener = data[2] % NLISTENERS;
	scope.key_kind = fkey_kind;
	asked_listener = scope.listener;
	data += 3;
	size -= 3;
	if (msg_frame(data, size, &hdr) == 0 && hdr.type == KP_SIGN) {
		/* the body alone, so ASan sees any read past it */
		n = hdr.len;
		if ((m = malloc(n > 0 ? n : 1)) == NULL)
			abort();
		memcpy(m, data + sizeof(hdr), n);
		memset(reason, 0x55, sizeof(reason));
		got = kp_check(&scope, m, n, &req, reason, sizeof(reason));
	} else {
		n = 0;
		m = NULL;
		snprintf(reason, sizeof(reason), "misframed");
	}
	if (framed_sign(data, size))
		want = expect(scope.protocols, scope.nsigned, scope.listener,
		    data + 8, size - 8);
	if (got != want) {
		fprintf(stderr, "kp_check says %d, the rules say %d (protocols "
		    "%u, nsigned %u, listener %u, %zu bytes): %s\n", got, want,
		    scope.protocols, scope.nsigned, scope.listener, n,
		    got == -1 ? reason : "accepted");
		abort();
	}
	if (got == -1 && memchr(reason, '\0', sizeof(reason)) == NULL)
		abort();
	if (got != -1 && memcmp(&req, m, sizeof(req)) != 0)
		abort();
	free(m);
	return 0;
}
