// SPDX-License-Identifier: MIT
/* Unit tests: QMP line framing and message classification. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "qmp_msg.h"

static struct qmp_linebuf lb;
static char *line;

/* As the daemon reads: as much as the buffer has room for, again until all is in. */
static void feed(const char *s)
{
	size_t n = strlen(s);

	while (n) {
		size_t room, k;
		char *tail = qmp_linebuf_tail(&lb, &room);

		assert_non_null(tail);
		assert_true(room > 0);
		k = n < room ? n : room;
		memcpy(tail, s, k);
		qmp_linebuf_commit(&lb, k);
		s += k;
		n -= k;
	}
}

static void test_linebuf_split(void **state)
{
	size_t len;

	(void)state;
	qmp_linebuf_free(&lb);
	feed("{\"a\":1}\r\n\r\n{\"b\"");
	assert_int_equal(qmp_linebuf_take(&lb, &line, &len), 1);
	assert_string_equal(line, "{\"a\":1}");
	assert_int_equal(len, 7);
	assert_int_equal(qmp_linebuf_take(&lb, &line, &len), 0); /* blank skipped, rest partial */
	feed(":2}\n");
	assert_int_equal(qmp_linebuf_take(&lb, &line, &len), 1);
	assert_string_equal(line, "{\"b\":2}");
	assert_int_equal(lb.len, 0);
	assert_int_equal(lb.cap, 4096);	/* short lines: the smallest buffer */
}

static void test_linebuf_overlong(void **state)
{
	size_t room, len, fed = 0;
	char *tail;

	(void)state;
	qmp_linebuf_free(&lb);
	/* grows 4 KiB at a time... up to QMP_LINE_MAX, then refuses */
	for (;;) {
		tail = qmp_linebuf_tail(&lb, &room);
		assert_non_null(tail);
		if (!room)
			break;
		memset(tail, 'x', room);
		qmp_linebuf_commit(&lb, room);
		fed += room;
		if (qmp_linebuf_take(&lb, &line, &len) < 0)
			break;
	}
	assert_int_equal(fed, QMP_LINE_MAX);
	assert_int_equal(lb.cap, QMP_LINE_MAX);
	assert_int_equal(qmp_linebuf_take(&lb, &line, &len), -EMSGSIZE);
	qmp_linebuf_free(&lb);
}

/* A line that straddles the buffer's growth and the compaction of what was taken. */
static void test_linebuf_grow_and_compact(void **state)
{
	char big[10000];
	size_t len;

	(void)state;
	qmp_linebuf_free(&lb);
	feed("{\"first\":1}\n{\"sec");
	assert_int_equal(qmp_linebuf_take(&lb, &line, &len), 1);
	assert_string_equal(line, "{\"first\":1}");
	memset(big, 'y', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (size_t off = 0; off < sizeof(big) - 1; off += 1000) {
		char part[1001];

		snprintf(part, sizeof(part), "%.1000s", big + off);
		feed(part);
	}
	feed("\"}\n");
	assert_int_equal(qmp_linebuf_take(&lb, &line, &len), 1);
	assert_int_equal(len, 5 + 9999 + 2);
	assert_memory_equal(line, "{\"secyyy", 8);
	assert_int_equal(line[len - 1], '}');
	assert_int_equal(lb.cap, 16384);
	qmp_linebuf_free(&lb);
}

static int parse(const char *s, struct qmp_msg *m, char *err, size_t errlen)
{
	return qmp_msg_parse(s, strlen(s), m, err, errlen);
}

static void test_parse_kinds(void **state)
{
	struct qmp_msg m;
	char err[256];

	(void)state;
	assert_int_equal(parse("{\"QMP\": {\"version\": {}, \"capabilities\": [\"oob\"]}}", &m, err, sizeof(err)), 0);
	assert_int_equal(m.type, QMP_MSG_GREETING);
	qmp_msg_done(&m);

	assert_int_equal(parse("{\"return\": {}, \"id\": 7}", &m, err, sizeof(err)), 0);
	assert_int_equal(m.type, QMP_MSG_RETURN);
	assert_true(m.has_id);
	assert_int_equal(m.id, 7);
	qmp_msg_done(&m);

	assert_int_equal(parse("{\"error\": {\"class\": \"GenericError\", \"desc\": \"no\"}, \"id\": 3}", &m, err, sizeof(err)), 0);
	assert_int_equal(m.type, QMP_MSG_ERROR);
	assert_string_equal(m.error_class, "GenericError");
	assert_string_equal(m.error_desc, "no");
	qmp_msg_done(&m);

	assert_int_equal(parse("{\"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 123456}, "
			       "\"event\": \"GUEST_PANICKED\", \"data\": {\"action\": \"pause\"}}",
			       &m, err, sizeof(err)), 0);
	assert_int_equal(m.type, QMP_MSG_EVENT);
	assert_string_equal(m.event, "GUEST_PANICKED");
	assert_true(m.has_timestamp);
	assert_int_equal(m.timestamp_usec, 1700000000123456ULL);
	assert_non_null(m.payload);
	qmp_msg_done(&m);
}

static void test_parse_rejects(void **state)
{
	static const struct {
		const char *text;
		int error;
		const char *reason;
	} bad[] = {
		{ "{\"return\": {}", -EBADMSG, "malformed JSON" },
		{ "not json", -EBADMSG, "malformed JSON" },
		{ "{\"return\": {}, \"id\": 1} trailing", -EBADMSG, "trailing bytes" },
		{ "{\"return\": {}, \"id\": 1}{\"return\": {}, \"id\": 2}", -EBADMSG, "trailing bytes" },
		{ "[1, 2]", -EPROTO, "not an object" },
		{ "{}", -EPROTO, "not a greeting, reply or event" },
		{ "{\"return\": {}}", -EPROTO, "without an id" },
		{ "{\"return\": {}, \"id\": \"x\"}", -EPROTO, "id is not an integer" },
		{ "{\"return\": {}, \"event\": \"X\", \"id\": 1}", -EPROTO, "more than one kind" },
		{ "{\"event\": \"lower\"}", -EPROTO, "upper-case identifier" },
		{ "{\"event\": 5}", -EPROTO, "upper-case identifier" },
		{ "{\"event\": \"X\", \"data\": []}", -EPROTO, "data is not an object" },
		{ "{\"event\": \"X\", \"timestamp\": {\"seconds\": -5, \"microseconds\": 0}}", -EPROTO, "out of range" },
		{ "{\"event\": \"X\", \"timestamp\": 3}", -EPROTO, "not {seconds, microseconds}" },
		{ "{\"error\": {\"class\": 1}}", -EPROTO, "class/desc" },
		{ "{\"QMP\": 1}", -EPROTO, "not an object" },
	};
	struct qmp_msg m;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(parse(bad[i].text, &m, err, sizeof(err)), bad[i].error);
		if (!strstr(err, bad[i].reason))
			fail_msg("'%s': error '%s' lacks '%s'", bad[i].text, err, bad[i].reason);
	}
}

static void test_parse_depth_and_nul(void **state)
{
	char deep[QMP_JSON_DEPTH * 2 + 64], err[256];
	struct qmp_msg m;
	size_t n = 0;

	(void)state;
	n += (size_t)sprintf(deep, "{\"return\": ");
	for (int i = 0; i < QMP_JSON_DEPTH + 2; i++)
		deep[n++] = '[';
	for (int i = 0; i < QMP_JSON_DEPTH + 2; i++)
		deep[n++] = ']';
	n += (size_t)sprintf(deep + n, ", \"id\": 1}");
	assert_int_equal(qmp_msg_parse(deep, n, &m, err, sizeof(err)), -EBADMSG);

	assert_int_equal(qmp_msg_parse("{\"ev\0ent\": 1}", 14, &m, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "NUL"));
}

static void test_minus_one_timestamp(void **state)
{
	struct qmp_msg m;
	char err[256];

	(void)state;
	assert_int_equal(parse("{\"event\": \"RESET\", \"timestamp\": {\"seconds\": -1, \"microseconds\": -1}}",
			       &m, err, sizeof(err)), 0);
	assert_false(m.has_timestamp);
	qmp_msg_done(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_linebuf_split),
		cmocka_unit_test(test_linebuf_overlong),
		cmocka_unit_test(test_linebuf_grow_and_compact),
		cmocka_unit_test(test_parse_kinds),
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_parse_depth_and_nul),
		cmocka_unit_test(test_minus_one_timestamp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
