// SPDX-License-Identifier: MIT
/*
 * Unit tests: --on-crash-exec (crash_exec.h) on a real event loop with real
 * programs and a real spool: the record's path as the only argument, the
 * side file of every outcome, at most CRASH_EXEC_MAX_RUNNING at once, a
 * bounded queue, and runs cancelled at free.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "crash_exec.h"
#include "scratch.h"

struct fixture {
	sd_event *e;
	struct spool *spool;
	unsigned int reports;
	char last_outcome[16];
	int last_exit;
};

static int setup(void **state)
{
	static struct fixture f;
	char err[256];

	memset(&f, 0, sizeof(f));
	if (scratch_setup("/tmp/pbtest-exec-XXXXXX") < 0 || sd_event_new(&f.e) < 0 ||
	    spool_open(scratch_dir, true, &f.spool, err, sizeof(err)) < 0)
		return -1;
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	spool_close(f->spool);
	sd_event_unref(f->e);
	return scratch_teardown();
}

static void on_report(void *ud, const struct crash_exec_result *r)
{
	struct fixture *f = ud;

	f->reports++;
	snprintf(f->last_outcome, sizeof(f->last_outcome), "%s", r->outcome);
	f->last_exit = r->exit_status;
	assert_int_equal(r->save_error, 0);
}

/* A script in the scratch directory; its path in @path. */
static void write_program(const char *name, const char *body, char *path, size_t len)
{
	FILE *fp;

	snprintf(path, len, "%s/%s", scratch_dir, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_true(fprintf(fp, "#!/bin/sh\n%s", body) > 0);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(chmod(path, 0755), 0);
}

/* A published crash directory and the close event that names it. */
static void close_crash(struct fixture *f, struct crash_exec *x, const char *id)
{
	struct crash c = { .published = true, .dirfd = -1 };
	json_object *rec = json_object_new_object();
	int dirfd = -1;

	assert_non_null(rec);
	assert_int_equal(spool_publish_crash(f->spool, id, rec, &dirfd), 0);
	json_object_put(rec);
	close(dirfd);
	snprintf(c.id, sizeof(c.id), "%s", id);
	snprintf(c.vm, sizeof(c.vm), "vm1");
	crash_exec_on_event(x, &(struct obs_event){ .type = OBS_CRASH_CLOSED, .vm = "vm1",
						    .crash = &c, .state = CRASH_CLOSED });
}

static json_object *side_file(const char *id)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/crashes/%s/%s", scratch_dir, id, CRASH_EXEC_SIDE_FILE);
	return json_object_from_file(path);
}

static const char *str(json_object *o, const char *key)
{
	json_object *v;

	assert_true(json_object_object_get_ex(o, key, &v));
	return json_object_get_string(v);
}

static void run_until_idle(struct fixture *f, struct crash_exec *x)
{
	unsigned int running, queued;

	for (int i = 0; i < 2000; i++) {
		crash_exec_counts(x, &running, &queued);
		if (!running && !queued)
			return;
		assert_true(sd_event_run(f->e, 10 * 1000) >= 0);
	}
	fail_msg("runs still going after 20 s");
}

static void test_ok_gets_the_record_path(void **state)
{
	struct fixture *f = *state;
	struct crash_exec *x = NULL;
	char prog[256], expect[512];
	json_object *o, *argv;

	write_program("ok", "echo \"$#:$1\"\n", prog, sizeof(prog));
	assert_int_equal(crash_exec_new(f->e, f->spool, prog, 10 * USEC_PER_SEC, on_report, f,
					&x), 0);
	close_crash(f, x, "20260101T000000.000001Z-vm1");
	run_until_idle(f, x);
	o = side_file("20260101T000000.000001Z-vm1");
	assert_non_null(o);
	snprintf(expect, sizeof(expect), "1:%s/crashes/20260101T000000.000001Z-vm1/record.json\n",
		 scratch_dir);
	assert_string_equal(str(o, "outcome"), "ok");
	assert_string_equal(str(o, "exit_status"), "0");
	assert_string_equal(str(o, "output"), expect);
	assert_true(json_object_object_get_ex(o, "argv", &argv));
	assert_int_equal(json_object_array_length(argv), 2);
	json_object_put(o);
	assert_int_equal(f->reports, 0); /* success is not news */
	crash_exec_free(x);
}

static void test_missing_and_relative(void **state)
{
	struct fixture *f = *state;
	struct crash_exec *x = NULL;
	char prog[256], expect[300];
	json_object *o;

	assert_int_equal(crash_exec_new(f->e, f->spool, "relative", USEC_PER_SEC, NULL, NULL, &x),
			 -EINVAL);
	snprintf(prog, sizeof(prog), "%s/missing", scratch_dir);
	assert_int_equal(crash_exec_new(f->e, f->spool, prog, USEC_PER_SEC, on_report, f, &x), 0);
	close_crash(f, x, "20260101T000000.000002Z-vm1");
	run_until_idle(f, x);
	o = side_file("20260101T000000.000002Z-vm1");
	assert_non_null(o);
	assert_string_equal(str(o, "outcome"), "failed");
	assert_string_equal(str(o, "exit_status"), "127");
	snprintf(expect, sizeof(expect), "cannot run %s: No such file or directory", prog);
	assert_non_null(strstr(str(o, "output"), expect));
	json_object_put(o);
	assert_string_equal(f->last_outcome, "failed");
	assert_int_equal(f->last_exit, 127);
	crash_exec_free(x);
}

/*
 * 4 hang (killed at the timeout), the queue takes 64 more, the rest are
 * dropped; freeing it cancels what still waits and runs.
 */
static void test_bounded_running_and_queue(void **state)
{
	struct fixture *f = *state;
	unsigned int n = CRASH_EXEC_MAX_RUNNING + CRASH_EXEC_MAX_QUEUED + 3;
	unsigned int running, queued, dropped = 0, cancelled = 0;
	struct crash_exec *x = NULL;
	char prog[256], id[64];

	write_program("hang", "exec sleep 30\n", prog, sizeof(prog));
	assert_int_equal(crash_exec_new(f->e, f->spool, prog, 60 * USEC_PER_SEC, on_report, f,
					&x), 0);
	for (unsigned int i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "20260101T000001.%06uZ-vm1", i);
		close_crash(f, x, id);
	}
	crash_exec_counts(x, &running, &queued);
	assert_int_equal(running, CRASH_EXEC_MAX_RUNNING);
	assert_int_equal(queued, CRASH_EXEC_MAX_QUEUED);
	assert_int_equal(f->reports, 3);
	assert_string_equal(f->last_outcome, "dropped");
	crash_exec_free(x);
	for (unsigned int i = 0; i < n; i++) {
		json_object *o;

		snprintf(id, sizeof(id), "20260101T000001.%06uZ-vm1", i);
		o = side_file(id);
		assert_non_null(o);
		dropped += strcmp(str(o, "outcome"), "dropped") == 0;
		cancelled += strcmp(str(o, "outcome"), "cancelled") == 0;
		json_object_put(o);
	}
	assert_int_equal(dropped, 3);
	assert_int_equal(cancelled, CRASH_EXEC_MAX_RUNNING + CRASH_EXEC_MAX_QUEUED);
}

static void test_timeout_then_the_queue_moves_on(void **state)
{
	struct fixture *f = *state;
	struct crash_exec *x = NULL;
	char prog[256], id[64];
	json_object *o;

	write_program("slow", "echo \"$1\" | grep -q 000002.000000 && exec sleep 30\nexit 0\n",
		      prog, sizeof(prog));
	assert_int_equal(crash_exec_new(f->e, f->spool, prog, 300 * USEC_PER_MSEC, on_report, f,
					&x), 0);
	for (unsigned int i = 0; i < CRASH_EXEC_MAX_RUNNING + 2; i++) {
		snprintf(id, sizeof(id), "20260101T000002.%06uZ-vm1", i);
		close_crash(f, x, id);
	}
	run_until_idle(f, x);
	o = side_file("20260101T000002.000000Z-vm1");
	assert_string_equal(str(o, "outcome"), "timeout");
	assert_true(json_object_get_type(json_object_object_get(o, "exit_status")) ==
		    json_type_null);
	json_object_put(o);
	for (unsigned int i = 1; i < CRASH_EXEC_MAX_RUNNING + 2; i++) {
		snprintf(id, sizeof(id), "20260101T000002.%06uZ-vm1", i);
		o = side_file(id);
		assert_string_equal(str(o, "outcome"), "ok");
		json_object_put(o);
	}
	assert_string_equal(f->last_outcome, "timeout");
	crash_exec_free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ok_gets_the_record_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_and_relative, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounded_running_and_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_then_the_queue_moves_on, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
