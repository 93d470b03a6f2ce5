/*
 * The configuration grammar: see parse.h and recluse.conf(5).
 *
 *	file      = { statement }
 *	statement = KEYWORD { ARG } ( NEWLINE | "{" { statement } "}" )
 *	ARG       = bare-word | "quoted string"
 *
 * "#" starts a comment anywhere outside a quoted string.  A quoted string
 * knows two escapes, \" and \\, and does not span lines.
 *
 * Every statement starts with a keyword of the one sorted table below,
 * which says where the keyword may appear (top level, listener block),
 * how many arguments it takes and whether it opens a block.  The grammar
 * grows by table entries, so files that are valid today keep their meaning:
 * "proxy-protocol" or "client-ca" become listener statements; the block
 * "server-name NAME { backend ... }" is a block keyword allowed in a
 * listener, with its own context bit, whose block accepts the listener
 * keywords it overrides (today: backend).
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config/cidr.h"
#include "config/parse.h"
#include "lib/wire.h"

#define PARSE_FILE_MAX	(1024 * 1024)	/* bytes in one configuration file */
#define PARSE_TOKEN_MAX	4096		/* bytes in one word or string */
#define PARSE_WORDS_MAX	8		/* words kept of one statement */
#define PARSE_DEPTH_MAX	16		/* nested includes */
#define PARSE_NAME_MAX	63		/* listener names (systemd fd names) */
#define PARSE_HOST_MAX	255		/* host names and addresses */

enum tok {
	TOK_WORD,
	TOK_EOL,
	TOK_LBRACE,
	TOK_RBRACE,
	TOK_EOF
};

/* Where a keyword may appear. */
enum ctx {
	CTX_TOP = 1,
	CTX_LISTENER = 2,
	CTX_TIMEOUT = 4,	/* the word after "timeout" */
	CTX_BACKEND = 8,	/* the word after "backend" */
	CTX_LIMIT = 16,		/* the word after "limit" */
	CTX_SERVERNAME = 32	/* a server-name block, in a listener */
};

/* One configuration file being read. */
struct lexer {
	const char	*file;		/* owned by conf->files */
	char		*buf;
	size_t		 len, pos;
	int		 line;
	dev_t		 dev;
	ino_t		 ino;
	struct lexer	*up;		/* the file that included this one */
};

/* One statement: its words and the token that ended it. */
struct stmt {
	char			*word[PARSE_WORDS_MAX];	/* word[0]: keyword */
	int			 nwords;
	int			 overflow;	/* more words than kept */
	enum tok		 end;
	struct conf_where	 where;
};

struct parser {
	struct conf		*conf;
	char			*err;
	size_t			 errlen;
	struct lexer		*lex;
	int			 depth;
	struct conf_listener	*listener;	/* the block being read */
	size_t			 route;		/* its server-name block being
						   read (1 + index), or 0 */
};

struct keyword {
	const char	*name;
	int		 ctx;		/* enum ctx bits */
	int		 minargs, maxargs;
	int		 block;		/* context of the block it opens */
	int		(*handler)(struct parser *, struct stmt *);
	size_t		 off;		/* CTX_TIMEOUT, CTX_LIMIT: an int in
					   struct conf */
};

static int	kw_alpn(struct parser *, struct stmt *);
static int	kw_backend(struct parser *, struct stmt *);
static int	kw_certificate(struct parser *, struct stmt *);
static int	kw_chroot(struct parser *, struct stmt *);
static int	kw_ciphers(struct parser *, struct stmt *);
static int	kw_client_ca(struct parser *, struct stmt *);
static int	kw_client_crl(struct parser *, struct stmt *);
static int	kw_client_verify(struct parser *, struct stmt *);
static int	kw_include(struct parser *, struct stmt *);
static int	kw_key(struct parser *, struct stmt *);
static int	kw_keyproc_user(struct parser *, struct stmt *);
static int	kw_keyproc_signers(struct parser *, struct stmt *);
static int	kw_limit(struct parser *, struct stmt *);
static int	kw_listen(struct parser *, struct stmt *);
static int	kw_listener(struct parser *, struct stmt *);
static int	kw_log(struct parser *, struct stmt *);
static int	kw_max_connections(struct parser *, struct stmt *);
static int	kw_metrics(struct parser *, struct stmt *);
static int	kw_ocsp_staple(struct parser *, struct stmt *);
static int	kw_protocols(struct parser *, struct stmt *);
static int	kw_server_name(struct parser *, struct stmt *);
static int	kw_proxy_protocol(struct parser *, struct stmt *);
static int	kw_proxy_protocol_from(struct parser *, struct stmt *);
static int	kw_session_ticket_key(struct parser *, struct stmt *);
static int	kw_session_tickets(struct parser *, struct stmt *);
static int	kw_strict_sni(struct parser *, struct stmt *);
static int	kw_timeout(struct parser *, struct stmt *);
static int	kw_user(struct parser *, struct stmt *);

static int	parse_block(struct parser *, int, const struct stmt *);

/* A timeout's range is in minargs..maxargs; 0, where allowed, is "off". */
#define TIMEOUT(f)	CTX_TIMEOUT, 1, 86400, 0, NULL, offsetof(struct conf, f)
#define TIMEOUT_OFF(f)	CTX_TIMEOUT, 0, 86400, 0, NULL, offsetof(struct conf, f)
/* A limit's range is in minargs..maxargs. */
#define LIMIT(f, min, max) \
			CTX_LIMIT, min, max, 0, NULL, offsetof(struct conf, f)

/* Every word of the grammar, sorted by strcmp() for bsearch(). */
static const struct keyword keywords[] = {
	{ "alpn",		CTX_LISTENER | CTX_SERVERNAME, 1,
				PARSE_WORDS_MAX - 1, 0,
				kw_alpn, 0 },
	{ "backend",		CTX_LISTENER | CTX_SERVERNAME, 1, 4, 0,
				kw_backend, 0 },
	{ "certificate",	CTX_LISTENER, 1, 1, 0, kw_certificate, 0 },
	{ "chroot",		CTX_TOP, 1, 1, 0, kw_chroot, 0 },
	{ "ciphers",		CTX_LISTENER, 1, 1, 0, kw_ciphers, 0 },
	{ "client-ca",		CTX_LISTENER, 1, 1, 0, kw_client_ca, 0 },
	{ "client-crl",		CTX_LISTENER, 1, 1, 0, kw_client_crl, 0 },
	{ "client-verify",	CTX_LISTENER, 1, 1, 0, kw_client_verify, 0 },
	{ "connect",		TIMEOUT(timeout_connect) },
	{ "cpu",		LIMIT(limit_cpu, 1, 31536000) },
	{ "drain",		TIMEOUT(timeout_drain) },
	{ "drain-idle",		TIMEOUT_OFF(timeout_drain_idle) },
	{ "handshake",		TIMEOUT(timeout_handshake) },
	{ "idle",		TIMEOUT(timeout_idle) },
	{ "include",		CTX_TOP, 1, 1, 0, kw_include, 0 },
	{ "key",		CTX_LISTENER, 1, 1, 0, kw_key, 0 },
	{ "keyproc-signers",	CTX_TOP, 1, 1, 0, kw_keyproc_signers, 0 },
	{ "keyproc-user",	CTX_TOP, 1, 1, 0, kw_keyproc_user, 0 },
	{ "limit",		CTX_TOP, 2, 2, 0, kw_limit, 0 },
	{ "listen",		CTX_LISTENER, 1, 1, 0, kw_listen, 0 },
	{ "listener",		CTX_TOP, 1, 1, CTX_LISTENER, kw_listener, 0 },
	{ "log",		CTX_TOP, 1, 1, 0, kw_log, 0 },
	{ "max-connections",	CTX_TOP | CTX_LISTENER, 1, 1, 0,
				kw_max_connections, 0 },
	{ "memory",		LIMIT(limit_memory, 16, 1048576) },
	{ "metrics",		CTX_TOP, 1, 2, 0, kw_metrics, 0 },
	{ "ocsp-staple",	CTX_LISTENER, 1, 1, 0, kw_ocsp_staple, 0 },
	{ "protocols",		CTX_LISTENER, 1, 1, 0, kw_protocols, 0 },
	{ "proxy-protocol",	CTX_LISTENER | CTX_SERVERNAME, 1, 1, 0,
				kw_proxy_protocol, 0 },
	{ "proxy-protocol-from", CTX_LISTENER, 1, PARSE_WORDS_MAX - 1, 0,
				kw_proxy_protocol_from, 0 },
	{ "server-name",	CTX_LISTENER, 1, 1, CTX_SERVERNAME,
				kw_server_name, 0 },
	{ "session-ticket-key",	CTX_LISTENER, 1, 1, 0, kw_session_ticket_key,
				0 },
	{ "session-tickets",	CTX_LISTENER, 1, 1, 0, kw_session_tickets, 0 },
	{ "strict-sni",		CTX_LISTENER, 1, 1, 0, kw_strict_sni, 0 },
	{ "timeout",		CTX_TOP, 2, 2, 0, kw_timeout, 0 },
	{ "unix",		CTX_BACKEND, 0, 0, 0, NULL, 0 },
	{ "user",		CTX_TOP, 1, 1, 0, kw_user, 0 },
};

int
conf_vseterr(char *errbuf, size_t errlen, const struct conf_where *where,
    const char *fmt, va_list ap)
{
	int n;

	if (errlen == 0)
		return -1;
	if (where->line > 0)
		n = snprintf(errbuf, errlen, "%s:%d: ", where->file,
		    where->line);
	else
		n = snprintf(errbuf, errlen, "%s: ", where->file);
	if (n >= 0 && (size_t)n < errlen)
		vsnprintf(errbuf + n, errlen - (size_t)n, fmt, ap);
	return -1;
}

int
conf_seterr(char *errbuf, size_t errlen, const struct conf_where *where,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	conf_vseterr(errbuf, errlen, where, fmt, ap);
	va_end(ap);
	return -1;
}

static int __attribute__((__format__(__printf__, 3, 4)))
perr(struct parser *p, int line, const char *fmt, ...)
{
	struct conf_where w = { (char *)p->lex->file, line };
	va_list ap;

	va_start(ap, fmt);
	conf_vseterr(p->err, p->errlen, &w, fmt, ap);
	va_end(ap);
	return -1;
}

static int
nomem(struct parser *p, int line)
{
	return perr(p, line, "%s", strerror(ENOMEM));
}

static int
kw_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct keyword *)elem)->name);
}

static const struct keyword *
kw_find(const char *name)
{
	return bsearch(name, keywords, sizeof(keywords) / sizeof(keywords[0]),
	    sizeof(keywords[0]), kw_cmp);
}

/*
 * A strtonum(3) for decimal digits only: the value of s if it lies in
 * [min, max], else 0 with *errstr "invalid", "too small" or "too large".
 */
static long long
parse_number(const char *s, long long min, long long max,
    const char **errstr)
{
	long long v;
	char *end;

	*errstr = "invalid";
	if (!isdigit((unsigned char)s[0]))
		return 0;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end != '\0')
		return 0;
	if ((errno == ERANGE && v == LLONG_MAX) || v > max) {
		*errstr = "too large";
		return 0;
	}
	if (v < min) {
		*errstr = "too small";
		return 0;
	}
	*errstr = NULL;
	return v;
}

/* The length of the directory part of path, its last "/" included. */
static size_t
dir_len(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash == NULL ? 0 : (size_t)(slash - path) + 1;
}

/* path relative to the directory of the file being read. */
static char *
path_near(const char *file, const char *path)
{
	size_t dlen = dir_len(file);
	char *s;

	if (path[0] == '/' || dlen == 0)
		return strdup(path);
	if (asprintf(&s, "%.*s%s", (int)dlen, file, path) == -1)
		return NULL;
	return s;
}

/* path made absolute against the directory of the file being read. */
static char *
path_abs(const char *file, const char *path)
{
	char cwd[PATH_MAX], *near, *s;

	if ((near = path_near(file, path)) == NULL || near[0] == '/')
		return near;
	if (getcwd(cwd, sizeof(cwd)) == NULL) {
		free(near);
		return NULL;
	}
	if (asprintf(&s, "%s%s%s", cwd, strcmp(cwd, "/") == 0 ? "" : "/",
	    near) == -1)
		s = NULL;
	free(near);
	return s;
}

/* Lexer. */

static int
lex_string(struct parser *p, char **word)
{
	struct lexer *lx = p->lex;
	size_t i, n = 0;
	char *s;
	int c;

	for (i = lx->pos + 1; i < lx->len; i++) {
		c = (unsigned char)lx->buf[i];
		if (c == '"' || c == '\n')
			break;
		if (c == '\\' && i + 1 < lx->len) {
			c = (unsigned char)lx->buf[++i];
			if (c != '"' && c != '\\')
				return perr(p, lx->line, "bad escape in "
				    "string: only \\\" and \\\\ are known");
		} else if (iscntrl(c))
			return perr(p, lx->line, "bad character 0x%02x in "
			    "string", c);
		if (++n > PARSE_TOKEN_MAX)
			return perr(p, lx->line, "string too long");
	}
	if (i == lx->len || lx->buf[i] != '"')
		return perr(p, lx->line, "unterminated string");
	if ((s = malloc(n + 1)) == NULL)
		return nomem(p, lx->line);
	for (n = 0, i = lx->pos + 1; lx->buf[i] != '"'; i++) {
		if (lx->buf[i] == '\\')
			i++;
		s[n++] = lx->buf[i];
	}
	s[n] = '\0';
	lx->pos = i + 1;
	*word = s;
	return TOK_WORD;
}

static int
lex_word(struct parser *p, char **word)
{
	struct lexer *lx = p->lex;
	size_t i;
	int c;

	for (i = lx->pos; i < lx->len; i++) {
		c = (unsigned char)lx->buf[i];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
		    c == '#' || c == '"' || c == '{' || c == '}')
			break;
		if (iscntrl(c))
			return perr(p, lx->line, "bad character 0x%02x", c);
	}
	if (i - lx->pos > PARSE_TOKEN_MAX)
		return perr(p, lx->line, "word too long");
	if ((*word = strndup(lx->buf + lx->pos, i - lx->pos)) == NULL)
		return nomem(p, lx->line);
	lx->pos = i;
	return TOK_WORD;
}

/* The next token; a word is returned in *word.  -1 on error. */
static int
lex_next(struct parser *p, char **word, int *line)
{
	struct lexer *lx = p->lex;
	char c;

	for (;;) {
		while (lx->pos < lx->len && (lx->buf[lx->pos] == ' ' ||
		    lx->buf[lx->pos] == '\t' || lx->buf[lx->pos] == '\r'))
			lx->pos++;
		if (lx->pos < lx->len && lx->buf[lx->pos] == '#') {
			while (lx->pos < lx->len && lx->buf[lx->pos] != '\n')
				lx->pos++;
			continue;
		}
		break;
	}
	*line = lx->line;
	if (lx->pos == lx->len)
		return TOK_EOF;
	switch ((c = lx->buf[lx->pos])) {
	case '\n':
		lx->pos++;
		lx->line++;
		return TOK_EOL;
	case '{':
		lx->pos++;
		return TOK_LBRACE;
	case '}':
		lx->pos++;
		return TOK_RBRACE;
	case '"':
		return lex_string(p, word);
	default:
		return lex_word(p, word);
	}
}

/* Statements. */

static void
stmt_clear(struct stmt *st)
{
	int i;

	for (i = 0; i < st->nwords; i++)
		free(st->word[i]);
	st->nwords = 0;
}

/* Take word i out of the statement, so stmt_clear() leaves it alone. */
static char *
take(struct stmt *st, int i)
{
	char *s = st->word[i];

	st->word[i] = NULL;
	return s;
}

static int
read_stmt(struct parser *p, struct stmt *st)
{
	char *word = NULL;
	int line, tok;

	memset(st, 0, sizeof(*st));
	st->where.file = (char *)p->lex->file;
	for (;;) {
		if ((tok = lex_next(p, &word, &line)) == -1)
			return -1;
		if (st->nwords == 0)
			st->where.line = line;
		if (tok != TOK_WORD) {
			st->end = tok;
			return 0;
		}
		if (st->nwords < PARSE_WORDS_MAX)
			st->word[st->nwords++] = word;
		else {
			st->overflow = 1;
			free(word);
		}
	}
}

static int __attribute__((__format__(__printf__, 3, 4)))
serr(struct parser *p, const struct stmt *st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	conf_vseterr(p->err, p->errlen, &st->where, fmt, ap);
	va_end(ap);
	return -1;
}

static const char *
ctx_name(int ctx)
{
	if (ctx == CTX_SERVERNAME)
		return "in a server-name block";
	return ctx == CTX_TOP ? "at top level" : "in a listener block";
}

static int
run_stmt(struct parser *p, int ctx, struct stmt *st)
{
	const struct keyword *kw;
	int i, nargs = st->nwords - 1;

	kw = kw_find(st->word[0]);
	if (kw == NULL || kw->handler == NULL)
		return serr(p, st, "unknown keyword \"%s\"", st->word[0]);
	if ((kw->ctx & ctx) == 0)
		return serr(p, st, "\"%s\" is not allowed %s", kw->name,
		    ctx_name(ctx));
	if (nargs < kw->minargs)
		return serr(p, st, "missing argument to \"%s\"", kw->name);
	if (nargs > kw->maxargs || st->overflow)
		return serr(p, st, "too many arguments to \"%s\"", kw->name);
	for (i = 1; i < st->nwords; i++)
		if (st->word[i][0] == '\0')
			return serr(p, st, "empty value for \"%s\"", kw->name);
	if (kw->block && st->end != TOK_LBRACE)
		return serr(p, st, "expected \"{\" after %s \"%s\"", kw->name,
		    st->word[1]);
	if (!kw->block && st->end == TOK_LBRACE)
		return serr(p, st, "unexpected \"{\" after \"%s\"", kw->name);
	if (kw->handler(p, st) == -1)
		return -1;
	if (kw->block) {
		if (parse_block(p, kw->block, st) == -1)
			return -1;
		if (kw->block == CTX_SERVERNAME)
			p->route = 0;	/* the block is over */
		else
			p->listener = NULL;
		st->end = TOK_EOL;
	}
	return 0;
}

/* Statements until the end of the block opened by st (NULL: the file). */
static int
parse_block(struct parser *p, int ctx, const struct stmt *open)
{
	struct stmt st;
	int rc;

	for (;;) {
		if (read_stmt(p, &st) == -1) {
			stmt_clear(&st);
			return -1;
		}
		rc = st.nwords > 0 ? run_stmt(p, ctx, &st) : 0;
		stmt_clear(&st);
		if (rc == -1)
			return -1;
		switch (st.end) {
		case TOK_LBRACE:
			return serr(p, &st, "unexpected \"{\"");
		case TOK_RBRACE:
			if (open == NULL)
				return serr(p, &st, "unbalanced braces: \"}\" "
				    "without \"{\"");
			return 0;
		case TOK_EOF:
			if (open != NULL)
				return conf_seterr(p->err, p->errlen,
				    &open->where, "unbalanced braces: \"{\" of "
				    "%s is never closed", open->word[0]);
			return 0;
		default:
			break;
		}
	}
}

/* Files. */

static int
add_file(struct parser *p, char *path)
{
	struct conf *c = p->conf;
	char **files;

	files = reallocarray(c->files, c->nfiles + 1, sizeof(*files));
	if (files == NULL) {
		free(path);
		return -1;
	}
	c->files = files;
	c->files[c->nfiles++] = path;
	c->file = c->files[0];
	return 0;
}

/*
 * Read the file open on fd into lx: NULL, or why not.  The buffer is the
 * file's size and one byte to see its end, grown if it grows meanwhile.
 */
static const char *
read_fd(int fd, struct lexer *lx)
{
	struct stat sb;
	size_t size;
	ssize_t n;
	char *buf;

	if (fstat(fd, &sb) == -1)
		return strerror(errno);
	if (!S_ISREG(sb.st_mode))
		return "not a regular file";
	lx->dev = sb.st_dev;
	lx->ino = sb.st_ino;
	size = sb.st_size < PARSE_FILE_MAX ? (size_t)sb.st_size + 1 :
	    PARSE_FILE_MAX + 1;
	if ((lx->buf = malloc(size)) == NULL)
		return strerror(errno);
	for (;;) {
		if (lx->len == size) {
			if (size == PARSE_FILE_MAX + 1)
				return "file too large";
			size = size > PARSE_FILE_MAX / 2 ? PARSE_FILE_MAX + 1 :
			    size * 2;
			if ((buf = realloc(lx->buf, size)) == NULL)
				return strerror(errno);
			lx->buf = buf;
		}
		n = read(fd, lx->buf + lx->len, size - lx->len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return strerror(errno);
		if (n == 0)
			return NULL;
		lx->len += (size_t)n;
	}
}

/*
 * Read the file path (owned from here on) into the parser: as the top file
 * when from is NULL, else as included by the statement from.
 */
static int
parse_file(struct parser *p, char *path, const struct stmt *from)
{
	struct lexer lx, *up;
	struct conf_where w;
	const char *why;
	int fd, rc = -1;

	memset(&lx, 0, sizeof(lx));
	if (add_file(p, path) == -1) {
		if (from == NULL)
			snprintf(p->err, p->errlen, "%s", strerror(ENOMEM));
		return from == NULL ? -1 : serr(p, from, "%s",
		    strerror(ENOMEM));
	}
	w.file = path;
	w.line = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	why = fd == -1 ? strerror(errno) : read_fd(fd, &lx);
	if (why != NULL) {
		if (from == NULL)
			conf_seterr(p->err, p->errlen, &w, "%s", why);
		else
			serr(p, from, "include \"%s\": %s", path, why);
		goto out;
	}
	for (up = p->lex; up != NULL; up = up->up)
		if (up->dev == lx.dev && up->ino == lx.ino) {
			serr(p, from, "include loop: \"%s\" is already being "
			    "read", path);
			goto out;
		}
	if (p->depth >= PARSE_DEPTH_MAX) {
		serr(p, from, "includes nested too deeply");
		goto out;
	}
	lx.file = path;
	lx.line = 1;
	lx.up = p->lex;
	p->lex = &lx;
	p->depth++;
	rc = parse_block(p, CTX_TOP, NULL);
	p->depth--;
	p->lex = lx.up;
out:
	if (fd != -1)
		close(fd);
	free(lx.buf);
	return rc;
}

int
conf_parse(struct conf *conf, const char *path, char *errbuf, size_t errlen)
{
	struct parser p;
	char *top;

	memset(&p, 0, sizeof(p));
	p.conf = conf;
	p.err = errbuf;
	p.errlen = errlen;
	if ((top = strdup(path)) == NULL) {
		snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return parse_file(&p, top, NULL);
}

/* Handlers: one per keyword, called with the arity already checked. */

static int
set_string(struct parser *p, struct stmt *st, char **field,
    struct conf_where *where)
{
	if (*field != NULL)
		return serr(p, st, "duplicate \"%s\"", st->word[0]);
	*field = take(st, 1);
	if (where != NULL)
		*where = st->where;
	return 0;
}

static int
set_path(struct parser *p, struct stmt *st, char **field,
    struct conf_where *where)
{
	char *abs;

	if ((abs = path_abs(p->lex->file, st->word[1])) == NULL)
		return serr(p, st, "%s \"%s\": %s", st->word[0], st->word[1],
		    strerror(errno));
	free(st->word[1]);
	st->word[1] = abs;
	return set_string(p, st, field, where);
}

static int
kw_user(struct parser *p, struct stmt *st)
{
	return set_string(p, st, &p->conf->user, &p->conf->user_where);
}

static int
kw_keyproc_user(struct parser *p, struct stmt *st)
{
	return set_string(p, st, &p->conf->keyproc_user,
	    &p->conf->keyproc_user_where);
}

/* "auto" (the default: one per CPU) or 1 .. KP_SIGNERS_MAX. */
static int
kw_keyproc_signers(struct parser *p, struct stmt *st)
{
	const char *errstr;
	long long n;

	if (p->conf->keyproc_signers_where.line != 0)
		return serr(p, st, "duplicate \"%s\"", st->word[0]);
	p->conf->keyproc_signers_where = st->where;
	if (strcmp(st->word[1], "auto") == 0)
		return 0;
	n = parse_number(st->word[1], 1, KP_SIGNERS_MAX, &errstr);
	if (errstr != NULL)
		return serr(p, st, "keyproc-signers \"%s\" is %s (auto, or 1 "
		    "to %d)", st->word[1], errstr, KP_SIGNERS_MAX);
	p->conf->keyproc_signers = (int)n;
	return 0;
}

static int
kw_chroot(struct parser *p, struct stmt *st)
{
	return set_path(p, st, &p->conf->chroot, &p->conf->chroot_where);
}

/* At top level for the whole service; in a listener block, its own. */
static int
kw_log(struct parser *p, struct stmt *st)
{
	if (p->conf->log_where.line != 0)
		return serr(p, st, "duplicate \"%s\"", st->word[0]);
	if (strcmp(st->word[1], "syslog") == 0)
		p->conf->log_syslog = 1;
	else if (strcmp(st->word[1], "stderr") != 0)
		return serr(p, st, "log \"%s\": stderr or syslog", st->word[1]);
	p->conf->log_where = st->where;
	return 0;
}

static int
kw_max_connections(struct parser *p, struct stmt *st)
{
	long *field = p->listener != NULL ? &p->listener->max_connections :
	    &p->conf->max_connections;
	const char *errstr;
	long long n;

	if (*field != 0)
		return serr(p, st, "duplicate \"%s\"", st->word[0]);
	n = parse_number(st->word[1], 1, 1000000, &errstr);
	if (errstr != NULL)
		return serr(p, st, "max-connections \"%s\" is %s (1 to "
		    "1000000)", st->word[1], errstr);
	*field = (long)n;
	if (p->listener != NULL)
		p->listener->max_connections_where = st->where;
	else
		p->conf->max_connections_where = st->where;
	return 0;
}

static int
kw_timeout(struct parser *p, struct stmt *st)
{
	const struct keyword *kw;
	const char *errstr;
	long long n;
	int *field;

	kw = kw_find(st->word[1]);
	if (kw == NULL || kw->ctx != CTX_TIMEOUT)
		return serr(p, st, "unknown timeout \"%s\": use handshake, "
		    "idle, connect, drain or drain-idle", st->word[1]);
	field = (int *)(void *)((char *)p->conf + kw->off);
	if (*field != 0)
		return serr(p, st, "duplicate \"timeout %s\"", kw->name);
	n = parse_number(st->word[2], kw->minargs, kw->maxargs, &errstr);
	if (errstr != NULL)
		return serr(p, st, "timeout %s \"%s\" is %s (%d to %d "
		    "seconds%s)", kw->name, st->word[2], errstr, kw->minargs,
		    kw->maxargs, kw->minargs == 0 ? ", 0 for off" : "");
	/* 0 in the field means "not set": keep "off" apart from it. */
	*field = n == 0 ? CONF_OFF : (int)n;
	return 0;
}

static int
kw_limit(struct parser *p, struct stmt *st)
{
	const struct keyword *kw;
	const char *errstr;
	long long n;
	int *field;

	kw = kw_find(st->word[1]);
	if (kw == NULL || kw->ctx != CTX_LIMIT)
		return serr(p, st, "unknown limit \"%s\": use memory or cpu",
		    st->word[1]);
	field = (int *)(void *)((char *)p->conf + kw->off);
	if (*field != 0)
		return serr(p, st, "duplicate \"limit %s\"", kw->name);
	n = parse_number(st->word[2], kw->minargs, kw->maxargs, &errstr);
	if (errstr != NULL)
		return serr(p, st, "limit %s \"%s\" is %s (%d to %d %s)",
		    kw->name, st->word[2], errstr, kw->minargs, kw->maxargs,
		    kw->off == offsetof(struct conf, limit_memory) ? "MiB" :
		    "seconds");
	*field = (int)n;
	return 0;
}

static int
kw_include(struct parser *p, struct stmt *st)
{
	char *path;

	if ((path = path_near(p->lex->file, st->word[1])) == NULL)
		return serr(p, st, "%s", strerror(errno));
	return parse_file(p, path, st);
}

static int
valid_name(const char *s)
{
	size_t n;

	for (n = 0; s[n] != '\0'; n++)
		if (!isalnum((unsigned char)s[n]) &&
		    strchr("-_.", s[n]) == NULL)
			return 0;
	return n <= PARSE_NAME_MAX;
}

static int
kw_listener(struct parser *p, struct stmt *st)
{
	struct conf *c = p->conf;
	struct conf_listener *l;

	if (!valid_name(st->word[1]))
		return serr(p, st, "bad listener name \"%s\": up to %d "
		    "letters, digits, \"-\", \"_\" or \".\"", st->word[1],
		    PARSE_NAME_MAX);
	l = reallocarray(c->listeners, c->nlisteners + 1, sizeof(*l));
	if (l == NULL)
		return nomem(p, st->where.line);
	c->listeners = l;
	l = &c->listeners[c->nlisteners++];
	memset(l, 0, sizeof(*l));
	l->ticket_keyfd = -1;
	l->name = take(st, 1);
	l->where = st->where;
	p->listener = l;
	return 0;
}

/*
 * Split s, "HOST:PORT", "[IPV6]:PORT" or "*:PORT", into a new *host
 * (without brackets) and *port.
 */
static int
parse_hostport(struct parser *p, const struct stmt *st, const char *s,
    int star, char **host, unsigned short *port)
{
	const char *h, *colon, *errstr;
	size_t hlen;
	long long n;

	if (s[0] == '[') {
		h = s + 1;
		if ((colon = strchr(h, ']')) == NULL || colon[1] != ':')
			return serr(p, st, "bad address \"%s\": expected "
			    "[ADDRESS]:PORT", s);
		hlen = (size_t)(colon - h);
		colon++;
	} else {
		h = s;
		if ((colon = strrchr(s, ':')) == NULL)
			return serr(p, st, "bad address \"%s\": expected "
			    "ADDRESS:PORT", s);
		hlen = (size_t)(colon - h);
		if (memchr(h, ':', hlen) != NULL)
			return serr(p, st, "bad address \"%s\": write an IPv6 "
			    "address in brackets, [ADDRESS]:PORT", s);
	}
	if (hlen == 0)
		return serr(p, st, "bad address \"%s\": no host", s);
	if (hlen > PARSE_HOST_MAX)
		return serr(p, st, "bad address \"%s\": host longer than %d "
		    "bytes", s, PARSE_HOST_MAX);
	if (!star && hlen == 1 && h[0] == '*')
		return serr(p, st, "bad address \"%s\": \"*\" is only for "
		    "listen", s);
	n = parse_number(colon + 1, 1, 65535, &errstr);
	if (errstr != NULL)
		return serr(p, st, "bad address \"%s\": port \"%s\" is %s "
		    "(1 to 65535)", s, colon + 1, errstr);
	if ((*host = strndup(h, hlen)) == NULL)
		return nomem(p, st->where.line);
	*port = (unsigned short)n;
	return 0;
}

static int
kw_listen(struct parser *p, struct stmt *st)
{
	struct conf_listener *l = p->listener;
	struct conf_listen *cl;

	cl = reallocarray(l->listens, l->nlistens + 1, sizeof(*cl));
	if (cl == NULL)
		return nomem(p, st->where.line);
	l->listens = cl;
	cl = &l->listens[l->nlistens];
	memset(cl, 0, sizeof(*cl));
	if (parse_hostport(p, st, st->word[1], 1, &cl->host, &cl->port) == -1)
		return -1;
	cl->where = st->where;
	l->nlistens++;
	return 0;
}

/* Each "certificate" starts a pair; the "key" after it completes it. */
static int
kw_certificate(struct parser *p, struct stmt *st)
{
	struct conf_listener *l = p->listener;
	struct conf_cert *c;

	if (l->ncerts > 0 && l->certs[l->ncerts - 1].key == NULL)
		return serr(p, st, "certificate \"%s\" has no key: each "
		    "certificate is followed by its key",
		    l->certs[l->ncerts - 1].certificate);
	if (l->ncerts >= CONF_CERTS_MAX)
		return serr(p, st, "more than %d certificates in listener "
		    "\"%s\"", CONF_CERTS_MAX, l->name);
	c = reallocarray(l->certs, l->ncerts + 1, sizeof(*c));
	if (c == NULL)
		return nomem(p, st->where.line);
	l->certs = c;
	c = &l->certs[l->ncerts++];
	memset(c, 0, sizeof(*c));
	c->keyfd = -1;
	return set_path(p, st, &c->certificate, &c->certificate_where);
}

static int
kw_key(struct parser *p, struct stmt *st)
{
	struct conf_listener *l = p->listener;
	struct conf_cert *c;

	if (l->ncerts == 0)
		return serr(p, st, "key \"%s\" before any certificate: "
		    "write the certificate line first", st->word[1]);
	c = &l->certs[l->ncerts - 1];
	return set_path(p, st, &c->key, &c->key_where);
}

static int
kw_strict_sni(struct parser *p, struct stmt *st)
{
	struct conf_listener *l = p->listener;

	if (l->strict_sni_where.line != 0)
		return serr(p, st, "duplicate \"%s\"", st->word[0]);
	if (strcmp(st->word[1], "yes") == 0)
		l->strict_sni = 1;
	else if (strcmp(st->word[1], "no") != 0)
		return serr(p, st, "strict-sni \"%s\": yes or no",
		    st->word[1]);
	l->strict_sni_where = st->where;
	return 0;
}

/* The staple of the certificate line before it (recluse.conf(5)). */
static int
kw_ocsp_staple(struct parser *p, struct stmt *st)
{
	struct conf_listener *l = p->listener;
	struct conf_cert *c;

	if (l->ncerts == 0)
		return serr(p, st, "\"%s\" before \"certificate\": a staple "
		    "belongs to the certificate line just before it",
		    st->word[0]);
	c = &l->certs[l->ncerts - 1];
	return set_path(p, st, &c->ocsp_staple, &c->ocsp_staple_where);
}

static int
kw_protocols(struct parser *p, struct stmt *st)
{
	return set_string(p, st, &p->listener->protocols,
	    &p->listener->protocols_where);
}

static int
kw_session_tickets(struct parser *p, struct stmt *st)
{
	struct conf_listener *l = p->listener;

	if (l->session_tickets_where.line != 0)
		return serr(p, st, "duplicate \"%s\"", st->word[0]);
	if (strcmp(st->word[1], "on") == 0)
		l->session_tickets = 1;
	else if (strcmp(st->word[1], "off") == 0)
		l->session_tickets = 0;
	else
		return serr(p, st, "session-tickets \"%s\": on or off",
		    st->word[1]);
	l->session_tickets_where = st->where;
	return 0;
}

static int
kw_session_ticket_key(struct parser *p, struct stmt *st)
{
	return set_path(p, st, &p->listener->ticket_key,
	    &p->listener->ticket_key_where);
}

static int
kw_ciphers(struct parser *p, struct stmt *st)
{
	return set_string(p, st, &p->listener->ciphers,
	    &p->listener->ciphers_where);
}

static int
kw_client_ca(struct parser *p, struct stmt *st)
{
	return set_path(p, st, &p->listener->client_ca,
	    &p->listener->client_ca_where);
}

static int
kw_client_crl(struct parser *p, struct stmt *st)
{
	return set_path(p, st, &p->listener->client_crl,
	    &p->listener->client_crl_where);
}

static int
kw_client_verify(struct parser *p, struct stmt *st)
{
	struct conf_listener *l = p->listener;

	if (l->client_verify != CONF_VERIFY_UNSET)
		return serr(p, st, "duplicate \"%s\"", st->word[0]);
	if (strcmp(st->word[1], "required") == 0)
		l->client_verify = CONF_VERIFY_REQUIRED;
	else if (strcmp(st->word[1], "optional") == 0)
		l->client_verify = CONF_VERIFY_OPTIONAL;
	else
		return serr(p, st, "client-verify \"%s\": required or "
		    "optional", st->word[1]);
	l->client_verify_where = st->where;
	return 0;
}

/* What follows "backend" or "metrics": HOST:PORT, or unix "PATH". */
static int
parse_endpoint(struct parser *p, struct stmt *st, struct conf_backend *b)
{
	const struct keyword *kw;
	char *abs;

	memset(b, 0, sizeof(*b));
	b->where = st->where;
	if (st->nwords == 2) {
		b->type = CONF_BACKEND_TCP;
		return parse_hostport(p, st, st->word[1], 0, &b->host,
		    &b->port);
	}
	kw = kw_find(st->word[1]);
	if (kw == NULL || kw->ctx != CTX_BACKEND)
		return serr(p, st, "bad %s: expected ADDRESS:PORT or "
		    "unix \"PATH\"", st->word[0]);
	if ((abs = path_abs(p->lex->file, st->word[2])) == NULL)
		return serr(p, st, "%s unix \"%s\": %s", st->word[0],
		    st->word[2], strerror(errno));
	b->type = CONF_BACKEND_UNIX;
	b->path = abs;
	return 0;
}

/*
 * "backend ENDPOINT [alpn PROTOCOL]", in a listener or a server-name
 * block: the qualifier is taken off before the endpoint is read.
 */
static int
kw_backend(struct parser *p, struct stmt *st)
{
	struct conf_listener *l = p->listener;
	struct conf_backend *b;
	char *alpn = NULL;

	if (st->nwords >= 4 && strcmp(st->word[st->nwords - 2], "alpn") == 0) {
		alpn = take(st, st->nwords - 1);
		free(take(st, st->nwords - 2));
		st->nwords -= 2;
	}
	if (st->nwords > 3) {
		free(alpn);
		return serr(p, st, "bad backend: expected ADDRESS:PORT or "
		    "unix \"PATH\", then alpn \"PROTOCOL\" or nothing");
	}
	b = reallocarray(l->backends, l->nbackends + 1, sizeof(*b));
	if (b == NULL) {
		free(alpn);
		return nomem(p, st->where.line);
	}
	l->backends = b;
	b = &l->backends[l->nbackends];
	if (parse_endpoint(p, st, b) == -1) {
		free(b->host);
		free(b->path);
		free(alpn);
		return -1;
	}
	b->alpn = alpn;
	b->route = p->route;
	l->nbackends++;
	return 0;
}

/* An ALPN protocol name: 1 to 255 printable bytes, no comma (libtls). */
static int
valid_alpn(const char *s)
{
	size_t n;

	for (n = 0; s[n] != '\0'; n++)
		if (s[n] <= ' ' || s[n] >= 0x7f || s[n] == ',')
			return 0;
	return n >= 1 && n <= 255;
}

static int
kw_alpn(struct parser *p, struct stmt *st)
{
	struct conf_listener *l = p->listener;
	struct conf_route *r = p->route > 0 ? &l->routes[p->route - 1] : NULL;
	struct conf_where *w = r != NULL ? &r->alpn_where : &l->alpn_where;
	size_t n = (size_t)(st->nwords > 1 ? st->nwords - 1 : 1);
	char **list;
	int i, j;

	if (w->line != 0)
		return serr(p, st, "duplicate \"%s\"", st->word[0]);
	for (i = 1; i < st->nwords; i++) {
		if (!valid_alpn(st->word[i]))
			return serr(p, st, "bad alpn protocol \"%s\": 1 to 255 "
			    "printable characters, no space or comma",
			    st->word[i]);
		for (j = 1; j < i; j++)
			if (strcmp(st->word[i], st->word[j]) == 0)
				return serr(p, st, "alpn protocol \"%s\" "
				    "given twice", st->word[i]);
	}
	if ((list = calloc(n, sizeof(*list))) == NULL)
		return nomem(p, st->where.line);
	for (i = 1; i < st->nwords; i++)
		list[i - 1] = take(st, i);
	if (r != NULL) {
		r->alpn = list;
		r->nalpn = (size_t)st->nwords - 1;
	} else {
		l->alpn = list;
		l->nalpn = (size_t)st->nwords - 1;
	}
	*w = st->where;
	return 0;
}

/* "name.example.org" or "*.example.org": DNS labels, a wildcard first. */
static int
valid_server_name(const char *s)
{
	size_t i, label = 0;

	if (strlen(s) > PARSE_HOST_MAX)
		return 0;
	if (s[0] == '*') {
		if (s[1] != '.')
			return 0;
		s += 2;
	}
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if (isalnum((unsigned char)s[i]) || s[i] == '-') {
			if (++label > 63)
				return 0;
		} else
			return 0;
	}
	return label > 0;
}

static int
kw_server_name(struct parser *p, struct stmt *st)
{
	struct conf_listener *l = p->listener;
	struct conf_route *r;
	size_t i;

	if (!valid_server_name(st->word[1]))
		return serr(p, st, "bad server-name \"%s\": a host name, or "
		    "\"*.\" and a domain", st->word[1]);
	for (i = 0; i < l->nroutes; i++)
		if (strcasecmp(l->routes[i].name, st->word[1]) == 0)
			return serr(p, st, "duplicate server-name \"%s\" "
			    "(first at line %d)", st->word[1],
			    l->routes[i].where.line);
	r = reallocarray(l->routes, l->nroutes + 1, sizeof(*r));
	if (r == NULL)
		return nomem(p, st->where.line);
	l->routes = r;
	r = &l->routes[l->nroutes++];
	memset(r, 0, sizeof(*r));
	r->name = take(st, 1);
	r->where = st->where;
	p->route = l->nroutes;
	return 0;
}

static int
kw_metrics(struct parser *p, struct stmt *st)
{
	struct conf_backend *b;

	if (p->conf->metrics != NULL)
		return serr(p, st, "duplicate \"%s\"", st->word[0]);
	if ((b = calloc(1, sizeof(*b))) == NULL)
		return nomem(p, st->where.line);
	if (parse_endpoint(p, st, b) == -1) {
		free(b->host);
		free(b);
		return -1;
	}
	p->conf->metrics = b;
	return 0;
}

/* The PROXY protocol version sent to the backends: v1 or v2. */
static int
kw_proxy_protocol(struct parser *p, struct stmt *st)
{
	struct conf_listener *l = p->listener;
	struct conf_route *r = p->route > 0 ? &l->routes[p->route - 1] : NULL;
	struct conf_where *w = r != NULL ? &r->proxy_protocol_where :
	    &l->proxy_protocol_where;
	int v;

	if (w->line != 0)
		return serr(p, st, "duplicate \"%s\"", st->word[0]);
	if (strcmp(st->word[1], "v1") == 0)
		v = 1;
	else if (strcmp(st->word[1], "v2") == 0)
		v = 2;
	else if (strcmp(st->word[1], "none") == 0)
		v = r != NULL ? CONF_PP_NONE : 0;
	else
		return serr(p, st, "proxy-protocol \"%s\": v1, v2 or none",
		    st->word[1]);
	if (r != NULL)
		r->proxy_protocol = v;
	else
		l->proxy_protocol = v;
	*w = st->where;
	return 0;
}

/* Who may send a PROXY header: may repeat, each line adds. */
static int
kw_proxy_protocol_from(struct parser *p, struct stmt *st)
{
	struct conf_listener *l = p->listener;
	struct conf_cidr *c;
	const char *why;
	int i;

	if (l->npp_from + (size_t)st->nwords - 1 > CONF_PP_FROM_MAX)
		return serr(p, st, "more than %d proxy-protocol-from entries",
		    CONF_PP_FROM_MAX);
	c = reallocarray(l->pp_from, l->npp_from + (size_t)st->nwords - 1,
	    sizeof(*c));
	if (c == NULL)
		return nomem(p, st->where.line);
	l->pp_from = c;
	for (i = 1; i < st->nwords; i++) {
		if ((why = conf_cidr_parse(st->word[i],
		    &l->pp_from[l->npp_from])) != NULL)
			return serr(p, st, "proxy-protocol-from \"%s\": %s",
			    st->word[i], why);
		l->npp_from++;
	}
	return 0;
}
