// SPDX-License-Identifier: MIT
/*
 * The libvirt backend of one domain (backend.h). Events come from the
 * host's connection (libvirt_host.c): STARTED attaches, STOPPED detaches,
 * CRASHED/PANICKED and CRASHED/CRASHLOADED are pvpanic, REBOOT is a reset.
 * Operations are libvirt calls on the loop, each answered through a defer
 * source (never from inside the call); the dump runs in a child
 * (libvirt_dump.c). The domain's panic action is its <on_crash>: with
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

/* The operation in flight fails: its done comes later, from the loop. */
static void lvb_op_finish(struct lvb *b, int error, const char *reason);

void lvb_disconnected(struct lvb *b, const char *why)
{
	/* A poweroff that loses the connection has done its work (backend.h). */
	if (b->busy && !b->op_defer)
		lvb_op_finish(b, b->destroying ? 0 : -ECONNRESET, why);
	b->destroying = false;
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
		if (b->destroying) {
			/* Our poweroff: done when the domain is off. */
			b->destroying = false;
			if (b->busy && !b->op_defer)
				lvb_op_finish(b, 0, NULL);
		} else if (b->attached) {
			lvb_emit(b, &(struct be_event){ .type = BE_EV_SHUTDOWN });
		}
		if (b->busy && !b->op_defer)
			lvb_op_finish(b, -ECONNRESET, "the domain stopped");
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

/* ---- operations ---- */

static int lvb_on_op_defer(sd_event_source *s, void *ud)
{
	struct lvb *b = ud;
	be_done_fn done = b->done;
	void *done_ud = b->done_ud;
	char reason[sizeof(b->op_reason)];
	int error = b->op_error;

	(void)s;
	b->op_defer = sd_event_source_disable_unref(b->op_defer);
	snprintf(reason, sizeof(reason), "%s", b->op_reason);
	b->busy = false;
	b->done = NULL;
	done(done_ud, error, error < 0 ? reason : NULL);
	return 0;
}

static void lvb_op_finish(struct lvb *b, int error, const char *reason)
{
	int r;

	b->op_error = error;
	snprintf(b->op_reason, sizeof(b->op_reason), "%s", reason ? reason : "");
	r = sd_event_add_defer(b->event, &b->op_defer, lvb_on_op_defer, b);
	if (r < 0) {
		/* No way to answer later: answer now rather than never. */
		log_error("domain %s: cannot schedule an operation's completion: %s", b->name,
			  strerror(-r));
		b->op_defer = NULL;
		(void)lvb_on_op_defer(NULL, b);
	}
}

static int lvb_op_begin(struct lvb *b, be_done_fn done, void *ud, virDomainPtr *ret_dom)
{
	int e;

	if (b->busy)
		return -EBUSY;
	if (!b->attached)
		return -ENOTCONN;
	*ret_dom = lv_host_lookup(b->host, b->name, &e);
	if (!*ret_dom)
		return e;
	b->busy = true;
	b->done = done;
	b->done_ud = ud;
	return 0;
}

/* The call's outcome, answered later. */
static int lvb_op_end(struct lvb *b, virDomainPtr dom, int rc)
{
	char reason[256] = "";
	int error = 0;

	if (rc < 0)
		error = lv_last_error(reason, sizeof(reason));
	virDomainFree(dom);
	lvb_op_finish(b, error, reason);
	return 0;
}

static int lvb_state(virDomainPtr dom, int *ret_reason)
{
	int state = 0, reason = 0;

	if (virDomainGetState(dom, &state, &reason, 0) < 0)
		return -1;
	*ret_reason = reason;
	return state;
}

static int lvb_pause(struct backend *be, be_done_fn done, void *ud)
{
	struct lvb *b = lvb_of(be);
	virDomainPtr dom;
	int r = lvb_op_begin(b, done, ud, &dom), reason = 0, state;

	if (r < 0)
		return r;
	state = lvb_state(dom, &reason);
	/* Held already: a crashed (preserved) domain's vCPUs are stopped. */
	if (state == VIR_DOMAIN_PAUSED || state == VIR_DOMAIN_CRASHED)
		return lvb_op_end(b, dom, 0);
	return lvb_op_end(b, dom, virDomainSuspend(dom));
}

static int lvb_resume(struct backend *be, be_done_fn done, void *ud)
{
	struct lvb *b = lvb_of(be);
	virDomainPtr dom;
	int r = lvb_op_begin(b, done, ud, &dom), reason = 0;

	if (r < 0)
		return r;
	if (lvb_state(dom, &reason) == VIR_DOMAIN_RUNNING)
		return lvb_op_end(b, dom, 0);
	return lvb_op_end(b, dom, virDomainResume(dom));
}

static int lvb_reset(struct backend *be, be_done_fn done, void *ud)
{
	struct lvb *b = lvb_of(be);
	virDomainPtr dom;
	int r = lvb_op_begin(b, done, ud, &dom), reason = 0, state;

	if (r < 0)
		return r;
	b->own_resets++;
	if (virDomainReset(dom, 0) < 0) {
		b->own_resets--;
		return lvb_op_end(b, dom, -1);
	}
	/* libvirt leaves a reset crashed domain paused: the guest boots again. */
	state = lvb_state(dom, &reason);
	if (state == VIR_DOMAIN_PAUSED || state == VIR_DOMAIN_CRASHED)
		return lvb_op_end(b, dom, virDomainResume(dom));
	return lvb_op_end(b, dom, 0);
}

static int lvb_poweroff(struct backend *be, be_done_fn done, void *ud)
{
	struct lvb *b = lvb_of(be);
	virDomainPtr dom;
	char reason[256];
	int r = lvb_op_begin(b, done, ud, &dom);

	if (r < 0)
		return r;
	b->destroying = true;
	if (virDomainDestroy(dom) < 0) {
		b->destroying = false;
		return lvb_op_end(b, dom, -1);
	}
	virDomainFree(dom);
	/* Done at its STOPPED event (already delivered, or still to come). */
	if (b->busy && !b->op_defer && !b->attached)
		lvb_op_finish(b, 0, NULL);
	(void)reason;
	return 0;
}

/* memory_size answers through a be_size_fn: carried in the done slot. */
struct lvb_size {
	be_size_fn fn;
	void *ud;
	uint64_t bytes;
};

static void lvb_on_size(void *ud, int error, const char *reason)
{
	struct lvb_size *sz = ud;
	struct lvb_size copy = *sz;

	free(sz);
	copy.fn(copy.ud, error, reason, error < 0 ? 0 : copy.bytes);
}

static int lvb_memory_size(struct backend *be, be_size_fn done, void *ud)
{
	struct lvb *b = lvb_of(be);
	struct lvb_size *sz = calloc(1, sizeof(*sz));
	virDomainInfo info;
	virDomainPtr dom;
	int r;

	if (!sz)
		return -ENOMEM;
	sz->fn = done;
	sz->ud = ud;
	r = lvb_op_begin(b, lvb_on_size, sz, &dom);
	if (r < 0) {
		free(sz);
		return r;
	}
	if (virDomainGetInfo(dom, &info) < 0)
		return lvb_op_end(b, dom, -1);
	sz->bytes = (uint64_t)info.maxMem * 1024;
	return lvb_op_end(b, dom, 0);
}

static int lvb_dump(struct backend *be, int fd, const char *format, be_progress_fn progress,
		    be_done_fn done, void *ud)
{
	struct lvb *b = lvb_of(be);
	int r;

	(void)progress;
	if (b->busy)
		return -EBUSY;
	if (!b->attached)
		return -ENOTCONN;
	r = lv_dump_start(b, fd, format, done, ud);
	if (r < 0)
		return r;
	b->busy = true;
	b->done = done;
	b->done_ud = ud;
	return 0;
}

static void lvb_cancel(struct backend *be)
{
	struct lvb *b = lvb_of(be);
	virDomainPtr dom;
	int e;

	if (b->dump_job) {
		job_cancel(b->dump_job);
		b->dump_job = NULL;
		/* The dump goes on in libvirtd otherwise, holding the domain's job. */
		dom = lv_host_lookup(b->host, b->name, &e);
		if (dom) {
			(void)virDomainAbortJob(dom);
			virResetLastError();
			virDomainFree(dom);
		}
	}
	if (b->done == lvb_on_size)
		free(b->done_ud);
	b->op_defer = sd_event_source_disable_unref(b->op_defer);
	b->busy = false;
	b->done = NULL;
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
