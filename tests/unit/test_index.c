// SPDX-License-Identifier: MIT
/*
 * Unit tests: the spool index (index.c): built from the records the first
 * time, then from its own file, reading only open and unknown records;
 * torn lines, vanished crashes and unreadable records.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "scratch.h"
#include "crash.h"
#include "index.h"
#include "spool.h"

#define T0 1800000000000000ULL

static int setup(void **state)
{
	(void)state;
	return scratch_setup("/tmp/pbindexXXXXXX");
}

static int teardown(void **state)
{
	(void)state;
	return scratch_teardown();
}

static struct crash *make_crash(struct spool *s, const char *vm, uint64_t when, bool close)
{
	struct crash_event ev = {
		.vm = vm, .event = "GUEST_PANICKED", .detected_usec = when, .source = "unit test",
		.backend = "qmp", .instance = { .pid = 42, .start_ticks = 7 },
	};
	struct crash *c = NULL;

	assert_int_equal(crash_new(s, &ev, FINAL_ACTION_PRESERVE, &c), 0);
	if (close) {
		crash_set_final_result(c, "preserved", "left as it is");
		crash_set_state(c, CRASH_CLOSED, "closed");
	}
	assert_int_equal(crash_save(c), 0);
	return c;
}

static void append(const char *line)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/index.tsv", scratch_dir);
	fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, line, strlen(line)), (ssize_t)strlen(line));
	close(fd);
}

static void test_index_lifecycle(void **state)
{
	struct spool *s = NULL;
	struct index *x = NULL;
	struct index_stats st;
	struct crash *open_c, *c;
	const struct crash_summary *cs;
	char err[256], path[512];

	(void)state;
	assert_int_equal(spool_open(scratch_dir, true, &s, err, sizeof(err)), 0);
	for (int i = 0; i < 5; i++)
		crash_free(make_crash(s, "vm1", T0 + (uint64_t)i * 1000000, true));
	open_c = make_crash(s, "vm2", T0 + 10000000, false);

	/* No index file yet: every record is read, and the file is written. */
	assert_int_equal(index_open(s, &x, err, sizeof(err)), 0);
	index_stats(x, &st);
	assert_int_equal(index_count(x), 6);
	assert_int_equal(st.records_read, 6);
	cs = index_at(x, 0);
	assert_string_equal(cs->vm, "vm1");
	assert_int_equal(cs->state, CRASH_CLOSED);
	assert_string_equal(cs->outcome, "preserved");
	assert_int_equal(cs->instance.pid, 42);
	assert_int_equal(cs->instance.start_ticks, 7);
	assert_int_equal(cs->detected_usec, T0);
	cs = index_find(x, open_c->id);
	assert_non_null(cs);
	assert_int_equal(cs->state, CRASH_DETECTED);

	/* A change is followed; a new crash lands at the end. */
	crash_set_state(open_c, CRASH_HELD, "held");
	assert_int_equal(crash_save(open_c), 0);
	index_update(x, open_c);
	assert_int_equal(index_find(x, open_c->id)->state, CRASH_HELD);
	c = make_crash(s, "vm3", T0 + 20000000, true);
	index_update(x, c);
	assert_int_equal(index_count(x), 7);
	assert_string_equal(index_at(x, 6)->vm, "vm3");
	index_free(x);

	/* From the file: only the open crash's record is read. */
	assert_int_equal(index_open(s, &x, err, sizeof(err)), 0);
	index_stats(x, &st);
	assert_int_equal(index_count(x), 7);
	assert_int_equal(st.records_read, 1);
	assert_int_equal(index_find(x, open_c->id)->state, CRASH_HELD);
	index_free(x);

	/* A torn line, a foreign line, a crash gone, a record unreadable. */
	append("{\"id\": \"20270115T080000.000000Z-vm9\", \"vm\"");
	append("\n[1, 2]\n");
	snprintf(path, sizeof(path), "%s/crashes/%s/record.json", scratch_dir, c->id);
	assert_int_equal(unlink(path), 0);
	snprintf(path, sizeof(path), "%s/crashes/%s", scratch_dir, c->id);
	assert_int_equal(rmdir(path), 0);
	snprintf(path, sizeof(path), "%s/crashes/%s/record.json", scratch_dir, open_c->id);
	{
		int fd = open(path, O_WRONLY | O_TRUNC);

		assert_true(fd >= 0);
		assert_int_equal(write(fd, "{not json", 9), 9);
		close(fd);
	}
	assert_int_equal(index_open(s, &x, err, sizeof(err)), 0);
	index_stats(x, &st);
	assert_int_equal(st.lines_bad, 2);
	assert_int_equal(st.dropped, 1);
	assert_int_equal(st.records_bad, 1);
	assert_string_equal(st.bad_id[0], open_c->id);
	assert_int_equal(index_count(x), 5);
	assert_null(index_find(x, c->id));
	index_free(x);

	crash_free(c);
	crash_free(open_c);
	spool_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_index_lifecycle, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
