/*
 * Giving a child's dirty memory back to the kernel.  A child holds one
 * connection for as long as the client likes; every page it has written
 * (heap, stack) counts against that connection until it exits, though
 * what the handshake or a burst of traffic left behind is dead.
 */
#ifndef MEMTRIM_H
#define MEMTRIM_H

/*
 * memtrim():
 * Return freed heap pages (malloc_trim(0)) and the stack pages below the
 * caller's frame to the kernel.  Contents below the caller's frame are
 * lost: call it from a frame that has nothing live below it (no other
 * thread, no signal handler running).  Never fails.
 */
void	memtrim(void);

#endif
