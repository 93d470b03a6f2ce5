/*
 * A relaying child's reads and writes of application data, on its
 * connection's SSL object itself rather than through libtls.
 *
 * tls_read() and tls_write() empty OpenSSL's error queue before every
 * call (ERR_clear_error(): the thread's error state looked up and its 16
 * slots cleared) and reset errno after it: about a microsecond per
 * request on a keep-alive connection, for a queue that is empty unless
 * the last call failed.  These empty it once, when a call fails, and
 * otherwise return what tls_read() and tls_write() return.  The handshake
 * and tls_close() stay with libtls.
 */
#ifndef TLSIO_H
#define TLSIO_H

#include <sys/types.h>

struct ssl_st;

/*
 * tlsio_start():
 * Empty the error queue, once, before the first tlsio_read() or
 * tlsio_write() on a connection.
 */
void	tlsio_start(void);

/*
 * tlsio_read(ssl, buf, len), tlsio_write(ssl, buf, len):
 * As tls_read() and tls_write() on the libtls context of ssl, after its
 * handshake: the bytes moved (> 0), 0 at the end of the client's data
 * (close_notify, or an EOF under SSL_OP_IGNORE_UNEXPECTED_EOF; read only),
 * TLS_WANT_POLLIN or TLS_WANT_POLLOUT, or -1 with tlsio_error() set.  A
 * write may be partial (libtls sets SSL_MODE_ENABLE_PARTIAL_WRITE) and
 * must be retried with the same bytes after a TLS_WANT_*.
 */
ssize_t	tlsio_read(struct ssl_st *ssl, void *buf, size_t len);
ssize_t	tlsio_write(struct ssl_st *ssl, const void *buf, size_t len);

/*
 * tlsio_error():
 * Why the last tlsio_read() or tlsio_write() returned -1 (a static
 * string, for the log).
 */
const char *tlsio_error(void);

#endif
