/*
 * The connector process: see connector.h.
 *
 * Set-up: the parent's first message is CONNECTOR_START {uid, gid,
 * verbose}.  The connector becomes uid/gid, sets no_new_privs, dumpable 0,
 * RLIMIT_NPROC 0 and RLIMIT_CORE 0, and installs its seccomp allow-list
 * (lib/sandbox.c).  No chroot: the UNIX backends' paths must stay
 * reachable, and the filter has no open(2) anyway.
 *
 * Serving: each CONNECTOR_CONNECT is one nonblocking connect(2), waited
 * for by one libevent event that also carries its deadline, so any number
 * are in flight at once; each is answered by CONNECTOR_DONE {id, errno}
 * with the socket attached on success.  Nothing is ever read from those
 * sockets.  The parent is trusted: a message of the wrong size or type is
 * a broken parent, and the connector leaves.  EOF on the channel (the
 * parent is gone, or replaced us): leave at once, closing what is in
 * flight.
 */
#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/uio.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "lib/log.h"
#include "lib/msg.h"
#include "lib/sandbox.h"
#include "lib/wire.h"
#include "proxy/connector.h"

_Static_assert(sizeof(struct sockaddr_storage) == CONNECTOR_ADDR_MAX,
    "connector_req.addr holds any socket address");

#define CONNECTOR_READ_MAX	64	/* requests read per wake-up */
#define CONNECTOR_COMM		"recluse-connect"	/* 15 bytes at most */

/* One connect in flight. */
struct connector_conn {
	struct event	*ev;	/* writable, or the deadline */
	uint32_t	 id;
	int		 fd;
	int		 tcp;
};

static struct event_base	*connector_base;

/* Blocking: the parent always reads its channel; if it is gone, so are we. */
static void
connector_reply(uint32_t id, int error, int fd)
{
	struct connector_rep rep;

	rep.id = id;
	rep.error = (uint32_t)error;
	if (msg_put(CONNECTOR_FD, CONNECTOR_DONE, &rep, sizeof(rep), fd,
	    0) == -1)
		_exit(1);
}

/* Answer c's request with error (0: connected), and forget c. */
static void
connector_done(struct connector_conn *c, int error)
{
	int one = 1;

	/* Small writes go out at once: a client is waiting on them. */
	if (error == 0 && c->tcp)
		(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
	connector_reply(c->id, error, error == 0 ? c->fd : -1);
	if (c->ev != NULL)
		event_free(c->ev);
	close(c->fd);
	free(c);
}

static void
connector_conn_cb(evutil_socket_t fd, short what, void *arg)
{
	socklen_t len;
	int e;

	if (what & EV_TIMEOUT)
		e = ETIMEDOUT;
	else {
		len = sizeof(e);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) == -1)
			e = errno;
	}
	connector_done(arg, e);
}

/* An address of exactly the size of its family, which is one we connect. */
static int
connector_addr_ok(const struct connector_req *req)
{
	sa_family_t family;

	if (req->addrlen < sizeof(family) || req->addrlen > sizeof(req->addr))
		return 0;
	memcpy(&family, req->addr, sizeof(family));
	switch (family) {
	case AF_INET:
		return req->addrlen == sizeof(struct sockaddr_in);
	case AF_INET6:
		return req->addrlen == sizeof(struct sockaddr_in6);
	case AF_UNIX:
		return req->addrlen > offsetof(struct sockaddr_un, sun_path) &&
		    req->addrlen <= sizeof(struct sockaddr_un);
	default:
		return 0;
	}
}

static void
connector_connect(const struct connector_req *req)
{
	struct sockaddr_storage ss;
	struct connector_conn *c;
	struct timeval tv;
	int e;

	if (req->timeout == 0 || req->timeout > CONNECTOR_TIMEOUT_MAX ||
	    !connector_addr_ok(req)) {
		log_warnx("request %u: bad address or timeout", req->id);
		connector_reply(req->id, EINVAL, -1);
		return;
	}
	memset(&ss, 0, sizeof(ss));
	memcpy(&ss, req->addr, req->addrlen);
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		connector_reply(req->id, ENOMEM, -1);
		return;
	}
	c->id = req->id;
	c->tcp = ss.ss_family != AF_UNIX;
	c->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (c->fd == -1) {
		e = errno;
		free(c);
		connector_reply(req->id, e, -1);
		return;
	}
	/* A UNIX socket connects at once, or fails (EAGAIN: its backlog is
	 * full, and that cannot be waited for). */
	if (connect(c->fd, (struct sockaddr *)&ss, req->addrlen) == 0) {
		connector_done(c, 0);
		return;
	}
	if (errno != EINPROGRESS) {
		connector_done(c, errno);
		return;
	}
	tv.tv_sec = req->timeout / 1000;
	tv.tv_usec = (suseconds_t)(req->timeout % 1000) * 1000;
	if ((c->ev = event_new(connector_base, c->fd, EV_WRITE,
	    connector_conn_cb, c)) == NULL || event_add(c->ev, &tv) == -1)
		connector_done(c, ENOMEM);
}

static void
connector_dispatch_parent(evutil_socket_t fd, short what, void *arg)
{
	char buf[sizeof(struct msg_hdr) + sizeof(struct connector_req)];
	struct connector_req req;
	struct msg_hdr hdr;
	ssize_t n;
	int i;

	for (i = 0; i < CONNECTOR_READ_MAX; i++) {
		/* No fd wanted: any that came are closed, and that is EBADMSG. */
		n = msg_get(CONNECTOR_FD, buf, sizeof(buf), &hdr, NULL,
		    MSG_DONTWAIT);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n == 0)
			_exit(0);
		if (n == -1)
			fatal("channel");
		if (hdr.type != CONNECTOR_CONNECT ||
		    !MSG_LEN_IS(&hdr, sizeof(req)))
			fatalx("bad message from the parent");
		memcpy(&req, buf + sizeof(hdr), sizeof(req));
		connector_connect(&req);
	}
}

/* Read CONNECTOR_START, become its user and lock ourselves in. */
static void
connector_sandbox(void)
{
	char buf[sizeof(struct msg_hdr) + sizeof(struct connector_start)];
	struct connector_start st;
	struct msg_hdr hdr;
	char err[256];
	ssize_t n;

	n = msg_get(CONNECTOR_FD, buf, sizeof(buf), &hdr, NULL, 0);
	if (n == 0)
		_exit(0);
	if (n == -1 || hdr.type != CONNECTOR_START ||
	    !MSG_LEN_IS(&hdr, sizeof(st)))
		fatalx("bad start message from the parent");
	memcpy(&st, buf + sizeof(hdr), sizeof(st));
	if (st.uid == 0 || st.gid == 0)
		fatalx("bad start message from the parent");
	log_init("connector", (int)st.verbose, CONNECTOR_FD);
	/* Made before the filter: nothing it does at setup is filtered. */
	if ((connector_base = event_base_new()) == NULL)
		fatalx("cannot make an event base");
	if (sandbox_drop(NULL, (uid_t)st.uid, (gid_t)st.gid, 0, err,
	    sizeof(err)) == -1 ||
	    sandbox_seccomp(SANDBOX_CONNECTOR, err, sizeof(err)) == -1)
		fatalx("%s", err);
	log_debug("serving as uid %u", st.uid);
}

__dead void
connector_main(void)
{
	struct event *ev;

	/* exec of /proc/self/exe named us "exe": say what we are in ps(1). */
	(void)prctl(PR_SET_NAME, CONNECTOR_COMM, 0, 0, 0);
	log_init("connector", 0, CONNECTOR_FD);
	connector_sandbox();
	ev = event_new(connector_base, CONNECTOR_FD, EV_READ | EV_PERSIST,
	    connector_dispatch_parent, NULL);
	if (ev == NULL || event_add(ev, NULL) == -1)
		fatalx("libevent");
	event_base_dispatch(connector_base);
	fatalx("event loop ended");
}
