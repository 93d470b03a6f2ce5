/*
 * Writing a PROXY header: see pp.h.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <string.h>

#include "proxy/pp.h"

static const uint8_t pp_v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

/* A buffer being written; len == SIZE_MAX once something did not fit. */
struct out {
	uint8_t		*buf;
	size_t		 cap, len;
	int		 full;
};

static void
put(struct out *o, const void *p, size_t n)
{
	if (o->full || n > o->cap - o->len) {
		o->full = 1;
		return;
	}
	memcpy(o->buf + o->len, p, n);
	o->len += n;
}

static void
put8(struct out *o, unsigned int v)
{
	uint8_t b = (uint8_t)v;

	put(o, &b, 1);
}

static void
put16(struct out *o, unsigned int v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	put(o, b, 2);
}

/* A TLV of string s, cut at 255 bytes; nothing if s is NULL. */
static void
put_tlv(struct out *o, unsigned int type, const char *s)
{
	size_t n;

	if (s == NULL)
		return;
	if ((n = strlen(s)) > 255)
		n = 255;
	put8(o, type);
	put16(o, (unsigned int)n);
	put(o, s, n);
}

/* The address bytes of sa (4 or 16), and its port in host order. */
static const uint8_t *
addr_of(const struct sockaddr_storage *ss, unsigned int *port)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

	if (ss->ss_family == AF_INET) {
		*port = ntohs(sin->sin_port);
		return (const uint8_t *)&sin->sin_addr;
	}
	*port = ntohs(sin6->sin6_port);
	return (const uint8_t *)&sin6->sin6_addr;
}

static int
is_mapped(const struct sockaddr_storage *ss)
{
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

	return ss->ss_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr);
}

/* ss as an IPv4 address (from a mapped one) or IPv6 (mapping it). */
static void
to_family(struct sockaddr_storage *ss, int family)
{
	struct sockaddr_storage t;
	struct sockaddr_in *sin = (struct sockaddr_in *)&t;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&t;
	unsigned int port;
	const uint8_t *a;

	if (ss->ss_family == family)
		return;
	a = addr_of(ss, &port);
	memset(&t, 0, sizeof(t));
	if (family == AF_INET) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		memcpy(&sin->sin_addr, a + 12, 4);
	} else {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		sin6->sin6_addr.s6_addr[10] = 0xff;
		sin6->sin6_addr.s6_addr[11] = 0xff;
		memcpy(&sin6->sin6_addr.s6_addr[12], a, 4);
	}
	*ss = t;
}

/*
 * The family both addresses are written in, after making them one: 0
 * when either is not an IP address (the header says UNKNOWN or LOCAL).
 */
static int
same_family(struct sockaddr_storage *src, struct sockaddr_storage *dst)
{
	if ((src->ss_family != AF_INET && src->ss_family != AF_INET6) ||
	    (dst->ss_family != AF_INET && dst->ss_family != AF_INET6))
		return 0;
	if (is_mapped(src) && is_mapped(dst)) {
		to_family(src, AF_INET);
		to_family(dst, AF_INET);
	} else if (src->ss_family != dst->ss_family) {
		to_family(src, AF_INET6);
		to_family(dst, AF_INET6);
	}
	return src->ss_family;
}

static void
encode_v1(struct out *o, int family, const struct sockaddr_storage *src,
    const struct sockaddr_storage *dst)
{
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN], line[PP_V1_MAX + 1];
	unsigned int sport, dport;
	int n;

	if (family == 0) {
		put(o, "PROXY UNKNOWN\r\n", 15);
		return;
	}
	inet_ntop(family, addr_of(src, &sport), s, sizeof(s));
	inet_ntop(family, addr_of(dst, &dport), d, sizeof(d));
	n = snprintf(line, sizeof(line), "PROXY %s %s %s %u %u\r\n",
	    family == AF_INET ? "TCP4" : "TCP6", s, d, sport, dport);
	if (n < 0 || (size_t)n >= sizeof(line)) {
		o->full = 1;
		return;
	}
	put(o, line, (size_t)n);
}

static void
encode_ssl(struct out *o, const struct pp_tls *t)
{
	size_t start, vlen;
	uint8_t verify[4] = { 0, 0, 0, 1 };

	put8(o, PP2_TYPE_SSL);
	start = o->len;
	put16(o, 0);		/* the length, written below */
	put8(o, PP2_CLIENT_SSL | (t->client_cert ?
	    PP2_CLIENT_CERT_CONN | PP2_CLIENT_CERT_SESS : 0));
	/* 0 only for a certificate presented and verified */
	if (t->client_cert && t->client_verified)
		verify[3] = 0;
	put(o, verify, sizeof(verify));
	put_tlv(o, PP2_SUBTYPE_SSL_VERSION, t->version);
	if (t->client_cert)
		put_tlv(o, PP2_SUBTYPE_SSL_CN, t->client_cn);
	put_tlv(o, PP2_SUBTYPE_SSL_CIPHER, t->cipher);
	put_tlv(o, PP2_SUBTYPE_SSL_SIG_ALG, t->sig_alg);
	put_tlv(o, PP2_SUBTYPE_SSL_KEY_ALG, t->key_alg);
	if (o->full)
		return;
	vlen = o->len - start - 2;
	o->buf[start] = (uint8_t)(vlen >> 8);
	o->buf[start + 1] = (uint8_t)vlen;
	if (t->client_cert) {
		put_tlv(o, PP2_TYPE_RECLUSE_CLIENT_SAN, t->client_san);
		put_tlv(o, PP2_TYPE_RECLUSE_CLIENT_FP, t->client_fp);
	}
}

static void
encode_v2(struct out *o, int family, const struct pp_info *info,
    const struct sockaddr_storage *src, const struct sockaddr_storage *dst)
{
	unsigned int sport, dport;
	const uint8_t *s, *d;
	size_t alen, lenat, blen;

	put(o, pp_v2_sig, sizeof(pp_v2_sig));
	put8(o, family == 0 ? 0x20 : 0x21);	/* version 2, LOCAL/PROXY */
	put8(o, family == AF_INET ? 0x11 : family == AF_INET6 ? 0x21 : 0x00);
	lenat = o->len;
	put16(o, 0);		/* the length, written below */
	if (family != 0) {
		alen = family == AF_INET ? 4 : 16;
		s = addr_of(src, &sport);
		d = addr_of(dst, &dport);
		put(o, s, alen);
		put(o, d, alen);
		put16(o, sport);
		put16(o, dport);
	}
	put_tlv(o, PP2_TYPE_ALPN, info->alpn);
	put_tlv(o, PP2_TYPE_AUTHORITY, info->authority);
	if (info->tls != NULL)
		encode_ssl(o, info->tls);
	if (o->full)
		return;
	blen = o->len - lenat - 2;
	o->buf[lenat] = (uint8_t)(blen >> 8);
	o->buf[lenat + 1] = (uint8_t)blen;
}

ssize_t
pp_encode(int version, const struct pp_info *info, uint8_t *buf,
    size_t len)
{
	struct sockaddr_storage src = info->src, dst = info->dst;
	struct out o = { buf, len, 0, 0 };
	int family;

	family = same_family(&src, &dst);
	if (version == 1)
		encode_v1(&o, family, &src, &dst);
	else
		encode_v2(&o, family, info, &src, &dst);
	return o.full ? -1 : (ssize_t)o.len;
}
