// SPDX-License-Identifier: MIT
/*
 * One snapshot, through any backend: the guest's RAM size, the space check,
 * .vmcore.partial, the backend's dump into it, the file finished in a child
 * (standard layout, phys_base, synced, renamed), then read back with
 * makedumpfile. The record changes only through crash_snapshot_*().
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "evutil.h"
#include "io.h"
#include "job.h"
#include "log.h"
#include "snapshot.h"
#include "util.h"
#include "vmcore.h"

#define SNAPSHOT_PARTIAL ".vmcore.partial"
#define SNAPSHOT_TMP ".vmcore.tmp"
#define SNAPSHOT_DMESG "dmesg.txt"
#define SNAPSHOT_DMESG_MAX (1024 * 1024)
#define SNAPSHOT_LOG_TAIL 8192
#define SNAPSHOT_PANIC_MARK "Kernel panic - not syncing"
/* A flattened dump is reassembled up to this size (64 TiB). */
#define SNAPSHOT_UNFLATTEN_MAX (UINT64_C(1) << 46)

enum snapshot_step {
	SNAP_MEMORY,   /* the backend's memory_size */
	SNAP_DUMP,     /* the backend's dump */
	SNAP_FINISH,   /* rewriting the file in a child */
	SNAP_VERIFY,   /* makedumpfile --dump-dmesg in a child */
};

struct snapshot {
	sd_event *event;
	struct backend *backend;
	struct crash *crash;
	char dir[PATH_MAX];
	char format[CFG_FORMAT_MAX];
	enum snapshot_step step;
	bool counted;        /* holds a dump slot */
	bool backend_busy;   /* a backend operation of ours is in flight */
	int fd;              /* .vmcore.partial, while the backend writes it */
	uint64_t started_usec; /* CLOCK_MONOTONIC */
	struct job *job;
	snapshot_done_fn done;
	void *userdata;
};

/*
 * What the finishing child reports over its pipe: written whole, once, by
 * the child; read by the parent only when it has exactly this size (the
 * same binary on both sides of fork()).
 */
struct snapshot_finish_result {
	bool ok;
	bool reassembled;        /* the flattened layout was reassembled */
	bool vmcoreinfo;
	bool phys_base_checked;
	uint64_t bytes;
	uint64_t phys_base_qemu;
	uint64_t phys_base_vmcoreinfo;
	char phys_base_why[160]; /* unchecked: why */
	char error[384];         /* !ok: what went wrong */
};

static unsigned int snapshot_max = 1, snapshot_active;

static bool snapshot_is_kdump(const char *format)
{
	return strncmp(format, "kdump-", 6) == 0;
}

static const char *snapshot_final_name(const struct snapshot *s)
{
	return snapshot_is_kdump(s->format) ? "vmcore" : "vmcore.elf";
}

void snapshot_set_max_concurrent(unsigned int n)
{
	snapshot_max = n ? n : 1;
}

/* Progress is saved as it comes; a failure is logged and retried by the
 * next save. */
static void snapshot_save(struct snapshot *s)
{
	int r = crash_save(s->crash);

	if (r < 0)
		log_error("crash %s: cannot write its record: %s", s->crash->id,
			  strerror(-r));
}

static void snapshot_unlink_temporaries(int dirfd)
{
	/* Absent is the usual case; anything else is retried by the next
	 * snapshot or snapshot_abandon_stale(). */
	(void)unlinkat(dirfd, SNAPSHOT_PARTIAL, 0);
	(void)unlinkat(dirfd, SNAPSHOT_TMP, 0);
}

static void snapshot_release(struct snapshot *s)
{
	if (s->backend_busy) {
		s->backend->ops->cancel(s->backend);
		s->backend_busy = false;
	}
	job_cancel(s->job);
	s->job = NULL;
	closep(&s->fd);
	if (s->counted) {
		snapshot_active--;
		s->counted = false;
	}
}

void snapshot_free(struct snapshot *s)
{
	if (!s)
		return;
	snapshot_release(s);
	sd_event_unref(s->event);
	free(s);
}

/* Ends the snapshot: records the outcome (unsaved), logs it, frees @s,
 * calls done. */
static void snapshot_end(struct snapshot *s, const char *state, const char *fmt,
			 ...) _printf_(3, 4);

static void snapshot_end(struct snapshot *s, const char *state, const char *fmt,
			 ...)
{
	snapshot_done_fn done = s->done;
	void *userdata = s->userdata;
	bool ok = strcmp(state, "done") == 0;
	double seconds = (double)(ev_now_usec(s->event) - s->started_usec) / USEC_PER_SEC;
	char reason[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	snapshot_release(s);
	if (!ok)
		snapshot_unlink_temporaries(s->crash->dirfd);
	crash_snapshot_end(s->crash, state, reason, ts_now_realtime_usec(), seconds);
	if (ok)
		log_notice("VM %s: crash %s: snapshot done: %s", s->crash->vm,
			   s->crash->id, reason);
	else
		log_warn("VM %s: crash %s: snapshot %s: %s", s->crash->vm, s->crash->id,
			 state, reason);
	snapshot_free(s);
	done(ok, userdata);
}

/* ---- verification: the guest's log, read back out of the dump ---- */

static void snapshot_on_verified(struct job *j, int status, const void *output,
				 size_t len, void *userdata)
{
	struct snapshot *s = userdata;
	struct crash_snapshot_verify v = {
		.tool = "makedumpfile --dump-dmesg",
		.exit_status = status,
		/* argv jobs give text, NUL-terminated */
		.output = status != 0 ? output : NULL,
	};
	_cleanup_free_ char *log = NULL;
	_cleanup_close_ int fd = -1;
	char line[512];
	ssize_t n = 0;

	(void)j;
	(void)len;
	s->job = NULL;
	fd = openat(s->crash->dirfd, SNAPSHOT_DMESG, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	log = malloc(SNAPSHOT_DMESG_MAX + 1);
	/* No log (makedumpfile failed, or no memory): verified as unreadable. */
	if (fd >= 0 && log)
		n = io_read_full(fd, log, SNAPSHOT_DMESG_MAX);
	if (n > 0) {
		char *p;

		log[n] = '\0';
		v.log_path = SNAPSHOT_DMESG;
		v.log_tail = n > SNAPSHOT_LOG_TAIL ? log + n - SNAPSHOT_LOG_TAIL : log;
		v.log = log;
		v.log_len = (size_t)n;
		p = strstr(log, SNAPSHOT_PANIC_MARK);
		if (p) {
			/* A copy of the line: the whole log goes on to the signature. */
			char *bol = p;

			while (bol > log && bol[-1] != '\n')
				bol--;
			snprintf(line, sizeof(line), "%.*s", (int)strcspn(bol, "\n"), bol);
			v.panic_line = line;
		}
	}
	v.ok = status == 0 && v.panic_line;
	crash_snapshot_verify(s->crash, &v);
	if (status != 0)
		snapshot_end(s, "failed", "the dump was written, but makedumpfile cannot read it (exit %d): %.200s",
			     status, (const char *)output);
	else if (!v.panic_line)
		snapshot_end(s, "failed", "makedumpfile read the guest's log, but it has no '%s' line",
			     SNAPSHOT_PANIC_MARK);
	else
		snapshot_end(s, "done", "%s written and read back: %.200s",
			     snapshot_final_name(s), v.panic_line);
}

static void snapshot_verify(struct snapshot *s)
{
	char path[PATH_MAX + 32], out[PATH_MAX + 32];
	char *argv[] = { "makedumpfile", "--dump-dmesg", path, out, NULL };
	int r;

	if (!snapshot_is_kdump(s->format)) {
		/* paging=false ELF has physical headers only: makedumpfile
		 * refuses it by design, crash(8) with debug symbols reads it. */
		crash_snapshot_verify(s->crash, &(struct crash_snapshot_verify){
			.ok = -1,
			.reason = "ELF without paging: makedumpfile cannot read it; open it with crash(8) and the kernel's debug symbols",
		});
		snapshot_end(s, "done", "vmcore.elf written (not read back: see verify)");
		return;
	}
	s->step = SNAP_VERIFY;
	snprintf(path, sizeof(path), "%s/vmcore", s->dir);
	snprintf(out, sizeof(out), "%s/" SNAPSHOT_DMESG, s->dir);
	/* makedumpfile will not overwrite it; absent is the usual case. */
	(void)unlinkat(s->crash->dirfd, SNAPSHOT_DMESG, 0);
	r = job_run_argv(s->event, argv, SNAPSHOT_JOB_TIMEOUT_USEC, snapshot_on_verified,
			 s, &s->job);
	if (r < 0)
		snapshot_end(s, "failed", "cannot run makedumpfile: %s", strerror(-r));
}

/* ---- finishing: standard layout, phys_base, final name (in a child) ---- */

_printf_(2, 3) static int snapshot_finish_fail(struct snapshot_finish_result *res,
					       const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(res->error, sizeof(res->error), fmt, ap);
	va_end(ap);
	return -1;
}

static int snapshot_finish_file(const struct snapshot *s, struct snapshot_finish_result *res)
{
	int dirfd = s->crash->dirfd;
	_cleanup_close_ int in = -1, out = -1;
	const char *final = snapshot_final_name(s);
	_cleanup_free_ char *info = NULL;
	uint64_t old_pb, new_pb;
	char err[256];
	struct stat st;
	int r, fd;

	/* Read-write: a dump already in the standard layout is repaired in place. */
	in = openat(dirfd, SNAPSHOT_PARTIAL, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (in < 0)
		return snapshot_finish_fail(res, "cannot open the partial dump: %s", strerror(errno));
	fd = in;
	if (snapshot_is_kdump(s->format)) {
		r = vmcore_is_flattened(in);
		if (r < 0)
			return snapshot_finish_fail(res, "cannot read the partial dump: %s", strerror(-r));
		if (r == 1) {
			out = openat(dirfd, SNAPSHOT_TMP,
				     O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
			if (out < 0)
				return snapshot_finish_fail(res, "cannot create %s: %s", SNAPSHOT_TMP,
							    strerror(errno));
			r = vmcore_unflatten(in, out, SNAPSHOT_UNFLATTEN_MAX, err, sizeof(err));
			if (r < 0)
				return snapshot_finish_fail(res, "reassembling the flattened dump: %s", err);
			res->reassembled = true;
			fd = out;
		}
		r = vmcore_kdump_fix_phys_base(fd, &old_pb, &new_pb, err, sizeof(err));
		if (r == -ENODATA || r == -ENOENT) {
			/* No vmcoreinfo, or not an x86_64 guest: nothing to repair. */
			snprintf(res->phys_base_why, sizeof(res->phys_base_why), "%.159s", err);
		} else if (r < 0) {
			return snapshot_finish_fail(res, "checking phys_base: %s", err);
		} else {
			res->phys_base_checked = true;
			res->phys_base_qemu = old_pb;
			res->phys_base_vmcoreinfo = new_pb;
		}
	}
	res->vmcoreinfo = vmcore_read_vmcoreinfo(fd, &info, NULL, err, sizeof(err)) == 0;
	if (fsync(fd) < 0 || fstat(fd, &st) < 0)
		return snapshot_finish_fail(res, "syncing the dump: %s", strerror(errno));
	res->bytes = (uint64_t)st.st_size;
	if (renameat(dirfd, fd == out ? SNAPSHOT_TMP : SNAPSHOT_PARTIAL, dirfd, final) < 0 ||
	    fsync(dirfd) < 0)
		return snapshot_finish_fail(res, "naming the dump %s: %s", final, strerror(errno));
	if (fd == out) {
		/* The flattened original: gone or not, the dump is in place
		 * (a leftover is removed by the next snapshot's clean-up). */
		(void)unlinkat(dirfd, SNAPSHOT_PARTIAL, 0);
		(void)fsync(dirfd);
	}
	return 0;
}

/* In the child: the whole result goes to the parent, success or not. */
static int snapshot_finish_child(int out_fd, void *userdata)
{
	struct snapshot_finish_result res = { 0 };

	res.ok = snapshot_finish_file(userdata, &res) == 0;
	if (io_write_full(out_fd, &res, sizeof(res)) < 0)
		return 2;
	return res.ok ? 0 : 1;
}

static void snapshot_on_finished(struct job *j, int status, const void *output,
				 size_t len, void *userdata)
{
	struct snapshot *s = userdata;
	struct snapshot_finish_result res = { 0 };
	bool have = len == sizeof(res);

	(void)j;
	s->job = NULL;
	if (have)
		memcpy(&res, output, sizeof(res));
	res.error[sizeof(res.error) - 1] = '\0';
	res.phys_base_why[sizeof(res.phys_base_why) - 1] = '\0';
	if (status != 0 || !have || !res.ok) {
		if (have && res.error[0])
			snapshot_end(s, "failed", "%s", res.error);
		else if (status == -ETIMEDOUT)
			snapshot_end(s, "failed", "rewriting the dump timed out");
		else
			snapshot_end(s, "failed", "rewriting the dump failed (status %d, %zu bytes of result)",
				     status, len);
		return;
	}
	struct crash_snapshot_file f = {
		.bytes = res.bytes,
		.vmcoreinfo = res.vmcoreinfo,
		.phys_base_checked = res.phys_base_checked,
		.phys_base_qemu = res.phys_base_qemu,
		.phys_base_vmcoreinfo = res.phys_base_vmcoreinfo,
		.layout = !snapshot_is_kdump(s->format) ? "elf" :
			  res.reassembled ? "standard (reassembled from flattened)" : "standard",
		.path = snapshot_final_name(s),
	};
	memcpy(f.phys_base_why, res.phys_base_why, sizeof(f.phys_base_why));
	crash_snapshot_file(s->crash, &f);
	snapshot_save(s);
	snapshot_verify(s);
}

static void snapshot_finish(struct snapshot *s)
{
	int r;

	s->step = SNAP_FINISH;
	/* The backend is done writing; the child opens the file by name. */
	closep(&s->fd);
	r = job_run_fn(s->event, snapshot_finish_child, s, SNAPSHOT_JOB_TIMEOUT_USEC,
		       snapshot_on_finished, s, &s->job);
	if (r < 0)
		snapshot_end(s, "failed", "cannot start rewriting the dump: %s", strerror(-r));
}

/* ---- the dump itself, through the backend ---- */

static void snapshot_on_progress(void *ud, uint64_t done_bytes, uint64_t total_bytes)
{
	struct snapshot *s = ud;

	crash_snapshot_progress(s->crash, done_bytes, total_bytes);
	snapshot_save(s);
}

static void snapshot_on_dumped(void *ud, int error, const char *reason)
{
	struct snapshot *s = ud;

	s->backend_busy = false;
	if (error < 0) {
		snapshot_end(s, "failed", "%s", reason && reason[0] ? reason : strerror(-error));
		return;
	}
	snapshot_finish(s);
}

static void snapshot_on_size(void *ud, int error, const char *reason, uint64_t ram_bytes)
{
	struct snapshot *s = ud;
	struct statvfs sv;
	uint64_t avail;
	int r;

	s->backend_busy = false;
	if (error < 0) {
		snapshot_end(s, "failed", "%s", reason && reason[0] ? reason : strerror(-error));
		return;
	}
	/* A compressed dump is smaller, but by how much depends on the guest:
	 * we only start a dump that fits even uncompressed. */
	if (fstatvfs(s->crash->dirfd, &sv) < 0) {
		snapshot_end(s, "failed", "cannot check free space in %s: %s", s->dir,
			     strerror(errno));
		return;
	}
	avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	crash_snapshot_space(s->crash, ram_bytes, avail);
	if (avail < ram_bytes + SNAPSHOT_SPACE_MARGIN) {
		snapshot_end(s, "refused",
			     "not enough space: the dump may need up to %llu MiB (guest RAM + %llu MiB), %llu MiB are free in %s",
			     (unsigned long long)(ram_bytes >> 20),
			     SNAPSHOT_SPACE_MARGIN >> 20, (unsigned long long)(avail >> 20),
			     s->dir);
		return;
	}

	snapshot_unlink_temporaries(s->crash->dirfd);
	s->fd = openat(s->crash->dirfd, SNAPSHOT_PARTIAL,
		       O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (s->fd < 0) {
		snapshot_end(s, "failed", "cannot create %s/%s: %s", s->dir,
			     SNAPSHOT_PARTIAL, strerror(errno));
		return;
	}
	s->step = SNAP_DUMP;
	r = s->backend->ops->dump(s->backend, s->fd, s->format, snapshot_on_progress,
				  snapshot_on_dumped, s);
	if (r < 0) {
		snapshot_end(s, "failed", "cannot start the dump: %s", strerror(-r));
		return;
	}
	s->backend_busy = true;
	crash_snapshot_state(s->crash, "running");
	snapshot_save(s);
}

int snapshot_start(sd_event *e, struct backend *b, struct crash *c,
		   const char *spool_dir, const char *format,
		   snapshot_done_fn done, void *userdata, struct snapshot **ret)
{
	_cleanup_free_ struct snapshot *s = NULL;
	int r;

	if (snapshot_active >= snapshot_max)
		return -EBUSY;
	if (!format || strlen(format) >= sizeof(s->format))
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	if ((size_t)snprintf(s->dir, sizeof(s->dir), "%s/crashes/%s", spool_dir, c->id) >=
	    sizeof(s->dir))
		return -ENAMETOOLONG;
	snprintf(s->format, sizeof(s->format), "%s", format);
	s->backend = b;
	s->crash = c;
	s->fd = -1;
	s->done = done;
	s->userdata = userdata;
	s->step = SNAP_MEMORY;
	r = b->ops->memory_size(b, snapshot_on_size, s);
	if (r < 0)
		return r;
	s->backend_busy = true;
	s->event = sd_event_ref(e);
	s->started_usec = ev_now_usec(e);
	snapshot_active++;
	s->counted = true;
	crash_snapshot_begin(c, format, ts_now_realtime_usec());
	snapshot_save(s);
	*ret = TAKE_PTR(s);
	return 0;
}

void snapshot_abandon_stale(struct crash *c)
{
	const char *state = crash_snapshot_get_state(c);

	if (!state || (strcmp(state, "running") != 0 && strcmp(state, "starting") != 0))
		return;
	snapshot_unlink_temporaries(c->dirfd);
	/* seconds < 0: not known (the daemon that timed it is gone). */
	crash_snapshot_end(c, "failed", "panicbrokerd stopped during the snapshot: no dump kept",
			   ts_now_realtime_usec(), -1.0);
}
