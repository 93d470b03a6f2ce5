/*
 * recluse: the parent.  Root, never reads network input: it loads the
 * configuration, binds the listeners, starts keyproc and the connector and
 * keeps the pool of connection children; reloads on SIGHUP, drains on SIGTERM and SIGINT.
 */
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <tls.h>

#include "config/clientca.h"
#include "config/conf.h"
#include "config/parse.h"
#include "keyproc/keyproc.h"
#include "keyproc/kp_provider.h"
#include "keyproc/sign.h"
#include "proxy/certcheck.h"
#include "proxy/connector.h"
#include "proxy/gen.h"
#include "proxy/listen.h"
#include "proxy/metrics.h"
#include "lib/log.h"
#include "lib/title.h"
#include "proxy/notify.h"
#include "proxy/ocsp.h"
#include "proxy/probe.h"
#include "lib/sandbox.h"
#include "lib/wire.h"
#include "proxy/sni.h"
#include "proxy/spawn.h"
#include "proxy/spawner.h"
#include "proxy/stats.h"
#include "proxy/tickets.h"

#define RECLUSE_VERSION	"0.1.0"
#define KP_RESTART_GAP	1	/* seconds between keyproc restarts */
#define KP_OLD_GRACE	1	/* seconds a replaced keyproc may overstay */
#define KP_DRAIN_MAX	256	/* messages read before a ping is judged */
#define KP_READ_MAX	16	/* messages read from keyproc per wake-up */

/* A replaced keyproc, until it is reaped. */
struct oldkp {
	LIST_ENTRY(oldkp)	 entry;
	pid_t			 pid;
	int			 fd;	/* its log lines, until EOF; or -1 */
	struct event		*ev;
	struct event		*kill;	/* SIGKILL if it overstays */
};

static struct {
	const char		*path;
	int			 verbose;
	struct event_base	*base;
	struct gen		*gen;
	pid_t			 kppid;
	int			 kpfd;
	int			 kphandshake;	/* its generation's, seconds */
	struct event		*kpev;
	struct event		*kpretry;
	struct event		*kpping;	/* every KP_PING_INTERVAL_MS */
	struct event		*kpdeadline;	/* the unanswered ping's end */
	struct timespec		 kppingsent;	/* when it was sent */
	uint32_t		 kpseq;		/* its sequence number */
	int			 kpwaiting;	/* a ping is unanswered */
	int			 kpunsent;	/* and not sent yet (EAGAIN) */
	int			 kpgrace;	/* judged once, found backed up */
	struct event		*drain;	/* timeout drain */
	struct event		*drainkill;	/* CHAN_DRAIN_GRACE later */
	int			 draining;
	LIST_HEAD(, oldkp)	 oldkps;	/* replaced, exiting */
} parent = { .kppid = -1, .kpfd = -1 };

static __dead void
usage(void)
{
	fprintf(stderr, "usage: recluse [-nvV] [-f file]\n");
	exit(2);
}

/*
 * keyproc refused a key with "PATH: reason" (sign_key_load()): put where
 * that key is configured in front.
 */
static void
keyproc_err_where(const struct gen *g, char *err, size_t errlen)
{
	const struct conf_cert *cc;
	char msg[CONF_ERR_MAX], *which;
	unsigned int li, ki;
	size_t i, j, n;

	/* "PATH: reason (listener L, key K)": that key's line */
	if ((which = strrchr(err, '(')) != NULL && which > err &&
	    sscanf(which - 1, KP_CTL_ERROR_WHICH, &li, &ki) == 2 &&
	    li < g->nlisteners && ki < g->listeners[li].conf->ncerts) {
		which[-1] = '\0';
		cc = &g->listeners[li].conf->certs[ki];
		snprintf(msg, sizeof(msg), "%s", err);
		conf_seterr(err, errlen, &cc->key_where, "%s", msg);
		return;
	}
	for (i = 0; i < g->nlisteners; i++)
		for (j = 0; j < g->listeners[i].conf->ncerts; j++) {
			cc = &g->listeners[i].conf->certs[j];
			n = strlen(cc->key);
			if (strncmp(err, cc->key, n) == 0 && err[n] == ':') {
				snprintf(msg, sizeof(msg), "%s", err);
				conf_seterr(err, errlen, &cc->key_where, "%s",
				    msg);
				return;
			}
		}
}

/* The TLS versions listener l allows, as keyproc's policy knows them. */
static uint32_t
keyproc_protocols(const struct conf_listener *l)
{
	uint32_t proto = 0, kp = 0;

	if (tls_config_parse_protocols(&proto, l->protocols != NULL ?
	    l->protocols : CONF_DEFAULT_PROTOCOLS) == -1)
		return 0;
	if (proto & TLS_PROTOCOL_TLSv1_2)
		kp |= KP_PROTO_TLS12;
	if (proto & TLS_PROTOCOL_TLSv1_3)
		kp |= KP_PROTO_TLS13;
	return kp;
}

/* Start a keyproc holding g's keys; return its control fd or -1. */
static int
keyproc_start(struct gen *g, pid_t *pidp, char *err, size_t errlen)
{
	struct gen_listener *gl;
	size_t i, j;
	int fd;

	if (kp_ctl_spawn(pidp, &fd) == -1) {
		snprintf(err, errlen, "cannot start keyproc: %s",
		    strerror(errno));
		return -1;
	}
	for (i = 0; i < g->nlisteners; i++) {
		gl = &g->listeners[i];
		if (kp_ctl_send_listener(fd, (uint32_t)i,
		    keyproc_protocols(gl->conf),
		    (uint32_t)g->conf->timeout_handshake * 1000) == -1) {
			snprintf(err, errlen, "keyproc: cannot describe "
			    "listener %s", gl->conf->name);
			goto err;
		}
		/* Key j of listener i: what its children's references
		 * (kp_ref_from_cert(), key index j) name. */
		for (j = 0; j < gl->tc.ncerts; j++)
			if (kp_ctl_send_key(fd, (uint32_t)i, (uint32_t)j,
			    gl->tc.certs[j].spki, gl->tc.certs[j].spkilen,
			    gl->conf->certs[j].key,
			    gl->conf->certs[j].keyfd) == -1) {
				snprintf(err, errlen, "keyproc: cannot send "
				    "key %s", gl->conf->certs[j].key);
				goto err;
			}
	}
	if (kp_ctl_send_start(fd, g->conf->keyproc_uid, g->conf->keyproc_gid,
	    parent.verbose, g->conf->keyproc_signers != 0 ?
	    (unsigned int)g->conf->keyproc_signers : kp_ctl_signers_auto(),
	    g->conf->chroot) == -1) {
		snprintf(err, errlen, "keyproc: cannot start it");
		goto err;
	}
	if (kp_ctl_wait_ready(fd, err, errlen) == -1) {
		keyproc_err_where(g, err, errlen);
		goto err;
	}
	return fd;
err:
	close(fd);
	kill(*pidp, SIGKILL);
	return -1;
}

static void	kp_read_cb(evutil_socket_t, short, void *);

/* Its control channel is at EOF: nothing more to relay. */
static void
keyproc_old_close(struct oldkp *o)
{
	if (o->fd == -1)
		return;
	event_free(o->ev);
	close(o->fd);
	o->fd = -1;
}

/* A replaced keyproc's log lines: its children's violations, say. */
static void
keyproc_old_read_cb(evutil_socket_t fd, short what, void *arg)
{
	if (kp_ctl_read(fd, NULL) == -1)
		keyproc_old_close(arg);
}

static void
keyproc_old_free(struct oldkp *o)
{
	struct pollfd pfd;
	int i;

	/* Reaped: relay what it logged last, then let go. */
	for (i = 0; i < 64 && o->fd != -1; i++) {
		pfd.fd = o->fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 0) != 1 || kp_ctl_read(o->fd, NULL) == -1)
			break;
	}
	keyproc_old_close(o);
	LIST_REMOVE(o, entry);
	event_free(o->kill);
	free(o);
}

/* Its time is over: it is not reaped yet, so the pid is still its own. */
static void
keyproc_old_kill_cb(evutil_socket_t fd, short what, void *arg)
{
	struct oldkp *o = arg;
	int status;

	if (waitpid(o->pid, &status, WNOHANG) == o->pid) {
		keyproc_old_free(o);
		return;
	}
	log_warnx("replaced keyproc %d still runs after the handshake "
	    "timeout: killed", (int)o->pid);
	if (kill(o->pid, SIGKILL) == -1)
		log_warn("kill keyproc %d", (int)o->pid);
}

/*
 * A replaced keyproc gets EOF on its control channel (shutdown, so that
 * its log lines still come back), finishes the handshakes it has armed,
 * then exits: at the latest one handshake timeout (of its generation)
 * later.  One that is still there a little after that, stuck or stopped,
 * is killed: an old key is gone one handshake timeout after the reload,
 * whatever old children do.
 */
static void
keyproc_forget(pid_t pid, int fd, int handshake)
{
	struct timeval tv = { handshake + KP_OLD_GRACE, 0 };
	struct oldkp *o;

	if ((o = calloc(1, sizeof(*o))) == NULL ||
	    (o->kill = evtimer_new(parent.base, keyproc_old_kill_cb,
	    o)) == NULL || evtimer_add(o->kill, &tv) == -1) {
		log_warnx("replaced keyproc %d: cannot time it, killed",
		    (int)pid);
		kill(pid, SIGKILL);	/* reaped by reap()'s waitpid(-1) */
		if (o != NULL && o->kill != NULL)
			event_free(o->kill);
		free(o);
		if (fd != -1)
			close(fd);
		return;
	}
	o->pid = pid;
	o->fd = fd;
	LIST_INSERT_HEAD(&parent.oldkps, o, entry);
	if (fd == -1)
		return;
	if (shutdown(fd, SHUT_WR) == -1 ||
	    (o->ev = event_new(parent.base, fd, EV_READ | EV_PERSIST,
	    keyproc_old_read_cb, o)) == NULL || event_add(o->ev, NULL) == -1) {
		log_warn("replaced keyproc %d: control channel", (int)pid);
		if (o->ev != NULL)
			event_free(o->ev);
		close(fd);
		o->fd = -1;
	}
}

/* Reap the replaced keyprocs that have exited; return how many. */
static size_t
keyproc_reap_old(void)
{
	struct oldkp *o, *next;
	size_t n = 0;
	pid_t r;
	int status;

	for (o = LIST_FIRST(&parent.oldkps); o != NULL; o = next) {
		next = LIST_NEXT(o, entry);
		r = waitpid(o->pid, &status, WNOHANG);
		if (r == o->pid)
			n++;
		if (r == o->pid || (r == -1 && errno == ECHILD))
			keyproc_old_free(o);
	}
	return n;
}

/* pid was reaped by waitpid(-1): if it was a replaced keyproc, forget it. */
static int
keyproc_reaped_old(pid_t pid)
{
	struct oldkp *o;

	LIST_FOREACH(o, &parent.oldkps, entry) {
		if (o->pid == pid) {
			keyproc_old_free(o);
			return 1;
		}
	}
	return 0;
}

/* A new keyproc (running), or none: no ping is waiting for an answer. */
static void
keyproc_ping_reset(int running)
{
	struct timeval tv = { 0, KP_PING_INTERVAL_MS * 1000 };

	parent.kpwaiting = 0;
	parent.kpunsent = 0;
	parent.kpgrace = 0;
	evtimer_del(parent.kpdeadline);
	if (!running)
		evtimer_del(parent.kpping);
	else if (evtimer_add(parent.kpping, &tv) == -1)
		fatalx("keyproc: libevent");
}

/* Make (pid, fd) the running keyproc; a previous one exits on EOF. */
static void
keyproc_install(pid_t pid, int fd)
{
	/* First: the pool arms what the old keyproc may still serve. */
	spawn_set_keyproc(fd);
	if (parent.kpev != NULL) {
		event_free(parent.kpev);
		parent.kpev = NULL;
	}
	if (parent.kppid != -1)
		keyproc_forget(parent.kppid, parent.kpfd, parent.kphandshake);
	else if (parent.kpfd != -1)
		close(parent.kpfd);
	parent.kppid = pid;
	parent.kpfd = fd;
	stats_keyproc(pid);
	parent.kphandshake = parent.gen != NULL ?
	    parent.gen->conf->timeout_handshake : 0;
	keyproc_ping_reset(fd != -1);
	if (fd != -1) {
		/* Running: a stuck keyproc must not stop the parent. */
		if (fcntl(fd, F_SETFL, O_NONBLOCK) == -1)
			log_warn("keyproc: control channel");
		evtimer_del(parent.kpretry);
		parent.kpev = event_new(parent.base, fd, EV_READ | EV_PERSIST,
		    kp_read_cb, NULL);
		if (parent.kpev == NULL || event_add(parent.kpev, NULL) == -1)
			fatalx("keyproc: libevent");
	}
}

static void
keyproc_restart(void)
{
	struct timeval tv = { KP_RESTART_GAP, 0 };
	char err[CONF_ERR_MAX];
	pid_t pid;
	int fd;

	if (parent.draining || parent.gen == NULL)
		return;
	if ((fd = keyproc_start(parent.gen, &pid, err, sizeof(err))) == -1) {
		log_warnx("%s; trying again in %d s", err, KP_RESTART_GAP);
		evtimer_add(parent.kpretry, &tv);
		return;
	}
	keyproc_install(pid, fd);
	log_info("keyproc restarted (pid %d)", (int)pid);
	spawn_fill();
}

/*
 * keyproc did not answer a ping in KP_ANSWER_MS: alive but stuck
 * (stopped, looping, blocked), it serves nobody.  Kill it, by its pid
 * (not reaped yet, so still its own), and start a new one as if it had
 * died; it is reaped as a replaced keyproc.
 */
static void
keyproc_stuck(long long ms)
{
	log_warnx("keyproc %d: no answer for %lld.%lld s: killed, starting a "
	    "new one", (int)parent.kppid, ms / 1000, ms % 1000 / 100);
	if (parent.kppid != -1 && kill(parent.kppid, SIGKILL) == -1)
		log_warn("kill keyproc %d", (int)parent.kppid);
	keyproc_install(-1, -1);
	keyproc_restart();
}

/* The answer to a ping: the running keyproc serves. */
static void
keyproc_pong(uint32_t seq)
{
	/* Only the last ping's: an older or made-up number proves nothing. */
	if (!parent.kpwaiting || seq != parent.kpseq)
		return;
	parent.kpwaiting = 0;
	evtimer_del(parent.kpdeadline);
}

/* keyproc is gone; waited: its pid was already waited for. */
static void
keyproc_lost(const char *why, int waited)
{
	if (waited)
		parent.kppid = -1;	/* not a pid to wait for again */
	if (parent.kpfd == -1)
		return;
	log_warnx("keyproc %s; starting a new one", why);
	keyproc_install(-1, -1);
	keyproc_restart();
}

/*
 * What keyproc sent: a few messages a wake-up, so that its channel (a
 * queue of a few datagrams) has room for the answer to a ping even while
 * it logs a burst.
 */
static void
kp_read_cb(evutil_socket_t fd, short what, void *arg)
{
	uint32_t seq;
	int i, r;

	for (i = 0; i < KP_READ_MAX; i++) {
		if ((r = kp_ctl_read(fd, &seq)) == -1) {
			keyproc_lost("is gone", 0);
			return;
		}
		if (r == 0)
			return;
		if (r == KP_CTL_PONG)
			keyproc_pong(seq);
	}
}

/* Milliseconds since the waiting ping was (first) sent. */
static long long
keyproc_ping_age(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)(now.tv_sec - parent.kppingsent.tv_sec) * 1000 +
	    (now.tv_nsec - parent.kppingsent.tv_nsec) / 1000000;
}

/* Judge the waiting ping ms milliseconds from now. */
static void
keyproc_ping_expire_in(long long ms)
{
	struct timeval tv;

	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	if (evtimer_add(parent.kpdeadline, &tv) == -1)
		fatalx("keyproc: libevent");
}

/* Send the waiting ping; -1 if it could not be (yet). */
static int
keyproc_ping_send(void)
{
	if (kp_ctl_send_ping(parent.kpfd, parent.kpseq) == -1) {
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			log_debug("keyproc: ping: %s", strerror(errno));
		return -1;
	}
	parent.kpunsent = 0;
	return 0;
}

/*
 * Every KP_PING_INTERVAL_MS: a new ping if none is waiting; keyproc has
 * KP_ANSWER_MS to answer.  When its channel is full (EAGAIN), the same
 * ping is sent again at the next tick, and its time counts from the first
 * try: a keyproc that does not read its channel for that long does not
 * serve either.
 */
static void
kp_ping_cb(evutil_socket_t fd, short what, void *arg)
{
	if (parent.kpfd == -1)
		return;
	if (!parent.kpwaiting) {
		parent.kpseq++;
		parent.kpwaiting = 1;
		parent.kpunsent = 1;
		parent.kpgrace = 0;
		clock_gettime(CLOCK_MONOTONIC, &parent.kppingsent);
		keyproc_ping_expire_in(KP_ANSWER_MS);
	}
	if (parent.kpunsent)
		(void)keyproc_ping_send();
}

/*
 * The waiting ping has had its time.  The parent itself may have been
 * busy meanwhile (a reload that fails, a burst): a ping it could not send
 * is timed from the moment it can, and an answer may be waiting unread.
 * If keyproc's channel was backed up with its log lines, its answer may
 * have had no room: it gets one more interval, now that it has.
 */
static void
kp_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	long long ms;
	uint32_t seq;
	int i, r;

	/* libevent times from its cached clock, which may be behind ours */
	if ((ms = keyproc_ping_age()) < KP_ANSWER_MS) {
		keyproc_ping_expire_in(KP_ANSWER_MS - ms);
		return;
	}
	if (parent.kpunsent && keyproc_ping_send() == 0) {
		clock_gettime(CLOCK_MONOTONIC, &parent.kppingsent);
		keyproc_ping_expire_in(KP_ANSWER_MS);
		return;
	}
	for (i = 0; i < KP_DRAIN_MAX && parent.kpwaiting; i++) {
		if ((r = kp_ctl_read(parent.kpfd, &seq)) == -1) {
			keyproc_lost("is gone", 0);
			return;
		}
		if (r == 0)
			break;
		if (r == KP_CTL_PONG)
			keyproc_pong(seq);
	}
	if (!parent.kpwaiting)
		return;
	if (i > 0 && !parent.kpgrace) {
		parent.kpgrace = 1;
		keyproc_ping_expire_in(KP_PING_INTERVAL_MS);
		return;
	}
	keyproc_stuck(keyproc_ping_age());
}

static void
kp_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	keyproc_restart();
}

static __dead void
finish(void)
{
	keyproc_install(-1, -1);
	log_info("stopped");
	exit(0);
}

/* The last resort: children that did not end at the drain timeout. */
static void
drain_kill_cb(evutil_socket_t fd, short what, void *arg)
{
	char why[64];

	snprintf(why, sizeof(why), "still runs %d s after the drain timeout",
	    CHAN_DRAIN_GRACE);
	spawn_kill_all(SIGKILL, why);
	finish();
}

/*
 * The drain timeout: every child ends its connection cleanly now
 * (close_notify, EOF to the backend, its access line with end=drain) and
 * exits; the last one reaped ends the parent (reaped()).  One still there
 * CHAN_DRAIN_GRACE s later, wedged or taken over, is killed.
 */
static void
drain_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct timeval tv = { CHAN_DRAIN_GRACE, 0 };

	log_warnx("drain timeout: closing %zu connections", spawn_busy());
	spawn_drain_now();
	parent.drainkill = evtimer_new(parent.base, drain_kill_cb, NULL);
	if (parent.drainkill == NULL ||
	    evtimer_add(parent.drainkill, &tv) == -1) {
		spawn_kill_all(SIGKILL, NULL);
		finish();
	}
}

static void
drain_start(int sig)
{
	const struct conf *conf = parent.gen->conf;
	struct timeval tv = { 0, 0 };
	int idle;

	if (parent.draining) {
		log_warnx("signal %d again: stopping now", sig);
		spawn_kill_all(SIGKILL, NULL);
		finish();
	}
	parent.draining = 1;
	notify_send("STOPPING=1");
	tv.tv_sec = conf->timeout_drain;
	/* Idle connections end early only if earlier than the timeout. */
	idle = conf->timeout_drain_idle;
	if (idle == CONF_OFF || idle >= conf->timeout_drain)
		idle = 0;
	if (idle > 0)
		log_info("stopping: draining %zu connections (up to %ld s, "
		    "idle ones after %d s)", spawn_busy(), (long)tv.tv_sec,
		    idle);
	else
		log_info("stopping: draining %zu connections (up to %ld s)",
		    spawn_busy(), (long)tv.tv_sec);
	spawn_drain(idle);
	if (spawn_count() == 0)
		finish();
	parent.drain = evtimer_new(parent.base, drain_timeout_cb, NULL);
	if (parent.drain == NULL || evtimer_add(parent.drain, &tv) == -1)
		finish();
}

/*
 * The parent's descriptors: one per child (its channel), and its own:
 * stdio, libevent's, the channels to keyproc, the connector and the
 * spawners, each loaded configuration's listening sockets, key files and
 * chains, a fork's socketpairs.  NOFILE_RESERVE and NOFILE_PER_LISTENER
 * cover those with room for a reload or two.
 */
#define NOFILE_RESERVE		256
#define NOFILE_PER_LISTENER	8

static rlim_t
nofile_need(const struct gen *g, long conns)
{
	return (rlim_t)conns + NOFILE_RESERVE +
	    (rlim_t)NOFILE_PER_LISTENER * g->nlisteners;
}

/*
 * Whether a seccomp filter is already on us (systemd's SystemCallFilter=,
 * a container's profile): it may kill a process for a call it does not
 * allow.  Unknown (no /proc) counts as filtered.
 */
static int
seccomp_filtered(void)
{
	char line[128];
	FILE *fp;
	int mode = -1;

	if ((fp = fopen("/proc/self/status", "re")) == NULL)
		return 1;
	while (fgets(line, sizeof(line), fp) != NULL)
		if (sscanf(line, "Seccomp: %d", &mode) == 1)
			break;
	fclose(fp);
	return mode != 0;
}

/*
 * Every process of recluse runs under SCHED_BATCH (inherited across fork
 * and exec): a process woken by another one of them (a child's message, a
 * fork request, a signature request) waits until the running one blocks
 * or its slice ends, instead of preempting it.  A handshake passes through
 * five processes; without wake-up preemption it takes ~7 fewer context
 * switches (docs/PERFORMANCE.md, "round eleven").  Only the default policy
 * is changed: one the operator chose (chrt, CPUSchedulingPolicy=) stays.
 * Under a seccomp filter recluse does not try: the shipped unit's would
 * kill it for sched_setscheduler(2), and sets CPUSchedulingPolicy=batch
 * itself.
 */
static void
sched_batch(void)
{
	struct sched_param sp;

	if (sched_getscheduler(0) != SCHED_OTHER || seccomp_filtered())
		return;
	memset(&sp, 0, sizeof(sp));
	if (sched_setscheduler(0, SCHED_BATCH, &sp) == -1)
		log_warn("sched_setscheduler(SCHED_BATCH)");
}

/*
 * Make room for g's max-connections: raise the soft descriptor limit to
 * the hard one, and the hard one too if it is short (which takes
 * CAP_SYS_RESOURCE; the shipped unit has none).  If it is still short,
 * warn with the capacity in force and how to get more, and have the pool
 * keep within it: clients then wait in the backlog at the real limit,
 * where the parent says so, instead of the parent running out of
 * descriptors at random.  A warning rather than a refusal: the limit is
 * the environment's, not the file's (recluse -n cannot see it), and a
 * service that serves fewer connections beats one that does not start.
 */
static void
nofile_check(const struct gen *g)
{
	long maxconn = g->conf->max_connections, cap;
	rlim_t want = nofile_need(g, maxconn), base;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
		log_warn("getrlimit");
		return;
	}
	if (rl.rlim_max < want) {
		rl.rlim_cur = rl.rlim_max = want;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1 &&
		    getrlimit(RLIMIT_NOFILE, &rl) == -1) {
			log_warn("getrlimit");
			return;
		}
	}
	/* At least everything the hard limit allows. */
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			log_warn("setrlimit");
		if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
			return;
	}
	if (rl.rlim_cur >= want) {
		spawn_set_capacity(0);
		return;
	}
	base = nofile_need(g, 0);
	cap = rl.rlim_cur > base ? (long)(rl.rlim_cur - base) : 0;
	if (cap < 1)
		cap = 1;
	log_warnx("the descriptor limit (%llu) allows %ld connections, not "
	    "max-connections %ld: serving at most %ld; raise LimitNOFILE= "
	    "(or ulimit -n) to %llu, or lower max-connections",
	    (unsigned long long)rl.rlim_cur, cap, maxconn, cap,
	    (unsigned long long)want);
	spawn_set_capacity(cap);
}

static void
reload(void)
{
	char err[CONF_ERR_MAX];
	struct gen *g, *old;
	pid_t pid;
	int fd;

	if (parent.draining)
		return;
	notify_send("RELOADING=1");
	log_info("reloading %s", parent.path);
	if ((g = gen_load(parent.path, parent.gen, err, sizeof(err))) == NULL) {
		stats_reload(0);
		log_warnx("reload failed, keeping the running configuration: %s",
		    err);
		notify_send("READY=1");
		return;
	}
	if ((fd = keyproc_start(g, &pid, err, sizeof(err))) == -1) {
		log_warnx("reload failed, keeping the running configuration: %s",
		    err);
		gen_unref(g);
		stats_reload(0);
		notify_send("READY=1");
		return;
	}
	old = parent.gen;
	parent.gen = g;
	log_set_syslog(g->conf->log_syslog);
	nofile_check(g);
	spawn_set_gen(g);
	tickets_set_gen(g);
	stats_set_gen(g);
	stats_reload(1);
	gen_unref(old);
	keyproc_install(pid, fd);
	connector_ctl_set_user(g->conf->uid, g->conf->gid);
	probe_backends(g);
	spawn_fill();
	log_info("ready: configuration %u, %zu listeners", g->id,
	    g->nlisteners);
	notify_send("READY=1");
}

/* After children were reaped: a drain ends with the last one. */
static void
reaped(void)
{
	if (parent.draining && spawn_count() == 0)
		finish();
}

/*
 * A child's exit closes its channel first, so spawn_reap() finds it by pid;
 * keyproc, current or replaced, is waited for by pid too.  Only when none
 * explains the signal (a child whose EOF is not read yet) does waitpid(-1),
 * which walks every child, run.
 */
static void
reap(void)
{
	pid_t pid;
	int status;
	size_t n;

	n = spawn_reap() + keyproc_reap_old() + spawner_reap() +
	    connector_ctl_reap() + metrics_ctl_reap();
	if (parent.kppid != -1 &&
	    waitpid(parent.kppid, &status, WNOHANG) == parent.kppid) {
		keyproc_lost(WIFSIGNALED(status) ? "was killed" : "exited", 1);
		n++;
	}
	while (n == 0 && (pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (spawn_reaped(pid, status) || spawner_reaped(pid, status) ||
		    keyproc_reaped_old(pid) ||
		    connector_ctl_reaped(pid, status) ||
		    metrics_ctl_reaped(pid, status))
			continue;
		if (pid == parent.kppid)
			keyproc_lost(WIFSIGNALED(status) ? "was killed" :
			    "exited", 1);
	}
	reaped();
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	switch (sig) {
	case SIGCHLD:
		reap();
		break;
	case SIGHUP:
		reload();
		break;
	case SIGTERM:
	case SIGINT:
		drain_start((int)sig);
		break;
	}
}

static void
add_signal(int sig)
{
	struct event *ev;

	if ((ev = evsignal_new(parent.base, sig, signal_cb, NULL)) == NULL ||
	    evsignal_add(ev, NULL) == -1)
		fatalx("signal %d: libevent", sig);
}

static __dead void
serve(void)
{
	char err[CONF_ERR_MAX];
	pid_t pid;
	int fd;

	if (geteuid() != 0)
		fatalx("must be started as root (it drops privileges itself)");
	signal(SIGPIPE, SIG_IGN);
	sched_batch();
	/* For the check of each listener's libtls context at load time; the
	 * contexts the children use are each spawner's own. */
	if (kp_provider_load() == -1)
		fatalx("cannot load the keyproc OpenSSL provider");
	listen_inherit();
	if ((parent.gen = gen_load(parent.path, NULL, err, sizeof(err))) == NULL)
		fatalx("%s", err);
	log_set_syslog(parent.gen->conf->log_syslog);
	listen_unused_close();
	nofile_check(parent.gen);
	if ((parent.base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	add_signal(SIGCHLD);
	add_signal(SIGHUP);
	add_signal(SIGTERM);
	add_signal(SIGINT);
	parent.kpretry = evtimer_new(parent.base, kp_retry_cb, NULL);
	parent.kpping = event_new(parent.base, -1, EV_PERSIST, kp_ping_cb,
	    NULL);
	parent.kpdeadline = evtimer_new(parent.base, kp_deadline_cb, NULL);
	if (parent.kpretry == NULL || parent.kpping == NULL ||
	    parent.kpdeadline == NULL)
		fatalx("keyproc: libevent");
	LIST_INIT(&parent.oldkps);
	spawn_init(parent.base, reaped);
	spawn_set_gen(parent.gen);
	tickets_init(parent.base);
	tickets_set_gen(parent.gen);
	stats_set_gen(parent.gen);
	if ((fd = keyproc_start(parent.gen, &pid, err, sizeof(err))) == -1)
		fatalx("%s", err);
	keyproc_install(pid, fd);
	connector_ctl_init(parent.base, parent.gen->conf->uid,
	    parent.gen->conf->gid);
	if (metrics_ctl_init(parent.base, parent.gen->conf, err,
	    sizeof(err)) == -1)
		fatalx("%s", err);
	probe_backends(parent.gen);
	spawn_fill();
	log_info("ready: configuration %u, %zu listeners", parent.gen->id,
	    parent.gen->nlisteners);
	notify_send("READY=1");
	event_base_dispatch(parent.base);
	fatalx("event loop ended");
}

/* -n: which later certificate of the chain (2, 3, ...) is l's key's, or 0. */
static int
check_key_later(const struct conf_cert *l, const uint8_t *cert,
    size_t certlen)
{
	char kerr[CONF_ERR_MAX];
	unsigned char *der;
	struct sign_key *k;
	X509 *x;
	BIO *bio;
	int i, len, found = 0;

	if (certlen > INT_MAX ||
	    (bio = BIO_new_mem_buf(cert, (int)certlen)) == NULL)
		return 0;
	for (i = 1; found == 0 &&
	    (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL; i++) {
		der = NULL;
		if (i > 1 && (len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x),
		    &der)) > 0 && (k = sign_key_load(l->keyfd, l->key, der,
		    (size_t)len, kerr, sizeof(kerr))) != NULL) {
			sign_key_free(k);
			found = i;
		}
		OPENSSL_free(der);
		X509_free(x);
	}
	BIO_free(bio);
	ERR_clear_error();
	return found;
}

/* -n: a warning if l's OCSP staple would not be sent, and why. */
static void
check_staple(const struct conf_cert *l, const uint8_t *cert,
    size_t certlen)
{
	char msg[CONF_ERR_MAX + 256];
	uint8_t *der;
	size_t len;

	if (l->ocsp_staple == NULL)
		return;
	if (ocsp_staple_load(l->ocsp_staple, &l->ocsp_staple_where, cert,
	    certlen, time(NULL), &der, &len, msg, sizeof(msg)) == 0)
		free(der);
	else
		fprintf(stderr, "%s\n", msg);
}

/*
 * -n: does l's key match the first certificate of its chain?  The key is
 * read from the descriptor conf_load() opened and checked, never by path.
 */
static int
check_key(const struct conf_cert *l, char *err, size_t errlen)
{
	const struct conf_where *cw = &l->certificate_where;
	const struct conf_where *kw = &l->key_where;
	struct sign_key *k = NULL;
	uint8_t *cert, *spki = NULL;
	size_t certlen, spkilen, reflen;
	char *ref = NULL, kerr[CONF_ERR_MAX];
	int n;

	if ((cert = tls_load_file(l->certificate, &certlen, NULL)) == NULL) {
		return conf_seterr(err, errlen, cw, "certificate \"%s\": "
		    "cannot read", l->certificate);
	}
	if (kp_ref_from_cert(cert, certlen, 0, &ref, &reflen, &spki,
	    &spkilen, kerr, sizeof(kerr)) == -1)
		conf_seterr(err, errlen, cw, "certificate \"%s\": %s",
		    l->certificate, kerr);
	else if ((k = sign_key_load(l->keyfd, l->key, spki, spkilen, kerr,
	    sizeof(kerr))) != NULL) {
		sign_key_free(k);
		if (cert_expiry(cert, certlen, time(NULL), kerr,
		    sizeof(kerr)) == 1)
			fprintf(stderr, "%s:%d: warning: certificate \"%s\" "
			    "%s\n", cw->file, cw->line, l->certificate, kerr);
		check_staple(l, cert, certlen);
	}
	else if ((n = check_key_later(l, cert, certlen)) > 0)
		conf_seterr(err, errlen, cw, "the first certificate in %s is "
		    "not the key's (certificate %d is): put the leaf "
		    "certificate first", l->certificate, n);
	else
		conf_seterr(err, errlen, kw, "%s", kerr);
	tls_unload_file(cert, certlen);
	free(ref);
	free(spki);
	return k != NULL ? 0 : -1;
}

/* -n: does each key match its certificate?  Names claimed twice? */
static int
check_keys(const struct conf *conf, char *err, size_t errlen)
{
	const struct conf_listener *l;
	const struct conf_where *w;
	char warn[CONF_ERR_MAX];
	size_t i, j;

	for (i = 0; i < conf->nlisteners; i++) {
		l = &conf->listeners[i];
		for (j = 0; j < l->ncerts; j++)
			if (check_key(&l->certs[j], err, errlen) == -1)
				return -1;
		sni_names_warn_files(l);
		if ((w = clientca_warn(l, time(NULL), warn,
		    sizeof(warn))) != NULL)
			fprintf(stderr, "%s:%d: warning: %s\n", w->file, w->line,
			    warn);
	}
	return 0;
}

/* -n: check the file; with keys, check each matches its certificate. */
static int
check_only(int dump)
{
	char err[CONF_ERR_MAX];
	struct conf *conf;
	int rc = 0;

	if ((conf = conf_load(parent.path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (check_keys(conf, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s\n", err);
		rc = 1;
	} else if (dump && conf_dump(conf, stdout) == -1)
		rc = 1;
	else
		fprintf(stderr, "configuration OK\n");
	conf_free(conf);
	return rc;
}

/*
 * Started with stdin, stdout or stderr closed, the first sockets would take
 * their numbers, and the /dev/null the spawner puts there would replace a
 * channel: fill them first.
 */
static void
std_fds_open(void)
{
	int fd;

	while ((fd = open("/dev/null", O_RDWR)) != -1 && fd <= STDERR_FILENO)
		;
	if (fd == -1)
		fatal("/dev/null");
	close(fd);
}

int
main(int argc, char *argv[])
{
	const char *base;
	int ch, check = 0;

	title_init(argc, argv);
	base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	if (strcmp(base, KEYPROC_ARGV0) == 0)
		keyproc_main();
	if (strcmp(base, CONNECTOR_ARGV0) == 0)
		connector_main();
	if (strcmp(base, SPAWNER_ARGV0) == 0)
		spawner_main();
	if (strcmp(base, METRICS_ARGV0) == 0)
		metrics_main();

	parent.path = CONF_DEFAULT_FILE;
	while ((ch = getopt(argc, argv, "f:nvV")) != -1) {
		switch (ch) {
		case 'f':
			parent.path = optarg;
			break;
		case 'n':
			check++;
			break;
		case 'v':
			parent.verbose++;
			break;
		case 'V':
			printf("recluse %s\n", RECLUSE_VERSION);
			return 0;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	log_init("parent", parent.verbose, -1);
	log_stamp_unless_journal();
	std_fds_open();
	if (check > 0)
		return check_only(check > 1);
	serve();
}
