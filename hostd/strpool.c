// SPDX-License-Identifier: MIT
/* Interned strings (hostd/strpool.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strpool.h"

#define STRPOOL_CHUNK_BYTES (64 * 1024)

struct strpool_chunk {
	struct strpool_chunk *next;
	size_t used, size;
	char data[];
};

/* FNV-1a: short keys, no adversary that could aim at a collision chain worth having. */
static uint64_t strpool_hash(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
	return h;
}

static int strpool_rehash(struct strpool *p)
{
	size_t n_slots = p->n_slots ? 2 * p->n_slots : 1024;
	const char **slots = calloc(n_slots, sizeof(*slots));

	if (!slots)
		return -1;
	for (size_t i = 0; i < p->n_slots; i++) {
		const char *s = p->slots[i];
		size_t j;

		if (!s)
			continue;
		j = strpool_hash(s, strlen(s)) & (n_slots - 1);
		while (slots[j])
			j = (j + 1) & (n_slots - 1);
		slots[j] = s;
	}
	free(p->slots);
	p->slots = slots;
	p->n_slots = n_slots;
	return 0;
}

static char *strpool_store(struct strpool *p, const char *s, size_t len)
{
	struct strpool_chunk *c = p->chunks;
	char *out;

	if (!c || c->size - c->used < len + 1) {
		size_t size = len + 1 > STRPOOL_CHUNK_BYTES ? len + 1 : STRPOOL_CHUNK_BYTES;

		c = malloc(sizeof(*c) + size);
		if (!c)
			return NULL;
		c->used = 0;
		c->size = size;
		c->next = p->chunks;
		p->chunks = c;
		p->bytes += size;
	}
	out = c->data + c->used;
	memcpy(out, s, len + 1);
	c->used += len + 1;
	return out;
}

const char *strpool_intern(struct strpool *p, const char *s)
{
	size_t len = strlen(s), j;
	char *copy;

	/* At most half full: probes stay short. */
	if (2 * (p->n + 1) > p->n_slots && strpool_rehash(p) < 0)
		return NULL;
	j = strpool_hash(s, len) & (p->n_slots - 1);
	for (; p->slots[j]; j = (j + 1) & (p->n_slots - 1))
		if (!strcmp(p->slots[j], s))
			return p->slots[j];
	copy = strpool_store(p, s, len);
	if (!copy)
		return NULL;
	p->slots[j] = copy;
	p->n++;
	return copy;
}

void strpool_free(struct strpool *p)
{
	while (p->chunks) {
		struct strpool_chunk *c = p->chunks;

		p->chunks = c->next;
		free(c);
	}
	free(p->slots);
	*p = (struct strpool)STRPOOL_INIT;
}
