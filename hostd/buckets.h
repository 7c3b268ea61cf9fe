/* SPDX-License-Identifier: MIT */
/*
 * Crash signature buckets counted: for `GET /v1/buckets` and
 * `pbctl buckets`. One entry per signature.bucket (docs/record.md) with
 * its title, how many crashes, the first and last detection and the last
 * crash's id and VM. Crashes without a signature are counted apart
 * (unsigned). The library never logs.
 */
#ifndef PB_BUCKETS_H
#define PB_BUCKETS_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "spool.h"
#include "util.h"

#define BUCKETS_KEY_MAX 24
#define BUCKETS_TITLE_MAX 128
/* More distinct buckets than this are counted in .overflow, not listed. */
#define BUCKETS_MAX 100000

struct bucket {
	char key[BUCKETS_KEY_MAX];
	char title[BUCKETS_TITLE_MAX];
	uint64_t count;
	uint64_t first_usec, last_usec;	/* CLOCK_REALTIME detection times */
	char last_id[SPOOL_ID_MAX];
	char last_vm[VM_NAME_MAX + 1];
};

struct buckets {
	struct bucket *v;
	size_t n, cap;
	uint64_t unsigned_count;	/* crashes without a signature bucket */
	uint64_t overflow;		/* crashes in buckets past BUCKETS_MAX */
};

/* One crash. @bucket NULL or "": unsigned. -ENOMEM. */
int buckets_add(struct buckets *b, const char *bucket, const char *title,
		uint64_t detected_usec, const char *id, const char *vm);
/* One crash from its record (signature.bucket, .title, detected_at, vm). */
int buckets_add_record(struct buckets *b, const char *id, json_object *rec);
/* Most crashes first; equal counts: the latest seen first. */
void buckets_sort(struct buckets *b);
/* A new array of {"bucket","title","count","first_seen","last_seen","last_crash","last_vm"}. */
json_object *buckets_to_json(const struct buckets *b);
void buckets_clear(struct buckets *b);

#endif
