/*
 * kpsign: what a signature through keyproc costs, beside signing locally.
 *
 *   kpsign -x RECLUSE -r CHROOT -u USER [-n N] [-c same|cross|any] KEY CERT
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
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <err.h>
#include <errno.h>
#include <fcntl.h>
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
#include "lib/wire.h"
#include "keyproc/sign.h"
#include "lib/log.h"

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

static __dead void
usage(void)
{
	fprintf(stderr, "usage: kpsign -x RECLUSE -r CHROOT -u USER [-n N] "
	    "[-c same|cross|any] KEY CERT\n");
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
	int ch, n = 2000, i, ctlfd, keyfd, chan, rsa;
	pid_t kppid;

	while ((ch = getopt(argc, argv, "c:n:r:u:x:")) != -1) {
		switch (ch) {
		case 'c':
			cpus = optarg;
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
	if (argc != 2 || exe == NULL || root == NULL || user == NULL || n < 10)
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
	    kp_ctl_send_start(ctlfd, pw->pw_uid, pw->pw_gid, 0, root) == -1)
		err(1, "control");
	close(keyfd);
	if (kp_ctl_wait_ready(ctlfd, errbuf, sizeof(errbuf)) == -1)
		errx(1, "%s", errbuf);
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
