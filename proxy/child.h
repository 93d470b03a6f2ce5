/*
 * A connection child: forked by the parent ahead of time, it drops its
 * privileges, waits for one connection on its listener's sockets, does the
 * TLS handshake, proxies to a backend, logs one line and exits.
 */
#ifndef CHILD_H
#define CHILD_H

#include <stddef.h>

#include "lib/util.h"
#include "config/conf.h"


struct event_base;
struct tls;

struct child_args {
	const struct conf		*conf;
	const struct conf_listener	*listener;
	struct tls			*tls;	/* the listener's server context */
	int				 kpfd;	/* channel to keyproc */
	int				 parentfd;	/* enum chan_type channel */
	const int			*listenfds;	/* the listener's sockets */
	size_t				 nlistenfds;
};

/*
 * child_base_new():
 * The event base of a connection child, as it makes it (the spawner makes
 * and frees one the same way, so that its heap is as a child wants it).
 * It reads no environment: libevent would otherwise look up each of its
 * EVENT_* variables, four uid system calls each.  NULL on failure.
 */
struct event_base	*child_base_new(void);

/*
 * child_main(args):
 * Run one connection child.  The caller (its spawner) has already closed
 * every file descriptor not in args, and stdin, stdout and stderr are
 * /dev/null.  Never returns.
 */
__dead void	child_main(const struct child_args *args);

#endif
