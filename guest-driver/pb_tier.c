// SPDX-License-Identifier: GPL-2.0-only
/*
 * panicbroker: the hypervisor tier.
 *
 * Everything that must reach the host before the crash kernel starts (or
 * before a guest without one stops for good) runs here, once per boot, on
 * whichever CPU gets here first. We may be called from the panic path, from
 * an oops, or from NMI, with other CPUs still running and possibly in here
 * too, so the rules are strict: no allocation, no sleeping, no lock that
 * another CPU may hold, every wait bounded, one line of output.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/delay.h>
#include <linux/kernel.h>
#include <linux/kexec.h>
#include <linux/smp.h>
#include <linux/timekeeping.h>

#include <panicbroker/pvpanic.h>

#include "panicbroker.h"

/*
 * pb_tier_state is PB_TIER_ARMED until some CPU claims the tier, then that
 * CPU's number while it runs the tier, then PB_TIER_DONE for good.
 */
#define PB_TIER_ARMED		(-1)
#define PB_TIER_DONE		(-2)

/*
 * How long a CPU that lost the race waits for the winner before going on
 * into kdump anyway: the tier's own work (microseconds, plus up to a few
 * milliseconds to copy the log) with margin, on top of the longest the
 * winner may wait for the host's UNLOAD_ACK (pb_chan_budget_us()).
 */
#define PB_TIER_WAIT_US		5000

static atomic_t pb_tier_state = ATOMIC_INIT(PB_TIER_ARMED);
static const struct pb_pvpanic *pb_tier_dev;

/* What one run of the tier did, for the summary line. */
struct pb_tier_ctx {
	enum pb_tier_caller from;
	bool from_oops;
	int cpu;
	u64 start_ns;
	bool crash_loaded;
	struct pb_chan_result chan;
	u8 event;		/* the pvpanic event to write, 0 for none */
	const char *reason;	/* why none, if event is 0 */
};

static const char *const pb_tier_callers[] = {
	[PB_FROM_KPROBE] = "kprobe",
	[PB_FROM_NOTIFIER] = "panic notifier",
};

/* Set up before the hooks are registered; see struct pb_pvpanic. */
void pb_tier_arm(const struct pb_pvpanic *pv)
{
	pb_tier_dev = pv;
}

/*
 * Decide which pvpanic event to send, if any. With a crash kernel loaded
 * the only acceptable event is CRASH_LOADED: PANICKED would make the host
 * stop the guest and kdump would never run, so a device without
 * CRASH_LOADED gets nothing at all.
 */
static void pb_tier_pick_event(struct pb_tier_ctx *ctx)
{
	const struct pb_pvpanic *pv = pb_tier_dev;
	u8 want;

	if (!pv || pv->bus == PB_BUS_NONE) {
		ctx->reason = "no pvpanic device";
		return;
	}

	want = ctx->crash_loaded ? PB_PVPANIC_CRASH_LOADED :
				   PB_PVPANIC_PANICKED;
	if (!(pv->caps & want)) {
		ctx->reason = ctx->crash_loaded ?
			"crash kernel loaded, device lacks CRASH_LOADED" :
			"device lacks PANICKED";
		return;
	}
	ctx->event = want;
}

/* The broker channel's line: what the host got, and how fast it answered. */
static void pb_tier_report_chan(const struct pb_chan_result *r)
{
	if (!r->used)
		return;
	if (r->record_err)
		pr_emerg("broker channel: session %016llx: panic record not written (%d)\n",
			 r->session, r->record_err);
	if (r->acked)
		pr_emerg("broker channel: session %016llx: panic record %u bytes, UNLOAD acked after %u us\n",
			 r->session, r->record_bytes, r->wait_us);
	else if (r->waited)
		pr_emerg("broker channel: session %016llx: panic record %u bytes, UNLOAD not acked within %u ms\n",
			 r->session, r->record_bytes, r->wait_limit_ms);
	else
		pr_emerg("broker channel: session %016llx: panic record %u bytes, UNLOAD posted; host not active, not waiting\n",
			 r->session, r->record_bytes);
}

static void pb_tier_report(const struct pb_tier_ctx *ctx, u32 us)
{
	pb_tier_report_chan(&ctx->chan);
	if (ctx->event)
		pr_emerg("hypervisor tier: signalling %s via %s after %u us (cpu %d, %s)\n",
			 ctx->event == PB_PVPANIC_CRASH_LOADED ?
				"CRASH_LOADED" : "PANICKED",
			 pb_tier_dev->name, us, ctx->cpu,
			 pb_tier_callers[ctx->from]);
	else
		pr_emerg("hypervisor tier: signalling nothing (%s) after %u us (cpu %d, %s)\n",
			 ctx->reason, us, ctx->cpu,
			 pb_tier_callers[ctx->from]);
}

/*
 * The steps of the tier, in order; the broker channel's go before the
 * pvpanic write, because the host acts on that write:
 *
 *   1. fill the panic record into the mailbox's panic slot;
 *   2. post UNLOAD on the broker channel and wait, bounded, for the ACK;
 *   3. note in the slot how long the tier and the wait took;
 *   4. print the summary, then write pvpanic.
 *
 * The summary is printed before the pvpanic write, and that write is the
 * last thing the tier does: on PANICKED the host may stop the guest on
 * that very instruction, and nothing after it would run.
 */
static void pb_tier_steps(struct pb_tier_ctx *ctx)
{
	struct pb_chan_panic_args args;
	u32 us;

	ctx->crash_loaded = kexec_crash_loaded();

	args.cpu = ctx->cpu;
	args.crash_loaded = ctx->crash_loaded;
	args.from_oops = ctx->from_oops;
	pb_chan_panic(&args, &ctx->chan);

	pb_tier_pick_event(ctx);
	us = pb_clock_us_since(ctx->start_ns);
	pb_chan_panic_timing(&ctx->chan, us);
	pb_tier_report(ctx, us);
	if (ctx->event)
		pb_pvpanic_write(pb_tier_dev, ctx->event);
}

/*
 * Another CPU is running the tier. Give it a bounded time to finish, so
 * that we do not race it into kdump before the host has been told; then go
 * on regardless.
 */
static void pb_tier_wait(void)
{
	struct pb_clock_wait w;

	pb_clock_wait_start(&w, PB_TIER_WAIT_US + pb_chan_budget_us());
	while (atomic_read_acquire(&pb_tier_state) != PB_TIER_DONE) {
		udelay(1);
		if (!pb_clock_wait_more(&w))
			return;
	}
}

/**
 * pb_tier_run() - run the hypervisor tier, unless it has run already
 * @from: which hook called us, for the summary line
 * @from_oops: reached from an oops that goes to kdump without panic()
 *
 * Safe to call from any context, any number of times, on any number of
 * CPUs at once. The first caller runs the tier; the others return once it
 * is done, or after PB_TIER_WAIT_US plus the UNLOAD bound, or at once if
 * the tier is running on their own CPU (we interrupted ourselves, say from
 * NMI, and waiting would only burn the budget).
 */
void pb_tier_run(enum pb_tier_caller from, bool from_oops)
{
	struct pb_tier_ctx ctx = {
		.from = from,
		.from_oops = from_oops,
		.cpu = raw_smp_processor_id(),
	};
	int owner;

	owner = atomic_cmpxchg(&pb_tier_state, PB_TIER_ARMED, ctx.cpu);
	if (owner != PB_TIER_ARMED) {
		if (owner != ctx.cpu)
			pb_tier_wait();
		return;
	}

	ctx.start_ns = ktime_get_mono_fast_ns();
	pb_tier_steps(&ctx);
	atomic_set_release(&pb_tier_state, PB_TIER_DONE);
}
