/*
 * Moving bytes between the TLS client and the plaintext backend of one
 * connection child.
 */
#ifndef RELAY_H
#define RELAY_H

#include <stdint.h>

/*
 * Bytes buffered per direction; a slow reader never makes these grow.
 * Backend to client reads 64 KiB at a time (four TLS records per recv(2)):
 * -4 % CPU per bulk MB.  Pages of it a connection never fills are never
 * touched, so small answers cost no more memory.
 */
#define RELAY_UP_BUFSZ		16384
#define RELAY_DOWN_BUFSZ	65536

struct event_base;
struct tls;

/* Plaintext bytes delivered each way, and how the connection ended. */
struct relay_stats {
	uint64_t	 from_client;	/* written to the backend */
	uint64_t	 to_client;	/* written to the client */
	const char	*end;		/* for the access log */
};

/* How long a relay ended by relay_drain() may take to write what it holds. */
#define RELAY_DRAIN_MS		500

/*
 * relay_run(base, tls, cfd, bfd, ctlfd, idle, drain, st):
 * Proxy between the client (tls, handshake done, on the nonblocking socket
 * cfd) and the backend (nonblocking connected socket bfd), both
 * directions at once, until both directions are closed, an error, or idle
 * seconds without a byte moving either way.  ctlfd (or -1) is a descriptor
 * whose event the caller has on base: whenever it is readable base runs
 * once without waiting, so its callback may call relay_drain(); once base
 * holds no event any more, ctlfd is no longer watched.  base runs nothing
 * else meanwhile.  A client close_notify or EOF
 * becomes shutdown(SHUT_WR) on the backend once the bytes before it are
 * written; a backend EOF becomes a close_notify to the client, after which
 * the client is still read until it is done.  drain, unless -1, is a
 * relay_drain() that came before the relay started.  Neither socket is
 * closed.  Fill st (st->end is a static string such as "client-close",
 * "backend-eof", "idle-timeout", "client-error", "drain").  Return 0 if
 * both directions ended cleanly, -1 otherwise.
 */
int	relay_run(struct event_base *base, struct tls *tls, int cfd, int bfd,
	    int ctlfd, int idle, int drain, struct relay_stats *st);

/*
 * relay_drain(idle):
 * From the callback of relay_run()'s ctlfd, while it runs (the parent
 * drains): with idle 0, end the relay now, cleanly: read nothing more
 * either way, write what is buffered, then close_notify to the client and
 * shutdown(SHUT_WR) to the backend, st->end "drain"; give up writing after
 * RELAY_DRAIN_MS.  With idle > 0, the same once no byte has moved either
 * way for idle seconds, counted from this call at the earliest, st->end
 * "drain-idle".  Nothing happens outside relay_run().
 */
void	relay_drain(int idle);

#endif
