/*
 * Session ticket keys in the parent: see tickets.h.
 */
#include <sys/random.h>
#include <sys/stat.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/evp.h>

#include "config/conf_tickets.h"
#include "config/parse.h"
#include "lib/log.h"
#include "lib/msg.h"
#include "lib/wire.h"
#include "proxy/spawn.h"
#include "proxy/spawner.h"
#include "proxy/tickets.h"

_Static_assert(CONF_TICKET_KEY_LEN == SPAWNER_TICKET_KEY_LEN, "key size");
_Static_assert(CONF_TICKET_KEYS_MAX == SPAWNER_TICKET_KEYS_MAX, "keys");

struct tickets_ring {
	uint8_t		keys[SPAWNER_TICKET_KEYS_MAX][SPAWNER_TICKET_KEY_LEN];
	size_t		nkeys;
	int		from_file;
	uint8_t		sid_ctx[SPAWNER_TICKET_SID_LEN];
};

static struct event	*tickets_timer;
static struct gen	*tickets_gen;

/* A new key from the kernel's random source, in front; the oldest goes. */
static int
ring_push_random(struct tickets_ring *r)
{
	uint8_t key[SPAWNER_TICKET_KEY_LEN];
	size_t off = 0;
	ssize_t n;

	while (off < sizeof(key)) {
		if ((n = getrandom(key + off, sizeof(key) - off, 0)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		off += (size_t)n;
	}
	memmove(r->keys[1], r->keys[0], SPAWNER_TICKET_KEY_LEN);
	memcpy(r->keys[0], key, sizeof(key));
	explicit_bzero(key, sizeof(key));
	if (r->nkeys < SPAWNER_TICKET_KEYS_MAX)
		r->nkeys++;
	return 0;
}

/* The keys of the session-ticket-key file, from the descriptor opened once. */
static int
ring_from_file(struct tickets_ring *r, const struct conf_listener *l,
    char *err, size_t errlen)
{
	uint8_t buf[SPAWNER_TICKET_KEYS_MAX * SPAWNER_TICKET_KEY_LEN + 1];
	ssize_t n;

	n = pread(l->ticket_keyfd, buf, sizeof(buf), 0);
	if (n != SPAWNER_TICKET_KEY_LEN &&
	    n != SPAWNER_TICKET_KEYS_MAX * SPAWNER_TICKET_KEY_LEN) {
		explicit_bzero(buf, sizeof(buf));
		if (n == -1)
			return conf_seterr(err, errlen, &l->ticket_key_where,
			    "session-ticket-key \"%s\": %s", l->ticket_key,
			    strerror(errno));
		return conf_seterr(err, errlen, &l->ticket_key_where,
		    "session-ticket-key \"%s\": read %zd bytes, not %d or %d",
		    l->ticket_key, n, SPAWNER_TICKET_KEY_LEN,
		    SPAWNER_TICKET_KEYS_MAX * SPAWNER_TICKET_KEY_LEN);
	}
	r->nkeys = (size_t)n / SPAWNER_TICKET_KEY_LEN;
	memcpy(r->keys, buf, (size_t)n);
	explicit_bzero(buf, sizeof(buf));
	if (r->nkeys == 2 && memcmp(r->keys[0], r->keys[1], 16) == 0)
		return conf_seterr(err, errlen, &l->ticket_key_where,
		    "session-ticket-key \"%s\": its two keys have one name",
		    l->ticket_key);
	r->from_file = 1;
	return 0;
}

/*
 * The session context: a hash of the listener's certificate chains.  A
 * ticket resumes only on a listener that serves the same certificates,
 * here or on another instance of a fleet that shares the key file.
 */
static int
ring_sid_ctx(struct tickets_ring *r, const struct gen_listener *gl)
{
	static const char label[] = "recluse session-tickets";
	EVP_MD_CTX *md;
	uint8_t buf[4096];
	unsigned int len;
	off_t off;
	ssize_t n = 0;
	size_t i;
	int rc = -1;

	if ((md = EVP_MD_CTX_new()) == NULL ||
	    !EVP_DigestInit_ex(md, EVP_sha256(), NULL) ||
	    !EVP_DigestUpdate(md, label, sizeof(label)))
		goto out;
	/* Every chain of the listener, in order. */
	for (i = 0; i < gl->tc.ncerts && n == 0; i++) {
		off = 0;
		while ((n = pread(gl->tc.certs[i].chainfd, buf, sizeof(buf),
		    off)) > 0) {
			if (!EVP_DigestUpdate(md, buf, (size_t)n))
				goto out;
			off += n;
		}
	}
	if (n == 0 && EVP_DigestFinal_ex(md, r->sid_ctx, &len) &&
	    len == sizeof(r->sid_ctx))
		rc = 0;
out:
	EVP_MD_CTX_free(md);
	return rc;
}

static const struct tickets_ring *
prev_ring(const struct gen *prev, const char *name)
{
	size_t i;

	for (i = 0; prev != NULL && i < prev->nlisteners; i++)
		if (strcmp(prev->listeners[i].conf->name, name) == 0)
			return prev->listeners[i].tickets;
	return NULL;
}

static int
tickets_load1(struct gen_listener *gl, const struct gen *prev, char *err,
    size_t errlen)
{
	const struct conf_listener *l = gl->conf;
	const struct tickets_ring *old;
	struct tickets_ring *r;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	gl->tickets = r;
	if (l->ticket_keyfd != -1)
		return ring_from_file(r, l, err, errlen);
	if ((old = prev_ring(prev, l->name)) != NULL && !old->from_file) {
		memcpy(r->keys, old->keys, sizeof(r->keys));
		r->nkeys = old->nkeys;
		return 0;
	}
	if (ring_push_random(r) == -1)
		return conf_seterr(err, errlen, &l->session_tickets_where,
		    "getrandom: %s", strerror(errno));
	return 0;
}

int
tickets_load(struct gen *g, const struct gen *prev, char *err,
    size_t errlen)
{
	struct gen_listener *gl;
	size_t i;

	for (i = 0; i < g->nlisteners; i++) {
		gl = &g->listeners[i];
		if (!gl->conf->session_tickets)
			continue;
		if (tickets_load1(gl, prev, err, errlen) == -1)
			return -1;
		if (ring_sid_ctx(gl->tickets, gl) == -1) {
			snprintf(err, errlen, "%s: cannot hash the chains",
			    gl->conf->certs[0].certificate);
			return -1;
		}
	}
	return 0;
}

void
tickets_clear(struct gen_listener *gl)
{
	if (gl->tickets == NULL)
		return;
	explicit_bzero(gl->tickets, sizeof(*gl->tickets));
	free(gl->tickets);
	gl->tickets = NULL;
}

int
tickets_send(int fd, const struct gen_listener *gl)
{
	const struct tickets_ring *r = gl->tickets;
	struct spawner_tickets m;
	struct iovec iov[2];

	if (r == NULL)
		return 0;
	memset(&m, 0, sizeof(m));
	m.nkeys = (uint32_t)r->nkeys;
	m.lifetime = TICKETS_LIFETIME_S;
	memcpy(m.sid_ctx, r->sid_ctx, sizeof(m.sid_ctx));
	iov[0].iov_base = &m;
	iov[0].iov_len = sizeof(m);
	iov[1].iov_base = (void *)r->keys;
	iov[1].iov_len = r->nkeys * SPAWNER_TICKET_KEY_LEN;
	return msg_putv(fd, SPAWNER_TICKETS, iov, 2, -1, 0);
}

/*
 * Rotate the parent's own keys of the current generation; the spawners
 * get them, and the spares forked with the old ones are retired (those
 * holding a connection keep theirs: the old key still decrypts for one
 * period).
 */
static void
tickets_rotate(evutil_socket_t fd, short what, void *arg)
{
	struct gen *g = tickets_gen;
	struct gen_listener *gl;
	size_t i;

	for (i = 0; g != NULL && i < g->nlisteners; i++) {
		gl = &g->listeners[i];
		if (gl->tickets == NULL || gl->tickets->from_file)
			continue;
		if (ring_push_random(gl->tickets) == -1) {
			log_warn("listener %s: new ticket key", gl->conf->name);
			continue;
		}
		log_info("listener %s: ticket keys rotated", gl->conf->name);
		spawner_send_tickets(g, i);
		spawn_retire_listener(g, i);
	}
	spawn_fill();
}

void
tickets_init(struct event_base *base)
{
	struct timeval tv = { TICKETS_ROTATE_S, 0 };

	if ((tickets_timer = event_new(base, -1, EV_PERSIST, tickets_rotate,
	    NULL)) == NULL || event_add(tickets_timer, &tv) == -1)
		fatalx("ticket key rotation timer");
#ifdef TICKETS_ROTATE_ON_SIGUSR2
	/* The test-only build (tests/helpers/recluse-rotate): a rotation
	 * when the test says, not when the clock does. */
	{
		static struct event *usr2;

		if ((usr2 = evsignal_new(base, SIGUSR2, tickets_rotate,
		    NULL)) == NULL || event_add(usr2, NULL) == -1)
			fatalx("SIGUSR2");
	}
#endif
}

void
tickets_set_gen(struct gen *g)
{
	tickets_gen = g;
}
