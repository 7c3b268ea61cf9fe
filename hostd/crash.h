/* SPDX-License-Identifier: MIT */
/*
 * A crash and its record (SPOOL/crashes/<id>/record.json).
 *
 * The record is the contract with operators and tools (see docs/record.md):
 * format, id, vm, event, detected_at, qmp_timestamp, kdump_loaded, state,
 * final_action, final_action_result, duplicate_events, history, updated_at,
 * and, with the broker channel, the kdump kernel's session (kdump.*).
 * Every change goes through crash_set_*() / crash_kdump_*() and is persisted
 * by crash_save(), which replaces the file atomically. The library never logs.
 */
#ifndef PB_CRASH_H
#define PB_CRASH_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "common.h"
#include "config.h"
#include "spool.h"

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
	json_object *rec;
	int dirfd;
};

struct crash_event {
	const char *vm;
	const char *event;          /* GUEST_PANICKED / GUEST_CRASHLOADED */
	uint64_t detected_usec;     /* CLOCK_REALTIME */
	bool has_qmp_timestamp;
	uint64_t qmp_timestamp_usec;
	json_object *data;          /* the event's data, borrowed; may be NULL */
	const char *source;         /* how it was learnt, for the history */
};

/* Creates the crash and publishes its first record in the spool. */
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
void crash_set_kdump_deadline(struct crash *c, uint64_t usec);
/* outcome: "applied", "not-needed", "preserved" or "failed" */
void crash_set_final_result(struct crash *c, const char *outcome,
			    const char *detail);
int crash_save(struct crash *c);

/* ---- the kdump kernel's broker channel session (docs/record.md) ---- */

/* kdump.crashed_session (hexadecimal) and how it was learnt. */
void crash_set_crashed_session(struct crash *c, uint64_t id, const char *from);
/*
 * Whether a KDUMP session naming @prev belongs to @c: linked when @prev is
 * the crashed session; refused when @prev is one of @closed (the crashed
 * sessions of closed crashes) or @c was entered without a crash kernel
 * loaded; otherwise unlinked, and taken. The reason goes to @why.
 */
enum crash_link crash_kdump_link(const struct crash *c, uint64_t prev,
				 const uint64_t *closed, size_t n_closed,
				 char *why, size_t whylen);
/* A KDUMP session opened: records it (kdump.session...) or its refusal. */
void crash_kdump_session(struct crash *c, uint64_t session, uint64_t prev,
			 enum crash_link link, const char *why, uint64_t now_usec);
/* Appends a report to kdump.reports and moves kdump.state on. */
void crash_kdump_report(struct crash *c, const struct crash_kdump_report *r);
/* A report over the rate limit: counted in kdump.reports_dropped. */
void crash_kdump_report_dropped(struct crash *c);
/*
 * Sets (or with 0 clears) the deadline that applies now: the session
 * deadline before the session, the progress deadline while it runs.
 */
void crash_kdump_set_deadline(struct crash *c, uint64_t usec);
/* The session did not come, or went silent: kdump.state hung, with why
 * (unless it is done, failed or hung already). */
void crash_kdump_hung(struct crash *c, uint64_t now_usec, const char *fmt, ...)
	_printf_(3, 4);
/* kdump.reason (failed or hung), or "". */
const char *crash_kdump_reason(const struct crash *c);
/* "running", "done", "failed", "hung"; NULL for CRASH_KS_NONE. */
const char *crash_ks_to_string(enum crash_ks ks);

const char *crash_state_to_string(enum crash_state st);
int crash_state_from_string(const char *s);
/* "20261124T204155.123456Z-NAME", the directory name before de-duplication */
int crash_id_base(uint64_t usec, const char *vm, char *buf, size_t len);

#endif
