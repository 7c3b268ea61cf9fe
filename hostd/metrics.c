// SPDX-License-Identifier: MIT
/*
 * The metrics registry and its text rendering (metrics.h). Pure: no I/O,
 * no clock; the daemon's series are in metrics_daemon.c.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "metrics.h"

struct metrics_series {
	char *values[METRICS_MAX_LABELS];
	double value;		/* counter, gauge; a histogram's sum */
	uint64_t *counts;	/* a histogram's: per bucket, then above the last */
	uint64_t used;		/* the registry's tick at the last update */
	bool overflow;
};

struct metrics_family {
	struct metrics *m;
	char *name, *help, *overflow;
	enum metrics_kind kind;
	char *labels[METRICS_MAX_LABELS];
	unsigned int n_labels;
	double buckets[METRICS_MAX_BUCKETS];
	size_t n_buckets;
	size_t max_series;
	bool evict;
	struct metrics_series *series;	/* the overflow series counts too, past max_series */
	size_t n_series;
};

struct metrics {
	struct metrics_family **families;
	size_t n_families;
	uint64_t tick;
};

/* -- names -- */

static bool metrics_name_ok(const char *s, bool colon)
{
	if (!s || !*s || (*s >= '0' && *s <= '9'))
		return false;
	for (; *s; s++) {
		char c = *s;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || (colon && c == ':')))
			return false;
	}
	return true;
}

static bool metrics_ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcmp(s + n - k, suffix) == 0;
}

static int metrics_spec_check(const struct metrics_spec *spec, unsigned int *ret_labels)
{
	unsigned int n = 0;

	if (!metrics_name_ok(spec->name, true) || !spec->help)
		return -EINVAL;
	if ((spec->kind == METRICS_COUNTER) != metrics_ends_with(spec->name, "_total"))
		return -EINVAL;
	while (n < METRICS_MAX_LABELS && spec->labels[n]) {
		const char *l = spec->labels[n];

		if (!metrics_name_ok(l, false) || strncmp(l, "__", 2) == 0 ||
		    (spec->kind == METRICS_HISTOGRAM && strcmp(l, "le") == 0))
			return -EINVAL;
		n++;
	}
	if (n > 0 && spec->max_series == 0)
		return -EINVAL;
	if (spec->kind == METRICS_HISTOGRAM) {
		if (spec->n_buckets == 0 || spec->n_buckets > METRICS_MAX_BUCKETS || !spec->buckets)
			return -EINVAL;
		for (size_t i = 0; i < spec->n_buckets; i++)
			if (!isfinite(spec->buckets[i]) ||
			    (i > 0 && spec->buckets[i] <= spec->buckets[i - 1]))
				return -EINVAL;
	}
	if (spec->overflow && strlen(spec->overflow) > METRICS_VALUE_MAX)
		return -EINVAL;
	*ret_labels = n;
	return 0;
}

/* -- the registry -- */

int metrics_new(struct metrics **ret)
{
	struct metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	*ret = m;
	return 0;
}

static void metrics_series_clear(struct metrics_series *s)
{
	for (unsigned int i = 0; i < METRICS_MAX_LABELS; i++)
		free(s->values[i]);
	free(s->counts);
	*s = (struct metrics_series){ 0 };
}

static void metrics_family_free(struct metrics_family *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n_series; i++)
		metrics_series_clear(&f->series[i]);
	free(f->series);
	for (unsigned int i = 0; i < METRICS_MAX_LABELS; i++)
		free(f->labels[i]);
	free(f->name);
	free(f->help);
	free(f->overflow);
	free(f);
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_families; i++)
		metrics_family_free(m->families[i]);
	free(m->families);
	free(m);
}

/* A series with these values (or the overflow one); NULL @values: none. */
static int metrics_series_new(struct metrics_family *f, const char *const *values,
			      bool overflow, struct metrics_series **ret)
{
	struct metrics_series *arr, *s;

	arr = realloc(f->series, (f->n_series + 1) * sizeof(*arr));
	if (!arr)
		return -ENOMEM;
	f->series = arr;
	s = &arr[f->n_series];
	*s = (struct metrics_series){ .overflow = overflow };
	for (unsigned int i = 0; i < f->n_labels; i++) {
		s->values[i] = strdup(overflow ? f->overflow : values[i]);
		if (!s->values[i]) {
			metrics_series_clear(s);
			return -ENOMEM;
		}
	}
	if (f->kind == METRICS_HISTOGRAM) {
		s->counts = calloc(f->n_buckets + 1, sizeof(*s->counts));
		if (!s->counts) {
			metrics_series_clear(s);
			return -ENOMEM;
		}
	}
	f->n_series++;
	*ret = s;
	return 0;
}

int metrics_add(struct metrics *m, const struct metrics_spec *spec,
		struct metrics_family **ret)
{
	struct metrics_family *f, **fams;
	struct metrics_series *s;
	unsigned int n_labels;
	int r;

	r = metrics_spec_check(spec, &n_labels);
	if (r < 0)
		return r;
	for (size_t i = 0; i < m->n_families; i++)
		if (strcmp(m->families[i]->name, spec->name) == 0)
			return -EEXIST;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	*f = (struct metrics_family){
		.m = m,
		.kind = spec->kind,
		.n_labels = n_labels,
		.n_buckets = spec->kind == METRICS_HISTOGRAM ? spec->n_buckets : 0,
		.max_series = n_labels ? spec->max_series : 1,
		.evict = spec->evict,
	};
	f->name = strdup(spec->name);
	f->help = strdup(spec->help);
	f->overflow = strdup(spec->overflow ? spec->overflow : "other");
	r = f->name && f->help && f->overflow ? 0 : -ENOMEM;
	for (unsigned int i = 0; r == 0 && i < n_labels; i++)
		if (!(f->labels[i] = strdup(spec->labels[i])))
			r = -ENOMEM;
	if (f->n_buckets)
		memcpy(f->buckets, spec->buckets, f->n_buckets * sizeof(double));
	/* A family without labels is one series, there from the start. */
	if (r == 0 && n_labels == 0)
		r = metrics_series_new(f, NULL, false, &s);
	if (r == 0) {
		fams = realloc(m->families, (m->n_families + 1) * sizeof(*fams));
		if (!fams)
			r = -ENOMEM;
		else
			m->families = fams;
	}
	if (r < 0) {
		metrics_family_free(f);
		return r;
	}
	m->families[m->n_families++] = f;
	if (ret)
		*ret = f;
	return 0;
}

static bool metrics_values_ok(const struct metrics_family *f, const char *const *values)
{
	for (unsigned int i = 0; i < f->n_labels; i++)
		if (!values || !values[i] || strlen(values[i]) > METRICS_VALUE_MAX)
			return false;
	return true;
}

static struct metrics_series *metrics_find(const struct metrics_family *f,
					   const char *const *values)
{
	for (size_t i = 0; i < f->n_series; i++) {
		struct metrics_series *s = &f->series[i];
		unsigned int l;

		if (s->overflow)
			continue;
		for (l = 0; l < f->n_labels; l++)
			if (strcmp(s->values[l], values[l]) != 0)
				break;
		if (l == f->n_labels)
			return s;
	}
	return NULL;
}

static struct metrics_series *metrics_find_overflow(const struct metrics_family *f)
{
	for (size_t i = 0; i < f->n_series; i++)
		if (f->series[i].overflow)
			return &f->series[i];
	return NULL;
}

/* The least recently updated series that is not the overflow one. */
static struct metrics_series *metrics_oldest(const struct metrics_family *f)
{
	struct metrics_series *old = NULL;

	for (size_t i = 0; i < f->n_series; i++)
		if (!f->series[i].overflow && (!old || f->series[i].used < old->used))
			old = &f->series[i];
	return old;
}

/* @victim's counts go to @to (both of @f). */
static void metrics_fold(const struct metrics_family *f, struct metrics_series *to,
			 const struct metrics_series *victim)
{
	if (f->kind == METRICS_GAUGE)
		return; /* a gauge is a level, not a sum: it leaves with its series */
	to->value += victim->value;
	for (size_t b = 0; victim->counts && b <= f->n_buckets; b++)
		to->counts[b] += victim->counts[b];
}

/* The series @values goes to: found, made, or the overflow one. */
static int metrics_get(struct metrics_family *f, const char *const *values,
		       struct metrics_series **ret)
{
	struct metrics_series *s, *over;
	size_t n_regular;
	int r;

	if (!metrics_values_ok(f, values))
		return -EINVAL;
	if (f->n_labels == 0) {
		s = &f->series[0];
		goto found;
	}
	s = metrics_find(f, values);
	if (s)
		goto found;
	over = metrics_find_overflow(f);
	n_regular = f->n_series - (over ? 1 : 0);
	if (n_regular < f->max_series) {
		r = metrics_series_new(f, values, false, &s);
		if (r < 0)
			return r;
		goto found;
	}
	if (!over) {
		r = metrics_series_new(f, NULL, true, &over);
		if (r < 0)
			return r;
	}
	if (!f->evict) {
		s = over;
		goto found;
	}
	/* Evict: the oldest series' counts go to the overflow series, and its
	 * slot becomes the new series (the array does not move). */
	s = metrics_oldest(f);
	if (!s)
		return -ENOENT; /* max_series >= 1: cannot happen */
	{
		struct metrics_series fresh = { 0 };
		size_t over_i = (size_t)(over - f->series), s_i = (size_t)(s - f->series);

		for (unsigned int i = 0; i < f->n_labels; i++)
			if (!(fresh.values[i] = strdup(values[i]))) {
				metrics_series_clear(&fresh);
				return -ENOMEM;
			}
		if (f->kind == METRICS_HISTOGRAM &&
		    !(fresh.counts = calloc(f->n_buckets + 1, sizeof(*fresh.counts)))) {
			metrics_series_clear(&fresh);
			return -ENOMEM;
		}
		metrics_fold(f, &f->series[over_i], &f->series[s_i]);
		metrics_series_clear(&f->series[s_i]);
		f->series[s_i] = fresh;
		s = &f->series[s_i];
	}
found:
	s->used = ++f->m->tick;
	*ret = s;
	return 0;
}

int metrics_inc(struct metrics_family *f, const char *const *values, double by)
{
	struct metrics_series *s;
	int r;

	if (f->kind == METRICS_HISTOGRAM || !isfinite(by) ||
	    (f->kind == METRICS_COUNTER && by < 0))
		return -EINVAL;
	r = metrics_get(f, values, &s);
	if (r < 0)
		return r;
	s->value += by;
	return 0;
}

int metrics_set(struct metrics_family *f, const char *const *values, double v)
{
	struct metrics_series *s;
	int r;

	if (f->kind != METRICS_GAUGE || isnan(v))
		return -EINVAL;
	r = metrics_get(f, values, &s);
	if (r < 0)
		return r;
	s->value = v;
	return 0;
}

int metrics_observe(struct metrics_family *f, const char *const *values, double v)
{
	struct metrics_series *s;
	size_t b;
	int r;

	if (f->kind != METRICS_HISTOGRAM || isnan(v))
		return -EINVAL;
	r = metrics_get(f, values, &s);
	if (r < 0)
		return r;
	for (b = 0; b < f->n_buckets; b++)
		if (v <= f->buckets[b])
			break;
	s->counts[b]++;
	s->value += v;
	return 0;
}

void metrics_drop(struct metrics_family *f, unsigned int label, const char *value)
{
	size_t i = 0;

	if (label >= f->n_labels)
		return;
	while (i < f->n_series) {
		struct metrics_series *s = &f->series[i];

		if (s->overflow || strcmp(s->values[label], value) != 0) {
			i++;
			continue;
		}
		metrics_series_clear(s);
		memmove(s, s + 1, (f->n_series - i - 1) * sizeof(*s));
		f->n_series--;
	}
}

size_t metrics_series_count(const struct metrics_family *f)
{
	return f->n_series;
}

double metrics_value(const struct metrics_family *f, const char *const *values)
{
	const struct metrics_series *s;
	uint64_t n = 0;

	if (f->n_labels == 0)
		s = &f->series[0];
	else if (values && values[0] && strcmp(values[0], f->overflow) == 0)
		s = metrics_find_overflow(f);
	else
		s = metrics_values_ok(f, values) ? metrics_find(f, values) : NULL;
	if (!s)
		return -1;
	if (f->kind != METRICS_HISTOGRAM)
		return s->value;
	for (size_t b = 0; b <= f->n_buckets; b++)
		n += s->counts[b];
	return (double)n;
}

/* -- rendering -- */

/* The shortest of %.15g and %.17g that reads back as @v; integers whole. */
static void metrics_format(double v, char buf[static 32])
{
	if (isnan(v)) {
		strcpy(buf, "NaN");
		return;
	}
	if (isinf(v)) {
		strcpy(buf, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	if (v == floor(v) && fabs(v) < 9007199254740992.0) { /* 2^53 */
		snprintf(buf, 32, "%.0f", v);
		return;
	}
	snprintf(buf, 32, "%.15g", v);
	if (strtod(buf, NULL) != v)
		snprintf(buf, 32, "%.17g", v);
}

/* HELP escapes \ and newline; label values also ". */
static void metrics_escape(FILE *out, const char *s, bool quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", out);
		else if (*s == '\n')
			fputs("\\n", out);
		else if (quote && *s == '"')
			fputs("\\\"", out);
		else
			fputc(*s, out);
	}
}

/* {a="x",b="y"} with @le as the last label when given; nothing without labels. */
static void metrics_labels(FILE *out, const struct metrics_family *f,
			   const struct metrics_series *s, const char *le)
{
	if (f->n_labels == 0 && !le)
		return;
	fputc('{', out);
	for (unsigned int i = 0; i < f->n_labels; i++) {
		fprintf(out, "%s%s=\"", i ? "," : "", f->labels[i]);
		metrics_escape(out, s->values[i], true);
		fputc('"', out);
	}
	if (le)
		fprintf(out, "%sle=\"%s\"", f->n_labels ? "," : "", le);
	fputc('}', out);
}

static void metrics_render_family(FILE *out, const struct metrics_family *f)
{
	static const char *const types[] = {
		[METRICS_COUNTER] = "counter",
		[METRICS_GAUGE] = "gauge",
		[METRICS_HISTOGRAM] = "histogram",
	};
	char num[32], le[32];

	fprintf(out, "# HELP %s ", f->name);
	metrics_escape(out, f->help, false);
	fprintf(out, "\n# TYPE %s %s\n", f->name, types[f->kind]);
	for (size_t i = 0; i < f->n_series; i++) {
		const struct metrics_series *s = &f->series[i];
		uint64_t cum = 0;

		if (f->kind != METRICS_HISTOGRAM) {
			metrics_format(s->value, num);
			fputs(f->name, out);
			metrics_labels(out, f, s, NULL);
			fprintf(out, " %s\n", num);
			continue;
		}
		for (size_t b = 0; b <= f->n_buckets; b++) {
			cum += s->counts[b];
			if (b < f->n_buckets)
				metrics_format(f->buckets[b], le);
			else
				strcpy(le, "+Inf");
			fprintf(out, "%s_bucket", f->name);
			metrics_labels(out, f, s, le);
			fprintf(out, " %llu\n", (unsigned long long)cum);
		}
		metrics_format(s->value, num);
		fprintf(out, "%s_sum", f->name);
		metrics_labels(out, f, s, NULL);
		fprintf(out, " %s\n%s_count", num, f->name);
		metrics_labels(out, f, s, NULL);
		fprintf(out, " %llu\n", (unsigned long long)cum);
	}
}

int metrics_render(const struct metrics *m, char **ret, size_t *ret_len)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out;
	bool bad;

	out = open_memstream(&buf, &len);
	if (!out)
		return -errno;
	for (size_t i = 0; i < m->n_families; i++)
		metrics_render_family(out, m->families[i]);
	bad = ferror(out) != 0;
	if (fclose(out) != 0 || bad) {
		free(buf);
		return -ENOMEM;
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}
