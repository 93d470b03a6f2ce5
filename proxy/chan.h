/*
 * The channel between the parent and one connection child: a SOCK_SEQPACKET
 * socketpair made at fork.  The child sends log lines (log.h), tells the
 * parent when it holds a connection, and asks it to connect UNIX-socket
 * backends, which are outside the child's chroot.
 */
#ifndef CHAN_H
#define CHAN_H

#include <stdint.h>

#include "proxy/log.h"

enum chan_type {
	CHAN_ACCEPTED = 1,	/* child -> parent: I hold a connection */
	CHAN_CONNECT = 2,	/* child -> parent: arg = backend index */
	CHAN_CONNECTED = 3,	/* parent -> child: arg = 0 + fd, or errno */
	CHAN_RETIRE = 4,	/* parent -> child: if you hold no connection
				   yet, exit now (reload, keyproc restart,
				   drain); otherwise ignore this */
	CHAN_LOG = LOG_MSG_TYPE	/* child -> parent: struct log_msg_hdr + text */
};

struct chan_msg {
	uint32_t	type;	/* enum chan_type */
	uint32_t	arg;
};
_Static_assert(sizeof(struct chan_msg) == 8, "wire size");

#endif
