/*
 * Session resumption settings: see conf_tickets.h.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <tls.h>

#include "config/conf.h"
#include "config/conf_tickets.h"
#include "config/parse.h"

/* The file's owner, mode and size: the rules of a private key's file. */
static int
ticket_file_check(const struct conf *c, const struct conf_listener *l,
    const struct stat *sb, char *err, size_t errlen)
{
	const struct conf_where *w = &l->ticket_key_where;
	const char *fault = conf_key_mode_fault(sb->st_mode);

	if (!S_ISREG(sb->st_mode))
		return conf_seterr(err, errlen, w, "session-ticket-key \"%s\" "
		    "is not a regular file", l->ticket_key);
	if (sb->st_uid != 0)
		return conf_seterr(err, errlen, w, "session-ticket-key \"%s\" "
		    "is owned by uid %u, not by root: run chown root:root "
		    "'%s' && chmod 600 '%s'", l->ticket_key,
		    (unsigned)sb->st_uid, l->ticket_key, l->ticket_key);
	if (fault != NULL)
		return conf_seterr(err, errlen, w, "session-ticket-key \"%s\" "
		    "is %s: run chmod 600 '%s'", l->ticket_key, fault,
		    l->ticket_key);
	if ((sb->st_mode & S_IRGRP) && sb->st_gid == c->gid)
		return conf_seterr(err, errlen, w, "session-ticket-key \"%s\" "
		    "is readable by the group of user \"%s\": run chmod 600 "
		    "'%s'", l->ticket_key, c->user, l->ticket_key);
	if (sb->st_size != CONF_TICKET_KEY_LEN &&
	    sb->st_size != CONF_TICKET_KEY_LEN * CONF_TICKET_KEYS_MAX)
		return conf_seterr(err, errlen, w, "session-ticket-key \"%s\" "
		    "is %lld bytes, not %d or %d (make one with: openssl rand "
		    "%d)", l->ticket_key, (long long)sb->st_size,
		    CONF_TICKET_KEY_LEN,
		    CONF_TICKET_KEY_LEN * CONF_TICKET_KEYS_MAX,
		    CONF_TICKET_KEY_LEN);
	return 0;
}

int
conf_tickets_check(const struct conf *c, struct conf_listener *l,
    char *err, size_t errlen)
{
	const struct conf_where *w = &l->ticket_key_where;
	const char *protocols;
	uint32_t proto = 0;
	struct stat sb;

	if (l->ticket_key != NULL && !l->session_tickets)
		return conf_seterr(err, errlen, w, "session-ticket-key needs "
		    "\"session-tickets on\" in listener \"%s\"", l->name);
	if (!l->session_tickets)
		return 0;
	protocols = l->protocols != NULL ? l->protocols :
	    CONF_DEFAULT_PROTOCOLS;
	if (tls_config_parse_protocols(&proto, protocols) == -1 ||
	    (proto & TLS_PROTOCOL_TLSv1_3) == 0)
		return conf_seterr(err, errlen, &l->session_tickets_where,
		    "session-tickets on: resumption is TLS 1.3 only, and "
		    "listener \"%s\" allows protocols \"%s\"", l->name,
		    protocols);
	/* Whoever holds the ticket keys can mint a ticket that claims any
	 * client certificate: a taken child would bypass client-ca. */
	if (l->client_ca != NULL)
		return conf_seterr(err, errlen, &l->session_tickets_where,
		    "session-tickets on and client-ca in listener \"%s\": a "
		    "ticket would stand in for a client certificate, and a "
		    "connection process holds the ticket keys", l->name);
	if (l->ticket_key == NULL)
		return 0;
	/* Once, without blocking (a FIFO must not hang the parent). */
	l->ticket_keyfd = open(l->ticket_key, O_RDONLY | O_CLOEXEC |
	    O_NOCTTY | O_NONBLOCK);
	if (l->ticket_keyfd == -1 || fstat(l->ticket_keyfd, &sb) == -1)
		return conf_seterr(err, errlen, w, "session-ticket-key \"%s\": "
		    "%s", l->ticket_key, strerror(errno));
	return ticket_file_check(c, l, &sb, err, errlen);
}
