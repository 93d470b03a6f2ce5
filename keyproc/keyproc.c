/*
 * keyproc: the one process that holds the private keys (keyproc.h).
 *
 * Two phases.  Set-up: on the control channel (fd KP_CTL_FD) the parent
 * sends KP_CTL_LISTENER messages (what each listener allows) and
 * KP_CTL_KEY messages, each with an open key file, then KP_CTL_START;
 * keyproc loads and checks every key, drops its privileges and answers
 * KP_CTL_READY (or KP_CTL_ERROR naming the file, and exits).  Serving: the
 * parent sends KP_CTL_CHILD with one end of a new child's channel, which
 * is not read (only watched for its close) until KP_CTL_ARM names the
 * child: it has accepted a connection.  From the arm the channel lives for
 * its listener's handshake timeout and gets KP_SIGN_BUDGET signatures;
 * keyproc closes it at the first request that breaks the policy
 * (lib/wire.h, policy.h), and when the time is over.  KP_CTL_PING is
 * answered from this same loop, ahead of the children's requests: a
 * keyproc stuck anywhere leaves it unanswered, and the parent replaces
 * it.  EOF on the control channel: the parent is gone or has replaced us
 * (reload); the channels not armed can never be, so they are closed, and
 * keyproc exits when the last armed one is done, at the latest one
 * handshake timeout later.
 *
 * With keyproc-signers N > 1 the loop does all of this but the signature
 * itself: a checked request goes to one of N signer threads (kp_pool.h),
 * which signs and answers the child; the channel is not read meanwhile.
 * docs/ARCHITECTURE.md, "Several signers".
 */
#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "keyproc/keyproc.h"
#include "keyproc/kp_check.h"
#include "keyproc/kp_pool.h"
#include "lib/msg.h"
#include "lib/wire.h"
#include "keyproc/policy.h"
#include "keyproc/sign.h"
#include "lib/log.h"
#include "lib/sandbox.h"

#define KP_NOFILE_MAX	(1 << 20)
#define KP_ERR_MAX	512
#define KP_CHAN_HASH	1024
#define KP_DISPATCH_MAX	8	/* children's callbacks between two looks
				   at the control channel */

/* One listener, as the parent described it: all keyproc knows of it. */
struct kp_listener {
	uint32_t	 listener;
	uint32_t	 protocols;	/* KP_PROTO_* */
	uint32_t	 handshake_ms;	/* a channel's life from its arm */
};

/* One key, as announced by the parent and then loaded. */
struct kp_keyent {
	uint32_t	 listener;
	uint32_t	 key;
	int		 fd;		/* until loaded */
	char		*path;
	uint8_t		*spki;
	size_t		 spkilen;
	struct sign_key	*sk;
	int		 kind;		/* enum policy_key, once loaded */
};

/* One child's channel. */
struct kp_chan {
	LIST_ENTRY(kp_chan)		 entry;	/* kp_chans, by pid */
	struct event			*ev;	/* EV_CLOSED, then EV_READ */
	struct event			*expire;	/* armed: its end */
	int				 fd;
	pid_t				 pid;
	const struct kp_listener	*l;
	int				 armed;
	unsigned int			 nsigned;
	struct kp_job			*job;	/* at a signer: not read */
	const struct kp_keyent		*jobkey;	/* its key, its shape, */
	int				 jobshape;	/* for the log */
	int				 dying;	/* freed when job is back */
};

static struct kp_listener	*kp_listeners;
static size_t			 kp_nlisteners;
static struct kp_keyent		*kp_keys;
static size_t			 kp_nkeys;
static LIST_HEAD(, kp_chan)	 kp_chans[KP_CHAN_HASH];
static size_t			 kp_narmed;
static struct event_base	*kp_base;
static struct event		*kp_ctlev;
static int			 kp_retiring;	/* control channel closed */
static struct event		*kp_pongev;	/* an answer waits for room */
static uint32_t			 kp_pongseq;	/* the last ping's */
static unsigned int		 kp_signers = 1;	/* 1: the loop signs */
static int			 kp_pong_waits;	/* for the signers to move */

static void	kp_chan_free(struct kp_chan *);
static void	kp_chan_done(struct kp_job *);
static void	kp_pong(int, short, void *);

static void
kp_keys_free(void)
{
	size_t i;

	for (i = 0; i < kp_nkeys; i++) {
		sign_key_free(kp_keys[i].sk);
		if (kp_keys[i].fd != -1)
			close(kp_keys[i].fd);
		free(kp_keys[i].path);
		free(kp_keys[i].spki);
	}
	free(kp_keys);
	kp_keys = NULL;
	kp_nkeys = 0;
}

static __dead void
kp_exit(int status)
{
	struct kp_chan *c;
	size_t i;

	kp_retiring = 0;	/* kp_chan_free() must not come back here */
	kp_pool_stop();		/* no signer holds a key or a channel now */
	for (i = 0; i < KP_CHAN_HASH; i++)
		while ((c = LIST_FIRST(&kp_chans[i])) != NULL) {
			c->job = NULL;	/* the stopped pool's */
			kp_chan_free(c);
		}
	kp_keys_free();
	free(kp_listeners);
	/*
	 * _exit: the keys are gone, and atexit handlers (libcrypto's,
	 * a sanitizer's) may make system calls the filter does not allow.
	 */
	_exit(status);
}

static void
kp_send_ctl(uint32_t type, const char *text)
{
	size_t len = text != NULL ? strlen(text) : 0;

	if (len > LOG_LINE_MAX)
		len = LOG_LINE_MAX;
	if (msg_put(KP_CTL_FD, type, text, len, -1, 0) == -1)
		kp_exit(1);
}

/* Set-up failed: tell the parent why, and go. */
static __dead void
kp_fail(const char *msg)
{
	kp_send_ctl(KP_CTL_ERROR, msg);
	kp_exit(1);
}

/* ------------------------------------------------------------------ */
/* set-up                                                              */

static void
kp_recv_key(const struct msg_hdr *hdr, const uint8_t *body, int fd)
{
	struct kp_ctl_key m;
	struct kp_keyent *e, *keys;

	if (hdr->len < sizeof(m) || fd == -1)
		fatalx("control: bad key message");
	memcpy(&m, body, sizeof(m));
	if (m.spkilen == 0 || m.spkilen > KP_SPKI_MAX || m.pathlen == 0 ||
	    m.pathlen > KP_PATH_MAX ||
	    !MSG_LEN_IS(hdr, sizeof(m) + m.spkilen + m.pathlen) ||
	    memchr(body + sizeof(m) + m.spkilen, '\0', m.pathlen) != NULL)
		fatalx("control: bad key message");
	if ((keys = reallocarray(kp_keys, kp_nkeys + 1,
	    sizeof(*kp_keys))) == NULL)
		fatal("control");
	kp_keys = keys;
	e = &kp_keys[kp_nkeys];
	memset(e, 0, sizeof(*e));
	e->fd = fd;
	e->listener = m.listener;
	e->key = m.key;
	e->spkilen = m.spkilen;
	if ((e->spki = malloc(m.spkilen)) == NULL ||
	    (e->path = strndup((const char *)body + sizeof(m) + m.spkilen,
	    m.pathlen)) == NULL)
		fatal("control");
	kp_nkeys++;
	memcpy(e->spki, body + sizeof(m), m.spkilen);
}

static struct kp_listener *
kp_listener_find(uint32_t listener)
{
	size_t i;

	for (i = 0; i < kp_nlisteners; i++)
		if (kp_listeners[i].listener == listener)
			return &kp_listeners[i];
	return NULL;
}

static void
kp_recv_listener(const struct msg_hdr *hdr, const uint8_t *body, int fd)
{
	struct kp_ctl_listener m;
	struct kp_listener *ls;

	if (!MSG_LEN_IS(hdr, sizeof(m)) || fd != -1)
		fatalx("control: bad listener message");
	memcpy(&m, body, sizeof(m));
	if (m.protocols == 0 || (m.protocols & ~KP_PROTO_ALL) != 0 ||
	    m.handshake_ms == 0 || m.handshake_ms > KP_HANDSHAKE_MS_MAX)
		fatalx("control: bad listener message");
	if (kp_listener_find(m.listener) != NULL)
		fatalx("control: listener %u described twice", m.listener);
	if ((ls = reallocarray(kp_listeners, kp_nlisteners + 1,
	    sizeof(*kp_listeners))) == NULL)
		fatal("control");
	kp_listeners = ls;
	ls[kp_nlisteners].listener = m.listener;
	ls[kp_nlisteners].protocols = m.protocols;
	ls[kp_nlisteners].handshake_ms = m.handshake_ms;
	kp_nlisteners++;
}

static struct kp_keyent *
kp_key_find(uint32_t listener, uint32_t key)
{
	size_t i;

	for (i = 0; i < kp_nkeys; i++)
		if (kp_keys[i].listener == listener && kp_keys[i].key == key &&
		    kp_keys[i].sk != NULL)
			return &kp_keys[i];
	return NULL;
}

/* What the policy needs to know of a key (sign.h loads no other kind). */
static int
kp_key_kind(const struct sign_key *sk)
{
	if (sign_key_type(sk) == SIGN_KEY_RSA)
		return POLICY_KEY_RSA;
	return sign_key_bits(sk) == 384 ? POLICY_KEY_P384 : POLICY_KEY_P256;
}

/*
 * A key of e failed: say why, and which key it was (KP_CTL_ERROR_WHICH),
 * since one file may be the key of several certificates.
 */
static __dead void
kp_key_fail(const struct kp_keyent *e, const char *why)
{
	char err[KP_ERR_MAX + 64];

	snprintf(err, sizeof(err), "%s" KP_CTL_ERROR_WHICH, why, e->listener,
	    e->key);
	kp_fail(err);
}

/*
 * Load every key and sign once with it: the key works, and libcrypto's
 * random generator is seeded before the sandbox closes.
 */
static void
kp_load_keys(void)
{
	static const uint8_t probe[] = "recluse keyproc self-test";
	char err[KP_ERR_MAX];
	uint8_t sig[KP_SIG_MAX];
	struct kp_keyent *e;
	size_t i, siglen;
	uint32_t alg;

	for (i = 0; i < kp_nkeys; i++) {
		e = &kp_keys[i];
		if (kp_key_find(e->listener, e->key) != NULL) {
			snprintf(err, sizeof(err), "%s: key %u of listener %u "
			    "sent twice", e->path, e->key, e->listener);
			kp_fail(err);
		}
		if (kp_listener_find(e->listener) == NULL) {
			snprintf(err, sizeof(err), "%s: listener %u was not "
			    "described", e->path, e->listener);
			kp_fail(err);
		}
		if ((e->sk = sign_key_load(e->fd, e->path, e->spki,
		    e->spkilen, err, sizeof(err))) == NULL)
			kp_key_fail(e, err);
		e->kind = kp_key_kind(e->sk);
		close(e->fd);
		e->fd = -1;
		if (sign_key_size(e->sk) > KP_SIG_MAX) {
			snprintf(err, sizeof(err), "%s: key too large",
			    e->path);
			kp_key_fail(e, err);
		}
		alg = sign_key_type(e->sk) == SIGN_KEY_RSA ?
		    KP_ALG_RSA_PSS_SHA256 : KP_ALG_ECDSA_SHA256;
		if (sign_key_sign(e->sk, alg, probe, sizeof(probe), sig,
		    sizeof(sig), &siglen, err, sizeof(err)) == -1)
			kp_key_fail(e, err);
		log_debug("%s: %s key for listener %u, key %u", e->path,
		    sign_key_type(e->sk) == SIGN_KEY_RSA ? "RSA" : "EC",
		    e->listener, e->key);
	}
}

/* As many channels as the hard limit allows: one per live child. */
static size_t
kp_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_max == RLIM_INFINITY ||
	    rl.rlim_max > KP_NOFILE_MAX)
		return KP_NOFILE_MAX;
	return (size_t)rl.rlim_max;
}

/*
 * Channels not armed yet are watched for their close only (EV_CLOSED).
 * The control channel comes first (priority 0, the children's channels
 * 1), and the loop looks for it again after every KP_DISPATCH_MAX
 * children's callbacks: a ping waits for a few signatures at most, never
 * for a whole burst of them, so a busy keyproc is not taken for a stuck
 * one.
 */
static struct event_base *
kp_event_base(void)
{
	struct event_config *cfg;
	struct event_base *base = NULL;

	if ((cfg = event_config_new()) == NULL)
		return NULL;
	if (event_config_require_features(cfg, EV_FEATURE_EARLY_CLOSE) == 0 &&
	    event_config_set_max_dispatch_interval(cfg, NULL, KP_DISPATCH_MAX,
	    1) == 0)
		base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	if (base != NULL && event_base_priority_init(base, 2) == -1) {
		event_base_free(base);
		base = NULL;
	}
	return base;
}

static void
kp_start(const struct msg_hdr *hdr, const uint8_t *body)
{
	struct kp_ctl_start m;
	char err[KP_ERR_MAX], *root;

	if (hdr->len < sizeof(m))
		fatalx("control: bad start message");
	memcpy(&m, body, sizeof(m));
	if (m.pathlen == 0 || m.pathlen > KP_PATH_MAX ||
	    !MSG_LEN_IS(hdr, sizeof(m) + m.pathlen) ||
	    memchr(body + sizeof(m), '\0', m.pathlen) != NULL)
		fatalx("control: bad start message");
	if (m.signers == 0 || m.signers > KP_SIGNERS_MAX)
		fatalx("control: bad start message");
	if ((root = strndup((const char *)body + sizeof(m), m.pathlen)) == NULL)
		fatal("control");
	log_init("keyproc", (int)m.verbose, KP_CTL_FD);
	kp_load_keys();
	if ((kp_base = kp_event_base()) == NULL)
		kp_fail("keyproc: cannot make an event base with EV_CLOSED "
		    "and priorities");
	/*
	 * The signers are made before the sandbox: chroot (their fs is the
	 * process's), the credentials (glibc sets them on every thread) and
	 * the limits (per process: RLIMIT_NPROC 0 would refuse a thread
	 * made later) hold for them, and the filter is put on every thread
	 * at once, so no clone(2) is in it.  Until the filter is in, they
	 * only wait for a job, and none comes before KP_CTL_READY.
	 */
	kp_signers = m.signers;
	if (kp_signers > 1 && kp_pool_start(kp_signers, kp_base, kp_chan_done,
	    err, sizeof(err)) == -1)
		kp_fail(err);
	if (sandbox_drop(root, (uid_t)m.uid, (gid_t)m.gid, kp_nofile(), err,
	    sizeof(err)) == -1 ||
	    (kp_signers > 1 ? sandbox_seccomp_threads(SANDBOX_KEYPROC, err,
	    sizeof(err)) : sandbox_seccomp(SANDBOX_KEYPROC, err,
	    sizeof(err))) == -1)
		kp_fail(err);
	free(root);
	if (kp_signers > 1)
		log_debug("%u signer threads", kp_signers);
	else
		log_debug("one signer: the loop");
	log_debug("%zu keys loaded, serving", kp_nkeys);
	kp_send_ctl(KP_CTL_READY, NULL);
}

/* Until KP_CTL_START: listeners and keys only; the parent is trusted. */
static void
kp_setup(void)
{
	uint8_t buf[sizeof(struct msg_hdr) + sizeof(struct kp_ctl_key) +
	    KP_SPKI_MAX + KP_PATH_MAX];
	struct msg_hdr hdr;
	ssize_t n;
	int fd;

	for (;;) {
		if ((n = msg_get(KP_CTL_FD, buf, sizeof(buf), &hdr, &fd,
		    0)) == -1)
			fatal("control");
		if (n == 0)
			kp_exit(0);
		switch (hdr.type) {
		case KP_CTL_LISTENER:
			kp_recv_listener(&hdr, buf + sizeof(hdr), fd);
			break;
		case KP_CTL_KEY:
			kp_recv_key(&hdr, buf + sizeof(hdr), fd);
			break;
		case KP_CTL_START:
			if (fd != -1)
				close(fd);
			kp_start(&hdr, buf + sizeof(hdr));
			return;
		default:
			fatalx("control: unexpected message %u", hdr.type);
		}
	}
}

/* ------------------------------------------------------------------ */
/* serving                                                             */

static struct kp_chan *
kp_chan_find(pid_t pid)
{
	struct kp_chan *c;

	LIST_FOREACH(c, &kp_chans[(unsigned)pid % KP_CHAN_HASH], entry)
		if (c->pid == pid)
			return c;
	return NULL;
}

static void
kp_chan_free(struct kp_chan *c)
{
	if (c->job != NULL) {
		/* a signer holds its fd: free it when the job is back */
		c->dying = 1;
		event_del(c->ev);
		if (c->expire != NULL)
			event_del(c->expire);
		return;
	}
	LIST_REMOVE(c, entry);
	event_free(c->ev);
	if (c->expire != NULL)
		event_free(c->expire);
	close(c->fd);
	if (c->armed)
		kp_narmed--;
	free(c);
	if (kp_retiring && kp_narmed == 0)
		kp_exit(0);
}

/*
 * EOF on the control channel: a channel not armed now never
 * will be (its child was a spare of the replaced keyproc, or the parent is
 * gone); the armed ones end by their deadline at the latest.
 */
static void
kp_retire(void)
{
	struct kp_chan *c, *next;
	size_t i;

	event_free(kp_ctlev);
	kp_ctlev = NULL;
	event_del(kp_pongev);
	kp_pong_waits = 0;
	for (i = 0; i < KP_CHAN_HASH; i++)
		for (c = LIST_FIRST(&kp_chans[i]); c != NULL; c = next) {
			next = LIST_NEXT(c, entry);
			if (!c->armed)
				kp_chan_free(c);
		}
	log_debug("control channel closed; %zu handshakes to finish",
	    kp_narmed);
	if (kp_narmed == 0)
		kp_exit(0);
	kp_retiring = 1;
}

/* What kp_check() asks of the key table. */
static int
kp_key_kind_of(uint32_t listener, uint32_t key)
{
	const struct kp_keyent *e;

	return (e = kp_key_find(listener, key)) != NULL ? e->kind : -1;
}

static void
kp_signed_log(const struct kp_chan *c, const struct kp_keyent *e,
    uint32_t alg, int shape, uint32_t tbslen)
{
	log_debug("child %d: %s signature with %s (%s, %u bytes)", (int)c->pid,
	    sign_alg_name(alg), e->path, shape == POLICY_TLS13_SERVER_CV ?
	    "TLS 1.3" : "TLS 1.2", tbslen);
}

/* Sign and answer; -1 if the child cannot be answered. */
static int
kp_sign(struct kp_chan *c, struct kp_keyent *e, const struct kp_sign_req *req,
    int shape, const uint8_t *tbs)
{
	uint8_t sig[KP_SIG_MAX];
	char err[KP_ERR_MAX];
	struct kp_sign_rep rep;
	struct iovec iov[2];
	size_t siglen = 0;

	c->nsigned++;
	memset(&rep, 0, sizeof(rep));
	rep.id = req->id;
	rep.status = KP_OK;
	if (sign_key_sign(e->sk, req->alg, tbs, req->tbslen, sig, sizeof(sig),
	    &siglen, err, sizeof(err)) == -1) {
		log_warnx("child %d: %s: %s", (int)c->pid, e->path, err);
		rep.status = KP_FAIL;
		siglen = 0;
	}
	rep.siglen = (uint32_t)siglen;
	iov[0].iov_base = &rep;
	iov[0].iov_len = sizeof(rep);
	iov[1].iov_base = sig;
	iov[1].iov_len = siglen;
	if (msg_putv(c->fd, KP_SIGNED, iov, 2, -1, 0) == -1) {
		log_warn("child %d: reply", (int)c->pid);
		return -1;
	}
	kp_signed_log(c, e, req->alg, shape, req->tbslen);
	return 0;
}

/*
 * Hand the signature to a signer thread (kp_pool.h).  The channel is not
 * read until the job is back (kp_chan_done()): a child has one request
 * out at a time, and keyproc never reads a channel it is answering.
 */
static void
kp_sign_async(struct kp_chan *c, struct kp_keyent *e,
    const struct kp_sign_req *req, int shape, const uint8_t *tbs)
{
	struct kp_job *j;

	if ((j = calloc(1, sizeof(*j))) == NULL) {
		log_warn("child %d: job", (int)c->pid);
		kp_chan_free(c);
		return;
	}
	c->nsigned++;
	j->sk = e->sk;
	j->fd = c->fd;
	j->id = req->id;
	j->alg = req->alg;
	j->tbslen = req->tbslen;
	memcpy(j->tbs, tbs, req->tbslen);
	j->arg = c;
	event_del(c->ev);
	c->job = j;
	c->jobkey = e;
	c->jobshape = shape;
	kp_pool_submit(j);
}

/* A signer is done with the job of c = job->arg. */
static void
kp_chan_done(struct kp_job *j)
{
	struct kp_chan *c = j->arg;
	int ok = 1;

	c->job = NULL;
	if (j->failed)
		log_warnx("child %d: %s: %s", (int)c->pid, c->jobkey->path,
		    j->err);
	if (j->send_errno != 0) {
		errno = j->send_errno;
		log_warn("child %d: reply", (int)c->pid);
		ok = 0;
	} else
		kp_signed_log(c, c->jobkey, j->alg, c->jobshape,
		    (uint32_t)j->tbslen);
	free(j);
	if (kp_pong_waits) {
		/* the signers move again: the ping held back is answered */
		kp_pong_waits = 0;
		if (!event_pending(kp_pongev, EV_WRITE, NULL))
			kp_pong(KP_CTL_FD, 0, NULL);
	}
	if (c->dying || !ok)
		kp_chan_free(c);
	else if (event_add(c->ev, NULL) == -1) {
		log_warnx("child %d: cannot watch its channel", (int)c->pid);
		kp_chan_free(c);
	}
}

/* An armed channel has a request, or was closed. */
static void
kp_chan_read(int fd, short events, void *arg)
{
	uint8_t buf[sizeof(struct msg_hdr) + sizeof(struct kp_sign_req) +
	    KP_TBS_MAX + 1];
	const uint8_t *body = buf + sizeof(struct msg_hdr);
	struct kp_chan *c = arg;
	struct kp_sign_req req;
	struct kp_scope scope;
	struct kp_keyent *e;
	struct msg_hdr hdr;
	char reason[256];
	ssize_t n;
	int shape = -1;

	n = msg_get(fd, buf, sizeof(buf), &hdr, NULL, MSG_DONTWAIT);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n == 0) {
		log_debug("child %d: channel closed", (int)c->pid);
		kp_chan_free(c);
		return;
	}
	if (n == -1) {
		if (errno == EMSGSIZE)
			snprintf(reason, sizeof(reason), "request too long");
		else if (errno == EBADMSG)
			snprintf(reason, sizeof(reason), "malformed message "
			    "(framing, or a descriptor attached)");
		else
			snprintf(reason, sizeof(reason), "%s", strerror(errno));
		e = NULL;
	} else if (hdr.type != KP_SIGN) {
		snprintf(reason, sizeof(reason), "unexpected message %u",
		    hdr.type);
		e = NULL;
	} else {
		scope.listener = c->l->listener;
		scope.protocols = c->l->protocols;
		scope.nsigned = c->nsigned;
		scope.key_kind = kp_key_kind_of;
		shape = kp_check(&scope, body, hdr.len, &req, reason,
		    sizeof(reason));
		e = shape != -1 ? kp_key_find(c->l->listener, req.key) : NULL;
	}
	if (e == NULL) {
		log_warnx("child %d: %s", (int)c->pid, reason);
		kp_chan_free(c);
		return;
	}
	if (kp_signers > 1)
		kp_sign_async(c, e, &req, shape, body + sizeof(req));
	else if (kp_sign(c, e, &req, shape, body + sizeof(req)) == -1)
		kp_chan_free(c);
}

/* A channel not armed yet: its child has exited (a spare, retired). */
static void
kp_chan_closed(int fd, short events, void *arg)
{
	struct kp_chan *c = arg;

	log_debug("child %d: channel closed before its arm", (int)c->pid);
	kp_chan_free(c);
}

/* The listener's handshake timeout has passed since the arm. */
static void
kp_chan_expire(int fd, short events, void *arg)
{
	struct kp_chan *c = arg;

	log_debug("child %d: handshake time (%u ms) over, channel closed",
	    (int)c->pid, c->l->handshake_ms);
	kp_chan_free(c);
}

static void
kp_chan_add(int fd, pid_t pid, const struct kp_listener *l)
{
	struct kp_chan *c;

	if (fcntl(fd, F_SETFL, O_NONBLOCK) == -1 ||
	    (c = calloc(1, sizeof(*c))) == NULL) {
		log_warn("child %d: channel", (int)pid);
		close(fd);
		return;
	}
	c->fd = fd;
	c->pid = pid;
	c->l = l;
	/* Not read: a request that comes before the arm waits in the socket. */
	if ((c->ev = event_new(kp_base, fd, EV_CLOSED, kp_chan_closed,
	    c)) == NULL || event_add(c->ev, NULL) == -1) {
		log_warnx("child %d: cannot watch its channel", (int)pid);
		if (c->ev != NULL)
			event_free(c->ev);
		close(fd);
		free(c);
		return;
	}
	LIST_INSERT_HEAD(&kp_chans[(unsigned)pid % KP_CHAN_HASH], c, entry);
	log_debug("child %d: channel for listener %u", (int)pid,
	    l->listener);
}

/* From now on the channel is read, until its handshake time is over. */
static void
kp_chan_arm(struct kp_chan *c)
{
	struct timeval tv;

	tv.tv_sec = c->l->handshake_ms / 1000;
	tv.tv_usec = (suseconds_t)(c->l->handshake_ms % 1000) * 1000;
	event_free(c->ev);
	if ((c->ev = event_new(kp_base, c->fd, EV_READ | EV_PERSIST,
	    kp_chan_read, c)) == NULL ||
	    (c->expire = evtimer_new(kp_base, kp_chan_expire, c)) == NULL ||
	    event_add(c->expire, &tv) == -1 || event_add(c->ev, NULL) == -1)
		fatalx("child %d: cannot arm its channel", (int)c->pid);
	c->armed = 1;
	kp_narmed++;
}

static void
kp_recv_child(const struct msg_hdr *hdr, const uint8_t *body, int fd)
{
	const struct kp_listener *l;
	struct kp_ctl_child m;
	struct kp_chan *old;

	if (!MSG_LEN_IS(hdr, sizeof(m)) || fd == -1)
		fatalx("control: bad child message");
	memcpy(&m, body, sizeof(m));
	if ((l = kp_listener_find(m.listener)) == NULL) {
		log_warnx("child %u: no such listener %u", m.pid, m.listener);
		close(fd);
		return;
	}
	/* The parent reaped the process that had this pid before. */
	if ((old = kp_chan_find((pid_t)m.pid)) != NULL) {
		log_debug("child %u: pid reused, the old channel is closed",
		    m.pid);
		kp_chan_free(old);
	}
	kp_chan_add(fd, (pid_t)m.pid, l);
}

static void
kp_recv_arm(const struct msg_hdr *hdr, const uint8_t *body, int fd)
{
	struct kp_ctl_arm m;
	struct kp_chan *c;

	if (!MSG_LEN_IS(hdr, sizeof(m)) || fd != -1)
		fatalx("control: bad arm message");
	memcpy(&m, body, sizeof(m));
	if ((c = kp_chan_find((pid_t)m.pid)) == NULL) {
		/* its child exited before the arm reached us */
		log_debug("child %u: armed, but its channel is gone", m.pid);
		return;
	}
	if (c->armed) {
		/* once: a second arm would lengthen the channel's life */
		log_warnx("child %d: armed twice, ignored", (int)c->pid);
		return;
	}
	kp_chan_arm(c);
	log_debug("child %d: armed for %u ms", (int)c->pid,
	    c->l->handshake_ms);
}

/*
 * Answer the last ping.  The channel may be full (the parent is behind on
 * our log lines): then answer as soon as it has room, without holding up
 * the children meanwhile, and send no log line before it, so that the
 * room is the answer's.  A send that fails otherwise means the parent is
 * gone; its EOF comes next.
 */
static void
kp_pong(int fd, short events, void *arg)
{
	struct kp_ctl_ping m;

	memset(&m, 0, sizeof(m));
	m.seq = kp_pongseq;
	if (msg_put(KP_CTL_FD, KP_CTL_PONG, &m, sizeof(m), -1,
	    MSG_DONTWAIT) == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		log_hold(1);
		event_add(kp_pongev, NULL);
		return;
	}
	log_hold(0);
}

/* The parent asks whether we still serve: answering it says so. */
static void
kp_recv_ping(const struct msg_hdr *hdr, const uint8_t *body, int fd)
{
	struct kp_ctl_ping m;

	if (!MSG_LEN_IS(hdr, sizeof(m)) || fd != -1)
		fatalx("control: bad ping message");
	memcpy(&m, body, sizeof(m));
	kp_pongseq = m.seq;
	/*
	 * Signers that hold jobs and finished none since the last ping are
	 * stuck, or starved: the answer waits for their next finished job,
	 * so the parent judges them as it judges the loop.
	 */
	if (kp_signers > 1 && kp_pool_stuck()) {
		kp_pong_waits = 1;
		return;
	}
	/* an answer still waiting for room now carries this number */
	if (!event_pending(kp_pongev, EV_WRITE, NULL))
		kp_pong(KP_CTL_FD, 0, NULL);
}

/*
 * Serving: the parent hands over channels and arms them.  One message a
 * wake-up: the channel is level-triggered, and CHILD and ARM of one child
 * come apart in time, so a loop would mostly add a recvmsg that fails.
 */
static void
kp_dispatch_parent(int fd, short events, void *arg)
{
	uint8_t buf[sizeof(struct msg_hdr) + sizeof(struct kp_ctl_child)];
	struct msg_hdr hdr;
	ssize_t n;
	int chanfd;

	n = msg_get(fd, buf, sizeof(buf), &hdr, &chanfd, MSG_DONTWAIT);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n == 0) {
		kp_retire();
		return;
	}
	if (n == -1 && errno == EMFILE) {
		/* Our own shortage: that child's channel did not arrive. */
		log_warnx("control: a channel was lost: out of descriptors");
		return;
	}
	if (n == -1)
		fatal("control");
	switch (hdr.type) {
	case KP_CTL_CHILD:
		kp_recv_child(&hdr, buf + sizeof(hdr), chanfd);
		break;
	case KP_CTL_ARM:
		kp_recv_arm(&hdr, buf + sizeof(hdr), chanfd);
		break;
	case KP_CTL_PING:
		kp_recv_ping(&hdr, buf + sizeof(hdr), chanfd);
		break;
	default:
		fatalx("control: unexpected message %u", hdr.type);
	}
}

void
keyproc_main(void)
{
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	/* exec of /proc/self/exe named us "exe": say what we are in ps(1). */
	(void)prctl(PR_SET_NAME, "recluse-keyproc", 0, 0, 0);
	log_init("keyproc", 0, KP_CTL_FD);
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		fatal("prctl");
	kp_setup();
	if ((kp_ctlev = event_new(kp_base, KP_CTL_FD, EV_READ | EV_PERSIST,
	    kp_dispatch_parent, NULL)) == NULL ||
	    event_priority_set(kp_ctlev, 0) == -1 ||
	    event_add(kp_ctlev, NULL) == -1 ||
	    (kp_pongev = event_new(kp_base, KP_CTL_FD, EV_WRITE, kp_pong,
	    NULL)) == NULL || event_priority_set(kp_pongev, 0) == -1)
		fatalx("cannot watch the control channel");
	event_base_dispatch(kp_base);
	fatalx("event loop ended");
}
