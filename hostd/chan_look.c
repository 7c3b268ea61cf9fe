// SPDX-License-Identifier: MIT
/*
 * One look at the broker channel (hostd/chan.h, hostd/chan_internal.h):
 * the guest control block, the session's HELLO and ring, the UNLOAD, the
 * panic slot and its advisory timing, read through the pb_mbox_* library's
 * private copies and delivered as typed events.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chan_internal.h"
#include "common.h"
#include "evutil.h"
#include "log.h"
#include "version.h"

/* Polls during which the guest's advisory timing is looked for after a panic record. */
#define CHAN_TIMING_POLLS 200
#define CHAN_CTL_CRC_TRIES 3
/* The longest panic message that goes into the log line. */
#define CHAN_LOG_MSG_MAX 120

_Static_assert(sizeof(PB_VERSION) - 1 <= PB_MBOX_VERSION_STR_MAX,
	       "the daemon's version fits HELLO_ACK");

/*
 * One ring record's copy, shared by every channel: it is decoded into the
 * event's own copy before anything is delivered, and the daemon has one
 * thread, so no two looks use it at once (4 KiB, not 4 KiB per guest).
 */
static uint8_t chan_rec[PB_MBOX_RING_PAYLOAD_MAX];

static uint8_t *chan_slot(const struct chan *c)
{
	return (uint8_t *)c->file.map + le32toh(c->layout.panic_offset);
}

static void chan_emit(struct chan *c, struct chan_event *ev)
{
	c->delivered++;
	c->ops->event(c->ud, ev);
}

/* True when @reason was logged before (the first CHAN_LOGGED_REASONS are kept). */
static bool chan_logged(struct chan *c, const char *reason)
{
	for (unsigned int i = 0; i < c->n_logged; i++)
		if (strcmp(c->logged[i], reason) == 0)
			return true;
	if (c->n_logged < CHAN_LOGGED_REASONS)
		c->logged[c->n_logged++] = reason;
	return false;
}

/* The malformed count, when it changed: the first at once, then one a second. */
static void chan_malformed_report(struct chan *c)
{
	struct chan_event ev = {
		.type = CHAN_EV_MALFORMED,
		.session = c->session,
		.role = c->role,
		.what = c->malformed_what,
		.reason = c->malformed_reason,
		.count = c->malformed,
	};

	if (!c->started || c->malformed == c->malformed_reported)
		return;
	if (!ratelimit_below(&c->malformed_rl, ev_now_usec(c->event)))
		return;
	c->malformed_reported = c->malformed;
	chan_emit(c, &ev);
}

/* Malformed guest input: counted, reported, logged once per reason. */
void chan_malformed(struct chan *c, const char *what, const char *reason)
{
	char full[256];

	/* Zeros from the SIGBUS guard are the file's end, not the guest's input. */
	if (c->file.faulted)
		return;
	c->malformed++;
	c->malformed_what = what;
	c->malformed_reason = reason ? reason : "malformed";
	snprintf(full, sizeof(full), "%s: %s", what, c->malformed_reason);
	if (!chan_logged(c, reason ? reason : what))
		log_warn("VM %s: mailbox: malformed guest input (%s); counted, the VM stays served",
			 c->vm, full);
	chan_malformed_report(c);
}

/* ---- the panic slot ---- */

static void chan_panic_record(struct chan *c, const struct pb_mbox_panic_view *v,
			      const char *source, bool salvaged)
{
	bool current = c->have_hello && v->session_id == c->session;
	struct chan_panic p = {
		.session = v->session_id,
		.seq = v->seq,
		.info = v->info,
		.msg = v->msg,
		.msg_len = v->msg_len,
		.log = v->log,
		.log_len = v->log_len,
		.source = source,
		.guest = current ? &c->guest : NULL,
		.salvaged = salvaged,
	};
	struct chan_event ev = {
		.type = CHAN_EV_PANIC,
		.session = v->session_id,
		.role = current ? c->role : 0,
		.prev_session = current ? c->prev_session : 0,
		.guest = p.guest,
		.panic = &p,
	};

	c->panic_session = v->session_id;
	c->panic_seq = v->seq;
	c->timing_polls = CHAN_TIMING_POLLS;
	chan_emit(c, &ev);
	log_notice("VM %s: mailbox: panic record of session %016llx seq %u (%s): %.*s",
		   c->vm, (unsigned long long)v->session_id, v->seq, source,
		   (int)(v->msg_len > CHAN_LOG_MSG_MAX ? CHAN_LOG_MSG_MAX : v->msg_len), v->msg);
}

/* Reads the slot; delivers a COMPLETE record not delivered yet. */
static void chan_read_slot(struct chan *c, const char *source)
{
	struct pb_mbox_panic_view v;
	const char *reason = NULL;
	uint8_t *copy;
	int r;

	/* The copy lives for this read only: 128 KiB per guest would be most
	 * of the daemon's memory, for a record a guest sends once a boot. */
	copy = malloc(PB_MBOX_PANIC_PAYLOAD_MAX);
	if (!copy) {
		if (!chan_logged(c, "no memory for a panic record"))
			log_error("VM %s: mailbox: out of memory for a panic record; retried",
				  c->vm);
		c->slot_retry = true;
		return;
	}
	r = pb_mbox_panic_read(chan_slot(c), le32toh(c->layout.panic_size), copy, &v,
			       &reason);
	if (r < 0) {
		chan_malformed(c, "panic slot", reason);
		goto out;
	}
	if (r == 0 || (v.session_id == c->panic_session && v.seq == c->panic_seq))
		goto out;
	/*
	 * A guest rewriting its slot over and over: one record a second. The
	 * slot is read again once the second is over, so a real panic that
	 * follows another closely is late, not lost; what a flood overwrote
	 * in between is.
	 */
	if (!ratelimit_below(&c->panic_rl, ev_now_usec(c->event))) {
		if (!chan_logged(c, "panic records too fast"))
			log_warn("VM %s: mailbox: more than one panic record a second; the next is read when the second is over",
				 c->vm);
		c->slot_retry = true;
		goto out;
	}
	c->slot_retry = false;
	chan_panic_record(c, &v, source, false);
out:
	free(copy);
}

/* The guest writes its timing after the ACK: pick it up from the slot header. */
static void chan_read_timing(struct chan *c)
{
	struct pb_mbox_slot h;
	struct chan_event ev = { .type = CHAN_EV_TIMING };
	uint32_t tier, wait;

	if (!c->timing_polls)
		return;
	c->timing_polls--;
	memcpy(&h, chan_slot(c), sizeof(h));
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	if (le64toh(h.session_id) != c->panic_session || le32toh(h.seq) != c->panic_seq)
		return;
	tier = le32toh(h.tier_us);
	wait = le32toh(h.unload_wait_us);
	if (!tier && !wait)
		return;
	c->timing_polls = 0;
	ev.session = c->panic_session;
	ev.timing = (struct chan_timing){
		.session = c->panic_session,
		.seq = c->panic_seq,
		.tier_us = tier,
		.acked = wait != ~0u,
		.rtt_us = wait != ~0u ? wait : 0,
	};
	chan_emit(c, &ev);
}

/* ---- the session ---- */

static void chan_drop_session(struct chan *c)
{
	if (!c->session)
		return;
	c->session = 0;
	c->have_hello = false;
	pb_mbox_host_set_state(c->file.map, PB_MBOX_HOST_READY, 0);
}

/*
 * A guest that opens a new session resets the ring indices under us
 * (SPEC §4.2 step 3): a ring error is the old session's end, not
 * malformed input, when the guest control block no longer shows @id.
 */
static bool chan_session_gone(struct chan *c, uint64_t id)
{
	struct pb_mbox_guest_info g;

	if (pb_mbox_guest_ctl_read(c->file.map, &g, NULL) < 0)
		return false;
	return g.session_id != id || g.state == PB_MBOX_GUEST_NONE;
}

static void chan_refuse(struct chan *c, uint64_t id, const char *what, const char *reason)
{
	chan_drop_session(c);
	if (chan_session_gone(c, id))
		return;		/* looked at again at the next poll */
	c->bad_session = id;
	chan_malformed(c, what, reason);
}

static void chan_accept(struct chan *c, const struct pb_mbox_guest_info *g)
{
	struct pb_mbox_hello_ack_info ai = { 0 };
	struct pb_mbox_hello_ack ack;
	struct chan_event ev = { .type = CHAN_EV_SESSION };
	const char *reason = NULL;
	uint16_t type;
	uint32_t len;
	int r;

	chan_drop_session(c);
	pb_mbox_ring_init(&c->g2h, c->file.map, &c->layout, PB_MBOX_G2H);
	pb_mbox_ring_init(&c->h2g, c->file.map, &c->layout, PB_MBOX_H2G);
	r = pb_mbox_ring_get(&c->g2h, chan_rec, &type, &len, &reason);
	if (r == 0)
		return;		/* HELLO not published yet: next poll */
	if (r > 0 && type != PB_MBOX_MSG_HELLO) {
		r = -EPROTO;
		reason = "first record is not HELLO";
	}
	if (r > 0)
		r = pb_mbox_hello_decode(chan_rec, len, &c->guest.hello, &reason);
	if (r < 0) {
		chan_refuse(c, g->session_id, "HELLO", reason);
		return;
	}
	ai.session_id = g->session_id;
	ai.host_generation = c->generation;
	ai.poll_ms = PB_MBOX_HOST_QUIET_POLL_MS;	/* the bound for a quiet session */
	ai.unload_wait_ms = PB_MBOX_UNLOAD_WAIT_MS;
	snprintf(ai.daemon_version, sizeof(ai.daemon_version), "%s", PB_VERSION);
	r = pb_mbox_hello_ack_encode(&ai, &ack);
	if (r < 0)	/* our version string: see the assertion above */
		return;
	/* Our own ring, freshly reset by the guest: cannot be full. */
	r = pb_mbox_ring_put(&c->h2g, PB_MBOX_MSG_HELLO_ACK, &ack, (uint32_t)r, &reason);
	if (r < 0) {
		chan_refuse(c, g->session_id, "HELLO_ACK", reason);
		return;
	}
	c->session = g->session_id;
	c->role = g->role;
	c->prev_session = g->prev_session;
	c->guest.session = g->session_id;
	c->have_hello = true;
	c->ring_broken = false;
	c->unload_acked = false;
	c->unload_seq = g->unload_seq;
	pb_mbox_host_set_state(c->file.map, PB_MBOX_HOST_ACTIVE, c->session);
	/* A guest opening session after session is said once a second. */
	if (ratelimit_below(&c->session_log_rl, ev_now_usec(c->event)))
		log_info("VM %s: mailbox: %s session %016llx accepted: kernel %s, driver %s, crash kernel %s",
			 c->vm, g->role == PB_MBOX_ROLE_KDUMP ? "kdump" : "guest",
			 (unsigned long long)c->session, c->guest.hello.release,
			 c->guest.hello.driver_version,
			 c->guest.hello.flags & PB_MBOX_HELLO_CRASH_LOADED ? "loaded" : "not loaded");
	ev.session = c->session;
	ev.role = c->role;
	ev.prev_session = c->prev_session;
	ev.guest = &c->guest;
	chan_emit(c, &ev);
}

static void chan_kdump_status(struct chan *c, uint32_t len)
{
	struct pb_mbox_kdump_info k;
	struct chan_event ev = { .type = CHAN_EV_KDUMP_REPORT };
	const char *reason = NULL;

	if (pb_mbox_kdump_decode(chan_rec, len, &k, &reason) < 0) {
		chan_malformed(c, "KDUMP_STATUS", reason);
		return;
	}
	if (!ratelimit_below(&c->kdump_rl, ev_now_usec(c->event))) {
		c->kdump_dropped++;
		return;
	}
	ev.session = c->session;
	ev.role = c->role;
	ev.prev_session = c->prev_session;
	ev.guest = &c->guest;
	ev.report = (struct chan_report){
		.state = k.state,
		.percent = k.percent,
		.bytes = k.bytes,
		.reason = k.reason,
	};
	chan_emit(c, &ev);
}

static void chan_read_records(struct chan *c)
{
	c->backlog = false;
	for (unsigned int i = 0; i < PB_MBOX_HOST_RECORDS_PER_POLL && !c->ring_broken; i++) {
		const char *reason = NULL;
		uint16_t type;
		uint32_t len;
		int r = pb_mbox_ring_get(&c->g2h, chan_rec, &type, &len, &reason);

		if (r == 0)
			return;
		if (r < 0) {
			c->ring_broken = true;
			if (chan_session_gone(c, c->session))
				chan_drop_session(c);
			else
				chan_malformed(c, "g2h ring", reason);
			return;
		}
		switch (type) {
		case PB_MBOX_MSG_KDUMP_STATUS:
			if (c->role != PB_MBOX_ROLE_KDUMP) {
				c->ring_broken = true;
				chan_malformed(c, "g2h ring", "KDUMP_STATUS in a NORMAL session");
				return;
			}
			chan_kdump_status(c, len);
			break;
		case PB_MBOX_MSG_HELLO:
		case PB_MBOX_MSG_HELLO_ACK:
		case PB_MBOX_MSG_PANIC:
		case PB_MBOX_MSG_UNLOAD:
		case PB_MBOX_MSG_UNLOAD_ACK:
			c->ring_broken = true;
			chan_malformed(c, "g2h ring", "message type not allowed here");
			return;
		default:
			/* A later minor's message: skipped and counted (SPEC §5). */
			c->unknown++;
			break;
		}
	}
	c->backlog = !c->ring_broken;	/* this look's share read: maybe more wait */
}

/* Up to PB_MBOX_HOST_RECORDS_PER_POLL records; the reports over the limit, counted. */
static void chan_read_ring(struct chan *c)
{
	struct chan_event ev = { .type = CHAN_EV_REPORTS_DROPPED };

	chan_read_records(c);
	if (!c->kdump_dropped)
		return;
	ev.session = c->guest.session;
	ev.role = PB_MBOX_ROLE_KDUMP;
	ev.prev_session = c->prev_session;
	ev.count = c->kdump_dropped;
	c->kdump_dropped = 0;
	chan_emit(c, &ev);
}

/* ---- one look ---- */

static void chan_acknowledge_unload(struct chan *c, const struct pb_mbox_guest_info *g)
{
	struct chan_event ev = { .type = CHAN_EV_UNLOAD };

	chan_read_slot(c, "mailbox, before UNLOAD_ACK");
	c->unload_acked = true;
	c->unload_seq = g->unload_seq;
	pb_mbox_host_ack_unload(c->file.map, g->session_id, g->unload_seq);
	log_debug("VM %s: mailbox: UNLOAD %u of session %016llx acknowledged",
		  c->vm, g->unload_seq, (unsigned long long)g->session_id);
	ev.session = g->session_id;
	ev.role = c->role;
	ev.prev_session = c->prev_session;
	ev.guest = c->have_hello ? &c->guest : NULL;
	ev.unload_seq = g->unload_seq;
	chan_emit(c, &ev);
}

static void chan_do_poll(struct chan *c, bool doorbell)
{
	struct pb_mbox_guest_info g;
	const char *reason = NULL;
	int r;

	pb_mbox_host_heartbeat(c->file.map, ++c->heartbeat);
	if (c->slot_retry && ev_now_usec(c->event) >= ratelimit_window_end(&c->panic_rl))
		chan_read_slot(c, "mailbox, held back by the rate limit");
	r = pb_mbox_guest_ctl_read(c->file.map, &g, &reason);
	if (r == -EBADMSG && ++c->ctl_crc_fails < CHAN_CTL_CRC_TRIES)
		goto slot;	/* torn: looked at again at the next tick (chan_fast()) */
	if (r < 0) {
		c->ctl_crc_fails = 0;
		chan_drop_session(c);
		chan_malformed(c, "guest control", reason);
		goto slot;
	}
	c->ctl_crc_fails = 0;
	if (g.state == PB_MBOX_GUEST_NONE) {
		chan_drop_session(c);
		goto slot;
	}
	if (g.session_generation != c->generation)
		goto slot;	/* a session of an earlier format */
	if (g.session_id != c->session && g.session_id != c->bad_session)
		chan_accept(c, &g);
	if (g.session_id != c->session)
		goto slot;

	if (!c->unload_acked)
		chan_read_ring(c);
	if ((g.state == PB_MBOX_GUEST_UNLOADING || g.state == PB_MBOX_GUEST_UNLOADED) &&
	    (!c->unload_acked || g.unload_seq != c->unload_seq)) {
		chan_acknowledge_unload(c, &g);
		return;
	}
slot:
	if (doorbell)
		chan_read_slot(c, "mailbox, at the pvpanic event");
	chan_read_timing(c);
}

/* What is counted rather than delivered one by one, reported at the end of a look. */
static void chan_flush(struct chan *c)
{
	struct chan_event ev = { .type = CHAN_EV_UNKNOWN_RECORDS, .session = c->session,
				 .role = c->role, .prev_session = c->prev_session };

	if (c->unknown && !chan_logged(c, "unknown record types"))
		log_info("VM %s: mailbox: skipping ring records of unknown types (a newer guest?); counted",
			 c->vm);
	if (c->unknown != c->unknown_reported &&
	    ratelimit_below(&c->unknown_rl, ev_now_usec(c->event))) {
		ev.count = c->unknown;
		c->unknown_reported = c->unknown;
		chan_emit(c, &ev);
	}
	chan_malformed_report(c);
}

/*
 * Touching a MAP_SHARED page past the end of a file that someone truncated
 * is SIGBUS: check the file before every look, and give the mailbox up (not
 * the daemon) when it shrank. A truncation racing this check faults inside
 * the look; the guard of chan_file.c turns that into zeros and "faulted",
 * seen here after the look.
 */
bool chan_intact(struct chan *c)
{
	if (!c->file.map)
		return false;
	if (chan_file_intact(&c->file))
		return true;
	log_error("VM %s: mailbox file %s shrank below %u bytes%s: mailbox given up",
		  c->vm, c->path, c->file.size,
		  c->file.faulted ? " while it was read (SIGBUS caught)" : "");
	chan_file_unmap(&c->file);
	c->session = 0;
	c->backlog = false;
	c->slot_retry = false;
	c->timing_polls = 0;
	chan_sweep_update(c);
	return false;
}

/* One look at the mailbox; ops->end() once when it delivered anything. */
void chan_look(struct chan *c, bool doorbell)
{
	if (!c->started || c->looking || !chan_intact(c))
		return;
	c->looking = true;
	c->delivered = 0;
	chan_sweep_mark(c);
	chan_do_poll(c, doorbell);
	chan_flush(c);
	/* Looks are rare (the sweep's quick checks read the header's second
	 * mapping): drop the pages this one touched, the rings and the slot. */
	chan_file_trim(&c->file);
	c->looking = false;
	if (c->file.faulted)
		(void)chan_intact(c);
	chan_sweep_update(c);
	if (c->delivered && c->ops->end)
		c->ops->end(c->ud);
}

void chan_look_salvaged(struct chan *c)
{
	if (!chan_intact(c))
		return;
	c->looking = true;
	c->delivered = 0;
	if (c->salvaged) {
		c->salvaged = false;
		/* Not counted against the one a second: it is one per start,
		 * and a real panic in the daemon's first second must not wait. */
		chan_panic_record(c, &c->salvage, "salvaged from the mailbox at daemon start", true);
		free(c->slot);
		c->slot = NULL;
	}
	chan_malformed_report(c);
	c->looking = false;
	if (c->file.faulted)
		(void)chan_intact(c);
	chan_sweep_update(c);
	if (c->delivered && c->ops->end)
		c->ops->end(c->ud);
}
