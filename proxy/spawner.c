/*
 * The spawner: see spawner.h.
 *
 * Its channel to the parent is a SOCK_SEQPACKET pair.  A request is a
 * struct spawn_req with the child's keyproc channel end attached; the
 * reply is a struct spawn_rep with the parent's end of the new child's
 * channel attached (none on failure).  The parent waits for the reply:
 * the spawner does nothing else, and forking takes it well under a
 * millisecond.
 */
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/msg.h"
#include "proxy/child.h"
#include "lib/log.h"
#include "proxy/spawner.h"

#define SPAWNER_REPLY_TIMEOUT	5000	/* ms */
#define SPAWNERS_MAX		16	/* started, not yet reaped */
#define SPAWNER_NAME		"recluse-spawner"

/* Every spawner not yet reaped, current or stopped: waited for by pid. */
static pid_t	spawner_pids[SPAWNERS_MAX];

/* In a spawner: the parent's process name, which children take back. */
static char	spawner_parent_name[16];

/* Close every descriptor but those in keep (sorted ascending). */
static void
close_all_but(const int *keep, size_t n)
{
	unsigned int from = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if ((unsigned int)keep[i] > from)
			close_range(from, (unsigned int)keep[i] - 1, 0);
		from = (unsigned int)keep[i] + 1;
	}
	close_range(from, ~0U, 0);
}

static int
int_cmp(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return x < y ? -1 : x > y;
}

/*
 * Close every descriptor but stdin and stdout (/dev/null), stderr, the nfds
 * in fds and the sockets of listener li of g (of all listeners when li is
 * g->nlisteners).  Runs in a process just forked: exits on failure.
 */
static void
keep_only(const struct gen *g, size_t li, const int *fds, size_t nfds)
{
	size_t n = 0, i, j, first = li, last = li + 1, max = 3 + nfds;
	int *keep;

	if (li == g->nlisteners) {
		first = 0;
		last = g->nlisteners;
	}
	for (i = first; i < last; i++)
		max += g->listeners[i].socks.n;
	if ((keep = calloc(max, sizeof(*keep))) == NULL)
		_exit(1);
	keep[n++] = STDIN_FILENO;
	keep[n++] = STDOUT_FILENO;
	keep[n++] = STDERR_FILENO;
	for (i = 0; i < nfds; i++)
		keep[n++] = fds[i];
	for (i = first; i < last; i++)
		for (j = 0; j < g->listeners[i].socks.n; j++)
			keep[n++] = g->listeners[i].socks.fds[j];
	qsort(keep, n, sizeof(keep[0]), int_cmp);
	close_all_but(keep, n);
	free(keep);
}

/* In the new child: keep only its own descriptors, reset signals, run. */
static __dead void
child_start(const struct gen *g, size_t li, int kpfd, int chanfd)
{
	const struct gen_listener *gl = &g->listeners[li];
	struct child_args args;
	int fds[2] = { kpfd, chanfd };

	keep_only(g, li, fds, 2);
	(void)prctl(PR_SET_NAME, spawner_parent_name, 0, 0, 0);
	memset(&args, 0, sizeof(args));
	args.conf = g->conf;
	args.listener = gl->conf;
	args.tls = gl->tc.tls;
	args.kpfd = kpfd;
	args.parentfd = chanfd;
	args.listenfds = gl->socks.fds;
	args.nlistenfds = gl->socks.n;
	child_main(&args);
}

/*
 * Fork a child whose parent is our parent.  glibc's fork() cannot take
 * CLONE_PARENT, so this is the raw system call: no atfork handlers run
 * (recluse registers none; OpenSSL 3 and glibc's arc4random notice a new
 * process by its pid) and the child's cached thread id stays ours, which
 * only lock-owner checks read, consistently, in a process of one thread.
 */
static pid_t
clone_sibling(void)
{
	return (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, NULL, NULL,
	    0);
}

static void
spawner_reply(int fd, pid_t pid, int error, int chanfd)
{
	struct spawn_rep rep = { .pid = pid, .error = error };
	struct iovec iov = { .iov_base = &rep, .iov_len = sizeof(rep) };

	if (msg_send(fd, &iov, 1, chanfd) == -1)
		_exit(1);
}

/* One request: fork the child, or say why not. */
static void
spawner_serve(const struct gen *g, int fd, const struct spawn_req *req,
    int kpfd)
{
	int ch[2];
	pid_t pid;

	if (req->listener >= g->nlisteners || kpfd == -1) {
		spawner_reply(fd, -1, EINVAL, -1);
		return;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ch) == -1) {
		spawner_reply(fd, -1, errno, -1);
		return;
	}
	if ((pid = clone_sibling()) == 0)
		child_start(g, req->listener, kpfd, ch[1]);
	close(ch[1]);
	spawner_reply(fd, pid, pid == -1 ? errno : 0, pid == -1 ? -1 : ch[0]);
	close(ch[0]);
}

static __dead void
spawner_main(const struct gen *g, int fd)
{
	struct spawn_req req;
	sigset_t none;
	ssize_t n;
	int kpfd, nullfd;

	if ((nullfd = open("/dev/null", O_RDWR)) == -1 ||
	    dup2(nullfd, STDIN_FILENO) == -1 ||
	    dup2(nullfd, STDOUT_FILENO) == -1)
		_exit(1);
	keep_only(g, g->nlisteners, &fd, 1);
	/* "recluse-spawner" in ps(1) and top(1); children take the
	 * parent's name back (child_start()). */
	(void)prctl(PR_GET_NAME, spawner_parent_name, 0, 0, 0);
	(void)prctl(PR_SET_NAME, SPAWNER_NAME, 0, 0, 0);
	/* Out of the parent's process group (a Ctrl-C on the terminal is
	 * for the parent, which drains), and the children with it. */
	(void)setpgid(0, 0);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	log_init("spawner", log_verbose(), -1);
	for (;;) {
		n = msg_recv(fd, &req, sizeof(req), &kpfd, 0);
		if (n <= 0)
			_exit(n == 0 ? 0 : 1);	/* the parent is gone */
		if (n != sizeof(req)) {
			if (kpfd != -1)
				close(kpfd);
			spawner_reply(fd, -1, EBADMSG, -1);
			continue;
		}
		spawner_serve(g, fd, &req, kpfd);
		if (kpfd != -1)
			close(kpfd);
	}
}

/* The slot for pid in spawner_pids (0: a free one), or NULL. */
static pid_t *
spawner_slot(pid_t pid)
{
	size_t i;

	for (i = 0; i < SPAWNERS_MAX; i++)
		if (spawner_pids[i] == pid)
			return &spawner_pids[i];
	return NULL;
}

static int
spawner_start(struct gen *g)
{
	pid_t *slot, pid;
	int sp[2];

	/* Spawners exit as soon as they are stopped: a full table means
	 * they keep dying, which the pool's backoff slows down. */
	if ((slot = spawner_slot(0)) == NULL) {
		log_warnx("spawner: %d not yet reaped", SPAWNERS_MAX);
		return -1;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) == -1) {
		log_warn("spawner: socketpair");
		return -1;
	}
	if ((pid = fork()) == -1) {
		log_warn("spawner: fork");
		close(sp[0]);
		close(sp[1]);
		return -1;
	}
	if (pid == 0)
		spawner_main(g, sp[1]);
	close(sp[1]);
	*slot = pid;
	g->spawner_fd = sp[0];
	g->spawner_pid = pid;
	log_debug("spawner %d started for generation %u", (int)pid, g->id);
	return 0;
}

void
spawner_stop(struct gen *g)
{
	if (g->spawner_fd == -1)
		return;
	close(g->spawner_fd);
	g->spawner_fd = -1;
	g->spawner_pid = -1;
}

/* Wait for the reply; the spawner answers at once or is broken. */
static ssize_t
spawner_wait_reply(struct gen *g, struct spawn_rep *rep, int *chanfdp)
{
	struct pollfd pfd = { .fd = g->spawner_fd, .events = POLLIN };
	int n;

	while ((n = poll(&pfd, 1, SPAWNER_REPLY_TIMEOUT)) == -1 &&
	    errno == EINTR)
		;
	if (n <= 0) {
		errno = n == 0 ? ETIMEDOUT : errno;
		return -1;
	}
	return msg_recv(g->spawner_fd, rep, sizeof(*rep), chanfdp, 0);
}

pid_t
spawner_fork(struct gen *g, size_t li, int kpfd, int *chanfdp)
{
	struct spawn_req req = { .listener = (uint32_t)li };
	struct iovec iov = { .iov_base = &req, .iov_len = sizeof(req) };
	struct spawn_rep rep;
	ssize_t n;

	*chanfdp = -1;
	if (g->spawner_fd == -1 && spawner_start(g) == -1)
		return -1;
	if (msg_send(g->spawner_fd, &iov, 1, kpfd) == -1 ||
	    (n = spawner_wait_reply(g, &rep, chanfdp)) == -1) {
		log_warn("spawner %d", (int)g->spawner_pid);
		goto broken;
	}
	if (n == 0) {
		log_warnx("spawner %d is gone", (int)g->spawner_pid);
		goto broken;
	}
	if (n != sizeof(rep) || (rep.pid > 0) != (*chanfdp != -1)) {
		log_warnx("spawner %d: bad reply", (int)g->spawner_pid);
		goto broken;
	}
	if (rep.pid <= 0) {
		errno = rep.error;
		log_warn("spawner: fork");
		return -1;
	}
	return (pid_t)rep.pid;
broken:
	/* Started again for the next child; this one is reaped later. */
	if (*chanfdp != -1)
		close(*chanfdp);
	*chanfdp = -1;
	if (spawner_slot(g->spawner_pid) != NULL)	/* not reaped yet */
		kill(g->spawner_pid, SIGKILL);
	spawner_stop(g);
	return -1;
}

int
spawner_reaped(pid_t pid, int status)
{
	pid_t *slot;

	if (pid <= 0 || (slot = spawner_slot(pid)) == NULL)
		return 0;
	*slot = 0;
	if (WIFSIGNALED(status))
		log_warnx("spawner %d killed by signal %d", (int)pid,
		    WTERMSIG(status));
	return 1;
}

size_t
spawner_reap(void)
{
	size_t i, n = 0;
	int status;

	for (i = 0; i < SPAWNERS_MAX; i++)
		if (spawner_pids[i] != 0 &&
		    waitpid(spawner_pids[i], &status, WNOHANG) ==
		    spawner_pids[i]) {
			spawner_reaped(spawner_pids[i], status);
			n++;
		}
	return n;
}
