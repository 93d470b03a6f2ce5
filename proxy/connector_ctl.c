/*
 * The parent's side of the connector: see connector.h.
 *
 * A job is one child's CHAN_CONNECT: the listener's backends, address by
 * address, one attempt at a time.  An attempt is queued, sent to the
 * connector when its channel has room (the parent never blocks on it),
 * and answered by id; a timer of its own (the connect timeout plus
 * CHAN_CONNECT_SLACK_MS) ends it whatever the connector does.  When the
 * connector dies its attempts go back to the queue, for the next one,
 * within what is left of their time.  An answer whose job is gone (the
 * child died, the attempt timed out) is closed unread.
 */
#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "lib/deadline.h"
#include "lib/log.h"
#include "lib/msg.h"
#include "lib/role.h"
#include "lib/wire.h"
#include "proxy/backend.h"
#include "proxy/connector.h"
#include "proxy/route.h"
#include "proxy/spawn.h"
#include "proxy/stats.h"

#define CONNECTOR_RESTART_GAP	1	/* seconds between starts */
#define CONNECTOR_READ_MAX	64	/* messages read per wake-up */
#define CONNECTOR_PIDS_MAX	8	/* started, not yet reaped */
#define JOB_HASH_SIZE		1024

enum job_state {
	JOB_IDLE,		/* between attempts */
	JOB_QUEUED,		/* in cn.queue, to be sent */
	JOB_SENT		/* in cn.table, answer awaited */
};

struct connector_job {
	LIST_ENTRY(connector_job)	 hash;
	TAILQ_ENTRY(connector_job)	 queue;
	enum job_state			 state;
	uint32_t			 id;	/* of the current attempt */
	const struct conf_listener	*l;
	size_t				 backend, addr;	/* the attempt */
	size_t				 last;	/* one past the last backend */
	int				 routed;	/* only route's: */
	size_t				 route, alpn;	/* proxy/route.h */
	int				 qualified;
	int				 timeout;	/* seconds */
	int				 err;	/* of the last attempt */
	pid_t				 pid;	/* the child, for the log; 0 for
						   a probe, which logs nothing */
	struct timespec			 deadline;	/* of the attempt */
	struct event			*timer;
	void				(*done)(void *, int, size_t, int);
	void				*arg;
};

static struct {
	struct event_base	*base;
	uid_t			 uid;
	gid_t			 gid;
	pid_t			 pid;	/* the running connector, or -1 */
	int			 fd;	/* its channel, or -1 */
	struct event		*rev, *wev;
	struct event		*restart;
	uint32_t		 nextid;
	pid_t			 pids[CONNECTOR_PIDS_MAX];	/* to reap */
	TAILQ_HEAD(, connector_job)	 queue;
	LIST_HEAD(, connector_job)	 table[JOB_HASH_SIZE];
} cn = { .pid = -1, .fd = -1, .queue = TAILQ_HEAD_INITIALIZER(cn.queue) };

static void	connector_flush(void);
static void	connector_lost(const char *);
static void	connector_read_cb(evutil_socket_t, short, void *);
static void	connector_write_cb(evutil_socket_t, short, void *);
static void	job_next(struct connector_job *);

/* ------------------------------------------------------------------ */
/* the process                                                         */

/* The slot for pid in cn.pids (0: a free one), or NULL. */
static pid_t *
connector_slot(pid_t pid)
{
	size_t i;

	for (i = 0; i < CONNECTOR_PIDS_MAX; i++)
		if (cn.pids[i] == pid)
			return &cn.pids[i];
	return NULL;
}

/* Fork and exec a connector, and tell it who to be; never waits for it. */
static int
connector_start(void)
{
	struct connector_start st;
	pid_t *slot, pid;
	int sp[2];

	if ((slot = connector_slot(0)) == NULL) {
		log_warnx("connector: %d not yet reaped", CONNECTOR_PIDS_MAX);
		return -1;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) == -1) {
		log_warn("connector: socketpair");
		return -1;
	}
	if ((pid = fork()) == -1) {
		log_warn("connector: fork");
		close(sp[0]);
		close(sp[1]);
		return -1;
	}
	if (pid == 0)
		role_exec("/proc/self/exe", CONNECTOR_ARGV0, 0, &sp[1], 1, NULL);
	close(sp[1]);
	*slot = pid;
	memset(&st, 0, sizeof(st));
	st.uid = (uint32_t)cn.uid;
	st.gid = (uint32_t)cn.gid;
	st.verbose = (uint32_t)log_verbose();
	/* The first message on an empty channel: it does not block. */
	if (msg_put(sp[0], CONNECTOR_START, &st, sizeof(st), -1, 0) == -1 ||
	    fcntl(sp[0], F_SETFL, O_NONBLOCK) == -1 ||
	    (cn.rev = event_new(cn.base, sp[0], EV_READ | EV_PERSIST,
	    connector_read_cb, NULL)) == NULL ||
	    (cn.wev = event_new(cn.base, sp[0], EV_WRITE,
	    connector_write_cb, NULL)) == NULL ||
	    event_add(cn.rev, NULL) == -1) {
		log_warn("connector: start");
		if (cn.rev != NULL)
			event_free(cn.rev);
		if (cn.wev != NULL)
			event_free(cn.wev);
		cn.rev = cn.wev = NULL;
		close(sp[0]);
		kill(pid, SIGKILL);
		return -1;
	}
	cn.pid = pid;
	cn.fd = sp[0];
	log_debug("connector %d started as uid %u", (int)pid,
	    (unsigned int)cn.uid);
	connector_flush();
	return 0;
}

/* ------------------------------------------------------------------ */
/* jobs                                                                */

/* Out of the queue or the table, its timer stopped. */
static void
job_unlink(struct connector_job *job)
{
	if (job->state == JOB_QUEUED)
		TAILQ_REMOVE(&cn.queue, job, queue);
	else if (job->state == JOB_SENT)
		LIST_REMOVE(job, hash);
	job->state = JOB_IDLE;
	evtimer_del(job->timer);
}

static void
job_free(struct connector_job *job)
{
	job_unlink(job);
	event_free(job->timer);
	free(job);
}

/* The end of the job: one call of done(), then the job is gone. */
static void
job_finish(struct connector_job *job, int fd, int err)
{
	void (*done)(void *, int, size_t, int) = job->done;
	void *arg = job->arg;
	size_t idx = job->backend;

	job_free(job);
	done(arg, fd, idx, err);
}

/* Log the failed attempt, then make the next. */
static void
job_failed(struct connector_job *job, int err)
{
	const struct conf_backend *b = &job->l->backends[job->backend];
	char name[BACKEND_NAME_MAX];

	if (b->type == CONF_BACKEND_UNIX)
		backend_name(b, name, sizeof(name));
	else
		backend_addr_name((const struct sockaddr *)&b->addrs[job->addr],
		    name, sizeof(name));
	if (job->pid != 0) {
		log_info("child %d: backend %s: %s", (int)job->pid, name,
		    strerror(err));
		stats_backend_failed(job->l, job->backend);
	}
	job_unlink(job);
	job->err = err;
	job->addr++;
	job_next(job);
}

static void
job_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	job_failed(arg, ETIMEDOUT);
}

/* Queue the attempt at job->backend, job->addr; its timer starts now. */
static void
job_queue(struct connector_job *job)
{
	long long ms = (long long)job->timeout * 1000 + CHAN_CONNECT_SLACK_MS;
	struct timeval tv;

	if (++cn.nextid == 0)
		cn.nextid = 1;
	job->id = cn.nextid;
	deadline_in_ms(&job->deadline, ms);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(job->timer, &tv);
	job->state = JOB_QUEUED;
	TAILQ_INSERT_TAIL(&cn.queue, job, queue);
	connector_flush();
}

/* Whether backend i is one of the job's (its route's, or all). */
static int
job_uses(const struct connector_job *job, size_t i)
{
	return !job->routed || route_uses(job->l, job->route, job->alpn,
	    job->qualified, i);
}

/* The next address of this backend, or the first of the next backend. */
static void
job_next(struct connector_job *job)
{
	while (job->backend < job->last) {
		if (job_uses(job, job->backend) &&
		    job->addr < job->l->backends[job->backend].naddrs) {
			job_queue(job);
			return;
		}
		job->backend++;
		job->addr = 0;
	}
	job_finish(job, -1, job->err);
}

/* The answer to attempt id; fd is the connected socket or -1. */
static void
job_answer(uint32_t id, int err, int fd)
{
	struct connector_job *job;

	LIST_FOREACH(job, &cn.table[id % JOB_HASH_SIZE], hash)
		if (job->id == id)
			break;
	if (job == NULL) {
		/* Its child died, or its time ran out: not for anyone. */
		if (fd != -1)
			close(fd);
		return;
	}
	if (fd != -1) {
		job_finish(job, fd, 0);
		return;
	}
	job_failed(job, err);
}

/*
 * A job over backends first .. last - 1 of l, those of route and protocol
 * alpn alone if routed; NULL if none has an address.
 */
static struct connector_job *
job_new(const struct conf_listener *l, size_t first, size_t last,
    int routed, size_t route, size_t alpn, int timeout, pid_t pid,
    void (*done)(void *, int, size_t, int), void *arg)
{
	struct connector_job *job;
	size_t i, n = 0;

	if ((job = calloc(1, sizeof(*job))) == NULL)
		return NULL;
	job->l = l;
	job->routed = routed;
	job->route = route;
	job->alpn = alpn;
	job->qualified = routed && route_qualified(l, route, alpn);
	for (i = first; i < last; i++)
		if (job_uses(job, i))
			n += l->backends[i].naddrs;
	if (n == 0) {
		free(job);
		errno = ENOENT;
		return NULL;
	}
	if ((job->timer = evtimer_new(cn.base, job_timeout_cb, job)) == NULL) {
		free(job);
		errno = ENOMEM;
		return NULL;
	}
	job->l = l;
	job->backend = first;
	job->last = last;
	job->timeout = timeout;
	job->pid = pid;
	job->done = done;
	job->arg = arg;
	job->err = ENOENT;
	/* There is an address: done() is not called from here. */
	job_next(job);
	return job;
}

struct connector_job *
connector_ctl_connect(const struct conf_listener *l, size_t route,
    size_t alpn, int timeout, pid_t pid,
    void (*done)(void *, int, size_t, int), void *arg)
{
	return job_new(l, 0, l->nbackends, 1, route, alpn, timeout, pid, done,
	    arg);
}

struct connector_job *
connector_ctl_probe(const struct conf_listener *l, size_t backend,
    int timeout, void (*done)(void *, int, size_t, int), void *arg)
{
	if (backend >= l->nbackends) {
		errno = EINVAL;
		return NULL;
	}
	return job_new(l, backend, backend + 1, 0, 0, 0, timeout, 0, done,
	    arg);
}

void
connector_ctl_cancel(struct connector_job *job)
{
	if (job != NULL)
		job_free(job);
}

/* ------------------------------------------------------------------ */
/* the channel                                                         */

/* Milliseconds left until d for the connector: at least 1. */
static uint32_t
job_ms_left(const struct timespec *d)
{
	struct timespec now;
	long long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long long)(d->tv_sec - now.tv_sec) * 1000 +
	    (d->tv_nsec - now.tv_nsec) / 1000000 - CHAN_CONNECT_SLACK_MS;
	if (ms < 1)
		ms = 1;
	if (ms > CONNECTOR_TIMEOUT_MAX)
		ms = CONNECTOR_TIMEOUT_MAX;
	return (uint32_t)ms;
}

/* Send what is queued, as far as the channel takes it. */
static void
connector_flush(void)
{
	const struct conf_backend *b;
	struct connector_job *job;
	struct connector_req req;

	while (cn.fd != -1 && (job = TAILQ_FIRST(&cn.queue)) != NULL) {
		b = &job->l->backends[job->backend];
		memset(&req, 0, sizeof(req));
		req.id = job->id;
		req.timeout = job_ms_left(&job->deadline);
		req.addrlen = (uint32_t)b->addrlens[job->addr];
		memcpy(req.addr, &b->addrs[job->addr], req.addrlen);
		if (msg_put(cn.fd, CONNECTOR_CONNECT, &req, sizeof(req), -1,
		    0) == -1) {
			if (errno == EAGAIN || errno == ENOBUFS)
				event_add(cn.wev, NULL);
			else
				connector_lost("cannot be written to");
			return;
		}
		TAILQ_REMOVE(&cn.queue, job, queue);
		job->state = JOB_SENT;
		LIST_INSERT_HEAD(&cn.table[job->id % JOB_HASH_SIZE], job, hash);
	}
}

static void
connector_write_cb(evutil_socket_t fd, short what, void *arg)
{
	connector_flush();
}

/* One message from the connector: 0, or -1 if it is broken. */
static int
connector_dispatch(const struct msg_hdr *hdr, const char *body, int fd)
{
	struct connector_rep rep;

	switch (hdr->type) {
	case CONNECTOR_LOG:
		if (fd != -1 || log_relay("connector", body, hdr->len) == -1)
			goto bad;
		return 0;
	case CONNECTOR_DONE:
		if (!MSG_LEN_IS(hdr, sizeof(rep)))
			goto bad;
		memcpy(&rep, body, sizeof(rep));
		if ((rep.error == 0) != (fd != -1) || rep.error > 4095)
			goto bad;
		job_answer(rep.id, (int)rep.error, fd);
		return 0;
	}
bad:
	if (fd != -1)
		close(fd);
	return -1;
}

/* Read one message: 1, 0 when none is waiting, -1 at EOF or on error. */
static int
connector_read_one(int chanfd)
{
	char buf[LOG_MSG_MAX + 1];
	struct msg_hdr hdr;
	ssize_t n;
	int fd;

	n = msg_get(chanfd, buf, sizeof(buf), &hdr, &fd, MSG_DONTWAIT);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n == -1 && errno == EMFILE) {
		/* The parent's shortage, not the connector's fault: that
		 * answer is lost, and its attempt times out. */
		spawn_out_of_fds("a backend connection");
		return 1;
	}
	if (n <= 0)
		return -1;
	return connector_dispatch(&hdr, buf + sizeof(hdr), fd) == -1 ? -1 : 1;
}

static void
connector_read_cb(evutil_socket_t fd, short what, void *arg)
{
	int i, r = 0;

	for (i = 0; i < CONNECTOR_READ_MAX && cn.fd != -1; i++)
		if ((r = connector_read_one(cn.fd)) != 1)
			break;
	if (r == -1)
		connector_lost("is gone");
}

/*
 * Let the running connector go: read what it has sent (answers, its last
 * log lines), close its channel, kill it unless it was reaped already,
 * and put its attempts back in the queue.
 */
static void
connector_stop(void)
{
	struct connector_job *job;
	size_t i;
	int fd = cn.fd;

	if (fd == -1)
		return;
	/* Gone for connector_flush() (answers read below may queue new
	 * attempts) before the last reads. */
	cn.fd = -1;
	event_free(cn.rev);
	event_free(cn.wev);
	cn.rev = cn.wev = NULL;
	for (i = 0; i < CONNECTOR_READ_MAX; i++)
		if (connector_read_one(fd) != 1)
			break;
	close(fd);
	if (connector_slot(cn.pid) != NULL)
		kill(cn.pid, SIGKILL);
	cn.pid = -1;
	for (i = 0; i < JOB_HASH_SIZE; i++) {
		while ((job = LIST_FIRST(&cn.table[i])) != NULL) {
			LIST_REMOVE(job, hash);
			job->state = JOB_QUEUED;
			TAILQ_INSERT_TAIL(&cn.queue, job, queue);
		}
	}
}

static void
connector_lost(const char *why)
{
	struct timeval tv = { CONNECTOR_RESTART_GAP, 0 };
	pid_t pid = cn.pid;

	if (cn.fd == -1)
		return;
	connector_stop();
	log_warnx("connector %d %s; starting a new one in %d s", (int)pid,
	    why, CONNECTOR_RESTART_GAP);
	evtimer_add(cn.restart, &tv);
}

/* A start failed: try again after the gap. */
static void
connector_lost_start(void)
{
	struct timeval tv = { CONNECTOR_RESTART_GAP, 0 };

	log_warnx("connector: trying again in %d s", CONNECTOR_RESTART_GAP);
	evtimer_add(cn.restart, &tv);
}

static void
connector_restart_cb(evutil_socket_t fd, short what, void *arg)
{
	if (cn.fd != -1)
		return;
	if (connector_start() == -1) {
		connector_lost_start();
		return;
	}
	log_info("connector restarted (pid %d)", (int)cn.pid);
}

void
connector_ctl_init(struct event_base *base, uid_t uid, gid_t gid)
{
	size_t i;

	cn.base = base;
	cn.uid = uid;
	cn.gid = gid;
	for (i = 0; i < JOB_HASH_SIZE; i++)
		LIST_INIT(&cn.table[i]);
	if ((cn.restart = evtimer_new(base, connector_restart_cb, NULL)) ==
	    NULL)
		fatalx("connector: libevent");
	if (connector_start() == -1)
		fatalx("cannot start the connector");
}

void
connector_ctl_set_user(uid_t uid, gid_t gid)
{
	if (uid == cn.uid && gid == cn.gid)
		return;
	cn.uid = uid;
	cn.gid = gid;
	if (cn.fd == -1)
		return;		/* the restart timer starts one as uid */
	connector_stop();
	if (connector_start() == -1) {
		connector_lost_start();
		return;
	}
	log_info("user changed: connector restarted (pid %d)", (int)cn.pid);
}

int
connector_ctl_reaped(pid_t pid, int status)
{
	pid_t *slot;

	if (pid <= 0 || (slot = connector_slot(pid)) == NULL)
		return 0;
	*slot = 0;
	if (WIFSIGNALED(status))
		log_warnx("connector %d killed by signal %d%s", (int)pid,
		    WTERMSIG(status), WTERMSIG(status) == SIGSYS ?
		    ": forbidden system call" : "");
	else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
		log_warnx("connector %d exited with status %d", (int)pid,
		    WEXITSTATUS(status));
	if (pid == cn.pid)
		connector_lost("exited");
	return 1;
}

size_t
connector_ctl_reap(void)
{
	size_t i, n = 0;
	pid_t pid;
	int status;

	for (i = 0; i < CONNECTOR_PIDS_MAX; i++) {
		if ((pid = cn.pids[i]) != 0 &&
		    waitpid(pid, &status, WNOHANG) == pid) {
			connector_ctl_reaped(pid, status);
			n++;
		}
	}
	return n;
}
