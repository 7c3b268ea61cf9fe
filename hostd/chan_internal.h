/* SPDX-License-Identifier: MIT */
/*
 * Inside the host end of the broker channel (hostd/chan.h), shared by its
 * three files: chan.c (the object's life and its poll timer), chan_look.c
 * (one look at the mailbox: what the guest wrote, turned into events) and
 * chan_file.c (the file, created or adopted, and mapped). Not an interface
 * for anything else.
 */
#ifndef PB_CHAN_INTERNAL_H
#define PB_CHAN_INTERNAL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <panicbroker/mailbox.h>

#include "chan.h"
#include "ratelimit.h"
#include "util.h"

#define CHAN_LOGGED_REASONS 32

/* ---- the file (chan_file.c): no protocol, no logging ---- */

struct chan_file {
	int fd;
	void *map;		/* NULL: not mapped (or given up) */
	uint32_t size;		/* bytes mapped */
	/*
	 * The header page again, beside the other mailboxes' (chan_peek.c),
	 * for the sweep's quick checks; == map where that mapping failed.
	 */
	void *peek;
	/*
	 * Set by the SIGBUS guard (chan_file.c) when an access faulted because
	 * the file shrank under the mapping: the mapping is zero pages now.
	 */
	volatile sig_atomic_t faulted;
	struct chan_file *guard_next, *guard_prev; /* the guard's list of mappings */
};

#define CHAN_FILE_INIT { .fd = -1 }

/*
 * Creates (0600, PB_MBOX_SIZE_DEFAULT) or adopts @path, never truncating a
 * file that exists (QEMU may have it mapped), and maps it whole; refuses a
 * size v1 does not allow. Negative errno, the reason in @err.
 */
int chan_file_open(struct chan_file *f, const char *path, char *err, size_t errlen);
/*
 * True while the file still covers the mapping and no access faulted.
 * Touching a page past the end of a truncated file is SIGBUS: every mapping
 * is guarded (chan_file.c says how), so a truncation racing a look costs that
 * look's bytes (zeros, refused as malformed) and the mailbox, not the daemon.
 */
bool chan_file_intact(const struct chan_file *f);
/*
 * Drops the daemon's page table entries for the whole mapping (the bytes
 * stay in the file): formatting touched every page, and a thousand mailboxes
 * of 1 MiB would count a GiB in the daemon's RSS. Pages come back as looked at.
 */
void chan_file_trim(struct chan_file *f);
/*
 * Makes the whole file read as zero by punching a hole over it, so that no
 * page is written and none stays in memory; negative errno where the file
 * system cannot (the caller writes the zeroes then).
 */
int chan_file_zero(struct chan_file *f);
/* Unmaps (the file stays). */
void chan_file_unmap(struct chan_file *f);
/* Unmaps and closes. */
void chan_file_close(struct chan_file *f);
/* A host generation for a file with no valid layout: the realtime clock in ns. */
uint64_t chan_file_clock_generation(void);

/* ---- the header pages side by side (chan_peek.c): no protocol, no logging ---- */

/* Maps the first page of @fd (shared, read-write) beside the others; NULL, errno. */
void *chan_peek_map(int fd);
void chan_peek_unmap(void *page);

/* ---- the channel ---- */

/* What a guest writes to say something (chan_sweep.c): its control block, its g2h producer. */
#define CHAN_WATCH_WORDS (sizeof(struct pb_mbox_guest_ctl) / sizeof(uint64_t))

struct chan_watch {
	uint64_t ctl[CHAN_WATCH_WORDS];
	uint32_t prod;
	uint32_t pad;		/* zero: compared with memcmp() */
};

struct chan_sweep;

struct chan {
	char vm[VM_NAME_MAX + 1];
	char *path;
	sd_event *event;
	struct chan_sweep *sweep;	/* while started */
	size_t sweep_index;
	struct chan_watch watch;	/* at the start of the last full look */
	bool watch_valid;
	const struct chan_ops *ops;
	void *ud;

	struct chan_file file;
	struct pb_mbox_layout layout;	/* our own, validated copy */
	uint64_t generation;
	uint64_t heartbeat;
	bool started;			/* events may be delivered */
	bool looking;			/* in a look: no second one from a callback */
	unsigned int delivered;		/* events of this look */
	bool kdump;			/* the VM is in its kdump kernel */

	/* The session: accepted, or refused as malformed (not looked at again). */
	uint64_t session;
	uint32_t role;
	uint64_t prev_session;		/* KDUMP: the crashed session */
	uint64_t bad_session;
	bool ring_broken;
	bool unload_acked;
	uint32_t unload_seq;
	struct pb_mbox_ring g2h, h2g;
	struct chan_guest guest;	/* its HELLO, while have_hello */
	bool have_hello;
	unsigned int ctl_crc_fails;
	bool backlog;			/* the last look left ring records for the next */

	/* The panic slot. */
	bool salvaged;			/* a record kept aside at open, for chan_start */
	struct pb_mbox_panic_view salvage; /* into slot */
	uint8_t *slot;			/* PB_MBOX_PANIC_PAYLOAD_MAX, while salvaged */
	uint64_t panic_session;		/* the last record (dedup by session and seq) */
	uint32_t panic_seq;
	struct ratelimit panic_rl;
	bool slot_retry;		/* a record held back by panic_rl */
	unsigned int timing_polls;

	struct ratelimit kdump_rl;
	uint64_t kdump_dropped;		/* reports over kdump_rl, not reported yet */
	struct ratelimit session_log_rl;
	uint64_t unknown;		/* ring records of unknown types, skipped */
	uint64_t unknown_reported;
	struct ratelimit unknown_rl;
	uint64_t malformed;
	uint64_t malformed_reported;
	const char *malformed_what, *malformed_reason; /* the last one */
	struct ratelimit malformed_rl;
	const char *logged[CHAN_LOGGED_REASONS];
	unsigned int n_logged;

};

/* True while every tick must look fully, whatever the guest wrote (chan.c). */
bool chan_fast(const struct chan *c);

/* ---- the sweep (chan_sweep.c): one timer looks at every started channel ---- */

/*
 * Every PB_MBOX_HOST_POLL_MS, each channel added gets a quick check (did the
 * guest write its control block or g2h producer index since the last full
 * look? a heartbeat either way) and a full look when it did, when
 * chan_fast(), or every few seconds regardless. One sweep per event loop,
 * made with its first channel and gone with its last. Add: negative errno.
 * Remove is safe from inside a look's callback.
 */
int chan_sweep_add(struct chan *c);
void chan_sweep_remove(struct chan *c);
/* Takes the bytes the quick check compares with; at the start of each full look. */
void chan_sweep_mark(struct chan *c);
/* Tells the sweep what chan_fast() says now; after each look and change of state. */
void chan_sweep_update(struct chan *c);

/* ---- one look (chan_look.c) ---- */

/*
 * Looks at the mailbox once (@doorbell: the panic slot too) and calls
 * ops->end() if that delivered anything. Nothing before chan_start(), nothing
 * from inside a callback of a look, nothing once the file was given up.
 */
void chan_look(struct chan *c, bool doorbell);
/* chan_start()'s look: the salvaged record, the malformed count of the open. */
void chan_look_salvaged(struct chan *c);
/* Counts malformed guest input, logs it once per reason, reports it (rate-limited). */
void chan_malformed(struct chan *c, const char *what, const char *reason);
/* False (and logged, the mapping dropped) once the file shrank. */
bool chan_intact(struct chan *c);

#endif
