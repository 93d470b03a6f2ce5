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
 * A spawner's heap as a sealed file, so that a child can give back the
 * pages it copied and no longer changes.
 *
 * A child copies every page of the spawner's heap it writes, even when it
 * only takes and releases a lock or counts a reference up and down: the
 * copy then holds the same bytes as the spawner's page, yet stays the
 * child's own for as long as the connection lives.  Anonymous memory
 * cannot be shared again (MADV_DONTNEED would read back zeros).  A private
 * mapping of a file can: MADV_DONTNEED drops the copy, and the page reads
 * the file again, shared with every other child.
 *
 * So before its first fork a spawner copies the pages of its heap (and
 * of libcrypto's lock region, proxy/lockpool.c) that hold anything but
 * zeros into a memfd, seals it (no write, no resize: nothing changes it
 * for a child later), and maps it privately over the same addresses,
 * plus once more read-only as the reference.  Nothing moves, nothing
 * reads differently: the spawner and its children see the bytes they
 * saw.  A child, once its connection is quiet (heapfile_return()),
 * compares the pages it copied with the reference and drops those that
 * are the same.
 *
 * Which of those pages a child writes hardly changes from one child to the
 * next, and where a page fault costs a trap to a hypervisor (~20 us with
 * shadow page tables) copying them in one system call is several times
 * cheaper than a fault each.  So the spawner forks a probe that does what
 * a child does with the heap (its event base, a handshake), reads which
 * pages it copied (/proc/self/pagemap), and each child copies those when
 * its connection arrives (MADV_POPULATE_WRITE).  Those are also the pages
 * a quiet child compares: dropping a page it never copied gives back
 * nothing and costs a page table update now and a fault on its next use.
 */

#include <sys/mman.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/util.h"
#include "proxy/heapfile.h"

#define HF_PAGE		4096UL
#define HF_RANGES	2

/* A /proc/self/pagemap entry: present, anonymous, mapped here alone. */
#define HF_PM_COPIED(e)	((((e) >> 63) & 1) && !(((e) >> 61) & 1) && \
			    (((e) >> 56) & 1))

/* What hf_range.data says of a page. */
#define HF_DATA		0x01	/* the file holds bytes (else a hole) */
#define HF_HOT		0x02	/* a child writes it: copied at once */

struct hf_range {
	char		*start;	/* the frozen range, read and written */
	const char	*ref;	/* the file, read-only: the bytes at freeze */
	size_t		 pages;
	uint8_t		*data;	/* per page: HF_DATA, HF_HOT */
	int		 heap;	/* the break may have moved below its end */
};

static struct hf_range	hf_range[HF_RANGES];
static size_t		hf_nrange;
static int		hf_learned;	/* some HF_HOT pages: the probe ran */

/* Whether the page at p holds only zeros (a hole of the file reads so). */
static int
hf_zero(const char *p)
{
	static const char zero[HF_PAGE];

	return memcmp(p, zero, HF_PAGE) == 0;
}

/*
 * Write the pages of [start, start + pages) that hold anything but zeros
 * to fd, and mark them in data; the others stay holes, which read as
 * zeros too.  By content, not residency: a page swapped out is copied.
 * 0 or -1.
 */
static int
hf_copy(int fd, char *start, size_t pages, uint8_t *data)
{
	size_t i, j;
	ssize_t n;

	for (i = 0; i < pages; i++)
		data[i] = hf_zero(start + i * HF_PAGE) ? 0 : HF_DATA;
	for (i = 0; i < pages; i = j) {
		for (j = i; j < pages && data[j] == data[i]; j++)
			;
		if (!data[i])
			continue;
		n = pwrite(fd, start + i * HF_PAGE, (j - i) * HF_PAGE,
		    (off_t)(i * HF_PAGE));
		if (n != (ssize_t)((j - i) * HF_PAGE))
			return -1;
	}
	return 0;
}

/*
 * Map the file's pages into our page table, read-only (no copy): fork(2)
 * hands a child the entries it finds, so that a child reads the heap as
 * it did the anonymous one, rather than faulting each page in again.
 */
static void
hf_populate(char *start, size_t pages, const uint8_t *data)
{
	volatile const char *p;
	size_t i;

	if (madvise(start, pages * HF_PAGE, MADV_POPULATE_READ) == 0)
		return;
	for (i = 0; i < pages; i++)	/* before Linux 5.14 */
		if (data[i] & HF_DATA) {
			p = start + i * HF_PAGE;
			(void)*p;
		}
}

static int
hf_freeze(void *addr, size_t len, int heap)
{
	struct hf_range *r;
	char *start;
	size_t pages;
	uint8_t *vec = MAP_FAILED;
	void *ref = MAP_FAILED;
	int fd = -1, rc = -1, saved;

	if (hf_nrange == HF_RANGES || len == 0)
		return -1;
	start = (char *)((uintptr_t)addr & ~(HF_PAGE - 1));
	pages = ((char *)addr + len - start + HF_PAGE - 1) / HF_PAGE;
	/* Nothing below may allocate from the heap being copied. */
	vec = mmap(NULL, pages, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (vec == MAP_FAILED)
		goto out;
	if ((fd = memfd_create("recluse-spawner", MFD_CLOEXEC |
	    MFD_ALLOW_SEALING)) == -1 ||
	    ftruncate(fd, (off_t)(pages * HF_PAGE)) == -1 ||
	    hf_copy(fd, start, pages, vec) == -1 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK |
	    F_SEAL_GROW | F_SEAL_SEAL) == -1)
		goto out;
	ref = mmap(NULL, pages * HF_PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
	if (ref == MAP_FAILED)
		goto out;
	/* The same bytes at the same place, from the file now. */
	if (mmap(start, pages * HF_PAGE, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_FIXED, fd, 0) == MAP_FAILED)
		abort();	/* the range is gone: nothing can go on */
	hf_populate(start, pages, vec);
	r = &hf_range[hf_nrange++];
	r->start = start;
	r->ref = ref;
	r->pages = pages;
	r->data = vec;
	r->heap = heap;
	vec = MAP_FAILED;
	ref = MAP_FAILED;
	rc = 0;
out:
	saved = errno;
	if (vec != MAP_FAILED)
		munmap(vec, pages);
	if (ref != MAP_FAILED)
		munmap((void *)ref, pages * HF_PAGE);
	if (fd != -1)
		close(fd);
	errno = saved;
	return rc;
}

int
heapfile_freeze(void *addr, size_t len)
{
	return hf_freeze(addr, len, 0);
}

/*
 * The [heap] line of /proc/self/maps, read into a static buffer: nothing
 * here allocates.  0, or -1 if there is none (or no /proc).
 */
static int
hf_heap(void **start, size_t *len)
{
	static char buf[65536];
	unsigned long a, b;
	char *line, *nl, *end;
	ssize_t n;
	size_t got = 0;
	int fd;

	if ((fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	while (got < sizeof(buf) - 1 &&
	    (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	buf[got] = '\0';
	for (line = buf; *line != '\0'; line = nl + 1) {
		if ((nl = strchr(line, '\n')) == NULL)
			break;
		*nl = '\0';
		if ((end = strstr(line, " [heap]")) == NULL || end[7] != '\0')
			continue;
		a = strtoul(line, &end, 16);
		if (*end != '-')
			return -1;
		b = strtoul(end + 1, &end, 16);
		if (b <= a)
			return -1;
		*start = (void *)a;
		*len = b - a;
		return 0;
	}
	return -1;
}

int
heapfile_freeze_heap(void)
{
	void *start;
	size_t len;

	if (hf_heap(&start, &len) == -1)
		return -1;
	return hf_freeze(start, len, 1);
}

/* Drop pages [from, to) of r: each is the same as the file's. */
static void
hf_drop(const struct hf_range *r, size_t from, size_t to)
{
	if (to > from)
		(void)madvise(r->start + from * HF_PAGE, (to - from) * HF_PAGE,
		    MADV_DONTNEED);
}

/*
 * How many of r's pages are mapped: all, but for the heap, whose break a
 * child's malloc_trim() may have moved below the end of the range (the
 * pages above it are gone).
 */
static size_t
hf_mapped(const struct hf_range *r)
{
	uintptr_t brk;

	if (!r->heap)
		return r->pages;
	brk = ((uintptr_t)sbrk(0) + HF_PAGE - 1) & ~(HF_PAGE - 1);
	if (brk <= (uintptr_t)r->start)
		return 0;
	if (brk >= (uintptr_t)r->start + r->pages * HF_PAGE)
		return r->pages;
	return (brk - (uintptr_t)r->start) / HF_PAGE;
}

/*
 * Whether a child gives back page i of r: one it copied (a page the
 * probe learned it writes, copied at once; every page of the file if
 * nothing was learned), holding the bytes of the file still.
 */
static int
hf_returnable(const struct hf_range *r, size_t i)
{
	uint8_t want = hf_learned ? HF_DATA | HF_HOT : HF_DATA;

	return (r->data[i] & want) == want &&
	    memcmp(r->start + i * HF_PAGE, r->ref + i * HF_PAGE, HF_PAGE) == 0;
}

void
heapfile_return(void)
{
	const struct hf_range *r;
	size_t k, i, j, n;

	for (k = 0; k < hf_nrange; k++) {
		r = &hf_range[k];
		n = hf_mapped(r);
		for (i = 0; i < n; i = j + 1) {
			for (j = i; j < n && hf_returnable(r, j); j++)
				;
			hf_drop(r, i, j);
		}
	}
}

/*
 * In the probe: one byte per page of each range, 1 if the probe has
 * copied the page (anonymous, mapped by it alone: a page the spawner
 * itself wrote since the freeze is shared with it), to fd.  0 or -1.
 */
static int
hf_report(int fd)
{
	uint64_t e[64];
	uint8_t out[64];
	const struct hf_range *r;
	size_t k, i, j, n;
	int pm;

	if ((pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	for (k = 0; k < hf_nrange; k++) {
		r = &hf_range[k];
		for (i = 0; i < r->pages; i += n) {
			n = r->pages - i;
			if (n > NELEM(e))
				n = NELEM(e);
			if (pread(pm, e, n * sizeof(e[0]), (off_t)(((uintptr_t)
			    r->start / HF_PAGE + i) * sizeof(e[0]))) !=
			    (ssize_t)(n * sizeof(e[0])))
				goto fail;
			for (j = 0; j < n; j++)
				out[j] = HF_PM_COPIED(e[j]);
			if (write(fd, out, n) != (ssize_t)n)
				goto fail;
		}
	}
	close(pm);
	return 0;
fail:
	close(pm);
	return -1;
}

/* Read n bytes, however the pipe splits them.  0, or -1 at EOF or error. */
static int
hf_read_full(int fd, uint8_t *buf, size_t n)
{
	ssize_t got;

	while (n > 0) {
		if ((got = read(fd, buf, n)) == -1 && errno == EINTR)
			continue;
		if (got <= 0)
			return -1;
		buf += got;
		n -= (size_t)got;
	}
	return 0;
}

/* In the spawner: the probe's bytes, into HF_HOT.  How many pages. */
static long
hf_read_hot(int fd)
{
	uint8_t in[64];
	struct hf_range *r;
	size_t k, i, j, n;
	long hot = 0;

	for (k = 0; k < hf_nrange; k++) {
		r = &hf_range[k];
		for (i = 0; i < r->pages; i += n) {
			n = r->pages - i;
			if (n > sizeof(in))
				n = sizeof(in);
			if (hf_read_full(fd, in, n) == -1)
				return -1;
			for (j = 0; j < n; j++)
				if (in[j]) {
					r->data[i + j] |= HF_HOT;
					hot++;
				}
		}
	}
	return hot;
}

static void
hf_forget_hot(void)
{
	size_t k, i;

	for (k = 0; k < hf_nrange; k++)
		for (i = 0; i < hf_range[k].pages; i++)
			hf_range[k].data[i] &= ~HF_HOT;
}

long
heapfile_learn(void (*work)(void *), void *arg)
{
	pid_t pid;
	long hot;
	int p[2];

	if (hf_nrange == 0 || pipe2(p, O_CLOEXEC) == -1)
		return -1;
	if ((pid = fork()) == -1) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		close(p[0]);
		work(arg);
		_exit(hf_report(p[1]) == 0 ? 0 : 1);
	}
	close(p[1]);
	/* The probe writes every byte or fails: a short read is its end. */
	hot = hf_read_hot(p[0]);
	close(p[0]);
	while (waitpid(pid, NULL, 0) == -1 && errno == EINTR)
		;
	if (hot == -1)
		hf_forget_hot();
	hf_learned = hot > 0;
	return hot;
}

void
heapfile_prefault(void)
{
	const struct hf_range *r;
	size_t k, i, j, n;

	for (k = 0; k < hf_nrange; k++) {
		r = &hf_range[k];
		n = hf_mapped(r);
		for (i = 0; i < n; i = j + 1) {
			for (j = i; j < n && (r->data[j] & HF_HOT); j++)
				;
			if (j > i)
				(void)madvise(r->start + i * HF_PAGE,
				    (j - i) * HF_PAGE, MADV_POPULATE_WRITE);
		}
	}
}
