/*
 * The parent's pool of connection children: spares forked ahead of time
 * for every listener, replaced as they take connections.  Spares count
 * as connections (each may take one without asking), so never more than
 * max-connections children are alive at once; near the limit the spares
 * go to the listeners where clients wait.  At the limit no spare waits on
 * any listener, clients wait in the listen backlog, and the parent says
 * so once ("listener L: max-connections N reached: not accepting", then
 * "listener L: accepting again").
 */
#ifndef SPAWN_H
#define SPAWN_H

#include <sys/types.h>

#include <stddef.h>

#include "proxy/gen.h"

struct event_base;

/*
 * spawn_init(base, reaped):
 * Start the pool's timers on base.  reaped() is called after children
 * were reaped outside of the caller's own spawn_reap() (when a channel
 * closes after its child's SIGCHLD was already taken).  Call once.
 */
void	spawn_init(struct event_base *base, void (*reaped)(void));

/*
 * spawn_set_gen(g):
 * Make g the generation new children are forked from (taking a
 * reference), retire the spare children of the previous one, close its
 * listening sockets in the parent and drop the pool's reference to it.
 */
void	spawn_set_gen(struct gen *g);

/*
 * spawn_set_keyproc(fd):
 * The control channel of the running keyproc, or -1 when keyproc is gone:
 * then spare children (whose channels died with it) are retired and no new
 * ones are forked until a new keyproc is set.  Children are armed
 * (kp_ctl_send_arm()) only in the keyproc their channel was handed to:
 * call this before closing the previous control channel, so that children
 * that accepted in the meantime are armed in it.
 */
void	spawn_set_keyproc(int fd);

/*
 * spawn_retire_listener(g, li):
 * Retire the spare children of listener li of g (they exit; spawn_fill()
 * makes new ones).
 */
void	spawn_retire_listener(struct gen *g, size_t li);

/*
 * spawn_fill():
 * Fork spare children until every listener of the current generation has
 * its target number waiting, within max-connections.
 */
void	spawn_fill(void);

/*
 * spawn_set_capacity(fdcap):
 * The most connections the parent's descriptor limit allows, or 0 for no
 * bound beyond max-connections: the pool keeps within the smaller.
 */
void	spawn_set_capacity(long fdcap);

/*
 * spawn_out_of_fds(what):
 * The parent could not get a descriptor (errno EMFILE or ENFILE) while
 * doing what: fork no child for a while, and say so once until a child is
 * forked again.  The helper processes are not to blame and stay.
 */
void	spawn_out_of_fds(const char *what);

/*
 * spawn_reaped(pid, status):
 * Account for an exited process.  Return 1 if it was a child of the pool,
 * 0 otherwise.
 */
int	spawn_reaped(pid_t pid, int status);

/*
 * spawn_reap():
 * Reap the children whose channel has closed and that have exited, each
 * with waitpid(2) on its own pid.  Return how many were reaped.
 */
size_t	spawn_reap(void);

/*
 * spawn_drain(idle):
 * Stop for good: retire every spare, close every listening socket in the
 * parent and fork nothing more.  Busy children continue; with idle > 0,
 * each (and each that reports a connection from now on) is told to end
 * its connection once it has been idle for idle seconds (CHAN_DRAIN idle).
 */
void	spawn_drain(int idle);

/*
 * spawn_drain_now():
 * After spawn_drain(): tell every child to end its connection cleanly now
 * (CHAN_DRAIN 0: close_notify, EOF to the backend, its access line); a
 * spare leaves.  A child that does not is the caller's to kill.
 */
void	spawn_drain_now(void);

/*
 * spawn_kill_all(sig, why):
 * Send sig to every child still alive; unless why is NULL, log "child PID
 * <why>: killed" for each.
 */
void	spawn_kill_all(int sig, const char *why);

/*
 * spawn_count(), spawn_busy():
 * The number of live children, and of those holding a connection.
 */
size_t	spawn_count(void);
size_t	spawn_busy(void);

#endif
