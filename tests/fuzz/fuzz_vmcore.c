// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: arbitrary bytes as a guest memory dump. They go through
 * vmcore_unflatten() (as a flattened stream) and, both as they are and as
 * the reassembled file, through detection, the vmcoreinfo readers and the
 * phys_base repair. Besides the sanitizers' checks: every failure carries a
 * message, nothing is written past the cap, a returned vmcoreinfo is as
 * long as it says.
 *
 * Seeds: tests/fuzz/corpus/vmcore/ (tests/tools/make-test-dump.py DIR).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmcore.h"

#define CAP (16 * 1024 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int r, const char *err)
{
	if (r < 0 && err[0] == '\0')
		__builtin_trap(); /* a failure without its reason */
}

static void probe(int fd)
{
	char *text = NULL, err[256];
	uint64_t old, new;
	size_t len;
	int r;

	(void)vmcore_detect(fd);
	(void)vmcore_is_flattened(fd);
	err[0] = '\0';
	r = vmcore_read_vmcoreinfo(fd, &text, &len, err, sizeof(err));
	check(r, err);
	if (r == 0) {
		const char *v;
		size_t vlen;

		if (!text || strlen(text) != len || len > VMCORE_VMCOREINFO_MAX)
			__builtin_trap();
		(void)vmcore_vmcoreinfo_value(text, len, "NUMBER(phys_base)", &v, &vlen);
		free(text);
	}
	err[0] = '\0';
	r = vmcore_kdump_fix_phys_base(fd, &old, &new, err, sizeof(err));
	check(r, err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int in = -1, out = -1;
	struct stat st;
	char err[256];
	int r;

	if (in < 0) {
		in = memfd_create("fuzz-in", MFD_CLOEXEC);
		out = memfd_create("fuzz-out", MFD_CLOEXEC);
		if (in < 0 || out < 0)
			abort();
	}
	if (ftruncate(in, 0) < 0 || lseek(in, 0, SEEK_SET) < 0)
		abort();
	if (size && pwrite(in, data, size, 0) != (ssize_t)size)
		abort();

	err[0] = '\0';
	r = vmcore_unflatten(in, out, CAP, err, sizeof(err));
	check(r, err);
	if (fstat(out, &st) < 0 || st.st_size > CAP)
		__builtin_trap();
	if (r == 0)
		probe(out);
	probe(in);
	return 0;
}
