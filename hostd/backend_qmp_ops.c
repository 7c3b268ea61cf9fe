// SPDX-License-Identifier: MIT
/*
 * The QMP backend's VM operations but the dump: stop, cont, quit,
 * query-memory-size-summary, and the reset (query-status, system_reset,
 * its RESET event, cont when the VM was not running before).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "backend_qmp.h"
#include "evutil.h"

static struct bq *bq_from(struct backend *b)
{
	return container_of(b, struct bq, base);
}

/* ---- one-command operations: stop, cont, quit, the memory size ---- */

static const char *bq_op_command(enum bq_op_kind kind)
{
	switch (kind) {
	case BQ_OP_PAUSE:
		return "stop";
	case BQ_OP_RESUME:
		return "cont";
	case BQ_OP_POWEROFF:
		return "quit";
	case BQ_OP_MEMORY:
		return "query-memory-size-summary";
	default:
		return "?";
	}
}

static void bq_on_simple_reply(struct qmp *q, const struct qmp_msg *reply, void *ud)
{
	struct bq *bq = ud;
	enum bq_op_kind kind;

	(void)q;
	/* Replies come in order: one that is not stale is the current op's. */
	if (!bq_op_reply(bq, bq->op.kind))
		return;
	kind = bq->op.kind;
	if (kind != BQ_OP_PAUSE && kind != BQ_OP_RESUME && kind != BQ_OP_POWEROFF)
		return;
	if (reply->type == QMP_MSG_ERROR) {
		bq_op_refused(bq, bq_op_command(kind), reply);
		return;
	}
	bq_op_finish(bq, 0, 0, "%s", kind == BQ_OP_POWEROFF ? "QEMU quit" : bq_op_command(kind));
}

static void bq_on_memory(struct qmp *q, const struct qmp_msg *reply, void *ud)
{
	struct bq *bq = ud;
	uint64_t bytes = 0;
	json_object *v;

	(void)q;
	if (!bq_op_reply(bq, BQ_OP_MEMORY))
		return;
	if (reply->type == QMP_MSG_ERROR) {
		bq_op_finish(bq, -EREMOTEIO, 0, "query-memory-size-summary refused: %s",
			     reply->error_desc);
		return;
	}
	if (reply->payload && json_object_object_get_ex(reply->payload, "base-memory", &v))
		bytes = (uint64_t)json_object_get_int64(v);
	if (reply->payload && json_object_object_get_ex(reply->payload, "plugged-memory", &v))
		bytes += (uint64_t)json_object_get_int64(v);
	if (!bytes) {
		bq_op_finish(bq, -EPROTO, 0, "query-memory-size-summary gave no base-memory");
		return;
	}
	bq_op_finish(bq, 0, bytes, "%s", "");
}

static int bq_simple(struct backend *b, enum bq_op_kind kind, be_done_fn done,
		     be_size_fn size_done, void *ud)
{
	struct bq *bq = bq_from(b);
	int r = bq_op_begin(bq, kind, BQ_STEP_REPLY);

	if (r < 0)
		return r;
	bq->op.done = done;
	bq->op.size_done = size_done;
	bq->op.ud = ud;
	r = bq_op_send(bq, bq_op_command(kind), NULL,
		       kind == BQ_OP_MEMORY ? bq_on_memory : bq_on_simple_reply);
	if (r < 0)
		bq_op_drop(bq);
	return r;
}

int bq_pause(struct backend *b, be_done_fn done, void *ud)
{
	return bq_simple(b, BQ_OP_PAUSE, done, NULL, ud);
}

int bq_resume(struct backend *b, be_done_fn done, void *ud)
{
	return bq_simple(b, BQ_OP_RESUME, done, NULL, ud);
}

int bq_poweroff(struct backend *b, be_done_fn done, void *ud)
{
	return bq_simple(b, BQ_OP_POWEROFF, done, NULL, ud);
}

int bq_memory_size(struct backend *b, be_size_fn done, void *ud)
{
	return bq_simple(b, BQ_OP_MEMORY, NULL, done, ud);
}

/* ---- reset: query-status, system_reset, its RESET event, cont if it was not running ---- */

static void bq_on_reset_cont(struct qmp *q, const struct qmp_msg *reply, void *ud);

static int bq_on_cont_retry(sd_event_source *s, uint64_t usec, void *ud)
{
	struct bq *bq = ud;
	int r;

	(void)s;
	(void)usec;
	if (bq->op.kind != BQ_OP_RESET || bq->op.step != BQ_STEP_CONT)
		return 0;
	bq->op.timer = sd_event_source_disable_unref(bq->op.timer);
	r = bq_op_send(bq, "cont", NULL, bq_on_reset_cont);
	if (r < 0)
		bq_op_finish(bq, r, 0, "cannot send cont now: %s", strerror(-r));
	return 0;
}

/*
 * QEMU refuses cont while a dump runs ("There is a dump in process"): a
 * daemon killed during a snapshot leaves QEMU's dump going. The guest is
 * resumed once it is over, not left paused for good.
 */
static bool bq_cont_wait_dump(struct bq *bq, const struct qmp_msg *reply)
{
	uint64_t now = ev_now_usec(bq->event);

	if (!reply->error_desc || !strstr(reply->error_desc, "dump in process"))
		return false;
	if (!bq->op.cont_since_usec)
		bq->op.cont_since_usec = now;
	if (now - bq->op.cont_since_usec > BQ_DUMP_TIMEOUT_USEC)
		return false;
	return sd_event_add_time_relative(bq->event, &bq->op.timer, CLOCK_MONOTONIC,
					  BQ_CONT_RETRY_USEC, 0, bq_on_cont_retry, bq) >= 0;
}

static void bq_on_reset_cont(struct qmp *q, const struct qmp_msg *reply, void *ud)
{
	struct bq *bq = ud;

	(void)q;
	if (!bq_op_reply(bq, BQ_OP_RESET) || bq->op.step != BQ_STEP_CONT)
		return;
	if (reply->type == QMP_MSG_ERROR) {
		if (!bq_cont_wait_dump(bq, reply))
			bq_op_refused(bq, "cont", reply);
		return;
	}
	bq_op_finish(bq, 0, 0, "system_reset and cont: the guest boots again%s",
		     bq->op.reset_timed_out ?
			     " (no RESET event within 5 s of system_reset; continued)" : "");
}

/* system_reset replied and its RESET came (or the wait ended): resume. */
static void bq_reset_next(struct bq *bq)
{
	int r;

	bq->op.timer = sd_event_source_disable_unref(bq->op.timer);
	if (!bq->op.need_cont) {
		bq_op_finish(bq, 0, 0, "system_reset: the guest boots again%s",
			     bq->op.reset_timed_out ?
				     " (no RESET event within 5 s of system_reset; continued)" : "");
		return;
	}
	bq->op.step = BQ_STEP_CONT;
	r = bq_op_send(bq, "cont", NULL, bq_on_reset_cont);
	if (r < 0)
		bq_op_finish(bq, r, 0, "cannot send cont now: %s", strerror(-r));
}

static int bq_on_reset_wait(sd_event_source *s, uint64_t usec, void *ud)
{
	struct bq *bq = ud;

	(void)s;
	(void)usec;
	if (bq->op.kind != BQ_OP_RESET || bq->op.step != BQ_STEP_AWAIT_RESET)
		return 0;
	bq->op.reset_timed_out = true;
	bq_reset_next(bq);
	return 0;
}

static void bq_on_system_reset(struct qmp *q, const struct qmp_msg *reply, void *ud)
{
	struct bq *bq = ud;
	int r;

	(void)q;
	if (!bq_op_reply(bq, BQ_OP_RESET) || bq->op.step != BQ_STEP_RESET)
		return;
	if (reply->type == QMP_MSG_ERROR) {
		bq_op_refused(bq, "system_reset", reply);
		return;
	}
	bq->op.step = BQ_STEP_AWAIT_RESET;
	if (bq->op.reset_seen) {
		bq_reset_next(bq);
		return;
	}
	r = sd_event_add_time_relative(bq->event, &bq->op.timer, CLOCK_MONOTONIC,
				       BQ_RESET_WAIT_USEC, 0, bq_on_reset_wait, bq);
	if (r < 0)
		bq_op_finish(bq, r, 0, "system_reset sent, but the wait for its RESET event cannot be armed: %s",
			     strerror(-r));
}

static void bq_on_reset_status(struct qmp *q, const struct qmp_msg *reply, void *ud)
{
	struct bq *bq = ud;
	const char *status = bq_reply_status(reply);
	int r;

	(void)q;
	if (!bq_op_reply(bq, BQ_OP_RESET) || bq->op.step != BQ_STEP_STATUS)
		return;
	if (!status) {
		bq_op_finish(bq, -EPROTO, 0, "query-status gave no status");
		return;
	}
	bq->op.need_cont = strcmp(status, "running") != 0;
	bq->op.reset_seen = false;
	bq->op.step = BQ_STEP_RESET;
	r = bq_op_send(bq, "system_reset", NULL, bq_on_system_reset);
	if (r < 0)
		bq_op_finish(bq, r, 0, "cannot send system_reset now: %s", strerror(-r));
}

int bq_reset(struct backend *b, be_done_fn done, void *ud)
{
	struct bq *bq = bq_from(b);
	int r = bq_op_begin(bq, BQ_OP_RESET, BQ_STEP_STATUS);

	if (r < 0)
		return r;
	bq->op.done = done;
	bq->op.ud = ud;
	r = bq_op_send(bq, "query-status", NULL, bq_on_reset_status);
	if (r < 0)
		bq_op_drop(bq);
	return r;
}

/* A RESET event: true when it is our own system_reset's (consumed). */
bool bq_reset_on_event(struct bq *bq)
{
	if (bq->op.kind != BQ_OP_RESET ||
	    (bq->op.step != BQ_STEP_RESET && bq->op.step != BQ_STEP_AWAIT_RESET))
		return false;
	bq->op.reset_seen = true;
	if (bq->op.step == BQ_STEP_AWAIT_RESET)
		bq_reset_next(bq);
	return true;
}
