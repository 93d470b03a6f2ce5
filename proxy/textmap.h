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

#ifndef RECLUSE_TEXTMAP_H
#define RECLUSE_TEXTMAP_H

/*
 * In a spawner, before its warm-up and its sandbox (it opens
 * /proc/self/mem): make fork(2) copy the page-table entries of the
 * read-only segments (text, constants) of the program and its libraries,
 * so that a child starts with what the spawner has mapped of them instead
 * of faulting it in again (proxy/textmap.c).  The bytes stay as they are.
 * Returns how many segments now are so, or -1 if /proc/self/mem cannot be
 * opened (nothing changed).
 */
int	textmap_prepare(void);

#endif
