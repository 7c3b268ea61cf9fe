// SPDX-License-Identifier: MIT
/*
 * Unit tests: the metrics registry's rules and text rendering (metrics.c),
 * and the daemon's series fed with observe.h events (metrics_daemon.c).
 * The rendered text of a real daemon is checked by promtool in
 * tests/component/test_metrics.py.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "crash.h"
#include "metrics.h"

static char *render(struct metrics *m)
{
	char *text = NULL;
	size_t len = 0;

	assert_int_equal(metrics_render(m, &text, &len), 0);
	assert_non_null(text);
	assert_int_equal(strlen(text), len);
	return text;
}

static void test_render_counter_gauge_histogram(void **state)
{
	static const double bounds[] = { 0.005, 0.5, 2 };
	struct metrics_family *c, *g, *h;
	struct metrics *m;
	const char *get[] = { "GET" }, *post[] = { "POST" };
	char *text;

	(void)state;
	assert_int_equal(metrics_new(&m), 0);
	assert_int_equal(metrics_add(m, &(struct metrics_spec){
		.name = "pb_requests_total", .help = "Requests", .kind = METRICS_COUNTER,
		.labels = { "method" }, .max_series = 4 }, &c), 0);
	assert_int_equal(metrics_add(m, &(struct metrics_spec){
		.name = "pb_level", .help = "A level", .kind = METRICS_GAUGE }, &g), 0);
	assert_int_equal(metrics_add(m, &(struct metrics_spec){
		.name = "pb_latency_seconds", .help = "Latency", .kind = METRICS_HISTOGRAM,
		.buckets = bounds, .n_buckets = 3 }, &h), 0);
	assert_int_equal(metrics_inc(c, get, 1), 0);
	assert_int_equal(metrics_inc(c, post, 2), 0);
	assert_int_equal(metrics_inc(c, get, 1), 0);
	assert_int_equal(metrics_set(g, NULL, 0.25), 0);
	assert_int_equal(metrics_observe(h, NULL, 0.001), 0);
	assert_int_equal(metrics_observe(h, NULL, 0.5), 0);	/* le is inclusive */
	assert_int_equal(metrics_observe(h, NULL, 7), 0);
	text = render(m);
	assert_string_equal(text,
		"# HELP pb_requests_total Requests\n"
		"# TYPE pb_requests_total counter\n"
		"pb_requests_total{method=\"GET\"} 2\n"
		"pb_requests_total{method=\"POST\"} 2\n"
		"# HELP pb_level A level\n"
		"# TYPE pb_level gauge\n"
		"pb_level 0.25\n"
		"# HELP pb_latency_seconds Latency\n"
		"# TYPE pb_latency_seconds histogram\n"
		"pb_latency_seconds_bucket{le=\"0.005\"} 1\n"
		"pb_latency_seconds_bucket{le=\"0.5\"} 2\n"
		"pb_latency_seconds_bucket{le=\"2\"} 2\n"
		"pb_latency_seconds_bucket{le=\"+Inf\"} 3\n"
		"pb_latency_seconds_sum 7.501\n"
		"pb_latency_seconds_count 3\n");
	free(text);
	assert_true(metrics_value(c, get) == 2);
	assert_true(metrics_value(h, NULL) == 3);
	metrics_free(m);
}

static void test_naming_rules(void **state)
{
	static const double one[] = { 1 }, down[] = { 2, 1 };
	struct metrics *m;

	(void)state;
	assert_int_equal(metrics_new(&m), 0);
	/* A counter ends in _total; nothing else does. */
	assert_int_equal(metrics_add(m, &(struct metrics_spec){ .name = "pb_crashes",
		.help = "", .kind = METRICS_COUNTER }, NULL), -EINVAL);
	assert_int_equal(metrics_add(m, &(struct metrics_spec){ .name = "pb_open_total",
		.help = "", .kind = METRICS_GAUGE }, NULL), -EINVAL);
	assert_int_equal(metrics_add(m, &(struct metrics_spec){ .name = "9pb",
		.help = "", .kind = METRICS_GAUGE }, NULL), -EINVAL);
	assert_int_equal(metrics_add(m, &(struct metrics_spec){ .name = "pb-x",
		.help = "", .kind = METRICS_GAUGE }, NULL), -EINVAL);
	assert_int_equal(metrics_add(m, &(struct metrics_spec){ .name = "pb_x",
		.help = "", .kind = METRICS_GAUGE, .labels = { "__name" }, .max_series = 1 },
		NULL), -EINVAL);
	assert_int_equal(metrics_add(m, &(struct metrics_spec){ .name = "pb_x",
		.help = "", .kind = METRICS_GAUGE, .labels = { "a:b" }, .max_series = 1 },
		NULL), -EINVAL);
	/* Labels need a bound. */
	assert_int_equal(metrics_add(m, &(struct metrics_spec){ .name = "pb_x",
		.help = "", .kind = METRICS_GAUGE, .labels = { "vm" } }, NULL), -EINVAL);
	/* Histograms: ascending bounds, no "le" label of their own. */
	assert_int_equal(metrics_add(m, &(struct metrics_spec){ .name = "pb_h_seconds",
		.help = "", .kind = METRICS_HISTOGRAM, .buckets = down, .n_buckets = 2 }, NULL),
		-EINVAL);
	assert_int_equal(metrics_add(m, &(struct metrics_spec){ .name = "pb_h_seconds",
		.help = "", .kind = METRICS_HISTOGRAM, .buckets = one, .n_buckets = 1,
		.labels = { "le" }, .max_series = 2 }, NULL), -EINVAL);
	assert_int_equal(metrics_add(m, &(struct metrics_spec){ .name = "pb_h_seconds",
		.help = "", .kind = METRICS_HISTOGRAM, .buckets = one, .n_buckets = 1 }, NULL), 0);
	assert_int_equal(metrics_add(m, &(struct metrics_spec){ .name = "pb_h_seconds",
		.help = "", .kind = METRICS_GAUGE }, NULL), -EEXIST);
	metrics_free(m);
}

static void test_wrong_use_refused(void **state)
{
	struct metrics_family *c, *g;
	struct metrics *m;
	char longer[METRICS_VALUE_MAX + 2];
	const char *v[] = { longer }, *none[] = { NULL };

	(void)state;
	memset(longer, 'x', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	assert_int_equal(metrics_new(&m), 0);
	assert_int_equal(metrics_add(m, &(struct metrics_spec){ .name = "pb_c_total",
		.help = "", .kind = METRICS_COUNTER, .labels = { "k" }, .max_series = 2 }, &c), 0);
	assert_int_equal(metrics_add(m, &(struct metrics_spec){ .name = "pb_g",
		.help = "", .kind = METRICS_GAUGE }, &g), 0);
	assert_int_equal(metrics_inc(c, v, 1), -EINVAL);	/* too long */
	assert_int_equal(metrics_inc(c, none, 1), -EINVAL);
	assert_int_equal(metrics_inc(c, NULL, 1), -EINVAL);
	v[0] = "a";
	assert_int_equal(metrics_inc(c, v, -1), -EINVAL);	/* counters go up */
	assert_int_equal(metrics_set(c, v, 1), -EINVAL);
	assert_int_equal(metrics_observe(g, NULL, 1), -EINVAL);
	assert_int_equal(metrics_inc(g, NULL, -3), 0);
	assert_true(metrics_value(g, NULL) == -3);
	assert_int_equal(metrics_series_count(c), 0);
	metrics_free(m);
}

static void test_escaping(void **state)
{
	struct metrics_family *f;
	struct metrics *m;
	const char *v[] = { "a\"b\\c\nd" };
	char *text;

	(void)state;
	assert_int_equal(metrics_new(&m), 0);
	assert_int_equal(metrics_add(m, &(struct metrics_spec){ .name = "pb_x",
		.help = "back\\slash\nnewline \"quotes\" stay", .kind = METRICS_GAUGE,
		.labels = { "v" }, .max_series = 1 }, &f), 0);
	assert_int_equal(metrics_set(f, v, 1e-7), 0);
	text = render(m);
	assert_string_equal(text,
		"# HELP pb_x back\\\\slash\\nnewline \"quotes\" stay\n"
		"# TYPE pb_x gauge\n"
		"pb_x{v=\"a\\\"b\\\\c\\nd\"} 1e-07\n");
	free(text);
	metrics_free(m);
}

/* Past max_series, new label sets share the overflow series. */
static void test_overflow(void **state)
{
	struct metrics_family *f;
	struct metrics *m;
	const char *a[] = { "a", "x" }, *b[] = { "b", "x" }, *c[] = { "c", "y" };
	const char *other[] = { "~other", "~other" };
	char *text;

	(void)state;
	assert_int_equal(metrics_new(&m), 0);
	assert_int_equal(metrics_add(m, &(struct metrics_spec){ .name = "pb_c_total",
		.help = "h", .kind = METRICS_COUNTER, .labels = { "vm", "event" },
		.max_series = 2, .overflow = "~other" }, &f), 0);
	assert_int_equal(metrics_inc(f, a, 1), 0);
	assert_int_equal(metrics_inc(f, b, 1), 0);
	assert_int_equal(metrics_inc(f, c, 1), 0);
	assert_int_equal(metrics_inc(f, c, 1), 0);
	assert_int_equal(metrics_inc(f, a, 1), 0);
	assert_int_equal(metrics_series_count(f), 3);
	assert_true(metrics_value(f, a) == 2);
	assert_true(metrics_value(f, other) == 2);
	assert_true(metrics_value(f, c) == -1);
	text = render(m);
	assert_non_null(strstr(text, "pb_c_total{vm=\"~other\",event=\"~other\"} 2\n"));
	free(text);
	/* A VM gone takes its series; the overflow series stays. */
	metrics_drop(f, 0, "a");
	assert_int_equal(metrics_series_count(f), 2);
	assert_true(metrics_value(f, a) == -1);
	assert_int_equal(metrics_inc(f, c, 1), 0);	/* room again */
	assert_true(metrics_value(f, c) == 1);
	metrics_free(m);
}

/* With evict: the least recently updated series goes, its count to "other". */
static void test_evict_keeps_the_most_recent(void **state)
{
	struct metrics_family *f;
	struct metrics *m;
	const char *v[1], *other[] = { "other" };
	char name[16];
	double sum = 0;

	(void)state;
	assert_int_equal(metrics_new(&m), 0);
	assert_int_equal(metrics_add(m, &(struct metrics_spec){ .name = "pb_b_total",
		.help = "h", .kind = METRICS_COUNTER, .labels = { "bucket" },
		.max_series = 3, .evict = true }, &f), 0);
	v[0] = name;
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "b%d", i);
		assert_int_equal(metrics_inc(f, v, 10 + i), 0);
	}
	v[0] = "b0";
	assert_int_equal(metrics_inc(f, v, 1), 0);	/* b0 is recent again: b1 goes next */
	v[0] = "b3";
	assert_int_equal(metrics_inc(f, v, 1), 0);
	assert_int_equal(metrics_series_count(f), 4);	/* 3 + other */
	assert_true(metrics_value(f, other) == 11);
	v[0] = "b1";
	assert_true(metrics_value(f, v) == -1);
	v[0] = "b0";
	assert_true(metrics_value(f, v) == 11);
	/* Many more: still 3 + other, and nothing counted is lost. */
	v[0] = name;
	for (int i = 4; i < 500; i++) {
		snprintf(name, sizeof(name), "b%d", i);
		assert_int_equal(metrics_inc(f, v, 1), 0);
	}
	assert_int_equal(metrics_series_count(f), 4);
	for (int i = 0; i < 500; i++) {
		double x;

		snprintf(name, sizeof(name), "b%d", i);
		x = metrics_value(f, v);
		if (x > 0)
			sum += x;
	}
	sum += metrics_value(f, other);
	assert_true(sum == 10 + 11 + 12 + 1 + 1 + 496);
	metrics_free(m);
}

/* -- the daemon's series -- */

static struct crash *crash_with(const char *id, const char *bucket)
{
	struct crash *c = calloc(1, sizeof(*c));
	json_object *sig = json_object_new_object();

	assert_non_null(c);
	snprintf(c->id, sizeof(c->id), "%s", id);
	c->dirfd = -1;
	c->rec = json_object_new_object();
	if (bucket)
		json_object_object_add(sig, "bucket", json_object_new_string(bucket));
	json_object_object_add(c->rec, "signature", sig);
	return c;
}

static void crash_drop(struct crash *c)
{
	json_object_put(c->rec);
	free(c);
}

static void counts(void *ud, struct metrics_counts *ret)
{
	*ret = *(struct metrics_counts *)ud;
}

static double sample(const char *text, const char *series)
{
	const char *p = text;
	size_t n = strlen(series);

	while ((p = strstr(p, series))) {
		if ((p == text || p[-1] == '\n') && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p += n;
	}
	return -1;
}

static void emit(struct metrics_daemon *d, struct obs_event ev)
{
	metrics_daemon_on_event(d, &ev);
}

static void test_daemon_series(void **state)
{
	struct metrics_counts n = { .vms_supervised = 2, .crashes_open = 1, .spool_crashes = 7 };
	struct metrics_daemon *d;
	struct crash *c1 = crash_with("C1", NULL), *c2 = crash_with("C2", "4f2a9c01");
	char *text;
	size_t len;

	(void)state;
	assert_int_equal(metrics_daemon_new("9.9", counts, &n, &d), 0);
	emit(d, (struct obs_event){ .type = OBS_VM_ADDED, .vm = "web1" });
	emit(d, (struct obs_event){ .type = OBS_VM_ADDED, .vm = "web2" });
	emit(d, (struct obs_event){ .type = OBS_VM_ATTACH, .vm = "web1", .attached = true });
	/* web1: a panic without a signature, closed: bucket "none". */
	emit(d, (struct obs_event){ .type = OBS_CRASH_OPENED, .vm = "web1", .crash = c1,
				    .event = "GUEST_PANICKED" });
	emit(d, (struct obs_event){ .type = OBS_RECORD_WRITE, .vm = "web1", .crash = c1,
				    .seconds = 0.002, .saved = true });
	emit(d, (struct obs_event){ .type = OBS_KDUMP_OUTCOME, .vm = "web1", .crash = c1,
				    .outcome = "hung" });
	emit(d, (struct obs_event){ .type = OBS_SNAPSHOT_END, .vm = "web1", .crash = c1,
				    .outcome = "failed", .seconds = -1 });
	emit(d, (struct obs_event){ .type = OBS_CRASH_CLOSED, .vm = "web1", .crash = c1,
				    .outcome = "applied" });
	/* web2: its bucket counted once over several events. */
	emit(d, (struct obs_event){ .type = OBS_CRASH_OPENED, .vm = "web2", .crash = c2,
				    .event = "GUEST_CRASHLOADED" });
	emit(d, (struct obs_event){ .type = OBS_RECORD_WRITE, .vm = "web2", .crash = c2,
				    .seconds = 0.2, .saved = false });
	emit(d, (struct obs_event){ .type = OBS_KDUMP_OUTCOME, .vm = "web2", .crash = c2,
				    .outcome = "done" });
	emit(d, (struct obs_event){ .type = OBS_SNAPSHOT_END, .vm = "web2", .crash = c2,
				    .outcome = "done", .seconds = 42 });
	emit(d, (struct obs_event){ .type = OBS_CRASH_CLOSED, .vm = "web2", .crash = c2,
				    .outcome = "not-needed" });
	emit(d, (struct obs_event){ .type = OBS_UNLOAD, .vm = "web2", .unload_acked = true,
				    .rtt_us = 180, .tier_us = 900 });
	emit(d, (struct obs_event){ .type = OBS_UNLOAD, .vm = "web2", .unload_acked = false,
				    .tier_us = 0 });
	/* A crash resumed from the spool (never opened here) was counted before. */
	{
		struct crash *c3 = crash_with("C0-resumed", "77777777");

		emit(d, (struct obs_event){ .type = OBS_RECORD_WRITE, .vm = "web1", .crash = c3,
					    .saved = true });
		emit(d, (struct obs_event){ .type = OBS_CRASH_CLOSED, .vm = "web1", .crash = c3,
					    .outcome = "applied" });
		crash_drop(c3);
	}
	/* The count is the VM's running total. */
	emit(d, (struct obs_event){ .type = OBS_MALFORMED, .vm = "web2", .count = 3 });
	emit(d, (struct obs_event){ .type = OBS_MALFORMED, .vm = "web2", .count = 5 });
	emit(d, (struct obs_event){ .type = OBS_MALFORMED, .vm = "web1", .count = 1 });
	/* A hostile outcome word does not make a series of its own. */
	emit(d, (struct obs_event){ .type = OBS_CRASH_CLOSED, .vm = "web2", .outcome = "a b{\"" });

	assert_int_equal(metrics_daemon_render(d, &text, &len), 0);
	assert_true(sample(text, "panicbroker_build_info{version=\"9.9\"}") == 1);
	assert_true(sample(text, "panicbroker_vms_supervised") == 2);
	assert_true(sample(text, "panicbroker_vms_attached") == 1);
	assert_true(sample(text, "panicbroker_crashes_open") == 1);
	assert_true(sample(text, "panicbroker_spool_crashes") == 7);
	assert_true(sample(text, "panicbroker_vm_attached{vm=\"web1\"}") == 1);
	assert_true(sample(text, "panicbroker_vm_attached{vm=\"web2\"}") == 0);
	assert_true(sample(text, "panicbroker_vm_crashes_total{vm=\"web1\",event=\"GUEST_PANICKED\"}") == 1);
	assert_true(sample(text, "panicbroker_vm_crashes_total{vm=\"web2\",event=\"GUEST_CRASHLOADED\"}") == 1);
	/* Every VM's crash counters exist from 0. */
	assert_true(sample(text, "panicbroker_vm_crashes_total{vm=\"web2\",event=\"GUEST_PANICKED\"}") == 0);
	assert_true(sample(text, "panicbroker_vm_crashes_total{vm=\"web2\",event=\"PANIC_RECORD\"}") == 0);
	assert_true(sample(text, "panicbroker_crash_buckets_total{bucket=\"none\"}") == 1);
	assert_true(sample(text, "panicbroker_crash_buckets_total{bucket=\"4f2a9c01\"}") == 1);
	assert_true(sample(text, "panicbroker_crash_buckets_total{bucket=\"77777777\"}") == -1);
	assert_true(sample(text, "panicbroker_crashes_closed_total{outcome=\"applied\"}") == 2);
	assert_true(sample(text, "panicbroker_crashes_closed_total{outcome=\"not-needed\"}") == 1);
	assert_true(sample(text, "panicbroker_crashes_closed_total{outcome=\"other\"}") == 1);
	assert_true(sample(text, "panicbroker_kdump_outcomes_total{outcome=\"done\"}") == 1);
	assert_true(sample(text, "panicbroker_kdump_outcomes_total{outcome=\"hung\"}") == 1);
	assert_true(sample(text, "panicbroker_kdump_outcomes_total{outcome=\"failed\"}") == 0);
	assert_true(sample(text, "panicbroker_snapshots_total{outcome=\"failed\"}") == 1);
	assert_true(sample(text, "panicbroker_snapshots_total{outcome=\"done\"}") == 1);
	assert_true(sample(text, "panicbroker_snapshot_duration_seconds_count") == 1);
	assert_true(sample(text, "panicbroker_snapshot_duration_seconds_bucket{le=\"30\"}") == 0);
	assert_true(sample(text, "panicbroker_snapshot_duration_seconds_bucket{le=\"60\"}") == 1);
	assert_true(sample(text, "panicbroker_unloads_total{acked=\"true\"}") == 1);
	assert_true(sample(text, "panicbroker_unloads_total{acked=\"false\"}") == 1);
	assert_true(sample(text, "panicbroker_unload_round_trip_seconds_bucket{le=\"0.00025\"}") == 1);
	assert_true(sample(text, "panicbroker_unload_round_trip_seconds_count") == 1);
	assert_true(sample(text, "panicbroker_unload_tier_seconds_count") == 1);
	assert_true(sample(text, "panicbroker_guest_malformed_total") == 6);
	assert_true(sample(text, "panicbroker_record_writes_total{result=\"saved\"}") == 2);
	assert_true(sample(text, "panicbroker_record_writes_total{result=\"failed\"}") == 1);
	assert_true(sample(text, "panicbroker_record_write_duration_seconds_count") == 3);
	assert_true(sample(text, "panicbroker_metrics_updates_dropped_total") == 0);
	free(text);

	/* A VM removed takes its per-VM series with it. */
	emit(d, (struct obs_event){ .type = OBS_VM_REMOVED, .vm = "web1" });
	assert_int_equal(metrics_daemon_render(d, &text, &len), 0);
	assert_null(strstr(text, "vm=\"web1\""));
	assert_true(sample(text, "panicbroker_vms_attached") == 0);
	assert_true(sample(text, "panicbroker_crash_buckets_total{bucket=\"none\"}") == 1);
	free(text);
	metrics_daemon_free(d);
	crash_drop(c1);
	crash_drop(c2);
}

/* 1,000 VMs crashing into 5,000 buckets: the series stay bounded. */
static void test_daemon_series_bounded(void **state)
{
	struct metrics_daemon *d;
	struct metrics *m;
	char vm[32], id[32], bucket[32], *text, *line;
	size_t len, n_series = 0;

	(void)state;
	assert_int_equal(metrics_daemon_new("1", NULL, NULL, &d), 0);
	m = metrics_daemon_registry(d);
	assert_non_null(m);
	for (int i = 0; i < 1000; i++) {
		snprintf(vm, sizeof(vm), "vm%d", i);
		emit(d, (struct obs_event){ .type = OBS_VM_ADDED, .vm = vm });
		emit(d, (struct obs_event){ .type = OBS_VM_ATTACH, .vm = vm, .attached = true });
		for (int k = 0; k < 5; k++) {
			struct crash *c;

			snprintf(id, sizeof(id), "%d-%d", i, k);
			snprintf(bucket, sizeof(bucket), "%08x", (unsigned int)(i * 5 + k));
			c = crash_with(id, bucket);
			emit(d, (struct obs_event){ .type = OBS_CRASH_OPENED, .vm = vm, .crash = c,
						    .event = k % 2 ? "GUEST_PANICKED" : "PANIC_RECORD" });
			emit(d, (struct obs_event){ .type = OBS_CRASH_CLOSED, .vm = vm, .crash = c,
						    .outcome = "applied" });
			crash_drop(c);
		}
	}
	assert_int_equal(metrics_daemon_render(d, &text, &len), 0);
	for (line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL)
		if (*line != '#')
			n_series++;
	/* 1000 x (attached + 3 events) + 100 buckets + other + a fixed few. */
	assert_true(n_series < 4000 + METRICS_MAX_CRASH_BUCKETS + 1 + 120);
	assert_true(sample(text, "panicbroker_crash_buckets_total{bucket=\"other\"}") ==
		    5000 - METRICS_MAX_CRASH_BUCKETS);
	assert_true(sample(text, "panicbroker_crash_buckets_total{bucket=\"00001387\"}") == 1);
	assert_true(sample(text, "panicbroker_vms_attached") == 1000);
	free(text);
	metrics_daemon_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render_counter_gauge_histogram),
		cmocka_unit_test(test_naming_rules),
		cmocka_unit_test(test_wrong_use_refused),
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_overflow),
		cmocka_unit_test(test_evict_keeps_the_most_recent),
		cmocka_unit_test(test_daemon_series),
		cmocka_unit_test(test_daemon_series_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
