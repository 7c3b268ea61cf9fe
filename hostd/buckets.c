// SPDX-License-Identifier: MIT
/* Crash signature buckets counted (buckets.h). */
#include <stdio.h>
#include <string.h>

#include "buckets.h"
#include "common.h"

static struct bucket *buckets_find(struct buckets *b, const char *key)
{
	/* Linear: a host sees tens of distinct bugs, not thousands. */
	for (size_t i = 0; i < b->n; i++)
		if (strcmp(b->v[i].key, key) == 0)
			return &b->v[i];
	return NULL;
}

int buckets_add(struct buckets *b, const char *bucket, const char *title,
		uint64_t detected_usec, const char *id, const char *vm)
{
	struct bucket *e;

	if (!bucket || !bucket[0]) {
		b->unsigned_count++;
		return 0;
	}
	e = buckets_find(b, bucket);
	if (!e) {
		if (b->n >= BUCKETS_MAX) {
			b->overflow++;
			return 0;
		}
		if (b->n == b->cap) {
			size_t cap = b->cap ? b->cap * 2 : 16;
			struct bucket *v = reallocarray(b->v, cap, sizeof(*v));

			if (!v)
				return -ENOMEM;
			b->v = v;
			b->cap = cap;
		}
		e = &b->v[b->n++];
		*e = (struct bucket){ .first_usec = detected_usec };
		snprintf(e->key, sizeof(e->key), "%s", bucket);
	}
	e->count++;
	if (detected_usec && (!e->first_usec || detected_usec < e->first_usec))
		e->first_usec = detected_usec;
	if (detected_usec >= e->last_usec || !e->last_id[0]) {
		e->last_usec = detected_usec;
		/* The latest crash names the bucket: a later signature
		 * version's title is the better one. */
		if (title && title[0])
			snprintf(e->title, sizeof(e->title), "%s", title);
		snprintf(e->last_id, sizeof(e->last_id), "%s", id ?: "");
		snprintf(e->last_vm, sizeof(e->last_vm), "%s", vm ?: "");
	} else if (!e->title[0] && title) {
		snprintf(e->title, sizeof(e->title), "%s", title);
	}
	return 0;
}

static const char *buckets_json_str(json_object *o, const char *key)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

int buckets_add_record(struct buckets *b, const char *id, json_object *rec)
{
	json_object *sig = NULL;
	const char *detected = buckets_json_str(rec, "detected_at");
	uint64_t usec = 0;

	if (!json_object_object_get_ex(rec, "signature", &sig) ||
	    !json_object_is_type(sig, json_type_object))
		sig = NULL;
	if (detected && ts_parse_rfc3339(detected, &usec) < 0)
		usec = 0;
	return buckets_add(b, buckets_json_str(sig, "bucket"), buckets_json_str(sig, "title"),
			   usec, id, buckets_json_str(rec, "vm"));
}

static int buckets_cmp(const void *pa, const void *pb)
{
	const struct bucket *a = pa, *b = pb;

	if (a->count != b->count)
		return a->count > b->count ? -1 : 1;
	if (a->last_usec != b->last_usec)
		return a->last_usec > b->last_usec ? -1 : 1;
	return strcmp(a->key, b->key);
}

void buckets_sort(struct buckets *b)
{
	if (b->n > 1)
		qsort(b->v, b->n, sizeof(*b->v), buckets_cmp);
}

static json_object *buckets_time(uint64_t usec)
{
	char ts[TS_RFC3339_MAX];

	if (!usec || ts_format_rfc3339(usec, ts, sizeof(ts)) < 0)
		return NULL;
	return json_object_new_string(ts);
}

json_object *buckets_to_json(const struct buckets *b)
{
	json_object *arr = json_object_new_array();

	if (!arr)
		return NULL;
	for (size_t i = 0; i < b->n; i++) {
		const struct bucket *e = &b->v[i];
		json_object *o = json_object_new_object();
		int r;

		if (!o) {
			json_object_put(arr);
			return NULL;
		}
		r = json_object_object_add(o, "bucket", json_object_new_string(e->key));
		r |= json_object_object_add(o, "title",
					    e->title[0] ? json_object_new_string(e->title) : NULL);
		r |= json_object_object_add(o, "count", json_object_new_int64((int64_t)e->count));
		r |= json_object_object_add(o, "first_seen", buckets_time(e->first_usec));
		r |= json_object_object_add(o, "last_seen", buckets_time(e->last_usec));
		r |= json_object_object_add(o, "last_crash", json_object_new_string(e->last_id));
		r |= json_object_object_add(o, "last_vm", json_object_new_string(e->last_vm));
		if (r || json_object_array_add(arr, o) < 0) {
			json_object_put(o);
			json_object_put(arr);
			return NULL;
		}
	}
	return arr;
}

void buckets_clear(struct buckets *b)
{
	free(b->v);
	*b = (struct buckets){ 0 };
}
