// SPDX-License-Identifier: MIT
/*
 * The host end of the broker channel (hostd/chan.h): its life (open,
 * format, start, free). One look at the mailbox is chan_look.c, the timer
 * that decides when to look chan_sweep.c, the file chan_file.c.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chan_internal.h"
#include "common.h"
#include "evutil.h"
#include "log.h"

/*
 * Look fully at every tick of the sweep (chan_sweep.c), not only when the
 * guest wrote something: while a torn guest control block is retried, the
 * guest's timing may still come, a panic record is held back, ring records
 * wait beyond one look's share, a report waits for its rate limit, and
 * while the VM is in its kdump kernel (its session opens, reports and
 * reboots within a fraction of a second when there is little to dump).
 */
bool chan_fast(const struct chan *c)
{
	return c->file.map &&
	       (c->ctl_crc_fails || c->timing_polls || c->slot_retry || c->backlog || c->kdump ||
		c->malformed != c->malformed_reported || c->unknown != c->unknown_reported);
}

void chan_poll(struct chan *c)
{
	if (!c)
		return;
	chan_look(c, true);
}

void chan_drain(struct chan *c)
{
	if (c)
		chan_look(c, false);
}

void chan_set_kdump(struct chan *c, bool kdump)
{
	if (!c || c->kdump == kdump)
		return;
	c->kdump = kdump;
	chan_sweep_update(c);
}

uint64_t chan_session(const struct chan *c, uint32_t *ret_role)
{
	if (ret_role)
		*ret_role = c && c->session ? c->role : 0;
	return c ? c->session : 0;
}

/* SPEC §4.1: keep a COMPLETE slot aside, then format with a new generation. */
static int chan_format(struct chan *c, char *err, size_t errlen)
{
	struct pb_mbox_layout old;
	const char *reason = NULL;
	int r;

	if (pb_mbox_read_layout(c->file.map, c->file.size, &old, NULL) == 0) {
		c->slot = malloc(PB_MBOX_PANIC_PAYLOAD_MAX);
		if (!c->slot)
			return err_set(err, errlen, -ENOMEM, "mailbox %s: out of memory", c->path);
		r = pb_mbox_panic_read((uint8_t *)c->file.map + le32toh(old.panic_offset),
				       le32toh(old.panic_size), c->slot, &c->salvage, &reason);
		if (r < 0)	/* counted and logged now, reported at chan_start() */
			chan_malformed(c, "panic slot", reason);
		c->salvaged = r > 0;
		if (!c->salvaged) {
			free(c->slot);
			c->slot = NULL;
		}
		c->generation = le64toh(old.host_generation) + 1;
	} else {
		c->generation = chan_file_clock_generation();
	}
	r = pb_mbox_format_begin(c->file.map, c->file.size, &reason);
	if (r < 0)
		return err_set(err, errlen, r, "mailbox %s: cannot format it: %s", c->path,
			       reason);
	/* Zeroed by a hole where the file system can (no page written, none
	 * left in memory: a thousand mailboxes cost nothing until used). */
	if (chan_file_zero(&c->file) < 0) {
		memset(c->file.map, 0, c->file.size);
		chan_file_trim(&c->file);
	}
	pb_mbox_format_finish(c->file.map, c->file.size, c->generation);
	r = pb_mbox_read_layout(c->file.map, c->file.size, &c->layout, &reason);
	if (r < 0)
		return err_set(err, errlen, r, "mailbox %s: formatted layout invalid: %s",
			       c->path, reason);
	return 0;
}

int chan_open(sd_event *e, const char *vm, const char *path,
	      const struct chan_ops *ops, void *ud, struct chan **ret,
	      char *err, size_t errlen)
{
	struct chan *c;
	int r;

	c = calloc(1, sizeof(*c));
	if (c)
		c->path = strdup(path);
	if (!c || !c->path) {
		free(c);
		return err_set(err, errlen, -ENOMEM, "mailbox %s: out of memory", path);
	}
	c->file = (struct chan_file)CHAN_FILE_INIT;
	c->event = sd_event_ref(e);
	c->ops = ops;
	c->ud = ud;
	c->panic_rl = (struct ratelimit)RATELIMIT_INIT(USEC_PER_SEC, 1);
	c->kdump_rl = (struct ratelimit)RATELIMIT_INIT(USEC_PER_SEC,
						      PB_MBOX_HOST_KDUMP_STATUS_PER_S);
	c->session_log_rl = (struct ratelimit)RATELIMIT_INIT(USEC_PER_SEC, 1);
	c->unknown_rl = (struct ratelimit)RATELIMIT_INIT(USEC_PER_SEC, 1);
	c->malformed_rl = (struct ratelimit)RATELIMIT_INIT(USEC_PER_SEC, 1);
	snprintf(c->vm, sizeof(c->vm), "%s", vm);
	r = chan_file_open(&c->file, path, err, errlen);
	if (r >= 0)
		r = chan_format(c, err, errlen);
	if (r < 0) {
		chan_free(c);
		return r;
	}
	*ret = c;
	return 0;
}

int chan_start(struct chan *c)
{
	int r;

	if (c->started)
		return 0;
	r = chan_sweep_add(c);
	if (r < 0)
		return r;
	c->started = true;
	chan_look_salvaged(c);
	return 0;
}

void chan_free(struct chan *c)
{
	if (!c)
		return;
	chan_sweep_remove(c);
	if (chan_intact(c))
		pb_mbox_host_set_state(c->file.map, PB_MBOX_HOST_OFFLINE, 0);
	chan_file_close(&c->file);
	sd_event_unref(c->event);
	free(c->slot);
	free(c->path);
	free(c);
}
