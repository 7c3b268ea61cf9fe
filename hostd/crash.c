// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <panicbroker/pvpanic.h>

#include "crash.h"
#include "util.h"

static const char *const crash_state_names[CRASH_STATE_MAX] = {
	[CRASH_DETECTED] = "detected",
	[CRASH_HELD] = "held",
	[CRASH_KDUMP_RUNNING] = "kdump_running",
	[CRASH_KDUMP_FINISHED] = "kdump_finished",
	[CRASH_KDUMP_FAILED] = "kdump_failed",
	[CRASH_KDUMP_TIMEOUT] = "kdump_timeout",
	[CRASH_SNAPSHOTTING] = "snapshotting",
	[CRASH_CLOSED] = "closed",
};

const char *crash_state_to_string(enum crash_state st)
{
	return crash_state_names[st];
}

int crash_state_from_string(const char *s)
{
	return name_table_lookup(crash_state_names, CRASH_STATE_MAX, s);
}

int crash_id_base(uint64_t usec, const char *vm, char *buf, size_t len)
{
	char when[TS_RFC3339_MAX];
	int r, n;

	r = ts_format_basic(usec, when, sizeof(when));
	if (r < 0)
		return r;
	n = snprintf(buf, len, "%s-%s", when, vm);
	if (n < 0 || (size_t)n >= len)
		return -ENOBUFS;
	return 0;
}

static json_object *crash_timestamp(uint64_t usec)
{
	char buf[TS_RFC3339_MAX];

	if (ts_format_rfc3339(usec, buf, sizeof(buf)) < 0)
		return NULL;
	return json_object_new_string(buf);
}

static void crash_touch(struct crash *c)
{
	json_object_object_add(c->rec, "updated_at",
			       crash_timestamp(ts_now_realtime_usec()));
}

static void crash_history_add(struct crash *c, const char *what,
			      const char *reason)
{
	json_object *hist, *e;

	if (!json_object_object_get_ex(c->rec, "history", &hist))
		return;
	if (json_object_array_length(hist) >= CRASH_HISTORY_MAX) {
		json_object *dropped;
		int64_t n = 0;

		if (json_object_object_get_ex(c->rec, "history_dropped", &dropped))
			n = json_object_get_int64(dropped);
		json_object_object_add(c->rec, "history_dropped",
				       json_object_new_int64(n + 1));
		return;
	}
	e = json_object_new_object();
	json_object_object_add(e, "at", crash_timestamp(ts_now_realtime_usec()));
	json_object_object_add(e, "state", json_object_new_string(what));
	json_object_object_add(e, "reason", json_object_new_string(reason));
	json_object_array_add(hist, e);
}

/* A bounded copy of the event's data: QMP is trusted, but not unlimited. */
static json_object *crash_copy_event_data(json_object *data)
{
	json_object *copy;

	if (!data)
		return json_object_new_object();
	if (strlen(json_object_to_json_string_ext(data, JSON_C_TO_STRING_PLAIN)) >
	    CRASH_EVENT_DATA_MAX) {
		copy = json_object_new_object();
		json_object_object_add(copy, "truncated", json_object_new_boolean(1));
		return copy;
	}
	copy = NULL;
	if (json_object_deep_copy(data, &copy, NULL) < 0)
		return NULL;
	return copy;
}

int crash_new(struct spool *s, const struct crash_event *ev,
	      enum final_action final_action, struct crash **ret)
{
	char base[SPOOL_ID_MAX];
	struct crash *c;
	json_object *rec;
	int r;

	r = crash_id_base(ev->detected_usec, ev->vm, base, sizeof(base));
	if (r < 0)
		return r;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->dirfd = -1;
	snprintf(c->vm, sizeof(c->vm), "%s", ev->vm);
	c->state = CRASH_DETECTED;
	c->kdump_loaded = strcmp(ev->event, PB_PVPANIC_QMP_CRASH_LOADED) == 0;
	c->final_action = final_action;

	rec = c->rec = json_object_new_object();
	json_object_object_add(rec, "format", json_object_new_int(CRASH_RECORD_FORMAT));
	json_object_object_add(rec, "id", NULL);
	json_object_object_add(rec, "vm", json_object_new_string(c->vm));
	json_object_object_add(rec, "event", json_object_new_string(ev->event));
	json_object_object_add(rec, "detected_at", crash_timestamp(ev->detected_usec));
	json_object_object_add(rec, "qmp_timestamp",
			       ev->has_qmp_timestamp ?
				       crash_timestamp(ev->qmp_timestamp_usec) : NULL);
	json_object_object_add(rec, "event_data", crash_copy_event_data(ev->data));
	json_object_object_add(rec, "kdump_loaded",
			       json_object_new_boolean(c->kdump_loaded));
	json_object_object_add(rec, "state",
			       json_object_new_string(crash_state_to_string(c->state)));
	json_object_object_add(rec, "final_action",
			       json_object_new_string(final_action_to_string(final_action)));
	json_object_object_add(rec, "final_action_result", NULL);
	json_object_object_add(rec, "kdump_deadline", NULL);
	json_object_object_add(rec, "duplicate_events", json_object_new_int(0));
	json_object_object_add(rec, "history", json_object_new_array());
	crash_touch(c);
	crash_history_add(c, "detected", ev->source);

	/* Two crashes of one VM in one microsecond get -2, -3, ... */
	for (unsigned int n = 1; n < 100; n++) {
		int len = n == 1 ? snprintf(c->id, sizeof(c->id), "%s", base) :
				   snprintf(c->id, sizeof(c->id), "%s-%u", base, n);

		if (len < 0 || (size_t)len >= sizeof(c->id)) {
			r = -ENAMETOOLONG;
			break;
		}
		json_object_object_add(rec, "id", json_object_new_string(c->id));
		r = spool_publish_crash(s, c->id, rec, &c->dirfd);
		if (r != -EEXIST)
			break;
	}
	if (r < 0) {
		crash_free(c);
		return r;
	}
	*ret = c;
	return 0;
}

static const char *crash_get_string(json_object *rec, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(rec, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static json_object *crash_hex64(uint64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "0x%llx", (unsigned long long)v);
	return json_object_new_string(buf);
}

/* "0x..." as crash_hex64() writes it; 0 when absent or anything else. */
static uint64_t crash_get_hex64(json_object *obj, const char *key)
{
	const char *s = obj ? crash_get_string(obj, key) : NULL;
	unsigned long long v;
	char *end;

	if (!s || strncmp(s, "0x", 2) != 0 || !s[2] || strlen(s) > 18)
		return 0;
	errno = 0;
	v = strtoull(s + 2, &end, 16);
	if (errno || *end)
		return 0;
	return v;
}

static uint64_t crash_get_time(json_object *obj, const char *key)
{
	const char *s = obj ? crash_get_string(obj, key) : NULL;
	uint64_t usec;

	if (!s || ts_parse_rfc3339(s, &usec) < 0)
		return 0;
	return usec;
}

static json_object *crash_sub(json_object *rec, const char *key)
{
	json_object *o;

	if (json_object_object_get_ex(rec, key, &o) &&
	    json_object_is_type(o, json_type_object))
		return o;
	return NULL;
}

/* The broker channel's part of a resumed crash; what is unreadable is unset. */
static void crash_load_kdump(struct crash *c)
{
	json_object *kd = crash_sub(c->rec, "kdump");
	const char *ks = kd ? crash_get_string(kd, "state") : NULL;
	int k;

	c->crashed_session = crash_get_hex64(kd, "crashed_session");
	c->kdump_ks = CRASH_KS_NONE;
	if (ks) {
		for (k = CRASH_KS_RUNNING; k < CRASH_KS_MAX; k++)
			if (strcmp(ks, crash_ks_to_string((enum crash_ks)k)) == 0)
				c->kdump_ks = (enum crash_ks)k;
	}
	c->kdump_session = crash_get_hex64(kd, "session");
	if (c->kdump_ks == CRASH_KS_NONE)
		c->kdump_watch_usec = crash_get_time(kd, "session_deadline");
	else if (c->kdump_ks == CRASH_KS_RUNNING)
		c->kdump_watch_usec = crash_get_time(kd, "progress_deadline");
}

int crash_load(struct spool *s, const char *id, json_object *rec,
	       struct crash **ret, char *err, size_t errlen)
{
	const char *vm = crash_get_string(rec, "vm");
	const char *state = crash_get_string(rec, "state");
	const char *fa = crash_get_string(rec, "final_action");
	const char *deadline = crash_get_string(rec, "kdump_deadline");
	json_object *kl, *hist;
	struct crash *c;
	int st, a, r;

	if (!vm || !name_is_valid(vm) || !state || !fa ||
	    (st = crash_state_from_string(state)) < 0 ||
	    (a = final_action_from_string(fa)) < 0 ||
	    !json_object_object_get_ex(rec, "kdump_loaded", &kl) ||
	    !json_object_object_get_ex(rec, "history", &hist) ||
	    !json_object_is_type(hist, json_type_array)) {
		snprintf(err, errlen, "record %s lacks vm/state/final_action/kdump_loaded/history", id);
		return -EBADMSG;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	r = spool_open_crash(s, id, &c->dirfd);
	if (r < 0) {
		free(c);
		snprintf(err, errlen, "cannot open crash %s: %s", id, strerror(-r));
		return r;
	}
	snprintf(c->id, sizeof(c->id), "%s", id);
	snprintf(c->vm, sizeof(c->vm), "%s", vm);
	c->state = (enum crash_state)st;
	c->final_action = (enum final_action)a;
	c->kdump_loaded = json_object_get_boolean(kl);
	if (deadline && ts_parse_rfc3339(deadline, &c->kdump_deadline_usec) < 0)
		c->kdump_deadline_usec = 0;
	c->rec = json_object_get(rec);
	crash_load_kdump(c);
	*ret = c;
	return 0;
}

void crash_free(struct crash *c)
{
	if (!c)
		return;
	json_object_put(c->rec);
	closep(&c->dirfd);
	free(c);
}

void crash_set_state(struct crash *c, enum crash_state st, const char *fmt, ...)
{
	char reason[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	c->state = st;
	json_object_object_add(c->rec, "state",
			       json_object_new_string(crash_state_to_string(st)));
	crash_history_add(c, crash_state_to_string(st), reason);
	crash_touch(c);
}

void crash_note(struct crash *c, const char *fmt, ...)
{
	char reason[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	crash_history_add(c, crash_state_to_string(c->state), reason);
	crash_touch(c);
}

void crash_add_duplicate(struct crash *c, const char *event)
{
	json_object *v;
	int64_t n = 0;

	if (json_object_object_get_ex(c->rec, "duplicate_events", &v))
		n = json_object_get_int64(v);
	json_object_object_add(c->rec, "duplicate_events", json_object_new_int64(n + 1));
	/* Only the first few make it into the history: a flood must not. */
	if (n < 4)
		crash_note(c, "%s again while this crash is open; counted, not recorded anew",
			   event);
	else
		crash_touch(c);
}

void crash_set_kdump_deadline(struct crash *c, uint64_t usec)
{
	c->kdump_deadline_usec = usec;
	json_object_object_add(c->rec, "kdump_deadline",
			       usec ? crash_timestamp(usec) : NULL);
}

void crash_set_final_result(struct crash *c, const char *outcome,
			    const char *detail)
{
	json_object *res = json_object_new_object();

	json_object_object_add(res, "action",
			       json_object_new_string(final_action_to_string(c->final_action)));
	json_object_object_add(res, "outcome", json_object_new_string(outcome));
	json_object_object_add(res, "detail", json_object_new_string(detail));
	json_object_object_add(res, "at", crash_timestamp(ts_now_realtime_usec()));
	json_object_object_add(c->rec, "final_action_result", res);
}

int crash_save(struct crash *c)
{
	return spool_write_record(c->dirfd, c->rec);
}

/* ---- the kdump kernel's broker channel session ---- */

#define CRASH_UNLINKED_KEPT 8
#define CRASH_KDUMP_SESSION_NOTES 4

static const char *const crash_ks_names[CRASH_KS_MAX] = {
	[CRASH_KS_NONE] = NULL,
	[CRASH_KS_RUNNING] = "running",
	[CRASH_KS_DONE] = "done",
	[CRASH_KS_FAILED] = "failed",
	[CRASH_KS_HUNG] = "hung",
};

const char *crash_ks_to_string(enum crash_ks ks)
{
	return ks < CRASH_KS_MAX ? crash_ks_names[ks] : NULL;
}

static json_object *crash_obj(json_object *parent, const char *key)
{
	json_object *o = crash_sub(parent, key);

	if (o)
		return o;
	o = json_object_new_object();
	json_object_object_add(parent, key, o);
	return o;
}

/* The kdump object, with kdump.state present (null before the session). */
static json_object *crash_kdump_obj(struct crash *c)
{
	json_object *kd = crash_obj(c->rec, "kdump");

	if (!json_object_object_get_ex(kd, "state", NULL))
		json_object_object_add(kd, "state", NULL);
	return kd;
}

static void crash_set_ks(struct crash *c, json_object *kd, enum crash_ks ks)
{
	const char *name = crash_ks_to_string(ks);

	c->kdump_ks = ks;
	json_object_object_add(kd, "state", name ? json_object_new_string(name) : NULL);
}

void crash_set_crashed_session(struct crash *c, uint64_t id, const char *from)
{
	json_object *kd = crash_kdump_obj(c);

	c->crashed_session = id;
	json_object_object_add(kd, "crashed_session", crash_hex64(id));
	json_object_object_add(kd, "crashed_session_from", json_object_new_string(from));
	crash_touch(c);
}

enum crash_link crash_kdump_link(const struct crash *c, uint64_t prev,
				 const uint64_t *closed, size_t n_closed,
				 char *why, size_t whylen)
{
	char what[160];

	if (prev && prev == c->crashed_session) {
		snprintf(why, whylen, "prev_session %016llx is the crashed session",
			 (unsigned long long)prev);
		return CRASH_LINK_LINKED;
	}
	for (size_t i = 0; prev && i < n_closed; i++) {
		if (closed[i] == prev) {
			snprintf(why, whylen,
				 "prev_session %016llx is the crashed session of a crash already closed",
				 (unsigned long long)prev);
			return CRASH_LINK_REFUSED;
		}
	}
	if (!prev)
		snprintf(what, sizeof(what),
			 "prev_session 0: the kdump kernel found no crashed session (the mailbox was reformatted since the crash)");
	else if (!c->crashed_session)
		snprintf(what, sizeof(what),
			 "prev_session %016llx, and the crashed session is unknown",
			 (unsigned long long)prev);
	else
		snprintf(what, sizeof(what),
			 "prev_session %016llx is not the crashed session %016llx",
			 (unsigned long long)prev, (unsigned long long)c->crashed_session);
	if (!c->kdump_loaded) {
		snprintf(why, whylen, "%s, and this crash was entered without a crash kernel loaded",
			 what);
		return CRASH_LINK_REFUSED;
	}
	snprintf(why, whylen, "%s", what);
	return CRASH_LINK_UNLINKED;
}

/* kdump.unlinked_sessions: at most CRASH_UNLINKED_KEPT, then counted. */
static void crash_kdump_unlinked(json_object *kd, uint64_t session, uint64_t prev,
				 bool taken, const char *why, uint64_t now_usec)
{
	json_object *list, *e;

	if (!json_object_object_get_ex(kd, "unlinked_sessions", &list) ||
	    !json_object_is_type(list, json_type_array)) {
		list = json_object_new_array();
		json_object_object_add(kd, "unlinked_sessions", list);
	}
	if (json_object_array_length(list) >= CRASH_UNLINKED_KEPT) {
		json_object *d;
		int64_t n = json_object_object_get_ex(kd, "unlinked_sessions_dropped", &d) ?
				    json_object_get_int64(d) : 0;

		json_object_object_add(kd, "unlinked_sessions_dropped",
				       json_object_new_int64(n + 1));
		return;
	}
	e = json_object_new_object();
	json_object_object_add(e, "session", crash_hex64(session));
	json_object_object_add(e, "prev_session", crash_hex64(prev));
	json_object_object_add(e, "at", crash_timestamp(now_usec));
	json_object_object_add(e, "taken", json_object_new_boolean(taken));
	json_object_object_add(e, "why", json_object_new_string(why));
	json_object_array_add(list, e);
}

void crash_kdump_session(struct crash *c, uint64_t session, uint64_t prev,
			 enum crash_link link, const char *why, uint64_t now_usec)
{
	json_object *kd = crash_kdump_obj(c), *v;
	int64_t n = json_object_object_get_ex(kd, "sessions", &v) ? json_object_get_int64(v) : 0;
	/* A guest reopening its session over and over must not fill the history. */
	bool note = n < CRASH_KDUMP_SESSION_NOTES;

	json_object_object_add(kd, "sessions", json_object_new_int64(n + 1));
	crash_touch(c);
	if (link == CRASH_LINK_REFUSED) {
		crash_kdump_unlinked(kd, session, prev, false, why, now_usec);
		if (note)
			crash_note(c, "kdump session %016llx refused: %s; its reports are not this crash's",
				   (unsigned long long)session, why);
		return;
	}
	c->kdump_session = session;
	json_object_object_add(kd, "session", crash_hex64(session));
	json_object_object_add(kd, "prev_session", crash_hex64(prev));
	json_object_object_add(kd, "linked", json_object_new_boolean(link == CRASH_LINK_LINKED));
	json_object_object_add(kd, "session_at", crash_timestamp(now_usec));
	json_object_object_add(kd, "session_deadline", NULL);
	if (c->kdump_ks == CRASH_KS_NONE) {
		crash_set_ks(c, kd, CRASH_KS_RUNNING);
		c->kdump_watch_usec = 0;
	}
	if (link == CRASH_LINK_UNLINKED)
		crash_kdump_unlinked(kd, session, prev, true, why, now_usec);
	if (!note)
		return;
	if (link == CRASH_LINK_LINKED)
		crash_note(c, "kdump session %016llx opened: %s", (unsigned long long)session, why);
	else
		crash_note(c, "kdump session %016llx opened, unlinked: %s; taken as this crash's (the VM's only open crash, entered with a crash kernel loaded)",
			   (unsigned long long)session, why);
}

static const char *crash_report_name(enum crash_report_state st)
{
	switch (st) {
	case CRASH_REPORT_START:
		return "start";
	case CRASH_REPORT_PROGRESS:
		return "progress";
	case CRASH_REPORT_DONE:
		return "done";
	default:
		return "failed";
	}
}

void crash_kdump_report(struct crash *c, const struct crash_kdump_report *r)
{
	json_object *kd = crash_kdump_obj(c), *list, *e;
	bool open = c->kdump_ks == CRASH_KS_NONE || c->kdump_ks == CRASH_KS_RUNNING;

	if (!json_object_object_get_ex(kd, "reports", &list) ||
	    !json_object_is_type(list, json_type_array)) {
		list = json_object_new_array();
		json_object_object_add(kd, "reports", list);
	}
	e = json_object_new_object();
	json_object_object_add(e, "at", crash_timestamp(r->at_usec));
	json_object_object_add(e, "state", json_object_new_string(crash_report_name(r->state)));
	json_object_object_add(e, "percent", json_object_new_int64(r->percent));
	if (r->state == CRASH_REPORT_DONE)
		json_object_object_add(e, "bytes", json_object_new_uint64(r->bytes));
	if (r->state == CRASH_REPORT_FAILED)
		json_object_object_add(e, "reason", json_object_new_string(r->reason ? r->reason : ""));
	json_object_object_add(e, "session", crash_hex64(r->session));
	json_object_object_add(e, "prev_session", crash_hex64(r->prev_session));
	json_object_array_add(list, e);
	json_object_object_add(kd, "last_report_at", crash_timestamp(r->at_usec));
	crash_touch(c);
	if (!open)
		return; /* done, failed and hung are final; the report is kept */

	switch (r->state) {
	case CRASH_REPORT_START:
		if (!json_object_object_get_ex(kd, "started_at", NULL))
			json_object_object_add(kd, "started_at", crash_timestamp(r->at_usec));
		/* fall through */
	case CRASH_REPORT_PROGRESS:
		crash_set_ks(c, kd, CRASH_KS_RUNNING);
		return;
	case CRASH_REPORT_DONE:
		crash_set_ks(c, kd, CRASH_KS_DONE);
		json_object_object_add(kd, "bytes", json_object_new_uint64(r->bytes));
		json_object_object_add(kd, "finished_at", crash_timestamp(r->at_usec));
		crash_kdump_set_deadline(c, 0);
		crash_note(c, "kdump session %016llx reported done (%llu bytes)",
			   (unsigned long long)r->session, (unsigned long long)r->bytes);
		return;
	case CRASH_REPORT_FAILED:
		crash_set_ks(c, kd, CRASH_KS_FAILED);
		json_object_object_add(kd, "reason", json_object_new_string(r->reason ? r->reason : ""));
		json_object_object_add(kd, "finished_at", crash_timestamp(r->at_usec));
		crash_kdump_set_deadline(c, 0);
		crash_note(c, "kdump session %016llx reported failed: %s",
			   (unsigned long long)r->session, r->reason ? r->reason : "");
		return;
	}
}

void crash_kdump_report_dropped(struct crash *c)
{
	json_object *kd = crash_kdump_obj(c), *d;
	int64_t n = json_object_object_get_ex(kd, "reports_dropped", &d) ?
			    json_object_get_int64(d) : 0;

	json_object_object_add(kd, "reports_dropped", json_object_new_int64(n + 1));
	crash_touch(c);
}

void crash_kdump_set_deadline(struct crash *c, uint64_t usec)
{
	json_object *kd = crash_kdump_obj(c);

	c->kdump_watch_usec = usec;
	if (!usec) {
		json_object_object_add(kd, "session_deadline", NULL);
		json_object_object_add(kd, "progress_deadline", NULL);
		return;
	}
	json_object_object_add(kd, c->kdump_ks == CRASH_KS_NONE ? "session_deadline" :
								  "progress_deadline",
			       crash_timestamp(usec));
}

const char *crash_kdump_reason(const struct crash *c)
{
	json_object *kd = crash_sub(c->rec, "kdump");
	const char *r = kd ? crash_get_string(kd, "reason") : NULL;

	return r ? r : "";
}

void crash_kdump_hung(struct crash *c, uint64_t now_usec, const char *fmt, ...)
{
	json_object *kd;
	char reason[256];
	va_list ap;

	if (c->kdump_ks != CRASH_KS_NONE && c->kdump_ks != CRASH_KS_RUNNING)
		return;	/* done, failed and hung are final */
	kd = crash_kdump_obj(c);
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	crash_set_ks(c, kd, CRASH_KS_HUNG);
	json_object_object_add(kd, "reason", json_object_new_string(reason));
	json_object_object_add(kd, "finished_at", crash_timestamp(now_usec));
	crash_kdump_set_deadline(c, 0);
	crash_touch(c);
}
