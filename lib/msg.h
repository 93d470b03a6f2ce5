/*
 * Datagrams with at most one file descriptor, for the SOCK_SEQPACKET
 * channels between recluse's processes, and the one framing every message
 * has on them: a struct msg_hdr {type, len}, then len bytes (lib/wire.h).
 */
#ifndef MSG_H
#define MSG_H

#include <sys/types.h>
#include <sys/uio.h>

#include <stddef.h>
#include <stdint.h>

#include "lib/wire.h"

#define MSG_IOV_MAX	8	/* body pieces of one msg_putv() */
#define MSG_PACK_MAX	2048	/* messages sent with send(2), see below */

/*
 * msg_putv(fd, type, iov, iovcnt, passfd, flags):
 * Send one message: a struct msg_hdr of type, whose len is the total of
 * the iovcnt (<= MSG_IOV_MAX) body pieces, then those pieces, with passfd
 * attached unless it is -1.  flags (MSG_DONTWAIT) go to the send; it never
 * raises SIGPIPE.  A message of at most MSG_PACK_MAX bytes without a
 * descriptor is copied and sent with send(2), the one way a connection
 * child may send (its filter has no sendmsg(2)); others go by sendmsg(2).
 * Return 0, or -1 with errno set (a short send counts as EMSGSIZE).
 */
int	msg_putv(int fd, uint32_t type, const struct iovec *iov, int iovcnt,
	    int passfd, int flags);

/*
 * msg_put(fd, type, body, len, passfd, flags):
 * msg_putv() with one body piece of len bytes (body may be NULL if len is
 * 0).
 */
int	msg_put(int fd, uint32_t type, const void *body, size_t len,
	    int passfd, int flags);

/*
 * msg_get(fd, buf, bufsize, hdr, fdp, flags):
 * Receive one message into buf (header included, so the body starts at
 * buf + sizeof(struct msg_hdr)) and copy its header to *hdr.  fdp and
 * flags as for msg_recv().  Return the message's length (0 at EOF), or -1
 * with errno set as msg_recv() does, and EBADMSG when the message is
 * shorter than a header or its header's len is not the rest of it (a
 * descriptor that came with it is closed).
 */
ssize_t	msg_get(int fd, void *buf, size_t bufsize, struct msg_hdr *hdr,
	    int *fdp, int flags);

/*
 * msg_send(fd, iov, iovcnt, passfd):
 * Send one datagram made of iov, with passfd attached (SCM_RIGHTS) unless
 * it is -1.  Never raises SIGPIPE.  Return 0, or -1 with errno set (a
 * short send counts as EMSGSIZE).
 */
int	msg_send(int fd, const struct iovec *iov, int iovcnt, int passfd);

/*
 * msg_recv(fd, buf, bufsize, fdp, flags):
 * Receive one datagram into buf.  With fdp non-NULL, a file descriptor
 * that came with it is returned in *fdp (close-on-exec), or -1 if none;
 * with fdp NULL, any that came are closed.  flags go to recvmsg(2).
 * Return its length (0 at EOF), or -1 with errno set: EMSGSIZE when the
 * datagram did not fit in bufsize, EBADMSG for unexpected ancillary data.
 */
ssize_t	msg_recv(int fd, void *buf, size_t bufsize, int *fdp, int flags);

#endif
