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
#include "proxy/heapfile.h"
#include "proxy/pp_child.h"
#include "lib/log.h"
#include "lib/msg.h"
#include "lib/title.h"
#include "proxy/clientcert.h"
#include "proxy/relay.h"
#include "proxy/route.h"
#include "lib/sandbox.h"
#include "proxy/sni.h"
#include "proxy/snictx.h"
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
	char			 alpn[64];	/* agreed protocol, escaped */
	char			 proxied[INET6_ADDRSTRLEN + 16];	/* the
					   peer, when a PROXY header came */
	struct pp_conn		 pp;
	char			 cert[128];	/* the served certificate's
						   first name, escaped */
	const char		*version, *cipher;
	struct timespec		 start;
	uint32_t		 handshake_us;	/* 0: no handshake */
	struct relay_stats	 st;
	struct clientcert	 cc;		/* the client's certificate */
};

static int	child_parentfd = -1;
/* The parent's last CHAN_DRAIN: -1 none, 0 end now, N end once idle N s. */
static int	child_drain = -1;

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
	if (n > 0 && hdr.type != CHAN_RETIRE && hdr.type != CHAN_DRAIN) {
		log_debug("unexpected message %u from the parent", hdr.type);
		return;
	}
	child_exit(0);
}

/*
 * Once we hold a connection: read one message from the parent, and keep
 * a CHAN_DRAIN's argument in child_drain.  Anything else (a CHAN_RETIRE
 * sent before the parent knew we were busy) is ignored.  Return 1 if a
 * message was read, 0 if none was waiting, -1 if the parent is gone
 * (the connection carries on; stop watching the channel).
 */
static int
child_parent_msg(int parentfd)
{
	char buf[sizeof(struct msg_hdr) + 64];
	struct chan_drain m;
	struct msg_hdr hdr;
	ssize_t n;

	n = msg_get(parentfd, buf, sizeof(buf), &hdr, NULL, MSG_DONTWAIT);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0)
		return -1;
	if (hdr.type == CHAN_DRAIN && MSG_LEN_IS(&hdr, sizeof(m))) {
		memcpy(&m, buf + sizeof(hdr), sizeof(m));
		if (m.idle <= CHAN_DRAIN_IDLE_MAX)
			child_drain = (int)m.idle;
	}
	return 1;
}

/* The parent drains: hand its word to the relay (relay_drain()). */
static void
child_parent_ev(evutil_socket_t fd, short what, void *arg)
{
	struct event *ev = arg;

	switch (child_parent_msg(fd)) {
	case -1:
		event_del(ev);
		break;
	case 1:
		if (child_drain >= 0)
			relay_drain(child_drain);
		break;
	}
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
 * The TLS handshake, bounded by dl (timeout seconds from the accept, a
 * PROXY header included), and by a CHAN_DRAIN
 * 0 on parentfd.  Return 0, or -1 with the reason in *end and libtls'
 * message in err.
 */
static int
child_handshake(struct tls *cctx, int fd, int parentfd, int timeout,
    const struct timespec *dl, const char **end, char *err, size_t errlen)
{
	struct timespec deadline = *dl;
	struct pollfd pfd[2];
	const char *e;
	int rv, ms;

	pfd[1].fd = parentfd;
	pfd[1].events = POLLIN;
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
		pfd[0].fd = fd;
		pfd[0].events = rv == TLS_WANT_POLLIN ? POLLIN : POLLOUT;
		pfd[0].revents = 0;
		while (pfd[0].revents == 0) {
			if ((ms = deadline_ms_left(&deadline)) == 0) {
				*end = "handshake-timeout";
				snprintf(err, errlen, "no handshake in %d s",
				    timeout);
				return -1;
			}
			if (child_drain == 0) {
				*end = "drain";
				snprintf(err, errlen, "ended by the drain");
				return -1;
			}
			if (poll(pfd, 2, ms) == -1) {
				if (errno == EINTR)
					continue;
				snprintf(err, errlen, "poll: %s",
				    strerror(errno));
				*end = "internal-error";
				return -1;
			}
			if (pfd[1].revents != 0 &&
			    child_parent_msg(parentfd) == -1)
				pfd[1].fd = -1;
		}
	}
}

static void
child_tls_info(struct tls *cctx, struct child_conn *c)
{
	const char *sni, *alpn;

	c->version = tls_conn_version(cctx);
	c->cipher = tls_conn_cipher(cctx);
	if ((sni = snictx_servername()) != NULL)
		log_escape(c->sni, sizeof(c->sni), sni, strlen(sni));
	if ((alpn = tls_conn_alpn_selected(cctx)) != NULL)
		log_escape(c->alpn, sizeof(c->alpn), alpn, strlen(alpn));
	(void)sni_cert_name(c->cert, sizeof(c->cert));
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

/* The one access line of the connection (recluse(8), ACCESS LOG). */
static void
child_log(const struct child_args *args, const struct child_conn *c)
{
	long long ms = deadline_ms_since(&c->start);
	long long hs = c->handshake_us / 1000;
	char handshake[32] = "-", ccs[48], ccsub[4 * CLIENTCERT_STR_MAX];
	char ccfp[72];

	clientcert_log(&c->cc, ccs, sizeof(ccs), ccsub, sizeof(ccsub), ccfp,
	    sizeof(ccfp));
	if (c->handshake_us != 0)
		snprintf(handshake, sizeof(handshake), "%lld.%03llds", hs / 1000,
		    hs % 1000);
	log_info("client=%s listener=%s tls=%s cipher=%s sni=%s backend=%s "
	    "alpn=%s cert=%s proxied=%s client_cert=%s client_subject=%s "
	    "client_fp=%s from_client=%llu to_client=%llu handshake=%s "
	    "duration=%lld.%03llds end=%s",
	    c->client, args->listener->name,
	    c->version ? c->version : "-", c->cipher ? c->cipher : "-",
	    c->sni[0] != '\0' ? c->sni : "-",
	    c->backend[0] != '\0' ? c->backend : "-",
	    c->alpn[0] != '\0' ? c->alpn : "-",
	    c->cert[0] != '\0' ? c->cert : "-",
	    c->proxied[0] != '\0' ? c->proxied : "-", ccs, ccsub, ccfp,
	    (unsigned long long)c->st.from_client,
	    (unsigned long long)c->st.to_client, handshake, ms / 1000,
	    ms % 1000, c->st.end ? c->st.end : "-");
}

/* For the parent's status view: who our client is, once we know its SNI. */
static void
child_tell_peer(const struct child_args *args, const struct child_conn *c)
{
	struct chan_peer m;

	memset(&m, 0, sizeof(m));
	snprintf(m.client, sizeof(m.client), "%s", c->client);
	snprintf(m.sni, sizeof(m.sni), "%s", c->sni);
	if (msg_put(args->parentfd, CHAN_PEER, &m, sizeof(m), -1, 0) == -1)
		log_debug("cannot tell the parent: %s", strerror(errno));
}

/* How the connection ended, for the parent's counters (enum chan_end). */
static uint32_t
child_end_code(const struct child_conn *c, int sign)
{
	const char *end = c->st.end ? c->st.end : "";

	if (strcmp(end, "handshake-timeout") == 0 ||
	    strcmp(end, "proxy-header-timeout") == 0)
		return CHAN_END_HANDSHAKE_TIMEOUT;
	if (strncmp(end, "proxy-header-", 13) == 0)
		return CHAN_END_HANDSHAKE_FAILED;
	if (strcmp(end, "handshake-failed") == 0)
		return sign == CHAN_SIGN_REFUSED ? CHAN_END_KEYPROC :
		    CHAN_END_HANDSHAKE_FAILED;
	if (strncmp(end, "backend-", 8) == 0)
		return CHAN_END_BACKEND;
	if (strcmp(end, "idle-timeout") == 0)
		return CHAN_END_IDLE;
	if (strcmp(end, "internal-error") == 0)
		return CHAN_END_ERROR;
	if (strncmp(end, "drain", 5) == 0)
		return CHAN_END_DRAIN;
	return CHAN_END_CLOSED;
}

/* The connection's one CHAN_ENDED: what the parent counts. */
static void
child_tell_ended(const struct child_args *args, const struct child_conn *c)
{
	struct chan_ended m;
	int sign;

	memset(&m, 0, sizeof(m));
	kp_provider_sign_stats(&sign, &m.sign_us);
	m.sign = (uint32_t)sign;
	m.end = child_end_code(c, sign);
	m.handshake_us = c->handshake_us;
	m.from_client = c->st.from_client;
	m.to_client = c->st.to_client;
	if (msg_put(args->parentfd, CHAN_ENDED, &m, sizeof(m), -1, 0) == -1)
		log_debug("cannot tell the parent: %s", strerror(errno));
}

/* Microseconds since c's accept, at least 1. */
static uint32_t
child_us_since(const struct child_conn *c)
{
	struct timespec now;
	long long us;

	clock_gettime(CLOCK_MONOTONIC, &now);
	us = (long long)(now.tv_sec - c->start.tv_sec) * 1000000 +
	    (now.tv_nsec - c->start.tv_nsec) / 1000;
	return us < 1 ? 1 : us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

/* One attempt at a close_notify, for a client we are about to drop. */
static void
child_goodbye(struct tls *cctx)
{
	(void)tls_close(cctx);
}

/*
 * Relay, with the parent's channel watched: a CHAN_DRAIN ends the relay
 * cleanly (relay_drain()).
 */
static void
child_relay(const struct child_args *args, struct event_base *base,
    struct tls *cctx, int cfd, int bfd, struct child_conn *c)
{
	struct event *ev;
	int rv;

	ev = event_new(base, args->parentfd, EV_READ | EV_PERSIST,
	    child_parent_ev, event_self_cbarg());
	if (ev == NULL || event_add(ev, NULL) == -1)
		log_warnx("cannot watch the parent's channel");
	rv = relay_run(base, cctx, cfd, bfd, ev != NULL ? args->parentfd : -1,
	    args->conf->timeout_idle, child_drain, &c->st);
	if (ev != NULL)
		event_free(ev);
	if (rv == -1 && strcmp(c->st.end, "idle-timeout") == 0)
		child_goodbye(cctx);
}

/*
 * A PROXY header from a load balancer, if the peer may send one: the
 * client it names is the connection's client from here on, and the peer
 * goes into proxied=.  Return 0, or -1 with the connection to end.
 */
static int
child_proxied(const struct child_args *args, int cfd,
    const struct timespec *deadline, struct child_conn *c)
{
	char err[256];

	if (pp_child_receive(args->listener, cfd, &c->pp, deadline,
	    &c->st.end, err, sizeof(err)) == -1) {
		log_info("client=%s: %s", c->client, err);
		close(cfd);	/* now, not once the parent has our log */
		return -1;
	}
	if (!c->pp.proxied)
		return 0;
	snprintf(c->proxied, sizeof(c->proxied), "%s", c->client);
	if (c->pp.src.ss_family != AF_UNSPEC)
		backend_addr_name((struct sockaddr *)&c->pp.src, c->client,
		    sizeof(c->client));
	return 0;
}

static void
child_serve(const struct child_args *args, struct event_base *base, int cfd,
    struct child_conn *c)
{
	const struct conf *conf = args->conf;
	struct tls *cctx = NULL;
	struct timespec deadline;
	const char *kperr;
	char err[256];
	size_t idx, route;
	int bfd, e, one = 1;

	(void)setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	deadline = c->start;
	deadline.tv_sec += conf->timeout_handshake;
	if (child_proxied(args, cfd, &deadline, c) == -1)
		return;
	if (tls_accept_socket(args->tls, &cctx, cfd) == -1) {
		log_warnx("tls_accept_socket: %s", tls_error(args->tls));
		c->st.end = "internal-error";
		return;
	}
	if (child_handshake(cctx, cfd, args->parentfd, conf->timeout_handshake,
	    &deadline, &c->st.end, err, sizeof(err)) == -1) {
		clientcert_get(&c->cc, args->listener->client_verify !=
		    CONF_VERIFY_UNSET);
		/* Not the client's doing: keyproc did not sign. */
		if ((kperr = kp_provider_error()) != NULL)
			log_warnx("client=%s: handshake: %s (%s)", c->client,
			    kperr, err);
		else
			log_info("client=%s: handshake: %s", c->client, err);
		return;
	}
	/* The parent's deadline for our handshake ends here. */
	c->handshake_us = child_us_since(c);
	child_tell(args, CHAN_ESTABLISHED);
	child_tls_info(cctx, c);
	clientcert_get(&c->cc, args->listener->client_verify !=
	    CONF_VERIFY_UNSET);
	child_tell_peer(args, c);
	tlshook_established();
	/* No signature is needed after the handshake: let go of keyproc, so
	 * nothing this process runs from now on can ask it for one. */
	kp_provider_set_channel(-1);
	close(args->kpfd);
	/* The handshake's freed memory is given back by the relay once the
	 * connection is quiet (relay.c), not here: most connections end
	 * before that, and would take again, a fault each, the pages a trim
	 * here gave back. */
	route = route_find(args->listener, snictx_servername());
	if ((bfd = backend_connect(args->listener, args->parentfd,
	    conf->timeout_connect, route, route_alpn(args->listener,
	    tls_conn_alpn_selected(cctx)), &idx, &child_drain, &e)) == -1) {
		c->st.end = child_drain == 0 ? "drain" : child_backend_end(e);
		child_goodbye(cctx);
		return;
	}
	backend_name(&args->listener->backends[idx], c->backend,
	    sizeof(c->backend));
	if (pp_child_send(route_proxy_protocol(args->listener, route), bfd,
	    cfd, cctx, &c->pp, &c->cc, conf->timeout_connect) == -1) {
		log_info("client=%s: PROXY header to the backend: %s",
		    c->client, strerror(errno));
		c->st.end = "backend-error";
		close(bfd);
		child_goodbye(cctx);
		return;
	}
	child_relay(args, base, cctx, cfd, bfd, c);
}

struct event_base *
child_base_new(void)
{
	struct event_config *cfg;
	struct event_base *base = NULL;

	if ((cfg = event_config_new()) == NULL)
		return NULL;
	if (event_config_set_flag(cfg, EVENT_BASE_FLAG_IGNORE_ENV) == 0)
		base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return base;
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
	if ((base = child_base_new()) == NULL) {
		log_warnx("cannot make an event base");
		child_exit(1);
	}
	child_sandbox(args);
	title_set("recluse-child %s spare", args->listener->name);
#ifdef RECLUSE_HOSTILE	/* the test-only build: tests/helpers/hostile.h */
	hostile_preaccept(args->listener->name, args->kpfd);
#endif

	cfd = child_accept(args, &ss);
	clock_gettime(CLOCK_MONOTONIC, &c.start);
	heapfile_prefault();
	child_accepted(args);
#ifdef RECLUSE_HOSTILE
	hostile_accepted(cfd, args->kpfd, args->parentfd);
#endif
	backend_addr_name((struct sockaddr *)&ss, c.client, sizeof(c.client));
	c.pp.peer = ss;
	title_set("recluse-child %s %s", args->listener->name, c.client);
	child_serve(args, base, cfd, &c);
	child_tell_ended(args, &c);
	child_log(args, &c);
	child_exit(0);
}
