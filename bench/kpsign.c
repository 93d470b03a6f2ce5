/*
 * kpsign: what a signature through keyproc costs, beside signing locally.
 *
 *   kpsign -x RECLUSE -r CHROOT -u USER [-n N] [-c same|cross|any] KEY CERT
 *   kpsign -x RECLUSE -r CHROOT -u USER -t CLIENTS [-s SIGNERS] [-d SECS]
 *       KEY CERT
 *
 * Signs N TLS 1.3 server CertificateVerify inputs (130 bytes) with the key
 * in two ways and prints the median, 10th and 90th percentile of each, in
 * microseconds:
 *   local    EVP_DigestSign with the real key in this process, as a server
 *            without keyproc does (keyproc/sign.c);
 *   keyproc  EVP_DigestSign with the key reference through the "keyproc"
 *            provider, as a connection child does: the request, keyproc's
 *            policy check and signature, the reply.
 * Each signature gets a new channel, handed over and armed as the parent
 * does for a child (KP_CTL_CHILD, then KP_CTL_ARM), timed apart:
 *   child    the parent's send of KP_CTL_CHILD with the channel's fd;
 *   arm      the parent's send of KP_CTL_ARM;
 * and it prints keyproc's CPU time per connection (channel, arm,
 * signature, close), from /proc/PID/schedstat.
 * -c pins this process to CPU 0 and keyproc to CPU 0 (same) or 1 (cross);
 * the default (any) leaves both to the scheduler.
 *
 * With -t, throughput instead: keyproc with SIGNERS signer threads
 * (keyproc-signers; 1 by default) and CLIENTS channels in flight at once,
 * each doing what one connection does: a new channel handed over and
 * armed, one TLS 1.3 CertificateVerify request (the wire format, as the
 * provider frames it), the answer, the close; then the next.  It runs for
 * SECS seconds (5) after one second of warm-up and prints the signatures
 * per second, keyproc's CPU time per signature, all its threads (the
 * loop's apart), and its own.  Every answer is checked for its id and
 * status, not verified (the client must cost little beside keyproc).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <dirent.h>
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "keyproc/keyproc.h"
#include "keyproc/kp_provider.h"
#include "lib/msg.h"
#include "lib/wire.h"
#include "keyproc/sign.h"
#include "lib/log.h"

#define TPUT_MAX	1024	/* -t: channels in flight */

static uint8_t	*readfile(const char *, size_t *);

static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void
report(const char *what, double *t, int n)
{
	qsort(t, (size_t)n, sizeof(*t), cmp);
	printf("%-8s n=%d median=%.1f us p10=%.1f us p90=%.1f us\n", what, n,
	    t[n / 2], t[n / 10], t[n * 9 / 10]);
}

static uint8_t *
readfile(const char *path, size_t *lenp)
{
	uint8_t *buf;
	FILE *f;
	long len;

	if ((f = fopen(path, "r")) == NULL)
		err(1, "%s", path);
	if (fseek(f, 0, SEEK_END) == -1 || (len = ftell(f)) <= 0 ||
	    fseek(f, 0, SEEK_SET) == -1)
		errx(1, "%s: cannot size", path);
	if ((buf = malloc((size_t)len)) == NULL)
		err(1, NULL);
	if (fread(buf, 1, (size_t)len, f) != (size_t)len)
		errx(1, "%s: short read", path);
	fclose(f);
	*lenp = (size_t)len;
	return buf;
}

static void
pin(pid_t pid, int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(pid, sizeof(set), &set) == -1)
		err(1, "sched_setaffinity");
}

static void
tbs13(uint8_t *p)
{
	memset(p, 0x20, 64);
	memcpy(p + 64, "TLS 1.3, server CertificateVerify", 33);
	p[97] = 0;
	memset(p + 98, 0xa5, 32);
}

/* The same calls libssl makes for a TLS 1.3 CertificateVerify. */
static double
sign_once(EVP_PKEY *pkey, int rsa, const uint8_t *tbs, size_t tbslen)
{
	unsigned char sig[KP_SIG_MAX];
	EVP_PKEY_CTX *pctx;
	EVP_MD_CTX *ctx;
	size_t siglen = sizeof(sig);
	double t0;

	t0 = now_us();
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit_ex(ctx, &pctx, "SHA256", NULL, NULL, pkey,
	    NULL) != 1)
		errx(1, "EVP_DigestSignInit_ex");
	if (rsa && (EVP_PKEY_CTX_set_rsa_padding(pctx,
	    RSA_PKCS1_PSS_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1))
		errx(1, "PSS parameters");
	if (EVP_DigestSign(ctx, sig, &siglen, tbs, tbslen) != 1)
		errx(1, "EVP_DigestSign");
	EVP_MD_CTX_free(ctx);
	return now_us() - t0;
}

static EVP_PKEY *
load_real(const char *keyfile)
{
	EVP_PKEY *pkey;
	BIO *bio;

	if ((bio = BIO_new_file(keyfile, "r")) == NULL ||
	    (pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)) == NULL)
		errx(1, "%s: cannot read the key", keyfile);
	BIO_free(bio);
	return pkey;
}

/* The key reference, decoded by the provider, as the parent does. */
static EVP_PKEY *
load_ref(const uint8_t *cert, size_t certlen, uint8_t **spkip,
    size_t *spkilenp)
{
	char errbuf[256], *ref;
	EVP_PKEY *pkey;
	size_t reflen;
	BIO *bio;

	if (kp_ref_from_cert(cert, certlen, 0, &ref, &reflen, spkip, spkilenp,
	    errbuf, sizeof(errbuf)) == -1)
		errx(1, "%s", errbuf);
	if ((bio = BIO_new_mem_buf(ref, (int)reflen)) == NULL ||
	    (pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)) == NULL)
		errx(1, "the key reference does not decode");
	BIO_free(bio);
	free(ref);
	return pkey;
}

/* A channel for made-up child pid, handed over and armed (both timed). */
static int
new_channel(int ctlfd, pid_t pid, double *childus, double *armus)
{
	double t0;
	int sp[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) == -1)
		err(1, "socketpair");
	t0 = now_us();
	if (kp_ctl_send_child(ctlfd, pid, 0, sp[1]) == -1)
		err(1, "channel");
	*childus = now_us() - t0;
	close(sp[1]);
	t0 = now_us();
	if (kp_ctl_send_arm(ctlfd, pid) == -1)
		err(1, "arm");
	*armus = now_us() - t0;
	kp_provider_set_channel(sp[0]);
	return sp[0];
}

/* pid's time on a CPU so far, in ns (the first field of schedstat). */
static unsigned long long
cpu_ns(pid_t pid)
{
	unsigned long long ns;
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
	if ((f = fopen(path, "r")) == NULL || fscanf(f, "%llu", &ns) != 1)
		errx(1, "%s: cannot read", path);
	fclose(f);
	return ns;
}

/* CPU time in ns of every thread of pid, and of its first (the loop). */
static unsigned long long
cpu_ns_all(pid_t pid, unsigned long long *loopns)
{
	unsigned long long ns, sum = 0;
	struct dirent *de;
	char path[320];
	FILE *f;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	if ((d = opendir(path)) == NULL)
		err(1, "%s", path);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/schedstat",
		    (int)pid, de->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;	/* a thread that just ended */
		if (fscanf(f, "%llu", &ns) == 1) {
			sum += ns;
			if (atoi(de->d_name) == (int)pid)
				*loopns = ns;
		}
		fclose(f);
	}
	closedir(d);
	return sum;
}

/* One channel in flight of the throughput mode. */
struct slot {
	int	 fd;
	uint32_t id;
};

/* A new channel, armed, with its request sent. */
static void
tput_start(int ctlfd, struct slot *sl, pid_t pid, uint32_t alg,
    const uint8_t *tbs, size_t tbslen)
{
	struct kp_sign_req req;
	struct iovec iov[2];
	int sp[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) == -1)
		err(1, "socketpair");
	if (kp_ctl_send_child(ctlfd, pid, 0, sp[1]) == -1 ||
	    kp_ctl_send_arm(ctlfd, pid) == -1)
		err(1, "control");
	close(sp[1]);
	memset(&req, 0, sizeof(req));
	req.id = sl->id = (uint32_t)pid;
	req.key = 0;
	req.alg = alg;
	req.tbslen = (uint32_t)tbslen;
	iov[0].iov_base = &req;
	iov[0].iov_len = sizeof(req);
	iov[1].iov_base = (void *)tbs;
	iov[1].iov_len = tbslen;
	if (msg_putv(sp[0], KP_SIGN, iov, 2, -1, 0) == -1)
		err(1, "request");
	sl->fd = sp[0];
}

/* The answer on sl: 0 if it is a signature for its request. */
static int
tput_answer(struct slot *sl)
{
	uint8_t buf[sizeof(struct msg_hdr) + sizeof(struct kp_sign_rep) +
	    KP_SIG_MAX];
	struct kp_sign_rep rep;
	struct msg_hdr hdr;

	if (msg_get(sl->fd, buf, sizeof(buf), &hdr, NULL, 0) <= 0 ||
	    hdr.type != KP_SIGNED || hdr.len < sizeof(rep))
		return -1;
	memcpy(&rep, buf + sizeof(hdr), sizeof(rep));
	return rep.id == sl->id && rep.status == KP_OK && rep.siglen > 0 ?
	    0 : -1;
}

static double
now_s(void)
{
	return now_us() / 1e6;
}

/* -t: signatures per second with nslots channels in flight. */
static void
throughput(int ctlfd, pid_t kppid, int rsa, int nslots, int secs,
    unsigned int signers, const char *keyfile, int bits)
{
	static struct slot sl[TPUT_MAX];
	static struct pollfd pfd[TPUT_MAX];
	unsigned long long ns0 = 0, ns1, loop0 = 0, loop1 = 0, me0 = 0, me1;
	uint32_t alg = rsa ? KP_ALG_RSA_PSS_SHA256 : KP_ALG_ECDSA_SHA256;
	double t0 = 0, tend, t;
	long count = 0;
	pid_t pid = 1000;
	uint8_t tbs[130];
	int i, measuring = 0;

	tbs13(tbs);
	for (i = 0; i < nslots; i++) {
		tput_start(ctlfd, &sl[i], pid++, alg, tbs, sizeof(tbs));
		pfd[i].fd = sl[i].fd;
		pfd[i].events = POLLIN;
	}
	tend = now_s() + 1;	/* warm-up */
	for (;;) {
		if (poll(pfd, (nfds_t)nslots, 5000) < 1)
			errx(1, "no answer from keyproc for 5 s");
		for (i = 0; i < nslots; i++) {
			if (pfd[i].revents == 0)
				continue;
			if (tput_answer(&sl[i]) == -1)
				errx(1, "channel %u: no signature", sl[i].id);
			close(sl[i].fd);
			count++;
			tput_start(ctlfd, &sl[i], pid++, alg, tbs,
			    sizeof(tbs));
			pfd[i].fd = sl[i].fd;
			/* keyproc's log lines and pongs: none asked */
			if (pid % 64 == 0)
				while (kp_ctl_read(ctlfd, NULL) > 0)
					;
		}
		if ((t = now_s()) < tend)
			continue;
		if (!measuring) {
			measuring = 1;
			count = 0;
			t0 = t;
			tend = t + secs;
			ns0 = cpu_ns_all(kppid, &loop0);
			me0 = cpu_ns(getpid());
			continue;
		}
		break;
	}
	ns1 = cpu_ns_all(kppid, &loop1);
	me1 = cpu_ns(getpid());
	printf("key %s (%s, %d bits), signers %u, clients %d\n", keyfile,
	    rsa ? "RSA-PSS SHA-256" : "ECDSA SHA-256", bits, signers, nslots);
	printf("throughput %.0f signatures/s over %.1f s\n",
	    count / (t - t0), t - t0);
	printf("keyproc cpu %.1f us per signature (loop %.1f us)\n",
	    (ns1 - ns0) / 1e3 / count, (loop1 - loop0) / 1e3 / count);
	printf("client cpu %.1f us per signature\n",
	    (me1 - me0) / 1e3 / count);
	for (i = 0; i < nslots; i++)
		close(sl[i].fd);
}

static __dead void
usage(void)
{
	fprintf(stderr, "usage: kpsign -x RECLUSE -r CHROOT -u USER [-n N] "
	    "[-c same|cross|any] KEY CERT\n"
	    "       kpsign -x RECLUSE -r CHROOT -u USER -t CLIENTS "
	    "[-s SIGNERS] [-d SECS] KEY CERT\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	const char *exe = NULL, *root = NULL, *user = NULL, *cpus = "any";
	uint8_t tbs[130], *cert, *spki;
	double *local, *remote, *child, *armed, c, a;
	unsigned long long kpns = 0;
	EVP_PKEY *real, *ref;
	char errbuf[1024];
	size_t certlen, spkilen;
	struct passwd *pw;
	int ch, n = 2000, i, ctlfd, keyfd, chan, rsa, tput = 0, secs = 5;
	unsigned int signers = 1;
	pid_t kppid;

	while ((ch = getopt(argc, argv, "c:d:n:r:s:t:u:x:")) != -1) {
		switch (ch) {
		case 'c':
			cpus = optarg;
			break;
		case 'd':
			secs = atoi(optarg);
			break;
		case 's':
			signers = (unsigned int)atoi(optarg);
			break;
		case 't':
			tput = atoi(optarg);
			break;
		case 'n':
			n = atoi(optarg);
			break;
		case 'r':
			root = optarg;
			break;
		case 'u':
			user = optarg;
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
	if (argc != 2 || exe == NULL || root == NULL || user == NULL || n < 10 ||
	    tput < 0 || tput > TPUT_MAX || secs < 1 || signers < 1 ||
	    signers > KP_SIGNERS_MAX)
		usage();
	signal(SIGPIPE, SIG_IGN);
	log_init("kpsign", 0, -1);
	if ((pw = getpwnam(user)) == NULL)
		errx(1, "%s: no such user", user);
	cert = readfile(argv[1], &certlen);
	if ((local = calloc((size_t)n, sizeof(*local))) == NULL ||
	    (remote = calloc((size_t)n, sizeof(*remote))) == NULL ||
	    (child = calloc((size_t)n, sizeof(*child))) == NULL ||
	    (armed = calloc((size_t)n, sizeof(*armed))) == NULL)
		err(1, NULL);
	tbs13(tbs);

	/* local signing first, before the provider is in the library */
	real = load_real(argv[0]);
	rsa = EVP_PKEY_is_a(real, "RSA");
	if (strcmp(cpus, "any") != 0)
		pin(0, 0);
	if (tput > 0)
		n = 10;		/* the local figures are not printed */
	for (i = 0; i < n / 10; i++)
		sign_once(real, rsa, tbs, sizeof(tbs));
	for (i = 0; i < n; i++)
		local[i] = sign_once(real, rsa, tbs, sizeof(tbs));

	if (kp_provider_load() == -1)
		errx(1, "cannot load the provider");
	ref = load_ref(cert, certlen, &spki, &spkilen);
	if (kp_ctl_spawn_exe(exe, &kppid, &ctlfd) == -1)
		err(1, "spawn");
	if ((keyfd = open(argv[0], O_RDONLY | O_CLOEXEC)) == -1)
		err(1, "%s", argv[0]);
	if (kp_ctl_send_listener(ctlfd, 0, KP_PROTO_ALL, 10000) == -1 ||
	    kp_ctl_send_key(ctlfd, 0, 0, spki, spkilen, argv[0], keyfd) == -1 ||
	    kp_ctl_send_start(ctlfd, pw->pw_uid, pw->pw_gid, 0, signers,
	    root) == -1)
		err(1, "control");
	close(keyfd);
	if (kp_ctl_wait_ready(ctlfd, errbuf, sizeof(errbuf)) == -1)
		errx(1, "%s", errbuf);
	if (tput > 0) {
		throughput(ctlfd, kppid, rsa, tput, secs, signers, argv[0],
		    EVP_PKEY_get_bits(real));
		close(ctlfd);
		return 0;
	}
	if (strcmp(cpus, "same") == 0)
		pin(kppid, 0);
	else if (strcmp(cpus, "cross") == 0)
		pin(kppid, 1);
	for (i = -n / 10; i < n; i++) {
		if (i == 0)
			kpns = cpu_ns(kppid);
		chan = new_channel(ctlfd, 1000 + n + i, &c, &a);
		if (i < 0)
			sign_once(ref, rsa, tbs, sizeof(tbs));
		else {
			remote[i] = sign_once(ref, rsa, tbs, sizeof(tbs));
			child[i] = c;
			armed[i] = a;
		}
		close(chan);
	}
	/* keyproc has seen the last close once it answers the next one */
	chan = new_channel(ctlfd, 1000 + 2 * n, &c, &a);
	sign_once(ref, rsa, tbs, sizeof(tbs));
	kpns = cpu_ns(kppid) - kpns;
	close(chan);
	printf("key %s (%s, %d bits), cpus %s\n", argv[0],
	    rsa ? "RSA-PSS SHA-256" : "ECDSA SHA-256", EVP_PKEY_get_bits(real),
	    cpus);
	report("local", local, n);
	report("keyproc", remote, n);
	printf("added   median %.1f us per signature\n",
	    remote[n / 2] - local[n / 2]);
	report("child", child, n);
	report("arm", armed, n);
	printf("keyproc cpu %.1f us per connection\n", kpns / 1e3 / n);
	close(ctlfd);
	return 0;
}
