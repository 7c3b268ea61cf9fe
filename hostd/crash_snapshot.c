// SPDX-License-Identifier: MIT
/* The record's snapshot object: a memory dump of the crashed guest. */
#include <stdio.h>
#include <string.h>

#include "crash.h"
#include "crash_json.h"

static json_object *crash_snap(struct crash *c)
{
	crash_touch(c);
	return crash_json_obj(c->rec, "snapshot");
}

void crash_snapshot_begin(struct crash *c, const char *format, uint64_t now_usec)
{
	json_object *s = json_object_new_object();

	json_object_object_add(c->rec, "snapshot", s);
	json_object_object_add(s, "state", json_object_new_string("starting"));
	json_object_object_add(s, "format", json_object_new_string(format));
	json_object_object_add(s, "started_at", crash_json_time(now_usec));
	crash_touch(c);
}

void crash_snapshot_state(struct crash *c, const char *state)
{
	json_object_object_add(crash_snap(c), "state", json_object_new_string(state));
}

void crash_snapshot_space(struct crash *c, uint64_t ram_bytes, uint64_t avail_bytes)
{
	json_object *s = crash_snap(c);

	json_object_object_add(s, "guest_ram_bytes", json_object_new_uint64(ram_bytes));
	json_object_object_add(s, "space_available_bytes", json_object_new_uint64(avail_bytes));
}

void crash_snapshot_progress(struct crash *c, uint64_t done_bytes, uint64_t total_bytes)
{
	json_object *s = crash_snap(c);

	json_object_object_add(s, "bytes_done", json_object_new_uint64(done_bytes));
	json_object_object_add(s, "bytes_total", json_object_new_uint64(total_bytes));
}

void crash_snapshot_file(struct crash *c, const struct crash_snapshot_file *f)
{
	json_object *s = crash_snap(c), *pb = json_object_new_object();

	json_object_object_add(s, "bytes", json_object_new_uint64(f->bytes));
	json_object_object_add(s, "vmcoreinfo", json_object_new_boolean(f->vmcoreinfo));
	if (f->phys_base_checked) {
		/* Hexadecimal: phys_base is an unsigned long that may wrap. */
		json_object_object_add(pb, "written_by_qemu", crash_json_hex64(f->phys_base_qemu));
		json_object_object_add(pb, "from_vmcoreinfo",
				       crash_json_hex64(f->phys_base_vmcoreinfo));
		json_object_object_add(pb, "fixed", json_object_new_boolean(
					       f->phys_base_qemu != f->phys_base_vmcoreinfo));
		json_object_object_add(s, "phys_base", pb);
	} else if (f->phys_base_why[0]) {
		json_object_object_add(pb, "fixed", json_object_new_boolean(false));
		json_object_object_add(pb, "reason", json_object_new_string(f->phys_base_why));
		json_object_object_add(s, "phys_base", pb);
	} else {
		json_object_put(pb);
	}
	json_object_object_add(s, "layout", json_object_new_string(f->layout));
	json_object_object_add(s, "path", json_object_new_string(f->path));
}

void crash_snapshot_verify(struct crash *c, const struct crash_snapshot_verify *v)
{
	json_object *o = json_object_new_object();

	if (v->tool)
		json_object_object_add(o, "tool", json_object_new_string(v->tool));
	if (v->ok < 0) {
		json_object_object_add(o, "ok", NULL);
		json_object_object_add(o, "reason", json_object_new_string(v->reason ? v->reason : ""));
	} else {
		json_object_object_add(o, "exit_status", json_object_new_int(v->exit_status));
		if (v->log_path) {
			json_object_object_add(o, "log_path", json_object_new_string(v->log_path));
			json_object_object_add(o, "log_tail",
					       json_object_new_string(v->log_tail ? v->log_tail : ""));
		}
		json_object_object_add(o, "panic_line",
				       v->panic_line ? json_object_new_string(v->panic_line) : NULL);
		json_object_object_add(o, "ok", json_object_new_boolean(v->ok));
		if (v->output)
			json_object_object_add(o, "output", json_object_new_string(v->output));
	}
	json_object_object_add(crash_snap(c), "verify", o);
	if (v->log && v->log_len)
		crash_set_signature(c, NULL, 0, v->log, v->log_len, "snapshot log");
}

void crash_snapshot_end(struct crash *c, const char *state, const char *reason,
			uint64_t now_usec, double seconds)
{
	json_object *s = crash_snap(c);

	json_object_object_add(s, "state", json_object_new_string(state));
	json_object_object_add(s, "reason", json_object_new_string(reason));
	json_object_object_add(s, "finished_at", crash_json_time(now_usec));
	if (seconds >= 0)
		json_object_object_add(s, "seconds", json_object_new_double(seconds));
	crash_note(c, "snapshot %s: %s", state, reason);
}

const char *crash_snapshot_get_state(const struct crash *c)
{
	return crash_json_get_string(crash_json_sub(c->rec, "snapshot"), "state");
}

const char *crash_snapshot_path(const struct crash *c)
{
	return crash_json_get_string(crash_json_sub(c->rec, "snapshot"), "path");
}

double crash_snapshot_seconds(const struct crash *c)
{
	json_object *v, *s = crash_json_sub(c->rec, "snapshot");

	if (!s || !json_object_object_get_ex(s, "seconds", &v))
		return -1;
	return json_object_get_double(v);
}
