/* SPDX-License-Identifier: MIT */
/*
 * One rate limiter for every "at most N per interval" rule of the daemon:
 * log lines, record saves, guest input that costs work. Pure: the caller
 * passes the time (CLOCK_MONOTONIC), so it is tested without a clock.
 *
 * A window opens at the first check and lasts interval_usec; within it the
 * first @burst checks pass and the rest fail (and are counted in
 * suppressed, which the caller may report when the next one passes).
 */
#ifndef PB_RATELIMIT_H
#define PB_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct ratelimit {
	uint64_t interval_usec;
	unsigned int burst;
	/* state */
	uint64_t begin_usec;
	unsigned int count;
	bool started;
	uint64_t suppressed;
};

#define RATELIMIT_INIT(interval, n) { .interval_usec = (interval), .burst = (n) }

/* True when one more may happen at @now_usec (and counts it). */
static inline bool ratelimit_below(struct ratelimit *rl, uint64_t now_usec)
{
	if (!rl->started || now_usec - rl->begin_usec >= rl->interval_usec) {
		rl->started = true;
		rl->begin_usec = now_usec;
		rl->count = 0;
	}
	if (rl->count < rl->burst) {
		rl->count++;
		return true;
	}
	rl->suppressed++;
	return false;
}

/* The limiter as new: the next check opens a window. */
static inline void ratelimit_reset(struct ratelimit *rl)
{
	rl->started = false;
	rl->count = 0;
}

/* When the current window ends (the next check that may pass). */
static inline uint64_t ratelimit_window_end(const struct ratelimit *rl)
{
	return rl->started ? rl->begin_usec + rl->interval_usec : 0;
}

#endif
