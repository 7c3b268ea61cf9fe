// SPDX-License-Identifier: MIT
/*
 * The mailboxes' header pages, mapped a second time side by side, for the
 * sweep's quick checks (hostd/chan_sweep.c).
 *
 * Why: a quick check reads two cache lines of a mailbox's header page. With
 * each mailbox a mapping of its own, 1 MiB apart, every check is a TLB miss
 * whose page walk touches page-table pages no other check shares; under a
 * hypervisor (nested paging) that walk was most of the sweep's cost. Mapped
 * again into consecutive pages of one 2 MiB-aligned region, 512 header
 * pages share one page-table page and 8 share each of its cache lines, so
 * the walks hit the cache. The second mapping is of the same file page
 * (MAP_SHARED): the bytes are the same bytes.
 *
 * Regions are reserved PROT_NONE, 512 pages each, and never given back (a
 * daemon has at most CFG_MAX_VMS mailboxes: a few regions of address space,
 * no memory). A freed page is reserved again, so nothing else is ever
 * mapped between the windows. Single-threaded, like the rest of chan*.c.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include <panicbroker/mailbox.h>

#include "chan_internal.h"

#define CHAN_PEEK_PAGES 512u			/* one page-table page's worth */
#define CHAN_PEEK_REGION ((size_t)CHAN_PEEK_PAGES * PB_MBOX_PAGE)

struct chan_peek_region {
	uint8_t *base;
	uint64_t used[CHAN_PEEK_PAGES / 64];
	unsigned int n_used;
	struct chan_peek_region *next;
};

static struct chan_peek_region *chan_peek_regions;

/* A region of CHAN_PEEK_REGION bytes aligned to its size, reserved, not mapped. */
static struct chan_peek_region *chan_peek_region_new(void)
{
	struct chan_peek_region *r = calloc(1, sizeof(*r));
	uint8_t *p, *base;
	size_t head, tail;

	if (!r)
		return NULL;
	p = mmap(NULL, 2 * CHAN_PEEK_REGION, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		free(r);
		return NULL;
	}
	base = (uint8_t *)(((uintptr_t)p + CHAN_PEEK_REGION - 1) & ~(CHAN_PEEK_REGION - 1));
	head = (size_t)(base - p);
	tail = CHAN_PEEK_REGION - head;
	/* Trimming a reservation we made cannot fail; if it did, we keep more
	 * address space reserved than we use, nothing worse. */
	if (head)
		(void)munmap(p, head);
	if (tail)
		(void)munmap(base + CHAN_PEEK_REGION, tail);
	r->base = base;
	r->next = chan_peek_regions;
	chan_peek_regions = r;
	return r;
}

void *chan_peek_map(int fd)
{
	struct chan_peek_region *r;
	unsigned int i;
	void *p;

	for (r = chan_peek_regions; r; r = r->next)
		if (r->n_used < CHAN_PEEK_PAGES)
			break;
	if (!r)
		r = chan_peek_region_new();
	if (!r)
		return NULL;
	for (i = 0; i < CHAN_PEEK_PAGES; i++)
		if (!(r->used[i / 64] & (1ULL << (i % 64))))
			break;
	p = mmap(r->base + (size_t)i * PB_MBOX_PAGE, PB_MBOX_PAGE, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED, fd, 0);
	if (p == MAP_FAILED)
		return NULL;
	r->used[i / 64] |= 1ULL << (i % 64);
	r->n_used++;
	return p;
}

void chan_peek_unmap(void *page)
{
	for (struct chan_peek_region *r = chan_peek_regions; r; r = r->next) {
		size_t i;

		if ((uint8_t *)page < r->base || (uint8_t *)page >= r->base + CHAN_PEEK_REGION)
			continue;
		i = (size_t)((uint8_t *)page - r->base) / PB_MBOX_PAGE;
		/* Back to reserved. Were this to fail, the page would stay mapped
		 * and unused: keep it marked used, never handed out again. */
		if (mmap(page, PB_MBOX_PAGE, PROT_NONE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) == MAP_FAILED)
			return;
		r->used[i / 64] &= ~(1ULL << (i % 64));
		r->n_used--;
		return;
	}
}
