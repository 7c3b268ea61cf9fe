/* SPDX-License-Identifier: MIT */
/*
 * The crash machine: every decision panicbrokerd takes about a VM's crash,
 * as a pure function from (what is known of the open crash, the VM's
 * policy, one event) to (the crash's next state, history entries, actions).
 *
 * Contract:
 *  - No I/O, no clock, no allocation, no logging: the caller passes the time
 *    (CLOCK_REALTIME, for deadlines written into the record) and carries
 *    the actions out: record changes, then backend operations, in the order
 *    documented at enum cm_action.
 *  - A VM with no open crash is in CRASH_CLOSED; an event that opens a crash
 *    says CM_ACT_CREATE, and every decision after it is taken as if the new
 *    crash had been in CRASH_DETECTED.
 *  - Every decision's reason is a history entry (state change or note): the
 *    record's history reads as today's did.
 *  - An event the machine has nothing to do with is ignored: no state
 *    change, no action (cm_result.actions == 0).
 *  - Operations that cannot run because the VM is not attached are the
 *    caller's to retry: the ATTACHED event reconciles every state.
 */
#ifndef PB_CRASH_MACHINE_H
#define PB_CRASH_MACHINE_H

#include <stdbool.h>
#include <stdint.h>

#include "backend.h"
#include "config.h"
#include "crash.h"

enum cm_event_type {
	CM_EV_PANIC,           /* pvpanic PANICKED: .name, .action */
	CM_EV_CRASHLOADED,     /* pvpanic CRASH_LOADED: .name, .action */
	CM_EV_RESET,           /* the VM reset (not by our reset): .guest */
	CM_EV_SHUTDOWN,        /* the VM powered off (not by our poweroff) */
	CM_EV_GONE,            /* the VM is no longer supervised: .detail */
	CM_EV_ATTACHED,        /* (re)attached: .run_state, .status, .via, .panic_pending, .preserved */
	CM_EV_PANIC_RECORD,    /* the broker channel's panic record arrived */
	CM_EV_UNLOAD,          /* the guest's UNLOAD was acknowledged */
	CM_EV_KDUMP_SESSION,   /* a KDUMP session taken by this crash: .link */
	CM_EV_KDUMP_REPORT,    /* its report: .report, .bytes, .reason, .session */
	CM_EV_BOOTED,          /* a NORMAL session opened: .session */
	CM_EV_KDUMP_BOUND,     /* kdump_timeout passed */
	CM_EV_KDUMP_WATCH,     /* the session or progress deadline passed */
	CM_EV_SNAPSHOT_DONE,   /* a verified dump is in place */
	CM_EV_SNAPSHOT_FAILED, /* failed, refused or never started: .detail (a note) or NULL */
	CM_EV_RESUME_DONE,     /* cont after a snapshot taken on the way into kdump */
	CM_EV_RESUME_FAILED,   /* .detail */
	CM_EV_FINAL_DONE,      /* the final action's operation: .detail */
	CM_EV_FINAL_FAILED,    /* .detail */
	CM_EV_DAEMON_RESUMED,  /* panicbrokerd started with this crash open */
	CM_EV_MAX,
};

struct cm_event {
	enum cm_event_type type;
	uint64_t now_usec;            /* CLOCK_REALTIME */
	const char *name;             /* PANIC, CRASHLOADED */
	const char *action;           /* PANIC, CRASHLOADED */
	bool guest;                   /* RESET */
	enum be_run_state run_state;  /* ATTACHED */
	const char *status;           /* ATTACHED: the backend's word for it */
	const char *via;              /* ATTACHED, PANIC, CRASHLOADED: "QMP", "libvirt" */
	bool panic_pending;           /* ATTACHED: a salvaged panic record waits */
	bool preserved;               /* ATTACHED: the VM is still the one a preserved crash left panicked */
	enum crash_link link;         /* KDUMP_SESSION */
	enum crash_report_state report; /* KDUMP_REPORT */
	uint64_t bytes;               /* KDUMP_REPORT done */
	const char *reason;           /* KDUMP_REPORT failed */
	uint64_t session;             /* KDUMP_SESSION, KDUMP_REPORT, BOOTED */
	const char *detail;
};

/* What the machine knows of the open crash (state CRASH_CLOSED: none). */
struct cm_crash {
	enum crash_state state;
	enum crash_ks ks;
	enum final_action final_action;
	bool kdump_loaded;
	bool snapshot_taken;          /* the record has a snapshot, whatever its outcome */
	bool resume_kdump;            /* the snapshot pauses a guest on its way into kdump */
	bool guest_down;              /* the kdump kernel powered the guest off */
	bool crashed_session;         /* the crashed kernel spoke the broker channel */
	bool watch_pending;           /* a session or progress deadline is recorded */
};

struct cm_policy {
	enum final_action final_action; /* of a new crash */
	enum snapshot_policy snapshot;
	const char *snapshot_format;
	bool channel;                   /* the VM has the broker channel */
	uint64_t kdump_timeout_usec;
	uint64_t session_timeout_usec;
	uint64_t progress_timeout_usec;
};

/*
 * Actions, carried out in this order: the record first (CREATE .. CLOSE),
 * then SAVE, then the VM's operations (at most one of HOLD+SNAPSHOT,
 * RESUME, RESET, POWEROFF), then a CLOSEd crash is let go.
 */
enum cm_action {
	CM_ACT_CREATE       = 1u << 0,  /* open a crash: .create_event, .create_source */
	CM_ACT_DUPLICATE    = 1u << 1,  /* count the event (.dup_name) in the open crash */
	CM_ACT_ABANDON_SNAP = 1u << 2,  /* a snapshot a dead daemon left running: failed */
	CM_ACT_KDUMP_HUNG   = 1u << 3,  /* kdump.state hung: .hung_reason */
	CM_ACT_KDUMP_STATE  = 1u << 4,  /* kdump.state is .ks now (done/failed: the report) */
	CM_ACT_DISARM       = 1u << 5,  /* no kdump deadline runs or is recorded */
	CM_ACT_DISARM_WATCH = 1u << 6,  /* the session/progress deadline only */
	CM_ACT_HISTORY      = 1u << 7,  /* .notes[], in order */
	CM_ACT_ARM_BOUND    = 1u << 8,  /* kdump_timeout at .bound_usec (0: as recorded) */
	CM_ACT_ARM_WATCH    = 1u << 9,  /* session/progress deadline at .watch_usec (0: as recorded) */
	CM_ACT_CLOSE        = 1u << 10, /* final_action_result .outcome/.detail; state closed */
	CM_ACT_SAVE         = 1u << 11,
	CM_ACT_HOLD         = 1u << 12, /* pause the VM, then SNAPSHOT */
	CM_ACT_SNAPSHOT     = 1u << 13,
	CM_ACT_RESUME       = 1u << 14, /* let the guest go on into kdump */
	CM_ACT_RESET        = 1u << 15, /* final action restart */
	CM_ACT_POWEROFF     = 1u << 16, /* final action poweroff */
};

#define CM_NOTES_MAX 6
#define CM_TEXT_MAX 320

struct cm_note {
	bool change;                  /* a state change (else a note in .state) */
	enum crash_state state;
	char text[CM_TEXT_MAX];
};

enum cm_log {
	CM_LOG_NONE,
	CM_LOG_INFO,
	CM_LOG_NOTICE,
	CM_LOG_WARN,
	CM_LOG_ERROR,
};

struct cm_result {
	unsigned int actions;
	struct cm_crash after;        /* the crash as the actions leave it */
	const char *create_event;
	char create_source[CM_TEXT_MAX];
	const char *dup_name;
	char hung_reason[160];
	uint64_t bound_usec, watch_usec;
	const char *outcome;          /* CLOSE: applied, not-needed, preserved, failed */
	char detail[CM_TEXT_MAX];
	struct cm_note notes[CM_NOTES_MAX];
	unsigned int n_notes;
	/* One line for the operator, "VM NAME: crash ID: " before it. */
	enum cm_log log;
	char log_text[CM_TEXT_MAX];
};

/* Decides. @c may be in any state (CRASH_CLOSED: none open). */
void cm_step(const struct cm_crash *c, const struct cm_policy *p,
	     const struct cm_event *ev, struct cm_result *ret);

/*
 * Whether a KDUMP session naming @prev belongs to the open crash: linked
 * when @prev is its crashed session; refused when @prev is the crashed
 * session of a closed crash (@closed) or the crash was entered without a
 * crash kernel loaded; otherwise unlinked, and taken. The reason to @why.
 */
enum crash_link cm_kdump_link(uint64_t crashed_session, bool kdump_loaded,
			      uint64_t prev, const uint64_t *closed,
			      size_t n_closed, char *why, size_t whylen);

const char *cm_event_name(enum cm_event_type t);
const char *cm_action_name(unsigned int bit);

#endif
