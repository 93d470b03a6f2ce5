/*
 * Reading a PROXY header from a load balancer: see pp.h.  Everything here
 * reads bytes a peer sent: every length is checked against what is in
 * the buffer before it is used, and a header that is not exactly the
 * protocol's is refused.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <string.h>

#include "proxy/pp.h"

static const uint8_t pp_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

/* 1 if the n bytes of buf begin s (or s begins them). */
static int
starts(const uint8_t *buf, size_t n, const void *s, size_t slen)
{
	return memcmp(buf, s, n < slen ? n : slen) == 0;
}

/* A decimal port, 0..65535, no sign, no leading zero. */
static int
v1_port(const char *s, size_t n, unsigned int *port)
{
	unsigned int v = 0;
	size_t i;

	if (n == 0 || n > 5 || (s[0] == '0' && n > 1))
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned int)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*port = v;
	return 0;
}

/* An address of family, the n bytes of s, with port, into *ss. */
static int
v1_addr(int family, const char *s, size_t n, unsigned int port,
    struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	char a[INET6_ADDRSTRLEN];

	if (n == 0 || n >= sizeof(a))
		return -1;
	memcpy(a, s, n);
	a[n] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		return inet_pton(AF_INET, a, &sin->sin_addr) == 1 ? 0 : -1;
	}
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons((uint16_t)port);
	return inet_pton(AF_INET6, a, &sin6->sin6_addr) == 1 ? 0 : -1;
}

/*
 * The fields of a complete v1 line (without "PROXY " and CRLF): exactly
 * "TCP4|TCP6 SRC DST SPORT DPORT", or "UNKNOWN" and anything.
 */
static int
v1_fields(const char *s, size_t n, struct pp_hdr *h)
{
	const char *f[5];
	size_t flen[5], i, k = 0;
	unsigned int sport, dport;
	int family;

	if (n >= 7 && memcmp(s, "UNKNOWN", 7) == 0 &&
	    (n == 7 || s[7] == ' ')) {
		h->local = 1;
		return 0;
	}
	f[0] = s;
	for (i = 0; i < n; i++) {
		if (s[i] != ' ')
			continue;
		if (k == 4)
			return -1;	/* a sixth field */
		flen[k] = (size_t)(s + i - f[k]);
		f[++k] = s + i + 1;
	}
	if (k != 4)
		return -1;
	flen[4] = (size_t)(s + n - f[4]);
	if (flen[0] != 4 || memcmp(f[0], "TCP", 3) != 0 ||
	    (f[0][3] != '4' && f[0][3] != '6'))
		return -1;
	family = f[0][3] == '4' ? AF_INET : AF_INET6;
	if (v1_port(f[3], flen[3], &sport) == -1 ||
	    v1_port(f[4], flen[4], &dport) == -1 ||
	    v1_addr(family, f[1], flen[1], sport, &h->src) == -1 ||
	    v1_addr(family, f[2], flen[2], dport, &h->dst) == -1)
		return -1;
	return 0;
}

static int
parse_v1(const uint8_t *buf, size_t len, struct pp_hdr *h)
{
	size_t i, n = len < PP_V1_MAX ? len : PP_V1_MAX;

	h->version = 1;
	if (!starts(buf, n, "PROXY ", 6))
		return -1;
	for (i = 0; i < n; i++) {
		if (buf[i] == '\r') {
			if (i + 1 == n)
				return len >= PP_V1_MAX ? -1 : 0;
			if (buf[i + 1] != '\n' || i < 6)
				return -1;
			if (v1_fields((const char *)buf + 6, i - 6, h) == -1)
				return -1;
			return (int)(i + 2);
		}
		/* what the grammar allows before CRLF, and UNKNOWN's rest */
		if (buf[i] < 0x20 || buf[i] > 0x7e)
			return -1;
	}
	return len >= PP_V1_MAX ? -1 : 0;
}

/* The address block's length for a v2 family byte, -1 if refused. */
static int
v2_addrlen(uint8_t fam, int *local)
{
	switch (fam) {
	case 0x00:		/* AF_UNSPEC */
		*local = 1;
		return 0;
	case 0x11:		/* TCP over IPv4 */
		return 12;
	case 0x21:		/* TCP over IPv6 */
		return 36;
	case 0x31:		/* a UNIX stream: nothing we can log */
		*local = 1;
		return 216;
	default:		/* datagrams, unknown families */
		return -1;
	}
}

static void
v2_addrs(uint8_t fam, const uint8_t *a, struct pp_hdr *h)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&h->src;
	struct sockaddr_in *d4 = (struct sockaddr_in *)&h->dst;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&h->src;
	struct sockaddr_in6 *d6 = (struct sockaddr_in6 *)&h->dst;
	size_t al = fam == 0x11 ? 4 : 16;
	uint16_t sport, dport;

	memcpy(&sport, a + 2 * al, 2);
	memcpy(&dport, a + 2 * al + 2, 2);
	memset(&h->src, 0, sizeof(h->src));
	memset(&h->dst, 0, sizeof(h->dst));
	if (fam == 0x11) {
		s4->sin_family = d4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, a, 4);
		memcpy(&d4->sin_addr, a + 4, 4);
		s4->sin_port = sport;	/* both in network order */
		d4->sin_port = dport;
	} else {
		s6->sin6_family = d6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, a, 16);
		memcpy(&d6->sin6_addr, a + 16, 16);
		s6->sin6_port = sport;
		d6->sin6_port = dport;
	}
}

static int
parse_v2(const uint8_t *buf, size_t len, struct pp_hdr *h)
{
	size_t total, pos;
	int alen, local = 0;

	h->version = 2;
	if (!starts(buf, len, pp_sig, sizeof(pp_sig)))
		return -1;
	if (len < PP_V2_FIXED)
		return 0;
	/* version 2; command LOCAL (0) or PROXY (1) */
	if ((buf[12] >> 4) != 2 || (buf[12] & 0x0f) > 1)
		return -1;
	if ((alen = v2_addrlen(buf[13], &local)) == -1)
		return -1;
	total = PP_V2_FIXED + ((size_t)buf[14] << 8 | buf[15]);
	if ((size_t)alen > total - PP_V2_FIXED)
		return -1;
	if (len < total)
		return 0;
	/* the TLVs fill what follows the addresses exactly */
	for (pos = PP_V2_FIXED + (size_t)alen; pos < total; ) {
		if (total - pos < 3)
			return -1;
		pos += 3 + ((size_t)buf[pos + 1] << 8 | buf[pos + 2]);
		if (pos > total)
			return -1;
	}
	h->local = local || (buf[12] & 0x0f) == 0;
	if (!h->local)
		v2_addrs(buf[13], buf + PP_V2_FIXED, h);
	return (int)total;
}

int
pp_parse(const uint8_t *buf, size_t len, struct pp_hdr *h)
{
	memset(h, 0, sizeof(*h));
	if (len == 0)
		return 0;
	if (buf[0] == 'P')
		return parse_v1(buf, len, h);
	if (buf[0] == pp_sig[0])
		return parse_v2(buf, len, h);
	return -1;
}
