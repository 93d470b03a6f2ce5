/*
 * fuzz_chan: the parent's readers of the channels of less trusted
 * processes, past the socket: msg_frame() (lib/msg.c, the framing every
 * msg_get() checks), then parent_check_child() (proxy/spawn.c's reader of
 * a connection child) or parent_check_spawner() (proxy/spawner_ctl.c's
 * reader of a spawner), and for a log line log_relay() and log_escape()
 * (lib/log.c), which print it.
 *
 * Input: one byte of context (bit 0: a spawner's channel, else a child's;
 * bit 1: a descriptor came with the message, which only a spawner's reader
 * receives; bit 2: the parent waits for a SPAWNER_FORKED), then the
 * datagram as the reader receives it, at most its buffer's size.  The
 * properties, against a second reading of lib/wire.h:
 * - the framing holds exactly when the datagram is a struct msg_hdr and
 *   len more bytes;
 * - a child's message is accepted exactly when it is CHAN_ACCEPTED or
 *   CHAN_ESTABLISHED with an empty body, CHAN_CONNECT of 8 bytes (its
 *   route is checked by child_connect()), CHAN_PEER of 192 bytes or
 *   CHAN_ENDED of 32 (their values are stats_chan()'s), or
 *   CHAN_LOG with
 *   a level of enum log_level and at most LOG_LINE_MAX bytes of text (no
 *   type the parent sends, no descriptor);
 * - a spawner's exactly when it is such a log line or an empty
 *   SPAWNER_READY without a descriptor, or, when the parent waits for one,
 *   a SPAWNER_FORKED of 8 bytes whose pid is positive exactly when a
 *   descriptor came;
 * - a log line relays, and its escaped form is printable ASCII only (no
 *   newline: a child cannot forge a second line) and unescapes to the
 *   text.
 * Any difference aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/msg.h"
#include "lib/wire.h"
#include "proxy/parent_check.h"

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define CTX_SPAWNER	0x1
#define CTX_FD		0x2
#define CTX_FORKED	0x4

/* The readers' buffers (proxy/spawn.c, proxy/spawner_ctl.c). */
#define CHILD_BUF	(CHAN_MSG_MAX + 1)
#define SPAWNER_BUF	(LOG_MSG_MAX + 1)

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* a verbosity below warnings: log_relay() checks, prints nothing */
	log_init("parent", -2, -1);
	return 0;
}

static uint32_t
u32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* The oracle: a log body, lib/wire.h's struct log_msg and text. */
static int
log_ok(const uint8_t *body, size_t len)
{
	return len >= 4 && len - 4 <= LOG_LINE_MAX &&
	    u32(body) <= LOG_LEVEL_DEBUG;
}

static int
child_want(uint32_t type, const uint8_t *body, size_t len)
{
	if (type == CHAN_LOG)
		return log_ok(body, len) ? CHAN_LOG : -1;
	if ((type == CHAN_ACCEPTED || type == CHAN_ESTABLISHED) && len == 0)
		return (int)type;
	if ((type == CHAN_CONNECT && len == 8) ||
	    (type == CHAN_PEER && len == 192) ||
	    (type == CHAN_ENDED && len == 32))
		return (int)type;
	return -1;
}

static int
spawner_want(uint32_t type, const uint8_t *body, size_t len, int hasfd,
    int forked)
{
	if (type == SPAWNER_LOG)
		return !hasfd && log_ok(body, len) ? SPAWNER_LOG : -1;
	if (type == SPAWNER_READY)
		return !hasfd && len == 0 ? SPAWNER_READY : -1;
	if (type == SPAWNER_FORKED && forked && len == 8)
		return ((int32_t)u32(body) > 0) == hasfd ? SPAWNER_FORKED : -1;
	return -1;
}

static int
unhex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* log_escape() as log_relay() calls it: printable, and lossless. */
static void
check_escape(const char *text, size_t len)
{
	char line[LOG_LINE_MAX * 4 + 1], *back;
	size_t i, o = 0;

	log_escape(line, sizeof(line), text, len);
	if (memchr(line, '\0', sizeof(line)) == NULL)
		abort();
	if ((back = malloc(len + 1)) == NULL)
		abort();
	for (i = 0; line[i] != '\0'; i++) {
		if (line[i] < 0x20 || line[i] > 0x7e) {
			fprintf(stderr, "escaped line holds byte 0x%02x\n",
			    (unsigned char)line[i]);
			abort();
		}
		if (line[i] == '\\') {
			if (line[i + 1] != 'x' || unhex(line[i + 2]) == -1 ||
			    unhex(line[i + 3]) == -1)
				abort();
			back[o++] = (char)(unhex(line[i + 2]) << 4 |
			    unhex(line[i + 3]));
			i += 3;
		} else
			back[o++] = line[i];
		if (o > len)
			abort();
	}
	if (o != len || memcmp(back, text, len) != 0) {
		fprintf(stderr, "escaped line does not unescape to the text\n");
		abort();
	}
	free(back);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spawner_forked rep;
	struct msg_hdr hdr;
	uint8_t *body;
	size_t n, len;
	int ctx, hasfd, forked, got, want, framed;

	if (size < 1)
		return 0;
	ctx = data[0];
	data++;
	n = size - 1;
	/* more than the buffer is an error of the receive, not a message */
	if (n > ((ctx & CTX_SPAWNER) ? SPAWNER_BUF : CHILD_BUF))
		return 0;
	framed = msg_frame(data, n, &hdr) == 0;
	if (framed != (n >= 8 && u32(data + 4) == n - 8)) {
		fprintf(stderr, "msg_frame says %d for %zu bytes\n", framed, n);
		abort();
	}
	if (!framed)
		return 0;
	if (hdr.type != u32(data) || hdr.len != n - 8)
		abort();
	/* the body alone, so ASan sees any read past it */
	len = hdr.len;
	if ((body = malloc(len > 0 ? len : 1)) == NULL)
		abort();
	memcpy(body, data + 8, len);
	hasfd = (ctx & CTX_SPAWNER) && (ctx & CTX_FD);
	forked = (ctx & CTX_FORKED) != 0;
	if (ctx & CTX_SPAWNER) {
		got = parent_check_spawner(&hdr, (char *)body, hasfd ? 7 : -1,
		    forked, &rep);
		want = spawner_want(hdr.type, body, len, hasfd, forked);
		if (got == SPAWNER_FORKED && memcmp(&rep, body, 8) != 0)
			abort();
	} else {
		got = parent_check_child(&hdr, (char *)body);
		want = child_want(hdr.type, body, len);
	}
	if (got != want) {
		fprintf(stderr, "%s's message of type %u, %zu bytes%s: "
		    "accepted as %d, the rules say %d\n",
		    (ctx & CTX_SPAWNER) ? "a spawner" : "a child", hdr.type,
		    len, hasfd ? " with a descriptor" : "", got, want);
		abort();
	}
	if (got == LOG_MSG_TYPE) {
		if (log_relay("child 1", (char *)body, len) != 0)
			abort();
		check_escape((char *)body + 4, len - 4);
	}
	free(body);
	return 0;
}
