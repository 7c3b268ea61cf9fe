// SPDX-License-Identifier: MIT
/*
 * The crash machine's whole table: every state against every event, with
 * the new state and the actions written out (0: the pair is ignored), then
 * the variants that turn on the crash's facts, the event's details and the
 * VM's policy.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <panicbroker/pvpanic.h>

#include "crash_machine.h"

/* Short names for the actions, so that a row reads on one line. */
#define C  CM_ACT_CREATE
#define D  CM_ACT_DUPLICATE
#define AS CM_ACT_ABANDON_SNAP
#define HU CM_ACT_KDUMP_HUNG
#define KS CM_ACT_KDUMP_STATE
#define X  CM_ACT_DISARM
#define XW CM_ACT_DISARM_WATCH
#define HI CM_ACT_HISTORY
#define AB CM_ACT_ARM_BOUND
#define AW CM_ACT_ARM_WATCH
#define CL CM_ACT_CLOSE
#define S  CM_ACT_SAVE
#define HO CM_ACT_HOLD
#define SN CM_ACT_SNAPSHOT
#define RE CM_ACT_RESUME
#define RS CM_ACT_RESET
#define PO CM_ACT_POWEROFF

#define NONE_ CRASH_CLOSED
#define DET CRASH_DETECTED
#define HLD CRASH_HELD
#define KRN CRASH_KDUMP_RUNNING
#define KFI CRASH_KDUMP_FINISHED
#define KFA CRASH_KDUMP_FAILED
#define KTO CRASH_KDUMP_TIMEOUT
#define SNP CRASH_SNAPSHOTTING
#define CLO CRASH_CLOSED

static const struct cm_policy policy_default = {
	.final_action = FINAL_ACTION_RESTART,
	.snapshot = SNAPSHOT_ON_KDUMP_FAILURE,
	.snapshot_format = "kdump-zlib",
	.channel = true,
	.kdump_timeout_usec = 600 * USEC_PER_SEC,
	.session_timeout_usec = 120 * USEC_PER_SEC,
	.progress_timeout_usec = 300 * USEC_PER_SEC,
};

#define NOW_USEC (1800000000ULL * USEC_PER_SEC)

/* The facts a crash in @st has when nothing else is said. */
static struct cm_crash facts_of(enum crash_state st)
{
	struct cm_crash c = { .state = st, .final_action = FINAL_ACTION_RESTART };

	if (st == CRASH_CLOSED)
		return c;
	c.crashed_session = true;
	c.kdump_loaded = st == KRN || st == KFI || st == KFA || st == KTO;
	c.watch_pending = st == KRN;
	c.snapshot_taken = st == SNP;
	return c;
}

/* The event @t with the details a plain case has. */
static struct cm_event event_of(enum cm_event_type t)
{
	struct cm_event ev = { .type = t, .now_usec = NOW_USEC };

	switch (t) {
	case CM_EV_PANIC:
		ev.name = PB_PVPANIC_QMP_PANICKED;
		ev.action = "pause";
		ev.via = "QMP";
		break;
	case CM_EV_CRASHLOADED:
		ev.name = PB_PVPANIC_QMP_CRASH_LOADED;
		ev.action = "run";
		ev.via = "QMP";
		break;
	case CM_EV_RESET:
		ev.guest = true;
		break;
	case CM_EV_ATTACHED:
		ev.run_state = BE_RUN_RUNNING;
		ev.status = "running";
		ev.via = "QMP";
		break;
	case CM_EV_KDUMP_SESSION:
		ev.link = CRASH_LINK_LINKED;
		ev.session = 0x1234;
		break;
	case CM_EV_KDUMP_REPORT:
		ev.report = CRASH_REPORT_START;
		ev.session = 0x1234;
		break;
	case CM_EV_GONE:
		ev.detail = "detached";
		break;
	case CM_EV_FINAL_DONE:
	case CM_EV_FINAL_FAILED:
		ev.detail = "system_reset: the guest boots again";
		break;
	default:
		break;
	}
	return ev;
}

struct row {
	enum crash_state st;
	enum cm_event_type ev;
	enum crash_state want;
	unsigned int actions;
};

/* Every state against every event. */
static const struct row table[] = {
	/* No crash open. */
	{ NONE_, CM_EV_PANIC, SNP, C | S | HI | X | HO | SN },
	{ NONE_, CM_EV_CRASHLOADED, KRN, C | S | HI | AB },
	{ NONE_, CM_EV_RESET, CLO, 0 },
	{ NONE_, CM_EV_SHUTDOWN, CLO, 0 },
	{ NONE_, CM_EV_GONE, CLO, 0 },
	{ NONE_, CM_EV_ATTACHED, CLO, 0 },
	{ NONE_, CM_EV_PANIC_RECORD, CLO, 0 },
	{ NONE_, CM_EV_UNLOAD, CLO, 0 },
	{ NONE_, CM_EV_KDUMP_SESSION, CLO, 0 },
	{ NONE_, CM_EV_KDUMP_REPORT, CLO, 0 },
	{ NONE_, CM_EV_BOOTED, CLO, 0 },
	{ NONE_, CM_EV_KDUMP_BOUND, CLO, 0 },
	{ NONE_, CM_EV_KDUMP_WATCH, CLO, 0 },
	{ NONE_, CM_EV_SNAPSHOT_DONE, CLO, 0 },
	{ NONE_, CM_EV_SNAPSHOT_FAILED, CLO, 0 },
	{ NONE_, CM_EV_RESUME_DONE, CLO, 0 },
	{ NONE_, CM_EV_RESUME_FAILED, CLO, 0 },
	{ NONE_, CM_EV_FINAL_DONE, CLO, 0 },
	{ NONE_, CM_EV_FINAL_FAILED, CLO, 0 },
	{ NONE_, CM_EV_DAEMON_RESUMED, CLO, 0 },

	{ DET, CM_EV_PANIC, DET, D | S },
	{ DET, CM_EV_CRASHLOADED, DET, D | S },
	{ DET, CM_EV_RESET, DET, 0 },
	{ DET, CM_EV_SHUTDOWN, DET, 0 },
	{ DET, CM_EV_GONE, DET, X | S | HI },
	{ DET, CM_EV_ATTACHED, CLO, HI | S | X | CL },
	{ DET, CM_EV_PANIC_RECORD, DET, S },
	{ DET, CM_EV_UNLOAD, DET, 0 },
	{ DET, CM_EV_KDUMP_SESSION, DET, S | KS | XW },
	{ DET, CM_EV_KDUMP_REPORT, DET, S | KS | XW },
	{ DET, CM_EV_BOOTED, DET, 0 },
	{ DET, CM_EV_KDUMP_BOUND, DET, 0 },
	{ DET, CM_EV_KDUMP_WATCH, DET, 0 },
	{ DET, CM_EV_SNAPSHOT_DONE, DET, 0 },
	{ DET, CM_EV_SNAPSHOT_FAILED, DET, 0 },
	{ DET, CM_EV_RESUME_DONE, DET, 0 },
	{ DET, CM_EV_RESUME_FAILED, DET, 0 },
	{ DET, CM_EV_FINAL_DONE, CLO, X | S | HI | CL },
	{ DET, CM_EV_FINAL_FAILED, CLO, X | S | HI | CL },
	{ DET, CM_EV_DAEMON_RESUMED, DET, HI | S | AS },

	{ HLD, CM_EV_PANIC, HLD, D | S },
	{ HLD, CM_EV_CRASHLOADED, HLD, D | S },
	{ HLD, CM_EV_RESET, HLD, 0 },
	{ HLD, CM_EV_SHUTDOWN, HLD, 0 },
	{ HLD, CM_EV_GONE, HLD, X | S | HI },
	{ HLD, CM_EV_ATTACHED, CLO, HI | S | X | CL },
	{ HLD, CM_EV_PANIC_RECORD, HLD, S },
	{ HLD, CM_EV_UNLOAD, HLD, 0 },
	{ HLD, CM_EV_KDUMP_SESSION, HLD, S | KS | XW },
	{ HLD, CM_EV_KDUMP_REPORT, HLD, S | KS | XW },
	{ HLD, CM_EV_BOOTED, HLD, 0 },
	{ HLD, CM_EV_KDUMP_BOUND, HLD, 0 },
	{ HLD, CM_EV_KDUMP_WATCH, HLD, 0 },
	{ HLD, CM_EV_SNAPSHOT_DONE, HLD, 0 },
	{ HLD, CM_EV_SNAPSHOT_FAILED, HLD, 0 },
	{ HLD, CM_EV_RESUME_DONE, HLD, 0 },
	{ HLD, CM_EV_RESUME_FAILED, HLD, 0 },
	{ HLD, CM_EV_FINAL_DONE, CLO, X | S | HI | CL },
	{ HLD, CM_EV_FINAL_FAILED, CLO, X | S | HI | CL },
	{ HLD, CM_EV_DAEMON_RESUMED, HLD, HI | S | AS },

	/* In kdump: ks none, the session deadline pending. */
	{ KRN, CM_EV_PANIC, SNP, X | S | HI | HO | SN },
	{ KRN, CM_EV_CRASHLOADED, KRN, D | S },
	{ KRN, CM_EV_RESET, CLO, X | S | HI | CL },
	{ KRN, CM_EV_SHUTDOWN, KFI, X | S | HI | RS },
	{ KRN, CM_EV_GONE, KRN, X | S | HI },
	{ KRN, CM_EV_ATTACHED, KRN, HI | S | AB | AW },
	{ KRN, CM_EV_PANIC_RECORD, KRN, S },
	{ KRN, CM_EV_UNLOAD, KRN, 0 },
	{ KRN, CM_EV_KDUMP_SESSION, KRN, S | KS | XW | AW },
	{ KRN, CM_EV_KDUMP_REPORT, KRN, S | KS | XW | AW },
	{ KRN, CM_EV_BOOTED, KRN, 0 },
	{ KRN, CM_EV_KDUMP_BOUND, SNP, HU | X | S | HI | HO | SN },
	{ KRN, CM_EV_KDUMP_WATCH, SNP, HU | X | S | HI | HO | SN },
	{ KRN, CM_EV_SNAPSHOT_DONE, KRN, 0 },
	{ KRN, CM_EV_SNAPSHOT_FAILED, KRN, 0 },
	{ KRN, CM_EV_RESUME_DONE, KRN, 0 },
	{ KRN, CM_EV_RESUME_FAILED, KRN, 0 },
	{ KRN, CM_EV_FINAL_DONE, CLO, X | S | HI | CL },
	{ KRN, CM_EV_FINAL_FAILED, CLO, X | S | HI | CL },
	{ KRN, CM_EV_DAEMON_RESUMED, KRN, HI | S | AS },

	{ KFI, CM_EV_PANIC, KFI, D | S },
	{ KFI, CM_EV_CRASHLOADED, KFI, D | S },
	{ KFI, CM_EV_RESET, KFI, 0 },
	{ KFI, CM_EV_SHUTDOWN, KFI, 0 },
	{ KFI, CM_EV_GONE, KFI, X | S | HI },
	{ KFI, CM_EV_ATTACHED, CLO, HI | S | X | CL },
	{ KFI, CM_EV_PANIC_RECORD, KFI, S },
	{ KFI, CM_EV_UNLOAD, KFI, 0 },
	{ KFI, CM_EV_KDUMP_SESSION, KFI, S | KS | XW },
	{ KFI, CM_EV_KDUMP_REPORT, KFI, S | KS | XW },
	{ KFI, CM_EV_BOOTED, KFI, 0 },
	{ KFI, CM_EV_KDUMP_BOUND, KFI, 0 },
	{ KFI, CM_EV_KDUMP_WATCH, KFI, 0 },
	{ KFI, CM_EV_SNAPSHOT_DONE, KFI, 0 },
	{ KFI, CM_EV_SNAPSHOT_FAILED, KFI, 0 },
	{ KFI, CM_EV_RESUME_DONE, KFI, 0 },
	{ KFI, CM_EV_RESUME_FAILED, KFI, 0 },
	{ KFI, CM_EV_FINAL_DONE, CLO, X | S | HI | CL },
	{ KFI, CM_EV_FINAL_FAILED, CLO, X | S | HI | CL },
	{ KFI, CM_EV_DAEMON_RESUMED, KFI, HI | S | AS },

	{ KFA, CM_EV_PANIC, KFA, D | S },
	{ KFA, CM_EV_CRASHLOADED, KFA, D | S },
	{ KFA, CM_EV_RESET, KFA, 0 },
	{ KFA, CM_EV_SHUTDOWN, KFA, 0 },
	{ KFA, CM_EV_GONE, KFA, X | S | HI },
	{ KFA, CM_EV_ATTACHED, CLO, HI | S | X | CL },
	{ KFA, CM_EV_PANIC_RECORD, KFA, S },
	{ KFA, CM_EV_UNLOAD, KFA, 0 },
	{ KFA, CM_EV_KDUMP_SESSION, KFA, S | KS | XW },
	{ KFA, CM_EV_KDUMP_REPORT, KFA, S | KS | XW },
	{ KFA, CM_EV_BOOTED, KFA, 0 },
	{ KFA, CM_EV_KDUMP_BOUND, KFA, 0 },
	{ KFA, CM_EV_KDUMP_WATCH, KFA, 0 },
	{ KFA, CM_EV_SNAPSHOT_DONE, KFA, 0 },
	{ KFA, CM_EV_SNAPSHOT_FAILED, KFA, 0 },
	{ KFA, CM_EV_RESUME_DONE, KFA, 0 },
	{ KFA, CM_EV_RESUME_FAILED, KFA, 0 },
	{ KFA, CM_EV_FINAL_DONE, CLO, X | S | HI | CL },
	{ KFA, CM_EV_FINAL_FAILED, CLO, X | S | HI | CL },
	{ KFA, CM_EV_DAEMON_RESUMED, KFA, HI | S | AS },

	{ KTO, CM_EV_PANIC, KTO, D | S },
	{ KTO, CM_EV_CRASHLOADED, KTO, D | S },
	{ KTO, CM_EV_RESET, KTO, 0 },
	{ KTO, CM_EV_SHUTDOWN, KTO, 0 },
	{ KTO, CM_EV_GONE, KTO, X | S | HI },
	{ KTO, CM_EV_ATTACHED, KTO, HI | S | RS },
	{ KTO, CM_EV_PANIC_RECORD, KTO, S },
	{ KTO, CM_EV_UNLOAD, KTO, 0 },
	{ KTO, CM_EV_KDUMP_SESSION, KTO, S | KS | XW },
	{ KTO, CM_EV_KDUMP_REPORT, KTO, S | KS | XW },
	{ KTO, CM_EV_BOOTED, KTO, 0 },
	{ KTO, CM_EV_KDUMP_BOUND, KTO, 0 },
	{ KTO, CM_EV_KDUMP_WATCH, KTO, 0 },
	{ KTO, CM_EV_SNAPSHOT_DONE, KTO, 0 },
	{ KTO, CM_EV_SNAPSHOT_FAILED, KTO, 0 },
	{ KTO, CM_EV_RESUME_DONE, KTO, 0 },
	{ KTO, CM_EV_RESUME_FAILED, KTO, 0 },
	{ KTO, CM_EV_FINAL_DONE, CLO, X | S | HI | CL },
	{ KTO, CM_EV_FINAL_FAILED, CLO, X | S | HI | CL },
	{ KTO, CM_EV_DAEMON_RESUMED, KTO, HI | S | AS },

	/* A snapshot on the way to the final action (not back into kdump). */
	{ SNP, CM_EV_PANIC, SNP, D | S },
	{ SNP, CM_EV_CRASHLOADED, SNP, D | S },
	{ SNP, CM_EV_RESET, SNP, 0 },
	{ SNP, CM_EV_SHUTDOWN, SNP, 0 },
	{ SNP, CM_EV_GONE, SNP, X | S | HI },
	{ SNP, CM_EV_ATTACHED, CLO, HI | S | X | CL },
	{ SNP, CM_EV_PANIC_RECORD, SNP, S },
	{ SNP, CM_EV_UNLOAD, SNP, 0 },
	{ SNP, CM_EV_KDUMP_SESSION, SNP, S | KS | XW },
	{ SNP, CM_EV_KDUMP_REPORT, SNP, S | KS | XW },
	{ SNP, CM_EV_BOOTED, SNP, 0 },
	{ SNP, CM_EV_KDUMP_BOUND, SNP, 0 },
	{ SNP, CM_EV_KDUMP_WATCH, SNP, 0 },
	{ SNP, CM_EV_SNAPSHOT_DONE, SNP, S | RS },
	{ SNP, CM_EV_SNAPSHOT_FAILED, SNP, S | RS },
	{ SNP, CM_EV_RESUME_DONE, KRN, HI | S | AB | AW },
	{ SNP, CM_EV_RESUME_FAILED, SNP, HI | S | RS },
	{ SNP, CM_EV_FINAL_DONE, CLO, X | S | HI | CL },
	{ SNP, CM_EV_FINAL_FAILED, CLO, X | S | HI | CL },
	{ SNP, CM_EV_DAEMON_RESUMED, SNP, HI | S | AS },
};

static void print_actions(char *buf, size_t len, unsigned int a)
{
	size_t o = 0;

	buf[0] = '\0';
	for (unsigned int bit = 1; bit && o < len; bit <<= 1)
		if (a & bit)
			o += (size_t)snprintf(buf + o, len - o, "%s ", cm_action_name(bit));
}

static void check(const char *what, enum crash_state want, unsigned int want_actions,
		  const struct cm_result *r)
{
	char got_a[256], want_a[256];

	print_actions(got_a, sizeof(got_a), r->actions);
	print_actions(want_a, sizeof(want_a), want_actions);
	if (r->after.state != want || r->actions != want_actions)
		fail_msg("%s: got %s [%s], want %s [%s]", what, crash_state_to_string(r->after.state),
			 got_a, crash_state_to_string(want), want_a);
}

static void test_whole_table(void **state)
{
	static const enum crash_state states[] = { NONE_, DET, HLD, KRN, KFI, KFA, KTO, SNP };

	(void)state;
	for (size_t s = 0; s < ARRAY_SIZE(states); s++) {
		for (int e = 0; e < CM_EV_MAX; e++) {
			const struct row *row = NULL;
			struct cm_crash c = facts_of(states[s]);
			struct cm_event ev = event_of((enum cm_event_type)e);
			struct cm_result r;
			char what[96];

			for (size_t i = 0; i < ARRAY_SIZE(table); i++)
				if (table[i].st == states[s] && table[i].ev == (enum cm_event_type)e)
					row = &table[i];
			snprintf(what, sizeof(what), "%s + %s",
				 states[s] == CLO ? "none" : crash_state_to_string(states[s]),
				 cm_event_name((enum cm_event_type)e));
			if (!row)
				fail_msg("%s: no row in the table", what);
			cm_step(&c, &policy_default, &ev, &r);
			check(what, row->want, row->actions, &r);
			/* A history entry for every decision, and only with one. */
			assert_int_equal(!!(r.actions & HI), r.n_notes > 0);
		}
	}
	/* One row per pair, no more. */
	assert_int_equal(ARRAY_SIZE(table), ARRAY_SIZE(states) * CM_EV_MAX);
}

/* A variant: a crash's facts, an event, a policy, and what must come. */
struct variant {
	const char *what;
	struct cm_crash c;
	struct cm_event ev;
	const struct cm_policy *p;
	enum crash_state want;
	unsigned int actions;
	const char *note;    /* a history text that must be there, or NULL */
	enum crash_ks ks;    /* kdump.state after */
	const char *outcome; /* CLOSE's outcome, or NULL */
};

static struct cm_policy pol(enum final_action fa, enum snapshot_policy sp, bool channel)
{
	struct cm_policy p = policy_default;

	p.final_action = fa;
	p.snapshot = sp;
	p.channel = channel;
	return p;
}

static bool has_note(const struct cm_result *r, const char *text)
{
	for (unsigned int i = 0; i < r->n_notes; i++)
		if (strstr(r->notes[i].text, text))
			return true;
	return false;
}

static void test_variants(void **state)
{
	struct cm_policy never = pol(FINAL_ACTION_RESTART, SNAPSHOT_NEVER, true);
	struct cm_policy always = pol(FINAL_ACTION_RESTART, SNAPSHOT_ALWAYS, true);
	struct cm_policy preserve = pol(FINAL_ACTION_PRESERVE, SNAPSHOT_NEVER, true);
	struct cm_policy poweroff = pol(FINAL_ACTION_POWEROFF, SNAPSHOT_ON_KDUMP_FAILURE, true);
	struct cm_policy nochan = pol(FINAL_ACTION_RESTART, SNAPSHOT_ON_KDUMP_FAILURE, false);
	struct cm_crash none = facts_of(NONE_), krn = facts_of(KRN), snp = facts_of(SNP);
	struct cm_crash krn_run = krn, krn_done = krn, kfi_down = facts_of(KFI);
	struct cm_crash none_known = none, snp_kdump = snp, hld_preserve = facts_of(HLD);
	struct cm_event panic_off = event_of(CM_EV_PANIC), att_panicked = event_of(CM_EV_ATTACHED);
	struct cm_event att_preserved, att_pending = event_of(CM_EV_ATTACHED);
	struct cm_event done = event_of(CM_EV_KDUMP_REPORT), failed = done;
	struct cm_event refused = event_of(CM_EV_KDUMP_SESSION), booted = event_of(CM_EV_BOOTED);
	struct cm_event snapfail = event_of(CM_EV_SNAPSHOT_FAILED);
	struct cm_event att_unknown = event_of(CM_EV_ATTACHED);

	(void)state;
	krn_run.ks = CRASH_KS_RUNNING;
	krn_done.ks = CRASH_KS_DONE;
	krn_done.watch_pending = false;
	kfi_down.guest_down = true;
	none_known.crashed_session = true;
	snp_kdump.resume_kdump = true;
	hld_preserve.final_action = FINAL_ACTION_PRESERVE;
	panic_off.action = "poweroff";
	att_panicked.run_state = BE_RUN_PANICKED;
	att_panicked.status = "guest-panicked";
	att_preserved = att_panicked;
	att_preserved.preserved = true;
	att_pending.panic_pending = true;
	done.report = CRASH_REPORT_DONE;
	done.bytes = 12345;
	failed.report = CRASH_REPORT_FAILED;
	failed.reason = "makedumpfile exited 1";
	refused.link = CRASH_LINK_REFUSED;
	booted.session = 0xabc;
	snapfail.detail = "stop refused: GenericError: paused already: no snapshot";
	att_unknown.run_state = BE_RUN_UNKNOWN;
	att_unknown.status = "unknown";

	const struct variant vs[] = {
		{ "QEMU powered the VM off itself", none, panic_off, &policy_default, CLO,
		  C | S | HI | X | CL, "QEMU's panic action was 'poweroff'", 0, "failed" },
		{ "held, snapshot=never: straight to the final action", none,
		  event_of(CM_EV_PANIC), &never, HLD, C | S | HI | RS,
		  "QEMU holds the guest (panic action pause)", 0, NULL },
		{ "snapshot=always before kdump", none, event_of(CM_EV_CRASHLOADED), &always,
		  SNP, C | S | HI | X | HO | SN, "before kdump goes on", 0, NULL },
		{ "crash kernel, the crashed session known: a session deadline", none_known,
		  event_of(CM_EV_CRASHLOADED), &policy_default, KRN, C | S | HI | AB | AW,
		  "a crash kernel is loaded", 0, NULL },
		{ "no broker channel: kdump_timeout only", none_known,
		  event_of(CM_EV_CRASHLOADED), &nochan, KRN, C | S | HI | AB, NULL, 0, NULL },
		{ "found panicked at attach", none, att_panicked, &policy_default, HLD,
		  C | S | HI | RS, "QEMU holds the guest (status guest-panicked)", 0, NULL },
		{ "the panic a preserved crash left: not a new crash", none, att_preserved,
		  &policy_default, CLO, 0, NULL, 0, NULL },
		{ "a salvaged panic record at attach", none, att_pending, &policy_default, CLO,
		  C | S | HI | X | CL, "found after the fact (VM status running)", 0,
		  "not-needed" },
		{ "panicked at reattach while kdump ran", krn, att_panicked, &policy_default,
		  KFA, HI | S | X | RS, "found guest-panicked at reattach while kdump ran", 0, NULL },
		{ "panicked at reattach, detected", facts_of(DET), att_panicked, &policy_default,
		  HLD, HI | S | RS, "reattached to QMP; VM status guest-panicked", 0, NULL },
		{ "kdump reports done", krn_run, done, &policy_default, KRN, S | KS | XW | HI,
		  "reported done (12345 bytes)", CRASH_KS_DONE, NULL },
		{ "kdump reports failed: the host snapshots", krn_run, failed, &policy_default,
		  SNP, S | KS | XW | HI | X | HO | SN,
		  "reported failure over the broker channel: makedumpfile exited 1",
		  CRASH_KS_FAILED, NULL },
		{ "kdump reports failed, snapshot=never", krn_run, failed, &never, KFA,
		  S | KS | XW | HI | X | RS, "reported failed: makedumpfile exited 1",
		  CRASH_KS_FAILED, NULL },
		{ "a report after done is kept, changes nothing", krn_done,
		  event_of(CM_EV_KDUMP_REPORT), &policy_default, KRN, S, NULL, CRASH_KS_DONE, NULL },
		{ "a refused session", krn, refused, &policy_default, KRN, 0, NULL, 0, NULL },
		{ "booted after done: the reset was missed", krn_done, booted, &policy_default,
		  CLO, X | S | HI | CL, "the kdump kernel's reset was not seen", CRASH_KS_DONE,
		  "not-needed" },
		{ "booted before done: waits on", krn_run, booted, &policy_default, KRN, 0, NULL,
		  CRASH_KS_RUNNING, NULL },
		{ "kdump_timeout after done: no snapshot", krn_done,
		  event_of(CM_EV_KDUMP_BOUND), &policy_default, KTO, X | S | HI | RS,
		  "reported done, so the host takes no snapshot", CRASH_KS_DONE, NULL },
		{ "kdump_timeout with the session running: hung", krn_run,
		  event_of(CM_EV_KDUMP_BOUND), &never, KTO, HU | X | S | HI | RS,
		  "no reboot from the kdump kernel within 600 s", CRASH_KS_HUNG, NULL },
		{ "silent session: hung", krn_run, event_of(CM_EV_KDUMP_WATCH), &never, KTO,
		  HU | X | S | HI | RS, "kdump hung: no progress for 300 s", CRASH_KS_HUNG, NULL },
		{ "no session: hung", krn, event_of(CM_EV_KDUMP_WATCH), &never, KTO,
		  HU | X | S | HI | RS, "kdump hung: no kdump session within 120 s",
		  CRASH_KS_HUNG, NULL },
		{ "preserve", hld_preserve, event_of(CM_EV_FINAL_DONE), &preserve, CLO,
		  X | S | HI | CL, NULL, 0, "applied" },
		{ "snapshot ends, preserve", hld_preserve, event_of(CM_EV_ATTACHED), &preserve, CLO,
		  HI | S | X | CL, "restarted outside panicbroker", 0, "not-needed" },
		{ "snapshot done, poweroff", snp, event_of(CM_EV_SNAPSHOT_DONE), &poweroff, SNP,
		  S | PO, NULL, 0, NULL },
		{ "snapshot refused its pause: noted", snp, snapfail, &policy_default, SNP,
		  S | HI | RS, "stop refused: GenericError: paused already: no snapshot", 0, NULL },
		{ "snapshot before kdump: back into kdump", snp_kdump,
		  event_of(CM_EV_SNAPSHOT_DONE), &always, SNP, S | RE, NULL, 0, NULL },
		{ "attached, state unknown: nothing decided", krn, att_unknown, &policy_default,
		  KRN, 0, NULL, 0, NULL },
		{ "powered off from kdump: restart", kfi_down, event_of(CM_EV_ATTACHED),
		  &policy_default, KFI, HI | S | RS, NULL, 0, NULL },
	};

	for (size_t i = 0; i < ARRAY_SIZE(vs); i++) {
		struct cm_crash c = vs[i].c;
		struct cm_event ev = vs[i].ev;
		struct cm_result r;

		if (vs[i].p->final_action != FINAL_ACTION_RESTART && c.state != CRASH_CLOSED)
			c.final_action = vs[i].p->final_action;
		cm_step(&c, vs[i].p, &ev, &r);
		check(vs[i].what, vs[i].want, vs[i].actions, &r);
		if (vs[i].note && !has_note(&r, vs[i].note))
			fail_msg("%s: no note '%s'", vs[i].what, vs[i].note);
		if (vs[i].ks)
			assert_int_equal(r.after.ks, vs[i].ks);
		if (vs[i].outcome)
			assert_string_equal(r.outcome, vs[i].outcome);
	}
}

/* Deadlines are computed from the event's time and the policy. */
static void test_deadlines(void **state)
{
	struct cm_crash c = facts_of(NONE_);
	struct cm_event ev = event_of(CM_EV_CRASHLOADED);
	struct cm_result r;

	(void)state;
	c.crashed_session = true;
	cm_step(&c, &policy_default, &ev, &r);
	assert_int_equal(r.bound_usec, NOW_USEC + 600 * USEC_PER_SEC);
	assert_int_equal(r.watch_usec, NOW_USEC + 120 * USEC_PER_SEC);
	assert_true(r.after.kdump_loaded);
	assert_string_equal(r.create_event, PB_PVPANIC_QMP_CRASH_LOADED);
	assert_string_equal(r.create_source, "QMP event GUEST_CRASHLOADED, action run");

	c = facts_of(KRN);
	ev = event_of(CM_EV_KDUMP_SESSION);
	cm_step(&c, &policy_default, &ev, &r);
	assert_int_equal(r.watch_usec, NOW_USEC + 300 * USEC_PER_SEC);
	assert_int_equal(r.after.ks, CRASH_KS_RUNNING);
	assert_true(r.after.watch_pending);
}

/* The machine's verdict on a KDUMP session's claim to the crash. */
static void test_kdump_link(void **state)
{
	const uint64_t closed[] = { 0x77 };
	char why[256];

	(void)state;
	assert_int_equal(cm_kdump_link(0x42, true, 0x42, closed, 1, why, sizeof(why)),
			 CRASH_LINK_LINKED);
	assert_int_equal(cm_kdump_link(0x42, true, 0x77, closed, 1, why, sizeof(why)),
			 CRASH_LINK_REFUSED);
	assert_non_null(strstr(why, "already closed"));
	assert_int_equal(cm_kdump_link(0x42, true, 0x99, closed, 1, why, sizeof(why)),
			 CRASH_LINK_UNLINKED);
	assert_int_equal(cm_kdump_link(0x42, false, 0x99, closed, 1, why, sizeof(why)),
			 CRASH_LINK_REFUSED);
	assert_non_null(strstr(why, "without a crash kernel loaded"));
	assert_int_equal(cm_kdump_link(0, true, 0, NULL, 0, why, sizeof(why)),
			 CRASH_LINK_UNLINKED);
	assert_non_null(strstr(why, "prev_session 0"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whole_table),
		cmocka_unit_test(test_variants),
		cmocka_unit_test(test_deadlines),
		cmocka_unit_test(test_kdump_link),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
