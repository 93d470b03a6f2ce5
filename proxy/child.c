/*
 * A connection child: see child.h.
 *
 * Order matters: the sandbox (own session, chroot, user, rlimits, seccomp)
 * is in place before the first accept(2), so no byte from the network is
 * ever read by a process that could do more than this one connection
 * needs.
 *
 * The child leaves with _exit(), never exit(): it is a fork of its spawner
 * without exec, so exit() would run the spawner's atexit handlers and
 * OpenSSL's cleanup, which may make system calls the filter kills for and
 * would only free memory the kernel is about to take back anyway.
 */
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <tls.h>

#include "keyproc/kp_provider.h"
#include "proxy/backend.h"
#include "lib/wire.h"
#include "lib/deadline.h"
#include "proxy/child.h"
#include "lib/log.h"
#include "lib/msg.h"
#include "proxy/relay.h"
#include "lib/sandbox.h"
#include "proxy/tlshook.h"

/* Descriptors the child may open beyond those it inherits. */
#define CHILD_FD_SLACK	8
/* How long a leaving child waits for the parent to read its last lines. */
#define CHILD_FLUSH_MS	2000

/* What the access log line says about one connection. */
struct child_conn {
	char			 client[INET6_ADDRSTRLEN + 16];
	char			 backend[BACKEND_NAME_MAX];
	char			 sni[128];
	const char		*version, *cipher;
	struct timespec		 start;
	struct relay_stats	 st;
};

static int	child_parentfd = -1;

/*
 * Leave, but only once the parent has read our last log lines: it may reap
 * us and close the channel before it reads what is queued there.  So shut
 * down our side and wait (a little) for the parent to close its end, which
 * it does when it reads our EOF, after everything before it.
 */
static __dead void
child_exit(int status)
{
	struct pollfd pfd;
	char buf[64];

	if (child_parentfd != -1 &&
	    shutdown(child_parentfd, SHUT_WR) == 0) {
		pfd.fd = child_parentfd;
		pfd.events = POLLIN;
		while (poll(&pfd, 1, CHILD_FLUSH_MS) > 0 &&
		    recv(child_parentfd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
			;
	}
	_exit(status);
}

/*
 * Room for the descriptors we hold, the event base's (the lowest free
 * number when it was made: at most one above ours), and a few more:
 * client, backend, a failed backend attempt.
 */
static size_t
child_nofile(const struct child_args *args)
{
	int maxfd = STDERR_FILENO;
	size_t i;

	if (args->kpfd > maxfd)
		maxfd = args->kpfd;
	if (args->parentfd > maxfd)
		maxfd = args->parentfd;
	for (i = 0; i < args->nlistenfds; i++)
		if (args->listenfds[i] > maxfd)
			maxfd = args->listenfds[i];
	return (size_t)maxfd + 2 + CHILD_FD_SLACK;
}

static void
child_sandbox(const struct child_args *args)
{
	const struct conf *conf = args->conf;
	char err[256];

	if (sandbox_drop(conf->chroot, conf->uid, conf->gid,
	    child_nofile(args), err, sizeof(err)) == -1 ||
	    sandbox_limits((size_t)conf->limit_memory << 20,
	    (unsigned int)conf->limit_cpu, err, sizeof(err)) == -1 ||
	    sandbox_seccomp(SANDBOX_CHILD, err, sizeof(err)) == -1) {
		log_warnx("%s", err);
		child_exit(1);
	}
}

/*
 * Before we hold a connection the parent may retire us (reload, keyproc
 * restart, drain) with CHAN_RETIRE, or go away: either way, leave.
 */
static void
child_parent_ready(int parentfd)
{
	char buf[sizeof(struct msg_hdr) + 64];
	struct msg_hdr hdr;
	ssize_t n;

	n = msg_get(parentfd, buf, sizeof(buf), &hdr, NULL, MSG_DONTWAIT);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0 && hdr.type != CHAN_RETIRE) {
		log_debug("unexpected message %u from the parent", hdr.type);
		return;
	}
	child_exit(0);
}

/*
 * An epoll set over our listening sockets and the parent's channel.  The
 * listening sockets are EPOLLEXCLUSIVE: a new connection wakes one waiting
 * spare (or a few), not every spare of the listener, which is what poll(2)
 * would do.  Spares forked later still see a connection already waiting,
 * since epoll reports a ready socket when it is added.
 */
static int
child_waitset(const struct child_args *args)
{
	struct epoll_event ev;
	size_t i;
	int ep;

	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		return -1;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.fd = args->parentfd;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, args->parentfd, &ev) == -1)
		goto err;
	for (i = 0; i < args->nlistenfds; i++) {
		ev.events = EPOLLIN | EPOLLEXCLUSIVE;
		ev.data.fd = args->listenfds[i];
		if (epoll_ctl(ep, EPOLL_CTL_ADD, args->listenfds[i], &ev) == -1)
			goto err;
	}
	return ep;
err:
	close(ep);
	return -1;
}

/* Accept on lfd; return the connection, -1 to wait again, or leave. */
static int
child_try_accept(int lfd, struct sockaddr_storage *ss)
{
	socklen_t sslen = sizeof(*ss);
	int fd;

	fd = accept4(lfd, (struct sockaddr *)ss, &sslen,
	    SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd != -1)
		return fd;
	switch (errno) {
	case EAGAIN:		/* another spare won it */
	case EINTR:
	case ECONNABORTED:
		return -1;
	case EMFILE:
	case ENFILE:
	case ENOBUFS:
	case ENOMEM:
		log_warn("accept");
		poll(NULL, 0, 100);	/* don't spin */
		return -1;
	default:
		log_warn("accept");
		child_exit(1);
	}
}

/* Accept one connection on any of our listening sockets. */
static int
child_accept(const struct child_args *args, struct sockaddr_storage *ss)
{
	struct epoll_event evs[8];
	int ep, n, i, fd;

	if ((ep = child_waitset(args)) == -1) {
		log_warn("epoll");
		child_exit(1);
	}
	for (;;) {
		if ((n = epoll_wait(ep, evs, 8, -1)) == -1) {
			if (errno == EINTR)
				continue;
			log_warn("epoll_wait");
			child_exit(1);
		}
		for (i = 0; i < n; i++) {
			if (evs[i].data.fd == args->parentfd) {
				child_parent_ready(args->parentfd);
				continue;
			}
			if ((fd = child_try_accept(evs[i].data.fd, ss)) != -1) {
				close(ep);
				return fd;
			}
		}
	}
}

/* Tell the parent where we are: CHAN_ACCEPTED, CHAN_ESTABLISHED. */
static void
child_tell(const struct child_args *args, uint32_t type)
{
	if (msg_put(args->parentfd, type, NULL, 0, -1, 0) == -1)
		log_debug("cannot tell the parent: %s", strerror(errno));
}

/* Tell the parent we hold a connection, and let go of the listeners. */
static void
child_accepted(const struct child_args *args)
{
	size_t i;

	child_tell(args, CHAN_ACCEPTED);
	for (i = 0; i < args->nlistenfds; i++)
		close(args->listenfds[i]);
}

/*
 * The TLS handshake, bounded by timeout seconds in all.  Return 0, or -1
 * with the reason in *end and libtls' message in err.
 */
static int
child_handshake(struct tls *cctx, int fd, int timeout, const char **end,
    char *err, size_t errlen)
{
	struct timespec deadline;
	struct pollfd pfd;
	const char *e;
	int rv, ms;

	deadline_in(&deadline, timeout);
	for (;;) {
		rv = tls_handshake(cctx);
		if (rv == 0)
			return 0;
		if (rv != TLS_WANT_POLLIN && rv != TLS_WANT_POLLOUT) {
			e = tls_error(cctx);
			log_escape(err, errlen, e ? e : "failed",
			    strlen(e ? e : "failed"));
			*end = "handshake-failed";
			return -1;
		}
		pfd.fd = fd;
		pfd.events = rv == TLS_WANT_POLLIN ? POLLIN : POLLOUT;
		do {
			if ((ms = deadline_ms_left(&deadline)) == 0) {
				*end = "handshake-timeout";
				snprintf(err, errlen, "no handshake in %d s",
				    timeout);
				return -1;
			}
		} while ((rv = poll(&pfd, 1, ms)) == -1 && errno == EINTR);
		if (rv == -1) {
			snprintf(err, errlen, "poll: %s", strerror(errno));
			*end = "internal-error";
			return -1;
		}
	}
}

static void
child_tls_info(struct tls *cctx, struct child_conn *c)
{
	const char *sni;

	c->version = tls_conn_version(cctx);
	c->cipher = tls_conn_cipher(cctx);
	if ((sni = tls_conn_servername(cctx)) != NULL)
		log_escape(c->sni, sizeof(c->sni), sni, strlen(sni));
}

static const char *
child_backend_end(int e)
{
	switch (e) {
	case ECONNREFUSED:
		return "backend-refused";
	case ETIMEDOUT:
		return "backend-timeout";
	case ENETUNREACH:
	case EHOSTUNREACH:
		return "backend-unreachable";
	default:
		return "backend-error";
	}
}

/* The one access line of the connection. */
static void
child_log(const struct child_args *args, const struct child_conn *c)
{
	struct timespec now;
	long long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long long)(now.tv_sec - c->start.tv_sec) * 1000 +
	    (now.tv_nsec - c->start.tv_nsec) / 1000000;
	log_info("client=%s listener=%s tls=%s cipher=%s sni=%s backend=%s "
	    "from_client=%llu to_client=%llu duration=%lld.%03llds end=%s",
	    c->client, args->listener->name,
	    c->version ? c->version : "-", c->cipher ? c->cipher : "-",
	    c->sni[0] != '\0' ? c->sni : "-",
	    c->backend[0] != '\0' ? c->backend : "-",
	    (unsigned long long)c->st.from_client,
	    (unsigned long long)c->st.to_client, ms / 1000, ms % 1000,
	    c->st.end ? c->st.end : "-");
}

/* One attempt at a close_notify, for a client we are about to drop. */
static void
child_goodbye(struct tls *cctx)
{
	(void)tls_close(cctx);
}

static void
child_serve(const struct child_args *args, struct event_base *base, int cfd,
    struct child_conn *c)
{
	const struct conf *conf = args->conf;
	struct tls *cctx = NULL;
	char err[256];
	size_t idx;
	int bfd, e, one = 1;

	(void)setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (tls_accept_socket(args->tls, &cctx, cfd) == -1) {
		log_warnx("tls_accept_socket: %s", tls_error(args->tls));
		c->st.end = "internal-error";
		return;
	}
	if (child_handshake(cctx, cfd, conf->timeout_handshake, &c->st.end,
	    err, sizeof(err)) == -1) {
		log_info("client=%s: handshake: %s", c->client, err);
		return;
	}
	/* The parent's deadline for our handshake ends here. */
	child_tell(args, CHAN_ESTABLISHED);
	child_tls_info(cctx, c);
	tlshook_established();
	/* No signature is needed after the handshake: let go of keyproc, so
	 * nothing this process runs from now on can ask it for one. */
	kp_provider_set_channel(-1);
	close(args->kpfd);
	/* The handshake's memory is freed but still dirty: give the pages
	 * back, so an idle connection costs what it holds, not its peak. */
	malloc_trim(0);
	if ((bfd = backend_connect(args->listener, args->parentfd,
	    conf->timeout_connect, &idx, &e)) == -1) {
		c->st.end = child_backend_end(e);
		child_goodbye(cctx);
		return;
	}
	backend_name(&args->listener->backends[idx], c->backend,
	    sizeof(c->backend));
	if (relay_run(base, cctx, cfd, bfd, conf->timeout_idle, &c->st) == -1 &&
	    strcmp(c->st.end, "idle-timeout") == 0)
		child_goodbye(cctx);
}

__dead void
child_main(const struct child_args *args)
{
	static struct child_conn c;
	struct sockaddr_storage ss;
	struct event_base *base;
	int cfd;

	/* The parent has reset the other signals (child_start()). */
	log_init("child", log_verbose(), args->parentfd);
	child_parentfd = args->parentfd;
	/*
	 * A session and process group of our own: nothing aimed at the
	 * spawner's group (kill(-pgid), a socket's owner) reaches us, and
	 * nothing we could aim at our own group reaches another child.
	 */
	if (setsid() == -1) {
		log_warn("setsid");
		child_exit(1);
	}
	/* libtls writes without MSG_NOSIGNAL. */
	signal(SIGPIPE, SIG_IGN);
	kp_provider_set_channel(args->kpfd);
	/* Made before the sandbox: nothing it does at setup is filtered. */
	if ((base = event_base_new()) == NULL) {
		log_warnx("cannot make an event base");
		child_exit(1);
	}
	child_sandbox(args);
#ifdef RECLUSE_HOSTILE	/* the test-only build: tests/helpers/hostile.h */
	hostile_preaccept(args->listener->name, args->kpfd);
#endif

	cfd = child_accept(args, &ss);
	clock_gettime(CLOCK_MONOTONIC, &c.start);
	child_accepted(args);
#ifdef RECLUSE_HOSTILE
	hostile_accepted(cfd, args->kpfd, args->parentfd);
#endif
	backend_addr_name((struct sockaddr *)&ss, c.client, sizeof(c.client));
	child_serve(args, base, cfd, &c);
	child_log(args, &c);
	child_exit(0);
}
