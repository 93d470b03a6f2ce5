/*
 * Starting another role of recluse: see role.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "lib/role.h"

/* Descriptors a role may be given, its channel included. */
#define ROLE_FDS_MAX	64

/*
 * Move fds onto ROLE_FD, ROLE_FD + 1 ...: first each to a copy above
 * every descriptor involved, so that no dup2() overwrites one still to be
 * moved, then into place (dup2 clears close-on-exec).
 */
static int
role_place(const int *fds, size_t nfds)
{
	int tmp[ROLE_FDS_MAX], base = ROLE_FD + (int)nfds;
	size_t i;

	if (nfds > ROLE_FDS_MAX)
		return -1;
	for (i = 0; i < nfds; i++)
		if (fds[i] >= base)
			base = fds[i] + 1;
	for (i = 0; i < nfds; i++)
		if ((tmp[i] = fcntl(fds[i], F_DUPFD, base)) == -1)
			return -1;
	for (i = 0; i < nfds; i++)
		if (dup2(tmp[i], ROLE_FD + (int)i) == -1)
			return -1;
	return 0;
}

void
role_exec(const char *exe, const char *argv0, int titled, const int *fds,
    size_t nfds, char *const env[])
{
	static const int sigs[] = { SIGPIPE, SIGHUP, SIGINT, SIGTERM, SIGCHLD };
	char *argv[] = { (char *)argv0, titled ? (char *)ROLE_TITLE_PAD : NULL,
	    NULL };
	sigset_t set;
	size_t i;
	int nullfd;

	if (role_place(fds, nfds) == -1)
		_exit(127);
	/* after the role's descriptors, so that none can take their place */
	if ((nullfd = open("/dev/null", O_RDWR)) == -1 ||
	    dup2(nullfd, STDIN_FILENO) == -1 ||
	    dup2(nullfd, STDOUT_FILENO) == -1 ||
	    dup2(nullfd, STDERR_FILENO) == -1)
		_exit(127);
	if (close_range(ROLE_FD + (unsigned int)nfds, ~0U, 0) == -1)
		_exit(127);
	sigemptyset(&set);
	sigprocmask(SIG_SETMASK, &set, NULL);
	for (i = 0; i < NELEM(sigs); i++)
		signal(sigs[i], SIG_DFL);
	(void)setpgid(0, 0);
	if (env != NULL)
		execve(exe, argv, env);
	else
		execv(exe, argv);
	_exit(127);
}
