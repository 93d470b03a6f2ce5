/*
 * A listener's session resumption settings: "session-tickets on|off" and
 * "session-ticket-key FILE" (recluse.conf(5)), checked at load time.
 */
#ifndef CONF_TICKETS_H
#define CONF_TICKETS_H

#include <stddef.h>

#include "config/conf.h"

/*
 * One ticket key, as nginx's ssl_session_ticket_key writes it (80 bytes,
 * `openssl rand 80`): 16 bytes of name, 32 of HMAC-SHA256 key, 32 of
 * AES-256 key.  A session-ticket-key file holds one (it encrypts and
 * decrypts) or two (the first encrypts; the second, the one before it,
 * only decrypts).
 */
#define CONF_TICKET_NAME_LEN	16
#define CONF_TICKET_HMAC_LEN	32
#define CONF_TICKET_AES_LEN	32
#define CONF_TICKET_KEY_LEN	(CONF_TICKET_NAME_LEN + CONF_TICKET_HMAC_LEN + \
				    CONF_TICKET_AES_LEN)
#define CONF_TICKET_KEYS_MAX	2

/*
 * conf_tickets_check(c, l, err, errlen):
 * Check listener l's session-tickets settings: session-ticket-key needs
 * session-tickets on, which needs TLS 1.3 among l's protocols (l's
 * protocols already checked).  Open l's session-ticket-key file once,
 * into l->ticket_keyfd (O_CLOEXEC, never read here), and check it as a
 * key file: a regular file owned by root, neither group- nor
 * world-writable, not world-readable, not readable by the group of the
 * connection processes, and 80 or 160 bytes long.  Return 0, or -1 with
 * "FILE:LINE: message" in err.
 */
int	conf_tickets_check(const struct conf *c, struct conf_listener *l,
	    char *err, size_t errlen);

#endif
