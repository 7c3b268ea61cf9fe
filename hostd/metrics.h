/* SPDX-License-Identifier: MIT */
/*
 * Metrics: a small registry of counters, gauges and histograms rendered in
 * the Prometheus text exposition format (version 0.0.4), and the daemon's
 * own series over it (metrics_daemon.c), fed by observe.h.
 *
 * Contract:
 *  - A family is a name, a help text, a kind and up to METRICS_MAX_LABELS
 *    label names. metrics_add() refuses (-EINVAL) a name or label name the
 *    format does not allow, and a counter whose name does not end in
 *    "_total" (the naming rules: panicbroker_ prefix, base units).
 *  - Series are made on first use, at most spec->max_series of them (a
 *    family without labels has exactly one, made at once). The number of
 *    series never grows past that: once the family is full, a new label set
 *    goes to one overflow series whose every label is spec->overflow
 *    ("other" by default); with spec->evict, the least recently updated
 *    series makes room instead, and its count is added to the overflow
 *    series, so that the family's sum never goes down.
 *  - Label values are at most METRICS_VALUE_MAX bytes (-EINVAL past that);
 *    they are escaped when rendered, never trusted.
 *  - Histograms have fixed upper bounds, ascending; +Inf is implied.
 *  - Single threaded; no logging; negative errno on failure.
 */
#ifndef PB_METRICS_H
#define PB_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "observe.h"

#define METRICS_MAX_LABELS 2
#define METRICS_MAX_BUCKETS 24
#define METRICS_VALUE_MAX 128
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

enum metrics_kind {
	METRICS_COUNTER,
	METRICS_GAUGE,
	METRICS_HISTOGRAM,
};

struct metrics_spec {
	const char *name;
	const char *help;
	enum metrics_kind kind;
	const char *labels[METRICS_MAX_LABELS];	/* unused ones NULL */
	const double *buckets;			/* histograms: upper bounds, ascending */
	size_t n_buckets;
	size_t max_series;			/* with labels: >= 1 */
	bool evict;				/* full: the least recently updated goes */
	const char *overflow;			/* NULL: "other" */
};

struct metrics;
struct metrics_family;

int metrics_new(struct metrics **ret);
void metrics_free(struct metrics *m);
/* The family is the registry's; it is rendered in the order added. */
int metrics_add(struct metrics *m, const struct metrics_spec *spec,
		struct metrics_family **ret);

/*
 * @values: one per label name (NULL for a family without labels).
 * Counters only go up (-EINVAL for a negative @by); gauges take both.
 */
int metrics_inc(struct metrics_family *f, const char *const *values, double by);
int metrics_set(struct metrics_family *f, const char *const *values, double v);
int metrics_observe(struct metrics_family *f, const char *const *values, double v);
/* Removes every series whose label @label is @value (a VM gone). */
void metrics_drop(struct metrics_family *f, unsigned int label, const char *value);
size_t metrics_series_count(const struct metrics_family *f);
/* The value of a counter or gauge series, or a histogram's count; -1 when absent. */
double metrics_value(const struct metrics_family *f, const char *const *values);

/* The whole registry as text; *ret is malloc()ed and NUL-terminated. */
int metrics_render(const struct metrics *m, char **ret, size_t *ret_len);

/* -- panicbrokerd's series (metrics_daemon.c; docs/panicbrokerd.8, METRICS) -- */

/* Per-VM series are kept for this many VMs (more than CFG_MAX_VMS). */
#define METRICS_MAX_VMS 1024
/* The crash-bucket counter keeps this many buckets, the most recently seen. */
#define METRICS_MAX_CRASH_BUCKETS 100

struct metrics_counts {
	size_t vms_supervised;
	size_t crashes_open;
	size_t spool_crashes;	/* crash records in the spool (its index) */
};

/* Asked at every scrape; fills @ret. */
typedef void (*metrics_counts_fn)(void *ud, struct metrics_counts *ret);

struct metrics_daemon;

int metrics_daemon_new(const char *version, metrics_counts_fn counts, void *ud,
		       struct metrics_daemon **ret);
void metrics_daemon_free(struct metrics_daemon *d);
/* An obs_fn: obs_subscribe(metrics_daemon_on_event, d). */
void metrics_daemon_on_event(void *ud, const struct obs_event *ev);
/* The scrape: the gauges asked for now, then the registry rendered. */
int metrics_daemon_render(struct metrics_daemon *d, char **ret, size_t *ret_len);
struct metrics *metrics_daemon_registry(struct metrics_daemon *d);

#endif
