/*
 * Application data on the connection's SSL object: see tlsio.h.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <tls.h>

#include "proxy/tlsio.h"

static char	tlsio_why[256];

void
tlsio_start(void)
{
	ERR_clear_error();
}

/*
 * What SSL_read() or SSL_write() returning rv <= 0 means, as libtls'
 * tls_ssl_error() says it; the error queue is left empty.
 */
static ssize_t
tlsio_result(SSL *ssl, int rv, const char *op)
{
	unsigned long e;
	int saved = errno;

	switch (SSL_get_error(ssl, rv)) {
	case SSL_ERROR_NONE:
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_WANT_READ:
		return TLS_WANT_POLLIN;
	case SSL_ERROR_WANT_WRITE:
		return TLS_WANT_POLLOUT;
	case SSL_ERROR_SYSCALL:
		if ((e = ERR_peek_error()) != 0)
			ERR_error_string_n(e, tlsio_why, sizeof(tlsio_why));
		else if (rv == 0)
			/* Only without SSL_OP_IGNORE_UNEXPECTED_EOF (it is
			 * set once the handshake is done): libtls' "EOF
			 * without close notify", an end. */
			return 0;
		else
			snprintf(tlsio_why, sizeof(tlsio_why), "%s",
			    strerror(saved));
		break;
	case SSL_ERROR_SSL:
		if ((e = ERR_peek_error()) != 0)
			ERR_error_string_n(e, tlsio_why, sizeof(tlsio_why));
		else
			snprintf(tlsio_why, sizeof(tlsio_why), "%s failed",
			    op);
		break;
	default:
		snprintf(tlsio_why, sizeof(tlsio_why), "%s failed", op);
		break;
	}
	ERR_clear_error();
	return -1;
}

ssize_t
tlsio_read(SSL *ssl, void *buf, size_t len)
{
	int rv;

	if (len > INT_MAX)
		len = INT_MAX;
	if ((rv = SSL_read(ssl, buf, (int)len)) > 0)
		return rv;
	return tlsio_result(ssl, rv, "read");
}

ssize_t
tlsio_write(SSL *ssl, const void *buf, size_t len)
{
	int rv;

	if (len > INT_MAX)
		len = INT_MAX;
	if ((rv = SSL_write(ssl, buf, (int)len)) > 0)
		return rv;
	return tlsio_result(ssl, rv, "write");
}

const char *
tlsio_error(void)
{
	return tlsio_why[0] != '\0' ? tlsio_why : "failed";
}
