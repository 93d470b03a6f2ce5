/*
 * Addresses and networks, "10.0.0.0/8" or "::1": proxy-protocol-from.
 * Pure functions, no system calls: the parser uses them, and so does a
 * connection child inside its sandbox.
 */
#ifndef CIDR_H
#define CIDR_H

#include <sys/socket.h>

#include <stddef.h>

#include "config/conf.h"

/* Room for conf_cidr_format(): an IPv6 address, "/", three digits. */
#define CONF_CIDR_STRLEN	(46 + 4)

/*
 * conf_cidr_parse(s, c):
 * Read s, an IPv4 or IPv6 address with an optional "/PREFIX" (none: the
 * one address), into *c.  Return NULL, or why not (a constant string): a
 * bad address, a bad prefix, host bits set beyond the prefix.
 */
const char	*conf_cidr_parse(const char *s, struct conf_cidr *c);

/*
 * conf_cidr_format(c, buf, len):
 * Write *c as "ADDRESS/PREFIX" into buf, NUL-terminated.  Return buf.
 */
char		*conf_cidr_format(const struct conf_cidr *c, char *buf,
		    size_t len);

/*
 * conf_cidr_match(cs, n, sa):
 * 1 if the IPv4 or IPv6 socket address sa lies in one of the n networks
 * of cs, else 0.  An IPv4-mapped IPv6 address (a dual-stack listener's
 * IPv4 client) is matched as the IPv4 address it maps.
 */
int		 conf_cidr_match(const struct conf_cidr *cs, size_t n,
		    const struct sockaddr *sa);

#endif
