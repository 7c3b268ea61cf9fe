/* SPDX-License-Identifier: MIT */
/*
 * A crash and its record (SPOOL/crashes/<id>/record.json).
 *
 * The record is the contract with operators and tools (see docs/record.md):
 * format, id, vm, event, detected_at, qmp_timestamp, kdump_loaded, state,
 * final_action, final_action_result, duplicate_events, history, updated_at.
 * Every change goes through crash_set_*() and is persisted by crash_save(),
 * which replaces the file atomically. The library never logs.
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

struct crash {
	char id[SPOOL_ID_MAX];
	char vm[VM_NAME_MAX + 1];
	enum crash_state state;
	bool kdump_loaded;
	enum final_action final_action;
	uint64_t kdump_deadline_usec; /* CLOCK_REALTIME; 0: none */
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

const char *crash_state_to_string(enum crash_state st);
int crash_state_from_string(const char *s);
/* "20261124T204155.123456Z-NAME", the directory name before de-duplication */
int crash_id_base(uint64_t usec, const char *vm, char *buf, size_t len);

#endif
