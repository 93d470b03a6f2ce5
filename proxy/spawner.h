/*
 * The spawner: the process connection children are forked from.
 *
 * The parent forks one spawner per generation, before it forks any child
 * of that generation.  The spawner keeps only the generation's listening
 * sockets, /dev/null, stderr and its channel to the parent, so what a new
 * child inherits (descriptors, memory to copy at fork) stays the same size
 * however many connections are open: the parent itself holds a channel to
 * every child and grows with them.  The spawner forks with CLONE_PARENT:
 * every child is the parent's child, reaped, signalled and accounted for
 * by the parent as before.  Root, unsandboxed (it forks children that drop
 * privileges), it reads nothing but the parent's requests.
 */
#ifndef SPAWNER_H
#define SPAWNER_H

#include <sys/types.h>

#include <stddef.h>

#include "proxy/gen.h"

/*
 * spawner_fork(g, li, kpfd, chanfdp):
 * Have g's spawner (started now if g has none, or if it died) fork a
 * child for listener li of g, giving it kpfd as its keyproc channel.  On
 * success return the child's pid and set *chanfdp to the parent's end of
 * the child's channel (SOCK_SEQPACKET, close-on-exec).  Return -1 with a
 * warning logged on failure.  kpfd stays the caller's to close.
 */
pid_t	spawner_fork(struct gen *g, size_t li, int kpfd, int *chanfdp);

/*
 * spawner_stop(g):
 * Close g's spawner channel: the spawner exits.  Children it forked live
 * on.  Called when g stops being the generation children are forked from.
 */
void	spawner_stop(struct gen *g);

/*
 * spawner_reap(), spawner_reaped(pid, status):
 * Reap spawners that exited (each waited for by its own pid); return how
 * many.  spawner_reaped() accounts for a pid reaped elsewhere and returns
 * 1 if it was a spawner, 0 otherwise.
 */
size_t	spawner_reap(void);
int	spawner_reaped(pid_t pid, int status);

#endif
