/*
 * echod: a small plaintext backend for the tests.
 *
 *	echod MODE ADDR [FILE]
 *
 * ADDR is a TCP port on 127.0.0.1, "[::1]:PORT", "HOST:PORT" with a
 * numeric IPv4 host, or a UNIX socket path (starting with '/').  MODE:
 *
 *   echo       echo every byte back; after the client's EOF, finish
 *              echoing, then close
 *   cred       echo, after a first line "peer uid=U gid=G" with the
 *              connecting process's credentials (SO_PEERCRED; "-" for
 *              TCP), also written to stdout
 *   http       answer each HTTP/1.x request with 200 and ECHOD_BODY
 *              (keep-alive unless HTTP/1.0 or "Connection: close")
 *   close      accept and close at once
 *   halfclose  send "bye\n", shut down the write side, then read until
 *              EOF, appending what came to FILE
 *   full       listen with a backlog of 0 and fill it, never accept:
 *              further connection attempts get no answer (SYNs are
 *              dropped), for connect timeouts
 *
 * One process, poll(2), buffers of ECHOD_BUFSZ per connection: the echo
 * reads only when it has room, so a client that does not read stops
 * being read.  "echod: listening" on stdout means ready; a line per
 * closed connection on stdout says what it moved.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ECHOD_BUFSZ	65536
#define ECHOD_BODY	"hello from echod\n"

enum mode { M_ECHO, M_HTTP, M_CLOSE, M_HALFCLOSE, M_FULL };

struct conn {
	int		 fd;
	int		 rd_eof;	/* peer's EOF read */
	int		 shut;		/* our write side shut */
	int		 close_after;	/* close once out is sent */
	size_t		 inlen;		/* http: request bytes */
	size_t		 outoff, outlen;
	uint64_t	 nin, nout;
	unsigned char	 in[ECHOD_BUFSZ];
	unsigned char	 out[ECHOD_BUFSZ];
};

static enum mode	 mode;
static int		 cred;		/* "cred": echo after the peer's ids */
static const char	*recfile;
static struct conn	**conns;
static size_t		 nconns, conncap;

static void
die(const char *what)
{
	fprintf(stderr, "echod: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int
parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_un *sun = (struct sockaddr_un *)ss;
	char host[128];
	const char *p;
	long port;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '/') {
		if (strlen(s) >= sizeof(sun->sun_path))
			return -1;
		sun->sun_family = AF_UNIX;
		strcpy(sun->sun_path, s);
		*len = sizeof(*sun);
		return 0;
	}
	strcpy(host, "127.0.0.1");
	p = s;
	if (s[0] == '[') {
		if ((p = strchr(s, ']')) == NULL || p[1] != ':' ||
		    (size_t)(p - s - 1) >= sizeof(host))
			return -1;
		memcpy(host, s + 1, (size_t)(p - s - 1));
		host[p - s - 1] = '\0';
		p += 2;
	} else if ((p = strrchr(s, ':')) != NULL) {
		if ((size_t)(p - s) >= sizeof(host))
			return -1;
		memcpy(host, s, (size_t)(p - s));
		host[p - s] = '\0';
		p++;
	} else
		p = s;
	port = strtol(p, NULL, 10);
	if (port <= 0 || port > 65535)
		return -1;
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*sin6);
		return 0;
	}
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		*len = sizeof(*sin);
		return 0;
	}
	return -1;
}

static void
set_nonblock(int fd)
{
	int fl;

	if ((fl = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1)
		die("fcntl");
}

static int
listen_on(const struct sockaddr_storage *ss, socklen_t len)
{
	int fd, one = 1;

	if (ss->ss_family == AF_UNIX)
		unlink(((const struct sockaddr_un *)ss)->sun_path);
	if ((fd = socket(ss->ss_family, SOCK_STREAM, 0)) == -1)
		die("socket");
	if (ss->ss_family != AF_UNIX)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)ss, len) == -1)
		die("bind");
	if (ss->ss_family == AF_UNIX)
		chmod(((const struct sockaddr_un *)ss)->sun_path, 0666);
	if (listen(fd, mode == M_FULL ? 0 : 1024) == -1)
		die("listen");
	return fd;
}

/*
 * With a backlog of 0 the accept queue holds one connection; once it is
 * there the kernel drops every further SYN, so connect(2) just waits.
 */
static void
fill_backlog(const struct sockaddr_storage *ss, socklen_t len)
{
	int fd;

	if ((fd = socket(ss->ss_family, SOCK_STREAM, 0)) == -1)
		die("socket");
	if (connect(fd, (const struct sockaddr *)ss, len) == -1)
		die("connect to self");
	/* keep fd open for good */
}

/* "peer uid=U gid=G\n" first in c's output, and on stdout. */
static void
say_cred(struct conn *c)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);
	int n;

	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) == 0 &&
	    uc.pid != 0)
		n = snprintf((char *)c->out, sizeof(c->out),
		    "peer uid=%u gid=%u\n", (unsigned)uc.uid, (unsigned)uc.gid);
	else
		n = snprintf((char *)c->out, sizeof(c->out),
		    "peer uid=- gid=-\n");
	c->outlen = (size_t)n;
	printf("echod: %.*s", n, (char *)c->out);
	fflush(stdout);
}

static void
add_conn(int fd)
{
	struct conn *c;

	if (nconns == conncap) {
		conncap = conncap ? conncap * 2 : 64;
		if ((conns = realloc(conns, conncap * sizeof(*conns))) == NULL)
			die("realloc");
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		die("calloc");
	c->fd = fd;
	set_nonblock(fd);
	conns[nconns++] = c;
	if (cred)
		say_cred(c);
	switch (mode) {
	case M_CLOSE:
		c->close_after = 1;
		break;
	case M_HALFCLOSE:
		memcpy(c->out, "bye\n", 4);
		c->outlen = 4;
		break;
	default:
		break;
	}
}

static void
close_conn(size_t i)
{
	struct conn *c = conns[i];

	printf("echod: closed in=%llu out=%llu eof=%d\n",
	    (unsigned long long)c->nin, (unsigned long long)c->nout,
	    c->rd_eof);
	fflush(stdout);
	close(c->fd);
	free(c);
	conns[i] = conns[--nconns];
}

static void
record(const unsigned char *buf, size_t n)
{
	FILE *fp;

	if (recfile == NULL || (fp = fopen(recfile, "a")) == NULL)
		return;
	fwrite(buf, 1, n, fp);
	fclose(fp);
}

/* Answer every complete request in c->in, as far as out has room. */
static void
http_serve(struct conn *c)
{
	static const char fmt[] = "HTTP/1.1 200 OK\r\n"
	    "Content-Type: text/plain\r\nContent-Length: %zu\r\n%s\r\n%s";
	unsigned char *end;
	char resp[512];
	size_t hlen;
	int n, close_it;

	while ((end = memmem(c->in, c->inlen, "\r\n\r\n", 4)) != NULL) {
		if (c->outoff + c->outlen + sizeof(resp) > sizeof(c->out))
			return;
		hlen = (size_t)(end - c->in) + 4;
		close_it = memmem(c->in, hlen, "HTTP/1.0", 8) != NULL ||
		    memmem(c->in, hlen, "onnection: close", 16) != NULL;
		n = snprintf(resp, sizeof(resp), fmt, strlen(ECHOD_BODY),
		    close_it ? "Connection: close\r\n" : "", ECHOD_BODY);
		memcpy(c->out + c->outoff + c->outlen, resp, (size_t)n);
		c->outlen += (size_t)n;
		memmove(c->in, c->in + hlen, c->inlen - hlen);
		c->inlen -= hlen;
		if (close_it) {
			c->close_after = 1;
			return;
		}
	}
	if (c->inlen == sizeof(c->in))
		c->close_after = 1;	/* a header this long: give up */
}

/* Read what the mode wants; return -1 to drop the connection. */
static int
conn_read(struct conn *c)
{
	unsigned char buf[ECHOD_BUFSZ];
	unsigned char *dst;
	size_t room;
	ssize_t n;

	switch (mode) {
	case M_ECHO:
		if (c->outlen == 0)
			c->outoff = 0;
		dst = c->out + c->outoff + c->outlen;
		room = sizeof(c->out) - c->outoff - c->outlen;
		break;
	case M_HTTP:
		dst = c->in + c->inlen;
		room = sizeof(c->in) - c->inlen;
		break;
	default:
		dst = buf;
		room = sizeof(buf);
		break;
	}
	if (room == 0)
		return 0;
	n = read(c->fd, dst, room);
	if (n == -1)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	if (n == 0) {
		c->rd_eof = 1;
		return 0;
	}
	c->nin += (uint64_t)n;
	if (mode == M_ECHO)
		c->outlen += (size_t)n;
	else if (mode == M_HTTP) {
		c->inlen += (size_t)n;
		http_serve(c);
	} else if (mode == M_HALFCLOSE)
		record(buf, (size_t)n);
	return 0;
}

static int
conn_write(struct conn *c)
{
	ssize_t n;

	n = write(c->fd, c->out + c->outoff, c->outlen);
	if (n == -1)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	c->nout += (uint64_t)n;
	c->outoff += (size_t)n;
	c->outlen -= (size_t)n;
	if (c->outlen == 0)
		c->outoff = 0;
	if (mode == M_HTTP)
		http_serve(c);
	return 0;
}

/* What to do once out is empty: 1 to close the connection. */
static int
conn_settle(struct conn *c)
{
	if (c->outlen > 0)
		return 0;
	if (c->close_after)
		return 1;
	switch (mode) {
	case M_ECHO:
	case M_HTTP:
		return c->rd_eof;
	case M_HALFCLOSE:
		if (!c->shut) {
			shutdown(c->fd, SHUT_WR);
			c->shut = 1;
		}
		return c->rd_eof;
	default:
		return 0;
	}
}

static short
conn_events(const struct conn *c)
{
	short ev = 0;

	if (c->outlen > 0)
		ev |= POLLOUT;
	if (!c->rd_eof && !c->close_after &&
	    (mode != M_ECHO || c->outoff + c->outlen < sizeof(c->out)) &&
	    (mode != M_HTTP || c->inlen < sizeof(c->in)))
		ev |= POLLIN;
	return ev;
}

static void
serve(int lfd)
{
	struct pollfd *pfd = NULL;
	size_t i, n, pfdcap = 0;
	int fd;

	for (;;) {
		if (pfdcap < nconns + 1) {
			pfdcap = (nconns + 1) * 2;
			if ((pfd = realloc(pfd, pfdcap * sizeof(*pfd))) == NULL)
				die("realloc");
		}
		pfd[0].fd = lfd;
		pfd[0].events = mode == M_FULL ? 0 : POLLIN;
		for (i = 0; i < nconns; i++) {
			/* events 0 could still report POLLHUP: leave it out */
			pfd[i + 1].events = conn_events(conns[i]);
			pfd[i + 1].fd = pfd[i + 1].events ? conns[i]->fd : -1;
		}
		n = nconns;
		if (poll(pfd, n + 1, -1) == -1) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		/* Backwards: close_conn() moves the last one into slot i. */
		for (i = n; i-- > 0;) {
			struct conn *c = conns[i];
			short re = pfd[i + 1].revents;

			if ((re & (POLLIN | POLLHUP | POLLERR)) &&
			    (conn_events(c) & POLLIN) && conn_read(c) == -1) {
				close_conn(i);
				continue;
			}
			if ((re & (POLLOUT | POLLERR)) && c->outlen > 0 &&
			    conn_write(c) == -1) {
				close_conn(i);
				continue;
			}
			if ((re & POLLERR) || conn_settle(c))
				close_conn(i);
		}
		if (pfd[0].revents & POLLIN) {
			while ((fd = accept(lfd, NULL, NULL)) != -1) {
				add_conn(fd);
				if (conn_settle(conns[nconns - 1]))
					close_conn(nconns - 1);
			}
		}
	}
}

int
main(int argc, char *argv[])
{
	static const char *names[] = { "echo", "http", "close", "halfclose",
	    "full" };
	const char *m;
	struct sockaddr_storage ss;
	socklen_t len;
	size_t i;
	int lfd;

	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: echod echo|cred|http|close|halfclose|"
		    "full PORT|[::1]:PORT|/path [FILE]\n");
		return 2;
	}
	m = argv[1];
	if (strcmp(m, "cred") == 0) {
		cred = 1;
		m = "echo";
	}
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(m, names[i]) == 0)
			break;
	if (i == sizeof(names) / sizeof(names[0])) {
		fprintf(stderr, "echod: unknown mode %s\n", argv[1]);
		return 2;
	}
	mode = (enum mode)i;
	recfile = argc == 4 ? argv[3] : NULL;
	if (parse_addr(argv[2], &ss, &len) == -1) {
		fprintf(stderr, "echod: bad address %s\n", argv[2]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	lfd = listen_on(&ss, len);
	set_nonblock(lfd);
	if (mode == M_FULL)
		fill_backlog(&ss, len);
	printf("echod: listening on %s mode %s\n", argv[2], argv[1]);
	fflush(stdout);
	serve(lfd);
	return 0;
}
