/*
 * Privilege drop and system call filters for keyproc, the spawners, the
 * connector, the metrics process and the connection children.
 */
#ifndef SANDBOX_H
#define SANDBOX_H

#include <sys/types.h>

#include <stddef.h>

enum sandbox_role {
	SANDBOX_CHILD,		/* one connection: TLS + proxying */
	SANDBOX_KEYPROC,	/* signs on its channels, nothing else */
	SANDBOX_CONNECTOR,	/* connects backends for the parent */
	SANDBOX_SPAWNER,	/* forks children, which set themselves up
				   under this filter, then add their own */
	SANDBOX_METRICS		/* answers HTTP on the one socket it has */
};
#define SANDBOX_ROLES	(SANDBOX_METRICS + 1)

/*
 * sandbox_drop(root, uid, gid, nofile, err, errlen):
 * chroot(root) and chdir("/") unless root is NULL, setgroups/setresgid/
 * setresuid to uid/gid (then check that root cannot be regained),
 * PR_SET_DUMPABLE 0, PR_SET_NO_NEW_PRIVS, RLIMIT_NPROC 0, RLIMIT_CORE 0,
 * RLIMIT_NOFILE nofile unless it is 0.  Return 0, or -1 with a message in
 * err.
 */
int	sandbox_drop(const char *root, uid_t uid, gid_t gid, size_t nofile,
	    char *err, size_t errlen);

/* Seconds between SIGXCPU and SIGKILL at the CPU-time limit. */
#define SANDBOX_CPU_GRACE	5

/*
 * sandbox_limits(memory, cpu, err, errlen):
 * Limit the address space to memory bytes (RLIMIT_AS; not under
 * AddressSanitizer, whose shadow memory alone is larger) and the CPU time
 * to cpu seconds (RLIMIT_CPU: SIGXCPU, then SIGKILL SANDBOX_CPU_GRACE
 * seconds later).  Call it before sandbox_seccomp(), which forbids
 * setrlimit.  Return 0, or -1 with a message in err.
 */
int	sandbox_limits(size_t memory, unsigned int cpu, char *err,
	    size_t errlen);

/*
 * sandbox_keep_caps(keep, nkeep, err, errlen):
 * For a process that stays root: drop every capability but the nkeep in
 * keep from the bounding, permitted, effective, inheritable and ambient
 * sets (the bounding set first: that needs CAP_SETPCAP, which goes next),
 * then set PR_SET_NO_NEW_PRIVS and PR_SET_DUMPABLE 0.  Return 0, or -1
 * with a message in err.
 */
int	sandbox_keep_caps(const int *keep, size_t nkeep, char *err,
	    size_t errlen);

/*
 * sandbox_prepare(role, err, errlen):
 * Compile the role's seccomp allow-list into a BPF program, once.  The
 * parent calls it before forking children, so that each child only loads
 * the program instead of building it again.  Return 0, or -1 with a
 * message in err.
 */
int	sandbox_prepare(enum sandbox_role role, char *err, size_t errlen);

/*
 * sandbox_seccomp(role, err, errlen):
 * Install the role's seccomp allow-list (compiling it first unless
 * sandbox_prepare() did); any other system call kills the process.  Needs
 * PR_SET_NO_NEW_PRIVS (sandbox_drop()).  Return 0, or -1 with a message in
 * err.
 */
int	sandbox_seccomp(enum sandbox_role role, char *err, size_t errlen);

/*
 * sandbox_seccomp_threads(role, err, errlen):
 * sandbox_seccomp() for every thread of the process at once
 * (SECCOMP_FILTER_FLAG_TSYNC, which also sets PR_SET_NO_NEW_PRIVS on
 * each): for a process that made its threads before its sandbox (keyproc's
 * signers).  The threads must have no filter of their own.  Return 0, or
 * -1 with a message in err.
 */
int	sandbox_seccomp_threads(enum sandbox_role role, char *err,
	    size_t errlen);

#endif
