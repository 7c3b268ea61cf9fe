// SPDX-License-Identifier: MIT
/*
 * The runner's hands: the kdump deadlines on the loop and the operations on
 * the VM through its backend (one at a time), with the snapshot they start.
 * Each outcome goes back to the crash machine through vm_dispatch().
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "observe.h"
#include "util.h"
#include "vm_internal.h"

static void vm_on_deadline(struct vm *vm, enum cm_event_type type)
{
	struct cm_event ev = { .type = type };

	vm_dispatch(vm, &ev, NULL);
}

static int vm_on_bound(sd_event_source *s, uint64_t usec, void *ud)
{
	struct vm *vm = ud;

	(void)s;
	(void)usec;
	vm->bound_timer = sd_event_source_disable_unref(vm->bound_timer);
	vm_on_deadline(vm, CM_EV_KDUMP_BOUND);
	return 0;
}

static int vm_on_watch(sd_event_source *s, uint64_t usec, void *ud)
{
	struct vm *vm = ud;

	(void)s;
	(void)usec;
	vm->watch_timer = sd_event_source_disable_unref(vm->watch_timer);
	vm_on_deadline(vm, CM_EV_KDUMP_WATCH);
	return 0;
}

/* Arms @slot for the CLOCK_REALTIME instant @at_usec (now if passed). */
static void vm_arm(struct vm *vm, sd_event_source **slot, uint64_t at_usec,
		   sd_event_time_handler_t fn, const char *what)
{
	uint64_t now = ts_now_realtime_usec();
	int r;

	*slot = sd_event_source_disable_unref(*slot);
	r = sd_event_add_time_relative(vm->event, slot, CLOCK_MONOTONIC,
				       at_usec > now ? at_usec - now : 0, 0, fn, vm);
	if (r < 0)
		log_error("VM %s: cannot arm the %s: %s; it will not fire", vm->cfg.name,
			  what, strerror(-r));
}

void vm_disarm_watch(struct vm *vm)
{
	vm->watch_timer = sd_event_source_disable_unref(vm->watch_timer);
	if (vm->crash && vm->crash->kdump_watch_usec)
		crash_kdump_set_watch(vm->crash, 0);
}

/* ---- operations on the VM ---- */

static bool vm_connection_error(int error)
{
	return error == -ENOTCONN || error == -ECONNRESET || error == -EPIPE;
}

/*
 * The backend runs one operation at a time (backend.h), so one slot in
 * struct vm holds it; op_gen tells a completion that is still awaited from
 * one orphaned since (its crash closed, or the VM reattached).
 */
static void vm_on_op(void *ud, int error, const char *reason)
{
	struct vm *vm = ud;
	struct cm_event ev = { .type = error < 0 ? vm->op.fail : vm->op.ok, .detail = reason };

	if (vm->op.gen != vm->op_gen || !vm->crash)
		return; /* orphaned: the crash it was for is gone */
	vm->op_gen++;
	if (error < 0 && vm_connection_error(error)) {
		/* The attach that follows reconciles: the machine decides again. */
		log_warn("VM %s: crash %s: the VM went away during the operation (%s); retried after reattach",
			 vm->cfg.name, vm->crash->id, reason ? reason : strerror(-error));
		return;
	}
	vm_dispatch(vm, &ev, NULL);
}

typedef int (*vm_op_fn)(struct backend *b, be_done_fn done, void *ud);

static void vm_run_op(struct vm *vm, const char *name, vm_op_fn fn, be_done_fn done,
		      enum cm_event_type ok, enum cm_event_type fail)
{
	int r;

	vm->op = (struct vm_op){ .name = name, .gen = ++vm->op_gen, .ok = ok, .fail = fail };
	r = fn(vm->be, done, vm);
	if (r < 0) {
		vm->op_gen++;
		/* Not attached: the reconcile after reattach picks this up. */
		log_warn("VM %s: crash %s: cannot %s now (%s); retried after reattach",
			 vm->cfg.name, vm->crash->id, name, strerror(-r));
	}
}

static void vm_snapshot_begin(struct vm *vm);

static int vm_on_snapshot_retry(sd_event_source *src, uint64_t usec, void *ud)
{
	struct vm *vm = ud;

	(void)src;
	(void)usec;
	vm->snap_retry = sd_event_source_disable_unref(vm->snap_retry);
	if (vm->crash && vm->crash->state == CRASH_SNAPSHOTTING && !vm->snap)
		vm_snapshot_begin(vm);
	return 0;
}

static void vm_on_snapshot_done(bool ok, void *ud)
{
	struct vm *vm = ud;
	struct cm_event ev = { .type = ok ? CM_EV_SNAPSHOT_DONE : CM_EV_SNAPSHOT_FAILED };

	vm->snap = NULL;
	obs_emit(&(struct obs_event){
		.type = OBS_SNAPSHOT_END, .vm = vm->cfg.name, .crash = vm->crash,
		.outcome = crash_snapshot_get_state(vm->crash),
		.seconds = crash_snapshot_seconds(vm->crash),
	});
	vm_dispatch(vm, &ev, NULL);
}

static void vm_snapshot_failed(struct vm *vm, const char *fmt, int error)
{
	char detail[256];
	struct cm_event ev = { .type = CM_EV_SNAPSHOT_FAILED, .detail = detail };

	snprintf(detail, sizeof(detail), fmt, strerror(-error));
	vm_dispatch(vm, &ev, NULL);
}

static void vm_snapshot_begin(struct vm *vm)
{
	int r;

	r = snapshot_start(vm->event, vm->be, vm->crash, spool_path(vm->spool),
			   vm->cfg.snapshot_format, vm_on_snapshot_done, vm, &vm->snap);
	if (r == -EBUSY) {
		/* Others hold every dump slot: the guest stays paused meanwhile. */
		if (!vm->snap_retry) {
			crash_note(vm->crash, "waiting for a free dump slot");
			vm_save(vm);
		}
		vm->snap_retry = sd_event_source_disable_unref(vm->snap_retry);
		r = sd_event_add_time_relative(vm->event, &vm->snap_retry, CLOCK_MONOTONIC,
					       USEC_PER_SEC, 0, vm_on_snapshot_retry, vm);
		if (r >= 0)
			return;
		/* Without the retry the guest would stay paused for good. */
		vm_snapshot_failed(vm, "snapshot not taken: cannot wait for a dump slot: %s", r);
		return;
	}
	if (r < 0)
		vm_snapshot_failed(vm, "snapshot not taken: %s", r);
}

static void vm_on_hold(void *ud, int error, const char *reason)
{
	struct vm *vm = ud;
	char detail[256];
	struct cm_event ev = { .type = CM_EV_SNAPSHOT_FAILED, .detail = detail };

	if (vm->op.gen != vm->op_gen || !vm->crash)
		return;
	vm->op_gen++;
	if (vm->crash->state != CRASH_SNAPSHOTTING)
		return;
	if (error < 0 && vm_connection_error(error)) {
		log_warn("VM %s: crash %s: the VM went away before the snapshot (%s); retried after reattach",
			 vm->cfg.name, vm->crash->id, reason ? reason : strerror(-error));
		return;
	}
	if (error < 0) {
		snprintf(detail, sizeof(detail), "%s: no snapshot",
			 reason ? reason : strerror(-error));
		vm_dispatch(vm, &ev, NULL);
		return;
	}
	vm_snapshot_begin(vm);
}

/* ---- what the runner asks for ---- */

void vm_arm_bound(struct vm *vm)
{
	vm_arm(vm, &vm->bound_timer, vm->crash->kdump_deadline_usec, vm_on_bound, "kdump deadline");
}

void vm_arm_watch(struct vm *vm)
{
	vm_arm(vm, &vm->watch_timer, vm->crash->kdump_watch_usec, vm_on_watch,
	       "kdump session deadline");
}

void vm_disarm_bound(struct vm *vm)
{
	vm->bound_timer = sd_event_source_disable_unref(vm->bound_timer);
}

void vm_do_hold(struct vm *vm)
{
	vm_run_op(vm, "pause the VM", vm->bops->pause, vm_on_hold, 0, 0);
}

void vm_do_resume(struct vm *vm)
{
	vm_run_op(vm, "resume the VM", vm->bops->resume, vm_on_op, CM_EV_RESUME_DONE,
		  CM_EV_RESUME_FAILED);
}

void vm_do_reset(struct vm *vm)
{
	vm_run_op(vm, "reset the VM", vm->bops->reset, vm_on_op, CM_EV_FINAL_DONE,
		  CM_EV_FINAL_FAILED);
}

void vm_do_poweroff(struct vm *vm)
{
	vm_run_op(vm, "power the VM off", vm->bops->poweroff, vm_on_op, CM_EV_FINAL_DONE,
		  CM_EV_FINAL_FAILED);
}
