/*
 * The configuration: what the parser fills, what conf.c checks and prints.
 * See recluse.conf(5) for the grammar.
 */
#ifndef CONF_H
#define CONF_H

#include <sys/types.h>
#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONF_DEFAULT_FILE	"/etc/recluse/recluse.conf"
#define CONF_DEFAULT_USER	"recluse"
#define CONF_DEFAULT_KEYUSER	"recluse-key"
#define CONF_DEFAULT_CHROOT	"/var/lib/recluse/empty"
#define CONF_DEFAULT_MAXCONN	4096
#define CONF_DEFAULT_HANDSHAKE	10
#define CONF_DEFAULT_IDLE	300
#define CONF_DEFAULT_CONNECT	5
#define CONF_DEFAULT_DRAIN	30
#define CONF_DEFAULT_DRAIN_IDLE	5
#define CONF_OFF		(-1)	/* a timeout set to 0: off */
/*
 * Per connection child.  A child's address space is about 9 MiB and does
 * not grow, through an RSA-4096 handshake or 256 MiB relayed each way;
 * relaying costs about 1.6 CPU seconds a GiB (docs/PERFORMANCE.md), so
 * an hour of CPU is some 2 TiB through one connection.
 */
#define CONF_DEFAULT_MEMORY	128	/* MiB of address space */
#define CONF_DEFAULT_CPU	3600	/* seconds of CPU time */
#define CONF_DEFAULT_PROTOCOLS	"tlsv1.2,tlsv1.3"
/* ECDHE only: keyproc signs and never decrypts; TLS 1.3 suites are fixed. */
#define CONF_DEFAULT_CIPHERS	"ECDHE-ECDSA-AES256-GCM-SHA384:" \
				"ECDHE-RSA-AES256-GCM-SHA384:" \
				"ECDHE-ECDSA-CHACHA20-POLY1305:" \
				"ECDHE-RSA-CHACHA20-POLY1305:" \
				"ECDHE-ECDSA-AES128-GCM-SHA256:" \
				"ECDHE-RSA-AES128-GCM-SHA256"

/* client-verify */
#define CONF_VERIFY_UNSET	0	/* required, once client-ca is set */
#define CONF_VERIFY_REQUIRED	1
#define CONF_VERIFY_OPTIONAL	2

#define CONF_ERR_MAX		512	/* size of an error message buffer */

/* Where a value came from, for FILE:LINE messages. */
struct conf_where {
	char		*file;		/* the file actually read (include) */
	int		 line;		/* 0: a default, not from a file */
};

/* One "listen HOST:PORT" line; a host name may resolve to several. */
struct conf_listen {
	char			*host;	/* as written, without [] */
	unsigned short		 port;
	struct sockaddr_storage	*addrs;	/* resolved at load time */
	socklen_t		*addrlens;
	size_t			 naddrs;
	struct conf_where	 where;
};

enum conf_backend_type {
	CONF_BACKEND_TCP,
	CONF_BACKEND_UNIX
};

/* One "backend HOST:PORT" or "backend unix PATH" line (or "metrics"). */
struct conf_backend {
	enum conf_backend_type	 type;
	char			*host;	/* TCP: as written, without [] */
	unsigned short		 port;	/* TCP */
	char			*path;	/* UNIX */
	struct sockaddr_storage	*addrs;	/* TCP: resolved; UNIX: one */
	socklen_t		*addrlens;
	size_t			 naddrs;
	size_t			 route;	/* 0: the listener's own; k: in
					   server-name block k, routes[k - 1] */
	char			*alpn;	/* "alpn" qualifier, or NULL */
	size_t			 alpnidx;	/* conf_load(): 1 + its index
					   in the listener's alpn; 0: none */
	struct conf_where	 where;
};

/* A "server-name NAME { backend ... }" block (docs/recluse.conf.5). */
#define CONF_PP_NONE		3	/* a server-name block's
					   "proxy-protocol none" */
struct conf_route {
	char			*name;	/* "api.example.org", "*.example.org" */
	int			 proxy_protocol;	/* 0: the listener's;
						   1, 2, or CONF_PP_NONE */
	char			**alpn;		/* its own alpn, in order,
						   each one of the
						   listener's; 0: the
						   listener's */
	size_t			 nalpn;
	struct conf_where	 where;
	struct conf_where	 proxy_protocol_where;
	struct conf_where	 alpn_where;
};

/*
 * One "proxy-protocol-from" address or network: the host bits of addr
 * beyond prefix are zero.
 */
struct conf_cidr {
	int			 family;	/* AF_INET or AF_INET6 */
	unsigned int		 prefix;	/* 0..32, 0..128 */
	unsigned char		 addr[16];	/* network order */
};

/* The most proxy-protocol-from entries of one listener. */
#define CONF_PP_FROM_MAX	512

/*
 * One "certificate" line and the "key" line after it.  A listener's first
 * pair is its default; the others are chosen by the client's SNI, matched
 * against each certificate's own names.
 */
#define CONF_CERTS_MAX		1024	/* pairs in one listener */

struct conf_cert {
	char			*certificate;	/* PEM chain, leaf first */
	char			*key;		/* PEM private key */
	int			 keyfd;		/* key, opened and checked by
						   conf_load(); -1: not open */
	char			*ocsp_staple;	/* DER OCSP response, or NULL */
	struct conf_where	 certificate_where, key_where;
	struct conf_where	 ocsp_staple_where;
};

struct conf_listener {
	char			*name;
	struct conf_listen	*listens;
	size_t			 nlistens;
	struct conf_cert	*certs;		/* certs[0]: the default */
	size_t			 ncerts;
	int			 strict_sni;	/* unknown name: alert */
	char			*protocols;	/* NULL: CONF_DEFAULT_PROTOCOLS */
	char			*ciphers;	/* NULL: CONF_DEFAULT_CIPHERS */
	struct conf_backend	*backends;	/* tried in order; those of
						   every route, in file order */
	size_t			 nbackends;
	char			**alpn;		/* offered, in order */
	size_t			 nalpn;		/* 0: no ALPN */
	struct conf_route	*routes;	/* server-name blocks */
	size_t			 nroutes;
	long			 max_connections;	/* its own; after
						   conf_load(), the global one
						   unless set */
	struct conf_where	 where;		/* the "listener" line */
	struct conf_where	 max_connections_where;
	struct conf_where	 strict_sni_where;
	struct conf_where	 protocols_where, ciphers_where;
	struct conf_where	 alpn_where;
	int			 proxy_protocol;	/* PROXY header sent to
						   the backend: 0 none, 1, 2 */
	struct conf_cidr	*pp_from;	/* who may send us one */
	size_t			 npp_from;
	struct conf_where	 proxy_protocol_where;
	/* client certificates (mtls): config/clientca.h */
	char			*client_ca;	/* file or directory; NULL: off */
	char			*client_crl;	/* file; NULL: none */
	int			 client_verify;	/* CONF_VERIFY_* */
	/* The CA certificates and the CRLs, PEM: read by conf_load(); in a
	 * spawner, as the parent sent them, until its context is built. */
	uint8_t			*client_ca_pem;
	size_t			 client_ca_len;
	uint8_t			*client_crl_pem;	/* NULL: no client-crl */
	size_t			 client_crl_len;
	struct conf_where	 client_ca_where, client_crl_where;
	struct conf_where	 client_verify_where;
	int			 session_tickets;	/* 1: on; 0: off
						   (the default) */
	char			*ticket_key;	/* session-ticket-key, or NULL */
	int			 ticket_keyfd;	/* opened and checked by
						   conf_load(); -1: none */
	struct conf_where	 session_tickets_where, ticket_key_where;
};

struct conf {
	char			*file;		/* top-level file */
	char			*user;		/* connection children */
	char			*keyproc_user;
	char			*chroot;
	uid_t			 uid, keyproc_uid;	/* resolved */
	gid_t			 gid, keyproc_gid;
	long			 max_connections;
	int			 keyproc_signers;	/* 0: auto */
	int			 timeout_handshake;	/* seconds */
	int			 timeout_idle;
	int			 timeout_connect;
	int			 timeout_drain;
	int			 timeout_drain_idle;	/* or CONF_OFF */
	int			 limit_memory;	/* MiB, per child */
	int			 limit_cpu;	/* seconds, per child */
	int			 log_syslog;	/* also syslog(3), daemon */
	struct conf_listener	*listeners;
	size_t			 nlisteners;
	struct conf_backend	*metrics;	/* its endpoint, or NULL: off */
	struct conf_where	 user_where, keyproc_user_where, chroot_where;
	struct conf_where	 log_where;
	struct conf_where	 max_connections_where;
	struct conf_where	 keyproc_signers_where;
	char			**files;	/* every file read, files[0] == file; */
	size_t			 nfiles;	/* each where.file points here */
};

/*
 * conf_load(path, errbuf, errlen):
 * Read, parse and check the configuration file path (and its includes):
 * grammar, values, host names, users, chroot directory, certificate files
 * (present, PEM, leaf first) and key files: each is opened once, into its
 * pair's keyfd (O_CLOEXEC; never read here), and must be a regular
 * file owned by root or keyproc-user that no one else can write or read
 * (see recluse.conf(5)).  Whoever reads the key reads that descriptor,
 * with pread(2).  Return a new struct conf, or NULL with "FILE:LINE:
 * message" in errbuf.
 */
struct conf	*conf_load(const char *path, char *errbuf, size_t errlen);

/*
 * conf_defaults(conf, errbuf, errlen):
 * Give every global that conf_parse() left unset its default, as
 * conf_load() does before its checks (which need the system: users, the
 * chroot, files, host names).  Return 0, or -1 with "FILE: message" in
 * errbuf.
 */
int		 conf_defaults(struct conf *conf, char *errbuf, size_t errlen);

/*
 * conf_dump(conf, fp):
 * Print conf, parsed and given its defaults, in normalised form to fp;
 * reading that output back gives an equal configuration, and so the same
 * output (tests/fuzz/fuzz_conf.c).  Return 0 or -1 on a write error.
 */
int		 conf_dump(const struct conf *conf, FILE *fp);

/*
 * conf_key_mode_fault(mode):
 * What is wrong with the mode of a key file (or any secret file) for
 * recluse.conf(5)'s key rules: "world-writable", "group-writable" or
 * "world-readable"; NULL if nothing.
 */
const char	*conf_key_mode_fault(mode_t mode);

/*
 * conf_free(conf):
 * Free conf and everything it owns, key descriptors included.
 * conf_free(NULL) does nothing.
 */
void		 conf_free(struct conf *conf);

#endif
