/*
 * Connecting a connection child to its listener's backends.
 */
#ifndef BACKEND_H
#define BACKEND_H

#include <sys/socket.h>

#include <stddef.h>

#include "config/conf.h"

/* Room for backend_name(); longer names are truncated. */
#define BACKEND_NAME_MAX	256

/*
 * backend_connect(l, parentfd, timeout, idxp, errp):
 * Connect to the first of l's backends that answers, in the order of the
 * configuration.  A TCP backend is tried address by address, each with a
 * nonblocking connect(2) bounded by timeout seconds.  A UNIX-socket
 * backend is connected by the parent on our behalf (the path is outside
 * the chroot): a CHAN_CONNECT request on parentfd, answered by
 * CHAN_CONNECTED with the socket attached, or with an errno.  Every failed
 * attempt is logged.  Return a connected nonblocking socket and the
 * backend's index in *idxp, or -1 with the errno of the last failure in
 * *errp (ETIMEDOUT, ECONNREFUSED, ...).
 */
int	backend_connect(const struct conf_listener *l, int parentfd,
	    int timeout, size_t *idxp, int *errp);

/*
 * backend_name(b, buf, len):
 * Write b as the log shows it ("127.0.0.1:8080", "[::1]:8080",
 * "unix:/run/app.sock") into buf, NUL-terminated, truncated to fit.
 * Return buf.
 */
char	*backend_name(const struct conf_backend *b, char *buf, size_t len);

/*
 * backend_addr_name(sa, buf, len):
 * Write the IPv4 or IPv6 socket address sa as the log shows it
 * ("127.0.0.1:8080", "[::1]:8080") into buf, NUL-terminated, truncated to
 * fit.  Return buf.
 */
char	*backend_addr_name(const struct sockaddr *sa, char *buf,
	    size_t len);

#endif
