/*
 * Datagrams with at most one file descriptor, and their framing: see msg.h.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "lib/msg.h"

#define MSG_FDS_MAX		4	/* room to see, and close, extra fds */

static int
msg_sendf(int fd, const struct iovec *iov, int iovcnt, int passfd, int flags)
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
		n = sendmsg(fd, &msg, flags | MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return -1;
	if ((size_t)n != total) {
		errno = EMSGSIZE;
		return -1;
	}
	return 0;
}

int
msg_send(int fd, const struct iovec *iov, int iovcnt, int passfd)
{
	return msg_sendf(fd, iov, iovcnt, passfd, 0);
}

/* Keep at most one SCM_RIGHTS fd, and only if the caller wants one. */
static int
msg_fds(struct msghdr *msg, int *fdp)
{
	struct cmsghdr *cmsg;
	int bad = (msg->msg_flags & MSG_CTRUNC) != 0, fds[MSG_FDS_MAX];
	size_t i, nfds;

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
	if (msg_fds(&msg, fdp) == -1) {
		errno = EBADMSG;
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

/* A small message without a descriptor: one copy, one send(2). */
static int
msg_pack_send(int fd, const struct iovec *iov, int iovcnt, size_t total,
    int flags)
{
	char buf[MSG_PACK_MAX];
	size_t off = 0;
	ssize_t n;
	int i;

	for (i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > 0)
			memcpy(buf + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	do
		n = send(fd, buf, total, flags | MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return -1;
	if ((size_t)n != total) {
		errno = EMSGSIZE;
		return -1;
	}
	return 0;
}

int
msg_putv(int fd, uint32_t type, const struct iovec *iov, int iovcnt,
    int passfd, int flags)
{
	struct iovec v[MSG_IOV_MAX + 1];
	struct msg_hdr hdr;
	size_t len = 0;
	int i;

	if (iovcnt < 0 || iovcnt > MSG_IOV_MAX) {
		errno = EINVAL;
		return -1;
	}
	for (i = 0; i < iovcnt; i++) {
		len += iov[i].iov_len;
		v[i + 1] = iov[i];
	}
	if (len > UINT32_MAX - sizeof(hdr)) {
		errno = EMSGSIZE;
		return -1;
	}
	hdr.type = type;
	hdr.len = (uint32_t)len;
	v[0].iov_base = &hdr;
	v[0].iov_len = sizeof(hdr);
	if (passfd == -1 && sizeof(hdr) + len <= MSG_PACK_MAX)
		return msg_pack_send(fd, v, iovcnt + 1, sizeof(hdr) + len,
		    flags);
	return msg_sendf(fd, v, iovcnt + 1, passfd, flags);
}

int
msg_put(int fd, uint32_t type, const void *body, size_t len, int passfd,
    int flags)
{
	struct iovec iov = { .iov_base = (void *)body, .iov_len = len };

	return msg_putv(fd, type, &iov, 1, passfd, flags);
}
ssize_t
msg_get(int fd, void *buf, size_t bufsize, struct msg_hdr *hdr, int *fdp,
    int flags)
{
	ssize_t n;

	if ((n = msg_recv(fd, buf, bufsize, fdp, flags)) <= 0)
		return n;
	if ((size_t)n >= sizeof(*hdr)) {
		memcpy(hdr, buf, sizeof(*hdr));
		if (MSG_LEN_IS(hdr, (size_t)n - sizeof(*hdr)))
			return n;
	}
	if (fdp != NULL && *fdp != -1) {
		close(*fdp);
		*fdp = -1;
	}
	errno = EBADMSG;
	return -1;
}
