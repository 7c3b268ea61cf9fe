// SPDX-License-Identifier: MIT
/*
 * A crash's page (html.h): what crashed (the signature, the panic message,
 * the log tail with the guilty frame marked), the kdump timeline on a time
 * axis, the decisions of history, the snapshot (its path on the host only)
 * and what the guest said of itself. Pure: no I/O, no clock. The record is
 * read as untrusted: any field may be missing, of another type, or hostile.
 */
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "html.h"
#include "util.h"

/* Timeline entries drawn on a crash's page; the rest are counted. */
#define HTML_TIMELINE_MAX 256

static json_object *html_get(json_object *o, const char *key)
{
	json_object *v;

	if (!o || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

/* A string field for comparisons (NULL if not a string). */
static const char *html_get_str(json_object *o, const char *key)
{
	json_object *v = html_get(o, key);

	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* A time field, 0 if absent or not what the record's writer writes. */
static uint64_t html_get_time(json_object *o, const char *key)
{
	const char *s = html_get_str(o, key);
	uint64_t usec;

	if (!s || ts_parse_rfc3339(s, &usec) < 0)
		return 0;
	return usec;
}

/* "<dt>label</dt><dd>value</dd>" for a field present in @o; integers and
 * booleans as json-c prints them, strings escaped. */
static void html_dl_field(struct html *h, const char *label, json_object *o, const char *key)
{
	json_object *v = html_get(o, key);

	if (!v)
		return;
	html_rawf(h, "<dt>%s</dt><dd>", label);
	switch (json_object_get_type(v)) {
	case json_type_string:
		html_json_str(h, v, "");
		break;
	case json_type_int:
		html_rawf(h, "%lld", (long long)json_object_get_int64(v));
		break;
	case json_type_boolean:
		html_raw(h, json_object_get_boolean(v) ? "yes" : "no");
		break;
	case json_type_double:
		html_rawf(h, "%.3f", json_object_get_double(v));
		break;
	default:
		html_raw(h, "<span class=\"muted\">-</span>");
		break;
	}
	html_raw(h, "</dd>\n");
}

static void html_dl_badge(struct html *h, const char *label, const char *word)
{
	html_rawf(h, "<dt>%s</dt><dd><span class=\"st\">", label);
	html_str(h, word ? word : "-");
	html_raw(h, "</span></dd>\n");
}

/* -- what crashed -- */

static void html_crash_head(struct html *h, const char *id, json_object *rec)
{
	json_object *sig = html_get(rec, "signature"), *far = html_get(rec, "final_action_result");
	const char *bucket = html_get_str(sig, "bucket");

	html_raw(h, "<h1 id=\"title\">");
	html_json_str(h, html_get(sig, "title"), "Crash");
	html_raw(h, "</h1>\n<dl id=\"facts\">\n<dt>Crash</dt><dd><code>");
	html_str(h, id);
	html_raw(h, "</code> (<a href=\"/v1/crashes/");
	html_url(h, id);
	html_raw(h, "\">record as JSON</a>)</dd>\n<dt>VM</dt><dd>");
	html_json_str(h, html_get(rec, "vm"), "-");
	html_raw(h, "</dd>\n");
	html_dl_field(h, "Event", rec, "event");
	html_dl_field(h, "Detected", rec, "detected_at");
	html_dl_field(h, "Updated", rec, "updated_at");
	html_dl_badge(h, "State", html_get_str(rec, "state"));
	html_dl_field(h, "Crash kernel loaded", rec, "kdump_loaded");
	html_dl_field(h, "Final action", rec, "final_action");
	if (far) {
		html_raw(h, "<dt>Outcome</dt><dd><span class=\"st\">");
		html_json_str(h, html_get(far, "outcome"), "-");
		html_raw(h, "</span> ");
		html_json_str(h, html_get(far, "detail"), "");
		html_raw(h, "</dd>\n");
	}
	html_dl_field(h, "Further pvpanic events", rec, "duplicate_events");
	if (sig) {
		html_dl_field(h, "Kind", sig, "kind");
		html_raw(h, "<dt>Guilty frame</dt><dd><code id=\"guilty-frame\">");
		html_json_str(h, html_get(sig, "guilty_frame"), "none found");
		html_raw(h, "</code>");
		if (html_get_str(sig, "guilty_module")) {
			html_raw(h, " [");
			html_json_str(h, html_get(sig, "guilty_module"), "");
			html_raw(h, "]");
		}
		html_raw(h, "</dd>\n");
		if (bucket && html_bucket_is_valid(bucket))
			html_rawf(h, "<dt>Bucket</dt><dd><a href=\"/?bucket=%s\"><code>%s</code></a></dd>\n",
				  bucket, bucket);
		html_dl_field(h, "Signed from", sig, "from");
	}
	html_raw(h, "</dl>\n");
}

static bool html_ident_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.';
}

/* Whether @line holds @frame as a whole symbol ("frame+0x..", " frame "). */
static bool html_line_has_frame(const char *line, size_t len, const char *frame, size_t flen)
{
	for (const char *p = line; flen && (size_t)(line + len - p) >= flen;) {
		const char *m = memmem(p, (size_t)(line + len - p), frame, flen);

		if (!m)
			return false;
		if ((m == line || !html_ident_char(m[-1])) &&
		    (m + flen == line + len || !html_ident_char(m[flen])))
			return true;
		p = m + 1;
	}
	return false;
}

/* Lines around the guilty frame's shown above the whole tail. */
#define HTML_EXCERPT_BEFORE 6
#define HTML_EXCERPT_AFTER 12

/* The lines [@s, @end), those naming @frame marked; @anchor: the id of
 * the mark at @anchor_line, if any. */
static void html_log_lines(struct html *h, const char *s, const char *end, const char *frame,
			   const char *anchor_line, const char *anchor)
{
	size_t flen = frame ? strlen(frame) : 0;

	while (s < end && !html_truncated(h)) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);

		if (flen && html_line_has_frame(s, n, frame, flen)) {
			html_raw(h, "<mark class=\"guilty\"");
			if (s == anchor_line && anchor)
				html_rawf(h, " id=\"%s\"", anchor);
			html_raw(h, ">");
			html_text(h, s, n);
			html_raw(h, "</mark>");
		} else {
			html_text(h, s, n);
		}
		if (nl)
			html_raw(h, "\n");
		s += n + (nl ? 1 : 0);
	}
}

/* The start of the last line of [@s, @end) naming @frame, or NULL. */
static const char *html_last_frame_line(const char *s, const char *end, const char *frame)
{
	size_t flen = frame ? strlen(frame) : 0;
	const char *last = NULL;

	while (flen && s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);

		if (html_line_has_frame(s, n, frame, flen))
			last = s;
		s += n + (nl ? 1 : 0);
	}
	return last;
}

/* @lines lines back from the line at @p (not before @start). */
static const char *html_lines_back(const char *start, const char *p, unsigned int lines)
{
	while (p > start && lines--) {
		p--; /* the newline that ends the previous line */
		while (p > start && p[-1] != '\n')
			p--;
	}
	return p;
}

static const char *html_lines_forward(const char *p, const char *end, unsigned int lines)
{
	while (p < end && lines--) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		p = nl ? nl + 1 : end;
	}
	return p;
}

/*
 * The log tail, its last HTML_LOG_MAX_BYTES from a line start, each line
 * naming the guilty frame marked; above it, the lines around the last such
 * line (#guilty), the one nearest the panic.
 */
static void html_log_tail(struct html *h, json_object *panic, const char *frame)
{
	json_object *v = html_get(panic, "log_tail"), *cut = html_get(panic, "log_truncated");
	const char *s, *end, *guilty;
	size_t len;

	if (!v || !json_object_is_type(v, json_type_string))
		return;
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	end = s + len;
	if (len > HTML_LOG_MAX_BYTES) {
		const char *nl;

		s = end - HTML_LOG_MAX_BYTES;
		nl = memchr(s, '\n', (size_t)(end - s));
		if (nl)
			s = nl + 1;
	}
	guilty = html_last_frame_line(s, end, frame);
	if (guilty) {
		html_raw(h, "<h2>Around the guilty frame</h2>\n<pre id=\"excerpt\">");
		html_log_lines(h, html_lines_back(s, guilty, HTML_EXCERPT_BEFORE),
			       html_lines_forward(guilty, end, HTML_EXCERPT_AFTER), frame, guilty,
			       "guilty");
		html_raw(h, "</pre>\n");
	}
	html_raw(h, "<h2>Log tail</h2>\n");
	if (s != json_object_get_string(v))
		html_rawf(h, "<p class=\"trunc\">Only the last %zu of %zu bytes are shown.</p>\n",
			  (size_t)(end - s), len);
	if (cut && json_object_is_type(cut, json_type_boolean) && json_object_get_boolean(cut))
		html_raw(h, "<p class=\"muted\">The guest's older log lines did not fit its panic record.</p>\n");
	if (guilty)
		html_raw(h, "<p><a href=\"#guilty-in-log\">To the guilty frame in the log</a></p>\n");
	html_raw(h, "<pre id=\"log-tail\">");
	html_log_lines(h, s, end, frame, guilty, "guilty-in-log");
	html_raw(h, "</pre>\n");
}

static void html_panic(struct html *h, json_object *rec)
{
	json_object *panic = html_get(rec, "panic"), *sig = html_get(rec, "signature");

	html_raw(h, "<h2>Panic message</h2>\n");
	if (!panic) {
		html_raw(h, "<p class=\"muted\" id=\"panic-message\">No panic record: the guest did not "
			    "speak the broker channel before this crash.</p>\n");
		return;
	}
	html_raw(h, "<pre id=\"panic-message\">");
	html_json_str(h, html_get(panic, "message"), "");
	html_raw(h, "</pre>\n<dl>\n");
	html_dl_field(h, "Source", panic, "source");
	html_dl_field(h, "CPU", panic, "cpu");
	html_dl_field(h, "Taint", panic, "taint");
	html_dl_field(h, "From an oops", panic, "from_oops");
	html_dl_field(h, "Tier (us)", panic, "tier_us");
	html_raw(h, "</dl>\n");
	html_log_tail(h, panic, html_get_str(sig, "guilty_frame"));
}

/* -- the timeline -- */

enum html_lane { HTML_LANE_CRASH, HTML_LANE_KDUMP, HTML_LANE_SNAPSHOT, HTML_LANE_DECISION, HTML_LANE_MAX };
static const char *const html_lane_names[HTML_LANE_MAX] = { "crash", "kdump", "snapshot", "decisions" };

struct html_event {
	uint64_t usec;
	enum html_lane lane;
	const char *what;	/* the page's words */
	int percent;		/* a progress report's, or -1 */
	json_object *detail;	/* a string of the record's, or NULL */
	const char *tone;	/* "", "good", "bad" */
	size_t seq;		/* the order found, for a stable sort */
};

struct html_timeline {
	struct html_event ev[HTML_TIMELINE_MAX];
	size_t n, dropped;
};

static void html_tl_add(struct html_timeline *tl, uint64_t usec, enum html_lane lane,
			const char *what, json_object *detail, const char *tone, int percent)
{
	if (!usec)
		return;
	if (tl->n >= HTML_TIMELINE_MAX) {
		tl->dropped++;
		return;
	}
	tl->ev[tl->n] = (struct html_event){ .usec = usec, .lane = lane, .what = what,
					     .detail = detail, .tone = tone, .percent = percent,
					     .seq = tl->n };
	tl->n++;
}

static int html_event_cmp(const void *a, const void *b)
{
	const struct html_event *x = a, *y = b;

	if (x->usec != y->usec)
		return x->usec < y->usec ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static const char *html_tone(const char *state)
{
	if (!state)
		return "";
	if (!strcmp(state, "done") || !strcmp(state, "applied") || !strcmp(state, "not-needed"))
		return "good";
	if (!strcmp(state, "failed") || !strcmp(state, "hung") || !strcmp(state, "refused"))
		return "bad";
	return "";
}

static void html_tl_collect(struct html_timeline *tl, json_object *rec)
{
	json_object *k = html_get(rec, "kdump"), *snap = html_get(rec, "snapshot");
	json_object *far = html_get(rec, "final_action_result"), *reports, *hist;
	static const char *const report_words[] = { "start", "progress", "done", "failed" };
	static const char *const report_what[] = { "report: start", "report: progress",
						   "report: done", "report: failed" };

	html_tl_add(tl, html_get_time(rec, "detected_at"), HTML_LANE_CRASH, "detected",
		    html_get(rec, "event"), "bad", -1);
	html_tl_add(tl, html_get_time(k, "session_at"), HTML_LANE_KDUMP, "kdump session opened",
		    html_get(k, "session"), "", -1);
	reports = html_get(k, "reports");
	for (size_t i = 0; reports && json_object_is_type(reports, json_type_array) &&
			   i < json_object_array_length(reports); i++) {
		json_object *r = json_object_array_get_idx(reports, i);
		const char *st = html_get_str(r, "state");
		json_object *pct = html_get(r, "percent");
		int n = name_table_lookup(report_words, ARRAY_SIZE(report_words), st ? st : "");

		html_tl_add(tl, html_get_time(r, "at"), HTML_LANE_KDUMP,
			    n >= 0 ? report_what[n] : "report", html_get(r, "reason"),
			    html_tone(st),
			    pct && json_object_is_type(pct, json_type_int) && n == 1
				    ? (int)(json_object_get_int(pct) % 1000) : -1);
	}
	html_tl_add(tl, html_get_time(k, "finished_at"), HTML_LANE_KDUMP, "kdump finished",
		    html_get(k, "state"), html_tone(html_get_str(k, "state")), -1);
	html_tl_add(tl, html_get_time(snap, "started_at"), HTML_LANE_SNAPSHOT, "snapshot started",
		    NULL, "", -1);
	html_tl_add(tl, html_get_time(snap, "finished_at"), HTML_LANE_SNAPSHOT, "snapshot finished",
		    html_get(snap, "state"), html_tone(html_get_str(snap, "state")), -1);
	html_tl_add(tl, html_get_time(far, "at"), HTML_LANE_CRASH, "final action",
		    html_get(far, "outcome"), html_tone(html_get_str(far, "outcome")), -1);
	hist = html_get(rec, "history");
	for (size_t i = 0; hist && json_object_is_type(hist, json_type_array) &&
			   i < json_object_array_length(hist); i++) {
		json_object *e = json_object_array_get_idx(hist, i);

		html_tl_add(tl, html_get_time(e, "at"), HTML_LANE_DECISION, "decision",
			    html_get(e, "reason"), "", -1);
	}
	qsort(tl->ev, tl->n, sizeof(tl->ev[0]), html_event_cmp);
}

static double html_tl_pos(const struct html_timeline *tl, uint64_t usec)
{
	uint64_t span = tl->ev[tl->n - 1].usec - tl->ev[0].usec;

	return span ? 100.0 * (double)(usec - tl->ev[0].usec) / (double)span : 0.0;
}

/* One lane of the axis: its ticks, and for kdump and snapshot a bar from
 * their start to their end (or to the last thing known). */
static void html_tl_lane(struct html *h, const struct html_timeline *tl, enum html_lane lane,
			 uint64_t bar_from, uint64_t bar_to)
{
	html_rawf(h, "<div class=\"lane\" id=\"lane-%s\"><b>%s</b><div class=\"track\">",
		  html_lane_names[lane], html_lane_names[lane]);
	if (bar_from && bar_to >= bar_from) {
		double a = html_tl_pos(tl, bar_from), b = html_tl_pos(tl, bar_to);

		html_rawf(h, "<span class=\"bar\" style=\"left:%.2f%%;width:%.2f%%\"></span>", a,
			  b - a > 0.5 ? b - a : 0.5);
	}
	for (size_t i = 0; i < tl->n; i++) {
		const struct html_event *e = &tl->ev[i];

		if (e->lane != lane)
			continue;
		html_rawf(h, "<span class=\"tick %s\" style=\"left:%.2f%%\" title=\"%s", e->tone,
			  html_tl_pos(tl, e->usec), e->what);
		if (e->percent >= 0)
			html_rawf(h, " %d%%", e->percent);
		if (e->detail && json_object_is_type(e->detail, json_type_string)) {
			html_raw(h, ": ");
			html_json_str(h, e->detail, "");
		}
		html_raw(h, "\"></span>");
	}
	html_raw(h, "</div></div>\n");
}

static void html_timeline(struct html *h, json_object *rec)
{
	/* ~20 KiB: on the heap, not the loop's stack. */
	_cleanup_free_ struct html_timeline *tl = calloc(1, sizeof(*tl));
	json_object *k = html_get(rec, "kdump"), *snap = html_get(rec, "snapshot");
	uint64_t t0, k_from, k_to, s_from;

	html_raw(h, "<h2>kdump timeline</h2>\n");
	if (!tl) {
		h->error = h->error ? h->error : -ENOMEM;
		return;
	}
	html_tl_collect(tl, rec);
	if (tl->n == 0) {
		html_raw(h, "<p class=\"muted\">No times in this record.</p>\n");
		return;
	}
	t0 = tl->ev[0].usec;
	html_raw(h, "<div id=\"timeline\">\n");
	html_tl_lane(h, tl, HTML_LANE_CRASH, 0, 0);
	k_from = html_get_time(k, "session_at") ?: html_get_time(k, "started_at");
	k_to = html_get_time(k, "finished_at") ?: html_get_time(k, "last_report_at") ?: k_from;
	html_tl_lane(h, tl, HTML_LANE_KDUMP, k_from, k_to);
	s_from = html_get_time(snap, "started_at");
	html_tl_lane(h, tl, HTML_LANE_SNAPSHOT, s_from,
		     html_get_time(snap, "finished_at") ?: s_from);
	html_tl_lane(h, tl, HTML_LANE_DECISION, 0, 0);
	html_raw(h, "<div class=\"axis\"><span>0</span><span>+");
	html_duration(h, (tl->ev[tl->n - 1].usec - t0) / 2);
	html_raw(h, "</span><span>+");
	html_duration(h, tl->ev[tl->n - 1].usec - t0);
	html_raw(h, "</span></div>\n</div>\n<table id=\"events\">\n<thead><tr><th>Time (UTC)</th>"
		    "<th>After detection</th><th>Lane</th><th>What</th></tr></thead>\n<tbody>\n");
	for (size_t i = 0; i < tl->n; i++) {
		const struct html_event *e = &tl->ev[i];

		html_rawf(h, "<tr class=\"ev ev-%s\"><td class=\"t\">", html_lane_names[e->lane]);
		html_time(h, e->usec);
		html_raw(h, "</td><td class=\"n\">+");
		html_duration(h, e->usec - t0);
		html_rawf(h, "</td><td>%s</td><td>%s", html_lane_names[e->lane], e->what);
		if (e->percent >= 0)
			html_rawf(h, " %d%%", e->percent);
		if (e->detail && json_object_is_type(e->detail, json_type_string)) {
			html_raw(h, ": ");
			html_json_str(h, e->detail, "");
		}
		html_raw(h, "</td></tr>\n");
	}
	html_raw(h, "</tbody>\n</table>\n");
	if (tl->dropped)
		html_rawf(h, "<p class=\"muted\">%zu more entries not shown.</p>\n", tl->dropped);
}

/* -- decisions, snapshot, guest -- */

static void html_history(struct html *h, json_object *rec)
{
	json_object *hist = html_get(rec, "history"), *dropped = html_get(rec, "history_dropped");

	html_raw(h, "<h2>Decisions</h2>\n<table id=\"history\">\n<thead><tr><th>Time (UTC)</th>"
		    "<th>State</th><th>Why</th></tr></thead>\n<tbody>\n");
	for (size_t i = 0; hist && json_object_is_type(hist, json_type_array) &&
			   i < json_object_array_length(hist); i++) {
		json_object *e = json_object_array_get_idx(hist, i);

		html_raw(h, "<tr><td class=\"t\">");
		html_json_str(h, html_get(e, "at"), "-");
		html_raw(h, "</td><td><span class=\"st\">");
		html_json_str(h, html_get(e, "state"), "-");
		html_raw(h, "</span></td><td>");
		html_json_str(h, html_get(e, "reason"), "");
		html_raw(h, "</td></tr>\n");
	}
	html_raw(h, "</tbody>\n</table>\n");
	if (dropped && json_object_is_type(dropped, json_type_int))
		html_rawf(h, "<p class=\"muted\">%lld older entries dropped.</p>\n",
			  (long long)json_object_get_int64(dropped));
}

static void html_snapshot(struct html *h, const char *id, json_object *rec, const char *spool_path)
{
	json_object *snap = html_get(rec, "snapshot"), *verify;
	const char *path;

	html_raw(h, "<h2>Memory snapshot</h2>\n");
	if (!snap) {
		html_raw(h, "<p class=\"muted\" id=\"snapshot\">None taken.</p>\n");
		return;
	}
	html_raw(h, "<dl id=\"snapshot\">\n");
	html_dl_badge(h, "State", html_get_str(snap, "state"));
	html_dl_field(h, "Why", snap, "reason");
	html_dl_field(h, "Format", snap, "format");
	html_dl_field(h, "Bytes", snap, "bytes");
	html_dl_field(h, "Seconds paused", snap, "seconds");
	path = html_get_str(snap, "path");
	if (path) {
		/* A path on the host, never a link: dumps are not served. */
		html_raw(h, "<dt>File on the host</dt><dd><code id=\"snapshot-path\">");
		html_str(h, spool_path);
		html_raw(h, "/crashes/");
		html_str(h, id);
		html_raw(h, "/");
		html_json_str(h, html_get(snap, "path"), "");
		html_raw(h, "</code> <span class=\"muted\">(not served over HTTP)</span></dd>\n");
	}
	verify = html_get(snap, "verify");
	html_dl_field(h, "Read back", verify, "ok");
	html_dl_field(h, "Its panic line", verify, "panic_line");
	html_raw(h, "</dl>\n");
}

static void html_guest(struct html *h, json_object *rec)
{
	json_object *g = html_get(rec, "guest"), *u = html_get(rec, "unload");
	json_object *mb = html_get(rec, "mailbox"), *k = html_get(rec, "kdump"), *bad;

	if (!g && !u && !mb && !k)
		return;
	html_raw(h, "<h2>The guest's own words</h2>\n<dl id=\"guest\">\n");
	html_dl_field(h, "Kernel", g, "kernel_release");
	html_dl_field(h, "Module", g, "driver_version");
	html_dl_field(h, "Boot id", g, "boot_id");
	html_dl_field(h, "UNLOAD acknowledged", u, "acked");
	html_dl_field(h, "UNLOAD round trip (us)", u, "rtt_us");
	html_dl_field(h, "kdump state", k, "state");
	html_dl_field(h, "kdump reason", k, "reason");
	html_dl_field(h, "kdump bytes", k, "bytes");
	html_dl_field(h, "kdump sessions", k, "sessions");
	html_dl_field(h, "Malformed input", mb, "malformed_count");
	html_raw(h, "</dl>\n");
	bad = html_get(mb, "malformed");
	if (bad && json_object_is_type(bad, json_type_array) && json_object_array_length(bad)) {
		html_raw(h, "<ul id=\"malformed\">\n");
		for (size_t i = 0; i < json_object_array_length(bad) && i < 16; i++) {
			html_raw(h, "<li>");
			html_json_str(h, json_object_array_get_idx(bad, i), "-");
			html_raw(h, "</li>\n");
		}
		html_raw(h, "</ul>\n");
	}
}

void html_crash_page(struct html *h, const char *id, json_object *rec, const char *spool_path)
{
	html_page_begin(h, html_get_str(html_get(rec, "signature"), "title") ?: id);
	html_crash_head(h, id, rec);
	html_panic(h, rec);
	html_timeline(h, rec);
	html_history(h, rec);
	html_snapshot(h, id, rec, spool_path);
	html_guest(h, rec);
}
