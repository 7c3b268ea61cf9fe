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
