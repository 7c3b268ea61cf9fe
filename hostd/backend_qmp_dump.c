// SPDX-License-Identifier: MIT
/*
 * The QMP backend's memory dump: query-dump-guest-memory-capability (is the
 * format offered?), getfd (QEMU gets its own copy of the caller's file),
 * dump-guest-memory detached, then query-dump every second for progress
 * until DUMP_COMPLETED, within BQ_DUMP_TIMEOUT_USEC.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "backend_qmp.h"
#include "evutil.h"

static void bq_dump_progress(struct bq *bq, json_object *result)
{
	json_object *done, *total;

	if (!result || !bq->op.progress ||
	    !json_object_object_get_ex(result, "completed", &done) ||
	    !json_object_object_get_ex(result, "total", &total))
		return;
	bq->op.progress(bq->op.ud, (uint64_t)json_object_get_int64(done),
			(uint64_t)json_object_get_int64(total));
}

/* DUMP_COMPLETED's data: {"result": {"status", "completed", "total"}, "error"} */
static void bq_dump_complete(struct bq *bq, json_object *payload)
{
	json_object *result = NULL, *status, *error;

	if (payload && json_object_object_get_ex(payload, "result", &result))
		bq_dump_progress(bq, result);
	if (bq->op.kind != BQ_OP_DUMP)
		return; /* the progress callback cancelled it */
	if (payload && json_object_object_get_ex(payload, "error", &error)) {
		bq_op_finish(bq, -EIO, 0, "QEMU: %s", json_object_get_string(error));
		return;
	}
	if (!result || !json_object_object_get_ex(result, "status", &status) ||
	    strcmp(json_object_get_string(status), "completed") != 0) {
		bq_op_finish(bq, -EIO, 0, "QEMU ended the dump without completing it");
		return;
	}
	bq_op_finish(bq, 0, 0, "completed");
}

void bq_dump_on_completed(struct bq *bq, const struct qmp_msg *ev)
{
	if (bq->op.kind != BQ_OP_DUMP)
		return;
	switch (bq->op.step) {
	case BQ_STEP_DUMP:
		/* A small dump may finish before its command's reply is read:
		 * kept until the reply says the dump is ours. */
		json_object_put(bq->op.completed);
		bq->op.completed = ev->payload ? json_object_get(ev->payload) :
						 json_object_new_object();
		if (!bq->op.completed)
			bq_op_finish(bq, -ENOMEM, 0, "out of memory");
		return;
	case BQ_STEP_RUNNING:
		bq_dump_complete(bq, ev->payload);
		return;
	default:
		return; /* not our dump */
	}
}

static void bq_on_query_dump(struct qmp *q, const struct qmp_msg *reply, void *ud)
{
	struct bq *bq = ud;

	(void)q;
	if (!bq_op_reply(bq, BQ_OP_DUMP) || bq->op.step != BQ_STEP_RUNNING)
		return;
	/* A refused poll is only a missed progress update. */
	if (reply->type == QMP_MSG_RETURN)
		bq_dump_progress(bq, reply->payload);
}

static int bq_on_dump_poll(sd_event_source *src, uint64_t usec, void *ud)
{
	struct bq *bq = ud;
	int r;

	if (bq->op.kind != BQ_OP_DUMP || bq->op.step != BQ_STEP_RUNNING)
		return 0;
	if (usec - bq->op.started_usec > BQ_DUMP_TIMEOUT_USEC) {
		bq_op_finish(bq, -ETIMEDOUT, 0, "the dump did not complete within %llu s",
			     BQ_DUMP_TIMEOUT_USEC / USEC_PER_SEC);
		return 0;
	}
	/* Not sent only when the session is ending (which fails the dump by
	 * itself) or the command queue is full: one progress update less. */
	(void)bq_op_send(bq, "query-dump", NULL, bq_on_query_dump);
	r = sd_event_source_set_time_relative(src, BQ_DUMP_POLL_USEC);
	if (r >= 0)
		r = sd_event_source_set_enabled(src, SD_EVENT_ONESHOT);
	if (r < 0)
		bq_op_finish(bq, r, 0, "cannot re-arm the dump's poll timer (no time bound without it): %s",
			     strerror(-r));
	return 0;
}

static void bq_on_dump(struct qmp *q, const struct qmp_msg *reply, void *ud)
{
	struct bq *bq = ud;
	json_object *completed;
	int r;

	(void)q;
	if (!bq_op_reply(bq, BQ_OP_DUMP) || bq->op.step != BQ_STEP_DUMP)
		return;
	if (reply->type == QMP_MSG_ERROR) {
		bq_op_finish(bq, -EREMOTEIO, 0, "dump-guest-memory refused: %s",
			     reply->error_desc);
		return;
	}
	bq->op.step = BQ_STEP_RUNNING;
	if (bq->op.completed) {
		completed = TAKE_PTR(bq->op.completed);
		bq_dump_complete(bq, completed);
		json_object_put(completed);
		return;
	}
	r = sd_event_add_time_relative(bq->event, &bq->op.timer, CLOCK_MONOTONIC,
				       BQ_DUMP_POLL_USEC, 0, bq_on_dump_poll, bq);
	if (r < 0)
		bq_op_finish(bq, r, 0, "cannot arm the dump's poll timer (no time bound without it): %s",
			     strerror(-r));
}

static void bq_on_getfd(struct qmp *q, const struct qmp_msg *reply, void *ud)
{
	struct bq *bq = ud;
	json_object *args;
	int r = -ENOMEM;

	(void)q;
	if (!bq_op_reply(bq, BQ_OP_DUMP) || bq->op.step != BQ_STEP_GETFD)
		return;
	if (reply->type == QMP_MSG_ERROR) {
		bq_op_finish(bq, -EREMOTEIO, 0, "getfd refused: %s", reply->error_desc);
		return;
	}
	bq->op.step = BQ_STEP_DUMP;
	args = json_object_new_object();
	if (args &&
	    json_object_object_add(args, "paging", json_object_new_boolean(0)) == 0 &&
	    json_object_object_add(args, "protocol",
				   json_object_new_string("fd:" BQ_DUMP_FDNAME)) == 0 &&
	    json_object_object_add(args, "detach", json_object_new_boolean(1)) == 0 &&
	    json_object_object_add(args, "format", json_object_new_string(bq->op.format)) == 0)
		r = bq_op_send(bq, "dump-guest-memory", args, bq_on_dump);
	json_object_put(args);
	if (r < 0)
		bq_op_finish(bq, r, 0, "cannot send dump-guest-memory: %s", strerror(-r));
}

static void bq_on_caps(struct qmp *q, const struct qmp_msg *reply, void *ud)
{
	struct bq *bq = ud;
	json_object *formats = NULL, *args;
	bool offered = false;
	int r = -ENOMEM;

	(void)q;
	if (!bq_op_reply(bq, BQ_OP_DUMP) || bq->op.step != BQ_STEP_CAPS)
		return;
	if (reply->type == QMP_MSG_ERROR) {
		bq_op_finish(bq, -EREMOTEIO, 0, "query-dump-guest-memory-capability refused: %s",
			     reply->error_desc);
		return;
	}
	if (reply->payload && json_object_object_get_ex(reply->payload, "formats", &formats) &&
	    json_object_is_type(formats, json_type_array))
		for (size_t i = 0; i < json_object_array_length(formats); i++) {
			const char *f = json_object_get_string(json_object_array_get_idx(formats, i));

			if (f && strcmp(f, bq->op.format) == 0)
				offered = true;
		}
	if (!offered) {
		bq_op_finish(bq, -EOPNOTSUPP, 0,
			     "this QEMU does not offer the %s format (query-dump-guest-memory-capability: %s)",
			     bq->op.format, formats ? json_object_to_json_string(formats) : "none");
		return;
	}
	bq->op.step = BQ_STEP_GETFD;
	args = json_object_new_object();
	if (args &&
	    json_object_object_add(args, "fdname", json_object_new_string(BQ_DUMP_FDNAME)) == 0)
		r = bq_op_send_fd(bq, "getfd", args, bq->op.fd, bq_on_getfd);
	json_object_put(args);
	if (r < 0)
		bq_op_finish(bq, r, 0, "cannot pass the dump file to QEMU: %s", strerror(-r));
}

int bq_dump(struct backend *b, int fd, const char *format,
	    be_progress_fn progress, be_done_fn done, void *ud)
{
	struct bq *bq = container_of(b, struct bq, base);
	int r;

	if (fd < 0 || !format || strlen(format) >= sizeof(bq->op.format))
		return -EINVAL;
	r = bq_op_begin(bq, BQ_OP_DUMP, BQ_STEP_CAPS);
	if (r < 0)
		return r;
	bq->op.fd = fd;
	snprintf(bq->op.format, sizeof(bq->op.format), "%s", format);
	bq->op.progress = progress;
	bq->op.done = done;
	bq->op.ud = ud;
	bq->op.started_usec = ev_now_usec(bq->event);
	r = bq_op_send(bq, "query-dump-guest-memory-capability", NULL, bq_on_caps);
	if (r < 0)
		bq_op_drop(bq);
	return r;
}
