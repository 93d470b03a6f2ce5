/*
 * Listening sockets: bound by the parent, inherited from systemd socket
 * activation, or carried over from the previous configuration on reload.
 */
#ifndef LISTEN_H
#define LISTEN_H

#include <sys/socket.h>

#include <stddef.h>

#include "config/conf.h"

/* The sockets of one listener. */
struct listen_set {
	int			*fds;
	struct sockaddr_storage	*addrs;
	socklen_t		*addrlens;
	size_t			 n;
};

/*
 * listen_inherit():
 * Take the sockets systemd passed (LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES)
 * for later listen_open() calls, and unset those variables.  Return the
 * number of sockets taken.
 */
size_t	listen_inherit(void);

/*
 * listen_open(l, prev, nprev, set, err, errlen):
 * Fill set with a listening socket for every address of l: a duplicate of
 * a socket with the same address in prev[0..nprev-1] (the configuration
 * being replaced), else a duplicate of one systemd passed for that address,
 * else a new socket bound here; plus duplicates of the sockets systemd
 * passed under l's name.  (systemd's sockets stay open in the parent, for
 * the configurations that follow.)  Return 0, or -1 with "FILE:LINE:
 * message" in err (and set left empty).
 */
int	listen_open(const struct conf_listener *l, const struct listen_set *prev,
	    size_t nprev, struct listen_set *set, char *err, size_t errlen);

/*
 * listen_close(set):
 * Close and free the sockets of set.  Safe on a zeroed set.
 */
void	listen_close(struct listen_set *set);

/*
 * listen_unused_close():
 * Close (and log) the sockets systemd passed that no listener of the first
 * configuration took.
 */
void	listen_unused_close(void);

#endif
