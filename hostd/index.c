// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "index.h"
#include "strpool.h"
#include "io.h"
#include "util.h"

#define INDEX_NAME "index.tsv"
#define INDEX_LINE_MAX 4096

struct index {
	struct spool *spool;
	struct strpool pool;	/* every string of v[] */
	int fd; /* INDEX_NAME, O_APPEND; -1 when it cannot be written */
	struct crash_summary *v;
	size_t n, cap;
	struct index_stats stats;
};

/* ---- a summary from a record, to a line and back ---- */

static const char *index_str(json_object *o, const char *key)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static json_object *index_obj(json_object *o, const char *key)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_object))
		return NULL;
	return v;
}

/* Cut to @len - 1 bytes (a reason for the log, an id already checked). */
static void index_copy(char *dst, size_t len, const char *src)
{
	size_t n = src ? strnlen(src, len - 1) : 0;

	memcpy(dst, src ? src : "", n);
	dst[n] = '\0';
}

static const char *index_or_empty(const char *s)
{
	return s ? s : "";
}

static uint64_t index_time(const char *s)
{
	uint64_t usec = 0;

	if (s && ts_parse_rfc3339(s, &usec) < 0)
		usec = 0;
	return usec;
}

void index_summarise(const char *id, json_object *rec, struct crash_summary *ret)
{
	json_object *res = index_obj(rec, "final_action_result"), *in = index_obj(rec, "vm_instance");
	json_object *v;
	int st = crash_state_from_string(index_str(rec, "state") ? index_str(rec, "state") : "");

	memset(ret, 0, sizeof(*ret));
	ret->id = id;
	ret->vm = index_or_empty(index_str(rec, "vm"));
	ret->event = index_or_empty(index_str(rec, "event"));
	ret->detected_usec = index_time(index_str(rec, "detected_at"));
	ret->updated_usec = index_time(index_str(rec, "updated_at"));
	/* An unreadable state counts as open: it is looked at again at start. */
	ret->state = st < 0 ? CRASH_DETECTED : (enum crash_state)st;
	ret->outcome = index_or_empty(index_str(res, "outcome"));
	ret->kdump = index_or_empty(index_str(index_obj(rec, "kdump"), "state"));
	ret->snapshot = index_or_empty(index_str(index_obj(rec, "snapshot"), "state"));
	ret->bucket = index_or_empty(index_str(index_obj(rec, "signature"), "bucket"));
	ret->title = index_or_empty(index_str(index_obj(rec, "signature"), "title"));
	if (in && json_object_object_get_ex(in, "pid", &v))
		ret->instance.pid = (pid_t)json_object_get_int64(v);
	if (in && json_object_object_get_ex(in, "start_ticks", &v))
		ret->instance.start_ticks = json_object_get_uint64(v);
	in = index_obj(rec, "panic");
	if (in && index_str(in, "session") && json_object_object_get_ex(in, "seq", &v)) {
		ret->panic_session = strtoull(index_str(in, "session"), NULL, 16);
		ret->panic_seq = (uint32_t)json_object_get_int64(v);
	}
	/* A crash whose panic record never reached it still knows its session. */
	in = index_obj(rec, "kdump");
	if (!ret->panic_session && in && index_str(in, "crashed_session"))
		ret->panic_session = strtoull(index_str(in, "crashed_session"), NULL, 16);
}

/*
 * A line of the file: tab-separated fields, strings with \\, \t and \n
 * escaped (fast to read back: 100,000 lines at start). The first field
 * names the format, so a line of another format is skipped, not misread.
 */
#define INDEX_LINE_TAG "pb1"
#define INDEX_FIELDS 16

static void index_put_field(FILE *f, const char *s)
{
	fputc('\t', f);
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '\t')
			fputs("\\t", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

/* One line of the file; NULL on ENOMEM. */
static char *index_line(const struct crash_summary *s)
{
	char *line = NULL, num[32];
	size_t len = 0;
	FILE *f = open_memstream(&line, &len);

	if (!f)
		return NULL;
	fputs(INDEX_LINE_TAG, f);
	index_put_field(f, s->id);
	index_put_field(f, s->vm);
	index_put_field(f, s->event);
	fprintf(f, "\t%llu\t%llu", (unsigned long long)s->detected_usec,
		(unsigned long long)s->updated_usec);
	index_put_field(f, crash_state_to_string(s->state));
	index_put_field(f, s->outcome);
	index_put_field(f, s->kdump);
	index_put_field(f, s->snapshot);
	index_put_field(f, s->bucket);
	index_put_field(f, s->title);
	snprintf(num, sizeof(num), "%lld", (long long)s->instance.pid);
	fprintf(f, "\t%s\t%llu\t%llu\t%u\n", num, (unsigned long long)s->instance.start_ticks,
		(unsigned long long)s->panic_session, s->panic_seq);
	if (fclose(f) != 0) {
		free(line);
		return NULL;
	}
	return line;
}

/* Splits @line in place into its fields, unescaping them; their number. */
static size_t index_split(char *line, char **fields, size_t max)
{
	size_t n = 0;
	char *p = line, *out = line;

	fields[n++] = out;
	for (; *p && *p != '\n'; p++) {
		if (*p == '\t') {
			*out++ = '\0';
			if (n == max)
				return max + 1;
			fields[n++] = out;
		} else if (*p == '\\' && (p[1] == '\\' || p[1] == 't' || p[1] == 'n')) {
			p++;
			*out++ = *p == 't' ? '\t' : *p == 'n' ? '\n' : '\\';
		} else {
			*out++ = *p;
		}
	}
	*out = '\0';
	return n;
}

static bool index_u64(const char *s, uint64_t *ret)
{
	char *end;

	if (!*s || *s == '-')
		return false;
	errno = 0;
	*ret = strtoull(s, &end, 10);
	return !errno && !*end;
}

/* A line back into a summary; false when it is not one (torn, foreign). */
static bool index_parse(char *line, struct crash_summary *ret)
{
	char *f[INDEX_FIELDS];
	uint64_t pid, seq;
	int st;

	memset(ret, 0, sizeof(*ret));
	if (index_split(line, f, INDEX_FIELDS) != INDEX_FIELDS || strcmp(f[0], INDEX_LINE_TAG) ||
	    !spool_id_is_valid(f[1]) || !name_is_valid(f[2]) ||
	    (st = crash_state_from_string(f[6])) < 0 || !index_u64(f[4], &ret->detected_usec) ||
	    !index_u64(f[5], &ret->updated_usec) || !index_u64(f[12], &pid) ||
	    !index_u64(f[13], &ret->instance.start_ticks) ||
	    !index_u64(f[14], &ret->panic_session) || !index_u64(f[15], &seq) ||
	    pid > INT32_MAX || seq > UINT32_MAX)
		return false;
	ret->id = f[1];
	ret->vm = f[2];
	ret->event = f[3];
	ret->state = (enum crash_state)st;
	ret->outcome = f[7];
	ret->kdump = f[8];
	ret->snapshot = f[9];
	ret->bucket = f[10];
	ret->title = f[11];
	ret->instance.pid = (pid_t)pid;
	ret->panic_seq = (uint32_t)seq;
	return true;
}

/* ---- the sorted array ---- */

static int index_grow(struct index *x, size_t want)
{
	struct crash_summary *v;
	size_t cap = x->cap ? x->cap : 256;

	if (want <= x->cap)
		return 0;
	while (cap < want)
		cap *= 2;
	v = realloc(x->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	x->v = v;
	x->cap = cap;
	return 0;
}

/* Where @id is, or would go. */
static size_t index_pos(const struct index *x, const char *id, bool *found)
{
	size_t lo = 0, hi = x->n;

	*found = false;
	/* New crashes are the newest: look at the end first. */
	if (x->n && strcmp(x->v[x->n - 1].id, id) < 0)
		return x->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(x->v[mid].id, id);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* @s with its strings moved into the pool (they may be a line's, a record's). */
static int index_intern(struct index *x, const struct crash_summary *s,
			struct crash_summary *ret)
{
	const char **in[] = { &ret->id, &ret->vm, &ret->event, &ret->outcome, &ret->kdump,
			      &ret->snapshot, &ret->bucket, &ret->title };

	*ret = *s;
	for (size_t k = 0; k < sizeof(in) / sizeof(in[0]); k++) {
		*in[k] = strpool_intern(&x->pool, *in[k] ? *in[k] : "");
		if (!*in[k])
			return -ENOMEM;
	}
	return 0;
}

static int index_put(struct index *x, const struct crash_summary *s)
{
	struct crash_summary kept;
	bool found;
	size_t i = index_pos(x, s->id, &found);

	if (index_intern(x, s, &kept) < 0)
		return -ENOMEM;
	if (found) {
		x->v[i] = kept;
		return 0;
	}
	if (index_grow(x, x->n + 1) < 0)
		return -ENOMEM;
	memmove(&x->v[i + 1], &x->v[i], (x->n - i) * sizeof(*x->v));
	x->v[i] = kept;
	x->n++;
	return 0;
}

/* ---- loading ---- */

/* Every good line of the file, last one of an id kept. */
static int index_read_file(struct index *x, size_t *ret_lines)
{
	_cleanup_close_ int fd = openat(spool_dirfd(x->spool), INDEX_NAME,
					 O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	FILE *f;
	char *line = NULL;
	size_t cap = 0, n = 0;
	ssize_t len;
	int r = 0;

	*ret_lines = 0;
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	f = fdopen(TAKE_FD(fd), "r");
	if (!f)
		return -errno;
	while ((len = getline(&line, &cap, f)) >= 0) {
		struct crash_summary s;

		n++;
		if (len > INDEX_LINE_MAX || !index_parse(line, &s)) {
			x->stats.lines_bad++;
			continue;
		}
		r = index_put(x, &s);
		if (r < 0)
			break;
	}
	free(line);
	fclose(f);
	x->stats.lines_read = n;
	*ret_lines = n;
	return r;
}

/* A record read because the file did not know it, or knew it open. */
static int index_read_record(struct index *x, const char *id, struct crash_summary *ret)
{
	struct crash_summary s;
	json_object *rec = NULL;
	char err[256] = "";
	int r = spool_read_record(x->spool, id, &rec, err, sizeof(err));

	x->stats.records_read++;
	if (r < 0) {
		if (x->stats.records_bad < INDEX_BAD_KEPT) {
			index_copy(x->stats.bad_id[x->stats.records_bad], SPOOL_ID_MAX, id);
			index_copy(x->stats.bad_why[x->stats.records_bad], 160, err);
		}
		x->stats.records_bad++;
		return r;
	}
	index_summarise(id, rec, &s);
	r = index_intern(x, &s, ret);	/* before the record's strings go */
	json_object_put(rec);
	return r;
}

/* The directory is the truth: keep what it has, read what is open or new. */
static int index_reconcile(struct index *x)
{
	struct crash_summary *old = x->v, s;
	size_t n_old = x->n, j = 0;
	char **ids = NULL;
	size_t n_ids = 0;
	int r;

	r = spool_list(x->spool, &ids, &n_ids);
	if (r < 0)
		return r;
	x->v = NULL;
	x->n = x->cap = 0;
	r = index_grow(x, n_ids);
	for (size_t i = 0; r >= 0 && i < n_ids; i++) {
		while (j < n_old && strcmp(old[j].id, ids[i]) < 0) {
			x->stats.dropped++;
			j++;
		}
		if (j < n_old && strcmp(old[j].id, ids[i]) == 0 && old[j].state == CRASH_CLOSED) {
			x->v[x->n++] = old[j++];
			continue;
		}
		if (j < n_old && strcmp(old[j].id, ids[i]) == 0)
			j++;
		/* An unreadable record is left out (the daemon logs it at resume). */
		if (index_read_record(x, ids[i], &s) == 0)
			x->v[x->n++] = s;
	}
	x->stats.dropped += n_old - j;
	free(old);
	spool_free_ids(ids, n_ids);
	return r;
}

/* The whole index anew: temporary file, fsync, rename. */
static int index_rewrite(struct index *x)
{
	_cleanup_close_ int fd = -1;
	int dirfd = spool_dirfd(x->spool), r = 0;

	fd = openat(dirfd, "." INDEX_NAME ".tmp",
		    O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0)
		return -errno;
	for (size_t i = 0; i < x->n && r >= 0; i++) {
		_cleanup_free_ char *line = index_line(&x->v[i]);

		r = line ? io_write_full(fd, line, strlen(line)) : -ENOMEM;
	}
	if (r >= 0 && fsync(fd) < 0)
		r = -errno;
	if (r >= 0 && renameat(dirfd, "." INDEX_NAME ".tmp", dirfd, INDEX_NAME) < 0)
		r = -errno;
	if (r < 0)
		unlinkat(dirfd, "." INDEX_NAME ".tmp", 0);
	return r;
}

int index_open(struct spool *s, struct index **ret, char *err, size_t errlen)
{
	struct index *x = calloc(1, sizeof(*x));
	uint64_t t0 = ts_now_monotonic_usec();
	size_t lines = 0;
	int r;

	if (!x)
		return -ENOMEM;
	x->spool = s;
	x->fd = -1;
	r = index_read_file(x, &lines);
	if (r == -ENOMEM) {
		index_free(x);
		return err_set(err, errlen, r, "out of memory reading the index");
	}
	/* Any other trouble with the file only costs reading the records. */
	r = index_reconcile(x);
	if (r < 0) {
		index_free(x);
		return err_set(err, errlen, r, "cannot list the crashes of %s: %s", spool_path(s),
			       strerror(-r));
	}
	if (x->stats.records_read || lines > 2 * x->n + 64) {
		/* A failure leaves the old file: the next start reconciles again. */
		(void)index_rewrite(x);
	}
	x->fd = openat(spool_dirfd(s), INDEX_NAME,
		       O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
	x->stats.load_usec = ts_now_monotonic_usec() - t0;
	*ret = x;
	return 0;
}

void index_update(struct index *x, const struct crash *c)
{
	struct crash_summary s;
	_cleanup_free_ char *line = NULL;

	if (!x || !c->published)
		return;
	index_summarise(c->id, c->rec, &s);
	if (index_put(x, &s) < 0)
		return; /* out of memory: the next start finds the record */
	line = index_line(&s);
	/* No fsync: the record is the truth, and the next start reconciles. */
	if (line && x->fd >= 0 && io_write_full(x->fd, line, strlen(line)) < 0) {
		closep(&x->fd);
		x->fd = -1;
	}
}

size_t index_count(const struct index *x)
{
	return x ? x->n : 0;
}

const struct crash_summary *index_at(const struct index *x, size_t i)
{
	return x && i < x->n ? &x->v[i] : NULL;
}

const struct crash_summary *index_find(const struct index *x, const char *id)
{
	bool found;
	size_t i;

	if (!x)
		return NULL;
	i = index_pos(x, id, &found);
	return found ? &x->v[i] : NULL;
}

void index_stats(const struct index *x, struct index_stats *ret)
{
	*ret = x->stats;
}

void index_free(struct index *x)
{
	if (!x)
		return;
	closep(&x->fd);
	free(x->v);
	strpool_free(&x->pool);
	free(x);
}
