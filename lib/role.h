/*
 * Starting another role of recluse: keyproc, a spawner, the connector.
 * Each is a fork of the parent that executes /proc/self/exe again under
 * the role's name, so it gets a fresh address space (its own ASLR layout
 * and stack canary) and nothing of the parent's memory or descriptors.
 */
#ifndef ROLE_H
#define ROLE_H

#include <stddef.h>

#include "lib/util.h"

/* The first descriptor a role is given: its channel to the parent. */
#define ROLE_FD		3

/*
 * A second argument of spaces, room for the title a process writes over
 * its arguments (lib/title.h): a spawner's connection processes name their
 * listener and client there.  A role ignores its arguments.
 */
#define ROLE_TITLE_PAD	"                                                  " \
			"                        "

/*
 * role_exec(exe, argv0, titled, fds, nfds, env):
 * In a process just forked by the parent: put fds[0 .. nfds - 1] on
 * descriptors ROLE_FD, ROLE_FD + 1 ... in that order, make 0-2 /dev/null
 * (the parent's stderr is the parent's alone), close every other
 * descriptor, reset the signal mask and the dispositions the parent set,
 * leave the parent's process group (a Ctrl-C on the terminal is for the
 * parent, which decides) and execute exe as argv0 (and, if titled,
 * ROLE_TITLE_PAD), with env (or the current environment if env is NULL).
 * Never returns: exits 127.
 */
__dead void	role_exec(const char *exe, const char *argv0, int titled,
		    const int *fds, size_t nfds, char *const env[]);

#endif
