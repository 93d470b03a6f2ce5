/*
 * tlspipe: a small libtls client for the tests.
 *
 *	tlspipe [-ekv] [-C cafile] [-n name] [-t secs] [-w secs] host port
 *
 * Copies stdin to a TLS connection and the connection to stdout, both at
 * once, binary-safe.  At the end of stdin it sends close_notify and goes on
 * reading until the server is done (-e: a TCP FIN without close_notify
 * instead; -k: nothing, and leave as soon as the server has closed).  It
 * ends when both directions are done, and says on stderr how the server
 * closed ("server=close_notify" or "server=eof").  -v: say on stderr, once
 * connected, "tlspipe: connected port=LOCALPORT version=... cipher=...".
 * -w: read nothing from the server for the first secs seconds (a slow
 * reader), while still writing.
 *
 *	tlspipe -c count [-H secs] [-C cafile] [-n name] [-t secs] host port
 *
 * Opens count connections at once, sends "hello N\n" on each and waits
 * for it to come back (an echo backend), then prints "ready N/N" on
 * stdout, holds them all open for -H seconds and closes them.
 *
 * Without -C the server certificate is not verified.  -t: give up after
 * secs seconds (exit 3).  Exit 0 on success, 1 on an error, 2 on usage.
 */
#include <sys/types.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <tls.h>

#define BUFSZ	16384

static struct tls_config	*cfg;
static const char		*servername = "localhost";
static struct timespec		 deadline;
static int			 have_deadline;
static struct timespec		 read_from;	/* -w: read after */

static void
usage(void)
{
	fprintf(stderr, "usage: tlspipe [-ekv] [-C cafile] [-n name] "
	    "[-t secs] [-w secs] host port\n"
	    "       tlspipe -c count [-H secs] [-C cafile] [-n name] "
	    "[-t secs] host port\n");
	exit(2);
}

/* Milliseconds until the -w pause is over, 0 if it is. */
static int
pause_left(void)
{
	struct timespec now;
	long long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long long)(read_from.tv_sec - now.tv_sec) * 1000 +
	    (read_from.tv_nsec - now.tv_nsec) / 1000000;
	return ms > 0 ? (int)ms : 0;
}

static int
ms_left(void)
{
	struct timespec now;
	long long ms;

	if (!have_deadline)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long long)(deadline.tv_sec - now.tv_sec) * 1000 +
	    (deadline.tv_nsec - now.tv_nsec) / 1000000;
	if (ms <= 0) {
		fprintf(stderr, "tlspipe: timeout\n");
		exit(3);
	}
	return (int)ms;
}

static void
set_nonblock(int fd)
{
	int fl;

	if ((fl = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1) {
		perror("tlspipe: fcntl");
		exit(1);
	}
}

static struct addrinfo *
resolve(const char *host, const char *port)
{
	struct addrinfo hints, *res;
	int e;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((e = getaddrinfo(host, port, &hints, &res)) != 0) {
		fprintf(stderr, "tlspipe: %s: %s\n", host, gai_strerror(e));
		exit(1);
	}
	return res;
}

static struct tls *
new_client(void)
{
	struct tls *ctx;

	if ((ctx = tls_client()) == NULL || tls_configure(ctx, cfg) == -1) {
		fprintf(stderr, "tlspipe: tls_configure: %s\n",
		    ctx ? tls_error(ctx) : "tls_client failed");
		exit(1);
	}
	return ctx;
}

static short
want_events(int want)
{
	if (want == TLS_WANT_POLLIN)
		return POLLIN;
	if (want == TLS_WANT_POLLOUT)
		return POLLOUT;
	return 0;
}

static void
write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			perror("tlspipe: write");
			exit(1);
		}
		p += n;
		len -= (size_t)n;
	}
}

/* ---- pipe mode ---- */

struct pipe {
	struct tls	*tls;
	int		 fd;
	char		 up[BUFSZ];
	size_t		 uplen;
	int		 in_eof, in_ready, up_done;
	int		 rd_want, wr_want, close_want;
	int		 srv_eof;
	const char	*srv_how;
	unsigned long long sent, received;
};

static void
pipe_fail(struct pipe *p, const char *what)
{
	fprintf(stderr, "tlspipe: %s: %s (sent=%llu received=%llu)\n", what,
	    tls_error(p->tls) ? tls_error(p->tls) : "closed", p->sent,
	    p->received);
	exit(1);
}

static int
pipe_step(struct pipe *p, char mode)
{
	char buf[BUFSZ];
	ssize_t n;
	int progress = 0, rv;

	if (!p->in_eof && p->in_ready && p->uplen < sizeof(p->up)) {
		p->in_ready = 0;
		n = read(STDIN_FILENO, p->up + p->uplen,
		    sizeof(p->up) - p->uplen);
		if (n == 0)
			p->in_eof = 1;
		else if (n > 0)
			p->uplen += (size_t)n;
		else if (errno != EAGAIN && errno != EINTR) {
			perror("tlspipe: read stdin");
			exit(1);
		}
		progress = 1;
	}
	if (p->uplen > 0 && p->wr_want == 0) {
		n = tls_write(p->tls, p->up, p->uplen);
		if (n == TLS_WANT_POLLIN || n == TLS_WANT_POLLOUT)
			p->wr_want = (int)n;
		else if (n < 0)
			pipe_fail(p, "write");
		else {
			memmove(p->up, p->up + n, p->uplen - (size_t)n);
			p->uplen -= (size_t)n;
			p->sent += (unsigned long long)n;
			progress = 1;
		}
	}
	if (p->in_eof && p->uplen == 0 && !p->up_done && p->close_want == 0) {
		if (mode == 'e') {
			shutdown(p->fd, SHUT_WR);
			p->up_done = 1;
		} else if (mode == 'k')
			p->up_done = 1;
		else {
			rv = tls_close(p->tls);
			if (rv == TLS_WANT_POLLIN || rv == TLS_WANT_POLLOUT)
				p->close_want = rv;
			else
				p->up_done = 1;
		}
		progress |= p->up_done;
	}
	if (!p->srv_eof && p->rd_want == 0 && pause_left() == 0) {
		n = tls_read(p->tls, buf, sizeof(buf));
		if (n == TLS_WANT_POLLIN || n == TLS_WANT_POLLOUT)
			p->rd_want = (int)n;
		else if (n > 0) {
			write_all(STDOUT_FILENO, buf, (size_t)n);
			p->received += (unsigned long long)n;
			progress = 1;
		} else if (n == 0) {
			p->srv_eof = 1;
			p->srv_how = "close_notify";
			progress = 1;
		} else if (tls_error(p->tls) != NULL &&
		    strstr(tls_error(p->tls), "unexpected eof") != NULL) {
			p->srv_eof = 1;
			p->srv_how = "eof";
			progress = 1;
		} else
			pipe_fail(p, "read");
	}
	return progress;
}

static void
pipe_unblock(struct pipe *p, int want)
{
	if (p->rd_want == want)
		p->rd_want = 0;
	if (p->wr_want == want)
		p->wr_want = 0;
	if (p->close_want == want)
		p->close_want = 0;
}

static void
pipe_run(struct tls *tls, int fd, char mode)
{
	static struct pipe p;
	struct pollfd pfd[2];
	int ms, pause;

	p.tls = tls;
	p.fd = fd;
	for (;;) {
		while (pipe_step(&p, mode))
			;
		if (p.srv_eof && (p.up_done || mode == 'k'))
			break;
		/* Not -1 events 0: a pipe at EOF keeps reporting POLLHUP. */
		pfd[0].fd = !p.in_eof && p.uplen < sizeof(p.up) ?
		    STDIN_FILENO : -1;
		pfd[0].events = POLLIN;
		pfd[1].fd = fd;
		pfd[1].events = want_events(p.rd_want) |
		    want_events(p.wr_want) | want_events(p.close_want);
		ms = ms_left();
		if ((pause = pause_left()) > 0 && (ms == -1 || pause < ms))
			ms = pause;
		if (poll(pfd, 2, ms) == -1) {
			if (errno == EINTR)
				continue;
			perror("tlspipe: poll");
			exit(1);
		}
		if (pfd[0].revents)
			p.in_ready = 1;
		if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR))
			pipe_unblock(&p, TLS_WANT_POLLIN);
		if (pfd[1].revents & (POLLOUT | POLLHUP | POLLERR))
			pipe_unblock(&p, TLS_WANT_POLLOUT);
	}
	if (mode == 'k')
		(void)tls_close(tls);
	fprintf(stderr, "tlspipe: done sent=%llu received=%llu server=%s\n",
	    p.sent, p.received, p.srv_how);
}

static int
connect_blocking(struct addrinfo *res)
{
	struct addrinfo *ai;
	int fd = -1;

	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((fd = socket(ai->ai_family, ai->ai_socktype,
		    ai->ai_protocol)) == -1)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			return fd;
		close(fd);
		fd = -1;
	}
	perror("tlspipe: connect");
	exit(1);
}

static void
handshake(struct tls *tls, int fd)
{
	struct pollfd pfd;
	int rv;

	while ((rv = tls_handshake(tls)) != 0) {
		if (rv != TLS_WANT_POLLIN && rv != TLS_WANT_POLLOUT) {
			fprintf(stderr, "tlspipe: handshake: %s\n",
			    tls_error(tls));
			exit(1);
		}
		pfd.fd = fd;
		pfd.events = want_events(rv);
		if (poll(&pfd, 1, ms_left()) == -1 && errno != EINTR) {
			perror("tlspipe: poll");
			exit(1);
		}
	}
}

static void
run_pipe(const char *host, const char *port, char mode, int verbose)
{
	struct sockaddr_storage ss;
	struct addrinfo *res;
	struct tls *tls;
	socklen_t len = sizeof(ss);
	int fd, lport = 0;

	res = resolve(host, port);
	fd = connect_blocking(res);
	freeaddrinfo(res);
	set_nonblock(fd);
	set_nonblock(STDIN_FILENO);
	tls = new_client();
	if (tls_connect_socket(tls, fd, servername) == -1) {
		fprintf(stderr, "tlspipe: %s\n", tls_error(tls));
		exit(1);
	}
	handshake(tls, fd);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
		lport = ntohs(ss.ss_family == AF_INET6 ?
		    ((struct sockaddr_in6 *)&ss)->sin6_port :
		    ((struct sockaddr_in *)&ss)->sin_port);
	if (verbose)
		fprintf(stderr, "tlspipe: connected port=%d version=%s "
		    "cipher=%s\n", lport, tls_conn_version(tls),
		    tls_conn_cipher(tls));
	pipe_run(tls, fd, mode);
}

/* ---- many connections at once ---- */

enum cstate { C_CONNECT, C_HANDSHAKE, C_WRITE, C_READ, C_DONE, C_FAILED };

struct conn {
	int		 fd;
	struct tls	*tls;
	enum cstate	 state;
	int		 want;		/* poll events awaited */
	char		 msg[32];
	size_t		 msglen, off;
	char		 got[32];
	size_t		 gotlen;
};

static const char	*first_error;

static void
conn_fail(struct conn *c, const char *why)
{
	if (first_error == NULL)
		first_error = strdup(why);
	c->state = C_FAILED;
	c->want = 0;
}

static int
conn_tls_result(struct conn *c, ssize_t n, const char *what)
{
	char buf[256];

	if (n == TLS_WANT_POLLIN || n == TLS_WANT_POLLOUT) {
		c->want = want_events((int)n);
		return 0;
	}
	if (n < 0) {
		snprintf(buf, sizeof(buf), "%s: %s", what,
		    tls_error(c->tls) ? tls_error(c->tls) : "?");
		conn_fail(c, buf);
		return 0;
	}
	return 1;
}

/* Move c on as far as it goes without blocking. */
static void
conn_step(struct conn *c)
{
	socklen_t len;
	ssize_t n;
	int e;

	for (;;) {
		switch (c->state) {
		case C_CONNECT:
			len = sizeof(e);
			if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e,
			    &len) == -1)
				e = errno;
			if (e != 0) {
				conn_fail(c, strerror(e));
				return;
			}
			c->tls = new_client();
			if (tls_connect_socket(c->tls, c->fd, servername) ==
			    -1) {
				conn_fail(c, tls_error(c->tls));
				return;
			}
			c->state = C_HANDSHAKE;
			break;
		case C_HANDSHAKE:
			if (!conn_tls_result(c, tls_handshake(c->tls),
			    "handshake"))
				return;
			c->state = C_WRITE;
			break;
		case C_WRITE:
			n = tls_write(c->tls, c->msg + c->off,
			    c->msglen - c->off);
			if (!conn_tls_result(c, n, "write"))
				return;
			if ((c->off += (size_t)n) == c->msglen)
				c->state = C_READ;
			break;
		case C_READ:
			n = tls_read(c->tls, c->got + c->gotlen,
			    c->msglen - c->gotlen);
			if (!conn_tls_result(c, n, "read"))
				return;
			if (n == 0) {
				conn_fail(c, "closed before the echo");
				return;
			}
			c->gotlen += (size_t)n;
			if (c->gotlen < c->msglen)
				break;
			if (memcmp(c->got, c->msg, c->msglen) != 0)
				conn_fail(c, "echo differs");
			else
				c->state = C_DONE;
			c->want = 0;
			return;
		default:
			return;
		}
	}
}

static void
conn_start(struct conn *c, struct addrinfo *ai, int i)
{
	c->msglen = (size_t)snprintf(c->msg, sizeof(c->msg), "hello %d\n", i);
	c->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK,
	    ai->ai_protocol);
	if (c->fd == -1) {
		conn_fail(c, strerror(errno));
		return;
	}
	c->state = C_CONNECT;
	if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) == -1) {
		if (errno != EINPROGRESS) {
			conn_fail(c, strerror(errno));
			return;
		}
		c->want = POLLOUT;
		return;
	}
	conn_step(c);
}

static void
run_many(const char *host, const char *port, int count, int hold)
{
	struct addrinfo *res;
	struct pollfd *pfd;
	struct conn *conns;
	struct rlimit rl;
	int i, n, active, done, failed;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	res = resolve(host, port);
	conns = calloc((size_t)count, sizeof(*conns));
	pfd = calloc((size_t)count, sizeof(*pfd));
	if (conns == NULL || pfd == NULL) {
		perror("tlspipe: calloc");
		exit(1);
	}
	for (i = 0; i < count; i++)
		conn_start(&conns[i], res, i);
	for (;;) {
		for (i = 0, active = 0; i < count; i++) {
			pfd[i].fd = conns[i].want ? conns[i].fd : -1;
			pfd[i].events = (short)conns[i].want;
			active += conns[i].want != 0;
		}
		if (active == 0)
			break;
		if ((n = poll(pfd, (nfds_t)count, ms_left())) == -1) {
			if (errno == EINTR)
				continue;
			perror("tlspipe: poll");
			exit(1);
		}
		for (i = 0; i < count && n > 0; i++)
			if (pfd[i].fd != -1 && pfd[i].revents != 0) {
				n--;
				conn_step(&conns[i]);
			}
	}
	for (i = 0, done = 0, failed = 0; i < count; i++) {
		done += conns[i].state == C_DONE;
		failed += conns[i].state == C_FAILED;
	}
	printf("%s %d/%d\n", failed ? "failed" : "ready", done, count);
	fflush(stdout);
	if (failed) {
		fprintf(stderr, "tlspipe: %d of %d failed, first: %s\n", failed,
		    count, first_error ? first_error : "?");
		exit(1);
	}
	if (hold > 0)
		sleep((unsigned int)hold);
	for (i = 0; i < count; i++) {
		(void)tls_close(conns[i].tls);
		close(conns[i].fd);
	}
	freeaddrinfo(res);
}

int
main(int argc, char *argv[])
{
	const char *cafile = NULL, *errstr;
	char mode = 0;
	int ch, count = 0, hold = 0, verbose = 0, timeout = 0;

	while ((ch = getopt(argc, argv, "C:H:c:ekn:t:vw:")) != -1) {
		switch (ch) {
		case 'C':
			cafile = optarg;
			break;
		case 'H':
			hold = atoi(optarg);
			break;
		case 'c':
			count = atoi(optarg);
			if (count <= 0)
				usage();
			break;
		case 'e':
		case 'k':
			mode = (char)ch;
			break;
		case 'n':
			servername = optarg;
			break;
		case 't':
			timeout = atoi(optarg);
			break;
		case 'v':
			verbose = 1;
			break;
		case 'w':
			clock_gettime(CLOCK_MONOTONIC, &read_from);
			read_from.tv_sec += atoi(optarg);
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 2)
		usage();
	signal(SIGPIPE, SIG_IGN);
	if (timeout > 0) {
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_sec += timeout;
		have_deadline = 1;
	}
	if ((cfg = tls_config_new()) == NULL) {
		fprintf(stderr, "tlspipe: tls_config_new failed\n");
		return 1;
	}
	if (cafile != NULL) {
		if (tls_config_set_ca_file(cfg, cafile) == -1) {
			errstr = tls_config_error(cfg);
			fprintf(stderr, "tlspipe: %s: %s\n", cafile,
			    errstr ? errstr : "?");
			return 1;
		}
	} else {
		tls_config_insecure_noverifycert(cfg);
		tls_config_insecure_noverifyname(cfg);
	}
	if (count > 0)
		run_many(argv[0], argv[1], count, hold);
	else
		run_pipe(argv[0], argv[1], mode, verbose);
	return 0;
}
