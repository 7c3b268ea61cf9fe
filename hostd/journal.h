/* SPDX-License-Identifier: MIT */
/*
 * Crashes into the journal: each crash's detection and its close as one
 * structured entry each, with a fixed MESSAGE_ID per kind, documented in
 * the message catalog (systemd/panicbroker.catalog), so that log shippers
 * carry them to the fleet's log store and `journalctl MESSAGE_ID=...`
 * finds every crash of a host.
 *
 * Contract:
 *  - journal_on_event() is an observe.h watcher (obs_subscribe() it with
 *    the struct journal); it sends OBS_CRASH_OPENED and OBS_CRASH_CLOSED,
 *    and ignores the rest.
 *  - Fields of both entries: MESSAGE, MESSAGE_ID, PRIORITY,
 *    SYSLOG_IDENTIFIER=panicbrokerd, PANICBROKER_CRASH_ID, PANICBROKER_VM,
 *    PANICBROKER_EVENT (GUEST_PANICKED, GUEST_CRASHLOADED, PANIC_RECORD),
 *    PANICBROKER_STATE, PANICBROKER_RECORD (the record's path) and, when the
 *    record has them, PANICBROKER_SIGNATURE_BUCKET, _TITLE, _KIND; the close
 *    adds PANICBROKER_FINAL_OUTCOME, PANICBROKER_KDUMP_OUTCOME,
 *    PANICBROKER_SNAPSHOT.
 *  - journal_exec_result() sends one entry for an --on-crash-exec program
 *    that did not succeed (JOURNAL_MID_EXEC_FAILED).
 *  - Sending never blocks the loop for long (a datagram to journald) and
 *    never fails the caller: without a journal (no journald, a full
 *    socket) entries are dropped and counted; the first drop, and then at
 *    most one a minute, is told through @report so the daemon can log it.
 *    The library never logs.
 */
#ifndef PB_JOURNAL_H
#define PB_JOURNAL_H

#include <stdint.h>

#include "observe.h"

/* The catalog's ids (systemd-id128 new), never to change. */
#define JOURNAL_MID_CRASH_DETECTED "c6b9e4164b0c4fa3abc821209f50890e"
#define JOURNAL_MID_CRASH_CLOSED   "9e531237b26348d380b3140de186151f"
#define JOURNAL_MID_EXEC_FAILED    "edc2bc647ce643fd883b4c73609bb51c"

struct journal;

/* A send failed: @error (negative errno), @dropped so far. */
typedef void (*journal_report_fn)(void *ud, int error, uint64_t dropped);

/* @spool_dir names the record in each entry; copied. */
int journal_new(const char *spool_dir, journal_report_fn report, void *ud,
		struct journal **ret);
void journal_free(struct journal *j);
void journal_on_event(void *ud, const struct obs_event *ev);

/* An --on-crash-exec run that failed (crash_exec.h says what @outcome is). */
void journal_exec_result(struct journal *j, const char *crash_id, const char *vm,
			 const char *program, const char *outcome, const char *detail);

/* Entries sent and dropped so far. */
void journal_counts(const struct journal *j, uint64_t *ret_sent, uint64_t *ret_dropped);

#endif
