// SPDX-License-Identifier: MIT
/*
 * The libvirt backend's dump: virDomainCoreDumpWithFormat(MEMORY_ONLY) in
 * a kdump format (or ELF) blocks until the dump is written, so it runs in
 * a child (job.c) with a connection of its own; the loop goes on.
 *
 * The file: libvirt opens the path it is given itself (in libvirtd), while
 * the snapshot hands the backend an open descriptor (backend.h). The child
 * gives libvirtd "/proc/<child>/fd/<fd>": opening it reaches the same open
 * file (libvirtd runs as root on the same host), so the snapshot's file,
 * its name, mode (0600) and directory stay the daemon's. A remote URI
 * cannot work this way; the error says so.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "io.h"
#include "libvirt_internal.h"
#include "util.h"

/* Most of a dump is writing gigabytes under load: generous. */
#define LV_DUMP_TIMEOUT_USEC (3600 * USEC_PER_SEC)

struct lv_dump_result {
	int error;             /* 0 or negative errno */
	char reason[480];
};

struct lv_dump_args {
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

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(t[i].name, format) == 0) {
			*ret = t[i].v;
			return 0;
		}
	return -EINVAL;
}

/* In the child: one connection, one call, one result. */
static int lv_dump_child(int out_fd, void *ud)
{
	const struct lv_dump_args *a = ud;
	struct lv_dump_result res = { 0 };
	virConnectPtr c;
	virDomainPtr dom = NULL;
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)getpid(), a->fd);
	c = virConnectOpen(a->uri);
	if (c)
		dom = virDomainLookupByName(c, a->name);
	if (!dom ||
	    virDomainCoreDumpWithFormat(dom, path, a->format, VIR_DUMP_MEMORY_ONLY) < 0)
		res.error = lv_last_error(res.reason, sizeof(res.reason));
	if (dom)
		virDomainFree(dom);
	if (c)
		(void)virConnectClose(c);
	return io_write_full(out_fd, &res, sizeof(res)) < 0 ? 2 : 0;
}

static void lv_dump_done(struct job *j, int status, const void *output, size_t len, void *ud)
{
	struct lvb *b = ud;
	struct lv_dump_result res = { .error = -EIO };
	be_done_fn done = b->done;
	void *done_ud = b->done_ud;

	(void)j;
	b->dump_job = NULL;
	if (status == 0 && len == sizeof(res))
		memcpy(&res, output, sizeof(res));
	else if (status == -ETIMEDOUT)
		res = (struct lv_dump_result){ .error = -ETIMEDOUT, .reason = "the dump timed out" };
	else
		snprintf(res.reason, sizeof(res.reason), "the dump's child ended with status %d",
			 status);
	res.reason[sizeof(res.reason) - 1] = '\0';
	b->busy = false;
	b->done = NULL;
	done(done_ud, res.error, res.error < 0 ? res.reason : NULL);
}

int lv_dump_start(struct lvb *b, int fd, const char *format, be_done_fn done, void *ud)
{
	struct lv_dump_args a = { .fd = fd };
	int r;

	(void)done;
	(void)ud;
	if (lv_dump_format(format, &a.format) < 0)
		return -EINVAL;
	snprintf(a.uri, sizeof(a.uri), "%s", b->host->uri);
	snprintf(a.name, sizeof(a.name), "%s", b->name);
	/* fork() copies @a: the child reads its own copy. */
	r = job_run_fn(b->event, lv_dump_child, &a, LV_DUMP_TIMEOUT_USEC, lv_dump_done, b,
		       &b->dump_job);
	return r;
}
