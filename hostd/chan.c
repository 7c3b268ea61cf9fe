// SPDX-License-Identifier: MIT
/*
 * The host end of the broker channel (hostd/chan.h): its life (open,
 * format, start, free) and its poll timer. One look at the mailbox is
 * chan_look.c; the file is chan_file.c.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "chan_internal.h"
#include "common.h"
#include "evutil.h"
#include "log.h"

#define CHAN_IDLE_POLL_USEC USEC_PER_SEC
#define CHAN_BUSY_POLL_USEC (PB_MBOX_HOST_POLL_MS * USEC_PER_MSEC)

/*
 * Poll fast while a session is open, while the guest's timing may still
 * come, while a panic record is held back, and while the VM is in its
 * kdump kernel: its session opens, reports and reboots within a fraction
 * of a second when there is little to dump.
 */
static bool chan_fast(const struct chan *c)
{
	return c->file.map &&
	       (c->busy || c->timing_polls || c->slot_retry || c->kdump);
}

static int chan_on_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	struct chan *c = ud;
	int r;

	chan_look(c, false);
	if (!c->file.map)
		return 0;	/* given up: the timer stays off */
	r = sd_event_source_set_time(s, usec + (chan_fast(c) ? CHAN_BUSY_POLL_USEC :
							       CHAN_IDLE_POLL_USEC));
	if (r >= 0)
		r = sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
	if (r < 0)
		log_error("VM %s: mailbox: cannot re-arm its poll timer: %s; looked at only on pvpanic events from now on",
			  c->vm, strerror(-r));
	return 0;
}

/* Brings the next timer look forward to the fast period. */
static void chan_hurry(struct chan *c)
{
	int r;

	if (!chan_fast(c))
		return;
	r = sd_event_source_set_time_relative(c->timer, CHAN_BUSY_POLL_USEC);
	if (r >= 0)
		r = sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
	if (r < 0)
		log_warn("VM %s: mailbox: cannot bring its poll forward: %s, ignoring",
			 c->vm, strerror(-r));
}

void chan_poll(struct chan *c)
{
	if (!c)
		return;
	chan_look(c, true);
	chan_hurry(c);
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
	if (c->started)
		chan_hurry(c);
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
		r = pb_mbox_panic_read((uint8_t *)c->file.map + le32toh(old.panic_offset),
				       le32toh(old.panic_size), c->slot, &c->salvage, &reason);
		if (r < 0)	/* counted and logged now, reported at chan_start() */
			chan_malformed(c, "panic slot", reason);
		c->salvaged = r > 0;
		c->generation = le64toh(old.host_generation) + 1;
	} else {
		c->generation = chan_file_clock_generation();
	}
	r = pb_mbox_format(c->file.map, c->file.size, c->generation, &reason);
	if (r < 0)
		return err_set(err, errlen, r, "mailbox %s: cannot format it: %s", c->path,
			       reason);
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

	if (strlen(path) >= sizeof(c->path))
		return err_set(err, errlen, -ENAMETOOLONG, "mailbox %s: path too long", path);
	c = calloc(1, sizeof(*c));
	if (!c)
		return err_set(err, errlen, -ENOMEM, "mailbox %s: out of memory", path);
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
	snprintf(c->path, sizeof(c->path), "%s", path);
	r = chan_file_open(&c->file, path, err, errlen);
	if (r >= 0)
		r = chan_format(c, err, errlen);
	if (r >= 0)
		chan_file_trim(&c->file);
	if (r >= 0) {
		/* Made now, so that open fails whole; off until chan_start(). */
		r = sd_event_add_time_relative(e, &c->timer, CLOCK_MONOTONIC,
					       CHAN_BUSY_POLL_USEC, USEC_PER_MSEC,
					       chan_on_timer, c);
		if (r >= 0)
			r = sd_event_source_set_enabled(c->timer, SD_EVENT_OFF);
		if (r < 0)
			err_set(err, errlen, r, "mailbox %s: cannot arm its poll timer: %s",
				path, strerror(-r));
	}
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
	r = sd_event_source_set_time_relative(c->timer, CHAN_BUSY_POLL_USEC);
	if (r >= 0)
		r = sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
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
	c->timer = sd_event_source_disable_unref(c->timer);
	if (chan_intact(c))
		pb_mbox_host_set_state(c->file.map, PB_MBOX_HOST_OFFLINE, 0);
	chan_file_close(&c->file);
	sd_event_unref(c->event);
	free(c);
}
