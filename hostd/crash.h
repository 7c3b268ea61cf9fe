/* SPDX-License-Identifier: MIT */
/*
 * A crash and its record (SPOOL/crashes/<id>/record.json).
 *
 * The record is the contract with operators and tools (see docs/record.md):
 * format, id, vm, event, detected_at, qmp_timestamp, kdump_loaded, state,
 * final_action, final_action_result, duplicate_events, history, updated_at,
 * and, with the broker channel, the kdump kernel's session (kdump.*).
 * This module (crash.c, crash_kdump.c, crash_guest.c, crash_snapshot.c) is
 * the only one that builds record JSON: every change goes through the
 * typed crash_*() setters below, and is persisted by crash_save(), which
 * replaces the file atomically. Decisions are not made here (they are the
 * crash machine's, crash_machine.h): this records them. The library never
 * logs.
 */
#ifndef PB_CRASH_H
#define PB_CRASH_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "common.h"
#include "config.h"
#include "spool.h"
#include "chan.h"
#include "backend.h"

#define CRASH_RECORD_FORMAT 1
#define CRASH_HISTORY_MAX 64
#define CRASH_EVENT_DATA_MAX 4096

enum crash_state {
	CRASH_DETECTED,       /* record written, nothing decided yet */
	CRASH_HELD,           /* guest paused by QEMU for the host */
	CRASH_KDUMP_RUNNING,  /* guest left running into its kdump kernel */
	CRASH_KDUMP_FINISHED, /* the kdump kernel rebooted the guest */
	CRASH_KDUMP_FAILED,   /* the kdump kernel panicked too */
	CRASH_KDUMP_TIMEOUT,  /* no reboot from kdump within the deadline */
	CRASH_SNAPSHOTTING,   /* the VM is paused while its memory is dumped */
	CRASH_CLOSED,         /* final action done; nothing more is owed */
	CRASH_STATE_MAX,
};

/* The kdump kernel's broker channel session: the record's kdump.state. */
enum crash_ks {
	CRASH_KS_NONE,    /* no kdump session yet: kdump.state null or absent */
	CRASH_KS_RUNNING, /* the session opened; reports come in */
	CRASH_KS_DONE,    /* it reported done */
	CRASH_KS_FAILED,  /* it reported failed */
	CRASH_KS_HUNG,    /* no session, or no report, within its deadline */
	CRASH_KS_MAX,
};

/* What a KDUMP session is to the VM's open crash (crash_kdump_link()). */
enum crash_link {
	CRASH_LINK_LINKED,   /* its prev_session is the crashed session */
	CRASH_LINK_UNLINKED, /* it is not (or 0), yet its reports are taken */
	CRASH_LINK_REFUSED,  /* its reports are not this crash's */
};

/* One KDUMP_STATUS, already checked by the caller (values as on the wire). */
enum crash_report_state {
	CRASH_REPORT_START = 1,
	CRASH_REPORT_PROGRESS = 2,
	CRASH_REPORT_DONE = 3,
	CRASH_REPORT_FAILED = 4,
};

struct crash_kdump_report {
	enum crash_report_state state;
	uint32_t percent;
	uint64_t bytes;          /* DONE */
	const char *reason;      /* FAILED: printable text */
	uint64_t session, prev_session;
	uint64_t at_usec;        /* CLOCK_REALTIME: when the host took it */
};

struct crash {
	char id[SPOOL_ID_MAX];
	char vm[VM_NAME_MAX + 1];
	enum crash_state state;
	bool kdump_loaded;
	enum final_action final_action;
	uint64_t kdump_deadline_usec; /* CLOCK_REALTIME; 0: none */
	/* The broker channel (mailbox=); all 0 without one. */
	uint64_t crashed_session;     /* the guest session that crashed; 0: unknown */
	enum crash_ks kdump_ks;
	uint64_t kdump_session;       /* the last KDUMP session taken; 0: none */
	uint64_t kdump_watch_usec;    /* CLOCK_REALTIME: kdump.session_deadline
				       * (no session yet) or .progress_deadline
				       * (running); 0: none */
	/* The machine's own bits, kept in the record so they survive restarts. */
	bool resume_kdump;            /* the snapshot was taken on the way into kdump */
	bool guest_down;              /* the kdump kernel powered the guest off */
	json_object *rec;
	struct spool *spool;
	bool published;
	int dirfd;                    /* -1 until published */
};

struct crash_event {
	const char *vm;
	const char *event;          /* GUEST_PANICKED / GUEST_CRASHLOADED / PANIC_RECORD */
	bool kdump_loaded;          /* the guest runs on into a crash kernel */
	uint64_t detected_usec;     /* CLOCK_REALTIME */
	bool has_qmp_timestamp;
	uint64_t qmp_timestamp_usec;
	json_object *data;          /* the event's data, borrowed; may be NULL */
	const char *source;         /* how it was learnt, for the history */
	const char *backend;        /* "qmp"... */
	struct be_instance instance; /* the process that ran the VM (pid 0: unknown) */
};

/*
 * Creates the crash in memory; its first crash_save() publishes it in the
 * spool (a directory with its complete record, or nothing).
 */
int crash_new(struct spool *s, const struct crash_event *ev,
	      enum final_action final_action, struct crash **ret);
/* Rebuilds an open crash from its record after a daemon restart. */
int crash_load(struct spool *s, const char *id, json_object *rec,
	       struct crash **ret, char *err, size_t errlen);
void crash_free(struct crash *c);

void crash_set_state(struct crash *c, enum crash_state st, const char *fmt,
		     ...) _printf_(3, 4);
void crash_note(struct crash *c, const char *fmt, ...) _printf_(2, 3);
void crash_add_duplicate(struct crash *c, const char *event);
/* kdump_deadline: the outer bound of the kdump kernel, kdump_timeout (0: none). */
void crash_set_kdump_bound(struct crash *c, uint64_t usec);
/* The machine's resume_kdump / guest_down flags (record: "machine"). */
void crash_set_flags(struct crash *c, bool resume_kdump, bool guest_down);
/* The process that runs the VM (record: vm_instance), from the record. */
bool crash_instance(const struct crash *c, struct be_instance *ret);
/* outcome: "applied", "not-needed", "preserved" or "failed" */
void crash_set_final_result(struct crash *c, const char *outcome,
			    const char *detail);
int crash_save(struct crash *c);

/* ---- what the guest said over the broker channel (crash_guest.c) ---- */

/* panic.*, guest.* (when the panic's session is still open), unload.acked=false. */
void crash_set_panic(struct crash *c, const struct chan_panic *p);
/* A panic record kept while no crash was open: a private copy of it. */
struct crash_panic_copy;
struct crash_panic_copy *crash_panic_copy(const struct chan_panic *p);
void crash_panic_copy_free(struct crash_panic_copy *pc);
/* The copy's view (valid while @pc lives), and its session. */
const struct chan_panic *crash_panic_copy_view(const struct crash_panic_copy *pc);
/* unload.acked / rtt_us, panic.tier_us. */
void crash_set_timing(struct crash *c, const struct chan_timing *t);
/*
 * signature: the crash's title, guilty frame and bucket (signature.h),
 * from the panic record's message and log tail, or (@msg NULL) a log read
 * back from a snapshot. @from says which. A panic record's wins.
 */
void crash_set_signature(struct crash *c, const char *msg, size_t msg_len,
			 const char *log, size_t log_len, const char *from);
/* mailbox.malformed (the first few) and mailbox.malformed_count. */
void crash_add_malformed(struct crash *c, const char *what, const char *reason,
			 uint64_t count);
/* mailbox.unknown_records. */
void crash_set_unknown_records(struct crash *c, uint64_t count);

/* ---- the memory snapshot (crash_snapshot.c; the record's "snapshot") ---- */

struct crash_snapshot_file {
	uint64_t bytes;
	bool vmcoreinfo;                /* the dump holds the guest's vmcoreinfo */
	bool phys_base_checked;
	uint64_t phys_base_qemu;        /* what QEMU wrote */
	uint64_t phys_base_vmcoreinfo;  /* what the guest said */
	char phys_base_why[160];        /* unchecked: why */
	const char *layout;             /* "standard", "standard (reassembled from flattened)", "elf" */
	const char *path;               /* "vmcore" or "vmcore.elf", in the crash's directory */
};

struct crash_snapshot_verify {
	const char *tool;
	int ok;                         /* 1, 0, or -1 for "not checked" (null) */
	int exit_status;
	const char *log_path;           /* NULL: no log */
	const char *log_tail;
	const char *panic_line;         /* NULL: none found */
	const char *output;             /* NULL: not kept */
	const char *reason;             /* with ok -1 */
	const char *log;                /* the whole log read back, for the signature */
	size_t log_len;
};

/* snapshot.state "starting", format, started_at. */
void crash_snapshot_begin(struct crash *c, const char *format, uint64_t now_usec);
/* snapshot.state ("running"...). */
void crash_snapshot_state(struct crash *c, const char *state);
void crash_snapshot_space(struct crash *c, uint64_t ram_bytes, uint64_t avail_bytes);
void crash_snapshot_progress(struct crash *c, uint64_t done_bytes, uint64_t total_bytes);
void crash_snapshot_file(struct crash *c, const struct crash_snapshot_file *f);
void crash_snapshot_verify(struct crash *c, const struct crash_snapshot_verify *v);
/* snapshot.state done|failed|refused, reason, finished_at, seconds; a history note. */
void crash_snapshot_end(struct crash *c, const char *state, const char *reason,
			uint64_t now_usec, double seconds);
/* Whether the record has a snapshot object (any state), and its state. */
const char *crash_snapshot_get_state(const struct crash *c);
/* snapshot.seconds, or -1 when not recorded. */
double crash_snapshot_seconds(const struct crash *c);
/* signature.bucket and .title, or NULL (valid until the record changes). */
const char *crash_signature_bucket(const struct crash *c);
const char *crash_signature_title(const struct crash *c);
/* The path of the snapshot's file as recorded ("vmcore"), or NULL. */
const char *crash_snapshot_path(const struct crash *c);

/* ---- the kdump kernel's broker channel session (docs/record.md) ---- */

/* kdump.crashed_session (hexadecimal) and how it was learnt. */
void crash_set_crashed_session(struct crash *c, uint64_t id, const char *from);
/* A KDUMP session opened: records it (kdump.session...) or its refusal. */
void crash_kdump_session(struct crash *c, uint64_t session, uint64_t prev,
			 enum crash_link link, const char *why, uint64_t now_usec);
/* Appends a report to kdump.reports (and kdump.started_at at the first start). */
void crash_kdump_add_report(struct crash *c, const struct crash_kdump_report *r);
/*
 * kdump.state is @ks now (the machine's decision); with done or failed,
 * the report @r that made it so gives kdump.bytes / kdump.reason and
 * kdump.finished_at.
 */
void crash_kdump_set_state(struct crash *c, enum crash_ks ks,
			   const struct crash_kdump_report *r);
/* A report over the rate limit: counted in kdump.reports_dropped. */
void crash_kdump_report_dropped(struct crash *c);
/*
 * Sets (or with 0 clears) the deadline that applies now: the session
 * deadline before the session, the progress deadline while it runs.
 */
void crash_kdump_set_watch(struct crash *c, uint64_t usec);
/* The session did not come, or went silent: kdump.state hung, with why. */
void crash_kdump_hung(struct crash *c, uint64_t now_usec, const char *reason);
/* kdump.reason (failed or hung), or "". */
const char *crash_kdump_reason(const struct crash *c);
/* "running", "done", "failed", "hung"; NULL for CRASH_KS_NONE. */
const char *crash_ks_to_string(enum crash_ks ks);

const char *crash_state_to_string(enum crash_state st);
int crash_state_from_string(const char *s);
/* "20261124T204155.123456Z-NAME", the directory name before de-duplication */
int crash_id_base(uint64_t usec, const char *vm, char *buf, size_t len);

#endif
