/* SPDX-License-Identifier: MIT */
/* Inside the runner only (vm.c, vm_chan.c): the VM's state and its dispatch. */
#ifndef PB_VM_INTERNAL_H
#define PB_VM_INTERNAL_H

#include "chan.h"
#include "crash_machine.h"
#include "ratelimit.h"
#include "snapshot.h"
#include "vm.h"

/* Crashed sessions of closed crashes remembered, so none is taken again. */
#define VM_CLOSED_KEPT 8
/* Records the spool would not take (disk full, read-only) wait for a retry. */
#define VM_UNSAVED_MAX 16
#define VM_SAVE_RETRY_USEC (5 * USEC_PER_SEC)

/* A backend operation the VM waits for, and what its outcome means. */
struct vm_op {
	const char *name;
	unsigned int gen;
	enum cm_event_type ok, fail;
};

struct vm {
	struct vm_config cfg;
	sd_event *event;
	struct spool *spool;
	struct cm_policy policy;
	const struct backend_ops *bops;
	struct backend *be;
	struct chan *chan;              /* NULL without mailbox= */

	/* The backend's view of the VM. */
	bool attached;
	enum be_run_state run_state;
	char status[32];
	struct be_instance instance;

	struct crash *crash;            /* the open crash, or NULL */
	sd_event_source *bound_timer;   /* kdump_timeout: the outer bound */
	sd_event_source *watch_timer;   /* the kdump session / progress deadline */
	sd_event_source *snap_retry;
	struct snapshot *snap;
	struct vm_op op;                /* the backend operation in flight */
	unsigned int op_gen;            /* bumped when one starts, ends or is orphaned */
	bool saving_later;              /* inside a channel look: save at its end */
	bool dirty;
	/* A record the spool would not take is retried on a timer until it is
	 * written; a crash that closes meanwhile waits in unsaved[], not lost. */
	bool save_failed;               /* the open crash's last save failed */
	sd_event_source *save_retry;
	struct crash *unsaved[VM_UNSAVED_MAX];
	unsigned int n_unsaved;

	struct vm_past past;

	/* The broker channel: what the guest said while no crash was open. */
	struct crash_panic_copy *pending_panic;
	bool pending_salvaged;          /* it was left in the mailbox before this start */
	sd_event_source *salvage_timer; /* vm_chan_salvage_later(): its grace is over */
	struct chan_timing pending_timing;
	bool have_pending_timing;
	uint64_t panic_session;         /* the session of the last panic record */
	/* Its session now, and whether a KDUMP session was given to the crash. */
	uint64_t session;
	uint32_t role;
	uint64_t prev_session;
	bool kdump_decided;
	enum crash_link kdump_link;
	char kdump_crash[SPOOL_ID_MAX];
	struct ratelimit kdump_decide_rl, kdump_log_rl, nocrash_log_rl;
	uint64_t closed[VM_CLOSED_KEPT];
	unsigned int n_closed, closed_next;
};

/*
 * Runs one event through the crash machine and carries its actions out;
 * @bev: the backend event behind it, if any (a new crash's first facts).
 */
void vm_dispatch(struct vm *vm, struct cm_event *ev, const struct be_event *bev);
/* Persists the record (or, inside a channel look, at its end). */
void vm_save(struct vm *vm);
/* The machine's view of the open crash (CRASH_CLOSED: none). */
void vm_facts(const struct vm *vm, struct cm_crash *ret);

/* vm_save.c: a closed crash not yet written waits for the retry; at exit, a last try. */
void vm_save_closed(struct vm *vm, struct crash *c);
void vm_save_flush(struct vm *vm);

/* vm_ops.c: deadlines (from the record's times) and operations on the VM. */
void vm_arm_bound(struct vm *vm);
void vm_arm_watch(struct vm *vm);
void vm_disarm_bound(struct vm *vm);
void vm_disarm_watch(struct vm *vm);
void vm_do_hold(struct vm *vm);
void vm_do_resume(struct vm *vm);
void vm_do_reset(struct vm *vm);
void vm_do_poweroff(struct vm *vm);

/* vm_chan.c */
extern const struct chan_ops vm_chan_ops;
/* A crash just opened or was resumed: what the guest said before goes in. */
void vm_chan_attach(struct vm *vm);
/* The open crash is closing: its crashed session is remembered. */
void vm_chan_closed(struct vm *vm);
/* The look at the mailbox is over: the save it held back, now. */
void vm_chan_flush(struct vm *vm);
/* Whether the crashed session would be known if a crash opened now. */
bool vm_chan_knows_session(const struct vm *vm);
/*
 * At attach, a panic record salvaged at start and a VM not held: true when
 * it waits for its grace (the pvpanic event of that very panic may still
 * come), then goes to vm_reconcile_salvaged(); false: reconcile it now.
 */
bool vm_chan_salvage_later(struct vm *vm);

/* vm.c: attach's reconciliation again, for a salvaged record whose grace is over. */
void vm_reconcile_salvaged(struct vm *vm);

#endif
