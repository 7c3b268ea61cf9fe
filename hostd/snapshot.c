// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "job.h"
#include "log.h"
#include "snapshot.h"
#include "util.h"
#include "vmcore.h"

#define SNAPSHOT_PARTIAL ".vmcore.partial"
#define SNAPSHOT_TMP ".vmcore.tmp"
#define SNAPSHOT_FDNAME "panicbroker-dump"
#define SNAPSHOT_DMESG "dmesg.txt"
#define SNAPSHOT_LOG_TAIL 8192
#define SNAPSHOT_PANIC_MARK "Kernel panic - not syncing"

enum snapshot_step {
	SNAP_CAPS,     /* query-dump-guest-memory-capability */
	SNAP_MEMORY,   /* query-memory-size-summary */
	SNAP_GETFD,    /* getfd with our file */
	SNAP_DUMP,     /* dump-guest-memory sent */
	SNAP_RUNNING,  /* detached dump in progress */
	SNAP_FINISH,   /* rewriting the file in a child */
	SNAP_VERIFY,   /* makedumpfile --dump-dmesg in a child */
};

struct snapshot {
	sd_event *event;
	struct qmp *qmp;
	struct crash *crash;
	char dir[PATH_MAX];
	char format[16];
	enum snapshot_step step;
	bool counted;
	int fd;
	uint64_t ram_bytes;
	uint64_t started_usec; /* monotonic */
	sd_event_source *poll;
	struct job *job;
	json_object *obj; /* the record's "snapshot", owned by the record */
	snapshot_done_fn done;
	void *userdata;
};

static unsigned int snapshot_max = 1, snapshot_active;

static bool snapshot_is_kdump(const struct snapshot *s)
{
	return strncmp(s->format, "kdump-", 6) == 0;
}

void snapshot_set_max_concurrent(unsigned int n)
{
	snapshot_max = n ? n : 1;
}

static uint64_t snapshot_now(struct snapshot *s)
{
	uint64_t now = 0;

	sd_event_now(s->event, CLOCK_MONOTONIC, &now);
	return now;
}

static void snapshot_set(struct snapshot *s, const char *key, json_object *v)
{
	json_object_object_add(s->obj, key, v);
}

static void snapshot_stamp(struct snapshot *s, const char *key)
{
	char buf[TS_RFC3339_MAX];

	if (ts_format_rfc3339(ts_now_realtime_usec(), buf, sizeof(buf)) == 0)
		snapshot_set(s, key, json_object_new_string(buf));
}

static void snapshot_save(struct snapshot *s)
{
	int r = crash_save(s->crash);

	if (r < 0)
		log_error("crash %s: cannot write its record: %s", s->crash->id,
			  strerror(-r));
}

static void snapshot_release(struct snapshot *s)
{
	s->poll = sd_event_source_disable_unref(s->poll);
	job_cancel(s->job);
	s->job = NULL;
	closep(&s->fd);
	s->fd = -1;
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

static void snapshot_unlink_temporaries(int dirfd)
{
	unlinkat(dirfd, SNAPSHOT_PARTIAL, 0);
	unlinkat(dirfd, SNAPSHOT_TMP, 0);
}

/* Ends the snapshot: records the outcome, frees @s, tells the VM. */
static void snapshot_end(struct snapshot *s, const char *state, const char *fmt,
			 ...) _printf_(3, 4);

static void snapshot_end(struct snapshot *s, const char *state, const char *fmt,
			 ...)
{
	snapshot_done_fn done = s->done;
	void *userdata = s->userdata;
	bool ok = strcmp(state, "done") == 0;
	char reason[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	snapshot_release(s);
	if (!ok)
		snapshot_unlink_temporaries(s->crash->dirfd);
	snapshot_set(s, "state", json_object_new_string(state));
	snapshot_set(s, "reason", json_object_new_string(reason));
	snapshot_stamp(s, "finished_at");
	if (s->started_usec)
		snapshot_set(s, "seconds",
			     json_object_new_double((double)(snapshot_now(s) - s->started_usec) /
						    USEC_PER_SEC));
	crash_note(s->crash, "snapshot %s: %s", state, reason);
	snapshot_save(s);
	if (ok)
		log_notice("VM %s: crash %s: snapshot done: %s", s->crash->vm,
			   s->crash->id, reason);
	else
		log_warn("VM %s: crash %s: snapshot %s: %s", s->crash->vm, s->crash->id,
			 state, reason);
	sd_event_unref(s->event);
	free(s);
	done(NULL, ok, userdata);
}

static int snapshot_send(struct snapshot *s, const char *cmd, json_object *args,
			 qmp_reply_fn fn)
{
	int r = qmp_send(s->qmp, cmd, args, fn, s);

	json_object_put(args);
	if (r < 0)
		snapshot_end(s, "failed", "cannot send %s: %s", cmd, strerror(-r));
	return r;
}

static bool snapshot_reply_failed(struct snapshot *s, const char *what,
				  const struct qmp_msg *reply)
{
	if (reply->type != QMP_MSG_ERROR)
		return false;
	snapshot_end(s, "failed", "%s refused: %s", what, reply->error_desc);
	return true;
}

/* ---- verification: the guest's log, read back out of the dump ---- */

static void snapshot_on_verified(struct job *j, int status, const char *output,
				 void *userdata)
{
	struct snapshot *s = userdata;
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *log = NULL;
	json_object *v = json_object_new_object();
	const char *line = NULL;
	ssize_t n = 0;

	(void)j;
	s->job = NULL;
	json_object_object_add(v, "tool", json_object_new_string("makedumpfile --dump-dmesg"));
	json_object_object_add(v, "exit_status", json_object_new_int(status));
	fd = openat(s->crash->dirfd, SNAPSHOT_DMESG, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	log = malloc(1024 * 1024 + 1);
	if (fd >= 0 && log)
		n = read(fd, log, 1024 * 1024);
	if (n > 0 && log) {
		char *p;

		log[n] = '\0';
		json_object_object_add(v, "log_path", json_object_new_string(SNAPSHOT_DMESG));
		json_object_object_add(v, "log_tail",
				       json_object_new_string(n > SNAPSHOT_LOG_TAIL ?
							      log + n - SNAPSHOT_LOG_TAIL : log));
		p = strstr(log, SNAPSHOT_PANIC_MARK);
		if (p) {
			char *bol = p, *eol = strchr(p, '\n');

			while (bol > log && bol[-1] != '\n')
				bol--;
			if (eol)
				*eol = '\0';
			line = bol;
		}
	}
	json_object_object_add(v, "panic_line", line ? json_object_new_string(line) : NULL);
	json_object_object_add(v, "ok", json_object_new_boolean(status == 0 && line));
	if (status != 0)
		json_object_object_add(v, "output", json_object_new_string(output));
	snapshot_set(s, "verify", v);
	if (status != 0)
		snapshot_end(s, "failed", "the dump was written, but makedumpfile cannot read it (exit %d): %.200s",
			     status, output);
	else if (!line)
		snapshot_end(s, "failed", "makedumpfile read the guest's log, but it has no '%s' line",
			     SNAPSHOT_PANIC_MARK);
	else
		snapshot_end(s, "done", "%s written and read back: %.200s",
			     json_object_get_string(json_object_object_get(s->obj, "path")), line);
}

static void snapshot_verify(struct snapshot *s)
{
	char path[PATH_MAX + 32], out[PATH_MAX + 32];
	char *argv[] = { "makedumpfile", "--dump-dmesg", path, out, NULL };
	int r;

	if (!snapshot_is_kdump(s)) {
		/* paging=false ELF has physical headers only: makedumpfile
		 * refuses it by design, crash(8) with debug symbols reads it. */
		json_object *v = json_object_new_object();

		json_object_object_add(v, "ok", NULL);
		json_object_object_add(v, "reason", json_object_new_string(
			"ELF without paging: makedumpfile cannot read it; open it with crash(8) and the kernel's debug symbols"));
		snapshot_set(s, "verify", v);
		snapshot_end(s, "done", "vmcore.elf written (not read back: see verify)");
		return;
	}
	s->step = SNAP_VERIFY;
	snprintf(path, sizeof(path), "%s/vmcore", s->dir);
	snprintf(out, sizeof(out), "%s/" SNAPSHOT_DMESG, s->dir);
	unlinkat(s->crash->dirfd, SNAPSHOT_DMESG, 0);
	r = job_run_argv(s->event, argv, SNAPSHOT_JOB_TIMEOUT_USEC, snapshot_on_verified,
			 s, &s->job);
	if (r < 0)
		snapshot_end(s, "failed", "cannot run makedumpfile: %s", strerror(-r));
}

/* ---- finishing: standard layout, phys_base, final name (in a child) ---- */

static int snapshot_finish_child(void *userdata)
{
	struct snapshot *s = userdata;
	int dirfd = s->crash->dirfd;
	_cleanup_close_ int in = -1, out = -1;
	const char *final = snapshot_is_kdump(s) ? "vmcore" : "vmcore.elf";
	char err[256], *info = NULL;
	size_t info_len = 0;
	uint64_t old_pb, new_pb;
	struct stat st;
	int r, fd;

	/* Read-write: a dump already in the standard layout is repaired in place. */
	in = openat(dirfd, SNAPSHOT_PARTIAL, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (in < 0) {
		printf("error cannot open the partial dump: %s\n", strerror(errno));
		return 1;
	}
	if (snapshot_is_kdump(s)) {
		out = openat(dirfd, SNAPSHOT_TMP,
			     O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (out < 0) {
			printf("error cannot create %s: %s\n", SNAPSHOT_TMP, strerror(errno));
			return 1;
		}
		r = vmcore_is_flattened(in);
		if (r == 1) {
			r = vmcore_unflatten(in, out, UINT64_C(1) << 46, err, sizeof(err));
			if (r < 0) {
				printf("error reassembling the flattened dump: %s\n", err);
				return 1;
			}
			printf("layout reassembled from QEMU's flattened format\n");
			fd = out;
		} else {
			/* Already standard: rename it as it is. */
			closep(&out);
			out = -1;
			unlinkat(dirfd, SNAPSHOT_TMP, 0);
			fd = in;
		}
		r = vmcore_kdump_fix_phys_base(fd, &old_pb, &new_pb, err, sizeof(err));
		if (r == -ENODATA || r == -ENOENT) {
			/* No vmcoreinfo, or not an x86_64 guest: nothing to repair. */
			printf("phys_base unchecked %s\n", err);
		} else if (r < 0) {
			printf("error checking phys_base: %s\n", err);
			return 1;
		} else {
			printf("phys_base %" PRIu64 " %" PRIu64 "\n", old_pb, new_pb);
		}
	} else {
		fd = in;
	}
	printf("vmcoreinfo %s\n",
	       vmcore_read_vmcoreinfo(fd, &info, &info_len, err, sizeof(err)) == 0 ? "yes" : "no");
	free(info);
	if (fsync(fd) < 0 || fstat(fd, &st) < 0) {
		printf("error syncing the dump: %s\n", strerror(errno));
		return 1;
	}
	printf("size %lld\n", (long long)st.st_size);
	if (renameat(dirfd, fd == out ? SNAPSHOT_TMP : SNAPSHOT_PARTIAL, dirfd, final) < 0 ||
	    fsync(dirfd) < 0) {
		printf("error naming the dump %s: %s\n", final, strerror(errno));
		return 1;
	}
	unlinkat(dirfd, SNAPSHOT_PARTIAL, 0);
	fsync(dirfd);
	return 0;
}

static void snapshot_on_finished(struct job *j, int status, const char *output,
				 void *userdata)
{
	struct snapshot *s = userdata;
	unsigned long long size, old_pb, new_pb;
	const char *p;

	(void)j;
	s->job = NULL;
	if (status != 0) {
		p = strstr(output, "error ");
		snapshot_end(s, "failed", "%.300s", p ? p + 6 :
			     status == -ETIMEDOUT ? "rewriting the dump timed out" : output);
		return;
	}
	if ((p = strstr(output, "size ")) && sscanf(p, "size %llu", &size) == 1)
		snapshot_set(s, "bytes", json_object_new_int64((int64_t)size));
	if ((p = strstr(output, "vmcoreinfo ")))
		snapshot_set(s, "vmcoreinfo", json_object_new_boolean(strncmp(p + 11, "yes", 3) == 0));
	if ((p = strstr(output, "phys_base unchecked "))) {
		json_object *pb = json_object_new_object();

		json_object_object_add(pb, "fixed", json_object_new_boolean(0));
		json_object_object_add(pb, "reason",
				       json_object_new_string_len(p + 20, (int)strcspn(p + 20, "\n")));
		snapshot_set(s, "phys_base", pb);
	} else if ((p = strstr(output, "phys_base ")) &&
		   sscanf(p, "phys_base %llu %llu", &old_pb, &new_pb) == 2) {
		json_object *pb = json_object_new_object();
		char hex[24];

		/* Hexadecimal: phys_base is an unsigned long that may wrap. */
		snprintf(hex, sizeof(hex), "0x%llx", old_pb);
		json_object_object_add(pb, "written_by_qemu", json_object_new_string(hex));
		snprintf(hex, sizeof(hex), "0x%llx", new_pb);
		json_object_object_add(pb, "from_vmcoreinfo", json_object_new_string(hex));
		json_object_object_add(pb, "fixed", json_object_new_boolean(old_pb != new_pb));
		snapshot_set(s, "phys_base", pb);
	}
	snapshot_set(s, "layout", json_object_new_string(
		snapshot_is_kdump(s) ? (strstr(output, "reassembled") ?
					"standard (reassembled from flattened)" : "standard") : "elf"));
	snapshot_set(s, "path", json_object_new_string(snapshot_is_kdump(s) ? "vmcore" : "vmcore.elf"));
	snapshot_save(s);
	snapshot_verify(s);
}

static void snapshot_finish(struct snapshot *s)
{
	int r;

	s->step = SNAP_FINISH;
	s->poll = sd_event_source_disable_unref(s->poll);
	closep(&s->fd);
	s->fd = -1;
	r = job_run_fn(s->event, snapshot_finish_child, s, SNAPSHOT_JOB_TIMEOUT_USEC,
		       snapshot_on_finished, s, &s->job);
	if (r < 0)
		snapshot_end(s, "failed", "cannot start rewriting the dump: %s", strerror(-r));
}

/* ---- the dump itself ---- */

static void snapshot_progress(struct snapshot *s, json_object *result)
{
	json_object *v;

	if (json_object_object_get_ex(result, "completed", &v))
		snapshot_set(s, "bytes_done", json_object_new_int64(json_object_get_int64(v)));
	if (json_object_object_get_ex(result, "total", &v))
		snapshot_set(s, "bytes_total", json_object_new_int64(json_object_get_int64(v)));
}

void snapshot_on_event(struct snapshot *s, const struct qmp_msg *ev)
{
	json_object *result, *status, *error;

	if (!s || strcmp(ev->event, "DUMP_COMPLETED") != 0 || s->step != SNAP_RUNNING)
		return;
	if (ev->payload && json_object_object_get_ex(ev->payload, "result", &result))
		snapshot_progress(s, result);
	if (ev->payload && json_object_object_get_ex(ev->payload, "error", &error)) {
		snapshot_end(s, "failed", "QEMU: %s", json_object_get_string(error));
		return;
	}
	if (!ev->payload || !json_object_object_get_ex(ev->payload, "result", &result) ||
	    !json_object_object_get_ex(result, "status", &status) ||
	    strcmp(json_object_get_string(status), "completed") != 0) {
		snapshot_end(s, "failed", "QEMU ended the dump without completing it");
		return;
	}
	snapshot_finish(s);
}

static void snapshot_on_query_dump(struct qmp *q, const struct qmp_msg *reply,
				   void *userdata)
{
	struct snapshot *s = userdata;

	(void)q;
	if (reply->type == QMP_MSG_RETURN && s->step == SNAP_RUNNING && reply->payload) {
		snapshot_progress(s, reply->payload);
		snapshot_save(s);
	}
}

static int snapshot_on_poll(sd_event_source *src, uint64_t usec, void *userdata)
{
	struct snapshot *s = userdata;

	(void)src;
	if (s->step != SNAP_RUNNING)
		return 0;
	if (usec - s->started_usec > SNAPSHOT_DUMP_TIMEOUT_USEC) {
		snapshot_end(s, "failed", "the dump did not complete within %llu s",
			     SNAPSHOT_DUMP_TIMEOUT_USEC / USEC_PER_SEC);
		return 0;
	}
	qmp_send(s->qmp, "query-dump", NULL, snapshot_on_query_dump, s);
	sd_event_source_set_time_relative(s->poll, SNAPSHOT_POLL_USEC);
	sd_event_source_set_enabled(s->poll, SD_EVENT_ON);
	return 0;
}

static void snapshot_on_dump(struct qmp *q, const struct qmp_msg *reply, void *userdata)
{
	struct snapshot *s = userdata;

	(void)q;
	if (snapshot_reply_failed(s, "dump-guest-memory", reply))
		return;
	s->step = SNAP_RUNNING;
	/* QEMU holds its own copy of the fd now. */
	closep(&s->fd);
	s->fd = -1;
	sd_event_add_time_relative(s->event, &s->poll, CLOCK_MONOTONIC,
				   SNAPSHOT_POLL_USEC, 0, snapshot_on_poll, s);
}

static void snapshot_on_getfd(struct qmp *q, const struct qmp_msg *reply, void *userdata)
{
	struct snapshot *s = userdata;
	json_object *args;

	(void)q;
	if (snapshot_reply_failed(s, "getfd", reply))
		return;
	s->step = SNAP_DUMP;
	args = json_object_new_object();
	json_object_object_add(args, "paging", json_object_new_boolean(0));
	json_object_object_add(args, "protocol", json_object_new_string("fd:" SNAPSHOT_FDNAME));
	json_object_object_add(args, "detach", json_object_new_boolean(1));
	json_object_object_add(args, "format", json_object_new_string(s->format));
	snapshot_set(s, "state", json_object_new_string("running"));
	snapshot_save(s);
	snapshot_send(s, "dump-guest-memory", args, snapshot_on_dump);
}

static void snapshot_on_memory(struct qmp *q, const struct qmp_msg *reply,
			       void *userdata)
{
	struct snapshot *s = userdata;
	json_object *v, *args;
	struct statvfs sv;
	uint64_t avail;
	int r;

	(void)q;
	if (snapshot_reply_failed(s, "query-memory-size-summary", reply))
		return;
	if (json_object_object_get_ex(reply->payload, "base-memory", &v))
		s->ram_bytes = (uint64_t)json_object_get_int64(v);
	if (json_object_object_get_ex(reply->payload, "plugged-memory", &v))
		s->ram_bytes += (uint64_t)json_object_get_int64(v);
	snapshot_set(s, "guest_ram_bytes", json_object_new_int64((int64_t)s->ram_bytes));

	/* A compressed dump is smaller, but by how much depends on the guest:
	 * we only start a dump that fits even uncompressed. */
	if (fstatvfs(s->crash->dirfd, &sv) < 0) {
		snapshot_end(s, "failed", "cannot check free space in %s: %s", s->dir,
			     strerror(errno));
		return;
	}
	avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	snapshot_set(s, "space_available_bytes", json_object_new_int64((int64_t)avail));
	if (avail < s->ram_bytes + SNAPSHOT_SPACE_MARGIN) {
		snapshot_end(s, "refused",
			     "not enough space: the dump may need up to %llu MiB (guest RAM + %llu MiB), %llu MiB are free in %s",
			     (unsigned long long)(s->ram_bytes >> 20),
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
	s->step = SNAP_GETFD;
	args = json_object_new_object();
	json_object_object_add(args, "fdname", json_object_new_string(SNAPSHOT_FDNAME));
	r = qmp_send_fd(s->qmp, "getfd", args, s->fd, snapshot_on_getfd, s);
	json_object_put(args);
	if (r < 0)
		snapshot_end(s, "failed", "cannot pass the dump file to QEMU: %s", strerror(-r));
}

static void snapshot_on_caps(struct qmp *q, const struct qmp_msg *reply, void *userdata)
{
	struct snapshot *s = userdata;
	json_object *formats;
	bool offered = false;

	(void)q;
	if (snapshot_reply_failed(s, "query-dump-guest-memory-capability", reply))
		return;
	if (json_object_object_get_ex(reply->payload, "formats", &formats) &&
	    json_object_is_type(formats, json_type_array))
		for (size_t i = 0; i < json_object_array_length(formats); i++)
			if (strcmp(json_object_get_string(json_object_array_get_idx(formats, i)),
				   s->format) == 0)
				offered = true;
	if (!offered) {
		snapshot_end(s, "failed", "this QEMU does not offer the %s format (query-dump-guest-memory-capability: %s)",
			     s->format, formats ? json_object_to_json_string(formats) : "none");
		return;
	}
	s->step = SNAP_MEMORY;
	snapshot_send(s, "query-memory-size-summary", NULL, snapshot_on_memory);
}

int snapshot_start(sd_event *e, struct qmp *q, struct crash *c,
		   const char *spool_dir, const char *format,
		   snapshot_done_fn done, void *userdata, struct snapshot **ret)
{
	struct snapshot *s;

	if (!qmp_is_ready(q))
		return -ENOTCONN;
	if (snapshot_active >= snapshot_max)
		return -EBUSY;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->event = sd_event_ref(e);
	s->qmp = q;
	s->crash = c;
	s->fd = -1;
	s->done = done;
	s->userdata = userdata;
	snprintf(s->dir, sizeof(s->dir), "%s/crashes/%s", spool_dir, c->id);
	snprintf(s->format, sizeof(s->format), "%s", format);
	s->started_usec = snapshot_now(s);
	snapshot_active++;
	s->counted = true;

	s->obj = json_object_new_object();
	json_object_object_add(c->rec, "snapshot", s->obj);
	snapshot_set(s, "state", json_object_new_string("starting"));
	snapshot_set(s, "format", json_object_new_string(format));
	snapshot_stamp(s, "started_at");
	snapshot_save(s);
	*ret = s;
	s->step = SNAP_CAPS;
	if (snapshot_send(s, "query-dump-guest-memory-capability", NULL, snapshot_on_caps) < 0) {
		*ret = NULL;
		return 0; /* already ended, done() called */
	}
	return 0;
}

void snapshot_on_session_lost(struct snapshot *s)
{
	if (!s)
		return;
	snapshot_end(s, "failed", "the QMP session ended during the snapshot (QEMU gone?): no dump kept");
}

void snapshot_abandon_stale(struct crash *c)
{
	json_object *snap, *state;

	if (!json_object_object_get_ex(c->rec, "snapshot", &snap) ||
	    !json_object_object_get_ex(snap, "state", &state))
		return;
	if (strcmp(json_object_get_string(state), "running") != 0 &&
	    strcmp(json_object_get_string(state), "starting") != 0)
		return;
	snapshot_unlink_temporaries(c->dirfd);
	json_object_object_add(snap, "state", json_object_new_string("failed"));
	json_object_object_add(snap, "reason", json_object_new_string(
		"panicbrokerd stopped during the snapshot: no dump kept"));
	crash_note(c, "snapshot failed: panicbrokerd stopped during the snapshot");
}
