// SPDX-License-Identifier: MIT
/*
 * The /v1 routes of the local API (api.h): the VMs through the daemon's
 * api_ops, the crashes straight from the spool.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "index.h"
#include "common.h"
#include "spool.h"
#include "util.h"

/* A VM spec is a config line's value: well under the body cap. */
#define API_SPEC_MAX 4096
#define API_JSON_DEPTH_MAX 8
/* Ids begin with the detection time, ts_format_basic()'s 23 characters. */
#define API_ID_TS_LEN 23

struct api_v1 {
	struct spool *spool;
	const struct index *index;
	const struct api_ops *ops;
	void *ud;
};

/* The crash states of docs/record.md, and "open" for every one but closed. */
static const char *const api_crash_states[] = {
	"detected", "held", "kdump_running", "kdump_finished", "kdump_failed",
	"kdump_timeout", "snapshotting", "closed", "open",
};

/* An op's negative errno as a status: the op's contract in api.h. */
static int api_v1_op_error(struct api_response *resp, int r, const char *err)
{
	unsigned int status;

	switch (r) {
	case -EINVAL:
		status = 400;
		break;
	case -ENOENT:
		status = 404;
		break;
	case -EEXIST:
	case -E2BIG:
	case -EBUSY:
		status = 409;
		break;
	default:
		status = 500;
		break;
	}
	return api_reply_error(resp, status, "%s", err[0] ? err : strerror(-r));
}

/* -- /v1/vms -- */

static int api_v1_vms_get(const struct api_request *rq, struct api_response *resp,
			  void *userdata)
{
	struct api_v1 *v = userdata;
	json_object *arr = NULL;
	int r;

	r = api_request_check_query(rq, NULL, 0, resp);
	if (r < 0)
		return r == -EINVAL ? 0 : r;
	r = v->ops->vms_list(v->ud, &arr);
	if (r < 0)
		return api_reply_error(resp, 500, "cannot list the VMs: %s", strerror(-r));
	if (!json_object_is_type(arr, json_type_array)) {
		json_object_put(arr);
		return api_reply_error(resp, 500, "the VM list is not an array");
	}
	return api_reply_json(resp, 200, arr);
}

/*
 * The body as one JSON object, strictly: nothing after it, a bounded depth.
 * Fills @resp with a 400 and returns -EINVAL otherwise.
 */
static int api_v1_parse_body(const struct api_request *rq, json_object **ret,
			     struct api_response *resp)
{
	struct json_tokener *tok;
	json_object *obj;
	size_t end;
	int r;

	if (rq->body_len == 0) {
		r = api_reply_error(resp, 400, "a JSON object body is required");
		return r < 0 ? r : -EINVAL;
	}
	tok = json_tokener_new_ex(API_JSON_DEPTH_MAX);
	if (!tok)
		return -ENOMEM;
	obj = json_tokener_parse_ex(tok, rq->body, (int)rq->body_len);
	end = json_tokener_get_parse_end(tok);
	if (!obj || json_tokener_get_error(tok) != json_tokener_success) {
		r = api_reply_error(resp, 400, "malformed JSON: %s",
				    json_tokener_error_desc(json_tokener_get_error(tok)));
		json_tokener_free(tok);
		json_object_put(obj);
		return r < 0 ? r : -EINVAL;
	}
	json_tokener_free(tok);
	end += strspn(rq->body + end, " \t\r\n");
	if (end != rq->body_len || !json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		r = api_reply_error(resp, 400, end != rq->body_len
						       ? "malformed JSON: data after the object"
						       : "the body must be a JSON object");
		return r < 0 ? r : -EINVAL;
	}
	*ret = obj;
	return 0;
}

static int api_v1_vms_post(const struct api_request *rq, struct api_response *resp,
			   void *userdata)
{
	struct api_v1 *v = userdata;
	char err[256] = "", name[VM_NAME_MAX + 1];
	json_object *body = NULL, *spec = NULL, *reply;
	const char *s;
	size_t name_len;
	int r;

	r = api_request_check_query(rq, NULL, 0, resp);
	if (r < 0)
		return r == -EINVAL ? 0 : r;
	r = api_v1_parse_body(rq, &body, resp);
	if (r < 0)
		return r == -EINVAL ? 0 : r;
	json_object_object_foreach(body, key, val) {
		if (strcmp(key, "spec") != 0) {
			r = api_reply_error(resp, 400, "unknown key '%.64s' (known: spec)", key);
			json_object_put(body); /* @key is its */
			return r;
		}
		spec = val;
	}
	if (!spec || !json_object_is_type(spec, json_type_string) ||
	    json_object_get_string_len(spec) == 0) {
		json_object_put(body);
		return api_reply_error(resp, 400, "\"spec\" must be a VM spec string, NAME,qmp=PATH[,KEY=VALUE...]");
	}
	s = json_object_get_string(spec);
	if (json_object_get_string_len(spec) > API_SPEC_MAX ||
	    strlen(s) != (size_t)json_object_get_string_len(spec)) {
		json_object_put(body);
		return api_reply_error(resp, 400, "\"spec\" is longer than %d bytes or holds a NUL",
				       API_SPEC_MAX);
	}
	name_len = strcspn(s, ",");
	snprintf(name, sizeof(name), "%.*s", (int)(name_len < VM_NAME_MAX ? name_len : VM_NAME_MAX), s);
	r = v->ops->vm_add(v->ud, s, err, sizeof(err));
	json_object_put(body);
	if (r < 0)
		return api_v1_op_error(resp, r, err);
	reply = json_object_new_object();
	if (!reply || json_object_object_add(reply, "name", json_object_new_string(name)) < 0 ||
	    json_object_object_add(reply, "added", json_object_new_boolean(true)) < 0) {
		json_object_put(reply);
		return -ENOMEM;
	}
	return api_reply_json(resp, 201, reply);
}

static int api_v1_vm_delete(const struct api_request *rq, struct api_response *resp,
			    void *userdata)
{
	struct api_v1 *v = userdata;
	const char *name = rq->path_rest;
	json_object *reply;
	char err[256] = "";
	int r;

	r = api_request_check_query(rq, NULL, 0, resp);
	if (r < 0)
		return r == -EINVAL ? 0 : r;
	if (!name_is_valid(name))
		return api_reply_error(resp, 400, "'%.80s' is not a VM name", name);
	r = v->ops->vm_remove(v->ud, name, err, sizeof(err));
	if (r < 0)
		return api_v1_op_error(resp, r, err);
	reply = json_object_new_object();
	if (!reply || json_object_object_add(reply, "name", json_object_new_string(name)) < 0 ||
	    json_object_object_add(reply, "removed", json_object_new_boolean(true)) < 0) {
		json_object_put(reply);
		return -ENOMEM;
	}
	return api_reply_json(resp, 200, reply);
}

/* -- /v1/crashes -- */

struct api_crash_filter {
	const char *vm;		/* NULL: any */
	const char *state;	/* NULL: any; "open": not closed */
	char since_basic[TS_RFC3339_MAX]; /* "": any time */
	uint64_t limit;
};

/* A 400 filled in (api_reply_error()'s 0) as -EINVAL; its own failure as is. */
static int api_v1_bad_request(int r)
{
	return r < 0 ? r : -EINVAL;
}

/* Fills @f from the query, or @resp with a 400 (-EINVAL). */
static int api_crash_filter_parse(const struct api_request *rq,
				  struct api_crash_filter *f, struct api_response *resp)
{
	static const char *const allowed[] = { "vm", "state", "since", "limit" };
	const char *since, *limit;
	uint64_t since_usec;
	int r;

	*f = (struct api_crash_filter){ .limit = API_CRASHES_DEFAULT_LIMIT };
	r = api_request_check_query(rq, allowed, ARRAY_SIZE(allowed), resp);
	if (r < 0)
		return r;
	f->vm = api_request_query(rq, "vm");
	if (f->vm && !name_is_valid(f->vm))
		return api_v1_bad_request(
			api_reply_error(resp, 400, "vm must be a VM name, not '%.80s'", f->vm));
	f->state = api_request_query(rq, "state");
	if (f->state &&
	    name_table_lookup(api_crash_states, ARRAY_SIZE(api_crash_states), f->state) < 0)
		return api_v1_bad_request(api_reply_error(
			resp, 400,
			"state must be open, detected, held, kdump_running, kdump_finished, kdump_failed, kdump_timeout, snapshotting or closed, not '%.40s'",
			f->state));
	since = api_request_query(rq, "since");
	if (since && (ts_parse_rfc3339(since, &since_usec) < 0 ||
		      ts_format_basic(since_usec, f->since_basic, sizeof(f->since_basic)) < 0))
		return api_v1_bad_request(api_reply_error(
			resp, 400,
			"since must be an RFC 3339 time like 2026-11-24T20:41:55.000000Z, not '%.40s'",
			since));
	limit = api_request_query(rq, "limit");
	if (limit && parse_u64(limit, 1, API_CRASHES_MAX_LIMIT, &f->limit) < 0)
		return api_v1_bad_request(api_reply_error(
			resp, 400, "limit must be a whole number from 1 to %d, not '%.40s'",
			API_CRASHES_MAX_LIMIT, limit));
	return 0;
}

static const char *api_json_str(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* @o's @key as a string, or null. */
static int api_summary_add(json_object *summary, const char *key, const char *value)
{
	return json_object_object_add(summary, key, value ? json_object_new_string(value) : NULL);
}

static json_object *api_crash_summary(json_object *rec, const char *id)
{
	json_object *s = json_object_new_object(), *sub;
	const char *outcome = NULL, *kdump = NULL, *snapshot = NULL;

	if (!s)
		return NULL;
	if (json_object_object_get_ex(rec, "final_action_result", &sub))
		outcome = api_json_str(sub, "outcome");
	if (json_object_object_get_ex(rec, "kdump", &sub))
		kdump = api_json_str(sub, "state");
	if (json_object_object_get_ex(rec, "snapshot", &sub))
		snapshot = api_json_str(sub, "state");
	if (api_summary_add(s, "id", id) < 0 ||
	    api_summary_add(s, "vm", api_json_str(rec, "vm")) < 0 ||
	    api_summary_add(s, "event", api_json_str(rec, "event")) < 0 ||
	    api_summary_add(s, "detected_at", api_json_str(rec, "detected_at")) < 0 ||
	    api_summary_add(s, "state", api_json_str(rec, "state")) < 0 ||
	    api_summary_add(s, "final_action_outcome", outcome) < 0 ||
	    api_summary_add(s, "kdump_state", kdump) < 0 ||
	    api_summary_add(s, "snapshot_state", snapshot) < 0) {
		json_object_put(s);
		return NULL;
	}
	return s;
}

/* Whether the id alone rules the crash out (its time, its VM part). */
static bool api_crash_id_skipped(const char *id, const struct api_crash_filter *f)
{
	size_t n;

	if (f->vm) {
		/* "<ts>-<vm>[-N]": a VM "a-1" and VM "a"'s second crash look
		 * alike, so the record's vm decides; this only skips. */
		n = strlen(f->vm);
		if (strlen(id) < API_ID_TS_LEN + 1 + n ||
		    strncmp(id + API_ID_TS_LEN + 1, f->vm, n) != 0 ||
		    (id[API_ID_TS_LEN + 1 + n] != '\0' && id[API_ID_TS_LEN + 1 + n] != '-'))
			return true;
	}
	return false;
}

static bool api_crash_state_matches(const char *state, const struct api_crash_filter *f)
{
	if (!f->state)
		return true;
	if (!state)
		return false;
	if (strcmp(f->state, "open") == 0)
		return strcmp(state, "closed") != 0;
	return strcmp(state, f->state) == 0;
}

/* A summary from the index: the same object as api_crash_summary()'s. */
static json_object *api_index_summary(const struct crash_summary *cs)
{
	json_object *s = json_object_new_object();
	char when[TS_RFC3339_MAX];

	if (!s)
		return NULL;
	if (ts_format_rfc3339(cs->detected_usec, when, sizeof(when)) < 0)
		when[0] = '\0';
	if (api_summary_add(s, "id", cs->id) < 0 || api_summary_add(s, "vm", cs->vm) < 0 ||
	    api_summary_add(s, "event", cs->event) < 0 ||
	    api_summary_add(s, "detected_at", when[0] ? when : NULL) < 0 ||
	    api_summary_add(s, "state", crash_state_to_string(cs->state)) < 0 ||
	    api_summary_add(s, "final_action_outcome", cs->outcome[0] ? cs->outcome : NULL) < 0 ||
	    api_summary_add(s, "kdump_state", cs->kdump[0] ? cs->kdump : NULL) < 0 ||
	    api_summary_add(s, "snapshot_state", cs->snapshot[0] ? cs->snapshot : NULL) < 0) {
		json_object_put(s);
		return NULL;
	}
	return s;
}

/* The listing from the index: no record read, whatever the spool's size. */
static int api_v1_crashes_from_index(const struct api_v1 *v, const struct api_crash_filter *f,
				     struct api_response *resp)
{
	json_object *arr = json_object_new_array();
	size_t n_out = 0;

	if (!arr)
		return -ENOMEM;
	for (size_t i = index_count(v->index); i-- > 0 && n_out < f->limit;) {
		const struct crash_summary *cs = index_at(v->index, i);
		json_object *s;

		if (f->since_basic[0] && strncmp(cs->id, f->since_basic, API_ID_TS_LEN) < 0)
			break;
		if ((f->vm && strcmp(cs->vm, f->vm) != 0) ||
		    !api_crash_state_matches(crash_state_to_string(cs->state), f))
			continue;
		s = api_index_summary(cs);
		if (!s || json_object_array_add(arr, s) < 0) {
			json_object_put(s);
			json_object_put(arr);
			return -ENOMEM;
		}
		n_out++;
	}
	return api_reply_json(resp, 200, arr);
}

static int api_v1_crashes_get(const struct api_request *rq, struct api_response *resp,
			      void *userdata)
{
	struct api_v1 *v = userdata;
	struct api_crash_filter f;
	json_object *arr;
	char **ids = NULL;
	size_t n_ids = 0, n_out = 0;
	uint64_t start_usec = ts_now_monotonic_usec();
	bool partial = false;
	int r;

	r = api_crash_filter_parse(rq, &f, resp);
	if (r < 0)
		return r == -EINVAL ? 0 : r;
	if (v->index)
		return api_v1_crashes_from_index(v, &f, resp);
	r = spool_list(v->spool, &ids, &n_ids);
	if (r < 0)
		return api_reply_error(resp, 500, "cannot list the spool: %s", strerror(-r));
	arr = json_object_new_array();
	if (!arr) {
		spool_free_ids(ids, n_ids);
		return -ENOMEM;
	}
	/* Newest first: ids sort by detection time. The walk stops at the
	 * limit, at the first id older than since, or past the time budget. */
	for (size_t i = n_ids; i-- > 0 && n_out < f.limit;) {
		json_object *rec, *s;
		char err[256];

		if (f.since_basic[0] && strncmp(ids[i], f.since_basic, API_ID_TS_LEN) < 0)
			break;
		if (api_crash_id_skipped(ids[i], &f))
			continue;
		if (ts_now_monotonic_usec() - start_usec > API_WALK_BUDGET_USEC) {
			partial = true;
			break;
		}
		r = spool_read_record(v->spool, ids[i], &rec, err, sizeof(err));
		if (r == -ENOMEM)
			break;
		if (r < 0)
			continue; /* removed meanwhile, or unreadable: pbctl show says why */
		if ((f.vm && strcmp(api_json_str(rec, "vm") ?: "", f.vm) != 0) ||
		    !api_crash_state_matches(api_json_str(rec, "state"), &f)) {
			json_object_put(rec);
			continue;
		}
		s = api_crash_summary(rec, ids[i]);
		json_object_put(rec);
		if (!s || json_object_array_add(arr, s) < 0) {
			json_object_put(s);
			r = -ENOMEM;
			break;
		}
		n_out++;
	}
	spool_free_ids(ids, n_ids);
	if (r == -ENOMEM) {
		json_object_put(arr);
		return -ENOMEM;
	}
	r = api_reply_json(resp, 200, arr);
	if (r == 0 && partial) {
		/* The reply is the newest part; a narrower query gets the rest. */
		resp->header_name = "X-Panicbroker-Partial";
		resp->header_value = "time budget";
	}
	return r;
}

static int api_v1_crash_get(const struct api_request *rq, struct api_response *resp,
			    void *userdata)
{
	struct api_v1 *v = userdata;
	const char *id = rq->path_rest;
	json_object *rec;
	char err[256];
	int r;

	r = api_request_check_query(rq, NULL, 0, resp);
	if (r < 0)
		return r == -EINVAL ? 0 : r;
	if (!spool_id_is_valid(id))
		return api_reply_error(resp, 400, "'%.80s' is not a crash id", id);
	r = spool_read_record(v->spool, id, &rec, err, sizeof(err));
	if (r == -ENOENT)
		return api_reply_error(resp, 404, "no crash %s", id);
	if (r < 0)
		return api_reply_error(resp, 500, "%s", err);
	return api_reply_json(resp, 200, rec);
}

/* -- the table -- */

int api_v1_new(struct api *a, struct spool *spool, const struct index *index,
	       const struct api_ops *ops,
	       void *ud, struct api_v1 **ret)
{
	struct api_v1 *v = calloc(1, sizeof(*v));
	int r = 0;

	if (!v)
		return -ENOMEM;
	*v = (struct api_v1){ .spool = spool, .index = index, .ops = ops, .ud = ud };
	if (ops && ops->vms_list)
		r = api_add_route(a, "GET", "/v1/vms", api_v1_vms_get, v);
	if (r == 0 && ops && ops->vm_add)
		r = api_add_route(a, "POST", "/v1/vms", api_v1_vms_post, v);
	if (r == 0 && ops && ops->vm_remove)
		r = api_add_route(a, "DELETE", "/v1/vms/*", api_v1_vm_delete, v);
	if (r == 0 && spool)
		r = api_add_route(a, "GET", "/v1/crashes", api_v1_crashes_get, v);
	if (r == 0 && spool)
		r = api_add_route(a, "GET", "/v1/crashes/*", api_v1_crash_get, v);
	if (r < 0) {
		free(v);
		return r;
	}
	*ret = v;
	return 0;
}

void api_v1_free(struct api_v1 *v)
{
	free(v);
}
