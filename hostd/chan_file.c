// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

#include <panicbroker/mailbox.h>

#include "chan_internal.h"
#include "common.h"
#include "util.h"

int chan_file_open(struct chan_file *f, const char *path, char *err, size_t errlen)
{
	_cleanup_close_ int fd = -1;
	bool created = false;
	struct stat st;
	void *map;

	fd = open(path, O_RDWR | O_CLOEXEC | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
	if (fd >= 0)
		created = true;
	else if (errno == EEXIST)
		fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return err_set(err, errlen, -errno, "mailbox %s: %s", path, strerror(errno));
	if (created && ftruncate(fd, PB_MBOX_SIZE_DEFAULT) < 0) {
		int r = -errno;

		/* Ours, and of no use unsized; a failed unlink leaves a file the
		 * next start refuses as too small, which says what is wrong. */
		(void)unlink(path);
		return err_set(err, errlen, r, "mailbox %s: cannot size it: %s", path,
			       strerror(-r));
	}
	if (fstat(fd, &st) < 0)
		return err_set(err, errlen, -errno, "mailbox %s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return err_set(err, errlen, -EINVAL, "mailbox %s is not a regular file", path);
	/* Never truncate an existing file: QEMU may have it mapped. */
	if (st.st_size < PB_MBOX_SIZE_MIN || st.st_size > PB_MBOX_SIZE_MAX ||
	    st.st_size % PB_MBOX_PAGE)
		return err_set(err, errlen, -EINVAL,
			       "mailbox %s is %lld bytes; it must be a multiple of 4 KiB from 256 KiB to 64 MiB (QEMU: a power of two)",
			       path, (long long)st.st_size);
	map = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return err_set(err, errlen, -errno, "mailbox %s: cannot map it: %s", path,
			       strerror(errno));
	f->fd = TAKE_FD(fd);
	f->map = map;
	f->size = (uint32_t)st.st_size;
	return 0;
}

bool chan_file_intact(const struct chan_file *f)
{
	struct stat st;

	if (!f->map)
		return false;
	return fstat(f->fd, &st) == 0 && st.st_size >= (off_t)f->size;
}

void chan_file_unmap(struct chan_file *f)
{
	if (!f->map)
		return;
	/* munmap() of a range we mapped only fails on a bug: nothing to do then. */
	(void)munmap(f->map, f->size);
	f->map = NULL;
}

void chan_file_close(struct chan_file *f)
{
	chan_file_unmap(f);
	closep(&f->fd);
}

uint64_t chan_file_clock_generation(void)
{
	struct timespec ts = { 0 };

	/* CLOCK_REALTIME cannot fail with a valid pointer; were it to, 1 is
	 * still a generation (a guest of the old one opens a new session). */
	if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
		return 1;
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}
