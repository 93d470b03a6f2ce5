/*
 * Datagrams with at most one file descriptor: see msg.h.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "lib/msg.h"

#define MSG_FDS_MAX		4	/* room to see, and close, extra fds */

int
msg_send(int fd, const struct iovec *iov, int iovcnt, int passfd)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	} cmsgbuf;
	struct cmsghdr *cmsg;
	struct msghdr msg;
	size_t total = 0;
	ssize_t n;
	int i;

	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = (struct iovec *)iov;
	msg.msg_iovlen = (size_t)iovcnt;
	for (i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	if (passfd != -1) {
		memset(&cmsgbuf, 0, sizeof(cmsgbuf));
		msg.msg_control = cmsgbuf.buf;
		msg.msg_controllen = sizeof(cmsgbuf.buf);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cmsg), &passfd, sizeof(int));
	}
	do
		n = sendmsg(fd, &msg, MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return -1;
	if ((size_t)n != total) {
		errno = EMSGSIZE;
		return -1;
	}
	return 0;
}

/*
 * Keep at most one SCM_RIGHTS fd, and only if the caller wants one.
 * Return 0, -1 for ancillary data the caller did not want, or -2 when a
 * descriptor was wanted but the kernel could not install it here: the
 * control data was cut short (MSG_CTRUNC) although the buffer had room for
 * more descriptors than came, which is what EMFILE in recvmsg(2) looks
 * like (the datagram itself is delivered, its descriptors are dropped).
 */
static int
msg_fds(struct msghdr *msg, int *fdp)
{
	struct cmsghdr *cmsg;
	int bad = (msg->msg_flags & MSG_CTRUNC) != 0, fds[MSG_FDS_MAX];
	size_t i, nfds, got = 0;

	for (cmsg = CMSG_FIRSTHDR(msg); cmsg != NULL;
	    cmsg = CMSG_NXTHDR(msg, cmsg)) {
		if (cmsg->cmsg_level != SOL_SOCKET ||
		    cmsg->cmsg_type != SCM_RIGHTS) {
			bad = 1;
			continue;
		}
		nfds = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if (nfds > MSG_FDS_MAX)
			nfds = MSG_FDS_MAX;
		got += nfds;
		memcpy(fds, CMSG_DATA(cmsg), nfds * sizeof(int));
		for (i = 0; i < nfds; i++) {
			if (fdp != NULL && *fdp == -1 && !bad)
				*fdp = fds[i];
			else {
				close(fds[i]);
				bad = 1;
			}
		}
	}
	if (bad && fdp != NULL && *fdp != -1) {
		close(*fdp);
		*fdp = -1;
	}
	if (bad && fdp != NULL && (msg->msg_flags & MSG_CTRUNC) != 0 &&
	    got < MSG_FDS_MAX)
		return -2;
	return bad ? -1 : 0;
}

ssize_t
msg_recv(int fd, void *buf, size_t bufsize, int *fdp, int flags)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int) * MSG_FDS_MAX)];
	} cmsgbuf;
	struct msghdr msg;
	struct iovec iov;
	ssize_t n;

	if (fdp != NULL)
		*fdp = -1;
	memset(&msg, 0, sizeof(msg));
	iov.iov_base = buf;
	iov.iov_len = bufsize;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cmsgbuf.buf;
	msg.msg_controllen = sizeof(cmsgbuf.buf);
	do
		n = recvmsg(fd, &msg, flags | MSG_CMSG_CLOEXEC);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return -1;
	switch (msg_fds(&msg, fdp)) {
	case -1:
		errno = EBADMSG;
		return -1;
	case -2:
		errno = EMFILE;
		return -1;
	}
	if ((msg.msg_flags & MSG_TRUNC) != 0) {
		if (fdp != NULL && *fdp != -1) {
			close(*fdp);
			*fdp = -1;
		}
		errno = EMSGSIZE;
		return -1;
	}
	return n;
}
