/*
 * Proxying for one connection child: see relay.h.
 *
 * The loop is level-triggered and state-driven.  relay_pump() tries every
 * operation that is not known to be blocked, over and over until nothing
 * moves; the loop then waits in epoll for exactly the events the blocked
 * operations wait for (an epoll_ctl() only when that set changes: on a
 * keep-alive connection, never between requests).  An operation is "blocked" when it last returned EAGAIN or
 * TLS_WANT_POLLIN/TLS_WANT_POLLOUT; the matching event unblocks it.  A full
 * buffer is not a block: the reader is simply not tried, and the pump tries
 * it again as soon as the writer has made room.  That is also what keeps
 * plaintext that OpenSSL already decrypted but we had no room for (it
 * sits in the SSL object, invisible to epoll) from being forgotten.
 *
 * Reads and writes go to the SSL object (tlsio.h: libtls' calls without
 * their per-call error-queue work); tls_close() stays with libtls.  Each
 * may want the other readiness than its name says (TLS 1.3 key updates,
 * alerts), so each remembers which one.
 *
 * Half-close: libtls' tls_close() on a context made by tls_accept_socket()
 * only calls SSL_shutdown(), which sends our close_notify; it neither
 * shuts down nor closes the socket (libtls does that only for sockets it
 * opened itself in tls_connect()).  OpenSSL keeps reading after
 * SSL_shutdown() until the peer's close_notify, so after the backend's EOF
 * we send close_notify and go on reading the client until it is done.
 *
 * The loop is our own, not libevent's dispatch: per request that is two
 * epoll_wait() wake-ups and nothing else (no callback dispatch, no event
 * map, no timer heap).  epoll rather than poll(2): poll(2) would hang a
 * wait-queue entry on each of the three descriptors and take it off again
 * at every wake-up.  The timers (idle, drain, trim) are deadlines looked
 * at once per wake-up; the parent's channel stays a libevent event of the
 * caller's, run when epoll says it is readable.
 *
 * A drain (relay_drain()) ends the relay through the same half-close
 * paths: it marks both directions as read to the end, so what is buffered
 * is written, then the backend gets shutdown(SHUT_WR) and the client our
 * close_notify, and nothing waits for the peers' own.  It never calls
 * tls_close() while a write is unfinished: OpenSSL would take the
 * alert for a bad retry of the write.
 */
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <tls.h>

#include "lib/log.h"
#include "proxy/heapfile.h"
#include "proxy/memtrim.h"
#include "proxy/relay.h"
#include "proxy/tlshook.h"
#include "proxy/tlsio.h"

/* Quiet this long, a connection gives its freed memory back. */
#define RELAY_TRIM_MS	500

struct relay_buf {
	size_t		 off, len, size;
	unsigned char	*data;		/* size bytes */
};

/*
 * One connection per process: the buffers are static, outside struct
 * relay, so that clearing the state does not dirty 80 KiB of pages an
 * idle connection never uses.  Page-aligned, so that the trim can give
 * back the pages traffic wrote (relay_trim_buf()).
 */
#define RELAY_PAGE	4096
static unsigned char	relay_upbuf[RELAY_UP_BUFSZ]
			    __attribute__((aligned(RELAY_PAGE)));
static unsigned char	relay_downbuf[RELAY_DOWN_BUFSZ]
			    __attribute__((aligned(RELAY_PAGE)));
_Static_assert(RELAY_UP_BUFSZ % RELAY_PAGE == 0 &&
    RELAY_DOWN_BUFSZ % RELAY_PAGE == 0, "whole pages");

/*
 * The *_want fields say what a blocked operation waits for: 0 (not
 * blocked), 1 (backend socket ready), or TLS_WANT_POLLIN/POLLOUT.
 */
struct relay {
	struct event_base	*base;
	struct tls		*tls;
	struct ssl_st		*ssl;	/* tls's: tlsio_read(), tlsio_write() */
	int			 cfd, bfd;

	/* client -> backend */
	struct relay_buf	 up;
	int			 c_rd_want;	/* tlsio_read() */
	int			 c_eof;	/* close_notify or EOF */
	int			 b_wr_want;	/* send() to backend */
	int			 b_shut;	/* SHUT_WR done */

	/* backend -> client */
	struct relay_buf	 down;
	int			 b_rd_want;	/* recv() from it */
	int			 b_eof;
	int			 c_wr_want;	/* tlsio_write() */
	int			 c_close_want;	/* tls_close() */
	int			 c_closed;	/* close_notify sent */

	int			 done, failed;
	struct relay_stats	*st;

	int			 ctlfd;	/* its event is on base; -1 */
	int			 epfd;	/* cfd, bfd, ctlfd */
	uint32_t		 c_on, b_on;	/* what epfd watches them for */
	struct timeval		 now;	/* as of the last wake-up */
	int			 idle;
	struct timeval		 last;	/* a byte last moved */
	struct timeval		 idle_at;	/* look at idleness then */
	int			 idle_armed;

	int			 draining;	/* ending: relay_drain_now() */
	int			 drain_idle;	/* s, from relay_drain(); 0: off */
	struct timeval		 drain_from;	/* when it came */
	struct timeval		 drain_at;	/* RELAY_DRAIN_MS: give up */
	int			 drain_armed;
	struct timeval		 trim_at;	/* RELAY_TRIM_MS quiet: trim */
	int			 trim_armed;
};

/* The running relay, for relay_drain(); NULL outside relay_run(). */
static struct relay	*relay_active;

/* A clean end: remembered only if nothing else has been. */
static void
relay_note(struct relay *r, const char *end)
{
	if (r->st->end == NULL)
		r->st->end = end;
}

/* An error or a timeout: ends the relay and says why. */
static void
relay_fail(struct relay *r, const char *end)
{
	r->st->end = end;
	r->failed = 1;
	r->done = 1;
}

static size_t
relay_room(struct relay_buf *b)
{
	if (b->len == 0)
		b->off = 0;
	else if (b->off > 0 && b->off + b->len == b->size) {
		memmove(b->data, b->data + b->off, b->len);
		b->off = 0;
	}
	return b->size - b->off - b->len;
}

static void
relay_consume(struct relay_buf *b, size_t n)
{
	b->off += n;
	b->len -= n;
	if (b->len == 0)
		b->off = 0;
}

/*
 * Read what the client sent.  A TCP EOF without close_notify is a
 * half-close like close_notify (tlshook.c sets SSL_OP_IGNORE_UNEXPECTED_EOF,
 * without which OpenSSL 3 would answer it with a fatal alert and the
 * backend's answer still in flight would be lost); the access line tells
 * the two apart.  With read-ahead on, OpenSSL may hold more records than it
 * returned: only when it holds nothing is the next read left to epoll, so a
 * request costs one read(2), not a second one that says EAGAIN.
 */
static int
relay_client_read(struct relay *r)
{
	struct relay_buf *b = &r->up;
	size_t room;
	ssize_t n;

	if (r->c_eof || r->c_rd_want != 0 || (room = relay_room(b)) == 0)
		return 0;
	n = tlsio_read(r->ssl, b->data + b->off + b->len, room);
	if (n > 0) {
		b->len += (size_t)n;
		if (!tlshook_pending())
			r->c_rd_want = TLS_WANT_POLLIN;
		return 1;
	}
	if (n == TLS_WANT_POLLIN || n == TLS_WANT_POLLOUT) {
		r->c_rd_want = (int)n;
		return 0;
	}
	if (n == 0) {
		r->c_eof = 1;
		relay_note(r, tlshook_close_notify() ? "client-close" :
		    "client-eof");
		return 1;
	}
	log_info("client read: %s", tlsio_error());
	relay_fail(r, "client-error");
	return 0;
}

static int
relay_backend_write(struct relay *r)
{
	struct relay_buf *b = &r->up;
	ssize_t n;

	if (b->len > 0 && r->b_wr_want == 0) {
		/* write(2), not send(MSG_NOSIGNAL): a child ignores SIGPIPE,
		 * and the kernel allows write(2) from its filter's cache,
		 * where sendto(2), checked argument by argument, runs both
		 * filters (the spawner's and the child's) every time. */
		n = write(r->bfd, b->data + b->off, b->len);
		if (n > 0) {
			relay_consume(b, (size_t)n);
			r->st->from_client += (uint64_t)n;
			return 1;
		}
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			r->b_wr_want = 1;
			return 0;
		}
		if (n == -1 && errno == EINTR)
			return 1;
		log_info("backend write: %s", strerror(errno));
		relay_fail(r, "backend-error");
		return 0;
	}
	if (r->c_eof && b->len == 0 && !r->b_shut) {
		if (shutdown(r->bfd, SHUT_WR) == -1 && errno != ENOTCONN)
			log_debug("backend shutdown: %s", strerror(errno));
		r->b_shut = 1;
		return 1;
	}
	return 0;
}

static int
relay_backend_read(struct relay *r)
{
	struct relay_buf *b = &r->down;
	size_t room;
	ssize_t n;

	if (r->b_eof || r->b_rd_want || (room = relay_room(b)) == 0)
		return 0;
	n = recv(r->bfd, b->data + b->off + b->len, room, 0);
	if (n > 0) {
		b->len += (size_t)n;
		/* A short read drained the socket: let epoll say when more
		 * comes rather than ask again and hear EAGAIN. */
		if ((size_t)n < room)
			r->b_rd_want = 1;
		return 1;
	}
	if (n == 0) {
		r->b_eof = 1;
		relay_note(r, "backend-eof");
		return 1;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		r->b_rd_want = 1;
		return 0;
	}
	if (errno == EINTR)
		return 1;
	log_info("backend read: %s", strerror(errno));
	relay_fail(r, "backend-error");
	return 0;
}

static int
relay_client_write(struct relay *r)
{
	struct relay_buf *b = &r->down;
	ssize_t n;
	int rv;

	if (b->len > 0 && r->c_wr_want == 0) {
		n = tlsio_write(r->ssl, b->data + b->off, b->len);
		if (n > 0) {
			relay_consume(b, (size_t)n);
			r->st->to_client += (uint64_t)n;
			return 1;
		}
		if (n == TLS_WANT_POLLIN || n == TLS_WANT_POLLOUT) {
			r->c_wr_want = (int)n;
			return 0;
		}
		log_info("client write: %s", n == 0 ? "connection closed" :
		    tlsio_error());
		relay_fail(r, "client-error");
		return 0;
	}
	if (r->b_eof && b->len == 0 && !r->c_closed && r->c_close_want == 0) {
		rv = tls_close(r->tls);
		if (rv == TLS_WANT_POLLIN || rv == TLS_WANT_POLLOUT) {
			r->c_close_want = rv;
			return 0;
		}
		/* -1 here is "EOF without close notify": already noted. */
		r->c_closed = 1;
		return 1;
	}
	return 0;
}

/*
 * Have epfd watch fd for want (EPOLLIN, EPOLLOUT), *on being what it
 * watches now.  A socket nothing waits for is taken out: epoll would
 * report its hang-up or error whatever it is asked, and wake us for
 * nothing.  Return 0 or -1.
 */
static int
relay_watch(struct relay *r, int fd, uint32_t *on, uint32_t want)
{
	struct epoll_event ev;
	int op;

	if (want == *on)
		return 0;
	memset(&ev, 0, sizeof(ev));
	ev.events = want;
	ev.data.fd = fd;
	op = *on == 0 ? EPOLL_CTL_ADD : want == 0 ? EPOLL_CTL_DEL :
	    EPOLL_CTL_MOD;
	if (epoll_ctl(r->epfd, op, fd, &ev) == -1)
		return -1;
	*on = want;
	return 0;
}

/* What the blocked operations wait for, given to epfd.  Return 0 or -1. */
static int
relay_events(struct relay *r)
{
	int in = TLS_WANT_POLLIN, out = TLS_WANT_POLLOUT;
	uint32_t c = 0, b = 0;

	if (r->c_rd_want == in || r->c_wr_want == in || r->c_close_want == in)
		c |= EPOLLIN;
	if (r->c_rd_want == out || r->c_wr_want == out ||
	    r->c_close_want == out)
		c |= EPOLLOUT;
	if (r->b_rd_want)
		b |= EPOLLIN;
	if (r->b_wr_want)
		b |= EPOLLOUT;
	if (relay_watch(r, r->cfd, &r->c_on, c) == -1 ||
	    relay_watch(r, r->bfd, &r->b_on, b) == -1)
		return -1;
	return 0;
}

/* when = now + ms. */
static void
relay_after(const struct relay *r, long ms, struct timeval *when)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	timeradd(&r->now, &tv, when);
}

/*
 * Once traffic stops for RELAY_TRIM_MS, give back what it left dirty (the
 * handshake's freed memory, the record buffers, freed now that they are
 * empty, our relay buffers, our stack): an idle connection then costs
 * what it holds.  Armed when the relay starts and then at most once per
 * quiet period, not per byte: when it fires early it sleeps for the rest.
 */
static void
relay_trim_arm(struct relay *r)
{
	if (r->trim_armed)
		return;
	r->trim_armed = 1;
	relay_after(r, RELAY_TRIM_MS, &r->trim_at);
}

/* An empty buffer's pages back to the kernel: they read as zeros again. */
static void
relay_trim_buf(struct relay_buf *b)
{
	if (b->len == 0)
		(void)madvise(b->data, b->size, MADV_DONTNEED);
}

static void
relay_trim_due(struct relay *r)
{
	struct timeval quiet, limit = { 0, RELAY_TRIM_MS * 1000 };

	timersub(&r->now, &r->last, &quiet);
	if (timercmp(&quiet, &limit, <)) {
		timersub(&limit, &quiet, &limit);
		timeradd(&r->now, &limit, &r->trim_at);
		return;
	}
	r->trim_armed = 0;
	tlshook_quiet();
	memtrim();
	heapfile_return();
	relay_trim_buf(&r->up);
	relay_trim_buf(&r->down);
}

static void
relay_pump(struct relay *r)
{
	int moved = 0, progress;

	do {
		progress = relay_client_read(r);
		progress |= relay_backend_write(r);
		progress |= relay_backend_read(r);
		progress |= relay_client_write(r);
		moved |= progress;
	} while (progress && !r->done);

	if (!r->done && r->c_eof && r->b_shut && r->b_eof && r->c_closed)
		r->done = 1;
	if (!r->done && moved) {
		r->last = r->now;
		relay_trim_arm(r);
	}
}

/* The client socket is ready for `want`: whatever waited for it may go. */
static void
relay_unblock(struct relay *r, int want)
{
	if (r->c_rd_want == want)
		r->c_rd_want = 0;
	if (r->c_wr_want == want)
		r->c_wr_want = 0;
	if (r->c_close_want == want)
		r->c_close_want = 0;
}

/*
 * What epoll said of one of the two sockets.  An error or a hang-up
 * unblocks both ways (as libevent did): the next try says what it is.
 */
static void
relay_ready(struct relay *r, int fd, uint32_t what)
{
	if (what & (EPOLLERR | EPOLLHUP))
		what |= EPOLLIN | EPOLLOUT;
	if (fd == r->cfd) {
		if (what & EPOLLIN)
			relay_unblock(r, TLS_WANT_POLLIN);
		if (what & EPOLLOUT)
			relay_unblock(r, TLS_WANT_POLLOUT);
	} else {
		if (what & EPOLLIN)
			r->b_rd_want = 0;
		if (what & EPOLLOUT)
			r->b_wr_want = 0;
	}
}

/*
 * End the relay cleanly, now: read nothing more either way; the
 * half-close paths then write what is buffered, shut the backend down and
 * send close_notify (see the top of this file).  Bounded by RELAY_DRAIN_MS:
 * a peer that does not read cannot keep us.
 */
static void
relay_drain_now(struct relay *r, const char *end)
{
	if (r->draining || r->done)
		return;
	r->draining = 1;
	r->st->end = end;
	r->c_eof = r->b_eof = 1;
	r->c_rd_want = r->b_rd_want = 0;
	r->idle_armed = 0;
	r->drain_armed = 1;
	relay_after(r, RELAY_DRAIN_MS, &r->drain_at);
	relay_pump(r);
}

static void
relay_drain_due(struct relay *r)
{
	log_debug("drain: a peer does not read; leaving without a clean end");
	relay_fail(r, r->st->end);
}

/*
 * Whether the relay has been idle long enough to end: "idle-timeout", or
 * in a drain "drain-idle" (idle since the drain began, at the earliest);
 * NULL, with the time until the next look in *left.
 */
static const char *
relay_idle_due(struct relay *r, struct timeval *left)
{
	struct timeval elapsed, since, limit;

	timersub(&r->now, &r->last, &elapsed);
	if (elapsed.tv_sec >= r->idle)
		return "idle-timeout";
	limit.tv_sec = r->idle;
	limit.tv_usec = 0;
	timersub(&limit, &elapsed, left);
	if (r->drain_idle == 0)
		return NULL;
	since = timercmp(&r->last, &r->drain_from, >) ? r->last :
	    r->drain_from;
	timersub(&r->now, &since, &elapsed);
	if (elapsed.tv_sec >= r->drain_idle)
		return "drain-idle";
	limit.tv_sec = r->drain_idle;
	timersub(&limit, &elapsed, &limit);
	if (timercmp(&limit, left, <))
		*left = limit;
	return NULL;
}

/*
 * The idle deadline is not moved on every byte: when it comes it looks
 * at when a byte last moved and sets itself again for the rest.
 */
static void
relay_idle_check(struct relay *r)
{
	struct timeval left;
	const char *end;

	if ((end = relay_idle_due(r, &left)) == NULL) {
		r->idle_armed = 1;
		timeradd(&r->now, &left, &r->idle_at);
	} else if (strcmp(end, "drain-idle") == 0)
		relay_drain_now(r, end);
	else
		relay_fail(r, end);
}

void
relay_drain(int idle)
{
	struct relay *r = relay_active;

	if (r == NULL || r->done || r->draining)
		return;
	if (idle <= 0) {
		relay_drain_now(r, "drain");
		return;
	}
	if (r->drain_idle != 0 && r->drain_idle <= idle)
		return;
	r->drain_idle = idle;
	r->drain_from = r->now;
	relay_idle_check(r);
}

static void
relay_clock(struct relay *r)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	r->now.tv_sec = ts.tv_sec;
	r->now.tv_usec = ts.tv_nsec / 1000;
}

/* ms until when (rounded up, at least 0), at most INT_MAX / 2. */
static int
relay_ms_until(const struct relay *r, const struct timeval *when)
{
	struct timeval left;

	if (!timercmp(when, &r->now, >))
		return 0;
	timersub(when, &r->now, &left);
	if (left.tv_sec > 86400)
		return 86400 * 1000;
	return (int)(left.tv_sec * 1000 + (left.tv_usec + 999) / 1000);
}

/*
 * Act on the deadlines that have come (drain first: it ends the relay);
 * return the ms until the next one, -1 if none.
 */
static int
relay_timers(struct relay *r)
{
	int ms = -1, t;

	if (r->drain_armed && !timercmp(&r->drain_at, &r->now, >)) {
		r->drain_armed = 0;
		relay_drain_due(r);
	}
	if (!r->done && r->idle_armed && !timercmp(&r->idle_at, &r->now, >)) {
		r->idle_armed = 0;
		relay_idle_check(r);
	}
	if (!r->done && r->trim_armed && !timercmp(&r->trim_at, &r->now, >))
		relay_trim_due(r);
	if (r->done)
		return 0;
	if (r->drain_armed)
		ms = relay_ms_until(r, &r->drain_at);
	if (r->idle_armed && ((t = relay_ms_until(r, &r->idle_at)) < ms ||
	    ms == -1))
		ms = t;
	if (r->trim_armed && ((t = relay_ms_until(r, &r->trim_at)) < ms ||
	    ms == -1))
		ms = t;
	return ms;
}

/*
 * The parent's channel is readable (or closed): run base once, without
 * waiting, so its callback reads it (and may call relay_drain()).  Once
 * base watches nothing more (the callback let a closed channel go), stop
 * looking at it.
 */
static void
relay_ctl(struct relay *r)
{
	if (event_base_loop(r->base, EVLOOP_NONBLOCK) == -1 ||
	    event_base_get_num_events(r->base, EVENT_BASE_COUNT_ADDED) == 0) {
		(void)epoll_ctl(r->epfd, EPOLL_CTL_DEL, r->ctlfd, NULL);
		r->ctlfd = -1;
	}
}

/* Wait, and move bytes, until the relay is done. */
static void
relay_loop(struct relay *r)
{
	struct epoll_event evs[3];
	int i, ms, n, moved;

	while (!r->done) {
		ms = relay_timers(r);
		if (r->done)
			break;
		if (relay_events(r) == -1) {
			log_warn("relay: epoll_ctl");
			relay_fail(r, "internal-error");
			break;
		}
		n = epoll_wait(r->epfd, evs, 3, ms);
		relay_clock(r);
		if (n == -1 && errno != EINTR) {
			log_warn("relay: epoll_wait");
			relay_fail(r, "internal-error");
			break;
		}
		for (i = 0, moved = 0; i < n && !r->done; i++) {
			if (evs[i].data.fd == r->ctlfd)
				relay_ctl(r);
			else {
				relay_ready(r, evs[i].data.fd, evs[i].events);
				moved = 1;
			}
		}
		if (moved && !r->done)
			relay_pump(r);
	}
}

/* The epoll set, with the parent's channel in it.  Return 0 or -1. */
static int
relay_epoll(struct relay *r)
{
	struct epoll_event ev;

	if ((r->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		return -1;
	if (r->ctlfd == -1)
		return 0;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.fd = r->ctlfd;
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->ctlfd, &ev) == -1) {
		close(r->epfd);
		return -1;
	}
	return 0;
}

int
relay_run(struct event_base *base, struct tls *tls, int cfd, int bfd,
    int ctlfd, int idle, int drain, struct relay_stats *st)
{
	/* On our stack, a page every connection has dirty anyway, not a
	 * page of its own in the bss: relay_run() outlives every use. */
	struct relay r;

	memset(&r, 0, sizeof(r));
	r.up.data = relay_upbuf;
	r.up.size = sizeof(relay_upbuf);
	r.down.data = relay_downbuf;
	r.down.size = sizeof(relay_downbuf);
	memset(st, 0, sizeof(*st));
	r.base = base;
	r.tls = tls;
	if ((r.ssl = tlshook_conn_ssl()) == NULL) {
		log_warnx("relay: no SSL object");
		st->end = "internal-error";
		return -1;
	}
	tlsio_start();
	r.cfd = cfd;
	r.bfd = bfd;
	r.ctlfd = ctlfd;
	r.st = st;
	if (relay_epoll(&r) == -1) {
		log_warn("relay: epoll");
		st->end = "internal-error";
		return -1;
	}
	r.idle = idle > 0 ? idle : 1;
	relay_clock(&r);
	r.last = r.now;
	r.idle_armed = 1;
	relay_after(&r, r.idle * 1000L, &r.idle_at);
	relay_trim_arm(&r);

	relay_active = &r;
	relay_pump(&r);
	if (drain >= 0)
		relay_drain(drain);
	relay_loop(&r);
	relay_active = NULL;
	close(r.epfd);
	if (st->end == NULL)
		st->end = "closed";
	return r.failed ? -1 : 0;
}
