/*
 * The connector: the one process that makes backend connections.
 *
 * Connection children cannot create a socket or connect anywhere (their
 * seccomp filter), and the parent is root: a UNIX-socket backend it
 * connected would see uid 0 in SO_PEERCRED.  So the parent starts the
 * connector (fork + exec of this binary under the name CONNECTOR_ARGV0),
 * which becomes the configuration's `user`, sandboxes itself and then
 * only connects: the parent sends {id, timeout, sockaddr}
 * (struct connector_req, lib/wire.h), the connector answers {id, errno}
 * with the connected socket attached.  It keeps no state beyond the
 * connects in flight and reads nothing from the sockets it makes.
 *
 * The parent's side (connector_ctl.c) tries a child's listener's backends
 * in order through it, starts it again when it dies, and never waits for
 * it.
 */
#ifndef CONNECTOR_H
#define CONNECTOR_H

#include <sys/types.h>

#include <stddef.h>

#include "config/conf.h"
#include "lib/util.h"

#define CONNECTOR_ARGV0	"recluse-connector"

struct event_base;
struct connector_job;

/*
 * connector_main():
 * The connector itself: called by main() when argv[0] is CONNECTOR_ARGV0,
 * with its channel to the parent on fd CONNECTOR_FD.  Never returns.
 */
__dead void	connector_main(void);

/*
 * connector_ctl_init(base, uid, gid):
 * In the parent: start the connector as uid/gid, its events on base, and
 * keep one running from now on (a dead one is started again after a
 * second).  Call once.
 */
void	connector_ctl_init(struct event_base *base, uid_t uid, gid_t gid);

/*
 * connector_ctl_set_user(uid, gid):
 * In the parent, after a reload: if uid/gid differ from the running
 * connector's, replace it by one that runs as uid/gid.  Connects in
 * flight are sent to the new one.
 */
void	connector_ctl_set_user(uid_t uid, gid_t gid);

/*
 * connector_ctl_connect(l, route, alpn, timeout, pid, done, arg):
 * In the parent: connect to the first of l's backends of route and
 * protocol alpn (proxy/route.h; the caller has checked that l has them)
 * that answers, in the order of the configuration, address by address,
 * each attempt
 * bounded by timeout seconds, through the connector.  Each failed attempt
 * is logged (with pid, the child it is for).  Later, from the event loop,
 * done(arg, fd, idx, err) is called once: with a connected socket (the
 * callee owns it) and the backend's index in idx, or with fd -1 and the
 * errno of the last attempt in err.  l must live until then, or until
 * connector_ctl_cancel().  Return the job, or NULL (out of memory).
 */
struct connector_job *connector_ctl_connect(const struct conf_listener *l,
	    size_t route, size_t alpn, int timeout, pid_t pid,
	    void (*done)(void *arg, int fd, size_t idx, int err), void *arg);

/*
 * connector_ctl_probe(l, backend, timeout, done, arg):
 * In the parent: connector_ctl_connect() to l's backend number backend
 * alone, whatever its route, logging nothing (the caller says what the
 * result means).
 */
struct connector_job *connector_ctl_probe(const struct conf_listener *l,
	    size_t backend, int timeout,
	    void (*done)(void *arg, int fd, size_t idx, int err), void *arg);

/*
 * connector_ctl_cancel(job):
 * In the parent: forget job, whose done() has not been called and now
 * never will be; a socket that comes for it later is closed.
 */
void	connector_ctl_cancel(struct connector_job *job);

/*
 * connector_ctl_reaped(pid, status):
 * In the parent: account for an exited process.  Return 1 if it was a
 * connector, 0 otherwise.
 */
int	connector_ctl_reaped(pid_t pid, int status);

/*
 * connector_ctl_reap():
 * In the parent: reap the connectors that have exited, each by its own
 * pid.  Return how many.
 */
size_t	connector_ctl_reap(void);

#endif
