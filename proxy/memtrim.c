/*
 * Heap and stack trimming for a child: see memtrim.h.
 */
#include <sys/mman.h>

#include <malloc.h>
#include <stdint.h>

#include "proxy/memtrim.h"

/* How far below the caller's frame to trim: the deepest a handshake
 * goes (OpenSSL's bignum and hash code) is well within it. */
#define MEMTRIM_STACK	(128 * 1024)
/* Left alone below the caller: memtrim()'s own frame, madvise()'s. */
#define MEMTRIM_KEEP	4096

static void __attribute__((noinline))
memtrim_stack(void)
{
	volatile char here;
	uintptr_t top, page = 4096;

	top = ((uintptr_t)&here - MEMTRIM_KEEP) & ~(page - 1);
	/* Below the stack's lowest page there is no mapping: madvise()
	 * skips it and says ENOMEM, having done the mapped part. */
	(void)madvise((void *)(top - MEMTRIM_STACK), MEMTRIM_STACK,
	    MADV_DONTNEED);
}

void
memtrim(void)
{
	malloc_trim(0);
	memtrim_stack();
}
