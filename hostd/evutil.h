/* SPDX-License-Identifier: MIT */
/* Small helpers on the sd-event loop shared by the daemon's modules. */
#ifndef PB_EVUTIL_H
#define PB_EVUTIL_H

#include <stdint.h>
#include <systemd/sd-event.h>

/*
 * CLOCK_MONOTONIC as the loop sees it (the time of the current iteration,
 * or now before the loop first ran). 0 only if the clock is unreadable.
 */
static inline uint64_t ev_now_usec(sd_event *e)
{
	uint64_t now = 0;

	if (sd_event_now(e, CLOCK_MONOTONIC, &now) < 0)
		return 0;
	return now;
}

#endif
