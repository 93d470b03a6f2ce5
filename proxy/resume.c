/*
 * Session resumption in children: see resume.h.
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "lib/wire.h"
#include "proxy/resume.h"

#define NAME_OFF	0
#define HMAC_OFF	16
#define AES_OFF		48
_Static_assert(AES_OFF + 32 == SPAWNER_TICKET_KEY_LEN, "key layout");

static struct {
	uint8_t		keys[SPAWNER_TICKET_KEYS_MAX][SPAWNER_TICKET_KEY_LEN];
	size_t		nkeys;
	uint32_t	lifetime;
	uint8_t		sid_ctx[SPAWNER_TICKET_SID_LEN];
} rs;

void
resume_set(const uint8_t *keys, size_t nkeys, uint32_t lifetime,
    const uint8_t *sid_ctx)
{
	explicit_bzero(rs.keys, sizeof(rs.keys));
	rs.nkeys = 0;
	if (nkeys == 0 || nkeys > SPAWNER_TICKET_KEYS_MAX)
		return;
	memcpy(rs.keys, keys, nkeys * SPAWNER_TICKET_KEY_LEN);
	memcpy(rs.sid_ctx, sid_ctx, sizeof(rs.sid_ctx));
	rs.lifetime = lifetime;
	rs.nkeys = nkeys;
}

static int
resume_key_init(const uint8_t *key, unsigned char *iv, EVP_CIPHER_CTX *cctx,
    EVP_MAC_CTX *hctx, int enc)
{
	OSSL_PARAM params[3];

	/* One call: HMAC takes the digest before the key. */
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
	    (void *)(key + HMAC_OFF), 32);
	params[2] = OSSL_PARAM_construct_end();
	if (!EVP_MAC_CTX_set_params(hctx, params))
		return -1;
	if (!EVP_CipherInit_ex(cctx, EVP_aes_256_cbc(), NULL, key + AES_OFF,
	    iv, enc))
		return -1;
	return 0;
}

/*
 * OpenSSL's ticket key callback.  Encrypt (enc 1): the newest key, a
 * fresh IV.  Decrypt: the key of that name, if we still hold it and the
 * connection is TLS 1.3 (a TLS 1.2 ticket is never accepted), and 2: a
 * resumed connection gets a new ticket, under the newest key, so that a
 * client never needs to present one ticket twice (RFC 8446, C.4).
 */
static int
resume_ticket_cb(SSL *ssl, unsigned char *name, unsigned char *iv,
    EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	size_t i;

	if (rs.nkeys == 0 || SSL_version(ssl) != TLS1_3_VERSION)
		return enc ? -1 : 0;
	if (enc) {
		if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(
		    EVP_aes_256_cbc())) != 1)
			return -1;
		memcpy(name, rs.keys[0] + NAME_OFF, 16);
		return resume_key_init(rs.keys[0], iv, cctx, hctx, 1) == 0 ?
		    1 : -1;
	}
	for (i = 0; i < rs.nkeys; i++)
		if (memcmp(name, rs.keys[i] + NAME_OFF, 16) == 0)
			break;
	if (i == rs.nkeys)
		return 0;
	if (resume_key_init(rs.keys[i], iv, cctx, hctx, 0) == -1)
		return -1;
	return 2;
}

/*
 * Called once the version is known, before the ServerHello is made: a
 * TLS 1.2 connection sends no ticket extension and gets no session ID.
 */
static int
resume_cert_cb(SSL *ssl, void *arg)
{
	if (SSL_version(ssl) != TLS1_3_VERSION)
		SSL_set_options(ssl, SSL_OP_NO_TICKET);
	return 1;
}

int
resume_ssl(SSL *ssl)
{
	SSL_CTX *ctx = SSL_get_SSL_CTX(ssl);

	if (rs.nkeys == 0)
		return 0;
	SSL_clear_options(ssl, SSL_OP_NO_TICKET);
	SSL_set_num_tickets(ssl, 1);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_timeout(ctx, (long)rs.lifetime);
	SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, resume_ticket_cb);
	(void)SSL_set_session_id_context(ssl, rs.sid_ctx, sizeof(rs.sid_ctx));
	SSL_set_cert_cb(ssl, resume_cert_cb, NULL);
	return 1;
}
