// SPDX-License-Identifier: MIT
/*
 * pbfill: make a test-bed guest "busy" before it panics, so that a memory
 * snapshot has real work to do (tests/bench/snapshot-bench.py --busy).
 *
 *     pbfill [PERCENT]        (default 85: PERCENT of MemAvailable)
 *
 * Allocates PERCENT of MemAvailable as anonymous memory and fills it, in
 * 2 MiB chunks interleaved T R T Z (so the kinds are mixed through memory,
 * not sorted), with:
 *   - T, half: log-like text (timestamps, device names, words, numbers, hex),
 *     which compresses about 3-4x per 4 KiB page with zlib, like real logs;
 *     a pool of generated lines is copied across the region at a shifting
 *     offset, so no two pages are the same and each one is real text;
 *   - R, a quarter: pseudo-random bytes (xorshift64*), incompressible;
 *   - Z, a quarter: zeros, written (so the pages are allocated and counted in
 *     use by the guest) -- a dump still sees them as zero pages (kdump: one
 *     shared descriptor each; ELF: written out in full).
 * Then it forks: the child holds the memory (sleeps for ever, in its own
 * session), the parent prints
 *     PBTEST: filled N MiB text T random R zero Z in S s
 * and exits 0 (1 with "PBTEST: fill failed: WHY"). Static, for the guests'
 * busybox initramfs (tests/guest/build-guests.sh puts it in as /bin/pbfill).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (2UL << 20)
#define POOL (4UL << 20)

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static inline uint64_t rng(void)
{
	uint64_t x = rng_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545f4914f6cdd1dULL;
}

/* log-like lines: a few programs, each with its usual messages, numbers varying */
static const char *const progs[] = {
	"kernel: [%6u.%06u]", "sshd[%u]:", "systemd[1]:", "nginx[%u]:",
	"postgres[%u]:", "CRON[%u]:", "dockerd[%u]:", "app-worker[%u]:",
};
static const char *const msgs[] = {
	"Accepted publickey for deploy from 10.0.%u.%u port %u ssh2",
	"pam_unix(sshd:session): session opened for user deploy(uid=1000) by (uid=0)",
	"Started Session %u of User deploy.",
	"Starting Daily apt upgrade and clean activities...",
	"10.0.%u.%u - - \"GET /api/v1/items/%u HTTP/1.1\" 200 %u \"-\" "
	"\"python-requests/2.28.1\"",
	"10.0.%u.%u - - \"POST /api/v1/orders HTTP/1.1\" 201 %u \"-\" "
	"\"Mozilla/5.0 (X11; Linux x86_64)\"",
	"LOG:  checkpoint starting: time",
	"LOG:  checkpoint complete: wrote %u buffers (%u.%u%%); 0 WAL file(s) added, "
	"0 removed, %u recycled",
	"LOG:  duration: %u.%u ms  statement: SELECT id, name, price FROM items WHERE id = %u",
	"(root) CMD (   cd / && run-parts --report /etc/cron.hourly)",
	"level=info msg=\"ignoring event\" container=%08x module=libcontainerd namespace=moby",
	"INFO  request completed in %u ms status=200 path=/healthz worker=%u",
	"WARN  cache miss for key user:%u:profile, fetching from database",
	"ERROR failed to connect to redis at 10.0.0.%u:6379: connection refused, retrying in %u s",
	"EXT4-fs (vda1): mounted filesystem with ordered data mode. Quota mode: none.",
	"e1000 0000:00:03.0 eth0: NIC Link is Up 1000 Mbps Full Duplex, Flow Control: RX",
	"audit: type=1400 audit(%u.%u:%u): apparmor=\"STATUS\" operation=\"profile_load\" "
	"name=\"nginx\" pid=%u",
	"Out of memory: Killed process %u (java) total-vm:%ukB, anon-rss:%ukB",
};

/* one log-like line at p (at most 250 bytes); returns its length */
static size_t line(char *p, uint64_t n)
{
	static const char *const host[] = { "web-01", "web-02", "db-01", "cache-3" };
	uint64_t r = rng();
	unsigned a = (unsigned)(r >> 8) % 250, b = (unsigned)(r >> 16) % 250;
	unsigned c = (unsigned)(r >> 24) % 60000, d = (unsigned)(r >> 40) % 100;
	int pi = (int)((r >> 48) % (sizeof(progs) / sizeof(progs[0])));
	int len = snprintf(p, 250, "Dec  1 %02u:%02u:%02u %s ", (unsigned)(n / 3600) % 24,
			   (unsigned)(n / 60) % 60, (unsigned)n % 60, host[(r >> 4) & 3]);

	len += snprintf(p + len, 250 - len, progs[pi], 1000 + pi * 37, (unsigned)(r % 1000000));
	p[len++] = ' ';
	len += snprintf(p + len, 250 - len, msgs[(r >> 52) % (sizeof(msgs) / sizeof(msgs[0]))],
			a, b, c, d, a, b);
	if (len > 248)
		len = 248;
	p[len++] = '\n';
	return (size_t)len;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned long mem_available_kib(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char buf[256];
	unsigned long v = 0;

	if (!f)
		return 0;
	while (fgets(buf, sizeof(buf), f))
		if (sscanf(buf, "MemAvailable: %lu kB", &v) == 1)
			break;
	fclose(f);
	return v;
}

static void fill_random(uint64_t *p, size_t n)
{
	uint64_t x = rng_state;

	for (size_t i = 0; i < n / 8; i++) {
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		p[i] = x * 0x2545f4914f6cdd1dULL;
	}
	rng_state = x;
}

/* the mix over mem[0..total) (total a multiple of 4 chunks) */
static int fill(char *mem, size_t total, size_t *text, size_t *rnd, size_t *zero)
{
	char *pool = malloc(POOL + 512);

	if (!pool)
		return -1;
	size_t plen = 0;

	for (uint64_t n = 0; plen < POOL; n += rng() % 3)
		plen += line(pool + plen, n);
	plen = POOL;

	size_t shift = 0;

	for (size_t off = 0; off < total; off += CHUNK) {
		char *c = mem + off;

		switch ((off / CHUNK) & 3) {
		case 0:
		case 2:
			/* the pool at a shifting start: 4 KiB pages differ from each other */
			for (size_t done = 0; done < CHUNK;) {
				size_t start = shift % (plen - 4096);
				size_t n = plen - start < CHUNK - done ? plen - start : CHUNK - done;

				memcpy(c + done, pool + start, n);
				done += n;
				shift += 4096 * 37 + 113;
			}
			*text += CHUNK;
			break;
		case 1:
			fill_random((uint64_t *)c, CHUNK);
			*rnd += CHUNK;
			break;
		default:
			memset(c, 0, CHUNK); /* a write: the pages are allocated */
			*zero += CHUNK;
		}
	}
	free(pool);
	return 0;
}

int main(int argc, char **argv)
{
	int pct = argc > 1 ? atoi(argv[1]) : 85;
	int fds[2];
	pid_t pid;

	if (argc > 2 && !strcmp(argv[1], "--stdout")) {
		/* the mix of MIB MiB on stdout, to check it on a host */
		size_t total = (size_t)atol(argv[2]) << 20, t = 0, r = 0, z = 0;
		char *mem;

		total = total / (4 * CHUNK) * (4 * CHUNK);
		mem = malloc(total ? total : 1);
		if (!mem || fill(mem, total, &t, &r, &z) < 0)
			return 1;
		return fwrite(mem, 1, total, stdout) == total ? 0 : 1;
	}
	if (pct <= 0 || pct > 95) {
		printf("PBTEST: fill failed: PERCENT must be 1..95, not %s\n", argv[1]);
		return 1;
	}
	if (pipe(fds) < 0 || (pid = fork()) < 0) {
		printf("PBTEST: fill failed: %s\n", strerror(errno));
		return 1;
	}
	if (pid > 0) {
		char msg[256];
		ssize_t n;
		size_t got = 0;

		close(fds[1]);
		while (got < sizeof(msg) - 1 && (n = read(fds[0], msg + got, sizeof(msg) - 1 - got)) > 0)
			got += (size_t)n;
		msg[got] = 0;
		if (got == 0) {
			int st = 0;

			waitpid(pid, &st, WNOHANG);
			printf("PBTEST: fill failed: the filler died (status 0x%x)\n", st);
			return 1;
		}
		fputs(msg, stdout);
		return strncmp(msg, "PBTEST: filled ", 15) ? 1 : 0;
	}

	/* child: fill, report, hold */
	close(fds[0]);
	setsid();
	double t0 = now();
	unsigned long avail = mem_available_kib();
	size_t total = (size_t)avail * 1024 / 100 * (size_t)pct;

	total = total / (4 * CHUNK) * (4 * CHUNK);
	if (total == 0) {
		dprintf(fds[1], "PBTEST: fill failed: MemAvailable %lu kB\n", avail);
		return 1;
	}
	char *mem = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	size_t text = 0, rnd = 0, zero = 0;

	if (mem == MAP_FAILED || fill(mem, total, &text, &rnd, &zero) < 0) {
		dprintf(fds[1], "PBTEST: fill failed: %zu MiB: %s\n", total >> 20, strerror(errno));
		return 1;
	}
	dprintf(fds[1], "PBTEST: filled %zu MiB text %zu random %zu zero %zu in %.1f s\n",
		total >> 20, text >> 20, rnd >> 20, zero >> 20, now() - t0);
	close(fds[1]);
	close(0);
	close(1);
	close(2);
	for (;;)
		pause();
}
