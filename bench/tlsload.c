/*
 * tlsload: the TLS client of bench/run.  Loopback only (127.0.0.1), one
 * process, epoll, non-blocking OpenSSL; it never verifies the server's
 * certificate chain (the handshake signature is still checked by OpenSSL)
 * and never resumes a session, unless -r.
 *
 * tlsload handshake -p PORT [-c INFLIGHT] [-d SECONDS] [-r] [-s SNI]
 *     [-u PATH]
 *	Full handshakes: each connection does a TLS handshake, sends
 *	"GET PATH" with "Connection: close", reads the whole reply and then
 *	reads until the proxy closes.  INFLIGHT connections at a time for
 *	SECONDS, then waits (at most 10 s, or -x) for those still open.  Prints
 *	"connections N failed F seconds S".
 *
 *	-e FILE: one line per connection in FILE, "START END ok|fail", both
 *	times in seconds of the real-time clock (date +%s.%N), for the
 *	fault tests of tests/soak.bats.  -x MS: a connection not done MS
 *	milliseconds after it started fails (and is closed).  SIGTERM ends
 *	the SECONDS early: no new connection, those open finish as at the end.
 *	-r: TLS 1.3 only, resuming: one connection first (not counted) gets
 *	a ticket, then every connection offers the newest ticket received,
 *	and the line ends with "resumed R": how many of the connections done
 *	were resumed.
 *
 * tlsload hold -p PORT -n N [-c INFLIGHT] [-s SNI] [-t SECONDS] [-u PATH]
 *	Opens N connections, INFLIGHT at a time, and does one keep-alive
 *	request on each; prints "open ok N failed F seconds S", then "ready",
 *	and holds them.  A line or EOF on stdin ends the wait: one more request
 *	goes out on every connection still open and every reply is checked;
 *	prints "round ok N failed F dropped D seconds S" and exits.  Each phase
 *	ends after SECONDS at most; what is unfinished then counts as failed.
 *
 * tlsload rate -p PORT -R PER_SECOND [-d SECONDS] [-c MAX_INFLIGHT]
 *     [-s SNI] [-u PATH]
 *	Open loop: connection k is due at k / PER_SECOND seconds after the
 *	start, however many earlier ones are still open, so a slow server
 *	cannot slow the arrivals down.  Each connection does what one of
 *	handshake's does.  Its latency counts from when it was due (a wait
 *	for one of the MAX_INFLIGHT slots, default 10000, counts too) to the
 *	end of its handshake (hs) and to the end of its reply (req).  Arrivals
 *	stop after SECONDS; those still open then get 10 s more.  Prints
 *	"offered N done D failed F seconds S hs_p50 A hs_p90 B hs_p99 C
 *	hs_max M req_p50 E req_p99 G lag_p99 L", latencies in milliseconds,
 *	percentiles over every connection offered, one that failed (or was
 *	never opened) counted with the time until then, a lower bound; lag is
 *	how late the client itself opened a connection (a busy client, not
 *	the server).
 *
 * tlsload slow -p PORT -n N [-i MS] [-t SECONDS]
 *	Slowloris: opens N connections; the even ones send nothing, the odd
 *	ones send a ClientHello one byte every MS milliseconds (default
 *	100).  Each connection is watched until the server closes it (EOF or
 *	an error), for SECONDS at most (default 60).  Prints "slow opened N
 *	closed C open O first S last S": how many the server closed, how
 *	many were still open at the end, and when (seconds after the start)
 *	the first and the last were closed.  Exit 0 if all were closed.
 *
 * Exit status 0 if nothing failed, 1 otherwise, 2 on a usage error.
 */
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <err.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define RESP_MAX	2048
#define EVENTS_MAX	256
#define CLOSE_GRACE	10	/* seconds for the last handshakes to end */

enum state { S_FREE, S_HANDSHAKE, S_WRITE, S_READ, S_DRAIN, S_IDLE };
enum result { R_MORE, R_DONE, R_FAIL };

struct conn {
	int		 fd;
	SSL		*ssl;
	enum state	 state;
	int		 close_mode;	/* Connection: close, read to EOF */
	size_t		 got;
	double		 t0;		/* when it was opened */
	double		 t_hs;		/* when its handshake ended */
	char		 buf[RESP_MAX];
};

static SSL_CTX		*ctx;
static int		 epfd;
static struct sockaddr_in sin_server;
static char		 request_close[256], request_keep[256];
static FILE		*evlog;	/* -e */
static double		 rt_offset;	/* real time minus now() */
static double		 conn_limit;	/* -x, seconds; 0: none */
static volatile sig_atomic_t stopping;	/* SIGTERM */
static int		 resume;	/* -r */
static SSL_SESSION	*ticket;	/* -r: the newest session received */
static long		 resumed;	/* -r: connections done resumed */

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The SNI every connection sends (-s; bench/sni names a later certificate). */
static const char	*sni_name = "localhost";

static __attribute__((noreturn)) void
usage(void)
{
	fprintf(stderr, "usage: tlsload handshake -p port [-c inflight] "
	    "[-d seconds] [-e file] [-r] [-s sni] [-u path] [-x ms]\n"
	    "       tlsload hold -p port -n conns [-c inflight] "
	    "[-s sni] [-t seconds] [-u path]\n"
	    "       tlsload rate -p port -R per_second [-c max_inflight] "
	    "[-d seconds] [-s sni] [-u path]\n"
	    "       tlsload slow -p port -n conns [-i ms] [-t seconds]\n");
	exit(2);
}

static long
number(const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v < min || v > max)
		usage();
	return v;
}

static void
raise_nofile(long want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		err(1, "getrlimit");
	if (rl.rlim_cur >= (rlim_t)want)
		return;
	if (rl.rlim_max < (rlim_t)want)
		rl.rlim_max = (rlim_t)want;	/* works as root */
	rl.rlim_cur = (rlim_t)want;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		err(1, "cannot raise the descriptor limit to %ld", want);
}

/*
 * -r: keep the newest session, with its ticket, for the next connections.
 * A copy: OpenSSL marks a connection's own session not resumable when the
 * connection is freed without a close_notify sent, as ours are.
 */
static int
new_session(SSL *ssl, SSL_SESSION *sess)
{
	SSL_SESSION *copy;

	if ((copy = SSL_SESSION_dup(sess)) == NULL)
		return 0;
	if (ticket != NULL)
		SSL_SESSION_free(ticket);
	ticket = copy;
	return 0;
}

static void
ctx_init(void)
{
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		errx(1, "SSL_CTX_new");
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (resume) {
		SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
		SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
		    SSL_SESS_CACHE_NO_INTERNAL_STORE);
		SSL_CTX_sess_set_new_cb(ctx, new_session);
	}
}

static void
watch(struct conn *c, int op, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };

	if (epoll_ctl(epfd, op, c->fd, &ev) == -1)
		err(1, "epoll_ctl");
}

static void
conn_close(struct conn *c)
{
	/* -r: a session in use is marked not resumable when its connection
	 * is freed unless a close_notify was sent; say one was. */
	if (c->ssl != NULL && resume)
		SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN);
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	if (c->fd != -1)
		close(c->fd);	/* also leaves the epoll set */
	c->ssl = NULL;
	c->fd = -1;
	c->state = S_FREE;
}

/* Start a connection: the TCP connect and the handshake go on in conn_step. */
static int
conn_open(struct conn *c, int close_mode)
{
	SSL_SESSION *sess;
	int one = 1;

	c->t0 = now();
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd == -1) {
		warn("socket");
		return -1;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&sin_server,
	    sizeof(sin_server)) == -1 && errno != EINPROGRESS) {
		warn("connect");
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	if ((c->ssl = SSL_new(ctx)) == NULL || SSL_set_fd(c->ssl, c->fd) != 1)
		errx(1, "SSL_new");
	SSL_set_connect_state(c->ssl);
	SSL_set_tlsext_host_name(c->ssl, sni_name);
	/* A copy each: OpenSSL writes into the session a connection uses. */
	if (resume && ticket != NULL && (sess = SSL_SESSION_dup(ticket)) !=
	    NULL) {
		SSL_set_session(c->ssl, sess);
		SSL_SESSION_free(sess);
	}
	c->state = S_HANDSHAKE;
	c->close_mode = close_mode;
	c->got = 0;
	watch(c, EPOLL_CTL_ADD, EPOLLOUT);
	return 0;
}

/* After an SSL call returned r <= 0: wait for the socket, or fail. */
static enum result
want(struct conn *c, int r)
{
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		watch(c, EPOLL_CTL_MOD, EPOLLIN);
		return R_MORE;
	case SSL_ERROR_WANT_WRITE:
		watch(c, EPOLL_CTL_MOD, EPOLLOUT);
		return R_MORE;
	default:
		ERR_clear_error();
		return R_FAIL;
	}
}

/* A whole HTTP/1.1 200 reply with a Content-Length in buf? */
static int
reply_complete(struct conn *c, int *ok)
{
	const char *end, *cl;
	long len;

	c->buf[c->got] = '\0';
	if ((end = strstr(c->buf, "\r\n\r\n")) == NULL)
		return 0;
	*ok = strncmp(c->buf, "HTTP/1.1 200 ", 13) == 0;
	if ((cl = strcasestr(c->buf, "\r\ncontent-length:")) == NULL ||
	    cl > end) {
		*ok = 0;
		return 1;
	}
	len = strtol(cl + 17, NULL, 10);
	return (size_t)(end + 4 - c->buf) + (size_t)len <= c->got;
}

static enum result
step_read(struct conn *c)
{
	char junk[4096];
	int r, ok = 0;

	if (c->state == S_DRAIN || c->state == S_IDLE) {
		r = SSL_read(c->ssl, junk, sizeof(junk));
		if (r > 0)
			return c->state == S_IDLE ? R_FAIL : R_MORE;
		if (SSL_get_error(c->ssl, r) == SSL_ERROR_WANT_READ)
			return R_MORE;
		/* EOF: the end of a Connection: close exchange. */
		ERR_clear_error();
		return c->state == S_DRAIN ? R_DONE : R_FAIL;
	}
	if (c->got >= sizeof(c->buf) - 1)
		return R_FAIL;
	r = SSL_read(c->ssl, c->buf + c->got, (int)(sizeof(c->buf) - 1 - c->got));
	if (r <= 0)
		return want(c, r);
	c->got += (size_t)r;
	if (!reply_complete(c, &ok))
		return R_MORE;
	if (!ok)
		return R_FAIL;
	if (c->close_mode) {
		c->state = S_DRAIN;
		return R_MORE;
	}
	c->state = S_IDLE;
	watch(c, EPOLL_CTL_MOD, EPOLLIN);
	return R_DONE;
}

/* Move c on as far as it goes without blocking. */
static enum result
conn_step(struct conn *c)
{
	const char *req;
	enum result res;
	int r;

	for (;;) {
		switch (c->state) {
		case S_HANDSHAKE:
			if ((r = SSL_connect(c->ssl)) != 1)
				return want(c, r);
			c->t_hs = now();
			c->state = S_WRITE;
			break;
		case S_WRITE:
			req = c->close_mode ? request_close : request_keep;
			if ((r = SSL_write(c->ssl, req, (int)strlen(req))) <= 0)
				return want(c, r);
			c->state = S_READ;
			c->got = 0;
			watch(c, EPOLL_CTL_MOD, EPOLLIN);
			break;
		case S_READ:
		case S_DRAIN:
		case S_IDLE:
			if ((res = step_read(c)) != R_MORE)
				return res;
			if (SSL_pending(c->ssl) == 0)
				return R_MORE;
			break;
		default:
			return R_FAIL;
		}
	}
}

static int
wait_events(struct epoll_event *evs, double deadline)
{
	double left = deadline - now();
	int n, ms;

	if (left <= 0)
		return 0;
	ms = left > 0.1 ? 100 : (int)(left * 1000) + 1;
	if ((n = epoll_wait(epfd, evs, EVENTS_MAX, ms)) == -1) {
		if (errno == EINTR)
			return 0;
		err(1, "epoll_wait");
	}
	return n;
}

/* -e: one line for a connection that ended, ok or not. */
static void
conn_event(const struct conn *c, int ok)
{
	if (evlog != NULL)
		fprintf(evlog, "%.6f %.6f %s\n", c->t0 + rt_offset,
		    now() + rt_offset, ok ? "ok" : "fail");
}

/* -x: fail and close the connections older than the limit; how many. */
static int
expire(struct conn *conns, long nconns)
{
	double t = now();
	long i;
	int n = 0;

	if (conn_limit <= 0)
		return 0;
	for (i = 0; i < nconns; i++) {
		if (conns[i].state == S_FREE || t - conns[i].t0 < conn_limit)
			continue;
		conn_event(&conns[i], 0);
		conn_close(&conns[i]);
		n++;
	}
	return n;
}

static void
on_term(int sig)
{
	stopping = 1;
}

/* -r: one connection first, not counted, for the first ticket. */
static void
prime(void)
{
	struct epoll_event evs[EVENTS_MAX];
	struct conn c = { .fd = -1 };
	double stop = now() + CLOSE_GRACE;
	enum result res = R_MORE;
	int n, k;

	if (conn_open(&c, 1) == -1)
		return;
	while (res == R_MORE && now() < stop) {
		n = wait_events(evs, stop);
		for (k = 0; k < n && res == R_MORE; k++)
			res = conn_step(&c);
	}
	conn_close(&c);
}

static int
run_handshake(long inflight, long seconds)
{
	struct epoll_event evs[EVENTS_MAX];
	struct conn *conns, *c;
	long busy = 0, done = 0, failed = 0, i;
	double start = now(), stop = start + (double)seconds, t;
	double grace = conn_limit > CLOSE_GRACE ? conn_limit : CLOSE_GRACE;
	int n, k;

	if ((conns = calloc((size_t)inflight, sizeof(*conns))) == NULL)
		err(1, NULL);
	for (i = 0; i < inflight; i++)
		conns[i].fd = -1;
	if (resume) {
		prime();
		start = now();
		stop = start + (double)seconds;
	}
	while ((t = now()) < stop + grace && (busy > 0 || t < stop)) {
		if (stopping && t < stop)
			stop = t;
		for (i = 0; t < stop && busy < inflight && i < inflight; i++) {
			if (conns[i].state != S_FREE)
				continue;
			if (conn_open(&conns[i], 1) == -1) {
				conn_event(&conns[i], 0);
				failed++;
			} else
				busy++;
		}
		n = wait_events(evs, stop + grace);
		for (k = 0; k < n; k++) {
			c = evs[k].data.ptr;
			switch (conn_step(c)) {
			case R_MORE:
				continue;
			case R_DONE:
				done++;
				if (resume && SSL_session_reused(c->ssl))
					resumed++;
				conn_event(c, 1);
				break;
			case R_FAIL:
				failed++;
				conn_event(c, 0);
				break;
			}
			conn_close(c);
			busy--;
		}
		n = expire(conns, inflight);
		failed += n;
		busy -= n;
	}
	for (i = 0; i < inflight; i++) {
		if (conns[i].state != S_FREE) {
			conn_event(&conns[i], 0);
			conn_close(&conns[i]);
		}
	}
	failed += busy;
	printf("connections %ld failed %ld seconds %.3f", done, failed,
	    now() - start);
	if (resume)
		printf(" resumed %ld", resumed);
	printf("\n");
	return failed == 0 ? 0 : 1;
}

/* Run every connection in todo to R_DONE or R_FAIL; return the failures. */
static long
run_phase(struct conn *conns, long nconns, long inflight, double deadline,
    int opening, long *okp)
{
	struct epoll_event evs[EVENTS_MAX];
	struct conn *c;
	long next = 0, busy = 0, failed = 0, ok = 0;
	int n, k;

	while (now() < deadline && (next < nconns || busy > 0)) {
		for (; next < nconns && busy < inflight; next++) {
			c = &conns[next];
			if (opening) {
				if (conn_open(c, 0) == -1) {
					failed++;
					continue;
				}
			} else {
				if (c->state != S_IDLE)
					continue;
				c->state = S_WRITE;
				watch(c, EPOLL_CTL_MOD, EPOLLOUT);
			}
			busy++;
		}
		n = wait_events(evs, deadline);
		for (k = 0; k < n; k++) {
			c = evs[k].data.ptr;
			if (c->state == S_IDLE) {
				/* An idle connection woke: data or EOF. */
				if (conn_step(c) == R_FAIL) {
					conn_close(c);
					failed++;
				}
				continue;
			}
			switch (conn_step(c)) {
			case R_MORE:
				continue;
			case R_DONE:
				ok++;
				break;
			case R_FAIL:
				conn_close(c);
				failed++;
				break;
			}
			busy--;
		}
	}
	/* What is still in flight at the deadline failed. */
	for (k = 0; k < nconns; k++) {
		c = &conns[k];
		if (c->state != S_FREE && c->state != S_IDLE) {
			conn_close(c);
			failed++;
		}
	}
	*okp = ok;
	return failed;
}

/* Check the held connections while waiting for stdin; return drops. */
static long
hold(void)
{
	struct epoll_event evs[EVENTS_MAX], ev = { .events = EPOLLIN };
	struct conn *c;
	long dropped = 0;
	int n, k;

	ev.data.ptr = NULL;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, STDIN_FILENO, &ev) == -1)
		err(1, "epoll_ctl stdin");
	for (;;) {
		if ((n = epoll_wait(epfd, evs, EVENTS_MAX, -1)) == -1) {
			if (errno == EINTR)
				continue;
			err(1, "epoll_wait");
		}
		for (k = 0; k < n; k++) {
			if ((c = evs[k].data.ptr) == NULL) {
				epoll_ctl(epfd, EPOLL_CTL_DEL, STDIN_FILENO,
				    NULL);
				return dropped;
			}
			if (conn_step(c) == R_FAIL) {
				conn_close(c);
				dropped++;
			}
		}
	}
}

static int
run_hold(long nconns, long inflight, long seconds)
{
	struct conn *conns;
	long failed, ok, dropped, i;
	double start;

	raise_nofile(nconns + 64);
	if ((conns = calloc((size_t)nconns, sizeof(*conns))) == NULL)
		err(1, NULL);
	for (i = 0; i < nconns; i++)
		conns[i].fd = -1;
	start = now();
	failed = run_phase(conns, nconns, inflight, start + (double)seconds, 1,
	    &ok);
	printf("open ok %ld failed %ld seconds %.3f\nready\n", ok, failed,
	    now() - start);
	fflush(stdout);
	dropped = hold();
	start = now();
	failed += run_phase(conns, nconns, inflight, start + (double)seconds, 0,
	    &ok);
	printf("round ok %ld failed %ld dropped %ld seconds %.3f\n", ok,
	    failed, dropped, now() - start);
	return ok == nconns ? 0 : 1;
}

/* ---- rate: open-loop arrivals, latency percentiles ---------------------- */

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The P-th percentile (nearest rank) of the n values in v, in ms; sorts v. */
static double
percentile(double *v, long n, double p)
{
	long k;

	if (n == 0)
		return -1;
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	k = (long)(p * (double)n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return v[k - 1] * 1000;
}

/* Arm tfd to fire at the monotonic time t (seconds). */
static void
timer_at(int tfd, double t)
{
	struct itimerspec its = { { 0, 0 }, { 0, 0 } };

	its.it_value.tv_sec = (time_t)t;
	its.it_value.tv_nsec = (long)((t - (double)(time_t)t) * 1e9);
	if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
		its.it_value.tv_nsec = 1;
	if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) == -1)
		err(1, "timerfd_settime");
}

struct rate {
	struct conn	*conns;
	long		*free;		/* stack of free slots */
	long		 nfree;
	double		*due;		/* per slot: when it was due */
	double		*hs, *req, *lag;	/* per connection done */
	long		 opened, done, failed;
};

/* Open the arrivals due by now, as far as slots allow; the next one. */
static long
rate_open(struct rate *r, long next, long total, double start, double rate)
{
	double t = now(), due;
	long i;

	while (next < total && r->nfree > 0 &&
	    (due = start + (double)next / rate) <= t) {
		i = r->free[--r->nfree];
		if (conn_open(&r->conns[i], 1) == -1) {
			r->free[r->nfree++] = i;
			r->hs[r->done + r->failed] = 0;
			r->req[r->done + r->failed] = 0;
			r->failed++;
		} else {
			r->due[i] = due;
			r->lag[r->opened++] = r->conns[i].t0 - due;
		}
		next++;
	}
	return next;
}

/*
 * A connection ended (ok or not): count it, free its slot.  One that failed
 * counts with the time until it failed, a lower bound of its latency.
 */
static void
rate_end(struct rate *r, struct conn *c, enum result res)
{
	long i = c - r->conns, k = r->done + r->failed;

	r->req[k] = now() - r->due[i];
	if (res == R_DONE) {
		r->hs[k] = c->t_hs - r->due[i];
		r->done++;
	} else {
		r->hs[k] = r->req[k];
		r->failed++;
	}
	conn_close(c);
	r->free[r->nfree++] = i;
}

static int
run_rate(long per_second, long inflight, long seconds)
{
	struct epoll_event evs[EVENTS_MAX], ev = { .events = EPOLLIN };
	struct rate r = { 0 };
	struct conn *c;
	double rate = (double)per_second, start, stop, t;
	long total = per_second * seconds, next = 0, i;
	enum result res;
	uint64_t ticks;
	int tfd, n, k;

	raise_nofile(inflight + 64);
	if ((r.conns = calloc((size_t)inflight, sizeof(*r.conns))) == NULL ||
	    (r.free = calloc((size_t)inflight, sizeof(long))) == NULL ||
	    (r.due = calloc((size_t)inflight, sizeof(double))) == NULL ||
	    (r.hs = calloc((size_t)total, sizeof(double))) == NULL ||
	    (r.req = calloc((size_t)total, sizeof(double))) == NULL ||
	    (r.lag = calloc((size_t)total, sizeof(double))) == NULL)
		err(1, NULL);
	for (i = 0; i < inflight; i++) {
		r.conns[i].fd = -1;
		r.free[r.nfree++] = inflight - 1 - i;
	}
	if ((tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK |
	    TFD_CLOEXEC)) == -1)
		err(1, "timerfd_create");
	ev.data.ptr = NULL;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &ev) == -1)
		err(1, "epoll_ctl timerfd");
	start = now();
	stop = start + (double)seconds + CLOSE_GRACE;
	while ((t = now()) < stop &&
	    (next < total || r.nfree < inflight)) {
		next = rate_open(&r, next, total, start, rate);
		if (next < total && r.nfree > 0)
			timer_at(tfd, start + (double)next / rate);
		n = wait_events(evs, stop);
		for (k = 0; k < n; k++) {
			if ((c = evs[k].data.ptr) == NULL) {
				(void)read(tfd, &ticks, sizeof(ticks));
				continue;
			}
			if ((res = conn_step(c)) != R_MORE)
				rate_end(&r, c, res);
		}
	}
	for (i = 0; i < inflight; i++)
		if (r.conns[i].state != S_FREE)
			rate_end(&r, &r.conns[i], R_FAIL);
	for (t = now(); next < total; next++) {	/* never opened: time up */
		r.hs[r.done + r.failed] = t - (start + (double)next / rate);
		r.req[r.done + r.failed] = r.hs[r.done + r.failed];
		r.failed++;
	}
	printf("offered %ld done %ld failed %ld seconds %.3f", total, r.done,
	    r.failed, now() - start);
	printf(" hs_p50 %.2f hs_p90 %.2f hs_p99 %.2f hs_max %.2f",
	    percentile(r.hs, total, 0.50), percentile(r.hs, total, 0.90),
	    percentile(r.hs, total, 0.99), percentile(r.hs, total, 1));
	printf(" req_p50 %.2f req_p99 %.2f lag_p99 %.2f\n",
	    percentile(r.req, total, 0.50), percentile(r.req, total, 0.99),
	    percentile(r.lag, r.opened, 0.99));
	return r.failed == 0 ? 0 : 1;
}

/* The bytes of a ClientHello, from a handshake on memory BIOs. */
static size_t
client_hello(unsigned char *buf, size_t size)
{
	SSL *ssl;
	BIO *rb, *wb;
	int n;

	if ((ssl = SSL_new(ctx)) == NULL ||
	    (rb = BIO_new(BIO_s_mem())) == NULL ||
	    (wb = BIO_new(BIO_s_mem())) == NULL)
		errx(1, "SSL_new");
	SSL_set_bio(ssl, rb, wb);
	SSL_set_connect_state(ssl);
	SSL_set_tlsext_host_name(ssl, "localhost");
	(void)SSL_do_handshake(ssl);	/* wants to read the ServerHello */
	n = BIO_read(wb, buf, (int)size);
	SSL_free(ssl);
	ERR_clear_error();
	if (n <= 0)
		errx(1, "no ClientHello");
	return (size_t)n;
}

struct slow {
	int	 fd;		/* -1 once the server closed it */
	size_t	 sent;		/* bytes of the ClientHello sent */
};

/* Read what the server sent on s; 1 if it closed the connection. */
static int
slow_read(struct slow *s)
{
	char junk[4096];
	ssize_t r;

	while ((r = read(s->fd, junk, sizeof(junk))) > 0)
		;
	return r == 0 || (errno != EAGAIN && errno != EINTR);
}

/* The next byte of the ClientHello on s; 1 if the server closed it. */
static int
slow_write(struct slow *s, const unsigned char *hello, size_t len)
{
	if (s->sent >= len)
		return 0;
	if (write(s->fd, hello + s->sent, 1) == 1) {
		s->sent++;
		return 0;
	}
	return errno != EAGAIN && errno != EINTR && errno != ENOTCONN;
}

static int
run_slow(long nconns, long interval, long seconds)
{
	struct epoll_event evs[EVENTS_MAX], ev;
	unsigned char hello[RESP_MAX];
	struct slow *conns, *s;
	size_t hlen;
	double start, stop, next, first = -1, last = -1, t;
	long i, open = 0, closed = 0;
	int n, k, ms;

	raise_nofile(nconns + 64);
	hlen = client_hello(hello, sizeof(hello));
	if ((conns = calloc((size_t)nconns, sizeof(*conns))) == NULL)
		err(1, NULL);
	start = now();
	for (i = 0; i < nconns; i++) {
		s = &conns[i];
		s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);
		if (s->fd == -1)
			err(1, "socket");
		if (connect(s->fd, (struct sockaddr *)&sin_server,
		    sizeof(sin_server)) == -1 && errno != EINPROGRESS)
			err(1, "connect");
		ev.events = EPOLLIN | EPOLLRDHUP;
		ev.data.ptr = s;
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, s->fd, &ev) == -1)
			err(1, "epoll_ctl");
		open++;
	}
	stop = start + (double)seconds;
	next = start + (double)interval / 1000;
	while (open > 0 && (t = now()) < stop) {
		ms = (int)((next - t) * 1000) + 1;
		if ((n = epoll_wait(epfd, evs, EVENTS_MAX, ms < 1 ? 1 : ms))
		    == -1 && errno != EINTR)
			err(1, "epoll_wait");
		for (k = 0; k < n; k++) {
			s = evs[k].data.ptr;
			if (s->fd == -1 || !slow_read(s))
				continue;
			close(s->fd);
			s->fd = -1;
		}
		if ((t = now()) >= next) {
			for (i = 1; i < nconns; i += 2) {
				s = &conns[i];
				if (s->fd != -1 && slow_write(s, hello, hlen)) {
					close(s->fd);
					s->fd = -1;
				}
			}
			next = t + (double)interval / 1000;
		}
		for (i = 0, open = 0; i < nconns; i++)
			open += conns[i].fd != -1;
		if (nconns - open > closed) {
			if (first < 0)
				first = now() - start;
			last = now() - start;
			closed = nconns - open;
		}
	}
	printf("slow opened %ld closed %ld open %ld first %.3f last %.3f\n",
	    nconns, closed, open, first, last);
	return open == 0 ? 0 : 1;
}

int
main(int argc, char *argv[])
{
	const char *mode, *path = "/small";
	const char *evfile = NULL;
	long port = 0, inflight = 16, seconds = 10, nconns = 0, limit = 60;
	long interval = 100, xms = 0, per_second = 0;
	struct timespec rt;
	int ch, optset_c = 0;

	if (argc < 2)
		usage();
	mode = argv[1];
	argc--;
	argv++;
	while ((ch = getopt(argc, argv, "c:d:e:i:n:p:R:rs:t:u:x:")) != -1) {
		switch (ch) {
		case 'c':
			inflight = number(optarg, 1, 100000);
			optset_c = 1;
			break;
		case 'd':
			seconds = number(optarg, 1, 3600);
			break;
		case 'e':
			evfile = optarg;
			break;
		case 'i':
			interval = number(optarg, 1, 60000);
			break;
		case 'n':
			nconns = number(optarg, 1, 1000000);
			break;
		case 'p':
			port = number(optarg, 1, 65535);
			break;
		case 'R':
			per_second = number(optarg, 1, 1000000);
			break;
		case 'r':
			resume = 1;
			break;
		case 's':
			sni_name = optarg;
			break;
		case 't':
			limit = number(optarg, 1, 3600);
			break;
		case 'u':
			path = optarg;
			break;
		case 'x':
			xms = number(optarg, 1, 3600000);
			break;
		default:
			usage();
		}
	}
	if (port == 0 || optind != argc || strlen(path) > 100)
		usage();
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_term);
	setvbuf(stdout, NULL, _IOLBF, 0);
	memset(&sin_server, 0, sizeof(sin_server));
	sin_server.sin_family = AF_INET;
	sin_server.sin_port = htons((uint16_t)port);
	sin_server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	snprintf(request_close, sizeof(request_close), "GET %s HTTP/1.1\r\n"
	    "Host: localhost\r\nConnection: close\r\n\r\n", path);
	snprintf(request_keep, sizeof(request_keep), "GET %s HTTP/1.1\r\n"
	    "Host: localhost\r\n\r\n", path);
	if (evfile != NULL) {
		if ((evlog = fopen(evfile, "w")) == NULL)
			err(1, "%s", evfile);
		setvbuf(evlog, NULL, _IOLBF, 0);
	}
	clock_gettime(CLOCK_REALTIME, &rt);
	rt_offset = (double)rt.tv_sec + (double)rt.tv_nsec / 1e9 - now();
	conn_limit = (double)xms / 1000;
	ctx_init();
	if ((epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		err(1, "epoll_create1");
	if (strcmp(mode, "handshake") == 0)
		return run_handshake(inflight, seconds);
	if (strcmp(mode, "hold") == 0 && nconns > 0)
		return run_hold(nconns, inflight > nconns ? nconns : inflight,
		    limit);
	if (strcmp(mode, "rate") == 0 && per_second > 0)
		return run_rate(per_second, optset_c ? inflight : 10000,
		    seconds);
	if (strcmp(mode, "slow") == 0 && nconns > 0)
		return run_slow(nconns, interval, limit);
	usage();
}
