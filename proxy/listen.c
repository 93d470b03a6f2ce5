/*
 * Listening sockets: see listen.h.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/listen.h"
#include "lib/log.h"

#define LISTEN_BACKLOG		4096
#define SD_LISTEN_FDS_START	3
#define INHERIT_MAX		64

/*
 * Sockets from systemd.  Listeners get duplicates and the originals stay
 * open here, so that every later configuration can take them again: under
 * systemd the port cannot be bound anew, since systemd keeps its own copy.
 */
static struct inherited {
	int			 fd;	/* -1: closed (unusable or unused) */
	int			 used;	/* some listener took it */
	char			 name[64];
	struct sockaddr_storage	 addr;
	socklen_t		 addrlen;
} inherited[INHERIT_MAX];
static size_t	ninherited;

static int
sockaddr_equal(const struct sockaddr_storage *a, socklen_t alen,
    const struct sockaddr_storage *b, socklen_t blen)
{
	return alen == blen && memcmp(a, b, alen) == 0;
}

static int
set_flags(int fd)
{
	int fl;

	if ((fl = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) == -1)
		return -1;
	return 0;
}

static void
inherit_names(char *names)
{
	char *name;
	size_t i = 0;

	while (names != NULL && i < ninherited &&
	    (name = strsep(&names, ":")) != NULL)
		snprintf(inherited[i++].name, sizeof(inherited[0].name), "%s",
		    name);
}

size_t
listen_inherit(void)
{
	const char *pid, *fds, *errstr = NULL;
	char *names;
	long long n, i;
	struct inherited *in;

	pid = getenv("LISTEN_PID");
	fds = getenv("LISTEN_FDS");
	if (pid == NULL || fds == NULL || atoll(pid) != (long long)getpid())
		return 0;
	n = strtoll(fds, NULL, 10);
	if (n < 0 || n > INHERIT_MAX)
		errstr = "too many";
	for (i = 0; errstr == NULL && i < n; i++) {
		in = &inherited[ninherited];
		in->fd = SD_LISTEN_FDS_START + (int)i;
		in->addrlen = sizeof(in->addr);
		if (getsockname(in->fd, (struct sockaddr *)&in->addr,
		    &in->addrlen) == -1 || set_flags(in->fd) == -1) {
			log_warn("socket activation: fd %d", in->fd);
			continue;
		}
		ninherited++;
	}
	if (errstr != NULL)
		log_warnx("socket activation: LISTEN_FDS=%s: %s", fds, errstr);
	names = getenv("LISTEN_FDNAMES") ? strdup(getenv("LISTEN_FDNAMES")) : NULL;
	inherit_names(names);
	free(names);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return ninherited;
}

void
listen_unused_close(void)
{
	size_t i;

	for (i = 0; i < ninherited; i++) {
		if (inherited[i].fd == -1 || inherited[i].used)
			continue;
		log_warnx("socket activation: fd %d (%s) matches no listener",
		    inherited[i].fd, inherited[i].name);
		close(inherited[i].fd);
		inherited[i].fd = -1;
	}
}

static int
set_add(struct listen_set *set, int fd, const struct sockaddr_storage *ss,
    socklen_t len)
{
	size_t n = set->n + 1;
	int *fds;
	struct sockaddr_storage *addrs;
	socklen_t *lens;

	if ((fds = reallocarray(set->fds, n, sizeof(*fds))) != NULL)
		set->fds = fds;
	if ((addrs = reallocarray(set->addrs, n, sizeof(*addrs))) != NULL)
		set->addrs = addrs;
	if ((lens = reallocarray(set->addrlens, n, sizeof(*lens))) != NULL)
		set->addrlens = lens;
	if (fds == NULL || addrs == NULL || lens == NULL)
		return -1;
	set->fds[set->n] = fd;
	set->addrs[set->n] = *ss;
	set->addrlens[set->n] = len;
	set->n = n;
	return 0;
}

/* A duplicate of a socket already listening on ss, or -1. */
static int
reuse_socket(const struct sockaddr_storage *ss, socklen_t len,
    const struct listen_set *prev, size_t nprev)
{
	size_t i, j;

	for (i = 0; i < nprev; i++)
		for (j = 0; j < prev[i].n; j++)
			if (sockaddr_equal(&prev[i].addrs[j],
			    prev[i].addrlens[j], ss, len))
				return fcntl(prev[i].fds[j], F_DUPFD_CLOEXEC, 0);
	for (i = 0; i < ninherited; i++) {
		if (inherited[i].fd != -1 && sockaddr_equal(&inherited[i].addr,
		    inherited[i].addrlen, ss, len)) {
			inherited[i].used = 1;
			return fcntl(inherited[i].fd, F_DUPFD_CLOEXEC, 0);
		}
	}
	return -1;
}

static int
bind_socket(const struct sockaddr_storage *ss, socklen_t len)
{
	int fd, one = 1, saved;

	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1)
		goto err;
	/* [::]:443 and 0.0.0.0:443 are two listen lines, not one. */
	if (ss->ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &one, sizeof(one)) == -1)
		goto err;
	if (bind(fd, (const struct sockaddr *)ss, len) == -1 ||
	    listen(fd, LISTEN_BACKLOG) == -1)
		goto err;
	return fd;
err:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

static int
set_has(const struct listen_set *set, const struct sockaddr_storage *ss,
    socklen_t len)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		if (sockaddr_equal(&set->addrs[i], set->addrlens[i], ss, len))
			return 1;
	return 0;
}

/* Sockets systemd passed under the listener's name (FileDescriptorName). */
static int
take_named(const struct conf_listener *l, struct listen_set *set)
{
	size_t i;
	int fd;

	for (i = 0; i < ninherited; i++) {
		if (inherited[i].fd == -1 || strcmp(inherited[i].name,
		    l->name) != 0)
			continue;
		if ((fd = fcntl(inherited[i].fd, F_DUPFD_CLOEXEC, 0)) == -1)
			return -1;
		if (set_add(set, fd, &inherited[i].addr,
		    inherited[i].addrlen) == -1) {
			close(fd);
			return -1;
		}
		inherited[i].used = 1;
	}
	return 0;
}

int
listen_open(const struct conf_listener *l, const struct listen_set *prev,
    size_t nprev, struct listen_set *set, char *err, size_t errlen)
{
	const struct conf_listen *cl;
	size_t i, j;
	int fd;

	memset(set, 0, sizeof(*set));
	if (take_named(l, set) == -1) {
		snprintf(err, errlen, "%s:%d: listener %s: socket activation: %s",
		    l->where.file, l->where.line, l->name, strerror(errno));
		goto fail;
	}
	for (i = 0; i < l->nlistens; i++) {
		cl = &l->listens[i];
		for (j = 0; j < cl->naddrs; j++) {
			if (set_has(set, &cl->addrs[j], cl->addrlens[j]))
				continue;
			fd = reuse_socket(&cl->addrs[j], cl->addrlens[j], prev,
			    nprev);
			if (fd == -1 && (fd = bind_socket(&cl->addrs[j],
			    cl->addrlens[j])) == -1) {
				snprintf(err, errlen, "%s:%d: listen %s:%u: %s",
				    cl->where.file, cl->where.line, cl->host,
				    cl->port, strerror(errno));
				goto fail;
			}
			if (set_add(set, fd, &cl->addrs[j], cl->addrlens[j]) == -1) {
				close(fd);
				goto nomem;
			}
		}
	}
	return 0;
nomem:
	snprintf(err, errlen, "listener %s: out of memory", l->name);
fail:
	listen_close(set);
	return -1;
}

void
listen_close(struct listen_set *set)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		close(set->fds[i]);
	free(set->fds);
	free(set->addrs);
	free(set->addrlens);
	memset(set, 0, sizeof(*set));
}
