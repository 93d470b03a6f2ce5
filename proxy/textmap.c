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
 * A spawner's text and constants handed to its children mapped.
 *
 * fork(2) copies the page-table entries of a mapping only if the mapping
 * has held an anonymous page (Linux's vma_needs_copy()): the read-only
 * file mappings of the program and its libraries never have, so each
 * child maps the text and constants it runs through again, one page
 * fault per 16 pages, ~70 faults per connection.  Under a hypervisor
 * that traps every page fault (shadow page tables) a fault costs ~20 us,
 * several times the entries it maps.
 *
 * So before its warm-up a spawner writes the first byte of each such
 * segment back as it was through /proc/self/mem, as a debugger sets a
 * breakpoint (no mapping becomes writable, so MemoryDenyWriteExecute=
 * does not object), which gives the mapping an anonymous page, and drops
 * the whole segment's pages (MADV_DONTNEED): the copy goes, the file's
 * bytes come back at the next touch, and what the warm-up and the
 * spawner's later work map is what every child starts with, copied at
 * fork.
 */

#include <sys/auxv.h>
#include <sys/mman.h>

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdint.h>
#include <unistd.h>

#include "proxy/textmap.h"

#define TM_PAGE	4096UL

struct tm_walk {
	int		fd;	/* /proc/self/mem */
	uintptr_t	vdso;	/* the kernel's, not a file: left alone */
	int		done;	/* segments handed over */
};

/*
 * Whether the object has text relocations: its text holds copies the
 * loader wrote, which dropping would undo.
 */
static int
tm_textrel(const struct dl_phdr_info *info)
{
	const ElfW(Dyn) *d;
	int i;

	for (i = 0; i < info->dlpi_phnum; i++) {
		if (info->dlpi_phdr[i].p_type != PT_DYNAMIC)
			continue;
		for (d = (const ElfW(Dyn) *)(info->dlpi_addr +
		    info->dlpi_phdr[i].p_vaddr); d->d_tag != DT_NULL; d++)
			if (d->d_tag == DT_TEXTREL || (d->d_tag == DT_FLAGS &&
			    (d->d_un.d_val & DF_TEXTREL)))
				return 1;
	}
	return 0;
}

/*
 * One read-only segment [a, b): a byte written back as it was (the
 * mapping gets its anonymous page), then every page dropped.  Each page
 * of the range holds bytes of the segment, so it is in the segment's
 * mapping and no other.
 */
static void
tm_segment(struct tm_walk *w, uintptr_t a, uintptr_t b)
{
	char c;

	if (pread(w->fd, &c, 1, (off_t)a) != 1 ||
	    pwrite(w->fd, &c, 1, (off_t)a) != 1)
		return;
	if (madvise((void *)a, b - a, MADV_DONTNEED) == 0)
		w->done++;
}

static int
tm_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct tm_walk *w = arg;
	const ElfW(Phdr) *ph;
	uintptr_t a, b;
	int i;

	if (info->dlpi_addr == w->vdso || tm_textrel(info))
		return 0;
	for (i = 0; i < info->dlpi_phnum; i++) {
		ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || (ph->p_flags & PF_W) ||
		    ph->p_memsz == 0)
			continue;
		a = (info->dlpi_addr + ph->p_vaddr) & ~(TM_PAGE - 1);
		b = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz +
		    TM_PAGE - 1) & ~(TM_PAGE - 1);
		tm_segment(w, a, b);
	}
	return 0;
}

int
textmap_prepare(void)
{
	struct tm_walk w;

	w.vdso = (uintptr_t)getauxval(AT_SYSINFO_EHDR);
	w.done = 0;
	if ((w.fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC)) == -1)
		return -1;
	dl_iterate_phdr(tm_object, &w);
	close(w.fd);
	return w.done;
}
