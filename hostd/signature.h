/* SPDX-License-Identifier: MIT */
/*
 * signature: a crash's signature from the guest's panic text.
 *
 * From the panic message and the kernel log tail of a panic record
 * (panic.message, panic.log_tail), or from a snapshot's log alone
 * (dmesg.txt, message NULL), sig_compute() makes:
 *
 *   kind     what happened, one of enum sig_kind (sig_kind_name() gives
 *            its stable name, e.g. "null-deref", "soft-lockup")
 *   title    a short human title, e.g. "BUG: kernel NULL pointer
 *            dereference in foo_probe", "WARNING in bar_ioctl",
 *            "sysrq triggered crash"
 *   guilty   the guilty frame: the first frame of the report's trace
 *            (the RIP of the oops first) that is not plumbing (panic,
 *            oops, printk, dump, sanitizer, lock, string, scheduler and
 *            wait, interrupt entry, kprobe, ftrace, the panicbroker tier;
 *            for out-of-memory also the allocator), without offset,
 *            module tag or compiler suffix (.cold, .isra.0, _noprof)
 *   frames   the frames hashed into the bucket: the guilty frame and up
 *            to SIG_BUCKET_FRAMES - 1 frames that follow it, plumbing
 *            skipped, stopping before a dispatch frame (do_one_initcall,
 *            do_syscall_64, kthread, worker_thread, ...): what called the
 *            buggy code through the kernel's generic paths does not split
 *            a bug. None for crashes the operator asked for (sysrq, NMI),
 *            where the frames say nothing about a bug.
 *   bucket   16 hex digits: FNV-1a 64 over the algorithm version, the
 *            kind, the kind's normalised detail (e.g. the KASAN bug type,
 *            the text of a "BUG: ..." line, a plain panic's message with
 *            its numbers folded) and the frames. The same bug on another
 *            kernel build or host lands in the same bucket; different
 *            bugs differ.
 *
 * Which report: the log may hold several. The message says which: a
 * panic whose message names its cause ("softlockup: hung tasks",
 * "hung_task: blocked tasks", "... panic_on_warn set ...", "Fatal
 * exception", "Out of memory ...") takes the last report of that cause
 * before the last "Kernel panic - not syncing" line (for panic_on_warn: a
 * WARNING, or a KASAN, UBSAN, KFENCE report); an oops that went to
 * kdump without panic() has its own header line as the message; the
 * crashes that are the panic itself (sysrq, NMI, stack-protector, any
 * other message) take the trace printed after the panic line. Without a
 * message, the log's last "Kernel panic - not syncing" line is the
 * message, else its last oops header.
 *
 * Contract:
 *   - Pure: no I/O, no logging, no global state; safe in any thread.
 *     Memory is allocated only inside a call and freed before it returns.
 *   - The text is the guest's: any bytes, any length, NULs included. Only
 *     the first SIG_MESSAGE_MAX bytes of the message and the last
 *     SIG_LOG_MAX bytes of the log are read; a line is read up to
 *     SIG_LINE_MAX bytes. Lines may carry "<N>" levels, "N,N,N,-;" /dev/kmsg
 *     prefixes and "[   12.345678]" timestamps; "\r" is ignored. Every
 *     string in struct sig is printable ASCII, NUL-terminated, truncated to
 *     its array.
 *   - sig_compute() returns 0 with @ret filled (also for text with no
 *     crash in it: kind SIG_KIND_UNKNOWN, title "unknown crash"), -EINVAL
 *     for a NULL @ret or NULL text with a length, -ENOMEM. On error @ret is
 *     left as an unknown crash.
 *   - SIG_VERSION changes whenever the same input would give another
 *     kind, title, guilty frame or bucket; buckets of different versions
 *     are not comparable.
 */
#ifndef PB_SIGNATURE_H
#define PB_SIGNATURE_H

#include <stddef.h>

#define SIG_VERSION        1
#define SIG_MESSAGE_MAX    4096
#define SIG_LOG_MAX        (256 * 1024)
#define SIG_LINE_MAX       512
#define SIG_TITLE_MAX      128       /* with the NUL */
#define SIG_FRAME_MAX      80        /* a function's name, with the NUL */
#define SIG_MODULE_MAX     64
#define SIG_BUCKET_FRAMES  3
#define SIG_BUCKET_LEN     16        /* hex digits */

enum sig_kind {
	SIG_KIND_UNKNOWN = 0,   /* no crash found in the text */
	SIG_KIND_NULL_DEREF,    /* BUG: kernel NULL pointer dereference */
	SIG_KIND_PAGING,        /* BUG: unable to handle page fault / paging request */
	SIG_KIND_GPF,           /* general protection fault */
	SIG_KIND_BUG,           /* kernel BUG at FILE:LINE! (BUG()) */
	SIG_KIND_INVALID_OPCODE,/* invalid opcode, not from BUG() */
	SIG_KIND_DIVIDE,        /* divide error */
	SIG_KIND_OOPS,          /* another oops ("Oops: int3", "stack segment", ...) */
	SIG_KIND_WARNING,       /* WARNING: ... (a panic with panic_on_warn) */
	SIG_KIND_KASAN,         /* BUG: KASAN: TYPE in ... */
	SIG_KIND_UBSAN,         /* UBSAN: TYPE in ... */
	SIG_KIND_BUG_OTHER,     /* another "BUG: WHAT" report */
	SIG_KIND_STACK_PROTECTOR,/* stack-protector: Kernel stack is corrupted in: F */
	SIG_KIND_SOFT_LOCKUP,   /* watchdog: BUG: soft lockup */
	SIG_KIND_HARD_LOCKUP,   /* watchdog: Watchdog detected hard LOCKUP */
	SIG_KIND_HUNG_TASK,     /* INFO: task C:P blocked for more than N seconds */
	SIG_KIND_RCU_STALL,     /* rcu: INFO: ... detected stalls */
	SIG_KIND_OOM,           /* out of memory with panic_on_oom */
	SIG_KIND_SYSRQ,         /* sysrq triggered crash (echo c > /proc/sysrq-trigger) */
	SIG_KIND_NMI,           /* NMI: Not continuing (unknown_nmi_panic, inject-nmi) */
	SIG_KIND_PANIC,         /* panic() with any other message */
	SIG_KIND_COUNT
};

struct sig {
	unsigned int version;                   /* SIG_VERSION */
	enum sig_kind kind;
	char title[SIG_TITLE_MAX];
	char guilty[SIG_FRAME_MAX];             /* "" when none was found */
	char guilty_module[SIG_MODULE_MAX];     /* its module; "" for the kernel itself */
	unsigned int nframes;                   /* frames[0..nframes) were hashed */
	char frames[SIG_BUCKET_FRAMES][SIG_FRAME_MAX];
	char bucket[SIG_BUCKET_LEN + 1];
};

/*
 * sig_compute() - the signature of a crash
 * @msg, @msg_len: the panic message (panic.message), or NULL/0
 * @log, @log_len: the kernel log tail (panic.log_tail) or a whole log
 *                 (dmesg.txt), or NULL/0
 * @ret: filled in
 */
int sig_compute(const char *msg, size_t msg_len, const char *log, size_t log_len,
		struct sig *ret);

/* "null-deref", "soft-lockup", ...; "unknown" for a value out of range. */
const char *sig_kind_name(enum sig_kind kind);

/*
 * sig_to_json() - the record's "signature" object (docs/record.md):
 * {"version", "kind", "title", "guilty_frame", "guilty_module", "frames",
 * "bucket"}; guilty_frame and guilty_module are null when empty.
 * Returns 0 and a new object in @ret (the caller puts it), or -ENOMEM.
 */
struct json_object;
int sig_to_json(const struct sig *s, struct json_object **ret);

#endif /* PB_SIGNATURE_H */
