/* SPDX-License-Identifier: MIT */
/*
 * The host end of the broker channel v1 (protocol/SPEC.md): one VM's
 * mailbox file (the memory of its ivshmem-plain device). It creates or
 * adopts the file, salvages a COMPLETE panic slot, formats it with a new
 * host generation, accepts the guest's sessions, acknowledges UNLOAD and
 * polls on a timer: fast while a session is busy or the VM is in kdump,
 * slowly otherwise.
 *
 * Contract:
 *  - Guest bytes are only ever read through the pb_mbox_* library's private
 *    copies. Nothing in an event points into the shared memory; pointers in
 *    an event are valid during the callback only.
 *  - What the guest says is delivered as typed events (below), never as
 *    JSON: the crash record is not this module's. After each look at the
 *    mailbox that delivered anything, ops->end() is called once, so the
 *    receiver can persist once per look.
 *  - Every guest-driven event is bounded in rate here: panic records one a
 *    second, KDUMP_STATUS PB_MBOX_HOST_KDUMP_STATUS_PER_S a second (the rest
 *    are counted and reported as CHAN_EV_REPORTS_DROPPED), malformed input
 *    one event a second (with the running count), sessions without limit
 *    but cheap.
 *  - A file that shrinks under the daemon gives the mailbox up (logged),
 *    never the daemon.
 *  - It logs what the guest did wrong, once per kind of wrong.
 */
#ifndef PB_CHAN_H
#define PB_CHAN_H

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include <panicbroker/mailbox.h>

struct chan;

/* The guest kernel that opened a session (its HELLO). */
struct chan_guest {
	uint64_t session;
	struct pb_mbox_hello_info hello;
};

/* A panic record, validated; msg and log are printable-unsafe guest bytes. */
struct chan_panic {
	uint64_t session;
	uint32_t seq;
	struct pb_mbox_panic_info info;  /* uptime_ns, taint, cpu, flags */
	const char *msg;
	uint32_t msg_len;
	const char *log;
	uint32_t log_len;
	const char *source;              /* how it was read, for the record */
	const struct chan_guest *guest;  /* the session's HELLO, if still open */
	bool salvaged;                   /* left in the mailbox before the daemon started */
};

enum chan_event_type {
	CHAN_EV_PANIC,           /* .panic */
	CHAN_EV_TIMING,          /* the guest's advisory timing of that panic: .timing */
	CHAN_EV_UNLOAD,          /* UNLOAD acknowledged: .session, .unload_seq */
	CHAN_EV_SESSION,         /* a session accepted: .session, .role, .prev_session, .guest */
	CHAN_EV_KDUMP_REPORT,    /* a KDUMP_STATUS of the open KDUMP session: .report */
	CHAN_EV_REPORTS_DROPPED, /* .count more over the rate limit */
	CHAN_EV_MALFORMED,       /* .what, .reason, .count (all so far) */
	CHAN_EV_UNKNOWN_RECORDS, /* ring records of unknown types skipped: .count (all so far) */
};

struct chan_timing {
	uint64_t session;
	uint32_t seq;
	uint32_t tier_us;         /* 0: not given */
	bool acked;               /* the guest saw UNLOAD_ACK */
	uint32_t rtt_us;          /* when acked */
};

struct chan_report {
	uint32_t state;           /* PB_MBOX_KDUMP_START..FAILED */
	uint32_t percent;
	uint64_t bytes;
	const char *reason;       /* FAILED: NUL-terminated guest text (unescaped) */
};

struct chan_event {
	enum chan_event_type type;
	uint64_t session;         /* the session it came from (0: none) */
	uint32_t role;            /* PB_MBOX_ROLE_* of that session */
	uint64_t prev_session;    /* KDUMP: the crashed session it names */
	const struct chan_guest *guest;
	const struct chan_panic *panic;
	struct chan_timing timing;
	struct chan_report report;
	uint32_t unload_seq;
	const char *what, *reason;
	uint64_t count;
};

struct chan_ops {
	void (*event)(void *ud, const struct chan_event *ev);
	/* One look at the mailbox is over (only after it delivered events). */
	void (*end)(void *ud);
};

/*
 * Creates (0600, 1 MiB) or adopts the file at @path, maps it, keeps a
 * COMPLETE panic slot aside and formats the mailbox. No event is delivered
 * before chan_start(). Errors: negative errno, reason in @err.
 */
int chan_open(sd_event *e, const char *vm, const char *path,
	      const struct chan_ops *ops, void *ud, struct chan **ret,
	      char *err, size_t errlen);
/* Delivers the salvaged panic record (source "salvaged ..."), starts polling. */
int chan_start(struct chan *c);
/* The pvpanic doorbell: looks now, at the panic slot too. */
void chan_poll(struct chan *c);
/* Reads what the guest left before the VM resets or stops (no slot look). */
void chan_drain(struct chan *c);
/* The VM is in its kdump kernel: poll fast (its session opens and ends quickly). */
void chan_set_kdump(struct chan *c, bool kdump);
/* The session open now (0: none), and its role. */
uint64_t chan_session(const struct chan *c, uint32_t *ret_role);
/* Writes host state OFFLINE, unmaps, closes. */
void chan_free(struct chan *c);

#endif
