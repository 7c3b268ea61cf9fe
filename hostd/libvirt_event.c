// SPDX-License-Identifier: MIT
/*
 * virEventRegisterImpl() on sd-event. libvirt's watch and timeout ids are
 * small integers it hands back to us; each maps to one sd-event source.
 * libvirt's free callbacks must not run inside the remove call (libvirt may
 * hold its own locks there): they run from a defer source, later.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <libvirt/libvirt.h>

#include "common.h"
#include "libvirt_event.h"

struct lv_ev {
	struct lv_ev *next;
	int id;
	bool is_timer;
	int fd;
	int interval_ms;              /* timers: -1 off, 0 every iteration, > 0 period */
	sd_event_source *src;
	virEventHandleCallback hcb;
	virEventTimeoutCallback tcb;
	void *opaque;
	virFreeCallback ff;
};

static sd_event *lv_loop;
static struct lv_ev *lv_list;
static int lv_next_id = 1;

static struct lv_ev *lv_ev_find(int id, bool timer)
{
	for (struct lv_ev *x = lv_list; x; x = x->next)
		if (x->id == id && x->is_timer == timer)
			return x;
	return NULL;
}

static void lv_ev_unlink(struct lv_ev *x)
{
	for (struct lv_ev **p = &lv_list; *p; p = &(*p)->next)
		if (*p == x) {
			*p = x->next;
			return;
		}
}

static uint32_t lv_to_epoll(int events)
{
	uint32_t m = 0;

	if (events & VIR_EVENT_HANDLE_READABLE)
		m |= EPOLLIN;
	if (events & VIR_EVENT_HANDLE_WRITABLE)
		m |= EPOLLOUT;
	return m;
}

static int lv_from_epoll(uint32_t m)
{
	int events = 0;

	if (m & EPOLLIN)
		events |= VIR_EVENT_HANDLE_READABLE;
	if (m & EPOLLOUT)
		events |= VIR_EVENT_HANDLE_WRITABLE;
	if (m & EPOLLERR)
		events |= VIR_EVENT_HANDLE_ERROR;
	if (m & EPOLLHUP)
		events |= VIR_EVENT_HANDLE_HANGUP;
	return events;
}

static int lv_on_io(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
	struct lv_ev *x = ud;

	(void)s;
	x->hcb(x->id, fd, lv_from_epoll(revents), x->opaque);
	return 0;
}

static int lv_set_io(struct lv_ev *x, int events)
{
	uint32_t m = lv_to_epoll(events);
	int r;

	/* No events asked for: off (epoll would still report ERR and HUP). */
	if (!m)
		return sd_event_source_set_enabled(x->src, SD_EVENT_OFF);
	r = sd_event_source_set_io_events(x->src, m);
	if (r < 0)
		return r;
	return sd_event_source_set_enabled(x->src, SD_EVENT_ON);
}

static int lv_add_handle(int fd, int events, virEventHandleCallback cb, void *opaque,
			 virFreeCallback ff)
{
	struct lv_ev *x = calloc(1, sizeof(*x));
	int r;

	if (!x)
		return -1;
	r = sd_event_add_io(lv_loop, &x->src, fd, EPOLLIN, lv_on_io, x);
	if (r >= 0)
		r = lv_set_io(x, events);
	if (r < 0) {
		sd_event_source_disable_unref(x->src);
		free(x);
		return -1;
	}
	x->id = lv_next_id++;
	x->fd = fd;
	x->hcb = cb;
	x->opaque = opaque;
	x->ff = ff;
	x->next = lv_list;
	lv_list = x;
	return x->id;
}

static void lv_update_handle(int watch, int events)
{
	struct lv_ev *x = lv_ev_find(watch, false);

	if (x)
		(void)lv_set_io(x, events);
}

static int lv_on_free(sd_event_source *s, void *ud)
{
	struct lv_ev *x = ud;

	sd_event_source_disable_unref(s);
	if (x->ff)
		x->ff(x->opaque);
	free(x);
	return 0;
}

/* The source goes now; the free callback runs on a later iteration. */
static int lv_remove(struct lv_ev *x)
{
	sd_event_source *d = NULL;

	lv_ev_unlink(x);
	x->src = sd_event_source_disable_unref(x->src);
	if (sd_event_add_defer(lv_loop, &d, lv_on_free, x) < 0) {
		/* Cannot defer: leak the opaque rather than free it under libvirt. */
		free(x);
		return 0;
	}
	return 0;
}

static int lv_remove_handle(int watch)
{
	struct lv_ev *x = lv_ev_find(watch, false);

	return x ? lv_remove(x) : -1;
}

static int lv_arm(struct lv_ev *x)
{
	int r;

	if (x->interval_ms < 0)
		return sd_event_source_set_enabled(x->src, SD_EVENT_OFF);
	r = sd_event_source_set_time_relative(x->src, (uint64_t)x->interval_ms * 1000);
	if (r < 0)
		return r;
	return sd_event_source_set_enabled(x->src, SD_EVENT_ONESHOT);
}

static int lv_on_time(sd_event_source *s, uint64_t usec, void *ud)
{
	struct lv_ev *x = ud;

	(void)s;
	(void)usec;
	/* Rearmed first: the callback may update or remove it. */
	(void)lv_arm(x);
	x->tcb(x->id, x->opaque);
	return 0;
}

static int lv_add_timeout(int timeout_ms, virEventTimeoutCallback cb, void *opaque,
			  virFreeCallback ff)
{
	struct lv_ev *x = calloc(1, sizeof(*x));
	int r;

	if (!x)
		return -1;
	r = sd_event_add_time_relative(lv_loop, &x->src, CLOCK_MONOTONIC, 0, 0, lv_on_time, x);
	x->interval_ms = timeout_ms;
	if (r >= 0)
		r = lv_arm(x);
	if (r < 0) {
		sd_event_source_disable_unref(x->src);
		free(x);
		return -1;
	}
	x->id = lv_next_id++;
	x->is_timer = true;
	x->fd = -1;
	x->tcb = cb;
	x->opaque = opaque;
	x->ff = ff;
	x->next = lv_list;
	lv_list = x;
	return x->id;
}

static void lv_update_timeout(int timer, int timeout_ms)
{
	struct lv_ev *x = lv_ev_find(timer, true);

	if (!x)
		return;
	x->interval_ms = timeout_ms;
	(void)lv_arm(x);
}

static int lv_remove_timeout(int timer)
{
	struct lv_ev *x = lv_ev_find(timer, true);

	return x ? lv_remove(x) : -1;
}

int lv_event_register(sd_event *e)
{
	if (lv_loop)
		return lv_loop == e ? 0 : -EBUSY;
	lv_loop = sd_event_ref(e);
	virEventRegisterImpl(lv_add_handle, lv_update_handle, lv_remove_handle,
			     lv_add_timeout, lv_update_timeout, lv_remove_timeout);
	return 0;
}
