// SPDX-License-Identifier: MIT
/*
 * Unit tests: the dashboard's HTML (hostd/html.h): escaping, the cap, and
 * the pages drawn from summaries and records, hostile ones above all. Every
 * page is checked to hold only the tags the pages write, with no handler or
 * script URL in any of them, whatever the record said.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>

#include "common.h"
#include "html.h"
#include "strpool.h"
#include "util.h"

/* The page's text: html_take() with no tail, the caller frees. */
static char *take(struct html *h, size_t *ret_len)
{
	char *s = NULL;
	size_t len = 0;

	assert_int_equal(html_take(h, "", &s, &len), 0);
	if (ret_len)
		*ret_len = len;
	return s ? s : strdup("");
}

static char *escaped(const char *s, size_t len)
{
	struct html h;

	html_init(&h, HTML_MAX_BYTES);
	html_text(&h, s, len);
	return take(&h, NULL);
}

/*
 * Only the pages' own tags and attributes (every value quoted), links only
 * to the dashboard's own paths, no script anywhere outside attribute values
 * (where it is inert text).
 */
static void assert_tags_known(const char *page)
{
	static const char *const known[] = {
		"!DOCTYPE", "html", "head", "meta", "title", "style", "body", "nav", "a",
		"span", "main", "h1", "h2", "p", "b", "code", "table", "thead", "tbody", "tr",
		"th", "td", "pre", "mark", "dl", "dt", "dd", "div", "ul", "li",
	};
	static const char *const attrs[] = {
		"class", "id", "href", "style", "title", "rel", "data-id", "data-bucket",
		"lang", "charset", "http-equiv", "content", "name", "colspan",
	};

	assert_null(strcasestr(page, "<script"));
	for (const char *p = strchr(page, '<'); p; p = strchr(p, '<')) {
		const char *name = p + 1 + (p[1] == '/');
		size_t n = strcspn(name, " >\n");
		bool ok = false;

		for (size_t i = 0; i < ARRAY_SIZE(known); i++)
			ok |= strlen(known[i]) == n && strncmp(name, known[i], n) == 0;
		if (!ok)
			fail_msg("unexpected tag at: %.60s", p);
		p = name + n;
		if (strncmp(name, "!DOCTYPE", 8) == 0)
			p = strchr(p, '>');
		/* Attributes: NAME="VALUE", the value up to the next quote. */
		while (*p == ' ') {
			const char *a = p + 1, *eq = strchr(a, '='), *end;
			bool known_attr = false;

			assert_non_null(eq);
			assert_int_equal(eq[1], '"');
			for (size_t i = 0; i < ARRAY_SIZE(attrs); i++)
				known_attr |= strlen(attrs[i]) == (size_t)(eq - a) &&
					      strncmp(a, attrs[i], (size_t)(eq - a)) == 0;
			if (!known_attr)
				fail_msg("unexpected attribute at: %.60s", a);
			end = strchr(eq + 2, '"');
			assert_non_null(end);
			if (strncmp(a, "href", 4) == 0 && eq[2] != '/' && eq[2] != '#')
				fail_msg("a link off the dashboard: %.60s", a);
			if (memchr(eq + 2, '<', (size_t)(end - eq - 2)))
				fail_msg("a raw '<' in an attribute: %.60s", a);
			p = end + 1;
		}
		assert_non_null(p);
		assert_int_equal(*p, '>');
	}
}

static void test_escape_markup(void **state)
{
	const char s[] = "<script>alert(\"x\" + 'y')</script> & done";
	char *out;

	(void)state;
	out = escaped(s, sizeof(s) - 1);
	assert_string_equal(out, "&lt;script&gt;alert(&quot;x&quot; + &#39;y&#39;)&lt;/script&gt; &amp; done");
	free(out);
}

static void test_escape_controls_and_utf8(void **state)
{
	char *out;

	(void)state;
	/* NUL, other controls and DEL are replaced; newline and tab stay. */
	out = escaped("a\0b\x01" "c\x7f\td\ne\r", 11);
	assert_string_equal(out, "a&#xFFFD;b&#xFFFD;c&#xFFFD;\td\ne&#xFFFD;");
	free(out);
	/* Valid UTF-8 stays as it is. */
	out = escaped("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14);
	assert_string_equal(out, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	free(out);
	/* Overlong, surrogate, stray continuation, cut sequence, 0xff. */
	out = escaped("\xc0\xaf|\xed\xa0\x80|\x80|\xff|\xe2\x82", 13);
	assert_string_equal(out, "&#xFFFD;&#xFFFD;|&#xFFFD;&#xFFFD;&#xFFFD;|&#xFFFD;|&#xFFFD;|"
				 "&#xFFFD;&#xFFFD;");
	free(out);
}

static void test_url_and_time(void **state)
{
	struct html h;
	char *out;

	(void)state;
	html_init(&h, HTML_MAX_BYTES);
	html_url(&h, "a b/&\"<x>-._~");
	html_raw(&h, "|");
	html_time(&h, 1764598689123456ULL); /* 2025-12-01T14:18:09.123456Z */
	html_raw(&h, "|");
	html_time(&h, 0);
	html_raw(&h, "|");
	html_duration(&h, 850 * USEC_PER_MSEC);
	html_raw(&h, "|");
	html_duration(&h, 12300 * USEC_PER_MSEC);
	html_raw(&h, "|");
	html_duration(&h, 245 * USEC_PER_SEC);
	out = take(&h, NULL);
	assert_string_equal(out, "a%20b%2F%26%22%3Cx%3E-._~|2025-12-01 14:18:09|-|850 ms|12.3 s|4 min 5 s");
	free(out);
	assert_true(html_bucket_is_valid("3f6a58ad265b2113"));
	assert_false(html_bucket_is_valid("3F6A58AD265B2113"));
	assert_false(html_bucket_is_valid("3f6a58ad265b211"));
	assert_false(html_bucket_is_valid("3f6a58ad265b2113\"><"));
}

static void test_cap_keeps_whole_entities(void **state)
{
	char in[100], *out;
	struct html h;
	size_t len;

	(void)state;
	memset(in, '<', sizeof(in));
	html_init(&h, 22);
	html_text(&h, in, sizeof(in));
	assert_true(html_truncated(&h));
	html_raw(&h, "more"); /* dropped: the page is past its cap */
	assert_int_equal(h.len, 20); /* five whole "&lt;" */
	assert_int_equal(html_take(&h, "</end>", &out, &len), 0);
	assert_int_equal(strncmp(out, "&lt;&lt;&lt;&lt;&lt;\n<p class=\"trunc\">", 37), 0);
	assert_non_null(strstr(out, "cut at its size limit"));
	assert_int_equal(strcmp(out + len - 6, "</end>"), 0);
	free(out);
}

/* -- the list and the buckets -- */

/* The strings of the summaries the tests make: kept until the end of the run. */
static struct strpool t_pool = STRPOOL_INIT;

static const char *t_str(const char *s)
{
	const char *k = strpool_intern(&t_pool, s);

	assert_non_null(k);
	return k;
}

static void summary(struct crash_summary *s, const char *id, const char *vm,
		    uint64_t usec, const char *bucket, const char *title)
{
	*s = (struct crash_summary){
		.detected_usec = usec, .state = CRASH_CLOSED,
		.id = t_str(id), .vm = t_str(vm), .bucket = t_str(bucket), .title = t_str(title),
		.event = "GUEST_PANICKED", .kdump = "done", .outcome = "applied", .snapshot = "",
	};
}

static void test_crash_list(void **state)
{
	struct crash_summary s[2];
	const struct crash_summary *rows[] = { &s[0], &s[1] };
	struct html_list_query q = { .vm = "web1", .page = 2 };
	struct html h;
	char *out;

	(void)state;
	summary(&s[0], "20261201T141809.029244Z-web1", "web1", 1764598689000000ULL,
		"3f6a58ad265b2113", "BUG: <script>alert(1)</script> in \"foo\"");
	summary(&s[1], "20261201T141700.000000Z-web1", "web1", 1764598620000000ULL, "", "");
	s[1].state = CRASH_KDUMP_RUNNING;
	html_init(&h, HTML_MAX_BYTES);
	html_page_begin(&h, "Crashes");
	html_crash_list(&h, &q, rows, 2, 120, 1);
	assert_false(html_truncated(&h));
	out = take(&h, NULL);
	assert_tags_known(out);
	assert_non_null(strstr(out, "<span id=\"total\">120</span> crashes of VM <b>web1</b>"));
	assert_non_null(strstr(out, "BUG: &lt;script&gt;alert(1)&lt;/script&gt; in &quot;foo&quot;"));
	assert_non_null(strstr(out, "data-id=\"20261201T141809.029244Z-web1\""));
	assert_non_null(strstr(out, "href=\"/crashes/20261201T141809.029244Z-web1\""));
	assert_non_null(strstr(out, "<a href=\"/?bucket=3f6a58ad265b2113\" class") ||
			strstr(out, "href=\"/?bucket=3f6a58ad265b2113\">#3f6a58</a>"));
	assert_non_null(strstr(out, "no signature"));
	assert_non_null(strstr(out, "st-kdump_running"));
	/* Page 2 of 3: both ways, the filter kept. */
	assert_non_null(strstr(out, "page 2 of 3"));
	assert_non_null(strstr(out, "href=\"/?vm=web1\">&larr; newer"));
	assert_non_null(strstr(out, "href=\"/?vm=web1&amp;page=3\">older"));
	free(out);
}

static void test_buckets(void **state)
{
	struct crash_summary *s = calloc(3002, sizeof(*s));
	struct html_buckets bs;
	struct html h;
	char *out;

	(void)state;
	assert_non_null(s);
	html_buckets_init(&bs);
	/* 3000 crashes over 1500 buckets: the table grows and rehashes. */
	for (unsigned int i = 0; i < 3000; i++) {
		char id[64], bucket[24];

		snprintf(id, sizeof(id), "20261201T%06u.000000Z-vm%u", i, i % 7);
		snprintf(bucket, sizeof(bucket), "%016x", i % 1500);
		summary(&s[i], id, "vm", 1000000ULL * (i + 1), bucket, "title <i>");
		assert_int_equal(html_buckets_add(&bs, &s[i]), 0);
	}
	summary(&s[3000], "x", "vm", 5, "", "");
	assert_int_equal(html_buckets_add(&bs, &s[3000]), 0);
	summary(&s[3001], "y", "vm", 6, "not-a-bucket", "");
	assert_int_equal(html_buckets_add(&bs, &s[3001]), 0);
	assert_int_equal(bs.n, 1500);
	assert_int_equal(bs.unsigned_count, 2);
	assert_int_equal(bs.total, 3002);
	html_buckets_sort(&bs);
	/* Seen last first: bucket 1499's last crash is the 3000th. */
	assert_int_equal(bs.b[0].key, 1499);
	assert_int_equal(bs.b[0].count, 2);
	assert_int_equal(bs.b[0].first_usec, 1500000000ULL);
	assert_int_equal(bs.b[0].last_usec, 3000000000ULL);
	assert_ptr_equal(bs.b[0].last, &s[2999]);
	html_init(&h, HTML_MAX_BYTES);
	html_page_begin(&h, "Buckets");
	html_buckets_table(&h, &bs, 10);
	out = take(&h, NULL);
	assert_tags_known(out);
	assert_non_null(strstr(out, "<span id=\"n-buckets\">1500</span> buckets over 3002 crashes; 2 without a signature"));
	assert_non_null(strstr(out, "<tr class=\"bucket\" data-bucket=\"00000000000005db\"><td><a href=\"/?bucket=00000000000005db\">"));
	assert_non_null(strstr(out, "title &lt;i&gt;"));
	assert_non_null(strstr(out, "href=\"/crashes/20261201T002999.000000Z-vm3\""));
	assert_non_null(strstr(out, "1490 older buckets not shown"));
	free(out);
	html_buckets_done(&bs);
	free(s);
}

/* -- a crash's page -- */

static json_object *record(const char *json)
{
	json_object *rec = json_tokener_parse(json);

	assert_non_null(rec);
	return rec;
}

static const char crash_json[] =
	"{\"id\":\"20261201T141809.029244Z-vm1\",\"vm\":\"vm1\",\"event\":\"GUEST_CRASHLOADED\","
	"\"detected_at\":\"2026-12-01T14:18:09.029244Z\",\"state\":\"closed\","
	"\"final_action\":\"restart\",\"final_action_result\":{\"outcome\":\"not-needed\","
	"\"detail\":\"the kdump kernel rebooted the guest itself\",\"at\":\"2026-12-01T14:18:22.292806Z\"},"
	"\"history\":[{\"at\":\"2026-12-01T14:18:09.029415Z\",\"state\":\"detected\",\"reason\":\"QMP event\"},"
	"{\"at\":\"2026-12-01T14:18:22.292778Z\",\"state\":\"closed\",\"reason\":\"final action restart\"}],"
	"\"kdump\":{\"state\":\"done\",\"session_at\":\"2026-12-01T14:18:22.160023Z\","
	"\"finished_at\":\"2026-12-01T14:18:22.259987Z\",\"reports\":["
	"{\"at\":\"2026-12-01T14:18:22.229960Z\",\"state\":\"start\",\"percent\":0},"
	"{\"at\":\"2026-12-01T14:18:22.239983Z\",\"state\":\"progress\",\"percent\":50},"
	"{\"at\":\"2026-12-01T14:18:22.259987Z\",\"state\":\"done\",\"percent\":100}]},"
	"\"snapshot\":{\"state\":\"done\",\"path\":\"vmcore\",\"format\":\"kdump-zlib\"},"
	"\"panic\":{\"message\":\"Kernel panic - not syncing: Fatal exception\","
	"\"log_tail\":\"[ 1.0] BUG: kernel NULL pointer dereference\\n"
	"[ 1.1] RIP: 0010:foo_probe+0x12/0x40 [foo]\\n[ 1.2]  foo_probe_helper+0x1/0x2\\n"
	"[ 1.3]  do_one_initcall+0x1/0x2\\n\"},"
	"\"signature\":{\"title\":\"BUG: kernel NULL pointer dereference in foo_probe\","
	"\"kind\":\"null-deref\",\"guilty_frame\":\"foo_probe\",\"guilty_module\":\"foo\","
	"\"bucket\":\"0123456789abcdef\",\"from\":\"panic record\"}}";

static void test_crash_page(void **state)
{
	json_object *rec = record(crash_json);
	struct html h;
	char *out, *mark, *ev;

	(void)state;
	html_init(&h, HTML_MAX_BYTES);
	html_crash_page(&h, "20261201T141809.029244Z-vm1", rec, "/var/lib/panicbroker");
	json_object_put(rec);
	out = take(&h, NULL);
	assert_tags_known(out);
	assert_non_null(strstr(out, "<h1 id=\"title\">BUG: kernel NULL pointer dereference in foo_probe</h1>"));
	/* The guilty frame's line is marked, not the helper's that only starts alike. */
	mark = strstr(out, "<mark class=\"guilty\" id=\"guilty\">");
	assert_non_null(mark);
	assert_int_equal(strncmp(mark + 33, "[ 1.1] RIP: 0010:foo_probe+0x12/0x40 [foo]</mark>", 49), 0);
	mark = strstr(mark + 1, "<mark");
	assert_non_null(mark);
	assert_int_equal(strncmp(mark, "<mark class=\"guilty\" id=\"guilty-in-log\">[ 1.1] RIP", 50), 0);
	assert_null(strstr(mark + 1, "<mark"));
	assert_non_null(strstr(out, "<pre id=\"excerpt\">[ 1.0] BUG"));
	/* The timeline: lanes, the reports in order, offsets from detection. */
	assert_non_null(strstr(out, "id=\"lane-kdump\""));
	assert_non_null(strstr(out, "class=\"bar\""));
	ev = strstr(out, "<table id=\"events\">");
	assert_non_null(ev);
	assert_true(strstr(ev, "report: start") < strstr(ev, "report: progress 50%"));
	assert_true(strstr(ev, "report: progress 50%") < strstr(ev, "report: done"));
	assert_non_null(strstr(out, "<td class=\"n\">+13.3 s</td><td>crash</td><td>final action: not-needed"));
	/* The decisions; the dump's path on the host, as text, no link. */
	assert_non_null(strstr(out, "<td>final action restart</td>"));
	assert_non_null(strstr(out, "<code id=\"snapshot-path\">/var/lib/panicbroker/crashes/20261201T141809.029244Z-vm1/vmcore</code>"));
	assert_null(strstr(out, "href=\"/var"));
	assert_null(strstr(out, "vmcore\""));
	free(out);
}

/* Everything the guest (or a hand-made record) could put in: markup in
 * every field, quotes, NULs, megabyte lines, wrong types. */
static void test_crash_page_hostile(void **state)
{
	const char *evil = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'><iframe>";
	json_object *rec = json_object_new_object(), *panic = json_object_new_object();
	json_object *sig = json_object_new_object(), *hist = json_object_new_array();
	json_object *snap = json_object_new_object(), *h1 = json_object_new_object();
	json_object *k = json_object_new_object(), *reports = json_object_new_array();
	json_object *rep = json_object_new_object();
	size_t big = 300 * 1024, len;
	char *log = malloc(big + 1), *out;
	struct html h;

	(void)state;
	assert_non_null(log);
	/* A 300 KiB log: one huge line of markup, then a NUL, then the frame. */
	for (size_t i = 0; i < big; i++)
		log[i] = "<\"'&>"[i % 5];
	memcpy(log + big - 40, "\n\0 evil_fn+0x1 <svg onload=x>\n", 30);
	json_object_object_add(rec, "vm", json_object_new_string(evil));
	json_object_object_add(rec, "event", json_object_new_string(evil));
	json_object_object_add(rec, "state", json_object_new_string("closed\"><script>"));
	json_object_object_add(rec, "detected_at", json_object_new_string(evil));
	json_object_object_add(rec, "kdump_loaded", json_object_new_string(evil));
	json_object_object_add(rec, "duplicate_events", json_object_new_double(1e300));
	json_object_object_add(panic, "message", json_object_new_string_len("a\0<script>b", 11));
	json_object_object_add(panic, "log_tail", json_object_new_string_len(log, (int)big));
	json_object_object_add(panic, "log_truncated", json_object_new_boolean(1));
	json_object_object_add(rec, "panic", panic);
	json_object_object_add(sig, "title", json_object_new_string(evil));
	json_object_object_add(sig, "guilty_frame", json_object_new_string("evil_fn"));
	json_object_object_add(sig, "guilty_module", json_object_new_string(evil));
	json_object_object_add(sig, "bucket", json_object_new_string("\"><script>x</script>"));
	json_object_object_add(rec, "signature", sig);
	json_object_object_add(h1, "at", json_object_new_string("2026-12-01T14:18:09.029415Z"));
	json_object_object_add(h1, "state", json_object_new_string(evil));
	json_object_object_add(h1, "reason", json_object_new_string(evil));
	json_object_array_add(hist, h1);
	json_object_array_add(hist, json_object_new_string(evil));
	json_object_object_add(rec, "history", hist);
	json_object_object_add(snap, "state", json_object_new_string(evil));
	json_object_object_add(snap, "path", json_object_new_string("../x\"><a href=javascript:1>"));
	json_object_object_add(rec, "snapshot", snap);
	json_object_object_add(rep, "at", json_object_new_string("2026-12-01T14:18:10.000000Z"));
	json_object_object_add(rep, "state", json_object_new_string("failed"));
	json_object_object_add(rep, "reason", json_object_new_string(evil));
	json_object_array_add(reports, rep);
	json_object_array_add(reports, NULL);
	json_object_object_add(k, "reports", reports);
	json_object_object_add(k, "session", json_object_new_string(evil));
	json_object_object_add(k, "session_at", json_object_new_string("2026-12-01T14:18:09.500000Z"));
	json_object_object_add(rec, "kdump", k);
	json_object_object_add(rec, "mailbox", json_object_new_string(evil)); /* not an object */

	html_init(&h, HTML_MAX_BYTES);
	html_crash_page(&h, "20261201T141809.029244Z-vm1", rec, "/spool");
	json_object_put(rec);
	free(log);
	assert_false(html_truncated(&h)); /* the log is shown from its last 128 KiB */
	out = take(&h, &len);
	assert_true(len <= HTML_MAX_BYTES);
	assert_int_equal(strlen(out), len); /* no NUL got through */
	assert_tags_known(out);
	assert_non_null(strstr(out, "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;&quot;&#39;&gt;&lt;iframe&gt;"));
	assert_non_null(strstr(out, "<pre id=\"panic-message\">a&#xFFFD;&lt;script&gt;b</pre>"));
	assert_non_null(strstr(out, "Only the last"));
	assert_non_null(strstr(out, "<mark class=\"guilty\" id=\"guilty\">&#xFFFD; evil_fn+0x1 &lt;svg onload=x&gt;</mark>"));
	assert_non_null(strstr(out, "report: failed: &lt;script&gt;"));
	assert_null(strstr(out, "?bucket=\""));
	free(out);
}

/* A record of nothing but wrong types: no crash, no page content lost. */
static void test_crash_page_wrong_types(void **state)
{
	json_object *rec = record("{\"vm\":1,\"history\":{},\"panic\":[],\"signature\":7,"
				  "\"kdump\":{\"reports\":{}},\"snapshot\":null,\"guest\":\"x\"}");
	struct html h;
	char *out;

	(void)state;
	html_init(&h, HTML_MAX_BYTES);
	html_crash_page(&h, "x", rec, "/s");
	json_object_put(rec);
	out = take(&h, NULL);
	assert_tags_known(out);
	assert_non_null(strstr(out, "No times in this record"));
	free(out);
}

static void test_error_page(void **state)
{
	struct html h;
	char *out;

	(void)state;
	html_init(&h, HTML_MAX_BYTES);
	html_error_page(&h, 404, "no crash <b>x</b>");
	out = take(&h, NULL);
	assert_tags_known(out);
	assert_non_null(strstr(out, "<h1>404</h1>\n<p id=\"error\">no crash &lt;b&gt;x&lt;/b&gt;</p>"));
	assert_non_null(strstr(out, "Content-Security-Policy"));
	assert_null(strstr(out, "http://"));
	assert_null(strstr(out, "https://"));
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape_markup),
		cmocka_unit_test(test_escape_controls_and_utf8),
		cmocka_unit_test(test_url_and_time),
		cmocka_unit_test(test_cap_keeps_whole_entities),
		cmocka_unit_test(test_crash_list),
		cmocka_unit_test(test_buckets),
		cmocka_unit_test(test_crash_page),
		cmocka_unit_test(test_crash_page_hostile),
		cmocka_unit_test(test_crash_page_wrong_types),
		cmocka_unit_test(test_error_page),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
