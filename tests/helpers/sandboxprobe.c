/*
 * sandboxprobe: try system calls under a role's seccomp filter.
 *
 *	sandboxprobe [-n] child|keyproc|metrics [probe ...]
 *
 * For each probe (all of them when none is named), fork a process that
 * installs the role's filter exactly as that role does (lib/sandbox.c,
 * sandbox_seccomp()) and makes one call, and print one line:
 *
 *	PROBE killed	the filter killed it (SIGSYS)
 *	PROBE ok	the call succeeded
 *	PROBE error: E	the call was made and failed with errno E
 *
 * -n: the positive control, the same calls without the filter; each must
 * then succeed (but ioctl-tiocspgrp, refused by the kernel on a socket),
 * so a probe that does not really make its call cannot pass.  The target
 * of the calls aimed at another process is a sibling forked here, in the
 * helper's process group.  Signal owners are the probe itself, not a
 * process group: the filter looks only at the command, and the control
 * must not do what the attack did (one byte, every process of the group
 * stopped).
 */
#include <sys/types.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/sandbox.h"
#include "lib/util.h"
#include "lib/wire.h"

static pid_t	target;		/* a sibling to aim at */
static int	pidfd = -1;	/* target's, opened before the filter */
static int	sock = -1;	/* one end of the probe's own socketpair */
static long	marker = 0x5eed;	/* the same address in target */

static long
p_getfl(void)
{
	return fcntl(sock, F_GETFL);
}

static long
p_setfl_nonblock(void)
{
	return fcntl(sock, F_SETFL, O_NONBLOCK);
}

static long
p_setfl_async(void)
{
	return fcntl(sock, F_SETFL, O_NONBLOCK | O_ASYNC);
}

static long
p_setown(void)
{
	return fcntl(sock, F_SETOWN, getpid());
}

static long
p_setown_ex(void)
{
	struct f_owner_ex o = { .type = F_OWNER_PID, .pid = getpid() };

	return fcntl(sock, F_SETOWN_EX, &o);
}

static long
p_setsig(void)
{
	return fcntl(sock, F_SETSIG, SIGURG);
}

static long
p_dupfd(void)
{
	return fcntl(sock, F_DUPFD_CLOEXEC, 0);
}

static long
p_fioasync(void)
{
	int one = 1;

	return ioctl(sock, FIOASYNC, &one);
}

static long
p_fiosetown(void)
{
	int pid = getpid();

	return ioctl(sock, FIOSETOWN, &pid);
}

static long
p_siocspgrp(void)
{
	int pid = getpid();

	return ioctl(sock, SIOCSPGRP, &pid);
}

static long
p_tiocspgrp(void)
{
	pid_t pg = getpgrp();

	return ioctl(sock, TIOCSPGRP, &pg);
}

static long
p_kill(void)
{
	return kill(target, 0);
}

static long
p_kill_group(void)
{
	return kill(-getpgrp(), 0);
}

static long
p_tkill(void)
{
	return syscall(SYS_tkill, target, 0);
}

static long
p_tgkill(void)
{
	return syscall(SYS_tgkill, target, target, 0);
}

static long
p_sigqueue(void)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	si.si_code = SI_QUEUE;
	return syscall(SYS_rt_sigqueueinfo, target, 0, &si);
}

static long
p_pidfd_open(void)
{
	return syscall(SYS_pidfd_open, target, 0);
}

static long
p_pidfd_send_signal(void)
{
	return syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0);
}

static long
p_pidfd_getfd(void)
{
	return syscall(SYS_pidfd_getfd, pidfd, 0, 0);
}

static long
p_ptrace(void)
{
	return ptrace(PTRACE_SEIZE, target, NULL, NULL);
}

static long
p_vm_readv(void)
{
	struct iovec local = { &marker, sizeof(marker) };
	struct iovec remote = { &marker, sizeof(marker) };

	return process_vm_readv(target, &local, 1, &remote, 1, 0);
}

static long
p_vm_writev(void)
{
	struct iovec local = { &marker, sizeof(marker) };
	struct iovec remote = { &marker, sizeof(marker) };

	return process_vm_writev(target, &local, 1, &remote, 1, 0);
}

static long
p_setsid(void)
{
	return setsid();
}

static long
p_setpgid(void)
{
	return setpgid(0, 0);
}

static long
p_socket(void)
{
	return socket(AF_INET, SOCK_STREAM, 0);
}

static long
p_open(void)
{
	return open("/dev/null", O_RDONLY);
}

/* accept4 on stdin: not the metrics process's listening socket. */
static long
p_accept4_other(void)
{
	return accept4(STDIN_FILENO, NULL, NULL, 0);
}

/* accept4 on METRICS_LISTEN_FD: allowed there (here it is no listener). */
static long
p_accept4_listen(void)
{
	return accept4(METRICS_LISTEN_FD, NULL, NULL, SOCK_NONBLOCK);
}

static const struct probe {
	const char	*name;
	long		(*fn)(void);
} probes[] = {
	{ "fcntl-getfl", p_getfl },
	{ "fcntl-setfl-nonblock", p_setfl_nonblock },
	{ "fcntl-setfl-async", p_setfl_async },
	{ "fcntl-setown", p_setown },
	{ "fcntl-setown-ex", p_setown_ex },
	{ "fcntl-setsig", p_setsig },
	{ "fcntl-dupfd", p_dupfd },
	{ "ioctl-fioasync", p_fioasync },
	{ "ioctl-fiosetown", p_fiosetown },
	{ "ioctl-siocspgrp", p_siocspgrp },
	{ "ioctl-tiocspgrp", p_tiocspgrp },
	{ "kill", p_kill },
	{ "kill-group", p_kill_group },
	{ "tkill", p_tkill },
	{ "tgkill", p_tgkill },
	{ "rt_sigqueueinfo", p_sigqueue },
	{ "pidfd_open", p_pidfd_open },
	{ "pidfd_send_signal", p_pidfd_send_signal },
	{ "pidfd_getfd", p_pidfd_getfd },
	{ "ptrace", p_ptrace },
	{ "process_vm_readv", p_vm_readv },
	{ "process_vm_writev", p_vm_writev },
	{ "setsid", p_setsid },
	{ "setpgid", p_setpgid },
	{ "socket", p_socket },
	{ "open", p_open },
	{ "accept4-other", p_accept4_other },
	{ "accept4-listen", p_accept4_listen },
};

/* In a fresh process: filter (unless control), call, report on fd. */
static __dead void
probe_run(const struct probe *p, enum sandbox_role role, int control,
    int fd)
{
	char err[256], line[128];
	int sv[2], n;
	long rv;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		_exit(2);
	sock = sv[0];
	if (!control && (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 ||
	    sandbox_seccomp(role, err, sizeof(err)) == -1)) {
		n = snprintf(line, sizeof(line), "setup: %s", err);
		(void)write(fd, line, (size_t)n);
		_exit(2);
	}
	rv = p->fn();
	if (rv == -1)
		n = snprintf(line, sizeof(line), "error: %s", strerror(errno));
	else
		n = snprintf(line, sizeof(line), "ok");
	(void)write(fd, line, (size_t)n);
	_exit(0);
}

static void
probe(const struct probe *p, enum sandbox_role role, int control)
{
	char line[128];
	int pfd[2], status;
	ssize_t n;
	pid_t pid;

	if (pipe(pfd) == -1 || (pid = fork()) == -1) {
		perror("sandboxprobe");
		exit(1);
	}
	if (pid == 0) {
		close(pfd[0]);
		probe_run(p, role, control, pfd[1]);
	}
	close(pfd[1]);
	n = read(pfd[0], line, sizeof(line) - 1);
	close(pfd[0]);
	line[n > 0 ? n : 0] = '\0';
	if (waitpid(pid, &status, 0) == -1) {
		perror("waitpid");
		exit(1);
	}
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS)
		printf("%s killed\n", p->name);
	else if (WIFSIGNALED(status))
		printf("%s signal %d\n", p->name, WTERMSIG(status));
	else
		printf("%s %s\n", p->name, line[0] != '\0' ? line : "?");
	fflush(stdout);
}

static __dead void
usage(void)
{
	fprintf(stderr, "usage: sandboxprobe [-n] child|keyproc|metrics "
	    "[probe ...]\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	enum sandbox_role role;
	int control = 0, i;
	size_t j;

	if (argc > 1 && strcmp(argv[1], "-n") == 0) {
		control = 1;
		argc--;
		argv++;
	}
	if (argc < 2)
		usage();
	if (strcmp(argv[1], "child") == 0)
		role = SANDBOX_CHILD;
	else if (strcmp(argv[1], "keyproc") == 0)
		role = SANDBOX_KEYPROC;
	else if (strcmp(argv[1], "metrics") == 0)
		role = SANDBOX_METRICS;
	else
		usage();
	if ((target = fork()) == 0) {
		for (;;)
			pause();
	}
	if (target == -1 ||
	    (pidfd = (int)syscall(SYS_pidfd_open, target, 0)) == -1) {
		perror("sandboxprobe: target");
		return 1;
	}
	for (j = 0; j < NELEM(probes); j++) {
		for (i = 2; i < argc; i++)
			if (strcmp(argv[i], probes[j].name) == 0)
				break;
		if (argc == 2 || i < argc)
			probe(&probes[j], role, control);
	}
	kill(target, SIGKILL);
	waitpid(target, NULL, 0);
	return 0;
}
