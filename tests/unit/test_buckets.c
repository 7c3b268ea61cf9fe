// SPDX-License-Identifier: MIT
/* Unit tests: crash signature buckets counted (buckets.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "buckets.h"

static const char *str(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static void test_counts_first_last_and_order(void **state)
{
	struct buckets b = { 0 };
	json_object *arr, *o;

	(void)state;
	/* Out of order on purpose: the spool is walked newest first. */
	assert_int_equal(buckets_add(&b, "aaaa000000000001", "panic: one", 3000000, "id3", "vm1"), 0);
	assert_int_equal(buckets_add(&b, "bbbb000000000002", "BUG: two in f", 2000000, "id2", "vm2"), 0);
	assert_int_equal(buckets_add(&b, "aaaa000000000001", "panic: one, old title", 1000000, "id1", "vm3"), 0);
	assert_int_equal(buckets_add(&b, NULL, NULL, 4000000, "id4", "vm1"), 0);
	assert_int_equal(buckets_add(&b, "", "x", 5000000, "id5", "vm1"), 0);
	assert_int_equal(b.n, 2);
	assert_int_equal(b.unsigned_count, 2);
	buckets_sort(&b);
	assert_string_equal(b.v[0].key, "aaaa000000000001");
	assert_int_equal(b.v[0].count, 2);
	assert_int_equal(b.v[0].first_usec, 1000000);
	assert_int_equal(b.v[0].last_usec, 3000000);
	/* The latest crash names the bucket. */
	assert_string_equal(b.v[0].title, "panic: one");
	assert_string_equal(b.v[0].last_id, "id3");
	assert_string_equal(b.v[0].last_vm, "vm1");

	arr = buckets_to_json(&b);
	assert_non_null(arr);
	assert_int_equal(json_object_array_length(arr), 2);
	o = json_object_array_get_idx(arr, 0);
	assert_string_equal(str(o, "bucket"), "aaaa000000000001");
	assert_int_equal(json_object_get_int64(json_object_object_get(o, "count")), 2);
	assert_string_equal(str(o, "first_seen"), "1970-01-01T00:00:01.000000Z");
	assert_string_equal(str(o, "last_seen"), "1970-01-01T00:00:03.000000Z");
	assert_string_equal(str(o, "last_crash"), "id3");
	o = json_object_array_get_idx(arr, 1);
	assert_string_equal(str(o, "title"), "BUG: two in f");
	json_object_put(arr);
	buckets_clear(&b);
	assert_null(b.v);
}

static void test_equal_counts_latest_first(void **state)
{
	struct buckets b = { 0 };

	(void)state;
	assert_int_equal(buckets_add(&b, "old", "t", 1, "a", "v"), 0);
	assert_int_equal(buckets_add(&b, "new", "t", 9, "b", "v"), 0);
	buckets_sort(&b);
	assert_string_equal(b.v[0].key, "new");
	buckets_clear(&b);
}

static void test_from_records(void **state)
{
	struct buckets b = { 0 };
	json_object *rec;

	(void)state;
	rec = json_tokener_parse("{\"vm\": \"web1\", \"detected_at\": \"2026-11-24T20:41:55.123456Z\","
				 " \"signature\": {\"bucket\": \"0123456789abcdef\","
				 " \"title\": \"divide error in f\"}}");
	assert_non_null(rec);
	assert_int_equal(buckets_add_record(&b, "20261124T204155.123456Z-web1", rec), 0);
	json_object_put(rec);
	/* No signature, a malformed one, a bad time: counted apart or timeless. */
	rec = json_tokener_parse("{\"vm\": \"web1\", \"detected_at\": \"yesterday\"}");
	assert_int_equal(buckets_add_record(&b, "x", rec), 0);
	json_object_put(rec);
	rec = json_tokener_parse("{\"signature\": [1, 2]}");
	assert_int_equal(buckets_add_record(&b, "y", rec), 0);
	json_object_put(rec);
	rec = json_tokener_parse("{\"signature\": {\"bucket\": \"0123456789abcdef\"},"
				 " \"detected_at\": 7}");
	assert_int_equal(buckets_add_record(&b, "z", rec), 0);
	json_object_put(rec);
	assert_int_equal(b.n, 1);
	assert_int_equal(b.unsigned_count, 2);
	assert_int_equal(b.v[0].count, 2);
	assert_string_equal(b.v[0].title, "divide error in f");
	assert_string_equal(b.v[0].last_id, "20261124T204155.123456Z-web1");
	assert_true(b.v[0].first_usec == b.v[0].last_usec);
	buckets_clear(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts_first_last_and_order),
		cmocka_unit_test(test_equal_counts_latest_first),
		cmocka_unit_test(test_from_records),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
