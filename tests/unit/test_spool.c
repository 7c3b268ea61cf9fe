// SPDX-License-Identifier: MIT
/* Unit tests: timestamps, the spool and crash records on a real filesystem. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "scratch.h"
#include "crash.h"
#include "spool.h"
#include "util.h"


static int setup(void **state)
{
	(void)state;
	return scratch_setup("/tmp/pbspoolXXXXXX");
}

static int teardown(void **state)
{
	(void)state;
	return scratch_teardown();
}

static void test_rfc3339_roundtrip(void **state)
{
	char buf[TS_RFC3339_MAX];
	uint64_t back;

	(void)state;
	assert_int_equal(ts_format_rfc3339(1700000000123456ULL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "2023-11-14T22:13:20.123456Z");
	assert_int_equal(ts_parse_rfc3339(buf, &back), 0);
	assert_int_equal(back, 1700000000123456ULL);
	assert_int_equal(ts_parse_rfc3339("2023-11-14T22:13:20Z", &back), -EINVAL);
	assert_int_equal(ts_parse_rfc3339("2023-13-14T22:13:20.000000Z", &back), -EINVAL);
	assert_int_equal(ts_parse_rfc3339("2023-11-14T22:13:20.000000Zjunk", &back), -EINVAL);
}

static void test_names(void **state)
{
	(void)state;
	assert_true(name_is_valid("web-1.prod_a"));
	assert_false(name_is_valid(""));
	assert_false(name_is_valid(".."));
	assert_false(name_is_valid("-x"));
	assert_false(name_is_valid("a b"));
	assert_false(name_is_valid("a/b"));
	assert_false(name_is_valid("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
	assert_false(spool_id_is_valid("../etc"));
}

static struct crash *new_crash(struct spool *s, const char *event, uint64_t when)
{
	json_object *data = json_tokener_parse("{\"action\": \"pause\"}");
	struct crash_event ev = {
		.vm = "vm1",
		.event = event,
		.detected_usec = when,
		.has_qmp_timestamp = true,
		.qmp_timestamp_usec = when - 5,
		.data = data,
		.source = "unit test",
		.kdump_loaded = strcmp(event, "GUEST_CRASHLOADED") == 0,
		.backend = "qmp",
	};
	struct crash *c = NULL;

	assert_int_equal(crash_new(s, &ev, FINAL_ACTION_RESTART, &c), 0);
	json_object_put(data);
	/* In memory until the first save, which publishes it. */
	assert_false(c->published);
	assert_int_equal(crash_save(c), 0);
	return c;
}

static const char *get_str(json_object *o, const char *key)
{
	json_object *v;

	assert_true(json_object_object_get_ex(o, key, &v));
	return json_object_get_string(v);
}

static void test_record_lifecycle(void **state)
{
	struct spool *s = NULL, *other = NULL;
	char err[256] = "", path[256];
	json_object *rec, *v;
	struct crash *c, *c2, *loaded;
	char **ids;
	size_t n;
	struct stat st;

	(void)state;
	assert_int_equal(spool_open(scratch_dir, true, &s, err, sizeof(err)), 0);
	/* The spool belongs to one daemon. */
	assert_int_equal(spool_open(scratch_dir, true, &other, err, sizeof(err)), -EWOULDBLOCK);
	assert_non_null(strstr(err, "in use by another panicbrokerd"));

	c = new_crash(s, "GUEST_CRASHLOADED", 1700000000123456ULL);
	assert_string_equal(c->id, "20231114T221320.123456Z-vm1");
	assert_true(c->kdump_loaded);
	/* Published whole: the directory appears with its record, nothing else. */
	snprintf(path, sizeof(path), "%s/crashes/%s/record.json", scratch_dir, c->id);
	assert_int_equal(access(path, R_OK), 0);
	snprintf(path, sizeof(path), "%s/crashes/.new-%s", scratch_dir, c->id);
	assert_int_not_equal(access(path, F_OK), 0);
	assert_int_equal(crash_save(c), 0);
	/* Same microsecond, same VM: a distinct id, nothing overwritten. */
	c2 = new_crash(s, "GUEST_PANICKED", 1700000000123456ULL);
	assert_string_equal(c2->id, "20231114T221320.123456Z-vm1-2");
	assert_int_equal(crash_save(c2), 0);

	snprintf(path, sizeof(path), "%s/crashes/%s/record.json", scratch_dir, c->id);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);

	assert_int_equal(spool_read_record(s, c->id, &rec, err, sizeof(err)), 0);
	assert_string_equal(get_str(rec, "vm"), "vm1");
	assert_string_equal(get_str(rec, "event"), "GUEST_CRASHLOADED");
	assert_string_equal(get_str(rec, "detected_at"), "2023-11-14T22:13:20.123456Z");
	assert_string_equal(get_str(rec, "qmp_timestamp"), "2023-11-14T22:13:20.123451Z");
	assert_string_equal(get_str(rec, "state"), "detected");
	assert_string_equal(get_str(rec, "final_action"), "restart");
	assert_true(json_object_object_get_ex(rec, "kdump_loaded", &v));
	assert_true(json_object_get_boolean(v));

	/* Updates replace the whole file; the reloaded crash carries on. */
	crash_set_kdump_bound(c, 1700000600000000ULL);
	crash_set_state(c, CRASH_KDUMP_RUNNING, "kdump %d", 1);
	for (int i = 0; i < 10; i++)
		crash_add_duplicate(c, "GUEST_CRASHLOADED");
	assert_int_equal(crash_save(c), 0);
	assert_int_equal(crash_load(s, c->id, rec, &loaded, err, sizeof(err)), -0);
	json_object_put(rec);
	crash_free(loaded);
	assert_int_equal(spool_read_record(s, c->id, &rec, err, sizeof(err)), 0);
	assert_string_equal(get_str(rec, "state"), "kdump_running");
	assert_true(json_object_object_get_ex(rec, "duplicate_events", &v));
	assert_int_equal(json_object_get_int(v), 10);
	assert_true(json_object_object_get_ex(rec, "history", &v));
	/* detected + kdump_running + only the first 4 duplicates */
	assert_int_equal(json_object_array_length(v), 6);
	assert_int_equal(crash_load(s, c->id, rec, &loaded, err, sizeof(err)), 0);
	assert_int_equal(loaded->state, CRASH_KDUMP_RUNNING);
	assert_int_equal(loaded->kdump_deadline_usec, 1700000600000000ULL);
	crash_free(loaded);
	json_object_put(rec);

	/* No temporary file is left beside the record. */
	snprintf(path, sizeof(path), "%s/crashes/%s/.record.json.tmp", scratch_dir, c->id);
	assert_int_not_equal(access(path, F_OK), 0);

	assert_int_equal(spool_list(s, &ids, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(ids[0], c->id);
	spool_free_ids(ids, n);

	/* A record that is not JSON is reported, not trusted. */
	snprintf(path, sizeof(path), "%s/crashes/%s/record.json", scratch_dir, c2->id);
	FILE *f = fopen(path, "w");
	fputs("{\"vm\": ", f);
	fclose(f);
	assert_int_equal(spool_read_record(s, c2->id, &rec, err, sizeof(err)), -EBADMSG);
	assert_int_equal(spool_read_record(s, "../../etc", &rec, err, sizeof(err)), -EINVAL);

	crash_free(c);
	crash_free(c2);
	spool_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc3339_roundtrip),
		cmocka_unit_test(test_names),
		cmocka_unit_test_setup_teardown(test_record_lifecycle, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
