// SPDX-License-Identifier: MIT
/*
 * The dashboard's output buffer: capped, escaping, with a sticky error
 * (html.h). No I/O.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "html.h"
#include "util.h"

/* What an unprintable or invalid byte becomes. */
#define HTML_REPLACEMENT "&#xFFFD;"

void html_init(struct html *h, size_t max)
{
	*h = (struct html){ .max = max };
}

void html_done(struct html *h)
{
	free(h->buf);
	*h = (struct html){ 0 };
}

bool html_truncated(const struct html *h)
{
	return h->truncated;
}

/* Room for @n more bytes (and a NUL), ignoring the cap when @force. */
static bool html_reserve(struct html *h, size_t n, bool force)
{
	size_t want, cap;
	char *p;

	if (h->error)
		return false;
	if (!force && (h->truncated || n > h->max - h->len || h->len > h->max)) {
		h->truncated = true;
		return false;
	}
	want = h->len + n + 1;
	if (want <= h->cap)
		return true;
	cap = h->cap ? h->cap : 4096;
	while (cap < want)
		cap *= 2;
	p = realloc(h->buf, cap);
	if (!p) {
		h->error = -ENOMEM;
		return false;
	}
	h->buf = p;
	h->cap = cap;
	return true;
}

static void html_put(struct html *h, const char *s, size_t n, bool force)
{
	if (!html_reserve(h, n, force))
		return;
	memcpy(h->buf + h->len, s, n);
	h->len += n;
	h->buf[h->len] = '\0';
}

void html_raw(struct html *h, const char *markup)
{
	html_put(h, markup, strlen(markup), false);
}

void html_rawf(struct html *h, const char *fmt, ...)
{
	char small[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		if (!h->error)
			h->error = -EINVAL;
		return;
	}
	/* The pages' own formats are short; a longer one is a bug, cut. */
	html_put(h, small, (size_t)n < sizeof(small) ? (size_t)n : sizeof(small) - 1, false);
}

/*
 * The length of the valid UTF-8 sequence at @s (at most @n bytes), 0 if
 * invalid: no overlong forms, no surrogates, nothing past U+10FFFF.
 */
static size_t html_utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	unsigned int cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

void html_text(struct html *h, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;

	while (i < len && !h->error && !h->truncated) {
		size_t run = i, n;
		const char *ent;

		/* A run of bytes that stay as they are, copied at once. */
		while (run < len && u[run] >= 0x20 && u[run] < 0x7f && u[run] != '&' &&
		       u[run] != '<' && u[run] != '>' && u[run] != '"' && u[run] != '\'')
			run++;
		if (run > i) {
			html_put(h, s + i, run - i, false);
			i = run;
			continue;
		}
		switch (u[i]) {
		case '&': ent = "&amp;"; n = 1; break;
		case '<': ent = "&lt;"; n = 1; break;
		case '>': ent = "&gt;"; n = 1; break;
		case '"': ent = "&quot;"; n = 1; break;
		case '\'': ent = "&#39;"; n = 1; break;
		case '\n': ent = "\n"; n = 1; break;
		case '\t': ent = "\t"; n = 1; break;
		default:
			n = u[i] >= 0x80 ? html_utf8_len(u + i, len - i) : 0;
			if (n > 0) {
				html_put(h, s + i, n, false);
				i += n;
				continue;
			}
			ent = HTML_REPLACEMENT; /* controls, DEL, invalid UTF-8 */
			n = 1;
			break;
		}
		html_put(h, ent, strlen(ent), false);
		i += n;
	}
}

void html_str(struct html *h, const char *s)
{
	if (s)
		html_text(h, s, strlen(s));
}

void html_json_str(struct html *h, json_object *v, const char *dflt)
{
	if (!v || !json_object_is_type(v, json_type_string)) {
		html_raw(h, dflt);
		return;
	}
	html_text(h, json_object_get_string(v), (size_t)json_object_get_string_len(v));
}

void html_url(struct html *h, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char esc[3] = { '%', hex[*p >> 4], hex[*p & 15] };

		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '~' || *p == '-')
			html_put(h, (const char *)p, 1, false);
		else
			html_put(h, esc, sizeof(esc), false);
	}
}

void html_time(struct html *h, uint64_t usec)
{
	char ts[TS_RFC3339_MAX];

	if (usec == 0 || ts_format_rfc3339(usec, ts, sizeof(ts)) < 0) {
		html_raw(h, "-");
		return;
	}
	/* "2026-11-24T20:41:55.123456Z": the date and the second are enough. */
	ts[10] = ' ';
	ts[19] = '\0';
	html_raw(h, ts);
}

void html_duration(struct html *h, uint64_t usec)
{
	uint64_t s = usec / USEC_PER_SEC;

	if (usec < USEC_PER_SEC)
		html_rawf(h, "%llu ms", (unsigned long long)(usec / USEC_PER_MSEC));
	else if (s < 60)
		html_rawf(h, "%.1f s", (double)usec / USEC_PER_SEC);
	else if (s < 3600)
		html_rawf(h, "%llu min %llu s", (unsigned long long)(s / 60),
			  (unsigned long long)(s % 60));
	else if (s < 86400)
		html_rawf(h, "%llu h %llu min", (unsigned long long)(s / 3600),
			  (unsigned long long)(s % 3600 / 60));
	else
		html_rawf(h, "%llu d %llu h", (unsigned long long)(s / 86400),
			  (unsigned long long)(s % 86400 / 3600));
}

int html_take(struct html *h, const char *tail, char **ret, size_t *ret_len)
{
	static const char notice[] =
		"\n<p class=\"trunc\">This page was cut at its size limit.</p>\n";

	if (h->truncated)
		html_put(h, notice, sizeof(notice) - 1, true);
	html_put(h, tail, strlen(tail), true);
	if (h->error) {
		int r = h->error;

		html_done(h);
		return r;
	}
	*ret = TAKE_PTR(h->buf);
	*ret_len = h->len;
	html_done(h);
	return 0;
}

bool html_bucket_parse(const char *s, uint64_t *ret)
{
	uint64_t x = 0;
	size_t i;

	for (i = 0; i < 16; i++) {
		char c = s[i];

		if (c >= '0' && c <= '9')
			x = x << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			x = x << 4 | (uint64_t)(c - 'a' + 10);
		else
			return false;
	}
	if (s[i] != '\0')
		return false;
	*ret = x;
	return true;
}

bool html_bucket_is_valid(const char *s)
{
	uint64_t x;

	return html_bucket_parse(s, &x);
}
