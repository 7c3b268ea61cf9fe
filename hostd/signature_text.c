// SPDX-License-Identifier: MIT
/* signature: the guest's text cut into lines, and traces read into frames. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "signature_internal.h"

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

bool sig_name_in(const char *name, const char *const *list, size_t n)
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

bool sig_is_plumbing(const struct sig_frame *f, enum sig_kind kind)
{
	if (!strcmp(f->module, "panicbroker"))
		return true;
	if (SIG_IN(f->name, sig_plumbing))
		return true;
	return kind == SIG_KIND_OOM && SIG_IN(f->name, sig_plumbing_oom);
}

/* --- text helpers -------------------------------------------------------- */

bool sig_isdigit(char c)
{
	return c >= '0' && c <= '9';
}

bool sig_isxdigit(char c)
{
	return sig_isdigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool sig_isalpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool sig_issym(char c)
{
	return sig_isalpha(c) || sig_isdigit(c) || c == '_' || c == '.' || c == '$';
}

bool sig_starts(const char *p, size_t n, const char *pfx)
{
	size_t k = strlen(pfx);

	return n >= k && !memcmp(p, pfx, k);
}

/* Offset of @needle in p[0..n), or -1. */
long sig_find(const char *p, size_t n, const char *needle)
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
void sig_copy_clean(char *out, size_t size, const char *p, size_t n)
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
void sig_strlcpy(char *out, size_t size, const char *src)
{
	size_t n = strnlen(src, size ? size - 1 : 0);

	if (!size)
		return;
	memcpy(out, src, n);
	out[n] = '\0';
}

/* "printf" into a fixed buffer; output is truncated, never overrun. */
__attribute__((format(printf, 3, 4)))
void sig_fmt(char *out, size_t size, const char *fmt, ...)
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
void sig_strip_prefix(const char **pp, size_t *pn)
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
int sig_split(struct sig_ctx *c, const char *log, size_t len)
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
size_t sig_parse_name(const char *p, size_t n, char *out, size_t size)
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
size_t sig_parse_offset(const char *p, size_t n)
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
bool sig_parse_location(const char *p, size_t n, struct sig_frame *f)
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



/* Register dumps inside traces: "RIP: 0010:...", "RAX: ...", "Code: ...". */
bool sig_is_register_line(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n && i < 8 && (sig_isalpha(p[i]) || sig_isdigit(p[i])); i++)
		;
	return i >= 2 && i < n && p[i] == ':' && (sig_isalpha(p[0]) && p[0] >= 'A' && p[0] <= 'Z');
}

/* One line of a "Call Trace:". */
enum sig_tline sig_trace_line(const struct sig_line *l, struct sig_frame *f)
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
void sig_read_trace(struct sig_ctx *c, size_t at)
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
bool sig_parse_rip(const struct sig_line *l, struct sig_frame *f)
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
void sig_report_trace(struct sig_ctx *c, size_t from)
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


bool sig_is_dispatch(const char *name)
{
	return SIG_IN(name, sig_dispatch);
}
