/*
 * Logging: see log.h.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/msg.h"

static char	 log_role[32] = "recluse";
static int	 log_level = LOG_LEVEL_INFO;
static int	 log_fd = -1;
static int	 log_stamp;

void
log_init(const char *role, int verbose, int fd)
{
	snprintf(log_role, sizeof(log_role), "%s", role);
	log_level = LOG_LEVEL_INFO + verbose;
	log_fd = fd;
}

int
log_verbose(void)
{
	return log_level - LOG_LEVEL_INFO;
}

void
log_escape(char *dst, size_t dstlen, const char *src, size_t srclen)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, o = 0;
	unsigned char c;

	if (dstlen == 0)
		return;
	for (i = 0; i < srclen; i++) {
		c = (unsigned char)src[i];
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			if (dstlen - o < 2)
				break;
			dst[o++] = (char)c;
		} else {
			if (dstlen - o < 5)
				break;
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 0xf];
		}
	}
	dst[o] = '\0';
}

/* stderr is the stream systemd's JOURNAL_STREAM ("DEV:INO") names. */
static int
log_stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	return js != NULL && sscanf(js, "%llu:%llu", &dev, &ino) == 2 &&
	    fstat(STDERR_FILENO, &st) == 0 &&
	    (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

void
log_stamp_unless_journal(void)
{
	log_stamp = !log_stderr_is_journal();
}

/* "2026-12-02T01:45:00.123+01:00 ", RFC 3339; "" if the clock fails. */
static void
log_time(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	long off;
	size_t n;

	buf[0] = '\0';
	if (clock_gettime(CLOCK_REALTIME, &ts) == -1 ||
	    localtime_r(&ts.tv_sec, &tm) == NULL ||
	    (n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm)) == 0)
		return;
	off = tm.tm_gmtoff / 60;
	snprintf(buf + n, len - n, ".%03ld%c%02ld:%02ld ",
	    ts.tv_nsec / 1000000, off < 0 ? '-' : '+', labs(off) / 60,
	    labs(off) % 60);
}

/* One write(2) per line, so lines of several roles never interleave. */
static void
log_print(const char *role, const char *line)
{
	char buf[LOG_LINE_MAX * 4 + 64], stamp[40] = "";
	int n;

	if (log_stamp)
		log_time(stamp, sizeof(stamp));
	n = snprintf(buf, sizeof(buf), "%s%s: %s\n", stamp, role, line);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	(void)write(STDERR_FILENO, buf, (size_t)n);
}

static void
log_vemit(int level, const char *fmt, va_list ap, int errnum)
{
	char line[LOG_LINE_MAX];
	struct log_msg lm;
	struct iovec iov[2];
	size_t len;

	if (level > log_level)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	if (errnum != 0) {
		len = strlen(line);
		snprintf(line + len, sizeof(line) - len, ": %s",
		    strerror(errnum));
	}
	if (log_fd == -1) {
		log_print(log_role, line);
		return;
	}
	lm.level = (uint32_t)level;
	iov[0].iov_base = &lm;
	iov[0].iov_len = sizeof(lm);
	iov[1].iov_base = line;
	iov[1].iov_len = strlen(line);
	/* Drop a line rather than wait: a role stuck on its log channel
	 * could deadlock with a parent that is busy sending to it. */
	(void)msg_putv(log_fd, LOG_MSG_TYPE, iov, 2, -1, MSG_DONTWAIT);
}

int
log_relay(const char *role, const char *body, size_t len)
{
	char line[LOG_LINE_MAX * 4 + 1];
	struct log_msg lm;

	if (len < sizeof(lm) || len - sizeof(lm) > LOG_LINE_MAX)
		return -1;
	memcpy(&lm, body, sizeof(lm));
	if (lm.level > LOG_LEVEL_DEBUG)
		return -1;
	if ((int)lm.level > log_level)
		return 0;
	log_escape(line, sizeof(line), body + sizeof(lm), len - sizeof(lm));
	log_print(role, line);
	return 0;
}

#define LOG_FN(name, level, witherr)				\
void								\
name(const char *fmt, ...)					\
{								\
	int saved = errno;					\
	va_list ap;						\
								\
	va_start(ap, fmt);					\
	log_vemit(level, fmt, ap, witherr ? saved : 0);		\
	va_end(ap);						\
	errno = saved;						\
}

LOG_FN(log_warn, LOG_LEVEL_WARN, 1)
LOG_FN(log_warnx, LOG_LEVEL_WARN, 0)
LOG_FN(log_info, LOG_LEVEL_INFO, 0)
LOG_FN(log_debug, LOG_LEVEL_DEBUG, 0)

static __dead void
vfatal(const char *fmt, va_list ap, int errnum)
{
	char line[LOG_LINE_MAX];

	vsnprintf(line, sizeof(line), fmt, ap);
	if (errnum != 0)
		log_warnx("fatal: %s: %s", line, strerror(errnum));
	else
		log_warnx("fatal: %s", line);
	/* A role that logs to the parent is a sandboxed fork or exec: its
	 * atexit handlers (the parent's, OpenSSL's) are not its own to run,
	 * and may make system calls its filter forbids. */
	if (log_fd != -1)
		_exit(1);
	exit(1);
}

void
fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vfatal(fmt, ap, saved);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfatal(fmt, ap, 0);
}
