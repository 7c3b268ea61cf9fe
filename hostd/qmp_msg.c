// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "util.h"
#include "qmp_msg.h"

#define QMP_LINEBUF_MIN 4096

char *qmp_linebuf_tail(struct qmp_linebuf *lb, size_t *ret_room)
{
	if (lb->start) {
		memmove(lb->buf, lb->buf + lb->start, lb->len);
		lb->start = 0;
	}
	if (lb->len == lb->cap && lb->cap < QMP_LINE_MAX) {
		size_t cap = lb->cap ? 2 * lb->cap : QMP_LINEBUF_MIN;
		char *buf = realloc(lb->buf, cap > QMP_LINE_MAX ? QMP_LINE_MAX : cap);

		if (!buf)
			return NULL;
		lb->buf = buf;
		lb->cap = cap > QMP_LINE_MAX ? QMP_LINE_MAX : cap;
	}
	*ret_room = lb->cap - lb->len;
	return lb->buf + lb->len;
}

void qmp_linebuf_commit(struct qmp_linebuf *lb, size_t n)
{
	lb->len += n;
}

int qmp_linebuf_take(struct qmp_linebuf *lb, char **ret_line, size_t *ret_len)
{
	for (;;) {
		char *line = lb->buf + lb->start;
		char *nl = lb->len ? memchr(line, '\n', lb->len) : NULL;
		size_t n;

		if (!nl)
			return lb->len >= QMP_LINE_MAX ? -EMSGSIZE : 0;
		n = (size_t)(nl - line);
		lb->start += n + 1;
		lb->len -= n + 1;
		if (n > 0 && line[n - 1] == '\r')
			n--;
		line[n] = '\0';
		if (n == 0)
			continue;
		*ret_line = line;
		*ret_len = n;
		return 1;
	}
}

void qmp_linebuf_free(struct qmp_linebuf *lb)
{
	free(lb->buf);
	*lb = (struct qmp_linebuf){ 0 };
}

static bool qmp_event_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > QMP_EVENT_NAME_MAX)
		return false;
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '_'))
			return false;
	return true;
}

static int qmp_msg_timestamp(json_object *ts, struct qmp_msg *m, char *err,
			     size_t errlen)
{
	json_object *sec, *usec;
	int64_t s, u;

	if (!json_object_is_type(ts, json_type_object) ||
	    !json_object_object_get_ex(ts, "seconds", &sec) ||
	    !json_object_object_get_ex(ts, "microseconds", &usec) ||
	    !json_object_is_type(sec, json_type_int) ||
	    !json_object_is_type(usec, json_type_int))
		return err_set(err, errlen, -EPROTO,
			       "event timestamp is not {seconds, microseconds}");
	s = json_object_get_int64(sec);
	u = json_object_get_int64(usec);
	/* QEMU sends -1/-1 when it could not read the clock. */
	if (s == -1 && u == -1)
		return 0;
	if (s < 0 || s > 253402300799LL || u < 0 || u > 999999)
		return err_set(err, errlen, -EPROTO, "event timestamp out of range");
	m->has_timestamp = true;
	m->timestamp_usec = (uint64_t)s * 1000000ULL + (uint64_t)u;
	return 0;
}

static int qmp_msg_classify(struct qmp_msg *m, char *err, size_t errlen)
{
	json_object *root = m->root, *v, *id;
	int kinds = 0;

	if (!json_object_is_type(root, json_type_object))
		return err_set(err, errlen, -EPROTO, "message is a JSON %s, not an object",
			       json_type_to_name(json_object_get_type(root)));

	if (json_object_object_get_ex(root, "id", &id)) {
		if (!json_object_is_type(id, json_type_int))
			return err_set(err, errlen, -EPROTO, "message id is not an integer");
		m->has_id = true;
		m->id = json_object_get_int64(id);
	}

	if (json_object_object_get_ex(root, "QMP", &v)) {
		kinds++;
		m->type = QMP_MSG_GREETING;
		m->payload = v;
		if (!json_object_is_type(v, json_type_object))
			return err_set(err, errlen, -EPROTO, "greeting's QMP member is not an object");
	}
	if (json_object_object_get_ex(root, "return", &v)) {
		kinds++;
		m->type = QMP_MSG_RETURN;
		m->payload = v;
		if (!m->has_id)
			return err_set(err, errlen, -EPROTO, "reply without an id");
	}
	if (json_object_object_get_ex(root, "error", &v)) {
		json_object *cls, *desc;

		kinds++;
		m->type = QMP_MSG_ERROR;
		if (!json_object_is_type(v, json_type_object) ||
		    !json_object_object_get_ex(v, "class", &cls) ||
		    !json_object_object_get_ex(v, "desc", &desc) ||
		    !json_object_is_type(cls, json_type_string) ||
		    !json_object_is_type(desc, json_type_string))
			return err_set(err, errlen, -EPROTO, "error reply lacks class/desc strings");
		m->error_class = json_object_get_string(cls);
		m->error_desc = json_object_get_string(desc);
	}
	if (json_object_object_get_ex(root, "event", &v)) {
		json_object *ts, *data;

		kinds++;
		m->type = QMP_MSG_EVENT;
		if (!json_object_is_type(v, json_type_string) ||
		    !qmp_event_name_ok(json_object_get_string(v)))
			return err_set(err, errlen, -EPROTO, "event name is not an upper-case identifier");
		m->event = json_object_get_string(v);
		if (json_object_object_get_ex(root, "timestamp", &ts)) {
			int r = qmp_msg_timestamp(ts, m, err, errlen);

			if (r < 0)
				return r;
		}
		if (json_object_object_get_ex(root, "data", &data)) {
			if (!json_object_is_type(data, json_type_object))
				return err_set(err, errlen, -EPROTO, "event data is not an object");
			m->payload = data;
		}
	}
	if (kinds != 1)
		return err_set(err, errlen, -EPROTO,
			       kinds ? "message is more than one kind" :
				       "message is not a greeting, reply or event");
	return 0;
}

int qmp_msg_parse(const char *line, size_t len, struct qmp_msg *ret,
		  char *err, size_t errlen)
{
	struct json_tokener *tok;
	enum json_tokener_error jerr;
	struct qmp_msg m = { 0 };
	size_t end;
	int r;

	if (memchr(line, '\0', len)) {
		return err_set(err, errlen, -EBADMSG, "line contains a NUL byte");
	}
	tok = json_tokener_new_ex(QMP_JSON_DEPTH);
	if (!tok)
		return -ENOMEM;
	m.root = json_tokener_parse_ex(tok, line, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (!m.root || jerr != json_tokener_success) {
		json_object_put(m.root);
		return err_set(err, errlen, -EBADMSG, "malformed JSON: %s",
			 jerr == json_tokener_continue ? "unexpected end of line"
						       : json_tokener_error_desc(jerr));
	}
	while (end < len && (line[end] == ' ' || line[end] == '\t'))
		end++;
	if (end != len) {
		json_object_put(m.root);
		return err_set(err, errlen, -EBADMSG, "trailing bytes after the JSON value");
	}
	r = qmp_msg_classify(&m, err, errlen);
	if (r < 0) {
		json_object_put(m.root);
		return r;
	}
	*ret = m;
	return 0;
}

void qmp_msg_done(struct qmp_msg *m)
{
	json_object_put(m->root);
	*m = (struct qmp_msg){ 0 };
}

const char *qmp_msg_type_to_string(enum qmp_msg_type t)
{
	static const char *const names[] = {
		[QMP_MSG_GREETING] = "greeting",
		[QMP_MSG_RETURN] = "return",
		[QMP_MSG_ERROR] = "error",
		[QMP_MSG_EVENT] = "event",
	};

	return names[t];
}
