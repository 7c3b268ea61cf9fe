// SPDX-License-Identifier: MIT
/*
 * The crash machine's decisions about the kdump kernel: its broker channel
 * session and reports, a new boot after it, and the two deadlines.
 */
#include <stdio.h>

#include "crash_machine_internal.h"

void cm_on_kdump_session(struct cm_ctx *x)
{
	struct cm_result *r = x->r;

	if (r->after.state == CRASH_CLOSED || x->ev->link == CRASH_LINK_REFUSED)
		return;
	cm_act(x, CM_ACT_SAVE);
	if (r->after.ks == CRASH_KS_NONE) {
		r->after.ks = CRASH_KS_RUNNING;
		r->after.watch_pending = false;
		cm_act(x, CM_ACT_KDUMP_STATE | CM_ACT_DISARM_WATCH);
	}
	if (r->after.ks != CRASH_KS_RUNNING || r->after.state != CRASH_KDUMP_RUNNING)
		return;
	/* Every session opened and every report taken re-arms it. */
	r->watch_usec = x->ev->now_usec + x->p->progress_timeout_usec;
	r->after.watch_pending = true;
	cm_act(x, CM_ACT_ARM_WATCH);
}

void cm_on_kdump_report(struct cm_ctx *x)
{
	const struct cm_event *ev = x->ev;
	struct cm_result *r = x->r;
	struct cm_crash *c = &r->after;

	if (c->state == CRASH_CLOSED)
		return;
	cm_act(x, CM_ACT_SAVE);
	if (c->ks != CRASH_KS_NONE && c->ks != CRASH_KS_RUNNING)
		return; /* done, failed and hung are final; the report is kept */
	switch (ev->report) {
	case CRASH_REPORT_START:
	case CRASH_REPORT_PROGRESS:
		/* Like a session opening: running, and its progress deadline re-armed. */
		cm_on_kdump_session(x);
		return;
	case CRASH_REPORT_DONE:
		c->ks = CRASH_KS_DONE;
		c->watch_pending = false;
		cm_act(x, CM_ACT_KDUMP_STATE | CM_ACT_DISARM_WATCH);
		cm_note(x, "kdump session %016llx reported done (%llu bytes)",
			(unsigned long long)ev->session, (unsigned long long)ev->bytes);
		if (c->state == CRASH_KDUMP_RUNNING)
			cm_log(x, CM_LOG_NOTICE,
			       "the kdump kernel reported done; waiting for it to reboot the guest");
		return;
	case CRASH_REPORT_FAILED:
		c->ks = CRASH_KS_FAILED;
		c->watch_pending = false;
		cm_act(x, CM_ACT_KDUMP_STATE | CM_ACT_DISARM_WATCH);
		cm_note(x, "kdump session %016llx reported failed: %s",
			(unsigned long long)ev->session, ev->reason ? ev->reason : "");
		if (c->state != CRASH_KDUMP_RUNNING)
			return;
		cm_disarm(x);
		cm_goto(x, CRASH_KDUMP_FAILED,
			"the kdump kernel reported failure over the broker channel: %s",
			ev->reason ? ev->reason : "");
		cm_log(x, CM_LOG_WARN, "the kdump kernel failed: %s", ev->reason ? ev->reason : "");
		cm_kdump_failed(x);
		return;
	}
}

/*
 * A fresh boot of the guest. After kdump said done it closes the crash even
 * when the kdump kernel's reset was missed (a daemon restart, a lost
 * connection); without done the crash waits on as before.
 */
void cm_on_booted(struct cm_ctx *x)
{
	struct cm_crash *c = &x->r->after;

	if (c->state != CRASH_KDUMP_RUNNING || c->ks != CRASH_KS_DONE)
		return;
	cm_disarm(x);
	cm_goto(x, CRASH_KDUMP_FINISHED,
		"kdump reported done and the guest booted again (guest session %016llx); the kdump kernel's reset was not seen",
		(unsigned long long)x->ev->session);
	cm_log(x, CM_LOG_NOTICE, "the guest booted again after kdump was done");
	cm_final(x);
}

void cm_on_bound(struct cm_ctx *x)
{
	struct cm_result *r = x->r;
	struct cm_crash *c = &r->after;
	unsigned long long sec = cm_sec(x->p->kdump_timeout_usec);

	if (c->state != CRASH_KDUMP_RUNNING)
		return;
	cm_log(x, CM_LOG_WARN, "the kdump kernel did not finish within %llu s", sec);
	/* A kdump session still owed or running is hung now. */
	if (c->ks == CRASH_KS_RUNNING || (c->ks == CRASH_KS_NONE && c->watch_pending)) {
		snprintf(r->hung_reason, sizeof(r->hung_reason),
			 "kdump_timeout (%llu s) passed with the kdump session %s", sec,
			 c->ks == CRASH_KS_RUNNING ? "still running" : "not open");
		c->ks = CRASH_KS_HUNG;
		cm_act(x, CM_ACT_KDUMP_HUNG);
	}
	cm_disarm(x);
	cm_goto(x, CRASH_KDUMP_TIMEOUT, "no reboot from the kdump kernel within %llu s", sec);
	cm_kdump_failed(x);
}

/* The kdump session did not open, or went silent: hung, like a failure. */
void cm_on_watch(struct cm_ctx *x)
{
	struct cm_result *r = x->r;
	struct cm_crash *c = &r->after;

	if (c->state != CRASH_KDUMP_RUNNING || !c->watch_pending ||
	    (c->ks != CRASH_KS_NONE && c->ks != CRASH_KS_RUNNING))
		return;
	if (c->ks == CRASH_KS_NONE)
		snprintf(r->hung_reason, sizeof(r->hung_reason), "no kdump session within %llu s",
			 cm_sec(x->p->session_timeout_usec));
	else
		snprintf(r->hung_reason, sizeof(r->hung_reason), "no progress for %llu s",
			 cm_sec(x->p->progress_timeout_usec));
	cm_disarm(x);
	c->ks = CRASH_KS_HUNG;
	cm_act(x, CM_ACT_KDUMP_HUNG);
	cm_goto(x, CRASH_KDUMP_TIMEOUT, "kdump hung: %s", r->hung_reason);
	cm_log(x, CM_LOG_WARN, "kdump hung: %s", r->hung_reason);
	cm_kdump_failed(x);
}

enum crash_link cm_kdump_link(uint64_t crashed_session, bool kdump_loaded,
			      uint64_t prev, const uint64_t *closed,
			      size_t n_closed, char *why, size_t whylen)
{
	char what[160];

	if (prev && prev == crashed_session) {
		snprintf(why, whylen, "prev_session %016llx is the crashed session",
			 (unsigned long long)prev);
		return CRASH_LINK_LINKED;
	}
	for (size_t i = 0; prev && i < n_closed; i++) {
		if (closed[i] == prev) {
			snprintf(why, whylen,
				 "prev_session %016llx is the crashed session of a crash already closed",
				 (unsigned long long)prev);
			return CRASH_LINK_REFUSED;
		}
	}
	if (!prev)
		snprintf(what, sizeof(what),
			 "prev_session 0: the kdump kernel found no crashed session (the mailbox was reformatted since the crash)");
	else if (!crashed_session)
		snprintf(what, sizeof(what),
			 "prev_session %016llx, and the crashed session is unknown",
			 (unsigned long long)prev);
	else
		snprintf(what, sizeof(what),
			 "prev_session %016llx is not the crashed session %016llx",
			 (unsigned long long)prev, (unsigned long long)crashed_session);
	if (!kdump_loaded) {
		snprintf(why, whylen, "%s, and this crash was entered without a crash kernel loaded",
			 what);
		return CRASH_LINK_REFUSED;
	}
	snprintf(why, whylen, "%s", what);
	return CRASH_LINK_UNLINKED;
}
