// SPDX-License-Identifier: MIT
/*
 * The broker channel's poller: one timer per event loop looks at every
 * started mailbox (hostd/chan_internal.h says the contract).
 *
 * Why one sweep and a quick check, not a timer and a full look per mailbox:
 * a guest keeps its session open for as long as it runs, and its panic tier
 * waits for the UNLOAD_ACK (PB_MBOX_UNLOAD_WAIT_MS, 100 ms) before pvpanic
 * can tell the host anything, so every open mailbox must be looked at often.
 * A full look is a stat() of the file, a CRC over the guest control block,
 * the ring indices and a re-armed timer: about 7 µs, which at 1,000 guests
 * looked at every 10 ms was most of a core (tests/bench/README.md), spent
 * finding that nothing changed. Nearly always nothing did: an open session
 * is quiet until its guest panics. So a quiet channel gets a quick check
 * every PB_MBOX_HOST_QUIET_POLL_MS: the two things a guest writes to say
 * something (its control block and its g2h producer index, SPEC §4)
 * compared with their bytes at the start of the last full look, and the
 * heartbeat. It is looked at fully only when they differ, when it is in one
 * of its fast states (chan_fast(), every tick), or once every
 * CHAN_SWEEP_FULL_USEC (the file's size). Nothing can be missed: a change
 * made during a full look differs from the bytes taken before it, so the
 * next check looks again.
 *
 * What is left is memory latency: each check is a TLB miss and two cache
 * misses, a few hundred ns under a hypervisor. So one sweep checks every
 * channel once a quiet period (25 wake-ups a second, not one per channel),
 * prefetching a few checks ahead so that the misses overlap, and reads the
 * header pages through their second mapping side by side (chan_peek.c).
 * Between sweeps, ticks of PB_MBOX_HOST_POLL_MS look at the fast channels
 * only, while there are any. The doorbell that would remove the polling
 * (ivshmem-doorbell, the daemon its server) is argued against in SPEC §4.
 *
 * Channels are kept in an array (no allocation per tick, cache-friendly);
 * one removed during a sweep (a callback of a look may free a channel) is
 * set to NULL and the array compacted after the sweep.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chan_internal.h"
#include "common.h"
#include "evutil.h"
#include "log.h"

#define CHAN_SWEEP_FAST_USEC (PB_MBOX_HOST_POLL_MS * USEC_PER_MSEC)
#define CHAN_SWEEP_QUIET_USEC (PB_MBOX_HOST_QUIET_POLL_MS * USEC_PER_MSEC)
/* A full look at every mailbox at least this often, whatever the quick check says. */
#define CHAN_SWEEP_FULL_USEC (10 * USEC_PER_SEC)
#define CHAN_SWEEP_FULL_SWEEPS (CHAN_SWEEP_FULL_USEC / CHAN_SWEEP_QUIET_USEC)
/* How many channels ahead a sweep asks for the memory of those it will check. */
#define CHAN_SWEEP_PREFETCH 8

/*
 * A started channel, its header page's address for prefetching, and
 * chan_fast() as of its last look: a tick reads only this array, and the
 * channels (and mailboxes) whose turn it is.
 */
struct chan_sweep_slot {
	struct chan *c;
	const uint8_t *hdr;
	bool fast;
};

struct chan_sweep {
	sd_event *event;
	sd_event_source *timer;
	struct chan_sweep_slot *v;
	size_t n, cap;
	size_t n_fast;		/* slots with .fast */
	uint64_t quiet_due;	/* when every channel is checked next */
	uint64_t sweeps;	/* of every channel, so far */
	bool sweeping;
	bool holes;		/* NULL entries left by a removal during the sweep */
	struct chan_sweep *next;
};

/* One sweep per event loop: the daemon has one, the unit tests one per test. */
static struct chan_sweep *chan_sweeps;

static struct chan_sweep *chan_sweep_find(sd_event *e)
{
	for (struct chan_sweep *s = chan_sweeps; s; s = s->next)
		if (s->event == e)
			return s;
	return NULL;
}

static void chan_sweep_free(struct chan_sweep *s)
{
	struct chan_sweep **p = &chan_sweeps;

	while (*p != s)
		p = &(*p)->next;
	*p = s->next;
	sd_event_source_disable_unref(s->timer);
	sd_event_unref(s->event);
	free(s->v);
	free(s);
}

/* The bytes a guest writes to say something, as they are now. */
static void chan_sweep_read(struct chan *c, struct chan_watch *w)
{
	const uint64_t *ctl = (const uint64_t *)((const uint8_t *)c->file.peek +
						  PB_MBOX_OFF_GUEST_CTL);
	const uint32_t *prod = (const uint32_t *)((const uint8_t *)c->file.peek +
						   PB_MBOX_OFF_G2H_PROD);

	for (size_t i = 0; i < CHAN_WATCH_WORDS; i++)
		w->ctl[i] = __atomic_load_n(&ctl[i], __ATOMIC_RELAXED);
	w->prod = __atomic_load_n(prod, __ATOMIC_RELAXED);
	w->pad = 0;
}

void chan_sweep_mark(struct chan *c)
{
	chan_sweep_read(c, &c->watch);
	c->watch_valid = true;
}

/* True when the guest wrote nothing since the last full look: heartbeat only. */
static bool chan_sweep_quiet(struct chan *c)
{
	struct chan_watch now;

	if (!c->watch_valid)
		return false;
	chan_sweep_read(c, &now);
	if (c->file.faulted || memcmp(&now, &c->watch, sizeof(now)))
		return false;
	pb_mbox_host_heartbeat(c->file.peek, ++c->heartbeat);	/* a header field */
	return true;
}

static void chan_sweep_compact(struct chan_sweep *s)
{
	size_t k = 0;

	for (size_t i = 0; i < s->n; i++) {
		if (!s->v[i].c)
			continue;
		s->v[k] = s->v[i];
		s->v[k].c->sweep_index = k;
		k++;
	}
	s->n = k;
	s->holes = false;
}

static int chan_sweep_arm(struct chan_sweep *s, uint64_t usec)
{
	int r = sd_event_source_set_time(s->timer, usec);

	if (r >= 0)
		r = sd_event_source_set_enabled(s->timer, SD_EVENT_ONESHOT);
	return r;
}

/* A tick: every channel when the quiet period is over, else the fast ones. */
static int chan_sweep_on_timer(sd_event_source *src, uint64_t usec, void *ud)
{
	struct chan_sweep *s = ud;
	bool all = usec >= s->quiet_due;
	uint64_t sweep = s->sweeps, next;
	int r;

	(void)src;
	if (all) {
		s->sweeps++;
		s->quiet_due = usec + CHAN_SWEEP_QUIET_USEC;
	}
	s->sweeping = true;
	/* s->n may grow during the sweep (a channel started by a callback). */
	for (size_t i = 0; i < s->n; i++) {
		struct chan_sweep_slot *slot = &s->v[i];
		struct chan *c = slot->c;

		if (!c || (!all && !slot->fast))
			continue;
		/* Each check is a TLB miss and two cache misses: ask for the
		 * memory of a few channels ahead, so that the misses overlap. */
		if (all && i + CHAN_SWEEP_PREFETCH < s->n && s->v[i + CHAN_SWEEP_PREFETCH].c) {
			const struct chan_sweep_slot *a = &s->v[i + CHAN_SWEEP_PREFETCH];

			__builtin_prefetch(a->hdr + PB_MBOX_OFF_GUEST_CTL);
			__builtin_prefetch(a->hdr + PB_MBOX_OFF_G2H_PROD);
			__builtin_prefetch(&a->c->watch);
		}
		if (!c->file.map)
			continue;
		if (!slot->fast && (sweep + i) % CHAN_SWEEP_FULL_SWEEPS != 0 && chan_sweep_quiet(c))
			continue;
		chan_look(c, false);	/* updates slot->fast (chan_sweep_update()) */
	}
	s->sweeping = false;
	if (s->holes)
		chan_sweep_compact(s);
	if (!s->n) {
		chan_sweep_free(s);
		return 0;
	}
	next = s->quiet_due;
	if (s->n_fast && usec + CHAN_SWEEP_FAST_USEC < next)
		next = usec + CHAN_SWEEP_FAST_USEC;
	r = chan_sweep_arm(s, next);
	if (r < 0)
		log_error("mailboxes: cannot re-arm the poll timer: %s; looked at only on pvpanic events from now on",
			  strerror(-r));
	return 0;
}

int chan_sweep_add(struct chan *c)
{
	struct chan_sweep *s = chan_sweep_find(c->event);
	int r;

	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return -ENOMEM;
		r = sd_event_add_time_relative(c->event, &s->timer, CLOCK_MONOTONIC,
					       CHAN_SWEEP_FAST_USEC, USEC_PER_MSEC,
					       chan_sweep_on_timer, s);
		if (r < 0) {
			free(s);
			return r;
		}
		s->event = sd_event_ref(c->event);
		s->next = chan_sweeps;
		chan_sweeps = s;
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 16;
		struct chan_sweep_slot *v = reallocarray(s->v, cap, sizeof(*v));

		if (!v) {
			if (!s->n)
				chan_sweep_free(s);
			return -ENOMEM;
		}
		s->v = v;
		s->cap = cap;
	}
	c->sweep_index = s->n;
	s->v[s->n++] = (struct chan_sweep_slot){ .c = c, .hdr = c->file.peek };
	c->sweep = s;
	chan_sweep_update(c);
	return 0;
}

void chan_sweep_update(struct chan *c)
{
	struct chan_sweep *s = c->sweep;
	struct chan_sweep_slot *slot;
	uint64_t now, next = 0;
	bool fast = chan_fast(c);

	if (!s)
		return;
	slot = &s->v[c->sweep_index];
	if (slot->fast == fast)
		return;
	slot->fast = fast;
	if (!fast) {
		s->n_fast--;
		return;
	}
	s->n_fast++;
	/* Bring the next tick forward to the fast period (a sweep arms its own). */
	if (s->sweeping)
		return;
	now = ev_now_usec(s->event);
	if (sd_event_source_get_time(s->timer, &next) >= 0 && next <= now + CHAN_SWEEP_FAST_USEC)
		return;
	if (chan_sweep_arm(s, now + CHAN_SWEEP_FAST_USEC) < 0)
		log_warn("VM %s: mailbox: cannot bring the poll forward; looked at within %u ms",
			 c->vm, PB_MBOX_HOST_QUIET_POLL_MS);
}

void chan_sweep_remove(struct chan *c)
{
	struct chan_sweep *s = c->sweep;

	if (!s)
		return;
	c->sweep = NULL;
	if (s->v[c->sweep_index].fast)
		s->n_fast--;
	if (s->sweeping) {
		s->v[c->sweep_index].c = NULL;
		s->holes = true;
		return;
	}
	s->v[c->sweep_index] = s->v[--s->n];
	if (c->sweep_index < s->n)
		s->v[c->sweep_index].c->sweep_index = c->sweep_index;
	if (!s->n)
		chan_sweep_free(s);
}
