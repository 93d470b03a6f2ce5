/*
 * The parent's side of the keyproc control channel (keyproc.h), and the
 * parent's half of its wire format (lib/wire.h).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "keyproc/keyproc.h"
#include "lib/msg.h"
#include "lib/wire.h"
#include "lib/deadline.h"
#include "lib/log.h"
#include "lib/role.h"

#define KP_CTL_READY_TIMEOUT	10000	/* ms: loading 4096-bit keys included */
#define KP_CTL_MSG_MAX		(sizeof(struct msg_hdr) + \
				    sizeof(struct kp_ctl_key) + KP_SPKI_MAX + \
				    KP_PATH_MAX)


static int
kp_ctl_sendv(int fd, uint32_t type, const void *body, size_t bodylen,
    const void *a, size_t alen, const void *b, size_t blen, int passfd)
{
	struct iovec iov[3];

	iov[0].iov_base = (void *)body;
	iov[0].iov_len = bodylen;
	iov[1].iov_base = (void *)a;
	iov[1].iov_len = alen;
	iov[2].iov_base = (void *)b;
	iov[2].iov_len = blen;
	return msg_putv(fd, type, iov, 3, passfd, 0);
}

int
kp_ctl_spawn_exe(const char *exe, pid_t *pidp, int *fdp)
{
	int sp[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) == -1)
		return -1;
	if ((pid = fork()) == -1) {
		close(sp[0]);
		close(sp[1]);
		return -1;
	}
	if (pid == 0)
		role_exec(exe, KEYPROC_ARGV0, 0, &sp[1], 1, NULL);
	close(sp[1]);
	*pidp = pid;
	*fdp = sp[0];
	return 0;
}

unsigned int
kp_ctl_signers_auto(void)
{
	cpu_set_t set;
	int n;

	/* one CPU for keyproc's loop, the others for signers */
	if (sched_getaffinity(0, sizeof(set), &set) == -1 ||
	    (n = CPU_COUNT(&set) - 1) < 1)
		return 1;
	return n > KP_SIGNERS_MAX ? KP_SIGNERS_MAX : (unsigned int)n;
}

int
kp_ctl_spawn(pid_t *pidp, int *fdp)
{
	return kp_ctl_spawn_exe("/proc/self/exe", pidp, fdp);
}

int
kp_ctl_send_key(int fd, uint32_t listener, uint32_t key, const uint8_t *spki,
    size_t spkilen, const char *path, int keyfd)
{
	struct kp_ctl_key k;
	size_t pathlen = strlen(path);

	if (spkilen == 0 || spkilen > KP_SPKI_MAX || pathlen == 0 ||
	    pathlen > KP_PATH_MAX || keyfd == -1) {
		errno = EINVAL;
		return -1;
	}
	memset(&k, 0, sizeof(k));
	k.listener = listener;
	k.key = key;
	k.spkilen = (uint32_t)spkilen;
	k.pathlen = (uint32_t)pathlen;
	return kp_ctl_sendv(fd, KP_CTL_KEY, &k, sizeof(k), spki, spkilen,
	    path, pathlen, keyfd);
}

int
kp_ctl_send_listener(int fd, uint32_t listener, uint32_t protocols,
    uint32_t handshake_ms)
{
	struct kp_ctl_listener l;

	if (protocols == 0 || (protocols & ~KP_PROTO_ALL) != 0 ||
	    handshake_ms == 0 || handshake_ms > KP_HANDSHAKE_MS_MAX) {
		errno = EINVAL;
		return -1;
	}
	memset(&l, 0, sizeof(l));
	l.listener = listener;
	l.protocols = protocols;
	l.handshake_ms = handshake_ms;
	return kp_ctl_sendv(fd, KP_CTL_LISTENER, &l, sizeof(l), NULL, 0, NULL,
	    0, -1);
}

int
kp_ctl_send_start(int fd, uid_t uid, gid_t gid, int verbose,
    unsigned int signers, const char *chroot)
{
	struct kp_ctl_start s;
	size_t pathlen = strlen(chroot);

	if (pathlen == 0 || pathlen > KP_PATH_MAX || signers == 0 ||
	    signers > KP_SIGNERS_MAX) {
		errno = EINVAL;
		return -1;
	}
	memset(&s, 0, sizeof(s));
	s.uid = (uint32_t)uid;
	s.gid = (uint32_t)gid;
	s.verbose = verbose < 0 ? 0 : (uint32_t)verbose;
	s.signers = signers;
	s.pathlen = (uint32_t)pathlen;
	return kp_ctl_sendv(fd, KP_CTL_START, &s, sizeof(s), chroot, pathlen,
	    NULL, 0, -1);
}

int
kp_ctl_send_child(int fd, pid_t pid, uint32_t listener, int chanfd)
{
	struct kp_ctl_child c;

	memset(&c, 0, sizeof(c));
	c.pid = (uint32_t)pid;
	c.listener = listener;
	return kp_ctl_sendv(fd, KP_CTL_CHILD, &c, sizeof(c), NULL, 0, NULL, 0,
	    chanfd);
}

int
kp_ctl_send_arm(int fd, pid_t pid)
{
	struct kp_ctl_arm a;

	memset(&a, 0, sizeof(a));
	a.pid = (uint32_t)pid;
	return kp_ctl_sendv(fd, KP_CTL_ARM, &a, sizeof(a), NULL, 0, NULL, 0,
	    -1);
}

int
kp_ctl_send_ping(int fd, uint32_t seq)
{
	struct kp_ctl_ping p;

	memset(&p, 0, sizeof(p));
	p.seq = seq;
	return kp_ctl_sendv(fd, KP_CTL_PING, &p, sizeof(p), NULL, 0, NULL, 0,
	    -1);
}

/*
 * One message from keyproc: log lines are relayed here; return the type
 * of anything else (with the body NUL-terminated in buf, its header in
 * *hdrp), 0 when nothing was waiting (MSG_DONTWAIT), or -1 when keyproc
 * is gone or broke the protocol.
 */
static int
kp_ctl_recv1(int fd, char *buf, size_t bufsize, int flags,
    struct msg_hdr *hdrp)
{
	char *body = buf + sizeof(*hdrp);
	ssize_t n;

	n = msg_get(fd, buf, bufsize - 1, hdrp, NULL, flags);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (n <= 0)
		return -1;
	if (hdrp->type == KP_CTL_LOG)
		return log_relay("keyproc", body, hdrp->len) == 0 ?
		    KP_CTL_LOG : -1;
	memmove(buf, body, hdrp->len);
	buf[hdrp->len] = '\0';
	return (int)hdrp->type;
}

int
kp_ctl_wait_ready(int fd, char *err, size_t errlen)
{
	char buf[LOG_MSG_MAX + 64];
	struct timespec deadline;
	struct pollfd pfd;
	struct msg_hdr hdr;
	long ms;
	int type, r;

	deadline_in(&deadline, KP_CTL_READY_TIMEOUT / 1000);
	for (;;) {
		pfd.fd = fd;
		pfd.events = POLLIN;
		if ((ms = deadline_ms_left(&deadline)) == 0) {
			snprintf(err, errlen, "keyproc: no answer in %d s",
			    KP_CTL_READY_TIMEOUT / 1000);
			return -1;
		}
		if ((r = poll(&pfd, 1, (int)ms)) == -1 && errno != EINTR) {
			snprintf(err, errlen, "keyproc: poll: %s",
			    strerror(errno));
			return -1;
		}
		if (r <= 0)
			continue;
		switch ((type = kp_ctl_recv1(fd, buf, sizeof(buf),
		    MSG_DONTWAIT, &hdr))) {
		case 0:
		case KP_CTL_LOG:
			continue;
		case KP_CTL_READY:
			return 0;
		case KP_CTL_ERROR:
			snprintf(err, errlen, "%s", buf);
			return -1;
		default:
			snprintf(err, errlen, "keyproc exited before it was "
			    "ready");
			return -1;
		}
	}
}

int
kp_ctl_read(int fd, uint32_t *seqp)
{
	char buf[LOG_MSG_MAX + 64];
	struct kp_ctl_ping p;
	struct msg_hdr hdr;
	int type;

	switch ((type = kp_ctl_recv1(fd, buf, sizeof(buf), MSG_DONTWAIT,
	    &hdr))) {
	case 0:
	case KP_CTL_LOG:
		return type;
	case KP_CTL_PONG:
		if (!MSG_LEN_IS(&hdr, sizeof(p)))
			return -1;
		memcpy(&p, buf, sizeof(p));
		if (seqp != NULL)
			*seqp = p.seq;
		return type;
	default:
		return -1;
	}
}
