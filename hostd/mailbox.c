// SPDX-License-Identifier: MIT
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

#include <panicbroker/mailbox.h>

#include "log.h"
#include "mailbox.h"
#include "util.h"
#include "version.h"

#define MAILBOX_IDLE_POLL_USEC USEC_PER_SEC
#define MAILBOX_BUSY_POLL_USEC (PB_MBOX_HOST_POLL_MS * USEC_PER_MSEC)
#define MAILBOX_CTL_CRC_TRIES 3
#define MAILBOX_MALFORMED_KEPT 16
#define MAILBOX_LOGGED_REASONS 32
/* Polls during which the guest's advisory timing is looked for after an ACK. */
#define MAILBOX_TIMING_POLLS 200
/* Crashed sessions of closed crashes remembered, so none is taken again. */
#define MAILBOX_CLOSED_KEPT 8

_Static_assert(CRASH_REPORT_START == PB_MBOX_KDUMP_START &&
	       CRASH_REPORT_PROGRESS == PB_MBOX_KDUMP_PROGRESS &&
	       CRASH_REPORT_DONE == PB_MBOX_KDUMP_DONE &&
	       CRASH_REPORT_FAILED == PB_MBOX_KDUMP_FAILED,
	       "crash reports use the wire's KDUMP_STATUS states");

struct mailbox {
	char vm[VM_NAME_MAX + 1];
	char path[4096];
	sd_event *event;
	sd_event_source *timer;
	const struct mailbox_ops *ops;
	void *ud;

	int fd;
	void *map;
	uint32_t size;
	struct pb_mbox_layout layout;	/* our own, validated copy */
	uint64_t generation;
	uint64_t heartbeat;

	/* The session: accepted, or refused as malformed (not looked at again). */
	uint64_t session;
	uint32_t role;
	uint64_t prev_session;		/* KDUMP: the crashed session */
	uint64_t bad_session;
	bool ring_broken;
	bool unload_acked;
	uint32_t unload_seq;
	struct pb_mbox_ring g2h, h2g;
	struct pb_mbox_hello_info hello;
	bool have_hello;
	unsigned int ctl_crc_fails;
	bool busy;			/* a session is in HELLO..UNLOADING */
	bool slot_retry;		/* a panic record held back by the rate limit */
	bool dirty;			/* the open crash's record changed */
	uint64_t unknown;		/* ring records of unknown types, skipped */
	uint64_t unknown_recorded;
	uint64_t unknown_saved_usec;

	/* The last panic record (dedup by session and seq). */
	uint64_t panic_session;
	uint32_t panic_seq;
	uint64_t panic_usec;		/* when the last one was recorded */
	unsigned int timing_polls;

	/* Said before a crash was open; merged into the next one. */
	json_object *pending;

	uint64_t kdump_window_usec;
	unsigned int kdump_count;

	/* The current KDUMP session's place in the open crash (docs/record.md). */
	bool kdump_decided;
	enum crash_link kdump_link;
	char kdump_crash[SPOOL_ID_MAX];	/* the crash it was decided for */
	uint64_t kdump_decided_usec;	/* sessions recorded: one a second */
	uint64_t kdump_log_usec;	/* and said: one a second */
	bool kdump_changed;		/* tell the VM after the poll */
	bool booted;			/* a NORMAL session opened */
	uint64_t closed[MAILBOX_CLOSED_KEPT]; /* crashed sessions, closed crashes */
	unsigned int n_closed, closed_next;

	uint64_t session_log_usec;
	uint64_t malformed;
	uint64_t malformed_saved_usec;
	const char *logged[MAILBOX_LOGGED_REASONS];
	unsigned int n_logged;

	uint8_t rec[PB_MBOX_RING_PAYLOAD_MAX];
	uint8_t slot[PB_MBOX_PANIC_PAYLOAD_MAX];
};

static uint64_t mailbox_now(struct mailbox *m)
{
	uint64_t now = 0;

	sd_event_now(m->event, CLOCK_MONOTONIC, &now);
	return now;
}

/* ---- the record ---- */

static json_object *mailbox_obj(json_object *parent, const char *key)
{
	json_object *o;

	if (json_object_object_get_ex(parent, key, &o) &&
	    json_object_is_type(o, json_type_object))
		return o;
	o = json_object_new_object();
	json_object_object_add(parent, key, o);
	return o;
}

bool mailbox_has_panic(const struct mailbox *m)
{
	return m && m->pending && json_object_object_get_ex(m->pending, "panic", NULL);
}

/* Where new facts go: the open crash's record, else the pending object. */
static json_object *mailbox_target(struct mailbox *m, struct crash **ret)
{
	struct crash *c = m->ops->crash(m->ud);

	*ret = c;
	if (c)
		return c->rec;
	if (!m->pending)
		m->pending = json_object_new_object();
	return m->pending;
}

/* Saved once at the end of the poll, however much the guest said. */
static void mailbox_done(struct mailbox *m, struct crash *c)
{
	if (c)
		m->dirty = true;
}

/* The guest's bytes, printable: \n and \t kept, others as \xNN. */
static json_object *mailbox_escaped(const char *s, uint32_t len)
{
	_cleanup_free_ char *out = malloc((size_t)len * 4 + 1);
	size_t o = 0;

	if (!out)
		return NULL;
	for (uint32_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if ((ch >= 0x20 && ch < 0x7f && ch != '\\') || ch == '\n' || ch == '\t')
			out[o++] = (char)ch;
		else if (ch == '\\') {
			out[o++] = '\\';
			out[o++] = '\\';
		} else
			o += (size_t)sprintf(out + o, "\\x%02x", ch);
	}
	return json_object_new_string_len(out, (int)o);
}

static json_object *mailbox_hex64(uint64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "0x%llx", (unsigned long long)v);
	return json_object_new_string(buf);
}

static void mailbox_boot_id(const uint8_t id[16], char out[37])
{
	char *p = out;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		p += sprintf(p, "%02x", id[i]);
	}
	*p = '\0';
}

static void mailbox_put_guest(struct mailbox *m, json_object *rec)
{
	json_object *g;
	char bid[37];

	if (!m->have_hello)
		return;
	g = mailbox_obj(rec, "guest");
	mailbox_boot_id(m->hello.boot_id, bid);
	json_object_object_add(g, "kernel_release",
			       json_object_new_string(m->hello.release));
	json_object_object_add(g, "boot_id", json_object_new_string(bid));
	json_object_object_add(g, "driver_version",
			       json_object_new_string(m->hello.driver_version));
	json_object_object_add(g, "crash_loaded",
			       json_object_new_boolean(m->hello.flags & PB_MBOX_HELLO_CRASH_LOADED));
	json_object_object_add(g, "crash_base", mailbox_hex64(m->hello.crash_base));
	json_object_object_add(g, "crash_size", mailbox_hex64(m->hello.crash_size));
	json_object_object_add(g, "vmcoreinfo_paddr",
			       mailbox_hex64(m->hello.vmcoreinfo_paddr));
	json_object_object_add(g, "session", mailbox_hex64(m->session));
}

static bool mailbox_logged(struct mailbox *m, const char *reason)
{
	for (unsigned int i = 0; i < m->n_logged; i++)
		if (strcmp(m->logged[i], reason) == 0)
			return true;
	if (m->n_logged < MAILBOX_LOGGED_REASONS)
		m->logged[m->n_logged++] = reason;
	return false;
}

/* Malformed guest input: counted, kept in the open crash, or logged once. */
static void mailbox_malformed(struct mailbox *m, const char *what,
			      const char *reason)
{
	struct crash *c = m->ops->crash(m->ud);
	char full[256];

	m->malformed++;
	snprintf(full, sizeof(full), "%s: %s", what, reason ? reason : "malformed");
	if (c) {
		json_object *mb = mailbox_obj(c->rec, "mailbox"), *list;

		if (!json_object_object_get_ex(mb, "malformed", &list) ||
		    !json_object_is_type(list, json_type_array)) {
			list = json_object_new_array();
			json_object_object_add(mb, "malformed", list);
		}
		if (json_object_array_length(list) < MAILBOX_MALFORMED_KEPT) {
			json_object_array_add(list, json_object_new_string(full));
			m->dirty = true;
		}
		json_object_object_add(mb, "malformed_count",
				       json_object_new_uint64(m->malformed));
		/* A guest that keeps at it costs one save a second, not one a poll. */
		if (mailbox_now(m) - m->malformed_saved_usec >= USEC_PER_SEC) {
			m->malformed_saved_usec = mailbox_now(m);
			m->dirty = true;
		}
	}
	if (!mailbox_logged(m, reason ? reason : what))
		log_warn("VM %s: mailbox: malformed guest input (%s); counted, the VM stays served",
			 m->vm, full);
}

/* ---- the panic slot ---- */

static void mailbox_record_panic(struct mailbox *m,
				 const struct pb_mbox_panic_view *v,
				 const char *source)
{
	struct crash *c;
	json_object *rec = mailbox_target(m, &c), *p, *u;

	p = json_object_new_object();
	json_object_object_add(p, "message", mailbox_escaped(v->msg, v->msg_len));
	json_object_object_add(p, "log_tail", mailbox_escaped(v->log, v->log_len));
	json_object_object_add(p, "log_truncated",
			       json_object_new_boolean(v->info.flags & PB_MBOX_PANIC_LOG_TRUNCATED));
	json_object_object_add(p, "from_oops",
			       json_object_new_boolean(v->info.flags & PB_MBOX_PANIC_FROM_OOPS));
	json_object_object_add(p, "crash_loaded",
			       json_object_new_boolean(v->info.flags & PB_MBOX_PANIC_CRASH_LOADED));
	json_object_object_add(p, "taint", mailbox_hex64(v->info.taint));
	json_object_object_add(p, "cpu", json_object_new_int64(v->info.cpu));
	json_object_object_add(p, "uptime_ns", json_object_new_uint64(v->info.uptime_ns));
	json_object_object_add(p, "session", mailbox_hex64(v->session_id));
	json_object_object_add(p, "seq", json_object_new_int64(v->seq));
	json_object_object_add(p, "source", json_object_new_string(source));
	json_object_object_add(rec, "panic", p);
	if (v->session_id == m->session)
		mailbox_put_guest(m, rec);
	u = json_object_new_object();
	json_object_object_add(u, "acked", json_object_new_boolean(false));
	json_object_object_add(rec, "unload", u);
	/* A record that came after the crash opened confirms its session. */
	if (c && c->crashed_session == v->session_id)
		crash_set_crashed_session(c, v->session_id, "panic slot");
	mailbox_done(m, c);
	m->panic_session = v->session_id;
	m->panic_seq = v->seq;
	m->timing_polls = MAILBOX_TIMING_POLLS;
	log_notice("VM %s: mailbox: panic record of session %016llx seq %u (%s): %.*s",
		   m->vm, (unsigned long long)v->session_id, v->seq, source,
		   (int)(v->msg_len > 120 ? 120 : v->msg_len), v->msg);
}

/* Reads the slot; records a COMPLETE one not recorded yet. */
static void mailbox_read_slot(struct mailbox *m, const char *source)
{
	struct pb_mbox_panic_view v;
	const char *reason = NULL;
	int r;

	r = pb_mbox_panic_read((uint8_t *)m->map + m->layout.panic_offset,
			       m->layout.panic_size, m->slot, &v, &reason);
	if (r < 0) {
		mailbox_malformed(m, "panic slot", reason);
		return;
	}
	if (r == 0 || (v.session_id == m->panic_session && v.seq == m->panic_seq))
		return;
	/* A guest rewriting its slot over and over: one record a second. */
	/*
	 * A guest rewriting its slot over and over: one record a second. The
	 * slot is read again once the second is over, so a real panic that
	 * follows another closely is late, not lost; what a flood overwrote
	 * in between is.
	 */
	if (m->panic_usec && mailbox_now(m) - m->panic_usec < USEC_PER_SEC) {
		if (!mailbox_logged(m, "panic records too fast"))
			log_warn("VM %s: mailbox: more than one panic record a second; the next is read when the second is over",
				 m->vm);
		m->slot_retry = true;
		return;
	}
	m->slot_retry = false;
	m->panic_usec = mailbox_now(m);
	mailbox_record_panic(m, &v, source);
}

/* The guest writes its timing after the ACK: pick it up from the slot header. */
static void mailbox_read_timing(struct mailbox *m)
{
	struct pb_mbox_slot h;
	struct crash *c;
	json_object *rec, *u;
	uint32_t tier, wait;

	if (!m->timing_polls)
		return;
	m->timing_polls--;
	memcpy(&h, (uint8_t *)m->map + m->layout.panic_offset, sizeof(h));
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	if (le64toh(h.session_id) != m->panic_session || le32toh(h.seq) != m->panic_seq)
		return;
	tier = le32toh(h.tier_us);
	wait = le32toh(h.unload_wait_us);
	if (!tier && !wait)
		return;
	m->timing_polls = 0;
	rec = mailbox_target(m, &c);
	u = mailbox_obj(rec, "unload");
	json_object_object_add(u, "acked", json_object_new_boolean(wait != ~0u));
	if (wait != ~0u)
		json_object_object_add(u, "rtt_us", json_object_new_int64(wait));
	if (tier)
		json_object_object_add(mailbox_obj(rec, "panic"), "tier_us",
				       json_object_new_int64(tier));
	mailbox_done(m, c);
}

/* ---- the session ---- */

static void mailbox_drop_session(struct mailbox *m)
{
	if (!m->session)
		return;
	m->session = 0;
	m->have_hello = false;
	pb_mbox_host_set_state(m->map, PB_MBOX_HOST_READY, 0);
}

/*
 * A guest that opens a new session resets the ring indices under us
 * (SPEC §4.2 step 3): a ring error is the old session's end, not
 * malformed input, when the guest control block no longer shows @id.
 */
static bool mailbox_session_gone(struct mailbox *m, uint64_t id)
{
	struct pb_mbox_guest_info g;

	if (pb_mbox_guest_ctl_read(m->map, &g, NULL) < 0)
		return false;
	return g.session_id != id || g.state == PB_MBOX_GUEST_NONE;
}

static void mailbox_refuse(struct mailbox *m, uint64_t id, const char *what,
			   const char *reason)
{
	mailbox_drop_session(m);
	if (mailbox_session_gone(m, id))
		return;		/* looked at again at the next poll */
	m->bad_session = id;
	mailbox_malformed(m, what, reason);
}

static void mailbox_accept(struct mailbox *m, const struct pb_mbox_guest_info *g)
{
	struct pb_mbox_hello_ack_info ai = { 0 };
	struct pb_mbox_hello_ack ack;
	const char *reason = NULL;
	uint16_t type;
	uint32_t len;
	int r;

	mailbox_drop_session(m);
	pb_mbox_ring_init(&m->g2h, m->map, &m->layout, PB_MBOX_G2H);
	pb_mbox_ring_init(&m->h2g, m->map, &m->layout, PB_MBOX_H2G);
	r = pb_mbox_ring_get(&m->g2h, m->rec, &type, &len, &reason);
	if (r == 0)
		return;		/* HELLO not published yet: next poll */
	if (r < 0) {
		mailbox_refuse(m, g->session_id, "HELLO", reason);
		return;
	}
	if (type != PB_MBOX_MSG_HELLO) {
		mailbox_refuse(m, g->session_id, "HELLO", "first record is not HELLO");
		return;
	}
	r = pb_mbox_hello_decode(m->rec, len, &m->hello, &reason);
	if (r < 0) {
		mailbox_refuse(m, g->session_id, "HELLO", reason);
		return;
	}
	ai.session_id = g->session_id;
	ai.host_generation = m->generation;
	ai.poll_ms = PB_MBOX_HOST_POLL_MS;
	ai.unload_wait_ms = PB_MBOX_UNLOAD_WAIT_MS;
	snprintf(ai.daemon_version, sizeof(ai.daemon_version), "%s", PB_VERSION);
	len = (uint32_t)pb_mbox_hello_ack_encode(&ai, &ack);
	r = pb_mbox_ring_put(&m->h2g, PB_MBOX_MSG_HELLO_ACK, &ack, len, &reason);
	if (r < 0) {
		/* Our own ring, freshly reset by the guest: cannot be full. */
		mailbox_refuse(m, g->session_id, "HELLO_ACK", reason);
		return;
	}
	if (g->role == PB_MBOX_ROLE_NORMAL && m->pending) {
		/* The guest booted again and no pvpanic event came in between:
		 * what it said belongs to no crash the daemon will see. */
		log_warn("VM %s: mailbox: a new guest session opened before any crash record took what the guest said (%s); dropped",
			 m->vm, mailbox_has_panic(m) ? "its panic record" : "its reports");
		json_object_put(m->pending);
		m->pending = NULL;
	}
	m->session = g->session_id;
	m->role = g->role;
	m->prev_session = g->prev_session;
	m->have_hello = true;
	m->ring_broken = false;
	m->unload_acked = false;
	m->unload_seq = g->unload_seq;
	m->kdump_decided = false;
	if (g->role == PB_MBOX_ROLE_NORMAL)
		m->booted = true;
	pb_mbox_host_set_state(m->map, PB_MBOX_HOST_ACTIVE, m->session);
	if (mailbox_now(m) - m->session_log_usec >= USEC_PER_SEC || !m->session_log_usec) {
		m->session_log_usec = mailbox_now(m);
		log_info("VM %s: mailbox: %s session %016llx accepted: kernel %s, driver %s, crash kernel %s",
			 m->vm, g->role == PB_MBOX_ROLE_KDUMP ? "kdump" : "guest",
			 (unsigned long long)m->session, m->hello.release,
			 m->hello.driver_version,
			 m->hello.flags & PB_MBOX_HELLO_CRASH_LOADED ? "loaded" : "not loaded");
	}
}

static const char *mailbox_kdump_state(uint32_t st)
{
	switch (st) {
	case PB_MBOX_KDUMP_START:
		return "start";
	case PB_MBOX_KDUMP_PROGRESS:
		return "progress";
	case PB_MBOX_KDUMP_DONE:
		return "done";
	default:
		return "failed";
	}
}

/*
 * Decides once per KDUMP session whether it belongs to the open crash and
 * records that. A guest opening session after session gets one recorded a
 * second (SPEC §8); @now_anyway: a report of it is waiting (reports have
 * their own limit).
 */
static void mailbox_kdump_session(struct mailbox *m, bool now_anyway)
{
	struct crash *c = m->ops->crash(m->ud);
	uint64_t now = mailbox_now(m);
	char why[256];

	if (!c || !m->session || m->role != PB_MBOX_ROLE_KDUMP || m->kdump_decided)
		return;
	if (!now_anyway && m->kdump_decided_usec &&
	    now - m->kdump_decided_usec < USEC_PER_SEC)
		return;
	m->kdump_decided_usec = now;
	m->kdump_decided = true;
	snprintf(m->kdump_crash, sizeof(m->kdump_crash), "%s", c->id);
	m->kdump_link = crash_kdump_link(c, m->prev_session, m->closed, m->n_closed,
					 why, sizeof(why));
	crash_kdump_session(c, m->session, m->prev_session, m->kdump_link, why,
			    ts_now_realtime_usec());
	m->dirty = true;
	m->kdump_changed = m->kdump_link != CRASH_LINK_REFUSED;
	/* Reports can force a decision per session: say one a second. */
	if (m->kdump_log_usec && now - m->kdump_log_usec < USEC_PER_SEC) {
		log_debug("VM %s: mailbox: kdump session %016llx: %s", m->vm,
			  (unsigned long long)m->session, why);
		return;
	}
	m->kdump_log_usec = now;
	switch (m->kdump_link) {
	case CRASH_LINK_LINKED:
		log_info("VM %s: mailbox: kdump session %016llx belongs to crash %s (%s)",
			 m->vm, (unsigned long long)m->session, c->id, why);
		break;
	case CRASH_LINK_UNLINKED:
		log_warn("VM %s: mailbox: kdump session %016llx is unlinked (%s); its reports go to crash %s, the VM's only open crash",
			 m->vm, (unsigned long long)m->session, why, c->id);
		break;
	case CRASH_LINK_REFUSED:
		log_warn("VM %s: mailbox: kdump session %016llx refused (%s); its reports are not recorded",
			 m->vm, (unsigned long long)m->session, why);
		break;
	}
}

static void mailbox_kdump_status(struct mailbox *m, uint32_t len)
{
	struct pb_mbox_kdump_info k;
	const char *reason = NULL;
	struct crash *c = m->ops->crash(m->ud);
	struct crash_kdump_report r;
	uint64_t now = mailbox_now(m);

	if (pb_mbox_kdump_decode(m->rec, len, &k, &reason) < 0) {
		mailbox_malformed(m, "KDUMP_STATUS", reason);
		return;
	}
	if (!c) {
		if (!mailbox_logged(m, "kdump status without a crash"))
			log_info("VM %s: mailbox: kdump %s reported with no open crash; not recorded",
				 m->vm, mailbox_kdump_state(k.state));
		return;
	}
	if (now - m->kdump_window_usec >= USEC_PER_SEC) {
		m->kdump_window_usec = now;
		m->kdump_count = 0;
	}
	if (++m->kdump_count > PB_MBOX_HOST_KDUMP_STATUS_PER_S) {
		if (m->kdump_decided && m->kdump_link != CRASH_LINK_REFUSED &&
		    strcmp(m->kdump_crash, c->id) == 0) {
			crash_kdump_report_dropped(c);
			m->dirty = true;
		}
		return;
	}
	mailbox_kdump_session(m, true);
	/* Refused, or taken by a crash that has closed since: not this one's. */
	if (m->kdump_link == CRASH_LINK_REFUSED || strcmp(m->kdump_crash, c->id) != 0) {
		if (!mailbox_logged(m, "kdump report not the open crash's"))
			log_info("VM %s: mailbox: kdump %s from session %016llx is not crash %s's; not recorded",
				 m->vm, mailbox_kdump_state(k.state),
				 (unsigned long long)m->session, c->id);
		return;
	}
	r = (struct crash_kdump_report){
		.state = (enum crash_report_state)k.state,
		.percent = k.percent,
		.bytes = k.bytes,
		.reason = k.reason,
		.session = m->session,
		.prev_session = m->prev_session,
		.at_usec = ts_now_realtime_usec(),
	};
	crash_kdump_report(c, &r);
	m->dirty = true;
	m->kdump_changed = true;
}

static void mailbox_read_ring(struct mailbox *m)
{
	for (unsigned int i = 0; i < PB_MBOX_HOST_RECORDS_PER_POLL && !m->ring_broken; i++) {
		const char *reason = NULL;
		uint16_t type;
		uint32_t len;
		int r = pb_mbox_ring_get(&m->g2h, m->rec, &type, &len, &reason);

		if (r == 0)
			return;
		if (r < 0) {
			m->ring_broken = true;
			if (mailbox_session_gone(m, m->session))
				mailbox_drop_session(m);
			else
				mailbox_malformed(m, "g2h ring", reason);
			return;
		}
		switch (type) {
		case PB_MBOX_MSG_KDUMP_STATUS:
			if (m->role != PB_MBOX_ROLE_KDUMP) {
				m->ring_broken = true;
				mailbox_malformed(m, "g2h ring", "KDUMP_STATUS in a NORMAL session");
				return;
			}
			mailbox_kdump_status(m, len);
			break;
		case PB_MBOX_MSG_HELLO:
		case PB_MBOX_MSG_HELLO_ACK:
		case PB_MBOX_MSG_PANIC:
		case PB_MBOX_MSG_UNLOAD:
		case PB_MBOX_MSG_UNLOAD_ACK:
			m->ring_broken = true;
			mailbox_malformed(m, "g2h ring", "message type not allowed here");
			return;
		default:
			/* A later minor's message: skipped and counted (SPEC §5). */
			m->unknown++;
			break;
		}
	}
}

/*
 * Touching a MAP_SHARED page past the end of a file that someone truncated
 * is SIGBUS: check the file before every pass, and give the mailbox up (not
 * the daemon) when it shrank. A truncation racing this check is not covered.
 */
static bool mailbox_file_intact(struct mailbox *m)
{
	struct stat st;

	if (!m->map)
		return false;
	if (fstat(m->fd, &st) == 0 && st.st_size >= (off_t)m->size)
		return true;
	log_error("VM %s: mailbox file %s shrank below %u bytes: mailbox given up",
		  m->vm, m->path, m->size);
	munmap(m->map, m->size);
	m->map = NULL;
	m->busy = false;
	return false;
}

static void mailbox_do_poll(struct mailbox *m, bool doorbell)
{
	struct pb_mbox_guest_info g;
	const char *reason = NULL;
	int r;

	if (!mailbox_file_intact(m))
		return;
	pb_mbox_host_heartbeat(m->map, ++m->heartbeat);
	if (m->slot_retry && mailbox_now(m) - m->panic_usec >= USEC_PER_SEC)
		mailbox_read_slot(m, "mailbox, held back by the rate limit");
	r = pb_mbox_guest_ctl_read(m->map, &g, &reason);
	if (r == -EBADMSG && ++m->ctl_crc_fails < MAILBOX_CTL_CRC_TRIES) {
		m->busy = true;	/* torn: look again soon */
		goto slot;
	}
	if (r < 0) {
		m->ctl_crc_fails = 0;
		m->busy = false;
		mailbox_drop_session(m);
		mailbox_malformed(m, "guest control", reason);
		goto slot;
	}
	m->ctl_crc_fails = 0;
	m->busy = g.state >= PB_MBOX_GUEST_HELLO && g.state <= PB_MBOX_GUEST_UNLOADING;
	if (g.state == PB_MBOX_GUEST_NONE) {
		mailbox_drop_session(m);
		goto slot;
	}
	if (g.session_generation != m->generation) {
		m->busy = false;	/* a session of an earlier format */
		goto slot;
	}
	if (g.session_id != m->session && g.session_id != m->bad_session)
		mailbox_accept(m, &g);
	if (g.session_id != m->session)
		goto slot;

	if (!m->unload_acked)
		mailbox_read_ring(m);
	if ((g.state == PB_MBOX_GUEST_UNLOADING || g.state == PB_MBOX_GUEST_UNLOADED) &&
	    (!m->unload_acked || g.unload_seq != m->unload_seq)) {
		mailbox_read_slot(m, "mailbox, before UNLOAD_ACK");
		m->unload_acked = true;
		m->unload_seq = g.unload_seq;
		pb_mbox_host_ack_unload(m->map, g.session_id, g.unload_seq);
		log_debug("VM %s: mailbox: UNLOAD %u of session %016llx acknowledged",
			  m->vm, g.unload_seq, (unsigned long long)g.session_id);
		return;
	}
slot:
	if (doorbell)
		mailbox_read_slot(m, "mailbox, at the pvpanic event");
	mailbox_read_timing(m);
}

static void mailbox_flush(struct mailbox *m)
{
	struct crash *c;
	uint64_t now = mailbox_now(m);

	mailbox_kdump_session(m, false);	/* one held back by the limit */
	c = m->ops->crash(m->ud);

	if (m->unknown && !mailbox_logged(m, "unknown record types"))
		log_info("VM %s: mailbox: skipping ring records of unknown types (a newer guest?); counted",
			 m->vm);
	if (c && m->unknown != m->unknown_recorded &&
	    now - m->unknown_saved_usec >= USEC_PER_SEC) {
		json_object_object_add(mailbox_obj(c->rec, "mailbox"), "unknown_records",
				       json_object_new_uint64(m->unknown));
		m->unknown_recorded = m->unknown;
		m->unknown_saved_usec = now;
		m->dirty = true;
	}
	if (m->kdump_changed && c) {
		m->kdump_changed = false;
		m->ops->kdump(m->ud);
		c = m->ops->crash(m->ud);
	}
	m->kdump_changed = false;
	if (m->dirty && c)
		m->ops->save(m->ud);
	m->dirty = false;
	if (m->booted) {
		m->booted = false;
		m->ops->booted(m->ud, m->session);
	}
}

/*
 * Poll fast while a session is open, while the guest's timings may still
 * come, and while the VM is in its kdump kernel: its session opens, reports
 * and reboots within a fraction of a second when there is little to dump.
 */
static bool mailbox_fast(struct mailbox *m)
{
	const struct crash *c;

	if (m->busy || m->timing_polls || m->slot_retry)
		return true;
	c = m->ops->crash(m->ud);
	return c && c->state == CRASH_KDUMP_RUNNING;
}

/* One look at the mailbox, and what it found into the record. */
static void mailbox_look(struct mailbox *m, bool doorbell)
{
	mailbox_do_poll(m, doorbell);
	mailbox_flush(m);
}

static int mailbox_on_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	struct mailbox *m = ud;

	mailbox_look(m, false);
	sd_event_source_set_time(s, usec + (mailbox_fast(m) ? MAILBOX_BUSY_POLL_USEC :
							      MAILBOX_IDLE_POLL_USEC));
	sd_event_source_set_enabled(s, SD_EVENT_ON);
	return 0;
}

void mailbox_poll(struct mailbox *m)
{
	if (!m)
		return;
	mailbox_look(m, true);
	/* Busy again: make the timer fire soon. */
	if (mailbox_fast(m))
		sd_event_source_set_time_relative(m->timer, MAILBOX_BUSY_POLL_USEC);
}

void mailbox_drain(struct mailbox *m)
{
	if (m)
		mailbox_look(m, false);
}

void mailbox_attach(struct mailbox *m)
{
	struct crash *c;
	json_object *rec;
	bool changed = false;

	if (!m || !(c = m->ops->crash(m->ud)))
		return;
	rec = c->rec;
	/* Which session crashed: the one whose panic record is waiting, else
	 * the guest's NORMAL session open at the pvpanic event. */
	if (!c->crashed_session) {
		if (mailbox_has_panic(m) && m->panic_session)
			crash_set_crashed_session(c, m->panic_session, "panic slot");
		else if (m->session && m->role == PB_MBOX_ROLE_NORMAL)
			crash_set_crashed_session(c, m->session,
						  "guest session open at the pvpanic event");
		changed = c->crashed_session != 0;
	}
	if (m->pending) {
		json_object_object_foreach(m->pending, key, val)
			json_object_object_add(rec, key, json_object_get(val));
		json_object_put(m->pending);
		m->pending = NULL;
		changed = true;
	}
	if (changed)
		m->ops->save(m->ud);
}

void mailbox_crash_closed(struct mailbox *m, const struct crash *c)
{
	if (!m || !c->crashed_session)
		return;
	for (unsigned int i = 0; i < m->n_closed; i++)
		if (m->closed[i] == c->crashed_session)
			return;
	m->closed[m->closed_next] = c->crashed_session;
	m->closed_next = (m->closed_next + 1) % MAILBOX_CLOSED_KEPT;
	if (m->n_closed < MAILBOX_CLOSED_KEPT)
		m->n_closed++;
}

/* ---- the file ---- */

static int mailbox_map(struct mailbox *m, char *err, size_t errlen)
{
	struct stat st;
	int fd, r;
	bool created = false;

	fd = open(m->path, O_RDWR | O_CLOEXEC | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
	if (fd >= 0) {
		created = true;
	} else if (errno == EEXIST) {
		fd = open(m->path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	}
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "mailbox %s: %s", m->path, strerror(-r));
		return r;
	}
	m->fd = fd;
	if (created && ftruncate(fd, PB_MBOX_SIZE_DEFAULT) < 0) {
		r = -errno;
		snprintf(err, errlen, "mailbox %s: cannot size it: %s", m->path, strerror(-r));
		unlink(m->path);
		return r;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		snprintf(err, errlen, "mailbox %s: %s", m->path, strerror(-r));
		return r;
	}
	if (!S_ISREG(st.st_mode))
		return err_set(err, errlen, -EINVAL, "mailbox %s is not a regular file", m->path);
	/* Never truncate an existing file: QEMU may have it mapped. */
	if (st.st_size < PB_MBOX_SIZE_MIN || st.st_size > PB_MBOX_SIZE_MAX ||
	    st.st_size % PB_MBOX_PAGE)
		return err_set(err, errlen, -EINVAL,
			       "mailbox %s is %lld bytes; it must be a multiple of 4 KiB from 256 KiB to 64 MiB (QEMU: a power of two)",
			       m->path, (long long)st.st_size);
	m->size = (uint32_t)st.st_size;
	m->map = mmap(NULL, m->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m->map == MAP_FAILED) {
		r = -errno;
		m->map = NULL;
		snprintf(err, errlen, "mailbox %s: cannot map it: %s", m->path, strerror(-r));
		return r;
	}
	return 0;
}

/* SPEC §4.1: salvage a COMPLETE slot, then format with a new generation. */
static int mailbox_format(struct mailbox *m, char *err, size_t errlen)
{
	struct pb_mbox_layout old;
	const char *reason = NULL;
	struct timespec ts;
	int r;

	if (pb_mbox_read_layout(m->map, m->size, &old, NULL) == 0) {
		m->layout = old;
		mailbox_read_slot(m, "salvaged from the mailbox at daemon start");
		m->generation = le64toh(old.host_generation) + 1;
	} else {
		clock_gettime(CLOCK_REALTIME, &ts);
		m->generation = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	}
	r = pb_mbox_format(m->map, m->size, m->generation, &reason);
	if (r < 0) {
		snprintf(err, errlen, "mailbox %s: cannot format it: %s", m->path, reason);
		return r;
	}
	r = pb_mbox_read_layout(m->map, m->size, &m->layout, &reason);
	if (r < 0) {
		snprintf(err, errlen, "mailbox %s: formatted layout invalid: %s", m->path, reason);
		return r;
	}
	return 0;
}

int mailbox_open(sd_event *e, const char *vm, const char *path,
		 const struct mailbox_ops *ops, void *ud, struct mailbox **ret,
		 char *err, size_t errlen)
{
	struct mailbox *m = calloc(1, sizeof(*m));
	int r;

	if (!m)
		return -ENOMEM;
	m->fd = -1;
	m->event = sd_event_ref(e);
	m->ops = ops;
	m->ud = ud;
	snprintf(m->vm, sizeof(m->vm), "%s", vm);
	snprintf(m->path, sizeof(m->path), "%s", path);
	r = mailbox_map(m, err, errlen);
	if (r >= 0)
		r = mailbox_format(m, err, errlen);
	if (r >= 0) {
		r = sd_event_add_time_relative(e, &m->timer, CLOCK_MONOTONIC,
					       MAILBOX_BUSY_POLL_USEC, USEC_PER_MSEC,
					       mailbox_on_timer, m);
		if (r < 0)
			snprintf(err, errlen, "mailbox %s: cannot arm its poll timer: %s",
				 path, strerror(-r));
	}
	if (r < 0) {
		mailbox_free(m);
		return r;
	}
	*ret = m;
	return 0;
}

void mailbox_free(struct mailbox *m)
{
	if (!m)
		return;
	sd_event_source_disable_unref(m->timer);
	if (mailbox_file_intact(m)) {
		pb_mbox_host_set_state(m->map, PB_MBOX_HOST_OFFLINE, 0);
		munmap(m->map, m->size);
	}
	closep(&m->fd);
	json_object_put(m->pending);
	sd_event_unref(m->event);
	free(m);
}
