/* SPDX-License-Identifier: MIT */
/* Inside the signature library only (signature*.c): its text, frames and reports. */
#ifndef PB_SIGNATURE_INTERNAL_H
#define PB_SIGNATURE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

enum sig_tline {
	SIG_TL_FRAME,           /* a reliable frame, in @f */
	SIG_TL_SKIP,            /* inside a trace but not a frame to keep */
	SIG_TL_END,             /* the trace is over */
};

struct sig_head {
	enum sig_kind kind;
	bool secondary;         /* "Oops: 0000 [#1]", "invalid opcode": a primary may precede it */
	char detail[SIG_DETAIL_MAX];
};

struct sig_plan {
	enum sig_want want;
	enum sig_kind want_kind;
	enum sig_kind kind;     /* the kind when the report is not found */
};

/* signature_text.c: the plumbing lists, text helpers, lines and frames. */
/* A frame through which the kernel reached the buggy code (do_syscall_64...). */
bool sig_is_dispatch(const char *name);
bool sig_name_in(const char *name, const char *const *list, size_t n);
bool sig_is_plumbing(const struct sig_frame *f, enum sig_kind kind);
bool sig_isdigit(char c);
bool sig_isxdigit(char c);
bool sig_isalpha(char c);
bool sig_issym(char c);
bool sig_starts(const char *p, size_t n, const char *pfx);
long sig_find(const char *p, size_t n, const char *needle);
void sig_copy_clean(char *out, size_t size, const char *p, size_t n);
void sig_strlcpy(char *out, size_t size, const char *src);
void sig_fmt(char *out, size_t size, const char *fmt, ...);
void sig_strip_prefix(const char **pp, size_t *pn);
int sig_split(struct sig_ctx *c, const char *log, size_t len);
size_t sig_parse_name(const char *p, size_t n, char *out, size_t size);
size_t sig_parse_offset(const char *p, size_t n);
bool sig_parse_location(const char *p, size_t n, struct sig_frame *f);
bool sig_is_register_line(const char *p, size_t n);
enum sig_tline sig_trace_line(const struct sig_line *l, struct sig_frame *f);
void sig_read_trace(struct sig_ctx *c, size_t at);
bool sig_parse_rip(const struct sig_line *l, struct sig_frame *f);
void sig_report_trace(struct sig_ctx *c, size_t from);

/* signature_reports.c: which report the message speaks of, and what kind. */
#define SIG_PANIC_HEAD "Kernel panic - not syncing: "
bool sig_die_line(const char *p, size_t n, char *what, size_t size);
void sig_bug_detail(const char *p, size_t n, char *out, size_t size);
void sig_type_detail(const char *p, size_t n, char *out, size_t size);
bool sig_classify(const char *p, size_t n, struct sig_head *h);
bool sig_is_oops_kind(enum sig_kind k);
size_t sig_primary(const struct sig_ctx *c, size_t i, struct sig_head *h);
size_t sig_last_line(const struct sig_ctx *c, size_t before, const char *needle);
bool sig_kind_wanted(enum sig_kind want, enum sig_kind got);
size_t sig_last_report(const struct sig_ctx *c, size_t before, enum sig_kind kind,
			      struct sig_head *h);
void sig_plan_message(struct sig_ctx *c, struct sig_plan *pl);

#endif
