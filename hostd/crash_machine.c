// SPDX-License-Identifier: MIT
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <panicbroker/pvpanic.h>

#include "common.h"
#include "crash_machine_internal.h"

/* The event of a crash known only from a salvaged panic record. */
#define CM_EVENT_SALVAGED "PANIC_RECORD"

static const char *const cm_event_names[CM_EV_MAX] = {
	[CM_EV_PANIC] = "panic",
	[CM_EV_CRASHLOADED] = "crashloaded",
	[CM_EV_RESET] = "reset",
	[CM_EV_SHUTDOWN] = "shutdown",
	[CM_EV_GONE] = "gone",
	[CM_EV_ATTACHED] = "attached",
	[CM_EV_PANIC_RECORD] = "panic-record",
	[CM_EV_UNLOAD] = "unload",
	[CM_EV_KDUMP_SESSION] = "kdump-session",
	[CM_EV_KDUMP_REPORT] = "kdump-report",
	[CM_EV_BOOTED] = "booted",
	[CM_EV_KDUMP_BOUND] = "kdump-bound",
	[CM_EV_KDUMP_WATCH] = "kdump-watch",
	[CM_EV_SNAPSHOT_DONE] = "snapshot-done",
	[CM_EV_SNAPSHOT_FAILED] = "snapshot-failed",
	[CM_EV_RESUME_DONE] = "resume-done",
	[CM_EV_RESUME_FAILED] = "resume-failed",
	[CM_EV_FINAL_DONE] = "final-done",
	[CM_EV_FINAL_FAILED] = "final-failed",
	[CM_EV_DAEMON_RESUMED] = "daemon-resumed",
};

const char *cm_event_name(enum cm_event_type t)
{
	return t < CM_EV_MAX ? cm_event_names[t] : "?";
}

const char *cm_action_name(unsigned int bit)
{
	static const char *const names[] = {
		"create", "duplicate", "abandon-snapshot", "kdump-hung", "kdump-state",
		"disarm", "disarm-watch", "history", "arm-bound", "arm-watch", "close",
		"save", "hold", "snapshot", "resume", "reset", "poweroff",
	};

	for (unsigned int i = 0; i < ARRAY_SIZE(names); i++)
		if (bit == 1u << i)
			return names[i];
	return "?";
}

unsigned long long cm_sec(uint64_t usec)
{
	return (unsigned long long)(usec / USEC_PER_SEC);
}

static void cm_vnote(struct cm_ctx *x, bool change, enum crash_state st,
		     const char *fmt, va_list ap)
{
	struct cm_result *r = x->r;
	struct cm_note *n;

	if (r->n_notes >= CM_NOTES_MAX)
		return; /* cannot happen: no path takes more than a few */
	n = &r->notes[r->n_notes++];
	n->change = change;
	n->state = st;
	vsnprintf(n->text, sizeof(n->text), fmt, ap);
	r->actions |= CM_ACT_HISTORY | CM_ACT_SAVE;
}

void cm_note(struct cm_ctx *x, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cm_vnote(x, false, x->r->after.state, fmt, ap);
	va_end(ap);
}

void cm_goto(struct cm_ctx *x, enum crash_state st,
				   const char *fmt, ...)
{
	va_list ap;

	x->r->after.state = st;
	va_start(ap, fmt);
	cm_vnote(x, true, st, fmt, ap);
	va_end(ap);
}

void cm_log(struct cm_ctx *x, enum cm_log level,
				  const char *fmt, ...)
{
	va_list ap;

	x->r->log = level;
	va_start(ap, fmt);
	vsnprintf(x->r->log_text, sizeof(x->r->log_text), fmt, ap);
	va_end(ap);
}

void cm_act(struct cm_ctx *x, unsigned int actions)
{
	x->r->actions |= actions;
}

/* Every kdump deadline stops, and the record shows none pending. */
void cm_disarm(struct cm_ctx *x)
{
	cm_act(x, CM_ACT_DISARM | CM_ACT_SAVE);
	x->r->after.watch_pending = false;
}

void cm_close(struct cm_ctx *x, const char *outcome,
				    const char *fmt, ...)
{
	struct cm_result *r = x->r;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
	va_end(ap);
	r->outcome = outcome;
	cm_disarm(x);
	cm_act(x, CM_ACT_CLOSE);
	cm_goto(x, CRASH_CLOSED, "final action %s: %s: %s",
		final_action_to_string(r->after.final_action), outcome, r->detail);
	r->after.guest_down = false;
	r->after.resume_kdump = false;
	if (strcmp(outcome, "failed") == 0)
		cm_log(x, CM_LOG_ERROR, "closed: final action %s failed: %s",
		       final_action_to_string(r->after.final_action), r->detail);
	else
		cm_log(x, CM_LOG_NOTICE, "closed: final action %s %s (%s)",
		       final_action_to_string(r->after.final_action), outcome, r->detail);
}

/* The VM's final action on the open crash. */
void cm_final(struct cm_ctx *x)
{
	const struct cm_crash *c = &x->r->after;

	switch (c->final_action) {
	case FINAL_ACTION_PRESERVE:
		cm_close(x, "preserved", "%s",
			 c->state == CRASH_KDUMP_FINISHED ?
				 "the kdump kernel already ended the crashed kernel; the VM is left as it is" :
				 "the VM is left as it is for inspection");
		return;
	case FINAL_ACTION_POWEROFF:
		cm_act(x, CM_ACT_POWEROFF);
		return;
	case FINAL_ACTION_RESTART:
		if (c->state == CRASH_KDUMP_FINISHED && !c->guest_down) {
			cm_close(x, "not-needed", "the kdump kernel rebooted the guest itself");
			return;
		}
		cm_act(x, CM_ACT_RESET);
		return;
	}
}

/* Pauses the guest (it may be running into or in kdump) and dumps it. */
void cm_snapshot(struct cm_ctx *x, bool resume_kdump)
{
	cm_disarm(x);
	x->r->after.resume_kdump = resume_kdump;
	x->r->after.snapshot_taken = true;
	cm_goto(x, CRASH_SNAPSHOTTING, "taking a %s snapshot of the guest's memory",
		x->p->snapshot_format);
	cm_act(x, CM_ACT_HOLD | CM_ACT_SNAPSHOT);
}

/* kdump failed or went silent: a snapshot if none was taken, then the final action. */
void cm_kdump_failed(struct cm_ctx *x)
{
	const struct cm_crash *c = &x->r->after;

	if (c->ks == CRASH_KS_DONE) {
		/* The kdump kernel saved its dump; it only failed to reboot. */
		if (x->p->snapshot != SNAPSHOT_NEVER)
			cm_note(x, "the kdump session reported done, so the host takes no snapshot");
		cm_final(x);
		return;
	}
	if (x->p->snapshot != SNAPSHOT_NEVER && !c->snapshot_taken) {
		cm_note(x, "snapshot=%s: kdump did not finish, so the host takes the snapshot",
			snapshot_policy_to_string(x->p->snapshot));
		cm_snapshot(x, false);
		return;
	}
	cm_final(x);
}

void cm_enter_kdump(struct cm_ctx *x, const char *why)
{
	struct cm_result *r = x->r;
	struct cm_crash *c = &r->after;
	uint64_t now = x->ev->now_usec;

	r->bound_usec = now + x->p->kdump_timeout_usec;
	cm_goto(x, CRASH_KDUMP_RUNNING, "%s (deadline %llu s)", why,
		cm_sec(x->p->kdump_timeout_usec));
	cm_act(x, CM_ACT_ARM_BOUND | CM_ACT_SAVE);
	/*
	 * The broker channel: a guest whose crashed kernel spoke it owes a
	 * kdump session. One that never did keeps only kdump_timeout.
	 */
	if (x->p->channel && c->ks == CRASH_KS_NONE && c->crashed_session)
		r->watch_usec = now + x->p->session_timeout_usec;
	else if (x->p->channel && c->ks == CRASH_KS_RUNNING)
		r->watch_usec = now + x->p->progress_timeout_usec;
	if (r->watch_usec) {
		c->watch_pending = true;
		cm_act(x, CM_ACT_ARM_WATCH);
	}
}

/* No crash kernel: the guest is held; a snapshot unless told never to. */
static void cm_held(struct cm_ctx *x)
{
	if (x->p->snapshot != SNAPSHOT_NEVER) {
		cm_note(x, "snapshot=%s: no crash kernel, so the host takes the snapshot",
			snapshot_policy_to_string(x->p->snapshot));
		cm_snapshot(x, false);
		return;
	}
	cm_final(x);
}

static void cm_create(struct cm_ctx *x, const char *event, bool kdump_loaded)
{
	struct cm_crash *c = &x->r->after;

	/* crashed_session: what the broker channel knew before the crash. */
	*c = (struct cm_crash){
		.state = CRASH_DETECTED,
		.final_action = x->p->final_action,
		.kdump_loaded = kdump_loaded,
		.crashed_session = c->crashed_session,
	};
	x->r->create_event = event;
	cm_act(x, CM_ACT_CREATE | CM_ACT_SAVE);
}

static bool cm_action_ended_vm(const char *action)
{
	return strcmp(action, "poweroff") == 0 || strcmp(action, "shutdown") == 0 ||
	       strcmp(action, "exit-failure") == 0;
}

/* GUEST_PANICKED / GUEST_CRASHLOADED. */
static void cm_on_pvpanic(struct cm_ctx *x, bool loaded)
{
	const struct cm_event *ev = x->ev;
	struct cm_result *r = x->r;
	const char *action = ev->action ? ev->action : "unknown";

	if (r->after.state != CRASH_CLOSED) {
		if (r->after.state == CRASH_KDUMP_RUNNING && !loaded) {
			cm_disarm(x);
			cm_goto(x, CRASH_KDUMP_FAILED,
				"%s (action %s) while the kdump kernel ran: kdump itself panicked",
				ev->name, action);
			cm_log(x, CM_LOG_WARN, "the kdump kernel panicked");
			cm_kdump_failed(x);
			return;
		}
		r->dup_name = ev->name;
		cm_act(x, CM_ACT_DUPLICATE | CM_ACT_SAVE);
		cm_log(x, CM_LOG_INFO, "%s again; counted", ev->name);
		return;
	}
	snprintf(r->create_source, sizeof(r->create_source), "%s event %s, action %s",
		 ev->via ? ev->via : "QMP", ev->name, action);
	cm_create(x, ev->name, loaded);
	if (loaded) {
		if (x->p->snapshot == SNAPSHOT_ALWAYS) {
			cm_note(x, "snapshot=always: the guest is paused for a snapshot before kdump goes on");
			cm_snapshot(x, true);
			return;
		}
		cm_enter_kdump(x, "a crash kernel is loaded: the guest runs on into kdump");
		return;
	}
	if (cm_action_ended_vm(action)) {
		cm_close(x, "failed",
			 "QEMU's panic action was '%s', so QEMU ended the VM itself (set-action panic=pause did not take effect)",
			 action);
		return;
	}
	cm_goto(x, CRASH_HELD, "QEMU holds the guest (panic action %s)", action);
	cm_held(x);
}

/* The VM reset or powered off by itself while its kdump kernel ran. */
static void cm_on_kdump_exit(struct cm_ctx *x, bool down)
{
	if (x->r->after.state != CRASH_KDUMP_RUNNING)
		return;
	cm_disarm(x);
	if (down) {
		x->r->after.guest_down = true;
		cm_goto(x, CRASH_KDUMP_FINISHED, "the guest powered off from its kdump kernel");
	} else {
		cm_goto(x, CRASH_KDUMP_FINISHED, "the guest reset %s from its kdump kernel",
			x->ev->guest ? "itself" : "(by the host)");
	}
	cm_final(x);
}

/* No crash open at attach: a missed panic, or one from before the daemon. */
static void cm_on_attached_none(struct cm_ctx *x)
{
	const struct cm_event *ev = x->ev;
	struct cm_result *r = x->r;

	if (ev->run_state == BE_RUN_PANICKED) {
		if (ev->preserved) {
			cm_log(x, CM_LOG_INFO,
			       "still %s from a crash whose final action was preserve; not a new crash",
			       ev->status);
			return;
		}
		snprintf(r->create_source, sizeof(r->create_source),
			 "found the VM in %s at attach; its %s event was missed", ev->status,
			 ev->via);
		cm_create(x, PB_PVPANIC_QMP_PANICKED, false);
		cm_goto(x, CRASH_HELD, "QEMU holds the guest (status %s)", ev->status);
		cm_final(x);
		return;
	}
	if (!ev->panic_pending)
		return;
	/*
	 * A panic record salvaged from the mailbox and no crash open: the
	 * guest panicked while no daemon watched, and was not held. Whether it
	 * ran on into kdump, or whether that finished, cannot be told any
	 * more: record it so that nothing the guest said is lost, act not.
	 */
	snprintf(r->create_source, sizeof(r->create_source),
		 "a panic record salvaged from the mailbox at daemon start: the guest panicked while no daemon watched");
	cm_create(x, CM_EVENT_SALVAGED, false);
	cm_close(x, "not-needed",
		 "found after the fact (VM status %s): panicbroker did not see the panic happen, so it takes no action",
		 ev->status);
}

static void cm_on_attached(struct cm_ctx *x)
{
	const struct cm_event *ev = x->ev;
	enum crash_state st = x->r->after.state;

	/* The backend could not tell the VM's state: nothing to reconcile with. */
	if (ev->run_state == BE_RUN_UNKNOWN) {
		cm_log(x, CM_LOG_WARN, "attached, but the VM's state is unknown; cannot reconcile");
		return;
	}

	if (st == CRASH_CLOSED) {
		cm_on_attached_none(x);
		return;
	}
	cm_note(x, "reattached to %s; VM status %s", ev->via, ev->status);
	if (ev->run_state == BE_RUN_PANICKED) {
		if (st == CRASH_KDUMP_RUNNING) {
			cm_disarm(x);
			cm_goto(x, CRASH_KDUMP_FAILED,
				"found %s at reattach while kdump ran", ev->status);
		} else if (st == CRASH_DETECTED) {
			cm_goto(x, CRASH_HELD, "QEMU holds the guest (status %s)", ev->status);
		}
		cm_final(x);
		return;
	}
	if (st == CRASH_KDUMP_RUNNING) {
		/* The deadlines the record holds go on (they survive restarts). */
		cm_act(x, CM_ACT_ARM_BOUND | (x->r->after.watch_pending ? CM_ACT_ARM_WATCH : 0));
		return;
	}
	if (ev->run_state == BE_RUN_RUNNING &&
	    (st == CRASH_DETECTED || st == CRASH_HELD || st == CRASH_KDUMP_FAILED ||
	     st == CRASH_SNAPSHOTTING)) {
		cm_close(x, "not-needed",
			 "the VM was found running at reattach: it was restarted outside panicbroker");
		return;
	}
	cm_final(x);
}

static void cm_on_snapshot_end(struct cm_ctx *x)
{
	struct cm_crash *c = &x->r->after;

	if (c->state != CRASH_SNAPSHOTTING)
		return;
	if (x->ev->detail)
		cm_note(x, "%s", x->ev->detail);
	cm_act(x, CM_ACT_SAVE);
	if (c->resume_kdump) {
		c->resume_kdump = false;
		cm_act(x, CM_ACT_RESUME);
		return;
	}
	cm_final(x);
}

static void cm_on_resume(struct cm_ctx *x, bool ok)
{
	if (x->r->after.state != CRASH_SNAPSHOTTING)
		return;
	if (ok) {
		cm_enter_kdump(x, "snapshot taken: the guest goes on into kdump");
		return;
	}
	cm_note(x, "cont after the snapshot refused: %s", x->ev->detail ? x->ev->detail : "");
	cm_kdump_failed(x);
}

static void cm_on_final(struct cm_ctx *x, bool ok)
{
	if (x->r->after.state == CRASH_CLOSED)
		return;
	cm_close(x, ok ? "applied" : "failed", "%s", x->ev->detail ? x->ev->detail : "");
}

void cm_step(const struct cm_crash *c, const struct cm_policy *p,
	     const struct cm_event *ev, struct cm_result *ret)
{
	struct cm_ctx x = { .p = p, .ev = ev, .r = ret };
	bool open = c->state != CRASH_CLOSED;

	memset(ret, 0, sizeof(*ret));
	ret->after = *c;
	switch (ev->type) {
	case CM_EV_PANIC:
		cm_on_pvpanic(&x, false);
		break;
	case CM_EV_CRASHLOADED:
		cm_on_pvpanic(&x, true);
		break;
	case CM_EV_RESET:
		cm_on_kdump_exit(&x, false);
		break;
	case CM_EV_SHUTDOWN:
		cm_on_kdump_exit(&x, true);
		break;
	case CM_EV_GONE:
		if (!open)
			break;
		cm_disarm(&x);
		cm_note(&x, "the VM is no longer supervised (%s); the crash stays open in the spool",
			ev->detail ? ev->detail : "removed");
		break;
	case CM_EV_ATTACHED:
		cm_on_attached(&x);
		break;
	case CM_EV_PANIC_RECORD:
		/* Facts for the record (the caller wrote them); nothing to decide. */
		if (open)
			cm_act(&x, CM_ACT_SAVE);
		break;
	case CM_EV_UNLOAD:
		/* The acknowledgement is the broker channel's; nothing changes here. */
		break;
	case CM_EV_KDUMP_SESSION:
		cm_on_kdump_session(&x);
		break;
	case CM_EV_KDUMP_REPORT:
		cm_on_kdump_report(&x);
		break;
	case CM_EV_BOOTED:
		cm_on_booted(&x);
		break;
	case CM_EV_KDUMP_BOUND:
		cm_on_bound(&x);
		break;
	case CM_EV_KDUMP_WATCH:
		cm_on_watch(&x);
		break;
	case CM_EV_SNAPSHOT_DONE:
	case CM_EV_SNAPSHOT_FAILED:
		cm_on_snapshot_end(&x);
		break;
	case CM_EV_RESUME_DONE:
		cm_on_resume(&x, true);
		break;
	case CM_EV_RESUME_FAILED:
		cm_on_resume(&x, false);
		break;
	case CM_EV_FINAL_DONE:
		cm_on_final(&x, true);
		break;
	case CM_EV_FINAL_FAILED:
		cm_on_final(&x, false);
		break;
	case CM_EV_DAEMON_RESUMED:
		if (!open)
			break;
		cm_note(&x, "panicbrokerd restarted; crash resumed in state %s",
			crash_state_to_string(c->state));
		cm_act(&x, CM_ACT_ABANDON_SNAP);
		break;
	case CM_EV_MAX:
		break;
	}
}

