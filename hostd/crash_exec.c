// SPDX-License-Identifier: MIT
/*
 * --on-crash-exec (crash_exec.h): a bounded set of child jobs, a bounded
 * queue behind them, and one side file per run.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "crash_exec.h"
#include "job.h"
#include "util.h"

struct crash_exec_item {
	char id[SPOOL_ID_MAX];
	char vm[VM_NAME_MAX + 1];
};

struct crash_exec_run {
	struct crash_exec *x;
	struct job *job;		/* NULL: the slot is free */
	struct crash_exec_item item;
	uint64_t started_usec;		/* CLOCK_REALTIME */
	uint64_t started_mono_usec;
};

struct crash_exec {
	sd_event *event;
	struct spool *spool;
	char *program;
	uint64_t timeout_usec;
	crash_exec_report_fn report;
	void *ud;
	struct crash_exec_run run[CRASH_EXEC_MAX_RUNNING];
	unsigned int running;
	struct crash_exec_item queue[CRASH_EXEC_MAX_QUEUED];
	unsigned int q_head, q_len;
};

/* The tail of @out as printable text (newlines and tabs kept). */
static char *crash_exec_output_tail(const char *out, size_t len, bool *ret_truncated)
{
	size_t from = len > CRASH_EXEC_OUTPUT_MAX ? len - CRASH_EXEC_OUTPUT_MAX : 0;
	char *s = malloc(len - from + 1);

	if (!s)
		return NULL;
	for (size_t i = from; i < len; i++) {
		unsigned char ch = (unsigned char)out[i];

		s[i - from] = (ch >= 0x20 && ch < 0x7f) || ch == '\n' || ch == '\t' ? (char)ch : '?';
	}
	s[len - from] = '\0';
	*ret_truncated = from > 0;
	return s;
}

static int crash_exec_json_add_time(json_object *o, const char *key, uint64_t usec)
{
	char ts[TS_RFC3339_MAX];

	if (!usec || ts_format_rfc3339(usec, ts, sizeof(ts)) < 0)
		return json_object_object_add(o, key, NULL);
	return json_object_object_add(o, key, json_object_new_string(ts));
}

/* Writes SPOOL/crashes/ID/on-crash-exec.json; 0 or a negative errno. */
static int crash_exec_save(struct crash_exec *x, const struct crash_exec_result *r,
			   uint64_t started_usec, bool truncated)
{
	_cleanup_close_ int dirfd = -1;
	json_object *o = json_object_new_object(), *argv = json_object_new_array();
	char path[PATH_MAX], secs[32];
	const char *text;
	int e = 0;

	if (!o || !argv) {
		json_object_put(o);
		json_object_put(argv);
		return -ENOMEM;
	}
	snprintf(path, sizeof(path), "%s/crashes/%s/" SPOOL_RECORD_NAME,
		 spool_path(x->spool), r->crash_id);
	e |= json_object_array_add(argv, json_object_new_string(x->program));
	e |= json_object_array_add(argv, json_object_new_string(path));
	e |= json_object_object_add(o, "format", json_object_new_int(1));
	e |= json_object_object_add(o, "argv", argv);
	e |= json_object_object_add(o, "outcome", json_object_new_string(r->outcome));
	e |= json_object_object_add(o, "exit_status",
				    r->exit_status >= 0 ? json_object_new_int(r->exit_status) : NULL);
	e |= crash_exec_json_add_time(o, "started_at", started_usec);
	e |= crash_exec_json_add_time(o, "ended_at", ts_now_realtime_usec());
	snprintf(secs, sizeof(secs), "%.3f", r->seconds);
	e |= json_object_object_add(o, "seconds",
				    started_usec ? json_object_new_double_s(r->seconds, secs) : NULL);
	e |= json_object_object_add(o, "timeout_seconds",
				    json_object_new_double((double)x->timeout_usec / USEC_PER_SEC));
	e |= json_object_object_add(o, "output", json_object_new_string(r->output));
	e |= json_object_object_add(o, "output_truncated", json_object_new_boolean(truncated));
	if (e) {
		json_object_put(o);
		return -ENOMEM;
	}
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
						  JSON_C_TO_STRING_SPACED |
						  JSON_C_TO_STRING_NOSLASHESCAPE);
	e = text ? spool_open_crash(x->spool, r->crash_id, &dirfd) : -ENOMEM;
	if (e >= 0) {
		size_t n = strlen(text);
		char *buf = malloc(n + 1);

		/* The record's own convention: a trailing newline. */
		if (!buf) {
			e = -ENOMEM;
		} else {
			memcpy(buf, text, n);
			buf[n] = '\n';
			e = spool_write_atomic(dirfd, CRASH_EXEC_SIDE_FILE, buf, n + 1, 0640);
			free(buf);
		}
	}
	json_object_put(o);
	return e < 0 ? e : 0;
}

/* Saves the outcome and tells it (all but "ok"). */
static void crash_exec_finish(struct crash_exec *x, const struct crash_exec_item *it,
			      const char *outcome, int exit_status, uint64_t started_usec,
			      double seconds, const char *out, size_t len)
{
	bool truncated = false;
	char *tail = crash_exec_output_tail(out ?: "", out ? len : 0, &truncated);
	struct crash_exec_result r = {
		.crash_id = it->id,
		.vm = it->vm,
		.program = x->program,
		.outcome = outcome,
		.exit_status = exit_status,
		.seconds = seconds,
		.output = tail ?: "",
	};

	r.save_error = crash_exec_save(x, &r, started_usec, truncated);
	if ((strcmp(outcome, "ok") != 0 || r.save_error < 0) && x->report)
		x->report(x->ud, &r);
	free(tail);
}

static void crash_exec_pump(struct crash_exec *x);

static void crash_exec_done(struct job *j, int status, const void *output, size_t len,
			    void *userdata)
{
	struct crash_exec_run *run = userdata;
	struct crash_exec *x = run->x;
	double seconds = (double)(ts_now_monotonic_usec() - run->started_mono_usec) / USEC_PER_SEC;
	const char *outcome = status == 0 ? "ok" : status == -ETIMEDOUT ? "timeout" : "failed";

	(void)j;
	run->job = NULL; /* job.c frees it after this returns */
	x->running--;
	crash_exec_finish(x, &run->item, outcome, status >= 0 ? status : -1, run->started_usec,
			  seconds, output, len);
	crash_exec_pump(x);
}

/* Starts queued runs while there is a free slot. */
static void crash_exec_pump(struct crash_exec *x)
{
	while (x->q_len > 0 && x->running < CRASH_EXEC_MAX_RUNNING) {
		struct crash_exec_item it = x->queue[x->q_head];
		struct crash_exec_run *run = NULL;
		char path[PATH_MAX], msg[128];
		char *argv[3];
		int r;

		x->q_head = (x->q_head + 1) % CRASH_EXEC_MAX_QUEUED;
		x->q_len--;
		for (size_t i = 0; i < CRASH_EXEC_MAX_RUNNING && !run; i++)
			if (!x->run[i].job)
				run = &x->run[i];
		if (!run)
			return; /* cannot be: running < max */
		snprintf(path, sizeof(path), "%s/crashes/%s/" SPOOL_RECORD_NAME,
			 spool_path(x->spool), it.id);
		argv[0] = x->program;
		argv[1] = path;
		argv[2] = NULL;
		*run = (struct crash_exec_run){
			.x = x,
			.item = it,
			.started_usec = ts_now_realtime_usec(),
			.started_mono_usec = ts_now_monotonic_usec(),
		};
		r = job_run_argv(x->event, argv, x->timeout_usec, crash_exec_done, run, &run->job);
		if (r < 0) {
			run->job = NULL;
			snprintf(msg, sizeof(msg), "cannot start it: %s", strerror(-r));
			crash_exec_finish(x, &it, "failed", -1, 0, 0, msg, strlen(msg));
			continue;
		}
		x->running++;
	}
}

void crash_exec_on_event(void *ud, const struct obs_event *ev)
{
	struct crash_exec *x = ud;
	struct crash_exec_item it = { 0 };
	static const char full[] = "the queue of runs was full";

	if (ev->type != OBS_CRASH_CLOSED || !ev->crash || !ev->crash->published)
		return;
	snprintf(it.id, sizeof(it.id), "%s", ev->crash->id);
	snprintf(it.vm, sizeof(it.vm), "%s", ev->vm ?: ev->crash->vm);
	if (x->q_len >= CRASH_EXEC_MAX_QUEUED) {
		crash_exec_finish(x, &it, "dropped", -1, 0, 0, full, sizeof(full) - 1);
		return;
	}
	x->queue[(x->q_head + x->q_len) % CRASH_EXEC_MAX_QUEUED] = it;
	x->q_len++;
	crash_exec_pump(x);
}

int crash_exec_new(sd_event *e, struct spool *spool, const char *program,
		   uint64_t timeout_usec, crash_exec_report_fn report, void *ud,
		   struct crash_exec **ret)
{
	struct crash_exec *x;

	if (!program || program[0] != '/' || timeout_usec == 0)
		return -EINVAL;
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->program = strdup(program);
	if (!x->program) {
		free(x);
		return -ENOMEM;
	}
	x->event = e;
	x->spool = spool;
	x->timeout_usec = timeout_usec;
	x->report = report;
	x->ud = ud;
	*ret = x;
	return 0;
}

void crash_exec_free(struct crash_exec *x)
{
	static const char stopped[] = "panicbrokerd stopped first";

	if (!x)
		return;
	for (size_t i = 0; i < CRASH_EXEC_MAX_RUNNING; i++) {
		struct crash_exec_run *run = &x->run[i];

		if (!run->job)
			continue;
		job_cancel(run->job);
		run->job = NULL;
		crash_exec_finish(x, &run->item, "cancelled", -1, run->started_usec,
				  (double)(ts_now_monotonic_usec() - run->started_mono_usec) /
					  USEC_PER_SEC,
				  stopped, sizeof(stopped) - 1);
	}
	for (; x->q_len > 0; x->q_len--) {
		crash_exec_finish(x, &x->queue[x->q_head], "cancelled", -1, 0, 0, stopped,
				  sizeof(stopped) - 1);
		x->q_head = (x->q_head + 1) % CRASH_EXEC_MAX_QUEUED;
	}
	free(x->program);
	free(x);
}

void crash_exec_counts(const struct crash_exec *x, unsigned int *ret_running,
		       unsigned int *ret_queued)
{
	*ret_running = x->running;
	*ret_queued = x->q_len;
}
