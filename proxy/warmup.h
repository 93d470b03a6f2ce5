/*
 * One handshake of a spawner with itself before its first fork.
 */
#ifndef WARMUP_H
#define WARMUP_H

struct tls;

/*
 * warmup_handshake(server):
 * In a spawner, before it forks children: run a TLS handshake between
 * `server` and a throw-away client over a socketpair, so that what
 * OpenSSL fetches, caches and grows at its first handshake (algorithms,
 * method caches, hash tables) is made here once, in pages the children
 * then only read, instead of in every child, where each write to a page
 * shared with the spawner copies the page.  The spawner has no keyproc
 * channel: the handshake stops at the signature, everything before it
 * done.  Leaves no error behind.  Never fails: a warm-up that cannot run
 * only costs the children those pages.
 */
void	warmup_handshake(struct tls *server);

#endif
