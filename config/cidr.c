/*
 * Addresses and networks: see cidr.h.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "config/cidr.h"

const char *
conf_cidr_parse(const char *s, struct conf_cidr *c)
{
	char addr[64];
	const char *slash, *p;
	unsigned int prefix = 0, max, i, bits;
	size_t alen;

	memset(c, 0, sizeof(*c));
	slash = strchr(s, '/');
	alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	if (alen == 0 || alen >= sizeof(addr))
		return "not an IPv4 or IPv6 address";
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	if (inet_pton(AF_INET, addr, c->addr) == 1) {
		c->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, addr, c->addr) == 1) {
		c->family = AF_INET6;
		max = 128;
	} else
		return "not an IPv4 or IPv6 address";
	if (slash == NULL) {
		c->prefix = max;
		return NULL;
	}
	/* Decimal, no sign, no leading zero, at most max. */
	p = slash + 1;
	if (p[0] == '\0' || (p[0] == '0' && p[1] != '\0'))
		return "bad prefix length";
	for (; *p != '\0'; p++) {
		if (!isdigit((unsigned char)*p))
			return "bad prefix length";
		prefix = prefix * 10 + (unsigned int)(*p - '0');
		if (prefix > max)
			return "prefix length too large";
	}
	c->prefix = prefix;
	for (i = 0; i < max / 8; i++) {
		bits = i * 8 >= prefix ? 8 : prefix - i * 8 >= 8 ? 0 :
		    8 - (prefix - i * 8);
		if ((c->addr[i] & ((1U << bits) - 1)) != 0)
			return "host bits set beyond the prefix length";
	}
	return NULL;
}

char *
conf_cidr_format(const struct conf_cidr *c, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN];

	if (inet_ntop(c->family, c->addr, addr, sizeof(addr)) == NULL)
		snprintf(addr, sizeof(addr), "?");
	snprintf(buf, len, "%s/%u", addr, c->prefix);
	return buf;
}

/* 1 if the first prefix bits of a and b are equal. */
static int
prefix_equal(const unsigned char *a, const unsigned char *b,
    unsigned int prefix)
{
	unsigned int whole = prefix / 8, rest = prefix % 8;
	unsigned char mask;

	if (memcmp(a, b, whole) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (unsigned char)(0xff << (8 - rest));
	return (a[whole] & mask) == (b[whole] & mask);
}

int
conf_cidr_match(const struct conf_cidr *cs, size_t n,
    const struct sockaddr *sa)
{
	static const unsigned char mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
	};
	const unsigned char *a4 = NULL, *a6 = NULL;
	size_t i;

	if (sa->sa_family == AF_INET)
		a4 = (const unsigned char *)
		    &((const struct sockaddr_in *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6) {
		a6 = (const unsigned char *)
		    &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (memcmp(a6, mapped, sizeof(mapped)) == 0)
			a4 = a6 + 12;
	} else
		return 0;
	for (i = 0; i < n; i++) {
		if (cs[i].family == AF_INET && a4 != NULL &&
		    prefix_equal(cs[i].addr, a4, cs[i].prefix))
			return 1;
		if (cs[i].family == AF_INET6 && a6 != NULL &&
		    prefix_equal(cs[i].addr, a6, cs[i].prefix))
			return 1;
	}
	return 0;
}
