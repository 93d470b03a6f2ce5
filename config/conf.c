/*
 * The configuration: defaults, load-time checks, normalised output.  See
 * conf.h; the grammar is in parse.c.
 *
 * The parent runs this as root, so every check that can fail later (a
 * user, a directory, a file, a host name) fails here instead, with the
 * FILE:LINE of the statement at fault.  Private keys are opened once and
 * checked through that descriptor, which stays open for whoever reads the
 * key (keyproc, or recluse -n); never read here.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netdb.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <tls.h>

#include "config/cidr.h"
#include "config/clientca.h"
#include "config/conf.h"
#include "config/conf_tickets.h"
#include "config/parse.h"

#define ADDR_STR_MAX	(INET6_ADDRSTRLEN + 8)	/* "[addr]:port" */

/* What a check needs: the config and where its message goes. */
struct check {
	struct conf	*conf;
	char		*err;
	size_t		 errlen;
};

static int __attribute__((__format__(__printf__, 3, 4)))
cerr(struct check *ck, const struct conf_where *where, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	conf_vseterr(ck->err, ck->errlen, where, fmt, ap);
	va_end(ap);
	return -1;
}

/* The words that end a message about a value the file did not set. */
static const char *
dflt(const struct conf_where *where)
{
	return where->line == 0 ? " (default)" : "";
}

static int
default_string(struct check *ck, char **field, struct conf_where *where,
    const char *value)
{
	if (*field != NULL)
		return 0;
	where->file = ck->conf->file;
	where->line = 0;
	if ((*field = strdup(value)) == NULL)
		return cerr(ck, where, "%s", strerror(errno));
	return 0;
}

static int
set_defaults(struct check *ck)
{
	struct conf *c = ck->conf;
	size_t i;

	if (c->max_connections == 0)
		c->max_connections = CONF_DEFAULT_MAXCONN;
	/* a listener's own limit: the global one unless it says less */
	for (i = 0; i < c->nlisteners; i++)
		if (c->listeners[i].max_connections == 0)
			c->listeners[i].max_connections = c->max_connections;
	if (c->timeout_handshake == 0)
		c->timeout_handshake = CONF_DEFAULT_HANDSHAKE;
	if (c->timeout_idle == 0)
		c->timeout_idle = CONF_DEFAULT_IDLE;
	if (c->timeout_connect == 0)
		c->timeout_connect = CONF_DEFAULT_CONNECT;
	if (c->timeout_drain == 0)
		c->timeout_drain = CONF_DEFAULT_DRAIN;
	if (c->timeout_drain_idle == 0)
		c->timeout_drain_idle = CONF_DEFAULT_DRAIN_IDLE;
	if (c->limit_memory == 0)
		c->limit_memory = CONF_DEFAULT_MEMORY;
	if (c->limit_cpu == 0)
		c->limit_cpu = CONF_DEFAULT_CPU;
	if (default_string(ck, &c->user, &c->user_where,
	    CONF_DEFAULT_USER) == -1 ||
	    default_string(ck, &c->keyproc_user, &c->keyproc_user_where,
	    CONF_DEFAULT_KEYUSER) == -1 ||
	    default_string(ck, &c->chroot, &c->chroot_where,
	    CONF_DEFAULT_CHROOT) == -1)
		return -1;
	return 0;
}

int
conf_defaults(struct conf *conf, char *errbuf, size_t errlen)
{
	struct check ck;

	ck.conf = conf;
	ck.err = errbuf;
	ck.errlen = errlen;
	return set_defaults(&ck);
}

/* Globals. */

static int
check_user(struct check *ck, const char *keyword, const char *name,
    const struct conf_where *where, uid_t *uid, gid_t *gid)
{
	struct passwd *pw;

	errno = 0;
	if ((pw = getpwnam(name)) == NULL)
		return cerr(ck, where, "%s \"%s\" does not exist%s", keyword,
		    name, dflt(where));
	if (pw->pw_uid == 0 || pw->pw_gid == 0)
		return cerr(ck, where, "%s \"%s\" has uid or gid 0: use an "
		    "unprivileged user%s", keyword, name, dflt(where));
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

static int
check_users(struct check *ck)
{
	struct conf *c = ck->conf;

	if (check_user(ck, "user", c->user, &c->user_where, &c->uid,
	    &c->gid) == -1 ||
	    check_user(ck, "keyproc-user", c->keyproc_user,
	    &c->keyproc_user_where, &c->keyproc_uid, &c->keyproc_gid) == -1)
		return -1;
	/* The children must not be able to signal or trace keyproc. */
	if (c->uid == c->keyproc_uid)
		return cerr(ck, &c->keyproc_user_where, "keyproc-user \"%s\" "
		    "has the uid of user \"%s\": the key process needs a user "
		    "of its own%s", c->keyproc_user, c->user,
		    dflt(&c->keyproc_user_where));
	return 0;
}

static int
check_chroot(struct check *ck)
{
	struct conf *c = ck->conf;
	const struct conf_where *w = &c->chroot_where;
	struct stat sb;

	if (stat(c->chroot, &sb) == -1)
		return cerr(ck, w, "chroot \"%s\": %s%s", c->chroot,
		    strerror(errno), dflt(w));
	if (!S_ISDIR(sb.st_mode))
		return cerr(ck, w, "chroot \"%s\" is not a directory%s",
		    c->chroot, dflt(w));
	if (sb.st_uid != 0)
		return cerr(ck, w, "chroot \"%s\" is not owned by root%s",
		    c->chroot, dflt(w));
	if (sb.st_mode & (S_IWGRP | S_IWOTH))
		return cerr(ck, w, "chroot \"%s\" is writable by group or "
		    "others%s", c->chroot, dflt(w));
	return 0;
}

/* Addresses. */

static void
addr_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
	char a[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &sin6->sin6_addr, a, sizeof(a));
		snprintf(buf, len, "[%s]:%u", a, ntohs(sin6->sin6_port));
	} else if (ss->ss_family == AF_INET) {
		inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a));
		snprintf(buf, len, "%s:%u", a, ntohs(sin->sin_port));
	} else
		snprintf(buf, len, "?");
}

/* The host and port as written in the file, brackets restored. */
static void
hostport_str(const char *host, unsigned short port, char *buf, size_t len)
{
	/* brackets for an IPv6 address, and for any host that begins with
	 * one, which only "[HOST]:PORT" can have given (fuzz_conf) */
	if (strchr(host, ':') != NULL || host[0] == '[')
		snprintf(buf, len, "[%s]:%u", host, port);
	else
		snprintf(buf, len, "%s:%u", host, port);
}

static in_port_t
addr_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return ((const struct sockaddr_in6 *)ss)->sin6_port;
	return ((const struct sockaddr_in *)ss)->sin_port;
}

static int
addr_any(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(
		    &((const struct sockaddr_in6 *)ss)->sin6_addr);
	return ((const struct sockaddr_in *)ss)->sin_addr.s_addr ==
	    htonl(INADDR_ANY);
}

/*
 * Whether binding both would fail: the same family and port, and the same
 * address or a wildcard on either side.  IPv6 sockets are IPV6_V6ONLY, so
 * 0.0.0.0 and :: do not overlap.
 */
static int
addr_overlap(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)a;
	const struct sockaddr_in6 *b6 = (const struct sockaddr_in6 *)b;

	if (a->ss_family != b->ss_family || addr_port(a) != addr_port(b))
		return 0;
	if (addr_any(a) || addr_any(b))
		return 1;
	if (a->ss_family == AF_INET6)
		return memcmp(&a6->sin6_addr, &b6->sin6_addr,
		    sizeof(a6->sin6_addr)) == 0 &&
		    a6->sin6_scope_id == b6->sin6_scope_id;
	return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
	    ((const struct sockaddr_in *)b)->sin_addr.s_addr;
}

/*
 * Resolve host:port into new arrays, without AI_ADDRCONFIG so that ::1
 * works on a host without global IPv6; "*" is every address.
 */
static int
resolve(struct check *ck, const struct conf_where *w, const char *host,
    unsigned short port, struct sockaddr_storage **addrs, socklen_t **lens,
    size_t *naddrs)
{
	struct addrinfo hints, *res = NULL, *ai;
	struct sockaddr_storage ss;
	char portstr[8];
	size_t n = 0, i;
	int e;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
	snprintf(portstr, sizeof(portstr), "%u", port);
	e = getaddrinfo(strcmp(host, "*") == 0 ? NULL : host, portstr, &hints,
	    &res);
	if (e != 0)
		return cerr(ck, w, "cannot resolve \"%s\": %s", host,
		    e == EAI_SYSTEM ? strerror(errno) : gai_strerror(e));
	for (ai = res; ai != NULL; ai = ai->ai_next)
		n++;
	*addrs = calloc(n, sizeof(**addrs));
	*lens = calloc(n, sizeof(**lens));
	if (*addrs == NULL || *lens == NULL) {
		freeaddrinfo(res);
		return cerr(ck, w, "%s", strerror(ENOMEM));
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
		    ai->ai_addrlen > sizeof(ss))
			continue;
		memset(&ss, 0, sizeof(ss));
		memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
		for (i = 0; i < *naddrs; i++)
			if ((*lens)[i] == ai->ai_addrlen &&
			    memcmp(&(*addrs)[i], &ss, sizeof(ss)) == 0)
				break;
		if (i < *naddrs)
			continue;
		(*addrs)[*naddrs] = ss;
		(*lens)[(*naddrs)++] = ai->ai_addrlen;
	}
	freeaddrinfo(res);
	if (*naddrs == 0)
		return cerr(ck, w, "\"%s\" has no IPv4 or IPv6 address", host);
	return 0;
}

static int
resolve_unix(struct check *ck, struct conf_backend *b)
{
	struct sockaddr_un *sun;
	size_t len = strlen(b->path);

	if (len >= sizeof(sun->sun_path))
		return cerr(ck, &b->where, "backend unix \"%s\": path longer "
		    "than %zu bytes", b->path, sizeof(sun->sun_path) - 1);
	b->addrs = calloc(1, sizeof(*b->addrs));
	b->addrlens = calloc(1, sizeof(*b->addrlens));
	if (b->addrs == NULL || b->addrlens == NULL)
		return cerr(ck, &b->where, "%s", strerror(ENOMEM));
	sun = (struct sockaddr_un *)b->addrs;
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, b->path, len + 1);
	b->addrlens[0] = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
	    len + 1);
	b->naddrs = 1;
	return 0;
}

/* Refuse cl if one of its addresses overlaps one of o, in listener ol. */
static int
check_overlap(struct check *ck, const struct conf_listen *cl,
    const struct conf_listener *ol, const struct conf_listen *o)
{
	char a[ADDR_STR_MAX], b[ADDR_STR_MAX];
	size_t i, j;

	for (i = 0; i < cl->naddrs; i++)
		for (j = 0; j < o->naddrs; j++) {
			if (!addr_overlap(&cl->addrs[i], &o->addrs[j]))
				continue;
			addr_str(&cl->addrs[i], a, sizeof(a));
			addr_str(&o->addrs[j], b, sizeof(b));
			if (strcmp(a, b) == 0)
				return cerr(ck, &cl->where, "address %s is "
				    "already used by listener \"%s\" at %s:%d",
				    a, ol->name, o->where.file, o->where.line);
			return cerr(ck, &cl->where, "address %s overlaps %s "
			    "of listener \"%s\" at %s:%d", a, b, ol->name,
			    o->where.file, o->where.line);
		}
	return 0;
}

/* Refuse a listen line that overlaps one read before it. */
static int
check_listen_dup(struct check *ck, const struct conf_listener *l,
    const struct conf_listen *cl)
{
	const struct conf_listener *ol;
	const struct conf_listen *o;

	for (ol = ck->conf->listeners; ol <= l; ol++)
		for (o = ol->listens; o < ol->listens + ol->nlistens &&
		    o != cl; o++)
			if (check_overlap(ck, cl, ol, o) == -1)
				return -1;
	return 0;
}

/* Files. */

/* Whether a issued b: b names a as its issuer and a's key signed it. */
static int
cert_issued(X509 *a, X509 *b)
{
	EVP_PKEY *pub;
	int yes;

	if (X509_cmp(a, b) == 0 || X509_check_issued(a, b) != X509_V_OK)
		return 0;
	yes = (pub = X509_get0_pubkey(a)) != NULL && X509_verify(b, pub) == 1;
	ERR_clear_error();
	return yes;
}

/*
 * Every PEM block of bio: certificates that parse, no private key, and
 * not a chain in the wrong order (a CA first, which issued the second).
 */
static int
read_certs(struct check *ck, const struct conf_where *w, const char *path,
    BIO *bio)
{
	char *name = NULL, *header = NULL;
	unsigned char *data = NULL;
	const unsigned char *p;
	unsigned long e;
	long len = 0;
	X509 *x, *first[2] = { NULL, NULL };
	int n = 0, rc = 0;

	ERR_clear_error();
	while (rc == 0 && PEM_read_bio(bio, &name, &header, &data, &len) == 1) {
		if (strstr(name, "PRIVATE KEY") != NULL)
			rc = cerr(ck, w, "certificate \"%s\" holds a private "
			    "key: keep the key in a file of its own", path);
		else if (strcmp(name, PEM_STRING_X509) == 0) {
			p = data;
			x = d2i_X509(NULL, &p, len);
			if (x == NULL || p != data + len)
				rc = cerr(ck, w, "certificate \"%s\": "
				    "certificate %d does not parse", path,
				    n + 1);
			if (n < 2 && rc == 0)
				first[n] = x;
			else
				X509_free(x);
			n++;
		}
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_clear_free(data, (size_t)len);
		name = header = NULL;
		data = NULL;
	}
	e = ERR_peek_last_error();
	ERR_clear_error();
	if (rc == 0 && e != 0 && (ERR_GET_LIB(e) != ERR_LIB_PEM ||
	    ERR_GET_REASON(e) != PEM_R_NO_START_LINE))
		rc = cerr(ck, w, "certificate \"%s\": bad PEM data", path);
	else if (rc == 0 && n == 0)
		rc = cerr(ck, w, "certificate \"%s\": no PEM certificate",
		    path);
	else if (rc == 0 && n >= 2 && cert_issued(first[0], first[1]))
		rc = cerr(ck, w, "certificate \"%s\": the first certificate "
		    "is the issuer of the second, not the leaf: put the leaf "
		    "certificate first", path);
	X509_free(first[0]);
	X509_free(first[1]);
	return rc;
}

/* After check_key(): the key's descriptor is open. */
static int
check_certificate(struct check *ck, const struct conf_cert *l)
{
	const struct conf_where *w = &l->certificate_where;
	struct stat sb, kb;
	BIO *bio = NULL;
	int fd, rc = -1;

	fd = open(l->certificate, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd == -1)
		return cerr(ck, w, "certificate \"%s\": %s", l->certificate,
		    strerror(errno));
	if (fstat(fd, &sb) == -1 || fstat(l->keyfd, &kb) == -1)
		cerr(ck, w, "certificate \"%s\": %s", l->certificate,
		    strerror(errno));
	else if (!S_ISREG(sb.st_mode))
		cerr(ck, w, "certificate \"%s\" is not a regular file",
		    l->certificate);
	else if (kb.st_dev == sb.st_dev && kb.st_ino == sb.st_ino)
		cerr(ck, w, "certificate \"%s\" is also the key: keep the key "
		    "in a file of its own", l->certificate);
	else if ((bio = BIO_new_fd(fd, BIO_CLOSE)) == NULL)
		cerr(ck, w, "certificate \"%s\": %s", l->certificate,
		    strerror(ENOMEM));
	else {
		fd = -1;
		rc = read_certs(ck, w, l->certificate, bio);
	}
	BIO_free(bio);
	if (fd != -1)
		close(fd);
	return rc;
}

/* What a file that is not a regular one is, for a message. */
static const char *
file_kind(mode_t mode)
{
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISCHR(mode))
		return "a character device";
	if (S_ISBLK(mode))
		return "a block device";
	if (S_ISSOCK(mode))
		return "a socket";
	return "something else";
}

/* path as one shell word, for a command in a message. */
static void
shell_word(const char *path, char *buf, size_t len)
{
	size_t i = 0;

	if (path[strspn(path, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstu"
	    "vwxyz0123456789/._+,:@%-")] == '\0' && *path != '\0') {
		snprintf(buf, len, "%s", path);
		return;
	}
	if (len < 6) {
		snprintf(buf, len, "%s", "");
		return;
	}
	buf[i++] = '\'';
	for (; *path != '\0' && i + 5 < len; path++) {
		if (*path == '\'') {
			memcpy(buf + i, "'\\''", 4);
			i += 4;
		} else
			buf[i++] = *path;
	}
	buf[i++] = '\'';
	buf[i] = '\0';
}

const char *
conf_key_mode_fault(mode_t mode)
{
	if (mode & S_IWOTH)
		return "world-writable";
	if (mode & S_IWGRP)
		return "group-writable";
	if (mode & S_IROTH)
		return "world-readable";
	return NULL;
}

/*
 * Who may own a key, and who may read it: root or keyproc-user writes
 * and reads it; its group may read it (640 root:ssl-cert is a common
 * set-up), unless that group is the connection processes' own.  An owner
 * and a mode at fault are told at once, with both fixes.
 */
static int
check_key_perms(struct check *ck, const struct conf_cert *l,
    const struct stat *sb)
{
	const struct conf *c = ck->conf;
	const struct conf_where *w = &l->key_where;
	const struct passwd *pw;
	const struct group *gr;
	const char *fault = conf_key_mode_fault(sb->st_mode);
	char cmd[PATH_MAX + 8], who[64];

	shell_word(l->key, cmd, sizeof(cmd));
	if (sb->st_uid != 0 && sb->st_uid != c->keyproc_uid) {
		if ((pw = getpwuid(sb->st_uid)) != NULL)
			snprintf(who, sizeof(who), "%s", pw->pw_name);
		else
			snprintf(who, sizeof(who), "uid %u",
			    (unsigned)sb->st_uid);
		if (fault != NULL)
			return cerr(ck, w, "key \"%s\" is owned by %s, not by "
			    "root or keyproc-user \"%s\", and is %s: run "
			    "chown root %s && chmod 600 %s", l->key, who,
			    c->keyproc_user, fault, cmd, cmd);
		return cerr(ck, w, "key \"%s\" is owned by %s, not by root "
		    "or keyproc-user \"%s\": run chown root %s", l->key, who,
		    c->keyproc_user, cmd);
	}
	if (fault != NULL)
		return cerr(ck, w, "key \"%s\" is %s: run chmod 600 %s",
		    l->key, fault, cmd);
	if ((sb->st_mode & S_IRGRP) && sb->st_gid == c->gid) {
		if ((gr = getgrgid(sb->st_gid)) != NULL)
			snprintf(who, sizeof(who), "\"%s\"", gr->gr_name);
		else
			snprintf(who, sizeof(who), "%u", (unsigned)sb->st_gid);
		return cerr(ck, w, "key \"%s\" is readable by group %s, the "
		    "group of user \"%s\": run chmod 600 %s", l->key, who,
		    c->user, cmd);
	}
	return 0;
}

/*
 * Open the key once, without blocking (a FIFO put in its place must not
 * hang the parent) and following symbolic links (certbot's live/ is all
 * links), and check what that descriptor is.  It stays open in l->keyfd:
 * the key is read from it, never from the path again.
 */
static int
check_key(struct check *ck, struct conf_cert *l)
{
	const struct conf_where *w = &l->key_where;
	struct stat sb;

	l->keyfd = open(l->key, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (l->keyfd == -1)
		return cerr(ck, w, "key \"%s\": %s", l->key, strerror(errno));
	if (fstat(l->keyfd, &sb) == -1)
		return cerr(ck, w, "key \"%s\": %s", l->key, strerror(errno));
	if (!S_ISREG(sb.st_mode))
		return cerr(ck, w, "key \"%s\" is %s, not a regular file",
		    l->key, file_kind(sb.st_mode));
	if (check_key_perms(ck, l, &sb) == -1)
		return -1;
	if (sb.st_size == 0)
		return cerr(ck, w, "key \"%s\" is empty", l->key);
	return 0;
}

/* TLS options. */

static int
check_protocols(struct check *ck, struct conf_listener *l)
{
	const struct conf_where *w = &l->protocols_where;
	const char *norm;
	uint32_t proto;
	char *s;

	if (l->protocols == NULL)
		return 0;
	if (tls_config_parse_protocols(&proto, l->protocols) == -1 ||
	    proto == 0)
		return cerr(ck, w, "protocols \"%s\": not a protocol list "
		    "such as \"tlsv1.2,tlsv1.3\"", l->protocols);
	if (proto & ~(uint32_t)(TLS_PROTOCOL_TLSv1_2 | TLS_PROTOCOL_TLSv1_3))
		return cerr(ck, w, "protocols \"%s\": only tlsv1.2 and "
		    "tlsv1.3 are supported", l->protocols);
	if (proto == TLS_PROTOCOL_TLSv1_2)
		norm = "tlsv1.2";
	else if (proto == TLS_PROTOCOL_TLSv1_3)
		norm = "tlsv1.3";
	else
		norm = "tlsv1.2,tlsv1.3";
	if ((s = strdup(norm)) == NULL)
		return cerr(ck, w, "%s", strerror(ENOMEM));
	free(l->protocols);
	l->protocols = s;
	return 0;
}

/*
 * Only named ECDHE suites: keyproc signs and never decrypts, so a suite
 * with RSA key exchange could not work, and one without encryption must
 * not.  TLS 1.3 suites are not configurable here.
 */
static int
check_ciphers(struct check *ck, const struct conf_listener *l)
{
	const struct conf_where *w = &l->ciphers_where;
	struct tls_config *cfg = NULL;
	char *list, *s, *name;
	int rc = 0;

	if (l->ciphers == NULL)
		return 0;
	if ((list = strdup(l->ciphers)) == NULL ||
	    (cfg = tls_config_new()) == NULL) {
		free(list);
		return cerr(ck, w, "%s", strerror(ENOMEM));
	}
	for (s = list; rc == 0 && (name = strsep(&s, ":")) != NULL; ) {
		if (strncmp(name, "ECDHE-", 6) != 0 ||
		    strstr(name, "NULL") != NULL)
			rc = cerr(ck, w, "ciphers: \"%s\" is not an ECDHE "
			    "suite with encryption", name);
		else if (tls_config_set_ciphers(cfg, name) == -1)
			rc = cerr(ck, w, "ciphers: unknown suite \"%s\"", name);
	}
	tls_config_free(cfg);
	free(list);
	return rc;
}

/* Listeners. */

/*
 * Route r of l (0: the listener's own backends, k: server-name block k)
 * has a backend without an alpn qualifier, for the connections that
 * agreed on no protocol, or on one no backend of r is qualified for; and
 * every qualifier names one of l's alpn protocols (alpnidx is set here).
 */
/*
 * A server-name block's own alpn lists protocols of the listener's alpn
 * (in its own order): the backends' alpn qualifiers, and what the parent
 * accepts from a child, are numbered in the listener's list.
 */
static int
check_route_alpn(struct check *ck, const struct conf_listener *l,
    const struct conf_route *rt)
{
	size_t i, j;

	for (i = 0; i < rt->nalpn; i++) {
		for (j = 0; j < l->nalpn; j++)
			if (strcmp(rt->alpn[i], l->alpn[j]) == 0)
				break;
		if (j == l->nalpn)
			return cerr(ck, &rt->alpn_where, "alpn \"%s\" of "
			    "server-name \"%s\": not a protocol of the "
			    "listener's alpn", rt->alpn[i], rt->name);
	}
	return 0;
}

static int
check_route(struct check *ck, struct conf_listener *l, size_t r)
{
	const struct conf_where *w = r == 0 ? &l->where :
	    &l->routes[r - 1].where;
	struct conf_backend *b;
	size_t i, j, n = 0, plain = 0;

	for (i = 0; i < l->nbackends; i++) {
		b = &l->backends[i];
		if (b->route != r)
			continue;
		n++;
		if (b->alpn == NULL) {
			plain++;
			continue;
		}
		for (j = 0; j < l->nalpn; j++)
			if (strcmp(b->alpn, l->alpn[j]) == 0)
				break;
		if (j == l->nalpn)
			return cerr(ck, &b->where, "backend alpn \"%s\": not "
			    "a protocol of the listener's alpn", b->alpn);
		b->alpnidx = j + 1;
	}
	if (r > 0 && check_route_alpn(ck, l, &l->routes[r - 1]) == -1)
		return -1;
	if (n == 0 && r == 0)
		return cerr(ck, w, "listener \"%s\" has no backend", l->name);
	if (n == 0)
		return cerr(ck, w, "server-name \"%s\" has no backend",
		    l->routes[r - 1].name);
	if (plain == 0)
		return cerr(ck, w, "%s \"%s\" has no backend without an alpn "
		    "qualifier (for the connections that agree on no "
		    "protocol)", r == 0 ? "listener" : "server-name",
		    r == 0 ? l->name : l->routes[r - 1].name);
	return 0;
}

static int
check_listener(struct check *ck, struct conf_listener *l)
{
	const struct conf_listener *o;
	struct conf_listen *cl;
	struct conf_backend *b;
	size_t i;

	for (o = ck->conf->listeners; o < l; o++)
		if (strcmp(o->name, l->name) == 0)
			return cerr(ck, &l->where, "duplicate listener \"%s\" "
			    "(first at %s:%d)", l->name, o->where.file,
			    o->where.line);
	if (l->nlistens == 0)
		return cerr(ck, &l->where, "listener \"%s\" has no listen "
		    "address", l->name);
	if (l->ncerts == 0)
		return cerr(ck, &l->where, "listener \"%s\" has no certificate",
		    l->name);
	for (i = 0; i < l->ncerts; i++)
		if (l->certs[i].key == NULL)
			return cerr(ck, &l->certs[i].certificate_where,
			    "certificate \"%s\" has no key: each certificate "
			    "is followed by its key", l->certs[i].certificate);
	for (i = 0; i <= l->nroutes; i++)
		if (check_route(ck, l, i) == -1)
			return -1;
	if (l->max_connections > ck->conf->max_connections)
		return cerr(ck, &l->max_connections_where, "max-connections "
		    "%ld of listener \"%s\" is above the global "
		    "max-connections %ld%s", l->max_connections, l->name,
		    ck->conf->max_connections,
		    dflt(&ck->conf->max_connections_where));
	for (i = 0; i < l->nlistens; i++) {
		cl = &l->listens[i];
		if (resolve(ck, &cl->where, cl->host, cl->port, &cl->addrs,
		    &cl->addrlens, &cl->naddrs) == -1 ||
		    check_listen_dup(ck, l, cl) == -1)
			return -1;
	}
	if (check_protocols(ck, l) == -1 || check_ciphers(ck, l) == -1)
		return -1;
	for (i = 0; i < l->ncerts; i++)
		if (check_key(ck, &l->certs[i]) == -1 ||
		    check_certificate(ck, &l->certs[i]) == -1)
			return -1;
	if (clientca_load(l, ck->err, ck->errlen) == -1 ||
	    conf_tickets_check(ck->conf, l, ck->err, ck->errlen) == -1)
		return -1;
	for (i = 0; i < l->nbackends; i++) {
		b = &l->backends[i];
		if (b->type == CONF_BACKEND_UNIX ? resolve_unix(ck, b) :
		    resolve(ck, &b->where, b->host, b->port, &b->addrs,
		    &b->addrlens, &b->naddrs))
			return -1;
	}
	return 0;
}

static int
check_listeners(struct check *ck)
{
	struct conf *c = ck->conf;
	struct conf_where top = { c->file, 0 };
	size_t i;

	if (c->nlisteners == 0)
		return cerr(ck, &top, "no listener");
	for (i = 0; i < c->nlisteners; i++)
		if (check_listener(ck, &c->listeners[i]) == -1)
			return -1;
	return 0;
}

/* The metrics endpoint, if any: resolved like a backend. */
static int
check_metrics(struct check *ck)
{
	struct conf_backend *b = ck->conf->metrics;

	if (b == NULL)
		return 0;
	return b->type == CONF_BACKEND_UNIX ? resolve_unix(ck, b) :
	    resolve(ck, &b->where, b->host, b->port, &b->addrs, &b->addrlens,
	    &b->naddrs);
}

struct conf *
conf_load(const char *path, char *errbuf, size_t errlen)
{
	struct check ck;
	struct conf *c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	ck.conf = c;
	ck.err = errbuf;
	ck.errlen = errlen;
	if (conf_parse(c, path, errbuf, errlen) == -1 ||
	    set_defaults(&ck) == -1 || check_users(&ck) == -1 ||
	    check_chroot(&ck) == -1 || check_listeners(&ck) == -1 ||
	    check_metrics(&ck) == -1) {
		conf_free(c);
		return NULL;
	}
	return c;
}

/* Output. */

static void
dump_string(FILE *fp, const char *s)
{
	putc('"', fp);
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			putc('\\', fp);
		putc(*s, fp);
	}
	putc('"', fp);
}

/* host:port as written, and what it resolved to if that says more. */
static void	dump_hostport_alpn(FILE *, const char *, unsigned short,
		    const struct sockaddr_storage *, size_t, const char *);

static void
dump_hostport(FILE *fp, const char *host, unsigned short port,
    const struct sockaddr_storage *addrs, size_t naddrs)
{
	dump_hostport_alpn(fp, host, port, addrs, naddrs, NULL);
}

/* dump_hostport(), with a backend's alpn qualifier (NULL: none). */
static void
dump_hostport_alpn(FILE *fp, const char *host, unsigned short port,
    const struct sockaddr_storage *addrs, size_t naddrs, const char *alpn)
{
	char w[NI_MAXHOST + 8], a[ADDR_STR_MAX];
	size_t i;

	hostport_str(host, port, w, sizeof(w));
	/* from a quoted string, and not a word without its quotes */
	if (strpbrk(w, " \t#\"{}") != NULL)
		dump_string(fp, w);
	else
		fputs(w, fp);
	if (alpn != NULL) {
		fputs(" alpn ", fp);
		dump_string(fp, alpn);
	}
	if (naddrs == 1) {
		addr_str(&addrs[0], a, sizeof(a));
		if (strcmp(a, w) == 0)
			naddrs = 0;
	}
	for (i = 0; i < naddrs; i++) {
		addr_str(&addrs[i], a, sizeof(a));
		fprintf(fp, "%s%s", i == 0 ? "\t# " : " ", a);
	}
	putc('\n', fp);
}

/* The backends of route r of l, each on a line that starts with indent. */
static void
dump_backends(FILE *fp, const struct conf_listener *l, size_t r,
    const char *indent)
{
	const struct conf_backend *b;
	size_t i;

	for (i = 0; i < l->nbackends; i++) {
		b = &l->backends[i];
		if (b->route != r)
			continue;
		fprintf(fp, "%sbackend ", indent);
		if (b->type == CONF_BACKEND_UNIX) {
			fputs("unix ", fp);
			dump_string(fp, b->path);
			if (b->alpn != NULL) {
				fputs(" alpn ", fp);
				dump_string(fp, b->alpn);
			}
			putc('\n', fp);
		} else
			dump_hostport_alpn(fp, b->host, b->port, b->addrs,
			    b->naddrs, b->alpn);
	}
}

static void
dump_proxy_protocol(FILE *fp, const struct conf_listener *l)
{
	char buf[CONF_CIDR_STRLEN];
	size_t i;

	if (l->proxy_protocol != 0)
		fprintf(fp, "\tproxy-protocol v%d\n", l->proxy_protocol);
	for (i = 0; i < l->npp_from; i++) {
		fputs("\tproxy-protocol-from ", fp);
		dump_string(fp, conf_cidr_format(&l->pp_from[i], buf,
		    sizeof(buf)));
		putc('\n', fp);
	}
}

/* An alpn line, if there are protocols. */
static void
dump_alpn(FILE *fp, char *const *alpn, size_t n, const char *indent)
{
	size_t i;

	if (n == 0)
		return;
	fprintf(fp, "%salpn", indent);
	for (i = 0; i < n; i++) {
		putc(' ', fp);
		dump_string(fp, alpn[i]);
	}
	putc('\n', fp);
}

static void
dump_listener(FILE *fp, const struct conf_listener *l)
{
	const struct conf_listen *cl;
	size_t i;

	fputs("\nlistener ", fp);
	dump_string(fp, l->name);
	fputs(" {\n", fp);
	for (i = 0; i < l->nlistens; i++) {
		cl = &l->listens[i];
		fputs("\tlisten ", fp);
		dump_hostport(fp, cl->host, cl->port, cl->addrs, cl->naddrs);
	}
	/* conf_load() refuses a pair without its key; the parser does not */
	for (i = 0; i < l->ncerts; i++) {
		fputs("\tcertificate ", fp);
		dump_string(fp, l->certs[i].certificate);
		putc('\n', fp);
		if (l->certs[i].key != NULL) {
			fputs("\tkey ", fp);
			dump_string(fp, l->certs[i].key);
			putc('\n', fp);
		}
		if (l->certs[i].ocsp_staple != NULL) {
			fputs("\tocsp-staple ", fp);
			dump_string(fp, l->certs[i].ocsp_staple);
			putc('\n', fp);
		}
	}
	fprintf(fp, "\tstrict-sni %s\n", l->strict_sni ? "yes" : "no");
	fprintf(fp, "\tmax-connections %ld\n", l->max_connections);
	fputs("\tprotocols ", fp);
	dump_string(fp, l->protocols ? l->protocols : CONF_DEFAULT_PROTOCOLS);
	fputs("\n\tciphers ", fp);
	dump_string(fp, l->ciphers ? l->ciphers : CONF_DEFAULT_CIPHERS);
	fprintf(fp, "\n\tsession-tickets %s\n", l->session_tickets ? "on" :
	    "off");
	if (l->ticket_key != NULL) {
		fputs("\tsession-ticket-key ", fp);
		dump_string(fp, l->ticket_key);
		putc('\n', fp);
	}
	clientca_dump(l, fp);
	dump_proxy_protocol(fp, l);
	dump_alpn(fp, l->alpn, l->nalpn, "\t");
	dump_backends(fp, l, 0, "\t");
	for (i = 0; i < l->nroutes; i++) {
		fputs("\tserver-name ", fp);
		dump_string(fp, l->routes[i].name);
		fputs(" {\n", fp);
		dump_backends(fp, l, i + 1, "\t\t");
		dump_alpn(fp, l->routes[i].alpn, l->routes[i].nalpn, "\t\t");
		if (l->routes[i].proxy_protocol == CONF_PP_NONE)
			fputs("\t\tproxy-protocol none\n", fp);
		else if (l->routes[i].proxy_protocol != 0)
			fprintf(fp, "\t\tproxy-protocol v%d\n",
			    l->routes[i].proxy_protocol);
		fputs("\t}\n", fp);
	}
	fputs("}\n", fp);
}

int
conf_dump(const struct conf *c, FILE *fp)
{
	size_t i;

	fputs("# recluse configuration, normalised (recluse -nn)\n", fp);
	fputs("user ", fp);
	dump_string(fp, c->user);
	fputs("\nkeyproc-user ", fp);
	dump_string(fp, c->keyproc_user);
	fputs("\nchroot ", fp);
	dump_string(fp, c->chroot);
	fprintf(fp, "\nmax-connections %ld\n", c->max_connections);
	if (c->keyproc_signers == 0)
		fputs("keyproc-signers auto\n", fp);
	else
		fprintf(fp, "keyproc-signers %d\n", c->keyproc_signers);
	fprintf(fp, "timeout handshake %d\n", c->timeout_handshake);
	fprintf(fp, "timeout idle %d\n", c->timeout_idle);
	fprintf(fp, "timeout connect %d\n", c->timeout_connect);
	fprintf(fp, "timeout drain %d\n", c->timeout_drain);
	fprintf(fp, "timeout drain-idle %d\n", c->timeout_drain_idle ==
	    CONF_OFF ? 0 : c->timeout_drain_idle);
	fprintf(fp, "limit memory %d\n", c->limit_memory);
	fprintf(fp, "limit cpu %d\n", c->limit_cpu);
	fprintf(fp, "log %s\n", c->log_syslog ? "syslog" : "stderr");
	if (c->metrics != NULL && c->metrics->type == CONF_BACKEND_UNIX) {
		fputs("metrics unix ", fp);
		dump_string(fp, c->metrics->path);
		putc('\n', fp);
	} else if (c->metrics != NULL) {
		fputs("metrics ", fp);
		dump_hostport(fp, c->metrics->host, c->metrics->port,
		    c->metrics->addrs, c->metrics->naddrs);
	}
	for (i = 0; i < c->nlisteners; i++)
		dump_listener(fp, &c->listeners[i]);
	if (fflush(fp) == EOF || ferror(fp))
		return -1;
	return 0;
}

static void
free_words(char **w, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(w[i]);
	free(w);
}

void
conf_free(struct conf *c)
{
	struct conf_listener *l;
	size_t i, j;

	if (c == NULL)
		return;
	for (i = 0; i < c->nlisteners; i++) {
		l = &c->listeners[i];
		for (j = 0; j < l->nlistens; j++) {
			free(l->listens[j].host);
			free(l->listens[j].addrs);
			free(l->listens[j].addrlens);
		}
		for (j = 0; j < l->nbackends; j++) {
			free(l->backends[j].host);
			free(l->backends[j].path);
			free(l->backends[j].addrs);
			free(l->backends[j].addrlens);
			free(l->backends[j].alpn);
		}
		for (j = 0; j < l->nalpn; j++)
			free(l->alpn[j]);
		free(l->alpn);
		for (j = 0; j < l->nroutes; j++) {
			free(l->routes[j].name);
			free_words(l->routes[j].alpn, l->routes[j].nalpn);
		}
		free(l->routes);
		free(l->name);
		free(l->listens);
		for (j = 0; j < l->ncerts; j++) {
			free(l->certs[j].certificate);
			free(l->certs[j].key);
			free(l->certs[j].ocsp_staple);
			if (l->certs[j].keyfd != -1)
				close(l->certs[j].keyfd);
		}
		free(l->certs);
		free(l->ticket_key);
		if (l->ticket_keyfd != -1)
			close(l->ticket_keyfd);
		free(l->protocols);
		free(l->ciphers);
		clientca_free(l);
		free(l->backends);
		free(l->pp_from);
	}
	free(c->listeners);
	if (c->metrics != NULL) {
		free(c->metrics->host);
		free(c->metrics->path);
		free(c->metrics->addrs);
		free(c->metrics->addrlens);
		free(c->metrics);
	}
	free(c->user);
	free(c->keyproc_user);
	free(c->chroot);
	for (i = 0; i < c->nfiles; i++)
		free(c->files[i]);
	free(c->files);
	free(c);
}
