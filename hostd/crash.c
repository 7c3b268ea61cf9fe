// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <panicbroker/pvpanic.h>

#include "crash.h"
#include "crash_json.h"
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

json_object *crash_json_time(uint64_t usec)
{
	char buf[TS_RFC3339_MAX];

	if (ts_format_rfc3339(usec, buf, sizeof(buf)) < 0)
		return NULL;
	return json_object_new_string(buf);
}

void crash_touch(struct crash *c)
{
	json_object_object_add(c->rec, "updated_at",
			       crash_json_time(ts_now_realtime_usec()));
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
	json_object_object_add(e, "at", crash_json_time(ts_now_realtime_usec()));
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
	c->kdump_loaded = ev->kdump_loaded;
	c->final_action = final_action;

	rec = c->rec = json_object_new_object();
	json_object_object_add(rec, "format", json_object_new_int(CRASH_RECORD_FORMAT));
	json_object_object_add(rec, "id", NULL);
	json_object_object_add(rec, "vm", json_object_new_string(c->vm));
	json_object_object_add(rec, "event", json_object_new_string(ev->event));
	json_object_object_add(rec, "detected_at", crash_json_time(ev->detected_usec));
	json_object_object_add(rec, "qmp_timestamp",
			       ev->has_qmp_timestamp ?
				       crash_json_time(ev->qmp_timestamp_usec) : NULL);
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
	json_object_object_add(rec, "backend", json_object_new_string(ev->backend));
	if (ev->instance.pid) {
		json_object *in = json_object_new_object();

		json_object_object_add(in, "pid", json_object_new_int64(ev->instance.pid));
		json_object_object_add(in, "start_ticks",
				       json_object_new_uint64(ev->instance.start_ticks));
		json_object_object_add(rec, "vm_instance", in);
	}
	crash_touch(c);
	crash_history_add(c, "detected", ev->source);

	c->spool = s;
	snprintf(c->id, sizeof(c->id), "%s", base);
	json_object_object_add(rec, "id", json_object_new_string(c->id));
	*ret = c;
	return 0;
}

/* The first save: a crash directory with its complete record, or nothing. */
static int crash_publish(struct crash *c)
{
	char base[SPOOL_ID_MAX];
	int r = -EEXIST;

	snprintf(base, sizeof(base), "%s", c->id);
	/* Two crashes of one VM in one microsecond get -2, -3, ... */
	for (unsigned int n = 1; n < 100 && r == -EEXIST; n++) {
		int len = n == 1 ? snprintf(c->id, sizeof(c->id), "%s", base) :
				   snprintf(c->id, sizeof(c->id), "%s-%u", base, n);

		if (len < 0 || (size_t)len >= sizeof(c->id)) {
			r = -ENAMETOOLONG;
			break;
		}
		json_object_object_add(c->rec, "id", json_object_new_string(c->id));
		r = spool_publish_crash(c->spool, c->id, c->rec, &c->dirfd);
	}
	if (r < 0) {
		snprintf(c->id, sizeof(c->id), "%s", base);
		return r;
	}
	c->published = true;
	return 0;
}

const char *crash_json_get_string(json_object *obj, const char *key)
{
	json_object *v;

	if (!obj || !json_object_object_get_ex(obj, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

json_object *crash_json_hex64(uint64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "0x%llx", (unsigned long long)v);
	return json_object_new_string(buf);
}

uint64_t crash_json_get_hex64(json_object *obj, const char *key)
{
	const char *s = crash_json_get_string(obj, key);
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

uint64_t crash_json_get_time(json_object *obj, const char *key)
{
	const char *s = crash_json_get_string(obj, key);
	uint64_t usec;

	if (!s || ts_parse_rfc3339(s, &usec) < 0)
		return 0;
	return usec;
}

json_object *crash_json_sub(json_object *parent, const char *key)
{
	json_object *o;

	if (json_object_object_get_ex(parent, key, &o) &&
	    json_object_is_type(o, json_type_object))
		return o;
	return NULL;
}

json_object *crash_json_obj(json_object *parent, const char *key)
{
	json_object *o = crash_json_sub(parent, key);

	if (o)
		return o;
	o = json_object_new_object();
	json_object_object_add(parent, key, o);
	return o;
}

json_object *crash_json_array(json_object *parent, const char *key)
{
	json_object *a;

	if (json_object_object_get_ex(parent, key, &a) &&
	    json_object_is_type(a, json_type_array))
		return a;
	a = json_object_new_array();
	json_object_object_add(parent, key, a);
	return a;
}

int64_t crash_json_count(json_object *parent, const char *key)
{
	json_object *v;
	int64_t n = json_object_object_get_ex(parent, key, &v) ? json_object_get_int64(v) : 0;

	json_object_object_add(parent, key, json_object_new_int64(n + 1));
	return n;
}

/* The broker channel's part of a resumed crash; what is unreadable is unset. */
static void crash_load_kdump(struct crash *c)
{
	json_object *kd = crash_json_sub(c->rec, "kdump");
	const char *ks = kd ? crash_json_get_string(kd, "state") : NULL;
	int k;

	c->crashed_session = crash_json_get_hex64(kd, "crashed_session");
	c->kdump_ks = CRASH_KS_NONE;
	if (ks) {
		for (k = CRASH_KS_RUNNING; k < CRASH_KS_MAX; k++)
			if (strcmp(ks, crash_ks_to_string((enum crash_ks)k)) == 0)
				c->kdump_ks = (enum crash_ks)k;
	}
	c->kdump_session = crash_json_get_hex64(kd, "session");
	if (c->kdump_ks == CRASH_KS_NONE)
		c->kdump_watch_usec = crash_json_get_time(kd, "session_deadline");
	else if (c->kdump_ks == CRASH_KS_RUNNING)
		c->kdump_watch_usec = crash_json_get_time(kd, "progress_deadline");
}

int crash_load(struct spool *s, const char *id, json_object *rec,
	       struct crash **ret, char *err, size_t errlen)
{
	const char *vm = crash_json_get_string(rec, "vm");
	const char *state = crash_json_get_string(rec, "state");
	const char *fa = crash_json_get_string(rec, "final_action");
	const char *deadline = crash_json_get_string(rec, "kdump_deadline");
	json_object *kl, *hist;
	struct crash *c;
	int st, a, r;

	if (!vm || !name_is_valid(vm) || !state || !fa ||
	    (st = crash_state_from_string(state)) < 0 ||
	    (a = final_action_from_string(fa)) < 0 ||
	    !json_object_object_get_ex(rec, "kdump_loaded", &kl) ||
	    !json_object_object_get_ex(rec, "history", &hist) ||
	    !json_object_is_type(hist, json_type_array)) {
		return err_set(err, errlen, -EBADMSG, "record %s lacks vm/state/final_action/kdump_loaded/history", id);
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	r = spool_open_crash(s, id, &c->dirfd);
	if (r < 0) {
		free(c);
		return err_set(err, errlen, r, "cannot open crash %s: %s", id, strerror(-r));
	}
	snprintf(c->id, sizeof(c->id), "%s", id);
	snprintf(c->vm, sizeof(c->vm), "%s", vm);
	c->state = (enum crash_state)st;
	c->final_action = (enum final_action)a;
	c->kdump_loaded = json_object_get_boolean(kl);
	if (deadline && ts_parse_rfc3339(deadline, &c->kdump_deadline_usec) < 0)
		c->kdump_deadline_usec = 0;
	c->rec = json_object_get(rec);
	c->spool = s;
	c->published = true;
	{
		json_object *m = crash_json_sub(rec, "machine"), *v;

		if (m && json_object_object_get_ex(m, "resume_kdump", &v))
			c->resume_kdump = json_object_get_boolean(v);
		if (m && json_object_object_get_ex(m, "guest_down", &v))
			c->guest_down = json_object_get_boolean(v);
	}
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

void crash_set_kdump_bound(struct crash *c, uint64_t usec)
{
	c->kdump_deadline_usec = usec;
	json_object_object_add(c->rec, "kdump_deadline",
			       usec ? crash_json_time(usec) : NULL);
}

void crash_set_final_result(struct crash *c, const char *outcome,
			    const char *detail)
{
	json_object *res = json_object_new_object();

	json_object_object_add(res, "action",
			       json_object_new_string(final_action_to_string(c->final_action)));
	json_object_object_add(res, "outcome", json_object_new_string(outcome));
	json_object_object_add(res, "detail", json_object_new_string(detail));
	json_object_object_add(res, "at", crash_json_time(ts_now_realtime_usec()));
	json_object_object_add(c->rec, "final_action_result", res);
}

int crash_save(struct crash *c)
{
	if (!c->published)
		return crash_publish(c);
	return spool_write_record(c->dirfd, c->rec);
}

void crash_set_flags(struct crash *c, bool resume_kdump, bool guest_down)
{
	json_object *m;

	if (c->resume_kdump == resume_kdump && c->guest_down == guest_down)
		return;
	c->resume_kdump = resume_kdump;
	c->guest_down = guest_down;
	m = crash_json_obj(c->rec, "machine");
	json_object_object_add(m, "resume_kdump", json_object_new_boolean(resume_kdump));
	json_object_object_add(m, "guest_down", json_object_new_boolean(guest_down));
}

bool crash_instance(const struct crash *c, struct be_instance *ret)
{
	json_object *in = crash_json_sub(c->rec, "vm_instance"), *v;

	*ret = (struct be_instance){ 0 };
	if (!in || !json_object_object_get_ex(in, "pid", &v))
		return false;
	ret->pid = (pid_t)json_object_get_int64(v);
	if (json_object_object_get_ex(in, "start_ticks", &v))
		ret->start_ticks = json_object_get_uint64(v);
	return ret->pid > 0;
}

