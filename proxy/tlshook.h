/*
 * What libtls does not let us set on a connection.  OpenSSL calls an
 * ex_data "new" callback for every SSL object it creates; registered in
 * the parent before any fork, it runs in each child when tls_accept_socket()
 * makes that child's one SSL object, and sets there:
 *   - SSL_OP_IGNORE_UNEXPECTED_EOF, once the handshake is done
 *     (tlshook_established()): a client's TCP EOF without close_notify is
 *     a half-close, not a fatal alert that would lose the backend's answer
 *     still in flight;
 *   - read-ahead: one read(2) per record or more, not two (header, body);
 *   - SSL_MODE_RELEASE_BUFFERS during the handshake, and after it the
 *     record buffers kept while traffic flows and freed when the
 *     connection goes quiet (tlshook_quiet()): an idle connection holds
 *     no record buffers, a busy one does not allocate them per record;
 *   - no session resumption: no TLS 1.3 ticket, no TLS 1.2 ticket, an
 *     empty TLS 1.2 session ID (the connection's process could never find
 *     a session it cached again), unless the listener has session-tickets
 *     on: then TLS 1.3 tickets with the listener's keys (resume.h);
 *   - a message callback that notes the client's close_notify, so the
 *     access line can still tell a clean close from a bare EOF.
 */
#ifndef TLSHOOK_H
#define TLSHOOK_H

/*
 * tlshook_init():
 * Register the callback.  Call once in the parent, before forking
 * children.  Return 0 or -1.
 */
int	tlshook_init(void);

/*
 * tlshook_established():
 * In a child, after its handshake succeeded: from now on a TCP EOF from
 * the client is a half-close (SSL_OP_IGNORE_UNEXPECTED_EOF), and the
 * record buffers stay between records.
 */
void	tlshook_established(void);

/*
 * tlshook_quiet():
 * In a child whose connection has gone quiet: free the record buffers
 * if they hold nothing (the next record allocates them again).
 */
void	tlshook_quiet(void);

/*
 * tlshook_pending():
 * In a child: 1 if OpenSSL holds bytes of the client's connection that
 * tls_read() can use without reading the socket, 0 if not.
 */
int	tlshook_pending(void);

/*
 * tlshook_close_notify():
 * In a child: 1 if the client has sent close_notify, 0 if not.
 */
int	tlshook_close_notify(void);

/*
 * tlshook_conn_ssl():
 * In a child: its connection's SSL object, or NULL before
 * tls_accept_socket(), for what libtls does not tell: the certificate
 * chosen for the connection (the PROXY v2 SSL TLV), the client
 * certificate's fingerprint and first SAN (proxy/clientcert.c).
 */
struct ssl_st	*tlshook_conn_ssl(void);

#endif
