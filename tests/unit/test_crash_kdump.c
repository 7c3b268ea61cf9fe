// SPDX-License-Identifier: MIT
/*
 * Unit tests: the kdump kernel's broker channel session in the crash record
 * (crash_kdump_*): kdump.state, deadlines, caps, and what a resumed crash
 * reads back (crash_load); and the machine's verdict on linking a session
 * (cm_kdump_link). Which report moves kdump.state is the crash machine's
 * decision, tested in test_crash_machine.c; here the record is written as
 * the runner writes it after that decision.
 */
#include <errno.h>
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
#include "crash_machine.h"
#include "spool.h"
#include "util.h"

#define T0 1800000000000000ULL /* some instant, in µs */
#define CRASHED 0x1111222233334444ULL
#define KSESSION 0xabcdef0000000001ULL


static int setup(void **state)
{
	(void)state;
	return scratch_setup("/tmp/pbkdumpXXXXXX");
}

static int teardown(void **state)
{
	(void)state;
	return scratch_teardown();
}

/* A crash in memory only, as crash_new() builds its record (no spool). */
static struct crash *mem_crash(bool kdump_loaded)
{
	struct crash *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	c->dirfd = -1;
	c->kdump_loaded = kdump_loaded;
	c->state = CRASH_KDUMP_RUNNING;
	c->rec = json_object_new_object();
	json_object_object_add(c->rec, "history", json_object_new_array());
	return c;
}

static json_object *get(json_object *o, const char *path)
{
	char buf[128], *save = NULL, *key;

	snprintf(buf, sizeof(buf), "%s", path);
	for (key = strtok_r(buf, ".", &save); key; key = strtok_r(NULL, ".", &save))
		if (!o || !json_object_object_get_ex(o, key, &o))
			return NULL;
	return o;
}

static const char *str(json_object *rec, const char *path)
{
	json_object *v = get(rec, path);

	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static bool is_null(json_object *rec, const char *path)
{
	json_object *parent = rec, *v;
	const char *dot = strrchr(path, '.');
	char head[128];

	if (dot) {
		snprintf(head, sizeof(head), "%.*s", (int)(dot - path), path);
		parent = get(rec, head);
	}
	return parent && json_object_object_get_ex(parent, dot ? dot + 1 : path, &v) && !v;
}

static size_t history_len(const struct crash *c)
{
	return json_object_array_length(get(c->rec, "history"));
}

static const char *last_note(const struct crash *c)
{
	json_object *h = get(c->rec, "history");

	return json_object_get_string(get(json_object_array_get_idx(h, json_object_array_length(h) - 1),
					  "reason"));
}

static void test_link(void **state)
{
	static const uint64_t closed[] = { 0x77, CRASHED, 0x99 };
	uint64_t crashed = CRASHED;
	bool loaded = true;
	char why[256];

	(void)state;
		/* The crashed session links, even if an older crash had it too. */
	assert_int_equal(cm_kdump_link(crashed, loaded, CRASHED, closed, 3, why, sizeof(why)),
			 CRASH_LINK_LINKED);
	assert_string_equal(why, "prev_session 1111222233334444 is the crashed session");
	/* A closed crash's session is never taken. */
	assert_int_equal(cm_kdump_link(crashed, loaded, 0x99, closed, 3, why, sizeof(why)),
			 CRASH_LINK_REFUSED);
	assert_string_equal(why, "prev_session 0000000000000099 is the crashed session of a crash already closed");
	/* 0 (a reformat came between) and other sessions: unlinked, taken. */
	assert_int_equal(cm_kdump_link(crashed, loaded, 0, closed, 3, why, sizeof(why)),
			 CRASH_LINK_UNLINKED);
	assert_non_null(strstr(why, "prev_session 0: the kdump kernel found no crashed session"));
	assert_int_equal(cm_kdump_link(crashed, loaded, 0x1234, closed, 3, why, sizeof(why)),
			 CRASH_LINK_UNLINKED);
	assert_string_equal(why, "prev_session 0000000000001234 is not the crashed session 1111222233334444");
	assert_int_equal(cm_kdump_link(crashed, loaded, 0x1234, NULL, 0, why, sizeof(why)),
			 CRASH_LINK_UNLINKED);
	/* The crashed session unknown: nothing links, the rest is taken. */
	crashed = 0;
	assert_int_equal(cm_kdump_link(crashed, loaded, 0, NULL, 0, why, sizeof(why)),
			 CRASH_LINK_UNLINKED);
	assert_int_equal(cm_kdump_link(crashed, loaded, 0x55, NULL, 0, why, sizeof(why)),
			 CRASH_LINK_UNLINKED);
	assert_string_equal(why, "prev_session 0000000000000055, and the crashed session is unknown");
	assert_int_equal(cm_kdump_link(crashed, loaded, 0x77, closed, 3, why, sizeof(why)),
			 CRASH_LINK_REFUSED);
	/* A crash entered without a crash kernel takes only its own. */
	loaded = false;
	crashed = CRASHED;
	assert_int_equal(cm_kdump_link(crashed, loaded, CRASHED, NULL, 0, why, sizeof(why)),
			 CRASH_LINK_LINKED);
	assert_int_equal(cm_kdump_link(crashed, loaded, 0, NULL, 0, why, sizeof(why)), CRASH_LINK_REFUSED);
	assert_non_null(strstr(why, "entered without a crash kernel loaded"));
	assert_int_equal(cm_kdump_link(crashed, loaded, 0x1234, NULL, 0, why, sizeof(why)),
			 CRASH_LINK_REFUSED);
	/* A short buffer is cut, not overrun. */
	assert_int_equal(cm_kdump_link(crashed, loaded, CRASHED, NULL, 0, why, 8), CRASH_LINK_LINKED);
	assert_string_equal(why, "prev_se");
}

static struct crash_kdump_report report(enum crash_report_state st, uint64_t at)
{
	return (struct crash_kdump_report){
		.state = st, .session = KSESSION, .prev_session = CRASHED, .at_usec = at,
	};
}

static void test_done_path(void **state)
{
	struct crash *c = mem_crash(true);
	struct crash_kdump_report r;

	(void)state;
	assert_null(crash_ks_to_string(CRASH_KS_NONE));
	crash_set_crashed_session(c, CRASHED, "panic slot");
	assert_string_equal(str(c->rec, "kdump.crashed_session"), "0x1111222233334444");
	assert_string_equal(str(c->rec, "kdump.crashed_session_from"), "panic slot");
	assert_true(is_null(c->rec, "kdump.state"));

	/* Before the session: the session deadline. */
	crash_kdump_set_watch(c, T0 + 120 * 1000000ULL);
	assert_int_equal(c->kdump_watch_usec, T0 + 120 * 1000000ULL);
	assert_string_equal(str(c->rec, "kdump.session_deadline"), "2027-01-15T08:02:00.000000Z");

	crash_kdump_session(c, KSESSION, CRASHED, CRASH_LINK_LINKED, "linked", T0 + 5);
	crash_kdump_set_state(c, CRASH_KS_RUNNING, NULL);
	assert_int_equal(c->kdump_ks, CRASH_KS_RUNNING);
	assert_int_equal(c->kdump_session, KSESSION);
	assert_int_equal(c->kdump_watch_usec, 0);
	assert_string_equal(str(c->rec, "kdump.state"), "running");
	assert_string_equal(str(c->rec, "kdump.session"), "0xabcdef0000000001");
	assert_string_equal(str(c->rec, "kdump.prev_session"), "0x1111222233334444");
	assert_true(json_object_get_boolean(get(c->rec, "kdump.linked")));
	assert_true(is_null(c->rec, "kdump.session_deadline"));
	assert_string_equal(str(c->rec, "kdump.session_at"), "2027-01-15T08:00:00.000005Z");
	assert_null(get(c->rec, "kdump.unlinked_sessions"));
	assert_string_equal(last_note(c), "kdump session abcdef0000000001 opened: linked");

	/* While it runs: the progress deadline. */
	crash_kdump_set_watch(c, T0 + 300 * 1000000ULL);
	assert_string_equal(str(c->rec, "kdump.progress_deadline"), "2027-01-15T08:05:00.000000Z");
	assert_true(is_null(c->rec, "kdump.session_deadline"));

	r = report(CRASH_REPORT_START, T0 + 10);
	crash_kdump_add_report(c, &r);
	r = report(CRASH_REPORT_START, T0 + 11); /* a second start keeps the first time */
	crash_kdump_add_report(c, &r);
	r = report(CRASH_REPORT_PROGRESS, T0 + 20);
	r.percent = 50;
	crash_kdump_add_report(c, &r);
	assert_int_equal(c->kdump_ks, CRASH_KS_RUNNING);
	assert_string_equal(str(c->rec, "kdump.started_at"), "2027-01-15T08:00:00.000010Z");
	assert_string_equal(str(c->rec, "kdump.last_report_at"), "2027-01-15T08:00:00.000020Z");
	r = report(CRASH_REPORT_DONE, T0 + 30);
	r.percent = 100;
	r.bytes = 123456789012ULL;
	crash_kdump_add_report(c, &r);
	crash_kdump_set_state(c, CRASH_KS_DONE, &r);
	assert_int_equal(c->kdump_ks, CRASH_KS_DONE);
	assert_int_equal(c->kdump_watch_usec, 0);
	assert_string_equal(str(c->rec, "kdump.state"), "done");
	assert_int_equal(json_object_get_int64(get(c->rec, "kdump.bytes")), 123456789012LL);
	assert_string_equal(str(c->rec, "kdump.finished_at"), "2027-01-15T08:00:00.000030Z");
	assert_true(is_null(c->rec, "kdump.progress_deadline"));

	/* done is final (the machine moves it no more): a later report is kept. */
	r = report(CRASH_REPORT_FAILED, T0 + 40);
	r.reason = "too late";
	crash_kdump_add_report(c, &r);
	assert_int_equal(c->kdump_ks, CRASH_KS_DONE);
	assert_null(get(c->rec, "kdump.reason"));
	assert_int_equal(json_object_array_length(get(c->rec, "kdump.reports")), 5);
	assert_string_equal(str(c->rec, "kdump.last_report_at"), "2027-01-15T08:00:00.000040Z");
	{
		json_object *e = json_object_array_get_idx(get(c->rec, "kdump.reports"), 3);

		assert_string_equal(str(e, "state"), "done");
		assert_int_equal(json_object_get_int64(get(e, "bytes")), 123456789012LL);
		assert_int_equal(json_object_get_int64(get(e, "percent")), 100);
		assert_string_equal(str(e, "session"), "0xabcdef0000000001");
		assert_string_equal(str(e, "prev_session"), "0x1111222233334444");
		assert_null(get(e, "reason"));
		e = json_object_array_get_idx(get(c->rec, "kdump.reports"), 4);
		assert_string_equal(str(e, "reason"), "too late");
	}
	crash_kdump_report_dropped(c);
	crash_kdump_report_dropped(c);
	assert_int_equal(json_object_get_int64(get(c->rec, "kdump.reports_dropped")), 2);
	crash_free(c);
}

static void test_failed_and_hung(void **state)
{
	struct crash *c = mem_crash(true);
	struct crash_kdump_report r = report(CRASH_REPORT_FAILED, T0 + 7);

	(void)state;
	/* A report with no session recorded first still gives the state. */
	r.reason = "makedumpfile exited 1";
	crash_kdump_add_report(c, &r);
	crash_kdump_set_state(c, CRASH_KS_FAILED, &r);
	assert_int_equal(c->kdump_ks, CRASH_KS_FAILED);
	assert_string_equal(str(c->rec, "kdump.state"), "failed");
	assert_string_equal(crash_kdump_reason(c), "makedumpfile exited 1");
	assert_string_equal(str(c->rec, "kdump.finished_at"), "2027-01-15T08:00:00.000007Z");
	crash_free(c);

	c = mem_crash(true);
	assert_string_equal(crash_kdump_reason(c), "");
	crash_kdump_set_watch(c, T0 + 1000000);
	crash_kdump_hung(c, T0 + 1000001, "no kdump session within 1 s");
	assert_int_equal(c->kdump_ks, CRASH_KS_HUNG);
	assert_int_equal(c->kdump_watch_usec, 0);
	assert_string_equal(str(c->rec, "kdump.state"), "hung");
	assert_string_equal(crash_kdump_reason(c), "no kdump session within 1 s");
	assert_true(is_null(c->rec, "kdump.session_deadline"));
	assert_null(get(c->rec, "kdump.session"));
	/* A session that comes after hung is recorded; the state stays. */
	crash_kdump_session(c, KSESSION, CRASHED, CRASH_LINK_LINKED, "late", T0 + 2000000);
	assert_int_equal(c->kdump_ks, CRASH_KS_HUNG);
	assert_string_equal(str(c->rec, "kdump.session"), "0xabcdef0000000001");
	crash_free(c);
}

static void test_unlinked_and_refused_are_capped(void **state)
{
	struct crash *c = mem_crash(true);
	json_object *u;
	size_t h0;

	(void)state;
	h0 = history_len(c);
	crash_kdump_session(c, 1, 0, CRASH_LINK_REFUSED, "names a closed crash", T0);
	assert_int_equal(c->kdump_ks, CRASH_KS_NONE);
	assert_int_equal(c->kdump_session, 0);
	assert_null(get(c->rec, "kdump.session"));
	assert_true(is_null(c->rec, "kdump.state"));
	assert_string_equal(last_note(c),
			    "kdump session 0000000000000001 refused: names a closed crash; its reports are not this crash's");
	crash_kdump_session(c, 2, 0x42, CRASH_LINK_UNLINKED, "prev 42", T0 + 1);
	assert_int_equal(c->kdump_session, 2);
	assert_false(json_object_get_boolean(get(c->rec, "kdump.linked")));
	assert_non_null(strstr(last_note(c), "opened, unlinked: prev 42; taken as this crash's"));
	u = get(c->rec, "kdump.unlinked_sessions");
	assert_int_equal(json_object_array_length(u), 2);
	assert_false(json_object_get_boolean(get(json_object_array_get_idx(u, 0), "taken")));
	assert_true(json_object_get_boolean(get(json_object_array_get_idx(u, 1), "taken")));
	assert_string_equal(str(json_object_array_get_idx(u, 1), "prev_session"), "0x42");
	assert_string_equal(str(json_object_array_get_idx(u, 1), "why"), "prev 42");

	/* A guest reopening over and over: four notes, eight entries, counted. */
	for (uint64_t s = 3; s <= 20; s++)
		crash_kdump_session(c, s, 0x42, CRASH_LINK_UNLINKED, "again", T0 + s);
	assert_int_equal(history_len(c), h0 + 4);
	assert_int_equal(json_object_get_int64(get(c->rec, "kdump.sessions")), 20);
	assert_int_equal(json_object_array_length(u), 8);
	assert_int_equal(json_object_get_int64(get(c->rec, "kdump.unlinked_sessions_dropped")), 12);
	assert_int_equal(c->kdump_session, 20);
	crash_free(c);
}

static struct crash *spool_crash(struct spool *s, const char *event)
{
	struct crash_event ev = {
		.vm = "vm1", .event = event, .detected_usec = T0, .source = "unit test",
		.kdump_loaded = strcmp(event, "GUEST_CRASHLOADED") == 0, .backend = "qmp",
	};
	struct crash *c = NULL;

	assert_int_equal(crash_new(s, &ev, FINAL_ACTION_RESTART, &c), 0);
	return c;
}

static struct crash *reload(struct spool *s, struct crash *c)
{
	char err[256] = "";
	json_object *rec = NULL;
	struct crash *back = NULL;

	assert_int_equal(crash_save(c), 0);
	assert_int_equal(spool_read_record(s, c->id, &rec, err, sizeof(err)), 0);
	assert_int_equal(crash_load(s, c->id, rec, &back, err, sizeof(err)), 0);
	json_object_put(rec);
	return back;
}

static void test_resume(void **state)
{
	struct spool *s = NULL;
	struct crash *c, *back;
	struct crash_kdump_report r = report(CRASH_REPORT_DONE, T0 + 3);
	char err[256];

	(void)state;
	assert_int_equal(spool_open(scratch_dir, true, &s, err, sizeof(err)), 0);

	/* No broker channel: nothing of it comes back. */
	c = spool_crash(s, "GUEST_CRASHLOADED");
	back = reload(s, c);
	assert_int_equal(back->crashed_session, 0);
	assert_int_equal(back->kdump_ks, CRASH_KS_NONE);
	assert_int_equal(back->kdump_watch_usec, 0);
	assert_null(get(back->rec, "kdump"));
	crash_free(back);

	/* Waiting for the session: its deadline comes back. */
	crash_set_crashed_session(c, CRASHED, "panic slot");
	crash_kdump_set_watch(c, T0 + 120000000);
	back = reload(s, c);
	assert_int_equal(back->crashed_session, CRASHED);
	assert_int_equal(back->kdump_ks, CRASH_KS_NONE);
	assert_int_equal(back->kdump_watch_usec, T0 + 120000000);
	crash_free(back);

	/* Running: the progress deadline, not the session one. */
	crash_kdump_session(c, KSESSION, CRASHED, CRASH_LINK_LINKED, "linked", T0 + 1);
	crash_kdump_set_state(c, CRASH_KS_RUNNING, NULL);
	crash_kdump_set_watch(c, T0 + 300000000);
	back = reload(s, c);
	assert_int_equal(back->kdump_ks, CRASH_KS_RUNNING);
	assert_int_equal(back->kdump_session, KSESSION);
	assert_int_equal(back->kdump_watch_usec, T0 + 300000000);
	crash_free(back);

	/* Done: no deadline. */
	crash_kdump_add_report(c, &r);
	crash_kdump_set_state(c, CRASH_KS_DONE, &r);
	back = reload(s, c);
	assert_int_equal(back->kdump_ks, CRASH_KS_DONE);
	assert_int_equal(back->kdump_watch_usec, 0);
	crash_free(back);

	/* What is unreadable is unset, never a crash of the loader. */
	json_object_object_add(get(c->rec, "kdump"), "crashed_session", json_object_new_string("0xzz"));
	json_object_object_add(get(c->rec, "kdump"), "session",
			       json_object_new_string("0x1234567890abcdef01"));
	json_object_object_add(get(c->rec, "kdump"), "state", json_object_new_string("exploded"));
	json_object_object_add(get(c->rec, "kdump"), "session_deadline", json_object_new_int(5));
	back = reload(s, c);
	assert_int_equal(back->crashed_session, 0);
	assert_int_equal(back->kdump_session, 0);
	assert_int_equal(back->kdump_ks, CRASH_KS_NONE);
	assert_int_equal(back->kdump_watch_usec, 0);
	crash_free(back);
	json_object_object_add(c->rec, "kdump", json_object_new_string("not an object"));
	back = reload(s, c);
	assert_int_equal(back->kdump_ks, CRASH_KS_NONE);
	crash_free(back);

	crash_free(c);
	spool_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_link),
		cmocka_unit_test(test_done_path),
		cmocka_unit_test(test_failed_and_hung),
		cmocka_unit_test(test_unlinked_and_refused_are_capped),
		cmocka_unit_test_setup_teardown(test_resume, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
