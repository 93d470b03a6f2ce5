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
 *   parses back to the same addresses and ports (two IPv4-mapped IPv6
 *   addresses come back as IPv4, as pp.h says).
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

/* The address and port, an IPv4 address as its IPv4-mapped form. */
static void
canon(const struct sockaddr_storage *ss, uint8_t out[18])
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

	memset(out, 0, 18);
	if (ss->ss_family == AF_INET) {
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &sin->sin_addr, 4);
		memcpy(out + 16, &sin->sin_port, 2);
	} else {
		memcpy(out, &sin6->sin6_addr, 16);
		memcpy(out + 16, &sin6->sin6_port, 2);
	}
}

/*
 * a and b name the same address and port: the encoder writes two
 * IPv4-mapped addresses as IPv4 (pp.h), so one may be the other's mapping.
 */
static int
same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	uint8_t ca[18], cb[18];

	canon(a, ca);
	canon(b, cb);
	return memcmp(ca, cb, sizeof(ca)) == 0;
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
