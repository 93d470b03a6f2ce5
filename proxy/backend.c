/*
 * Backend connections for a connection child: see backend.h.
 *
 * UNIX-socket backends: the child is chrooted into an empty directory
 * before it reads a byte from the network, and its seccomp filter allows
 * socket(2) only for AF_INET and AF_INET6, so it cannot reach a socket
 * path itself.  Connecting before the chroot would mean a backend
 * connection per spare child, made before any client exists; putting the
 * socket inside the chroot would make the empty directory writable and
 * shared.  Instead the parent, which holds the configuration, connects on
 * request: the child sends {CHAN_CONNECT, backend index} and the parent
 * checks that index against the child's own listener, does a nonblocking
 * connect(2) and answers {CHAN_CONNECTED, 0} with the socket attached
 * (SCM_RIGHTS) or {CHAN_CONNECTED, errno}.  A compromised child can
 * thus reach only the UNIX sockets its own listener names.  (Its TCP
 * connects are not limited by address: seccomp cannot read a sockaddr,
 * which lives in memory.)
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proxy/backend.h"
#include "lib/wire.h"
#include "lib/deadline.h"
#include "lib/log.h"

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

/* One TCP address: a connected nonblocking socket, or -1 and errno. */
static int
backend_tcp_addr(const struct sockaddr *sa, socklen_t salen, int timeout)
{
	struct timespec deadline;
	socklen_t len;
	int fd, e, one = 1;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1)
		return -1;
	if (connect(fd, sa, salen) == -1) {
		if (errno != EINPROGRESS)
			goto err;
		deadline_in(&deadline, timeout);
		switch (backend_wait(fd, POLLOUT, &deadline)) {
		case -1:
			goto err;
		case 0:
			errno = ETIMEDOUT;
			goto err;
		}
		len = sizeof(e);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) == -1)
			goto err;
		if (e != 0) {
			errno = e;
			goto err;
		}
	}
	/* Small writes go out at once: the client is waiting on them. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
err:
	e = errno;
	close(fd);
	errno = e;
	return -1;
}

static int
backend_tcp(const struct conf_backend *b, int timeout, int *errp)
{
	char name[INET6_ADDRSTRLEN + 16];
	size_t i;
	int fd;

	for (i = 0; i < b->naddrs; i++) {
		fd = backend_tcp_addr((const struct sockaddr *)&b->addrs[i],
		    b->addrlens[i], timeout);
		if (fd != -1)
			return fd;
		*errp = errno;
		backend_addr_name((const struct sockaddr *)&b->addrs[i], name,
		    sizeof(name));
		log_info("backend %s: %s", name, strerror(*errp));
	}
	return -1;
}

/*
 * Receive the parent's CHAN_CONNECTED: exactly one struct chan_msg, and
 * exactly one descriptor attached if and only if arg is 0.
 */
static int
backend_unix_reply(int parentfd)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int) * 4)];
	} cbuf;
	struct chan_msg m;
	struct msghdr msg;
	struct cmsghdr *cm;
	struct iovec iov;
	int fds[4], nfds = 0, fd = -1, i, type;
	socklen_t len;
	ssize_t n;

	memset(&msg, 0, sizeof(msg));
	iov.iov_base = &m;
	iov.iov_len = sizeof(m);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cbuf.buf;
	msg.msg_controllen = sizeof(cbuf.buf);
	do
		n = recvmsg(parentfd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return -1;
	if (n == 0) {
		errno = EPIPE;
		return -1;
	}
	for (cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		for (i = 0; (size_t)i < (cm->cmsg_len - CMSG_LEN(0)) /
		    sizeof(int) && nfds < 4; i++)
			memcpy(&fds[nfds++], CMSG_DATA(cm) + i * sizeof(int),
			    sizeof(int));
	}
	errno = EPROTO;
	/* Sent before the parent knew we were busy: not for us any more. */
	if (n == (ssize_t)sizeof(m) && m.type == CHAN_RETIRE && nfds == 0)
		errno = EAGAIN;
	else if (n == (ssize_t)sizeof(m) && m.type == CHAN_CONNECTED &&
	    (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) == 0) {
		if (m.arg != 0 && nfds == 0)
			errno = (int)m.arg;
		else if (m.arg == 0 && nfds == 1)
			fd = fds[0];
	}
	for (i = 0; i < nfds; i++)
		if (fds[i] != fd)
			close(fds[i]);
	if (fd == -1)
		return -1;
	len = sizeof(type);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == -1 ||
	    type != SOCK_STREAM) {
		close(fd);
		errno = EPROTO;
		return -1;
	}
	return fd;
}

static int
backend_unix(size_t idx, int parentfd, int timeout)
{
	struct timespec deadline;
	struct chan_msg m;
	int fd, fl;

	m.type = CHAN_CONNECT;
	m.arg = (uint32_t)idx;
	if (send(parentfd, &m, sizeof(m), MSG_NOSIGNAL) != (ssize_t)sizeof(m))
		return -1;
	/* The parent's connect(2) does not block: the reply comes at once. */
	deadline_in(&deadline, timeout);
	do {
		switch (backend_wait(parentfd, POLLIN, &deadline)) {
		case -1:
			return -1;
		case 0:
			errno = ETIMEDOUT;
			return -1;
		}
	} while ((fd = backend_unix_reply(parentfd)) == -1 && errno == EAGAIN);
	if (fd == -1)
		return -1;
	if ((fl = fcntl(fd, F_GETFL)) == -1 ||
	    ((fl & O_NONBLOCK) == 0 &&
	    fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1)) {
		fl = errno;
		close(fd);
		errno = fl;
		return -1;
	}
	return fd;
}

int
backend_connect(const struct conf_listener *l, int parentfd, int timeout,
    size_t *idxp, int *errp)
{
	char name[BACKEND_NAME_MAX];
	const struct conf_backend *b;
	int fd, unix_ok = 1;
	size_t i;

	*errp = ENOENT;
	for (i = 0; i < l->nbackends; i++) {
		b = &l->backends[i];
		if (b->type == CONF_BACKEND_TCP) {
			if ((fd = backend_tcp(b, timeout, errp)) != -1)
				goto found;
			continue;
		}
		if (!unix_ok)
			continue;
		if ((fd = backend_unix(i, parentfd, timeout)) != -1)
			goto found;
		*errp = errno;
		log_info("backend %s: %s", backend_name(b, name, sizeof(name)),
		    strerror(*errp));
		/*
		 * A reply that did not come in time may still come, and would
		 * then be taken for the answer to the next request.
		 */
		if (*errp == ETIMEDOUT || *errp == EPROTO)
			unix_ok = 0;
	}
	return -1;
found:
	*idxp = i;
	return fd;
}
