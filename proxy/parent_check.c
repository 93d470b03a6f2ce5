/*
 * What the parent accepts from a child's and a spawner's channel: see
 * parent_check.h.  Every body's size is checked with MSG_LEN_IS() before
 * anything in it is read.
 */
#include <string.h>

#include "lib/log.h"
#include "lib/wire.h"
#include "proxy/parent_check.h"

int
parent_check_child(const struct msg_hdr *hdr, const char *body)
{
	switch (hdr->type) {
	case CHAN_LOG:
		return log_check(body, hdr->len) == 0 ? CHAN_LOG : -1;
	case CHAN_ACCEPTED:
	case CHAN_ESTABLISHED:
		return MSG_LEN_IS(hdr, 0) ? (int)hdr->type : -1;
	case CHAN_CONNECT:
		return MSG_LEN_IS(hdr, sizeof(struct chan_connect)) ?
		    CHAN_CONNECT : -1;
	case CHAN_PEER:
		return MSG_LEN_IS(hdr, sizeof(struct chan_peer)) ? CHAN_PEER : -1;
	case CHAN_ENDED:
		return MSG_LEN_IS(hdr, sizeof(struct chan_ended)) ? CHAN_ENDED :
		    -1;
	default:
		return -1;
	}
}

int
parent_check_spawner(const struct msg_hdr *hdr, const char *body, int fd,
    int forked, struct spawner_forked *rep)
{
	switch (hdr->type) {
	case SPAWNER_LOG:
		if (fd != -1 || log_check(body, hdr->len) == -1)
			return -1;
		return SPAWNER_LOG;
	case SPAWNER_READY:
		return MSG_LEN_IS(hdr, 0) && fd == -1 ? SPAWNER_READY : -1;
	case SPAWNER_FORKED:
		if (!forked || !MSG_LEN_IS(hdr, sizeof(*rep)))
			return -1;
		memcpy(rep, body, sizeof(*rep));
		/* a child's channel comes with its pid, and only then */
		return (rep->pid > 0) == (fd != -1) ? SPAWNER_FORKED : -1;
	default:
		return -1;
	}
}
