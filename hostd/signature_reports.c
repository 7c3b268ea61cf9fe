// SPDX-License-Identifier: MIT
/* signature: the reports in a log, their kinds, and which one the message names. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "signature_internal.h"

/* --- reports ------------------------------------------------------------- */




/* "WORDS: XXXX [#N]" (an x86 die line): the WORDS, or false. */
bool sig_die_line(const char *p, size_t n, char *what, size_t size)
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
void sig_bug_detail(const char *p, size_t n, char *out, size_t size)
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
void sig_type_detail(const char *p, size_t n, char *out, size_t size)
{
	long k = sig_find(p, n, " in ");

	sig_copy_clean(out, size, p, k >= 0 ? (size_t)k : n);
}

/* Is p[0..n) a report's header line? Fills @h. */
bool sig_classify(const char *p, size_t n, struct sig_head *h)
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

bool sig_is_oops_kind(enum sig_kind k)
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
size_t sig_primary(const struct sig_ctx *c, size_t i, struct sig_head *h)
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
size_t sig_last_line(const struct sig_ctx *c, size_t before, const char *needle)
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
bool sig_kind_wanted(enum sig_kind want, enum sig_kind got)
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
size_t sig_last_report(const struct sig_ctx *c, size_t before, enum sig_kind kind,
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



/* What the message says; may set c->kind, c->detail, c->head. */
void sig_plan_message(struct sig_ctx *c, struct sig_plan *pl)
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

