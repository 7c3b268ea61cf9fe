/* SPDX-License-Identifier: MIT */
/* Pure helpers: timestamps, names, numbers. No I/O, no logging. */
#ifndef PB_UTIL_H
#define PB_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "2026-11-24T20:41:55.123456Z" plus NUL */
#define TS_RFC3339_MAX 32

uint64_t ts_now_realtime_usec(void);
/* CLOCK_MONOTONIC now (not the loop's time): for measuring how long something took. */
uint64_t ts_now_monotonic_usec(void);
/* Formats @usec (since the epoch, UTC) as RFC 3339 with microseconds. */
int ts_format_rfc3339(uint64_t usec, char *buf, size_t len);
/* The same instant in ISO 8601 basic format, fit for file names:
 * "20261124T204155.123456Z". */
int ts_format_basic(uint64_t usec, char *buf, size_t len);
/* Parses what ts_format_rfc3339() writes (and only that). */
int ts_parse_rfc3339(const char *s, uint64_t *ret_usec);

/*
 * A VM name is also a path component and a log word: 1..64 characters of
 * [A-Za-z0-9._-], not starting with '.' or '-'.
 */
#define VM_NAME_MAX 64
bool name_is_valid(const char *s);
/* The same alphabet and first-character rule, up to @max characters. */
bool name_chars_ok(const char *s, size_t max);

/*
 * Puts a one-phrase reason into the caller's buffer (if any) and returns
 * @error: the libraries' single way of failing with a reason.
 */
int err_set(char *err, size_t errlen, int error, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Index of @s in a table of names (NULL entries skipped), or -EINVAL. */
int name_table_lookup(const char *const *table, size_t n, const char *s);

/* Strict decimal parse into [min, max]; -EINVAL / -ERANGE. */
int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret);

#endif
