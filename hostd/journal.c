// SPDX-License-Identifier: MIT
/*
 * Crashes into the journal (journal.h): one structured entry per crash
 * detected and per crash closed, through sd_journal_sendv().
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <syslog.h>
#include <systemd/sd-journal.h>

#include "common.h"
#include "crash.h"
#include "journal.h"
#include "ratelimit.h"
#include "util.h"

#define JOURNAL_FIELDS_MAX 20
#define JOURNAL_REPORT_INTERVAL_USEC (60 * USEC_PER_SEC)

struct journal {
	char *spool_dir;
	journal_report_fn report;
	void *ud;
	uint64_t sent, dropped;
	struct ratelimit report_rl;
};

/* One entry being assembled: "FIELD=value" strings. */
struct journal_entry {
	char *field[JOURNAL_FIELDS_MAX];
	size_t n;
	bool oom;
};

static void journal_entry_add(struct journal_entry *e, const char *name, const char *fmt, ...)
	_printf_(3, 4);

static void journal_entry_add(struct journal_entry *e, const char *name, const char *fmt, ...)
{
	char *value = NULL, *field = NULL;
	va_list ap;
	int r;

	if (e->oom || e->n >= JOURNAL_FIELDS_MAX) {
		e->oom = true;
		return;
	}
	va_start(ap, fmt);
	r = vasprintf(&value, fmt, ap);
	va_end(ap);
	if (r < 0) {
		e->oom = true;
		return;
	}
	if (asprintf(&field, "%s=%s", name, value) < 0) {
		free(value);
		e->oom = true;
		return;
	}
	free(value);
	e->field[e->n++] = field;
}

static void journal_entry_clear(struct journal_entry *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->field[i]);
	e->n = 0;
}

static void journal_send(struct journal *j, struct journal_entry *e)
{
	struct iovec iov[JOURNAL_FIELDS_MAX];
	int r = -ENOMEM;

	if (!e->oom) {
		for (size_t i = 0; i < e->n; i++)
			iov[i] = (struct iovec){ .iov_base = e->field[i],
						 .iov_len = strlen(e->field[i]) };
		r = sd_journal_sendv(iov, (int)e->n);
	}
	journal_entry_clear(e);
	if (r >= 0) {
		j->sent++;
		return;
	}
	j->dropped++;
	if (j->report && ratelimit_below(&j->report_rl, ts_now_realtime_usec()))
		j->report(j->ud, r, j->dropped);
}

int journal_new(const char *spool_dir, journal_report_fn report, void *ud,
		struct journal **ret)
{
	struct journal *j = calloc(1, sizeof(*j));

	if (!j)
		return -ENOMEM;
	j->spool_dir = strdup(spool_dir);
	if (!j->spool_dir) {
		free(j);
		return -ENOMEM;
	}
	j->report = report;
	j->ud = ud;
	j->report_rl = (struct ratelimit)RATELIMIT_INIT(JOURNAL_REPORT_INTERVAL_USEC, 1);
	*ret = j;
	return 0;
}

void journal_free(struct journal *j)
{
	if (!j)
		return;
	free(j->spool_dir);
	free(j);
}

void journal_counts(const struct journal *j, uint64_t *ret_sent, uint64_t *ret_dropped)
{
	*ret_sent = j->sent;
	*ret_dropped = j->dropped;
}

/* A string member of the record (read only), or NULL. */
static const char *journal_rec_str(const struct crash *c, const char *obj, const char *key)
{
	json_object *o = c->rec, *v;

	if (!o)
		return NULL;
	if (obj && !json_object_object_get_ex(o, obj, &o))
		return NULL;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* The fields both entries carry. */
static void journal_crash_fields(struct journal *j, struct journal_entry *e,
				 const struct obs_event *ev, const char *event)
{
	const struct crash *c = ev->crash;
	const char *bucket = crash_signature_bucket(c), *title = crash_signature_title(c);
	const char *kind = journal_rec_str(c, "signature", "kind");

	journal_entry_add(e, "SYSLOG_IDENTIFIER", "panicbrokerd");
	journal_entry_add(e, "PANICBROKER_CRASH_ID", "%s", c->id);
	journal_entry_add(e, "PANICBROKER_VM", "%s", ev->vm);
	journal_entry_add(e, "PANICBROKER_EVENT", "%s", event);
	journal_entry_add(e, "PANICBROKER_STATE", "%s", crash_state_to_string(c->state));
	journal_entry_add(e, "PANICBROKER_RECORD", "%s/crashes/%s/" SPOOL_RECORD_NAME,
			  j->spool_dir, c->id);
	if (bucket)
		journal_entry_add(e, "PANICBROKER_SIGNATURE_BUCKET", "%s", bucket);
	if (title)
		journal_entry_add(e, "PANICBROKER_SIGNATURE_TITLE", "%s", title);
	if (kind)
		journal_entry_add(e, "PANICBROKER_SIGNATURE_KIND", "%s", kind);
	if (!ev->saved)
		journal_entry_add(e, "PANICBROKER_RECORD_SAVED", "no");
}

static void journal_crash_opened(struct journal *j, const struct obs_event *ev)
{
	const struct crash *c = ev->crash;
	const char *event = ev->event ?: journal_rec_str(c, NULL, "event") ?: "unknown";
	const char *title = crash_signature_title(c);
	struct journal_entry e = { 0 };

	journal_entry_add(&e, "MESSAGE_ID", JOURNAL_MID_CRASH_DETECTED);
	journal_entry_add(&e, "PRIORITY", "%d", LOG_WARNING);
	journal_entry_add(&e, "MESSAGE", "VM %s crashed (%s%s%s): crash %s", ev->vm, event,
			  title ? ", " : "", title ?: "", c->id);
	journal_crash_fields(j, &e, ev, event);
	journal_send(j, &e);
}

static void journal_crash_closed(struct journal *j, const struct obs_event *ev)
{
	const struct crash *c = ev->crash;
	const char *event = journal_rec_str(c, NULL, "event") ?: "unknown";
	const char *outcome = ev->outcome ?: journal_rec_str(c, "final_action_result", "outcome");
	const char *snapshot = crash_snapshot_get_state(c);
	const char *kdump = c->kdump_ks != CRASH_KS_NONE ? crash_ks_to_string(c->kdump_ks) : NULL;
	const char *title = crash_signature_title(c);
	struct journal_entry e = { 0 };

	journal_entry_add(&e, "MESSAGE_ID", JOURNAL_MID_CRASH_CLOSED);
	journal_entry_add(&e, "PRIORITY", "%d", LOG_NOTICE);
	journal_entry_add(&e, "MESSAGE", "VM %s: crash %s closed, %s%s%s%s%s", ev->vm, c->id,
			  outcome ?: "no final action", kdump ? "; kdump " : "", kdump ?: "",
			  title ? "; " : "", title ?: "");
	journal_crash_fields(j, &e, ev, event);
	if (outcome)
		journal_entry_add(&e, "PANICBROKER_FINAL_OUTCOME", "%s", outcome);
	if (kdump)
		journal_entry_add(&e, "PANICBROKER_KDUMP_OUTCOME", "%s", kdump);
	if (snapshot)
		journal_entry_add(&e, "PANICBROKER_SNAPSHOT", "%s", snapshot);
	journal_send(j, &e);
}

void journal_on_event(void *ud, const struct obs_event *ev)
{
	struct journal *j = ud;

	if (!ev->crash || !ev->vm)
		return;
	if (ev->type == OBS_CRASH_OPENED)
		journal_crash_opened(j, ev);
	else if (ev->type == OBS_CRASH_CLOSED)
		journal_crash_closed(j, ev);
}

void journal_exec_result(struct journal *j, const char *crash_id, const char *vm,
			 const char *program, const char *outcome, const char *detail)
{
	struct journal_entry e = { 0 };

	journal_entry_add(&e, "MESSAGE_ID", JOURNAL_MID_EXEC_FAILED);
	journal_entry_add(&e, "PRIORITY", "%d", LOG_WARNING);
	journal_entry_add(&e, "MESSAGE", "VM %s: on-crash-exec %s for crash %s: %s%s%s", vm,
			  program, crash_id, outcome, detail && detail[0] ? ": " : "",
			  detail ?: "");
	journal_entry_add(&e, "SYSLOG_IDENTIFIER", "panicbrokerd");
	journal_entry_add(&e, "PANICBROKER_CRASH_ID", "%s", crash_id);
	journal_entry_add(&e, "PANICBROKER_VM", "%s", vm);
	journal_entry_add(&e, "PANICBROKER_EXEC_PROGRAM", "%s", program);
	journal_entry_add(&e, "PANICBROKER_EXEC_OUTCOME", "%s", outcome);
	journal_entry_add(&e, "PANICBROKER_RECORD", "%s/crashes/%s/" SPOOL_RECORD_NAME,
			  j->spool_dir, crash_id);
	journal_send(j, &e);
}
