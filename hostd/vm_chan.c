// SPDX-License-Identifier: MIT
/*
 * The runner's side of the broker channel: typed events from chan.c go
 * into the open crash's record (crash_guest.c, crash_kdump.c) or wait for
 * the next crash, and the few that matter to the crash machine (a KDUMP
 * session, its reports, a new boot) are dispatched to it. One save per
 * look at the mailbox.
 */
#include <stdio.h>
#include <string.h>

#include "evutil.h"
#include "log.h"
#include "observe.h"
#include "util.h"
#include "vm_internal.h"

/* The guest's NORMAL session open now (0: none): chan.c knows when it ended. */
static uint64_t vm_chan_normal_session(const struct vm *vm)
{
	uint32_t role = 0;
	uint64_t id = vm->chan ? chan_session(vm->chan, &role) : 0;

	return role == PB_MBOX_ROLE_NORMAL ? id : 0;
}

bool vm_chan_knows_session(const struct vm *vm)
{
	return vm->chan && ((vm->pending_panic && vm->panic_session) ||
			    vm_chan_normal_session(vm));
}

static void vm_chan_drop_pending(struct vm *vm)
{
	crash_panic_copy_free(vm->pending_panic);
	vm->pending_panic = NULL;
	vm->pending_salvaged = false;
	vm->have_pending_timing = false;
}

/*
 * How long a salvaged panic record waits for its own pvpanic event. The
 * daemon's restart may have come in the middle of the guest's panic tier:
 * the guest's wait for UNLOAD_ACK ends within PB_MBOX_UNLOAD_WAIT_MAX_MS,
 * then pvpanic, and QEMU's event follows. Recorded at once, the record
 * would be a crash of its own and that event a second one for the same
 * panic (the kill -9 campaign found it).
 */
#define VM_SALVAGE_GRACE_USEC ((PB_MBOX_UNLOAD_WAIT_MAX_MS + 1000) * USEC_PER_MSEC)

static int vm_chan_on_salvage(sd_event_source *s, uint64_t usec, void *ud)
{
	struct vm *vm = ud;

	(void)usec;
	vm->salvage_timer = sd_event_source_disable_unref(s);
	if (vm->pending_salvaged)
		vm_reconcile_salvaged(vm);
	return 0;
}

bool vm_chan_salvage_later(struct vm *vm)
{
	int r;

	if (!vm->pending_panic || !vm->pending_salvaged || vm->crash ||
	    vm->run_state == BE_RUN_PANICKED || vm->run_state == BE_RUN_UNKNOWN)
		return false;
	if (vm->salvage_timer)
		return true;
	r = sd_event_add_time_relative(vm->event, &vm->salvage_timer, CLOCK_MONOTONIC,
				       VM_SALVAGE_GRACE_USEC, USEC_PER_MSEC * 100,
				       vm_chan_on_salvage, vm);
	if (r < 0) {
		log_warn("VM %s: cannot arm the salvaged panic record's grace: %s; recorded now",
			 vm->cfg.name, strerror(-r));
		return false;
	}
	return true;
}

void vm_chan_attach(struct vm *vm)
{
	struct crash *c = vm->crash;
	bool changed = false;

	if (!vm->chan || !c)
		return;
	/* Which session crashed: the one whose panic record is waiting, else
	 * the guest's NORMAL session open at the pvpanic event. */
	if (!c->crashed_session) {
		if (vm->pending_panic && vm->panic_session)
			crash_set_crashed_session(c, vm->panic_session, "panic slot");
		else if (vm_chan_normal_session(vm))
			crash_set_crashed_session(c, vm_chan_normal_session(vm),
						  "guest session open at the pvpanic event");
		changed = c->crashed_session != 0;
	}
	if (vm->pending_panic) {
		const struct chan_panic *p = crash_panic_copy_view(vm->pending_panic);

		crash_set_panic(c, p);
		vm->past.last_crashed_session = p->session;
		changed = true;
	}
	if (vm->have_pending_timing) {
		crash_set_timing(c, &vm->pending_timing);
		changed = true;
	}
	vm_chan_drop_pending(vm);
	if (changed)
		vm_save(vm);
}

void vm_chan_closed(struct vm *vm)
{
	uint64_t id = vm->crash->crashed_session;

	if (!vm->chan || !id)
		return;
	for (unsigned int i = 0; i < vm->n_closed; i++)
		if (vm->closed[i] == id)
			return;
	vm->closed[vm->closed_next] = id;
	vm->closed_next = (vm->closed_next + 1) % VM_CLOSED_KEPT;
	if (vm->n_closed < VM_CLOSED_KEPT)
		vm->n_closed++;
}

static void vm_chan_panic(struct vm *vm, const struct chan_panic *p)
{
	struct cm_event ev = { .type = CM_EV_PANIC_RECORD };
	struct crash *c = vm->crash;

	vm->panic_session = p->session;
	if (p->session && p->session == vm->past.last_crashed_session) {
		log_info("VM %s: mailbox: that panic record is crash %s's already; not recorded again",
			 vm->cfg.name, vm->past.last_crash[0] ? vm->past.last_crash : "(unknown)");
		return;
	}
	if (!c) {
		struct crash_panic_copy *pc = crash_panic_copy(p);

		if (!pc) {
			log_error("VM %s: mailbox: out of memory keeping the panic record; lost",
				  vm->cfg.name);
			return;
		}
		crash_panic_copy_free(vm->pending_panic);
		vm->pending_panic = pc;
		vm->pending_salvaged = p->salvaged;
		vm->have_pending_timing = false;
		return;
	}
	crash_set_panic(c, p);
	vm->past.last_crashed_session = p->session;
	/* A record that came after the crash opened confirms its session. */
	if (c->crashed_session == p->session)
		crash_set_crashed_session(c, p->session, "panic slot");
	vm_dispatch(vm, &ev, NULL);
}

static void vm_chan_timing(struct vm *vm, const struct chan_timing *t)
{
	obs_emit(&(struct obs_event){
		.type = OBS_UNLOAD, .vm = vm->cfg.name, .crash = vm->crash,
		.unload_acked = t->acked, .rtt_us = t->rtt_us, .tier_us = t->tier_us,
	});
	if (vm->crash) {
		crash_set_timing(vm->crash, t);
		vm_save(vm);
		return;
	}
	vm->pending_timing = *t;
	vm->have_pending_timing = true;
}

static void vm_chan_session(struct vm *vm, const struct chan_event *e)
{
	struct cm_event ev = { .type = CM_EV_BOOTED, .session = e->session };

	vm->session = e->session;
	vm->role = e->role;
	vm->prev_session = e->prev_session;
	vm->kdump_decided = false;
	if (e->role != PB_MBOX_ROLE_NORMAL)
		return;
	/* A guest booted again: a salvaged record waiting for its grace is not
	 * of a panic still under way; it is recorded now, not dropped. */
	if (!vm->crash && vm->pending_panic && vm->pending_salvaged)
		vm_reconcile_salvaged(vm);
	if (!vm->crash && (vm->pending_panic || vm->have_pending_timing)) {
		/* The guest booted again and no pvpanic event came in between:
		 * what it said belongs to no crash the daemon will see. */
		log_warn("VM %s: mailbox: a new guest session opened before any crash record took what the guest said (%s); dropped",
			 vm->cfg.name, vm->pending_panic ? "its panic record" : "its reports");
		vm_chan_drop_pending(vm);
	}
	vm_dispatch(vm, &ev, NULL);
}

/*
 * Decides once per KDUMP session whether it belongs to the open crash, and
 * records that. A guest opening session after session gets one decided a
 * second; @now_anyway: a report of it waits (reports have their own limit).
 */
static void vm_chan_decide(struct vm *vm, bool now_anyway)
{
	struct crash *c = vm->crash;
	uint64_t now = ev_now_usec(vm->event);
	struct cm_event ev = { .type = CM_EV_KDUMP_SESSION, .session = vm->session };
	char why[256];

	if (!c || !vm->session || vm->role != PB_MBOX_ROLE_KDUMP || vm->kdump_decided)
		return;
	if (!ratelimit_below(&vm->kdump_decide_rl, now) && !now_anyway)
		return;
	vm->kdump_decided = true;
	snprintf(vm->kdump_crash, sizeof(vm->kdump_crash), "%s", c->id);
	vm->kdump_link = cm_kdump_link(c->crashed_session, c->kdump_loaded, vm->prev_session,
				       vm->closed, vm->n_closed, why, sizeof(why));
	crash_kdump_session(c, vm->session, vm->prev_session, vm->kdump_link, why,
			    ts_now_realtime_usec());
	vm_save(vm);
	if (ratelimit_below(&vm->kdump_log_rl, now)) {
		switch (vm->kdump_link) {
		case CRASH_LINK_LINKED:
			log_info("VM %s: mailbox: kdump session %016llx belongs to crash %s (%s)",
				 vm->cfg.name, (unsigned long long)vm->session, c->id, why);
			break;
		case CRASH_LINK_UNLINKED:
			log_warn("VM %s: mailbox: kdump session %016llx is unlinked (%s); its reports go to crash %s, the VM's only open crash",
				 vm->cfg.name, (unsigned long long)vm->session, why, c->id);
			break;
		case CRASH_LINK_REFUSED:
			log_warn("VM %s: mailbox: kdump session %016llx refused (%s); its reports are not recorded",
				 vm->cfg.name, (unsigned long long)vm->session, why);
			break;
		}
	} else {
		log_debug("VM %s: mailbox: kdump session %016llx: %s", vm->cfg.name,
			  (unsigned long long)vm->session, why);
	}
	ev.link = vm->kdump_link;
	vm_dispatch(vm, &ev, NULL);
}

/* Whether the open crash takes the reports of the current KDUMP session. */
static bool vm_chan_takes_reports(struct vm *vm)
{
	return vm->crash && vm->kdump_decided && vm->kdump_link != CRASH_LINK_REFUSED &&
	       strcmp(vm->kdump_crash, vm->crash->id) == 0;
}

static const char *vm_chan_report_name(uint32_t st)
{
	switch (st) {
	case PB_MBOX_KDUMP_START:
		return "start";
	case PB_MBOX_KDUMP_PROGRESS:
		return "progress";
	case PB_MBOX_KDUMP_DONE:
		return "done";
	default:
		return "failed";
	}
}

static void vm_chan_report(struct vm *vm, const struct chan_event *e)
{
	struct crash_kdump_report rep = {
		.state = (enum crash_report_state)e->report.state,
		.percent = e->report.percent,
		.bytes = e->report.bytes,
		.reason = e->report.reason,
		.session = vm->session,
		.prev_session = vm->prev_session,
		.at_usec = ts_now_realtime_usec(),
	};
	struct cm_event ev = {
		.type = CM_EV_KDUMP_REPORT,
		.now_usec = rep.at_usec,
		.report = rep.state,
		.bytes = rep.bytes,
		.reason = rep.reason,
		.session = vm->session,
	};
	uint64_t now = ev_now_usec(vm->event);

	if (!vm->crash) {
		if (ratelimit_below(&vm->nocrash_log_rl, now))
			log_info("VM %s: mailbox: kdump %s reported with no open crash; not recorded",
				 vm->cfg.name, vm_chan_report_name(e->report.state));
		return;
	}
	vm_chan_decide(vm, true);
	/* Refused, or taken by a crash that has closed since: not this one's. */
	if (!vm_chan_takes_reports(vm)) {
		if (ratelimit_below(&vm->nocrash_log_rl, now))
			log_info("VM %s: mailbox: kdump %s from session %016llx is not crash %s's; not recorded",
				 vm->cfg.name, vm_chan_report_name(e->report.state),
				 (unsigned long long)vm->session, vm->crash->id);
		return;
	}
	crash_kdump_add_report(vm->crash, &rep);
	vm_dispatch(vm, &ev, NULL);
}

static void vm_chan_event(void *ud, const struct chan_event *e)
{
	struct vm *vm = ud;

	/* A look at the mailbox delivers several events: one save at its end. */
	vm->saving_later = true;
	switch (e->type) {
	case CHAN_EV_PANIC:
		vm_chan_panic(vm, e->panic);
		break;
	case CHAN_EV_TIMING:
		vm_chan_timing(vm, &e->timing);
		break;
	case CHAN_EV_UNLOAD:
		/* chan.c said it; the crash machine has nothing to do with it. */
		break;
	case CHAN_EV_SESSION:
		vm_chan_session(vm, e);
		break;
	case CHAN_EV_KDUMP_REPORT:
		vm_chan_report(vm, e);
		break;
	case CHAN_EV_REPORTS_DROPPED:
		if (vm_chan_takes_reports(vm)) {
			crash_kdump_report_dropped(vm->crash);
			vm_save(vm);
		}
		break;
	case CHAN_EV_MALFORMED:
		obs_emit(&(struct obs_event){ .type = OBS_MALFORMED, .vm = vm->cfg.name,
					      .crash = vm->crash, .count = e->count });
		if (vm->crash) {
			crash_add_malformed(vm->crash, e->what, e->reason, e->count);
			vm_save(vm);
		}
		break;
	case CHAN_EV_UNKNOWN_RECORDS:
		if (vm->crash) {
			crash_set_unknown_records(vm->crash, e->count);
			vm_save(vm);
		}
		break;
	}
}

static void vm_chan_end(void *ud)
{
	struct vm *vm = ud;

	vm->saving_later = true;
	vm_chan_decide(vm, false); /* one held back by the limit */
	vm_chan_flush(vm);
}

void vm_chan_flush(struct vm *vm)
{
	vm->saving_later = false;
	if (vm->dirty)
		vm_save(vm);
}

const struct chan_ops vm_chan_ops = {
	.event = vm_chan_event,
	.end = vm_chan_end,
};
