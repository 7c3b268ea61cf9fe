// SPDX-License-Identifier: MIT
/*
 * panicbrokerd's series (metrics.h, docs/panicbrokerd.8 METRICS): counted
 * from the observe.h events as they happen, with the few levels (VMs
 * supervised, open crashes) asked for at each scrape.
 *
 * Why the label sets stay bounded on a host with 1,000 VMs: the only
 * per-VM series are panicbroker_vm_crashes_total{vm,event} (the three
 * events that open a crash, from 0 when the VM is added) and
 * panicbroker_vm_attached{vm}, both dropped with the VM; crash
 * buckets are counted apart, without the VM, and only the
 * METRICS_MAX_CRASH_BUCKETS most recently seen keep a series of their own;
 * every other label takes one of a few fixed values.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "crash.h"
#include "metrics.h"
#include "spool.h"
#include "util.h"

/* The overflow value of the per-VM families: '~' is in no VM name. */
#define METRICS_VM_OTHER "~other"
/* Values of a free-text label (event, outcome) a family keeps apart. */
#define METRICS_MAX_WORDS 16
#define METRICS_WORD_MAX 24

/* The events that open a crash (crash_machine.h), counted per VM from 0. */
static const char *const metrics_crash_events[] = {
	"GUEST_PANICKED", "GUEST_CRASHLOADED", "PANIC_RECORD",
};

/* What the watcher remembers of a VM between its events. */
struct metrics_vm {
	char name[VM_NAME_MAX + 1];
	bool attached;
	uint64_t malformed;		/* the VM's running count, as last told */
	char opened[SPOOL_ID_MAX];	/* the last crash opened while we watched */
	bool bucket_counted;		/* ... and its bucket counted */
};

struct metrics_daemon {
	struct metrics *m;
	metrics_counts_fn counts;
	void *ud;
	struct metrics_vm *vms;
	size_t n_vms;
	struct metrics_family *build_info, *start_time;
	struct metrics_family *vms_supervised, *vms_attached, *crashes_open, *vm_attached;
	struct metrics_family *spool_crashes;
	struct metrics_family *vm_crashes, *buckets, *closed;
	struct metrics_family *kdump, *snapshots, *snapshot_seconds;
	struct metrics_family *unloads, *unload_rtt, *unload_tier;
	struct metrics_family *malformed;
	struct metrics_family *writes, *write_seconds;
	struct metrics_family *dropped;
};

static const double metrics_snapshot_bounds[] = {
	1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600,
};
/* The UNLOAD round trip and the tier's time: microseconds to a second. */
static const double metrics_unload_bounds[] = {
	0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
	0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
};
static const double metrics_write_bounds[] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
};

/* -- the families -- */

#define METRICS_BOUNDS(a) .buckets = (a), .n_buckets = ARRAY_SIZE(a)

static int metrics_daemon_families(struct metrics_daemon *d, const char *version)
{
	const struct {
		struct metrics_family **fam;
		struct metrics_spec spec;
	} table[] = {
		{ &d->build_info, { .name = "panicbroker_build_info",
			.help = "panicbrokerd's version; always 1",
			.kind = METRICS_GAUGE, .labels = { "version" }, .max_series = 1 } },
		{ &d->start_time, { .name = "panicbroker_start_time_seconds",
			.help = "When panicbrokerd started, seconds since the epoch",
			.kind = METRICS_GAUGE } },
		{ &d->vms_supervised, { .name = "panicbroker_vms_supervised",
			.help = "VMs panicbrokerd supervises",
			.kind = METRICS_GAUGE } },
		{ &d->vms_attached, { .name = "panicbroker_vms_attached",
			.help = "Supervised VMs whose backend (QMP) is attached",
			.kind = METRICS_GAUGE } },
		{ &d->crashes_open, { .name = "panicbroker_crashes_open",
			.help = "Crashes not closed yet (kdump running, snapshot, final action pending)",
			.kind = METRICS_GAUGE } },
		{ &d->spool_crashes, { .name = "panicbroker_spool_crashes",
			.help = "Crash records in the spool, open and closed",
			.kind = METRICS_GAUGE } },
		{ &d->vm_attached, { .name = "panicbroker_vm_attached",
			.help = "1 while the daemon is attached to the VM's backend, 0 while not",
			.kind = METRICS_GAUGE, .labels = { "vm" },
			.max_series = METRICS_MAX_VMS,
			.overflow = METRICS_VM_OTHER } },
		{ &d->vm_crashes, { .name = "panicbroker_vm_crashes_total",
			.help = "Crashes detected, by VM and the event that opened them",
			.kind = METRICS_COUNTER, .labels = { "vm", "event" },
			.max_series = METRICS_MAX_VMS * 3, .overflow = METRICS_VM_OTHER } },
		{ &d->buckets, { .name = "panicbroker_crash_buckets_total",
			.help = "Crashes by signature bucket (the most recently seen buckets; the rest in bucket=\"other\"; \"none\": no signature)",
			.kind = METRICS_COUNTER, .labels = { "bucket" },
			.max_series = METRICS_MAX_CRASH_BUCKETS,
			.evict = true } },
		{ &d->closed, { .name = "panicbroker_crashes_closed_total",
			.help = "Crashes closed, by the final action's outcome",
			.kind = METRICS_COUNTER, .labels = { "outcome" },
			.max_series = METRICS_MAX_WORDS } },
		{ &d->kdump, { .name = "panicbroker_kdump_outcomes_total",
			.help = "Guest kdump sessions that ended, by outcome (done, failed, hung)",
			.kind = METRICS_COUNTER, .labels = { "outcome" },
			.max_series = METRICS_MAX_WORDS } },
		{ &d->snapshots, { .name = "panicbroker_snapshots_total",
			.help = "Memory snapshots that ended, by outcome (done, failed, refused)",
			.kind = METRICS_COUNTER, .labels = { "outcome" },
			.max_series = METRICS_MAX_WORDS } },
		{ &d->snapshot_seconds, { .name = "panicbroker_snapshot_duration_seconds",
			.help = "How long memory snapshots took",
			.kind = METRICS_HISTOGRAM,
			METRICS_BOUNDS(metrics_snapshot_bounds) } },
		{ &d->unloads, { .name = "panicbroker_unloads_total",
			.help = "UNLOAD handshakes the guests reported, by whether the host's ack arrived",
			.kind = METRICS_COUNTER, .labels = { "acked" },
			.max_series = 2 } },
		{ &d->unload_rtt, { .name = "panicbroker_unload_round_trip_seconds",
			.help = "The UNLOAD round trip the guest measured (acked handshakes)",
			.kind = METRICS_HISTOGRAM, METRICS_BOUNDS(metrics_unload_bounds) } },
		{ &d->unload_tier, { .name = "panicbroker_unload_tier_seconds",
			.help = "The guest's hypervisor tier time, as it reported",
			.kind = METRICS_HISTOGRAM,
			METRICS_BOUNDS(metrics_unload_bounds) } },
		{ &d->malformed, { .name = "panicbroker_guest_malformed_total",
			.help = "Malformed input from guests over the broker channel",
			.kind = METRICS_COUNTER } },
		{ &d->writes, { .name = "panicbroker_record_writes_total",
			.help = "Crash record saves, by result (saved, failed)",
			.kind = METRICS_COUNTER, .labels = { "result" },
			.max_series = 2 } },
		{ &d->write_seconds, { .name = "panicbroker_record_write_duration_seconds",
			.help = "How long a crash record save took (write, fsync, rename)",
			.kind = METRICS_HISTOGRAM, METRICS_BOUNDS(metrics_write_bounds) } },
		{ &d->dropped, { .name = "panicbroker_metrics_updates_dropped_total",
			.help = "Metric updates lost for want of memory",
			.kind = METRICS_COUNTER } },
	};
	/* Series that exist from the start, at 0: rate() and alerts see them. */
	static const char *const zero[][2] = {
		{ "panicbroker_kdump_outcomes_total", "done" },
		{ "panicbroker_kdump_outcomes_total", "failed" },
		{ "panicbroker_kdump_outcomes_total", "hung" },
		{ "panicbroker_snapshots_total", "done" },
		{ "panicbroker_snapshots_total", "failed" },
		{ "panicbroker_snapshots_total", "refused" },
		{ "panicbroker_record_writes_total", "saved" },
		{ "panicbroker_record_writes_total", "failed" },
		{ "panicbroker_unloads_total", "true" },
		{ "panicbroker_unloads_total", "false" },
	};
	const char *v[1] = { version };
	int r;

	for (size_t i = 0; i < ARRAY_SIZE(table); i++) {
		r = metrics_add(d->m, &table[i].spec, table[i].fam);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < ARRAY_SIZE(zero); i++) {
		struct metrics_family *f = NULL;

		for (size_t k = 0; k < ARRAY_SIZE(table); k++)
			if (strcmp(table[k].spec.name, zero[i][0]) == 0)
				f = *table[k].fam;
		r = f ? metrics_inc(f, &zero[i][1], 0) : -ENOENT;
		if (r < 0)
			return r;
	}
	r = metrics_set(d->build_info, v, 1);
	if (r >= 0)
		r = metrics_set(d->start_time, NULL, (double)ts_now_realtime_usec() / USEC_PER_SEC);
	return r;
}

int metrics_daemon_new(const char *version, metrics_counts_fn counts, void *ud,
		       struct metrics_daemon **ret)
{
	struct metrics_daemon *d = calloc(1, sizeof(*d));
	int r;

	if (!d)
		return -ENOMEM;
	d->counts = counts;
	d->ud = ud;
	r = metrics_new(&d->m);
	if (r >= 0)
		r = metrics_daemon_families(d, version);
	if (r < 0) {
		metrics_daemon_free(d);
		return r;
	}
	*ret = d;
	return 0;
}

void metrics_daemon_free(struct metrics_daemon *d)
{
	if (!d)
		return;
	metrics_free(d->m);
	free(d->vms);
	free(d);
}

struct metrics *metrics_daemon_registry(struct metrics_daemon *d)
{
	return d->m;
}

/* -- the events -- */

/* A free-text label value: a short word of a-z, 0-9, '-', '_' or "other". */
static const char *metrics_word(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > METRICS_WORD_MAX)
		return "other";
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_'))
			return "other";
	return s;
}

static struct metrics_vm *metrics_vm_find(struct metrics_daemon *d, const char *name,
					  bool create)
{
	struct metrics_vm *arr;

	for (size_t i = 0; i < d->n_vms; i++)
		if (strcmp(d->vms[i].name, name) == 0)
			return &d->vms[i];
	if (!create || d->n_vms >= METRICS_MAX_VMS || strlen(name) > VM_NAME_MAX)
		return NULL;
	arr = realloc(d->vms, (d->n_vms + 1) * sizeof(*arr));
	if (!arr)
		return NULL;
	d->vms = arr;
	arr = &d->vms[d->n_vms++];
	*arr = (struct metrics_vm){ 0 };
	strcpy(arr->name, name);
	return arr;
}

static void metrics_vm_forget(struct metrics_daemon *d, const char *name)
{
	struct metrics_vm *v = metrics_vm_find(d, name, false);

	if (!v)
		return;
	*v = d->vms[--d->n_vms];
	metrics_drop(d->vm_attached, 0, name);
	metrics_drop(d->vm_crashes, 0, name);
}

/* A failed update (no memory) is counted, never told: the watcher is void. */
static void metrics_daemon_check(struct metrics_daemon *d, int r)
{
	if (r < 0 && metrics_inc(d->dropped, NULL, 1) < 0)
		return; /* a family without labels: cannot fail */
}

/*
 * A crash's bucket is counted once: at the first event that shows its
 * signature, or at its close as "none" if it never had one. Only crashes
 * opened while this process watched, like panicbroker_vm_crashes_total: a
 * crash resumed from the spool after a restart was counted before it, and
 * the sum over buckets stays the number of crashes.
 */
static void metrics_daemon_bucket(struct metrics_daemon *d, struct metrics_vm *v,
				  const struct obs_event *ev)
{
	const char *bucket = crash_signature_bucket(ev->crash);
	const char *val[1];

	if (!v || v->bucket_counted || strcmp(v->opened, ev->crash->id) != 0)
		return;
	if (!bucket || !*bucket) {
		if (ev->type != OBS_CRASH_CLOSED)
			return;
		bucket = "none";
	}
	val[0] = strlen(bucket) <= METRICS_VALUE_MAX ? bucket : "other";
	v->bucket_counted = true;
	metrics_daemon_check(d, metrics_inc(d->buckets, val, 1));
}

static void metrics_daemon_unload(struct metrics_daemon *d, const struct obs_event *ev)
{
	const char *acked[1] = { ev->unload_acked ? "true" : "false" };

	metrics_daemon_check(d, metrics_inc(d->unloads, acked, 1));
	if (ev->unload_acked)
		metrics_daemon_check(d, metrics_observe(d->unload_rtt, NULL,
							(double)ev->rtt_us / 1e6));
	if (ev->tier_us)
		metrics_daemon_check(d, metrics_observe(d->unload_tier, NULL,
							(double)ev->tier_us / 1e6));
}

void metrics_daemon_on_event(void *ud, const struct obs_event *ev)
{
	struct metrics_daemon *d = ud;
	struct metrics_vm *v;
	const char *val[2];

	if (!ev->vm)
		return;
	if (ev->type == OBS_VM_REMOVED) {
		metrics_vm_forget(d, ev->vm);
		return;
	}
	v = metrics_vm_find(d, ev->vm, true);
	if (!v)
		metrics_daemon_check(d, -ENOMEM);
	val[0] = v ? ev->vm : METRICS_VM_OTHER;
	if (v && ev->type == OBS_CRASH_OPENED && ev->crash) {
		snprintf(v->opened, sizeof(v->opened), "%s", ev->crash->id);
		v->bucket_counted = false;
	}
	if (ev->crash)
		metrics_daemon_bucket(d, v, ev);

	switch (ev->type) {
	case OBS_VM_ADDED:
		metrics_daemon_check(d, metrics_set(d->vm_attached, val, v && v->attached));
		/* Its crash counters from 0: increase() then sees the first crash. */
		for (size_t i = 0; v && i < ARRAY_SIZE(metrics_crash_events); i++) {
			val[1] = metrics_crash_events[i];
			metrics_daemon_check(d, metrics_inc(d->vm_crashes, val, 0));
		}
		break;
	case OBS_VM_ATTACH:
		if (v)
			v->attached = ev->attached;
		metrics_daemon_check(d, metrics_set(d->vm_attached, val, ev->attached));
		break;
	case OBS_CRASH_OPENED:
		val[1] = metrics_word(ev->event);
		metrics_daemon_check(d, metrics_inc(d->vm_crashes, val, 1));
		break;
	case OBS_CRASH_CLOSED:
		val[0] = metrics_word(ev->outcome);
		metrics_daemon_check(d, metrics_inc(d->closed, val, 1));
		break;
	case OBS_KDUMP_OUTCOME:
		val[0] = metrics_word(ev->outcome);
		metrics_daemon_check(d, metrics_inc(d->kdump, val, 1));
		break;
	case OBS_SNAPSHOT_END:
		val[0] = metrics_word(ev->outcome);
		metrics_daemon_check(d, metrics_inc(d->snapshots, val, 1));
		if (ev->seconds >= 0)
			metrics_daemon_check(d, metrics_observe(d->snapshot_seconds, NULL,
								ev->seconds));
		break;
	case OBS_UNLOAD:
		metrics_daemon_unload(d, ev);
		break;
	case OBS_MALFORMED:
		/* .count is the VM's running total: count what is new. A smaller
		 * one is a new count (the VM's channel started over). */
		if (v) {
			uint64_t add = ev->count >= v->malformed ? ev->count - v->malformed
								 : ev->count;

			v->malformed = ev->count;
			metrics_daemon_check(d, metrics_inc(d->malformed, NULL, (double)add));
		}
		break;
	case OBS_RECORD_WRITE:
		val[0] = ev->saved ? "saved" : "failed";
		metrics_daemon_check(d, metrics_inc(d->writes, val, 1));
		if (ev->seconds >= 0)
			metrics_daemon_check(d, metrics_observe(d->write_seconds, NULL,
								ev->seconds));
		break;
	case OBS_CRASH_STATE:
	case OBS_VM_REMOVED:
	case OBS_TYPE_MAX:
		break;
	}
}

/* -- the scrape -- */

int metrics_daemon_render(struct metrics_daemon *d, char **ret, size_t *ret_len)
{
	struct metrics_counts c = { 0 };
	size_t attached = 0;
	int r;

	if (d->counts)
		d->counts(d->ud, &c);
	for (size_t i = 0; i < d->n_vms; i++)
		attached += d->vms[i].attached;
	r = metrics_set(d->vms_supervised, NULL, (double)c.vms_supervised);
	if (r >= 0)
		r = metrics_set(d->vms_attached, NULL, (double)attached);
	if (r >= 0)
		r = metrics_set(d->crashes_open, NULL, (double)c.crashes_open);
	if (r >= 0)
		r = metrics_set(d->spool_crashes, NULL, (double)c.spool_crashes);
	if (r < 0)
		return r;
	return metrics_render(d->m, ret, ret_len);
}
