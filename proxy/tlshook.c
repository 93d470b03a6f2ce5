/*
 * Per-connection OpenSSL settings libtls does not offer: see tlshook.h.
 */
#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "proxy/resume.h"
#include "proxy/sni.h"
#include "proxy/tlshook.h"

/* A child makes exactly one SSL object: its connection's. */
static SSL	*tlshook_ssl;
static int	 tlshook_notified;

static void
tlshook_msg(int write_p, int version, int content_type, const void *buf,
    size_t len, SSL *ssl, void *arg)
{
	const unsigned char *p = buf;

	if (!write_p && content_type == SSL3_RT_ALERT && len >= 2 &&
	    p[1] == SSL_AD_CLOSE_NOTIFY)
		tlshook_notified = 1;
}

static void
tlshook_new(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
    long argl, void *argp)
{
	SSL *ssl = parent;

	SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
	SSL_set_read_ahead(ssl, 1);
	/* No resumption: no TLS 1.3 ticket, no TLS 1.2 ticket or session
	 * ID (an empty one, with the server cache off).  This process holds
	 * one connection and dies with it: a session it cached could never
	 * be found again.  Unless the listener has session-tickets on:
	 * then stateless TLS 1.3 tickets, with the keys of resume.c. */
	if (!resume_ssl(ssl)) {
		SSL_set_num_tickets(ssl, 0);
		SSL_set_options(ssl, SSL_OP_NO_TICKET);
		SSL_CTX_set_session_cache_mode(SSL_get_SSL_CTX(ssl),
		    SSL_SESS_CACHE_OFF);
	}
	SSL_set_msg_callback(ssl, tlshook_msg);
	sni_hook(ssl);
	tlshook_ssl = ssl;
	tlshook_notified = 0;
}

static void
tlshook_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
    long argl, void *argp)
{
	if (parent == tlshook_ssl)
		tlshook_ssl = NULL;
}

int
tlshook_init(void)
{
	return CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL, 0, NULL,
	    tlshook_new, NULL, tlshook_free) == -1 ? -1 : 0;
}

void
tlshook_established(void)
{
	/* Not before: an EOF in the middle of a handshake would end it
	 * "cleanly", and libtls would report the handshake a success. */
	if (tlshook_ssl == NULL)
		return;
	SSL_set_options(tlshook_ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* While traffic flows, keep the record buffers: released after
	 * every record they cost a malloc() and a free() each way per
	 * request.  A quiet connection lets them go (tlshook_quiet()). */
	SSL_clear_mode(tlshook_ssl, SSL_MODE_RELEASE_BUFFERS);
}

void
tlshook_quiet(void)
{
	/* 0 (kept) when a buffer still holds a record: the next quiet
	 * period tries again. */
	if (tlshook_ssl != NULL)
		(void)SSL_free_buffers(tlshook_ssl);
}

int
tlshook_pending(void)
{
	return tlshook_ssl != NULL && SSL_has_pending(tlshook_ssl);
}

int
tlshook_close_notify(void)
{
	return tlshook_notified;
}

SSL *
tlshook_conn_ssl(void)
{
	return tlshook_ssl;
}
