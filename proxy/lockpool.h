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

#ifndef RECLUSE_LOCKPOOL_H
#define RECLUSE_LOCKPOOL_H

#include <stddef.h>

/*
 * Have libcrypto allocate its locks (pthread_rwlock_t, by size) from a
 * region of their own (proxy/lockpool.c).  Call first thing in a spawner,
 * before anything allocates through libcrypto.  Return 0, or -1 if the
 * region cannot be mapped or libcrypto has allocated already (then
 * nothing changed: the locks come from malloc, as before).
 */
int	lockpool_install(void);

/* How many slots of the region libcrypto has been given so far. */
size_t	lockpool_slots(void);

/* The region (NULL if not installed), and its length in *len. */
void	*lockpool_region(size_t *len);

/*
 * In a child, right after the fork: new locks come from malloc and the
 * region's pages, shared with the spawner, are no longer written by the
 * allocator (only by the locks themselves).
 */
void	lockpool_seal(void);

#endif
