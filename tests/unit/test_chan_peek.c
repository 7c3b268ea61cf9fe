// SPDX-License-Identifier: MIT
/*
 * Unit tests: the mailboxes' header pages mapped side by side
 * (hostd/chan_peek.c): the same bytes as the file, one region of
 * consecutive pages per 512, pages handed out again once freed.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "chan_internal.h"
#include "scratch.h"

#define T_FILES 600	/* more than one region */

static int fds[T_FILES];
static uint8_t *peeks[T_FILES];
static uint8_t *peeks_extra[1024 - T_FILES];

static int setup(void **state)
{
	(void)state;
	return scratch_setup("/tmp/pbpeekXXXXXX");
}

static int teardown(void **state)
{
	(void)state;
	return scratch_teardown();
}

/* True when @addr lies in a PROT_NONE private mapping with no file. */
static bool t_reserved(const void *addr)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	bool ok = false;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi, off, inode;
		char perms[8];

		if (sscanf(line, "%lx-%lx %7s %lx %*s %lu", &lo, &hi, perms, &off, &inode) != 5)
			continue;
		if ((uintptr_t)addr >= lo && (uintptr_t)addr < hi) {
			ok = !strcmp(perms, "---p") && inode == 0;
			break;
		}
	}
	fclose(f);
	return ok;
}

static void test_side_by_side(void **state)
{
	char p[160];

	(void)state;
	for (unsigned int i = 0; i < T_FILES; i++) {
		snprintf(p, sizeof(p), "%s/%u", scratch_dir, i);
		fds[i] = open(p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		assert_true(fds[i] >= 0);
		assert_int_equal(ftruncate(fds[i], PB_MBOX_SIZE_MIN), 0);
		assert_int_equal(pwrite(fds[i], &i, sizeof(i), 0x100), (ssize_t)sizeof(i));
		peeks[i] = chan_peek_map(fds[i]);
		assert_non_null(peeks[i]);
	}
	for (unsigned int i = 0; i < T_FILES; i++) {
		unsigned int v;

		/* The file's bytes, both ways. */
		memcpy(&v, peeks[i] + 0x100, sizeof(v));
		assert_int_equal(v, i);
		peeks[i][0x180] = (uint8_t)(i & 0xff);
		assert_int_equal(pread(fds[i], &v, 1, 0x180), 1);
		assert_int_equal(v & 0xff, i & 0xff);
		/* Consecutive within a region of 512, aligned to its size. */
		if (i % 512)
			assert_ptr_equal(peeks[i], peeks[i - 1] + PB_MBOX_PAGE);
		else
			assert_int_equal((uintptr_t)peeks[i] % (512 * PB_MBOX_PAGE), 0);
	}
	/* A page freed is reserved again, then handed out again. */
	chan_peek_unmap(peeks[7]);
	assert_true(t_reserved(peeks[7]));
	assert_int_equal(pwrite(fds[7], "\x77", 1, 0x100), 1);
	for (unsigned int i = 0; i < 1024 - T_FILES; i++)	/* fill the second region's rest... */
		assert_non_null(peeks_extra[i] = chan_peek_map(fds[i]));
	assert_ptr_equal(chan_peek_map(fds[7]), peeks[7]);	/* ...so the hole is next */
	assert_int_equal(peeks[7][0x100], 0x77);
	for (unsigned int i = 0; i < 1024 - T_FILES; i++)
		chan_peek_unmap(peeks_extra[i]);
	for (unsigned int i = 0; i < T_FILES; i++) {
		chan_peek_unmap(peeks[i]);
		close(fds[i]);
	}
	/* Freed pages are reserved again (---p), no file behind them. */
	assert_true(t_reserved(peeks[0]));
	assert_true(t_reserved(peeks[T_FILES - 1]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_side_by_side, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
