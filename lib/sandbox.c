/*
 * Privilege drop and seccomp allow-lists: see sandbox.h.
 */
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>

#include <netinet/in.h>

#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/sandbox.h"
#include "lib/util.h"
#include "lib/wire.h"

/*
 * System calls every sandboxed role needs: memory, time, exit, its own
 * signal handling, I/O on descriptors it has; fcntl with some commands
 * only (sandbox_allow_fcntl()).  Never in any list, so that no sandboxed
 * process can reach another: kill, tkill, tgkill, rt_sigqueueinfo,
 * rt_tgsigqueueinfo, pidfd_open, pidfd_send_signal, pidfd_getfd, ptrace,
 * process_vm_readv, process_vm_writev, ioctl, setpgid, setsid
 * (tests/child.bats tries each under the filter).
 */
static const int sandbox_common[] = {
	SCMP_SYS(brk), SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mremap),
	SCMP_SYS(madvise), SCMP_SYS(mprotect), SCMP_SYS(futex),
	SCMP_SYS(clock_gettime), SCMP_SYS(gettimeofday), SCMP_SYS(getrandom),
	SCMP_SYS(getpid), SCMP_SYS(gettid),
	SCMP_SYS(exit), SCMP_SYS(exit_group), SCMP_SYS(rt_sigreturn),
	SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigaction),
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev),
	SCMP_SYS(close), SCMP_SYS(newfstatat), SCMP_SYS(fstat),
	SCMP_SYS(epoll_create1), SCMP_SYS(epoll_ctl), SCMP_SYS(epoll_wait),
	SCMP_SYS(epoll_pwait), SCMP_SYS(poll), SCMP_SYS(ppoll),
	SCMP_SYS(recvmsg), SCMP_SYS(recvfrom),
	SCMP_SYS(sigaltstack),	/* the sanitizers' _exit() (make sanitize) */
	SCMP_SYS(restart_syscall),	/* after SIGSTOP/SIGCONT, a freeze */
};

/*
 * A connection child: accept4 its client, shutdown for half-close,
 * getsockopt for SO_TYPE of the backend socket the parent hands over,
 * setsockopt for the client's TCP_NODELAY, getsockname for the address
 * its client reached (the PROXY header to its backend).  No socket, connect, bind,
 * listen or sendmsg: its backend is connected by the connector, and it
 * sends only with send(2) (sendto without an address, in the common
 * list).  Everything else it does is in the common list (strace of every
 * kind of connection: tests/connector.bats).
 */
static const int sandbox_child[] = {
	SCMP_SYS(accept4), SCMP_SYS(shutdown),
	SCMP_SYS(getsockopt), SCMP_SYS(setsockopt),
	SCMP_SYS(getsockname),	/* the address a client reached: PROXY */
};

/*
 * keyproc: only its channels, received over the control channel.  It needs
 * nothing beyond the common list: strace -f over the kpdriver policy run
 * shows recvmsg, sendmsg, sendto (log lines), epoll_wait, epoll_ctl, fcntl,
 * close, getpid (libcrypto's fork check), futex and exit_group after the
 * filter is in.  recvmsg and sendmsg repeat the two calls it lives on, so
 * that the list says what keyproc does.
 */
static const int sandbox_keyproc[] = {
	SCMP_SYS(recvmsg), SCMP_SYS(sendmsg),
};

/*
 * The connector: a nonblocking connect(2) per request (socket(2) only for
 * TCP and UNIX streams, below), getsockopt for SO_ERROR, setsockopt for
 * TCP_NODELAY, sendmsg to hand the socket to the parent.  No open, no
 * exec, no fork; it reads nothing from the sockets it makes.
 */
static const int sandbox_connector[] = {
	SCMP_SYS(connect), SCMP_SYS(getsockopt), SCMP_SYS(setsockopt),
	SCMP_SYS(recvmsg), SCMP_SYS(sendmsg),
};

/*
 * A spawner: what it does once set up (fork a child: socketpair, clone;
 * answer the parent: sendmsg, recvmsg; its log lines: sendto; close), and
 * what a child does under the spawner's filter before it installs its own
 * (strace -f of every kind of connection, tests/spawner.bats): close the
 * spawner's descriptors (close_range), set its name (prctl), make
 * libevent's base (epoll_create1, pipe2, and get[e]uid/get[e]gid for its
 * set-uid check), chroot and chdir, setgroups, setresgid, setresuid (and
 * setuid, setresuid again: the check that root cannot be regained),
 * setrlimit (prlimit64), prctl (dumpable, no_new_privs) and its own
 * filter (prctl); setsid, for a child alone in its session.  Filters
 * stack: everything a child does for the rest of its life must pass this
 * one too, so sandbox_rules() adds the child's list to it.  Arguments are
 * checked where a register holds them: clone only as CLONE_PARENT |
 * SIGCHLD (no clone3: its flags are in memory), socketpair only for
 * AF_UNIX SOCK_SEQPACKET, prctl only with the options below (dumpable
 * only ever set to 0), prlimit64 only on the caller itself.
 */
static const int sandbox_spawner[] = {
	SCMP_SYS(close_range), SCMP_SYS(pipe2),
	SCMP_SYS(getuid), SCMP_SYS(geteuid), SCMP_SYS(getgid),
	SCMP_SYS(getegid),
	SCMP_SYS(chroot), SCMP_SYS(chdir),
	SCMP_SYS(setgroups), SCMP_SYS(setresgid), SCMP_SYS(setresuid),
	SCMP_SYS(setuid), SCMP_SYS(setsid),
	SCMP_SYS(recvmsg), SCMP_SYS(sendmsg),
};

/*
 * The metrics process: the common list (poll, read, write, recvmsg for
 * the page's memfd, send for its requests, fstat of the memfd) and
 * accept4 on its one listening socket, METRICS_LISTEN_FD (argument
 * checked).  No open, socket, connect, bind, listen,
 * sendmsg or setsockopt.
 */
static const struct {
	int		 option;
	long		 arg;		/* -1: any */
} sandbox_spawner_prctl[] = {
	{ PR_SET_NAME, -1 },
	{ PR_SET_DUMPABLE, 0 },
	{ PR_SET_NO_NEW_PRIVS, 1 },
	{ PR_SET_SECCOMP, SECCOMP_MODE_FILTER },
};

static int
sandbox_setlimit(int resource, rlim_t value)
{
	struct rlimit rl;

	rl.rlim_cur = rl.rlim_max = value;
	return setrlimit(resource, &rl);
}

int
sandbox_drop(const char *root, uid_t uid, gid_t gid, size_t nofile,
    char *err, size_t errlen)
{
	const char *what;

	what = "chroot";
	if (root != NULL && (chroot(root) == -1 || chdir("/") == -1))
		goto err;
	what = "setgroups";
	if (setgroups(1, &gid) == -1)
		goto err;
	what = "setresgid";
	if (setresgid(gid, gid, gid) == -1)
		goto err;
	what = "setresuid";
	if (setresuid(uid, uid, uid) == -1)
		goto err;
	what = "privileges still regainable";
	errno = EPERM;
	if (uid != 0 && (setuid(0) != -1 || seteuid(0) != -1))
		goto err;
	what = "prctl";
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		goto err;
	what = "setrlimit";
	if (sandbox_setlimit(RLIMIT_NPROC, 0) == -1 ||
	    sandbox_setlimit(RLIMIT_CORE, 0) == -1 ||
	    (nofile != 0 && sandbox_setlimit(RLIMIT_NOFILE, (rlim_t)nofile) ==
	    -1))
		goto err;
	return 0;
err:
	snprintf(err, errlen, "sandbox: %s: %s", what, strerror(errno));
	return -1;
}

int
sandbox_limits(size_t memory, unsigned int cpu, char *err, size_t errlen)
{
	struct rlimit rl;

#ifndef __SANITIZE_ADDRESS__
	/* AddressSanitizer reserves terabytes of shadow memory at start:
	 * under make sanitize, RLIMIT_AS would fail every allocation. */
	if (sandbox_setlimit(RLIMIT_AS, (rlim_t)memory) == -1)
		goto err;
#endif
	/* SIGXCPU at the soft limit (the parent logs the signal's name),
	 * SIGKILL at the hard one should SIGXCPU be ignored. */
	rl.rlim_cur = (rlim_t)cpu;
	rl.rlim_max = (rlim_t)cpu + SANDBOX_CPU_GRACE;
	if (setrlimit(RLIMIT_CPU, &rl) == -1)
		goto err;
	return 0;
err:
	snprintf(err, errlen, "sandbox: setrlimit: %s", strerror(errno));
	return -1;
}

int
sandbox_keep_caps(const int *keep, size_t nkeep, char *err, size_t errlen)
{
	struct __user_cap_header_struct hdr;
	struct __user_cap_data_struct data[2];
	const char *what;
	uint64_t mask = 0;
	size_t i;
	int cap, in;

	for (i = 0; i < nkeep; i++)
		mask |= (uint64_t)1 << keep[i];
	/* PR_CAPBSET_READ fails past the last capability the kernel has. */
	what = "cannot drop from the bounding set (needs CAP_SETPCAP)";
	for (cap = 0; (in = prctl(PR_CAPBSET_READ, cap, 0, 0, 0)) >= 0; cap++)
		if (in && (mask & ((uint64_t)1 << cap)) == 0 &&
		    prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == -1)
			goto err;
	what = "cannot clear the ambient set";
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) == -1 &&
	    errno != EINVAL)
		goto err;
	memset(&hdr, 0, sizeof(hdr));
	memset(data, 0, sizeof(data));
	hdr.version = _LINUX_CAPABILITY_VERSION_3;
	data[0].effective = data[0].permitted = (uint32_t)mask;
	data[1].effective = data[1].permitted = (uint32_t)(mask >> 32);
	what = "capset";
	if (syscall(SYS_capset, &hdr, data) == -1)
		goto err;
	what = "prctl";
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 ||
	    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		goto err;
	return 0;
err:
	snprintf(err, errlen, "sandbox: %s: %s", what, strerror(errno));
	return -1;
}

static int
sandbox_allow(scmp_filter_ctx ctx, const int *calls, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, calls[i], 0) < 0)
			return -1;
	return 0;
}

/* send(2), which is sendto(2) without an address: never to an address. */
static int
sandbox_allow_send(scmp_filter_ctx ctx)
{
	return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(sendto), 1,
	    SCMP_A4(SCMP_CMP_EQ, 0)) < 0 ? -1 : 0;
}

/*
 * socket(2) only for a stream: TCP over IPv4 or IPv6 (protocol 0 or
 * IPPROTO_TCP, so no MPTCP or SCTP), or a UNIX stream (protocol 0).  No
 * flags but SOCK_NONBLOCK and SOCK_CLOEXEC.  No raw, packet or netlink.
 */
static int
sandbox_allow_stream_socket(scmp_filter_ctx ctx)
{
	static const struct {
		int	family, protocol;
	} ok[] = {
		{ AF_INET, 0 }, { AF_INET, IPPROTO_TCP },
		{ AF_INET6, 0 }, { AF_INET6, IPPROTO_TCP },
		{ AF_UNIX, 0 },
	};
	const scmp_datum_t flags = SOCK_NONBLOCK | SOCK_CLOEXEC;
	size_t i;

	for (i = 0; i < NELEM(ok); i++)
		if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 3,
		    SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)ok[i].family),
		    SCMP_A1(SCMP_CMP_MASKED_EQ, ~flags & 0xffffffffULL,
		    SOCK_STREAM),
		    SCMP_A2(SCMP_CMP_EQ, (scmp_datum_t)ok[i].protocol)) < 0)
			return -1;
	return 0;
}

/*
 * fcntl(2), for every role: F_GETFL, and F_SETFL without O_ASYNC (the
 * child sets O_NONBLOCK on a received backend socket, keyproc on its
 * channels; strace -f of every kind of connection shows nothing else).
 * Not F_SETOWN, F_SETOWN_EX or F_SETSIG: with O_ASYNC they aim a signal
 * of the caller's choice at any process or process group of the same uid
 * whenever the descriptor becomes ready, and one byte sent from outside
 * then stopped every child.  ioctl(2) is in no list at all: FIOASYNC,
 * FIOSETOWN and SIOCSPGRP do the same.
 */
static int
sandbox_allow_fcntl(scmp_filter_ctx ctx)
{
	if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1,
	    SCMP_A1(SCMP_CMP_EQ, F_GETFL)) < 0 ||
	    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 2,
	    SCMP_A1(SCMP_CMP_EQ, F_SETFL),
	    SCMP_A2(SCMP_CMP_MASKED_EQ, O_ASYNC, 0)) < 0)
		return -1;
	return 0;
}

static int
sandbox_child_rules(scmp_filter_ctx ctx)
{
	if (sandbox_allow(ctx, sandbox_child, NELEM(sandbox_child)) == -1)
		return -1;
	return 0;
}

/* The spawner's own calls, with their arguments where they can be seen. */
static int
sandbox_spawner_rules(scmp_filter_ctx ctx)
{
	scmp_datum_t opt;
	size_t i;
	long arg;

	if (sandbox_allow(ctx, sandbox_spawner, NELEM(sandbox_spawner)) == -1)
		return -1;
	for (i = 0; i < NELEM(sandbox_spawner_prctl); i++) {
		opt = (scmp_datum_t)sandbox_spawner_prctl[i].option;
		arg = sandbox_spawner_prctl[i].arg;
		if ((arg == -1 ? seccomp_rule_add(ctx, SCMP_ACT_ALLOW,
		    SCMP_SYS(prctl), 1, SCMP_A0(SCMP_CMP_EQ, opt)) :
		    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 2,
		    SCMP_A0(SCMP_CMP_EQ, opt),
		    SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)arg))) < 0)
			return -1;
	}
	if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
	    SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)(CLONE_PARENT | SIGCHLD))) < 0 ||
	    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socketpair), 2,
	    SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)AF_UNIX),
	    SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)(SOCK_SEQPACKET |
	    SOCK_CLOEXEC))) < 0 ||
	    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 1,
	    SCMP_A0(SCMP_CMP_EQ, 0)) < 0)
		return -1;
	return 0;
}

/* The role's rules, in a libseccomp context; NULL on failure. */
static scmp_filter_ctx
sandbox_rules(enum sandbox_role role)
{
	scmp_filter_ctx ctx;
	int rc = -1;

	/* abort(3) and kill(2) are not allowed either: a process that wants
	 * to signal itself dies of SIGSYS instead, which is as final. */
	if ((ctx = seccomp_init(SCMP_ACT_KILL_PROCESS)) == NULL)
		return NULL;
	/*
	 * A binary tree rather than a chain of compares: installing a filter
	 * makes the kernel run it once for every system call number (its
	 * allow cache), which took ~90 us per child with the chain, ~50 with
	 * the tree (docs/PERFORMANCE.md).
	 */
	if (seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2) < 0)
		goto out;
	if (sandbox_allow(ctx, sandbox_common, NELEM(sandbox_common)) == -1 ||
	    sandbox_allow_fcntl(ctx) == -1 ||
	    sandbox_allow_send(ctx) == -1)
		goto out;
	switch (role) {
	case SANDBOX_CHILD:
		if (sandbox_child_rules(ctx) == -1)
			goto out;
		break;
	case SANDBOX_SPAWNER:
		if (sandbox_child_rules(ctx) == -1 ||
		    sandbox_spawner_rules(ctx) == -1)
			goto out;
		break;
	case SANDBOX_KEYPROC:
		if (sandbox_allow(ctx, sandbox_keyproc,
		    NELEM(sandbox_keyproc)) == -1)
			goto out;
		break;
	case SANDBOX_METRICS:
		if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(accept4), 1,
		    SCMP_A0(SCMP_CMP_EQ, METRICS_LISTEN_FD)) < 0)
			goto out;
		break;
	case SANDBOX_CONNECTOR:
		if (sandbox_allow(ctx, sandbox_connector,
		    NELEM(sandbox_connector)) == -1 ||
		    sandbox_allow_stream_socket(ctx) == -1)
			goto out;
		break;
	}
	rc = 0;
out:
	if (rc == -1) {
		seccomp_release(ctx);
		return NULL;
	}
	return ctx;
}

/* Compiled filters, made once by sandbox_prepare() before fork. */
static struct sock_fprog	sandbox_prog[SANDBOX_ROLES];

int
sandbox_prepare(enum sandbox_role role, char *err, size_t errlen)
{
	struct sock_fprog *prog = &sandbox_prog[role];
	scmp_filter_ctx ctx;
	struct stat st;
	void *buf = NULL;
	int fd = -1, rc = -1;

	if (prog->filter != NULL)
		return 0;
	if ((ctx = sandbox_rules(role)) == NULL)
		goto out;
	/* libseccomp 2.5 exports only to a descriptor. */
	if ((fd = memfd_create("seccomp", MFD_CLOEXEC)) == -1 ||
	    seccomp_export_bpf(ctx, fd) < 0 || fstat(fd, &st) == -1 ||
	    st.st_size <= 0 || st.st_size % sizeof(struct sock_filter) != 0 ||
	    st.st_size / sizeof(struct sock_filter) > USHRT_MAX ||
	    (buf = malloc((size_t)st.st_size)) == NULL ||
	    pread(fd, buf, (size_t)st.st_size, 0) != st.st_size)
		goto out;
	prog->len = (unsigned short)(st.st_size / sizeof(struct sock_filter));
	prog->filter = buf;
	buf = NULL;
	rc = 0;
out:
	if (rc == -1)
		snprintf(err, errlen, "sandbox: cannot compile the seccomp filter");
	free(buf);
	if (fd != -1)
		close(fd);
	if (ctx != NULL)
		seccomp_release(ctx);
	return rc;
}

int
sandbox_seccomp(enum sandbox_role role, char *err, size_t errlen)
{
	if (sandbox_prepare(role, err, errlen) == -1)
		return -1;
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &sandbox_prog[role],
	    0, 0) == -1) {
		snprintf(err, errlen, "sandbox: cannot install the seccomp "
		    "filter: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int
sandbox_seccomp_threads(enum sandbox_role role, char *err, size_t errlen)
{
	long rc;

	if (sandbox_prepare(role, err, errlen) == -1)
		return -1;
	/* > 0: the id of a thread that could not be synchronised */
	if ((rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
	    SECCOMP_FILTER_FLAG_TSYNC, &sandbox_prog[role])) != 0) {
		snprintf(err, errlen, "sandbox: cannot install the seccomp "
		    "filter on every thread: %s", rc == -1 ? strerror(errno) :
		    "a thread has a filter of its own");
		return -1;
	}
	return 0;
}
