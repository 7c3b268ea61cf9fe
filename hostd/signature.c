// SPDX-License-Identifier: MIT
/*
 * signature: a crash's signature from the guest's panic text (signature.h).
 *
 * The log is cut into lines (prefixes stripped), the message classified,
 * the report it speaks of found, its trace read into frames, plumbing
 * dropped, and the title and bucket made from what is left. Every read is
 * bounded by a length: the text is the guest's.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "signature.h"

/* Frames read from one trace, plumbing included. */
#define SIG_TRACE_MAX      64
/* How far after a report's header its "Call Trace:" may start. */
#define SIG_TRACE_WINDOW   200
/* How far before a secondary oops line ("Oops: 0000 [#1]") its primary is. */
#define SIG_PRIMARY_WINDOW 8
#define SIG_DETAIL_MAX     96

struct sig_line {
	const char *p;
	size_t len;
};

struct sig_frame {
	char name[SIG_FRAME_MAX];
	char module[SIG_MODULE_MAX];
};

/* What the message (or the log's last header) says to look for. */
enum sig_want {
	SIG_WANT_NONE,          /* the panic itself: its own trace */
	SIG_WANT_KIND,          /* the last report of kind `want_kind` */
	SIG_WANT_OOPS,          /* the last oops of any kind */
	SIG_WANT_LINE,          /* the line that is the message */
};

struct sig_ctx {
	struct sig_line *lines;
	size_t nlines;
	char msg[SIG_LINE_MAX + 1];
	size_t msg_len;
	enum sig_kind kind;
	char detail[SIG_DETAIL_MAX];    /* kind's detail, for title and bucket */
	struct sig_frame head;          /* RIP, WARNING's caller, or the message's */
	bool has_head;
	struct sig_frame trace[SIG_TRACE_MAX];
	size_t ntrace;
};

static const char *const sig_kind_names[SIG_KIND_COUNT] = {
	[SIG_KIND_UNKNOWN] = "unknown",
	[SIG_KIND_NULL_DEREF] = "null-deref",
	[SIG_KIND_PAGING] = "paging-request",
	[SIG_KIND_GPF] = "gpf",
	[SIG_KIND_BUG] = "bug",
	[SIG_KIND_INVALID_OPCODE] = "invalid-opcode",
	[SIG_KIND_DIVIDE] = "divide-error",
	[SIG_KIND_OOPS] = "oops",
	[SIG_KIND_WARNING] = "warning",
	[SIG_KIND_KASAN] = "kasan",
	[SIG_KIND_UBSAN] = "ubsan",
	[SIG_KIND_BUG_OTHER] = "bug-other",
	[SIG_KIND_STACK_PROTECTOR] = "stack-protector",
	[SIG_KIND_SOFT_LOCKUP] = "soft-lockup",
	[SIG_KIND_HARD_LOCKUP] = "hard-lockup",
	[SIG_KIND_HUNG_TASK] = "hung-task",
	[SIG_KIND_RCU_STALL] = "rcu-stall",
	[SIG_KIND_OOM] = "oom",
	[SIG_KIND_SYSRQ] = "sysrq",
	[SIG_KIND_NMI] = "nmi",
	[SIG_KIND_PANIC] = "panic",
};

const char *sig_kind_name(enum sig_kind kind)
{
	if ((unsigned int)kind >= SIG_KIND_COUNT)
		return "unknown";
	return sig_kind_names[kind];
}

/* --- plumbing ------------------------------------------------------------ */

/*
 * Frames that report, dispatch or wrap a crash rather than cause it. An
 * entry ending in '*' matches by prefix. Names are compared after
 * sig_frame_name() has cut offsets and compiler suffixes.
 */
static const char *const sig_plumbing[] = {
	/* panic, oops, die, exceptions */
	"panic", "nmi_panic", "vpanic", "__warn", "warn_slowpath_fmt", "warn_slowpath_null",
	"report_bug", "handle_bug", "do_trap", "do_error_trap", "die", "__die", "__die_body",
	"die_addr", "oops_begin", "oops_end", "crash_kexec", "__crash_kexec",
	"check_panic_on_warn", "__stack_chk_fail", "page_fault_oops",
	"kernelmode_fixup_or_oops", "no_context", "__bad_area_nosemaphore",
	"bad_area_nosemaphore", "__bad_area", "bad_area", "do_user_addr_fault",
	"do_kern_addr_fault", "handle_page_fault", "fixup_exception", "math_error",
	"exc_*", "asm_exc_*", "do_int3*", "notify_die", "__die_header",
	/* interrupts, timers, watchdogs */
	"asm_sysvec_*", "sysvec_*", "__sysvec_*", "irq_exit_rcu", "__irq_exit_rcu",
	"handle_softirqs", "__do_softirq", "do_softirq*", "irqentry_*", "common_interrupt",
	"asm_common_interrupt", "__common_interrupt", "irq_exit", "__run_hrtimer",
	"__hrtimer_run_queues", "hrtimer_interrupt", "hrtimer_run_queues",
	"watchdog_timer_fn", "watchdog_overflow_callback", "watchdog_hardlockup_check",
	"watchdog_buddy_check_hardlockup", "__perf_event_overflow", "perf_event_overflow",
	"handle_pmi_common", "intel_pmu_handle_irq", "x86_pmu_handle_irq",
	"perf_event_nmi_handler", "perf_ibs_nmi_handler", "update_process_times",
	"tick_sched_handle", "tick_sched_timer", "tick_nohz_handler",
	"tick_handle_periodic", "rcu_sched_clock_irq", "rcu_pending", "check_cpu_stall",
	"print_cpu_stall", "print_other_cpu_stall", "rcu_dump_cpu_stacks",
	"nmi_cpu_backtrace", "nmi_cpu_backtrace_handler", "nmi_trigger_cpumask_backtrace",
	"arch_trigger_cpumask_backtrace", "trigger_all_cpu_backtrace",
	"trigger_single_cpu_backtrace", "nmi_handle",
	"default_do_nmi", "unknown_nmi_error", "end_repeat_nmi", "repeat_nmi",
	"first_nmi", "nested_nmi*",
	/* the idle loop (what an NMI interrupts on an idle CPU) */
	"default_idle", "default_idle_call", "amd_e400_idle", "pv_native_safe_halt",
	"native_safe_halt", "arch_safe_halt", "safe_halt", "arch_cpu_idle", "cpuidle_enter*",
	"cpuidle_idle_call", "mwait_idle*", "acpi_idle_*", "acpi_safe_halt", "intel_idle*",
	"cpu_idle_poll", "default_enter_idle", "do_idle", "cpu_startup_entry",
	"start_secondary", "secondary_startup_64*", "common_startup_64", "rest_init",
	"arch_call_rest_init",
	"start_kernel", "x86_64_start_kernel", "x86_64_start_reservations",
	/* the hung task detector (khungtaskd) */
	"watchdog", "check_hung_uninterruptible_tasks", "check_hung_task",
	/* notifiers (pvpanic and other panic hooks) */
	"notifier_call_chain", "atomic_notifier_call_chain", "raw_notifier_call_chain",
	"blocking_notifier_call_chain", "pvpanic_*",
	/* printk, dumping */
	"printk*", "_printk*", "__printk*", "vprintk*", "console_unlock",
	"console_flush_all", "console_emit_next_record", "dump_stack*", "__dump_stack",
	"show_stack", "show_trace_log_lvl", "show_regs", "__show_regs",
	"show_regs_if_on_stack", "show_iret_regs", "sched_show_task", "show_state_filter",
	"print_modules", "debug_show_all_locks", "__schedule_bug", "__might_sleep",
	"___might_sleep", "__might_resched", "__might_fault",
	/* sanitizers, hardening */
	"kasan_*", "__kasan_*", "__asan_*", "asan_*", "kmsan_*", "__msan_*", "ubsan_*",
	"__ubsan_*", "kcsan_*", "__kcsan_*", "__tsan_*", "kfence_*", "__kfence_*",
	"check_memory_region*", "print_address_description*", "print_report", "start_report",
	"end_report", "fortify_panic", "__fortify_panic", "__fortify_report",
	"check_heap_object", "__check_heap_object", "__check_object_size",
	"usercopy_abort", "refcount_warn_saturate", "__list_add_valid*",
	"__list_del_entry_valid*", "__list_valid_slowpath",
	/* locks */
	"lock_acquire*", "lock_release", "lock_acquired", "lock_contended", "__lock_acquire",
	"lockdep_*", "__lockdep_*", "_raw_spin_*", "_raw_read_*", "_raw_write_*",
	"raw_spin_*", "do_raw_spin_*", "queued_spin_lock_slowpath",
	"native_queued_spin_lock_slowpath", "__pv_queued_spin_lock_slowpath",
	"pv_queued_spin_lock_slowpath", "queued_read_lock_slowpath",
	"queued_write_lock_slowpath", "mutex_lock*", "__mutex_lock*", "mutex_unlock",
	"__mutex_unlock_slowpath", "down", "down_*", "__down", "__down_*", "up", "up_read",
	"up_write", "rwsem_*", "__rwsem_*", "rt_mutex_*", "__rt_mutex_*", "rt_spin_*",
	"preempt_count_add", "preempt_count_sub", "__local_bh_enable_ip",
	"local_bh_enable",
	/* the scheduler, sleeping and waiting */
	"__schedule", "schedule", "schedule_*", "preempt_schedule*", "io_schedule*",
	"wait_for_completion*", "__wait_for_common", "wait_for_common*",
	"do_wait_for_common", "wait_woken", "__wait_event*", "prepare_to_wait*",
	"finish_wait", "msleep*", "usleep_range*", "schedule_hrtimeout*", "do_nanosleep",
	"hrtimer_nanosleep", "__switch_to*", "context_switch", "finish_task_switch*",
	"__cond_resched", "_cond_resched", "folio_wait_bit*", "wait_on_page_bit*",
	"bit_wait*", "out_of_line_wait_on_bit*", "__wait_on_bit*",
	/* strings and copies */
	"memcpy*", "memset*", "memmove*", "__memcpy*", "__memset*", "__memmove*",
	"memcmp", "__memcmp", "bcmp", "memchr", "memchr_inv", "strcpy", "strncpy",
	"strscpy*", "sized_strscpy", "strlcpy", "strlcat", "strcat", "strncat", "strlen",
	"strnlen", "strcmp", "strncmp", "strcasecmp", "strncasecmp", "strchr", "strrchr",
	"strnchr", "strstr", "strnstr", "copy_user_*", "rep_movs_alternative",
	"_copy_to_user", "_copy_from_user", "copy_to_user*", "copy_from_user*",
	/* kprobes, ftrace */
	"kprobe*", "__kprobe*", "kretprobe*", "__kretprobe*", "arch_rethook*", "rethook_*",
	"optimized_callback", "opt_pre_handler", "aggr_pre_handler",
	"pre_handler_kretprobe", "ftrace_*", "__ftrace_*", "arch_ftrace_*", "fprobe_*",
	"fentry_*", "__fentry__", "int3_*", "poke_int3_handler", "text_poke*",
	/* the panicbroker tier, when it has no module tag */
	"pb_tier*", "pb_hook*", "pb_chan_panic*", "pb_pvpanic*",
};

/* The allocator: plumbing only in an out-of-memory report. */
static const char *const sig_plumbing_oom[] = {
	"out_of_memory", "oom_kill_process", "check_panic_on_oom", "dump_header",
	"dump_tasks", "__alloc_pages*", "alloc_pages*", "__alloc_frozen_pages*",
	"alloc_frozen_pages*", "get_page_from_freelist", "__folio_alloc*", "folio_alloc*",
	"alloc_page_interleave", "__get_free_pages", "get_zeroed_page",
	"pagefault_out_of_memory", "kmalloc*", "__kmalloc*", "kmem_cache_alloc*",
	"__kmem_cache_alloc*", "slab_alloc*", "___slab_alloc", "__slab_alloc*",
	"allocate_slab", "new_slab", "kvmalloc*", "__kvmalloc*", "vmalloc*", "__vmalloc*",
	"alloc_pages_mpol*", "alloc_pages_bulk*", "__alloc_pages_bulk*",
};

/*
 * Dispatch frames: how the kernel came to call the buggy code (module
 * init, a system call, a kernel thread, a work item, the idle loop). A
 * bucket's frames stop before the first of them.
 */
static const char *const sig_dispatch[] = {
	"do_one_initcall", "do_init_module", "load_module", "init_module_from_file",
	"idempotent_init_module", "do_syscall_64", "do_syscall_x64", "do_syscall_32*",
	"x64_sys_call", "entry_SYSCALL*", "entry_SYSENTER*", "entry_INT80*",
	"do_fast_syscall_32", "do_int80_syscall_32", "__x64_sys_*", "__ia32_sys_*",
	"__do_sys_*", "__se_sys_*", "ret_from_fork*", "kthread", "worker_thread",
	"process_one_work", "process_scheduled_works", "smpboot_thread_fn", "do_idle",
	"cpu_startup_entry", "start_secondary", "secondary_startup_64*",
	"common_startup_64", "start_kernel", "rest_init", "kernel_init",
	"kernel_init_freeable", "x86_64_start_kernel", "x86_64_start_reservations",
	"call_timer_fn", "run_timer_softirq", "__run_timers", "tasklet_action*",
	"rcu_do_batch", "rcu_core", "rcu_core_si",
};

static bool sig_name_in(const char *name, const char *const *list, size_t n)
{
	size_t i, len;

	for (i = 0; i < n; i++) {
		len = strlen(list[i]);
		if (len && list[i][len - 1] == '*') {
			if (!strncmp(name, list[i], len - 1))
				return true;
		} else if (!strcmp(name, list[i])) {
			return true;
		}
	}
	return false;
}

#define SIG_IN(name, list) sig_name_in((name), (list), sizeof(list) / sizeof((list)[0]))

static bool sig_is_plumbing(const struct sig_frame *f, enum sig_kind kind)
{
	if (!strcmp(f->module, "panicbroker"))
		return true;
	if (SIG_IN(f->name, sig_plumbing))
		return true;
	return kind == SIG_KIND_OOM && SIG_IN(f->name, sig_plumbing_oom);
}

/* --- text helpers -------------------------------------------------------- */

static bool sig_isdigit(char c)
{
	return c >= '0' && c <= '9';
}

static bool sig_isxdigit(char c)
{
	return sig_isdigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool sig_isalpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool sig_issym(char c)
{
	return sig_isalpha(c) || sig_isdigit(c) || c == '_' || c == '.' || c == '$';
}

static bool sig_starts(const char *p, size_t n, const char *pfx)
{
	size_t k = strlen(pfx);

	return n >= k && !memcmp(p, pfx, k);
}

/* Offset of @needle in p[0..n), or -1. */
static long sig_find(const char *p, size_t n, const char *needle)
{
	size_t k = strlen(needle);
	const char *hit;

	if (k > n)
		return -1;
	hit = memmem(p, n, needle, k);
	return hit ? (long)(hit - p) : -1;
}

/*
 * Copies p[0..n) into @out (size @size) as printable ASCII: other bytes
 * become '?', runs of spaces one space, ends trimmed.
 */
static void sig_copy_clean(char *out, size_t size, const char *p, size_t n)
{
	size_t o = 0, i;

	if (!size)
		return;
	for (i = 0; i < n && o + 1 < size; i++) {
		char c = p[i];

		if (c == '\t')
			c = ' ';
		if ((unsigned char)c < 0x20 || (unsigned char)c > 0x7e)
			c = '?';
		if (c == ' ' && (o == 0 || out[o - 1] == ' '))
			continue;
		out[o++] = c;
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
}

/* Copies the string @src into @out (size @size), truncating. */
static void sig_strlcpy(char *out, size_t size, const char *src)
{
	size_t n = strnlen(src, size ? size - 1 : 0);

	if (!size)
		return;
	memcpy(out, src, n);
	out[n] = '\0';
}

/* "printf" into a fixed buffer; output is truncated, never overrun. */
__attribute__((format(printf, 3, 4)))
static void sig_fmt(char *out, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, size, fmt, ap);
	va_end(ap);
	if (n < 0 && size)
		out[0] = '\0';
}

/* --- lines --------------------------------------------------------------- */

/*
 * Strips what the kernel or a log reader puts before the message: a "<N>"
 * level, a /dev/kmsg "LEVEL,SEQ,USEC,FLAGS;" header, a "[  12.345678]"
 * timestamp (and the one space after it), a "[ T123]" / "[  C1]" caller.
 */
static void sig_strip_prefix(const char **pp, size_t *pn)
{
	const char *p = *pp;
	size_t n = *pn, i;

	if (n >= 3 && p[0] == '<') {
		for (i = 1; i < n && i < 5 && sig_isdigit(p[i]); i++)
			;
		if (i > 1 && i < n && p[i] == '>') {
			p += i + 1;
			n -= i + 1;
		}
	}
	if (n && sig_isdigit(p[0])) {
		/* LEVEL,SEQ,USEC,FLAGS; */
		unsigned int commas = 0;

		for (i = 0; i < n && i < 48; i++) {
			if (p[i] == ',')
				commas++;
			else if (p[i] == ';')
				break;
			else if (!sig_isdigit(p[i]) && commas < 3)
				break;
		}
		if (i < n && i < 48 && p[i] == ';' && commas >= 3) {
			p += i + 1;
			n -= i + 1;
		}
	}
	for (int round = 0; round < 2; round++) {
		bool dot = false, digit = false, tag = false;

		if (!n || p[0] != '[')
			break;
		for (i = 1; i < n && i < 32; i++) {
			if (p[i] == ' ')
				continue;
			if (sig_isdigit(p[i]))
				digit = true;
			else if (p[i] == '.' && !dot)
				dot = true;
			else if ((p[i] == 'T' || p[i] == 'C') && !digit && !tag)
				tag = true;
			else
				break;
		}
		if (i >= n || p[i] != ']' || !digit || (!dot && !tag) || (dot && tag))
			break;
		p += i + 1;
		n -= i + 1;
		if (n && p[0] == ' ')
			p++, n--;
	}
	*pp = p;
	*pn = n;
}

/* Cuts @log into lines (the last SIG_LOG_MAX bytes, whole lines only). */
static int sig_split(struct sig_ctx *c, const char *log, size_t len)
{
	size_t i, start, n = 0, cap;

	if (!log || !len)
		return 0;
	if (len > SIG_LOG_MAX) {
		const char *cut = log + len - SIG_LOG_MAX;
		const char *nl = memchr(cut, '\n', SIG_LOG_MAX);

		if (!nl)
			return 0;
		len = (size_t)(log + len - (nl + 1));
		log = nl + 1;
	}
	cap = 1;
	for (i = 0; i < len; i++)
		if (log[i] == '\n')
			cap++;
	c->lines = calloc(cap, sizeof(*c->lines));
	if (!c->lines)
		return -ENOMEM;
	for (start = 0, i = 0; i <= len; i++) {
		if (i < len && log[i] != '\n')
			continue;
		const char *p = log + start;
		size_t l = i - start;

		start = i + 1;
		/* a console's "\r\n", or "\r" inside a line */
		while (l && p[l - 1] == '\r')
			l--;
		while (l && p[0] == '\r')
			p++, l--;
		sig_strip_prefix(&p, &l);
		if (l > SIG_LINE_MAX)
			l = SIG_LINE_MAX;
		if (n < cap) {
			c->lines[n].p = p;
			c->lines[n].len = l;
			n++;
		}
	}
	c->nlines = n;
	return 0;
}

/* --- frames -------------------------------------------------------------- */

/*
 * Parses a function name at p[0..n) into @out, cut at its first '.'
 * (.cold, .isra.0, .constprop.0, .part.0, .llvm.N) and without a "_noprof"
 * suffix (6.10+ allocation profiling renames allocators). Returns the
 * bytes consumed, 0 if there is no name (an address, "0x...").
 */
static size_t sig_parse_name(const char *p, size_t n, char *out, size_t size)
{
	size_t i = 0, keep;
	const size_t noprof = sizeof("_noprof") - 1;

	if (!n || !(sig_isalpha(p[0]) || p[0] == '_' || p[0] == '.' || p[0] == '$'))
		return 0;
	while (i < n && sig_issym(p[i]))
		i++;
	for (keep = 0; keep < i && p[keep] != '.'; keep++)
		;
	if (keep > noprof && !memcmp(p + keep - noprof, "_noprof", noprof))
		keep -= noprof;
	if (!keep)
		return 0;
	if (keep >= size)
		keep = size - 1;
	memcpy(out, p, keep);
	out[keep] = '\0';
	return i;
}

/* "+0x1a/0x30" at p[0..n): bytes consumed, or 0. */
static size_t sig_parse_offset(const char *p, size_t n)
{
	size_t i = 0, d;

	for (int part = 0; part < 2; part++) {
		if (!sig_starts(p + i, n - i, part ? "/0x" : "+0x"))
			return 0;
		i += 3;
		for (d = 0; i < n && sig_isxdigit(p[i]); i++, d++)
			;
		if (!d)
			return 0;
	}
	return i;
}

/*
 * A symbolised location "func+0x1a/0x30 [module]" at p[0..n). Returns
 * true with @f filled.
 */
static bool sig_parse_location(const char *p, size_t n, struct sig_frame *f)
{
	size_t i, k;

	memset(f, 0, sizeof(*f));
	i = sig_parse_name(p, n, f->name, sizeof(f->name));
	if (!i)
		return false;
	k = sig_parse_offset(p + i, n - i);
	if (!k)
		return false;
	i += k;
	if (i + 2 < n && p[i] == ' ' && p[i + 1] == '[') {
		size_t s = i + 2, e = s;

		while (e < n && e - s < SIG_MODULE_MAX - 1 &&
		       (sig_isalpha(p[e]) || sig_isdigit(p[e]) || p[e] == '_' || p[e] == '-'))
			e++;
		if (e < n && p[e] == ']' && e > s) {
			memcpy(f->module, p + s, e - s);
			f->module[e - s] = '\0';
		}
	}
	return true;
}

enum sig_tline {
	SIG_TL_FRAME,           /* a reliable frame, in @f */
	SIG_TL_SKIP,            /* inside a trace but not a frame to keep */
	SIG_TL_END,             /* the trace is over */
};

/* Register dumps inside traces: "RIP: 0010:...", "RAX: ...", "Code: ...". */
static bool sig_is_register_line(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n && i < 8 && (sig_isalpha(p[i]) || sig_isdigit(p[i])); i++)
		;
	return i >= 2 && i < n && p[i] == ':' && (sig_isalpha(p[0]) && p[0] >= 'A' && p[0] <= 'Z');
}

/* One line of a "Call Trace:". */
static enum sig_tline sig_trace_line(const struct sig_line *l, struct sig_frame *f)
{
	const char *p = l->p;
	size_t n = l->len;

	if (!n)
		return SIG_TL_END;
	if (p[0] != ' ' && p[0] != '\t')
		return sig_is_register_line(p, n) ? SIG_TL_SKIP : SIG_TL_END;
	while (n && (p[0] == ' ' || p[0] == '\t'))
		p++, n--;
	if (!n)
		return SIG_TL_END;
	if (sig_starts(p, n, "</TASK>"))
		return SIG_TL_END;
	if (p[0] == '<')                /* <TASK> <IRQ> </IRQ> <NMI> </NMI> <#DF> */
		return SIG_TL_SKIP;
	if (sig_starts(p, n, "[<")) {   /* old "[<ffffffff81234567>] func+0x..." */
		long e = sig_find(p, n, ">]");

		if (e < 0)
			return SIG_TL_SKIP;
		p += e + 2, n -= (size_t)e + 2;
		while (n && p[0] == ' ')
			p++, n--;
	}
	if (sig_starts(p, n, "? "))     /* unreliable: a stale address on the stack */
		return SIG_TL_SKIP;
	if (sig_find(p, n, "inlined") >= 0)
		return SIG_TL_SKIP;
	return sig_parse_location(p, n, f) ? SIG_TL_FRAME : SIG_TL_SKIP;
}

/* Reads the trace whose "Call Trace:" line is @at. */
static void sig_read_trace(struct sig_ctx *c, size_t at)
{
	size_t i;

	for (i = at + 1; i < c->nlines && c->ntrace < SIG_TRACE_MAX; i++) {
		struct sig_frame f;
		enum sig_tline t = sig_trace_line(&c->lines[i], &f);

		if (t == SIG_TL_END)
			break;
		if (t == SIG_TL_FRAME)
			c->trace[c->ntrace++] = f;
	}
}

/* "RIP: 0010:func+0x1a/0x30 [mod]" (a kernel RIP) into @f. */
static bool sig_parse_rip(const struct sig_line *l, struct sig_frame *f)
{
	const char *p = l->p;
	size_t n = l->len;

	/* x86-64, i386, arm64 */
	if (!sig_starts(p, n, "RIP: ") && !sig_starts(p, n, "EIP: ") && !sig_starts(p, n, "pc : "))
		return false;
	p += 5, n -= 5;
	if (n > 5 && sig_isxdigit(p[0]) && sig_isxdigit(p[1]) && sig_isxdigit(p[2]) &&
	    sig_isxdigit(p[3]) && p[4] == ':')
		p += 5, n -= 5;
	return sig_parse_location(p, n, f);
}

/*
 * From the report at line @from: its RIP (or a header frame already set),
 * then the frames of its first "Call Trace:".
 */
static void sig_report_trace(struct sig_ctx *c, size_t from)
{
	size_t i, end = from + SIG_TRACE_WINDOW;

	if (end > c->nlines)
		end = c->nlines;
	for (i = from; i < end; i++) {
		const struct sig_line *l = &c->lines[i];
		struct sig_frame f;

		if (!c->has_head && sig_parse_rip(l, &f)) {
			c->head = f;
			c->has_head = true;
		}
		if (sig_find(l->p, l->len, "Call Trace:") >= 0 ||
		    sig_find(l->p, l->len, "Call trace:") >= 0) {   /* arm64 */
			sig_read_trace(c, i);
			return;
		}
	}
}

/* --- reports ------------------------------------------------------------- */

static const char sig_panic_head[] = "Kernel panic - not syncing: ";

struct sig_head {
	enum sig_kind kind;
	bool secondary;         /* "Oops: 0000 [#1]", "invalid opcode": a primary may precede it */
	char detail[SIG_DETAIL_MAX];
};

/* "WORDS: XXXX [#N]" (an x86 die line): the WORDS, or false. */
static bool sig_die_line(const char *p, size_t n, char *what, size_t size)
{
	long m = sig_find(p, n, " [#");
	long i;

	if (m < 6)
		return false;
	/* ": " and 4 hex digits before " [#" */
	for (i = m - 4; i < m; i++)
		if (!sig_isxdigit(p[i]))
			return false;
	if (p[m - 5] != ' ' || p[m - 6] != ':')
		return false;
	sig_copy_clean(what, size, p, (size_t)(m - 6));
	return true;
}

/*
 * The text after "BUG: " up to what varies (":", ",", " at ", " in
 * process", digits): "scheduling while atomic", "Bad page state".
 */
static void sig_bug_detail(const char *p, size_t n, char *out, size_t size)
{
	static const char *const stops[] = { ":", ",", " at ", " in process", " - ", "!",
					     " on CPU", " on cpu" };
	size_t cut = n, i;

	for (i = 0; i < sizeof(stops) / sizeof(stops[0]); i++) {
		long k = sig_find(p, cut, stops[i]);

		if (k >= 0 && (size_t)k < cut)
			cut = (size_t)k;
	}
	sig_copy_clean(out, size, p, cut);
}

/* The first word(s) before " in " (KASAN/UBSAN bug types). */
static void sig_type_detail(const char *p, size_t n, char *out, size_t size)
{
	long k = sig_find(p, n, " in ");

	sig_copy_clean(out, size, p, k >= 0 ? (size_t)k : n);
}

/* Is p[0..n) a report's header line? Fills @h. */
static bool sig_classify(const char *p, size_t n, struct sig_head *h)
{
	char what[SIG_DETAIL_MAX];
	long k;

	memset(h, 0, sizeof(*h));
	if (sig_starts(p, n, "Oops: ")) {
		/* 6.12: "Oops: divide error: 0000 [#1]", "Oops: Oops: 0000 [#1]" */
		p += 6, n -= 6;
		if (sig_starts(p, n, "general protection fault")) {
			h->kind = SIG_KIND_GPF;
			return true;
		}
		if (sig_starts(p, n, "divide error")) {
			h->kind = SIG_KIND_DIVIDE;
			return true;
		}
		if (sig_starts(p, n, "invalid opcode")) {
			h->kind = SIG_KIND_INVALID_OPCODE;
			h->secondary = true;
			return true;
		}
		h->kind = SIG_KIND_OOPS;
		h->secondary = true;
		if (sig_die_line(p, n, what, sizeof(what)) && strcmp(what, "Oops") &&
		    sig_isalpha(what[0]))
			sig_strlcpy(h->detail, sizeof(h->detail), what);
		return true;
	}
	if (sig_starts(p, n, "BUG: kernel NULL pointer dereference") ||
	    sig_starts(p, n, "BUG: unable to handle kernel NULL pointer dereference")) {
		h->kind = SIG_KIND_NULL_DEREF;
		return true;
	}
	/* arm64: "Unable to handle kernel NULL pointer dereference at virtual address 0" */
	if (sig_starts(p, n, "Unable to handle kernel NULL pointer dereference")) {
		h->kind = SIG_KIND_NULL_DEREF;
		return true;
	}
	if (sig_starts(p, n, "Unable to handle kernel paging request")) {
		h->kind = SIG_KIND_PAGING;
		return true;
	}
	/* arm64's die line: "Internal error: Oops: 0000000096000005 [#1] SMP" */
	if (sig_starts(p, n, "Internal error: ") && sig_find(p, n, " [#") > 0) {
		h->kind = SIG_KIND_OOPS;
		h->secondary = true;
		return true;
	}
	if (sig_starts(p, n, "BUG: unable to handle page fault") ||
	    sig_starts(p, n, "BUG: unable to handle kernel paging request")) {
		h->kind = SIG_KIND_PAGING;
		return true;
	}
	if (sig_starts(p, n, "BUG: KASAN: ")) {
		h->kind = SIG_KIND_KASAN;
		sig_type_detail(p + 12, n - 12, h->detail, sizeof(h->detail));
		return true;
	}
	if (sig_starts(p, n, "BUG: soft lockup") || sig_starts(p, n, "watchdog: BUG: soft lockup")) {
		h->kind = SIG_KIND_SOFT_LOCKUP;
		return true;
	}
	if (sig_starts(p, n, "BUG: ")) {
		h->kind = SIG_KIND_BUG_OTHER;
		sig_bug_detail(p + 5, n - 5, h->detail, sizeof(h->detail));
		if (!h->detail[0])
			snprintf(h->detail, sizeof(h->detail), "?");
		return true;
	}
	if (sig_starts(p, n, "kernel BUG at ")) {
		h->kind = SIG_KIND_BUG;
		return true;
	}
	if (sig_starts(p, n, "general protection fault")) {
		h->kind = SIG_KIND_GPF;
		return true;
	}
	if (sig_starts(p, n, "divide error: ")) {
		h->kind = SIG_KIND_DIVIDE;
		return true;
	}
	if (sig_starts(p, n, "invalid opcode: ")) {
		h->kind = SIG_KIND_INVALID_OPCODE;
		h->secondary = true;
		return true;
	}
	if (sig_starts(p, n, "WARNING: CPU: ") || sig_starts(p, n, "WARNING: at ")) {
		h->kind = SIG_KIND_WARNING;
		return true;
	}
	if (sig_starts(p, n, "UBSAN: ")) {
		h->kind = SIG_KIND_UBSAN;
		sig_type_detail(p + 7, n - 7, h->detail, sizeof(h->detail));
		return true;
	}
	if (sig_find(p, n, "Watchdog detected hard LOCKUP") >= 0) {
		h->kind = SIG_KIND_HARD_LOCKUP;
		return true;
	}
	if (sig_starts(p, n, "INFO: task ") && sig_find(p, n, " blocked for more than ") > 0) {
		h->kind = SIG_KIND_HUNG_TASK;
		return true;
	}
	k = sig_find(p, n, "detected stall");
	if (k >= 0 && (sig_starts(p, n, "rcu: INFO: ") || sig_starts(p, n, "INFO: "))) {
		h->kind = SIG_KIND_RCU_STALL;
		return true;
	}
	if (sig_find(p, n, " invoked oom-killer: ") > 0) {
		h->kind = SIG_KIND_OOM;
		return true;
	}
	/* 6.1 and older: "stack segment: 0000 [#1]", "int3: 0000 [#1]" */
	if (sig_die_line(p, n, what, sizeof(what)) && sig_isalpha(what[0])) {
		h->kind = SIG_KIND_OOPS;
		h->secondary = true;
		if (strcmp(what, "Oops"))
			sig_strlcpy(h->detail, sizeof(h->detail), what);
		return true;
	}
	return false;
}

static bool sig_is_oops_kind(enum sig_kind k)
{
	switch (k) {
	case SIG_KIND_NULL_DEREF:
	case SIG_KIND_PAGING:
	case SIG_KIND_GPF:
	case SIG_KIND_BUG:
	case SIG_KIND_INVALID_OPCODE:
	case SIG_KIND_DIVIDE:
	case SIG_KIND_OOPS:
	case SIG_KIND_KASAN:
	case SIG_KIND_UBSAN:
	case SIG_KIND_BUG_OTHER:
		return true;
	default:
		return false;
	}
}

/*
 * A secondary die line at @i: its primary ("BUG: ...", "kernel BUG at")
 * a few lines above, if any. Returns the report's first line.
 */
static size_t sig_primary(const struct sig_ctx *c, size_t i, struct sig_head *h)
{
	size_t j;

	if (!h->secondary)
		return i;
	for (j = i; j > 0 && i - (j - 1) <= SIG_PRIMARY_WINDOW; j--) {
		const struct sig_line *l = &c->lines[j - 1];
		struct sig_head ph;

		if (sig_classify(l->p, l->len, &ph) && !ph.secondary) {
			if (ph.kind == SIG_KIND_WARNING || ph.kind == SIG_KIND_OOM ||
			    ph.kind == SIG_KIND_HUNG_TASK)
				break;
			*h = ph;
			return j - 1;
		}
	}
	/* "invalid opcode" after "kernel BUG at" is handled above; alone it stays */
	return i;
}

/* The last line in [0, @before) holding @needle, or (size_t)-1. */
static size_t sig_last_line(const struct sig_ctx *c, size_t before, const char *needle)
{
	size_t i;

	for (i = before; i > 0; i--)
		if (sig_find(c->lines[i - 1].p, c->lines[i - 1].len, needle) >= 0)
			return i - 1;
	return (size_t)-1;
}

/*
 * Is a report of kind @got what a message asking for @want means?
 * SIG_KIND_COUNT: any oops. SIG_KIND_WARNING ("... panic_on_warn set ..."):
 * every report that panic_on_warn turns into a panic (WARNING, KASAN,
 * UBSAN, KFENCE and KMSAN's "BUG: ...").
 */
static bool sig_kind_wanted(enum sig_kind want, enum sig_kind got)
{
	if (want == SIG_KIND_COUNT)
		return sig_is_oops_kind(got);
	if (want == SIG_KIND_WARNING)
		return got == SIG_KIND_WARNING || got == SIG_KIND_KASAN ||
		       got == SIG_KIND_UBSAN || got == SIG_KIND_BUG_OTHER;
	return got == want;
}

/*
 * The last report before line @before that sig_kind_wanted(@kind).
 * Returns its first line and fills @h, or (size_t)-1.
 */
static size_t sig_last_report(const struct sig_ctx *c, size_t before, enum sig_kind kind,
			      struct sig_head *h)
{
	size_t i;

	for (i = before; i > 0; i--) {
		const struct sig_line *l = &c->lines[i - 1];

		if (sig_classify(l->p, l->len, h) && sig_kind_wanted(kind, h->kind))
			return sig_primary(c, i - 1, h);
	}
	return (size_t)-1;
}

/* --- the message --------------------------------------------------------- */

struct sig_plan {
	enum sig_want want;
	enum sig_kind want_kind;
	enum sig_kind kind;     /* the kind when the report is not found */
};

/* What the message says; may set c->kind, c->detail, c->head. */
static void sig_plan_message(struct sig_ctx *c, struct sig_plan *pl)
{
	const char *m = c->msg;
	size_t n = c->msg_len;
	struct sig_head h;
	long k;

	memset(pl, 0, sizeof(*pl));
	pl->want = SIG_WANT_NONE;
	pl->kind = SIG_KIND_PANIC;
	if (!n) {
		pl->want = SIG_WANT_OOPS;
		pl->kind = SIG_KIND_UNKNOWN;
	} else if (sig_starts(m, n, "sysrq triggered crash")) {
		pl->kind = SIG_KIND_SYSRQ;
	} else if (sig_starts(m, n, "NMI") && sig_find(m, n, "Not continuing") >= 0) {
		pl->kind = SIG_KIND_NMI;
	} else if ((k = sig_find(m, n, "Kernel stack is corrupted in: ")) >= 0) {
		size_t at = (size_t)k + sizeof("Kernel stack is corrupted in: ") - 1;

		pl->kind = SIG_KIND_STACK_PROTECTOR;
		if (sig_parse_location(m + at, n - at, &c->head) ||
		    sig_parse_name(m + at, n - at, c->head.name, sizeof(c->head.name)))
			c->has_head = true;
	} else if (sig_starts(m, n, "softlockup: ")) {
		pl->want = SIG_WANT_KIND;
		pl->want_kind = pl->kind = SIG_KIND_SOFT_LOCKUP;
	} else if (sig_find(m, n, "Hard LOCKUP") >= 0 || sig_starts(m, n, "hardlockup: ")) {
		pl->want = SIG_WANT_KIND;
		pl->want_kind = pl->kind = SIG_KIND_HARD_LOCKUP;
	} else if (sig_starts(m, n, "hung_task: ")) {
		pl->want = SIG_WANT_KIND;
		pl->want_kind = pl->kind = SIG_KIND_HUNG_TASK;
	} else if (sig_starts(m, n, "RCU Stall") || sig_starts(m, n, "rcu_stall")) {
		pl->want = SIG_WANT_KIND;
		pl->want_kind = pl->kind = SIG_KIND_RCU_STALL;
	} else if (sig_starts(m, n, "Out of memory") ||
		   sig_starts(m, n, "System is deadlocked on memory")) {
		pl->want = SIG_WANT_KIND;
		pl->want_kind = pl->kind = SIG_KIND_OOM;
	} else if (sig_find(m, n, "panic_on_warn set") >= 0) {
		pl->want = SIG_WANT_KIND;
		pl->want_kind = pl->kind = SIG_KIND_WARNING;
	} else if (sig_starts(m, n, "Fatal exception")) {
		pl->want = SIG_WANT_OOPS;
		pl->kind = SIG_KIND_OOPS;
	} else if (sig_classify(m, n, &h)) {
		/* an oops that went to kdump without panic(): its header line */
		pl->want = SIG_WANT_LINE;
		pl->kind = h.kind;
		sig_strlcpy(c->detail, sizeof(c->detail), h.detail);
	}
}

/*
 * Numbers and addresses folded, so a plain panic's message is the same
 * bug whatever the pid, address or count ("Attempted to kill init!
 * exitcode=0x0000000b" and "...=0x00000009" stay apart only by letters).
 */
static void sig_fold_numbers(char *out, size_t size, const char *in)
{
	size_t o = 0;

	for (size_t i = 0; in[i] && o + 1 < size; ) {
		if (sig_isdigit(in[i]) && (i == 0 || !sig_issym(in[i - 1]) || in[i - 1] == '.')) {
			if (in[i] == '0' && (in[i + 1] == 'x' || in[i + 1] == 'X'))
				i += 2;
			while (sig_isxdigit(in[i]))
				i++;
			out[o++] = '#';
			continue;
		}
		out[o++] = in[i++];
	}
	out[o] = '\0';
}

/* --- putting it together ------------------------------------------------- */

static void sig_fnv(uint64_t *h, const char *s)
{
	/* every string with its NUL, so ("ab","c") != ("a","bc") */
	do {
		*h ^= (unsigned char)*s;
		*h *= 0x100000001b3ULL;
	} while (*s++);
}

static bool sig_bucket_has_frames(enum sig_kind k)
{
	return k != SIG_KIND_SYSRQ && k != SIG_KIND_NMI;
}

static void sig_title(struct sig *s, const struct sig_ctx *c)
{
	char in[SIG_FRAME_MAX + 4] = "";
	const char *g = s->guilty;
	char msg[SIG_TITLE_MAX];

	if (g[0])
		snprintf(in, sizeof(in), " in %s", g);
	switch (s->kind) {
	case SIG_KIND_NULL_DEREF:
		sig_fmt(s->title, sizeof(s->title), "BUG: kernel NULL pointer dereference%s", in);
		break;
	case SIG_KIND_PAGING:
		sig_fmt(s->title, sizeof(s->title), "BUG: unable to handle kernel paging request%s", in);
		break;
	case SIG_KIND_GPF:
		sig_fmt(s->title, sizeof(s->title), "general protection fault%s", in);
		break;
	case SIG_KIND_BUG:
		sig_fmt(s->title, sizeof(s->title), "kernel BUG%s", in);
		break;
	case SIG_KIND_INVALID_OPCODE:
		sig_fmt(s->title, sizeof(s->title), "invalid opcode%s", in);
		break;
	case SIG_KIND_DIVIDE:
		sig_fmt(s->title, sizeof(s->title), "divide error%s", in);
		break;
	case SIG_KIND_OOPS:
		sig_fmt(s->title, sizeof(s->title), "%s%s", c->detail[0] ? c->detail : "Oops", in);
		break;
	case SIG_KIND_WARNING:
		sig_fmt(s->title, sizeof(s->title), "WARNING%s", in);
		break;
	case SIG_KIND_KASAN:
		sig_fmt(s->title, sizeof(s->title), "KASAN: %s%s", c->detail, in);
		break;
	case SIG_KIND_UBSAN:
		sig_fmt(s->title, sizeof(s->title), "UBSAN: %s%s", c->detail, in);
		break;
	case SIG_KIND_BUG_OTHER:
		sig_fmt(s->title, sizeof(s->title), "BUG: %s%s", c->detail, in);
		break;
	case SIG_KIND_STACK_PROTECTOR:
		sig_fmt(s->title, sizeof(s->title), "stack-protector: Kernel stack is corrupted%s", in);
		break;
	case SIG_KIND_SOFT_LOCKUP:
		sig_fmt(s->title, sizeof(s->title), "watchdog: BUG: soft lockup%s", in);
		break;
	case SIG_KIND_HARD_LOCKUP:
		sig_fmt(s->title, sizeof(s->title), "watchdog: hard LOCKUP%s", in);
		break;
	case SIG_KIND_HUNG_TASK:
		sig_fmt(s->title, sizeof(s->title), "INFO: task hung%s", in);
		break;
	case SIG_KIND_RCU_STALL:
		sig_fmt(s->title, sizeof(s->title), "INFO: rcu detected stall%s", in);
		break;
	case SIG_KIND_OOM:
		sig_fmt(s->title, sizeof(s->title), "Out of memory%s", in);
		break;
	case SIG_KIND_SYSRQ:
		sig_fmt(s->title, sizeof(s->title), "sysrq triggered crash");
		break;
	case SIG_KIND_NMI:
		sig_copy_clean(msg, sizeof(msg), c->msg, c->msg_len);
		sig_fmt(s->title, sizeof(s->title), "%s", msg);
		break;
	case SIG_KIND_PANIC:
		sig_copy_clean(msg, sizeof(msg), c->msg, c->msg_len);
		sig_fmt(s->title, sizeof(s->title), "panic: %s", msg);
		break;
	default:
		sig_fmt(s->title, sizeof(s->title), "unknown crash");
		break;
	}
}

static void sig_unknown(struct sig *s)
{
	memset(s, 0, sizeof(*s));
	s->version = SIG_VERSION;
	s->kind = SIG_KIND_UNKNOWN;
	snprintf(s->title, sizeof(s->title), "unknown crash");
}

/* Keeps the message's first line, without "Kernel panic - not syncing: ". */
static void sig_set_msg(struct sig_ctx *c, const char *p, size_t n)
{
	const char *nl;

	if (n > SIG_MESSAGE_MAX)
		n = SIG_MESSAGE_MAX;
	nl = memchr(p, '\n', n);
	if (nl)
		n = (size_t)(nl - p);
	while (n && (p[n - 1] == '\r' || p[n - 1] == ' '))
		n--;
	if (sig_starts(p, n, sig_panic_head)) {
		p += sizeof(sig_panic_head) - 1;
		n -= sizeof(sig_panic_head) - 1;
	}
	if (n > SIG_LINE_MAX)
		n = SIG_LINE_MAX;
	memcpy(c->msg, p, n);
	c->msg[n] = '\0';
	c->msg_len = n;
}

/* Finds the report and its trace; sets c->kind. */
static void sig_locate(struct sig_ctx *c)
{
	struct sig_plan pl;
	struct sig_head h;
	size_t anchor, at = (size_t)-1, panic_line;

	panic_line = sig_last_line(c, c->nlines, sig_panic_head);
	anchor = panic_line == (size_t)-1 ? c->nlines : panic_line;
	sig_plan_message(c, &pl);
	c->kind = pl.kind;

	switch (pl.want) {
	case SIG_WANT_KIND:
		at = sig_last_report(c, anchor, pl.want_kind, &h);
		break;
	case SIG_WANT_OOPS:
		at = sig_last_report(c, anchor, SIG_KIND_COUNT, &h);
		if (at == (size_t)-1 && !c->msg_len) {
			/* no panic line, no oops: any report at all */
			for (size_t i = c->nlines; i > 0 && at == (size_t)-1; i--)
				if (sig_classify(c->lines[i - 1].p, c->lines[i - 1].len, &h))
					at = sig_primary(c, i - 1, &h);
		}
		break;
	case SIG_WANT_LINE:
		/*
		 * The line holding the message (the guest may have taken it from
		 * the middle of a line: "Oops: Oops: 0000 [#1]" in 6.12); else,
		 * the log's last oops.
		 */
		for (size_t i = c->nlines; i > 0; i--) {
			const struct sig_line *l = &c->lines[i - 1];
			long k = sig_find(l->p, l->len, c->msg);

			if (k >= 0 && sig_classify(l->p + k, l->len - (size_t)k, &h)) {
				at = sig_primary(c, i - 1, &h);
				break;
			}
		}
		if (at == (size_t)-1)
			at = sig_last_report(c, anchor, SIG_KIND_COUNT, &h);
		break;
	case SIG_WANT_NONE:
		break;
	}
	if (at != (size_t)-1) {
		const struct sig_line *l = &c->lines[at];
		long k;

		c->kind = h.kind;
		sig_strlcpy(c->detail, sizeof(c->detail), h.detail);
		/* "WARNING: CPU: 0 PID: 1 at FILE:LINE func+0x1d/0x30 [mod]" */
		if (h.kind == SIG_KIND_WARNING) {
			k = sig_find(l->p, l->len, " at ");
			while (k >= 0) {
				size_t s = (size_t)k + 1;
				long next = sig_find(l->p + s, l->len - s, " ");

				if (next < 0)
					break;
				k = (long)s + next;
				if (sig_parse_location(l->p + k + 1, l->len - (size_t)k - 1, &c->head)) {
					c->has_head = true;
					break;
				}
			}
		}
		sig_report_trace(c, at);
		return;
	}
	if (!c->msg_len)
		return;
	/* the panic's own trace, after its line */
	if (panic_line != (size_t)-1)
		sig_report_trace(c, panic_line);
	if (c->kind == SIG_KIND_STACK_PROTECTOR || c->kind == SIG_KIND_SYSRQ ||
	    c->kind == SIG_KIND_NMI || c->kind == SIG_KIND_PANIC)
		return;
	/* the message's kind with no report found: keep the kind, as a panic's */
	if (pl.want == SIG_WANT_OOPS && c->kind == SIG_KIND_OOPS)
		c->kind = SIG_KIND_PANIC;
}

int sig_compute(const char *msg, size_t msg_len, const char *log, size_t log_len,
		struct sig *ret)
{
	struct sig_ctx *c;
	struct sig_frame clean[SIG_TRACE_MAX + 1];
	size_t nclean = 0, i;
	uint64_t h = 0xcbf29ce484222325ULL;
	char buf[SIG_TITLE_MAX + 32];
	int r;

	if (!ret)
		return -EINVAL;
	sig_unknown(ret);
	if ((!msg && msg_len) || (!log && log_len))
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	r = sig_split(c, log, log_len);
	if (r < 0) {
		free(c);
		return r;
	}
	if (msg && msg_len)
		sig_set_msg(c, msg, msg_len);
	if (!c->msg_len) {
		size_t pl = sig_last_line(c, c->nlines, sig_panic_head);

		if (pl != (size_t)-1) {
			const struct sig_line *l = &c->lines[pl];
			long k = sig_find(l->p, l->len, sig_panic_head);

			sig_set_msg(c, l->p + k, l->len - (size_t)k);
		}
	}
	sig_locate(c);

	/* frames: the head (RIP, WARNING's caller, the message's), then the trace */
	if (c->has_head)
		clean[nclean++] = c->head;
	for (i = 0; i < c->ntrace; i++)
		clean[nclean++] = c->trace[i];
	/* drop plumbing and repeats (RIP's function again as a trace frame) */
	size_t o = 0;

	for (i = 0; i < nclean; i++) {
		if (sig_is_plumbing(&clean[i], c->kind))
			continue;
		if (o && !strcmp(clean[o - 1].name, clean[i].name))
			continue;
		clean[o++] = clean[i];
	}
	nclean = o;

	ret->kind = c->kind;
	if (ret->kind == SIG_KIND_UNKNOWN && c->msg_len)
		ret->kind = SIG_KIND_PANIC;
	c->kind = ret->kind;
	if (nclean) {
		sig_strlcpy(ret->guilty, sizeof(ret->guilty), clean[0].name);
		sig_strlcpy(ret->guilty_module, sizeof(ret->guilty_module), clean[0].module);
	}
	if (sig_bucket_has_frames(ret->kind)) {
		for (i = 0; i < nclean && ret->nframes < SIG_BUCKET_FRAMES; i++) {
			if (i > 0 && SIG_IN(clean[i].name, sig_dispatch))
				break;
			sig_strlcpy(ret->frames[ret->nframes++], SIG_FRAME_MAX, clean[i].name);
		}
	}
	sig_title(ret, c);

	/* the bucket */
	snprintf(buf, sizeof(buf), "pbsig%u", SIG_VERSION);
	sig_fnv(&h, buf);
	sig_fnv(&h, sig_kind_name(ret->kind));
	if (ret->kind == SIG_KIND_PANIC || ret->kind == SIG_KIND_NMI) {
		char clean_msg[SIG_TITLE_MAX];

		sig_copy_clean(clean_msg, sizeof(clean_msg), c->msg, c->msg_len);
		sig_fold_numbers(buf, sizeof(buf), clean_msg);
	} else {
		sig_fold_numbers(buf, sizeof(buf), c->detail);
	}
	sig_fnv(&h, buf);
	for (i = 0; i < ret->nframes; i++)
		sig_fnv(&h, ret->frames[i]);
	snprintf(ret->bucket, sizeof(ret->bucket), "%016llx", (unsigned long long)h);

	free(c->lines);
	free(c);
	return 0;
}

/* Adds @v (NULL: out of memory) under @key, or a JSON null when @null. */
static int sig_json_add(struct json_object *o, const char *key, struct json_object *v, bool null)
{
	if (!v && !null)
		return -ENOMEM;
	if (json_object_object_add(o, key, v) < 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

static struct json_object *sig_json_str(const char *s)
{
	return s[0] ? json_object_new_string(s) : NULL;
}

int sig_to_json(const struct sig *s, struct json_object **ret)
{
	struct json_object *o, *frames, *f;
	unsigned int i;
	int r = 0;

	if (!ret || !s)
		return -EINVAL;
	*ret = NULL;
	o = json_object_new_object();
	frames = json_object_new_array();
	if (!o || !frames) {
		json_object_put(o);
		json_object_put(frames);
		return -ENOMEM;
	}
	for (i = 0; i < s->nframes && i < SIG_BUCKET_FRAMES && !r; i++) {
		f = json_object_new_string(s->frames[i]);
		if (!f || json_object_array_add(frames, f) < 0) {
			json_object_put(f);
			r = -ENOMEM;
		}
	}
	if (r < 0) {
		json_object_put(frames);
		frames = NULL;
	}
	if (!r)
		r = sig_json_add(o, "version", json_object_new_int((int)s->version), false);
	if (!r)
		r = sig_json_add(o, "kind", json_object_new_string(sig_kind_name(s->kind)), false);
	if (!r)
		r = sig_json_add(o, "title", json_object_new_string(s->title), false);
	if (!r)
		r = sig_json_add(o, "guilty_frame", sig_json_str(s->guilty), !s->guilty[0]);
	if (!r)
		r = sig_json_add(o, "guilty_module", sig_json_str(s->guilty_module),
				 !s->guilty_module[0]);
	if (!r) {
		r = sig_json_add(o, "frames", frames, false);
		frames = NULL;
	}
	if (!r)
		r = sig_json_add(o, "bucket", json_object_new_string(s->bucket), false);
	json_object_put(frames);
	if (r < 0) {
		json_object_put(o);
		return r;
	}
	*ret = o;
	return 0;
}
