/*
 * TLS 1.3 session resumption in a listener's children, with ticket keys
 * the parent made (proxy/tickets.h) and sent to the spawner
 * (SPAWNER_TICKETS).  The spawner keeps the keys in this module; a child
 * forked from it inherits them, and its one SSL object (tlshook.c) issues
 * one stateless ticket, encrypted with the newest key, and accepts a
 * ticket made with any of them.  TLS 1.2 connections get no ticket, no
 * session ID, and never resume: a stolen TLS 1.2 ticket key would read
 * every recorded session it ever covered (docs/ARCHITECTURE.md).
 */
#ifndef RESUME_H
#define RESUME_H

#include <stddef.h>
#include <stdint.h>

typedef struct ssl_st SSL;

/*
 * resume_set(keys, nkeys, lifetime, sid_ctx):
 * In a spawner: the children forked from now on resume sessions with
 * these nkeys keys of SPAWNER_TICKET_KEY_LEN bytes, newest first, issue
 * tickets valid lifetime seconds, and accept only tickets of the session
 * context sid_ctx (SPAWNER_TICKET_SID_LEN bytes).  The keys it held are
 * wiped.  nkeys 0: no resumption (the default).
 */
void	resume_set(const uint8_t *keys, size_t nkeys, uint32_t lifetime,
	    const uint8_t *sid_ctx);

/*
 * resume_ssl(ssl):
 * In a child, for its new SSL object: if it has keys, turn tickets on for
 * TLS 1.3 (and off for TLS 1.2) and return 1; return 0 if it has none.
 */
int	resume_ssl(SSL *ssl);

#endif
