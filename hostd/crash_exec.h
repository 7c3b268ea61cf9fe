/* SPDX-License-Identifier: MIT */
/*
 * --on-crash-exec PROGRAM: when a crash closes, PROGRAM runs with the
 * record's path as its one argument (SPOOL/crashes/ID/record.json), without
 * a shell, in a child job (job.h) with a deadline.
 *
 * Contract:
 *  - crash_exec_on_event() is an observe.h watcher: on OBS_CRASH_CLOSED it
 *    starts PROGRAM, or queues it when CRASH_EXEC_MAX_RUNNING runs are
 *    under way; past CRASH_EXEC_MAX_QUEUED queued runs the crash is not
 *    run for ("dropped"). Nothing waits on the loop.
 *  - A run that outlives its timeout is killed (SIGKILL; its own children
 *    are not followed) and is "timeout".
 *  - Every run's outcome is written next to the record, atomically, as
 *    SPOOL/crashes/ID/on-crash-exec.json (docs/record.md); the record
 *    itself (crash.c's) is never touched: the crash is closed and freed by
 *    then. Outcomes: "ok" (exit 0), "failed" (another exit status, a
 *    signal, or the program could not be run: exit 127 and the reason in
 *    "output"), "timeout", "dropped" (the queue was full), "cancelled"
 *    (the daemon stopped first; written by crash_exec_free()).
 *  - Every outcome but "ok" is told through @report, so the daemon logs it
 *    and sends it to the journal. The library never logs.
 */
#ifndef PB_CRASH_EXEC_H
#define PB_CRASH_EXEC_H

#include <stdint.h>
#include <systemd/sd-event.h>

#include "observe.h"
#include "spool.h"

#define CRASH_EXEC_MAX_RUNNING 4
#define CRASH_EXEC_MAX_QUEUED 64
/* What of the program's output the side file keeps (its tail). */
#define CRASH_EXEC_OUTPUT_MAX 4096
#define CRASH_EXEC_SIDE_FILE "on-crash-exec.json"

struct crash_exec;

struct crash_exec_result {
	const char *crash_id;
	const char *vm;
	const char *program;
	const char *outcome;	/* ok, failed, timeout, dropped, cancelled */
	int exit_status;	/* -1: none (timeout, signal, not run) */
	int signal;		/* 0: none */
	double seconds;		/* how long it ran */
	const char *output;	/* its output's tail, "" if none */
	int save_error;		/* writing the side file: 0 or a negative errno */
};

typedef void (*crash_exec_report_fn)(void *ud, const struct crash_exec_result *r);

/* @program: an absolute path (copied); @timeout_usec > 0. */
int crash_exec_new(sd_event *e, struct spool *spool, const char *program,
		   uint64_t timeout_usec, crash_exec_report_fn report, void *ud,
		   struct crash_exec **ret);
/* Kills what still runs; every run not finished gets its side file ("cancelled"). */
void crash_exec_free(struct crash_exec *x);
void crash_exec_on_event(void *ud, const struct obs_event *ev);

/* Runs under way and waiting. */
void crash_exec_counts(const struct crash_exec *x, unsigned int *ret_running,
		       unsigned int *ret_queued);

#endif
