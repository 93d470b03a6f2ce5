/*
 * The metrics process: see metrics.h.
 *
 * One poll(2) loop over the parent's channel, the listening socket and at
 * most METRICS_CLIENTS connections.  A connection lives at most
 * METRICS_DEADLINE_MS in all: reading its request (at most
 * METRICS_REQ_MAX bytes, up to the blank line that ends the headers),
 * waiting for the parent's page, writing the answer; then it is closed.
 * Only the request line is looked at: "GET /metrics HTTP/1.x" or
 * "GET /status HTTP/1.x"; any other target is 404, any other method 405,
 * anything malformed 400.  Headers are skipped unread.
 */
#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/deadline.h"
#include "lib/log.h"
#include "lib/msg.h"
#include "lib/sandbox.h"
#include "lib/wire.h"
#include "proxy/metrics.h"

#define METRICS_COMM		"recluse-metrics"	/* 15 bytes at most */
#define METRICS_CLIENTS		16
#define METRICS_REQ_MAX		4096	/* request line and headers */
#define METRICS_DEADLINE_MS	5000	/* a connection's whole life */
#define METRICS_NOFILE		(METRICS_LISTEN_FD + METRICS_CLIENTS + 8)

enum mc_state {
	MC_FREE,
	MC_READ,		/* its request */
	MC_WAIT,		/* the parent's page */
	MC_WRITE		/* the answer */
};

struct metrics_client {
	enum mc_state	 state;
	int		 fd;
	uint32_t	 id;
	struct timespec	 deadline;
	char		 req[METRICS_REQ_MAX];
	size_t		 reqlen;
	char		*out;
	size_t		 outlen, outoff;
};

static struct metrics_client	mc[METRICS_CLIENTS];
static uint32_t			mc_nextid;

static void
mc_close(struct metrics_client *c)
{
	close(c->fd);
	free(c->out);
	memset(c, 0, sizeof(*c));
	c->state = MC_FREE;
	c->fd = -1;
}

/* Answer c with status and body (len bytes; body is copied). */
static void
mc_answer(struct metrics_client *c, const char *status, const char *type,
    const char *body, size_t len)
{
	char head[256];
	int n;

	n = snprintf(head, sizeof(head), "HTTP/1.1 %s\r\n"
	    "Content-Type: %s\r\nContent-Length: %zu\r\n"
	    "Connection: close\r\n\r\n", status, type, len);
	if (n < 0 || (size_t)n >= sizeof(head) ||
	    (c->out = malloc((size_t)n + len)) == NULL) {
		mc_close(c);
		return;
	}
	memcpy(c->out, head, (size_t)n);
	memcpy(c->out + n, body, len);
	c->outlen = (size_t)n + len;
	c->outoff = 0;
	c->state = MC_WRITE;
}

static void
mc_error(struct metrics_client *c, const char *status)
{
	char body[64];
	int n;

	n = snprintf(body, sizeof(body), "%s\n", status);
	mc_answer(c, status, "text/plain; charset=utf-8", body, (size_t)n);
}

/* The request line is all we read: METHOD SP TARGET SP HTTP/1.x. */
static void
mc_request(struct metrics_client *c, size_t linelen)
{
	struct metrics_get get;
	char *line = c->req, *target, *version;

	if (linelen > 0 && line[linelen - 1] == '\r')
		linelen--;
	line[linelen] = '\0';
	if ((target = strchr(line, ' ')) == NULL ||
	    (version = strchr(target + 1, ' ')) == NULL ||
	    strchr(version + 1, ' ') != NULL) {
		mc_error(c, "400 Bad Request");
		return;
	}
	*target++ = '\0';
	*version++ = '\0';
	if (strcmp(version, "HTTP/1.0") != 0 &&
	    strcmp(version, "HTTP/1.1") != 0) {
		mc_error(c, "400 Bad Request");
		return;
	}
	if (strcmp(line, "GET") != 0) {
		mc_error(c, "405 Method Not Allowed");
		return;
	}
	if (strcmp(target, "/metrics") == 0)
		get.what = METRICS_WHAT_METRICS;
	else if (strcmp(target, "/status") == 0)
		get.what = METRICS_WHAT_STATUS;
	else {
		mc_error(c, "404 Not Found");
		return;
	}
	if (++mc_nextid == 0)
		mc_nextid = 1;
	get.id = c->id = mc_nextid;
	if (msg_put(METRICS_FD, METRICS_GET, &get, sizeof(get), -1,
	    MSG_DONTWAIT) == -1) {
		mc_error(c, "503 Service Unavailable");
		return;
	}
	c->state = MC_WAIT;
}

/* The request, once its headers have ended (a blank line). */
static void
mc_read(struct metrics_client *c)
{
	ssize_t n;
	char *nl;

	n = read(c->fd, c->req + c->reqlen, sizeof(c->req) - 1 - c->reqlen);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		mc_close(c);
		return;
	}
	c->reqlen += (size_t)n;
	c->req[c->reqlen] = '\0';
	if (memchr(c->req, '\0', c->reqlen) != NULL) {
		mc_error(c, "400 Bad Request");
		return;
	}
	if (strstr(c->req, "\r\n\r\n") == NULL &&
	    strstr(c->req, "\n\n") == NULL) {
		if (c->reqlen == sizeof(c->req) - 1)
			mc_error(c, "431 Request Header Fields Too Large");
		return;
	}
	nl = strchr(c->req, '\n');
	mc_request(c, (size_t)(nl - c->req));
}

static void
mc_write(struct metrics_client *c)
{
	char buf[4096];
	ssize_t n;
	int i;

	n = write(c->fd, c->out + c->outoff, c->outlen - c->outoff);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		mc_close(c);
		return;
	}
	c->outoff += (size_t)n;
	if (c->outoff < c->outlen)
		return;
	/* What the client sent beyond its request would make close(2) send
	 * a reset, which can destroy our answer before it is read. */
	for (i = 0; i < 16 && read(c->fd, buf, sizeof(buf)) > 0; i++)
		;
	mc_close(c);
}

/* The page for c, in the memfd fd: exactly len bytes from offset 0. */
static void
mc_page(struct metrics_client *c, int fd, size_t len)
{
	struct stat sb;
	size_t got = 0;
	ssize_t n;
	char *buf;

	if (fd == -1 || len == 0 || len > METRICS_PAGE_MAX ||
	    fstat(fd, &sb) == -1 || sb.st_size != (off_t)len ||
	    (buf = malloc(len)) == NULL) {
		mc_error(c, "503 Service Unavailable");
		return;
	}
	while (got < len && (n = read(fd, buf + got, len - got)) > 0)
		got += (size_t)n;
	if (got == len)
		mc_answer(c, "200 OK", "text/plain; version=0.0.4; "
		    "charset=utf-8", buf, len);
	else
		mc_error(c, "503 Service Unavailable");
	free(buf);
}

/* One METRICS_PAGE; the parent is trusted, and a broken one ends us. */
static void
mc_dispatch_parent(void)
{
	char buf[sizeof(struct msg_hdr) + sizeof(struct metrics_page)];
	struct metrics_page pg;
	struct msg_hdr hdr;
	ssize_t n;
	size_t i;
	int fd;

	n = msg_get(METRICS_FD, buf, sizeof(buf), &hdr, &fd, MSG_DONTWAIT);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n == 0)
		_exit(0);
	if (n == -1 || hdr.type != METRICS_PAGE ||
	    !MSG_LEN_IS(&hdr, sizeof(pg)))
		fatalx("bad message from the parent");
	memcpy(&pg, buf + sizeof(hdr), sizeof(pg));
	for (i = 0; i < METRICS_CLIENTS; i++)
		if (mc[i].state == MC_WAIT && mc[i].id == pg.id)
			break;
	if (i < METRICS_CLIENTS)
		mc_page(&mc[i], fd, pg.len);
	if (fd != -1)
		close(fd);
}

static void
mc_accept(void)
{
	struct metrics_client *c = NULL;
	size_t i;
	int fd;

	for (i = 0; i < METRICS_CLIENTS && c == NULL; i++)
		if (mc[i].state == MC_FREE)
			c = &mc[i];
	if (c == NULL)
		return;
	fd = accept4(METRICS_LISTEN_FD, NULL, NULL,
	    SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd == -1)
		return;		/* EAGAIN, a client gone, EMFILE: next time */
	c->fd = fd;
	c->state = MC_READ;
	c->reqlen = 0;
	deadline_in_ms(&c->deadline, METRICS_DEADLINE_MS);
}

/* Read METRICS_START, become its user in its chroot, lock ourselves in. */
static void
metrics_sandbox(void)
{
	char buf[sizeof(struct msg_hdr) + sizeof(struct metrics_start) +
	    4096 + 1], root[4096 + 1], err[256];
	struct metrics_start ms;
	struct msg_hdr hdr;
	ssize_t n;

	n = msg_get(METRICS_FD, buf, sizeof(buf), &hdr, NULL, 0);
	if (n == 0)
		_exit(0);
	if (n == -1 || hdr.type != METRICS_START ||
	    hdr.len < sizeof(ms))
		fatalx("bad start message from the parent");
	memcpy(&ms, buf + sizeof(hdr), sizeof(ms));
	if (ms.uid == 0 || ms.gid == 0 || ms.pathlen == 0 ||
	    ms.pathlen > 4096 || !MSG_LEN_IS(&hdr, sizeof(ms) + ms.pathlen))
		fatalx("bad start message from the parent");
	memcpy(root, buf + sizeof(hdr) + sizeof(ms), ms.pathlen);
	root[ms.pathlen] = '\0';
	log_init("metrics", (int)ms.verbose, METRICS_FD);
	if (sandbox_drop(root, (uid_t)ms.uid, (gid_t)ms.gid, METRICS_NOFILE,
	    err, sizeof(err)) == -1 ||
	    sandbox_limits((size_t)ms.limit_memory << 20,
	    ~0U - SANDBOX_CPU_GRACE, err, sizeof(err)) == -1 ||
	    sandbox_seccomp(SANDBOX_METRICS, err, sizeof(err)) == -1)
		fatalx("%s", err);
	log_debug("serving as uid %u", ms.uid);
}

/* Close the connections whose time is over; the poll timeout until next. */
static int
mc_expire(void)
{
	int i, left, next = -1;

	for (i = 0; i < METRICS_CLIENTS; i++) {
		if (mc[i].state == MC_FREE)
			continue;
		if ((left = deadline_ms_left(&mc[i].deadline)) == 0) {
			mc_close(&mc[i]);
			continue;
		}
		if (next == -1 || left < next)
			next = left;
	}
	return next;
}

__dead void
metrics_main(void)
{
	struct pollfd pfd[2 + METRICS_CLIENTS];
	int idx[2 + METRICS_CLIENTS];
	int i, n, np, timeout;

	/* exec of /proc/self/exe named us "exe": say what we are in ps(1). */
	(void)prctl(PR_SET_NAME, METRICS_COMM, 0, 0, 0);
	log_init("metrics", 0, METRICS_FD);
	for (i = 0; i < METRICS_CLIENTS; i++)
		mc[i].fd = -1;
	metrics_sandbox();
	for (;;) {
		timeout = mc_expire();
		pfd[0].fd = METRICS_FD;
		pfd[0].events = POLLIN;
		pfd[1].fd = METRICS_LISTEN_FD;
		pfd[1].events = POLLIN;
		np = 2;
		for (i = 0; i < METRICS_CLIENTS; i++) {
			if (mc[i].state != MC_READ && mc[i].state != MC_WRITE)
				continue;
			pfd[np].fd = mc[i].fd;
			pfd[np].events = mc[i].state == MC_READ ? POLLIN :
			    POLLOUT;
			idx[np++] = i;
		}
		if ((n = poll(pfd, (nfds_t)np, timeout)) == -1) {
			if (errno == EINTR)
				continue;
			fatal("poll");
		}
		if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR))
			mc_dispatch_parent();
		if (pfd[1].revents & POLLIN)
			mc_accept();
		for (i = 2; i < np; i++) {
			if (pfd[i].revents == 0 || mc[idx[i]].fd != pfd[i].fd)
				continue;
			if (mc[idx[i]].state == MC_READ)
				mc_read(&mc[idx[i]]);
			else if (mc[idx[i]].state == MC_WRITE)
				mc_write(&mc[idx[i]]);
		}
	}
}
