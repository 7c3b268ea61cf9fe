// SPDX-License-Identifier: MIT
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "common.h"
#include "io.h"
#include "spool.h"
#include "util.h"

struct spool {
	char *path;
	int dirfd;
	int crashes_fd;
	int lock_fd;
};

int spool_dirfd(const struct spool *s)
{
	return s->dirfd;
}

const char *spool_path(const struct spool *s)
{
	return s->path;
}

void spool_close(struct spool *s)
{
	if (!s)
		return;
	closep(&s->crashes_fd);
	closep(&s->dirfd);
	closep(&s->lock_fd);
	free(s->path);
	free(s);
}

static int spool_mkdir(int atfd, const char *name)
{
	if (mkdirat(atfd, name, 0750) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int spool_open(const char *path, bool owner, struct spool **ret, char *err,
	       size_t errlen)
{
	struct spool *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	s->dirfd = s->crashes_fd = s->lock_fd = -1;
	s->path = strdup(path);
	if (!s->path) {
		r = -ENOMEM;
		goto fail;
	}
	if (owner && spool_mkdir(AT_FDCWD, path) < 0) {
		r = err_set(err, errlen, -errno, "cannot create spool %s: %s", path, strerror(errno));
		goto fail;
	}
	s->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0) {
		r = err_set(err, errlen, -errno, "cannot open spool %s: %s", path, strerror(errno));
		goto fail;
	}
	if (owner) {
		s->lock_fd = openat(s->dirfd, ".lock",
				    O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (s->lock_fd < 0) {
			r = err_set(err, errlen, -errno, "cannot create %s/.lock: %s", path,
				 strerror(errno));
			goto fail;
		}
		if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
			r = err_set(err, errlen, -errno, "spool %s is in use by another panicbrokerd",
				 path);
			goto fail;
		}
		if (spool_mkdir(s->dirfd, "crashes") < 0) {
			r = err_set(err, errlen, -errno, "cannot create %s/crashes: %s", path,
				 strerror(errno));
			goto fail;
		}
	}
	s->crashes_fd = openat(s->dirfd, "crashes",
			       O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (s->crashes_fd < 0) {
		r = err_set(err, errlen, -errno, "cannot open %s/crashes: %s", path,
			 strerror(errno));
		goto fail;
	}
	*ret = s;
	return 0;
fail:
	spool_close(s);
	return r;
}

bool spool_id_is_valid(const char *id)
{
	/* Ids are "<timestamp>-<vm name>[-N]": the VM name's alphabet. */
	return name_chars_ok(id, SPOOL_ID_MAX - 1);
}

static void spool_remove_stage(struct spool *s, const char *stage)
{
	int fd = openat(s->crashes_fd, stage,
			O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);

	if (fd >= 0) {
		unlinkat(fd, SPOOL_RECORD_NAME, 0);
		unlinkat(fd, "." SPOOL_RECORD_NAME ".tmp", 0);
		close(fd);
	}
	unlinkat(s->crashes_fd, stage, AT_REMOVEDIR);
}

int spool_publish_crash(struct spool *s, const char *id, json_object *record,
			int *ret_dirfd)
{
	char stage[SPOOL_ID_MAX + 8];
	_cleanup_close_ int fd = -1;
	int r;

	if (!spool_id_is_valid(id))
		return -EINVAL;
	if (faccessat(s->crashes_fd, id, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		return -EEXIST;
	snprintf(stage, sizeof(stage), ".new-%s", id);
	/* Left over if the daemon died while publishing: never visible. */
	spool_remove_stage(s, stage);
	if (mkdirat(s->crashes_fd, stage, 0750) < 0)
		return -errno;
	fd = openat(s->crashes_fd, stage,
		    O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		r = -errno;
		goto fail;
	}
	r = spool_write_record(fd, record);
	if (r < 0)
		goto fail;
	if (renameat2(s->crashes_fd, stage, s->crashes_fd, id,
		      RENAME_NOREPLACE) < 0) {
		r = -errno;
		goto fail;
	}
	/* The new directory entry must survive a crash too. */
	if (fsync(s->crashes_fd) < 0)
		return -errno;
	*ret_dirfd = TAKE_FD(fd);
	return 0;
fail:
	spool_remove_stage(s, stage);
	return r;
}

int spool_open_crash(struct spool *s, const char *id, int *ret_dirfd)
{
	int fd;

	if (!spool_id_is_valid(id))
		return -EINVAL;
	fd = openat(s->crashes_fd, id, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	*ret_dirfd = fd;
	return 0;
}

int spool_write_atomic(int dirfd, const char *name, const void *data,
		       size_t len, mode_t mode)
{
	char tmp[256];
	_cleanup_close_ int fd = -1;
	int r;

	if ((size_t)snprintf(tmp, sizeof(tmp), ".%s.tmp", name) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = openat(dirfd, tmp,
		    O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return -errno;
	r = io_write_full(fd, data, len);
	if (r < 0)
		goto fail;
	if (fsync(fd) < 0) {
		r = -errno;
		goto fail;
	}
	if (renameat(dirfd, tmp, dirfd, name) < 0) {
		r = -errno;
		goto fail;
	}
	if (fsync(dirfd) < 0)
		return -errno;
	return 0;
fail:
	unlinkat(dirfd, tmp, 0);
	return r;
}

int spool_write_record(int crash_dirfd, json_object *record)
{
	const char *text = json_object_to_json_string_ext(
		record, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
				JSON_C_TO_STRING_NOSLASHESCAPE);
	_cleanup_free_ char *buf = NULL;
	size_t n = strlen(text);

	if (n + 1 > SPOOL_RECORD_MAX)
		return -EFBIG;
	buf = malloc(n + 1);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, text, n);
	buf[n] = '\n';
	return spool_write_atomic(crash_dirfd, SPOOL_RECORD_NAME, buf, n + 1, 0640);
}

int spool_read_record(struct spool *s, const char *id, json_object **ret,
		      char *err, size_t errlen)
{
	_cleanup_close_ int dfd = -1, fd = -1;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	json_object *obj;
	int r;

	r = spool_open_crash(s, id, &dfd);
	if (r < 0) {
		return err_set(err, errlen, r, "no crash %s: %s", id, strerror(-r));
	}
	fd = openat(dfd, SPOOL_RECORD_NAME, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		r = -errno;
		return err_set(err, errlen, r, "%s/%s: %s", id, SPOOL_RECORD_NAME, strerror(errno));
	}
	buf = malloc(SPOOL_RECORD_MAX + 1);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n = read(fd, buf + len, SPOOL_RECORD_MAX + 1 - len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			return err_set(err, errlen, r, "%s/%s: %s", id, SPOOL_RECORD_NAME,
				 strerror(errno));
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > SPOOL_RECORD_MAX) {
			return err_set(err, errlen, -EFBIG, "%s/%s: larger than %d bytes", id,
				 SPOOL_RECORD_NAME, SPOOL_RECORD_MAX);
		}
	}
	buf[len] = '\0';
	obj = json_tokener_parse(buf);
	if (!obj || !json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		return err_set(err, errlen, -EBADMSG, "%s/%s: not a JSON object", id, SPOOL_RECORD_NAME);
	}
	*ret = obj;
	return 0;
}

static int spool_cmp_ids(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void spool_free_ids(char **ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

int spool_list(struct spool *s, char ***ret_ids, size_t *ret_n)
{
	char **ids = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;
	int fd;

	fd = openat(s->crashes_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d))) {
		/* A crash being published when its daemon died: never visible,
		 * and no later publish takes its name (ids are times). The
		 * owner sweeps it; a reader (pbctl) leaves it. */
		if (s->lock_fd >= 0 && strncmp(de->d_name, ".new-", 5) == 0) {
			spool_remove_stage(s, de->d_name);
			continue;
		}
		if (de->d_name[0] == '.' || !spool_id_is_valid(de->d_name))
			continue;
		if (n >= SPOOL_MAX_CRASHES)
			break;
		if (n == cap) {
			char **p;

			cap = cap ? cap * 2 : 64;
			p = realloc(ids, cap * sizeof(*ids));
			if (!p)
				goto oom;
			ids = p;
		}
		ids[n] = strdup(de->d_name);
		if (!ids[n])
			goto oom;
		n++;
	}
	closedir(d);
	if (n)
		qsort(ids, n, sizeof(*ids), spool_cmp_ids);
	*ret_ids = ids;
	*ret_n = n;
	return 0;
oom:
	closedir(d);
	spool_free_ids(ids, n);
	return -ENOMEM;
}
