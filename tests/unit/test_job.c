// SPDX-License-Identifier: MIT
/* Unit tests: child jobs on a real event loop, with real processes. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "io.h"
#include "job.h"

struct outcome {
	bool called;
	int status;
	size_t len;
	char out[JOB_OUTPUT_MAX + 1];
	bool nul_terminated;
};

/* What a child function reports: a typed result, not text. */
struct result {
	int code;
	uint64_t bytes;
	char what[32];
};

static void on_done(struct job *j, int status, const void *output, size_t len,
		    void *userdata)
{
	struct outcome *o = userdata;

	(void)j;
	assert_false(o->called);
	o->called = true;
	o->status = status;
	o->len = len;
	assert_true(len <= JOB_OUTPUT_MAX);
	memcpy(o->out, output, len);
	o->nul_terminated = ((const char *)output)[len] == '\0';
}

/* Runs the loop until the job is done, for at most 10 s. */
static void run_until(sd_event *e, const struct outcome *o)
{
	for (int i = 0; i < 1000 && !o->called; i++)
		assert_true(sd_event_run(e, 10 * 1000) >= 0);
	assert_true(o->called);
}

static int setup(void **state)
{
	sd_event *e = NULL;

	if (sd_event_new(&e) < 0)
		return -1;
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	sd_event_unref(*state);
	return 0;
}

static int child_result(int out_fd, void *userdata)
{
	struct result r = { .code = 42, .bytes = UINT64_C(1) << 40 };

	(void)userdata;
	snprintf(r.what, sizeof(r.what), "phys_base");
	/* Noise on stdout must not reach the parent's output. */
	printf("noise\n");
	fflush(stdout);
	return io_write_full(out_fd, &r, sizeof(r)) < 0 ? 2 : 0;
}

static void test_fn_typed_result(void **state)
{
	static struct outcome o;
	struct result r;
	struct job *j = NULL;

	memset(&o, 0, sizeof(o));
	assert_int_equal(job_run_fn(*state, child_result, NULL, 10 * 1000000ULL, on_done,
				    &o, &j), 0);
	run_until(*state, &o);
	assert_int_equal(o.status, 0);
	assert_int_equal(o.len, sizeof(r));
	memcpy(&r, o.out, sizeof(r));
	assert_int_equal(r.code, 42);
	assert_true(r.bytes == UINT64_C(1) << 40);
	assert_string_equal(r.what, "phys_base");
}

static int child_exit7(int out_fd, void *userdata)
{
	(void)out_fd;
	(void)userdata;
	return 7;
}

static void test_fn_exit_code(void **state)
{
	static struct outcome o;
	struct job *j = NULL;

	memset(&o, 0, sizeof(o));
	assert_int_equal(job_run_fn(*state, child_exit7, NULL, 10 * 1000000ULL, on_done,
				    &o, &j), 0);
	run_until(*state, &o);
	assert_int_equal(o.status, 7);
	assert_int_equal(o.len, 0);
}

static int child_flood(int out_fd, void *userdata)
{
	static char buf[JOB_OUTPUT_MAX + 20000];

	(void)userdata;
	memset(buf, 'x', sizeof(buf));
	/* Blocks for good if the parent stops reading at its cap. */
	return io_write_full(out_fd, buf, sizeof(buf)) < 0 ? 2 : 0;
}

static void test_fn_output_capped(void **state)
{
	static struct outcome o;
	struct job *j = NULL;

	memset(&o, 0, sizeof(o));
	assert_int_equal(job_run_fn(*state, child_flood, NULL, 10 * 1000000ULL, on_done,
				    &o, &j), 0);
	run_until(*state, &o);
	assert_int_equal(o.status, 0);
	assert_int_equal(o.len, JOB_OUTPUT_MAX);
	assert_true(o.out[0] == 'x' && o.out[JOB_OUTPUT_MAX - 1] == 'x');
}

static int child_killed(int out_fd, void *userdata)
{
	(void)out_fd;
	(void)userdata;
	raise(SIGKILL);
	return 0;
}

static void test_fn_signal(void **state)
{
	static struct outcome o;
	struct job *j = NULL;

	memset(&o, 0, sizeof(o));
	assert_int_equal(job_run_fn(*state, child_killed, NULL, 10 * 1000000ULL, on_done,
				    &o, &j), 0);
	run_until(*state, &o);
	assert_int_equal(o.status, 128 + SIGKILL);
}

static void test_argv_text(void **state)
{
	static struct outcome o;
	char *argv[] = { "sh", "-c", "echo hello; echo oops >&2; exit 3", NULL };
	struct job *j = NULL;

	memset(&o, 0, sizeof(o));
	assert_int_equal(job_run_argv(*state, argv, 10 * 1000000ULL, on_done, &o, &j), 0);
	run_until(*state, &o);
	assert_int_equal(o.status, 3);
	assert_true(o.nul_terminated);
	assert_int_equal(o.len, strlen("hello\noops\n"));
	assert_memory_equal(o.out, "hello\noops\n", o.len);
}

static void test_argv_missing(void **state)
{
	static struct outcome o;
	char *argv[] = { "/nonexistent/pb-no-such-tool", NULL };
	struct job *j = NULL;

	memset(&o, 0, sizeof(o));
	assert_int_equal(job_run_argv(*state, argv, 10 * 1000000ULL, on_done, &o, &j), 0);
	run_until(*state, &o);
	assert_int_equal(o.status, 127);
	assert_true(o.nul_terminated);
	assert_non_null(strstr(o.out, "cannot run /nonexistent/pb-no-such-tool"));
}

static void test_timeout(void **state)
{
	static struct outcome o;
	char *argv[] = { "sleep", "10", NULL };
	struct job *j = NULL;

	memset(&o, 0, sizeof(o));
	assert_int_equal(job_run_argv(*state, argv, 100 * 1000ULL, on_done, &o, &j), 0);
	run_until(*state, &o);
	assert_int_equal(o.status, -ETIMEDOUT);
}

static void test_cancel(void **state)
{
	static struct outcome o;
	char *argv[] = { "sleep", "10", NULL };
	struct job *j = NULL;

	memset(&o, 0, sizeof(o));
	assert_int_equal(job_run_argv(*state, argv, 10 * 1000000ULL, on_done, &o, &j), 0);
	assert_non_null(j);
	job_cancel(j);
	job_cancel(NULL);
	for (int i = 0; i < 10; i++)
		assert_true(sd_event_run(*state, 10 * 1000) >= 0);
	assert_false(o.called);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fn_typed_result),
		cmocka_unit_test(test_fn_exit_code),
		cmocka_unit_test(test_fn_output_capped),
		cmocka_unit_test(test_fn_signal),
		cmocka_unit_test(test_argv_text),
		cmocka_unit_test(test_argv_missing),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_cancel),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
