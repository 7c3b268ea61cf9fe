// SPDX-License-Identifier: GPL-2.0-only
/*
 * panicbroker: the clock of the panic path.
 *
 * The tier (pb_tier.c) and the broker channel's UNLOAD wait
 * (pb_chan_panic.c) time themselves and bound their waits here, in panic
 * context, perhaps from NMI. Only ktime_get_mono_fast_ns() is read: it is
 * NMI-safe, takes no lock and never waits for a writer. Nothing else of the
 * module is called from here.
 */

#include <linux/kernel.h>
#include <linux/ktime.h>
#include <linux/math64.h>
#include <linux/minmax.h>
#include <linux/timekeeping.h>

#include "panicbroker.h"

/*
 * Bounded waits in panic context, measured by the NMI-safe monotonic clock
 * (udelay() alone is not a measure in a VM), with a backstop for a clock
 * that has stopped: PB_CLOCK_STUCK_STEPS readings in a row that do not move.
 */
#define PB_CLOCK_STUCK_STEPS	100000

void pb_clock_wait_start(struct pb_clock_wait *w, u64 limit_us)
{
	w->start = ktime_get_mono_fast_ns();
	w->last = w->start;
	w->limit_ns = limit_us * NSEC_PER_USEC;
	w->stuck = 0;
}

/* False once the limit has passed, or the clock is stuck. */
bool pb_clock_wait_more(struct pb_clock_wait *w)
{
	u64 now = ktime_get_mono_fast_ns();

	if (now == w->last) {
		if (++w->stuck >= PB_CLOCK_STUCK_STEPS)
			return false;
	} else {
		w->stuck = 0;
		w->last = now;
	}
	return now - w->start < w->limit_ns;
}

/* Microseconds from @start_ns (ktime_get_mono_fast_ns()) to now, capped. */
u32 pb_clock_us_since(u64 start_ns)
{
	u64 us = div_u64(ktime_get_mono_fast_ns() - start_ns, NSEC_PER_USEC);

	return (u32)min_t(u64, us, U32_MAX - 1);
}
