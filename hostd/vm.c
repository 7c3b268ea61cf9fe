// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <panicbroker/pvpanic.h>

#include "log.h"
#include "mailbox.h"
#include "qmp.h"
#include "snapshot.h"
#include "util.h"
#include "vm.h"

/* Where a final action stands; its steps are QMP commands and events. */
enum vm_step {
	VM_STEP_NONE,
	VM_STEP_STATUS,     /* query-status before a restart */
	VM_STEP_RESET,      /* system_reset sent */
	VM_STEP_AWAIT_RESET, /* reply in, waiting for the RESET event */
	VM_STEP_CONT,       /* cont sent */
	VM_STEP_QUIT,       /* quit sent (poweroff) */
	VM_STEP_STOP,       /* stop sent before a snapshot */
};

struct vm {
	struct vm_config cfg;
	sd_event *event;
	struct spool *spool;
	struct qmp *qmp;
	struct mailbox *mbox; /* NULL without mailbox= */

	sd_event_source *retry_timer;
	uint64_t backoff_usec;
	uint64_t ready_at_usec;
	char last_problem[256];

	struct crash *crash;
	sd_event_source *kdump_timer;	/* kdump_timeout: the outer bound */
	sd_event_source *kdump_watch;	/* mailbox=: session / progress deadline */
	enum crash_ks kdump_ks_seen;	/* the kdump session state acted on */
	enum vm_step step;
	bool reset_seen;
	bool need_cont;
	bool guest_down; /* the kdump kernel powered the guest off */
	sd_event_source *step_timer;

	struct snapshot *snap;
	sd_event_source *snap_retry;
	bool snap_resume_kdump; /* after the snapshot: cont into kdump */

	uint64_t rl_window_usec;
	unsigned int rl_count;
};

static void vm_final_action(struct vm *vm);
static void vm_snapshot(struct vm *vm, bool resume_kdump);
static void vm_send_step(struct vm *vm, enum vm_step step, const char *cmd,
			 qmp_reply_fn fn);

const char *vm_name(const struct vm *vm)
{
	return vm->cfg.name;
}

bool vm_has_crash(const struct vm *vm)
{
	return vm->crash != NULL;
}

static uint64_t vm_now(struct vm *vm)
{
	uint64_t now = 0;

	sd_event_now(vm->event, CLOCK_MONOTONIC, &now);
	return now;
}

/*
 * Connection trouble repeats every back-off period; say it once, then only
 * when it changes, so a dead VM does not flood the journal.
 */
_printf_(2, 3) static void vm_problem(struct vm *vm, const char *fmt, ...)
{
	char msg[sizeof(vm->last_problem)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (strcmp(msg, vm->last_problem) != 0) {
		log_warn("VM %s: %s", vm->cfg.name, msg);
		memcpy(vm->last_problem, msg, sizeof(msg));
	} else {
		log_debug("VM %s: %s", vm->cfg.name, msg);
	}
}

/* Persists the record; a failure is logged and retried at the next change. */
static void vm_save(struct vm *vm)
{
	int r = crash_save(vm->crash);

	if (r < 0)
		log_error("VM %s: cannot write crash record %s: %s; kept in memory, retried on the next change",
			  vm->cfg.name, vm->crash->id, strerror(-r));
}

static void vm_stop_step(struct vm *vm)
{
	vm->step = VM_STEP_NONE;
	vm->step_timer = sd_event_source_disable_unref(vm->step_timer);
}

/*
 * kdump is over (or paused for a snapshot): no deadline of it runs, and the
 * record shows no kdump session deadline pending (the caller saves).
 */
static void vm_stop_kdump_timers(struct vm *vm)
{
	vm->kdump_timer = sd_event_source_disable_unref(vm->kdump_timer);
	vm->kdump_watch = sd_event_source_disable_unref(vm->kdump_watch);
	if (vm->crash && vm->crash->kdump_watch_usec)
		crash_kdump_set_deadline(vm->crash, 0);
}

/* The event of a crash known only from a salvaged panic record. */
#define VM_EVENT_SALVAGED "PANIC_RECORD"

static void vm_close_crash(struct vm *vm, const char *outcome,
			   const char *fmt, ...) _printf_(3, 4);

static void vm_close_crash(struct vm *vm, const char *outcome,
			   const char *fmt, ...)
{
	struct crash *c = vm->crash;
	char detail[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	vm_stop_step(vm);
	vm_stop_kdump_timers(vm);
	crash_set_final_result(c, outcome, detail);
	crash_set_state(c, CRASH_CLOSED, "final action %s: %s: %s",
			final_action_to_string(c->final_action), outcome, detail);
	vm_save(vm);
	if (strcmp(outcome, "failed") == 0)
		log_error("VM %s: crash %s closed: final action %s failed: %s",
			  vm->cfg.name, c->id, final_action_to_string(c->final_action),
			  detail);
	else
		log_notice("VM %s: crash %s closed: final action %s %s (%s)",
			   vm->cfg.name, c->id, final_action_to_string(c->final_action),
			   outcome, detail);
	mailbox_crash_closed(vm->mbox, c);
	crash_free(c);
	vm->crash = NULL;
	vm->guest_down = false;
	vm->kdump_ks_seen = CRASH_KS_NONE;
}

/* ---- connection ---- */

static void vm_try_connect(struct vm *vm);

static int vm_on_retry(sd_event_source *s, uint64_t usec, void *ud)
{
	(void)s;
	(void)usec;
	vm_try_connect(ud);
	return 0;
}

static void vm_schedule_connect(struct vm *vm)
{
	int r;

	vm->retry_timer = sd_event_source_disable_unref(vm->retry_timer);
	r = sd_event_add_time_relative(vm->event, &vm->retry_timer, CLOCK_MONOTONIC,
				       vm->backoff_usec, 0, vm_on_retry, vm);
	if (r < 0) {
		log_error("VM %s: cannot arm the reconnect timer: %s", vm->cfg.name,
			  strerror(-r));
		return;
	}
	vm->backoff_usec *= 2;
	if (vm->backoff_usec > VM_BACKOFF_MAX_USEC)
		vm->backoff_usec = VM_BACKOFF_MAX_USEC;
}

static void vm_try_connect(struct vm *vm)
{
	int r = qmp_connect(vm->qmp);

	if (r < 0) {
		vm_problem(vm, "cannot connect to QMP socket %s: %s (retrying)",
			   vm->cfg.qmp_path, strerror(-r));
		vm_schedule_connect(vm);
	}
}

void vm_start(struct vm *vm)
{
	vm_try_connect(vm);
}

/*
 * The QMP session is gone (closed by the peer, or dropped by us): whatever
 * was in flight on it is lost; reconnect, and reconcile after reattach.
 */
static void vm_session_lost(struct vm *vm, const char *reason)
{
	enum vm_step step = vm->step;

	if (vm->ready_at_usec &&
	    vm_now(vm) - vm->ready_at_usec >= VM_STABLE_SESSION_USEC)
		vm->backoff_usec = VM_BACKOFF_MIN_USEC;
	vm->ready_at_usec = 0;
	vm_stop_step(vm);
	snapshot_on_session_lost(vm->snap);
	if (vm->crash && step == VM_STEP_QUIT) {
		/* quit makes QEMU close the socket, sometimes before replying. */
		vm_close_crash(vm, "applied", "QEMU quit");
	}
	vm_problem(vm, "QMP session ended: %s (reconnecting)", reason);
	vm_schedule_connect(vm);
}

static void vm_on_closed(struct qmp *q, int error, const char *reason, void *ud)
{
	(void)q;
	(void)error;
	vm_session_lost(ud, reason);
}

/* Ends a session from our side, for a reason of ours. */
static void vm_drop_session(struct vm *vm, const char *reason)
{
	qmp_disconnect(vm->qmp);
	vm_session_lost(vm, reason);
}

/* ---- crash handling ---- */

static const char *vm_event_action(const struct qmp_msg *ev)
{
	json_object *a;

	if (ev->payload && json_object_object_get_ex(ev->payload, "action", &a) &&
	    json_object_is_type(a, json_type_string))
		return json_object_get_string(a);
	return "unknown";
}

/*
 * kdump failed or went silent: snapshot the crashed kernel's memory if the
 * policy wants it and none was taken yet, then the final action.
 */
static void vm_kdump_failed(struct vm *vm)
{
	if (vm->crash->kdump_ks == CRASH_KS_DONE) {
		/* The kdump kernel saved its dump; it only failed to reboot. */
		if (vm->cfg.snapshot != SNAPSHOT_NEVER)
			crash_note(vm->crash, "the kdump session reported done, so the host takes no snapshot");
		vm_final_action(vm);
		return;
	}
	if (vm->cfg.snapshot != SNAPSHOT_NEVER &&
	    !json_object_object_get_ex(vm->crash->rec, "snapshot", NULL)) {
		crash_note(vm->crash, "snapshot=%s: kdump did not finish, so the host takes the snapshot",
			   snapshot_policy_to_string(vm->cfg.snapshot));
		vm_snapshot(vm, false);
		return;
	}
	vm_final_action(vm);
}

static int vm_on_kdump_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	struct vm *vm = ud;

	(void)s;
	(void)usec;
	vm->kdump_timer = sd_event_source_disable_unref(vm->kdump_timer);
	if (!vm->crash || vm->crash->state != CRASH_KDUMP_RUNNING)
		return 0;
	log_warn("VM %s: crash %s: the kdump kernel did not finish within %llu s",
		 vm->cfg.name, vm->crash->id,
		 (unsigned long long)(vm->cfg.kdump_timeout_usec / USEC_PER_SEC));
	/* A kdump session still owed or running is hung now. */
	if (vm->crash->kdump_ks == CRASH_KS_RUNNING ||
	    (vm->crash->kdump_ks == CRASH_KS_NONE && vm->crash->kdump_watch_usec))
		crash_kdump_hung(vm->crash, ts_now_realtime_usec(),
				 "kdump_timeout (%llu s) passed with the kdump session %s",
				 (unsigned long long)(vm->cfg.kdump_timeout_usec / USEC_PER_SEC),
				 vm->crash->kdump_ks == CRASH_KS_RUNNING ? "still running" :
									   "not open");
	vm_stop_kdump_timers(vm);
	crash_set_state(vm->crash, CRASH_KDUMP_TIMEOUT,
			"no reboot from the kdump kernel within %llu s",
			(unsigned long long)(vm->cfg.kdump_timeout_usec / USEC_PER_SEC));
	vm_save(vm);
	vm_kdump_failed(vm);
	return 0;
}

static void vm_arm_kdump_timer(struct vm *vm)
{
	uint64_t now = ts_now_realtime_usec(), left = 0;
	int r;

	if (vm->kdump_timer)
		return;
	if (vm->crash->kdump_deadline_usec > now)
		left = vm->crash->kdump_deadline_usec - now;
	r = sd_event_add_time_relative(vm->event, &vm->kdump_timer, CLOCK_MONOTONIC,
				       left, 0, vm_on_kdump_timer, vm);
	if (r < 0)
		log_error("VM %s: cannot arm the kdump deadline: %s", vm->cfg.name,
			  strerror(-r));
}

/* The kdump session did not open, or went silent: hung, like a failure. */
static int vm_on_kdump_watch(sd_event_source *s, uint64_t usec, void *ud)
{
	struct vm *vm = ud;
	struct crash *c = vm->crash;
	char reason[96];

	(void)s;
	(void)usec;
	vm->kdump_watch = sd_event_source_disable_unref(vm->kdump_watch);
	if (!c || c->state != CRASH_KDUMP_RUNNING || !c->kdump_watch_usec ||
	    (c->kdump_ks != CRASH_KS_NONE && c->kdump_ks != CRASH_KS_RUNNING))
		return 0;
	if (c->kdump_ks == CRASH_KS_NONE)
		snprintf(reason, sizeof(reason), "no kdump session within %llu s",
			 (unsigned long long)(vm->cfg.kdump_session_timeout_usec / USEC_PER_SEC));
	else
		snprintf(reason, sizeof(reason), "no progress for %llu s",
			 (unsigned long long)(vm->cfg.kdump_progress_timeout_usec / USEC_PER_SEC));
	vm_stop_kdump_timers(vm);
	crash_kdump_hung(c, ts_now_realtime_usec(), "%s", reason);
	vm->kdump_ks_seen = CRASH_KS_HUNG;
	crash_set_state(c, CRASH_KDUMP_TIMEOUT, "kdump hung: %s", reason);
	vm_save(vm);
	log_warn("VM %s: crash %s: kdump hung: %s", vm->cfg.name, c->id, reason);
	vm_kdump_failed(vm);
	return 0;
}

/* Arms the deadline the record holds (it survives restarts), if any applies. */
static void vm_arm_kdump_watch(struct vm *vm)
{
	struct crash *c = vm->crash;
	uint64_t now = ts_now_realtime_usec(), left = 0;
	int r;

	vm->kdump_watch = sd_event_source_disable_unref(vm->kdump_watch);
	if (!vm->mbox || !c || c->state != CRASH_KDUMP_RUNNING || !c->kdump_watch_usec)
		return;
	if (c->kdump_watch_usec > now)
		left = c->kdump_watch_usec - now;
	r = sd_event_add_time_relative(vm->event, &vm->kdump_watch, CLOCK_MONOTONIC,
				       left, 0, vm_on_kdump_watch, vm);
	if (r < 0)
		log_error("VM %s: cannot arm the kdump session deadline: %s", vm->cfg.name,
			  strerror(-r));
}

static void vm_enter_kdump(struct vm *vm, const char *why)
{
	struct crash *c = vm->crash;
	uint64_t now = ts_now_realtime_usec();

	crash_set_kdump_deadline(c, now + vm->cfg.kdump_timeout_usec);
	crash_set_state(c, CRASH_KDUMP_RUNNING, "%s (deadline %llu s)", why,
			(unsigned long long)(vm->cfg.kdump_timeout_usec / USEC_PER_SEC));
	/*
	 * The broker channel: a guest whose crashed kernel spoke it owes a
	 * kdump session. One that never did keeps only kdump_timeout.
	 */
	if (vm->mbox && c->kdump_ks == CRASH_KS_NONE && c->crashed_session)
		crash_kdump_set_deadline(c, now + vm->cfg.kdump_session_timeout_usec);
	else if (vm->mbox && c->kdump_ks == CRASH_KS_RUNNING)
		crash_kdump_set_deadline(c, now + vm->cfg.kdump_progress_timeout_usec);
	vm_save(vm);
	vm_arm_kdump_timer(vm);
	vm_arm_kdump_watch(vm);
}

static int vm_new_crash(struct vm *vm, const char *event,
			const struct qmp_msg *ev, const char *source)
{
	struct crash_event ce = {
		.vm = vm->cfg.name,
		.event = event,
		.detected_usec = ts_now_realtime_usec(),
		.has_qmp_timestamp = ev && ev->has_timestamp,
		.qmp_timestamp_usec = ev ? ev->timestamp_usec : 0,
		.data = ev ? ev->payload : NULL,
		.source = source,
	};
	int r;

	r = crash_new(vm->spool, &ce, vm->cfg.final_action, &vm->crash);
	if (r < 0) {
		log_error("VM %s: %s, but its crash record cannot be created in %s: %s",
			  vm->cfg.name, event, spool_path(vm->spool), strerror(-r));
		return r;
	}
	mailbox_attach(vm->mbox);
	log_notice("VM %s: %s: crash %s recorded (%s)", vm->cfg.name, event,
		   vm->crash->id, source);
	return 0;
}

/* No crash kernel: the guest is held; snapshot unless told never to. */
static void vm_held(struct vm *vm)
{
	if (vm->cfg.snapshot != SNAPSHOT_NEVER) {
		crash_note(vm->crash, "snapshot=%s: no crash kernel, so the host takes the snapshot",
			   snapshot_policy_to_string(vm->cfg.snapshot));
		vm_snapshot(vm, false);
		return;
	}
	vm_final_action(vm);
}

static void vm_on_crash_event(struct vm *vm, const struct qmp_msg *ev)
{
	bool loaded = strcmp(ev->event, PB_PVPANIC_QMP_CRASH_LOADED) == 0;
	const char *action = vm_event_action(ev);
	char source[128];

	if (vm->crash) {
		if (vm->crash->state == CRASH_KDUMP_RUNNING && !loaded) {
			vm_stop_kdump_timers(vm);
			crash_set_state(vm->crash, CRASH_KDUMP_FAILED,
					"%s (action %s) while the kdump kernel ran: kdump itself panicked",
					ev->event, action);
			vm_save(vm);
			log_warn("VM %s: crash %s: the kdump kernel panicked", vm->cfg.name,
				 vm->crash->id);
			vm_kdump_failed(vm);
			return;
		}
		crash_add_duplicate(vm->crash, ev->event);
		vm_save(vm);
		log_info("VM %s: %s again; counted in crash %s", vm->cfg.name,
			 ev->event, vm->crash->id);
		return;
	}

	snprintf(source, sizeof(source), "QMP event %s, action %s", ev->event, action);
	if (vm_new_crash(vm, ev->event, ev, source) < 0) {
		/* Without a record the guest must not be lost: apply nothing,
		 * leave it as QEMU left it, and say so loudly above. */
		return;
	}
	if (loaded) {
		if (vm->cfg.snapshot == SNAPSHOT_ALWAYS) {
			crash_note(vm->crash, "snapshot=always: the guest is paused for a snapshot before kdump goes on");
			vm_snapshot(vm, true);
			return;
		}
		vm_enter_kdump(vm, "a crash kernel is loaded: the guest runs on into kdump");
		return;
	}
	if (strcmp(action, "poweroff") == 0 || strcmp(action, "shutdown") == 0 ||
	    strcmp(action, "exit-failure") == 0) {
		vm_close_crash(vm, "failed",
			       "QEMU's panic action was '%s', so QEMU ended the VM itself (set-action panic=pause did not take effect)",
			       action);
		return;
	}
	crash_set_state(vm->crash, CRASH_HELD, "QEMU holds the guest (panic action %s)",
			action);
	vm_save(vm);
	vm_held(vm);
}

static void vm_on_reset(struct vm *vm, const struct qmp_msg *ev)
{
	json_object *g;
	bool guest = ev->payload && json_object_object_get_ex(ev->payload, "guest", &g) &&
		     json_object_get_boolean(g);

	if (!vm->crash)
		return;
	if (vm->step == VM_STEP_RESET || vm->step == VM_STEP_AWAIT_RESET) {
		vm->reset_seen = true;
		if (vm->step == VM_STEP_AWAIT_RESET)
			vm_final_action(vm);
		return;
	}
	if (vm->crash->state == CRASH_KDUMP_RUNNING) {
		vm_stop_kdump_timers(vm);
		crash_set_state(vm->crash, CRASH_KDUMP_FINISHED,
				"the guest reset %s from its kdump kernel",
				guest ? "itself" : "(by the host)");
		vm_save(vm);
		vm_final_action(vm);
	}
}

static void vm_on_shutdown(struct vm *vm, const struct qmp_msg *ev)
{
	(void)ev;
	if (!vm->crash || vm->step == VM_STEP_QUIT)
		return;
	if (vm->crash->state == CRASH_KDUMP_RUNNING) {
		vm_stop_kdump_timers(vm);
		vm->guest_down = true;
		crash_set_state(vm->crash, CRASH_KDUMP_FINISHED,
				"the guest powered off from its kdump kernel");
		vm_save(vm);
		vm_final_action(vm);
	}
}

/* ---- snapshot: stop, dump, then cont into kdump or the final action ---- */

static void vm_on_kdump_cont(struct qmp *q, const struct qmp_msg *reply, void *ud)
{
	struct vm *vm = ud;

	(void)q;
	vm->step = VM_STEP_NONE;
	if (reply->type == QMP_MSG_ERROR) {
		crash_note(vm->crash, "cont after the snapshot refused: %s", reply->error_desc);
		vm_kdump_failed(vm);
		return;
	}
	vm_enter_kdump(vm, "snapshot taken: the guest goes on into kdump");
}

static void vm_on_snapshot_done(struct snapshot *s, bool ok, void *ud)
{
	struct vm *vm = ud;

	(void)s;
	(void)ok;
	vm->snap = NULL;
	if (!vm->crash)
		return;
	if (vm->snap_resume_kdump) {
		vm->snap_resume_kdump = false;
		vm_send_step(vm, VM_STEP_CONT, "cont", vm_on_kdump_cont);
		return;
	}
	vm_final_action(vm);
}

static int vm_on_snapshot_retry(sd_event_source *src, uint64_t usec, void *ud)
{
	struct vm *vm = ud;

	(void)src;
	(void)usec;
	vm->snap_retry = sd_event_source_disable_unref(vm->snap_retry);
	if (vm->crash && vm->crash->state == CRASH_SNAPSHOTTING && !vm->snap)
		vm_snapshot(vm, vm->snap_resume_kdump);
	return 0;
}

static void vm_snapshot_begin(struct vm *vm)
{
	int r;

	r = snapshot_start(vm->event, vm->qmp, vm->crash, spool_path(vm->spool),
			   vm->cfg.snapshot_format, vm_on_snapshot_done, vm, &vm->snap);
	if (r == -EBUSY) {
		/* Others hold every dump slot: the guest stays paused meanwhile. */
		if (!vm->snap_retry)
			crash_note(vm->crash, "waiting for a free dump slot");
		sd_event_add_time_relative(vm->event, &vm->snap_retry, CLOCK_MONOTONIC,
					   USEC_PER_SEC, 0, vm_on_snapshot_retry, vm);
		return;
	}
	if (r < 0) {
		crash_note(vm->crash, "snapshot not taken: %s", strerror(-r));
		vm_save(vm);
		vm_on_snapshot_done(NULL, false, vm);
	}
}

static void vm_on_stop(struct qmp *q, const struct qmp_msg *reply, void *ud)
{
	struct vm *vm = ud;

	(void)q;
	vm->step = VM_STEP_NONE;
	if (reply->type == QMP_MSG_ERROR) {
		crash_note(vm->crash, "stop refused (%s): no snapshot", reply->error_desc);
		vm_save(vm);
		vm_on_snapshot_done(NULL, false, vm);
		return;
	}
	vm_snapshot_begin(vm);
}

/* Pauses the guest (it may be running into or in kdump) and dumps it. */
static void vm_snapshot(struct vm *vm, bool resume_kdump)
{
	vm_stop_kdump_timers(vm);
	vm->snap_resume_kdump = resume_kdump;
	crash_set_state(vm->crash, CRASH_SNAPSHOTTING, "taking a %s snapshot of the guest's memory",
			vm->cfg.snapshot_format);
	vm_save(vm);
	vm_send_step(vm, VM_STEP_STOP, "stop", vm_on_stop);
}

/* ---- final action: restart = [query-status] system_reset, RESET, [cont] ---- */

static void vm_step_failed(struct vm *vm, const char *what,
			   const struct qmp_msg *reply)
{
	vm_close_crash(vm, "failed", "%s refused: %s: %s", what, reply->error_class,
		       reply->error_desc);
}

static void vm_send_step(struct vm *vm, enum vm_step step, const char *cmd,
			 qmp_reply_fn fn)
{
	int r;

	vm->step = step;
	r = qmp_send(vm->qmp, cmd, NULL, fn, vm);
	if (r < 0) {
		/* Not attached: the reconcile after reattach picks this up. */
		vm->step = VM_STEP_NONE;
		log_warn("VM %s: crash %s: cannot send %s now (%s); retried after reattach",
			 vm->cfg.name, vm->crash->id, cmd, strerror(-r));
	}
}

static void vm_on_cont(struct qmp *q, const struct qmp_msg *reply, void *ud)
{
	struct vm *vm = ud;

	(void)q;
	if (reply->type == QMP_MSG_ERROR) {
		vm_step_failed(vm, "cont", reply);
		return;
	}
	vm_close_crash(vm, "applied", "system_reset and cont: the guest boots again");
}

static int vm_on_step_timeout(sd_event_source *s, uint64_t usec, void *ud)
{
	struct vm *vm = ud;

	(void)s;
	(void)usec;
	vm->step_timer = sd_event_source_disable_unref(vm->step_timer);
	if (vm->crash && vm->step == VM_STEP_AWAIT_RESET) {
		crash_note(vm->crash, "no RESET event within %llu s of system_reset; continuing",
			   VM_RESET_WAIT_USEC / USEC_PER_SEC);
		vm->reset_seen = true;
		vm_final_action(vm);
	}
	return 0;
}

static void vm_on_system_reset(struct qmp *q, const struct qmp_msg *reply, void *ud)
{
	struct vm *vm = ud;

	(void)q;
	if (reply->type == QMP_MSG_ERROR) {
		vm_step_failed(vm, "system_reset", reply);
		return;
	}
	vm->step = VM_STEP_AWAIT_RESET;
	if (vm->reset_seen) {
		vm_final_action(vm);
		return;
	}
	sd_event_add_time_relative(vm->event, &vm->step_timer, CLOCK_MONOTONIC,
				   VM_RESET_WAIT_USEC, 0, vm_on_step_timeout, vm);
}

static const char *vm_reply_status(const struct qmp_msg *reply)
{
	json_object *st;

	if (reply->type == QMP_MSG_RETURN && reply->payload &&
	    json_object_object_get_ex(reply->payload, "status", &st) &&
	    json_object_is_type(st, json_type_string))
		return json_object_get_string(st);
	return NULL;
}

static void vm_on_restart_status(struct qmp *q, const struct qmp_msg *reply,
				 void *ud)
{
	struct vm *vm = ud;
	const char *status = vm_reply_status(reply);

	(void)q;
	if (!status) {
		vm_close_crash(vm, "failed", "query-status gave no status");
		return;
	}
	vm->need_cont = strcmp(status, "running") != 0;
	vm->reset_seen = false;
	vm_send_step(vm, VM_STEP_RESET, "system_reset", vm_on_system_reset);
}

static void vm_on_quit(struct qmp *q, const struct qmp_msg *reply, void *ud)
{
	struct vm *vm = ud;

	(void)q;
	if (reply->type == QMP_MSG_ERROR) {
		vm_step_failed(vm, "quit", reply);
		return;
	}
	vm_close_crash(vm, "applied", "QEMU quit");
}

/*
 * Applies the VM's final action to its open crash, one step per call: each
 * QMP reply (or the RESET event) calls back in here until the crash closes.
 */
static void vm_final_action(struct vm *vm)
{
	struct crash *c = vm->crash;

	if (!c)
		return;
	switch (c->final_action) {
	case FINAL_ACTION_PRESERVE:
		vm_close_crash(vm, "preserved",
			       c->state == CRASH_KDUMP_FINISHED ?
				       "the kdump kernel already ended the crashed kernel; the VM is left as it is" :
				       "the VM is left as it is for inspection");
		return;
	case FINAL_ACTION_POWEROFF:
		if (vm->step == VM_STEP_NONE)
			vm_send_step(vm, VM_STEP_QUIT, "quit", vm_on_quit);
		return;
	case FINAL_ACTION_RESTART:
		break;
	}

	switch (vm->step) {
	case VM_STEP_NONE:
		if (c->state == CRASH_KDUMP_FINISHED && !vm->guest_down) {
			vm_close_crash(vm, "not-needed",
				       "the kdump kernel rebooted the guest itself");
			return;
		}
		vm_send_step(vm, VM_STEP_STATUS, "query-status", vm_on_restart_status);
		return;
	case VM_STEP_AWAIT_RESET:
		if (!vm->reset_seen)
			return;
		vm->step_timer = sd_event_source_disable_unref(vm->step_timer);
		if (!vm->need_cont) {
			vm_close_crash(vm, "applied", "system_reset: the guest boots again");
			return;
		}
		vm_send_step(vm, VM_STEP_CONT, "cont", vm_on_cont);
		return;
	default:
		return; /* a reply is due */
	}
}

/* ---- attach: set the panic action, then reconcile with the VM's state ---- */

static void vm_on_set_action(struct qmp *q, const struct qmp_msg *reply, void *ud)
{
	struct vm *vm = ud;

	(void)q;
	if (reply->type == QMP_MSG_ERROR)
		log_warn("VM %s: set-action panic=pause refused (%s: %s): a guest that panics without kdump may be powered off by QEMU before panicbroker acts",
			 vm->cfg.name, reply->error_class, reply->error_desc);
}

/*
 * The mailbox held a panic record at daemon start (salvaged, SPEC §4.1) and
 * no crash is open: the guest panicked while no daemon watched, and QEMU
 * does not hold it. It ran on into kdump or was restarted, and which one
 * (or whether that kdump finished) cannot be told any more: record the
 * crash so that nothing the guest said is lost, and close it without acting.
 */
static void vm_salvaged_crash(struct vm *vm, const char *status)
{
	if (!mailbox_has_panic(vm->mbox))
		return;
	if (vm_new_crash(vm, VM_EVENT_SALVAGED, NULL,
			 "a panic record salvaged from the mailbox at daemon start: the guest panicked while no daemon watched") < 0)
		return;
	vm_close_crash(vm, "not-needed",
		       "found after the fact (VM status %s): panicbroker did not see the panic happen, so it takes no action",
		       status);
}

static void vm_on_attach_status(struct qmp *q, const struct qmp_msg *reply,
				void *ud)
{
	struct vm *vm = ud;
	const char *status = vm_reply_status(reply);
	struct crash *c = vm->crash;

	(void)q;
	if (!status) {
		log_warn("VM %s: query-status gave no status; cannot reconcile", vm->cfg.name);
		return;
	}
	log_info("VM %s: attached to QMP at %s (VM status %s)", vm->cfg.name,
		 vm->cfg.qmp_path, status);
	vm->last_problem[0] = '\0';

	if (!c) {
		if (strcmp(status, "guest-panicked") != 0) {
			vm_salvaged_crash(vm, status);
			return;
		}
		if (vm_new_crash(vm, PB_PVPANIC_QMP_PANICKED, NULL,
				 "found the VM in guest-panicked at attach; its QMP event was missed") < 0)
			return;
		crash_set_state(vm->crash, CRASH_HELD, "QEMU holds the guest (status guest-panicked)");
		vm_save(vm);
		vm_final_action(vm);
		return;
	}

	crash_note(c, "reattached to QMP; VM status %s", status);
	if (strcmp(status, "guest-panicked") == 0) {
		if (c->state == CRASH_KDUMP_RUNNING) {
			vm_stop_kdump_timers(vm);
			crash_set_state(c, CRASH_KDUMP_FAILED,
					"found guest-panicked at reattach while kdump ran");
		} else if (c->state == CRASH_DETECTED) {
			crash_set_state(c, CRASH_HELD, "QEMU holds the guest (status guest-panicked)");
		}
		vm_save(vm);
		vm_final_action(vm);
		return;
	}
	if (c->state == CRASH_KDUMP_RUNNING) {
		vm_save(vm);
		vm_arm_kdump_timer(vm);
		vm_arm_kdump_watch(vm);
		return;
	}
	if (strcmp(status, "running") == 0 &&
	    (c->state == CRASH_DETECTED || c->state == CRASH_HELD ||
	     c->state == CRASH_KDUMP_FAILED || c->state == CRASH_SNAPSHOTTING)) {
		vm_close_crash(vm, "not-needed",
			       "the VM was found running at reattach: it was restarted outside panicbroker");
		return;
	}
	vm_save(vm);
	vm_final_action(vm);
}

static void vm_on_ready(struct qmp *q, void *ud)
{
	struct vm *vm = ud;
	json_object *args = json_object_new_object();
	int r;

	vm->ready_at_usec = vm_now(vm);
	vm->rl_window_usec = vm->ready_at_usec;
	vm->rl_count = 0;
	/* Hold a guest that panics without kdump for the host, instead of
	 * QEMU's default of powering it off. */
	json_object_object_add(args, "panic", json_object_new_string("pause"));
	r = qmp_send(q, "set-action", args, vm_on_set_action, vm);
	json_object_put(args);
	if (r >= 0)
		r = qmp_send(q, "query-status", NULL, vm_on_attach_status, vm);
	if (r < 0) {
		char reason[128];

		snprintf(reason, sizeof(reason), "cannot send attach commands: %s", strerror(-r));
		vm_drop_session(vm, reason);
	}
}

static void vm_on_event(struct qmp *q _unused_, const struct qmp_msg *ev, void *ud)
{
	struct vm *vm = ud;
	uint64_t now = vm_now(vm);

	if (now - vm->rl_window_usec >= USEC_PER_SEC) {
		vm->rl_window_usec = now;
		vm->rl_count = 0;
	}
	if (++vm->rl_count > VM_EVENTS_PER_SEC) {
		char reason[96];

		snprintf(reason, sizeof(reason), "more than %d QMP events in a second, dropped",
			 VM_EVENTS_PER_SEC);
		vm->ready_at_usec = 0; /* a flood never counts as a stable session */
		vm_drop_session(vm, reason);
		return;
	}
	log_debug("VM %s: event %s", vm->cfg.name, ev->event);
	if (strcmp(ev->event, PB_PVPANIC_QMP_PANICKED) == 0 ||
	    strcmp(ev->event, PB_PVPANIC_QMP_CRASH_LOADED) == 0) {
		/* pvpanic is the mailbox's doorbell: read what the guest left. */
		mailbox_poll(vm->mbox);
		vm_on_crash_event(vm, ev);
	}
	else if (strcmp(ev->event, "RESET") == 0) {
		/* The kdump kernel's last reports come right before its reboot. */
		mailbox_drain(vm->mbox);
		vm_on_reset(vm, ev);
	} else if (strcmp(ev->event, "SHUTDOWN") == 0) {
		mailbox_drain(vm->mbox);
		vm_on_shutdown(vm, ev);
	}
	else if (strcmp(ev->event, "DUMP_COMPLETED") == 0)
		snapshot_on_event(vm->snap, ev);
}

static const struct qmp_ops vm_qmp_ops = {
	.ready = vm_on_ready,
	.event = vm_on_event,
	.closed = vm_on_closed,
};

static struct crash *vm_mailbox_crash(void *ud)
{
	struct vm *vm = ud;

	return vm->crash;
}

static void vm_mailbox_save(void *ud)
{
	struct vm *vm = ud;

	if (vm->crash)
		vm_save(vm);
}

/* The kdump session opened or reported: keep its deadline, or act on it. */
static void vm_mailbox_kdump(void *ud)
{
	struct vm *vm = ud;
	struct crash *c = vm->crash;
	enum crash_ks ks;

	if (!c || c->state != CRASH_KDUMP_RUNNING)
		return;
	ks = c->kdump_ks;
	switch (ks) {
	case CRASH_KS_NONE:
	case CRASH_KS_HUNG:
		break;
	case CRASH_KS_RUNNING:
		/* Every session open and every report taken re-arms it. */
		crash_kdump_set_deadline(c, ts_now_realtime_usec() +
						    vm->cfg.kdump_progress_timeout_usec);
		vm_arm_kdump_watch(vm);
		break;
	case CRASH_KS_DONE:
		vm->kdump_watch = sd_event_source_disable_unref(vm->kdump_watch);
		if (vm->kdump_ks_seen != ks)
			log_notice("VM %s: crash %s: the kdump kernel reported done; waiting for it to reboot the guest",
				   vm->cfg.name, c->id);
		break;
	case CRASH_KS_FAILED:
		if (vm->kdump_ks_seen == ks)
			break;
		vm->kdump_ks_seen = ks;
		vm_stop_kdump_timers(vm);
		crash_set_state(c, CRASH_KDUMP_FAILED,
				"the kdump kernel reported failure over the broker channel: %s",
				crash_kdump_reason(c));
		vm_save(vm);
		log_warn("VM %s: crash %s: the kdump kernel failed: %s", vm->cfg.name, c->id,
			 crash_kdump_reason(c));
		vm_kdump_failed(vm);
		return;
	case CRASH_KS_MAX:
		break;
	}
	vm->kdump_ks_seen = ks;
}

/*
 * A fresh boot of the guest. After kdump said done it closes the crash even
 * when the kdump kernel's RESET was missed (a daemon restart, a lost QMP
 * session); without done the crash waits on as before.
 */
static void vm_mailbox_booted(void *ud, uint64_t session)
{
	struct vm *vm = ud;
	struct crash *c = vm->crash;

	if (!c || c->state != CRASH_KDUMP_RUNNING || c->kdump_ks != CRASH_KS_DONE)
		return;
	vm_stop_kdump_timers(vm);
	crash_set_state(c, CRASH_KDUMP_FINISHED,
			"kdump reported done and the guest booted again (guest session %016llx); the kdump kernel's reset was not seen",
			(unsigned long long)session);
	vm_save(vm);
	log_notice("VM %s: crash %s: the guest booted again after kdump was done",
		   vm->cfg.name, c->id);
	vm_final_action(vm);
}

static const struct mailbox_ops vm_mailbox_ops = {
	.crash = vm_mailbox_crash,
	.save = vm_mailbox_save,
	.kdump = vm_mailbox_kdump,
	.booted = vm_mailbox_booted,
};

int vm_new(sd_event *e, struct spool *spool, const struct vm_config *cfg,
	   struct vm **ret, char *err, size_t errlen)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	int r;

	if (!vm)
		return -ENOMEM;
	vm->cfg = *cfg;
	vm->event = sd_event_ref(e);
	vm->spool = spool;
	vm->backoff_usec = VM_BACKOFF_MIN_USEC;
	r = qmp_new(e, cfg->qmp_path, &vm_qmp_ops, vm, &vm->qmp);
	if (r < 0) {
		snprintf(err, errlen, "%s", strerror(-r));
		sd_event_unref(vm->event);
		free(vm);
		return r;
	}
	if (cfg->mailbox_path[0]) {
		r = mailbox_open(e, cfg->name, cfg->mailbox_path, &vm_mailbox_ops, vm,
				 &vm->mbox, err, errlen);
		if (r < 0) {
			vm_free(vm);
			return r;
		}
	}
	*ret = vm;
	return 0;
}

void vm_adopt_crash(struct vm *vm, struct crash *c)
{
	if (vm->crash) {
		/* Two open crashes for one VM: the older can no longer progress. */
		crash_set_final_result(vm->crash, "not-needed",
				       "superseded by a newer open crash of the same VM");
		crash_set_state(vm->crash, CRASH_CLOSED, "superseded by crash %s", c->id);
		vm_save(vm);
		mailbox_crash_closed(vm->mbox, vm->crash);
		crash_free(vm->crash);
	}
	vm->crash = c;
	vm->kdump_ks_seen = c->kdump_ks;
	crash_note(c, "panicbrokerd restarted; crash resumed in state %s",
		   crash_state_to_string(c->state));
	snapshot_abandon_stale(c);
	mailbox_attach(vm->mbox);
	vm_save(vm);
}

void vm_free(struct vm *vm)
{
	if (!vm)
		return;
	qmp_free(vm->qmp);
	mailbox_free(vm->mbox);
	sd_event_source_disable_unref(vm->retry_timer);
	sd_event_source_disable_unref(vm->kdump_timer);
	sd_event_source_disable_unref(vm->kdump_watch);
	sd_event_source_disable_unref(vm->step_timer);
	sd_event_source_disable_unref(vm->snap_retry);
	snapshot_free(vm->snap);
	crash_free(vm->crash);
	sd_event_unref(vm->event);
	free(vm);
}
