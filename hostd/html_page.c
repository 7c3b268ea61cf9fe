// SPDX-License-Identifier: MIT
/*
 * The dashboard's pages (html.h): the crash list, the buckets and a crash's
 * page, drawn from crash summaries and records. Pure: no I/O, no clock.
 * Every byte of a record goes out through html_text() and friends.
 */
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "html.h"
#include "util.h"

static const char html_style[] =
	"body{font:14px/1.4 system-ui,sans-serif;margin:0 1.5em 2em;color:#1b1f24;background:#fff}"
	"nav{padding:.6em 0;border-bottom:1px solid #ccd;margin-bottom:1em}"
	"nav a{margin-right:1.2em;font-weight:600}"
	"a{color:#0550ae;text-decoration:none}a:hover{text-decoration:underline}"
	"table{border-collapse:collapse;width:100%}"
	"th,td{text-align:left;padding:.25em .6em;border-bottom:1px solid #e4e6ea;vertical-align:top}"
	"th{background:#f3f4f6;font-weight:600}"
	"td.t,td.n{white-space:nowrap;font-variant-numeric:tabular-nums}"
	"code,pre{font:12px/1.35 ui-monospace,monospace}"
	"pre{background:#f6f8fa;border:1px solid #e4e6ea;padding:.6em;white-space:pre-wrap;"
	"overflow-wrap:anywhere;max-height:40em;overflow:auto}"
	"mark.guilty{background:#ffd33d;font-weight:700}"
	".st{padding:0 .4em;border-radius:3px;background:#e4e6ea;white-space:nowrap}"
	".st-closed,.st-done,.st-applied,.st-not-needed{background:#d1f0d9}"
	".st-failed,.st-hung,.st-kdump_failed,.st-kdump_timeout,.st-refused{background:#ffd7d5}"
	".st-running,.st-kdump_running,.st-snapshotting,.st-detected,.st-held,.st-starting{background:#fff1c2}"
	".muted{color:#6a737d}.trunc{color:#b35900;font-weight:600}"
	"dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1.2em}dt{font-weight:600}dd{margin:0}"
	".lane{display:flex;align-items:center;margin:.3em 0}"
	".lane b{width:7em;flex:none;font-weight:600}"
	".track{position:relative;flex:1;height:1.2em;background:#f3f4f6;border-radius:3px}"
	".tick{position:absolute;top:0;width:3px;height:1.2em;margin-left:-1px;background:#0550ae}"
	".bar{position:absolute;top:.35em;height:.5em;background:#8cb4ff;border-radius:2px}"
	".tick.bad{background:#cf222e}.tick.good{background:#1a7f37}"
	".axis{display:flex;justify-content:space-between;margin-left:7em;color:#6a737d}"
	".pager a,.pager span{margin-right:1em}";

const char html_page_tail[] = "</main>\n</body>\n</html>\n";

void html_page_begin(struct html *h, const char *title)
{
	html_raw(h, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
		    "<meta http-equiv=\"Content-Security-Policy\" content=\"" HTML_CSP "\">\n"
		    "<meta name=\"viewport\" content=\"width=device-width\">\n<title>");
	html_str(h, title);
	html_raw(h, " - panicbroker</title>\n<style>");
	html_raw(h, html_style);
	html_raw(h, "</style>\n</head>\n<body>\n<nav><a href=\"/\">Crashes</a>"
		    "<a href=\"/buckets\">Buckets</a><span class=\"muted\">panicbroker</span></nav>\n<main>\n");
}

void html_error_page(struct html *h, unsigned int status, const char *phrase)
{
	html_page_begin(h, "Error");
	html_rawf(h, "<h1>%u</h1>\n<p id=\"error\">", status);
	html_str(h, phrase);
	html_raw(h, "</p>\n");
}

/* A state word as a badge; the class only from the word's safe letters. */
static void html_badge(struct html *h, const char *word)
{
	size_t n;

	if (!word || !word[0]) {
		html_raw(h, "<span class=\"muted\">-</span>");
		return;
	}
	n = strspn(word, "abcdefghijklmnopqrstuvwxyz_-");
	html_raw(h, "<span class=\"st");
	if (n == strlen(word) && n < 32)
		html_rawf(h, " st-%s", word);
	html_raw(h, "\">");
	html_str(h, word);
	html_raw(h, "</span>");
}

/* -- the crash list -- */

/* A link to the list with @q's filters, on @page. */
static void html_list_href(struct html *h, const struct html_list_query *q, uint64_t page)
{
	const char *sep = "?";

	html_raw(h, "/");
	if (q->vm) {
		html_raw(h, "?vm=");
		html_url(h, q->vm);
		sep = "&amp;";
	}
	if (q->bucket) {
		html_raw(h, sep);
		html_raw(h, "bucket=");
		html_url(h, q->bucket);
		sep = "&amp;";
	}
	if (page > 1) {
		html_raw(h, sep);
		html_rawf(h, "page=%llu", (unsigned long long)page);
	}
}

static void html_pager(struct html *h, const struct html_list_query *q, size_t total)
{
	uint64_t pages = total ? (total + HTML_PAGE_ROWS - 1) / HTML_PAGE_ROWS : 1;

	html_raw(h, "<p class=\"pager\">");
	if (q->page > 1) {
		html_raw(h, "<a rel=\"prev\" href=\"");
		html_list_href(h, q, q->page - 1);
		html_raw(h, "\">&larr; newer</a>");
	}
	html_rawf(h, "<span>page %llu of %llu</span>", (unsigned long long)q->page,
		  (unsigned long long)pages);
	if (q->page < pages) {
		html_raw(h, "<a rel=\"next\" href=\"");
		html_list_href(h, q, q->page + 1);
		html_raw(h, "\">older &rarr;</a>");
	}
	html_raw(h, "</p>\n");
}

static void html_crash_row(struct html *h, const struct crash_summary *s)
{
	html_raw(h, "<tr class=\"crash\" data-id=\"");
	html_str(h, s->id);
	html_raw(h, "\"><td class=\"t\"><a href=\"/crashes/");
	html_url(h, s->id);
	html_raw(h, "\">");
	html_time(h, s->detected_usec);
	html_raw(h, "</a></td><td><a href=\"/?vm=");
	html_url(h, s->vm);
	html_raw(h, "\">");
	html_str(h, s->vm);
	html_raw(h, "</a></td><td class=\"sig\">");
	if (s->title[0])
		html_str(h, s->title);
	else
		html_raw(h, "<span class=\"muted\">no signature</span>");
	if (html_bucket_is_valid(s->bucket)) {
		html_rawf(h, " <a class=\"muted\" href=\"/?bucket=%s\">#%.6s</a>", s->bucket,
			  s->bucket);
	}
	html_raw(h, "</td><td>");
	html_str(h, s->event);
	html_raw(h, "</td><td>");
	html_badge(h, crash_state_to_string(s->state));
	html_raw(h, "</td><td>");
	html_badge(h, s->kdump);
	html_raw(h, "</td><td>");
	html_badge(h, s->snapshot);
	html_raw(h, "</td><td>");
	html_badge(h, s->outcome);
	html_raw(h, "</td></tr>\n");
}

void html_crash_list(struct html *h, const struct html_list_query *q,
		     const struct crash_summary *const *rows, size_t n_rows,
		     size_t total, size_t n_open)
{
	html_raw(h, "<h1>Crashes</h1>\n<p class=\"summary\">");
	html_rawf(h, "<span id=\"total\">%zu</span> crash%s", total, total == 1 ? "" : "es");
	if (q->vm) {
		html_raw(h, " of VM <b>");
		html_str(h, q->vm);
		html_raw(h, "</b>");
	}
	if (q->bucket)
		html_rawf(h, " in bucket <code>%s</code>", q->bucket);
	if (q->vm || q->bucket)
		html_raw(h, " (<a href=\"/\">all crashes</a>)");
	html_rawf(h, "; <span id=\"open\">%zu</span> open.</p>\n", n_open);
	html_pager(h, q, total);
	html_raw(h, "<table id=\"crashes\">\n<thead><tr><th>Detected (UTC)</th><th>VM</th>"
		    "<th>Signature</th><th>Event</th><th>State</th><th>kdump</th>"
		    "<th>Snapshot</th><th>Final action</th></tr></thead>\n<tbody>\n");
	for (size_t i = 0; i < n_rows; i++)
		html_crash_row(h, rows[i]);
	if (n_rows == 0)
		html_raw(h, "<tr><td colspan=\"8\" class=\"muted\">No crashes here.</td></tr>\n");
	html_raw(h, "</tbody>\n</table>\n");
	if (n_rows > 10)
		html_pager(h, q, total);
}

/* -- buckets -- */

void html_buckets_init(struct html_buckets *bs)
{
	*bs = (struct html_buckets){ 0 };
}

void html_buckets_done(struct html_buckets *bs)
{
	free(bs->b);
	free(bs->slots);
	*bs = (struct html_buckets){ 0 };
}

/* The digits are a hash already: a multiplicative mix spreads them. */
static size_t html_bucket_slot(uint64_t key, size_t n_slots)
{
	return (size_t)((key * 0x9e3779b97f4a7c15ULL) >> 32) & (n_slots - 1);
}

static int html_buckets_grow(struct html_buckets *bs)
{
	size_t n_slots = bs->n_slots ? bs->n_slots * 2 : 1024;
	size_t cap = n_slots / 2;
	struct html_bucket *b;
	uint32_t *slots;

	b = realloc(bs->b, cap * sizeof(*b));
	if (!b)
		return -ENOMEM;
	bs->b = b;
	bs->cap = cap;
	slots = calloc(n_slots, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < bs->n; i++) {
		size_t k = html_bucket_slot(bs->b[i].key, n_slots);

		while (slots[k])
			k = (k + 1) & (n_slots - 1);
		slots[k] = (uint32_t)(i + 1);
	}
	free(bs->slots);
	bs->slots = slots;
	bs->n_slots = n_slots;
	return 0;
}

int html_buckets_add(struct html_buckets *bs, const struct crash_summary *s)
{
	struct html_bucket *b;
	uint64_t key;
	size_t k;
	int r;

	bs->total++;
	if (!html_bucket_parse(s->bucket, &key)) {
		bs->unsigned_count++;
		return 0;
	}
	if (bs->n >= bs->cap) {
		r = html_buckets_grow(bs);
		if (r < 0)
			return r;
	}
	k = html_bucket_slot(key, bs->n_slots);
	while (bs->slots[k] && bs->b[bs->slots[k] - 1].key != key)
		k = (k + 1) & (bs->n_slots - 1);
	if (!bs->slots[k]) {
		bs->b[bs->n] = (struct html_bucket){ .key = key, .last = s,
						     .first_usec = s->detected_usec,
						     .last_usec = s->detected_usec };
		bs->slots[k] = (uint32_t)++bs->n;
	}
	b = &bs->b[bs->slots[k] - 1];
	b->count++;
	if (s->detected_usec < b->first_usec)
		b->first_usec = s->detected_usec;
	if (s->detected_usec > b->last_usec) {
		/* The latest crash names the bucket: titles of one bucket differ
		 * only where the kind's detail was folded. */
		b->last_usec = s->detected_usec;
		b->last = s;
	}
	return 0;
}

static int html_bucket_cmp(const void *a, const void *b)
{
	const struct html_bucket *x = a, *y = b;

	if (x->last_usec != y->last_usec)
		return x->last_usec > y->last_usec ? -1 : 1;
	return x->key < y->key ? -1 : x->key > y->key;
}

void html_buckets_sort(struct html_buckets *bs)
{
	if (bs->n > 1)
		qsort(bs->b, bs->n, sizeof(*bs->b), html_bucket_cmp);
	/* The slots point at the old order: no more adds after a sort. */
	free(bs->slots);
	bs->slots = NULL;
	bs->n_slots = 0;
	bs->cap = bs->n;
}

void html_buckets_table(struct html *h, const struct html_buckets *bs, size_t max)
{
	size_t n = bs->n < max ? bs->n : max;

	html_rawf(h, "<p class=\"summary\"><span id=\"n-buckets\">%zu</span> bucket%s over %zu crash%s",
		  bs->n, bs->n == 1 ? "" : "s", bs->total, bs->total == 1 ? "" : "es");
	if (bs->unsigned_count)
		html_rawf(h, "; %zu without a signature", bs->unsigned_count);
	html_raw(h, ". Most recently seen first.</p>\n<table id=\"buckets\">\n<thead><tr>"
		    "<th>Bucket</th><th>Signature</th><th>Crashes</th><th>First seen (UTC)</th>"
		    "<th>Last seen (UTC)</th><th>Last crash</th></tr></thead>\n<tbody>\n");
	for (size_t i = 0; i < n; i++) {
		const struct html_bucket *b = &bs->b[i];
		char hex[17];

		snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)b->key);
		html_rawf(h, "<tr class=\"bucket\" data-bucket=\"%s\"><td><a href=\"/?bucket=%s\"><code>%s</code></a></td><td>",
			  hex, hex, hex);
		html_str(h, b->last->title);
		html_rawf(h, "</td><td class=\"n\">%zu</td><td class=\"t\">", b->count);
		html_time(h, b->first_usec);
		html_raw(h, "</td><td class=\"t\">");
		html_time(h, b->last_usec);
		html_raw(h, "</td><td><a href=\"/crashes/");
		html_url(h, b->last->id);
		html_raw(h, "\">");
		html_str(h, b->last->vm);
		html_raw(h, "</a></td></tr>\n");
	}
	html_raw(h, "</tbody>\n</table>\n");
	if (bs->n > n)
		html_rawf(h, "<p class=\"muted\">%zu older buckets not shown.</p>\n", bs->n - n);
}
