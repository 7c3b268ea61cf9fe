/* SPDX-License-Identifier: MIT */
/*
 * The spool's index: a summary of every crash, in memory, so that start-up,
 * the API's listings, the dashboard and the metrics never read 100,000
 * records. The records stay the truth; the index is a cache of them.
 *
 *   SPOOL/index.tsv     one summary per line, appended after every save;
 *                       the last line of an id wins; rewritten (write,
 *                       fsync, rename) at start when it holds more stale
 *                       lines than live ones
 *
 * Contract:
 *  - index_open() loads the file, then lists crashes/ (names only): an id
 *    the file does not know, or knows as open, has its record read and
 *    summarised; an id the file knows but the directory lacks is dropped.
 *    A torn or malformed line is skipped (it is only a cache). So the index
 *    is right whatever died in between, and start-up reads only the records
 *    it has to.
 *  - index_update() after each save of a record keeps it current; it never
 *    fails the caller (a failed append is retried by the next start's
 *    reconciliation).
 *  - Summaries are kept sorted by id (= by detection time), oldest first.
 *  - The library never logs; a problem worth telling is counted in
 *    index_stats().
 */
#ifndef PB_INDEX_H
#define PB_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "crash.h"
#include "spool.h"

struct index;

/*
 * Strings are never NULL ("" when the record lacks the field). In an
 * index they point into its pool (interned: a VM name or a title is stored
 * once however many crashes carry it), valid until index_free(); from
 * index_summarise(), into @id and @rec, valid while those are.
 */
struct crash_summary {
	const char *id;
	const char *vm;
	const char *event;          /* GUEST_PANICKED, GUEST_CRASHLOADED, PANIC_RECORD */
	uint64_t detected_usec;     /* CLOCK_REALTIME */
	uint64_t updated_usec;
	enum crash_state state;
	const char *outcome;        /* final_action_result.outcome, or "" */
	const char *kdump;          /* kdump.state, or "" */
	const char *snapshot;       /* snapshot.state, or "" */
	const char *bucket;         /* signature.bucket, or "" */
	const char *title;          /* signature.title, or "" */
	struct be_instance instance; /* vm_instance (pid 0: unknown) */
	uint64_t panic_session;     /* panic.session and .seq, else kdump.crashed_session
				     * (seq 0); 0: neither */
	uint32_t panic_seq;
};

#define INDEX_BAD_KEPT 8

struct index_stats {
	size_t lines_read, lines_bad, records_read, records_bad, dropped;
	uint64_t load_usec;
	/* The first unreadable records, and why: for the daemon to say. */
	char bad_id[INDEX_BAD_KEPT][SPOOL_ID_MAX];
	char bad_why[INDEX_BAD_KEPT][160];
};

/* Errors: negative errno with a reason (an unreadable spool; not a bad index file). */
int index_open(struct spool *s, struct index **ret, char *err, size_t errlen);
void index_free(struct index *x);
void index_update(struct index *x, const struct crash *c);
size_t index_count(const struct index *x);
/* 0 <= i < index_count(): oldest first. */
const struct crash_summary *index_at(const struct index *x, size_t i);
const struct crash_summary *index_find(const struct index *x, const char *id);
void index_stats(const struct index *x, struct index_stats *ret);
/* Fills @ret from a record (also for tests and pbctl); its strings are borrowed. */
void index_summarise(const char *id, json_object *rec, struct crash_summary *ret);

#endif
