/* SPDX-License-Identifier: MIT */
/*
 * QMP wire format, without I/O: a bounded line buffer and a strict classifier
 * for the four kinds of message a QMP server sends (greeting, return, error,
 * event). Everything the peer sends is treated as untrusted: lines are capped
 * at QMP_LINE_MAX bytes, JSON nesting at QMP_JSON_DEPTH, and a message that is
 * not exactly one well-formed kind is rejected with a reason.
 */
#ifndef PB_QMP_MSG_H
#define PB_QMP_MSG_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QMP_LINE_MAX (64 * 1024)
#define QMP_JSON_DEPTH 32
#define QMP_EVENT_NAME_MAX 64

/*
 * A line buffer that grows with what the peer sends, 4 KiB to QMP_LINE_MAX:
 * a thousand monitors that send short lines cost a thousand small buffers,
 * not a thousand of the largest. Zero-initialized is empty.
 */
struct qmp_linebuf {
	char *buf;
	size_t cap;
	size_t start;		/* the bytes not taken yet: buf[start, start + len) */
	size_t len;
};

/*
 * Where to read into and how much room there is (never 0 while a line can
 * still grow), growing the buffer when it is full; NULL when that needs
 * memory there is not. Invalidates the line of the last take.
 */
char *qmp_linebuf_tail(struct qmp_linebuf *lb, size_t *ret_room);
void qmp_linebuf_commit(struct qmp_linebuf *lb, size_t n);
/*
 * Takes the next complete line, without "\r\n": points @ret_line at it,
 * NUL-terminated inside the buffer, valid until the next tail or free.
 * Returns 1 with a line, 0 when none is complete yet, -EMSGSIZE when
 * QMP_LINE_MAX bytes hold no newline. Blank lines are skipped.
 */
int qmp_linebuf_take(struct qmp_linebuf *lb, char **ret_line, size_t *ret_len);
void qmp_linebuf_free(struct qmp_linebuf *lb);

enum qmp_msg_type {
	QMP_MSG_GREETING,
	QMP_MSG_RETURN,
	QMP_MSG_ERROR,
	QMP_MSG_EVENT,
};

struct qmp_msg {
	enum qmp_msg_type type;
	json_object *root;      /* owned; the pointers below point into it */
	bool has_id;
	int64_t id;
	json_object *payload;   /* greeting's "QMP", "return", or event "data" */
	const char *event;      /* QMP_MSG_EVENT */
	bool has_timestamp;
	uint64_t timestamp_usec; /* event time, µs since the epoch */
	const char *error_class; /* QMP_MSG_ERROR */
	const char *error_desc;
};

/* Parses one line. -EBADMSG (not JSON), -EPROTO (JSON but not QMP). */
int qmp_msg_parse(const char *line, size_t len, struct qmp_msg *ret,
		  char *err, size_t errlen);
void qmp_msg_done(struct qmp_msg *m);

/* The type name used in logs: "greeting", "return", "error", "event". */
const char *qmp_msg_type_to_string(enum qmp_msg_type t);

#endif
