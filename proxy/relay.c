/*
 * Proxying for one connection child: see relay.h.
 *
 * The loop is level-triggered and state-driven.  relay_pump() tries every
 * operation that is not known to be blocked, over and over until nothing
 * moves, then registers exactly the events the blocked operations wait
 * for.  An operation is "blocked" when it last returned EAGAIN or
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
 * A drain (relay_drain()) ends the relay through the same half-close
 * paths: it marks both directions as read to the end, so what is buffered
 * is written, then the backend gets shutdown(SHUT_WR) and the client our
 * close_notify, and nothing waits for the peers' own.  It never calls
 * tls_close() while a write is unfinished: OpenSSL would take the
 * alert for a bad retry of the write.
 */
#include <sys/socket.h>
#include <sys/time.h>

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <tls.h>

#include "lib/log.h"
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
 * idle connection never uses.
 */
static unsigned char	relay_upbuf[RELAY_UP_BUFSZ];
static unsigned char	relay_downbuf[RELAY_DOWN_BUFSZ];

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

	struct event		*ev_cread, *ev_cwrite;
	struct event		*ev_bread, *ev_bwrite, *ev_idle;
	int			 on_cread, on_cwrite, on_bread, on_bwrite;
	int			 idle;
	struct timeval		 last;	/* a byte last moved */

	int			 draining;	/* ending: relay_drain_now() */
	int			 drain_idle;	/* s, from relay_drain(); 0: off */
	struct timeval		 drain_from;	/* when it came */
	struct event		*ev_drain;	/* RELAY_DRAIN_MS: give up */
	struct event		*ev_trim;	/* RELAY_TRIM_MS quiet: trim */
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
		n = send(r->bfd, b->data + b->off, b->len, MSG_NOSIGNAL);
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

static void
relay_set(struct event *ev, int want, int *on)
{
	if (want && !*on)
		event_add(ev, NULL);
	else if (!want && *on)
		event_del(ev);
	*on = want;
}

static void
relay_events(struct relay *r)
{
	int in = TLS_WANT_POLLIN, out = TLS_WANT_POLLOUT;

	relay_set(r->ev_cread, r->c_rd_want == in || r->c_wr_want == in ||
	    r->c_close_want == in, &r->on_cread);
	relay_set(r->ev_cwrite, r->c_rd_want == out || r->c_wr_want == out ||
	    r->c_close_want == out, &r->on_cwrite);
	relay_set(r->ev_bread, r->b_rd_want, &r->on_bread);
	relay_set(r->ev_bwrite, r->b_wr_want, &r->on_bwrite);
}

/*
 * Once traffic stops for RELAY_TRIM_MS, give back what it left dirty (the
 * record buffers, freed now that they are empty, our stack): an idle
 * connection then costs what it holds.  Armed at most once per quiet
 * period, not per byte: when it fires early it sleeps for the rest.
 */
static void
relay_trim_arm(struct relay *r)
{
	struct timeval tv = { 0, RELAY_TRIM_MS * 1000 };

	if (r->trim_armed)
		return;
	r->trim_armed = 1;
	evtimer_add(r->ev_trim, &tv);
}

static void
relay_trim_ev(evutil_socket_t fd, short what, void *arg)
{
	struct relay *r = arg;
	struct timeval now, quiet, limit = { 0, RELAY_TRIM_MS * 1000 };

	event_gettime_monotonic(r->base, &now);
	timersub(&now, &r->last, &quiet);
	if (timercmp(&quiet, &limit, <)) {
		timersub(&limit, &quiet, &limit);
		evtimer_add(r->ev_trim, &limit);
		return;
	}
	r->trim_armed = 0;
	tlshook_quiet();
	memtrim();
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
	if (r->done) {
		event_base_loopbreak(r->base);
		return;
	}
	if (moved) {
		event_gettime_monotonic(r->base, &r->last);
		relay_trim_arm(r);
	}
	relay_events(r);
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

static void
relay_client_ev(evutil_socket_t fd, short what, void *arg)
{
	struct relay *r = arg;

	if (what & EV_READ)
		relay_unblock(r, TLS_WANT_POLLIN);
	if (what & EV_WRITE)
		relay_unblock(r, TLS_WANT_POLLOUT);
	relay_pump(r);
}

static void
relay_backend_ev(evutil_socket_t fd, short what, void *arg)
{
	struct relay *r = arg;

	if (what & EV_READ)
		r->b_rd_want = 0;
	if (what & EV_WRITE)
		r->b_wr_want = 0;
	relay_pump(r);
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
	struct timeval tv = { 0, RELAY_DRAIN_MS * 1000 };

	if (r->draining || r->done)
		return;
	r->draining = 1;
	r->st->end = end;
	r->c_eof = r->b_eof = 1;
	r->c_rd_want = r->b_rd_want = 0;
	evtimer_del(r->ev_idle);
	evtimer_add(r->ev_drain, &tv);
	relay_pump(r);
}

static void
relay_drain_ev(evutil_socket_t fd, short what, void *arg)
{
	struct relay *r = arg;

	log_debug("drain: a peer does not read; leaving without a clean end");
	relay_fail(r, r->st->end);
	event_base_loopbreak(r->base);
}

/*
 * Whether the relay has been idle long enough to end: "idle-timeout", or
 * in a drain "drain-idle" (idle since the drain began, at the earliest);
 * NULL, with the time until the next look in *left.
 */
static const char *
relay_idle_due(struct relay *r, struct timeval *left)
{
	struct timeval now, elapsed, since, limit;

	event_gettime_monotonic(r->base, &now);
	timersub(&now, &r->last, &elapsed);
	if (elapsed.tv_sec >= r->idle)
		return "idle-timeout";
	limit.tv_sec = r->idle;
	limit.tv_usec = 0;
	timersub(&limit, &elapsed, left);
	if (r->drain_idle == 0)
		return NULL;
	since = timercmp(&r->last, &r->drain_from, >) ? r->last :
	    r->drain_from;
	timersub(&now, &since, &elapsed);
	if (elapsed.tv_sec >= r->drain_idle)
		return "drain-idle";
	limit.tv_sec = r->drain_idle;
	timersub(&limit, &elapsed, &limit);
	if (timercmp(&limit, left, <))
		*left = limit;
	return NULL;
}

/*
 * The idle timer is not re-armed on every byte: when it fires it looks
 * at when a byte last moved and sleeps again for the rest.
 */
static void
relay_idle_check(struct relay *r)
{
	struct timeval left;
	const char *end;

	if ((end = relay_idle_due(r, &left)) == NULL)
		evtimer_add(r->ev_idle, &left);
	else if (strcmp(end, "drain-idle") == 0)
		relay_drain_now(r, end);
	else {
		relay_fail(r, end);
		event_base_loopbreak(r->base);
	}
}

static void
relay_idle_ev(evutil_socket_t fd, short what, void *arg)
{
	relay_idle_check(arg);
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
	event_gettime_monotonic(r->base, &r->drain_from);
	relay_idle_check(r);
}

static void
relay_free_events(struct relay *r)
{
	struct event **evs[] = { &r->ev_cread, &r->ev_cwrite, &r->ev_bread,
	    &r->ev_bwrite, &r->ev_idle, &r->ev_drain, &r->ev_trim };
	size_t i;

	for (i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
		if (*evs[i] != NULL)
			event_free(*evs[i]);
		*evs[i] = NULL;
	}
}

int
relay_run(struct event_base *base, struct tls *tls, int cfd, int bfd,
    int idle, int drain, struct relay_stats *st)
{
	static struct relay r;
	struct timeval tv;

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
	r.st = st;
	r.idle = idle > 0 ? idle : 1;
	if ((r.ev_cread = event_new(base, cfd, EV_READ | EV_PERSIST,
	    relay_client_ev, &r)) == NULL ||
	    (r.ev_cwrite = event_new(base, cfd, EV_WRITE | EV_PERSIST,
	    relay_client_ev, &r)) == NULL ||
	    (r.ev_bread = event_new(base, bfd, EV_READ | EV_PERSIST,
	    relay_backend_ev, &r)) == NULL ||
	    (r.ev_bwrite = event_new(base, bfd, EV_WRITE | EV_PERSIST,
	    relay_backend_ev, &r)) == NULL ||
	    (r.ev_idle = evtimer_new(base, relay_idle_ev, &r)) == NULL ||
	    (r.ev_drain = evtimer_new(base, relay_drain_ev, &r)) == NULL ||
	    (r.ev_trim = evtimer_new(base, relay_trim_ev, &r)) == NULL) {
		log_warnx("relay: cannot make events");
		relay_free_events(&r);
		st->end = "internal-error";
		return -1;
	}
	event_gettime_monotonic(base, &r.last);
	tv.tv_sec = r.idle;
	tv.tv_usec = 0;
	evtimer_add(r.ev_idle, &tv);

	relay_active = &r;
	relay_pump(&r);
	if (drain >= 0)
		relay_drain(drain);
	if (!r.done && event_base_dispatch(base) == -1)
		relay_fail(&r, "internal-error");
	if (!r.done)
		relay_fail(&r, "internal-error");
	relay_active = NULL;
	relay_free_events(&r);
	if (st->end == NULL)
		st->end = "closed";
	return r.failed ? -1 : 0;
}
