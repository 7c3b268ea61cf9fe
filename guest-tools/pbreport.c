// SPDX-License-Identifier: MIT
/*
 * pbreport: tell the host how kdump is going, from inside the kdump kernel.
 *
 *   pbreport [--device PATH] [--quiet] kdump start
 *   pbreport [--device PATH] [--quiet] kdump progress PCT
 *   pbreport [--device PATH] [--quiet] kdump done [--bytes N]
 *   pbreport [--device PATH] [--quiet] kdump failed REASON...
 *
 * One report is one write(2) of one ASCII command line to /dev/panicbroker,
 * the misc device panicbroker.ko creates in a kdump kernel; the module puts
 * it on the broker channel as a KDUMP_STATUS record (protocol/SPEC.md 4.4).
 * Every argument is checked before the device is opened. Built static and
 * small, for a kdump initramfs. Exit status: 0 sent, 1 not sent, 2 usage.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <panicbroker/mailbox.h>

#include "version.h"

#define DEFAULT_DEVICE	"/dev/panicbroker"
#define DEVICE_ENV	"PBREPORT_DEVICE"
#define REASON_MAX	128u	/* bytes, printable ASCII */
#define COMMAND_MAX	160u	/* the module's limit for one write */
#define EAGAIN_TRIES	50	/* the ring is full: retry this often, */
#define EAGAIN_WAIT_MS	20	/* this long apart (1 s in all) */

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

_Static_assert(REASON_MAX == PB_MBOX_REASON_MAX, "REASON_MAX is the wire's");
_Static_assert(sizeof("kdump failed ") - 1 + REASON_MAX + 1 <= COMMAND_MAX,
	       "the longest command fits in one write");

static bool quiet;

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: pbreport [--device PATH] [--quiet] kdump start\n"
		"       pbreport [--device PATH] [--quiet] kdump progress PCT\n"
		"       pbreport [--device PATH] [--quiet] kdump done [--bytes N]\n"
		"       pbreport [--device PATH] [--quiet] kdump failed REASON...\n"
		"\n"
		"Reports the kdump kernel's progress to the host over the panicbroker\n"
		"broker channel (a write to the device panicbroker.ko creates in a kdump\n"
		"kernel).\n"
		"\n"
		"  start           the dump is starting\n"
		"  progress PCT    PCT percent done (an integer 0..100)\n"
		"  done [--bytes N]  the dump is saved; N bytes written (0: unknown)\n"
		"  failed REASON...  the dump failed; the words are joined with spaces\n"
		"                  (printable ASCII, at most %u bytes)\n"
		"\n"
		"Options:\n"
		"  -d, --device PATH  the device (default $%s, else %s)\n"
		"  -q, --quiet        do not print why a report could not be sent\n"
		"                     (usage errors are still printed)\n"
		"  -h, --help         show this help\n"
		"      --version      show the version\n"
		"\n"
		"Exit status: 0 sent, 1 not sent, 2 usage error.\n",
		REASON_MAX, DEVICE_ENV, DEFAULT_DEVICE);
}

__attribute__((format(printf, 1, 2)))
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("pbreport: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see pbreport --help)\n", stderr);
	return EXIT_USAGE;
}

__attribute__((format(printf, 1, 2)))
static int fail(const char *fmt, ...)
{
	va_list ap;

	if (quiet)
		return EXIT_FAIL;
	fputs("pbreport: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_FAIL;
}

/* A decimal number of digits only (no sign, no spaces), at most max. */
static bool parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return false;
	for (; *s; s++) {
		unsigned int d;

		if (*s < '0' || *s > '9')
			return false;
		d = (unsigned int)(*s - '0');
		if (v > (max - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int send_report(const char *device, const char *cmd)
{
	size_t len = strlen(cmd);
	int fd, tries = 0;
	ssize_t n;

	/* O_APPEND: the module ignores it; a regular file as --device (for
	 * tests, or to see what would be sent) collects the reports in order */
	do
		fd = open(device, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY);
	while (fd < 0 && errno == EINTR);
	if (fd < 0) {
		int e = errno;

		if (e == ENOENT && strcmp(device, DEFAULT_DEVICE) == 0)
			return fail("no %s: panicbroker.ko is not loaded in this kdump "
				    "kernel (it creates the device only in a kdump kernel)",
				    device);
		if (e == ENOENT)
			return fail("no %s: %s", device, strerror(e));
		if (e == EACCES || e == EPERM)
			return fail("%s: %s (the device is root's only)", device, strerror(e));
		if (e == ENXIO || e == ENODEV)
			return fail("%s: %s (is panicbroker.ko being unloaded?)",
				    device, strerror(e));
		return fail("%s: %s", device, strerror(e));
	}

	for (;;) {
		n = write(fd, cmd, len);
		if (n >= 0 || errno == EINTR) {
			if (n >= 0)
				break;
			continue;
		}
		if (errno == EAGAIN && ++tries < EAGAIN_TRIES) {
			sleep_ms(EAGAIN_WAIT_MS);
			continue;
		}
		break;
	}
	if (n < 0) {
		int e = errno;

		close(fd);
		switch (e) {
		case ENOTCONN:
			return fail("no broker session: the VM has no panicbroker mailbox "
				    "device, or the host never formatted it; report not sent");
		case EAGAIN:
			return fail("the broker channel stayed full for %d ms; report not sent",
				    EAGAIN_TRIES * EAGAIN_WAIT_MS);
		case EINVAL:
			return fail("%s rejected the report as malformed (a pbreport and "
				    "panicbroker.ko that do not match?)", device);
		case EMSGSIZE:
			return fail("%s rejected the report as too long", device);
		default:
			return fail("writing to %s: %s", device, strerror(e));
		}
	}
	if (close(fd) < 0 && errno != EINTR)
		return fail("writing to %s: %s", device, strerror(errno));
	if ((size_t)n != len)
		return fail("%s took %zd of %zu bytes; report not sent whole", device, n, len);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	const char *device = getenv(DEVICE_ENV);
	char cmd[COMMAND_MAX + 1];
	int i = 1;

	if (!device || !*device)
		device = DEFAULT_DEVICE;

	/* options, before the command */
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--") == 0) {
			i++;
			break;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return EXIT_OK;
		} else if (strcmp(a, "--version") == 0) {
			printf("pbreport %s\n", PB_VERSION);
			return EXIT_OK;
		} else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
			quiet = true;
		} else if (strcmp(a, "-d") == 0 || strcmp(a, "--device") == 0) {
			if (++i >= argc)
				return usage_error("%s needs a path", a);
			device = argv[i];
		} else if (strncmp(a, "--device=", 9) == 0) {
			device = a + 9;
		} else {
			return usage_error("unknown option %s", a);
		}
		if (!*device)
			return usage_error("--device needs a non-empty path");
	}

	if (i >= argc)
		return usage_error("no command given");
	if (strcmp(argv[i], "kdump") != 0)
		return usage_error("unknown command %s (the only one is kdump)", argv[i]);
	if (++i >= argc)
		return usage_error("kdump needs start, progress, done or failed");

	const char *what = argv[i++];
	int rest = argc - i;

	if (strcmp(what, "start") == 0) {
		if (rest)
			return usage_error("kdump start takes no argument, not %s", argv[i]);
		snprintf(cmd, sizeof(cmd), "kdump start\n");
	} else if (strcmp(what, "progress") == 0) {
		uint64_t pct;

		if (rest != 1)
			return usage_error("kdump progress needs one PCT (0..100)");
		if (!parse_uint(argv[i], 100, &pct))
			return usage_error("kdump progress: PCT must be an integer 0..100, not '%s'",
					   argv[i]);
		snprintf(cmd, sizeof(cmd), "kdump progress %u\n", (unsigned int)pct);
	} else if (strcmp(what, "done") == 0) {
		uint64_t bytes = 0;

		if (rest >= 1) {
			const char *a = argv[i], *v = NULL;

			if (strcmp(a, "--bytes") == 0) {
				if (rest < 2)
					return usage_error("--bytes needs a number");
				v = argv[i + 1];
				rest -= 2;
			} else if (strncmp(a, "--bytes=", 8) == 0) {
				v = a + 8;
				rest -= 1;
			} else {
				return usage_error("kdump done takes only --bytes N, not %s", a);
			}
			if (rest)
				return usage_error("kdump done takes only --bytes N");
			if (!parse_uint(v, UINT64_MAX, &bytes))
				return usage_error("--bytes: N must be a decimal number 0..%llu, not '%s'",
						   (unsigned long long)UINT64_MAX, v);
		}
		snprintf(cmd, sizeof(cmd), "kdump done %llu\n", (unsigned long long)bytes);
	} else if (strcmp(what, "failed") == 0) {
		char reason[REASON_MAX + 1];
		size_t len = 0;

		if (rest && strcmp(argv[i], "--") == 0) {
			i++;
			rest--;
		}
		if (!rest)
			return usage_error("kdump failed needs a REASON");
		for (; i < argc; i++) {
			size_t w = strlen(argv[i]);
			const unsigned char *p = (const unsigned char *)argv[i];

			for (size_t k = 0; k < w; k++)
				if (p[k] < 0x20 || p[k] > 0x7e)
					return usage_error("kdump failed: REASON must be printable "
							   "ASCII; byte 0x%02x is not", p[k]);
			if (len + (len ? 1 : 0) + w > REASON_MAX)
				return usage_error("kdump failed: REASON is longer than %u bytes",
						   REASON_MAX);
			if (len)
				reason[len++] = ' ';
			memcpy(reason + len, argv[i], w);
			len += w;
		}
		reason[len] = '\0';
		if (!len)
			return usage_error("kdump failed needs a non-empty REASON");
		snprintf(cmd, sizeof(cmd), "kdump failed %s\n", reason);
	} else {
		return usage_error("unknown kdump report %s (start, progress, done or failed)",
				   what);
	}

	return send_report(device, cmd);
}
