// SPDX-License-Identifier: MIT
/*
 * The dashboard's routes (api_html.h): the query checked, the index walked,
 * the page drawn by html_page.c / html_crash.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "api_html.h"
#include "common.h"
#include "html.h"
#include "spool.h"
#include "util.h"

#define API_HTML_TYPE "text/html; charset=utf-8"
/* The list's page numbers: far past 100,000 / 50. */
#define API_HTML_PAGE_MAX 1000000
/* The first page of the list sketches the buckets of the latest crashes:
 * what crashes lately, at a bounded cost (/buckets counts them all). */
#define API_HTML_TOP_BUCKETS 10
#define API_HTML_SKETCH_CRASHES 1000

struct api_html {
	struct spool *spool;
	const struct index *idx;
};

/* The page in @h (consumed) as the response. */
static int api_html_reply(struct api_response *resp, unsigned int status, struct html *h)
{
	char *body;
	size_t len;
	int r;

	r = html_take(h, html_page_tail, &body, &len);
	if (r < 0)
		return r;
	free(resp->body);
	*resp = (struct api_response){
		.status = status,
		.content_type = API_HTML_TYPE,
		.body = body,
		.body_len = len,
		.header_name = "Content-Security-Policy",
		.header_value = HTML_CSP,
	};
	return 0;
}

static int api_html_error(struct api_response *resp, unsigned int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int api_html_error(struct api_response *resp, unsigned int status, const char *fmt, ...)
{
	struct html h;
	char phrase[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(phrase, sizeof(phrase), fmt, ap);
	va_end(ap);
	html_init(&h, HTML_MAX_BYTES);
	html_error_page(&h, status, phrase);
	return api_html_reply(resp, status, &h);
}

/* api_request_check_query() answers in JSON: the dashboard answers in HTML. */
static int api_html_check_query(const struct api_request *rq, const char *const *allowed,
				size_t n, struct api_response *resp)
{
	int r = api_request_check_query(rq, allowed, n, resp);

	if (r == -EINVAL) {
		r = api_html_error(resp, 400, "unknown or repeated query parameter");
		return r < 0 ? r : -EINVAL;
	}
	return r;
}

/* -- GET / -- */

static bool api_html_matches(const struct crash_summary *s, const struct html_list_query *q)
{
	return (!q->vm || strcmp(s->vm, q->vm) == 0) &&
	       (!q->bucket || strcmp(s->bucket, q->bucket) == 0);
}

/* The first page's sketch of the buckets: those of the latest crashes. */
static int api_html_top_buckets(struct api_html *ah, struct html *h)
{
	size_t n = index_count(ah->idx);
	size_t from = n > API_HTML_SKETCH_CRASHES ? n - API_HTML_SKETCH_CRASHES : 0;
	struct html_buckets bs;
	int r = 0;

	html_buckets_init(&bs);
	for (size_t i = from; i < n && r == 0; i++)
		r = html_buckets_add(&bs, index_at(ah->idx, i));
	if (r == 0 && bs.n) {
		html_buckets_sort(&bs);
		html_rawf(h, "<h2>Buckets of the latest %zu crashes (<a href=\"/buckets\">all buckets</a>)</h2>\n",
			  n - from);
		html_buckets_table(h, &bs, API_HTML_TOP_BUCKETS);
	}
	html_buckets_done(&bs);
	return r;
}

static int api_html_index(const struct api_request *rq, struct api_response *resp, void *ud)
{
	static const char *const allowed[] = { "vm", "bucket", "page" };
	const struct crash_summary *rows[HTML_PAGE_ROWS];
	struct api_html *ah = ud;
	struct html_list_query q = { .page = 1 };
	size_t n = index_count(ah->idx), skip, total = 0, n_rows = 0, n_open = 0;
	const char *page;
	struct html h;
	int r;

	r = api_html_check_query(rq, allowed, ARRAY_SIZE(allowed), resp);
	if (r < 0)
		return r == -EINVAL ? 0 : r;
	q.vm = api_request_query(rq, "vm");
	if (q.vm && !name_is_valid(q.vm))
		return api_html_error(resp, 400, "vm must be a VM name");
	q.bucket = api_request_query(rq, "bucket");
	if (q.bucket && !html_bucket_is_valid(q.bucket))
		return api_html_error(resp, 400, "bucket must be 16 hexadecimal digits");
	page = api_request_query(rq, "page");
	if (page && parse_u64(page, 1, API_HTML_PAGE_MAX, &q.page) < 0)
		return api_html_error(resp, 400, "page must be a whole number from 1 to %d",
				      API_HTML_PAGE_MAX);
	/* One pass from the newest: the page's rows, the matches, the open
	 * ones. Memory only: about a millisecond for 100,000 summaries. */
	skip = (size_t)(q.page - 1) * HTML_PAGE_ROWS;
	for (size_t i = n; i-- > 0;) {
		const struct crash_summary *s = index_at(ah->idx, i);

		if (!api_html_matches(s, &q))
			continue;
		if (total >= skip && n_rows < HTML_PAGE_ROWS)
			rows[n_rows++] = s;
		total++;
		if (s->state != CRASH_CLOSED)
			n_open++;
	}
	html_init(&h, HTML_MAX_BYTES);
	html_page_begin(&h, "Crashes");
	html_crash_list(&h, &q, rows, n_rows, total, n_open);
	if (q.page == 1 && !q.vm && !q.bucket) {
		r = api_html_top_buckets(ah, &h);
		if (r < 0) {
			html_done(&h);
			return r;
		}
	}
	return api_html_reply(resp, 200, &h);
}

/* -- GET /buckets -- */

static int api_html_buckets(const struct api_request *rq, struct api_response *resp, void *ud)
{
	struct api_html *ah = ud;
	struct html_buckets bs;
	struct html h;
	int r = 0;

	r = api_html_check_query(rq, NULL, 0, resp);
	if (r < 0)
		return r == -EINVAL ? 0 : r;
	html_buckets_init(&bs);
	for (size_t i = 0; i < index_count(ah->idx) && r == 0; i++)
		r = html_buckets_add(&bs, index_at(ah->idx, i));
	if (r < 0) {
		html_buckets_done(&bs);
		return r;
	}
	html_buckets_sort(&bs);
	html_init(&h, HTML_MAX_BYTES);
	html_page_begin(&h, "Buckets");
	html_raw(&h, "<h1>Buckets</h1>\n");
	html_buckets_table(&h, &bs, HTML_BUCKETS_MAX);
	html_buckets_done(&bs);
	return api_html_reply(resp, 200, &h);
}

/* -- GET /crashes/ID -- */

static int api_html_crash(const struct api_request *rq, struct api_response *resp, void *ud)
{
	struct api_html *ah = ud;
	const char *id = rq->path_rest;
	json_object *rec;
	char err[256];
	struct html h;
	int r;

	r = api_html_check_query(rq, NULL, 0, resp);
	if (r < 0)
		return r == -EINVAL ? 0 : r;
	if (!spool_id_is_valid(id))
		return api_html_error(resp, 400, "not a crash id");
	r = spool_read_record(ah->spool, id, &rec, err, sizeof(err));
	if (r == -ENOENT)
		return api_html_error(resp, 404, "no crash %s", id);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return api_html_error(resp, 500, "%s", err);
	if (!json_object_is_type(rec, json_type_object)) {
		json_object_put(rec);
		return api_html_error(resp, 500, "the record of %s is not a JSON object", id);
	}
	html_init(&h, HTML_MAX_BYTES);
	html_crash_page(&h, id, rec, spool_path(ah->spool));
	json_object_put(rec);
	return api_html_reply(resp, 200, &h);
}

/* -- the table -- */

int api_html_new(struct api *a, struct spool *spool, const struct index *idx,
		 struct api_html **ret)
{
	struct api_html *ah;
	int r;

	if (!spool || !idx)
		return -EINVAL;
	ah = calloc(1, sizeof(*ah));
	if (!ah)
		return -ENOMEM;
	*ah = (struct api_html){ .spool = spool, .idx = idx };
	*ret = ah;
	r = api_add_route(a, "GET", "/", api_html_index, ah);
	if (r == 0)
		r = api_add_route(a, "GET", "/buckets", api_html_buckets, ah);
	if (r == 0)
		r = api_add_route(a, "GET", "/crashes/*", api_html_crash, ah);
	/* Failed or not, routes may point at @ah: it goes after the api. */
	return r;
}

void api_html_free(struct api_html *h)
{
	free(h);
}
