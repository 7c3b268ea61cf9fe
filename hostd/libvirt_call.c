// SPDX-License-Identifier: MIT
/*
 * The libvirt backend's operations, each in a child (job.c) with a
 * connection of its own. libvirt's calls are synchronous: a suspend, reset
 * or destroy waits for libvirtd, which waits for QEMU (a destroy of a stuck
 * QEMU takes seconds), and a dump takes as long as writing the guest's
 * memory. In a child none of that stalls the loop, so one domain's trouble
 * never delays the others; a fork and a connect cost milliseconds, once per
 * step of a crash.
 *
 * The dump: virDomainCoreDumpWithFormat(MEMORY_ONLY) in a kdump format (or
 * ELF). libvirt opens the path it is given itself, in libvirtd, while the
 * snapshot hands the backend an open descriptor (backend.h). The child gives
 * libvirtd "/proc/<child>/fd/<fd>": opening it reaches the same open file
 * (libvirtd runs as root on the same host), so the snapshot's file, name,
 * mode (0600) and directory stay the daemon's. A remote URI cannot work
 * this way; its error says so.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "io.h"
#include "libvirt_internal.h"
#include "util.h"

#define LV_OP_TIMEOUT_USEC (120 * USEC_PER_SEC)
/* Most of a dump is writing gigabytes under load: generous. */
#define LV_DUMP_TIMEOUT_USEC (3600 * USEC_PER_SEC)

struct lv_call_result {
	int error;             /* 0 or negative errno */
	uint64_t value;        /* LV_CALL_MEMORY: bytes */
	char reason[480];
};

struct lv_call_args {
	enum lv_call call;
	char uri[256];
	char name[VM_NAME_MAX + 1];
	int fd;
	unsigned int format;
};

static int lv_dump_format(const char *format, unsigned int *ret)
{
	static const struct { const char *name; unsigned int v; } t[] = {
		{ "elf", VIR_DOMAIN_CORE_DUMP_FORMAT_RAW },
		{ "kdump-zlib", VIR_DOMAIN_CORE_DUMP_FORMAT_KDUMP_ZLIB },
		{ "kdump-lzo", VIR_DOMAIN_CORE_DUMP_FORMAT_KDUMP_LZO },
		{ "kdump-snappy", VIR_DOMAIN_CORE_DUMP_FORMAT_KDUMP_SNAPPY },
	};

	for (size_t i = 0; i < ARRAY_SIZE(t); i++)
		if (strcmp(t[i].name, format) == 0) {
			*ret = t[i].v;
			return 0;
		}
	return -EINVAL;
}

static int lv_state(virDomainPtr dom)
{
	int state = 0, reason = 0;

	return virDomainGetState(dom, &state, &reason, 0) < 0 ? -1 : state;
}

/* The call itself, in the child; < 0: libvirt's last error says why. */
static int lv_call_do(const struct lv_call_args *a, virDomainPtr dom, uint64_t *value)
{
	char path[64];
	virDomainInfo info;
	int state;

	switch (a->call) {
	case LV_CALL_PAUSE:
		state = lv_state(dom);
		/* Held already: a crashed (preserved) domain's vCPUs are stopped. */
		if (state == VIR_DOMAIN_PAUSED || state == VIR_DOMAIN_CRASHED)
			return 0;
		return virDomainSuspend(dom);
	case LV_CALL_RESUME:
		if (lv_state(dom) == VIR_DOMAIN_RUNNING)
			return 0;
		return virDomainResume(dom);
	case LV_CALL_RESET:
		if (virDomainReset(dom, 0) < 0)
			return -1;
		/* libvirt leaves a reset crashed domain paused: the guest boots again. */
		state = lv_state(dom);
		if (state == VIR_DOMAIN_PAUSED || state == VIR_DOMAIN_CRASHED)
			return virDomainResume(dom);
		return 0;
	case LV_CALL_POWEROFF:
		return virDomainDestroy(dom);
	case LV_CALL_MEMORY:
		if (virDomainGetInfo(dom, &info) < 0)
			return -1;
		*value = (uint64_t)info.maxMem * 1024;
		return 0;
	case LV_CALL_DUMP:
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)getpid(), a->fd);
		return virDomainCoreDumpWithFormat(dom, path, a->format, VIR_DUMP_MEMORY_ONLY);
	}
	return -1;
}

/* In the child: one connection, one call, one result. */
static int lv_call_child(int out_fd, void *ud)
{
	const struct lv_call_args *a = ud;
	struct lv_call_result res = { 0 };
	virConnectPtr c;
	virDomainPtr dom = NULL;

	c = virConnectOpen(a->uri);
	if (c)
		dom = virDomainLookupByName(c, a->name);
	if (!dom || lv_call_do(a, dom, &res.value) < 0)
		res.error = lv_last_error(res.reason, sizeof(res.reason));
	if (dom)
		virDomainFree(dom);
	if (c)
		(void)virConnectClose(c);
	return io_write_full(out_fd, &res, sizeof(res)) < 0 ? 2 : 0;
}

static void lv_call_done(struct job *j, int status, const void *output, size_t len, void *ud)
{
	struct lvb *b = ud;
	struct lv_call_result res = { .error = -EIO };

	(void)j;
	b->job = NULL;
	if (status == 0 && len == sizeof(res))
		memcpy(&res, output, sizeof(res));
	else if (status == -ETIMEDOUT)
		res = (struct lv_call_result){ .error = -ETIMEDOUT,
					       .reason = "libvirt did not answer in time" };
	else
		snprintf(res.reason, sizeof(res.reason), "the libvirt call's child ended with status %d",
			 status);
	res.reason[sizeof(res.reason) - 1] = '\0';
	lvb_call_finished(b, res.error, res.error < 0 ? res.reason : NULL, res.value);
}

int lv_call_start(struct lvb *b, enum lv_call call, int fd, const char *format)
{
	struct lv_call_args a = { .call = call, .fd = fd };

	if (call == LV_CALL_DUMP && lv_dump_format(format, &a.format) < 0)
		return -EINVAL;
	snprintf(a.uri, sizeof(a.uri), "%s", b->host->uri);
	snprintf(a.name, sizeof(a.name), "%s", b->name);
	/* fork() copies @a: the child reads its own copy. */
	return job_run_fn(b->event, lv_call_child, &a,
			  call == LV_CALL_DUMP ? LV_DUMP_TIMEOUT_USEC : LV_OP_TIMEOUT_USEC,
			  lv_call_done, b, &b->job);
}
