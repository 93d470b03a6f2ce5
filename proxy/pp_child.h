/*
 * The PROXY protocol in a connection child: the header a load balancer
 * in front sends (read before the TLS handshake, only from the
 * listener's proxy-protocol-from addresses), and the header the child
 * writes to its backend before any of the client's bytes.
 */
#ifndef PP_CHILD_H
#define PP_CHILD_H

#include <sys/socket.h>

#include <time.h>

#include "config/conf.h"
#include "proxy/clientcert.h"

struct tls;

/* One connection's addresses. */
struct pp_conn {
	struct sockaddr_storage	 peer;	/* who connected to us */
	struct sockaddr_storage	 src;	/* the client, as a header told us;
					   AF_UNSPEC: none told (peer) */
	struct sockaddr_storage	 dst;	/* the address it reached, likewise */
	int			 proxied;	/* a header was accepted */
};

/*
 * pp_child_receive(l, fd, pc, deadline, end, err, errlen):
 * If pc->peer is in l's proxy-protocol-from, read a PROXY header (v1 or
 * v2) from the client socket fd, not one byte beyond it, by *deadline;
 * on success set pc->proxied and, unless the header was LOCAL or
 * UNKNOWN, pc->src and pc->dst.  Return 0 (also when no header was
 * due), or -1 with the reason in *end ("proxy-header-bad",
 * "proxy-header-truncated", "proxy-header-timeout", "internal-error")
 * and a message, with nothing of the peer's bytes in it, in err.
 */
int	pp_child_receive(const struct conf_listener *l, int fd,
	    struct pp_conn *pc, const struct timespec *deadline,
	    const char **end, char *err, size_t errlen);

/*
 * pp_child_send(version, bfd, cfd, cctx, pc, cc, timeout):
 * Unless version is 0, write a PROXY header of that version (1 or 2;
 * route_proxy_protocol()) to the backend socket bfd, within
 * timeout seconds: the client and the address it reached (from a
 * received header, else cfd's peer and local address), and in v2 the
 * agreed ALPN, the SNI and the SSL TLV of cctx's connection, with the
 * client certificate cc (proxy/clientcert.h).  Return 0, or -1 with
 * errno.
 */
int	pp_child_send(int version, int bfd, int cfd,
	    struct tls *cctx, const struct pp_conn *pc,
	    const struct clientcert *cc, int timeout);

#endif
