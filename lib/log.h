/*
 * Logging for every role.  The parent writes lines to stderr (the journal
 * under systemd); keyproc and the connection children have no stderr worth
 * trusting after chroot, so their lines travel to the parent as datagrams on
 * the channel given to log_init() and the parent prints them with the
 * sender's role as prefix.
 */
#ifndef LOG_H
#define LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/util.h"
#include "lib/wire.h"


enum log_level {
	LOG_LEVEL_WARN = 0,	/* always shown */
	LOG_LEVEL_INFO = 1,	/* shown by default */
	LOG_LEVEL_DEBUG = 2	/* -v */
};

/*
 * log_init(role, verbose, fd):
 * Set the prefix of every line ("parent", "keyproc", "child 1234"), the
 * verbosity (number of -v) and where lines go: -1 for stderr, or a
 * SOCK_SEQPACKET fd whose peer is the parent (one LOG_MSG_TYPE message,
 * struct log_msg and the text, per line).
 */
void	log_init(const char *role, int verbose, int fd);

/*
 * log_stamp_unless_journal():
 * In the parent: start every line written to stderr with an RFC 3339
 * timestamp (local time, milliseconds, UTC offset), unless stderr is the
 * journal (systemd's JOURNAL_STREAM names it), which stamps lines itself.
 */
void	log_stamp_unless_journal(void);

/*
 * log_verbose():
 * Return the verbosity given to log_init().
 */
int	log_verbose(void);

/*
 * log_relay(role, body, len):
 * In the parent: print the line in the len-byte body of a LOG_MSG_TYPE
 * message received from another role (a struct log_msg, then the text),
 * filtered by the parent's verbosity, with non-printable bytes escaped.
 * Return 0, or -1 and print nothing when the body is malformed (the caller
 * closes the channel).
 */
int	log_relay(const char *role, const char *body, size_t len);

/*
 * log_warn(fmt, ...), log_warnx(fmt, ...), log_info(fmt, ...),
 * log_debug(fmt, ...):
 * Log one line; log_warn appends strerror(errno).
 */
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));

/*
 * fatal(fmt, ...), fatalx(fmt, ...):
 * Log "fatal: ..." (fatal appends strerror(errno)) and exit 1: with
 * exit(3) in the parent, with _exit(2) in the roles that log to it.
 */
__dead void fatal(const char *, ...) __attribute__((format(printf, 1, 2)));
__dead void fatalx(const char *, ...) __attribute__((format(printf, 1, 2)));

/*
 * log_escape(dst, dstlen, src, srclen):
 * Copy src into dst as printable text (\xNN for anything else), always
 * NUL-terminated, truncated to fit.  For peer-supplied strings.
 */
void	log_escape(char *, size_t, const char *, size_t);

#endif
