/*
 * A listener's PROXY protocol settings on their way from the parent to
 * the listener's spawner (SPAWNER_PP, lib/wire.h).
 */
#ifndef PP_SPAWNER_H
#define PP_SPAWNER_H

#include "config/conf.h"
#include "lib/msg.h"

/*
 * pp_spawner_send(fd, l):
 * In the parent: send l's proxy-protocol and proxy-protocol-from on the
 * spawner channel fd, if it has either.  Return 0 or -1 with errno.
 */
int	pp_spawner_send(int fd, const struct conf_listener *l);

/*
 * pp_spawner_rx(hdr, body, l):
 * In the spawner: read one SPAWNER_PP message into l (whose pp_from it
 * allocates).  Return 0, or -1 for a malformed or repeated message.
 */
int	pp_spawner_rx(const struct msg_hdr *hdr, const uint8_t *body,
	    struct conf_listener *l);

#endif
