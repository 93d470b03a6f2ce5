/*
 * kpdriver: plays the parent for keyproc, to test it through its wire
 * formats (lib/wire.h).
 *
 *   kpdriver -x RECLUSE -r CHROOT -u USER [-v] [-s SIGNERS]
 *       -k L,K,KEYFILE,CERTFILE ... [-l L,VERSIONS,MS ...] MODE
 *
 * It starts RECLUSE as keyproc exactly as the parent does (kp_ctl.c),
 * describes every listener that has a key (-l: VERSIONS "1.2", "1.3" or
 * "1.2+1.3", the handshake timeout in ms; by default both versions and
 * 10000 ms), sends key K of listener L for every -k, then START with the
 * chroot, the user and SIGNERS (keyproc-signers; 1 by default), and
 * then, by MODE:
 *
 *   load    print "ready" or "error: MESSAGE" (exit 1)
 *   pause   print "ready" and "keyproc pid N", make one signature, wait
 *           until stdin reaches EOF
 *   policy  run the scripted requests below on channels of its own
 *           (listener 0 must hold an RSA key 0, listener 1 an EC P-256
 *           key 0 and an RSA key 1, listener 2 an RSA key 0 and TLS 1.3
 *           only, listener 3 an EC P-256 key 0 and TLS 1.2 only, listener
 *           4 an EC P-384 key 0): one line "case NAME: RESULT (expected X)"
 *           each, RESULT being "signed" (the signature verifies with the
 *           certificate), "closed" (keyproc closed the channel) or "no
 *           answer" (none within NOANSWER_MS)
 *   arm     requests before and after KP_CTL_ARM (listener 0, RSA)
 *   expire  requests before and after the handshake timeout from the arm
 *           (listener 0, RSA, a timeout well under a second)
 *   retire  close the control channel with an armed and an unarmed
 *           channel open (listener 0), and time keyproc's exit while the
 *           armed one stays open: "keyproc gone N ms after EOF"
 *   sign N  make N signatures, one per channel, and print "signed N"
 *   many N C  make N signatures, C channels at a time (at most 1024):
 *           C channels made and armed, a request sent on each (key i of
 *           the -k list for channel i, a TLS 1.3 input with a random
 *           hash, the curve's hash for ECDSA), then every answer read
 *           and verified against its own channel's input; print
 *           "signed N of N, C at a time"
 *
 * Every channel is handed over with a pid of its own (a made-up one: it
 * only names the channel in KP_CTL_ARM and in keyproc's log lines) and
 * armed at once unless the mode says otherwise.  At the end it closes the
 * control channel and prints how keyproc ended ("keyproc exit 0").
 * keyproc's log lines go to stderr.  Exit 0 when every case went as
 * expected.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "keyproc/keyproc.h"
#include "lib/msg.h"
#include "lib/wire.h"
#include "lib/log.h"

#define MAXKEYS		8
#define MAXLISTENERS	8
#define WAIT_MS		5000
#define NOANSWER_MS	500	/* "no answer": not within this */
#define FIRST_PID	100000	/* made-up pids for the channels */

struct dkey {
	uint32_t	 listener, key;
	const char	*keyfile;
	EVP_PKEY	*pub;
	unsigned char	*spki;
	int		 spkilen;
};

/* A -l option: what the parent says of a listener. */
struct dlistener {
	uint32_t	 listener, protocols, handshake_ms;
};

static struct dkey	 keys[MAXKEYS];
static int		 nkeys;
static struct dlistener	 listeners[MAXLISTENERS];
static int		 nlisteners;
static int		 ctlfd = -1;
static pid_t		 kppid;
static int		 kpstatus = -1;	/* once reaped */
static int		 nfail;
static pid_t		 nextpid = FIRST_PID;
static unsigned int	 signers = 1;

/* ------------------------------------------------------------------ */
/* set-up                                                              */

static void
add_key(const char *spec)
{
	char *s, *l, *k, *keyfile, *certfile;
	struct dkey *d;
	X509 *x;
	FILE *f;

	if (nkeys == MAXKEYS)
		errx(2, "too many keys");
	if ((s = strdup(spec)) == NULL)
		err(2, "strdup");
	l = strsep(&s, ",");
	k = strsep(&s, ",");
	keyfile = strsep(&s, ",");
	certfile = s;
	if (l == NULL || k == NULL || keyfile == NULL || certfile == NULL)
		errx(2, "-k L,K,KEYFILE,CERTFILE");
	d = &keys[nkeys++];
	d->listener = (uint32_t)strtoul(l, NULL, 10);
	d->key = (uint32_t)strtoul(k, NULL, 10);
	d->keyfile = keyfile;
	if ((f = fopen(certfile, "r")) == NULL)
		err(2, "%s", certfile);
	if ((x = PEM_read_X509(f, NULL, NULL, NULL)) == NULL)
		errx(2, "%s: no certificate", certfile);
	fclose(f);
	d->pub = X509_get_pubkey(x);
	d->spkilen = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &d->spki);
	X509_free(x);
	if (d->pub == NULL || d->spkilen <= 0)
		errx(2, "%s: no public key", certfile);
}

static void
add_listener(const char *spec)
{
	char *s, *l, *v, *ms;
	struct dlistener *d;

	if (nlisteners == MAXLISTENERS)
		errx(2, "too many listeners");
	if ((s = strdup(spec)) == NULL)
		err(2, "strdup");
	l = strsep(&s, ",");
	v = strsep(&s, ",");
	ms = s;
	if (l == NULL || v == NULL || ms == NULL)
		errx(2, "-l L,VERSIONS,MS");
	d = &listeners[nlisteners++];
	d->listener = (uint32_t)strtoul(l, NULL, 10);
	d->handshake_ms = (uint32_t)strtoul(ms, NULL, 10);
	if (strcmp(v, "1.2") == 0)
		d->protocols = KP_PROTO_TLS12;
	else if (strcmp(v, "1.3") == 0)
		d->protocols = KP_PROTO_TLS13;
	else if (strcmp(v, "1.2+1.3") == 0)
		d->protocols = KP_PROTO_ALL;
	else
		errx(2, "%s: versions are 1.2, 1.3 or 1.2+1.3", v);
}

static const struct dlistener *
find_listener(uint32_t l)
{
	int i;

	for (i = 0; i < nlisteners; i++)
		if (listeners[i].listener == l)
			return &listeners[i];
	return NULL;
}

/* Every listener that has a key is described, by -l or by default. */
static void
describe_listeners(void)
{
	struct dlistener *d;
	int i;

	for (i = 0; i < nkeys; i++) {
		if (find_listener(keys[i].listener) != NULL)
			continue;
		if (nlisteners == MAXLISTENERS)
			errx(2, "too many listeners");
		d = &listeners[nlisteners++];
		d->listener = keys[i].listener;
		d->protocols = KP_PROTO_ALL;
		d->handshake_ms = 10000;
	}
	for (i = 0; i < nlisteners; i++)
		if (kp_ctl_send_listener(ctlfd, listeners[i].listener,
		    listeners[i].protocols, listeners[i].handshake_ms) == -1)
			err(2, "send listener");
}

static int
start_keyproc(const char *exe, const char *root, const char *user,
    int verbose)
{
	char errbuf[1024];
	struct passwd *pw;
	int i, fd;

	if ((pw = getpwnam(user)) == NULL)
		errx(2, "%s: no such user", user);
	if (kp_ctl_spawn_exe(exe, &kppid, &ctlfd) == -1)
		err(2, "spawn");
	describe_listeners();
	for (i = 0; i < nkeys; i++) {
		if ((fd = open(keys[i].keyfile, O_RDONLY | O_CLOEXEC)) == -1)
			err(2, "%s", keys[i].keyfile);
		if (kp_ctl_send_key(ctlfd, keys[i].listener, keys[i].key,
		    keys[i].spki, (size_t)keys[i].spkilen, keys[i].keyfile,
		    fd) == -1)
			err(2, "send key");
		close(fd);
	}
	if (kp_ctl_send_start(ctlfd, pw->pw_uid, pw->pw_gid, verbose,
	    signers, root) == -1)
		err(2, "send start");
	if (kp_ctl_wait_ready(ctlfd, errbuf, sizeof(errbuf)) == -1) {
		printf("error: %s\n", errbuf);
		return -1;
	}
	printf("ready\n");
	return 0;
}

/* Relay what keyproc logged so far, after our own lines. */
static void
drain_log(void)
{
	struct pollfd pfd;

	fflush(stdout);
	if (ctlfd == -1)
		return;
	pfd.fd = ctlfd;
	pfd.events = POLLIN;
	while (poll(&pfd, 1, 20) == 1)
		if (kp_ctl_read(ctlfd, NULL) == -1)
			break;
}

/* Wait up to ms for keyproc to exit, relaying its log; 0 once it has. */
static int
wait_keyproc(int ms)
{
	int i, status;

	for (i = 0; kpstatus == -1 && i < ms / 10; i++) {
		if (waitpid(kppid, &status, WNOHANG) == kppid) {
			kpstatus = status;
			break;
		}
		drain_log();
		usleep(10000);
	}
	drain_log();
	return kpstatus == -1 ? -1 : 0;
}

static void
stop_keyproc(void)
{
	drain_log();
	if (ctlfd != -1)
		close(ctlfd);
	ctlfd = -1;
	if (wait_keyproc(5000) == -1) {
		printf("keyproc still running\n");
		kill(kppid, SIGKILL);
		waitpid(kppid, NULL, 0);
		nfail++;
		return;
	}
	if (WIFEXITED(kpstatus))
		printf("keyproc exit %d\n", WEXITSTATUS(kpstatus));
	else
		printf("keyproc killed by signal %d\n", WTERMSIG(kpstatus));
}

/* Tell keyproc that the child of channel pid holds a connection. */
static void
arm(pid_t pid)
{
	if (kp_ctl_send_arm(ctlfd, pid) == -1)
		err(2, "send arm");
}

/* A new channel to keyproc, bound to listener l under pid; not armed. */
static int
new_channel_pid(uint32_t l, pid_t pid)
{
	int sp[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) == -1)
		err(2, "socketpair");
	if (kp_ctl_send_child(ctlfd, pid, l, sp[1]) == -1)
		err(2, "send child");
	close(sp[1]);
	return sp[0];
}

/* A new channel under a pid of its own, armed: a child that accepted. */
static int
new_channel(uint32_t l)
{
	pid_t pid = nextpid++;
	int fd;

	fd = new_channel_pid(l, pid);
	arm(pid);
	return fd;
}

/* ------------------------------------------------------------------ */
/* to-be-signed inputs                                                 */

enum shape {
	T13_32, T13_48, T13_64, T13_CLIENT, T13_BADCTX, T13_NONUL,
	T12_X25519, T12_P256, T12_P384, T12_P521, T12_X448,
	T12_BADTYPE, T12_BADGROUP, T12_BADPOINTLEN, T12_TRAILING,
	T12_COMPRESSED, RAW32, RANDOM130
};

static size_t
tls13(uint8_t *p, const char *ctx, size_t hashlen)
{
	memset(p, 0x20, 64);
	memcpy(p + 64, ctx, 33);
	p[97] = 0;
	RAND_bytes(p + 98, (int)hashlen);
	return 98 + hashlen;
}

static size_t
tls12(uint8_t *p, int type, int group, size_t pointlen, size_t reallen,
    int first)
{
	RAND_bytes(p, 64);
	p[64] = (uint8_t)type;
	p[65] = (uint8_t)(group >> 8);
	p[66] = (uint8_t)group;
	p[67] = (uint8_t)pointlen;
	RAND_bytes(p + 68, (int)reallen);
	if (first != -1)
		p[68] = (uint8_t)first;
	return 68 + reallen;
}

static size_t
make_tbs(enum shape s, uint8_t *p)
{
	static const char srv[] = "TLS 1.3, server CertificateVerify";
	static const char cli[] = "TLS 1.3, client CertificateVerify";
	static const char bad[] = "TLS 1.3, server CertificateVerifx";
	size_t n;

	switch (s) {
	case T13_32:
		return tls13(p, srv, 32);
	case T13_48:
		return tls13(p, srv, 48);
	case T13_64:
		return tls13(p, srv, 64);
	case T13_CLIENT:
		return tls13(p, cli, 32);
	case T13_BADCTX:
		return tls13(p, bad, 32);
	case T13_NONUL:
		n = tls13(p, srv, 32);
		p[97] = 1;
		return n;
	case T12_X25519:
		return tls12(p, 3, 29, 32, 32, -1);
	case T12_P256:
		return tls12(p, 3, 23, 65, 65, 4);
	case T12_P384:
		return tls12(p, 3, 24, 97, 97, 4);
	case T12_P521:
		return tls12(p, 3, 25, 133, 133, 4);
	case T12_X448:
		return tls12(p, 3, 30, 56, 56, -1);
	case T12_BADTYPE:
		return tls12(p, 1, 23, 65, 65, 4);
	case T12_BADGROUP:
		return tls12(p, 3, 0x0101, 65, 65, 4);
	case T12_BADPOINTLEN:
		return tls12(p, 3, 23, 64, 64, 4);
	case T12_TRAILING:
		return tls12(p, 3, 29, 32, 33, -1);
	case T12_COMPRESSED:
		return tls12(p, 3, 23, 65, 65, 2);
	case RAW32:
		RAND_bytes(p, 32);
		return 32;
	case RANDOM130:
		RAND_bytes(p, 130);
		return 130;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* requests                                                            */

enum wire {
	WIRE_OK, WIRE_SHORT, WIRE_EMPTY, WIRE_LONG, WIRE_LIE_MORE, WIRE_LIE_LESS, WIRE_ZERO, WIRE_FD,
	WIRE_FRAME, WIRE_TYPE
};

static const char *
md_of(uint32_t alg)
{
	switch (alg) {
	case KP_ALG_RSA_PKCS1_SHA256:
	case KP_ALG_RSA_PSS_SHA256:
	case KP_ALG_ECDSA_SHA256:
		return "SHA256";
	case KP_ALG_RSA_PKCS1_SHA384:
	case KP_ALG_RSA_PSS_SHA384:
	case KP_ALG_ECDSA_SHA384:
		return "SHA384";
	default:
		return "SHA512";
	}
}

static int
verify(const struct dkey *d, uint32_t alg, const uint8_t *tbs, size_t tbslen,
    const uint8_t *sig, size_t siglen)
{
	EVP_MD_CTX *ctx;
	EVP_PKEY_CTX *pctx;
	int ok = 0;

	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return 0;
	if (EVP_DigestVerifyInit_ex(ctx, &pctx, md_of(alg), NULL, NULL,
	    d->pub, NULL) == 1) {
		if (alg >= KP_ALG_RSA_PSS_SHA256 && alg <= KP_ALG_RSA_PSS_SHA512) {
			EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
			EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx,
			    RSA_PSS_SALTLEN_DIGEST);
		} else if (alg <= KP_ALG_RSA_PKCS1_SHA512)
			EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING);
		ok = EVP_DigestVerify(ctx, sig, siglen, tbs, tbslen) == 1;
	}
	EVP_MD_CTX_free(ctx);
	return ok;
}

static const struct dkey *
find_key(uint32_t l, uint32_t k)
{
	int i;

	for (i = 0; i < nkeys; i++)
		if (keys[i].listener == l && keys[i].key == k)
			return &keys[i];
	return NULL;
}

/* One request, framed as the provider frames it unless w says otherwise. */
static int
send_req(int fd, enum wire w, uint32_t id, uint32_t key, uint32_t alg,
    const uint8_t *tbs, size_t tbslen)
{
	uint8_t buf[sizeof(struct msg_hdr) + 16 + 512];
	struct kp_sign_req req;
	struct msg_hdr hdr;
	struct iovec iov;
	size_t len;

	req.id = id;
	req.key = key;
	req.alg = alg;
	req.tbslen = (uint32_t)tbslen;
	len = sizeof(req) + tbslen;
	switch (w) {
	case WIRE_LIE_MORE:
		req.tbslen += 10;
		break;
	case WIRE_LIE_LESS:
		req.tbslen -= 10;
		break;
	case WIRE_ZERO:
		req.tbslen = 0;
		len = sizeof(req);
		break;
	case WIRE_LONG:
		req.tbslen = 300;
		len = sizeof(req) + 300;
		break;
	case WIRE_SHORT:
		len = 2;	/* a body shorter than a request */
		break;
	default:
		break;
	}
	hdr.type = w == WIRE_TYPE ? 99 : KP_SIGN;
	hdr.len = (uint32_t)len;
	if (w == WIRE_FRAME)
		hdr.len += 4;	/* the header lies, not the request */
	memset(buf, 0, sizeof(buf));
	memcpy(buf, &hdr, sizeof(hdr));
	memcpy(buf + sizeof(hdr), &req, sizeof(req));
	memcpy(buf + sizeof(hdr) + sizeof(req), tbs, tbslen);
	len += sizeof(hdr);
	if (w == WIRE_EMPTY)
		len = 0;
	if (w == WIRE_FD) {
		iov.iov_base = buf;
		iov.iov_len = len;
		return msg_send(fd, &iov, 1, STDIN_FILENO);
	}
	return send(fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

/*
 * Wait for keyproc's answer: "closed", "signed" (verified), or a
 * description of what went wrong.
 */
static const char *
get_rep(int fd, uint32_t id, const struct dkey *d, uint32_t alg,
    const uint8_t *tbs, size_t tbslen, int waitms)
{
	uint8_t buf[sizeof(struct msg_hdr) + sizeof(struct kp_sign_rep) +
	    KP_SIG_MAX + 1];
	const uint8_t *body = buf + sizeof(struct msg_hdr);
	struct kp_sign_rep rep;
	struct msg_hdr hdr;
	struct pollfd pfd;
	ssize_t n;

	pfd.fd = fd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, waitms) != 1)
		return "no answer";
	if ((n = msg_get(fd, buf, sizeof(buf), &hdr, NULL, 0)) == 0)
		return "closed";
	if (n == -1 && errno == ECONNRESET)
		return "closed";
	if (n == -1)
		return "malformed answer";
	if (hdr.type != KP_SIGNED || hdr.len < sizeof(rep))
		return "short answer";
	memcpy(&rep, body, sizeof(rep));
	if (rep.id != id || rep.status != KP_OK ||
	    !MSG_LEN_IS(&hdr, sizeof(rep) + rep.siglen))
		return "bad answer";
	if (d == NULL || (int)rep.siglen > EVP_PKEY_get_size(d->pub))
		return "signature too long";
	return verify(d, alg, tbs, tbslen, body + sizeof(rep), rep.siglen) ?
	    "signed" : "signature does not verify";
}

/* A request sent, whose answer is read later by answer(). */
struct pending {
	uint32_t	 id, l, key, alg;
	uint8_t		 tbs[512];
	size_t		 tbslen;
	int		 sendfailed;
};

static void
send_request(int fd, uint32_t l, uint32_t key, uint32_t alg, enum shape s,
    enum wire w, struct pending *p)
{
	static uint32_t id;

	p->id = ++id;
	p->l = l;
	p->key = key;
	p->alg = alg;
	p->tbslen = make_tbs(s, p->tbs);
	p->sendfailed = send_req(fd, w, p->id, key, alg, p->tbs,
	    p->tbslen) == -1 ? errno : 0;
}

/* The outcome of the request p on fd, waiting up to waitms for it. */
static const char *
answer(int fd, const struct pending *p, int waitms)
{
	if (p->sendfailed)
		return p->sendfailed == EPIPE || p->sendfailed == ECONNRESET ?
		    "closed" : "send failed";
	return get_rep(fd, p->id, find_key(p->l, p->key), p->alg, p->tbs,
	    p->tbslen, waitms);
}

/* One request on fd; return the outcome. */
static const char *
request(int fd, uint32_t l, uint32_t key, uint32_t alg, enum shape s,
    enum wire w)
{
	struct pending p;

	send_request(fd, l, key, alg, s, w, &p);
	return answer(fd, &p, WAIT_MS);
}

static void
report(const char *name, const char *got, const char *want)
{
	int ok = strcmp(got, want) == 0;

	printf("case %s: %s (expected %s)%s\n", name, got, want,
	    ok ? "" : " FAIL");
	if (!ok)
		nfail++;
	drain_log();
}

/* ------------------------------------------------------------------ */
/* the policy script                                                   */

static const struct pcase {
	const char	*name;
	uint32_t	 listener, key, alg;
	enum shape	 shape;
	enum wire	 wire;
	const char	*want;
} pcases[] = {
	/* what a TLS server signs */
	{ "rsa-tls13-pss-sha256", 0, 0, KP_ALG_RSA_PSS_SHA256, T13_32, WIRE_OK,
	    "signed" },
	{ "rsa-tls13-pss-sha256-hash48", 0, 0, KP_ALG_RSA_PSS_SHA256, T13_48,
	    WIRE_OK, "signed" },
	{ "rsa-tls13-pss-sha384", 0, 0, KP_ALG_RSA_PSS_SHA384, T13_48, WIRE_OK,
	    "signed" },
	{ "rsa-tls13-pss-sha512", 0, 0, KP_ALG_RSA_PSS_SHA512, T13_32, WIRE_OK,
	    "signed" },
	{ "rsa-tls12-pkcs1-sha256-x25519", 0, 0, KP_ALG_RSA_PKCS1_SHA256,
	    T12_X25519, WIRE_OK, "signed" },
	{ "rsa-tls12-pkcs1-sha384-p256", 0, 0, KP_ALG_RSA_PKCS1_SHA384,
	    T12_P256, WIRE_OK, "signed" },
	{ "rsa-tls12-pkcs1-sha512-p521", 0, 0, KP_ALG_RSA_PKCS1_SHA512,
	    T12_P521, WIRE_OK, "signed" },
	{ "rsa-tls12-pss-sha256-p384", 0, 0, KP_ALG_RSA_PSS_SHA256, T12_P384,
	    WIRE_OK, "signed" },
	{ "rsa-tls12-pss-sha256-x448", 0, 0, KP_ALG_RSA_PSS_SHA256, T12_X448,
	    WIRE_OK, "signed" },
	{ "ec-tls13-sha256", 1, 0, KP_ALG_ECDSA_SHA256, T13_32, WIRE_OK,
	    "signed" },
	{ "ec-tls13-sha256-hash48", 1, 0, KP_ALG_ECDSA_SHA256, T13_48, WIRE_OK,
	    "signed" },
	{ "ec384-tls13-sha384", 4, 0, KP_ALG_ECDSA_SHA384, T13_48, WIRE_OK,
	    "signed" },
	{ "ec384-tls13-sha384-hash32", 4, 0, KP_ALG_ECDSA_SHA384, T13_32,
	    WIRE_OK, "signed" },
	{ "ec384-tls12-sha256-p256", 4, 0, KP_ALG_ECDSA_SHA256, T12_P256,
	    WIRE_OK, "signed" },
	{ "ec-tls12-sha256-x25519", 1, 0, KP_ALG_ECDSA_SHA256, T12_X25519,
	    WIRE_OK, "signed" },
	{ "ec-tls12-sha512-p256", 1, 0, KP_ALG_ECDSA_SHA512, T12_P256, WIRE_OK,
	    "signed" },
	{ "listener1-key1-rsa", 1, 1, KP_ALG_RSA_PSS_SHA256, T13_32, WIRE_OK,
	    "signed" },
	/* the wire format */
	{ "short-request", 0, 0, KP_ALG_RSA_PSS_SHA256, T13_32, WIRE_SHORT,
	    "closed" },
	{ "empty-request", 0, 0, KP_ALG_RSA_PSS_SHA256, T13_32, WIRE_EMPTY,
	    "closed" },
	{ "long-request", 0, 0, KP_ALG_RSA_PSS_SHA256, T13_32, WIRE_LONG,
	    "closed" },
	{ "length-says-more", 0, 0, KP_ALG_RSA_PSS_SHA256, T13_32,
	    WIRE_LIE_MORE, "closed" },
	{ "length-says-less", 0, 0, KP_ALG_RSA_PSS_SHA256, T13_32,
	    WIRE_LIE_LESS, "closed" },
	{ "length-zero", 0, 0, KP_ALG_RSA_PSS_SHA256, T13_32, WIRE_ZERO,
	    "closed" },
	{ "fd-attached", 0, 0, KP_ALG_RSA_PSS_SHA256, T13_32, WIRE_FD,
	    "closed" },
	{ "frame-says-more", 0, 0, KP_ALG_RSA_PSS_SHA256, T13_32, WIRE_FRAME,
	    "closed" },
	{ "wrong-type", 0, 0, KP_ALG_RSA_PSS_SHA256, T13_32, WIRE_TYPE,
	    "closed" },
	/* keys and algorithms */
	{ "other-listener-key", 0, 1, KP_ALG_RSA_PSS_SHA256, T13_32, WIRE_OK,
	    "closed" },
	{ "no-such-key", 1, 7, KP_ALG_ECDSA_SHA256, T13_32, WIRE_OK, "closed" },
	{ "unknown-alg", 0, 0, 99, T13_32, WIRE_OK, "closed" },
	{ "alg-zero", 0, 0, 0, T13_32, WIRE_OK, "closed" },
	{ "ecdsa-alg-on-rsa-key", 0, 0, KP_ALG_ECDSA_SHA256, T13_32, WIRE_OK,
	    "closed" },
	{ "pss-alg-on-ec-key", 1, 0, KP_ALG_RSA_PSS_SHA256, T13_32, WIRE_OK,
	    "closed" },
	/* the TLS shape */
	{ "raw-digest", 0, 0, KP_ALG_RSA_PSS_SHA256, RAW32, WIRE_OK, "closed" },
	{ "random-bytes", 0, 0, KP_ALG_RSA_PSS_SHA256, RANDOM130, WIRE_OK,
	    "closed" },
	{ "tls13-client-context", 0, 0, KP_ALG_RSA_PSS_SHA256, T13_CLIENT,
	    WIRE_OK, "closed" },
	{ "tls13-bad-context", 1, 0, KP_ALG_ECDSA_SHA256, T13_BADCTX, WIRE_OK,
	    "closed" },
	{ "tls13-no-zero-byte", 1, 0, KP_ALG_ECDSA_SHA256, T13_NONUL, WIRE_OK,
	    "closed" },
	{ "tls13-hash64", 0, 0, KP_ALG_RSA_PSS_SHA512, T13_64, WIRE_OK,
	    "closed" },
	{ "tls13-pkcs1", 0, 0, KP_ALG_RSA_PKCS1_SHA256, T13_32, WIRE_OK,
	    "closed" },
	{ "tls12-not-named-curve", 1, 0, KP_ALG_ECDSA_SHA256, T12_BADTYPE,
	    WIRE_OK, "closed" },
	{ "tls12-unknown-group", 1, 0, KP_ALG_ECDSA_SHA256, T12_BADGROUP,
	    WIRE_OK, "closed" },
	{ "tls12-point-length", 1, 0, KP_ALG_ECDSA_SHA256, T12_BADPOINTLEN,
	    WIRE_OK, "closed" },
	{ "tls12-trailing-byte", 0, 0, KP_ALG_RSA_PKCS1_SHA256, T12_TRAILING,
	    WIRE_OK, "closed" },
	{ "tls12-compressed-point", 0, 0, KP_ALG_RSA_PKCS1_SHA256,
	    T12_COMPRESSED, WIRE_OK, "closed" },
	/* what the listener allows: its TLS versions, the key's curve */
	{ "tls13-only-tls13", 2, 0, KP_ALG_RSA_PSS_SHA256, T13_32, WIRE_OK,
	    "signed" },
	{ "tls13-only-tls12", 2, 0, KP_ALG_RSA_PSS_SHA256, T12_P256, WIRE_OK,
	    "closed" },
	{ "tls13-only-tls12-pkcs1", 2, 0, KP_ALG_RSA_PKCS1_SHA256, T12_X25519,
	    WIRE_OK, "closed" },
	{ "tls12-only-tls12", 3, 0, KP_ALG_ECDSA_SHA256, T12_X25519, WIRE_OK,
	    "signed" },
	{ "tls12-only-tls13", 3, 0, KP_ALG_ECDSA_SHA256, T13_32, WIRE_OK,
	    "closed" },
	{ "ec256-tls13-sha384", 1, 0, KP_ALG_ECDSA_SHA384, T13_48, WIRE_OK,
	    "closed" },
	{ "ec256-tls13-sha512", 1, 0, KP_ALG_ECDSA_SHA512, T13_32, WIRE_OK,
	    "closed" },
	{ "ec384-tls13-sha256", 4, 0, KP_ALG_ECDSA_SHA256, T13_32, WIRE_OK,
	    "closed" },
	{ "ec256-tls12-sha384", 1, 0, KP_ALG_ECDSA_SHA384, T12_P384, WIRE_OK,
	    "signed" },
};

/* A request every listener of the policy script signs. */
static const char *
good_request(int fd, uint32_t l)
{
	switch (l) {
	case 0:
	case 2:
		return request(fd, l, 0, KP_ALG_RSA_PSS_SHA256, T13_32,
		    WIRE_OK);
	case 3:
		return request(fd, l, 0, KP_ALG_ECDSA_SHA256, T12_X25519,
		    WIRE_OK);
	case 4:
		return request(fd, l, 0, KP_ALG_ECDSA_SHA384, T13_48,
		    WIRE_OK);
	default:
		return request(fd, l, 0, KP_ALG_ECDSA_SHA256, T13_32,
		    WIRE_OK);
	}
}

/*
 * Each case runs on a fresh channel, with a well-behaved channel of the
 * same listener open beside it that must still get a valid signature
 * afterwards; witness channels opened and armed first sign at the start,
 * twice in between and at the end, across every violation.
 */
static void
run_policy(void)
{
	const struct pcase *c;
	size_t i, n = sizeof(pcases) / sizeof(pcases[0]);
	int bad, good, witness[4];
	char name[128];

	for (i = 0; i < 4; i++)
		witness[i] = new_channel(1);
	report("witness-first", request(witness[0], 1, 0, KP_ALG_ECDSA_SHA256,
	    T13_32, WIRE_OK), "signed");
	for (i = 0; i < n; i++) {
		c = &pcases[i];
		bad = new_channel(c->listener);
		good = new_channel(c->listener);
		report(c->name, request(bad, c->listener, c->key, c->alg,
		    c->shape, c->wire), c->want);
		snprintf(name, sizeof(name), "%s-neighbour", c->name);
		report(name, good_request(good, c->listener), "signed");
		close(bad);
		close(good);
		if (i == n / 3 || i == 2 * n / 3)
			report("witness-between", request(witness[i == n / 3 ?
			    1 : 2], 1, 0, KP_ALG_ECDSA_SHA256, T12_X25519,
			    WIRE_OK), "signed");
	}
	report("witness-last", request(witness[3], 1, 0, KP_ALG_ECDSA_SHA256,
	    T13_48, WIRE_OK), "signed");
	for (i = 0; i < 4; i++)
		close(witness[i]);

	/* the budget: KP_SIGN_BUDGET signatures, then the channel closes */
	bad = new_channel(0);
	good = new_channel(0);
	for (i = 0; i < KP_SIGN_BUDGET; i++) {
		snprintf(name, sizeof(name), "budget-%zu", i + 1);
		report(name, request(bad, 0, 0, KP_ALG_RSA_PSS_SHA256, T13_32,
		    WIRE_OK), "signed");
	}
	report("budget-exceeded", request(bad, 0, 0, KP_ALG_RSA_PSS_SHA256,
	    T13_32, WIRE_OK), "closed");
	report("budget-exceeded-neighbour", request(good, 0, 0,
	    KP_ALG_RSA_PKCS1_SHA256, T12_P256, WIRE_OK), "signed");
	close(bad);
	close(good);
}

/*
 * A request on a channel not armed yet stays unread: no answer, while an
 * armed neighbour is answered; the arm brings its answer.  A pid handed
 * over again replaces its older channel (the process that had it is gone).
 * A channel closed before its arm is closed by keyproc too.
 */
static void
run_arm(void)
{
	struct pending p;
	pid_t pid;
	int fd, good, old;

	pid = nextpid++;
	fd = new_channel_pid(0, pid);
	good = new_channel(0);
	send_request(fd, 0, 0, KP_ALG_RSA_PSS_SHA256, T13_32, WIRE_OK, &p);
	report("before-arm", answer(fd, &p, NOANSWER_MS), "no answer");
	report("before-arm-neighbour", good_request(good, 0), "signed");
	arm(pid);
	report("after-arm", answer(fd, &p, WAIT_MS), "signed");
	close(fd);
	close(good);

	pid = nextpid++;
	old = new_channel_pid(0, pid);
	fd = new_channel_pid(0, pid);
	arm(pid);
	report("pid-reused-new", good_request(fd, 0), "signed");
	report("pid-reused-old", good_request(old, 0), "closed");
	close(old);
	close(fd);

	fd = new_channel_pid(0, nextpid++);
	close(fd);
	drain_log();
}

/*
 * The handshake timeout counts from the arm: a channel that waited longer
 * than that before its arm still signs, one armed that long ago does not.
 */
static void
run_expire(void)
{
	const struct dlistener *d = find_listener(0);
	pid_t pid;
	int fd, late, fresh;

	pid = nextpid++;
	fd = new_channel_pid(0, pid);
	usleep(d->handshake_ms * 1500);
	arm(pid);
	report("waited-before-arm", good_request(fd, 0), "signed");
	close(fd);

	late = new_channel(0);
	usleep(d->handshake_ms * 1500);
	drain_log();
	fresh = new_channel(0);
	report("after-handshake-timeout", good_request(late, 0), "closed");
	report("after-handshake-timeout-neighbour", good_request(fresh, 0),
	    "signed");
	close(late);
	close(fresh);
}

/*
 * EOF on the control channel: an unarmed channel is closed at once, an
 * armed one still signs, and keyproc is gone one handshake timeout later
 * even though the armed channel stays open.
 */
static void
run_retire(void)
{
	struct pending p;
	struct timespec t0, t1;
	int armed, unarmed;
	long ms;

	armed = new_channel(0);
	unarmed = new_channel_pid(0, nextpid++);
	send_request(unarmed, 0, 0, KP_ALG_RSA_PSS_SHA256, T13_32, WIRE_OK,
	    &p);
	drain_log();
	/* EOF for keyproc; its log lines still come back to us */
	if (shutdown(ctlfd, SHUT_WR) == -1)
		err(2, "shutdown");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	report("unarmed-at-eof", answer(unarmed, &p, WAIT_MS), "closed");
	report("armed-after-eof", good_request(armed, 0), "signed");
	if (wait_keyproc(WAIT_MS + (int)find_listener(0)->handshake_ms) == -1) {
		printf("keyproc still running with an armed channel open\n");
		nfail++;
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 +
	    (t1.tv_nsec - t0.tv_nsec) / 1000000;
	printf("keyproc gone %ld ms after EOF\n", ms);
	close(armed);
	close(unarmed);
}

static void
run_sign(long count)
{
	const struct dkey *d = &keys[0];
	uint32_t alg;
	long i;
	int fd;

	alg = EVP_PKEY_is_a(d->pub, "RSA") ? KP_ALG_RSA_PSS_SHA256 :
	    KP_ALG_ECDSA_SHA256;
	for (i = 0; i < count; i++) {
		fd = new_channel(d->listener);
		if (strcmp(request(fd, d->listener, d->key, alg, T13_32,
		    WIRE_OK), "signed") != 0) {
			printf("signature %ld failed\n", i + 1);
			nfail++;
			close(fd);
			break;
		}
		close(fd);
	}
	printf("signed %ld\n", i);
}

#define MANY_MAX	1024

/* One of run_many()'s channels: its key and input. */
struct many {
	int			 fd;
	const struct dkey	*d;
	uint32_t		 alg;
	struct pending		 p;
};

static void
run_many(long count, long conc)
{
	static struct many m[MANY_MAX];
	const char *got;
	long done = 0, ok = 0, i, n;

	if (conc < 1 || conc > MANY_MAX || count < 1)
		errx(2, "many N C: C is 1 to %d", MANY_MAX);
	while (done < count) {
		n = count - done < conc ? count - done : conc;
		for (i = 0; i < n; i++) {
			m[i].d = &keys[(done + i) % nkeys];
			m[i].alg = EVP_PKEY_is_a(m[i].d->pub, "RSA") ?
			    KP_ALG_RSA_PSS_SHA256 :
			    EVP_PKEY_get_bits(m[i].d->pub) == 384 ?
			    KP_ALG_ECDSA_SHA384 : KP_ALG_ECDSA_SHA256;
			m[i].fd = new_channel(m[i].d->listener);
		}
		for (i = 0; i < n; i++) {
			m[i].p.id = (uint32_t)(done + i + 1);
			m[i].p.l = m[i].d->listener;
			m[i].p.key = m[i].d->key;
			m[i].p.alg = m[i].alg;
			m[i].p.tbslen = make_tbs(T13_32, m[i].p.tbs);
			/* this channel's own hash: an answer sent to
			 * another channel would not verify there */
			if (RAND_bytes(m[i].p.tbs + 98, 32) != 1)
				errx(2, "RAND_bytes");
			m[i].p.sendfailed = send_req(m[i].fd, WIRE_OK,
			    m[i].p.id, m[i].d->key, m[i].alg, m[i].p.tbs,
			    m[i].p.tbslen) == -1 ? errno : 0;
		}
		for (i = 0; i < n; i++) {
			got = answer(m[i].fd, &m[i].p, WAIT_MS);
			if (strcmp(got, "signed") == 0)
				ok++;
			else if (nfail++ < 10)
				printf("signature %ld: %s\n", done + i + 1,
				    got);
			close(m[i].fd);
		}
		done += n;
		drain_log();
	}
	printf("signed %ld of %ld, %ld at a time\n", ok, count, conc);
}

static void
run_pause(void)
{
	char buf[256];

	printf("keyproc pid %d\n", (int)kppid);
	run_sign(1);
	fflush(stdout);
	while (read(STDIN_FILENO, buf, sizeof(buf)) > 0)
		drain_log();
}

static __dead void
usage(void)
{
	fprintf(stderr, "usage: kpdriver -x RECLUSE -r CHROOT -u USER [-v] "
	    "[-s SIGNERS] -k L,K,KEY,CERT ... [-l L,VERSIONS,MS ...] "
	    "load|pause|policy|arm|expire|retire|sign N|many N C\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	const char *exe = NULL, *root = NULL, *user = NULL;
	int ch, verbose = 0;

	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((ch = getopt(argc, argv, "k:l:r:s:u:vx:")) != -1) {
		switch (ch) {
		case 'k':
			add_key(optarg);
			break;
		case 'l':
			add_listener(optarg);
			break;
		case 'r':
			root = optarg;
			break;
		case 's':
			signers = (unsigned int)strtoul(optarg, NULL, 10);
			break;
		case 'u':
			user = optarg;
			break;
		case 'v':
			verbose++;
			break;
		case 'x':
			exe = optarg;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (exe == NULL || root == NULL || user == NULL || argc < 1)
		usage();
	log_init("kpdriver", verbose, -1);
	if (start_keyproc(exe, root, user, verbose) == -1) {
		stop_keyproc();
		return 1;
	}
	if (strcmp(argv[0], "policy") == 0) {
		if (find_key(0, 0) == NULL || find_key(1, 0) == NULL ||
		    find_key(1, 1) == NULL || find_key(2, 0) == NULL ||
		    find_key(3, 0) == NULL || find_key(4, 0) == NULL)
			errx(2, "policy needs keys 0,0 (RSA), 1,0 (EC), "
			    "1,1 (RSA), 2,0 (RSA), 3,0 (EC), 4,0 (EC P-384)");
		run_policy();
	} else if (strcmp(argv[0], "arm") == 0)
		run_arm();
	else if (strcmp(argv[0], "expire") == 0)
		run_expire();
	else if (strcmp(argv[0], "retire") == 0)
		run_retire();
	else if (strcmp(argv[0], "sign") == 0 && argc == 2)
		run_sign(strtol(argv[1], NULL, 10));
	else if (strcmp(argv[0], "many") == 0 && argc == 3)
		run_many(strtol(argv[1], NULL, 10), strtol(argv[2], NULL, 10));
	else if (strcmp(argv[0], "pause") == 0)
		run_pause();
	else if (strcmp(argv[0], "load") != 0)
		usage();
	stop_keyproc();
	printf("summary: %d unexpected\n", nfail);
	return nfail == 0 ? 0 : 1;
}
