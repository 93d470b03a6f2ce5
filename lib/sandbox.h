/*
 * Privilege drop and system call filters for keyproc, the spawners and the
 * connection children.
 */
#ifndef SANDBOX_H
#define SANDBOX_H

#include <sys/types.h>

#include <stddef.h>

enum sandbox_role {
	SANDBOX_CHILD,		/* one connection: TLS + proxying */
	SANDBOX_KEYPROC,	/* signs on its channels, nothing else */
	SANDBOX_SPAWNER		/* forks children, which set themselves up
				   under this filter, then add their own */
};

/*
 * sandbox_drop(root, uid, gid, nofile, err, errlen):
 * chroot(root) and chdir("/"), setgroups/setresgid/setresuid to uid/gid
 * (then check that root cannot be regained), PR_SET_DUMPABLE 0,
 * PR_SET_NO_NEW_PRIVS, RLIMIT_NPROC 0, RLIMIT_NOFILE nofile, RLIMIT_CORE 0.
 * Return 0, or -1 with a message in err.
 */
int	sandbox_drop(const char *root, uid_t uid, gid_t gid, size_t nofile,
	    char *err, size_t errlen);

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

#endif
