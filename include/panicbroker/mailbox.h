/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * The broker channel, version 1: the shared-memory mailbox between a
 * panicbroker guest and its host. protocol/SPEC.md is the contract; this
 * header is its wire layout and the interface of protocol/pb_mbox.c, a
 * library with no I/O that the guest module and the host daemon both link.
 *
 * The mailbox is the memory of an ivshmem-plain PCI device (1af4:1110,
 * BAR 2), 1 MiB by default, whose backing file the host daemon owns and
 * formats. Both sides poll it; pvpanic stays the doorbell for the panic.
 *
 * Wire rules: every field little-endian, fixed-width and naturally
 * aligned; padding explicit and zero; no pointers, bitfields or enums.
 * Each block has exactly one writer (named below); a reader copies what it
 * needs out of shared memory once and validates only its copy.
 *
 *   0x0000  header page (4 KiB), fixed offsets, one owner per block:
 *           0x000 layout block        host    (CRC32C)
 *           0x080 host control block  host
 *           0x100 guest control block guest   (CRC32C)
 *           0x180 g2h producer index  guest
 *           0x200 g2h consumer index  host
 *           0x280 h2g producer index  host
 *           0x300 h2g consumer index  guest
 *   ....    panic slot, g2h ring data, h2g ring data: where the layout
 *           block says (pb_mbox_format() puts them in that order).
 *
 * Library contract: functions return 0 (or the documented count) on
 * success and a negative errno on failure, and then, if @reason is not
 * NULL, point it at a static one-phrase reason. -EBADMSG: malformed (bad
 * CRC, impossible offsets); -EMSGSIZE: a length over its cap; -EPROTO: a
 * well-formed thing this version does not allow (wrong version, type or
 * state, sequence gap); -ENOSPC: ring full; -EINVAL: a caller error.
 * Nothing allocates, sleeps, locks or logs; every loop is bounded.
 */
#ifndef _PANICBROKER_MAILBOX_H
#define _PANICBROKER_MAILBOX_H

#include <linux/types.h>

/* The device. */
#define PB_MBOX_PCI_VENDOR		0x1af4
#define PB_MBOX_PCI_DEVICE		0x1110
#define PB_MBOX_PCI_BAR			2

/* Version: the major must match; minors only append (SPEC.md). */
#define PB_MBOX_MAGIC			0x424d4250	/* "PBMB" */
#define PB_MBOX_GUEST_MAGIC		0x43474250	/* "PBGC" */
#define PB_MBOX_VERSION_MAJOR		1
#define PB_MBOX_VERSION_MINOR		0

/* Every limit of v1. */
#define PB_MBOX_PAGE			4096u
#define PB_MBOX_SIZE_MIN		(256u * 1024)
#define PB_MBOX_SIZE_DEFAULT		(1024u * 1024)
#define PB_MBOX_SIZE_MAX		(64u * 1024 * 1024)
#define PB_MBOX_HEADER_SIZE		PB_MBOX_PAGE
#define PB_MBOX_RING_MIN		(16u * 1024)
#define PB_MBOX_RING_MAX		(256u * 1024)
#define PB_MBOX_REC_ALIGN		8u
#define PB_MBOX_RING_PAYLOAD_MAX	4096u
#define PB_MBOX_PANIC_PAYLOAD_MAX	(128u * 1024)
#define PB_MBOX_PANIC_MSG_MAX		1024u
#define PB_MBOX_PANIC_LOG_MAX		(120u * 1024)
/* Guests send at least PB_MBOX_PANIC_LOG_MIN of log, if the log has that much. */
#define PB_MBOX_PANIC_LOG_MIN		(16u * 1024)
/* The slot: its 64-byte header alone on a page, then the payload. */
#define PB_MBOX_PANIC_SLOT_SIZE		(PB_MBOX_PAGE + PB_MBOX_PANIC_PAYLOAD_MAX)
#define PB_MBOX_PANIC_SLOT_MAX		(1024u * 1024)
#define PB_MBOX_RELEASE_MAX		64u
#define PB_MBOX_VERSION_STR_MAX		32u
#define PB_MBOX_REASON_MAX		128u
/*
 * The host looks at the guest control block and the g2h producer index at
 * least every PB_MBOX_HOST_QUIET_POLL_MS, and every PB_MBOX_HOST_POLL_MS
 * while it has more to read (SPEC.md §4): an UNLOAD is acknowledged well
 * within the guest's PB_MBOX_UNLOAD_WAIT_MS.
 */
#define PB_MBOX_HOST_POLL_MS		10u
#define PB_MBOX_HOST_QUIET_POLL_MS	40u
#define PB_MBOX_UNLOAD_WAIT_MS		100u	/* guest's default wait for UNLOAD_ACK */
#define PB_MBOX_UNLOAD_WAIT_MAX_MS	1000u	/* never longer, whatever the host suggests */
/* Per VM, the host reads at most so many records a poll, records so many a second. */
#define PB_MBOX_HOST_RECORDS_PER_POLL	64u
#define PB_MBOX_HOST_KDUMP_STATUS_PER_S	16u

/* Fixed offsets in the header page. */
#define PB_MBOX_OFF_LAYOUT		0x000
#define PB_MBOX_OFF_HOST_CTL		0x080
#define PB_MBOX_OFF_GUEST_CTL		0x100
#define PB_MBOX_OFF_G2H_PROD		0x180
#define PB_MBOX_OFF_G2H_CONS		0x200
#define PB_MBOX_OFF_H2G_PROD		0x280
#define PB_MBOX_OFF_H2G_CONS		0x300

/*
 * Layout block (host): written by pb_mbox_format(), never changed until
 * the next format, which bumps host_generation. crc32c covers bytes
 * [0, offsetof(crc32c)).
 */
struct pb_mbox_layout {
	__le32 magic;			/* PB_MBOX_MAGIC */
	__le16 version_major;		/* what the host speaks */
	__le16 version_minor;
	__le32 total_size;		/* bytes the host formatted */
	__le32 header_size;		/* PB_MBOX_HEADER_SIZE */
	__le64 host_generation;		/* bumped on every (re)format */
	__le32 panic_offset;		/* page-aligned */
	__le32 panic_size;		/* >= PB_MBOX_PANIC_SLOT_SIZE */
	__le32 g2h_offset;		/* page-aligned ring data */
	__le32 g2h_size;		/* power of two, RING_MIN..RING_MAX */
	__le32 h2g_offset;
	__le32 h2g_size;
	__le32 flags;			/* 0 in v1; readers ignore unknown bits */
	__le32 reserved0;
	__le32 crc32c;
	__le32 reserved1;
};

/* Host control block (host): single fields, each written atomically. */
#define PB_MBOX_HOST_OFFLINE		0	/* no daemon (or it stopped cleanly) */
#define PB_MBOX_HOST_READY		1	/* polling, no session accepted */
#define PB_MBOX_HOST_ACTIVE		2	/* accepted_session is open */

struct pb_mbox_host_ctl {
	__le32 state;			/* PB_MBOX_HOST_* */
	__le32 reserved0;
	__le64 accepted_session;	/* 0: none */
	__le64 unload_ack_session;	/* written before unload_ack_seq */
	__le32 unload_ack_seq;		/* == the guest's unload_seq: UNLOAD_ACK */
	__le32 reserved1;
	__le64 heartbeat;		/* a new value on every host poll */
	__le64 reserved2[3];
};

/*
 * Guest control block (guest): always rewritten whole from the guest's
 * private copy; crc32c covers bytes [0, offsetof(crc32c)), so a torn read
 * fails the check and is retried at the next poll.
 */
#define PB_MBOX_ROLE_NORMAL		1
#define PB_MBOX_ROLE_KDUMP		2

#define PB_MBOX_GUEST_NONE		0	/* no session (closed or opening) */
#define PB_MBOX_GUEST_HELLO		1	/* HELLO posted, waiting for the host */
#define PB_MBOX_GUEST_ACTIVE		2	/* HELLO_ACK received */
#define PB_MBOX_GUEST_UNLOADING		3	/* UNLOAD posted (panic) */
#define PB_MBOX_GUEST_UNLOADED		4	/* UNLOAD_ACK received */

struct pb_mbox_guest_ctl {
	__le32 magic;			/* PB_MBOX_GUEST_MAGIC */
	__le16 version_major;		/* chosen: == host major */
	__le16 version_minor;		/* chosen: <= host minor */
	__le64 session_id;		/* random, never 0 */
	__le64 session_generation;	/* host_generation the session was opened on */
	__le64 prev_session;		/* KDUMP: the crashed session; NORMAL: 0 */
	__le32 role;			/* PB_MBOX_ROLE_* */
	__le32 state;			/* PB_MBOX_GUEST_* */
	__le32 unload_seq;		/* bumped with each UNLOAD */
	__le32 reserved0;
	__le64 reserved1;
	__le32 crc32c;
	__le32 reserved2;
};

/* A ring index: alone on its cache line (the block is 128 bytes apart). */
struct pb_mbox_index {
	__le32 value;			/* free-running byte count, mod 2^32 */
	__le32 reserved[15];
};

/* Ring record header; payload follows, padded with zeroes to 8 bytes. */
struct pb_mbox_rec {
	__le32 len;			/* payload bytes, without header and padding */
	__le16 type;			/* PB_MBOX_MSG_* */
	__le16 flags;			/* 0 in v1; readers ignore */
	__le32 seq;			/* 0, 1, 2, ... per ring per session, PAD included */
	__le32 crc32c;			/* over bytes 0..11 of this header, then the payload */
};

/* Message types. */
#define PB_MBOX_MSG_PAD			0x0000	/* ring: skip to the end of the data area */
#define PB_MBOX_MSG_HELLO		0x0001	/* g2h ring */
#define PB_MBOX_MSG_HELLO_ACK		0x0002	/* h2g ring */
#define PB_MBOX_MSG_PANIC		0x0003	/* panic slot only */
#define PB_MBOX_MSG_UNLOAD		0x0004	/* guest control block only */
#define PB_MBOX_MSG_UNLOAD_ACK		0x0005	/* host control block only */
#define PB_MBOX_MSG_KDUMP_STATUS	0x0006	/* g2h ring, KDUMP sessions */

/* Strings: a length and a fixed array; printable ASCII, no NUL. */
struct pb_mbox_hello {				/* 152 bytes */
	__u8 boot_id[16];		/* /proc/sys/kernel/random/boot_id, binary */
	__le64 crash_base;		/* reserved crash kernel range, 0 if none */
	__le64 crash_size;
	__le64 vmcoreinfo_paddr;	/* 0: unknown */
	__le32 flags;			/* PB_MBOX_HELLO_* */
	__le16 release_len;
	__le16 driver_version_len;
	__u8 release[PB_MBOX_RELEASE_MAX];
	__u8 driver_version[PB_MBOX_VERSION_STR_MAX];
	__le64 reserved;
};

#define PB_MBOX_HELLO_CRASH_LOADED	0x1

struct pb_mbox_hello_ack {			/* 64 bytes */
	__le64 session_id;		/* echo of the accepted session */
	__le64 host_generation;
	__le32 poll_ms;			/* host's poll period while open */
	__le32 unload_wait_ms;		/* suggested UNLOAD_ACK wait */
	__le16 daemon_version_len;
	__le16 reserved0;
	__le32 reserved1;
	__u8 daemon_version[PB_MBOX_VERSION_STR_MAX];
};

#define PB_MBOX_KDUMP_START		1
#define PB_MBOX_KDUMP_PROGRESS		2
#define PB_MBOX_KDUMP_DONE		3
#define PB_MBOX_KDUMP_FAILED		4

struct pb_mbox_kdump_status {			/* 152 bytes */
	__le32 state;			/* PB_MBOX_KDUMP_* */
	__le32 percent;			/* 0..100 */
	__le64 bytes;			/* DONE: bytes written, 0 if unknown */
	__le16 reason_len;
	__le16 reserved0;
	__le32 reserved1;
	__u8 reason[PB_MBOX_REASON_MAX];
};

/* Panic slot: header at panic_offset, payload at panic_offset + 4096. */
#define PB_MBOX_SLOT_EMPTY		0
#define PB_MBOX_SLOT_WRITING		1
#define PB_MBOX_SLOT_COMPLETE		2

struct pb_mbox_slot {
	__le32 state;			/* PB_MBOX_SLOT_*, written with release */
	__le32 seq;			/* panic writes in this session, from 1 */
	__le64 session_id;
	__le32 payload_len;		/* <= PB_MBOX_PANIC_PAYLOAD_MAX */
	__le32 crc32c;			/* over bytes 4..19 of this header, then the payload */
	__le32 tier_us;			/* advisory, not in the CRC: tier start to pvpanic */
	__le32 unload_wait_us;		/* advisory: UNLOAD to ACK; ~0u if none came */
	__le64 reserved[4];
};

/* The PANIC payload: this fixed part, then the message and the log. */
#define PB_MBOX_PANIC_CRASH_LOADED	0x1
#define PB_MBOX_PANIC_LOG_TRUNCATED	0x2	/* older log lines did not fit */
#define PB_MBOX_PANIC_FROM_OOPS		0x4	/* reached from an oops, not panic() */

struct pb_mbox_panic {				/* 64 bytes */
	__le64 uptime_ns;
	__le64 taint;
	__le32 cpu;
	__le32 flags;			/* PB_MBOX_PANIC_* */
	__le32 msg_offset;		/* from the start of the payload */
	__le32 msg_len;			/* <= PB_MBOX_PANIC_MSG_MAX */
	__le32 log_offset;
	__le32 log_len;			/* <= PB_MBOX_PANIC_LOG_MAX */
	__le64 reserved[3];
};

/* The header page, for offsetof() checks. */
struct pb_mbox_header {
	struct pb_mbox_layout layout;		/* 0x000 */
	__u8 pad0[64];
	struct pb_mbox_host_ctl host;		/* 0x080 */
	__u8 pad1[64];
	struct pb_mbox_guest_ctl guest;		/* 0x100 */
	__u8 pad2[64];
	struct pb_mbox_index g2h_prod;		/* 0x180 */
	__u8 pad3[64];
	struct pb_mbox_index g2h_cons;		/* 0x200 */
	__u8 pad4[64];
	struct pb_mbox_index h2g_prod;		/* 0x280 */
	__u8 pad5[64];
	struct pb_mbox_index h2g_cons;		/* 0x300 */
	__u8 pad6[PB_MBOX_PAGE - 0x340];
};

/* ---- The library (protocol/pb_mbox.c); host-endian values below. ---- */

__u32 pb_mbox_crc32c(__u32 crc, const void *buf, __u32 len);

/* Host: zero @mbox (@size bytes) and lay out a fresh v1 mailbox. */
int pb_mbox_format(void *mbox, __u32 size, __u64 host_generation,
		   const char **reason);
/*
 * Host: pb_mbox_format() in three steps, for a host that can zero the
 * memory faster than by writing it (punching a hole in the backing file):
 * pb_mbox_format_begin() invalidates the layout (-EINVAL for a size v1
 * does not allow), the caller zeroes all @size bytes, and
 * pb_mbox_format_finish() lays out the mailbox it finds zeroed.
 */
int pb_mbox_format_begin(void *mbox, __u32 size, const char **reason);
void pb_mbox_format_finish(void *mbox, __u32 size, __u64 host_generation);
/* Both: copy the layout block out of @mbox and validate the copy. */
int pb_mbox_read_layout(const void *mbox, __u32 mapped_size,
			struct pb_mbox_layout *copy, const char **reason);
/* Both: validate a private copy against the size actually mapped. */
int pb_mbox_check_layout(const struct pb_mbox_layout *copy, __u32 mapped_size,
			 const char **reason);

/* Guest control block: the guest's private, host-endian copy. */
struct pb_mbox_guest_info {
	__u16 version_major, version_minor;
	__u64 session_id;
	__u64 session_generation;
	__u64 prev_session;
	__u32 role, state, unload_seq;
};

void pb_mbox_guest_ctl_write(void *mbox, const struct pb_mbox_guest_info *g);
/* Host: a block never written (magic 0) reads as state NONE, session 0. */
int pb_mbox_guest_ctl_read(const void *mbox, struct pb_mbox_guest_info *g,
			   const char **reason);

/* Host control block. */
struct pb_mbox_host_info {
	__u32 state;
	__u64 accepted_session;
	__u64 unload_ack_session;
	__u32 unload_ack_seq;
	__u64 heartbeat;
};

void pb_mbox_host_ctl_read(const void *mbox, struct pb_mbox_host_info *h);
void pb_mbox_host_set_state(void *mbox, __u32 state, __u64 accepted_session);
void pb_mbox_host_ack_unload(void *mbox, __u64 session, __u32 unload_seq);
void pb_mbox_host_heartbeat(void *mbox, __u64 count);
/* Guest, panic path: has the host acknowledged UNLOAD @seq of @session? */
int pb_mbox_unload_acked(const void *mbox, __u64 session, __u32 seq);

/*
 * A ring as one side sees it: pointers into the mapping and private state.
 * Each side keeps its own index here and only ever writes it; it reads
 * only the peer's index, once per call.
 */
#define PB_MBOX_G2H			0
#define PB_MBOX_H2G			1

struct pb_mbox_ring {
	__le32 *prod;
	__le32 *cons;
	__u8 *data;
	__u32 size;			/* from a validated layout copy */
	__u32 pos;			/* our own index */
	__u32 seq;			/* next seq to write or expect */
};

/* Private state for ring @dir of @mbox; position and seq start at 0. */
void pb_mbox_ring_init(struct pb_mbox_ring *r, void *mbox,
		       const struct pb_mbox_layout *copy, int dir);
/* Guest at session open, state NONE: zero both indices of the ring. */
void pb_mbox_ring_reset(struct pb_mbox_ring *r);
/* Producer: 0, -ENOSPC (full, try later), -EMSGSIZE, -EINVAL, -EPROTO. */
int pb_mbox_ring_put(struct pb_mbox_ring *r, __u16 type, const void *payload,
		     __u32 len, const char **reason);
/*
 * Consumer: copies the next record's payload into @buf (at least
 * PB_MBOX_RING_PAYLOAD_MAX bytes), validates the copy. Returns 1 with a
 * record, 0 when the ring is empty, or an error, after which the ring is
 * not usable for the rest of the session. PAD records are consumed here.
 */
int pb_mbox_ring_get(struct pb_mbox_ring *r, void *buf, __u16 *type,
		     __u32 *len, const char **reason);

/* Payloads. Encoders return the payload length; decoders take a copy. */
struct pb_mbox_hello_info {
	__u8 boot_id[16];
	__u64 crash_base, crash_size, vmcoreinfo_paddr;
	__u32 flags;
	char release[PB_MBOX_RELEASE_MAX + 1];		/* NUL-terminated */
	char driver_version[PB_MBOX_VERSION_STR_MAX + 1];
};

int pb_mbox_hello_encode(const struct pb_mbox_hello_info *in,
			 struct pb_mbox_hello *out);
int pb_mbox_hello_decode(const void *payload, __u32 len,
			 struct pb_mbox_hello_info *out, const char **reason);

struct pb_mbox_hello_ack_info {
	__u64 session_id, host_generation;
	__u32 poll_ms, unload_wait_ms;
	char daemon_version[PB_MBOX_VERSION_STR_MAX + 1];
};

int pb_mbox_hello_ack_encode(const struct pb_mbox_hello_ack_info *in,
			     struct pb_mbox_hello_ack *out);
int pb_mbox_hello_ack_decode(const void *payload, __u32 len,
			     struct pb_mbox_hello_ack_info *out,
			     const char **reason);

struct pb_mbox_kdump_info {
	__u32 state, percent;
	__u64 bytes;
	char reason[PB_MBOX_REASON_MAX + 1];
};

int pb_mbox_kdump_encode(const struct pb_mbox_kdump_info *in,
			 struct pb_mbox_kdump_status *out);
int pb_mbox_kdump_decode(const void *payload, __u32 len,
			 struct pb_mbox_kdump_info *out, const char **reason);

/* Panic slot. @slot points at panic_offset, @slot_size is panic_size. */
struct pb_mbox_panic_info {
	__u64 uptime_ns, taint;
	__u32 cpu, flags;
};

/*
 * Guest, panic context: fill the slot (WRITING, payload, COMPLETE) with at
 * most PB_MBOX_PANIC_MSG_MAX bytes of @msg and the last
 * PB_MBOX_PANIC_LOG_MAX bytes of @log. No allocation, no locks, bounded.
 */
int pb_mbox_panic_write(void *slot, __u32 slot_size, __u64 session,
			__u32 seq, const struct pb_mbox_panic_info *info,
			const char *msg, __u32 msg_len,
			const char *log, __u32 log_len);
void pb_mbox_panic_set_timing(void *slot, __u32 tier_us, __u32 unload_wait_us);

struct pb_mbox_panic_view {
	__u64 session_id;
	__u32 seq;
	__u32 tier_us, unload_wait_us;	/* advisory */
	struct pb_mbox_panic_info info;
	const char *msg;		/* into the caller's buffer, not NUL-terminated */
	__u32 msg_len;
	const char *log;
	__u32 log_len;
};

/*
 * Host: copy a COMPLETE slot into @buf (PB_MBOX_PANIC_PAYLOAD_MAX bytes)
 * and validate the copy. Returns 1 with a record, 0 if the slot is EMPTY
 * or WRITING (or changed while we copied: try again), or an error.
 */
int pb_mbox_panic_read(const void *slot, __u32 slot_size, void *buf,
		       struct pb_mbox_panic_view *out, const char **reason);
int pb_mbox_panic_decode(const void *payload, __u32 len,
			 struct pb_mbox_panic_view *out, const char **reason);

#endif /* _PANICBROKER_MAILBOX_H */
