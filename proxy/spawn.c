/*
 * The pool of connection children: see spawn.h.
 *
 * Each child gets two SOCK_SEQPACKET channels: one to keyproc, made here
 * (the other end goes to keyproc over the control channel and is closed
 * here), and one to the parent, made by the spawner that forks the child
 * (proxy/spawner.c; enum chan_type: log lines, "I hold a connection",
 * "connect my backend").  No end is ever shared by two processes.
 *
 * The parent does not trust a child to keep its own deadlines or to log
 * with restraint: it kills a child whose handshake outlives the listener's
 * timeout (handshake_sweep()), and stops relaying the lines of a child
 * that floods its log (log_allowed()).
 *
 * max-connections bounds connections, and a spare may take one at any
 * moment without asking: so spares and busy children together (retired
 * spares not yet gone included) never outnumber it, and near the limit
 * the spares go where clients wait (see "Capacity" below).
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "keyproc/keyproc.h"
#include "lib/deadline.h"
#include "lib/msg.h"
#include "lib/wire.h"
#include "lib/log.h"
#include "proxy/connector.h"
#include "proxy/parent_check.h"
#include "proxy/spawn.h"
#include "proxy/spawner.h"
#include "proxy/stats.h"

#define SPARES_MIN	4	/* spares per listener when quiet */
#define SPARES_MAX	256	/* spares per listener under load */
#define DECAY_SECONDS	10	/* halve an unused spare target this often */
#define FAIL_BACKOFF_MAX 16	/* seconds between spawns after failures */
#define CONNECTS_MAX	8	/* backend connects one child may ask */
#define CRASH_BACKOFF_MAX 30	/* seconds before a new spawner, crashes in a row */
#define CRASH_QUIET	30	/* seconds without a crash: the next is a first */
#define CRASH_FREE	8	/* crashes in a row that cost only an exec */
#define HASH_SIZE	4096
#define HANDSHAKE_GRACE	1	/* seconds beyond the child's own deadline */
#define AGAIN_QUIET	2	/* s below the limit before "accepting again" */
#define FD_BACKOFF	1	/* s without forking when out of descriptors */
#define STEAL_MAX	64	/* spares retired at once for one listener */
#define FORK_FDS	5	/* the parent's descriptors one fork may take:
				   the keyproc pair, a new spawner's pair, the
				   child's channel */
/*
 * A child's log: a token bucket of LOG_BURST lines, refilled at LOG_RATE
 * lines a second.  A connection logs a few lines (its access line, a
 * failed backend or handshake, more with -v: never 64 at once), and a
 * spare that cannot accept logs at most one line per 100 ms; so a child
 * that empties the bucket is taken over or broken, and whatever it says
 * from then on is not worth a write(2) by root.
 */
#define LOG_BURST	64
#define LOG_RATE	10

struct child {
	LIST_ENTRY(child)	 hash;
	TAILQ_ENTRY(child)	 dying;	/* channel closed: about to exit */
	TAILQ_ENTRY(child)	 handshake;	/* in pool.handshakes */
	pid_t			 pid;
	struct gen		*gen;
	size_t			 listener;
	int			 fd;	/* our end of the chan; -1 after EOF */
	struct event		*ev;
	int			 busy;	/* holds a connection */
	int			 retired;	/* told to exit if idle */
	int			 connects;
	int			 handshaking;	/* in pool.handshakes */
	struct timespec		 deadline;	/* of its handshake */
	int64_t			 log_full;	/* ns: its log bucket is full */
	int			 log_cut;	/* flooded: lines dropped */
	unsigned int		 kpgen;	/* the keyproc holding its channel */
	struct connector_job	*job;	/* its backend connect, or NULL */
	unsigned int		 spawner;	/* spawner_serial() of its own */
	struct gen_listener	*steal_for;	/* retired to make room for it */
	struct stats_conn	*sc;	/* its connection's counters, or NULL */
};

static struct {
	struct event_base	*base;
	struct gen		*gen;	/* current generation */
	int			 kpfd;	/* keyproc control channel, or -1 */
	unsigned int		 kpgen;	/* counts spawn_set_keyproc() calls */
	int			 draining;
	int			 drain_idle;	/* s, CHAN_DRAIN to busy children */
	size_t			 count, busy;
	unsigned int		 failures;	/* children dead before work */
	struct event		*retry;	/* spawn_fill() after a backoff */
	struct event		*fill;	/* spawn_fill() after this round */
	struct event		*decay;
	struct event		*reapev;	/* spawn_reap() soon */
	struct event		*sweep;	/* handshake_sweep() */
	struct event		*holdev;	/* spawn_fill() after a crash hold */
	long			 fdcap;	/* connections the descriptor limit
					   allows, or 0: no such bound */
	struct event		*again;	/* "accepting again", once quiet */
	int			 fds_short;	/* "out of descriptors" logged */
	void			(*reaped)(void);
	LIST_HEAD(, child)	 table[HASH_SIZE];
	TAILQ_HEAD(, child)	 dying;
	TAILQ_HEAD(, child)	 handshakes;	/* accepted, not established */
} pool = { .kpfd = -1,
    .dying = TAILQ_HEAD_INITIALIZER(pool.dying),
    .handshakes = TAILQ_HEAD_INITIALIZER(pool.handshakes) };

static void	chan_cb(evutil_socket_t, short, void *);
static void	fail_backoff(void);
static void	handshake_sweep(evutil_socket_t, short, void *);
static void	limit_update(void);
static void	watch_update(void);

static struct child *
child_lookup(pid_t pid)
{
	struct child *c;

	LIST_FOREACH(c, &pool.table[(unsigned)pid % HASH_SIZE], hash)
		if (c->pid == pid)
			return c;
	return NULL;
}

/* Close our end of c's channel; c is then waited for by spawn_reap(). */
static void
child_close_chan(struct child *c)
{
	if (c->fd == -1)
		return;
	/* Nobody to hand a backend to any more. */
	connector_ctl_cancel(c->job);
	c->job = NULL;
	event_free(c->ev);
	c->ev = NULL;
	close(c->fd);
	c->fd = -1;
	TAILQ_INSERT_TAIL(&pool.dying, c, dying);
	/* Its SIGCHLD may have come already, and been spent on others. */
	event_active(pool.reapev, EV_TIMEOUT, 0);
}

/* Never blocks: our end is non-blocking, a child that does not read loses. */
static void
chan_send(struct child *c, uint32_t type, const void *body, size_t len,
    int fd)
{
	if (c->fd != -1 && msg_put(c->fd, type, body, len, fd, 0) == -1)
		log_warn("child %d: send", (int)c->pid);
}

static void
chan_send_drain(struct child *c, int idle)
{
	struct chan_drain m = { .idle = (uint32_t)idle };

	chan_send(c, CHAN_DRAIN, &m, sizeof(m), -1);
}

static void
chan_send_connect_failed(struct child *c, int err)
{
	struct chan_connect_failed m = { .error = (uint32_t)err };

	chan_send(c, CHAN_CONNECT_FAILED, &m, sizeof(m), -1);
}

static void
child_retire(struct child *c)
{
	if (c->busy || c->retired)
		return;
	c->retired = 1;
	c->gen->listeners[c->listener].idle--;
	chan_send(c, CHAN_RETIRE, NULL, 0, -1);
}

static void
retire_idle(struct gen *only)
{
	struct child *c;
	size_t i;

	for (i = 0; i < HASH_SIZE; i++)
		LIST_FOREACH(c, &pool.table[i], hash)
			if (only == NULL || c->gen == only)
				child_retire(c);
}

static struct child *
child_register(struct gen *g, size_t li, pid_t pid, int chanfd)
{
	struct child *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->pid = pid;
	c->gen = g;
	c->listener = li;
	c->fd = chanfd;
	c->kpgen = pool.kpgen;
	c->ev = event_new(pool.base, chanfd, EV_READ | EV_PERSIST, chan_cb, c);
	if (c->ev == NULL || event_add(c->ev, NULL) == -1) {
		if (c->ev != NULL)
			event_free(c->ev);
		free(c);
		return NULL;
	}
	gen_ref(g);
	g->listeners[li].idle++;
	g->listeners[li].count->children++;
	pool.count++;
	LIST_INSERT_HEAD(&pool.table[(unsigned)pid % HASH_SIZE], c, hash);
	return c;
}

/* Whether n more descriptors can be opened: dup(2) n, close them. */
static int
fd_room(int n)
{
	int fds[FORK_FDS], i, e = 0;

	for (i = 0; i < n && i < FORK_FDS; i++)
		if ((fds[i] = dup(STDERR_FILENO)) == -1) {
			e = errno;
			break;
		}
	while (i-- > 0)
		close(fds[i]);
	errno = e;
	return e != 0 ? -1 : 0;
}

void
spawn_out_of_fds(const char *what)
{
	struct timeval tv = { FD_BACKOFF, 0 };
	int e = errno;

	/* Once until the pool is full again, however long that takes. */
	if (!pool.fds_short) {
		pool.fds_short = 1;
		log_warnx("out of descriptors (%s: %s): no new children for "
		    "now, clients wait in the listen backlog", what,
		    strerror(e));
	}
	/* spawn_fill() forks nothing while the timer runs. */
	if (pool.retry != NULL && !evtimer_pending(pool.retry, NULL))
		evtimer_add(pool.retry, &tv);
}

/* Fork one spare child for listener li of the current generation. */
static int
spawn_one(size_t li)
{
	int kp[2], chanfd, e;
	struct child *c;
	unsigned int serial;
	pid_t pid;

	/* Room for every descriptor the fork takes, checked first: one the
	 * spawner sends back and the parent cannot receive is lost. */
	if (fd_room(FORK_FDS) == -1 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, kp) == -1) {
		if (errno == EMFILE || errno == ENFILE)
			spawn_out_of_fds("forking a child");
		else
			log_warn("socketpair");
		return -1;
	}
	pid = spawner_fork(pool.gen, li, kp[1], &chanfd);
	close(kp[1]);
	if (pid == -1 && (errno == EMFILE || errno == ENFILE)) {
		close(kp[0]);
		spawn_out_of_fds("a child's channel");
		return -1;
	}
	if (pid == -1) {
		close(kp[0]);
		/* Try again soon (a dead spawner is replaced then), but
		 * back off if it keeps failing. */
		if (++pool.failures >= 3)
			fail_backoff();
		else
			event_active(pool.retry, EV_TIMEOUT, 0);
		return -1;
	}
	serial = spawner_serial(pool.gen, li);
	log_debug("spawned child %d for listener %s", (int)pid,
	    pool.gen->listeners[li].conf->name);
	if (fcntl(chanfd, F_SETFL, O_NONBLOCK) == -1)
		log_warn("child %d: channel", (int)pid);
	if ((c = child_register(pool.gen, li, pid, chanfd)) == NULL) {
		log_warnx("child %d: out of memory", (int)pid);
		close(kp[0]);
		close(chanfd);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);	/* at once: it was never registered */
		return -1;
	}
	c->spawner = serial;
	/* A spare whose channel keyproc never got would fail its client's
	 * handshake: end it now (it is reaped when its channel closes). */
	if (kp_ctl_send_child(pool.kpfd, pid, (uint32_t)li, kp[0]) == -1) {
		e = errno;
		log_warn("keyproc: cannot hand over the channel of child %d",
		    (int)pid);
		close(kp[0]);
		child_retire(c);
		kill(pid, SIGKILL);
		if (e == EPIPE || e == ECONNRESET)
			/* keyproc died: no child until the parent has a new
			 * one (its EOF is on the way), and no backoff */
			spawn_set_keyproc(-1);
		else if (++pool.failures >= 3)
			fail_backoff();		/* keyproc stuck: don't spin */
		return -1;
	}
	close(kp[0]);
	return 0;
}

/* The most children at once: max-connections, or what descriptors allow. */
static long
max_children(void)
{
	long max;

	if (pool.gen == NULL)
		return 0;
	max = pool.gen->conf->max_connections;
	return pool.fdcap > 0 && pool.fdcap < max ? pool.fdcap : max;
}

/* Milliseconds until gl may have a new spawner after crashes, or 0. */
static long
hold_left(const struct gen_listener *gl)
{
	struct timespec now;
	long long ms;

	if (gl->spawner != NULL || gl->crashes == 0)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long long)(gl->spawner_after.tv_sec - now.tv_sec) * 1000 +
	    (gl->spawner_after.tv_nsec - now.tv_nsec) / 1000000;
	return ms > 0 ? (long)ms : 0;
}

/*
 * Start the spawners of the listeners that need children, all at once
 * (each is ready a few milliseconds after its exec), except those held
 * back after crashes: come back when the first of those may start.
 * Return 1 if some listener is held back.
 */
static int
start_spawners(void)
{
	struct gen_listener *gl;
	struct timeval tv;
	long ms, first = 0;
	size_t i;

	for (i = 0; i < pool.gen->nlisteners; i++) {
		gl = &pool.gen->listeners[i];
		if (gl->spares < SPARES_MIN)
			gl->spares = SPARES_MIN;
		if (gl->idle >= gl->spares)
			continue;
		if ((ms = hold_left(gl)) > 0) {
			if (first == 0 || ms < first)
				first = ms;
			continue;
		}
		(void)spawner_start(pool.gen, i);	/* or again at the fork */
	}
	if (first > 0) {
		tv.tv_sec = first / 1000;
		tv.tv_usec = (first % 1000) * 1000;
		evtimer_add(pool.holdev, &tv);
	}
	return first > 0;
}

/*
 * Capacity.  Every spare may take a connection at any moment, without
 * asking the parent first, so the only way never to hold more than
 * max_children() connections is to count spares as if they held one:
 * pool.count (spares, busy children, retired spares not yet gone, of
 * every generation) stays within it, and at the limit no spare waits on
 * any listener.  So near the limit the spares that are left must go where
 * clients wait:
 *
 * - a free slot goes first to a listener with no spare and a client in its
 *   listen backlog (listener_waiting(): poll(2) on its sockets, only while
 *   there are fewer free slots than listeners);
 * - a listener with no spare while the slots are all taken and another
 *   listener has spares is watched (watch_update()): when a client arrives
 *   in its backlog, a spare of the listener with the most is retired for
 *   each client waiting there (watch_cb(), backlog_len()), and the slot
 *   goes to it when that spare has exited.  At most STEAL_MAX retirements
 *   in flight per listener (gen_listener.stealing).
 *
 * So a busy listener gets every slot its neighbours' idle spares held.
 * The parent reads nothing from a listening socket: it only asks whether
 * one is readable and how many wait on it, and only while that listener
 * has no spare.
 */

/* Whether a client waits in one of gl's listen backlogs. */
static int
listener_waiting(const struct gen_listener *gl)
{
	struct pollfd pfd;
	size_t i;

	for (i = 0; i < gl->socks.n; i++) {
		pfd.fd = gl->socks.fds[i];
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN))
			return 1;
	}
	return 0;
}

/* Whether gl is under its own max-connections, spares included. */
static int
under_own(const struct gen_listener *gl)
{
	return gl->count->children < (size_t)gl->conf->max_connections;
}

static int
can_fork(const struct gen_listener *gl, int held)
{
	return gl->idle < gl->spares && (long)pool.count < max_children() &&
	    under_own(gl) && !(held && hold_left(gl) > 0);
}

void
spawn_fill(void)
{
	struct gen_listener *gl;
	size_t i;
	int progress = 1, held, near;

	if (pool.gen == NULL || pool.kpfd == -1 || pool.draining ||
	    evtimer_pending(pool.retry, NULL))
		return;
	held = start_spawners();
	/* Fewer free slots than listeners: those where clients wait first. */
	near = max_children() - (long)pool.count <= (long)pool.gen->nlisteners;
	for (i = 0; near && i < pool.gen->nlisteners; i++) {
		gl = &pool.gen->listeners[i];
		if (gl->idle > 0 || !can_fork(gl, held) ||
		    !listener_waiting(gl))
			continue;
		if (spawn_one(i) == -1)
			return;
	}
	/* Round-robin, so one listener's burst cannot starve the others. */
	while (progress) {
		progress = 0;
		for (i = 0; i < pool.gen->nlisteners; i++) {
			gl = &pool.gen->listeners[i];
			if (!can_fork(gl, held))
				continue;
			if (spawn_one(i) == -1)
				return;
			progress = 1;
		}
	}
	/* Every listener has what it wants, or the slots are all taken. */
	if (pool.fds_short) {
		pool.fds_short = 0;
		log_info("descriptors available again: forking children");
	}
	watch_update();
}

static void
watch_disarm(struct gen_listener *gl)
{
	size_t i;

	if (gl->watch == NULL)
		return;
	for (i = 0; i < gl->socks.n; i++)
		event_del(gl->watch[i]);
}

/* Before g's sockets close: its watches go. */
static void
watch_free(struct gen *g)
{
	struct gen_listener *gl;
	size_t i, j;

	for (i = 0; i < g->nlisteners; i++) {
		gl = &g->listeners[i];
		if (gl->watch == NULL)
			continue;
		for (j = 0; j < gl->socks.n; j++)
			event_free(gl->watch[j]);
		free(gl->watch);
		gl->watch = NULL;
	}
}

/*
 * How many clients wait in gl's listen backlogs, at least 1: a listening
 * TCP socket's tcpi_unacked is its accept queue's length (a count the
 * kernel keeps, not network input).
 */
static size_t
backlog_len(const struct gen_listener *gl)
{
	struct tcp_info ti;
	socklen_t len;
	size_t i, n = 0;

	for (i = 0; i < gl->socks.n; i++) {
		len = sizeof(ti);
		if (getsockopt(gl->socks.fds[i], IPPROTO_TCP, TCP_INFO, &ti,
		    &len) == 0 && ti.tcpi_state == TCP_LISTEN)
			n += ti.tcpi_unacked;
	}
	return n > 0 ? n : 1;
}

/* Retire one idle spare of listener li of g for gl; return 0 or -1. */
static int
steal_one(struct gen *g, size_t li, struct gen_listener *gl)
{
	struct child *c;
	size_t i;

	for (i = 0; i < HASH_SIZE; i++)
		LIST_FOREACH(c, &pool.table[i], hash) {
			if (c->gen != g || c->listener != li || c->busy ||
			    c->retired)
				continue;
			child_retire(c);
			c->steal_for = gl;
			gl->stealing++;
			log_debug("listener %s: a client waits; retiring a spare "
			    "of listener %s for it", gl->conf->name,
			    g->listeners[li].conf->name);
			return 0;
		}
	return -1;
}

/* The listener other than gl with the most spares, or -1 if none has. */
static ssize_t
steal_from(const struct gen_listener *gl)
{
	const struct gen_listener *o;
	size_t i, most = 0;
	ssize_t best = -1;

	for (i = 0; i < pool.gen->nlisteners; i++) {
		o = &pool.gen->listeners[i];
		if (o != gl && o->idle > most) {
			most = o->idle;
			best = (ssize_t)i;
		}
	}
	return best;
}

/* Clients wait on gl, which has no spare: make room for them. */
static void
watch_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gen_listener *gl = arg;
	size_t want;
	ssize_t li;

	watch_disarm(gl);
	if (pool.gen == NULL || gl->idle > 0 || !under_own(gl))
		return;
	if ((long)pool.count < max_children()) {
		spawn_fill();
		return;
	}
	want = backlog_len(gl);
	if (want > STEAL_MAX)
		want = STEAL_MAX;
	while (gl->stealing < want && (li = steal_from(gl)) != -1)
		if (steal_one(pool.gen, (size_t)li, gl) == -1)
			break;
}

static int
watch_arm(struct gen_listener *gl)
{
	size_t i;

	if (gl->watch == NULL) {
		if ((gl->watch = calloc(gl->socks.n, sizeof(*gl->watch))) ==
		    NULL)
			return -1;
		for (i = 0; i < gl->socks.n; i++)
			if ((gl->watch[i] = event_new(pool.base,
			    gl->socks.fds[i], EV_READ, watch_cb, gl)) == NULL)
				fatalx("watch: libevent");
	}
	for (i = 0; i < gl->socks.n; i++)
		if (!event_pending(gl->watch[i], EV_READ, NULL) &&
		    event_add(gl->watch[i], NULL) == -1)
			return -1;
	return 0;
}

/*
 * Watch the listeners that have no spare while every slot is taken and
 * another listener has spares; leave the others alone (a watched socket
 * wakes the parent at each connection).
 */
static void
watch_update(void)
{
	struct gen_listener *gl;
	size_t i, idle = 0;
	int full;

	if (pool.gen == NULL)
		return;
	for (i = 0; i < pool.gen->nlisteners; i++)
		idle += pool.gen->listeners[i].idle;
	full = (long)pool.count >= max_children() && !pool.draining &&
	    pool.kpfd != -1;
	for (i = 0; i < pool.gen->nlisteners; i++) {
		gl = &pool.gen->listeners[i];
		if (full && gl->idle == 0 && idle > 0 &&
		    gl->stealing < STEAL_MAX && under_own(gl)) {
			if (watch_arm(gl) == -1)
				log_warnx("listener %s: cannot watch its "
				    "sockets", gl->conf->name);
		} else
			watch_disarm(gl);
	}
}

/* The retirement c was chosen for is over: c holds a connection or left. */
static void
steal_done(struct child *c)
{
	if (c->steal_for == NULL)
		return;
	c->steal_for->stealing--;
	c->steal_for = NULL;
}

/*
 * Whether gl is at a limit: every slot holds a connection, or its own
 * max-connections do.  Then no spare of it waits (the spares were counted
 * as connections) and its clients wait in the backlog.  Return the limit
 * reached in *maxp.
 */
static int
at_limit(const struct gen_listener *gl, long *maxp)
{
	if ((long)pool.busy >= (*maxp = max_children()))
		return 1;
	*maxp = gl->conf->max_connections;
	return (long)gl->count->busy >= *maxp;
}

/*
 * A listener at a limit stops accepting: say so once, and say when it
 * accepts again, once it has stayed below its limits for AGAIN_QUIET s,
 * so that a steady overload (a slot frees, a waiting client takes it at
 * once) logs one pair of lines, not one per connection.  The state is its
 * gen_count's, so a reload does not repeat it.
 */
static void
limit_update(void)
{
	struct timeval tv = { AGAIN_QUIET, 0 };
	struct gen_listener *gl;
	long max;
	size_t i;

	if (pool.gen == NULL || pool.draining)
		return;
	for (i = 0; i < pool.gen->nlisteners; i++) {
		gl = &pool.gen->listeners[i];
		if (at_limit(gl, &max)) {
			gl->count->below.tv_sec = 0;
			gl->count->below.tv_nsec = 0;
			if (gl->count->full_said)
				continue;
			gl->count->full_said = 1;
			log_warnx("listener %s: max-connections %ld%s reached: "
			    "not accepting", gl->conf->name, max,
			    max < gl->conf->max_connections ?
			    " (the descriptor limit)" : "");
		} else if (gl->count->full_said &&
		    gl->count->below.tv_sec == 0) {
			clock_gettime(CLOCK_MONOTONIC, &gl->count->below);
			if (!evtimer_pending(pool.again, NULL))
				evtimer_add(pool.again, &tv);
		}
	}
}

static void
again_cb(evutil_socket_t fd, short what, void *arg)
{
	struct timeval tv = { 0, 250000 };
	struct gen_listener *gl;
	long max;
	size_t i;
	int wait = 0;

	if (pool.gen == NULL || pool.draining)
		return;
	for (i = 0; i < pool.gen->nlisteners; i++) {
		gl = &pool.gen->listeners[i];
		if (!gl->count->full_said || at_limit(gl, &max))
			continue;
		if (gl->count->below.tv_sec == 0 ||
		    deadline_ms_since(&gl->count->below) < AGAIN_QUIET * 1000) {
			wait = 1;
			continue;
		}
		gl->count->full_said = 0;
		log_info("listener %s: accepting again", gl->conf->name);
	}
	if (wait)
		evtimer_add(pool.again, &tv);
}

void
spawn_set_capacity(long fdcap)
{
	pool.fdcap = fdcap;
}

/*
 * The parent's own handshake deadline, for a child that cannot keep its
 * own (stopped, looping, taken over).  From CHAN_ACCEPTED to
 * CHAN_ESTABLISHED a child is on pool.handshakes; once a second, while
 * the list is not empty, handshake_sweep() kills those that have been on
 * it longer than their listener's timeout_handshake + HANDSHAKE_GRACE:
 * 1 to 2 s after the child's own deadline, which a working child meets.
 *
 * Cheaper than a libevent timer per child: a list insert and remove per
 * connection instead of an event_add and an event_del (O(log n) each in
 * libevent's timer heap, n the pending timers), and one wakeup a second
 * that walks only the children in their handshake (a handful: a handshake
 * takes milliseconds), armed only while there are any.  Deadlines differ
 * between generations (a reload may change the timeout), so the sweep
 * walks the whole list rather than stop at the first child in time.
 */
static void
handshake_start(struct child *c)
{
	struct timeval tv = { 1, 0 };

	deadline_in(&c->deadline,
	    c->gen->conf->timeout_handshake + HANDSHAKE_GRACE);
	TAILQ_INSERT_TAIL(&pool.handshakes, c, handshake);
	c->handshaking = 1;
	if (!evtimer_pending(pool.sweep, NULL))
		evtimer_add(pool.sweep, &tv);
}

static void
handshake_end(struct child *c)
{
	if (!c->handshaking)
		return;
	TAILQ_REMOVE(&pool.handshakes, c, handshake);
	c->handshaking = 0;
}

static void
handshake_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct timeval tv = { 1, 0 };
	struct child *c, *next;

	for (c = TAILQ_FIRST(&pool.handshakes); c != NULL; c = next) {
		next = TAILQ_NEXT(c, handshake);
		if (deadline_ms_left(&c->deadline) > 0)
			continue;
		handshake_end(c);
		log_warnx("child %d: no handshake after %d s: killed",
		    (int)c->pid, c->gen->conf->timeout_handshake);
		/* Not reaped yet, so the pid is still this child's. */
		if (kill(c->pid, SIGKILL) == -1 && errno != ESRCH)
			log_warn("kill child %d", (int)c->pid);
	}
	if (!TAILQ_EMPTY(&pool.handshakes))
		evtimer_add(pool.sweep, &tv);
}

/*
 * c holds a connection: keyproc may now read its channel, if the keyproc
 * it was handed to is still the running one (one started since never
 * heard of it).  A child that cannot be armed cannot finish its
 * handshake: end it now rather than at its timeout.
 */
static void
child_arm(struct child *c)
{
	if (c->kpgen != pool.kpgen || pool.kpfd == -1) {
		log_debug("child %d: its keyproc was replaced, not armed",
		    (int)c->pid);
		return;
	}
	if (kp_ctl_send_arm(pool.kpfd, c->pid) == -1) {
		log_warn("keyproc: cannot arm child %d", (int)c->pid);
		kill(c->pid, SIGKILL);
	}
}

static void
child_accepted(struct child *c)
{
	struct gen_listener *gl = &c->gen->listeners[c->listener];

	if (c->busy)
		return;
	child_arm(c);
	steal_done(c);
	c->sc = stats_accepted(gl->conf->name, c->pid);
	c->busy = 1;
	pool.busy++;
	gl->count->busy++;
	limit_update();
	pool.failures = 0;
	handshake_start(c);
	gl->accepts++;
	/* It accepted as the drain began: it drains like the others. */
	if (pool.draining && pool.drain_idle > 0)
		chan_send_drain(c, pool.drain_idle);
	if (!c->retired) {
		gl->idle--;
		/* The pool ran dry: keep more spares for this listener. */
		if (gl->idle == 0 && gl->spares < SPARES_MAX)
			gl->spares *= 2;
	}
	/* Once this round's events are handled: a fork waits for the
	 * spawner, and the other children that accepted wait for their
	 * arm. */
	event_active(pool.fill, EV_TIMEOUT, 0);
}

/* The connector's answer for c: hand the socket over, or say why not. */
static void
child_connected(void *arg, int fd, size_t idx, int err)
{
	struct chan_connected m = { .backend = (uint32_t)idx };
	struct child *c = arg;

	c->job = NULL;
	stats_backend(c->sc, c->gen->listeners[c->listener].conf, idx,
	    fd != -1);
	if (fd == -1) {
		chan_send_connect_failed(c, err);
		return;
	}
	chan_send(c, CHAN_CONNECTED, &m, sizeof(m), fd);
	close(fd);
}

/*
 * The child cannot connect: the connector does, as `user`, to the child's
 * own listener's backends only, one request at a time.  The route the
 * child names must be one of its listener's: else -1, and the caller
 * closes its channel.
 */
static int
child_connect(struct child *c, const char *body)
{
	const struct gen_listener *gl = &c->gen->listeners[c->listener];
	struct chan_connect m;

	memcpy(&m, body, sizeof(m));
	if (m.route > gl->conf->nroutes || m.alpn > gl->conf->nalpn) {
		log_warnx("child %d: backend connect request for route %u, "
		    "protocol %u: its listener has not got them", (int)c->pid,
		    m.route, m.alpn);
		return -1;
	}
	if (!c->busy || c->job != NULL ||
	    ++c->connects > CONNECTS_MAX) {
		log_warnx("child %d: refused backend connect request",
		    (int)c->pid);
		chan_send_connect_failed(c, EINVAL);
		return 0;
	}
	c->job = connector_ctl_connect(gl->conf, m.route, m.alpn,
	    c->gen->conf->timeout_connect, c->pid, child_connected, c);
	if (c->job == NULL)
		chan_send_connect_failed(c, errno);
	return 0;
}

/*
 * Whether one more line of c's may be written (LOG_BURST, LOG_RATE).  The
 * bucket is kept as the time it will be full again, log_full: each line
 * pushes it one refill interval later, and the bucket is empty once it is
 * more than LOG_BURST intervals ahead of now.  Once empty, c is cut off
 * for good, and that is logged once.
 */
static int
log_allowed(struct child *c)
{
	const int64_t interval = 1000000000 / LOG_RATE;
	struct timespec ts;
	int64_t now;

	if (c->log_cut)
		return 0;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	if (c->log_full < now)
		c->log_full = now;
	c->log_full += interval;
	if (c->log_full - now <= LOG_BURST * interval)
		return 1;
	c->log_cut = 1;
	log_warnx("child %d: log flood: cut off", (int)c->pid);
	return 0;
}

/*
 * One message from c, as parent_check_child() and stats_chan() allow it;
 * a child that sends anything else loses its channel (and with it, its
 * connection: child_close_chan()).
 */
static void
chan_dispatch(struct child *c, const struct msg_hdr *hdr, const char *body)
{
	char role[32];

	switch (parent_check_child(hdr, body)) {
	case CHAN_LOG:
		if (log_allowed(c)) {
			snprintf(role, sizeof(role), "child %d", (int)c->pid);
			(void)log_relay(role, body, hdr->len);
		}
		return;
	case CHAN_PEER:
	case CHAN_ENDED:
		if (stats_chan(c->sc, hdr, body) == -1)
			goto bad;
		return;
	case CHAN_ACCEPTED:
		child_accepted(c);
		return;
	case CHAN_ESTABLISHED:
		handshake_end(c);
		stats_established(c->sc);
		return;
	case CHAN_CONNECT:
		if (child_connect(c, body) == -1)
			goto bad;
		return;
	}
bad:
	log_warnx("child %d: bad message (type %u, %u bytes)", (int)c->pid,
	    hdr->type, hdr->len);
	child_close_chan(c);
}

/* Read one message from c; return 1, 0 when none is waiting, -1 at EOF. */
static int
chan_read(struct child *c)
{
	char buf[CHAN_MSG_MAX + 1];
	struct msg_hdr hdr;
	ssize_t n;

	/* A child has no business sending descriptors: any that come are
	 * closed, and the message is refused. */
	n = msg_get(c->fd, buf, sizeof(buf), &hdr, NULL, MSG_DONTWAIT);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n == -1 && errno != ECONNRESET) {
		log_warnx("child %d: bad message: %s", (int)c->pid,
		    strerror(errno));
		child_close_chan(c);
		return -1;
	}
	if (n <= 0) {
		child_close_chan(c);
		return -1;
	}
	chan_dispatch(c, &hdr, buf + sizeof(hdr));
	return 1;
}

static void
chan_cb(evutil_socket_t fd, short what, void *arg)
{
	chan_read(arg);
}

/* Read what a dead child left queued (its last log lines), then close. */
static void
chan_drain(struct child *c)
{
	int i;

	for (i = 0; i < 64 && c->fd != -1; i++)
		if (chan_read(c) <= 0)
			break;
}

static void
fail_backoff(void)
{
	struct timeval tv = { 1, 0 };
	unsigned int i;

	for (i = 3; i < pool.failures && tv.tv_sec < FAIL_BACKOFF_MAX; i++)
		tv.tv_sec *= 2;
	if (pool.failures == 3 || tv.tv_sec == FAIL_BACKOFF_MAX)
		log_warnx("children keep failing before taking a connection; "
		    "spawning again in %ld s", (long)tv.tv_sec);
	evtimer_add(pool.retry, &tv);
}

/* Retire the spares of listener li of g. */
void
spawn_retire_listener(struct gen *g, size_t li)
{
	struct child *c;
	size_t i;

	for (i = 0; i < HASH_SIZE; i++)
		LIST_FOREACH(c, &pool.table[i], hash)
			if (c->gen == g && c->listener == li)
				child_retire(c);
}

/* Signals that say a child crashed, rather than was killed. */
static int
crash_signal(int sig)
{
	switch (sig) {
	case SIGSEGV:
	case SIGBUS:
	case SIGILL:
	case SIGFPE:
	case SIGABRT:
	case SIGSYS:
		return 1;
	default:
		return 0;
	}
}

/*
 * A child crashed.  What an attacker learnt from it of its spawner's
 * address-space layout and stack canary holds for every child that
 * spawner forked: so the spawner is replaced by a fresh exec (a new
 * layout, a new canary) and its spares are retired.  Since every crash
 * meets a new layout and canary, guessing them byte by byte across crashes
 * learns nothing; the backoff only bounds what a crash loop costs (an exec
 * and a TLS context per crash, a log line).  So CRASH_FREE crashes in a
 * row (within CRASH_QUIET s of the last hold's end) cost one exec each, and
 * each one after that holds the next spawner back 1, 2, 4 ...
 * CRASH_BACKOFF_MAX s.
 * Log it and return 1 if the spawner was replaced, 0 if the child's
 * spawner was gone already (another generation, or replaced).
 */
static int
child_crashed(struct child *c, int sig)
{
	struct gen_listener *gl = &c->gen->listeners[c->listener];
	struct timespec now;
	long delay = 0;

	if (c->gen != pool.gen ||
	    c->spawner != spawner_serial(c->gen, c->listener))
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (gl->crashes > 0 &&
	    now.tv_sec > gl->spawner_after.tv_sec + CRASH_QUIET)
		gl->crashes = 0;
	/* 0 (CRASH_FREE times), then 1, 2, 4, 8, 16, 30, 30 ... s */
	if (gl->crashes >= CRASH_FREE)
		delay = gl->crashes - CRASH_FREE > 4 ? CRASH_BACKOFF_MAX :
		    1L << (gl->crashes - CRASH_FREE);
	gl->crashes++;
	gl->spawner_after = now;
	gl->spawner_after.tv_sec += delay;
	log_warnx("child %d killed by signal %d (%s)%s replacing the spawner "
	    "of listener %s", (int)c->pid, sig, strsignal(sig),
	    sig == SIGSYS ? ": forbidden system call;" : ":", gl->conf->name);
	if (delay > 0)
		log_warnx("listener %s: children keep crashing; its next "
		    "spawner starts in %ld s", gl->conf->name, delay);
	spawner_stop(c->gen, c->listener);
	spawn_retire_listener(c->gen, c->listener);
	return 1;
}

static void
log_exit(struct child *c, int status)
{
	int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;

	if (sig != 0 && crash_signal(sig) && child_crashed(c, sig))
		return;
	if (sig != 0)
		log_warnx("child %d killed by signal %d (%s)%s", (int)c->pid,
		    sig, strsignal(sig),
		    sig == SIGSYS ? ": forbidden system call" : "");
	else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
		log_debug("child %d exited with status %d", (int)c->pid,
		    WEXITSTATUS(status));
}

int
spawn_reaped(pid_t pid, int status)
{
	struct child *c;

	if ((c = child_lookup(pid)) == NULL)
		return 0;
	LIST_REMOVE(c, hash);
	chan_drain(c);
	child_close_chan(c);
	TAILQ_REMOVE(&pool.dying, c, dying);
	handshake_end(c);
	log_exit(c, status);
	steal_done(c);
	pool.count--;
	c->gen->listeners[c->listener].count->children--;
	if (c->busy) {
		pool.busy--;
		c->gen->listeners[c->listener].count->busy--;
		limit_update();
	} else if (!c->retired) {
		/* Died before taking a connection: a setup failure, unless
		 * it crashed (child_crashed() has its own backoff). */
		c->gen->listeners[c->listener].idle--;
		/* ... nor one whose keyproc died (its channel with it) */
		if (!(WIFSIGNALED(status) && crash_signal(WTERMSIG(status))) &&
		    c->kpgen == pool.kpgen && ++pool.failures >= 3)
			fail_backoff();
	}
	stats_reaped(c->sc, c->gen->listeners[c->listener].conf->name, status);
	gen_unref(c->gen);
	free(c);
	spawn_fill();
	return 1;
}

size_t
spawn_reap(void)
{
	struct child *c, *next;
	size_t n = 0;
	int status;

	/* waitpid(pid) costs the same with 10 children or 10,000;
	 * waitpid(-1) walks them all. */
	for (c = TAILQ_FIRST(&pool.dying); c != NULL; c = next) {
		next = TAILQ_NEXT(c, dying);
		if (waitpid(c->pid, &status, WNOHANG) == c->pid) {
			spawn_reaped(c->pid, status);
			n++;
		}
	}
	return n;
}

static void
reap_cb(evutil_socket_t fd, short what, void *arg)
{
	if (spawn_reap() > 0 && pool.reaped != NULL)
		pool.reaped();
}

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	spawn_fill();
}

/* Retire spares of the current generation beyond each listener's target. */
static void
retire_excess(void)
{
	struct gen_listener *gl;
	struct child *c;
	size_t i;

	for (i = 0; i < HASH_SIZE; i++) {
		LIST_FOREACH(c, &pool.table[i], hash) {
			if (c->gen != pool.gen)
				continue;
			gl = &pool.gen->listeners[c->listener];
			if (gl->idle > gl->spares)
				child_retire(c);
		}
	}
}

/*
 * Every DECAY_SECONDS, size each listener's spares again: at least one
 * second's worth of the connections it took in the period (so a steady
 * rate finds spares waiting), half as many as before if they sat mostly
 * unused, within SPARES_MIN..SPARES_MAX.  Spares beyond the new target are
 * retired, so a burst does not leave its processes (and memory) behind.
 */
static void
decay_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gen_listener *gl;
	size_t i, rate, before;

	if (pool.gen == NULL)
		return;
	for (i = 0; i < pool.gen->nlisteners; i++) {
		gl = &pool.gen->listeners[i];
		before = gl->spares;
		rate = gl->accepts / DECAY_SECONDS;
		gl->accepts = 0;
		if (gl->idle > gl->spares / 2)
			gl->spares /= 2;
		if (gl->spares < rate)
			gl->spares = rate;
		if (gl->spares < SPARES_MIN)
			gl->spares = SPARES_MIN;
		if (gl->spares > SPARES_MAX)
			gl->spares = SPARES_MAX;
		if (gl->spares != before)
			log_debug("listener %s: keeping %zu spares",
			    gl->conf->name, gl->spares);
	}
	retire_excess();
	spawn_fill();
}

void
spawn_init(struct event_base *base, void (*reaped)(void))
{
	struct timeval tv = { DECAY_SECONDS, 0 };

	pool.base = base;
	pool.reaped = reaped;
	spawner_init(base);
	if ((pool.retry = evtimer_new(base, retry_cb, NULL)) == NULL ||
	    (pool.fill = event_new(base, -1, 0, retry_cb, NULL)) == NULL ||
	    (pool.holdev = evtimer_new(base, retry_cb, NULL)) == NULL ||
	    (pool.again = evtimer_new(base, again_cb, NULL)) == NULL ||
	    (pool.reapev = evtimer_new(base, reap_cb, NULL)) == NULL ||
	    (pool.sweep = evtimer_new(base, handshake_sweep, NULL)) == NULL ||
	    (pool.decay = event_new(base, -1, EV_PERSIST, decay_cb,
	    NULL)) == NULL || event_add(pool.decay, &tv) == -1)
		fatalx("spawn_init: libevent");
}

/* g forks no more children: its spawner and listening sockets go. */
static void
close_listeners(struct gen *g)
{
	size_t i;

	spawner_stop_all(g);
	watch_free(g);
	for (i = 0; i < g->nlisteners; i++)
		listen_close(&g->listeners[i].socks);
}

void
spawn_set_gen(struct gen *g)
{
	struct gen *old = pool.gen;

	gen_ref(g);
	pool.gen = g;
	pool.failures = 0;
	limit_update();
	if (old == NULL)
		return;
	retire_idle(old);
	close_listeners(old);
	gen_unref(old);
}

/*
 * Before keyproc is replaced: children that accepted a connection while
 * the parent was busy (loading the new keys) have said so on their
 * channel; read it now, so they are armed in the keyproc that holds their
 * channel while it can still be told.
 */
static void
arm_pending(void)
{
	struct child *c;
	size_t i;

	for (i = 0; i < HASH_SIZE; i++)
		LIST_FOREACH(c, &pool.table[i], hash)
			if (!c->busy && c->kpgen == pool.kpgen)
				chan_drain(c);
}

void
spawn_set_keyproc(int fd)
{
	if (fd != -1 && pool.kpfd != -1)
		arm_pending();
	pool.kpfd = fd;
	pool.kpgen++;
	if (fd == -1)
		retire_idle(NULL);
}

/* Send CHAN_DRAIN with idle to every child, or to those that are busy. */
static void
drain_send(int idle, int busy_only)
{
	struct child *c;
	size_t i;

	for (i = 0; i < HASH_SIZE; i++)
		LIST_FOREACH(c, &pool.table[i], hash)
			if (c->busy || !busy_only)
				chan_send_drain(c, idle);
}

void
spawn_drain(int idle)
{
	struct gen *g = pool.gen;

	pool.draining = 1;
	pool.drain_idle = idle > 0 && idle <= CHAN_DRAIN_IDLE_MAX ? idle : 0;
	retire_idle(NULL);
	if (pool.drain_idle > 0)
		drain_send(pool.drain_idle, 1);
	if (g != NULL) {
		close_listeners(g);
		pool.gen = NULL;
		gen_unref(g);
	}
	event_del(pool.decay);
	event_del(pool.retry);
	event_del(pool.holdev);
	event_del(pool.again);
}

void
spawn_drain_now(void)
{
	/* A spare (retired, and slow to go) leaves on it too. */
	drain_send(0, 0);
}

void
spawn_kill_all(int sig, const char *why)
{
	struct child *c;
	size_t i;

	/* EPERM means no CAP_KILL (children run as another user): say so
	 * rather than leave connections running unnoticed.  Children not
	 * reaped yet: each pid is still its child's. */
	for (i = 0; i < HASH_SIZE; i++) {
		LIST_FOREACH(c, &pool.table[i], hash) {
			if (why != NULL)
				log_warnx("child %d %s: killed", (int)c->pid,
				    why);
			if (kill(c->pid, sig) == -1 && errno != ESRCH)
				log_warn("kill child %d", (int)c->pid);
		}
	}
}

size_t
spawn_count(void)
{
	return pool.count;
}

size_t
spawn_busy(void)
{
	return pool.busy;
}
