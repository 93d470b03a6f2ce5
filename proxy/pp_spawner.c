/*
 * SPAWNER_PP: see pp_spawner.h.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/msg.h"
#include "lib/wire.h"
#include "proxy/pp_spawner.h"

_Static_assert(SPAWNER_PP_FROM_MAX == CONF_PP_FROM_MAX, "same limit");
_Static_assert(sizeof(struct msg_hdr) + sizeof(struct spawner_pp) +
    SPAWNER_PP_FROM_MAX * sizeof(struct spawner_cidr) <= SPAWNER_MSG_MAX,
    "SPAWNER_PP fits the spawner's buffer");

int
pp_spawner_send(int fd, const struct conf_listener *l)
{
	struct spawner_cidr *cs;
	struct spawner_pp m;
	struct iovec iov[2];
	size_t i;
	int rc;

	if (l->proxy_protocol == 0 && l->npp_from == 0)
		return 0;
	if (l->npp_from > SPAWNER_PP_FROM_MAX) {
		errno = EINVAL;
		return -1;
	}
	if ((cs = calloc(l->npp_from + 1, sizeof(*cs))) == NULL)
		return -1;
	for (i = 0; i < l->npp_from; i++) {
		cs[i].family = (uint32_t)l->pp_from[i].family;
		cs[i].prefix = l->pp_from[i].prefix;
		memcpy(cs[i].addr, l->pp_from[i].addr, sizeof(cs[i].addr));
	}
	memset(&m, 0, sizeof(m));
	m.version = (uint32_t)l->proxy_protocol;
	m.nfrom = (uint32_t)l->npp_from;
	iov[0].iov_base = &m;
	iov[0].iov_len = sizeof(m);
	iov[1].iov_base = cs;
	iov[1].iov_len = l->npp_from * sizeof(*cs);
	rc = msg_putv(fd, SPAWNER_PP, iov, 2, -1, 0);
	free(cs);
	return rc;
}

int
pp_spawner_rx(const struct msg_hdr *hdr, const uint8_t *body,
    struct conf_listener *l)
{
	struct spawner_cidr c;
	struct spawner_pp m;
	size_t i;

	if (l->proxy_protocol != 0 || l->pp_from != NULL ||
	    hdr->len < sizeof(m))
		return -1;
	memcpy(&m, body, sizeof(m));
	if (m.version > 2 || m.nfrom > SPAWNER_PP_FROM_MAX ||
	    (m.version == 0 && m.nfrom == 0) ||
	    !MSG_LEN_IS(hdr, sizeof(m) + (uint64_t)m.nfrom * sizeof(c)))
		return -1;
	if (m.nfrom > 0 &&
	    (l->pp_from = calloc(m.nfrom, sizeof(*l->pp_from))) == NULL)
		return -1;
	for (i = 0; i < m.nfrom; i++) {
		memcpy(&c, body + sizeof(m) + i * sizeof(c), sizeof(c));
		if ((c.family != AF_INET || c.prefix > 32) &&
		    (c.family != AF_INET6 || c.prefix > 128))
			return -1;
		l->pp_from[i].family = (int)c.family;
		l->pp_from[i].prefix = c.prefix;
		memcpy(l->pp_from[i].addr, c.addr, sizeof(c.addr));
	}
	l->npp_from = m.nfrom;
	l->proxy_protocol = (int)m.version;
	return 0;
}
