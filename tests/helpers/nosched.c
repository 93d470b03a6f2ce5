/*
 * nosched: run a command under a seccomp filter that kills the process
 * calling sched_setscheduler(2) or sched_setattr(2) and allows every other
 * call, as the shipped unit's SystemCallFilter=~@resources does.
 *
 *	nosched command [arg ...]
 *
 * With no_new_privs, as the unit's NoNewPrivileges=yes.  The filter stays
 * across exec and is inherited by every process the command starts.
 */
#include <sys/prctl.h>

#include <err.h>
#include <unistd.h>

#include <seccomp.h>

int
main(int argc, char *argv[])
{
	scmp_filter_ctx ctx;

	if (argc < 2)
		errx(2, "usage: nosched command [arg ...]");
	if ((ctx = seccomp_init(SCMP_ACT_ALLOW)) == NULL ||
	    seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS,
	    SCMP_SYS(sched_setscheduler), 0) < 0 ||
	    seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS,
	    SCMP_SYS(sched_setattr), 0) < 0 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 ||
	    seccomp_load(ctx) < 0)
		errx(1, "cannot install the filter");
	seccomp_release(ctx);
	execvp(argv[1], argv + 1);
	err(127, "%s", argv[1]);
}
