/*
 * The spawner process (spawner.h): what runs after the exec.
 *
 * Two phases, like keyproc.  Set-up: on its channel (SPAWNER_FD) the
 * parent sends SPAWNER_GLOBAL, SPAWNER_LISTENER (with the chain's sealed
 * memfd), a SPAWNER_CERT for each certificate after the first (each with
 * its memfd), a SPAWNER_OCSP for each good staple, a SPAWNER_ALPN per ALPN
 * protocol and a SPAWNER_ROUTE per server-name block (each followed by a
 * SPAWNER_ROUTE_ALPN per protocol of its own alpn), a SPAWNER_BACKEND
 * per backend each followed by its SPAWNER_ADDR messages, then
 * SPAWNER_START.  The spawner rebuilds from
 * them the struct conf and struct conf_listener its children read
 * (child.c, backend.c, relay.c, route.c), builds the libtls context,
 * compiles the children's filter, makes its network namespace if asked,
 * drops its capabilities, installs its own filter and answers
 * SPAWNER_READY.  Serving: each SPAWNER_FORK
 * (with the child's keyproc channel) is answered by SPAWNER_FORKED with the
 * pid and the parent's end of the child's channel.  EOF: the parent is gone
 * or has stopped us; exit.  The parent is trusted, but every length is
 * checked all the same, and a malformed message ends the spawner.
 */
#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include <linux/capability.h>

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "config/conf.h"
#include "keyproc/kp_provider.h"
#include "lib/log.h"
#include "lib/msg.h"
#include "lib/sandbox.h"
#include "lib/wire.h"
#include "proxy/child.h"
#include "proxy/heapfile.h"
#include "proxy/lockpool.h"
#include "proxy/pp_spawner.h"
#include "proxy/mtls.h"
#include "proxy/resume.h"
#include "proxy/sni.h"
#include "proxy/snictx.h"
#include "proxy/spawner.h"
#include "proxy/textmap.h"
#include "proxy/warmup.h"
#include "proxy/tlsconf.h"
#include "proxy/tlshook.h"

/* What the spawner keeps: what its children need, nothing more. */
static struct {
	struct conf		 conf;
	struct conf_listener	 listener;
	struct tls		*tls;
	int			 listenfds[SPAWNER_SOCKS_MAX];
	size_t			 nsocks;
	uint32_t		 flags;
	char			 name[16];	/* the children's */
	struct tlsconf_pem	*pems;		/* until the context is made */
} sp;

/* Set-up messages, read in order: where we are. */
static struct {
	int			 global, listener, started;
	size_t			 certs;		/* certificates received */
	size_t			 backend;	/* backends complete */
	size_t			 addrs;		/* of the backend being sent */
} sp_rx;

/* The capabilities a spawner keeps: its children chroot and change user. */
static const int spawner_caps[] = {
	CAP_SETUID, CAP_SETGID, CAP_SYS_CHROOT
};

/*
 * A string of len bytes at *pp, within *leftp: a NUL-terminated copy, or
 * NULL when len is 0 and empty is allowed.  Exits on a bad length.
 */
static char *
take_str(const uint8_t **pp, size_t *leftp, uint32_t len, int empty_ok)
{
	char *s;

	if (len > SPAWNER_STR_MAX || len > *leftp || (len == 0 && !empty_ok))
		fatalx("set-up: bad string length %u", len);
	if (len == 0)
		return NULL;
	if ((s = strndup((const char *)*pp, len)) == NULL || strlen(s) != len)
		fatalx("set-up: bad string");
	*pp += len;
	*leftp -= len;
	return s;
}

static void
rx_global(const struct msg_hdr *hdr, const uint8_t *p)
{
	struct spawner_global g;
	struct conf *c = &sp.conf;
	size_t i, len = hdr->len;

	if (sp_rx.global || len < sizeof(g))
		fatalx("set-up: unexpected global message");
	memcpy(&g, p, sizeof(g));
	p += sizeof(g);
	len -= sizeof(g);
	if (g.nsocks == 0 || g.nsocks > SPAWNER_SOCKS_MAX ||
	    !MSG_LEN_IS(hdr, sizeof(g) + g.chrootlen) ||
	    g.name[sizeof(g.name) - 1] != '\0')
		fatalx("set-up: bad global message");
	c->uid = (uid_t)g.uid;
	c->gid = (gid_t)g.gid;
	c->timeout_handshake = (int)g.timeout_handshake;
	c->timeout_idle = (int)g.timeout_idle;
	c->timeout_connect = (int)g.timeout_connect;
	c->limit_memory = (int)g.limit_memory;
	c->limit_cpu = (int)g.limit_cpu;
	c->chroot = take_str(&p, &len, g.chrootlen, 0);
	c->listeners = &sp.listener;
	c->nlisteners = 1;
	sp.flags = g.flags;
	memcpy(sp.name, g.name, sizeof(sp.name));
	sp.nsocks = g.nsocks;
	for (i = 0; i < sp.nsocks; i++)
		sp.listenfds[i] = SPAWNER_FD + 1 + (int)i;
	log_init("spawner", (int)g.verbose, SPAWNER_FD);
	sp_rx.global = 1;
}

/* Chain i from its sealed memfd: nobody can have changed it since. */
static void
rx_chain(int fd, size_t i)
{
	struct tlsconf_pem *pem = &sp.pems[i];
	uint8_t *chain;
	int want = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL;
	struct stat st;
	int seals;

	if (fd == -1 || (seals = fcntl(fd, F_GET_SEALS)) == -1 ||
	    (seals & want) != want || fstat(fd, &st) == -1 ||
	    st.st_size <= 0 || st.st_size > SPAWNER_CHAIN_MAX)
		fatalx("set-up: bad certificate chain descriptor");
	pem->chainlen = (size_t)st.st_size;
	if ((chain = malloc(pem->chainlen)) == NULL)
		fatal("set-up");
	if (pread(fd, chain, pem->chainlen, 0) != st.st_size)
		fatal("set-up: certificate chain");
	pem->chain = chain;
	close(fd);
}

/* Certificate i's key reference, and its name for messages. */
static void
rx_ref(const uint8_t *p, uint32_t reflen, size_t i)
{
	char *ref;

	if ((ref = malloc(reflen)) == NULL)
		fatal("set-up");
	memcpy(ref, p, reflen);
	sp.pems[i].ref = ref;
	sp.pems[i].reflen = reflen;
	sp.pems[i].name = sp.listener.certs[i].certificate;
}

static void
rx_listener(const struct msg_hdr *hdr, const uint8_t *p, int fd)
{
	struct conf_listener *l = &sp.listener;
	struct spawner_listener m;
	size_t len = hdr->len;

	if (!sp_rx.global || sp_rx.listener || len < sizeof(m))
		fatalx("set-up: unexpected listener message");
	memcpy(&m, p, sizeof(m));
	p += sizeof(m);
	len -= sizeof(m);
	if (m.nbackends == 0 || m.nbackends > SPAWNER_BACKENDS_MAX ||
	    m.reflen == 0 || m.reflen > SPAWNER_REF_MAX ||
	    m.ncerts == 0 || m.ncerts > SPAWNER_CERTS_MAX ||
	    (m.flags & ~(uint32_t)SPAWNER_STRICT_SNI) != 0 ||
	    !MSG_LEN_IS(hdr, sizeof(m) + (uint64_t)m.namelen + m.certlen +
	    m.protocolslen + m.cipherslen + m.reflen))
		fatalx("set-up: bad listener message");
	if ((l->certs = calloc(m.ncerts, sizeof(*l->certs))) == NULL ||
	    (sp.pems = calloc(m.ncerts, sizeof(*sp.pems))) == NULL)
		fatal("set-up");
	l->ncerts = m.ncerts;
	l->strict_sni = (m.flags & SPAWNER_STRICT_SNI) != 0;
	l->name = take_str(&p, &len, m.namelen, 0);
	l->certs[0].certificate = take_str(&p, &len, m.certlen, 0);
	l->certs[0].keyfd = -1;
	l->protocols = take_str(&p, &len, m.protocolslen, 1);
	l->ciphers = take_str(&p, &len, m.cipherslen, 1);
	rx_ref(p, m.reflen, 0);
	if ((l->backends = calloc(m.nbackends, sizeof(*l->backends))) == NULL)
		fatal("set-up");
	l->nbackends = m.nbackends;
	rx_chain(fd, 0);
	sp_rx.certs = 1;
	sp_rx.listener = 1;
}

/* One more certificate (SNI chooses), in the order of the config. */
static void
rx_cert(const struct msg_hdr *hdr, const uint8_t *p, int fd)
{
	struct conf_listener *l = &sp.listener;
	struct spawner_cert m;
	size_t i, len = hdr->len;

	if (!sp_rx.listener || sp_rx.backend > 0 ||
	    sp_rx.certs >= l->ncerts || len < sizeof(m))
		fatalx("set-up: unexpected certificate message");
	memcpy(&m, p, sizeof(m));
	p += sizeof(m);
	len -= sizeof(m);
	if (m.reflen == 0 || m.reflen > SPAWNER_REF_MAX ||
	    !MSG_LEN_IS(hdr, sizeof(m) + (uint64_t)m.certlen + m.reflen))
		fatalx("set-up: bad certificate message");
	i = sp_rx.certs;
	l->certs[i].certificate = take_str(&p, &len, m.certlen, 0);
	l->certs[i].keyfd = -1;
	rx_ref(p, m.reflen, i);
	rx_chain(fd, i);
	sp_rx.certs++;
}

/* A certificate's OCSP staple: the parent checked it (proxy/ocsp.c). */
static void
rx_ocsp(const struct msg_hdr *hdr, const uint8_t *p)
{
	struct tlsconf_pem *pem;
	struct spawner_ocsp m;
	uint8_t *staple;

	if (!sp_rx.listener || sp_rx.certs != sp.listener.ncerts ||
	    sp_rx.backend > 0 || hdr->len < sizeof(m))
		fatalx("set-up: unexpected OCSP staple message");
	memcpy(&m, p, sizeof(m));
	if (m.cert >= sp.listener.ncerts || m.len == 0 ||
	    m.len > SPAWNER_OCSP_MAX ||
	    !MSG_LEN_IS(hdr, sizeof(m) + (uint64_t)m.len) ||
	    sp.pems[m.cert].staple != NULL)
		fatalx("set-up: bad OCSP staple message");
	if ((staple = malloc(m.len)) == NULL)
		fatal("set-up");
	memcpy(staple, p + sizeof(m), m.len);
	pem = &sp.pems[m.cert];
	pem->staple = staple;
	pem->staplelen = m.len;
}

static void
rx_backend(const struct msg_hdr *hdr, const uint8_t *p)
{
	struct conf_backend *b;
	struct spawner_backend m;
	size_t len = hdr->len;

	if (!sp_rx.listener || sp_rx.certs != sp.listener.ncerts ||
	    sp_rx.backend >= sp.listener.nbackends ||
	    (sp_rx.backend > 0 &&
	    sp_rx.addrs < sp.listener.backends[sp_rx.backend - 1].naddrs) ||
	    len < sizeof(m))
		fatalx("set-up: unexpected backend message");
	memcpy(&m, p, sizeof(m));
	p += sizeof(m);
	len -= sizeof(m);
	if ((m.type != CONF_BACKEND_TCP && m.type != CONF_BACKEND_UNIX) ||
	    m.port > 65535 || m.naddrs == 0 || m.naddrs > SPAWNER_ADDRS_MAX ||
	    m.route > sp.listener.nroutes || m.alpn > sp.listener.nalpn ||
	    !MSG_LEN_IS(hdr, sizeof(m) + (uint64_t)m.hostlen + m.pathlen))
		fatalx("set-up: bad backend message");
	b = &sp.listener.backends[sp_rx.backend++];
	b->type = (enum conf_backend_type)m.type;
	b->port = (unsigned short)m.port;
	b->host = take_str(&p, &len, m.hostlen, m.type == CONF_BACKEND_UNIX);
	b->path = take_str(&p, &len, m.pathlen, m.type == CONF_BACKEND_TCP);
	b->naddrs = m.naddrs;
	b->route = m.route;
	b->alpnidx = m.alpn;
	if ((b->addrs = calloc(m.naddrs, sizeof(*b->addrs))) == NULL ||
	    (b->addrlens = calloc(m.naddrs, sizeof(*b->addrlens))) == NULL)
		fatal("set-up");
	sp_rx.addrs = 0;
}

static void
rx_addr(const struct msg_hdr *hdr, const uint8_t *p)
{
	struct conf_backend *b;
	struct spawner_addr m;

	if (sp_rx.backend == 0 || hdr->len < sizeof(m))
		fatalx("set-up: unexpected address message");
	b = &sp.listener.backends[sp_rx.backend - 1];
	memcpy(&m, p, sizeof(m));
	if (sp_rx.addrs >= b->naddrs || m.addrlen == 0 ||
	    m.addrlen > sizeof(b->addrs[0]) ||
	    !MSG_LEN_IS(hdr, sizeof(m) + m.addrlen))
		fatalx("set-up: bad address message");
	memcpy(&b->addrs[sp_rx.addrs], p + sizeof(m), m.addrlen);
	b->addrlens[sp_rx.addrs++] = (socklen_t)m.addrlen;
}

/* SPAWNER_ALPN: a protocol, appended to the listener's, before its
 * first backend. */
static void
rx_alpn(const struct msg_hdr *hdr, const uint8_t *p)
{
	struct conf_listener *l = &sp.listener;
	struct spawner_str m;
	size_t len = hdr->len;
	char **names;

	if (!sp_rx.listener || sp_rx.backend > 0 || len < sizeof(m) ||
	    l->nalpn >= SPAWNER_ALPN_MAX)
		fatalx("set-up: unexpected alpn message");
	memcpy(&m, p, sizeof(m));
	p += sizeof(m);
	len -= sizeof(m);
	if (!MSG_LEN_IS(hdr, sizeof(m) + (uint64_t)m.len))
		fatalx("set-up: bad alpn message");
	if ((names = reallocarray(l->alpn, l->nalpn + 1,
	    sizeof(*names))) == NULL)
		fatal("set-up");
	l->alpn = names;
	l->alpn[l->nalpn++] = take_str(&p, &len, m.len, 0);
}

/* SPAWNER_ROUTE: a server-name block, appended to the listener's, before
 * its first backend. */
static void
rx_route(const struct msg_hdr *hdr, const uint8_t *p)
{
	struct conf_listener *l = &sp.listener;
	struct spawner_route m;
	size_t len = hdr->len;
	struct conf_route *r;

	if (!sp_rx.listener || sp_rx.backend > 0 || len < sizeof(m) ||
	    l->nroutes >= SPAWNER_ROUTES_MAX)
		fatalx("set-up: unexpected route message");
	memcpy(&m, p, sizeof(m));
	p += sizeof(m);
	len -= sizeof(m);
	if (!MSG_LEN_IS(hdr, sizeof(m) + (uint64_t)m.len) ||
	    m.proxy_protocol > CONF_PP_NONE)
		fatalx("set-up: bad route message");
	if ((r = reallocarray(l->routes, l->nroutes + 1, sizeof(*r))) == NULL)
		fatal("set-up");
	l->routes = r;
	memset(&r[l->nroutes], 0, sizeof(*r));
	r[l->nroutes].proxy_protocol = (int)m.proxy_protocol;
	r[l->nroutes++].name = take_str(&p, &len, m.len, 0);
}

/* SPAWNER_ROUTE_ALPN: a protocol of the last server-name block's own
 * alpn, one of the listener's. */
static void
rx_route_alpn(const struct msg_hdr *hdr, const uint8_t *p)
{
	struct conf_listener *l = &sp.listener;
	struct spawner_str m;
	size_t i, len = hdr->len;
	struct conf_route *r;
	char **names;

	if (!sp_rx.listener || sp_rx.backend > 0 || l->nroutes == 0 ||
	    len < sizeof(m))
		fatalx("set-up: unexpected route alpn message");
	r = &l->routes[l->nroutes - 1];
	memcpy(&m, p, sizeof(m));
	p += sizeof(m);
	len -= sizeof(m);
	if (!MSG_LEN_IS(hdr, sizeof(m) + (uint64_t)m.len) ||
	    r->nalpn >= l->nalpn)
		fatalx("set-up: bad route alpn message");
	if ((names = reallocarray(r->alpn, r->nalpn + 1,
	    sizeof(*names))) == NULL)
		fatal("set-up");
	r->alpn = names;
	r->alpn[r->nalpn] = take_str(&p, &len, m.len, 0);
	for (i = 0; i < l->nalpn; i++)
		if (strcmp(l->alpn[i], r->alpn[r->nalpn]) == 0)
			break;
	if (i == l->nalpn)
		fatalx("set-up: route alpn not the listener's");
	r->nalpn++;
}

/*
 * The session ticket keys, at set-up or later: for the children forked
 * from now on.  The message is wiped once the keys are copied.
 */
static void
rx_tickets(const struct msg_hdr *hdr, uint8_t *p)
{
	struct spawner_tickets m;

	if (!sp_rx.listener || hdr->len < sizeof(m))
		fatalx("unexpected ticket keys message");
	memcpy(&m, p, sizeof(m));
	if (m.nkeys == 0 || m.nkeys > SPAWNER_TICKET_KEYS_MAX ||
	    m.lifetime == 0 || m.lifetime > SPAWNER_TICKET_LIFE_MAX ||
	    !MSG_LEN_IS(hdr, sizeof(m) +
	    (uint64_t)m.nkeys * SPAWNER_TICKET_KEY_LEN))
		fatalx("bad ticket keys message");
	resume_set(p + sizeof(m), m.nkeys, m.lifetime, m.sid_ctx);
	explicit_bzero(p, hdr->len);
}

static void
rx_start(const struct msg_hdr *hdr)
{
	if (!MSG_LEN_IS(hdr, 0) || !sp_rx.listener ||
	    sp_rx.backend != sp.listener.nbackends ||
	    sp_rx.addrs != sp.listener.backends[sp_rx.backend - 1].naddrs)
		fatalx("set-up: incomplete configuration");
	sp_rx.started = 1;
}

/* The set-up messages, until SPAWNER_START. */
static void
spawner_receive(void)
{
	char err[CONF_ERR_MAX];
	struct msg_hdr hdr;
	uint8_t *buf;
	ssize_t n;
	int fd;

	if ((buf = malloc(SPAWNER_MSG_MAX)) == NULL)
		fatal("set-up");
	while (!sp_rx.started) {
		n = msg_get(SPAWNER_FD, buf, SPAWNER_MSG_MAX, &hdr, &fd, 0);
		if (n == 0 || (n == -1 && errno != EBADMSG))
			_exit(n == 0 ? 0 : 1);	/* the parent is gone */
		if (n == -1 || (fd != -1 && hdr.type != SPAWNER_LISTENER &&
		    hdr.type != SPAWNER_CLIENT && hdr.type != SPAWNER_CERT))
			fatalx("set-up: bad message of type %u", hdr.type);
		switch (hdr.type) {
		case SPAWNER_GLOBAL:
			rx_global(&hdr, buf + sizeof(hdr));
			break;
		case SPAWNER_LISTENER:
			rx_listener(&hdr, buf + sizeof(hdr), fd);
			break;
		case SPAWNER_CERT:
			rx_cert(&hdr, buf + sizeof(hdr), fd);
			break;
		case SPAWNER_OCSP:
			rx_ocsp(&hdr, buf + sizeof(hdr));
			break;
		case SPAWNER_BACKEND:
			rx_backend(&hdr, buf + sizeof(hdr));
			break;
		case SPAWNER_ADDR:
			rx_addr(&hdr, buf + sizeof(hdr));
			break;
		case SPAWNER_ALPN:
			rx_alpn(&hdr, buf + sizeof(hdr));
			break;
		case SPAWNER_ROUTE_ALPN:
			rx_route_alpn(&hdr, buf + sizeof(hdr));
			break;
		case SPAWNER_ROUTE:
			rx_route(&hdr, buf + sizeof(hdr));
			break;
		case SPAWNER_PP:
			if (!sp_rx.listener || pp_spawner_rx(&hdr,
			    buf + sizeof(hdr), &sp.listener) == -1)
				fatalx("set-up: bad proxy-protocol message");
			break;
		case SPAWNER_CLIENT:
			if (!sp_rx.listener || mtls_receive(&hdr,
			    buf + sizeof(hdr), fd, &sp.listener, err,
			    sizeof(err)) == -1)
				fatalx("%s", sp_rx.listener ? err :
				    "set-up: unexpected client message");
			break;
		case SPAWNER_TICKETS:
			rx_tickets(&hdr, buf + sizeof(hdr));
			break;
		case SPAWNER_START:
			rx_start(&hdr);
			break;
		default:
			fatalx("set-up: unexpected message type %u", hdr.type);
		}
	}
	free(buf);
}

/* Our listening sockets are where the parent put them, and nothing else. */
static void
spawner_check_fds(void)
{
	struct stat st;
	size_t i;

	for (i = 0; i < sp.nsocks; i++)
		if (fstat(sp.listenfds[i], &st) == -1 || !S_ISSOCK(st.st_mode))
			fatalx("set-up: descriptor %d is not a socket",
			    sp.listenfds[i]);
	if (close_range((unsigned int)sp.listenfds[sp.nsocks - 1] + 1, ~0U,
	    0) == -1)
		fatal("close_range");
}

/* The request sizes of glibc's tcache bins: chunks of 32 to 1040 bytes. */
#define TCACHE_FIRST	24
#define TCACHE_LAST	1032
#define TCACHE_STEP	16

/*
 * Take chunks of size from the free lists until one comes from the top
 * of the heap, or 0 if malloc fails.  keep_top: keep that one too (a
 * tcache size: freed, it would go back to the tcache, not to the top).
 */
static int
spawner_plug_size(size_t size, int keep_top)
{
	struct mallinfo2 mi;
	uintptr_t top;
	size_t n;
	void *p;

	mi = mallinfo2();
	top = (uintptr_t)sbrk(0) - mi.keepcost;
	for (n = 0; n < 100000; n++) {
		if ((p = malloc(size)) == NULL)
			return 0;
		if ((uintptr_t)p >= top) {
			if (!keep_top)
				free(p);	/* back into the top */
			break;
		}
	}
	return 1;
}

/*
 * Fill the holes set-up left in the heap (the more certificates, the
 * more: each libtls context parses and frees), so that a child's
 * allocations come from the top of the heap, pages of its own, rather
 * than from free chunks strewn over pages it shares with us, each of
 * which it would copy for a few bytes: with 50 certificates, that was
 * some 70 kB more written per child than with one (docs/PERFORMANCE.md).
 * Every tcache bin too, smallest chunks included: a child takes its
 * first allocations of each size from there, up to 7 chunks per size
 * wherever set-up freed them (~15 pages per child, more the more
 * certificates: docs/PERFORMANCE.md).
 * The plugs are never freed.  They take no page that was not in use,
 * but for the last chunk of each tcache size, taken from the top (some
 * 33 kB in all): freed, it would go back to the tcache.
 * Main arena only: the spawner has one thread.
 */
static void
spawner_plug_heap(void)
{
	static const size_t sizes[] = { 16384, 4096 };
	size_t i, size;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		if (!spawner_plug_size(sizes[i], 0))
			return;
	for (size = TCACHE_LAST; size >= TCACHE_FIRST; size -= TCACHE_STEP)
		if (!spawner_plug_size(size, 1))
			return;
}

/*
 * Leave the heap as children want it.  Set-up freed chunks of every size
 * all over the heap.  A child that found them so would consolidate and
 * sort them at its first allocations and at its malloc_trim(), writing
 * to each, and a write to a page it shares with us copies the page: ~20
 * more page faults per child than a fork of the parent had, +7 % CPU per
 * handshake (docs/PERFORMANCE.md).  So do that work once, here: trim
 * (which consolidates the small free chunks), then make and free what
 * every child makes first, its libevent base.
 */
static void
spawner_settle_heap(void)
{
	struct event_base *base;

	malloc_trim(0);
	spawner_plug_heap();
	if ((base = child_base_new()) != NULL)
		event_base_free(base);
}

/*
 * The heap and libcrypto's lock region on sealed files of their own
 * (proxy/heapfile.c), so that a child can give back the pages it copied
 * and no longer changes.  Last before the first fork: what the spawner
 * writes after this is its own.
 */
static void
spawner_freeze(void)
{
	void *region;
	size_t len;

	if (heapfile_freeze_heap() == -1)
		log_warnx("heapfile: the heap stays anonymous (more memory per "
		    "child): %s", strerror(errno));
	if ((region = lockpool_region(&len)) != NULL &&
	    heapfile_freeze(region, len) == -1)
		log_warnx("heapfile: the lock region stays anonymous: %s",
		    strerror(errno));
}

/*
 * The program's and its libraries' text and constants copied at each fork
 * (proxy/textmap.c): before the warm-up, so that what it maps is what a
 * child starts with.
 */
static void
spawner_map_text(void)
{
	int n;

	if ((n = textmap_prepare()) == -1)
		log_debug("textmap: children map their text themselves: %s",
		    strerror(errno));
	else
		log_debug("textmap: %d read-only segments copied at fork", n);
}

/*
 * heapfile_learn()'s probe: what a child does with the spawner's heap
 * before its relay, its event base and a handshake.
 */
static void
spawner_probe(void *arg)
{
	(void)child_base_new();
	warmup_handshake(sp.tls);
}

/* The pages of the frozen heap a child writes, copied at once. */
static void
spawner_learn(void)
{
	long n;

	if ((n = heapfile_learn(spawner_probe, NULL)) == -1)
		log_debug("heapfile: no probe: a child copies the pages it "
		    "writes one fault at a time");
	else
		log_debug("heapfile: %ld pages a child writes, copied when "
		    "its connection arrives", n);
}

/* The listener's libtls context, and what its children load. */
static void
spawner_build(void)
{
	char err[CONF_ERR_MAX];
	size_t i;

	if (kp_provider_load() == -1)
		fatalx("cannot load the keyproc OpenSSL provider");
	/* glibc reads /etc/localtime at its first time conversion, which a
	 * child cannot open: libtls converts a client certificate's dates
	 * (timegm()) once the handshake is done.  Load it here, once. */
	tzset();
	if (tlshook_init() == -1)
		fatalx("cannot register the OpenSSL connection hook");
	/* libtls gets the default pair only: snictx.h. */
	if (snictx_prepare(err, sizeof(err)) == -1 ||
	    (sp.tls = tlsconf_server(&sp.listener, sp.pems, 1, err,
	    sizeof(err))) == NULL ||
	    snictx_setup(&sp.listener, sp.pems, sp.listener.ncerts, err,
	    sizeof(err)) == -1 ||
	    sni_init(sp.pems, sp.listener.ncerts, sp.listener.strict_sni, err,
	    sizeof(err)) == -1)
		fatalx("%s", err);
	for (i = 0; i < sp.listener.ncerts; i++) {
		free((void *)sp.pems[i].chain);
		free((void *)sp.pems[i].ref);
		free((void *)sp.pems[i].staple);
	}
	free(sp.pems);
	sp.pems = NULL;
	/* The context holds the CAs and CRLs now; client_verify stays. */
	free(sp.listener.client_ca_pem);
	free(sp.listener.client_crl_pem);
	sp.listener.client_ca_pem = sp.listener.client_crl_pem = NULL;
	/* Both filters now: compiling allocates, installing does not. */
	if (sandbox_prepare(SANDBOX_CHILD, err, sizeof(err)) == -1 ||
	    sandbox_prepare(SANDBOX_SPAWNER, err, sizeof(err)) == -1)
		fatalx("%s", err);
	spawner_map_text();
	warmup_handshake(sp.tls);
	spawner_settle_heap();
	spawner_freeze();
	spawner_learn();
	log_debug("lockpool: %zu slots of libcrypto's lock region in use",
	    lockpool_slots());
}

/*
 * An empty network namespace for us and our children, if the parent asks
 * (their sockets all come from outside) and we may make one: it needs
 * CAP_SYS_ADMIN, which is dropped right after with the rest.
 */
static void
spawner_netns(void)
{
	struct timespec t0, t1;

	if ((sp.flags & SPAWNER_NETNS) == 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (unshare(CLONE_NEWNET) == -1) {
		log_debug("no network namespace of its own: %s",
		    strerror(errno));
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	log_debug("in an empty network namespace (made in %ld us)",
	    (long)((t1.tv_sec - t0.tv_sec) * 1000000 +
	    (t1.tv_nsec - t0.tv_nsec) / 1000));
}

static void
spawner_sandbox(void)
{
	char err[CONF_ERR_MAX];

	if (sandbox_keep_caps(spawner_caps, NELEM(spawner_caps), err,
	    sizeof(err)) == -1 ||
	    sandbox_seccomp(SANDBOX_SPAWNER, err, sizeof(err)) == -1)
		fatalx("%s", err);
}

static void
spawner_send(uint32_t type, const void *body, size_t len, int fd)
{
	if (msg_put(SPAWNER_FD, type, body, len, fd, 0) == -1)
		_exit(1);
}

/* Close every descriptor but those in keep (sorted ascending). */
static void
close_all_but(const int *keep, size_t n)
{
	unsigned int from = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if ((unsigned int)keep[i] > from)
			close_range(from, (unsigned int)keep[i] - 1, 0);
		from = (unsigned int)keep[i] + 1;
	}
	close_range(from, ~0U, 0);
}

/*
 * In the new child: keep stdin, stdout, stderr (/dev/null), its two
 * channels and the listening sockets, which come right after SPAWNER_FD;
 * then run.
 */
static __dead void
child_start(int kpfd, int chanfd)
{
	struct child_args args;
	int keep[3 + SPAWNER_SOCKS_MAX + 2], t;
	size_t n = 0, i, j;

	keep[n++] = STDIN_FILENO;
	keep[n++] = STDOUT_FILENO;
	keep[n++] = STDERR_FILENO;
	for (i = 0; i < sp.nsocks; i++)
		keep[n++] = sp.listenfds[i];
	keep[n++] = kpfd;
	keep[n++] = chanfd;
	/* kpfd and chanfd come last: sort those two into place */
	for (i = n - 2; i < n; i++)
		for (j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
			t = keep[j];
			keep[j] = keep[j - 1];
			keep[j - 1] = t;
		}
	lockpool_seal();
	/* SPAWNER_FD goes: log lines are the child's own from now on. */
	log_init("child", log_verbose(), -1);
	close_all_but(keep, n);
	(void)prctl(PR_SET_NAME, sp.name, 0, 0, 0);
	memset(&args, 0, sizeof(args));
	args.conf = &sp.conf;
	args.listener = &sp.listener;
	args.tls = sp.tls;
	args.kpfd = kpfd;
	args.parentfd = chanfd;
	args.listenfds = sp.listenfds;
	args.nlistenfds = sp.nsocks;
	child_main(&args);
}

/*
 * Fork a child whose parent is our parent.  glibc's fork() cannot take
 * CLONE_PARENT, so this is the raw system call (and the only form of clone
 * our filter allows): no atfork handlers run (recluse registers none;
 * OpenSSL 3 and glibc's arc4random notice a new process by its pid) and
 * the child's cached thread id stays ours, which only lock-owner checks
 * read, consistently, in a process of one thread.
 */
static pid_t
clone_sibling(void)
{
	return (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, NULL, NULL,
	    0);
}

static void
spawner_forked(pid_t pid, int error, int chanfd)
{
	struct spawner_forked rep = { .pid = pid, .error = error };

	spawner_send(SPAWNER_FORKED, &rep, sizeof(rep), chanfd);
}

/* One request: fork the child, or say why not. */
static void
spawner_serve(int kpfd)
{
	int ch[2];
	pid_t pid;

	if (kpfd == -1) {
		spawner_forked(-1, EINVAL, -1);
		return;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ch) == -1) {
		spawner_forked(-1, errno, -1);
		return;
	}
	if ((pid = clone_sibling()) == 0)
		child_start(kpfd, ch[1]);
	close(ch[1]);
	spawner_forked(pid, pid == -1 ? errno : 0, pid == -1 ? -1 : ch[0]);
	close(ch[0]);
}

__dead void
spawner_main(void)
{
	uint8_t buf[sizeof(struct msg_hdr) + sizeof(struct spawner_tickets) +
	    SPAWNER_TICKET_KEYS_MAX * SPAWNER_TICKET_KEY_LEN];
	struct msg_hdr hdr;
	ssize_t n;
	int kpfd, pooled;

	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	(void)prctl(PR_SET_NAME, SPAWNER_ARGV0, 0, 0, 0);
	/* Before anything allocates through libcrypto; said once the log
	 * reaches the parent. */
	pooled = lockpool_install();
	log_init("spawner", 0, SPAWNER_FD);
	if (pooled == -1)
		log_warnx("lockpool: not installed: libcrypto's locks stay "
		    "strewn over the heap (more memory per child)");
	spawner_receive();
	spawner_check_fds();
	spawner_build();
	spawner_netns();
	spawner_sandbox();
	spawner_send(SPAWNER_READY, NULL, 0, -1);
	log_debug("listener %s: ready", sp.listener.name);
	for (;;) {
		n = msg_get(SPAWNER_FD, buf, sizeof(buf), &hdr, &kpfd, 0);
		if (n == 0 || (n == -1 && errno != EBADMSG))
			_exit(n == 0 ? 0 : 1);	/* the parent is gone */
		if (n != -1 && hdr.type == SPAWNER_TICKETS && kpfd == -1) {
			rx_tickets(&hdr, buf + sizeof(hdr));
			continue;
		}
		if (n == -1 || hdr.type != SPAWNER_FORK ||
		    !MSG_LEN_IS(&hdr, 0)) {
			if (kpfd != -1)
				close(kpfd);
			fatalx("bad request");
		}
		spawner_serve(kpfd);
		if (kpfd != -1)
			close(kpfd);
	}
}
