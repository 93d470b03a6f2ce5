/*
 * The parent's side of the metrics process: see metrics.h.
 *
 * Pull, not push: the metrics process asks for a page when a scrape
 * comes (METRICS_GET {id, what}), and the parent writes the page
 * (stats_page()) into a new memfd and hands it over (METRICS_PAGE).  So
 * an idle endpoint costs the parent nothing, a page is never stale, and
 * its size is not bounded by a datagram.  The parent never blocks on the
 * channel (non-blocking; a page that does not fit is dropped, and the
 * scrape gets a 503), never reads more than fixed structs from it, and
 * makes at most a few pages a second whatever the metrics process asks.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "config/conf.h"
#include "config/parse.h"
#include "lib/log.h"
#include "lib/msg.h"
#include "lib/role.h"
#include "lib/wire.h"
#include "proxy/metrics.h"
#include "proxy/stats.h"

#define METRICS_RESTART_GAP	1	/* seconds between starts */
#define METRICS_READ_MAX	16	/* messages read per wake-up */
#define METRICS_PIDS_MAX	4	/* started, not yet reaped */
#define METRICS_BACKLOG		16

static struct {
	struct event_base	*base;
	uid_t			 uid;
	gid_t			 gid;
	char			*chroot;
	int			 memory;	/* MiB */
	int			 lfd;	/* the listening socket, or -1 */
	pid_t			 pid;	/* the running one, or -1 */
	int			 fd;	/* its channel, or -1 */
	struct event		*ev;
	struct event		*restart;
	pid_t			 pids[METRICS_PIDS_MAX];	/* to reap */
} mt = { .lfd = -1, .pid = -1, .fd = -1 };

static void	metrics_lost(const char *);

static pid_t *
metrics_slot(pid_t pid)
{
	size_t i;

	for (i = 0; i < METRICS_PIDS_MAX; i++)
		if (mt.pids[i] == pid)
			return &mt.pids[i];
	return NULL;
}

/* One METRICS_GET: the page, or an empty answer (the scrape gets 503). */
static void
metrics_get(const struct metrics_get *get)
{
	struct metrics_page pg = { .id = get->id, .len = 0 };
	size_t len;
	int fd = -1;

	if ((get->what == METRICS_WHAT_METRICS ||
	    get->what == METRICS_WHAT_STATUS) &&
	    stats_page((int)get->what, &fd, &len) == 0)
		pg.len = (uint32_t)len;
	if (msg_put(mt.fd, METRICS_PAGE, &pg, sizeof(pg), fd,
	    MSG_DONTWAIT) == -1 && errno != EAGAIN && errno != ENOBUFS)
		log_warn("metrics: send");
	if (fd != -1)
		close(fd);
}

/* One message from the metrics process: 0, or -1 if it is broken. */
static int
metrics_dispatch(const struct msg_hdr *hdr, const char *body)
{
	struct metrics_get get;

	switch (hdr->type) {
	case METRICS_LOG:
		return log_relay("metrics", body, hdr->len);
	case METRICS_GET:
		if (!MSG_LEN_IS(hdr, sizeof(get)))
			return -1;
		memcpy(&get, body, sizeof(get));
		metrics_get(&get);
		return 0;
	}
	return -1;
}

static void
metrics_read_cb(evutil_socket_t fd, short what, void *arg)
{
	char buf[LOG_MSG_MAX + 1];
	struct msg_hdr hdr;
	ssize_t n;
	int i;

	for (i = 0; i < METRICS_READ_MAX && mt.fd != -1; i++) {
		/* No descriptor is wanted: any that comes is EBADMSG. */
		n = msg_get(mt.fd, buf, sizeof(buf), &hdr, NULL,
		    MSG_DONTWAIT);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			metrics_lost("is gone");
			return;
		}
		if (metrics_dispatch(&hdr, buf + sizeof(hdr)) == -1) {
			log_warnx("metrics: bad message (type %u, %u bytes)",
			    hdr.type, hdr.len);
			metrics_lost("sent a bad message");
			return;
		}
	}
}

/* Fork and exec the metrics process, and tell it who to be. */
static int
metrics_start(void)
{
	struct metrics_start st;
	struct iovec iov[2];
	pid_t *slot, pid;
	int sp[2], fds[2];

	if ((slot = metrics_slot(0)) == NULL) {
		log_warnx("metrics: %d not yet reaped", METRICS_PIDS_MAX);
		return -1;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) == -1) {
		log_warn("metrics: socketpair");
		return -1;
	}
	if ((pid = fork()) == -1) {
		log_warn("metrics: fork");
		close(sp[0]);
		close(sp[1]);
		return -1;
	}
	if (pid == 0) {
		fds[0] = sp[1];
		fds[1] = mt.lfd;
		role_exec("/proc/self/exe", METRICS_ARGV0, 0, fds, 2,
		    NULL);
	}
	close(sp[1]);
	*slot = pid;
	memset(&st, 0, sizeof(st));
	st.uid = (uint32_t)mt.uid;
	st.gid = (uint32_t)mt.gid;
	st.verbose = (uint32_t)log_verbose();
	st.limit_memory = (uint32_t)mt.memory;
	st.pathlen = (uint32_t)strlen(mt.chroot);
	iov[0].iov_base = &st;
	iov[0].iov_len = sizeof(st);
	iov[1].iov_base = mt.chroot;
	iov[1].iov_len = st.pathlen;
	/* The first message on an empty channel: it does not block. */
	if (msg_putv(sp[0], METRICS_START, iov, 2, -1, 0) == -1 ||
	    fcntl(sp[0], F_SETFL, O_NONBLOCK) == -1 ||
	    (mt.ev = event_new(mt.base, sp[0], EV_READ | EV_PERSIST,
	    metrics_read_cb, NULL)) == NULL || event_add(mt.ev, NULL) == -1) {
		log_warn("metrics: start");
		if (mt.ev != NULL)
			event_free(mt.ev);
		mt.ev = NULL;
		close(sp[0]);
		kill(pid, SIGKILL);
		return -1;
	}
	mt.pid = pid;
	mt.fd = sp[0];
	log_debug("metrics %d started as uid %u", (int)pid,
	    (unsigned int)mt.uid);
	return 0;
}

static void
metrics_lost(const char *why)
{
	struct timeval tv = { METRICS_RESTART_GAP, 0 };
	pid_t pid = mt.pid;

	if (mt.fd == -1)
		return;
	event_free(mt.ev);
	mt.ev = NULL;
	close(mt.fd);
	mt.fd = -1;
	if (metrics_slot(pid) != NULL)
		kill(pid, SIGKILL);
	mt.pid = -1;
	log_warnx("metrics %d %s; starting a new one in %d s", (int)pid, why,
	    METRICS_RESTART_GAP);
	evtimer_add(mt.restart, &tv);
}

static void
metrics_restart_cb(evutil_socket_t fd, short what, void *arg)
{
	struct timeval tv = { METRICS_RESTART_GAP, 0 };

	if (mt.fd != -1)
		return;
	if (metrics_start() == -1) {
		evtimer_add(mt.restart, &tv);
		return;
	}
	log_info("metrics restarted (pid %d)", (int)mt.pid);
}

/* Bind the endpoint: its first address, or its UNIX path (mode 0600). */
static int
metrics_bind(const struct conf_backend *b, char *err, size_t errlen)
{
	const struct sockaddr *sa = (const struct sockaddr *)&b->addrs[0];
	struct stat sb;
	mode_t mask;
	int fd, one = 1, rc;

	if ((fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1)
		goto err;
	if (sa->sa_family == AF_UNIX) {
		/* A socket left by an earlier run is ours to replace. */
		if (lstat(b->path, &sb) == 0 && S_ISSOCK(sb.st_mode))
			(void)unlink(b->path);
		mask = umask(0177);
		rc = bind(fd, sa, b->addrlens[0]);
		umask(mask);
	} else {
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
		    sizeof(one));
		rc = bind(fd, sa, b->addrlens[0]);
	}
	if (rc == -1 || listen(fd, METRICS_BACKLOG) == -1)
		goto err;
	return fd;
err:
	conf_seterr(err, errlen, &b->where, "metrics: %s", strerror(errno));
	if (fd != -1)
		close(fd);
	return -1;
}

int
metrics_ctl_init(struct event_base *base, const struct conf *conf,
    char *err, size_t errlen)
{
	if (conf->metrics == NULL)
		return 0;
	mt.base = base;
	mt.uid = conf->uid;
	mt.gid = conf->gid;
	mt.memory = conf->limit_memory;
	if ((mt.chroot = strdup(conf->chroot)) == NULL ||
	    (mt.restart = evtimer_new(base, metrics_restart_cb, NULL)) == NULL) {
		snprintf(err, errlen, "metrics: %s", strerror(ENOMEM));
		return -1;
	}
	if ((mt.lfd = metrics_bind(conf->metrics, err, errlen)) == -1)
		return -1;
	if (metrics_start() == -1) {
		snprintf(err, errlen, "cannot start the metrics process");
		return -1;
	}
	return 0;
}

int
metrics_ctl_reaped(pid_t pid, int status)
{
	pid_t *slot;

	if (pid <= 0 || (slot = metrics_slot(pid)) == NULL)
		return 0;
	*slot = 0;
	if (WIFSIGNALED(status))
		log_warnx("metrics %d killed by signal %d%s", (int)pid,
		    WTERMSIG(status), WTERMSIG(status) == SIGSYS ?
		    ": forbidden system call" : "");
	else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
		log_warnx("metrics %d exited with status %d", (int)pid,
		    WEXITSTATUS(status));
	if (pid == mt.pid)
		metrics_lost("exited");
	return 1;
}

size_t
metrics_ctl_reap(void)
{
	size_t i, n = 0;
	pid_t pid;
	int status;

	for (i = 0; i < METRICS_PIDS_MAX; i++) {
		if ((pid = mt.pids[i]) != 0 &&
		    waitpid(pid, &status, WNOHANG) == pid) {
			metrics_ctl_reaped(pid, status);
			n++;
		}
	}
	return n;
}
