// SPDX-License-Identifier: GPL-2.0-only
/*
 * panicbroker: the broker channel's steps in the hypervisor tier
 * (protocol/SPEC.md §4.3). Panic context: no allocation, no sleeping, no
 * lock, every wait bounded. Everything used here was set up at load: the
 * log buffer below and the session view published by pb_chan.c.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/kernel.h>
#include <linux/kmsg_dump.h>
#include <linux/panic.h>
#include <linux/string.h>
#include <linux/timekeeping.h>
#include <linux/vmalloc.h>

#include "panicbroker.h"

/*
 * Room for a little more log than the slot takes, so that the library can
 * tell that older lines were left out (LOG_TRUNCATED).
 */
#define PB_CHAN_LOGBUF_SIZE	(PB_MBOX_PANIC_LOG_MAX + PB_MBOX_PAGE)

/* Poll step of the wait for UNLOAD_ACK. */
#define PB_CHAN_ACK_STEP_US	5

static char *pb_chan_logbuf;

int pb_chan_panic_init(void)
{
	pb_chan_logbuf = vmalloc(PB_CHAN_LOGBUF_SIZE);
	return pb_chan_logbuf ? 0 : -ENOMEM;
}

void pb_chan_panic_exit(void)
{
	vfree(pb_chan_logbuf);
	pb_chan_logbuf = NULL;
}

/* The last occurrence of @needle in @buf[0..len), or NULL. */
static const char *pb_chan_last(const char *buf, size_t len,
				const char *needle)
{
	size_t n = strlen(needle);
	const char *found = NULL;
	const char *p = buf;
	const char *end = buf + len;

	while (end - p >= (ptrdiff_t)n) {
		p = memchr(p, needle[0], end - p - n + 1);
		if (!p)
			break;
		if (!memcmp(p, needle, n))
			found = p;
		p++;
	}
	return found;
}

/*
 * The panic message, from the log: panic() prints "Kernel panic - not
 * syncing: MSG" before it calls __crash_kexec(). An oops that goes to kdump
 * directly never calls panic(); its first line ("BUG: ...", "Oops: ...")
 * says what happened instead.
 */
static void pb_chan_find_msg(const char *log, size_t len, bool from_oops,
			     const char **msg, u32 *msg_len)
{
	static const char *const oops_heads[] = {
		"BUG: ", "Oops: ", "general protection fault", "kernel BUG at",
	};
	static const char panic_head[] = "Kernel panic - not syncing: ";
	const char *best = NULL, *p, *nl;
	unsigned int i;

	if (!from_oops) {
		best = pb_chan_last(log, len, panic_head);
		if (best)
			best += sizeof(panic_head) - 1;
	} else {
		for (i = 0; i < ARRAY_SIZE(oops_heads); i++) {
			p = pb_chan_last(log, len, oops_heads[i]);
			if (p > best)
				best = p;
		}
	}
	*msg = NULL;
	*msg_len = 0;
	if (!best)
		return;
	nl = memchr(best, '\n', log + len - best);
	*msg = best;
	*msg_len = (nl ? nl : log + len) - best;
}

static u64 pb_chan_taint(void)
{
	u64 taint = 0;
	unsigned int i;

	for (i = 0; i < TAINT_FLAGS_COUNT && i < 64; i++)
		if (test_taint(i))
			taint |= BIT_ULL(i);
	return taint;
}

/*
 * Wait for UNLOAD_ACK, at most @ms by the clock. udelay() cannot be the
 * measure: it is calibrated loosely in virtual machines (under TCG it runs
 * many times too fast). If the clock stops moving, give up after
 * PB_CLOCK_STUCK_STEPS steps (pb_clock.c). Returns the time waited in
 * microseconds.
 */
static u32 pb_chan_wait_ack(const void *base, u64 session, u32 seq, u32 ms,
			    bool *acked)
{
	struct pb_clock_wait w;

	pb_clock_wait_start(&w, (u64)ms * USEC_PER_MSEC);
	*acked = false;
	do {
		if (pb_mbox_unload_acked(base, session, seq)) {
			*acked = true;
			break;
		}
		udelay(PB_CHAN_ACK_STEP_US);
	} while (pb_clock_wait_more(&w));
	return pb_clock_us_since(w.start);
}

/**
 * pb_chan_panic() - the panic record and the UNLOAD handshake
 * @a: what the tier knows of the crash
 * @res: what happened, for the summary line and pb_chan_panic_timing()
 *
 * Fills the panic slot, posts UNLOAD and, if the host has accepted the
 * session, waits a bounded time for its UNLOAD_ACK. A kdump kernel's
 * session never touches the slot: it belongs to the kernel that crashed.
 */
void pb_chan_panic(const struct pb_chan_panic_args *a,
		   struct pb_chan_result *res)
{
	const struct pb_chan_view *v = pb_chan_view_get();
	struct pb_mbox_panic_info info = { };
	struct pb_mbox_guest_info gi;
	struct pb_mbox_host_info h;
	struct kmsg_dump_iter iter;
	size_t log_len = 0;
	const char *msg;
	u32 msg_len;
	int ret;

	memset(res, 0, sizeof(*res));
	if (!v || !pb_chan_logbuf || v->gi.role != PB_MBOX_ROLE_NORMAL)
		return;
	res->used = true;
	res->slot = v->slot;
	res->session = v->gi.session_id;

	kmsg_dump_rewind(&iter);
	kmsg_dump_get_buffer(&iter, false, pb_chan_logbuf, PB_CHAN_LOGBUF_SIZE,
			     &log_len);
	pb_chan_find_msg(pb_chan_logbuf, log_len, a->from_oops, &msg, &msg_len);

	info.uptime_ns = ktime_get_boot_fast_ns();
	info.taint = pb_chan_taint();
	info.cpu = a->cpu;
	if (a->crash_loaded)
		info.flags |= PB_MBOX_PANIC_CRASH_LOADED;
	if (a->from_oops)
		info.flags |= PB_MBOX_PANIC_FROM_OOPS;
	ret = pb_mbox_panic_write(v->slot, v->slot_size, res->session, 1,
				  &info, msg, msg_len, pb_chan_logbuf, log_len);
	if (ret < 0)
		res->record_err = ret;
	else
		res->record_bytes = ret;

	/* UNLOAD: our private copy, whole, with the next seq. */
	gi = v->gi;
	gi.state = PB_MBOX_GUEST_UNLOADING;
	gi.unload_seq++;
	pb_mbox_guest_ctl_write(v->base, &gi);

	res->wait_limit_ms = v->unload_wait_ms;
	pb_mbox_host_ctl_read(v->base, &h);
	if (h.state != PB_MBOX_HOST_ACTIVE || h.accepted_session != gi.session_id ||
	    !res->wait_limit_ms)
		return;
	res->waited = true;
	res->wait_us = pb_chan_wait_ack(v->base, gi.session_id, gi.unload_seq,
					res->wait_limit_ms, &res->acked);
	if (res->acked) {
		gi.state = PB_MBOX_GUEST_UNLOADED;
		pb_mbox_guest_ctl_write(v->base, &gi);
	}
}

/* The slot's advisory timings, written after the handshake (SPEC §4.3). */
void pb_chan_panic_timing(const struct pb_chan_result *res, u32 tier_us)
{
	if (!res->used || res->record_err)
		return;
	pb_mbox_panic_set_timing(res->slot, tier_us,
				 res->acked ? res->wait_us : ~0u);
}
