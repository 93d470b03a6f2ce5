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

#ifndef RECLUSE_HEAPFILE_H
#define RECLUSE_HEAPFILE_H

#include <stddef.h>

/*
 * In a spawner, before its first fork and before its sandbox: put the
 * anonymous private range [addr, addr + len) (page-aligned outwards) on a
 * sealed memfd holding its pages that are not all zeros (the others are
 * holes, which read as zeros), mapped privately at the same place, the
 * bytes unchanged (proxy/heapfile.c).  Return 0, or -1 with the range
 * as it was.  Aborts if the range cannot be mapped again once
 * taken down (the kernel refusing a mapping it just let go).
 */
int	heapfile_freeze(void *addr, size_t len);

/* heapfile_freeze() on the process's [heap], found in /proc/self/maps. */
int	heapfile_freeze_heap(void);

/*
 * In a child, when its connection is quiet: give back every page of the
 * frozen ranges it copied at once (heapfile_prefault()) whose bytes are
 * those of the file (MADV_DONTNEED); it reads the shared page again.
 * Pages it never copied stay mapped.  If the probe learned nothing, every
 * page is compared.
 */
void	heapfile_return(void);

/*
 * In a spawner, after the freeze and before its sandbox: fork a probe that
 * runs work(arg), as a child would, and note the pages of the frozen
 * ranges it copied (/proc/self/pagemap), for heapfile_prefault().  Returns
 * how many, or -1 (no probe, or it failed) with none noted.
 */
long	heapfile_learn(void (*work)(void *), void *arg);

/*
 * In a child, when its connection arrives: copy the pages
 * heapfile_learn() noted, one system call per run of them
 * (MADV_POPULATE_WRITE), rather than a page fault each as it writes them.
 */
void	heapfile_prefault(void);

#endif
