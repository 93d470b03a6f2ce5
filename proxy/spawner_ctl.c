/*
 * The parent's side of the spawners (spawner.h).
 *
 * A spawner is started with fork and exec of /proc/self/exe under the name
 * SPAWNER_ARGV0: its channel on SPAWNER_FD, its listener's sockets right
 * after, /dev/null on 0, 1 and 2, nothing else.  The parent then sends its
 * configuration (lib/wire.h) and goes on: the spawner's SPAWNER_READY is
 * read with the answer to the first SPAWNER_FORK, which the parent waits
 * for (SPAWNER_REPLY_TIMEOUT), relaying the log lines that come before it.
 * Between requests, a libevent read event relays log lines and notices a
 * spawner that died.
 *
 * Every spawner not yet reaped, running or stopped, is on one list; those
 * whose channel is closed are waited for by pid in spawner_reap().
 */
#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "lib/deadline.h"
#include "lib/log.h"
#include "lib/msg.h"
#include "lib/role.h"
#include "lib/wire.h"
#include "proxy/mtls.h"
#include "proxy/parent_check.h"
#include "proxy/pp_spawner.h"
#include "proxy/spawner.h"
#include "proxy/tickets.h"

#define SPAWNER_REPLY_TIMEOUT	5	/* s: exec and set-up included */

struct spawner {
	TAILQ_ENTRY(spawner)	 entry;
	pid_t			 pid;
	int			 fd;	/* -1: stopped, or seen gone */
	struct event		*ev;
	struct gen_listener	*gl;	/* whose it is, while running */
	unsigned int		 serial;
	char			 role[32];	/* "spawner PID", for log lines */
};

static TAILQ_HEAD(, spawner)	spawners = TAILQ_HEAD_INITIALIZER(spawners);
static struct event_base	*spawner_base;
static unsigned int		 spawner_serials;

static void	spawner_read_cb(evutil_socket_t, short, void *);

void
spawner_init(struct event_base *base)
{
	spawner_base = base;
}

/*
 * The spawner's environment: none of the parent's, but for the sanitizers'
 * options (make sanitize).
 */
static void
spawner_env(char **env, size_t max)
{
	static const char *keep[] = {
		"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"
	};
	size_t i, n = 0, len;
	char **e;

	for (e = environ; *e != NULL && n + 1 < max; e++)
		for (i = 0; i < NELEM(keep); i++) {
			len = strlen(keep[i]);
			if (strncmp(*e, keep[i], len) == 0 && (*e)[len] == '=')
				env[n++] = *e;
		}
	env[n] = NULL;
}

/*
 * In the new process: the channel on SPAWNER_FD, the sockets right after
 * it (lib/role.h), the environment trimmed by spawner_env(); then exec.
 */
static __dead void
spawner_exec(int chanfd, const struct listen_set *socks)
{
	int fds[1 + SPAWNER_SOCKS_MAX];
	char *env[4];
	size_t i;

	fds[0] = chanfd;
	for (i = 0; i < socks->n && i < SPAWNER_SOCKS_MAX; i++)
		fds[1 + i] = socks->fds[i];
	spawner_env(env, NELEM(env));
	role_exec("/proc/self/exe", SPAWNER_ARGV0, 1, fds, 1 + i,
	    env);
}

static size_t
str_len(const char *s)
{
	return s != NULL ? strlen(s) : 0;
}

static void
iov_str(struct iovec *iov, const char *s)
{
	iov->iov_base = (void *)s;
	iov->iov_len = str_len(s);
}

static int
send_global(int fd, const struct gen *g, const struct gen_listener *gl)
{
	const struct conf *c = g->conf;
	struct spawner_global m;
	struct iovec iov[2];

	memset(&m, 0, sizeof(m));
	m.uid = (uint32_t)c->uid;
	m.gid = (uint32_t)c->gid;
	m.timeout_handshake = (uint32_t)c->timeout_handshake;
	m.timeout_idle = (uint32_t)c->timeout_idle;
	m.timeout_connect = (uint32_t)c->timeout_connect;
	m.limit_memory = (uint32_t)c->limit_memory;
	m.limit_cpu = (uint32_t)c->limit_cpu;
	m.verbose = (uint32_t)log_verbose();
	/* Children connect nothing (the connector makes their backend
	 * connections): every listener's live without a network. */
	m.flags = SPAWNER_NETNS;
	m.nsocks = (uint32_t)gl->socks.n;
	(void)prctl(PR_GET_NAME, m.name, 0, 0, 0);
	m.name[sizeof(m.name) - 1] = '\0';
	m.chrootlen = (uint32_t)strlen(c->chroot);
	iov[0].iov_base = &m;
	iov[0].iov_len = sizeof(m);
	iov_str(&iov[1], c->chroot);
	return msg_putv(fd, SPAWNER_GLOBAL, iov, 2, -1, 0);
}

static int
send_listener(int fd, size_t li, const struct gen_listener *gl)
{
	const struct conf_listener *l = gl->conf;
	struct spawner_listener m;
	struct iovec iov[6];

	memset(&m, 0, sizeof(m));
	m.index = (uint32_t)li;
	m.nbackends = (uint32_t)l->nbackends;
	m.namelen = (uint32_t)str_len(l->name);
	m.certlen = (uint32_t)str_len(l->certs[0].certificate);
	m.protocolslen = (uint32_t)str_len(l->protocols);
	m.cipherslen = (uint32_t)str_len(l->ciphers);
	m.reflen = (uint32_t)gl->tc.certs[0].reflen;
	m.ncerts = (uint32_t)gl->tc.ncerts;
	m.flags = l->strict_sni ? SPAWNER_STRICT_SNI : 0;
	iov[0].iov_base = &m;
	iov[0].iov_len = sizeof(m);
	iov_str(&iov[1], l->name);
	iov_str(&iov[2], l->certs[0].certificate);
	iov_str(&iov[3], l->protocols);
	iov_str(&iov[4], l->ciphers);
	iov[5].iov_base = gl->tc.certs[0].ref;
	iov[5].iov_len = gl->tc.certs[0].reflen;
	return msg_putv(fd, SPAWNER_LISTENER, iov, 6, gl->tc.certs[0].chainfd,
	    0);
}

/* The listener's other certificates, in order: SNI picks among them. */
static int
send_certs(int fd, const struct gen_listener *gl)
{
	const struct conf_listener *l = gl->conf;
	struct spawner_cert m;
	struct iovec iov[3];
	size_t i;

	for (i = 1; i < gl->tc.ncerts; i++) {
		memset(&m, 0, sizeof(m));
		m.certlen = (uint32_t)str_len(l->certs[i].certificate);
		m.reflen = (uint32_t)gl->tc.certs[i].reflen;
		iov[0].iov_base = &m;
		iov[0].iov_len = sizeof(m);
		iov_str(&iov[1], l->certs[i].certificate);
		iov[2].iov_base = gl->tc.certs[i].ref;
		iov[2].iov_len = gl->tc.certs[i].reflen;
		if (msg_putv(fd, SPAWNER_CERT, iov, 3,
		    gl->tc.certs[i].chainfd, 0) == -1)
			return -1;
	}
	return 0;
}

/* Each certificate's OCSP staple that the parent found good (ocsp.h). */
static int
send_ocsp(int fd, const struct gen_listener *gl)
{
	struct spawner_ocsp m;
	struct iovec iov[2];
	size_t i;

	for (i = 0; i < gl->tc.ncerts; i++) {
		if (gl->tc.certs[i].staple == NULL)
			continue;
		memset(&m, 0, sizeof(m));
		m.cert = (uint32_t)i;
		m.len = (uint32_t)gl->tc.certs[i].staplelen;
		iov[0].iov_base = &m;
		iov[0].iov_len = sizeof(m);
		iov[1].iov_base = gl->tc.certs[i].staple;
		iov[1].iov_len = gl->tc.certs[i].staplelen;
		if (msg_putv(fd, SPAWNER_OCSP, iov, 2, -1, 0) == -1)
			return -1;
	}
	return 0;
}

static int
send_backend(int fd, const struct conf_backend *b)
{
	struct spawner_backend m;
	struct spawner_addr a;
	struct iovec iov[3];
	size_t i;

	memset(&m, 0, sizeof(m));
	m.type = (uint32_t)b->type;
	m.port = b->port;
	m.hostlen = (uint32_t)str_len(b->host);
	m.pathlen = (uint32_t)str_len(b->path);
	m.naddrs = (uint32_t)b->naddrs;
	m.route = (uint32_t)b->route;
	m.alpn = (uint32_t)b->alpnidx;
	iov[0].iov_base = &m;
	iov[0].iov_len = sizeof(m);
	iov_str(&iov[1], b->host);
	iov_str(&iov[2], b->path);
	if (msg_putv(fd, SPAWNER_BACKEND, iov, 3, -1, 0) == -1)
		return -1;
	for (i = 0; i < b->naddrs; i++) {
		a.addrlen = (uint32_t)b->addrlens[i];
		iov[0].iov_base = &a;
		iov[0].iov_len = sizeof(a);
		iov[1].iov_base = (void *)&b->addrs[i];
		iov[1].iov_len = b->addrlens[i];
		if (msg_putv(fd, SPAWNER_ADDR, iov, 2, -1, 0) == -1)
			return -1;
	}
	return 0;
}

/* One SPAWNER_ALPN or SPAWNER_ROUTE_ALPN. */
static int
send_alpn(int fd, uint32_t type, const char *s)
{
	struct spawner_str m;
	struct iovec iov[2];

	m.len = (uint32_t)strlen(s);
	iov[0].iov_base = &m;
	iov[0].iov_len = sizeof(m);
	iov_str(&iov[1], s);
	return msg_putv(fd, type, iov, 2, -1, 0);
}

/* One SPAWNER_ROUTE: a server-name block's name and PROXY version. */
static int
send_route(int fd, const struct conf_route *r)
{
	struct spawner_route m;
	struct iovec iov[2];
	size_t i;

	m.len = (uint32_t)strlen(r->name);
	m.proxy_protocol = (uint32_t)r->proxy_protocol;
	iov[0].iov_base = &m;
	iov[0].iov_len = sizeof(m);
	iov_str(&iov[1], r->name);
	if (msg_putv(fd, SPAWNER_ROUTE, iov, 2, -1, 0) == -1)
		return -1;
	for (i = 0; i < r->nalpn; i++)
		if (send_alpn(fd, SPAWNER_ROUTE_ALPN, r->alpn[i]) == -1)
			return -1;
	return 0;
}

/* Everything the children of listener li of g need; then START. */
static int
spawner_send_conf(int fd, const struct gen *g, size_t li)
{
	const struct gen_listener *gl = &g->listeners[li];
	size_t i;

	if (send_global(fd, g, gl) == -1 || send_listener(fd, li, gl) == -1 ||
	    pp_spawner_send(fd, gl->conf) == -1 ||
	    mtls_send(fd, gl->conf) == -1 || send_certs(fd, gl) == -1 ||
	    send_ocsp(fd, gl) == -1)
		return -1;
	for (i = 0; i < gl->conf->nalpn; i++)
		if (send_alpn(fd, SPAWNER_ALPN, gl->conf->alpn[i]) == -1)
			return -1;
	for (i = 0; i < gl->conf->nroutes; i++)
		if (send_route(fd, &gl->conf->routes[i]) == -1)
			return -1;
	for (i = 0; i < gl->conf->nbackends; i++)
		if (send_backend(fd, &gl->conf->backends[i]) == -1)
			return -1;
	if (tickets_send(fd, gl) == -1)
		return -1;
	return msg_put(fd, SPAWNER_START, NULL, 0, -1, 0);
}

/* Strings longer than the spawner reads would be a bug of ours: check. */
static int
spawner_conf_fits(const struct gen_listener *gl)
{
	const struct conf_listener *l = gl->conf;
	size_t i;

	if (gl->tc.ncerts == 0 || gl->tc.ncerts > SPAWNER_CERTS_MAX)
		return 0;
	for (i = 0; i < gl->tc.ncerts; i++)
		if (str_len(l->certs[i].certificate) > SPAWNER_STR_MAX ||
		    gl->tc.certs[i].reflen > SPAWNER_REF_MAX ||
		    gl->tc.certs[i].staplelen > SPAWNER_OCSP_MAX)
			return 0;
	return gl->socks.n > 0 && gl->socks.n <= SPAWNER_SOCKS_MAX &&
	    str_len(l->name) <= SPAWNER_STR_MAX &&
	    str_len(l->protocols) <= SPAWNER_STR_MAX &&
	    str_len(l->ciphers) <= SPAWNER_STR_MAX &&
	    l->nbackends <= SPAWNER_BACKENDS_MAX &&
	    l->nalpn <= SPAWNER_ALPN_MAX && l->nroutes <= SPAWNER_ROUTES_MAX;
}

int
spawner_start(struct gen *g, size_t li)
{
	struct gen_listener *gl = &g->listeners[li];
	struct spawner *s;
	int sp[2], e;

	if (gl->spawner != NULL)
		return 0;
	if (!spawner_conf_fits(gl)) {
		log_warnx("listener %s: too large for a spawner", gl->conf->name);
		return -1;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		log_warn("spawner");
		return -1;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) == -1) {
		/* Out of descriptors is the caller's to say (spawn.c). */
		e = errno;
		if (e != EMFILE && e != ENFILE)
			log_warn("spawner: socketpair");
		free(s);
		errno = e;
		return -1;
	}
	if ((s->pid = fork()) == -1) {
		log_warn("spawner: fork");
		close(sp[0]);
		close(sp[1]);
		free(s);
		return -1;
	}
	if (s->pid == 0)
		spawner_exec(sp[1], &gl->socks);
	close(sp[1]);
	s->fd = sp[0];
	s->gl = gl;
	s->serial = ++spawner_serials;
	snprintf(s->role, sizeof(s->role), "spawner %d", (int)s->pid);
	TAILQ_INSERT_TAIL(&spawners, s, entry);
	gl->spawner = s;
	if (spawner_send_conf(s->fd, g, li) == -1 ||
	    (s->ev = event_new(spawner_base, s->fd, EV_READ | EV_PERSIST,
	    spawner_read_cb, s)) == NULL || event_add(s->ev, NULL) == -1) {
		log_warn("spawner %d of listener %s: set-up", (int)s->pid,
		    gl->conf->name);
		kill(s->pid, SIGKILL);
		spawner_stop(g, li);
		return -1;
	}
	log_debug("spawner %d started for listener %s of configuration %u",
	    (int)s->pid, gl->conf->name, g->id);
	return 0;
}

void
spawner_send_tickets(struct gen *g, size_t li)
{
	struct gen_listener *gl = &g->listeners[li];
	struct spawner *s = gl->spawner;

	if (s == NULL || s->fd == -1)
		return;
	if (tickets_send(s->fd, gl) == -1)
		log_warn("spawner %d of listener %s: ticket keys", (int)s->pid,
		    gl->conf->name);
}

/* Close s's channel: it exits, and is waited for by spawner_reap(). */
static void
spawner_close(struct spawner *s)
{
	if (s->fd == -1)
		return;
	if (s->ev != NULL)
		event_free(s->ev);
	s->ev = NULL;
	close(s->fd);
	s->fd = -1;
	if (s->gl != NULL && s->gl->spawner == s)
		s->gl->spawner = NULL;
	s->gl = NULL;
}

void
spawner_stop(struct gen *g, size_t li)
{
	if (g->listeners[li].spawner != NULL)
		spawner_close(g->listeners[li].spawner);
}

void
spawner_stop_all(struct gen *g)
{
	size_t i;

	for (i = 0; i < g->nlisteners; i++)
		spawner_stop(g, i);
}

unsigned int
spawner_serial(const struct gen *g, size_t li)
{
	const struct spawner *s = g->listeners[li].spawner;

	return s != NULL ? s->serial : 0;
}

/* spawner_recv1(): a message was lost for lack of descriptors here. */
#define SPAWNER_LOST	(-2)

/*
 * One message from s, relaying log lines: return its type (with the body
 * in rep and a descriptor in *fdp for SPAWNER_FORKED), 0 when nothing is
 * waiting (MSG_DONTWAIT), SPAWNER_LOST when the parent had no room for the
 * descriptor that came with it (EMFILE: our shortage, not the spawner's
 * fault), or -1 when s is gone or broke the protocol.
 */
static int
spawner_recv1(struct spawner *s, struct spawner_forked *rep, int *fdp,
    int flags)
{
	char buf[LOG_MSG_MAX + 1];
	const char *body = buf + sizeof(struct msg_hdr);
	struct msg_hdr hdr;
	ssize_t n;
	int fd = -1;

	n = msg_get(s->fd, buf, sizeof(buf), &hdr, &fd, flags);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n == -1 && errno == EMFILE)
		return SPAWNER_LOST;
	if (n <= 0)
		goto bad;
	switch (parent_check_spawner(&hdr, body, fd, fdp != NULL, rep)) {
	case SPAWNER_LOG:
		(void)log_relay(s->role, body, hdr.len);
		return SPAWNER_LOG;
	case SPAWNER_READY:
		return SPAWNER_READY;
	case SPAWNER_FORKED:
		*fdp = fd;
		return SPAWNER_FORKED;
	}
bad:
	if (fd != -1)
		close(fd);
	if (n == 0)
		errno = 0;
	return -1;
}

/* s's channel closed, or it broke the protocol: it goes. */
static void
spawner_gone(struct spawner *s)
{
	int status;

	if (s->gl != NULL)
		log_warnx("spawner %d of listener %s is gone", (int)s->pid,
		    s->gl->conf->name);
	kill(s->pid, SIGKILL);
	spawner_close(s);
	/* Its SIGCHLD may have come before the EOF: try once now. */
	if (waitpid(s->pid, &status, WNOHANG) == s->pid)
		spawner_reaped(s->pid, status);
}

static void
spawner_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct spawner *s = arg;
	int i;

	for (i = 0; i < 64 && s->fd != -1; i++) {
		switch (spawner_recv1(s, NULL, NULL, MSG_DONTWAIT)) {
		case 0:
		case SPAWNER_LOST:	/* nothing was asked: nothing lost */
			return;
		case -1:
			spawner_gone(s);
			return;
		}
	}
}

/* Wait for the answer to a SPAWNER_FORK, relaying what comes before. */
static int
spawner_wait_forked(struct spawner *s, struct spawner_forked *rep,
    int *chanfdp)
{
	struct timespec deadline;
	struct pollfd pfd;
	int n, ms;

	deadline_in(&deadline, SPAWNER_REPLY_TIMEOUT);
	for (;;) {
		switch (spawner_recv1(s, rep, chanfdp, MSG_DONTWAIT)) {
		case SPAWNER_FORKED:
			return 0;
		case SPAWNER_LOST:
			errno = EMFILE;
			return -1;
		case -1:
			return -1;
		case 0:
			break;
		default:	/* a log line, SPAWNER_READY */
			continue;
		}
		pfd.fd = s->fd;
		pfd.events = POLLIN;
		if ((ms = deadline_ms_left(&deadline)) == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		if ((n = poll(&pfd, 1, ms)) == -1 && errno != EINTR)
			return -1;
	}
}

pid_t
spawner_fork(struct gen *g, size_t li, int kpfd, int *chanfdp)
{
	struct spawner_forked rep;
	struct spawner *s;

	*chanfdp = -1;
	if (spawner_start(g, li) == -1)
		return -1;
	s = g->listeners[li].spawner;
	if (msg_put(s->fd, SPAWNER_FORK, NULL, 0, kpfd, 0) == -1 ||
	    spawner_wait_forked(s, &rep, chanfdp) == -1) {
		/* The parent is out of descriptors: the spawner did its job,
		 * and stays.  The child it forked lost its channel with the
		 * descriptor, so it exits (it is reaped as an unknown pid). */
		if (errno == EMFILE || errno == ENFILE)
			return -1;
		if (errno != 0)
			log_warn("spawner %d of listener %s", (int)s->pid,
			    g->listeners[li].conf->name);
		spawner_gone(s);
		return -1;
	}
	if (rep.pid <= 0) {
		errno = rep.error;
		log_warn("spawner %d: fork", (int)s->pid);
		errno = 0;	/* the spawner's trouble, not the parent's */
		return -1;
	}
	return (pid_t)rep.pid;
}

int
spawner_reaped(pid_t pid, int status)
{
	struct spawner *s;

	TAILQ_FOREACH(s, &spawners, entry)
		if (s->pid == pid)
			break;
	if (s == NULL || pid <= 0)
		return 0;
	if (s->fd != -1) {
		log_warnx("spawner %d of listener %s is gone", (int)s->pid,
		    s->gl->conf->name);
		spawner_close(s);
	}
	if (WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL)
		log_warnx("spawner %d killed by signal %d (%s)", (int)pid,
		    WTERMSIG(status), strsignal(WTERMSIG(status)));
	else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
		log_warnx("spawner %d exited with status %d", (int)pid,
		    WEXITSTATUS(status));
	TAILQ_REMOVE(&spawners, s, entry);
	free(s);
	return 1;
}

size_t
spawner_reap(void)
{
	struct spawner *s, *next;
	size_t n = 0;
	int status;

	/* Only those whose channel is closed: a running one is not done. */
	for (s = TAILQ_FIRST(&spawners); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		if (s->fd == -1 && waitpid(s->pid, &status, WNOHANG) == s->pid) {
			spawner_reaped(s->pid, status);
			n++;
		}
	}
	return n;
}
