/*
 * What the parent accepts on the channels it reads from less trusted
 * processes: a connection child's (proxy/spawn.c) and a spawner's
 * (proxy/spawner_ctl.c).  Pure functions of one message, already framed by
 * msg_frame() (lib/msg.h), so that tests/fuzz/fuzz_chan.c can feed them
 * without sockets; the readers act on what they return.
 */
#ifndef PARENT_CHECK_H
#define PARENT_CHECK_H

#include "lib/wire.h"

/*
 * parent_check_child(hdr, body):
 * In the parent: what one message from a connection child's channel is.
 * Return CHAN_ACCEPTED, CHAN_ESTABLISHED or CHAN_CONNECT, whose bodies are
 * empty, CHAN_PEER or CHAN_ENDED of their struct's size (their values are
 * checked by stats_chan()), or CHAN_LOG with a well-formed log body
 * (log_check()); or -1 for anything else, and the child loses its
 * channel.
 */
int	parent_check_child(const struct msg_hdr *hdr, const char *body);

/*
 * parent_check_spawner(hdr, body, fd, forked, rep):
 * In the parent: what one message from a spawner's channel is, fd being
 * the descriptor that came with it (-1: none) and forked whether the
 * parent waits for the answer to a SPAWNER_FORK.  Return SPAWNER_LOG
 * (a well-formed log body, no descriptor), SPAWNER_READY (empty, no
 * descriptor) or, if forked, SPAWNER_FORKED with its body in *rep (a pid
 * with the child's channel attached, or a failure without one); or -1 for
 * anything else, and the spawner is replaced.
 */
int	parent_check_spawner(const struct msg_hdr *hdr, const char *body,
	    int fd, int forked, struct spawner_forked *rep);

#endif
