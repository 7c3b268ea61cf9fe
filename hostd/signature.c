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

#include "signature_internal.h"

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
	if (sig_starts(p, n, SIG_PANIC_HEAD)) {
		p += sizeof(SIG_PANIC_HEAD) - 1;
		n -= sizeof(SIG_PANIC_HEAD) - 1;
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

	panic_line = sig_last_line(c, c->nlines, SIG_PANIC_HEAD);
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
		size_t pl = sig_last_line(c, c->nlines, SIG_PANIC_HEAD);

		if (pl != (size_t)-1) {
			const struct sig_line *l = &c->lines[pl];
			long k = sig_find(l->p, l->len, SIG_PANIC_HEAD);

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
			if (i > 0 && sig_is_dispatch(clean[i].name))
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
