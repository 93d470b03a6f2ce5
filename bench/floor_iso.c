/*
 * bench/floor_iso.c: what forkfloor -i adds to the bare floor, the least
 * that recluse's promise (a child reaches its own connection and nothing
 * else) costs per connection, done as cheaply as this file knows how:
 *
 *  - the key lives in another process, the key server: a child signs
 *    through it, on a channel of its own that the parent hands to the
 *    server when it forks the child, and that the server closes after
 *    one signature (one signature per handshake: the least policy);
 *  - the backend connection is made by another process, the connector,
 *    on a second channel of the child's, handed over the same way: the
 *    child asks with one byte and gets the connected socket back;
 *  - each child, before it accepts, is sandboxed: an empty chroot,
 *    nobody's uid and gid, no new privileges, and a seccomp allow-list
 *    compiled once in the parent (no socket, no connect, no kill).
 *
 * Not what recluse does to the byte (no transcript check in the key
 * server, no route, no parent between the child and the connector, one
 * filter where recluse's child runs its spawner's and its own), so what
 * recluse costs over this is recluse's own.  The child signs through
 * OpenSSL's legacy RSA_METHOD and EC_KEY_METHOD (deprecated, and the
 * cheapest hook libssl has), where recluse uses a provider.
 */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "floor_iso.h"

#define ISO_UID		65534
#define ISO_MAX_KEYS	8
#define ISO_MAX_FD	(1 << 20)

static EC_KEY		*iso_ec[ISO_MAX_KEYS];	/* the key server's keys */
static RSA		*iso_rsa[ISO_MAX_KEYS];
static int		 iso_nkeys;
static int		 iso_key_ctl = -1, iso_conn_ctl = -1;
static int		 iso_kfd = -1;	/* a child's key channel */
static struct sock_fprog iso_prog;
static const char	*iso_root;

static void
iso_die(const char *what)
{
	fprintf(stderr, "forkfloor: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* Send one byte of TAG with FD attached. */
static int
send_fd(int sock, int fd, unsigned char tag)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &tag, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
	    .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

	memset(cbuf, 0, sizeof(cbuf));
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(sock, &mh, 0) == 1 ? 0 : -1;
}

/* Receive one byte into *TAG and the descriptor with it (-1: none). */
static int
recv_fd(int sock, unsigned char *tag)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { tag, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
	    .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm;
	int fd = -1;

	if (recvmsg(sock, &mh, MSG_CMSG_CLOEXEC) != 1)
		return -1;
	if ((cm = CMSG_FIRSTHDR(&mh)) != NULL &&
	    cm->cmsg_type == SCM_RIGHTS)
		memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

/* ---- the two servers ---------------------------------------------------- */

/* The key server's answer on channel CH of key TAG: one signature. */
static void
key_answer(int ch, unsigned char tag)
{
	unsigned char in[1 + 1024], out[1024];
	unsigned int olen = sizeof(out);
	ssize_t n;
	int len = -1;

	if ((n = read(ch, in, sizeof(in))) < 2 || tag >= iso_nkeys)
		return;
	if (iso_ec[tag] != NULL) {
		if (ECDSA_sign(0, in + 1, (int)n - 1, out, &olen,
		    iso_ec[tag]) == 1)
			len = (int)olen;
	} else
		len = RSA_private_encrypt((int)n - 1, in + 1, out,
		    iso_rsa[tag], in[0]);
	if (len > 0)
		(void)write(ch, out, (size_t)len);
}

/* The connector's answer on channel CH: a socket connected to the backend. */
static int iso_backend_port;

static void
conn_answer(int ch, unsigned char tag)
{
	struct sockaddr_in sin;
	unsigned char b;
	int fd;

	if (read(ch, &b, 1) != 1 ||
	    (fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(iso_backend_port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0)
		(void)send_fd(ch, fd, 0);
	close(fd);
}

/*
 * A server's loop: channels arrive on CTL (a tag byte and the descriptor);
 * each is answered once by ANSWER and closed.  Never returns.
 */
static void
serve(int ctl, void (*answer)(int, unsigned char))
{
	static unsigned char tags[ISO_MAX_FD];
	struct epoll_event ev, evs[64];
	unsigned char tag;
	int ep, n, i, fd;

	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		iso_die("epoll_create1");
	ev.events = EPOLLIN;
	ev.data.fd = ctl;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, ctl, &ev) == -1)
		iso_die("epoll_ctl");
	for (;;) {
		if ((n = epoll_wait(ep, evs, 64, -1)) == -1) {
			if (errno == EINTR)
				continue;
			iso_die("epoll_wait");
		}
		for (i = 0; i < n; i++) {
			fd = evs[i].data.fd;
			if (fd != ctl) {
				if (evs[i].events & EPOLLIN)
					answer(fd, tags[fd]);
				close(fd);
				continue;
			}
			if ((fd = recv_fd(ctl, &tag)) == -1)
				_exit(0);	/* the parent is gone */
			if (fd >= ISO_MAX_FD) {
				close(fd);
				continue;
			}
			tags[fd] = tag;
			ev.data.fd = fd;
			if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == -1)
				close(fd);
		}
	}
}

/* Fork a server answering with ANSWER; returns the parent's control end. */
static int
start_server(void (*answer)(int, unsigned char))
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1)
		iso_die("socketpair");
	switch (fork()) {
	case -1:
		iso_die("fork");
		break;
	case 0:
		close(sv[0]);
		serve(sv[1], answer);
		break;
	}
	close(sv[1]);
	return sv[0];
}

/* ---- the child's filter ------------------------------------------------- */

static const int iso_allowed[] = {
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev),
	SCMP_SYS(recvmsg), SCMP_SYS(recvfrom), SCMP_SYS(sendto),
	SCMP_SYS(accept), SCMP_SYS(accept4), SCMP_SYS(shutdown),
	SCMP_SYS(getsockopt), SCMP_SYS(setsockopt), SCMP_SYS(close),
	SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(fcntl), SCMP_SYS(fstat),
	SCMP_SYS(newfstatat), SCMP_SYS(brk), SCMP_SYS(mmap), SCMP_SYS(munmap),
	SCMP_SYS(mremap), SCMP_SYS(madvise), SCMP_SYS(mprotect),
	SCMP_SYS(futex), SCMP_SYS(getrandom), SCMP_SYS(getpid),
	SCMP_SYS(clock_gettime), SCMP_SYS(gettimeofday),
	SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigprocmask),
	SCMP_SYS(exit), SCMP_SYS(exit_group),
};

/* Compile the child's allow-list once, in the parent. */
static void
compile_filter(void)
{
	scmp_filter_ctx ctx;
	struct stat st;
	size_t i;
	int fd;

	if ((ctx = seccomp_init(SCMP_ACT_KILL_PROCESS)) == NULL)
		iso_die("seccomp_init");
	for (i = 0; i < sizeof(iso_allowed) / sizeof(iso_allowed[0]); i++)
		if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, iso_allowed[i], 0) < 0)
			iso_die("seccomp_rule_add");
	if ((fd = memfd_create("filter", MFD_CLOEXEC)) == -1 ||
	    seccomp_export_bpf(ctx, fd) < 0 || fstat(fd, &st) == -1 ||
	    st.st_size <= 0 ||
	    (iso_prog.filter = malloc((size_t)st.st_size)) == NULL ||
	    pread(fd, iso_prog.filter, (size_t)st.st_size, 0) != st.st_size)
		iso_die("seccomp_export_bpf");
	iso_prog.len = (unsigned short)(st.st_size / sizeof(struct sock_filter));
	close(fd);
	seccomp_release(ctx);
}

/* ---- the child's key: a stand-in that signs through the key server ----- */

/* Send IN (with a leading byte LEAD) on the key channel; read the answer. */
static int
key_request(unsigned char lead, const unsigned char *in, int inlen,
    unsigned char *out, int outmax)
{
	unsigned char req[1 + 1024];
	ssize_t n;

	if (iso_kfd == -1 || inlen <= 0 || inlen > 1024)
		return -1;
	req[0] = lead;
	memcpy(req + 1, in, (size_t)inlen);
	if (write(iso_kfd, req, (size_t)inlen + 1) != inlen + 1 ||
	    (n = read(iso_kfd, out, (size_t)outmax)) <= 0)
		return -1;
	close(iso_kfd);
	iso_kfd = -1;
	return (int)n;
}

static int
rsa_priv_enc(int flen, const unsigned char *from, unsigned char *to,
    RSA *rsa, int padding)
{
	return key_request((unsigned char)padding, from, flen, to,
	    RSA_size(rsa));
}

static int
ec_sign(int type, const unsigned char *dgst, int dlen, unsigned char *sig,
    unsigned int *siglen, const BIGNUM *kinv, const BIGNUM *r, EC_KEY *eckey)
{
	int n;

	if ((n = key_request(0, dgst, dlen, sig, ECDSA_size(eckey))) <= 0)
		return 0;
	*siglen = (unsigned int)n;
	return 1;
}

/* A key holding REAL's public half, whose private operation is ours. */
static EVP_PKEY *
standin(EVP_PKEY *real)
{
	static RSA_METHOD *rm;
	static EC_KEY_METHOD *em;
	EVP_PKEY *pk = EVP_PKEY_new();
	const BIGNUM *n, *e;
	RSA *rsa;
	EC_KEY *ec;
	const EC_KEY *rec;

	if (pk == NULL)
		return NULL;
	if (EVP_PKEY_get_base_id(real) == EVP_PKEY_EC) {
		if (em == NULL) {
			em = EC_KEY_METHOD_new(EC_KEY_OpenSSL());
			EC_KEY_METHOD_set_sign(em, ec_sign, NULL, NULL);
		}
		rec = EVP_PKEY_get0_EC_KEY(real);
		if ((ec = EC_KEY_new()) == NULL ||
		    EC_KEY_set_group(ec, EC_KEY_get0_group(rec)) != 1 ||
		    EC_KEY_set_public_key(ec, EC_KEY_get0_public_key(rec)) != 1 ||
		    EC_KEY_set_method(ec, em) != 1 ||
		    EVP_PKEY_assign_EC_KEY(pk, ec) != 1)
			return NULL;
		return pk;
	}
	if (rm == NULL) {
		rm = RSA_meth_dup(RSA_PKCS1_OpenSSL());
		RSA_meth_set_priv_enc(rm, rsa_priv_enc);
	}
	RSA_get0_key(EVP_PKEY_get0_RSA(real), &n, &e, NULL);
	if ((rsa = RSA_new()) == NULL ||
	    RSA_set0_key(rsa, BN_dup(n), BN_dup(e), NULL) != 1 ||
	    RSA_set_method(rsa, rm) != 1 ||
	    EVP_PKEY_assign_RSA(pk, rsa) != 1)
		return NULL;
	RSA_set_flags(rsa, RSA_FLAG_EXT_PKEY);
	return pk;
}

/* ---- the interface ------------------------------------------------------ */

EVP_PKEY *
iso_add_key(EVP_PKEY *real)
{
	if (iso_nkeys == ISO_MAX_KEYS)
		return NULL;
	if (EVP_PKEY_get_base_id(real) == EVP_PKEY_EC) {
		if ((iso_ec[iso_nkeys] = EVP_PKEY_get1_EC_KEY(real)) == NULL)
			return NULL;
	} else if ((iso_rsa[iso_nkeys] = EVP_PKEY_get1_RSA(real)) == NULL)
		return NULL;
	iso_nkeys++;
	return standin(real);
}

void
iso_start(const char *root, int backend_port)
{
	iso_root = root;
	iso_backend_port = backend_port;
	compile_filter();
	iso_key_ctl = start_server(key_answer);
	iso_conn_ctl = start_server(conn_answer);
}

int
iso_channels(int key, int *kfd, int *cfd)
{
	int k[2], c[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, k) == -1)
		return -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, c) == -1) {
		close(k[0]);
		close(k[1]);
		return -1;
	}
	if (send_fd(iso_key_ctl, k[1], (unsigned char)key) == -1 ||
	    send_fd(iso_conn_ctl, c[1], 0) == -1)
		iso_die("hand-over");
	close(k[1]);
	close(c[1]);
	*kfd = k[0];
	*cfd = c[0];
	return 0;
}

void
iso_child(int kfd)
{
	gid_t gid = ISO_UID;

	iso_kfd = kfd;
	close(iso_key_ctl);
	close(iso_conn_ctl);
	if (chroot(iso_root) == -1 || chdir("/") == -1 ||
	    setgroups(1, &gid) == -1 ||
	    setresgid(ISO_UID, ISO_UID, ISO_UID) == -1 ||
	    setresuid(ISO_UID, ISO_UID, ISO_UID) == -1 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &iso_prog, 0, 0) == -1)
		_exit(1);
}

int
iso_connect(int cfd)
{
	unsigned char b = 1, tag;
	int fd;

	if (write(cfd, &b, 1) != 1)
		return -1;
	fd = recv_fd(cfd, &tag);
	close(cfd);
	return fd;
}
