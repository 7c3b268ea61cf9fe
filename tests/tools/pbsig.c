// SPDX-License-Identifier: MIT
/*
 * pbsig: print the crash signature (hostd/signature.h) of a panic text as
 * the record's "signature" JSON object. A test tool, until panicbrokerd
 * stores the signature in the record itself.
 *
 *   pbsig --golden FILE            a corpus file (tests/golden/oops/SERIES/KIND.txt)
 *   pbsig --record record.json     panic.message and panic.log_tail of a crash record
 *   pbsig --dmesg dmesg.txt        a whole kernel log, no message
 *   pbsig [--message TEXT] [--log FILE]
 *
 * Exit status: 0 printed, 1 an input could not be read, 2 usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "signature.h"

#define PBSIG_FILE_MAX (64u << 20)

static int pbsig_read(const char *path, char **ret, size_t *ret_len)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 65536, len = 0, n;
	char *buf, *nb;

	if (!f)
		return -errno;
	buf = malloc(cap + 1);
	if (!buf) {
		fclose(f);
		return -ENOMEM;
	}
	while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
		len += n;
		if (len == cap) {
			if (cap >= PBSIG_FILE_MAX) {
				free(buf);
				fclose(f);
				return -EFBIG;
			}
			cap *= 2;
			nb = realloc(buf, cap + 1);
			if (!nb) {
				free(buf);
				fclose(f);
				return -ENOMEM;
			}
			buf = nb;
		}
	}
	if (ferror(f)) {
		free(buf);
		fclose(f);
		return -EIO;
	}
	fclose(f);
	buf[len] = '\0';
	*ret = buf;
	*ret_len = len;
	return 0;
}

/*
 * A corpus file: "# ..." comment lines, "message: TEXT", "log_tail:", then
 * the log tail to the end of the file.
 */
static int pbsig_golden(char *buf, size_t len, const char **msg, size_t *msg_len,
			const char **log, size_t *log_len)
{
	char *p = buf, *end = buf + len, *nl;

	*msg = NULL;
	*msg_len = 0;
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			return -EBADMSG;
		if (!strncmp(p, "message: ", 9)) {
			*msg = p + 9;
			*msg_len = (size_t)(nl - p - 9);
		} else if (!strncmp(p, "log_tail:\n", 10)) {
			*log = nl + 1;
			*log_len = (size_t)(end - (nl + 1));
			return 0;
		} else if (p[0] != '#') {
			return -EBADMSG;
		}
		p = nl + 1;
	}
	return -EBADMSG;
}

static int pbsig_usage(void)
{
	fprintf(stderr, "usage: pbsig --golden FILE | --record record.json | --dmesg FILE | "
		"[--message TEXT] [--log FILE]\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *golden = NULL, *record = NULL, *logf = NULL, *msg = NULL, *log = NULL;
	size_t msg_len = 0, log_len = 0, len = 0;
	struct json_object *rec = NULL, *panic, *v, *out;
	char *buf = NULL;
	struct sig s;
	int i, r;

	for (i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			return pbsig_usage();
		if (!strcmp(argv[i], "--golden"))
			golden = argv[++i];
		else if (!strcmp(argv[i], "--record"))
			record = argv[++i];
		else if (!strcmp(argv[i], "--dmesg") || !strcmp(argv[i], "--log"))
			logf = argv[++i];
		else if (!strcmp(argv[i], "--message"))
			msg = argv[++i];
		else
			return pbsig_usage();
	}
	if (!!golden + !!record + !!logf == 0 && !msg)
		return pbsig_usage();
	if (!!golden + !!record + !!logf > 1)
		return pbsig_usage();
	if (msg)
		msg_len = strlen(msg);

	const char *path = golden ? golden : record ? record : logf;

	if (path) {
		r = pbsig_read(path, &buf, &len);
		if (r < 0) {
			fprintf(stderr, "pbsig: %s: %s\n", path, strerror(-r));
			return 1;
		}
	}
	if (golden) {
		r = pbsig_golden(buf, len, &msg, &msg_len, &log, &log_len);
		if (r < 0) {
			fprintf(stderr, "pbsig: %s: not a corpus file\n", golden);
			free(buf);
			return 1;
		}
	} else if (record) {
		rec = json_tokener_parse(buf);
		if (!rec || !json_object_object_get_ex(rec, "panic", &panic)) {
			fprintf(stderr, "pbsig: %s: no panic object\n", record);
			json_object_put(rec);
			free(buf);
			return 1;
		}
		if (json_object_object_get_ex(panic, "message", &v) &&
		    json_object_is_type(v, json_type_string)) {
			msg = json_object_get_string(v);
			msg_len = (size_t)json_object_get_string_len(v);
		}
		if (json_object_object_get_ex(panic, "log_tail", &v) &&
		    json_object_is_type(v, json_type_string)) {
			log = json_object_get_string(v);
			log_len = (size_t)json_object_get_string_len(v);
		}
	} else if (logf) {
		log = buf;
		log_len = len;
	}

	r = sig_compute(msg, msg_len, log, log_len, &s);
	if (r >= 0)
		r = sig_to_json(&s, &out);
	json_object_put(rec);
	free(buf);
	if (r < 0) {
		fprintf(stderr, "pbsig: %s\n", strerror(-r));
		return 1;
	}
	printf("%s\n", json_object_to_json_string_ext(out, JSON_C_TO_STRING_PRETTY |
						       JSON_C_TO_STRING_SPACED |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(out);
	return 0;
}
