/*
 * fuzz_pp: the parser of a load balancer's PROXY header (proxy/pp_parse.c),
 * which a connection child runs on a peer's bytes before its TLS
 * handshake, and the encoder of the header it sends on (proxy/pp.c).
 *
 * Input: the bytes as they arrive on the socket.  The properties, which
 * the child's reading loop (proxy/pp_child.c) relies on:
 * - pp_parse() returns -1, 0, or a length within the input, and reads
 *   nothing beyond it (ASan: libFuzzer's copy is exactly that long);
 * - a header is recognised at its end and not before: every shorter
 *   prefix of it says "more" (0), never "bad" or "complete";
 * - bytes after a complete header change nothing, and once "bad", more
 *   bytes keep it bad;
 * - a complete header gives a version of 1 or 2 and, unless local, two
 *   IPv4 or two IPv6 addresses; pp_encode() of them in either version
 *   parses back to the same addresses and ports.
 * Any difference aborts.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/pp.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int
same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET)
		return memcmp(a, b, sizeof(struct sockaddr_in)) == 0;
	return memcmp(a, b, sizeof(struct sockaddr_in6)) == 0;
}

/* pp_parse() on a copy of exactly n bytes, so ASan sees any overread. */
static int
parse_copy(const uint8_t *data, size_t n, struct pp_hdr *h)
{
	uint8_t *p;
	int r;

	if ((p = malloc(n ? n : 1)) == NULL)
		abort();
	memcpy(p, data, n);
	r = pp_parse(p, n, h);
	free(p);
	return r;
}

static void
check_roundtrip(const struct pp_hdr *h)
{
	uint8_t out[PP_OUT_MAX];
	struct pp_info info;
	struct pp_hdr h2;
	ssize_t n;
	int v;

	memset(&info, 0, sizeof(info));
	info.src = h->src;
	info.dst = h->dst;
	for (v = 1; v <= 2; v++) {
		if ((n = pp_encode(v, &info, out, sizeof(out))) <= 0)
			abort();
		if (parse_copy(out, (size_t)n, &h2) != n || h2.version != v ||
		    h2.local || !same_addr(&h->src, &h2.src) ||
		    !same_addr(&h->dst, &h2.dst))
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pp_hdr h, hp;
	size_t i, step;
	int r, rp;

	r = parse_copy(data, size, &h);
	if (r < -1 || r > (int)size || (r == 0 && size > PP_V2_MAX))
		abort();
	if (size > 0) {
		rp = parse_copy(data, size - 1, &hp);
		if (rp == -1 && r != -1)
			abort();		/* bad, then good again */
		if (rp > 0 && r != rp)
			abort();		/* a trailing byte counted */
	}
	if (r <= 0)
		return 0;
	/* every prefix of the header says "more" */
	step = r > 512 ? (size_t)r / 256 : 1;
	for (i = 0; i < (size_t)r; i += step)
		if (parse_copy(data, i, &hp) != 0)
			abort();
	if (parse_copy(data, (size_t)r - 1, &hp) != 0)
		abort();
	if (h.version != 1 && h.version != 2)
		abort();
	if (h.local)
		return 0;
	if ((h.src.ss_family != AF_INET && h.src.ss_family != AF_INET6) ||
	    h.src.ss_family != h.dst.ss_family)
		abort();
	check_roundtrip(&h);
	return 0;
}
