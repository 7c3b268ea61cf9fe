// SPDX-License-Identifier: MIT
/*
 * The record's panic, guest, unload and mailbox objects: what the guest said
 * over the broker channel. Guest bytes are stored printable (escaped).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crash.h"
#include "crash_json.h"
#include "signature.h"

#define CRASH_MALFORMED_KEPT 16

/* The guest's bytes, printable: \n and \t kept, others as \xNN. */
static json_object *crash_escaped(const char *s, uint32_t len)
{
	_cleanup_free_ char *out = malloc((size_t)len * 4 + 1);
	size_t o = 0;

	if (!out)
		return NULL;
	for (uint32_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if ((ch >= 0x20 && ch < 0x7f && ch != '\\') || ch == '\n' || ch == '\t') {
			out[o++] = (char)ch;
		} else if (ch == '\\') {
			out[o++] = '\\';
			out[o++] = '\\';
		} else {
			o += (size_t)snprintf(out + o, 5, "\\x%02x", ch);
		}
	}
	return json_object_new_string_len(out, (int)o);
}

static void crash_boot_id(const uint8_t id[16], char out[37])
{
	char *p = out;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		p += snprintf(p, 3, "%02x", id[i]);
	}
	*p = '\0';
}

static void crash_set_guest(struct crash *c, const struct chan_guest *gi)
{
	const struct pb_mbox_hello_info *h = &gi->hello;
	json_object *g = crash_json_obj(c->rec, "guest");
	char bid[37];

	crash_boot_id(h->boot_id, bid);
	json_object_object_add(g, "kernel_release", json_object_new_string(h->release));
	json_object_object_add(g, "boot_id", json_object_new_string(bid));
	json_object_object_add(g, "driver_version", json_object_new_string(h->driver_version));
	json_object_object_add(g, "crash_loaded",
			       json_object_new_boolean(h->flags & PB_MBOX_HELLO_CRASH_LOADED));
	json_object_object_add(g, "crash_base", crash_json_hex64(h->crash_base));
	json_object_object_add(g, "crash_size", crash_json_hex64(h->crash_size));
	json_object_object_add(g, "vmcoreinfo_paddr", crash_json_hex64(h->vmcoreinfo_paddr));
	json_object_object_add(g, "session", crash_json_hex64(gi->session));
}

void crash_set_panic(struct crash *c, const struct chan_panic *v)
{
	json_object *p = json_object_new_object(), *u;

	json_object_object_add(p, "message", crash_escaped(v->msg, v->msg_len));
	json_object_object_add(p, "log_tail", crash_escaped(v->log, v->log_len));
	json_object_object_add(p, "log_truncated",
			       json_object_new_boolean(v->info.flags & PB_MBOX_PANIC_LOG_TRUNCATED));
	json_object_object_add(p, "from_oops",
			       json_object_new_boolean(v->info.flags & PB_MBOX_PANIC_FROM_OOPS));
	json_object_object_add(p, "crash_loaded",
			       json_object_new_boolean(v->info.flags & PB_MBOX_PANIC_CRASH_LOADED));
	json_object_object_add(p, "taint", crash_json_hex64(v->info.taint));
	json_object_object_add(p, "cpu", json_object_new_int64(v->info.cpu));
	json_object_object_add(p, "uptime_ns", json_object_new_uint64(v->info.uptime_ns));
	json_object_object_add(p, "session", crash_json_hex64(v->session));
	json_object_object_add(p, "seq", json_object_new_int64(v->seq));
	json_object_object_add(p, "source", json_object_new_string(v->source));
	json_object_object_add(c->rec, "panic", p);
	if (v->guest)
		crash_set_guest(c, v->guest);
	u = json_object_new_object();
	json_object_object_add(u, "acked", json_object_new_boolean(false));
	json_object_object_add(c->rec, "unload", u);
	crash_set_signature(c, v->msg, v->msg_len, v->log, v->log_len, "panic record");
	crash_touch(c);
}

void crash_set_signature(struct crash *c, const char *msg, size_t msg_len,
			 const char *log, size_t log_len, const char *from)
{
	json_object *o = crash_json_sub(c->rec, "signature");
	struct sig sig;

	/* A panic record is the better source: a snapshot's log does not replace it. */
	if (o && strcmp(from, "panic record") != 0 &&
	    strcmp(crash_json_get_string(o, "from") ? crash_json_get_string(o, "from") : "",
		   "panic record") == 0)
		return;
	/* Only ENOMEM fails here; the record goes on without a signature. */
	if (sig_compute(msg, msg_len, log, log_len, &sig) < 0 || sig_to_json(&sig, &o) < 0)
		return;
	json_object_object_add(o, "from", json_object_new_string(from));
	json_object_object_add(c->rec, "signature", o);
	crash_touch(c);
}

/* A panic record, its strings and its guest in one allocation of our own. */
struct crash_panic_copy {
	struct chan_panic view;
	struct chan_guest guest;
	char source[96];
	char bytes[]; /* msg, then log */
};

struct crash_panic_copy *crash_panic_copy(const struct chan_panic *p)
{
	struct crash_panic_copy *pc;

	pc = malloc(sizeof(*pc) + (size_t)p->msg_len + p->log_len);
	if (!pc)
		return NULL;
	pc->view = *p;
	memcpy(pc->bytes, p->msg, p->msg_len);
	memcpy(pc->bytes + p->msg_len, p->log, p->log_len);
	pc->view.msg = pc->bytes;
	pc->view.log = pc->bytes + p->msg_len;
	snprintf(pc->source, sizeof(pc->source), "%s", p->source);
	pc->view.source = pc->source;
	if (p->guest) {
		pc->guest = *p->guest;
		pc->view.guest = &pc->guest;
	}
	return pc;
}

void crash_panic_copy_free(struct crash_panic_copy *pc)
{
	free(pc);
}

const struct chan_panic *crash_panic_copy_view(const struct crash_panic_copy *pc)
{
	return &pc->view;
}

void crash_set_timing(struct crash *c, const struct chan_timing *t)
{
	json_object *u = crash_json_obj(c->rec, "unload");

	json_object_object_add(u, "acked", json_object_new_boolean(t->acked));
	if (t->acked)
		json_object_object_add(u, "rtt_us", json_object_new_int64(t->rtt_us));
	if (t->tier_us)
		json_object_object_add(crash_json_obj(c->rec, "panic"), "tier_us",
				       json_object_new_int64(t->tier_us));
	crash_touch(c);
}

void crash_add_malformed(struct crash *c, const char *what, const char *reason,
			 uint64_t count)
{
	json_object *mb = crash_json_obj(c->rec, "mailbox");
	json_object *list = crash_json_array(mb, "malformed");
	char full[256];

	snprintf(full, sizeof(full), "%s: %s", what, reason ? reason : "malformed");
	if (json_object_array_length(list) < CRASH_MALFORMED_KEPT)
		json_object_array_add(list, json_object_new_string(full));
	json_object_object_add(mb, "malformed_count", json_object_new_uint64(count));
	crash_touch(c);
}

void crash_set_unknown_records(struct crash *c, uint64_t count)
{
	json_object_object_add(crash_json_obj(c->rec, "mailbox"), "unknown_records",
			       json_object_new_uint64(count));
	crash_touch(c);
}

const char *crash_signature_bucket(const struct crash *c)
{
	return crash_json_get_string(crash_json_sub(c->rec, "signature"), "bucket");
}

const char *crash_signature_title(const struct crash *c)
{
	return crash_json_get_string(crash_json_sub(c->rec, "signature"), "title");
}
