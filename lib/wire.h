/*
 * Every channel's messages, in one place.  All channels are SOCK_SEQPACKET
 * socketpairs, so one send is one message.  Every message on every channel
 * has one framing: a struct msg_hdr, then exactly len bytes of body
 * (lib/msg.h's msg_put() and msg_get() write and check it).  A body is a
 * fixed little struct in host byte order (both ends are this binary), no
 * pointers, no size_t, sometimes followed by bytes whose lengths it names.
 * Each type has an exact body size, which the reader checks with
 * MSG_LEN_IS() before it looks inside, and a peer whose message has the
 * wrong size loses its channel.  The reader treats the peer as hostile.
 *
 * Channels, named by who talks to whom:
 * - log lines, from any role to the parent (LOG_MSG_TYPE, struct log_msg);
 * - child <-> keyproc: one per child (KP_SIGN, KP_SIGNED);
 * - parent <-> keyproc: the control channel (enum kp_ctl_type);
 * - parent <-> child: one per child (enum chan_type);
 * - parent <-> spawner: one per spawner (enum spawner_type);
 * - parent <-> connector: one (enum connector_type);
 * - parent <-> metrics: one (enum metrics_type).
 */
#ifndef WIRE_H
#define WIRE_H

#include <stdint.h>

/* The header of every message on every channel. */
struct msg_hdr {
	uint32_t	type;	/* the channel's enum */
	uint32_t	len;	/* bytes of body following this header */
};
_Static_assert(sizeof(struct msg_hdr) == 8, "wire size");

/*
 * MSG_LEN_IS(hdr, n): the body of the message is exactly n bytes.  Every
 * reader checks every message with it (n is sizeof the type's body struct,
 * plus the lengths that struct names), and closes the channel when not.
 */
#define MSG_LEN_IS(hdr, n)	((uint64_t)(hdr)->len == (uint64_t)(n))


/* ------------------------------------------------------------------ */
/* log lines: any role -> parent                                       */

/* Largest line a role may send to the parent, prefix excluded. */
#define LOG_LINE_MAX	1024

/*
 * A log line sent to the parent is one message of type LOG_MSG_TYPE: a
 * struct log_msg, then the text (no NUL, at most LOG_LINE_MAX bytes).  The
 * type value is reserved on every channel to the parent.
 */
#define LOG_MSG_TYPE	18
struct log_msg {
	uint32_t	level;	/* enum log_level (lib/log.h) */
};
_Static_assert(sizeof(struct log_msg) == 4, "wire size");

/* The largest log message, header included. */
#define LOG_MSG_MAX	(sizeof(struct msg_hdr) + sizeof(struct log_msg) + \
			    LOG_LINE_MAX)

/* ------------------------------------------------------------------ */
/* child <-> keyproc: one channel per child                            */

/*
 * keyproc does not read a child's channel before the parent arms it
 * (KP_CTL_ARM, once the child holds a connection); from then on the
 * channel lives for its listener's handshake timeout and gets at most
 * KP_SIGN_BUDGET signatures, then keyproc closes it.  A full TLS 1.2 or
 * TLS 1.3 handshake signs once (ServerKeyExchange or CertificateVerify;
 * a HelloRetryRequest does not add one, a resumed session makes none, and
 * the child lets go of its channel once its handshake is done, so a
 * renegotiation cannot ask for another).
 */
#define KP_TBS_MAX	256	/* largest TLS 1.2/1.3 to-be-signed input */
#define KP_SIG_MAX	512	/* RSA-4096 */
#define KP_SIGN_BUDGET	1	/* signatures one channel may ask for */

/* The closed set of signature algorithms keyproc performs. */
enum kp_alg {
	KP_ALG_RSA_PKCS1_SHA256 = 1,	/* TLS 1.2 only */
	KP_ALG_RSA_PKCS1_SHA384 = 2,
	KP_ALG_RSA_PKCS1_SHA512 = 3,
	KP_ALG_RSA_PSS_SHA256 = 4,	/* salt length = digest length */
	KP_ALG_RSA_PSS_SHA384 = 5,
	KP_ALG_RSA_PSS_SHA512 = 6,
	KP_ALG_ECDSA_SHA256 = 7,
	KP_ALG_ECDSA_SHA384 = 8,
	KP_ALG_ECDSA_SHA512 = 9
};

enum kp_sign_type {
	KP_SIGN = 1,		/* child -> keyproc: struct kp_sign_req + tbs */
	KP_SIGNED = 2		/* keyproc -> child: struct kp_sign_rep + sig */
};

struct kp_sign_req {		/* KP_SIGN, followed by exactly tbslen bytes */
	uint32_t	id;	/* echoed in the reply */
	uint32_t	key;	/* index into this child's listener's keys */
	uint32_t	alg;	/* enum kp_alg */
	uint32_t	tbslen;	/* 1 .. KP_TBS_MAX */
};
_Static_assert(sizeof(struct kp_sign_req) == 16, "wire size");

enum kp_status {
	KP_OK = 0,
	KP_FAIL = 1		/* the key operation itself failed */
};

struct kp_sign_rep {		/* KP_SIGNED, followed by exactly siglen bytes */
	uint32_t	id;
	uint32_t	status;	/* enum kp_status; siglen 0 unless KP_OK */
	uint32_t	siglen;	/* <= KP_SIG_MAX, <= the key's size */
};
_Static_assert(sizeof(struct kp_sign_rep) == 12, "wire size");

/* ------------------------------------------------------------------ */
/* parent <-> keyproc: the control channel (fd KP_CTL_FD in keyproc)   */

#define KP_CTL_FD	3
#define KP_PATH_MAX	1024
#define KP_SPKI_MAX	2048

/*
 * Set-up: KP_CTL_LISTENER for every listener that has keys and KP_CTL_KEY
 * for every key, in any order, then KP_CTL_START.  Serving: KP_CTL_CHILD
 * when a child is forked, KP_CTL_ARM when it has accepted a connection,
 * and KP_CTL_PING every KP_PING_INTERVAL_MS, which keyproc answers with
 * KP_CTL_PONG from the loop that signs.  What keyproc knows of a listener
 * (its keys, protocols and handshake timeout) comes from these messages
 * only, never from a child.
 */
enum kp_ctl_type {
	/* parent -> keyproc */
	KP_CTL_KEY = 1,		/* + spki DER + path; fd: the open key file */
	KP_CTL_START = 2,	/* + chroot path: drop privileges, serve */
	KP_CTL_CHILD = 3,	/* fd: the child's end of its channel */
	KP_CTL_LISTENER = 4,	/* what a listener's children may have signed */
	KP_CTL_ARM = 5,		/* a child holds a connection: serve it */
	KP_CTL_PING = 6,	/* struct kp_ctl_ping: answer it */
	/* keyproc -> parent */
	KP_CTL_READY = 16,	/* keys loaded, sandboxed, serving */
	KP_CTL_ERROR = 17,	/* + message; keyproc exits after it */
	KP_CTL_LOG = LOG_MSG_TYPE,	/* a log line: struct log_msg + text */
	KP_CTL_PONG = 19	/* struct kp_ctl_ping: the ping's seq */
};

/*
 * A KP_CTL_ERROR about one key ends with this, its listener and key
 * index, so the parent can name the configuration line of that key.
 */
#define KP_CTL_ERROR_WHICH	" (listener %u, key %u)"

struct kp_ctl_key {		/* KP_CTL_KEY */
	uint32_t	listener;	/* listener index in the config */
	uint32_t	key;		/* key index within the listener */
	uint32_t	spkilen;	/* certificate's public key, DER */
	uint32_t	pathlen;	/* the key file's name, for messages */
};
_Static_assert(sizeof(struct kp_ctl_key) == 16, "wire size");

#define KP_SIGNERS_MAX	64	/* keyproc-signers' largest value */

struct kp_ctl_start {		/* KP_CTL_START, + pathlen bytes */
	uint32_t	uid;		/* keyproc-user */
	uint32_t	gid;
	uint32_t	verbose;
	uint32_t	signers;	/* 1 .. KP_SIGNERS_MAX threads that sign */
	uint32_t	pathlen;	/* chroot directory */
};
_Static_assert(sizeof(struct kp_ctl_start) == 20, "wire size");

/*
 * KP_CTL_CHILD: the channel is not read until KP_CTL_ARM names its pid;
 * requests sent before stay in the socket.  A pid already known means its
 * process is gone (the parent reaped it): the older channel is closed.
 */
struct kp_ctl_child {		/* KP_CTL_CHILD */
	uint32_t	pid;		/* names the channel in KP_CTL_ARM, logs */
	uint32_t	listener;	/* the only keys this child may use */
};
_Static_assert(sizeof(struct kp_ctl_child) == 8, "wire size");

/* The TLS versions a listener allows, as the signature inputs they make. */
#define KP_PROTO_TLS12	0x1	/* ECDHE ServerKeyExchange */
#define KP_PROTO_TLS13	0x2	/* server CertificateVerify */
#define KP_PROTO_ALL	(KP_PROTO_TLS12 | KP_PROTO_TLS13)
#define KP_HANDSHAKE_MS_MAX	86400000	/* timeout handshake's maximum */

struct kp_ctl_listener {	/* KP_CTL_LISTENER */
	uint32_t	listener;	/* listener index, as in KP_CTL_KEY */
	uint32_t	protocols;	/* KP_PROTO_*, at least one */
	uint32_t	handshake_ms;	/* a channel's life from its arm */
};
_Static_assert(sizeof(struct kp_ctl_listener) == 12, "wire size");

/*
 * KP_CTL_ARM: sent once per child, when it reports CHAN_ACCEPTED, and only
 * to the keyproc that holds its channel (never to one started after it).
 */
struct kp_ctl_arm {		/* KP_CTL_ARM */
	uint32_t	pid;		/* as in its KP_CTL_CHILD */
};
_Static_assert(sizeof(struct kp_ctl_arm) == 4, "wire size");

/*
 * KP_CTL_PING and its KP_CTL_PONG: liveness.  The parent pings every
 * KP_PING_INTERVAL_MS while no ping is unanswered; keyproc answers from
 * the loop that serves the children's requests, ahead of them, so a
 * keyproc stuck anywhere (stopped, looping, blocked) does not answer.
 * One that has not answered a ping KP_ANSWER_MS after it was sent is
 * killed and replaced.
 */
#define KP_PING_INTERVAL_MS	250
#define KP_ANSWER_MS		1500

/*
 * How long a child waits for its signature.  A child of a keyproc that is
 * stuck sees its channel close when the parent kills it, at most
 * KP_PING_INTERVAL_MS + KP_ANSWER_MS after it stuck, and fails at once;
 * this bound is for a parent that cannot act.  It counts from the request,
 * so it also covers the parent's arming and keyproc's queue in a burst:
 * on a loaded machine, 1000 handshakes at once (tests/proxy.bats) made
 * some children wait more than 2.5 s for a healthy keyproc.
 */
#define KP_SIGN_WAIT_MS		5000
_Static_assert(KP_SIGN_WAIT_MS > KP_PING_INTERVAL_MS + KP_ANSWER_MS,
    "a child outwaits the parent's judgement of keyproc");

struct kp_ctl_ping {		/* KP_CTL_PING and KP_CTL_PONG */
	uint32_t	seq;		/* the pong echoes the ping's */
};
_Static_assert(sizeof(struct kp_ctl_ping) == 4, "wire size");

/* ------------------------------------------------------------------ */
/* parent <-> connection child: one channel per child                  */

/* Bodies are empty unless a struct is named. */
enum chan_type {
	CHAN_ACCEPTED = 1,	/* child -> parent: I hold a connection */
	CHAN_CONNECT = 2,	/* child -> parent: struct chan_connect:
				   connect my backends of this route */
	CHAN_CONNECTED = 3,	/* parent -> child: struct chan_connected +
				   fd: the backend connection */
	CHAN_RETIRE = 4,	/* parent -> child: if you hold no connection
				   yet, exit now (reload, keyproc restart,
				   drain); otherwise ignore this */
	CHAN_ESTABLISHED = 5,	/* child -> parent: my TLS handshake is done
				   (the parent kills a child that has not said
				   so timeout_handshake + 1 s after
				   CHAN_ACCEPTED) */
	CHAN_CONNECT_FAILED = 6, /* parent -> child: struct
				   chan_connect_failed; no fd */
	CHAN_DRAIN = 7,		/* parent -> child: struct chan_drain: the
				   parent drains.  idle 0: end your connection
				   cleanly now (close_notify, EOF to the
				   backend, access line end=drain); the parent
				   kills a child still there CHAN_DRAIN_GRACE
				   s later.  idle N (1 .. CHAN_DRAIN_IDLE_MAX):
				   the same once no byte has moved for N s
				   (end=drain-idle).  A spare leaves, as for
				   CHAN_RETIRE */
	CHAN_PEER = 8,		/* child -> parent: struct chan_peer, once
				   its handshake is done (the status view) */
	CHAN_ENDED = 9,		/* child -> parent: struct chan_ended, once,
				   when its connection ends (the counters) */
	CHAN_LOG = LOG_MSG_TYPE	/* child -> parent: struct log_msg + text */
};

/*
 * CHAN_CONNECT: which of its listener's backends the child wants
 * (proxy/route.h): those of route (0: the listener's own, k: server-name
 * block k) for protocol alpn (0: none, p: the listener's alpn protocol p).
 * The parent refuses a route or protocol its listener does not have, and
 * closes that child's channel: a child reaches its own listener's
 * backends and nothing else, whatever it names.
 */
struct chan_connect {		/* CHAN_CONNECT */
	uint32_t	route;		/* 0 .. the listener's nroutes */
	uint32_t	alpn;		/* 0 .. the listener's nalpn */
};
_Static_assert(sizeof(struct chan_connect) == 8, "wire size");

struct chan_connected {		/* CHAN_CONNECTED */
	uint32_t	backend;	/* index of the backend in the listener */
};
_Static_assert(sizeof(struct chan_connected) == 4, "wire size");

struct chan_connect_failed {	/* CHAN_CONNECT_FAILED */
	uint32_t	error;		/* errno of the last attempt */
};
_Static_assert(sizeof(struct chan_connect_failed) == 4, "wire size");

struct chan_drain {		/* CHAN_DRAIN */
	uint32_t	idle;		/* s; 0: now */
};
_Static_assert(sizeof(struct chan_drain) == 4, "wire size");

/*
 * What a child says of its client, for the status view.  NUL-terminated
 * (the parent puts a NUL at the end and escapes the rest anyway: these are
 * a child's claims, shown to a person, never used for anything else).
 */
#define CHAN_PEER_CLIENT_MAX	64
#define CHAN_PEER_SNI_MAX	128
struct chan_peer {		/* CHAN_PEER */
	char		client[CHAN_PEER_CLIENT_MAX];	/* address:port */
	char		sni[CHAN_PEER_SNI_MAX];		/* "" if none */
};
_Static_assert(sizeof(struct chan_peer) == 192, "wire size");

/* How a connection ended, as counted by the parent (a closed set). */
enum chan_end {
	CHAN_END_CLOSED = 0,		/* relayed, then closed or reset */
	CHAN_END_HANDSHAKE_TIMEOUT = 1,	/* no handshake in time */
	CHAN_END_HANDSHAKE_FAILED = 2,	/* protocol error or alert */
	CHAN_END_KEYPROC = 3,		/* keyproc refused or did not sign */
	CHAN_END_BACKEND = 4,		/* no backend would connect */
	CHAN_END_IDLE = 5,		/* idle timeout while relaying */
	CHAN_END_ERROR = 6,		/* internal error in the child */
	CHAN_END_DRAIN = 7,		/* ended by a drain (timeout drain or
					   drain-idle) */
	CHAN_END_MAX = 8
};

/* The child's own signature, as it saw it. */
enum chan_sign {
	CHAN_SIGN_NONE = 0,		/* none asked (resumed, or no handshake) */
	CHAN_SIGN_OK = 1,		/* keyproc signed */
	CHAN_SIGN_REFUSED = 2		/* keyproc closed the channel, failed
					   or did not answer */
};

/*
 * CHAN_ENDED: a child's claims about its connection, which the parent
 * only counts, within bounds (end and sign in their sets), and never
 * trusts for anything else.
 */
struct chan_ended {		/* CHAN_ENDED */
	uint32_t	end;		/* enum chan_end */
	uint32_t	sign;		/* enum chan_sign */
	uint32_t	handshake_us;	/* accept to handshake done; 0: none */
	uint32_t	sign_us;	/* KP_SIGN sent to KP_SIGNED read */
	uint64_t	from_client;	/* plaintext bytes to the backend */
	uint64_t	to_client;	/* plaintext bytes to the client */
};
_Static_assert(sizeof(struct chan_ended) == 32, "wire size");

/* The largest message the parent reads from a child: a log line. */
#define CHAN_MSG_MAX	LOG_MSG_MAX

#define CHAN_DRAIN_GRACE	1	/* s after CHAN_DRAIN 0: SIGKILL */
#define CHAN_DRAIN_IDLE_MAX	86400	/* timeout drain-idle's maximum */

/*
 * A child waits for the answer to its CHAN_CONNECT at most this long per
 * backend address (the listener's connect timeout plus this slack), plus
 * CHAN_CONNECT_MARGIN_MS once; the parent gives up on each attempt after
 * the timeout plus the slack, whatever the connector does.
 */
#define CHAN_CONNECT_SLACK_MS	500
#define CHAN_CONNECT_MARGIN_MS	1000

/* ------------------------------------------------------------------ */
/* parent <-> spawner: one channel per spawner (fd SPAWNER_FD in it)    */

/*
 * A spawner is exec'ed with its channel on SPAWNER_FD and its listener's
 * listening sockets on the descriptors right after it.  Strings are not
 * NUL-terminated and are at most SPAWNER_STR_MAX bytes (the parser's word
 * limit).  A certificate chain is not sent in a datagram: it comes as a
 * sealed memfd (F_SEAL_WRITE, _GROW, _SHRINK, _SEAL) of at most
 * SPAWNER_CHAIN_MAX bytes, made once when the configuration is loaded.
 * SPAWNER_LISTENER carries the listener's first (default) certificate,
 * and one SPAWNER_CERT follows for each other (ncerts - 1 of them).
 */
#define SPAWNER_FD		3
#define SPAWNER_SOCKS_MAX	256	/* listening sockets of one listener */
#define SPAWNER_STR_MAX		4096
#define SPAWNER_REF_MAX		4096	/* the key reference PEM */
#define SPAWNER_CHAIN_MAX	(1024 * 1024)
#define SPAWNER_ADDR_MAX	128	/* sizeof(struct sockaddr_storage) */
#define SPAWNER_BACKENDS_MAX	1024
#define SPAWNER_ADDRS_MAX	1024	/* addresses of one backend */
#define SPAWNER_CERTS_MAX	1024	/* CONF_CERTS_MAX */
#define SPAWNER_OCSP_MAX	16384	/* a certificate's OCSP staple, DER */

enum spawner_type {
	/* parent -> spawner, once, in this order */
	SPAWNER_GLOBAL = 1,	/* struct spawner_global + chroot path */
	SPAWNER_LISTENER = 2,	/* struct spawner_listener + its strings;
				   fd: the chain's sealed memfd */
	SPAWNER_BACKEND = 3,	/* struct spawner_backend + host or path */
	SPAWNER_ADDR = 4,	/* struct spawner_addr + the sockaddr */
	SPAWNER_START = 5,	/* nothing: build, drop privileges, serve */
	SPAWNER_ALPN = 7,	/* struct spawner_str + a protocol; each of
				   the listener's, in order, before the
				   backends */
	SPAWNER_ROUTE = 8,	/* struct spawner_route + a server-name; each
				   block's, in order, before the backends */
	SPAWNER_ROUTE_ALPN = 14, /* struct spawner_str + a protocol: each of
				   the last SPAWNER_ROUTE's own alpn, in
				   order, right after it; each one of the
				   listener's SPAWNER_ALPN */
	SPAWNER_PP = 9,		/* struct spawner_pp + its networks: once,
				   after SPAWNER_LISTENER, before
				   SPAWNER_START; none: no PROXY protocol */
	SPAWNER_CLIENT = 10,	/* struct spawner_client; fd: a sealed memfd,
				   the CAs then the CRLs (PEM); at most once,
				   after SPAWNER_LISTENER, before START */
	SPAWNER_CERT = 12,	/* struct spawner_cert + its strings; fd: the
				   chain's sealed memfd.  After the listener,
				   before the first backend */
	SPAWNER_OCSP = 13,	/* struct spawner_ocsp + the staple; at most
				   once per certificate, after the
				   certificates, before the first backend;
				   only a staple the parent found good */
	/* parent -> spawner, then */
	SPAWNER_FORK = 6,	/* nothing; fd: the child's keyproc channel */
	SPAWNER_TICKETS = 11,	/* struct spawner_tickets + keys: the session
				   ticket keys of the children forked from
				   now on; at set-up (before START) iff the
				   listener has session-tickets on, then at
				   each rotation or reload of the keys */
	/* spawner -> parent */
	SPAWNER_READY = 16,	/* nothing: sandboxed, serving */
	SPAWNER_FORKED = 17,	/* struct spawner_forked; fd: the parent's
				   end of the child's channel, unless error */
	SPAWNER_LOG = LOG_MSG_TYPE	/* struct log_msg + text */
};

/* What every child of the spawner needs of the global configuration. */
struct spawner_global {		/* SPAWNER_GLOBAL, + chrootlen bytes */
	uint32_t	uid;		/* the children's user */
	uint32_t	gid;
	uint32_t	timeout_handshake;	/* seconds */
	uint32_t	timeout_idle;
	uint32_t	timeout_connect;
	uint32_t	limit_memory;	/* MiB, RLIMIT_AS of each child */
	uint32_t	limit_cpu;	/* seconds, RLIMIT_CPU of each child */
	uint32_t	verbose;
	uint32_t	flags;		/* SPAWNER_NETNS */
	uint32_t	nsocks;		/* listening sockets after SPAWNER_FD */
	char		name[16];	/* the parent's process name, which the
					   children take; NUL-padded */
	uint32_t	chrootlen;
};
_Static_assert(sizeof(struct spawner_global) == 60, "wire size");

/* Put the spawner and its children in a new, empty network namespace. */
#define SPAWNER_NETNS		0x1

struct spawner_listener {	/* SPAWNER_LISTENER, + the strings in order */
	uint32_t	index;		/* in the configuration, for messages */
	uint32_t	nbackends;	/* SPAWNER_BACKEND messages to follow */
	uint32_t	namelen;
	uint32_t	certlen;	/* the certificate's file name */
	uint32_t	protocolslen;	/* 0: the default */
	uint32_t	cipherslen;	/* 0: the default */
	uint32_t	reflen;		/* the key reference PEM */
	uint32_t	ncerts;		/* 1 + SPAWNER_CERT messages to follow */
	uint32_t	flags;		/* SPAWNER_STRICT_SNI */
};
_Static_assert(sizeof(struct spawner_listener) == 36, "wire size");

/* An unknown SNI gets the unrecognized_name alert (strict-sni yes). */
#define SPAWNER_STRICT_SNI	0x1

struct spawner_ocsp {		/* SPAWNER_OCSP, + len bytes */
	uint32_t	cert;		/* the certificate's index in the
					   listener: 0 .. ncerts - 1 */
	uint32_t	len;		/* 1 .. SPAWNER_OCSP_MAX */
};
_Static_assert(sizeof(struct spawner_ocsp) == 8, "wire size");

struct spawner_cert {		/* SPAWNER_CERT, + certlen, reflen bytes */
	uint32_t	certlen;	/* the certificate's file name */
	uint32_t	reflen;		/* its key reference PEM (its key index) */
};
_Static_assert(sizeof(struct spawner_cert) == 8, "wire size");

/* A listener's client certificates (client-ca, client-verify, client-crl). */
#define SPAWNER_CLIENT_MAX	(8 * 1024 * 1024)	/* calen + crllen */
struct spawner_client {		/* SPAWNER_CLIENT */
	uint32_t	verify;		/* CONF_VERIFY_REQUIRED or _OPTIONAL */
	uint32_t	calen;		/* 1 .. : the memfd's first bytes */
	uint32_t	crllen;		/* 0: no CRL; the bytes after */
};
_Static_assert(sizeof(struct spawner_client) == 12, "wire size");

struct spawner_backend {	/* SPAWNER_BACKEND, + hostlen or pathlen */
	uint32_t	type;		/* enum conf_backend_type */
	uint32_t	port;		/* TCP */
	uint32_t	hostlen;	/* TCP: as written */
	uint32_t	pathlen;	/* UNIX */
	uint32_t	naddrs;		/* SPAWNER_ADDR messages to follow */
	uint32_t	route;		/* 0, or its server-name block, 1 .. */
	uint32_t	alpn;		/* 0, or its qualifier, 1 .. */
};
_Static_assert(sizeof(struct spawner_backend) == 28, "wire size");

#define SPAWNER_ROUTES_MAX	1024	/* server-name blocks of a listener */
#define SPAWNER_ALPN_MAX	64	/* alpn protocols of a listener */

struct spawner_str {		/* SPAWNER_ALPN, SPAWNER_ROUTE_ALPN,
				   + len bytes */
	uint32_t	len;		/* 1 .. SPAWNER_STR_MAX */
};
_Static_assert(sizeof(struct spawner_str) == 4, "wire size");

struct spawner_route {		/* SPAWNER_ROUTE, + len bytes: the name */
	uint32_t	len;		/* 1 .. SPAWNER_STR_MAX */
	uint32_t	proxy_protocol;	/* 0: the listener's; 1, 2 or
					   CONF_PP_NONE */
};
_Static_assert(sizeof(struct spawner_route) == 8, "wire size");

struct spawner_addr {		/* SPAWNER_ADDR, + addrlen bytes */
	uint32_t	addrlen;	/* 1 .. SPAWNER_ADDR_MAX */
};
_Static_assert(sizeof(struct spawner_addr) == 4, "wire size");

/*
 * The listener's PROXY protocol: the version its children send to the
 * backend, and whom they accept a header from (proxy/pp_spawner.c).
 */
#define SPAWNER_PP_FROM_MAX	512	/* CONF_PP_FROM_MAX */
struct spawner_pp {		/* SPAWNER_PP, + nfrom spawner_cidr */
	uint32_t	version;	/* 0 none, 1, 2 */
	uint32_t	nfrom;		/* 0 .. SPAWNER_PP_FROM_MAX */
};
_Static_assert(sizeof(struct spawner_pp) == 8, "wire size");

struct spawner_cidr {
	uint32_t	family;		/* AF_INET or AF_INET6 */
	uint32_t	prefix;		/* 0..32, 0..128 */
	uint8_t		addr[16];	/* network order */
};
_Static_assert(sizeof(struct spawner_cidr) == 24, "wire size");

/*
 * Session ticket keys (proxy/tickets.h): newest first; the first encrypts
 * new tickets, every one decrypts.  A key is 16 bytes of name, 32 of
 * HMAC-SHA256 key, 32 of AES-256 key (nginx's 80-byte format).
 */
#define SPAWNER_TICKET_KEY_LEN	80
#define SPAWNER_TICKET_KEYS_MAX	2
#define SPAWNER_TICKET_SID_LEN	32
#define SPAWNER_TICKET_LIFE_MAX	86400
struct spawner_tickets {	/* SPAWNER_TICKETS, + nkeys * KEY_LEN bytes */
	uint32_t	nkeys;		/* 1 .. SPAWNER_TICKET_KEYS_MAX */
	uint32_t	lifetime;	/* s, 1 .. SPAWNER_TICKET_LIFE_MAX */
	uint8_t		sid_ctx[SPAWNER_TICKET_SID_LEN];	/* the session
				   context: a ticket resumes only where it is
				   the same (the listener's certificate) */
};
_Static_assert(sizeof(struct spawner_tickets) == 40, "wire size");

struct spawner_forked {		/* SPAWNER_FORKED */
	int32_t		pid;	/* -1 on failure */
	int32_t		error;	/* errno of the failure */
};
_Static_assert(sizeof(struct spawner_forked) == 8, "wire size");

/* The largest message the spawner reads. */
#define SPAWNER_MSG_MAX	(sizeof(struct msg_hdr) + \
			    sizeof(struct spawner_listener) + \
			    4 * SPAWNER_STR_MAX + SPAWNER_REF_MAX)
_Static_assert(SPAWNER_MSG_MAX >= sizeof(struct msg_hdr) +
    sizeof(struct spawner_ocsp) + SPAWNER_OCSP_MAX, "SPAWNER_OCSP fits");

/* ------------------------------------------------------------------ */
/* parent <-> connector: the one connector's channel (fd CONNECTOR_FD) */

#define CONNECTOR_FD		3
#define CONNECTOR_ADDR_MAX	128	/* sizeof(struct sockaddr_storage) */
#define CONNECTOR_TIMEOUT_MAX	86400000	/* ms: timeout connect's max */

enum connector_type {
	/* parent -> connector */
	CONNECTOR_START = 1,	/* struct connector_start: drop, then serve */
	CONNECTOR_CONNECT = 2,	/* struct connector_req */
	/* connector -> parent */
	CONNECTOR_DONE = 16,	/* struct connector_rep; fd iff error 0 */
	CONNECTOR_LOG = LOG_MSG_TYPE	/* struct log_msg + text */
};

struct connector_start {	/* the first message, and only once */
	uint32_t	uid;	/* the configuration's user; never 0 */
	uint32_t	gid;
	uint32_t	verbose;
};
_Static_assert(sizeof(struct connector_start) == 12, "wire size");

struct connector_req {		/* CONNECTOR_CONNECT */
	uint32_t	id;	/* echoed in the reply */
	uint32_t	timeout;	/* ms, 1 .. CONNECTOR_TIMEOUT_MAX */
	uint32_t	addrlen;	/* bytes of addr that are the address */
	uint8_t		addr[CONNECTOR_ADDR_MAX];	/* AF_INET, AF_INET6
						   or AF_UNIX sockaddr */
};
_Static_assert(sizeof(struct connector_req) == 140, "wire size");

struct connector_rep {		/* CONNECTOR_DONE; the connected socket
				   attached iff error 0 */
	uint32_t	id;
	uint32_t	error;	/* 0, or the errno of socket(2)/connect(2),
				   ETIMEDOUT, EINVAL for a bad request */
};
_Static_assert(sizeof(struct connector_rep) == 8, "wire size");

/* ------------------------------------------------------------------ */
/* parent <-> metrics: the one metrics process's channel (fd METRICS_FD) */

/*
 * The metrics process is exec'ed with its channel on METRICS_FD and the
 * listening socket the parent bound on METRICS_LISTEN_FD.  For each HTTP
 * request it has read and checked, it asks the parent for a page; the
 * parent writes the page into a new memfd and hands it over.  The parent
 * never reads anything from it but these fixed structs.
 */
#define METRICS_FD		3
#define METRICS_LISTEN_FD	4
#define METRICS_PAGE_MAX	(16 * 1024 * 1024)	/* bytes of one page */

enum metrics_type {
	/* parent -> metrics */
	METRICS_START = 1,	/* struct metrics_start + chroot path */
	METRICS_PAGE = 2,	/* struct metrics_page; fd: a memfd holding
				   len bytes at offset 0, iff len > 0 */
	/* metrics -> parent */
	METRICS_GET = 16,	/* struct metrics_get */
	METRICS_LOG = LOG_MSG_TYPE	/* struct log_msg + text */
};

enum metrics_what {
	METRICS_WHAT_METRICS = 1,	/* GET /metrics: Prometheus text */
	METRICS_WHAT_STATUS = 2		/* GET /status: for a person */
};

struct metrics_start {		/* METRICS_START, + pathlen bytes */
	uint32_t	uid;		/* the configuration's user; never 0 */
	uint32_t	gid;
	uint32_t	verbose;
	uint32_t	limit_memory;	/* MiB, RLIMIT_AS */
	uint32_t	pathlen;	/* chroot directory, 1 .. 4096 */
};
_Static_assert(sizeof(struct metrics_start) == 20, "wire size");

struct metrics_get {		/* METRICS_GET */
	uint32_t	id;		/* echoed in the reply */
	uint32_t	what;		/* enum metrics_what */
};
_Static_assert(sizeof(struct metrics_get) == 8, "wire size");

struct metrics_page {		/* METRICS_PAGE */
	uint32_t	id;
	uint32_t	len;		/* 0: no page (refused, too many asks) */
};
_Static_assert(sizeof(struct metrics_page) == 8, "wire size");

#endif
