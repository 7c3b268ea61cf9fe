// SPDX-License-Identifier: MIT
/*
 * GET /v1/events (a ring of recent observe.h events) and GET /v1/buckets
 * (signature buckets counted): api_events.h.
 */
#include <stdio.h>
#include <string.h>
#include <systemd/sd-id128.h>
#include <time.h>

#include "api_events.h"
#include "buckets.h"
#include "common.h"
#include "crash.h"
#include "index.h"
#include "spool.h"
#include "util.h"

struct api_event_entry {
	uint64_t seq;
	uint64_t at_usec;
	enum obs_type type;
	char vm[VM_NAME_MAX + 1];
	char crash[SPOOL_ID_MAX];
	char event[24];
	char state[16], prev_state[16];
	char outcome[24];
	char bucket[BUCKETS_KEY_MAX];
	char title[BUCKETS_TITLE_MAX];
	double seconds;
	bool attached;
	bool has_seconds;
};

struct api_events {
	struct spool *spool;
	const struct index *index;	/* NULL: walk the spool */
	char epoch[SD_ID128_STRING_MAX];
	uint64_t last_seq;		/* 0: none yet */
	struct api_event_entry ring[API_EVENTS_RING];
};

static void api_events_copy(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ?: "");
}

void api_events_on_event(void *ud, const struct obs_event *ev)
{
	struct api_events *x = ud;
	struct api_event_entry *e;

	if (ev->type == OBS_RECORD_WRITE || ev->type >= OBS_TYPE_MAX)
		return;
	x->last_seq++;
	e = &x->ring[x->last_seq % API_EVENTS_RING];
	*e = (struct api_event_entry){ .seq = x->last_seq, .at_usec = ev->at_usec,
				       .type = ev->type };
	api_events_copy(e->vm, sizeof(e->vm), ev->vm);
	if (ev->crash) {
		api_events_copy(e->crash, sizeof(e->crash), ev->crash->id);
		api_events_copy(e->bucket, sizeof(e->bucket), crash_signature_bucket(ev->crash));
		api_events_copy(e->title, sizeof(e->title), crash_signature_title(ev->crash));
	}
	switch (ev->type) {
	case OBS_CRASH_OPENED:
		api_events_copy(e->event, sizeof(e->event), ev->event);
		break;
	case OBS_CRASH_STATE:
	case OBS_CRASH_CLOSED:
		api_events_copy(e->state, sizeof(e->state), crash_state_to_string(ev->state));
		api_events_copy(e->prev_state, sizeof(e->prev_state),
				crash_state_to_string(ev->prev_state));
		api_events_copy(e->outcome, sizeof(e->outcome), ev->outcome);
		break;
	case OBS_KDUMP_OUTCOME:
		api_events_copy(e->outcome, sizeof(e->outcome), ev->outcome);
		break;
	case OBS_SNAPSHOT_END:
		api_events_copy(e->outcome, sizeof(e->outcome), ev->outcome);
		e->seconds = ev->seconds;
		e->has_seconds = true;
		break;
	case OBS_VM_ATTACH:
		e->attached = ev->attached;
		break;
	default:
		break;
	}
}

static int api_events_add_str(json_object *o, const char *key, const char *v)
{
	return json_object_object_add(o, key, v[0] ? json_object_new_string(v) : NULL);
}

static json_object *api_event_json(const struct api_event_entry *e)
{
	json_object *o = json_object_new_object();
	char ts[TS_RFC3339_MAX];
	int r;

	if (!o)
		return NULL;
	if (ts_format_rfc3339(e->at_usec, ts, sizeof(ts)) < 0)
		ts[0] = '\0';
	r = json_object_object_add(o, "seq", json_object_new_uint64(e->seq));
	r |= json_object_object_add(o, "type", json_object_new_string(obs_type_name(e->type)));
	r |= api_events_add_str(o, "at", ts);
	r |= api_events_add_str(o, "vm", e->vm);
	r |= api_events_add_str(o, "crash", e->crash);
	r |= api_events_add_str(o, "event", e->event);
	r |= api_events_add_str(o, "state", e->state);
	r |= api_events_add_str(o, "prev_state", e->prev_state);
	r |= api_events_add_str(o, "outcome", e->outcome);
	r |= api_events_add_str(o, "bucket", e->bucket);
	r |= api_events_add_str(o, "title", e->title);
	if (e->has_seconds)
		r |= json_object_object_add(o, "seconds", json_object_new_double(e->seconds));
	if (e->type == OBS_VM_ATTACH)
		r |= json_object_object_add(o, "attached", json_object_new_boolean(e->attached));
	if (r) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static int api_events_get(const struct api_request *rq, struct api_response *resp,
			  void *userdata)
{
	static const char *const allowed[] = { "after", "limit" };
	struct api_events *x = userdata;
	const char *after_s, *limit_s;
	uint64_t after = 0, limit = API_EVENTS_DEFAULT_LIMIT, first, missed = 0, n = 0;
	json_object *reply, *arr;
	int r;

	r = api_request_check_query(rq, allowed, ARRAY_SIZE(allowed), resp);
	if (r < 0)
		return r == -EINVAL ? 0 : r;
	after_s = api_request_query(rq, "after");
	if (after_s && parse_u64(after_s, 0, UINT64_MAX, &after) < 0)
		return api_reply_error(resp, 400, "after must be an event number, not '%.40s'",
				       after_s);
	limit_s = api_request_query(rq, "limit");
	if (limit_s && parse_u64(limit_s, 1, API_EVENTS_MAX_LIMIT, &limit) < 0)
		return api_reply_error(resp, 400, "limit must be a whole number from 1 to %d, not '%.40s'",
				       API_EVENTS_MAX_LIMIT, limit_s);
	/* The ring holds seq first..last. */
	first = x->last_seq >= API_EVENTS_RING ? x->last_seq - API_EVENTS_RING + 1 : 1;
	if (after + 1 < first && x->last_seq > 0) {
		missed = first - after - 1;
		after = first - 1;
	}
	reply = json_object_new_object();
	arr = json_object_new_array();
	if (!reply || !arr) {
		json_object_put(reply);
		json_object_put(arr);
		return -ENOMEM;
	}
	for (uint64_t s = after + 1; s <= x->last_seq && n < limit; s++, n++) {
		json_object *o = api_event_json(&x->ring[s % API_EVENTS_RING]);

		if (!o || json_object_array_add(arr, o) < 0) {
			json_object_put(o);
			json_object_put(arr);
			json_object_put(reply);
			return -ENOMEM;
		}
	}
	r = json_object_object_add(reply, "epoch", json_object_new_string(x->epoch));
	r |= json_object_object_add(reply, "first",
				    json_object_new_uint64(x->last_seq ? first : 0));
	r |= json_object_object_add(reply, "last", json_object_new_uint64(x->last_seq));
	r |= json_object_object_add(reply, "missed", json_object_new_uint64(missed));
	if (r) {
		json_object_put(arr);
		json_object_put(reply);
		return -ENOMEM;
	}
	if (json_object_object_add(reply, "events", arr) < 0) {
		json_object_put(arr);
		json_object_put(reply);
		return -ENOMEM;
	}
	return api_reply_json(resp, 200, reply);
}

static int api_buckets_get(const struct api_request *rq, struct api_response *resp,
			   void *userdata)
{
	struct api_events *x = userdata;
	struct buckets b = { 0 };
	uint64_t start_usec = ts_now_monotonic_usec();
	json_object *arr;
	char **ids = NULL;
	size_t n_ids = 0;
	bool partial = false;
	int r;

	r = api_request_check_query(rq, NULL, 0, resp);
	if (r < 0)
		return r == -EINVAL ? 0 : r;
	if (x->index) {
		/* The index holds every crash's summary: no record is read. */
		for (size_t i = 0; i < index_count(x->index) && r >= 0; i++) {
			const struct crash_summary *s = index_at(x->index, i);

			r = buckets_add(&b, s->bucket, s->title, s->detected_usec, s->id, s->vm);
		}
		goto reply;
	}
	r = spool_list(x->spool, &ids, &n_ids);
	if (r < 0)
		return api_reply_error(resp, 500, "cannot list the spool: %s", strerror(-r));
	/* Newest first, so that a walk cut short counts the recent crashes. */
	for (size_t i = n_ids; i-- > 0;) {
		json_object *rec;
		char err[256];

		if (ts_now_monotonic_usec() - start_usec > API_WALK_BUDGET_USEC) {
			partial = true;
			break;
		}
		r = spool_read_record(x->spool, ids[i], &rec, err, sizeof(err));
		if (r == -ENOMEM)
			break;
		if (r < 0) {
			r = 0;
			continue; /* removed meanwhile, or unreadable */
		}
		r = buckets_add_record(&b, ids[i], rec);
		json_object_put(rec);
		if (r < 0)
			break;
	}
	spool_free_ids(ids, n_ids);
reply:
	if (r < 0) {
		buckets_clear(&b);
		return r;
	}
	buckets_sort(&b);
	arr = buckets_to_json(&b);
	buckets_clear(&b);
	if (!arr)
		return -ENOMEM;
	r = api_reply_json(resp, 200, arr);
	if (r == 0 && partial) {
		resp->header_name = "X-Panicbroker-Partial";
		resp->header_value = "time budget";
	}
	return r;
}

int api_events_new(struct spool *spool, const struct index *index, struct api_events **ret)
{
	struct api_events *x = calloc(1, sizeof(*x));
	sd_id128_t id;
	int r;

	if (!x)
		return -ENOMEM;
	r = sd_id128_randomize(&id);
	if (r < 0) {
		free(x);
		return r;
	}
	sd_id128_to_string(id, x->epoch);
	x->spool = spool;
	x->index = index;
	*ret = x;
	return 0;
}

void api_events_free(struct api_events *x)
{
	free(x);
}

int api_events_add_routes(struct api_events *x, struct api *a)
{
	int r = api_add_route(a, "GET", "/v1/events", api_events_get, x);

	if (r == 0 && x->spool)
		r = api_add_route(a, "GET", "/v1/buckets", api_buckets_get, x);
	return r;
}
