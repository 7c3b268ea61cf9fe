// SPDX-License-Identifier: MIT
/*
 * The broker channel's file (hostd/chan_internal.h): created or adopted,
 * mapped, and guarded against SIGBUS.
 *
 * The guard. The mailbox is a file that QEMU (and anyone who may write its
 * directory) can truncate while the daemon reads it; a page of a MAP_SHARED
 * mapping past the new end of file is SIGBUS on the next touch, and the
 * fstat() before each look (chan_file_intact()) cannot close that race.
 * The ways out, and why this one:
 *  - pread()/pwrite() instead of the mapping: the pb_mbox_* library works on
 *    the shared memory itself (ring indices with acquire/release order, the
 *    host's acknowledgements written in place while the guest writes beside
 *    them); a private copy per look would copy the rings every 10 ms and
 *    could not publish the host's writes atomically. Keeping the protocol
 *    library as it is rules that out.
 *  - sigsetjmp() around each look, siglongjmp() from the handler: a look
 *    delivers events, and their callbacks run the crash machine and write
 *    records; jumping out of the library or of a callback would leave the
 *    library's copies, the channel and the runner half-changed.
 *  - memfd seals (F_SEAL_SHRINK): only a memfd can be sealed, and the
 *    mailbox is a path that QEMU opens, often creates.
 *  - Chosen: the handler looks the faulting address up among our mappings
 *    and, when it is one, maps anonymous zero pages over that whole mapping
 *    (MAP_FIXED) and marks the file faulted. The faulting access restarts
 *    and reads zeros, which the library refuses like any garbage; the look
 *    finishes normally and chan_intact() gives the mailbox up. Nothing jumps,
 *    nothing is left half-done. A SIGBUS anywhere else gets the disposition
 *    it had before (a core dump). Wayland compositors guard their clients'
 *    shared-memory pools the same way.
 * mmap() is not on POSIX's async-signal-safe list, but on Linux it is one
 * system call with no user-space state, and the daemon is single-threaded:
 * the guard's list only changes between accesses, never under a fault.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

#include <panicbroker/mailbox.h>

#include "chan_internal.h"
#include "common.h"
#include "util.h"

static struct chan_file *chan_guard_head;
static struct sigaction chan_guard_old;

static void chan_guard_on_sigbus(int sig, siginfo_t *si, void *uctx)
{
	int saved = errno;
	const uint8_t *a = si->si_addr;

	(void)sig;
	(void)uctx;
	for (struct chan_file *f = chan_guard_head; f; f = f->guard_next) {
		uint8_t *m = f->map, *p = f->peek;
		size_t len = f->size;

		if (!m)
			continue;
		if (p && p != m && a >= p && a < p + PB_MBOX_PAGE)
			m = p, len = PB_MBOX_PAGE;	/* the sweep's window on the header */
		else if (a < m || a >= m + f->size)
			continue;
		if (mmap(m, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
			break;
		f->faulted = 1;
		errno = saved;
		return;		/* the access restarts, on zero pages */
	}
	/* Not a mailbox: as if the guard were not there; the access faults again. */
	(void)sigaction(SIGBUS, &chan_guard_old, NULL);
	errno = saved;
}

/* Installs the handler, again if someone replaced it since (a test harness). */
static int chan_guard_install(void)
{
	struct sigaction sa = { .sa_sigaction = chan_guard_on_sigbus,
				.sa_flags = SA_SIGINFO | SA_RESTART };
	struct sigaction cur;

	if (sigaction(SIGBUS, NULL, &cur) < 0)
		return -errno;
	if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == chan_guard_on_sigbus)
		return 0;
	if (sigemptyset(&sa.sa_mask) < 0 || sigaction(SIGBUS, &sa, &chan_guard_old) < 0)
		return -errno;
	return 0;
}

static void chan_guard_add(struct chan_file *f)
{
	f->faulted = 0;
	f->guard_prev = NULL;
	f->guard_next = chan_guard_head;
	if (chan_guard_head)
		chan_guard_head->guard_prev = f;
	chan_guard_head = f;
}

static void chan_guard_remove(struct chan_file *f)
{
	if (f->guard_prev)
		f->guard_prev->guard_next = f->guard_next;
	else if (chan_guard_head == f)
		chan_guard_head = f->guard_next;
	if (f->guard_next)
		f->guard_next->guard_prev = f->guard_prev;
	f->guard_next = f->guard_prev = NULL;
}

int chan_file_open(struct chan_file *f, const char *path, char *err, size_t errlen)
{
	_cleanup_close_ int fd = -1;
	bool created = false;
	struct stat st;
	void *map;
	int r;

	fd = open(path, O_RDWR | O_CLOEXEC | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
	if (fd >= 0)
		created = true;
	else if (errno == EEXIST)
		fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return err_set(err, errlen, -errno, "mailbox %s: %s", path, strerror(errno));
	if (created && ftruncate(fd, PB_MBOX_SIZE_DEFAULT) < 0) {
		r = -errno;

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
	r = chan_guard_install();
	if (r < 0)
		return err_set(err, errlen, r, "mailbox %s: cannot guard its mapping: %s", path,
			       strerror(-r));
	map = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return err_set(err, errlen, -errno, "mailbox %s: cannot map it: %s", path,
			       strerror(errno));
	f->peek = chan_peek_map(fd);
	if (!f->peek)
		f->peek = map;	/* slower checks, same answers */
	f->fd = TAKE_FD(fd);
	f->map = map;
	f->size = (uint32_t)st.st_size;
	chan_guard_add(f);
	return 0;
}

bool chan_file_intact(const struct chan_file *f)
{
	struct stat st;

	if (!f->map || f->faulted)
		return false;
	return fstat(f->fd, &st) == 0 && st.st_size >= (off_t)f->size;
}

int chan_file_zero(struct chan_file *f)
{
	if (fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, f->size) < 0)
		return -errno;
	return 0;
}

void chan_file_trim(struct chan_file *f)
{
	/* On a shared file mapping MADV_DONTNEED only unmaps pages (their
	 * contents are the file's); it fails only for a range we did not map. */
	if (f->map)
		(void)madvise(f->map, f->size, MADV_DONTNEED);
}

void chan_file_unmap(struct chan_file *f)
{
	if (!f->map)
		return;
	chan_guard_remove(f);
	if (f->peek != f->map)
		chan_peek_unmap(f->peek);
	f->peek = NULL;
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
