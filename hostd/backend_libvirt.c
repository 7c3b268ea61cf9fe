// SPDX-License-Identifier: MIT
/*
 * The libvirt backend of one domain (backend.h). Events come from the
 * host's connection (libvirt_host.c): STARTED attaches, STOPPED detaches,
 * CRASHED/PANICKED and CRASHED/CRASHLOADED are pvpanic, REBOOT is a reset.
 * Operations are libvirt calls, each in a child with a connection of its
 * own (libvirt_call.c), answered when the child ends (never from inside the
 * call): a slow libvirtd or QEMU never stalls the loop. The domain's panic action is its <on_crash>: with
 * "preserve" a guest that panics without kdump is held, which the daemon
 * cannot set on a running domain without QMP passthrough, so it says so
 * once when it is anything else.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "io.h"
#include "libvirt_internal.h"
#include "log.h"

#define LV_RUN_DIR "/run/libvirt/qemu"

static struct lvb *lvb_of(struct backend *b)
{
	return container_of(b, struct lvb, base);
}

/* Field 22 of /proc/PID/stat, after the command's closing parenthesis. */
static int lvb_parse_starttime(const char *stat, uint64_t *ret)
{
	const char *p = strrchr(stat, ')');
	unsigned long long v;

	if (!p)
		return -EINVAL;
	p++;
	for (int field = 3; field < 22; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return -EINVAL;
	}
	if (sscanf(p, " %llu", &v) != 1)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int lvb_read_small(const char *path, char *buf, size_t size)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = io_read_full(fd, buf, size - 1);
	if (n < 0)
		return (int)n;
	buf[n] = '\0';
	return 0;
}

/* The QEMU process that runs the domain (libvirt's pid file): unknown is
 * a valid answer (a remote libvirt, a daemon without access). */
static struct be_instance lvb_instance(const struct lvb *b)
{
	struct be_instance inst = { 0 };
	char path[128 + VM_NAME_MAX], buf[4096];
	uint64_t ticks;
	int pid;

	snprintf(path, sizeof(path), LV_RUN_DIR "/%s.pid", b->name);
	if (lvb_read_small(path, buf, sizeof(buf)) < 0 || sscanf(buf, "%d", &pid) != 1 || pid <= 0)
		return inst;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (lvb_read_small(path, buf, sizeof(buf)) < 0 || lvb_parse_starttime(buf, &ticks) < 0)
		return inst;
	inst.pid = pid;
	inst.start_ticks = ticks;
	return inst;
}

static void lvb_emit(struct lvb *b, const struct be_event *ev)
{
	b->events->event(b->ud, ev);
}

static void lvb_detach(struct lvb *b, const char *why)
{
	if (!b->attached)
		return;
	b->attached = false;
	lvb_emit(b, &(struct be_event){ .type = BE_EV_DETACHED, .reason = why });
}

/* Attached: the domain runs and the connection is up; its state now. */
static void lvb_attach(struct lvb *b)
{
	struct be_event ev = { .type = BE_EV_ATTACHED };
	virDomainPtr dom;
	int state = 0, reason = 0, e;
	char why[256];

	dom = lv_host_lookup(b->host, b->name, &e);
	if (!dom)
		return;
	if (virDomainGetState(dom, &state, &reason, 0) < 0) {
		(void)lv_last_error(why, sizeof(why));
		virDomainFree(dom);
		return;
	}
	virDomainFree(dom);
	switch (state) {
	case VIR_DOMAIN_RUNNING:
	case VIR_DOMAIN_BLOCKED:
	case VIR_DOMAIN_SHUTDOWN:
		ev.run_state = BE_RUN_RUNNING;
		ev.status = "running";
		break;
	case VIR_DOMAIN_PAUSED:
		ev.run_state = reason == VIR_DOMAIN_PAUSED_CRASHED ? BE_RUN_PANICKED : BE_RUN_PAUSED;
		ev.status = reason == VIR_DOMAIN_PAUSED_CRASHED ? "guest-panicked" : "paused";
		break;
	case VIR_DOMAIN_CRASHED:
		ev.run_state = BE_RUN_PANICKED;
		ev.status = "guest-panicked";
		break;
	case VIR_DOMAIN_PMSUSPENDED:
		ev.run_state = BE_RUN_PAUSED;
		ev.status = "suspended";
		break;
	default:
		lvb_detach(b, "the domain is not running");
		return; /* shut off: nothing to attach to */
	}
	ev.instance = lvb_instance(b);
	b->attached = true;
	b->destroying = false;
	b->own_resets = 0;
	lvb_emit(b, &ev);
}

static int lvb_on_attach_defer(sd_event_source *s, void *ud)
{
	struct lvb *b = ud;

	(void)s;
	b->attach_defer = sd_event_source_disable_unref(b->attach_defer);
	lvb_attach(b);
	return 0;
}

void lvb_connected(struct lvb *b)
{
	/* A VM just added attaches from its start's defer, once. */
	if (b->attached || b->attach_defer)
		return;
	lvb_attach(b);
}

/* The calls run in children with connections of their own: they end by
 * themselves, each with its own answer. */
void lvb_disconnected(struct lvb *b, const char *why)
{
	lvb_detach(b, why);
}

void lvb_lifecycle(struct lvb *b, int event, int detail)
{
	struct be_event ev = { 0 };

	switch (event) {
	case VIR_DOMAIN_EVENT_STARTED:
		if (!b->attached)
			lvb_attach(b);
		return;
	case VIR_DOMAIN_EVENT_STOPPED:
		/* After our poweroff the guest did not shut down: we stopped it. A
		 * domain migrated away or saved runs on elsewhere or later: it is
		 * only detached here. */
		if (b->destroying)
			b->destroying = false;
		else if (b->attached && detail != VIR_DOMAIN_EVENT_STOPPED_MIGRATED &&
			 detail != VIR_DOMAIN_EVENT_STOPPED_SAVED &&
			 detail != VIR_DOMAIN_EVENT_STOPPED_FROM_SNAPSHOT)
			lvb_emit(b, &(struct be_event){ .type = BE_EV_SHUTDOWN });
		lvb_detach(b, "the domain stopped");
		return;
	case VIR_DOMAIN_EVENT_CRASHED:
		if (!b->attached)
			lvb_attach(b);
		ev.type = BE_EV_PANIC;
		ev.crash_loaded = detail == VIR_DOMAIN_EVENT_CRASHED_CRASHLOADED;
		ev.name = ev.crash_loaded ? "GUEST_CRASHLOADED" : "GUEST_PANICKED";
		/* With <on_crash>preserve</on_crash> QEMU pauses a panicked guest;
		 * a crash kernel's guest runs on. */
		ev.action = ev.crash_loaded ? "run" : "pause";
		lvb_emit(b, &ev);
		return;
	default:
		return;
	}
}

void lvb_reboot(struct lvb *b)
{
	if (b->own_resets) {
		b->own_resets--;
		return;
	}
	if (!b->attached)
		return;
	lvb_emit(b, &(struct be_event){ .type = BE_EV_RESET, .guest = true });
}

/* ---- operations: each a libvirt call in a child (libvirt_call.c) ---- */

void lvb_call_finished(struct lvb *b, int error, const char *reason, uint64_t value)
{
	be_done_fn done = b->done;
	be_size_fn size_done = b->size_done;
	void *ud = b->done_ud;

	b->busy = false;
	b->done = NULL;
	b->size_done = NULL;
	if (error < 0 && b->destroying)
		b->destroying = false;
	if (size_done)
		size_done(ud, error, reason, error < 0 ? 0 : value);
	else if (done)
		done(ud, error, reason);
}

static int lvb_call(struct lvb *b, enum lv_call call, int fd, const char *format,
		    be_done_fn done, be_size_fn size_done, void *ud)
{
	int r;

	if (b->busy)
		return -EBUSY;
	if (!b->attached)
		return -ENOTCONN;
	r = lv_call_start(b, call, fd, format);
	if (r < 0)
		return r;
	b->busy = true;
	b->done = done;
	b->size_done = size_done;
	b->done_ud = ud;
	return 0;
}

static int lvb_pause(struct backend *be, be_done_fn done, void *ud)
{
	return lvb_call(lvb_of(be), LV_CALL_PAUSE, -1, NULL, done, NULL, ud);
}

static int lvb_resume(struct backend *be, be_done_fn done, void *ud)
{
	return lvb_call(lvb_of(be), LV_CALL_RESUME, -1, NULL, done, NULL, ud);
}

static int lvb_reset(struct backend *be, be_done_fn done, void *ud)
{
	struct lvb *b = lvb_of(be);
	int r = lvb_call(b, LV_CALL_RESET, -1, NULL, done, NULL, ud);

	/* Its REBOOT event is ours, not the guest's. */
	if (r >= 0)
		b->own_resets++;
	return r;
}

static int lvb_poweroff(struct backend *be, be_done_fn done, void *ud)
{
	struct lvb *b = lvb_of(be);
	int r = lvb_call(b, LV_CALL_POWEROFF, -1, NULL, done, NULL, ud);

	/* Its STOPPED event is ours: no shutdown of the guest's. */
	if (r >= 0)
		b->destroying = true;
	return r;
}

static int lvb_memory_size(struct backend *be, be_size_fn done, void *ud)
{
	return lvb_call(lvb_of(be), LV_CALL_MEMORY, -1, NULL, NULL, done, ud);
}

static int lvb_dump(struct backend *be, int fd, const char *format, be_progress_fn progress,
		    be_done_fn done, void *ud)
{
	(void)progress;
	return lvb_call(lvb_of(be), LV_CALL_DUMP, fd, format, done, NULL, ud);
}

static void lvb_cancel(struct backend *be)
{
	struct lvb *b = lvb_of(be);
	virDomainPtr dom;
	int e;

	if (b->job) {
		job_cancel(b->job);
		b->job = NULL;
		/* A dump goes on in libvirtd otherwise, holding the domain's job. */
		dom = lv_host_lookup(b->host, b->name, &e);
		if (dom) {
			(void)virDomainAbortJob(dom);
			virResetLastError();
			virDomainFree(dom);
		}
	}
	b->busy = false;
	b->done = NULL;
	b->size_done = NULL;
	b->destroying = false;
}

static int lvb_create(sd_event *e, const struct vm_config *cfg,
		      const struct backend_events *events, void *ud, struct backend **ret,
		      char *err, size_t errlen)
{
	struct lv_host *h = lv_host_current;
	struct lv_dom *d = h ? lv_host_find(h, cfg->name) : NULL;
	struct lvb *b;

	if (!d)
		return err_set(err, errlen, -ENOENT, "no libvirt domain named %s is followed",
			       cfg->name);
	if (d->be)
		return err_set(err, errlen, -EEXIST, "libvirt domain %s has a VM already", cfg->name);
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->base.ops = &backend_libvirt_ops;
	b->host = h;
	snprintf(b->name, sizeof(b->name), "%s", cfg->name);
	b->event = sd_event_ref(e);
	b->events = events;
	b->ud = ud;
	d->be = b;
	*ret = &b->base;
	return 0;
}

static void lvb_free(struct backend *be)
{
	struct lvb *b = lvb_of(be);
	struct lv_dom *d;

	lvb_cancel(be);
	sd_event_source_disable_unref(b->attach_defer);
	d = b->host ? lv_host_find(b->host, b->name) : NULL;
	if (d && d->be == b)
		d->be = NULL;
	sd_event_unref(b->event);
	free(b);
}

static void lvb_start(struct backend *be)
{
	struct lvb *b = lvb_of(be);

	/* Attached from the loop, as a connecting backend would be. */
	if (!b->attach_defer &&
	    sd_event_add_defer(b->event, &b->attach_defer, lvb_on_attach_defer, b) < 0)
		lvb_attach(b);
}

static const char *lvb_attach_state(const struct backend *be)
{
	const struct lvb *b = container_of(be, const struct lvb, base);

	if (!b->host->conn)
		return "connecting";
	return b->attached ? "attached" : "detached";
}

const struct backend_ops backend_libvirt_ops = {
	.name = "libvirt",
	.create = lvb_create,
	.free = lvb_free,
	.start = lvb_start,
	.attach_state = lvb_attach_state,
	.pause = lvb_pause,
	.resume = lvb_resume,
	.reset = lvb_reset,
	.poweroff = lvb_poweroff,
	.memory_size = lvb_memory_size,
	.dump = lvb_dump,
	.cancel = lvb_cancel,
};
