/* SPDX-License-Identifier: MIT */
/*
 * HTML for the dashboard (api_html.c): a capped output buffer that escapes
 * what it is given, and the pages built on it (html_page.c), pure functions
 * of crash summaries and records, with no I/O.
 *
 * Contract:
 *  - Everything that comes from a record or a query goes through
 *    html_text() / html_str() / html_url(): the guest is hostile, its text
 *    may hold markup, quotes, NULs, invalid UTF-8 and megabyte lines.
 *    html_text() writes & < > " ' as entities (safe in text and in quoted
 *    attribute values), keeps valid UTF-8, newline and tab, and turns every
 *    other control byte and every invalid UTF-8 byte into U+FFFD.
 *  - html_raw() / html_rawf() are for the pages' own markup and numbers only.
 *  - The buffer never grows past its cap: what does not fit is dropped
 *    (whole entities only) and html_truncated() says so; html_take() then
 *    adds a notice and the closing tags regardless of the cap.
 *  - Allocation failure is sticky: every later call is a no-op and
 *    html_take() returns -ENOMEM. So page code checks once, at the end.
 */
#ifndef PB_HTML_H
#define PB_HTML_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "index.h"

/* A page's cap: far above any page the dashboard draws (a crash's page with
 * a 128 KiB log tail in the worst escaping is about 1 MiB). */
#define HTML_MAX_BYTES (2u * 1024 * 1024)
/* Crashes on one page of the list. */
#define HTML_PAGE_ROWS 50
/* The log tail shown on a crash's page: its last this many bytes. */
#define HTML_LOG_MAX_BYTES (128u * 1024)
/* Buckets on /buckets; the rest are counted. */
#define HTML_BUCKETS_MAX 500
/* Every page's policy, as a header and in its head: no script, no fetch of
 * anything, so markup that got past the escaping still could not run. */
#define HTML_CSP "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; form-action 'self'"

struct html {
	char *buf;
	size_t len, cap, max;
	bool truncated;
	int error;
};

void html_init(struct html *h, size_t max);
void html_done(struct html *h);
bool html_truncated(const struct html *h);
/* The page's own markup, as is. */
void html_raw(struct html *h, const char *markup);
void html_rawf(struct html *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Untrusted text, escaped: @len bytes (NULs included). */
void html_text(struct html *h, const char *s, size_t len);
/* A C string, escaped; NULL writes nothing. */
void html_str(struct html *h, const char *s);
/* A json string's bytes, all of them (json-c strings may hold NULs), escaped;
 * anything else (absent, null, a number...) as @dflt, trusted markup. */
void html_json_str(struct html *h, json_object *v, const char *dflt);
/* A query value: every byte but [A-Za-z0-9._~-] as %XX (safe in attributes too). */
void html_url(struct html *h, const char *s);
/* @usec since the epoch as "2026-11-24 20:41:55" (UTC), "-" for 0. */
void html_time(struct html *h, uint64_t usec);
/* A span: "850 ms", "12.3 s", "4 min 5 s", "3 h 2 min", "2 d 4 h". */
void html_duration(struct html *h, uint64_t usec);
/*
 * Closes the page (with a notice if it was truncated): @tail is the page's
 * closing markup. Hands the buffer over (NUL-terminated). -ENOMEM.
 */
int html_take(struct html *h, const char *tail, char **ret, size_t *ret_len);

/* -- the pages (html_page.c) -- */

/* The head, the style and the navigation; @title is untrusted. */
void html_page_begin(struct html *h, const char *title);
/* The closing markup for html_take(). */
extern const char html_page_tail[];

/* The crash list's filter and position, already checked. */
struct html_list_query {
	const char *vm;		/* NULL: any */
	const char *bucket;	/* NULL: any */
	uint64_t page;		/* from 1 */
};

/* A list page: @rows (newest first) of @total matches. */
void html_crash_list(struct html *h, const struct html_list_query *q,
		     const struct crash_summary *const *rows, size_t n_rows,
		     size_t total, size_t n_open);

struct html_bucket {
	uint64_t key;				/* the bucket's 16 digits */
	const struct crash_summary *last;	/* its latest crash: title, id, VM */
	size_t count;
	uint64_t first_usec, last_usec;
};

/*
 * Crashes counted by bucket, in a table that grows; no bucket: unsigned.
 * It points into the summaries added: they must outlive it (an index's,
 * within one request on the loop).
 */
struct html_buckets {
	struct html_bucket *b;
	size_t n, cap;
	uint32_t *slots;	/* open addressing: index + 1, 0 empty */
	size_t n_slots;
	size_t unsigned_count;
	size_t total;
};

void html_buckets_init(struct html_buckets *bs);
void html_buckets_done(struct html_buckets *bs);
/* -ENOMEM; the summary's bucket must be 16 hexadecimal digits, else it
 * counts as unsigned. */
int html_buckets_add(struct html_buckets *bs, const struct crash_summary *s);
/* Most recently seen first. */
void html_buckets_sort(struct html_buckets *bs);
/* At most @max rows, then "N more". */
void html_buckets_table(struct html *h, const struct html_buckets *bs, size_t max);

/*
 * A crash's page from its record: @spool_path for the snapshot's path on
 * the host (shown, never linked: memory dumps are not served).
 */
void html_crash_page(struct html *h, const char *id, json_object *rec,
		     const char *spool_path);

/* An error page: @status and a phrase (untrusted). */
void html_error_page(struct html *h, unsigned int status, const char *phrase);

/* Whether @s is a signature bucket: 16 lowercase hexadecimal digits. */
bool html_bucket_is_valid(const char *s);
/* The same, and its value in @ret. */
bool html_bucket_parse(const char *s, uint64_t *ret);

#endif
