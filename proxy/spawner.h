/*
 * The spawner: the process connection children are forked from.
 *
 * One per listener of the current generation.  The parent starts it with
 * fork and exec of its own binary under the name SPAWNER_ARGV0 (like
 * keyproc), so it has a fresh address space: its own ASLR layout and stack
 * canary, none of the parent's memory (log buffers, other connections'
 * data, other listeners).  The parent sends it what the children of that
 * one listener need (lib/wire.h: the globals children use, the listener's
 * name, protocols, ciphers, certificate chain, key reference and
 * backends); it builds the libtls server context, drops every capability
 * but CAP_SETUID, CAP_SETGID and CAP_SYS_CHROOT, sets no_new_privs and
 * dumpable 0, installs its own seccomp allow-list, and then forks children
 * on request with CLONE_PARENT: every child is the parent's child, reaped,
 * signalled and accounted for by the parent.  Its stdin, stdout and stderr
 * are /dev/null; its log lines travel on its channel.
 *
 * The parent's side (proxy/spawner_ctl.c) starts, uses and stops spawners;
 * the spawner's own (proxy/spawner.c) is spawner_main().
 */
#ifndef SPAWNER_H
#define SPAWNER_H

#include <sys/types.h>

#include <stddef.h>

#include "lib/util.h"
#include "proxy/gen.h"

#define SPAWNER_ARGV0	"recluse-spawner"

struct event_base;

/*
 * spawner_main():
 * The spawner itself: called by main() when argv[0] is SPAWNER_ARGV0, with
 * its channel on SPAWNER_FD and its listener's sockets after it.  Never
 * returns.
 */
__dead void	spawner_main(void);

/*
 * spawner_init(base):
 * In the parent: watch spawners' channels (log lines, EOF) on base.  Call
 * once, before the first spawner_start().
 */
void	spawner_init(struct event_base *base);

/*
 * spawner_start(g, li):
 * In the parent: start the spawner of listener li of g unless it has one,
 * and send it its configuration without waiting for it to be ready (so
 * that several start at once); spawner_fork() waits.  Return 0, or -1
 * with a warning logged.
 */
int	spawner_start(struct gen *g, size_t li);

/*
 * spawner_fork(g, li, kpfd, chanfdp):
 * In the parent: have the spawner of listener li of g (started now if it
 * has none) fork a child, giving it kpfd as its keyproc channel.  On
 * success return the child's pid and set *chanfdp to the parent's end of
 * the child's channel (SOCK_SEQPACKET, close-on-exec).  Return -1 with a
 * warning logged on failure; a spawner that failed is stopped, and the
 * next call starts a new one.  Return -1 with errno EMFILE or ENFILE, and
 * nothing logged, when the parent itself is out of descriptors: the
 * spawner is not to blame and stays.  kpfd stays the caller's to close.
 */
pid_t	spawner_fork(struct gen *g, size_t li, int kpfd, int *chanfdp);

/*
 * spawner_send_tickets(g, li):
 * Send the session ticket keys of listener li of g to its spawner, if it
 * runs (tickets.h): for the children it forks from now on.
 */
void	spawner_send_tickets(struct gen *g, size_t li);

/*
 * spawner_serial(g, li):
 * In the parent: a number that names the running spawner of listener li
 * of g among all spawners ever started (1, 2, ...), or 0 if it has none.
 * The children it forks are its: spawner_fork() returns them while this
 * number stays the same.
 */
unsigned int	spawner_serial(const struct gen *g, size_t li);

/*
 * spawner_stop(g, li), spawner_stop_all(g):
 * In the parent: close the channel of the spawner of listener li of g (of
 * every listener of g): it exits.  The children it forked live on.
 */
void	spawner_stop(struct gen *g, size_t li);
void	spawner_stop_all(struct gen *g);

/*
 * spawner_reap(), spawner_reaped(pid, status):
 * In the parent: reap the spawners that were stopped or whose channel
 * closed, each waited for by its own pid; return how many.
 * spawner_reaped() accounts for a pid reaped elsewhere and returns 1 if it
 * was a spawner, 0 otherwise.
 */
size_t	spawner_reap(void);
int	spawner_reaped(pid_t pid, int status);

#endif
