/* SPDX-License-Identifier: MIT */
/*
 * The QMP backend's insides, shared by backend_qmp.c (the session, attach,
 * events, the operation in flight), backend_qmp_ops.c (pause, resume,
 * reset, poweroff, memory size) and backend_qmp_dump.c (the memory dump).
 * Not for other modules: they use backend.h.
 *
 * One operation at a time (struct bq_op). Every QMP command an operation
 * sends is counted in op.pending; when the operation ends (or is cancelled)
 * with replies still due, those are owed to no one: QEMU answers one
 * monitor's commands in order, so the next stale_replies replies are
 * skipped by bq_op_reply().
 */
#ifndef PB_BACKEND_QMP_H
#define PB_BACKEND_QMP_H

#include <stdbool.h>
#include <stdint.h>

#include "backend.h"
#include "common.h"
#include "config.h"
#include "qmp.h"
#include "ratelimit.h"

#define BQ_BACKOFF_MIN_USEC (200 * USEC_PER_MSEC)
#define BQ_BACKOFF_MAX_USEC (5 * USEC_PER_SEC)
/* A session that lasted this long resets the back-off to its minimum. */
#define BQ_STABLE_SESSION_USEC (10 * USEC_PER_SEC)
/* After system_reset: how long to wait for QEMU's RESET event. */
#define BQ_RESET_WAIT_USEC (5 * USEC_PER_SEC)
/* cont refused while a dump runs (one a daemon killed mid-snapshot started):
 * tried again every second, for as long as a dump may take. */
#define BQ_CONT_RETRY_USEC USEC_PER_SEC
#define BQ_EVENTS_PER_SEC 100
#define BQ_DUMP_POLL_USEC USEC_PER_SEC
#define BQ_DUMP_TIMEOUT_USEC (30 * 60 * USEC_PER_SEC)
#define BQ_DUMP_FDNAME "panicbroker-dump"

enum bq_op_kind {
	BQ_OP_NONE,
	BQ_OP_PAUSE,     /* stop */
	BQ_OP_RESUME,    /* cont */
	BQ_OP_RESET,     /* query-status, system_reset, RESET, [cont] */
	BQ_OP_POWEROFF,  /* quit */
	BQ_OP_MEMORY,    /* query-memory-size-summary */
	BQ_OP_DUMP,      /* capability, getfd, dump-guest-memory, query-dump... */
};

enum bq_step {
	BQ_STEP_REPLY,        /* the one command of a one-command operation */
	BQ_STEP_STATUS,       /* reset: query-status */
	BQ_STEP_RESET,        /* reset: system_reset sent */
	BQ_STEP_AWAIT_RESET,  /* reset: replied; waiting for the RESET event */
	BQ_STEP_CONT,         /* reset: cont sent */
	BQ_STEP_CAPS,         /* dump: query-dump-guest-memory-capability */
	BQ_STEP_GETFD,        /* dump: getfd with the caller's file */
	BQ_STEP_DUMP,         /* dump: dump-guest-memory sent */
	BQ_STEP_RUNNING,      /* dump: detached dump in progress, polled */
};

struct bq_op {
	enum bq_op_kind kind;
	enum bq_step step;
	unsigned int pending;        /* replies due to this operation */
	be_done_fn done;
	be_size_fn size_done;        /* BQ_OP_MEMORY */
	be_progress_fn progress;     /* BQ_OP_DUMP */
	void *ud;
	sd_event_source *timer;      /* the RESET wait, the dump's poll */
	/* reset */
	bool need_cont;              /* the VM was not running before */
	bool reset_seen;
	bool reset_timed_out;
	uint64_t cont_since_usec;    /* CLOCK_MONOTONIC: the first cont refused for a dump */
	/* dump */
	int fd;                      /* the caller's, borrowed */
	char format[CFG_FORMAT_MAX];
	uint64_t started_usec;       /* CLOCK_MONOTONIC */
	json_object *completed;      /* a DUMP_COMPLETED that beat the reply */
};

struct bq {
	struct backend base;
	sd_event *event;
	char name[VM_NAME_MAX + 1];
	char qmp_path[CFG_QMP_PATH_MAX + 1];
	const struct backend_events *events;
	void *ud;
	struct qmp *qmp;

	bool started;
	bool attached;               /* BE_EV_ATTACHED delivered this session */
	sd_event_source *retry_timer;
	uint64_t backoff_usec;
	uint64_t ready_at_usec;      /* CLOCK_MONOTONIC; 0: no stable candidate */
	char last_problem[256];
	struct ratelimit event_rl;

	struct bq_op op;
	unsigned int stale_replies;
};

/* Starts @kind at @step: -EBUSY while another one runs. */
int bq_op_begin(struct bq *bq, enum bq_op_kind kind, enum bq_step step);
/* Sends a command of the operation (counted in op.pending). */
int bq_op_send(struct bq *bq, const char *command, json_object *args,
	       qmp_reply_fn fn);
int bq_op_send_fd(struct bq *bq, const char *command, json_object *args,
		  int fd, qmp_reply_fn fn);
/* At the top of every operation's reply callback: false when the reply is
 * stale, or not for @kind (then the callback returns). */
bool bq_op_reply(struct bq *bq, enum bq_op_kind kind);
/* Ends the operation (@error 0: success) and calls its done, last. */
void bq_op_finish(struct bq *bq, int error, uint64_t bytes, const char *fmt, ...)
	_printf_(4, 5);
/* Drops the operation without calling its done. */
void bq_op_drop(struct bq *bq);
/* Ends the operation: "COMMAND refused: CLASS: DESC". */
void bq_op_refused(struct bq *bq, const char *command, const struct qmp_msg *reply);
/* query-status's "status", or NULL. */
const char *bq_reply_status(const struct qmp_msg *reply);

/* backend_qmp_ops.c */
int bq_pause(struct backend *b, be_done_fn done, void *ud);
int bq_resume(struct backend *b, be_done_fn done, void *ud);
int bq_reset(struct backend *b, be_done_fn done, void *ud);
int bq_poweroff(struct backend *b, be_done_fn done, void *ud);
int bq_memory_size(struct backend *b, be_size_fn done, void *ud);
/* A RESET event: true when it is our own system_reset's (consumed). */
bool bq_reset_on_event(struct bq *bq);

/* backend_qmp_dump.c */
int bq_dump(struct backend *b, int fd, const char *format,
	    be_progress_fn progress, be_done_fn done, void *ud);
/* DUMP_COMPLETED, while a dump runs. */
void bq_dump_on_completed(struct bq *bq, const struct qmp_msg *ev);

/* Pure helpers (tests/unit/test_backend_qmp.c). */
enum be_run_state bq_run_state_from_status(const char *status);
/* starttime (field 22) out of a /proc/PID/stat line. */
int bq_parse_stat_starttime(const char *stat, uint64_t *ret_ticks);

#endif
