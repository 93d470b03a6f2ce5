/*
 * Privilege drop and system call filters for keyproc and the connection
 * children.
 */
#ifndef SANDBOX_H
#define SANDBOX_H

#include <sys/types.h>

#include <stddef.h>

enum sandbox_role {
	SANDBOX_CHILD,		/* one connection: TLS + proxying */
	SANDBOX_KEYPROC		/* signs on its channels, nothing else */
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
 * sandbox_seccomp(role, err, errlen):
 * Install the role's seccomp allow-list; any other system call kills the
 * process.  Return 0, or -1 with a message in err.
 */
int	sandbox_seccomp(enum sandbox_role role, char *err, size_t errlen);

#endif
