// SPDX-License-Identifier: MIT
/*
 * The runner of one VM: backend events in, crash machine, actions out.
 * The data path: backend_qmp.c / chan.c -> vm_on_backend() / vm_chan.c ->
 * vm_dispatch() -> cm_step() -> vm_apply(): the record (crash*.c), saved
 * once, then the VM's operation (backend) or deadline (timers).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <panicbroker/pvpanic.h>

#include "evutil.h"
#include "log.h"
#include "observe.h"
#include "util.h"
#include "vm_internal.h"

const char *vm_name(const struct vm *vm)
{
	return vm->cfg.name;
}

const struct vm_config *vm_config(const struct vm *vm)
{
	return &vm->cfg;
}

bool vm_has_crash(const struct vm *vm)
{
	return vm->crash != NULL;
}

const char *vm_crash_id(const struct vm *vm)
{
	return vm->crash ? vm->crash->id : NULL;
}

void vm_set_past(struct vm *vm, const struct vm_past *past)
{
	vm->past = *past;
}

void vm_get_past(const struct vm *vm, struct vm_past *ret)
{
	*ret = vm->past;
}

void vm_facts(const struct vm *vm, struct cm_crash *ret)
{
	const struct crash *c = vm->crash;

	if (!c) {
		*ret = (struct cm_crash){
			.state = CRASH_CLOSED,
			.crashed_session = vm_chan_knows_session(vm),
		};
		return;
	}
	*ret = (struct cm_crash){
		.state = c->state,
		.ks = c->kdump_ks,
		.final_action = c->final_action,
		.kdump_loaded = c->kdump_loaded,
		.snapshot_taken = crash_snapshot_get_state(c) != NULL,
		.resume_kdump = c->resume_kdump,
		.guest_down = c->guest_down,
		.crashed_session = c->crashed_session != 0,
		.watch_pending = c->kdump_watch_usec != 0,
	};
}

/* ---- the machine's actions ---- */

static int vm_create(struct vm *vm, const struct cm_result *r, const struct be_event *bev)
{
	struct crash_event ce = {
		.vm = vm->cfg.name,
		.event = r->create_event,
		.kdump_loaded = r->after.kdump_loaded,
		.detected_usec = ts_now_realtime_usec(),
		.has_qmp_timestamp = bev && bev->type == BE_EV_PANIC && bev->has_timestamp,
		.qmp_timestamp_usec = bev && bev->type == BE_EV_PANIC ? bev->timestamp_usec : 0,
		.data = bev && bev->type == BE_EV_PANIC ? bev->data : NULL,
		.source = r->create_source,
		.backend = vm->bops->name,
		.instance = vm->instance,
	};
	int e = crash_new(vm->spool, &ce, r->after.final_action, &vm->crash);

	if (e < 0) {
		log_error("VM %s: %s, but its crash record cannot be created in %s: %s",
			  vm->cfg.name, r->create_event, spool_path(vm->spool), strerror(-e));
		return e;
	}
	vm_chan_attach(vm);
	return 0;
}

static void vm_log(struct vm *vm, const struct cm_result *r)
{
	static const int levels[] = {
		[CM_LOG_INFO] = LOG_INFO,
		[CM_LOG_NOTICE] = LOG_NOTICE,
		[CM_LOG_WARN] = LOG_WARNING,
		[CM_LOG_ERROR] = LOG_ERR,
	};

	if (r->log == CM_LOG_NONE)
		return;
	if (vm->crash)
		log_printf(levels[r->log], "VM %s: crash %s: %s", vm->cfg.name, vm->crash->id,
			   r->log_text);
	else
		log_printf(levels[r->log], "VM %s: %s", vm->cfg.name, r->log_text);
}

/* The record's side of the actions, in the machine's order. */
static void vm_apply_record(struct vm *vm, const struct cm_event *ev,
			    const struct cm_result *r)
{
	struct crash *c = vm->crash;
	unsigned int a = r->actions;

	if (a & CM_ACT_DUPLICATE)
		crash_add_duplicate(c, r->dup_name);
	if (a & CM_ACT_ABANDON_SNAP)
		snapshot_abandon_stale(c);
	if (a & CM_ACT_KDUMP_HUNG)
		crash_kdump_hung(c, ts_now_realtime_usec(), r->hung_reason);
	else if (a & CM_ACT_KDUMP_STATE) {
		struct crash_kdump_report rep = {
			.state = ev->report, .bytes = ev->bytes, .reason = ev->reason,
			.at_usec = ev->now_usec,
		};

		crash_kdump_set_state(c, r->after.ks, &rep);
	}
	if (a & CM_ACT_DISARM) {
		vm_disarm_bound(vm);
		vm_disarm_watch(vm);
	}
	if (a & CM_ACT_DISARM_WATCH)
		vm_disarm_watch(vm);
	for (unsigned int i = 0; i < r->n_notes; i++) {
		if (r->notes[i].change)
			crash_set_state(c, r->notes[i].state, "%s", r->notes[i].text);
		else
			crash_note(c, "%s", r->notes[i].text);
	}
	crash_set_flags(c, r->after.resume_kdump, r->after.guest_down);
	if (a & CM_ACT_ARM_BOUND) {
		if (r->bound_usec)
			crash_set_kdump_bound(c, r->bound_usec);
		vm_arm_bound(vm);
	}
	if (a & CM_ACT_ARM_WATCH) {
		if (r->watch_usec)
			crash_kdump_set_watch(c, r->watch_usec);
		if (c->kdump_watch_usec)
			vm_arm_watch(vm);
	}
	if (a & CM_ACT_CLOSE)
		crash_set_final_result(c, r->outcome, r->detail);
}

/* The open crash is over: remembered as the VM's last, then let go. */
static void vm_let_go(struct vm *vm)
{
	struct crash *c = vm->crash;

	if (vm->dirty) {
		/* Inside a channel look the save waits for its end: not this one. */
		bool later = vm->saving_later;

		vm->saving_later = false;
		vm_save(vm);
		vm->saving_later = later;
	}

	vm_chan_closed(vm);
	if (c->crashed_session)
		vm->past.last_crashed_session = c->crashed_session;
	snprintf(vm->past.last_crash, sizeof(vm->past.last_crash), "%s", c->id);
	vm->past.last_preserved = c->final_action == FINAL_ACTION_PRESERVE;
	vm->past.last_instance = vm->instance;
	vm->op_gen++; /* an operation still in flight is no longer this crash's */
	vm->snap_retry = sd_event_source_disable_unref(vm->snap_retry);
	snapshot_free(vm->snap);
	vm->snap = NULL;
	vm->crash = NULL;
	vm_save_closed(vm, c);
}

/* The watchers (observe.h) learn what the actions did to the crash. */
static void vm_tell(struct vm *vm, const struct cm_result *r, enum crash_state before)
{
	struct obs_event o = { .vm = vm->cfg.name, .crash = vm->crash };
	unsigned int a = r->actions;

	if (a & CM_ACT_CREATE) {
		o.type = OBS_CRASH_OPENED;
		o.event = r->create_event;
		obs_emit(&o);
		before = CRASH_DETECTED;
	}
	if (r->after.state != before && r->after.state != CRASH_CLOSED) {
		o.type = OBS_CRASH_STATE;
		o.state = r->after.state;
		o.prev_state = before;
		obs_emit(&o);
	}
	if ((a & CM_ACT_KDUMP_HUNG) ||
	    ((a & CM_ACT_KDUMP_STATE) && (r->after.ks == CRASH_KS_DONE ||
					  r->after.ks == CRASH_KS_FAILED))) {
		o.type = OBS_KDUMP_OUTCOME;
		o.outcome = crash_ks_to_string(r->after.ks);
		obs_emit(&o);
	}
	if (a & CM_ACT_CLOSE) {
		o.type = OBS_CRASH_CLOSED;
		o.state = CRASH_CLOSED;
		o.prev_state = before;
		o.outcome = r->outcome;
		obs_emit(&o);
	}
}

static void vm_apply(struct vm *vm, const struct cm_event *ev,
		     const struct cm_result *r, const struct be_event *bev,
		     enum crash_state before)
{
	unsigned int a = r->actions;

	if ((a & CM_ACT_CREATE) && vm_create(vm, r, bev) < 0)
		return; /* without a record the guest is left as it is, said above */
	if (!vm->crash) {
		vm_log(vm, r);
		return;
	}
	vm_apply_record(vm, ev, r);
	if (a & CM_ACT_SAVE)
		vm_save(vm);
	if (a & CM_ACT_CREATE) {
		/* The id is final once published (the first save). */
		snprintf(vm->past.last_crash, sizeof(vm->past.last_crash), "%s", vm->crash->id);
		/* "recorded" means on disk: tools (and the scale bench) read it so. */
		if (!vm->save_failed)
			log_notice("VM %s: %s: crash %s recorded (%s)", vm->cfg.name,
				   r->create_event, vm->crash->id, r->create_source);
		else
			log_warn("VM %s: %s: crash %s opened (%s), its record not written yet",
				 vm->cfg.name, r->create_event, vm->crash->id, r->create_source);
	}
	vm_log(vm, r);
	vm_tell(vm, r, before);
	if (a & CM_ACT_CLOSE) {
		vm_let_go(vm);
	} else if (a & CM_ACT_HOLD) {
		/* Pauses the guest for the snapshot, then dumps it. */
		vm_do_hold(vm);
	} else if (a & CM_ACT_RESUME) {
		vm_do_resume(vm);
	} else if (a & CM_ACT_RESET) {
		vm_do_reset(vm);
	} else if (a & CM_ACT_POWEROFF) {
		vm_do_poweroff(vm);
	}
	if (vm->chan)
		chan_set_kdump(vm->chan, vm->crash && vm->crash->state == CRASH_KDUMP_RUNNING);
}

void vm_dispatch(struct vm *vm, struct cm_event *ev, const struct be_event *bev)
{
	struct cm_crash facts;
	struct cm_result r;

	if (!ev->now_usec)
		ev->now_usec = ts_now_realtime_usec();
	vm_facts(vm, &facts);
	cm_step(&facts, &vm->policy, ev, &r);
	if (r.actions)
		log_debug("VM %s: %s: %s -> %s (actions %#x)", vm->cfg.name,
			  cm_event_name(ev->type), crash_state_to_string(facts.state),
			  crash_state_to_string(r.after.state), r.actions);
	vm_apply(vm, ev, &r, bev, facts.state);
}

/* ---- backend events ---- */

/* How the VM is reached, as the record's history says it. */
static const char *vm_via(const struct vm *vm)
{
	return strcmp(vm->bops->name, "qmp") == 0 ? "QMP" : vm->bops->name;
}

static bool vm_same_instance(const struct be_instance *a, const struct be_instance *b)
{
	return a->pid && a->pid == b->pid && a->start_ticks == b->start_ticks;
}

/* Reconciles with the VM's state as attach found it (@bev: NULL when later). */
static void vm_reconcile(struct vm *vm, const struct be_event *bev, bool panic_pending)
{
	struct cm_event ev = {
		.type = CM_EV_ATTACHED,
		.run_state = vm->run_state,
		.status = vm->status,
		.via = vm_via(vm),
		.panic_pending = panic_pending,
		/*
		 * A VM left panicked by a preserved crash is the same panic
		 * while the same process runs it (a restarted daemon finds it
		 * again): not a new crash.
		 */
		.preserved = vm->past.last_preserved &&
			     vm_same_instance(&vm->past.last_instance, &vm->instance),
	};

	vm_dispatch(vm, &ev, bev);
}

void vm_reconcile_salvaged(struct vm *vm)
{
	if (vm->attached && vm->pending_panic && !vm->crash)
		vm_reconcile(vm, NULL, true);
}

static void vm_on_attached(struct vm *vm, const struct be_event *bev)
{
	if (!vm->attached)
		obs_emit(&(struct obs_event){ .type = OBS_VM_ATTACH, .vm = vm->cfg.name,
					      .attached = true });
	vm->attached = true;
	vm->run_state = bev->run_state;
	snprintf(vm->status, sizeof(vm->status), "%s", bev->status ? bev->status : "");
	vm->instance = bev->instance;
	vm->op_gen++; /* what was in flight died with the old connection */
	vm_reconcile(vm, bev, vm->pending_panic && !vm_chan_salvage_later(vm));
}

static void vm_on_backend(void *ud, const struct be_event *bev)
{
	struct vm *vm = ud;
	struct cm_event ev = { 0 };

	switch (bev->type) {
	case BE_EV_ATTACHED:
		vm_on_attached(vm, bev);
		return;
	case BE_EV_DETACHED:
		if (vm->attached)
			obs_emit(&(struct obs_event){ .type = OBS_VM_ATTACH, .vm = vm->cfg.name,
						      .attached = false });
		vm->attached = false;
		return;
	case BE_EV_PANIC:
		/* pvpanic is the mailbox's doorbell: read what the guest left. */
		if (vm->chan) {
			chan_poll(vm->chan);
			vm_chan_flush(vm);
		}
		ev.type = bev->crash_loaded ? CM_EV_CRASHLOADED : CM_EV_PANIC;
		ev.name = bev->name;
		ev.via = vm_via(vm);
		ev.action = bev->action;
		break;
	case BE_EV_RESET:
		/* The kdump kernel's last reports come right before its reboot. */
		if (vm->chan) {
			chan_drain(vm->chan);
			vm_chan_flush(vm);
		}
		ev.type = CM_EV_RESET;
		ev.guest = bev->guest;
		break;
	case BE_EV_SHUTDOWN:
		if (vm->chan) {
			chan_drain(vm->chan);
			vm_chan_flush(vm);
		}
		ev.type = CM_EV_SHUTDOWN;
		break;
	}
	vm_dispatch(vm, &ev, bev);
}

static const struct backend_events vm_backend_events = {
	.event = vm_on_backend,
};

/* ---- life cycle ---- */

static void vm_policy(struct vm *vm)
{
	vm->policy = (struct cm_policy){
		.final_action = vm->cfg.final_action,
		.snapshot = vm->cfg.snapshot,
		.snapshot_format = vm->cfg.snapshot_format,
		.channel = vm->cfg.mailbox_path[0] != '\0',
		.kdump_timeout_usec = vm->cfg.kdump_timeout_usec,
		.session_timeout_usec = vm->cfg.kdump_session_timeout_usec,
		.progress_timeout_usec = vm->cfg.kdump_progress_timeout_usec,
	};
}

int vm_new(sd_event *e, struct spool *spool, const struct vm_config *cfg,
	   struct vm **ret, char *err, size_t errlen)
{
	return vm_new_backend(e, spool, cfg, &backend_qmp_ops, ret, err, errlen);
}

int vm_new_backend(sd_event *e, struct spool *spool, const struct vm_config *cfg,
		   const struct backend_ops *ops, struct vm **ret, char *err, size_t errlen)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	int r;

	if (!vm)
		return -ENOMEM;
	vm->cfg = *cfg;
	vm->event = sd_event_ref(e);
	vm->spool = spool;
	vm_policy(vm);
	vm->kdump_decide_rl = (struct ratelimit)RATELIMIT_INIT(USEC_PER_SEC, 1);
	vm->kdump_log_rl = (struct ratelimit)RATELIMIT_INIT(USEC_PER_SEC, 1);
	vm->nocrash_log_rl = (struct ratelimit)RATELIMIT_INIT(60 * USEC_PER_SEC, 1);
	vm->bops = ops;
	r = vm->bops->create(e, cfg, &vm_backend_events, vm, &vm->be, err, errlen);
	if (r < 0) {
		vm_free(vm);
		return r;
	}
	if (cfg->mailbox_path[0]) {
		r = chan_open(e, cfg->name, cfg->mailbox_path, &vm_chan_ops, vm, &vm->chan,
			      err, errlen);
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
	struct cm_event ev = { .type = CM_EV_DAEMON_RESUMED };

	if (vm->crash) {
		/* Two open crashes for one VM: the older can no longer progress. */
		crash_set_final_result(vm->crash, "not-needed",
				       "superseded by a newer open crash of the same VM");
		crash_set_state(vm->crash, CRASH_CLOSED, "superseded by crash %s", c->id);
		vm_save(vm);
		vm_let_go(vm);
	}
	vm->crash = c;
	vm_dispatch(vm, &ev, NULL);
	vm_chan_attach(vm);
}

int vm_reopen_mailbox(struct vm *vm, char *err, size_t errlen)
{
	int r;

	if (!vm->cfg.mailbox_path[0])
		return 0;
	chan_free(vm->chan);
	vm->chan = NULL;
	r = chan_open(vm->event, vm->cfg.name, vm->cfg.mailbox_path, &vm_chan_ops, vm, &vm->chan,
		      err, errlen);
	if (r < 0)
		return r;
	r = chan_start(vm->chan);
	if (r < 0)
		return err_set(err, errlen, r, "cannot start polling");
	return 0;
}

void vm_start(struct vm *vm)
{
	int r;

	if (vm->chan) {
		r = chan_start(vm->chan);
		if (r < 0)
			log_error("VM %s: mailbox: cannot start polling: %s; the broker channel is not served",
				  vm->cfg.name, strerror(-r));
	}
	vm->bops->start(vm->be);
}

json_object *vm_to_json(const struct vm *vm)
{
	json_object *o = json_object_new_object(), *oc = NULL;

	if (!o)
		return NULL;
	json_object_object_add(o, "name", json_object_new_string(vm->cfg.name));
	json_object_object_add(o, "backend", json_object_new_string(vm->bops->name));
	json_object_object_add(o, "attach_state",
			       json_object_new_string(vm->bops->attach_state(vm->be)));
	json_object_object_add(o, "status", vm->attached && vm->status[0] ?
				       json_object_new_string(vm->status) : NULL);
	json_object_object_add(o, "mailbox", json_object_new_boolean(vm->chan != NULL));
	json_object_object_add(o, "last_crash", vm->past.last_crash[0] ?
				       json_object_new_string(vm->past.last_crash) : NULL);
	if (vm->crash) {
		oc = json_object_new_object();
		json_object_object_add(oc, "id", json_object_new_string(vm->crash->id));
		json_object_object_add(oc, "state", json_object_new_string(
					       crash_state_to_string(vm->crash->state)));
	}
	json_object_object_add(o, "open_crash", oc);
	return o;
}

void vm_remove(struct vm *vm, const char *why)
{
	struct cm_event ev = { .type = CM_EV_GONE, .detail = why };

	if (vm->crash)
		vm_dispatch(vm, &ev, NULL);
	vm_free(vm);
}

void vm_free(struct vm *vm)
{
	if (!vm)
		return;
	/* The snapshot first: it may hold an operation of the backend. */
	snapshot_free(vm->snap);
	if (vm->be)
		vm->bops->free(vm->be);
	chan_free(vm->chan);
	sd_event_source_disable_unref(vm->bound_timer);
	sd_event_source_disable_unref(vm->watch_timer);
	sd_event_source_disable_unref(vm->snap_retry);
	sd_event_source_disable_unref(vm->save_retry);
	sd_event_source_disable_unref(vm->salvage_timer);
	vm_save_flush(vm);
	crash_free(vm->crash);
	crash_panic_copy_free(vm->pending_panic);
	sd_event_unref(vm->event);
	free(vm);
}
