// SPDX-License-Identifier: MIT
/*
 * The QMP backend: a VM reached through QEMU's monitor socket. This file
 * keeps the session (connect, back-off, attach, the event rate limit),
 * turns QMP events into backend events and runs the VM operations; the
 * memory dump is in backend_qmp_dump.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <panicbroker/pvpanic.h>

#include "backend_qmp.h"
#include "evutil.h"
#include "io.h"
#include "log.h"

static void bq_try_connect(struct bq *bq);

static struct bq *bq_from(struct backend *b)
{
	return container_of(b, struct bq, base);
}

/*
 * Connection trouble repeats every back-off period; say it once, then only
 * when it changes, so a dead VM does not flood the journal.
 */
_printf_(2, 3) static void bq_problem(struct bq *bq, const char *fmt, ...)
{
	char msg[sizeof(bq->last_problem)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (strcmp(msg, bq->last_problem) != 0) {
		log_warn("VM %s: %s", bq->name, msg);
		memcpy(bq->last_problem, msg, sizeof(msg));
	} else {
		log_debug("VM %s: %s", bq->name, msg);
	}
}

static void bq_emit(struct bq *bq, const struct be_event *ev)
{
	if (bq->events && bq->events->event)
		bq->events->event(bq->ud, ev);
}

/* ---- pure helpers ---- */

enum be_run_state bq_run_state_from_status(const char *status)
{
	if (!status)
		return BE_RUN_UNKNOWN;
	if (strcmp(status, "running") == 0)
		return BE_RUN_RUNNING;
	if (strcmp(status, "guest-panicked") == 0)
		return BE_RUN_PANICKED;
	if (strcmp(status, "shutdown") == 0)
		return BE_RUN_SHUTDOWN;
	/* QEMU's RunState names for a VM that is stopped but not panicked. */
	static const char *const paused[] = {
		"paused", "suspended", "prelaunch", "inmigrate", "postmigrate",
		"finish-migrate", "restore-vm", "save-vm", "io-error",
		"internal-error", "watchdog", "debug", "colo",
	};
	for (size_t i = 0; i < ARRAY_SIZE(paused); i++)
		if (strcmp(status, paused[i]) == 0)
			return BE_RUN_PAUSED;
	return BE_RUN_UNKNOWN;
}

int bq_parse_stat_starttime(const char *stat, uint64_t *ret_ticks)
{
	/* "PID (comm) S ppid ...": comm may hold anything, even ") ";
	 * the fields are counted from its last ')'. */
	const char *p = strrchr(stat, ')');
	unsigned long long v;
	char *end;

	if (!p)
		return -EINVAL;
	p++;
	for (int field = 3; field < 22; field++) {
		while (*p == ' ')
			p++;
		if (!*p || *p == '\n')
			return -EINVAL;
		p += strcspn(p, " \n");
	}
	while (*p == ' ')
		p++;
	if (*p < '0' || *p > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(p, &end, 10);
	if (errno || (*end != ' ' && *end != '\n' && *end != '\0'))
		return -EINVAL;
	*ret_ticks = v;
	return 0;
}

/* The QEMU process behind the socket, to tell one QEMU from the next. */
static struct be_instance bq_instance(struct bq *bq)
{
	struct be_instance inst = { 0 };
	char path[64], buf[4096];
	_cleanup_close_ int fd = -1;
	uint64_t ticks;
	ssize_t n;
	pid_t pid;

	/* Unknown is a valid answer (pid 0): the caller cannot tell then. */
	if (qmp_peer(bq->qmp, &pid) < 0)
		return inst;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return inst;
	n = io_read_full(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return inst;
	buf[n] = '\0';
	if (bq_parse_stat_starttime(buf, &ticks) < 0)
		return inst;
	inst.pid = pid;
	inst.start_ticks = ticks;
	return inst;
}

/* ---- the operation in flight ---- */

int bq_op_begin(struct bq *bq, enum bq_op_kind kind, enum bq_step step)
{
	if (bq->op.kind != BQ_OP_NONE)
		return -EBUSY;
	if (!qmp_is_ready(bq->qmp))
		return -ENOTCONN;
	bq->op = (struct bq_op){ .kind = kind, .step = step, .fd = -1 };
	return 0;
}

int bq_op_send(struct bq *bq, const char *command, json_object *args,
	       qmp_reply_fn fn)
{
	int r = qmp_send(bq->qmp, command, args, fn, bq);

	if (r >= 0)
		bq->op.pending++;
	return r;
}

int bq_op_send_fd(struct bq *bq, const char *command, json_object *args,
		  int fd, qmp_reply_fn fn)
{
	int r = qmp_send_fd(bq->qmp, command, args, fd, fn, bq);

	if (r >= 0)
		bq->op.pending++;
	return r;
}

bool bq_op_reply(struct bq *bq, enum bq_op_kind kind)
{
	if (bq->stale_replies) {
		bq->stale_replies--;
		return false;
	}
	if (bq->op.pending)
		bq->op.pending--;
	return bq->op.kind == kind;
}

static void bq_op_clear(struct bq *bq)
{
	bq->stale_replies += bq->op.pending;
	sd_event_source_disable_unref(bq->op.timer);
	json_object_put(bq->op.completed);
	bq->op = (struct bq_op){ .kind = BQ_OP_NONE, .fd = -1 };
}

void bq_op_drop(struct bq *bq)
{
	bq_op_clear(bq);
}

void bq_op_finish(struct bq *bq, int error, uint64_t bytes, const char *fmt, ...)
{
	enum bq_op_kind kind = bq->op.kind;
	be_done_fn done = bq->op.done;
	be_size_fn size_done = bq->op.size_done;
	void *ud = bq->op.ud;
	char reason[512];
	va_list ap;

	if (kind == BQ_OP_NONE)
		return;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	/* Cleared first: done may start the next operation. */
	bq_op_clear(bq);
	if (kind == BQ_OP_MEMORY)
		size_done(ud, error, error ? reason : NULL, bytes);
	else
		done(ud, error, reason);
}

void bq_op_refused(struct bq *bq, const char *command,
			  const struct qmp_msg *reply)
{
	bq_op_finish(bq, -EREMOTEIO, 0, "%s refused: %s: %s", command,
		     reply->error_class, reply->error_desc);
}

/* ---- the session ---- */

static int bq_on_retry(sd_event_source *s, uint64_t usec, void *ud)
{
	struct bq *bq = ud;

	(void)s;
	(void)usec;
	bq->retry_timer = sd_event_source_disable_unref(bq->retry_timer);
	bq_try_connect(bq);
	return 0;
}

static void bq_schedule_connect(struct bq *bq)
{
	int r;

	bq->retry_timer = sd_event_source_disable_unref(bq->retry_timer);
	r = sd_event_add_time_relative(bq->event, &bq->retry_timer, CLOCK_MONOTONIC,
				       bq->backoff_usec, 0, bq_on_retry, bq);
	if (r < 0) {
		log_error("VM %s: cannot arm the reconnect timer: %s", bq->name,
			  strerror(-r));
		return;
	}
	bq->backoff_usec *= 2;
	if (bq->backoff_usec > BQ_BACKOFF_MAX_USEC)
		bq->backoff_usec = BQ_BACKOFF_MAX_USEC;
}

static void bq_try_connect(struct bq *bq)
{
	int r = qmp_connect(bq->qmp);

	if (r < 0) {
		bq_problem(bq, "cannot connect to QMP socket %s: %s (retrying)",
			   bq->qmp_path, strerror(-r));
		bq_schedule_connect(bq);
	}
}

/*
 * The session is gone (closed by the peer, or dropped by us): the operation
 * in flight fails (poweroff succeeds: quit makes QEMU close the socket,
 * sometimes before it replies); the VM's runner hears DETACHED; reconnect.
 */
static void bq_session_lost(struct bq *bq, const char *reason)
{
	bool was_attached = bq->attached;

	if (bq->ready_at_usec &&
	    ev_now_usec(bq->event) - bq->ready_at_usec >= BQ_STABLE_SESSION_USEC)
		bq->backoff_usec = BQ_BACKOFF_MIN_USEC;
	bq->ready_at_usec = 0;
	bq->attached = false;
	/* The session's replies went with it. */
	bq->op.pending = 0;
	bq->stale_replies = 0;
	switch (bq->op.kind) {
	case BQ_OP_NONE:
		break;
	case BQ_OP_POWEROFF:
		bq_op_finish(bq, 0, 0, "QEMU quit");
		break;
	case BQ_OP_MEMORY:
	case BQ_OP_DUMP:
		bq_op_finish(bq, -ECONNRESET, 0,
			     "the QMP session ended during the snapshot (QEMU gone?): no dump kept");
		break;
	default:
		bq_op_finish(bq, -ECONNRESET, 0, "the QMP session ended: %s", reason);
		break;
	}
	bq_problem(bq, "QMP session ended: %s (reconnecting)", reason);
	if (was_attached)
		bq_emit(bq, &(struct be_event){ .type = BE_EV_DETACHED, .reason = reason });
	bq_schedule_connect(bq);
}

static void bq_on_closed(struct qmp *q, int error, const char *reason, void *ud)
{
	(void)q;
	(void)error;
	bq_session_lost(ud, reason);
}

/* Ends a session from our side, for a reason of ours. */
static void bq_drop_session(struct bq *bq, const char *reason)
{
	qmp_disconnect(bq->qmp);
	bq_session_lost(bq, reason);
}

const char *bq_reply_status(const struct qmp_msg *reply)
{
	json_object *st;

	if (reply->type == QMP_MSG_RETURN && reply->payload &&
	    json_object_object_get_ex(reply->payload, "status", &st) &&
	    json_object_is_type(st, json_type_string))
		return json_object_get_string(st);
	return NULL;
}

static void bq_on_set_action(struct qmp *q, const struct qmp_msg *reply, void *ud)
{
	struct bq *bq = ud;

	(void)q;
	if (reply->type == QMP_MSG_ERROR)
		log_warn("VM %s: set-action panic=pause refused (%s: %s): a guest that panics without kdump may be powered off by QEMU before panicbroker acts",
			 bq->name, reply->error_class, reply->error_desc);
}

static void bq_on_attach_status(struct qmp *q, const struct qmp_msg *reply,
				void *ud)
{
	struct bq *bq = ud;
	const char *status = bq_reply_status(reply);
	struct be_event ev = { .type = BE_EV_ATTACHED };

	(void)q;
	if (status) {
		log_info("VM %s: attached to QMP at %s (VM status %s)", bq->name,
			 bq->qmp_path, status);
	} else {
		/* Attached all the same: the runner gets BE_RUN_UNKNOWN and
		 * reconciles nothing, as before. */
		log_warn("VM %s: query-status gave no status; cannot reconcile", bq->name);
	}
	bq->last_problem[0] = '\0';
	bq->attached = true;
	ev.run_state = bq_run_state_from_status(status);
	ev.status = status ? status : "unknown";
	ev.instance = bq_instance(bq);
	bq_emit(bq, &ev);
}

static void bq_on_ready(struct qmp *q, void *ud)
{
	struct bq *bq = ud;
	json_object *args = json_object_new_object();
	int r = -ENOMEM;

	bq->ready_at_usec = ev_now_usec(bq->event);
	ratelimit_reset(&bq->event_rl);
	/* Hold a guest that panics without kdump for the host, instead of
	 * QEMU's default of powering it off. */
	if (args && json_object_object_add(args, "panic", json_object_new_string("pause")) == 0)
		r = qmp_send(q, "set-action", args, bq_on_set_action, bq);
	json_object_put(args);
	if (r >= 0)
		r = qmp_send(q, "query-status", NULL, bq_on_attach_status, bq);
	if (r < 0) {
		char reason[128];

		snprintf(reason, sizeof(reason), "cannot send attach commands: %s", strerror(-r));
		bq_drop_session(bq, reason);
	}
}

/* ---- events ---- */

static const char *bq_event_action(const struct qmp_msg *ev)
{
	json_object *a;

	if (ev->payload && json_object_object_get_ex(ev->payload, "action", &a) &&
	    json_object_is_type(a, json_type_string))
		return json_object_get_string(a);
	return "unknown";
}

static void bq_on_reset_event(struct bq *bq, const struct qmp_msg *ev)
{
	json_object *g;

	if (bq_reset_on_event(bq))
		return; /* our own system_reset's: consumed */
	bq_emit(bq, &(struct be_event){
		.type = BE_EV_RESET,
		.guest = ev->payload && json_object_object_get_ex(ev->payload, "guest", &g) &&
			 json_object_get_boolean(g),
	});
}

static void bq_on_event(struct qmp *q _unused_, const struct qmp_msg *ev, void *ud)
{
	struct bq *bq = ud;

	if (!ratelimit_below(&bq->event_rl, ev_now_usec(bq->event))) {
		char reason[96];

		snprintf(reason, sizeof(reason), "more than %d QMP events in a second, dropped",
			 BQ_EVENTS_PER_SEC);
		bq->ready_at_usec = 0; /* a flood never counts as a stable session */
		bq_drop_session(bq, reason);
		return;
	}
	log_debug("VM %s: event %s", bq->name, ev->event);
	if (strcmp(ev->event, PB_PVPANIC_QMP_PANICKED) == 0 ||
	    strcmp(ev->event, PB_PVPANIC_QMP_CRASH_LOADED) == 0) {
		bq_emit(bq, &(struct be_event){
			.type = BE_EV_PANIC,
			.name = ev->event,
			.crash_loaded = strcmp(ev->event, PB_PVPANIC_QMP_CRASH_LOADED) == 0,
			.action = bq_event_action(ev),
			.has_timestamp = ev->has_timestamp,
			.timestamp_usec = ev->timestamp_usec,
			.data = ev->payload,
		});
	} else if (strcmp(ev->event, "RESET") == 0) {
		bq_on_reset_event(bq, ev);
	} else if (strcmp(ev->event, "SHUTDOWN") == 0) {
		/* Our own quit's shutdown is the poweroff's, not news. */
		if (bq->op.kind != BQ_OP_POWEROFF)
			bq_emit(bq, &(struct be_event){ .type = BE_EV_SHUTDOWN });
	} else if (strcmp(ev->event, "DUMP_COMPLETED") == 0) {
		bq_dump_on_completed(bq, ev);
	}
}

static const struct qmp_ops bq_qmp_ops = {
	.ready = bq_on_ready,
	.event = bq_on_event,
	.closed = bq_on_closed,
};

static void bq_cancel(struct backend *b)
{
	bq_op_drop(bq_from(b));
}

/* ---- life cycle ---- */

static int bq_create(sd_event *e, const struct vm_config *cfg,
		     const struct backend_events *events, void *ud,
		     struct backend **ret, char *err, size_t errlen)
{
	_cleanup_free_ struct bq *bq = calloc(1, sizeof(*bq));
	int r;

	if (!bq)
		return err_set(err, errlen, -ENOMEM, "out of memory");
	bq->base.ops = &backend_qmp_ops;
	snprintf(bq->name, sizeof(bq->name), "%s", cfg->name);
	snprintf(bq->qmp_path, sizeof(bq->qmp_path), "%s", cfg->qmp_path);
	bq->events = events;
	bq->ud = ud;
	bq->backoff_usec = BQ_BACKOFF_MIN_USEC;
	bq->event_rl = (struct ratelimit)RATELIMIT_INIT(USEC_PER_SEC, BQ_EVENTS_PER_SEC);
	bq->op.fd = -1;
	r = qmp_new(e, bq->qmp_path, &bq_qmp_ops, bq, &bq->qmp);
	if (r < 0)
		return err_set(err, errlen, r, "cannot set up the QMP client: %s", strerror(-r));
	bq->event = sd_event_ref(e);
	*ret = &TAKE_PTR(bq)->base;
	return 0;
}

static void bq_free(struct backend *b)
{
	struct bq *bq;

	if (!b)
		return;
	bq = bq_from(b);
	bq_op_drop(bq);
	qmp_free(bq->qmp);
	sd_event_source_disable_unref(bq->retry_timer);
	sd_event_unref(bq->event);
	free(bq);
}

static void bq_start(struct backend *b)
{
	struct bq *bq = bq_from(b);

	if (bq->started)
		return;
	bq->started = true;
	bq_try_connect(bq);
}

static const char *bq_attach_state(const struct backend *b)
{
	const struct bq *bq = container_of(b, const struct bq, base);

	if (bq->attached)
		return "attached";
	return bq->started ? "connecting" : "detached";
}

const struct backend_ops backend_qmp_ops = {
	.name = "qmp",
	.create = bq_create,
	.free = bq_free,
	.start = bq_start,
	.attach_state = bq_attach_state,
	.pause = bq_pause,
	.resume = bq_resume,
	.reset = bq_reset,
	.poweroff = bq_poweroff,
	.memory_size = bq_memory_size,
	.dump = bq_dump,
	.cancel = bq_cancel,
};
