/*
 * kpdriver: plays the parent for keyproc, to test it through its wire
 * formats (lib/wire.h).
 *
 *   kpdriver -x RECLUSE -r CHROOT -u USER [-v] -k L,K,KEYFILE,CERTFILE ...
 *       MODE
 *
 * It starts RECLUSE as keyproc exactly as the parent does (kp_ctl.c),
 * sends it key K of listener L for every -k, then START with the chroot
 * and the user, and then, by MODE:
 *
 *   load    print "ready" or "error: MESSAGE" (exit 1)
 *   pause   print "ready" and "keyproc pid N", make one signature, wait
 *           until stdin reaches EOF
 *   policy  run the scripted requests below on channels of its own
 *           (listener 0 must hold an RSA key 0, listener 1 an EC key 0 and
 *           an RSA key 1): one line "case NAME: RESULT (expected X)" each,
 *           RESULT being "signed" (the signature verifies with the
 *           certificate) or "closed" (keyproc closed the channel)
 *   sign N  make N signatures, 4 per channel, and print "signed N"
 *
 * At the end it closes the control channel and prints how keyproc ended
 * ("keyproc exit 0").  keyproc's log lines go to stderr.  Exit 0 when
 * every case went as expected.
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
#define WAIT_MS		5000

struct dkey {
	uint32_t	 listener, key;
	const char	*keyfile;
	EVP_PKEY	*pub;
	unsigned char	*spki;
	int		 spkilen;
};

static struct dkey	 keys[MAXKEYS];
static int		 nkeys;
static int		 ctlfd = -1;
static pid_t		 kppid;
static int		 nfail;

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
	    root) == -1)
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
	pfd.fd = ctlfd;
	pfd.events = POLLIN;
	while (poll(&pfd, 1, 20) == 1)
		if (kp_ctl_read(ctlfd) == -1)
			break;
}

static void
stop_keyproc(void)
{
	int status, i;

	drain_log();
	close(ctlfd);
	for (i = 0; i < 500; i++) {
		if (waitpid(kppid, &status, WNOHANG) == kppid) {
			if (WIFEXITED(status))
				printf("keyproc exit %d\n", WEXITSTATUS(status));
			else
				printf("keyproc killed by signal %d\n",
				    WTERMSIG(status));
			return;
		}
		usleep(10000);
	}
	printf("keyproc still running\n");
	kill(kppid, SIGKILL);
	waitpid(kppid, &status, 0);
	nfail++;
}

/* A new channel to keyproc, bound to listener l with our pid. */
static int
new_channel(uint32_t l)
{
	int sp[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) == -1)
		err(2, "socketpair");
	if (kp_ctl_send_child(ctlfd, getpid(), l, sp[1]) == -1)
		err(2, "send child");
	close(sp[1]);
	return sp[0];
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
	WIRE_OK, WIRE_SHORT, WIRE_EMPTY, WIRE_LONG, WIRE_LIE_MORE, WIRE_LIE_LESS, WIRE_ZERO, WIRE_FD
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

static int
send_req(int fd, enum wire w, uint32_t id, uint32_t key, uint32_t alg,
    const uint8_t *tbs, size_t tbslen)
{
	uint8_t buf[16 + 512];
	struct kp_sign_req req;
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
	default:
		break;
	}
	memset(buf, 0, sizeof(buf));
	memcpy(buf, &req, sizeof(req));
	memcpy(buf + sizeof(req), tbs, tbslen);
	if (w == WIRE_SHORT)
		len = 10;
	if (w == WIRE_EMPTY)
		len = 0;
	if (w == WIRE_FD) {
		struct iovec iov = { .iov_base = buf, .iov_len = len };

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
    const uint8_t *tbs, size_t tbslen)
{
	uint8_t buf[sizeof(struct kp_sign_rep) + KP_SIG_MAX + 1];
	struct kp_sign_rep rep;
	struct pollfd pfd;
	ssize_t n;

	pfd.fd = fd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, WAIT_MS) != 1)
		return "no answer";
	if ((n = recv(fd, buf, sizeof(buf), 0)) == 0)
		return "closed";
	if (n == -1 && errno == ECONNRESET)
		return "closed";
	if (n < (ssize_t)sizeof(rep))
		return "short answer";
	memcpy(&rep, buf, sizeof(rep));
	if (rep.id != id || rep.status != KP_OK ||
	    rep.siglen != (size_t)n - sizeof(rep))
		return "bad answer";
	if (d == NULL || (int)rep.siglen > EVP_PKEY_get_size(d->pub))
		return "signature too long";
	return verify(d, alg, tbs, tbslen, buf + sizeof(rep), rep.siglen) ?
	    "signed" : "signature does not verify";
}

/* One request on fd; return the outcome. */
static const char *
request(int fd, uint32_t l, uint32_t key, uint32_t alg, enum shape s,
    enum wire w)
{
	static uint32_t id;
	uint8_t tbs[512];
	size_t tbslen;

	tbslen = make_tbs(s, tbs);
	if (send_req(fd, w, ++id, key, alg, tbs, tbslen) == -1)
		return errno == EPIPE || errno == ECONNRESET ? "closed" :
		    "send failed";
	return get_rep(fd, id, find_key(l, key), alg, tbs, tbslen);
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
	{ "ec-tls13-sha384", 1, 0, KP_ALG_ECDSA_SHA384, T13_48, WIRE_OK,
	    "signed" },
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
};

/*
 * Each case runs on a fresh channel, with a well-behaved channel of the
 * same listener open beside it that must still get a valid signature
 * afterwards; a witness channel opened first signs at the start, twice in
 * between and at the end, across every violation.
 */
static void
run_policy(void)
{
	const struct pcase *c;
	const char *got;
	size_t i, n = sizeof(pcases) / sizeof(pcases[0]);
	int bad, good, witness;
	char name[128];

	witness = new_channel(1);
	report("witness-first", request(witness, 1, 0, KP_ALG_ECDSA_SHA256,
	    T13_32, WIRE_OK), "signed");
	for (i = 0; i < n; i++) {
		c = &pcases[i];
		bad = new_channel(c->listener);
		good = new_channel(c->listener);
		report(c->name, request(bad, c->listener, c->key, c->alg,
		    c->shape, c->wire), c->want);
		snprintf(name, sizeof(name), "%s-neighbour", c->name);
		got = request(good, c->listener, 0, c->listener == 0 ?
		    KP_ALG_RSA_PSS_SHA256 : KP_ALG_ECDSA_SHA256, T13_32, WIRE_OK);
		report(name, got, "signed");
		close(bad);
		close(good);
		if (i == n / 3 || i == 2 * n / 3)
			report("witness-between", request(witness, 1, 0,
			    KP_ALG_ECDSA_SHA256, T12_X25519, WIRE_OK), "signed");
	}
	report("witness-last", request(witness, 1, 0, KP_ALG_ECDSA_SHA384,
	    T13_48, WIRE_OK), "signed");
	close(witness);

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

static void
run_sign(long count)
{
	const struct dkey *d = &keys[0];
	uint32_t alg;
	long i;
	int fd = -1;

	alg = EVP_PKEY_is_a(d->pub, "RSA") ? KP_ALG_RSA_PSS_SHA256 :
	    KP_ALG_ECDSA_SHA256;
	for (i = 0; i < count; i++) {
		if (i % KP_SIGN_BUDGET == 0) {
			if (fd != -1)
				close(fd);
			fd = new_channel(d->listener);
		}
		if (strcmp(request(fd, d->listener, d->key, alg, T13_32, WIRE_OK),
		    "signed") != 0) {
			printf("signature %ld failed\n", i + 1);
			nfail++;
			break;
		}
	}
	if (fd != -1)
		close(fd);
	printf("signed %ld\n", i);
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
	    "-k L,K,KEY,CERT ... load|pause|policy|sign N\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	const char *exe = NULL, *root = NULL, *user = NULL;
	int ch, verbose = 0;

	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((ch = getopt(argc, argv, "k:r:u:vx:")) != -1) {
		switch (ch) {
		case 'k':
			add_key(optarg);
			break;
		case 'r':
			root = optarg;
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
		    find_key(1, 1) == NULL)
			errx(2, "policy needs keys 0,0 (RSA), 1,0 (EC), 1,1 (RSA)");
		run_policy();
	} else if (strcmp(argv[0], "sign") == 0 && argc == 2)
		run_sign(strtol(argv[1], NULL, 10));
	else if (strcmp(argv[0], "pause") == 0)
		run_pause();
	else if (strcmp(argv[0], "load") != 0)
		usage();
	stop_keyproc();
	printf("summary: %d unexpected\n", nfail);
	return nfail == 0 ? 0 : 1;
}
