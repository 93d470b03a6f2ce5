/*
 * The hostile-child harness: see hostile.h.  Linked into the test-only
 * tests/helpers/recluse-hostile and into tests/helpers/hostile-control,
 * never into recluse.
 *
 * Every attack is written so that it harms nothing if it succeeds:
 * signals are signal 0, an armed descriptor is disarmed again, a traced
 * process is let go.  A verdict line is written before anything that
 * undoes an attack, since the undoing may itself be forbidden.
 */
#include <sys/types.h>
#include <sys/ioctl.h>
#include <sys/ptrace.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>
#include <linux/openat2.h>
#include <linux/sockios.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "keyproc/policy.h"
#include "lib/log.h"
#include "lib/wire.h"
#include "tests/helpers/hostile.h"

#define HOSTILE_LINE_MAX	(256 * 1024)	/* the go line: memory ranges */
#define HOSTILE_ARGS_MAX	64
#define HOSTILE_MARKS_MAX	8
#define HOSTILE_MARK_MAX	256		/* bytes of one decoded marker */
#define HOSTILE_REPLY_MS	5000		/* keyproc's answer, after accept */
#define HOSTILE_EARLY_MS	300		/* keyproc's answer, before */
#define HOSTILE_SCAN_CHUNK	(1024 * 1024)
#define HOSTILE_RANGE_MAX	(1UL << 32)	/* larger ranges: skipped */
#define HOSTILE_FLOOD_STALL_MS	2000
#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP		262
#endif

struct hostile_args {
	size_t	 n;
	char	*key[HOSTILE_ARGS_MAX];
	char	*val[HOSTILE_ARGS_MAX];
};

struct hostile_mark {
	char		 label[32];
	size_t		 len;
	const void	*at;		/* where it was found */
	uint8_t		 buf[HOSTILE_MARK_MAX];
};

/* The attack running now: the prefix of every line. */
static const char	*hostile_name = "hostile";

/* What the spare's signature request before accept got (preaccept). */
static int		 hostile_early = -1;	/* -1 untried, 0 no, 1 signed */
static char		 hostile_early_how[160];

/* The decoded markers: the one copy the memory scan must not count. */
static struct hostile_mark	hostile_marks[HOSTILE_MARKS_MAX];
static size_t			hostile_nmarks;

/* Something at the same address in every child of one spawner. */
static const char	hostile_probe[] = "recluse hostile probe";

/* ------------------------------------------------------------------ */
/* plumbing                                                            */

static const char *
ename(int e)
{
	const char *s = strerrorname_np(e);

	return s != NULL ? s : "E?";
}

/* A call the filter refused, rather than the kernel. */
static int
filtered(int e)
{
	return e == EPERM || e == EACCES || e == ENOSYS;
}

static long
ms_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)(now.tv_sec - t0->tv_sec) * 1000 +
	    (now.tv_nsec - t0->tv_nsec) / 1000000;
}

/* poll(2) one descriptor for up to ms; 1 ready, 0 timeout, -1 error. */
static int
wait_fd(int fd, short events, int ms)
{
	struct timespec t0;
	struct pollfd pfd;
	long left;
	int n;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		left = ms - ms_since(&t0);
		if (left < 0)
			left = 0;
		pfd.fd = fd;
		pfd.events = events;
		n = poll(&pfd, 1, (int)left);
		if (n == -1 && errno == EINTR)
			continue;
		return n > 0 ? 1 : n;
	}
}

static void
sleep_ms(long ms)
{
	struct timespec t0;
	long left;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while ((left = ms - ms_since(&t0)) > 0)
		(void)poll(NULL, 0, (int)left);
}

/* Write all of buf to fd, which may be non-blocking. */
static void
write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN &&
		    wait_fd(fd, POLLOUT, 5000) == 1)
			continue;
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

/* One line "<attack>: ..." to the test. */
static void __attribute__((format(printf, 2, 3)))
say(const struct hostile_ctx *ctx, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n, m;

	n = snprintf(line, sizeof(line), "%s: ", hostile_name);
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		return;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	write_all(ctx->out, line, (size_t)n);
}

/* The verdict of one call that returned -1 with errno e. */
static void
say_failed(const struct hostile_ctx *ctx, const char *call, int e)
{
	say(ctx, "blocked: %s: %s", call, ename(e));
}

/*
 * The verdict of a call that the filter must refuse whatever it is given
 * (bind, listen, ...), tried where it would do nothing: the kernel's own
 * error means the call got through the filter.
 */
static void
say_reached(const struct hostile_ctx *ctx, const char *call, long rv, int e)
{
	if (rv == -1 && filtered(e))
		say_failed(ctx, call, e);
	else if (rv == -1)
		say(ctx, "SUCCEEDED: %s is not filtered: the kernel answered "
		    "%s", call, ename(e));
	else
		say(ctx, "SUCCEEDED: %s is not filtered: it returned %ld",
		    call, rv);
}

/* ------------------------------------------------------------------ */
/* arguments                                                           */

static int
args_parse(char *s, struct hostile_args *a)
{
	char *w, *eq;

	a->n = 0;
	while ((w = strsep(&s, " \t")) != NULL) {
		if (*w == '\0')
			continue;
		if ((eq = strchr(w, '=')) == NULL || a->n == HOSTILE_ARGS_MAX)
			return -1;
		*eq = '\0';
		a->key[a->n] = w;
		a->val[a->n] = eq + 1;
		a->n++;
	}
	return 0;
}

static const char *
arg_get(const struct hostile_args *a, const char *key)
{
	size_t i;

	for (i = 0; i < a->n; i++)
		if (strcmp(a->key[i], key) == 0)
			return a->val[i];
	return NULL;
}

/* A number argument (decimal, or 0x hex), or dflt if absent. */
static long long
arg_num(const struct hostile_args *a, const char *key, long long dflt)
{
	const char *v = arg_get(a, key);

	return v != NULL ? strtoll(v, NULL, 0) : dflt;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode hex into out (at most outlen bytes); return the length or -1. */
static ssize_t
unhex(const char *hex, uint8_t *out, size_t outlen)
{
	size_t n = strlen(hex), i;
	int hi, lo;

	if (n % 2 != 0 || n / 2 > outlen)
		return -1;
	for (i = 0; i < n / 2; i++) {
		if ((hi = hexval(hex[2 * i])) == -1 ||
		    (lo = hexval(hex[2 * i + 1])) == -1)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return (ssize_t)(n / 2);
}

static struct sockaddr_in
loopback(const struct hostile_args *a)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)arg_num(a, "port", 9));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sin;
}

/* ------------------------------------------------------------------ */
/* signals: fcntl, ioctl, kill, tgkill, pidfd                          */

/*
 * fcntl cmd=setown|setown-ex|setsig|async, pid=N or pgrp=N: arm our
 * client socket to signal a sibling or a process group (issue 10, 1).
 */
static int
a_fcntl(const struct hostile_ctx *ctx, const struct hostile_args *a)
{
	const char *cmd = arg_get(a, "cmd");
	long pid = (long)arg_num(a, "pid", 0), pgrp = (long)arg_num(a, "pgrp", 0);
	struct f_owner_ex ex;
	char call[96];
	int rv, fl;

	if (cmd == NULL)
		return -1;
	if (strcmp(cmd, "setown") == 0) {
		snprintf(call, sizeof(call), "fcntl(F_SETOWN, %ld)",
		    pgrp != 0 ? -pgrp : pid);
		say(ctx, "calling %s", call);
		rv = fcntl(ctx->conn, F_SETOWN, pgrp != 0 ? -pgrp : pid);
	} else if (strcmp(cmd, "setown-ex") == 0) {
		ex.type = pgrp != 0 ? F_OWNER_PGRP : F_OWNER_PID;
		ex.pid = (pid_t)(pgrp != 0 ? pgrp : pid);
		snprintf(call, sizeof(call), "fcntl(F_SETOWN_EX, {%s, %d})",
		    pgrp != 0 ? "F_OWNER_PGRP" : "F_OWNER_PID", (int)ex.pid);
		say(ctx, "calling %s", call);
		rv = fcntl(ctx->conn, F_SETOWN_EX, &ex);
	} else if (strcmp(cmd, "setsig") == 0) {
		snprintf(call, sizeof(call), "fcntl(F_SETSIG, SIGCONT)");
		say(ctx, "calling %s", call);
		rv = fcntl(ctx->conn, F_SETSIG, SIGCONT);
	} else if (strcmp(cmd, "async") == 0) {
		snprintf(call, sizeof(call), "fcntl(F_SETFL, O_ASYNC)");
		say(ctx, "calling %s", call);
		if ((rv = fl = fcntl(ctx->conn, F_GETFL)) != -1)
			rv = fcntl(ctx->conn, F_SETFL, fl | O_ASYNC);
	} else
		return -1;
	if (rv == -1) {
		say_failed(ctx, call, errno);
		return 0;
	}
	say(ctx, "SUCCEEDED: %s", call);
	/* disarmed again: nothing may reach the target */
	(void)fcntl(ctx->conn, F_SETOWN, 0);
	(void)fcntl(ctx->conn, F_SETSIG, 0);
	if ((fl = fcntl(ctx->conn, F_GETFL)) != -1)
		(void)fcntl(ctx->conn, F_SETFL, fl & ~O_ASYNC);
	return 0;
}

/* ioctl req=fioasync|fiosetown|siocspgrp, pid=N or pgrp=N. */
static int
a_ioctl(const struct hostile_ctx *ctx, const struct hostile_args *a)
{
	const char *req = arg_get(a, "req");
	long pid = (long)arg_num(a, "pid", 0), pgrp = (long)arg_num(a, "pgrp", 0);
	int v = (int)(pgrp != 0 ? -pgrp : pid), one = 1, zero = 0, rv;
	unsigned long r;
	char call[96];

	if (req == NULL)
		return -1;
	if (strcmp(req, "fioasync") == 0) {
		r = FIOASYNC;
		snprintf(call, sizeof(call), "ioctl(FIOASYNC, 1)");
	} else if (strcmp(req, "fiosetown") == 0) {
		r = FIOSETOWN;
		snprintf(call, sizeof(call), "ioctl(FIOSETOWN, %d)", v);
	} else if (strcmp(req, "siocspgrp") == 0) {
		r = SIOCSPGRP;
		snprintf(call, sizeof(call), "ioctl(SIOCSPGRP, %d)", v);
	} else
		return -1;
	say(ctx, "calling %s", call);
	rv = ioctl(ctx->conn, r, r == FIOASYNC ? &one : &v);
	if (rv == -1) {
		say_failed(ctx, call, errno);
		return 0;
	}
	say(ctx, "SUCCEEDED: %s", call);
	(void)ioctl(ctx->conn, r, &zero);
	return 0;
}

/* kill pid=N or pgrp=N: signal 0, which only asks "may I?". */
static int
a_kill(const struct hostile_ctx *ctx, const struct hostile_args *a)
{
	long pid = (long)arg_num(a, "pid", 0), pgrp = (long)arg_num(a, "pgrp", 0);
	pid_t target = (pid_t)(pgrp != 0 ? -pgrp : pid);
	char call[64];

	if (target == 0)
		return -1;
	snprintf(call, sizeof(call), "kill(%d, 0)", (int)target);
	say(ctx, "calling %s", call);
	if (syscall(SYS_kill, target, 0) == -1)
		say_failed(ctx, call, errno);
	else
		say(ctx, "SUCCEEDED: %s", call);
	return 0;
}

static int
a_tgkill(const struct hostile_ctx *ctx, const struct hostile_args *a)
{
	pid_t pid = (pid_t)arg_num(a, "pid", 0);
	char call[64];

	if (pid <= 0)
		return -1;
	snprintf(call, sizeof(call), "tgkill(%d, %d, 0)", (int)pid, (int)pid);
	say(ctx, "calling %s", call);
	if (syscall(SYS_tgkill, pid, pid, 0) == -1)
		say_failed(ctx, call, errno);
	else
		say(ctx, "SUCCEEDED: %s", call);
	return 0;
}

static int
a_pidfd(const struct hostile_ctx *ctx, const struct hostile_args *a)
{
	pid_t pid = (pid_t)arg_num(a, "pid", 0);
	char call[64];
	long fd;

	if (pid <= 0)
		return -1;
	snprintf(call, sizeof(call), "pidfd_open(%d)", (int)pid);
	say(ctx, "calling %s", call);
	if ((fd = syscall(SYS_pidfd_open, pid, 0)) == -1) {
		say_failed(ctx, call, errno);
		return 0;
	}
	say(ctx, "info: %s gave fd %ld; calling pidfd_send_signal(0)",
	    call, fd);
	if (syscall(SYS_pidfd_send_signal, (int)fd, 0, NULL, 0) == -1)
		say(ctx, "SUCCEEDED: %s (pidfd_send_signal: %s)", call,
		    ename(errno));
	else
		say(ctx, "SUCCEEDED: %s and pidfd_send_signal(0)", call);
	close((int)fd);
	return 0;
}

/* ------------------------------------------------------------------ */
/* another process's memory: ptrace, process_vm_readv                  */

/* ptrace how=attach|seize pid=N. */
static int
a_ptrace(const struct hostile_ctx *ctx, const struct hostile_args *a)
{
	const char *how = arg_get(a, "how");
	pid_t pid = (pid_t)arg_num(a, "pid", 0);
	int seize, status;
	char call[64];

	if (pid <= 0 || how == NULL)
		return -1;
	if (strcmp(how, "attach") != 0 && strcmp(how, "seize") != 0)
		return -1;
	seize = strcmp(how, "seize") == 0;
	snprintf(call, sizeof(call), "ptrace(%s, %d)",
	    seize ? "PTRACE_SEIZE" : "PTRACE_ATTACH", (int)pid);
	say(ctx, "calling %s", call);
	if (ptrace(seize ? PTRACE_SEIZE : PTRACE_ATTACH, pid, NULL, NULL) ==
	    -1) {
		say_failed(ctx, call, errno);
		return 0;
	}
	say(ctx, "SUCCEEDED: %s", call);
	/* let it go; a seized tracee is let go when we exit */
	if (!seize && waitpid(pid, &status, __WALL) == pid)
		(void)ptrace(PTRACE_DETACH, pid, NULL, NULL);
	return 0;
}

/* vmread pid=N [addr=0x...]: by default, our own probe's address. */
static int
a_vmread(const struct hostile_ctx *ctx, const struct hostile_args *a)
{
	pid_t pid = (pid_t)arg_num(a, "pid", 0);
	uintptr_t addr = (uintptr_t)arg_num(a, "addr",
	    (long long)(uintptr_t)hostile_probe);
	char buf[sizeof(hostile_probe)], call[96];
	struct iovec local, remote;
	ssize_t n;

	if (pid <= 0)
		return -1;
	local.iov_base = buf;
	local.iov_len = sizeof(buf);
	remote.iov_base = (void *)addr;
	remote.iov_len = sizeof(buf);
	snprintf(call, sizeof(call), "process_vm_readv(%d, %#lx)", (int)pid,
	    (unsigned long)addr);
	say(ctx, "calling %s", call);
	if ((n = process_vm_readv(pid, &local, 1, &remote, 1, 0)) == -1) {
		say_failed(ctx, call, errno);
		return 0;
	}
	say(ctx, "SUCCEEDED: %s read %zd bytes%s", call, n,
	    n == (ssize_t)sizeof(buf) && memcmp(buf, hostile_probe, n) == 0 ?
	    " (its copy of our probe)" : "");
	return 0;
}

/* ------------------------------------------------------------------ */
/* the network                                                         */

static int
sock_family(const char *s)
{
	static const struct {
		const char	*name;
		int		 v;
	} t[] = { { "inet", AF_INET }, { "inet6", AF_INET6 },
	    { "unix", AF_UNIX }, { "netlink", AF_NETLINK },
	    { "packet", AF_PACKET } };
	size_t i;

	for (i = 0; s != NULL && i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(s, t[i].name) == 0)
			return t[i].v;
	return -1;
}

static int
sock_type(const char *s)
{
	if (s == NULL || strcmp(s, "stream") == 0)
		return SOCK_STREAM;
	if (strcmp(s, "dgram") == 0)
		return SOCK_DGRAM;
	if (strcmp(s, "raw") == 0)
		return SOCK_RAW;
	if (strcmp(s, "seqpacket") == 0)
		return SOCK_SEQPACKET;
	return -1;
}

static int
sock_proto(const char *s)
{
	if (s == NULL)
		return 0;
	if (strcmp(s, "mptcp") == 0)
		return IPPROTO_MPTCP;
	if (strcmp(s, "tcp") == 0)
		return IPPROTO_TCP;
	if (strcmp(s, "udp") == 0)
		return IPPROTO_UDP;
	return (int)strtol(s, NULL, 10);
}

/* socket family=inet|inet6|unix|netlink|packet type=... proto=... */
static int
a_socket(const struct hostile_ctx *ctx, const struct hostile_args *a)
{
	int family = sock_family(arg_get(a, "family"));
	int type = sock_type(arg_get(a, "type"));
	int proto = sock_proto(arg_get(a, "proto"));
	char call[96];
	int fd;

	if (family == -1 || type == -1)
		return -1;
	snprintf(call, sizeof(call), "socket(%s, %s, %d)",
	    arg_get(a, "family"), arg_get(a, "type") ? arg_get(a, "type") :
	    "stream", proto);
	say(ctx, "calling %s", call);
	if ((fd = socket(family, type | SOCK_CLOEXEC, proto)) == -1) {
		say_failed(ctx, call, errno);
		return 0;
	}
	say(ctx, "SUCCEEDED: %s = %d", call, fd);
	close(fd);
	return 0;
}

/* connect port=N: a new TCP connection to 127.0.0.1:N. */
static int
a_connect(const struct hostile_ctx *ctx, const struct hostile_args *a)
{
	struct sockaddr_in sin = loopback(a);
	socklen_t len = sizeof(int);
	char call[96];
	int fd, err = 0;

	snprintf(call, sizeof(call), "socket(AF_INET, SOCK_STREAM)");
	say(ctx, "calling %s", call);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1) {
		say_failed(ctx, call, errno);
		return 0;
	}
	snprintf(call, sizeof(call), "connect(127.0.0.1:%u)",
	    ntohs(sin.sin_port));
	say(ctx, "calling %s", call);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		err = errno;
		if (err == EINPROGRESS && wait_fd(fd, POLLOUT, 3000) == 1 &&
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
			err = errno;
	}
	if (err != 0)
		say_failed(ctx, call, err);
	else
		say(ctx, "SUCCEEDED: %s", call);
	close(fd);
	return 0;
}

/* connect-fd port=N: connect(2) on our connected client socket. */
static int
a_connect_fd(const struct hostile_ctx *ctx, const struct hostile_args *a)
{
	struct sockaddr_in sin = loopback(a);
	long rv;

	say(ctx, "calling connect(client socket, 127.0.0.1:%u)",
	    ntohs(sin.sin_port));
	rv = connect(ctx->conn, (struct sockaddr *)&sin, sizeof(sin));
	say_reached(ctx, "connect(2)", rv, errno);
	return 0;
}

/* bind: bind(2) of our connected client socket to 127.0.0.1:0. */
static int
a_bind(const struct hostile_ctx *ctx, const struct hostile_args *a)
{
	struct sockaddr_in sin;
	long rv;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	say(ctx, "calling bind(client socket, 127.0.0.1:0)");
	rv = bind(ctx->conn, (struct sockaddr *)&sin, sizeof(sin));
	say_reached(ctx, "bind(2)", rv, errno);
	return 0;
}

/* listen: listen(2) on our connected client socket. */
static int
a_listen(const struct hostile_ctx *ctx, const struct hostile_args *a)
{
	long rv;

	say(ctx, "calling listen(client socket, 1)");
	rv = listen(ctx->conn, 1);
	say_reached(ctx, "listen(2)", rv, errno);
	return 0;
}

/*
 * sendto how=sendto|sendmsg port=N: zero bytes with a destination
 * address, on our client socket (TCP ignores it: harmless).
 */
static int
a_sendto(const struct hostile_ctx *ctx, const struct hostile_args *a)
{
	struct sockaddr_in sin = loopback(a);
	const char *how = arg_get(a, "how");
	struct msghdr msg;
	struct iovec iov;
	char byte = 0;
	long rv;

	if (how == NULL || strcmp(how, "sendto") == 0) {
		say(ctx, "calling sendto(client socket, 0 bytes, "
		    "127.0.0.1:%u)", ntohs(sin.sin_port));
		rv = sendto(ctx->conn, &byte, 0, MSG_NOSIGNAL,
		    (struct sockaddr *)&sin, sizeof(sin));
		say_reached(ctx, "sendto(2) with an address", rv, errno);
		return 0;
	}
	if (strcmp(how, "sendmsg") != 0)
		return -1;
	memset(&msg, 0, sizeof(msg));
	iov.iov_base = &byte;
	iov.iov_len = 0;
	msg.msg_name = &sin;
	msg.msg_namelen = sizeof(sin);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	say(ctx, "calling sendmsg(client socket, 0 bytes, 127.0.0.1:%u)",
	    ntohs(sin.sin_port));
	rv = sendmsg(ctx->conn, &msg, MSG_NOSIGNAL);
	say_reached(ctx, "sendmsg(2) with an address", rv, errno);
	return 0;
}

/* ------------------------------------------------------------------ */
/* files                                                               */

/* open path=P how=open|openat|openat2|creat */
static int
a_open(const struct hostile_ctx *ctx, const struct hostile_args *a)
{
	const char *path = arg_get(a, "path"), *how = arg_get(a, "how");
	struct open_how oh;
	char call[256], buf[64];
	ssize_t n;
	long fd;

	if (path == NULL)
		return -1;
	if (how == NULL)
		how = "openat";
	snprintf(call, sizeof(call), "%s(%s)", how, path);
	say(ctx, "calling %s", call);
	if (strcmp(how, "open") == 0)
		fd = syscall(SYS_open, path, O_RDONLY | O_CLOEXEC);
	else if (strcmp(how, "openat") == 0)
		fd = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
	else if (strcmp(how, "openat2") == 0) {
		memset(&oh, 0, sizeof(oh));
		oh.flags = O_RDONLY | O_CLOEXEC;
		fd = syscall(SYS_openat2, AT_FDCWD, path, &oh, sizeof(oh));
	} else if (strcmp(how, "creat") == 0)
		fd = syscall(SYS_openat, AT_FDCWD, path,
		    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	else
		return -1;
	if (fd == -1) {
		say_failed(ctx, call, errno);
		return 0;
	}
	n = read((int)fd, buf, sizeof(buf));
	say(ctx, "SUCCEEDED: %s = %ld, read %zd bytes", call, fd, n);
	close((int)fd);
	return 0;
}

static void
describe_fd(int fd, char *buf, size_t len)
{
	struct stat sb;

	if (fstat(fd, &sb) == -1)
		snprintf(buf, len, "not open (%s)", ename(errno));
	else if (S_ISCHR(sb.st_mode) && major(sb.st_rdev) == 1 &&
	    minor(sb.st_rdev) == 3)
		snprintf(buf, len, "/dev/null (char 1:3)");
	else if (S_ISCHR(sb.st_mode))
		snprintf(buf, len, "a character device %u:%u",
		    major(sb.st_rdev), minor(sb.st_rdev));
	else if (S_ISREG(sb.st_mode))
		snprintf(buf, len, "a regular file");
	else if (S_ISFIFO(sb.st_mode))
		snprintf(buf, len, "a pipe");
	else if (S_ISSOCK(sb.st_mode))
		snprintf(buf, len, "a socket");
	else
		snprintf(buf, len, "mode %#o", (unsigned)sb.st_mode);
}

/* fd2 mark=WORD: write a line with WORD to fd 2. */
static int
a_fd2(const struct hostile_ctx *ctx, const struct hostile_args *a)
{
	const char *mark = arg_get(a, "mark");
	char what[64], line[256];
	ssize_t n;
	int len;

	if (mark == NULL)
		return -1;
	/* what a parent's line looks like: a forged one */
	len = snprintf(line, sizeof(line), "parent: forged by a child: %s\n",
	    mark);
	say(ctx, "calling write(2, \"%s\")", mark);
	if ((n = write(STDERR_FILENO, line, (size_t)len)) == -1) {
		say_failed(ctx, "write(2)", errno);
		return 0;
	}
	say(ctx, "info: wrote %zd bytes; calling fstat(2)", n);
	describe_fd(STDERR_FILENO, what, sizeof(what));
	if (strncmp(what, "/dev/null", 9) == 0)
		say(ctx, "blocked: fd 2 is /dev/null");
	else
		say(ctx, "SUCCEEDED: fd 2 is %s", what);
	return 0;
}

/* ------------------------------------------------------------------ */
/* the log channel                                                     */

/*
 * flood lines=N mark=WORD: N log lines to the parent as fast as it takes
 * them.  The verdict is the parent's log, not ours.
 */
static int
a_flood(const struct hostile_ctx *ctx, const struct hostile_args *a)
{
	long long lines = arg_num(a, "lines", 100000), i;
	const char *mark = arg_get(a, "mark"), *why = "all sent";
	char msg[sizeof(struct msg_hdr) + sizeof(struct log_msg) + 128];
	const size_t pre = sizeof(struct msg_hdr) + sizeof(struct log_msg);
	struct log_msg lm = { .level = LOG_LEVEL_WARN };
	struct msg_hdr hdr = { .type = LOG_MSG_TYPE };
	struct timespec t0;
	ssize_t n;
	int len;

	if (mark == NULL || ctx->parentfd == -1)
		return -1;
	memcpy(msg + sizeof(hdr), &lm, sizeof(lm));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	say(ctx, "calling send(parent channel) %lld times", lines);
	for (i = 0; i < lines; i++) {
		len = snprintf(msg + pre, sizeof(msg) - pre, "flood %s %lld",
		    mark, i);
		hdr.len = (uint32_t)(sizeof(lm) + (size_t)len);
		memcpy(msg, &hdr, sizeof(hdr));
		for (;;) {
			n = send(ctx->parentfd, msg, pre + (size_t)len,
			    MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n != -1)
				break;
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN ||
			    wait_fd(ctx->parentfd, POLLOUT,
			    HOSTILE_FLOOD_STALL_MS) != 1)
				break;
		}
		if (n == -1) {
			why = errno == EAGAIN ? "the channel stayed full" :
			    ename(errno);
			break;
		}
	}
	say(ctx, "info: sent %lld of %lld lines in %ld ms: %s", i, lines,
	    ms_since(&t0), why);
	return 0;
}

/*
 * frame how=lie|type|body|ended-range|ended-twice: one message to the
 * parent whose framing lies: a header that claims more bytes than came, a
 * type the parent does not know, or a message that must be empty with a
 * body; or a CHAN_ENDED whose end is out of its set, or a second
 * CHAN_ENDED after a good one.  The verdict is the parent's log (the
 * channel is closed), not ours.
 */
static int
a_frame_ended(const struct hostile_ctx *ctx, const char *how)
{
	uint8_t msg[sizeof(struct msg_hdr) + sizeof(struct chan_ended)];
	struct msg_hdr hdr = { .type = CHAN_ENDED, .len = sizeof(struct
	    chan_ended) };
	struct chan_ended m;
	int i, n = strcmp(how, "ended-twice") == 0 ? 2 : 1;

	memset(&m, 0, sizeof(m));
	m.end = n == 2 ? CHAN_END_CLOSED : 99;
	m.from_client = m.to_client = UINT64_MAX;	/* capped, not trusted */
	memcpy(msg, &hdr, sizeof(hdr));
	memcpy(msg + sizeof(hdr), &m, sizeof(m));
	say(ctx, "calling send(parent channel, %s)", how);
	for (i = 0; i < n; i++)
		say(ctx, "info: %s", send(ctx->parentfd, msg, sizeof(msg),
		    MSG_NOSIGNAL) == (ssize_t)sizeof(msg) ? "sent" :
		    ename(errno));
	return 0;
}

static int
a_frame(const struct hostile_ctx *ctx, const struct hostile_args *a)
{
	const char *how = arg_get(a, "how");
	uint8_t msg[sizeof(struct msg_hdr) + 4] = { 0 };
	struct msg_hdr hdr = { .type = CHAN_ACCEPTED, .len = 4 };
	ssize_t n;

	if (how == NULL || ctx->parentfd == -1)
		return -1;
	if (strncmp(how, "ended-", 6) == 0)
		return a_frame_ended(ctx, how);
	if (strcmp(how, "lie") == 0)
		hdr.len = 100;
	else if (strcmp(how, "type") == 0)
		hdr.type = 77;
	else if (strcmp(how, "body") != 0)
		return -1;
	if (hdr.type == 77)
		hdr.len = 4;
	memcpy(msg, &hdr, sizeof(hdr));
	say(ctx, "calling send(parent channel, %s)", how);
	n = send(ctx->parentfd, msg, sizeof(msg), MSG_NOSIGNAL);
	say(ctx, "info: %s", n == (ssize_t)sizeof(msg) ? "sent" :
	    ename(errno));
	return 0;
}

/*
 * route route=R alpn=P: a CHAN_CONNECT naming route R and protocol P
 * (proxy/route.h), whether or not the child's listener has them; the
 * verdict is the parent's answer: "SUCCEEDED: connected backend N",
 * "blocked: failed: ERRNO", or "blocked: channel closed" (the parent's
 * log says why).
 */
static int
a_route(const struct hostile_ctx *ctx, const struct hostile_args *a)
{
	const char *r = arg_get(a, "route"), *p = arg_get(a, "alpn");
	uint8_t msg[sizeof(struct msg_hdr) + sizeof(struct chan_connect)];
	uint8_t rbuf[sizeof(struct msg_hdr) + 64];
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct msg_hdr hdr = { .type = CHAN_CONNECT,
	    .len = sizeof(struct chan_connect) };
	struct chan_connect m;
	struct chan_connected ok;
	struct chan_connect_failed f;
	struct iovec iov = { rbuf, sizeof(rbuf) };
	struct msghdr mh;
	ssize_t n;

	if (r == NULL || p == NULL || ctx->parentfd == -1)
		return -1;
	m.route = (uint32_t)strtoul(r, NULL, 10);
	m.alpn = (uint32_t)strtoul(p, NULL, 10);
	memcpy(msg, &hdr, sizeof(hdr));
	memcpy(msg + sizeof(hdr), &m, sizeof(m));
	say(ctx, "calling send(parent channel, CHAN_CONNECT route %u alpn %u)",
	    m.route, m.alpn);
	if (send(ctx->parentfd, msg, sizeof(msg), MSG_NOSIGNAL) == -1) {
		say(ctx, "blocked: send: %s", ename(errno));
		return 0;
	}
	for (;;) {
		if (wait_fd(ctx->parentfd, POLLIN, HOSTILE_REPLY_MS) != 1) {
			say(ctx, "blocked: no answer");
			return 0;
		}
		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		n = recvmsg(ctx->parentfd, &mh, 0);
		if (n <= 0) {
			say(ctx, "blocked: channel closed");
			return 0;
		}
		if ((size_t)n < sizeof(hdr))
			continue;
		memcpy(&hdr, rbuf, sizeof(hdr));
		if (hdr.type == CHAN_CONNECTED &&
		    (size_t)n == sizeof(hdr) + sizeof(ok)) {
			memcpy(&ok, rbuf + sizeof(hdr), sizeof(ok));
			say(ctx, "SUCCEEDED: connected backend %u", ok.backend);
			return 0;
		}
		if (hdr.type == CHAN_CONNECT_FAILED &&
		    (size_t)n == sizeof(hdr) + sizeof(f)) {
			memcpy(&f, rbuf + sizeof(hdr), sizeof(f));
			say(ctx, "blocked: failed: %s", ename((int)f.error));
			return 0;
		}
	}
}

/* ------------------------------------------------------------------ */
/* keyproc                                                             */

static uint32_t
kp_alg_byname(const char *s)
{
	static const struct {
		const char	*name;
		uint32_t	 alg;
	} t[] = {
		{ "rsa_pkcs1_sha256", KP_ALG_RSA_PKCS1_SHA256 },
		{ "rsa_pss_sha256", KP_ALG_RSA_PSS_SHA256 },
		{ "ecdsa_sha256", KP_ALG_ECDSA_SHA256 },
		{ "ecdsa_sha384", KP_ALG_ECDSA_SHA384 },
	};
	size_t i;

	for (i = 0; s != NULL && i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(s, t[i].name) == 0)
			return t[i].alg;
	return 0;
}

static void
fill_random(uint8_t *p, size_t n)
{
	ssize_t r;

	while (n > 0) {
		if ((r = getrandom(p, n, 0)) <= 0)
			continue;
		p += r;
		n -= (size_t)r;
	}
}

/* A well-formed input of the shape "tls13" or "tls12"; its length. */
static size_t
kp_tbs(const char *shape, uint8_t *tbs)
{
	size_t n;

	if (shape == NULL || strcmp(shape, "tls13") == 0) {
		/* RFC 8446 4.4.3, with a SHA-256 transcript hash */
		memset(tbs, 0x20, POLICY_TLS13_PAD);
		memcpy(tbs + POLICY_TLS13_PAD, POLICY_TLS13_SERVER,
		    POLICY_TLS13_CTXLEN);
		n = POLICY_TLS13_PAD + POLICY_TLS13_CTXLEN;
		tbs[n++] = 0;
		fill_random(tbs + n, 32);
		return n + 32;
	}
	if (strcmp(shape, "tls12") == 0) {
		/* RFC 8422 5.4: randoms, named_curve x25519, the point */
		fill_random(tbs, 64);
		tbs[64] = 3;
		tbs[65] = 0;
		tbs[66] = 29;
		tbs[67] = 32;
		fill_random(tbs + 68, 32);
		return 100;
	}
	return 0;
}

/*
 * One signature request on kpfd, an answer awaited for up to ms.  Return
 * 1 signed, 0 refused (how in how).
 */
static int
kp_ask(int kpfd, uint32_t key, uint32_t alg, const char *shape, int ms,
    char *how, size_t howlen)
{
	static uint32_t id;
	uint8_t buf[sizeof(struct msg_hdr) + sizeof(struct kp_sign_req) +
	    KP_TBS_MAX];
	uint8_t rbuf[sizeof(struct msg_hdr) + sizeof(struct kp_sign_rep) +
	    KP_SIG_MAX];
	const size_t pre = sizeof(struct msg_hdr) + sizeof(struct kp_sign_req);
	struct kp_sign_req req;
	struct kp_sign_rep rep;
	struct msg_hdr hdr;
	ssize_t n;

	memset(&req, 0, sizeof(req));
	req.id = ++id;
	req.key = key;
	req.alg = alg;
	req.tbslen = (uint32_t)kp_tbs(shape, buf + pre);
	hdr.type = KP_SIGN;
	hdr.len = (uint32_t)(sizeof(req) + req.tbslen);
	memcpy(buf, &hdr, sizeof(hdr));
	memcpy(buf + sizeof(hdr), &req, sizeof(req));
	if (send(kpfd, buf, pre + req.tbslen,
	    MSG_NOSIGNAL | MSG_DONTWAIT) == -1) {
		snprintf(how, howlen, "send: %s", ename(errno));
		return 0;
	}
	if (wait_fd(kpfd, POLLIN, ms) != 1) {
		snprintf(how, howlen, "no answer in %d ms", ms);
		return 0;
	}
	n = recv(kpfd, rbuf, sizeof(rbuf), MSG_DONTWAIT);
	if (n == 0 || (n == -1 && errno == ECONNRESET)) {
		snprintf(how, howlen, "keyproc closed the channel");
		return 0;
	}
	if (n < (ssize_t)(sizeof(hdr) + sizeof(rep))) {
		snprintf(how, howlen, "recv: %s", n == -1 ? ename(errno) :
		    "short answer");
		return 0;
	}
	memcpy(&rep, rbuf + sizeof(hdr), sizeof(rep));
	if (rep.status != KP_OK || rep.siglen == 0) {
		snprintf(how, howlen, "keyproc answered status %u",
		    rep.status);
		return 0;
	}
	snprintf(how, howlen, "a %u-byte signature (%s input)", rep.siglen,
	    shape != NULL ? shape : "tls13");
	return 1;
}

/*
 * sign alg=NAME [key=0] [input=tls13|tls12] [count=1] [wait=SECONDS]:
 * after wait seconds, count requests, one verdict each ("#1: ...").
 */
static int
a_sign(const struct hostile_ctx *ctx, const struct hostile_args *a)
{
	uint32_t alg = kp_alg_byname(arg_get(a, "alg"));
	long long count = arg_num(a, "count", 1), wait = arg_num(a, "wait", 0);
	const char *shape = arg_get(a, "input");
	char how[160];
	long long i;

	if (alg == 0 || ctx->kpfd == -1 || (shape != NULL &&
	    strcmp(shape, "tls13") != 0 && strcmp(shape, "tls12") != 0))
		return -1;
	if (wait > 0) {
		/* a child ended while it waits is stopped too */
		say(ctx, "calling keyproc after a wait of %lld s", wait);
		sleep_ms(wait * 1000);
	}
	for (i = 1; i <= count; i++) {
		say(ctx, "calling keyproc: #%lld: %s, %s input", i,
		    arg_get(a, "alg"), shape != NULL ? shape : "tls13");
		if (kp_ask(ctx->kpfd, (uint32_t)arg_num(a, "key", 0), alg,
		    shape, HOSTILE_REPLY_MS, how, sizeof(how)))
			say(ctx, "SUCCEEDED: #%lld: %s", i, how);
		else
			say(ctx, "blocked: #%lld: %s", i, how);
	}
	return 0;
}

void
hostile_preaccept(const char *listener, int kpfd)
{
	int ok;

	if (listener == NULL || strcmp(listener, HOSTILE_PREACCEPT) != 0)
		return;
	ok = kp_ask(kpfd, 0, KP_ALG_ECDSA_SHA256, "tls13", HOSTILE_EARLY_MS,
	    hostile_early_how, sizeof(hostile_early_how));
	hostile_early = ok;
}

/* preaccept: what the request made before accept got. */
static int
a_preaccept(const struct hostile_ctx *ctx, const struct hostile_args *a)
{
	char how[160];

	if (hostile_early == -1) {
		say(ctx, "info: not tried: the listener is not \"%s\"",
		    HOSTILE_PREACCEPT);
		return 0;
	}
	say(ctx, "calling keyproc: before accept (reported now)");
	if (hostile_early)
		say(ctx, "SUCCEEDED: before accept: %s", hostile_early_how);
	else
		say(ctx, "blocked: before accept: %s", hostile_early_how);
	/* Answered only now that we hold a connection: that is fine. */
	if (ctx->kpfd != -1 && wait_fd(ctx->kpfd, POLLIN, 500) == 1 &&
	    recv(ctx->kpfd, how, sizeof(how), MSG_DONTWAIT) > 0)
		say(ctx, "info: the early request was answered after the "
		    "accept");
	return 0;
}

/* ------------------------------------------------------------------ */
/* memory                                                              */

static sigjmp_buf	scan_jmp;

static void
scan_fault(int sig)
{
	siglongjmp(scan_jmp, 1);
}

/*
 * memmem(3), but read as it is: under make sanitize, ASan's memmem would
 * stop at the first redzone of the heap.
 */
static const uint8_t * __attribute__((no_sanitize("address")))
scan_find(const uint8_t *p, size_t len, const uint8_t *m, size_t mlen)
{
	size_t i, j;

	for (i = 0; i + mlen <= len; i++) {
		if (p[i] != m[0])
			continue;
		for (j = 1; j < mlen && p[i + j] == m[j]; j++)
			;
		if (j == mlen)
			return p + i;
	}
	return NULL;
}

/* Look for the markers not yet found in len bytes at p; -1 on a fault. */
static int
scan_chunk(const uint8_t *p, size_t len)
{
	struct hostile_mark *m;
	size_t i;

	if (sigsetjmp(scan_jmp, 1) != 0)
		return -1;
	for (i = 0; i < hostile_nmarks; i++) {
		m = &hostile_marks[i];
		if (m->at == NULL)
			m->at = scan_find(p, len, m->buf, m->len);
	}
	return 0;
}

/* Scan [start, end) in chunks that overlap by a marker's length. */
static void
scan_range(uintptr_t start, uintptr_t end, size_t *bytes, size_t *faults)
{
	uintptr_t pos;
	size_t len;

	for (pos = start; pos < end; pos += HOSTILE_SCAN_CHUNK) {
		len = end - pos;
		if (len > HOSTILE_SCAN_CHUNK + HOSTILE_MARK_MAX)
			len = HOSTILE_SCAN_CHUNK + HOSTILE_MARK_MAX;
		if (scan_chunk((const uint8_t *)pos, len) == -1)
			(*faults)++;
		else
			*bytes += len < HOSTILE_SCAN_CHUNK ? len :
			    HOSTILE_SCAN_CHUNK;
	}
}

/* Every range but the markers' own storage. */
static void
scan_ranges(const char *ranges, size_t *nranges, size_t *bytes,
    size_t *faults)
{
	uintptr_t xs = (uintptr_t)hostile_marks,
	    xe = xs + sizeof(hostile_marks), s, e;
	const char *p = ranges;
	char *end;

	while (*p != '\0') {
		s = (uintptr_t)strtoull(p, &end, 16);
		if (*end != '-')
			return;
		e = (uintptr_t)strtoull(end + 1, &end, 16);
		/* a sanitizer's shadow: terabytes of nothing */
		if (e > s && e - s > HOSTILE_RANGE_MAX)
			(*faults)++;
		else if (e > s) {
			(*nranges)++;
			if (xe <= s || xs >= e)
				scan_range(s, e, bytes, faults);
			else {
				if (xs > s)
					scan_range(s, xs, bytes, faults);
				if (xe < e)
					scan_range(xe, e, bytes, faults);
			}
		}
		p = *end == ',' ? end + 1 : end;
		if (*end != ',')
			return;
	}
}

/* mark=LABEL:HEX, each into hostile_marks. */
static int
scan_marks(const struct hostile_args *a)
{
	struct hostile_mark *m;
	const char *colon;
	ssize_t n;
	size_t i;

	hostile_nmarks = 0;
	for (i = 0; i < a->n; i++) {
		if (strcmp(a->key[i], "mark") != 0)
			continue;
		if (hostile_nmarks == HOSTILE_MARKS_MAX ||
		    (colon = strchr(a->val[i], ':')) == NULL)
			return -1;
		m = &hostile_marks[hostile_nmarks];
		memset(m, 0, sizeof(*m));
		snprintf(m->label, sizeof(m->label), "%.*s",
		    (int)(colon - a->val[i]), a->val[i]);
		if ((n = unhex(colon + 1, m->buf, sizeof(m->buf))) <= 0)
			return -1;
		m->len = (size_t)n;
		hostile_nmarks++;
	}
	return hostile_nmarks > 0 ? 0 : -1;
}

/*
 * memscan ranges=START-END,... mark=LABEL:HEX...: look for each marker
 * in the readable memory the test listed (from /proc/PID/maps, which the
 * child cannot read itself), faults skipped.
 */
static int
a_memscan(const struct hostile_ctx *ctx, const struct hostile_args *a)
{
	const char *ranges = arg_get(a, "ranges");
	struct sigaction sa, osegv, obus;
	size_t i, nranges = 0, bytes = 0, faults = 0;

	if (ranges == NULL || scan_marks(a) == -1)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = scan_fault;
	sa.sa_flags = SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	say(ctx, "calling scan of the listed ranges");
	(void)sigaction(SIGSEGV, &sa, &osegv);
	(void)sigaction(SIGBUS, &sa, &obus);
	scan_ranges(ranges, &nranges, &bytes, &faults);
	(void)sigaction(SIGSEGV, &osegv, NULL);
	(void)sigaction(SIGBUS, &obus, NULL);
	say(ctx, "info: scanned %zu bytes in %zu ranges, %zu chunks or "
	    "ranges skipped", bytes, nranges, faults);
	for (i = 0; i < hostile_nmarks; i++) {
		if (hostile_marks[i].at != NULL)
			say(ctx, "found %s at %p", hostile_marks[i].label,
			    hostile_marks[i].at);
		else
			say(ctx, "absent %s", hostile_marks[i].label);
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* dispatch                                                            */

static const struct hostile_attack {
	const char	*name;
	int		(*fn)(const struct hostile_ctx *,
			    const struct hostile_args *);
} hostile_attacks[] = {
	{ "bind", a_bind },
	{ "connect", a_connect },
	{ "connect-fd", a_connect_fd },
	{ "fcntl", a_fcntl },
	{ "fd2", a_fd2 },
	{ "flood", a_flood },
	{ "frame", a_frame },
	{ "ioctl", a_ioctl },
	{ "kill", a_kill },
	{ "listen", a_listen },
	{ "memscan", a_memscan },
	{ "open", a_open },
	{ "pidfd", a_pidfd },
	{ "preaccept", a_preaccept },
	{ "ptrace", a_ptrace },
	{ "route", a_route },
	{ "sendto", a_sendto },
	{ "sign", a_sign },
	{ "socket", a_socket },
	{ "tgkill", a_tgkill },
	{ "vmread", a_vmread },
};

int
hostile_run(const struct hostile_ctx *ctx, const char *attack, char *args)
{
	struct hostile_args a;
	size_t i;

	for (i = 0; i < sizeof(hostile_attacks) / sizeof(hostile_attacks[0]);
	    i++) {
		if (strcmp(attack, hostile_attacks[i].name) != 0)
			continue;
		hostile_name = hostile_attacks[i].name;
		if (args_parse(args, &a) == -1 ||
		    hostile_attacks[i].fn(ctx, &a) == -1) {
			say(ctx, "error: bad arguments");
			return -1;
		}
		return 0;
	}
	say(ctx, "error: unknown attack \"%s\"", attack);
	return -1;
}

/* ------------------------------------------------------------------ */
/* in the child: the trigger and the conversation                      */

/*
 * Do the client's first bytes (peeked, not read) begin the trigger?  A
 * TLS client's first byte, 0x16, answers at once; a silent client is
 * given a second.
 */
static int
hostile_triggered(int fd)
{
	char buf[sizeof(HOSTILE_TRIGGER) - 1];
	struct timespec t0;
	ssize_t n;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (ms_since(&t0) < 1000) {
		n = recv(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
		if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR))
			return 0;
		if (n > 0 && memcmp(buf, HOSTILE_TRIGGER, (size_t)n) != 0)
			return 0;
		if (n == (ssize_t)sizeof(buf))
			return 1;
		/* a part of the trigger, or nothing yet */
		if (n > 0)
			sleep_ms(10);
		else
			(void)wait_fd(fd, POLLIN, 100);
	}
	return 0;
}

/* Read one line (without its '\n') within ms; 0 or -1. */
static int
read_line(int fd, char *buf, size_t len, int ms)
{
	struct timespec t0;
	size_t n = 0;
	ssize_t r;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (n < len - 1) {
		r = read(fd, buf + n, 1);
		if (r == 1 && buf[n] == '\n') {
			buf[n] = '\0';
			return 0;
		}
		if (r == 1) {
			n++;
			continue;
		}
		if (r == 0 || (errno != EAGAIN && errno != EINTR))
			return -1;
		if (ms_since(&t0) > ms ||
		    wait_fd(fd, POLLIN, ms - (int)ms_since(&t0)) == -1)
			return -1;
	}
	return -1;
}

void
hostile_accepted(int cfd, int kpfd, int parentfd)
{
	static char trigger[256], go[HOSTILE_LINE_MAX];
	struct hostile_ctx ctx = { .out = cfd, .conn = cfd, .kpfd = kpfd,
	    .parentfd = parentfd };
	char buf[256];

	if (!hostile_triggered(cfd))
		return;
	if (read_line(cfd, trigger, sizeof(trigger), 5000) == -1)
		_exit(1);
	say(&ctx, "hello %d", (int)getpid());
	if (read_line(cfd, go, sizeof(go), 30000) == -1 ||
	    strncmp(go, "go", 2) != 0)
		_exit(1);
	(void)hostile_run(&ctx, trigger + strlen(HOSTILE_TRIGGER), go + 2);
	hostile_name = "hostile";
	say(&ctx, "done");
	/* let the test read everything before the connection goes */
	(void)shutdown(cfd, SHUT_WR);
	while (wait_fd(cfd, POLLIN, 2000) == 1 && read(cfd, buf,
	    sizeof(buf)) > 0)
		;
	_exit(0);
}
