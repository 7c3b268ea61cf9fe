/* SPDX-License-Identifier: MIT */
/*
 * What happens to VMs and crashes, told to whoever watches: metrics, the
 * journal, --on-crash-exec, the API's event feed. The runner (vm.c) emits;
 * watchers subscribe once at start.
 *
 * Contract:
 *  - obs_emit() calls every watcher in the order they subscribed, on the
 *    event loop, synchronously: a watcher must not block, must not call
 *    back into the VM or the crash, and must copy what it keeps (pointers
 *    in an event are valid during the call only).
 *  - Events are emitted after the record they describe was saved (or the
 *    save failed: .saved says which).
 *  - At most OBS_MAX_WATCHERS watchers; no unsubscribe (they live as long
 *    as the daemon).
 */
#ifndef PB_OBSERVE_H
#define PB_OBSERVE_H

#include <stdbool.h>
#include <stdint.h>

#include "crash.h"

#define OBS_MAX_WATCHERS 8

enum obs_type {
	OBS_CRASH_OPENED,   /* a new crash: .crash, .event */
	OBS_CRASH_STATE,    /* the crash's state changed: .crash, .state, .prev_state */
	OBS_CRASH_CLOSED,   /* closed: .crash, .outcome (final_action_result.outcome) */
	OBS_KDUMP_OUTCOME,  /* the kdump session ended: .crash, .outcome done|failed|hung */
	OBS_SNAPSHOT_END,   /* .crash, .outcome done|failed|refused, .seconds */
	OBS_UNLOAD,         /* the guest's timing: .unload_acked, .rtt_us, .tier_us */
	OBS_MALFORMED,      /* malformed guest input: .count (all so far for this VM) */
	OBS_RECORD_WRITE,   /* a record save: .seconds it took, .saved */
	OBS_VM_ADDED,       /* .vm */
	OBS_VM_REMOVED,     /* .vm */
	OBS_VM_ATTACH,      /* .attached changed */
	OBS_TYPE_MAX,
};

struct obs_event {
	enum obs_type type;
	const char *vm;                 /* always */
	const struct crash *crash;      /* the record as saved; NULL for VM-only events */
	const char *event;              /* OPENED: GUEST_PANICKED, ... */
	enum crash_state state, prev_state;
	const char *outcome;
	double seconds;
	bool saved;
	bool attached;
	bool unload_acked;
	uint32_t rtt_us, tier_us;
	uint64_t count;
	uint64_t at_usec;               /* CLOCK_REALTIME */
};

typedef void (*obs_fn)(void *ud, const struct obs_event *ev);

/* -E2BIG past OBS_MAX_WATCHERS. */
int obs_subscribe(obs_fn fn, void *ud);
void obs_emit(const struct obs_event *ev);
const char *obs_type_name(enum obs_type t);

#endif
