// SPDX-License-Identifier: MIT
/*
 * pbvmcore: the vmcore library from the command line, for tests and for
 * repairing dumps by hand.
 *
 *   pbvmcore detect FILE              print the format
 *   pbvmcore unflatten IN OUT         flattened IN ("-" = stdin) -> kdump OUT
 *   pbvmcore fix-phys-base FILE       repair the kdump sub-header's phys_base
 *   pbvmcore vmcoreinfo FILE          print the vmcoreinfo text
 *
 * Exit status: 0 done, 1 failed, 2 usage. "fix-phys-base" prints
 * "phys_base 0xOLD -> 0xNEW (fixed)" or "phys_base 0xNEW (already right)".
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "vmcore.h"

/* A dump of a 16 TiB guest still fits. */
#define TOOL_MAX_SIZE (16ULL << 40)

static int usage(void)
{
	fprintf(stderr,
		"usage: pbvmcore detect FILE\n"
		"       pbvmcore unflatten IN|- OUT\n"
		"       pbvmcore fix-phys-base FILE\n"
		"       pbvmcore vmcoreinfo FILE\n");
	return 2;
}

static int open_or_complain(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC, 0600); /* dumps hold guest secrets */

	if (fd < 0)
		fprintf(stderr, "pbvmcore: %s: %m\n", path);
	return fd;
}

static int cmd_detect(const char *path)
{
	_cleanup_close_ int fd = open_or_complain(path, O_RDONLY);
	int r;

	if (fd < 0)
		return 1;
	r = vmcore_detect(fd);
	if (r < 0) {
		fprintf(stderr, "pbvmcore: %s: %s\n", path, strerror(-r));
		return 1;
	}
	printf("%s\n", vmcore_format_name(r));
	return 0;
}

static int cmd_unflatten(const char *in, const char *out)
{
	_cleanup_close_ int ifd = -1, ofd = -1;
	char err[256] = "";
	int r;

	ifd = strcmp(in, "-") == 0 ? dup(STDIN_FILENO) : open_or_complain(in, O_RDONLY);
	if (ifd < 0)
		return 1;
	ofd = open_or_complain(out, O_WRONLY | O_CREAT | O_TRUNC);
	if (ofd < 0)
		return 1;
	r = vmcore_unflatten(ifd, ofd, TOOL_MAX_SIZE, err, sizeof(err));
	if (r == 0 && fsync(ofd) < 0) {
		r = -errno;
		snprintf(err, sizeof(err), "fsync: %m");
	}
	if (r < 0) {
		fprintf(stderr, "pbvmcore: %s: %s\n", in, err);
		unlink(out); /* half a dump is no dump */
		return 1;
	}
	return 0;
}

static int cmd_fix_phys_base(const char *path)
{
	_cleanup_close_ int fd = open_or_complain(path, O_RDWR);
	uint64_t old, new;
	char err[256] = "";
	int r;

	if (fd < 0)
		return 1;
	r = vmcore_kdump_fix_phys_base(fd, &old, &new, err, sizeof(err));
	if (r == 0 && old != new && fsync(fd) < 0) {
		r = -errno;
		snprintf(err, sizeof(err), "fsync: %m");
	}
	if (r < 0) {
		fprintf(stderr, "pbvmcore: %s: %s\n", path, err);
		return 1;
	}
	if (old != new)
		printf("phys_base 0x%" PRIx64 " -> 0x%" PRIx64 " (fixed)\n", old, new);
	else
		printf("phys_base 0x%" PRIx64 " (already right)\n", new);
	return 0;
}

static int cmd_vmcoreinfo(const char *path)
{
	_cleanup_close_ int fd = open_or_complain(path, O_RDONLY);
	_cleanup_free_ char *text = NULL;
	char err[256] = "";
	size_t len;
	int r;

	if (fd < 0)
		return 1;
	r = vmcore_read_vmcoreinfo(fd, &text, &len, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "pbvmcore: %s: %s\n", path, err);
		return 1;
	}
	fwrite(text, 1, len, stdout);
	if (len && text[len - 1] != '\n')
		putchar('\n');
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "detect") == 0)
		return cmd_detect(argv[2]);
	if (argc == 4 && strcmp(argv[1], "unflatten") == 0)
		return cmd_unflatten(argv[2], argv[3]);
	if (argc == 3 && strcmp(argv[1], "fix-phys-base") == 0)
		return cmd_fix_phys_base(argv[2]);
	if (argc == 3 && strcmp(argv[1], "vmcoreinfo") == 0)
		return cmd_vmcoreinfo(argv[2]);
	return usage();
}
