/*
 * Backend connections for a connection child: see backend.h.
 *
 * The child makes no connection of its own: its seccomp filter has no
 * socket(2) or connect(2), so a taken-over child can reach nothing but
 * its own client.  It sends {CHAN_CONNECT, route, protocol} to the
 * parent, which has the connector (proxy/connector.h, running as `user`,
 * not root) connect that route's backends of the child's listener in
 * order (proxy/route.h), and answers {CHAN_CONNECTED,
 * backend index} with the connected socket attached (SCM_RIGHTS), or
 * {CHAN_CONNECT_FAILED, errno of the last attempt}.  Every failed attempt
 * is logged by the parent.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proxy/backend.h"
#include "proxy/route.h"
#include "lib/wire.h"
#include "lib/deadline.h"
#include "lib/msg.h"

/* Wait until deadline for events on fd: 1 ready, 0 timeout, -1 error. */
static int
backend_wait(int fd, short events, const struct timespec *deadline)
{
	struct pollfd pfd;
	int n;

	pfd.fd = fd;
	pfd.events = events;
	while ((n = poll(&pfd, 1, deadline_ms_left(deadline))) == -1 &&
	    errno == EINTR)
		;
	return n;
}

char *
backend_addr_name(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];
	const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

	switch (sa->sa_family) {
	case AF_INET:
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(sin->sin_port));
		break;
	case AF_INET6:
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(sin6->sin6_port));
		break;
	default:
		snprintf(buf, len, "(family %d)", sa->sa_family);
		break;
	}
	return buf;
}

char *
backend_name(const struct conf_backend *b, char *buf, size_t len)
{
	if (b->type == CONF_BACKEND_UNIX)
		snprintf(buf, len, "unix:%s", b->path);
	else if (strchr(b->host, ':') != NULL)
		snprintf(buf, len, "[%s]:%u", b->host, b->port);
	else
		snprintf(buf, len, "%s:%u", b->host, b->port);
	return buf;
}

/* How long the parent may take: every address, each with its slack. */
static long long
backend_wait_ms(const struct conf_listener *l, int timeout,
    const struct chan_connect *cc)
{
	int q = route_qualified(l, cc->route, cc->alpn);
	long long n = 0;
	size_t i;

	for (i = 0; i < l->nbackends; i++)
		if (route_uses(l, cc->route, cc->alpn, q, i))
			n += (long long)l->backends[i].naddrs;
	return n * ((long long)timeout * 1000 + CHAN_CONNECT_SLACK_MS) +
	    CHAN_CONNECT_MARGIN_MS;
}

/* A received backend must be a stream socket, nonblocking. */
static int
backend_check(int fd)
{
	socklen_t len;
	int type, fl;

	len = sizeof(type);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == -1 ||
	    type != SOCK_STREAM) {
		errno = EPROTO;
		return -1;
	}
	if ((fl = fcntl(fd, F_GETFL)) == -1 ||
	    ((fl & O_NONBLOCK) == 0 &&
	    fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1))
		return -1;
	return 0;
}

/*
 * Receive the parent's answer: CHAN_CONNECTED with exactly one descriptor
 * and a backend index of l, or CHAN_CONNECT_FAILED with none.  Return the
 * socket; or -1 with errno: EAGAIN for a message that is not the answer
 * (a CHAN_RETIRE sent before the parent knew we were busy, a CHAN_DRAIN
 * with an idle time, kept in *drainp), ECANCELED for a CHAN_DRAIN 0, the
 * failed connect's errno, or EPROTO.
 */
static int
backend_reply(int parentfd, const struct conf_listener *l,
    const struct chan_connect *cc, size_t *idxp, int *drainp)
{
	char buf[sizeof(struct msg_hdr) + 64];
	const char *body = buf + sizeof(struct msg_hdr);
	struct chan_connect_failed f;
	struct chan_connected m;
	struct chan_drain d;
	struct msg_hdr hdr;
	ssize_t n;
	int fd, e;

	n = msg_get(parentfd, buf, sizeof(buf), &hdr, &fd, MSG_DONTWAIT);
	if (n == -1)
		return -1;
	if (n == 0) {
		errno = EPIPE;
		return -1;
	}
	e = EPROTO;
	switch (hdr.type) {
	case CHAN_RETIRE:
		if (fd == -1 && MSG_LEN_IS(&hdr, 0))
			e = EAGAIN;
		break;
	case CHAN_DRAIN:
		if (fd != -1 || !MSG_LEN_IS(&hdr, sizeof(d)))
			break;
		memcpy(&d, body, sizeof(d));
		if (d.idle > CHAN_DRAIN_IDLE_MAX)
			break;
		*drainp = (int)d.idle;
		e = d.idle == 0 ? ECANCELED : EAGAIN;
		break;
	case CHAN_CONNECT_FAILED:
		if (fd != -1 || !MSG_LEN_IS(&hdr, sizeof(f)))
			break;
		memcpy(&f, body, sizeof(f));
		if (f.error != 0 && f.error < 4096)
			e = (int)f.error;
		break;
	case CHAN_CONNECTED:
		if (fd == -1 || !MSG_LEN_IS(&hdr, sizeof(m)))
			break;
		memcpy(&m, body, sizeof(m));
		if (m.backend >= l->nbackends || !route_uses(l, cc->route,
		    cc->alpn, route_qualified(l, cc->route, cc->alpn),
		    m.backend))
			break;
		if (backend_check(fd) == 0) {
			*idxp = m.backend;
			return fd;
		}
		e = errno;
		break;
	}
	if (fd != -1)
		close(fd);
	errno = e;
	return -1;
}

int
backend_connect(const struct conf_listener *l, int parentfd, int timeout,
    size_t route, size_t alpn, size_t *idxp, int *drainp, int *errp)
{
	struct chan_connect cc;
	struct timespec deadline;
	int fd;

	cc.route = (uint32_t)route;
	cc.alpn = (uint32_t)alpn;
	if (msg_put(parentfd, CHAN_CONNECT, &cc, sizeof(cc), -1, 0) == -1) {
		*errp = errno;
		return -1;
	}
	deadline_in_ms(&deadline, backend_wait_ms(l, timeout, &cc));
	do {
		switch (backend_wait(parentfd, POLLIN, &deadline)) {
		case -1:
			*errp = errno;
			return -1;
		case 0:
			*errp = ETIMEDOUT;
			return -1;
		}
	} while ((fd = backend_reply(parentfd, l, &cc, idxp, drainp)) == -1 &&
	    (errno == EAGAIN || errno == EINTR));
	if (fd == -1)
		*errp = errno;
	return fd;
}
