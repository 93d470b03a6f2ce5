/*
 * The parent's counters and their pages: see stats.h.
 *
 * What one connection costs here: a calloc and a list insert at accept,
 * a few additions at CHAN_ESTABLISHED, CHAN_PEER, CHAN_ENDED and the
 * backend's answer, a list remove and a free at reap; listener names are
 * looked up once per connection (a short list walk), backends once per
 * connect.  Pages are made only when the metrics process asks for one.
 */
#include <sys/mman.h>
#include <sys/queue.h>
#include <sys/wait.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "lib/log.h"
#include "lib/util.h"
#include "lib/wire.h"
#include "proxy/backend.h"
#include "proxy/gen.h"
#include "proxy/stats.h"

#define STATS_SIGNALS	65	/* 1 .. 64 */
#define STATS_BYTES_MAX	((uint64_t)1 << 50)	/* a child's claim, at most */
#define STATS_RATE	20	/* pages a second, at most */

/* Upper bounds of the latency histograms' buckets, in microseconds. */
static const uint32_t stats_buckets[] = {
	1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000
};
#define STATS_NBUCKETS	NELEM(stats_buckets)

/* Why a handshake failed, as the metrics name it. */
enum stats_hs_fail {
	HS_TIMEOUT, HS_PROTOCOL, HS_KEYPROC, HS_CLIENT_CERT, HS_ERROR,
	HS_DIED, HS_MAX
};
static const char *const stats_hs_names[HS_MAX] = {
	"timeout", "protocol", "keyproc", "client_certificate", "error",
	"child_died"
};
static const char *const stats_end_names[CHAN_END_MAX] = {
	"closed", "handshake_timeout", "handshake_failed", "keyproc",
	"backend", "idle_timeout", "error", "drain"
};

struct stats_hist {
	uint64_t	 bucket[STATS_NBUCKETS];	/* not cumulative */
	uint64_t	 count;
	uint64_t	 sum_us;
};

struct stats_backend {
	SLIST_ENTRY(stats_backend)	 entry;
	char				 name[BACKEND_NAME_MAX];
	uint64_t			 connects, failures;
};

struct stats_listener {
	SLIST_ENTRY(stats_listener)	 entry;
	char				 name[64];
	uint64_t			 accepted, open, handshakes;
	uint64_t			 hs_failed[HS_MAX];
	uint64_t			 ended[CHAN_END_MAX];
	uint64_t			 bytes_in, bytes_out;
	uint64_t			 signed_ok, sign_refused;
	struct stats_hist		 sign, handshake;
	uint64_t			 signals[STATS_SIGNALS];
	int64_t				 not_after;	/* 0: unknown */
	char				 cert[256];	/* its file */
	size_t				 spares;	/* current gen only */
	int				 current;	/* in the current gen */
	SLIST_HEAD(, stats_backend)	 backends;
};

struct stats_conn {
	LIST_ENTRY(stats_conn)	 entry;
	struct stats_listener	*sl;
	pid_t			 pid;
	struct timespec		 start;		/* CLOCK_MONOTONIC */
	int			 established, peer, ended;
	char			 client[CHAN_PEER_CLIENT_MAX];
	char			 sni[CHAN_PEER_SNI_MAX];
	char			 backend[BACKEND_NAME_MAX];
};

static struct {
	SLIST_HEAD(, stats_listener)	 listeners;
	LIST_HEAD(, stats_conn)		 conns;
	size_t				 nconns;
	time_t				 started;	/* the parent, wall clock */
	unsigned int			 gen;
	time_t				 gen_loaded;
	const char			*gen_file;
	uint64_t			 reloads, reload_failures;
	pid_t				 kppid;
	time_t				 kp_since;
	uint64_t			 kp_starts;
} st = { .kppid = -1 };

/* The running generation, whose spares are read when a page is made. */
static const struct gen	*stats_gen;

/* ------------------------------------------------------------------ */
/* counting                                                            */

static struct stats_listener *
stats_listener(const char *name)
{
	struct stats_listener *sl;

	SLIST_FOREACH(sl, &st.listeners, entry)
		if (strcmp(sl->name, name) == 0)
			return sl;
	if ((sl = calloc(1, sizeof(*sl))) == NULL)
		return NULL;
	snprintf(sl->name, sizeof(sl->name), "%s", name);
	SLIST_INIT(&sl->backends);
	SLIST_INSERT_HEAD(&st.listeners, sl, entry);
	if (st.started == 0)
		st.started = time(NULL);
	return sl;
}

static struct stats_backend *
stats_backend_of(const struct conf_listener *l, size_t idx)
{
	struct stats_listener *sl;
	struct stats_backend *sb;
	char name[BACKEND_NAME_MAX];

	if (idx >= l->nbackends || (sl = stats_listener(l->name)) == NULL)
		return NULL;
	backend_name(&l->backends[idx], name, sizeof(name));
	SLIST_FOREACH(sb, &sl->backends, entry)
		if (strcmp(sb->name, name) == 0)
			return sb;
	if ((sb = calloc(1, sizeof(*sb))) == NULL)
		return NULL;
	memcpy(sb->name, name, sizeof(name));
	SLIST_INSERT_HEAD(&sl->backends, sb, entry);
	return sb;
}

static void
stats_hist_add(struct stats_hist *h, uint32_t us)
{
	size_t i;

	for (i = 0; i < STATS_NBUCKETS; i++)
		if (us <= stats_buckets[i]) {
			h->bucket[i]++;
			break;
		}
	h->count++;
	h->sum_us += us;
}

/* A certificate chain's first notAfter, as a Unix time; 0 if unknown. */
static int64_t
stats_not_after(int fd, size_t len)
{
	struct tm tm;
	int64_t t = 0;
	char *buf;
	X509 *x = NULL;
	BIO *bio = NULL;

	if (len == 0 || len > SPAWNER_CHAIN_MAX ||
	    (buf = malloc(len)) == NULL)
		return 0;
	if (pread(fd, buf, len, 0) == (ssize_t)len &&
	    (bio = BIO_new_mem_buf(buf, (int)len)) != NULL &&
	    (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL &&
	    ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1)
		t = (int64_t)timegm(&tm);
	X509_free(x);
	BIO_free(bio);
	free(buf);
	return t;
}

/* The certificate of gl that expires first: its notAfter and file. */
static void
stats_first_expiry(const struct gen_listener *gl, struct stats_listener *sl)
{
	int64_t t;
	size_t i;

	sl->not_after = 0;
	for (i = 0; i < gl->tc.ncerts; i++) {
		t = stats_not_after(gl->tc.certs[i].chainfd,
		    gl->tc.certs[i].chainlen);
		if (i == 0 || (t != 0 && (sl->not_after == 0 ||
		    t < sl->not_after))) {
			sl->not_after = t;
			snprintf(sl->cert, sizeof(sl->cert), "%s",
			    gl->conf->certs[i].certificate);
		}
	}
}

void
stats_set_gen(const struct gen *g)
{
	const struct gen_listener *gl;
	struct stats_listener *sl;
	size_t i;

	stats_gen = g;
	st.gen = g->id;
	st.gen_loaded = time(NULL);
	st.gen_file = g->conf->file;
	SLIST_FOREACH(sl, &st.listeners, entry)
		sl->current = 0;
	for (i = 0; i < g->nlisteners; i++) {
		gl = &g->listeners[i];
		if ((sl = stats_listener(gl->conf->name)) == NULL)
			continue;
		sl->current = 1;
		stats_first_expiry(gl, sl);
	}
}

void
stats_reload(int ok)
{
	if (ok)
		st.reloads++;
	else
		st.reload_failures++;
}

void
stats_keyproc(pid_t pid)
{
	if (pid == st.kppid)
		return;
	st.kppid = pid;
	st.kp_since = time(NULL);
	if (pid != -1)
		st.kp_starts++;
}

struct stats_conn *
stats_accepted(const char *listener, pid_t pid)
{
	struct stats_listener *sl;
	struct stats_conn *sc;

	if ((sl = stats_listener(listener)) == NULL ||
	    (sc = calloc(1, sizeof(*sc))) == NULL)
		return NULL;
	sl->accepted++;
	sl->open++;
	sc->sl = sl;
	sc->pid = pid;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &sc->start);
	LIST_INSERT_HEAD(&st.conns, sc, entry);
	st.nconns++;
	return sc;
}

void
stats_established(struct stats_conn *sc)
{
	if (sc == NULL || sc->established)
		return;
	sc->established = 1;
	sc->sl->handshakes++;
}

static int
stats_peer(struct stats_conn *sc, const struct msg_hdr *hdr,
    const char *body)
{
	struct chan_peer m;

	if (!MSG_LEN_IS(hdr, sizeof(m)) || sc->peer)
		return -1;
	memcpy(&m, body, sizeof(m));
	sc->peer = 1;
	/* A child's words, for a person's screen: printable only. */
	log_escape(sc->client, sizeof(sc->client), m.client,
	    strnlen(m.client, sizeof(m.client)));
	log_escape(sc->sni, sizeof(sc->sni), m.sni,
	    strnlen(m.sni, sizeof(m.sni)));
	return 0;
}

/* A handshake that failed: why, from how the connection ended. */
static int
stats_hs_reason(uint32_t end)
{
	switch (end) {
	case CHAN_END_HANDSHAKE_TIMEOUT:
		return HS_TIMEOUT;
	case CHAN_END_HANDSHAKE_FAILED:
		return HS_PROTOCOL;
	case CHAN_END_KEYPROC:
		return HS_KEYPROC;
	default:
		return HS_ERROR;
	}
}

static int
stats_ended(struct stats_conn *sc, const struct msg_hdr *hdr,
    const char *body)
{
	struct stats_listener *sl = sc->sl;
	struct chan_ended m;

	if (!MSG_LEN_IS(hdr, sizeof(m)) || sc->ended)
		return -1;
	memcpy(&m, body, sizeof(m));
	if (m.end >= CHAN_END_MAX || m.sign > CHAN_SIGN_REFUSED)
		return -1;
	sc->ended = 1;
	sl->ended[m.end]++;
	/* What the parent saw decides whether the handshake was done. */
	if (!sc->established)
		sl->hs_failed[stats_hs_reason(m.end)]++;
	else if (m.handshake_us > 0)
		stats_hist_add(&sl->handshake, m.handshake_us);
	if (m.sign == CHAN_SIGN_OK) {
		sl->signed_ok++;
		stats_hist_add(&sl->sign, m.sign_us);
	} else if (m.sign == CHAN_SIGN_REFUSED)
		sl->sign_refused++;
	sl->bytes_in += m.from_client < STATS_BYTES_MAX ? m.from_client :
	    STATS_BYTES_MAX;
	sl->bytes_out += m.to_client < STATS_BYTES_MAX ? m.to_client :
	    STATS_BYTES_MAX;
	return 0;
}

int
stats_chan(struct stats_conn *sc, const struct msg_hdr *hdr,
    const char *body)
{
	if (sc == NULL)
		return -1;
	switch (hdr->type) {
	case CHAN_PEER:
		return stats_peer(sc, hdr, body);
	case CHAN_ENDED:
		return stats_ended(sc, hdr, body);
	}
	return -1;
}

void
stats_backend(struct stats_conn *sc, const struct conf_listener *l,
    size_t idx, int ok)
{
	struct stats_backend *sb;

	if (!ok || (sb = stats_backend_of(l, idx)) == NULL)
		return;
	sb->connects++;
	if (sc != NULL)
		memcpy(sc->backend, sb->name, sizeof(sc->backend));
}

void
stats_backend_failed(const struct conf_listener *l, size_t idx)
{
	struct stats_backend *sb;

	if ((sb = stats_backend_of(l, idx)) != NULL)
		sb->failures++;
}

void
stats_reaped(struct stats_conn *sc, const char *listener, int status)
{
	struct stats_listener *sl;
	int sig;

	if (WIFSIGNALED(status) && (sig = WTERMSIG(status)) > 0 &&
	    sig < STATS_SIGNALS && (sl = stats_listener(listener)) != NULL)
		sl->signals[sig]++;
	if (sc == NULL)
		return;
	/* Gone without a word: its handshake, if not done, failed. */
	if (!sc->established && !sc->ended)
		sc->sl->hs_failed[HS_DIED]++;
	sc->sl->open--;
	LIST_REMOVE(sc, entry);
	st.nconns--;
	free(sc);
}

/* ------------------------------------------------------------------ */
/* the metrics page                                                    */

static void
head(FILE *fp, const char *name, const char *type, const char *help)
{
	fprintf(fp, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value: backslash, double quote and newline escaped. */
static void
label(FILE *fp, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(fp, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", fp);
		else
			putc(*s, fp);
	}
}

/* One counter or gauge per listener, of the uint64_t at off. */
static void
per_listener(FILE *fp, const char *name, const char *type,
    const char *help, size_t off)
{
	struct stats_listener *sl;

	head(fp, name, type, help);
	SLIST_FOREACH(sl, &st.listeners, entry)
		fprintf(fp, "%s{listener=\"%s\"} %llu\n", name, sl->name,
		    (unsigned long long)*(const uint64_t *)(const void *)
		    ((const char *)sl + off));
}

static void
hist(FILE *fp, const char *name, const char *help, size_t off)
{
	const struct stats_hist *h;
	struct stats_listener *sl;
	uint64_t cum;
	size_t i;

	head(fp, name, "histogram", help);
	SLIST_FOREACH(sl, &st.listeners, entry) {
		h = (const void *)((const char *)sl + off);
		for (i = 0, cum = 0; i < STATS_NBUCKETS; i++) {
			cum += h->bucket[i];
			fprintf(fp, "%s_bucket{listener=\"%s\",le=\"%g\"} "
			    "%llu\n", name, sl->name,
			    stats_buckets[i] / 1e6, (unsigned long long)cum);
		}
		fprintf(fp, "%s_bucket{listener=\"%s\",le=\"+Inf\"} %llu\n",
		    name, sl->name, (unsigned long long)h->count);
		fprintf(fp, "%s_sum{listener=\"%s\"} %.6f\n", name, sl->name,
		    h->sum_us / 1e6);
		fprintf(fp, "%s_count{listener=\"%s\"} %llu\n", name,
		    sl->name, (unsigned long long)h->count);
	}
}

static void
page_connections(FILE *fp)
{
	struct stats_listener *sl;
	size_t i;

	per_listener(fp, "recluse_connections_accepted_total", "counter",
	    "Connections accepted by a child.",
	    offsetof(struct stats_listener, accepted));
	per_listener(fp, "recluse_connections_open", "gauge",
	    "Connections held by a child now.",
	    offsetof(struct stats_listener, open));
	head(fp, "recluse_connections_ended_total", "counter",
	    "Connections ended, by how (as their child reported).");
	SLIST_FOREACH(sl, &st.listeners, entry)
		for (i = 0; i < CHAN_END_MAX; i++)
			fprintf(fp, "recluse_connections_ended_total{listener="
			    "\"%s\",end=\"%s\"} %llu\n", sl->name,
			    stats_end_names[i],
			    (unsigned long long)sl->ended[i]);
	per_listener(fp, "recluse_handshakes_total", "counter",
	    "TLS handshakes completed.",
	    offsetof(struct stats_listener, handshakes));
	head(fp, "recluse_handshake_failures_total", "counter",
	    "TLS handshakes failed, by reason.");
	SLIST_FOREACH(sl, &st.listeners, entry)
		for (i = 0; i < HS_MAX; i++)
			fprintf(fp, "recluse_handshake_failures_total{listener="
			    "\"%s\",reason=\"%s\"} %llu\n", sl->name,
			    stats_hs_names[i],
			    (unsigned long long)sl->hs_failed[i]);
	hist(fp, "recluse_handshake_duration_seconds",
	    "From accept to handshake done, as the child measured it.",
	    offsetof(struct stats_listener, handshake));
	per_listener(fp, "recluse_received_bytes_total", "counter",
	    "Plaintext bytes from clients to backends, of ended connections.",
	    offsetof(struct stats_listener, bytes_in));
	per_listener(fp, "recluse_sent_bytes_total", "counter",
	    "Plaintext bytes from backends to clients, of ended connections.",
	    offsetof(struct stats_listener, bytes_out));
}

static void
page_backends(FILE *fp)
{
	struct stats_listener *sl;
	struct stats_backend *sb;
	int pass;

	for (pass = 0; pass < 2; pass++) {
		if (pass == 0)
			head(fp, "recluse_backend_connects_total", "counter",
			    "Backend connections made for a child.");
		else
			head(fp, "recluse_backend_failures_total", "counter",
			    "Backend connection attempts that failed.");
		SLIST_FOREACH(sl, &st.listeners, entry)
			SLIST_FOREACH(sb, &sl->backends, entry) {
				fprintf(fp, "recluse_backend_%s_total{"
				    "listener=\"%s\",backend=\"",
				    pass == 0 ? "connects" : "failures",
				    sl->name);
				label(fp, sb->name);
				fprintf(fp, "\"} %llu\n", (unsigned long long)
				    (pass == 0 ? sb->connects : sb->failures));
			}
	}
}

static void
page_children(FILE *fp)
{
	struct stats_listener *sl;
	char name[32];
	const char *abbrev;
	int sig;

	head(fp, "recluse_children", "gauge",
	    "Connection children, spare (waiting) or busy.");
	SLIST_FOREACH(sl, &st.listeners, entry) {
		if (sl->current)
			fprintf(fp, "recluse_children{listener=\"%s\","
			    "state=\"spare\"} %zu\n", sl->name, sl->spares);
		fprintf(fp, "recluse_children{listener=\"%s\",state=\"busy\"} "
		    "%llu\n", sl->name, (unsigned long long)sl->open);
	}
	head(fp, "recluse_children_signaled_total", "counter",
	    "Children that died of a signal, by signal.");
	SLIST_FOREACH(sl, &st.listeners, entry)
		for (sig = 1; sig < STATS_SIGNALS; sig++) {
			if (sl->signals[sig] == 0)
				continue;
			if ((abbrev = sigabbrev_np(sig)) != NULL)
				snprintf(name, sizeof(name), "SIG%s", abbrev);
			else
				snprintf(name, sizeof(name), "%d", sig);
			fprintf(fp, "recluse_children_signaled_total{listener="
			    "\"%s\",signal=\"%s\"} %llu\n", sl->name, name,
			    (unsigned long long)sl->signals[sig]);
		}
}

static void
page_keyproc(FILE *fp)
{
	per_listener(fp, "recluse_keyproc_signatures_total", "counter",
	    "Signatures keyproc made, as the children reported them.",
	    offsetof(struct stats_listener, signed_ok));
	per_listener(fp, "recluse_keyproc_refusals_total", "counter",
	    "Signatures a child asked for and did not get (refused, failed "
	    "or not answered).",
	    offsetof(struct stats_listener, sign_refused));
	hist(fp, "recluse_keyproc_sign_duration_seconds",
	    "From a child's request to keyproc's answer, as the child "
	    "measured it.",
	    offsetof(struct stats_listener, sign));
	head(fp, "recluse_keyproc_starts_total", "counter",
	    "keyproc processes started (start, reloads, restarts).");
	fprintf(fp, "recluse_keyproc_starts_total %llu\n",
	    (unsigned long long)st.kp_starts);
	head(fp, "recluse_keyproc_up", "gauge",
	    "1 if a keyproc is running.");
	fprintf(fp, "recluse_keyproc_up %d\n", st.kppid != -1);
}

static void
page_config(FILE *fp)
{
	struct stats_listener *sl;

	head(fp, "recluse_reloads_total", "counter",
	    "Configuration reloads that succeeded.");
	fprintf(fp, "recluse_reloads_total %llu\n",
	    (unsigned long long)st.reloads);
	head(fp, "recluse_reload_failures_total", "counter",
	    "Configuration reloads that failed (the running one was kept).");
	fprintf(fp, "recluse_reload_failures_total %llu\n",
	    (unsigned long long)st.reload_failures);
	head(fp, "recluse_config_generation", "gauge",
	    "The running configuration's generation (1, 2, ...).");
	fprintf(fp, "recluse_config_generation %u\n", st.gen);
	head(fp, "recluse_config_loaded_timestamp_seconds", "gauge",
	    "When the running configuration was loaded.");
	fprintf(fp, "recluse_config_loaded_timestamp_seconds %lld\n",
	    (long long)st.gen_loaded);
	head(fp, "recluse_start_time_seconds", "gauge",
	    "When recluse started.");
	fprintf(fp, "recluse_start_time_seconds %lld\n",
	    (long long)st.started);
	head(fp, "recluse_certificate_expiry_timestamp_seconds", "gauge",
	    "notAfter of each listener's certificate (the first of its "
	    "chain).");
	SLIST_FOREACH(sl, &st.listeners, entry) {
		if (!sl->current || sl->not_after == 0)
			continue;
		fprintf(fp, "recluse_certificate_expiry_timestamp_seconds{"
		    "listener=\"%s\",file=\"", sl->name);
		label(fp, sl->cert);
		fprintf(fp, "\"} %lld\n", (long long)sl->not_after);
	}
}

/* ------------------------------------------------------------------ */
/* the status page                                                     */

static void
when(FILE *fp, time_t t)
{
	char buf[32];
	struct tm tm;

	if (t == 0 || gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		fputs("-", fp);
	else
		fputs(buf, fp);
}

static void
page_status(FILE *fp)
{
	struct stats_listener *sl;
	struct stats_conn *sc;
	struct timespec now;
	time_t t = time(NULL);

	fputs("recluse status at ", fp);
	when(fp, t);
	fprintf(fp, "\n\nconfiguration: generation %u from %s, loaded ",
	    st.gen, st.gen_file ? st.gen_file : "-");
	when(fp, st.gen_loaded);
	fprintf(fp, " (%lld s ago); %llu reloads, %llu failed\n",
	    (long long)(t - st.gen_loaded), (unsigned long long)st.reloads,
	    (unsigned long long)st.reload_failures);
	if (st.kppid != -1) {
		fprintf(fp, "keyproc: pid %d, up since ", (int)st.kppid);
		when(fp, st.kp_since);
		fprintf(fp, " (%lld s)\n", (long long)(t - st.kp_since));
	} else
		fputs("keyproc: not running\n", fp);
	fputs("\npool:\n", fp);
	SLIST_FOREACH(sl, &st.listeners, entry)
		if (sl->current || sl->open > 0)
			fprintf(fp, "  listener %s: %zu spare, %llu busy\n",
			    sl->name, sl->current ? sl->spares : 0,
			    (unsigned long long)sl->open);
	fprintf(fp, "\nconnections: %zu open\n", st.nconns);
	fprintf(fp, "  %-8s %-16s %-24s %-24s %-24s %8s %s\n", "pid",
	    "listener", "client", "sni", "backend", "age", "state");
	clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
	LIST_FOREACH(sc, &st.conns, entry)
		fprintf(fp, "  %-8d %-16s %-24s %-24s %-24s %7llds %s\n",
		    (int)sc->pid, sc->sl->name,
		    sc->client[0] ? sc->client : "-",
		    sc->sni[0] ? sc->sni : "-",
		    sc->backend[0] ? sc->backend : "-",
		    (long long)(now.tv_sec - sc->start.tv_sec),
		    sc->ended ? "ending" : sc->established ? "relaying" :
		    "handshake");
	fputs("\n(bytes are counted when a connection ends: see "
	    "recluse_received_bytes_total in /metrics)\n", fp);
}

static void
stats_spares(void)
{
	struct stats_listener *sl;
	size_t i;

	if (stats_gen == NULL)
		return;
	for (i = 0; i < stats_gen->nlisteners; i++)
		if ((sl = stats_listener(stats_gen->listeners[i].conf->name)) !=
		    NULL)
			sl->spares = stats_gen->listeners[i].idle;
}

/* At most STATS_RATE pages a second: the metrics process is not trusted. */
static int
stats_allowed(void)
{
	static struct timespec window;
	static int n;
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
	if (now.tv_sec != window.tv_sec) {
		window = now;
		n = 0;
	}
	return ++n <= STATS_RATE;
}

int
stats_page(int what, int *fdp, size_t *lenp)
{
	FILE *fp = NULL;
	long len;
	int fd, dfd;

	if (!stats_allowed()) {
		errno = EAGAIN;
		return -1;
	}
	if ((fd = memfd_create("recluse-page", MFD_CLOEXEC)) == -1)
		return -1;
	if ((dfd = dup(fd)) == -1 || (fp = fdopen(dfd, "w")) == NULL) {
		if (dfd != -1)
			close(dfd);
		goto err;
	}
	stats_spares();
	if (what == METRICS_WHAT_STATUS)
		page_status(fp);
	else {
		page_connections(fp);
		page_backends(fp);
		page_children(fp);
		page_keyproc(fp);
		page_config(fp);
	}
	if (fflush(fp) == EOF || ferror(fp) || (len = ftell(fp)) <= 0 ||
	    len > METRICS_PAGE_MAX || lseek(fd, 0, SEEK_SET) != 0) {
		errno = EFBIG;
		goto err;
	}
	fclose(fp);
	*fdp = fd;
	*lenp = (size_t)len;
	return 0;
err:
	if (fp != NULL)
		fclose(fp);
	close(fd);
	return -1;
}
