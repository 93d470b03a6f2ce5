/*
 * Datagrams with at most one file descriptor, for the SOCK_SEQPACKET
 * channels: keyproc's (control and children's) and the parent's channels
 * to its children (proxy/spawn.c).
 */
#ifndef MSG_H
#define MSG_H

#include <sys/types.h>
#include <sys/uio.h>

#include <stddef.h>

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
 * datagram did not fit in bufsize, EBADMSG for unexpected ancillary data,
 * EMFILE (with fdp non-NULL) when a descriptor came but this process had
 * no room for it: the datagram is lost, and the caller is out of
 * descriptors, not facing a peer that broke the protocol.
 */
ssize_t	msg_recv(int fd, void *buf, size_t bufsize, int *fdp, int flags);

#endif
