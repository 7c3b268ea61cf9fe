// SPDX-License-Identifier: MIT
/*
 * Unit tests: crash signatures (hostd/signature.h).
 *
 * Golden: the corpus of real panics captured from live 6.1 and 6.12 guests
 * (tests/golden/oops/SERIES/KIND.txt, `make capture-oopses`): each file's
 * kind, title, guilty frame and bucket are what this test's table and the
 * file's .json say; the same kind on both series lands in one bucket, two
 * kinds never do. The same text read as a snapshot's log (no message), with
 * other line prefixes or console line ends, gives the same signature.
 *
 * Hostile: empty, huge, binary, NUL-laden, truncated at every few bytes,
 * overlong names and lines, no trace: always 0 and printable, bounded
 * strings (ASan/UBSan watch the rest).
 *
 * PB_GOLDEN_DIR overrides the corpus directory (default tests/golden/oops,
 * relative to the repository top, where `make unit` runs).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <json-c/json.h>

#include "signature.h"

static const char *const series_list[] = { "6.1", "6.12" };
#define NSERIES (sizeof(series_list) / sizeof(series_list[0]))

/* What every series must give for each kind the test module provokes. */
static const struct golden_kind {
	const char *file;
	enum sig_kind kind;
	const char *title;
	const char *guilty;             /* "" none */
	const char *module;
} golden_kinds[] = {
	{ "null", SIG_KIND_NULL_DEREF,
	  "BUG: kernel NULL pointer dereference in pbtest_null_deref", "pbtest_null_deref",
	  "pbtest_oops" },
	{ "bug", SIG_KIND_BUG, "kernel BUG in pbtest_bug", "pbtest_bug", "pbtest_oops" },
	{ "warn", SIG_KIND_WARNING, "WARNING in pbtest_warn", "pbtest_warn", "pbtest_oops" },
	{ "divide", SIG_KIND_DIVIDE, "divide error in pbtest_divide", "pbtest_divide",
	  "pbtest_oops" },
	{ "stack", SIG_KIND_STACK_PROTECTOR,
	  "stack-protector: Kernel stack is corrupted in pbtest_stack_smash",
	  "pbtest_stack_smash", "pbtest_oops" },
	{ "softlockup", SIG_KIND_SOFT_LOCKUP, "watchdog: BUG: soft lockup in pbtest_softlockup",
	  "pbtest_softlockup", "pbtest_oops" },
	{ "hung", SIG_KIND_HUNG_TASK, "INFO: task hung in pbtest_hung", "pbtest_hung",
	  "pbtest_oops" },
	{ "oom", SIG_KIND_OOM, "Out of memory in pbtest_oom", "pbtest_oom", "pbtest_oops" },
	{ "sysrq", SIG_KIND_SYSRQ, "sysrq triggered crash", "sysrq_handle_crash", "" },
	{ "nmi", SIG_KIND_NMI, "NMI: Not continuing", "", "" },
};
#define NKINDS (sizeof(golden_kinds) / sizeof(golden_kinds[0]))

/* --- helpers ------------------------------------------------------------- */

static const char *golden_dir(void)
{
	const char *d = getenv("PB_GOLDEN_DIR");

	return d && *d ? d : "tests/golden/oops";
}

/* Reads a whole file; NULL if it does not exist. */
static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f)
		return NULL;
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	assert_int_equal(fseek(f, 0, SEEK_SET), 0);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

struct golden {
	char *buf;
	const char *msg, *log;
	size_t msg_len, log_len;
};

/* "# ..." lines, "message: TEXT", "log_tail:", then the tail (see pbsig.c). */
static bool golden_load(const char *series, const char *kind, struct golden *g)
{
	char path[512];
	size_t len;
	char *p, *end, *nl;

	memset(g, 0, sizeof(*g));
	snprintf(path, sizeof(path), "%s/%s/%s.txt", golden_dir(), series, kind);
	g->buf = read_file(path, &len);
	if (!g->buf)
		return false;
	p = g->buf;
	end = g->buf + len;
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		assert_non_null(nl);
		if (!strncmp(p, "message: ", 9)) {
			g->msg = p + 9;
			g->msg_len = (size_t)(nl - p - 9);
		} else if (!strncmp(p, "log_tail:\n", 10)) {
			g->log = nl + 1;
			g->log_len = (size_t)(end - (nl + 1));
			return true;
		} else {
			assert_true(p[0] == '#');
		}
		p = nl + 1;
	}
	fail_msg("%s: no log_tail", path);
	return false;
}

static void golden_free(struct golden *g)
{
	free(g->buf);
	memset(g, 0, sizeof(*g));
}

/* Every string is NUL-terminated in its array and printable ASCII. */
static void assert_sane(const struct sig *s)
{
	const char *strs[3 + SIG_BUCKET_FRAMES] = { s->title, s->guilty, s->guilty_module };
	const size_t sizes[3] = { sizeof(s->title), sizeof(s->guilty), sizeof(s->guilty_module) };

	assert_int_equal(s->version, SIG_VERSION);
	assert_true((unsigned int)s->kind < SIG_KIND_COUNT);
	assert_true(s->nframes <= SIG_BUCKET_FRAMES);
	for (unsigned int i = 0; i < 3; i++)
		assert_true(memchr(strs[i], '\0', sizes[i]) != NULL);
	for (unsigned int i = 0; i < s->nframes; i++) {
		assert_true(memchr(s->frames[i], '\0', SIG_FRAME_MAX) != NULL);
		assert_true(s->frames[i][0] != '\0');
		strs[3 + i] = s->frames[i];
	}
	for (unsigned int i = 0; i < 3 + s->nframes; i++)
		for (const char *c = strs[i]; *c; c++)
			assert_true(*c >= 0x20 && *c <= 0x7e);
	assert_true(s->title[0] != '\0');
	assert_int_equal(strlen(s->bucket), SIG_BUCKET_LEN);
	assert_int_equal(strspn(s->bucket, "0123456789abcdef"), SIG_BUCKET_LEN);
}

static void compute(const char *msg, size_t msg_len, const char *log, size_t log_len,
		    struct sig *s)
{
	assert_int_equal(sig_compute(msg, msg_len, log, log_len, s), 0);
	assert_sane(s);
}

static void compute_str(const char *msg, const char *log, struct sig *s)
{
	compute(msg, msg ? strlen(msg) : 0, log, log ? strlen(log) : 0, s);
}

static void assert_same_sig(const struct sig *a, const struct sig *b)
{
	assert_int_equal(a->kind, b->kind);
	assert_string_equal(a->title, b->title);
	assert_string_equal(a->guilty, b->guilty);
	assert_string_equal(a->bucket, b->bucket);
}

/* --- golden -------------------------------------------------------------- */

static int corpus_files;

static void check_json(const char *series, const char *kind, const struct sig *s)
{
	char path[512];
	struct json_object *want, *got, *v;
	const char *keys[] = { "version", "kind", "title", "guilty_frame", "guilty_module",
			       "frames", "bucket" };

	snprintf(path, sizeof(path), "%s/%s/%s.json", golden_dir(), series, kind);
	want = json_object_from_file(path);
	if (!want)
		fail_msg("%s: missing or not JSON", path);
	assert_int_equal(sig_to_json(s, &got), 0);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		struct json_object *w;

		assert_true(json_object_object_get_ex(got, keys[i], &v));
		if (!json_object_object_get_ex(want, keys[i], &w))
			fail_msg("%s: no %s", path, keys[i]);
		if (!json_object_equal(v, w))
			fail_msg("%s: %s is %s, the golden file says %s", path, keys[i],
				 json_object_to_json_string(v), json_object_to_json_string(w));
	}
	json_object_put(got);
	json_object_put(want);
}

static void test_golden_corpus(void **state)
{
	char buckets[NSERIES][NKINDS][SIG_BUCKET_LEN + 1];
	bool have[NSERIES][NKINDS];

	(void)state;
	memset(have, 0, sizeof(have));
	for (size_t si = 0; si < NSERIES; si++) {
		for (size_t k = 0; k < NKINDS; k++) {
			const struct golden_kind *gk = &golden_kinds[k];
			struct golden g;
			struct sig s;

			if (!golden_load(series_list[si], gk->file, &g))
				continue;
			corpus_files++;
			compute(g.msg, g.msg_len, g.log, g.log_len, &s);
			if (s.kind != gk->kind || strcmp(s.title, gk->title) ||
			    strcmp(s.guilty, gk->guilty) || strcmp(s.guilty_module, gk->module))
				fail_msg("%s/%s: got %s \"%s\" guilty \"%s\" [%s]", series_list[si],
					 gk->file, sig_kind_name(s.kind), s.title, s.guilty,
					 s.guilty_module);
			check_json(series_list[si], gk->file, &s);
			memcpy(buckets[si][k], s.bucket, sizeof(s.bucket));
			have[si][k] = true;
			golden_free(&g);
		}
	}
	if (!corpus_files)
		skip();
	/* same kind, both series: one bucket */
	for (size_t k = 0; k < NKINDS; k++)
		if (have[0][k] && have[1][k] && strcmp(buckets[0][k], buckets[1][k]))
			fail_msg("%s: bucket %s on %s, %s on %s", golden_kinds[k].file,
				 buckets[0][k], series_list[0], buckets[1][k], series_list[1]);
	/* different kinds: different buckets, whatever the series */
	for (size_t a = 0; a < NSERIES * NKINDS; a++)
		for (size_t b = a + 1; b < NSERIES * NKINDS; b++) {
			size_t sa = a / NKINDS, ka = a % NKINDS, sb = b / NKINDS, kb = b % NKINDS;

			if (ka == kb || !have[sa][ka] || !have[sb][kb])
				continue;
			if (!strcmp(buckets[sa][ka], buckets[sb][kb]))
				fail_msg("%s/%s and %s/%s share bucket %s", series_list[sa],
					 golden_kinds[ka].file, series_list[sb],
					 golden_kinds[kb].file, buckets[sa][ka]);
		}
}

/* The corpus as a snapshot's log: no message, the same signature. */
static void test_golden_without_message(void **state)
{
	int n = 0;

	(void)state;
	for (size_t si = 0; si < NSERIES; si++)
		for (size_t k = 0; k < NKINDS; k++) {
			struct golden g;
			struct sig a, b;

			if (!golden_load(series_list[si], golden_kinds[k].file, &g))
				continue;
			compute(g.msg, g.msg_len, g.log, g.log_len, &a);
			compute(NULL, 0, g.log, g.log_len, &b);
			assert_same_sig(&a, &b);
			golden_free(&g);
			n++;
		}
	if (!n)
		skip();
}

/* Rewrites "[   12.345678] text" lines with another prefix and line end. */
static char *reprefix(const char *log, size_t len, const char *pfx, const char *eol,
		      size_t *out_len)
{
	size_t cap = len * 2 + 1024, o = 0;
	char *out = malloc(cap);
	const char *p = log, *end = log + len;

	assert_non_null(out);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;
		const char *text = p;

		if (text < e && *text == '[') {
			const char *rb = memchr(text, ']', (size_t)(e - text));

			if (rb) {
				text = rb + 1;
				if (text < e && *text == ' ')
					text++;
			}
		}
		size_t need = strlen(pfx) + (size_t)(e - text) + strlen(eol);

		if (o + need + 1 > cap) {
			cap = (o + need + 1) * 2;
			out = realloc(out, cap);
			assert_non_null(out);
		}
		o += (size_t)sprintf(out + o, "%s", pfx);
		memcpy(out + o, text, (size_t)(e - text));
		o += (size_t)(e - text);
		o += (size_t)sprintf(out + o, "%s", eol);
		p = nl ? nl + 1 : end;
	}
	*out_len = o;
	return out;
}

static void test_golden_prefixes(void **state)
{
	static const struct {
		const char *pfx, *eol;
	} forms[] = {
		{ "", "\n" },                   /* dmesg -t */
		{ "<4>", "\n" },                /* syslog levels */
		{ "<4>[    1.000000] ", "\n" },
		{ "4,1234,5678901,-;", "\n" },  /* /dev/kmsg */
		{ "[    7.123456] ", "\r\n" },  /* a serial console */
	};
	int n = 0;

	(void)state;
	for (size_t k = 0; k < NKINDS; k++) {
		struct golden g;
		struct sig want, got;

		if (!golden_load("6.12", golden_kinds[k].file, &g))
			continue;
		compute(g.msg, g.msg_len, g.log, g.log_len, &want);
		for (size_t f = 0; f < sizeof(forms) / sizeof(forms[0]); f++) {
			size_t len;
			char *log = reprefix(g.log, g.log_len, forms[f].pfx, forms[f].eol, &len);

			compute(g.msg, g.msg_len, log, len, &got);
			if (strcmp(want.bucket, got.bucket))
				fail_msg("%s with prefix \"%s\": %s, not %s", golden_kinds[k].file,
					 forms[f].pfx, got.title, want.title);
			assert_same_sig(&want, &got);
			free(log);
		}
		golden_free(&g);
		n++;
	}
	if (!n)
		skip();
}

/* Cut anywhere: never a crash of ours; the frames only shrink. */
static void test_golden_truncated(void **state)
{
	struct golden g;
	struct sig s;

	(void)state;
	if (!golden_load("6.1", "null", &g))
		skip();
	for (size_t cut = 0; cut <= g.log_len; cut += 61) {
		char *copy = malloc(cut + 1);

		assert_non_null(copy);
		memcpy(copy, g.log, cut);       /* exact size: ASan sees any overread */
		compute(g.msg, g.msg_len, copy, cut, &s);
		compute(NULL, 0, copy, cut, &s);
		free(copy);
	}
	/* the tail's head cut off (a shorter tail): the report is at its end */
	for (size_t skip = 0; skip < g.log_len; skip += 997) {
		compute(g.msg, g.msg_len, g.log + skip, g.log_len - skip, &s);
		if (s.kind == SIG_KIND_NULL_DEREF)
			assert_string_equal(s.guilty, "pbtest_null_deref");
	}
	golden_free(&g);
}

/* --- synthetic reports --------------------------------------------------- */

static void test_gpf_old_frames_suffixes(void **state)
{
	static const char log[] =
		"general protection fault, probably for non-canonical address "
		"0xdead000000000122: 0000 [#1] PREEMPT SMP NOPTI\n"
		"CPU: 1 PID: 77 Comm: foo Not tainted 6.1.0 #1\n"
		"RIP: 0010:bar_ioctl.cold+0x2a/0x90 [bar]\n"
		"RSP: 0018:ffffb0a5c0a3bd70 EFLAGS: 00010246\n"
		"Call Trace:\n"
		" <TASK>\n"
		" ? __die_body+0x1a/0x60\n"
		" [<ffffffff81234567>] bar_ioctl.isra.0+0x99/0x100 [bar]\n"
		" bar_dispatch.constprop.0+0x10/0x20 [bar]\n"
		" __x64_sys_ioctl+0x8d/0xd0\n"
		" do_syscall_64+0x5d/0xb0\n"
		" entry_SYSCALL_64_after_hwframe+0x6e/0xd8\n"
		" </TASK>\n"
		"Modules linked in: bar\n";
	struct sig s, t;
	char other[sizeof(log) + 64];

	(void)state;
	compute_str("Fatal exception", log, &s);
	assert_int_equal(s.kind, SIG_KIND_GPF);
	assert_string_equal(s.title, "general protection fault in bar_ioctl");
	assert_string_equal(s.guilty, "bar_ioctl");
	assert_string_equal(s.guilty_module, "bar");
	/* the RIP and its repeat as a frame are one; the syscall entry stops */
	assert_int_equal(s.nframes, 2);
	assert_string_equal(s.frames[0], "bar_ioctl");
	assert_string_equal(s.frames[1], "bar_dispatch");

	/* other offsets, addresses, CPU, pid: the same bucket */
	snprintf(other, sizeof(other), "%s", log);
	char *rip = strstr(other, "0x2a/0x90");

	memcpy(rip, "0x3b/0x91", 9);
	compute_str("Fatal exception", other, &t);
	assert_string_equal(s.bucket, t.bucket);
	/* another caller: another bucket */
	char *caller = strstr(other, "bar_dispatch");

	memcpy(caller, "baz_dispatch", 12);
	compute_str("Fatal exception", other, &t);
	assert_string_not_equal(s.bucket, t.bucket);
}

static void test_kasan_and_bug_other(void **state)
{
	struct sig s;

	(void)state;
	compute_str(NULL,
		    "BUG: KASAN: slab-use-after-free in foo_read+0x12/0x40 [foo]\n"
		    "Read of size 8 at addr ffff888012345678 by task cat/99\n"
		    "Call Trace:\n"
		    " <TASK>\n"
		    " dump_stack_lvl+0x4c/0x70\n"
		    " print_report+0xcf/0x620\n"
		    " kasan_report+0xb1/0xe0\n"
		    " foo_read+0x12/0x40 [foo]\n"
		    " vfs_read+0xa9/0x2c0\n"
		    " ksys_read+0x63/0xe0\n"
		    " do_syscall_64+0x5d/0xb0\n"
		    " </TASK>\n", &s);
	assert_int_equal(s.kind, SIG_KIND_KASAN);
	assert_string_equal(s.title, "KASAN: slab-use-after-free in foo_read");
	assert_int_equal(s.nframes, 3);
	assert_string_equal(s.frames[2], "ksys_read");

	compute_str(NULL,
		    "BUG: scheduling while atomic: insmod/123/0x00000002\n"
		    "CPU: 0 PID: 123 Comm: insmod\n"
		    "Call Trace:\n"
		    " <TASK>\n"
		    " dump_stack_lvl+0x4c/0x70\n"
		    " __schedule_bug+0x5e/0x70\n"
		    " __schedule+0x6f3/0x9e0\n"
		    " schedule+0x5a/0xd0\n"
		    " msleep+0x2d/0x40\n"
		    " qux_init+0x15/0x30 [qux]\n"
		    " do_one_initcall+0x59/0x220\n"
		    " </TASK>\n", &s);
	assert_int_equal(s.kind, SIG_KIND_BUG_OTHER);
	assert_string_equal(s.title, "BUG: scheduling while atomic in qux_init");
}

/* Reports whose panic message names another cause than the report's line. */
static void test_warnish_stall_lockup(void **state)
{
	struct sig s;

	(void)state;
	/* KASAN with panic_on_warn: the message says "KASAN: panic_on_warn set" */
	compute_str("KASAN: panic_on_warn set ...",
		    "WARNING: CPU: 1 PID: 5 at lib/old.c:1 old_func+0x1/0x2\n"
		    "==================================================================\n"
		    "BUG: KASAN: slab-out-of-bounds in qux_write+0x40/0x90 [qux]\n"
		    "Write of size 4 at addr ffff88800abc0010 by task sh/61\n"
		    "Call Trace:\n"
		    " <TASK>\n"
		    " dump_stack_lvl+0x4c/0x70\n"
		    " print_report+0xcf/0x620\n"
		    " kasan_report+0xb1/0xe0\n"
		    " qux_write+0x40/0x90 [qux]\n"
		    " vfs_write+0xcc/0x3b0\n"
		    " </TASK>\n"
		    "Kernel panic - not syncing: KASAN: panic_on_warn set ...\n", &s);
	assert_int_equal(s.kind, SIG_KIND_KASAN);
	assert_string_equal(s.title, "KASAN: slab-out-of-bounds in qux_write");

	/* an RCU stall the CPU detected itself; the IRQ frames are plumbing */
	compute_str("RCU Stall",
		    "rcu: INFO: rcu_preempt self-detected stall on CPU\n"
		    "rcu: \t0-....: (21002 ticks this GP) idle=8d4c/1/0x4000000000000000\n"
		    "CPU: 0 PID: 80 Comm: spin Not tainted 6.1.0 #1\n"
		    "RIP: 0010:spin_forever+0x8/0x20 [spin]\n"
		    "Call Trace:\n"
		    " <IRQ>\n"
		    " rcu_sched_clock_irq+0x5f3/0xb60\n"
		    " update_process_times+0x5c/0x90\n"
		    " tick_sched_timer+0x71/0x80\n"
		    " __hrtimer_run_queues+0x112/0x2b0\n"
		    " hrtimer_interrupt+0xf4/0x210\n"
		    " __sysvec_apic_timer_interrupt+0x5d/0x100\n"
		    " sysvec_apic_timer_interrupt+0x69/0x90\n"
		    " </IRQ>\n"
		    " <TASK>\n"
		    " asm_sysvec_apic_timer_interrupt+0x16/0x20\n"
		    "RIP: 0010:spin_forever+0x8/0x20 [spin]\n"
		    "RSP: 0018:ffffb0a5c0a3bd70 EFLAGS: 00000246\n"
		    " spin_start+0x11/0x20 [spin]\n"
		    " kthread+0xd7/0x100\n"
		    " ret_from_fork+0x22/0x30\n"
		    " </TASK>\n"
		    "Kernel panic - not syncing: RCU Stall\n", &s);
	assert_int_equal(s.kind, SIG_KIND_RCU_STALL);
	assert_string_equal(s.title, "INFO: rcu detected stall in spin_forever");
	assert_int_equal(s.nframes, 2);
	assert_string_equal(s.frames[1], "spin_start");

	/* a hard lockup */
	compute_str("Hard LOCKUP",
		    "watchdog: Watchdog detected hard LOCKUP on cpu 1\n"
		    "RIP: 0010:irq_off_spin+0x5/0x10 [spin]\n"
		    "Call Trace:\n"
		    " <TASK>\n"
		    " spin_start+0x11/0x20 [spin]\n"
		    " </TASK>\n"
		    "Kernel panic - not syncing: Hard LOCKUP\n", &s);
	assert_int_equal(s.kind, SIG_KIND_HARD_LOCKUP);
	assert_string_equal(s.title, "watchdog: hard LOCKUP in irq_off_spin");

	/* list corruption: the checker is plumbing, its caller is guilty */
	compute_str("Fatal exception",
		    "list_add corruption. prev->next should be next (ffff888003a1c0c8)\n"
		    "------------[ cut here ]------------\n"
		    "kernel BUG at lib/list_debug.c:30!\n"
		    "invalid opcode: 0000 [#1] PREEMPT SMP NOPTI\n"
		    "RIP: 0010:__list_add_valid_or_report+0x7e/0xa0\n"
		    "Call Trace:\n"
		    " <TASK>\n"
		    " ? die+0x36/0x90\n"
		    " foo_enqueue+0x3c/0x80 [foo]\n"
		    " foo_work+0x21/0x40 [foo]\n"
		    " process_one_work+0x1c4/0x380\n"
		    " </TASK>\n"
		    "Kernel panic - not syncing: Fatal exception\n", &s);
	assert_int_equal(s.kind, SIG_KIND_BUG);
	assert_string_equal(s.title, "kernel BUG in foo_enqueue");
	assert_int_equal(s.nframes, 2);

	/* a BUG: line with a CPU number: the title and bucket do not carry it */
	struct sig t;

	compute_str(NULL, "BUG: spinlock bad magic on CPU#0, insmod/99\n", &s);
	compute_str(NULL, "BUG: spinlock bad magic on CPU#3, modprobe/7\n", &t);
	assert_string_equal(s.title, "BUG: spinlock bad magic");
	assert_string_equal(s.bucket, t.bucket);
}

/* An arm64 oops: "Unable to handle ...", "Internal error:", "pc :", "Call trace:". */
static void test_arm64(void **state)
{
	struct sig s;

	(void)state;
	compute_str("Internal error: Oops: 0000000096000005 [#1] SMP",
		    "Unable to handle kernel NULL pointer dereference at virtual address 0000000000000000\n"
		    "Mem abort info:\n"
		    "  ESR = 0x0000000096000005\n"
		    "Internal error: Oops: 0000000096000005 [#1] SMP\n"
		    "Modules linked in: foo(O+)\n"
		    "pc : foo_probe+0x1c/0x40 [foo]\n"
		    "lr : foo_probe+0x14/0x40 [foo]\n"
		    "sp : ffff80000a2bbb70\n"
		    "Call trace:\n"
		    "  foo_probe+0x1c/0x40 [foo]\n"
		    "  really_probe+0x1a4/0x3e0\n"
		    "  __driver_probe_device+0x80/0x140\n"
		    "  driver_probe_device+0x44/0x120\n", &s);
	assert_int_equal(s.kind, SIG_KIND_NULL_DEREF);
	assert_string_equal(s.title, "BUG: kernel NULL pointer dereference in foo_probe");
	assert_int_equal(s.nframes, 3);
	assert_string_equal(s.frames[2], "__driver_probe_device");
}

static void test_plain_panic(void **state)
{
	struct sig a, b, c;

	(void)state;
	compute_str("Attempted to kill init! exitcode=0x00000009", NULL, &a);
	assert_int_equal(a.kind, SIG_KIND_PANIC);
	assert_string_equal(a.title, "panic: Attempted to kill init! exitcode=0x00000009");
	assert_string_equal(a.guilty, "");
	compute_str("Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b\n",
		    NULL, &b);
	assert_string_equal(a.bucket, b.bucket);
	compute_str("VFS: Unable to mount root fs on unknown-block(0,0)", NULL, &c);
	assert_string_not_equal(a.bucket, c.bucket);

	/* a message that names the panic with no report in the log */
	compute_str("softlockup: hung tasks", "nothing here\n", &a);
	assert_int_equal(a.kind, SIG_KIND_SOFT_LOCKUP);
	assert_string_equal(a.title, "watchdog: BUG: soft lockup");
	compute_str("Fatal exception", "", &a);
	assert_int_equal(a.kind, SIG_KIND_PANIC);
	assert_string_equal(a.title, "panic: Fatal exception");
}

/*
 * A log holding an old, unrelated WARNING and then a sysrq crash: the
 * message picks the sysrq panic, not the older report.
 */
static void test_message_picks_report(void **state)
{
	static const char log[] =
		"WARNING: CPU: 0 PID: 1 at fs/x.c:10 old_warn+0x1/0x2\n"
		"Call Trace:\n"
		" old_warn+0x1/0x2\n"
		"---[ end trace 0000000000000000 ]---\n"
		"sysrq: Trigger a crash\n"
		"Kernel panic - not syncing: sysrq triggered crash\n"
		"CPU: 0 PID: 99 Comm: sh\n"
		"Call Trace:\n"
		" <TASK>\n"
		" dump_stack_lvl+0x44/0x5c\n"
		" panic+0x118/0x2ed\n"
		" sysrq_handle_crash+0x16/0x20\n"
		" __handle_sysrq.cold+0x43/0x11b\n"
		" </TASK>\n";
	struct sig s;

	(void)state;
	compute_str("sysrq triggered crash", log, &s);
	assert_int_equal(s.kind, SIG_KIND_SYSRQ);
	assert_string_equal(s.guilty, "sysrq_handle_crash");
	assert_int_equal(s.nframes, 0);
	compute_str(NULL, log, &s);             /* from the log's panic line */
	assert_int_equal(s.kind, SIG_KIND_SYSRQ);
}

/* --- hostile input ------------------------------------------------------- */

static void test_empty_and_errors(void **state)
{
	struct sig s, t;

	(void)state;
	compute(NULL, 0, NULL, 0, &s);
	assert_int_equal(s.kind, SIG_KIND_UNKNOWN);
	assert_string_equal(s.title, "unknown crash");
	compute("", 0, "", 0, &t);
	assert_string_equal(s.bucket, t.bucket);
	assert_int_equal(sig_compute(NULL, 5, NULL, 0, &s), -EINVAL);
	assert_int_equal(s.kind, SIG_KIND_UNKNOWN);
	assert_int_equal(sig_compute(NULL, 0, NULL, 5, &s), -EINVAL);
	assert_int_equal(sig_compute("x", 1, "y", 1, NULL), -EINVAL);
	compute_str(NULL, "just some text\nno crash here\n", &s);
	assert_int_equal(s.kind, SIG_KIND_UNKNOWN);
	assert_string_equal(sig_kind_name(SIG_KIND_COUNT), "unknown");
	assert_string_equal(sig_kind_name((enum sig_kind)-1), "unknown");
	for (int a = 0; a < SIG_KIND_COUNT; a++)
		for (int b = a + 1; b < SIG_KIND_COUNT; b++)
			assert_string_not_equal(sig_kind_name(a), sig_kind_name(b));
}

static void test_huge_and_binary(void **state)
{
	const size_t big = 3 * SIG_LOG_MAX;
	char *buf = malloc(big);
	struct golden g;
	struct sig s, want;
	uint32_t x = 12345;

	(void)state;
	assert_non_null(buf);
	memset(buf, 'A', big);                  /* one endless line */
	compute(buf, big, buf, big, &s);
	memset(buf, '\n', big);                 /* only line ends */
	compute(buf, big, buf, big, &s);
	assert_int_equal(s.kind, SIG_KIND_UNKNOWN);
	for (size_t i = 0; i < big; i++) {      /* noise, NULs included */
		x = x * 1103515245u + 12345u;
		buf[i] = (char)(x >> 16);
	}
	compute(buf, big, buf, big, &s);
	compute(NULL, 0, buf, big, &s);
	/* frames and headers made of noise */
	for (size_t i = 0; i + 64 < big; i += 64) {
		const char *junk = i % 128 ? " a\x01\xff+0x/0x [\n" :
					     "RIP: 0010:\xfe+0x1/0x2\nCall Trace:\n";

		memcpy(buf + i, junk, strlen(junk));
	}
	compute("Fatal exception", 15, buf, big, &s);

	/* a real report after 700 KiB of noise: only the tail is read, and it is found */
	if (golden_load("6.12", "oom", &g)) {
		char *log = malloc(big + g.log_len);

		assert_non_null(log);
		memcpy(log, buf, big);
		log[big - 1] = '\n';
		memcpy(log + big, g.log, g.log_len);
		compute(g.msg, g.msg_len, g.log, g.log_len, &want);
		compute(g.msg, g.msg_len, log, big + g.log_len, &s);
		assert_same_sig(&want, &s);
		free(log);
		golden_free(&g);
	}
	free(buf);
}

static void test_long_names_and_lines(void **state)
{
	size_t len = 3 * SIG_LINE_MAX + 4096;
	char *log = malloc(len + 1), *p = log;
	char msg[SIG_MESSAGE_MAX * 2];
	struct sig s;

	(void)state;
	assert_non_null(log);
	p += sprintf(p, "BUG: kernel NULL pointer dereference, address: 0000000000000000\n"
		     "RIP: 0010:");
	memset(p, 'f', 2 * SIG_LINE_MAX);        /* a name longer than a line */
	p += 2 * SIG_LINE_MAX;
	p += sprintf(p, "+0x1/0x2 [");
	memset(p, 'm', 300);
	p += 300;
	p += sprintf(p, "]\nCall Trace:\n ");
	memset(p, 'g', 200);
	p += 200;
	p += sprintf(p, "+0x1/0x2\n");
	compute(NULL, 0, log, (size_t)(p - log), &s);
	assert_int_equal(s.kind, SIG_KIND_NULL_DEREF);
	assert_int_equal(strlen(s.guilty), SIG_FRAME_MAX - 1);
	assert_true(strlen(s.title) < SIG_TITLE_MAX);

	/* a message with control bytes, longer than the cap */
	memset(msg, '\x1b', sizeof(msg));
	memcpy(msg, "VFS: \x01\x02\tbad\r", 12);
	compute(msg, sizeof(msg), NULL, 0, &s);
	assert_int_equal(s.kind, SIG_KIND_PANIC);
	assert_true(strncmp(s.title, "panic: VFS: ?? bad", 18) == 0);
	free(log);
}

static void test_json(void **state)
{
	struct json_object *o, *v;
	struct sig s;

	(void)state;
	compute_str("sysrq triggered crash", NULL, &s);
	assert_int_equal(sig_to_json(&s, &o), 0);
	assert_true(json_object_object_get_ex(o, "version", &v));
	assert_int_equal(json_object_get_int(v), SIG_VERSION);
	assert_true(json_object_object_get_ex(o, "kind", &v));
	assert_string_equal(json_object_get_string(v), "sysrq");
	assert_true(json_object_object_get_ex(o, "guilty_frame", &v));
	assert_null(v);
	assert_true(json_object_object_get_ex(o, "frames", &v));
	assert_int_equal(json_object_array_length(v), 0);
	assert_true(json_object_object_get_ex(o, "bucket", &v));
	assert_string_equal(json_object_get_string(v), s.bucket);
	json_object_put(o);
	assert_int_equal(sig_to_json(NULL, &o), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden_corpus),
		cmocka_unit_test(test_golden_without_message),
		cmocka_unit_test(test_golden_prefixes),
		cmocka_unit_test(test_golden_truncated),
		cmocka_unit_test(test_gpf_old_frames_suffixes),
		cmocka_unit_test(test_kasan_and_bug_other),
		cmocka_unit_test(test_warnish_stall_lockup),
		cmocka_unit_test(test_arm64),
		cmocka_unit_test(test_plain_panic),
		cmocka_unit_test(test_message_picks_report),
		cmocka_unit_test(test_empty_and_errors),
		cmocka_unit_test(test_huge_and_binary),
		cmocka_unit_test(test_long_names_and_lines),
		cmocka_unit_test(test_json),
	};

	return cmocka_run_group_tests_name("signature", tests, NULL, NULL);
}
