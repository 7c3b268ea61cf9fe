// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "util.h"

uint64_t ts_now_realtime_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

uint64_t ts_now_monotonic_usec(void)
{
	struct timespec ts;

	/* CLOCK_MONOTONIC cannot fail on Linux. */
	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

static int ts_format(uint64_t usec, const char *fmt, char *buf, size_t len)
{
	time_t sec = (time_t)(usec / USEC_PER_SEC);
	struct tm tm;
	int n;

	if (!gmtime_r(&sec, &tm))
		return -ERANGE;
	n = snprintf(buf, len, fmt, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		     tm.tm_hour, tm.tm_min, tm.tm_sec,
		     (unsigned int)(usec % USEC_PER_SEC));
	if (n < 0 || (size_t)n >= len)
		return -ENOBUFS;
	return 0;
}

int ts_format_rfc3339(uint64_t usec, char *buf, size_t len)
{
	return ts_format(usec, "%04d-%02d-%02dT%02d:%02d:%02d.%06uZ", buf, len);
}

int ts_format_basic(uint64_t usec, char *buf, size_t len)
{
	return ts_format(usec, "%04d%02d%02dT%02d%02d%02d.%06uZ", buf, len);
}

int ts_parse_rfc3339(const char *s, uint64_t *ret_usec)
{
	unsigned int y, mo, d, h, mi, se, us;
	struct tm tm = { 0 };
	int consumed = 0;
	time_t t;

	if (sscanf(s, "%4u-%2u-%2uT%2u:%2u:%2u.%6uZ%n", &y, &mo, &d, &h, &mi,
		   &se, &us, &consumed) != 7 ||
	    consumed != 27 || s[consumed] != '\0')
		return -EINVAL;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
	    mi > 59 || se > 60)
		return -EINVAL;
	tm.tm_year = (int)y - 1900;
	tm.tm_mon = (int)mo - 1;
	tm.tm_mday = (int)d;
	tm.tm_hour = (int)h;
	tm.tm_min = (int)mi;
	tm.tm_sec = (int)se;
	t = timegm(&tm);
	if (t < 0)
		return -ERANGE;
	*ret_usec = (uint64_t)t * USEC_PER_SEC + us;
	return 0;
}

bool name_is_valid(const char *s)
{
	return name_chars_ok(s, VM_NAME_MAX);
}

bool name_chars_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max || s[0] == '.' || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
	uint64_t v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v < min || v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

int name_table_lookup(const char *const *table, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (table[i] && strcmp(s, table[i]) == 0)
			return (int)i;
	return -EINVAL;
}

int err_set(char *err, size_t errlen, int error, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return error;
}
