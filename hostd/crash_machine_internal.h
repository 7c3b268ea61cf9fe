/* SPDX-License-Identifier: MIT */
/* Inside the crash machine only (crash_machine*.c): one decision in progress. */
#ifndef PB_CRASH_MACHINE_INTERNAL_H
#define PB_CRASH_MACHINE_INTERNAL_H

#include "common.h"
#include "crash_machine.h"

/* One decision in progress: the result and the inputs it reads. */
struct cm_ctx {
	const struct cm_policy *p;
	const struct cm_event *ev;
	struct cm_result *r;
};

unsigned long long cm_sec(uint64_t usec);
/* A history note in the current state; a state change with its reason. */
void cm_note(struct cm_ctx *x, const char *fmt, ...) _printf_(2, 3);
void cm_goto(struct cm_ctx *x, enum crash_state st, const char *fmt, ...) _printf_(3, 4);
/* The one line the runner logs for this decision. */
void cm_log(struct cm_ctx *x, enum cm_log level, const char *fmt, ...) _printf_(3, 4);
void cm_act(struct cm_ctx *x, unsigned int actions);
/* Every kdump deadline stops, and the record shows none pending. */
void cm_disarm(struct cm_ctx *x);
void cm_close(struct cm_ctx *x, const char *outcome, const char *fmt, ...) _printf_(3, 4);
/* The VM's final action on the open crash. */
void cm_final(struct cm_ctx *x);
void cm_snapshot(struct cm_ctx *x, bool resume_kdump);
/* kdump failed or went silent: a snapshot if none was taken, then the final action. */
void cm_kdump_failed(struct cm_ctx *x);
void cm_enter_kdump(struct cm_ctx *x, const char *why);

/* crash_machine_kdump.c: the kdump kernel's session and deadlines. */
void cm_on_kdump_session(struct cm_ctx *x);
void cm_on_kdump_report(struct cm_ctx *x);
void cm_on_booted(struct cm_ctx *x);
void cm_on_bound(struct cm_ctx *x);
void cm_on_watch(struct cm_ctx *x);

#endif
