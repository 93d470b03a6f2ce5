/*
 * Connecting a connection child to its listener's backends (through the
 * parent and the connector), and backend names for the log (in the child
 * and the parent).
 */
#ifndef BACKEND_H
#define BACKEND_H

#include <sys/socket.h>

#include <stddef.h>

#include "config/conf.h"

/* Room for backend_name(); longer names are truncated. */
#define BACKEND_NAME_MAX	256

/*
 * backend_connect(l, parentfd, timeout, route, alpn, idxp, drainp, errp):
 * In a connection child: have the parent connect the first of l's
 * backends of route and protocol alpn (proxy/route.h) that answers, in
 * the order of the configuration, each address
 * bounded by timeout seconds (a CHAN_CONNECT on parentfd, answered by
 * CHAN_CONNECTED with the socket attached or CHAN_CONNECT_FAILED), and
 * wait for the answer no longer than every address's timeout plus
 * CHAN_CONNECT_SLACK_MS each, plus CHAN_CONNECT_MARGIN_MS.  The parent
 * logs each failed attempt.  A CHAN_DRAIN that comes meanwhile leaves
 * its argument in *drainp; a CHAN_DRAIN 0 ends the wait (ECANCELED).
 * Return a connected nonblocking socket and the backend's index in *idxp,
 * or -1 with the errno of the last failure in *errp (ETIMEDOUT,
 * ECONNREFUSED, ECANCELED, ...).
 */
int	backend_connect(const struct conf_listener *l, int parentfd,
	    int timeout, size_t route, size_t alpn, size_t *idxp, int *drainp,
	    int *errp);

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
