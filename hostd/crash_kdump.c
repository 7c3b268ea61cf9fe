// SPDX-License-Identifier: MIT
/* The record's kdump object: the kdump kernel's broker channel session. */
#include <stdio.h>
#include <string.h>

#include "crash.h"
#include "crash_json.h"

#define CRASH_UNLINKED_KEPT 8
#define CRASH_KDUMP_SESSION_NOTES 4

static const char *const crash_ks_names[CRASH_KS_MAX] = {
	[CRASH_KS_NONE] = NULL,
	[CRASH_KS_RUNNING] = "running",
	[CRASH_KS_DONE] = "done",
	[CRASH_KS_FAILED] = "failed",
	[CRASH_KS_HUNG] = "hung",
};

const char *crash_ks_to_string(enum crash_ks ks)
{
	return ks < CRASH_KS_MAX ? crash_ks_names[ks] : NULL;
}

/* The kdump object, with kdump.state present (null before the session). */
static json_object *crash_kdump_obj(struct crash *c)
{
	json_object *kd = crash_json_obj(c->rec, "kdump");

	if (!json_object_object_get_ex(kd, "state", NULL))
		json_object_object_add(kd, "state", NULL);
	return kd;
}

static void crash_set_ks(struct crash *c, json_object *kd, enum crash_ks ks)
{
	const char *name = crash_ks_to_string(ks);

	c->kdump_ks = ks;
	json_object_object_add(kd, "state", name ? json_object_new_string(name) : NULL);
}

void crash_set_crashed_session(struct crash *c, uint64_t id, const char *from)
{
	json_object *kd = crash_kdump_obj(c);

	c->crashed_session = id;
	json_object_object_add(kd, "crashed_session", crash_json_hex64(id));
	json_object_object_add(kd, "crashed_session_from", json_object_new_string(from));
	crash_touch(c);
}

/* kdump.unlinked_sessions: at most CRASH_UNLINKED_KEPT, then counted. */
static void crash_kdump_unlinked(json_object *kd, uint64_t session, uint64_t prev,
				 bool taken, const char *why, uint64_t now_usec)
{
	json_object *list, *e;

	list = crash_json_array(kd, "unlinked_sessions");
	if (json_object_array_length(list) >= CRASH_UNLINKED_KEPT) {
		crash_json_count(kd, "unlinked_sessions_dropped");
		return;
	}
	e = json_object_new_object();
	json_object_object_add(e, "session", crash_json_hex64(session));
	json_object_object_add(e, "prev_session", crash_json_hex64(prev));
	json_object_object_add(e, "at", crash_json_time(now_usec));
	json_object_object_add(e, "taken", json_object_new_boolean(taken));
	json_object_object_add(e, "why", json_object_new_string(why));
	json_object_array_add(list, e);
}

void crash_kdump_session(struct crash *c, uint64_t session, uint64_t prev,
			 enum crash_link link, const char *why, uint64_t now_usec)
{
	json_object *kd = crash_kdump_obj(c);
	/* A guest reopening its session over and over must not fill the history. */
	bool note = crash_json_count(kd, "sessions") < CRASH_KDUMP_SESSION_NOTES;

	crash_touch(c);
	if (link == CRASH_LINK_REFUSED) {
		crash_kdump_unlinked(kd, session, prev, false, why, now_usec);
		if (note)
			crash_note(c, "kdump session %016llx refused: %s; its reports are not this crash's",
				   (unsigned long long)session, why);
		return;
	}
	c->kdump_session = session;
	json_object_object_add(kd, "session", crash_json_hex64(session));
	json_object_object_add(kd, "prev_session", crash_json_hex64(prev));
	json_object_object_add(kd, "linked", json_object_new_boolean(link == CRASH_LINK_LINKED));
	json_object_object_add(kd, "session_at", crash_json_time(now_usec));
	if (link == CRASH_LINK_UNLINKED)
		crash_kdump_unlinked(kd, session, prev, true, why, now_usec);
	if (!note)
		return;
	if (link == CRASH_LINK_LINKED)
		crash_note(c, "kdump session %016llx opened: %s", (unsigned long long)session, why);
	else
		crash_note(c, "kdump session %016llx opened, unlinked: %s; taken as this crash's (the VM's only open crash, entered with a crash kernel loaded)",
			   (unsigned long long)session, why);
}

static const char *crash_report_name(enum crash_report_state st)
{
	switch (st) {
	case CRASH_REPORT_START:
		return "start";
	case CRASH_REPORT_PROGRESS:
		return "progress";
	case CRASH_REPORT_DONE:
		return "done";
	default:
		return "failed";
	}
}

void crash_kdump_add_report(struct crash *c, const struct crash_kdump_report *r)
{
	json_object *kd = crash_kdump_obj(c), *e;

	e = json_object_new_object();
	json_object_object_add(e, "at", crash_json_time(r->at_usec));
	json_object_object_add(e, "state", json_object_new_string(crash_report_name(r->state)));
	json_object_object_add(e, "percent", json_object_new_int64(r->percent));
	if (r->state == CRASH_REPORT_DONE)
		json_object_object_add(e, "bytes", json_object_new_uint64(r->bytes));
	if (r->state == CRASH_REPORT_FAILED)
		json_object_object_add(e, "reason", json_object_new_string(r->reason ? r->reason : ""));
	json_object_object_add(e, "session", crash_json_hex64(r->session));
	json_object_object_add(e, "prev_session", crash_json_hex64(r->prev_session));
	json_object_array_add(crash_json_array(kd, "reports"), e);
	json_object_object_add(kd, "last_report_at", crash_json_time(r->at_usec));
	if (r->state == CRASH_REPORT_START && (c->kdump_ks == CRASH_KS_NONE ||
					       c->kdump_ks == CRASH_KS_RUNNING) &&
	    !json_object_object_get_ex(kd, "started_at", NULL))
		json_object_object_add(kd, "started_at", crash_json_time(r->at_usec));
	crash_touch(c);
}

void crash_kdump_set_state(struct crash *c, enum crash_ks ks,
			   const struct crash_kdump_report *r)
{
	json_object *kd = crash_kdump_obj(c);

	crash_set_ks(c, kd, ks);
	if (ks == CRASH_KS_RUNNING) {
		crash_kdump_set_watch(c, 0);
	} else if (ks == CRASH_KS_DONE && r) {
		json_object_object_add(kd, "bytes", json_object_new_uint64(r->bytes));
		json_object_object_add(kd, "finished_at", crash_json_time(r->at_usec));
		crash_kdump_set_watch(c, 0);
	} else if (ks == CRASH_KS_FAILED && r) {
		json_object_object_add(kd, "reason",
				       json_object_new_string(r->reason ? r->reason : ""));
		json_object_object_add(kd, "finished_at", crash_json_time(r->at_usec));
		crash_kdump_set_watch(c, 0);
	}
	crash_touch(c);
}

void crash_kdump_report_dropped(struct crash *c)
{
	crash_json_count(crash_kdump_obj(c), "reports_dropped");
	crash_touch(c);
}

void crash_kdump_set_watch(struct crash *c, uint64_t usec)
{
	json_object *kd = crash_kdump_obj(c);

	c->kdump_watch_usec = usec;
	if (!usec) {
		json_object_object_add(kd, "session_deadline", NULL);
		json_object_object_add(kd, "progress_deadline", NULL);
		return;
	}
	json_object_object_add(kd, c->kdump_ks == CRASH_KS_NONE ? "session_deadline" :
								  "progress_deadline",
			       crash_json_time(usec));
}

const char *crash_kdump_reason(const struct crash *c)
{
	json_object *kd = crash_json_sub(c->rec, "kdump");
	const char *r = kd ? crash_json_get_string(kd, "reason") : NULL;

	return r ? r : "";
}

void crash_kdump_hung(struct crash *c, uint64_t now_usec, const char *reason)
{
	json_object *kd = crash_kdump_obj(c);

	crash_set_ks(c, kd, CRASH_KS_HUNG);
	json_object_object_add(kd, "reason", json_object_new_string(reason));
	json_object_object_add(kd, "finished_at", crash_json_time(now_usec));
	crash_kdump_set_watch(c, 0);
	crash_touch(c);
}
