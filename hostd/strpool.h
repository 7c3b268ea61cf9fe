/* SPDX-License-Identifier: MIT */
/*
 * A pool of interned strings: each distinct string stored once, in large
 * chunks, for tables that hold many copies of few strings (the index: a
 * thousand VM names, a handful of states, a title per bucket over 100,000
 * crashes) and many short unique ones (crash ids), without a malloc each.
 *
 * Contract: strpool_intern() returns a pointer that stays valid, and equal
 * for equal strings, until strpool_free(); NULL only when out of memory.
 * Nothing is freed one by one: a pool only grows, so it suits a table that
 * rarely drops an entry. "" is interned like any other string. No I/O, no
 * logging.
 */
#ifndef PB_STRPOOL_H
#define PB_STRPOOL_H

#include <stddef.h>

struct strpool_chunk;

struct strpool {
	const char **slots;		/* open addressing, a power of two */
	size_t n_slots, n;
	struct strpool_chunk *chunks;	/* the newest first */
	size_t bytes;			/* held by the chunks, for stats */
};

#define STRPOOL_INIT { 0 }

const char *strpool_intern(struct strpool *p, const char *s);
void strpool_free(struct strpool *p);

#endif
