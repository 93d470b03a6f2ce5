/*
 * Copyright (c) 2026 The recluse authors
 *
 * Permission to use, copy, modify, and distribute this software for any
 * purpose with or without fee is hereby granted, provided that the above
 * copyright notice and this permission notice appear in all copies.
 *
 * THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES
 * WITH REGARD TO THIS SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF
 * MERCHANTABILITY AND FITNESS. IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR
 * ANY SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY DAMAGES
 * WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN
 * ACTION OF CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF
 * OR IN CONNECTION WITH THE USE OR PERFORMANCE OF THIS SOFTWARE.
 */

/*
 * OpenSSL's locks on pages of their own, in a spawner and its children.
 *
 * A child takes and releases dozens of the spawner's OpenSSL locks per
 * handshake (method stores, the provider store, the name map, the
 * context's caches).  Each is a pthread_rwlock_t that libcrypto allocates
 * next to whatever it allocated just before, so taking it writes a page
 * of the spawner's heap, which the kernel then copies for the child: a
 * page of private memory per connection for a lock, even after the lock
 * is released.  Here every allocation of that size that libcrypto makes
 * in the spawner comes from one region of its own, 64 to a page, so the
 * locks a child takes share a few pages.  In a child (lockpool_seal())
 * new ones come from malloc, among the child's own pages, and the
 * region's slots are never written again: a slot the child frees is left
 * as it is (a few bytes, for a process that serves one connection).
 *
 * A spawner and its children run one thread (their filters allow no
 * other), so the region takes no lock of its own.
 */

#include <sys/mman.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "proxy/lockpool.h"

#define LP_SLOT		64
#define LP_SIZE		(256 * 1024)

static char	*lp_base;	/* the region, LP_SIZE bytes */
static size_t	 lp_used;	/* bytes handed out from its start */
static void	*lp_free;	/* freed slots, linked through themselves */
static int	 lp_sealed;	/* a child: the region is not written */

/* Whether p is a slot of the region. */
static int
lp_owns(const void *p)
{
	return lp_base != NULL && (const char *)p >= lp_base &&
	    (const char *)p < lp_base + LP_SIZE;
}

/* libcrypto's malloc: a lock's size from the region while there is room. */
static void *
lp_malloc(size_t n, const char *file, int line)
{
	void *p;

	(void)file;
	(void)line;
	if (n == sizeof(pthread_rwlock_t) && !lp_sealed) {
		if ((p = lp_free) != NULL) {
			memcpy(&lp_free, p, sizeof(lp_free));
			return p;
		}
		if (lp_used + LP_SLOT <= LP_SIZE) {
			p = lp_base + lp_used;
			lp_used += LP_SLOT;
			return p;
		}
	}
	return malloc(n);
}

/* libcrypto's free: a slot back to the region's list (not in a child). */
static void
lp_freefn(void *p, const char *file, int line)
{
	(void)file;
	(void)line;
	if (lp_owns(p)) {
		if (lp_sealed)
			return;
		memcpy(p, &lp_free, sizeof(lp_free));
		lp_free = p;
		return;
	}
	free(p);
}

/* libcrypto's realloc: a slot that must grow moves to malloc. */
static void *
lp_realloc(void *p, size_t n, const char *file, int line)
{
	void *q;

	if (!lp_owns(p))
		return realloc(p, n);
	if (n <= LP_SLOT)
		return p;
	if ((q = malloc(n)) == NULL)
		return NULL;
	memcpy(q, p, LP_SLOT);
	lp_freefn(p, file, line);
	return q;
}

size_t
lockpool_slots(void)
{
	return lp_used / LP_SLOT;
}

void *
lockpool_region(size_t *len)
{
	*len = LP_SIZE;
	return lp_base;
}

void
lockpool_seal(void)
{
	lp_sealed = 1;
}

int
lockpool_install(void)
{
	void *b;

	b = mmap(NULL, LP_SIZE, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (b == MAP_FAILED)
		return -1;
	lp_base = b;
	if (!CRYPTO_set_mem_functions(lp_malloc, lp_realloc, lp_freefn)) {
		munmap(b, LP_SIZE);
		lp_base = NULL;
		return -1;
	}
	return 0;
}
