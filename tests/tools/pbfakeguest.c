// SPDX-License-Identifier: MIT
/*
 * pbfakeguest: plays the guest side of the broker channel (protocol/SPEC.md)
 * on a mailbox file, for tests/e2e/test_mailbox.py. Links protocol/pb_mbox.c.
 *
 *   pbfakeguest FILE hello                 open a NORMAL session, wait for the ACK
 *   pbfakeguest FILE panic MSG             fill the slot, UNLOAD, bounded wait
 *   pbfakeguest FILE kdump-status STATE [PCT]   a KDUMP session, one report
 *   pbfakeguest FILE kdump-session PREV STEP...  a KDUMP session naming PREV
 *       (auto: the crashed session, found as the guest module finds it;
 *       else a number, 0 for none), then each STEP in turn: start,
 *       progress:PCT, done[:BYTES], failed[:REASON], sleep:SECONDS
 *   pbfakeguest FILE garbage-header|huge-length|flip-while-reading|ring-flood
 *   pbfakeguest FILE kdump-flood           KDUMP sessions back to back, 1.5 s
 *   pbfakeguest --many SECONDS MODE:FILE...   many hostile guests in one process:
 *       a step of each in turn, every 2 ms, for SECONDS (modes: hostile_modes[])
 *
 * The session of an earlier run is taken up from the guest control block
 * (the fake guest's own block: it is the only writer). Prints key=value lines.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <panicbroker/mailbox.h>

static void *mbox;
static __u32 mbox_size;
static struct pb_mbox_layout layout;

static __u64 now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000 + (__u64)ts.tv_nsec / 1000;
}

static void die(const char *what, const char *why)
{
	fprintf(stderr, "pbfakeguest: %s: %s\n", what, why ? why : "failed");
	exit(1);
}

static void map_file(const char *path)
{
	struct stat st;
	int fd = open(path, O_RDWR);

	if (fd < 0 || fstat(fd, &st) < 0)
		die(path, strerror(errno));
	mbox_size = (__u32)st.st_size;
	mbox = mmap(NULL, mbox_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mbox == MAP_FAILED)
		die("mmap", strerror(errno));
	close(fd);
}

static void read_layout(void)
{
	const char *reason = NULL;
	__u64 end = now_us() + 3000000;

	while (pb_mbox_read_layout(mbox, mbox_size, &layout, &reason) < 0) {
		if (now_us() > end)
			die("layout", reason);
		usleep(10000);
	}
}

static __u64 random_id(void)
{
	__u64 id = 0;
	int fd = open("/dev/urandom", O_RDONLY);

	if (fd < 0 || read(fd, &id, sizeof(id)) != sizeof(id))
		die("urandom", strerror(errno));
	close(fd);
	return id ? id : 1;
}

/* §4.2: returns 1 when the host accepted (and HELLO_ACK was read), else 0. */
static int open_session(struct pb_mbox_guest_info *g, __u32 role, __u64 prev,
			struct pb_mbox_ring *g2h, __u32 *unload_wait_ms)
{
	struct pb_mbox_hello_info hi = { 0 };
	struct pb_mbox_hello hello;
	struct pb_mbox_ring h2g;
	struct pb_mbox_host_info h;
	const char *reason = NULL;
	__u8 buf[PB_MBOX_RING_PAYLOAD_MAX];
	__u64 end;
	__u16 type;
	__u32 len;
	int r;

	memset(g, 0, sizeof(*g));
	g->version_major = PB_MBOX_VERSION_MAJOR;
	g->role = role;
	pb_mbox_guest_ctl_write(mbox, g);
	pb_mbox_ring_init(g2h, mbox, &layout, PB_MBOX_G2H);
	pb_mbox_ring_init(&h2g, mbox, &layout, PB_MBOX_H2G);
	pb_mbox_ring_reset(g2h);
	pb_mbox_ring_reset(&h2g);
	for (int i = 0; i < 16; i++)
		hi.boot_id[i] = (__u8)(0x10 + i);
	hi.crash_base = 0x2b000000;
	hi.crash_size = 0x10000000;
	hi.vmcoreinfo_paddr = 0x1234000;
	hi.flags = PB_MBOX_HELLO_CRASH_LOADED;
	strcpy(hi.release, "6.1.0-fake-amd64");
	strcpy(hi.driver_version, "fake-0.1");
	len = (__u32)pb_mbox_hello_encode(&hi, &hello);
	if (pb_mbox_ring_put(g2h, PB_MBOX_MSG_HELLO, &hello, len, &reason) < 0)
		die("HELLO", reason);
	g->session_id = random_id();
	g->session_generation = le64toh(layout.host_generation);
	g->prev_session = prev;
	g->state = PB_MBOX_GUEST_HELLO;
	pb_mbox_guest_ctl_write(mbox, g);

	*unload_wait_ms = PB_MBOX_UNLOAD_WAIT_MS;
	end = now_us() + 3000000;
	for (;;) {
		pb_mbox_host_ctl_read(mbox, &h);
		if (h.accepted_session == g->session_id)
			break;
		if (now_us() > end) {
			printf("accepted=0\n");
			return 0;
		}
		usleep(2000);
	}
	r = pb_mbox_ring_get(&h2g, buf, &type, &len, &reason);
	if (r <= 0 || type != PB_MBOX_MSG_HELLO_ACK) {
		printf("accepted=1\nhello_ack=bad\n");
		return 0;
	} else {
		struct pb_mbox_hello_ack_info ai;

		if (pb_mbox_hello_ack_decode(buf, len, &ai, &reason) < 0 ||
		    ai.session_id != g->session_id)
			die("HELLO_ACK", reason ? reason : "not for this session");
		*unload_wait_ms = ai.unload_wait_ms;
		printf("accepted=1\nsession=%016llx\nhost_poll_ms=%u\ndaemon_version=%s\n",
		       (unsigned long long)g->session_id, ai.poll_ms, ai.daemon_version);
	}
	g->state = PB_MBOX_GUEST_ACTIVE;
	pb_mbox_guest_ctl_write(mbox, g);
	return 1;
}

/* The session a previous run left ACTIVE on this format, if any. */
static int current_session(struct pb_mbox_guest_info *g)
{
	if (pb_mbox_guest_ctl_read(mbox, g, NULL) < 0)
		return 0;
	return g->state == PB_MBOX_GUEST_ACTIVE &&
	       g->session_generation == le64toh(layout.host_generation);
}

static int cmd_panic(const char *msg)
{
	struct pb_mbox_panic_info pi = { .uptime_ns = 123456789, .taint = 0x1,
					 .cpu = 1, .flags = PB_MBOX_PANIC_CRASH_LOADED };
	struct pb_mbox_guest_info g;
	struct pb_mbox_host_info h;
	struct pb_mbox_ring g2h;
	__u32 wait_ms = PB_MBOX_UNLOAD_WAIT_MS;
	char log[20 * 1024];
	size_t n = 0;
	__u64 t0, t1, waited = 0;
	int acked = 0, wait;

	if (!current_session(&g))
		open_session(&g, PB_MBOX_ROLE_NORMAL, 0, &g2h, &wait_ms);
	for (int i = 0; n + 80 < sizeof(log); i++)
		n += (size_t)snprintf(log + n, sizeof(log) - n,
				      "[%5d.000000] fake kernel log line %d\n", i, i);
	n += (size_t)snprintf(log + n, sizeof(log) - n, "Call Trace: fake_panic+0x0\n");
	t0 = now_us();
	if (pb_mbox_panic_write((__u8 *)mbox + le32toh(layout.panic_offset),
				le32toh(layout.panic_size), g.session_id, 1, &pi,
				msg, (__u32)strlen(msg), log, (__u32)n) < 0)
		die("panic_write", NULL);
	g.state = PB_MBOX_GUEST_UNLOADING;
	g.unload_seq++;
	pb_mbox_guest_ctl_write(mbox, &g);
	pb_mbox_host_ctl_read(mbox, &h);
	wait = h.state == PB_MBOX_HOST_ACTIVE && h.accepted_session == g.session_id;
	if (wait_ms < 1)
		wait_ms = 1;
	if (wait_ms > PB_MBOX_UNLOAD_WAIT_MAX_MS)
		wait_ms = PB_MBOX_UNLOAD_WAIT_MAX_MS;
	t1 = now_us();
	while (wait) {
		if (pb_mbox_unload_acked(mbox, g.session_id, g.unload_seq)) {
			acked = 1;
			break;
		}
		if (now_us() - t1 >= (__u64)wait_ms * 1000)
			break;
		usleep(50);
	}
	waited = now_us() - t1;
	if (acked) {
		g.state = PB_MBOX_GUEST_UNLOADED;
		pb_mbox_guest_ctl_write(mbox, &g);
	}
	pb_mbox_panic_set_timing((__u8 *)mbox + le32toh(layout.panic_offset),
				 (__u32)(now_us() - t0), acked ? (__u32)waited : ~0u);
	printf("waited=%d\nacked=%d\nrtt_us=%llu\nwait_bound_ms=%u\n", wait, acked,
	       (unsigned long long)waited, wait_ms);
	return 0;
}

/*
 * The crashed session as the kdump kernel's module finds it (SPEC §4.4,
 * guest-driver/pb_chan.c), before it writes the guest control block.
 */
static __u64 crashed_session(void)
{
	const struct pb_mbox_slot *slot =
		(const struct pb_mbox_slot *)((__u8 *)mbox + le32toh(layout.panic_offset));
	struct pb_mbox_guest_info g;

	if (pb_mbox_guest_ctl_read(mbox, &g, NULL) < 0 || !g.session_id)
		return 0;
	if (g.role == PB_MBOX_ROLE_KDUMP)
		return g.prev_session;
	if (g.state == PB_MBOX_GUEST_UNLOADING || g.state == PB_MBOX_GUEST_UNLOADED)
		return g.session_id;
	if (le32toh(__atomic_load_n(&slot->state, __ATOMIC_ACQUIRE)) == PB_MBOX_SLOT_COMPLETE &&
	    le64toh(slot->session_id) == g.session_id)
		return g.session_id;
	return 0;
}

/* Puts one KDUMP_STATUS; waits (bounded) until the host took it. */
static int kdump_put(struct pb_mbox_ring *g2h, const struct pb_mbox_kdump_info *k)
{
	struct pb_mbox_kdump_status ks;
	const char *reason = NULL;
	__u32 len = (__u32)pb_mbox_kdump_encode(k, &ks);

	if (pb_mbox_ring_put(g2h, PB_MBOX_MSG_KDUMP_STATUS, &ks, len, &reason) < 0)
		die("KDUMP_STATUS", reason);
	/* Like a module that stays loaded: let the host read it (bounded). */
	for (__u64 end = now_us() + 1000000; now_us() < end; usleep(1000))
		if (le32toh(__atomic_load_n(g2h->cons, __ATOMIC_ACQUIRE)) == g2h->pos)
			return 1;
	return 0;
}

static int cmd_kdump(int argc, char **argv)
{
	static const char *const names[] = { "", "start", "progress", "done", "failed" };
	struct pb_mbox_kdump_info k = { 0 };
	struct pb_mbox_guest_info g;
	struct pb_mbox_ring g2h;
	__u32 wait_ms;

	for (k.state = 1; k.state <= 4; k.state++)
		if (strcmp(argv[0], names[k.state]) == 0)
			break;
	if (k.state > 4)
		die("kdump-status", "STATE is start, progress, done or failed");
	if (argc > 1)
		k.percent = (__u32)atoi(argv[1]);
	if (k.state == PB_MBOX_KDUMP_FAILED)
		strcpy(k.reason, "fake failure");
	if (!open_session(&g, PB_MBOX_ROLE_KDUMP, crashed_session(), &g2h, &wait_ms))
		return 1;
	printf("consumed=%d\n", kdump_put(&g2h, &k));
	return 0;
}

/* One STEP of kdump-session: returns 0 when it is not one. */
static int kdump_step(const char *step, struct pb_mbox_ring *g2h, int *consumed)
{
	struct pb_mbox_kdump_info k = { 0 };
	const char *arg = strchr(step, ':');
	size_t n = arg ? (size_t)(arg - step) : strlen(step);

	if (arg)
		arg++;
	if (n == 5 && strncmp(step, "sleep", 5) == 0 && arg) {
		usleep((useconds_t)(atof(arg) * 1e6));
		return 1;
	}
	if (n == 5 && strncmp(step, "start", 5) == 0) {
		k.state = PB_MBOX_KDUMP_START;
	} else if (n == 8 && strncmp(step, "progress", 8) == 0 && arg) {
		k.state = PB_MBOX_KDUMP_PROGRESS;
		k.percent = (__u32)atoi(arg);
	} else if (n == 4 && strncmp(step, "done", 4) == 0) {
		k.state = PB_MBOX_KDUMP_DONE;
		k.percent = 100;
		k.bytes = arg ? strtoull(arg, NULL, 0) : 0;
	} else if (n == 6 && strncmp(step, "failed", 6) == 0) {
		k.state = PB_MBOX_KDUMP_FAILED;
		snprintf(k.reason, sizeof(k.reason), "%s", arg ? arg : "fake failure");
	} else {
		return 0;
	}
	*consumed &= kdump_put(g2h, &k);
	return 1;
}

static int cmd_kdump_session(int argc, char **argv)
{
	struct pb_mbox_guest_info g;
	struct pb_mbox_ring g2h;
	__u32 wait_ms;
	__u64 prev;
	int consumed = 1;

	prev = strcmp(argv[0], "auto") == 0 ? crashed_session() : strtoull(argv[0], NULL, 0);
	printf("prev=%016llx\n", (unsigned long long)prev);
	if (!open_session(&g, PB_MBOX_ROLE_KDUMP, prev, &g2h, &wait_ms))
		return 1;
	for (int i = 1; i < argc; i++)
		if (!kdump_step(argv[i], &g2h, &consumed))
			die(argv[i], "STEP is start, progress:PCT, done[:BYTES], failed[:REASON] or sleep:SECONDS");
	printf("consumed=%d\n", consumed);
	return 0;
}

/* A guest that reopens its KDUMP session as fast as the host accepts. */
static int cmd_kdump_flood(void)
{
	struct pb_mbox_kdump_info k = { .state = PB_MBOX_KDUMP_START };
	struct pb_mbox_kdump_status ks;
	struct pb_mbox_guest_info g;
	struct pb_mbox_ring g2h;
	__u64 prev = crashed_session(), end = now_us() + 1500000;
	__u32 wait_ms, len = (__u32)pb_mbox_kdump_encode(&k, &ks);
	unsigned int opened = 0;

	while (now_us() < end) {
		if (!open_session(&g, PB_MBOX_ROLE_KDUMP, prev, &g2h, &wait_ms))
			continue;
		opened++;
		pb_mbox_ring_put(&g2h, PB_MBOX_MSG_KDUMP_STATUS, &ks, len, NULL);
		usleep(12000);	/* a poll or so: most reports are read */
	}
	printf("opened=%u\n", opened);
	return 0;
}

static __le32 *index_of(__u32 off)
{
	return (__le32 *)((__u8 *)mbox + off);
}

/* Publishes @bytes raw at g2h offset 0 after HELLO's record. */
static __u8 *after_hello(struct pb_mbox_ring *g2h)
{
	return g2h->data + g2h->pos;
}

static int cmd_hostile(const char *mode)
{
	struct pb_mbox_guest_info g;
	struct pb_mbox_ring g2h;
	__u32 wait_ms;
	__u64 end;

	if (strcmp(mode, "garbage-header") == 0) {
		__u8 *p = (__u8 *)mbox + PB_MBOX_OFF_GUEST_CTL;

		for (int i = 0; i < 64; i++)
			p[i] = (__u8)(0xa5 ^ i);
		printf("done=1\n");
		return 0;
	}
	if (!open_session(&g, PB_MBOX_ROLE_NORMAL, 0, &g2h, &wait_ms))
		return 1;
	if (strcmp(mode, "huge-length") == 0) {
		struct pb_mbox_rec *rec = (struct pb_mbox_rec *)after_hello(&g2h);

		rec->len = htole32(0x7ffffff0);
		rec->type = htole16(PB_MBOX_MSG_KDUMP_STATUS);
		rec->seq = htole32(g2h.seq);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		__atomic_store_n(index_of(PB_MBOX_OFF_G2H_PROD), htole32(g2h.pos + 4096),
				 __ATOMIC_RELEASE);
	} else if (strcmp(mode, "flip-while-reading") == 0) {
		struct pb_mbox_rec *rec = (struct pb_mbox_rec *)after_hello(&g2h);
		volatile __u8 *body = (volatile __u8 *)(rec + 1);
		unsigned int x = 1;

		rec->len = htole32(256);
		rec->type = htole16(0x0077);
		rec->seq = htole32(g2h.seq);
		__atomic_store_n(index_of(PB_MBOX_OFF_G2H_PROD),
				 htole32(g2h.pos + 16 + 256), __ATOMIC_RELEASE);
		end = now_us() + 1500000;
		while (now_us() < end) {
			for (int i = 0; i < 256; i++) {
				x = x * 1103515245 + 12345;
				body[i] = (__u8)(x >> 16);
			}
			rec->crc32c = htole32(x);
			rec->len = htole32((x >> 8) & 1 ? 256 : 0x10000);
		}
	} else if (strcmp(mode, "ring-flood") == 0) {
		__u8 junk[512] = { 0 };
		unsigned int put = 0;

		end = now_us() + 1500000;
		while (now_us() < end) {
			if (pb_mbox_ring_put(&g2h, 0x0077, junk, sizeof(junk), NULL) == 0)
				put++;
		}
		printf("flooded=%u\n", put);
	} else {
		die(mode, "unknown command");
	}
	printf("done=1\n");
	return 0;
}

/* ---- many hostile guests in one process (--many) ---- */

struct hostile {
	const char *mode, *path;
	int fd;
	void *map;
	__u32 size;
	struct pb_mbox_layout layout;
	struct pb_mbox_guest_info g;
	struct pb_mbox_ring g2h;
	__u32 seq;
	unsigned long steps;
};

static const char *const hostile_modes[] = {
	"garbage",	/* random bytes over the guest control block */
	"torn",		/* a control block whose CRC never holds */
	"badver",	/* a session of an unknown major version */
	"hello-flood",	/* a new session every step, never waiting for the ACK */
	"huge-length",	/* a ring record claiming 2 GiB */
	"flip",		/* a ring record rewritten while the host reads it */
	"ring-flood",	/* the ring kept full of unknown records */
	"slot-spam",	/* a new panic record and UNLOAD every step */
	"unload-spam",	/* UNLOADING with a new unload_seq every step, no slot */
	"kdump-flood",	/* KDUMP sessions and reports, some out of range */
	"badslot",	/* a panic slot with lengths past its caps */
	"layout",	/* scribbles over the host's layout block */
	"truncate",	/* the file cut to nothing and grown back */
	"idle",		/* not hostile: a session opened, then left ACTIVE */
	NULL,
};

static void hostile_select(struct hostile *h)
{
	mbox = h->map;
	mbox_size = h->size;
	layout = h->layout;
}

/* §4.2 without waiting: HELLO in the ring, the control block says HELLO. */
static void hostile_session(struct hostile *h, __u32 role, __u64 prev)
{
	struct pb_mbox_hello_info hi = { 0 };
	struct pb_mbox_hello hello;
	struct pb_mbox_ring h2g;
	__u32 len;

	memset(&h->g, 0, sizeof(h->g));
	h->g.version_major = PB_MBOX_VERSION_MAJOR;
	h->g.role = role;
	pb_mbox_guest_ctl_write(mbox, &h->g);
	pb_mbox_ring_init(&h->g2h, mbox, &layout, PB_MBOX_G2H);
	pb_mbox_ring_init(&h2g, mbox, &layout, PB_MBOX_H2G);
	pb_mbox_ring_reset(&h->g2h);
	pb_mbox_ring_reset(&h2g);
	strcpy(hi.release, "6.1.0-hostile");
	strcpy(hi.driver_version, "hostile");
	len = (__u32)pb_mbox_hello_encode(&hi, &hello);
	(void)pb_mbox_ring_put(&h->g2h, PB_MBOX_MSG_HELLO, &hello, len, NULL);
	h->g.session_id = random_id();
	h->g.session_generation = le64toh(layout.host_generation);
	h->g.prev_session = prev;
	h->g.state = PB_MBOX_GUEST_HELLO;
	pb_mbox_guest_ctl_write(mbox, &h->g);
}

static void hostile_step(struct hostile *h)
{
	__u8 *ctl = (__u8 *)mbox + PB_MBOX_OFF_GUEST_CTL;
	__u8 *slot = (__u8 *)mbox + le32toh(layout.panic_offset);
	unsigned long n = h->steps++;

	if (strcmp(h->mode, "truncate") == 0) {
		/* Our own mapping is not touched: it would be SIGBUS here too. */
		if (ftruncate(h->fd, n % 2 ? (off_t)h->size : 0) < 0)
			die(h->path, strerror(errno));
		return;
	}
	if (strcmp(h->mode, "idle") == 0) {
		struct pb_mbox_host_info hc;

		if (h->g.state == PB_MBOX_GUEST_ACTIVE)
			return;
		if (n % 1500 == 0) {	/* (again) every 3 s until accepted */
			hostile_session(h, PB_MBOX_ROLE_NORMAL, 0);
			return;
		}
		pb_mbox_host_ctl_read(mbox, &hc);
		if (hc.accepted_session == h->g.session_id) {
			h->g.state = PB_MBOX_GUEST_ACTIVE;
			pb_mbox_guest_ctl_write(mbox, &h->g);
		}
		return;
	}
	if (strcmp(h->mode, "garbage") == 0) {
		for (int i = 0; i < 64; i++)
			ctl[i] = (__u8)random();
	} else if (strcmp(h->mode, "torn") == 0) {
		if (n == 0)
			hostile_session(h, PB_MBOX_ROLE_NORMAL, 0);
		h->g.state = PB_MBOX_GUEST_ACTIVE;
		pb_mbox_guest_ctl_write(mbox, &h->g);
		ctl[8 + n % 40] ^= 0x5a;
	} else if (strcmp(h->mode, "badver") == 0) {
		hostile_session(h, PB_MBOX_ROLE_NORMAL, 0);
		h->g.version_major = (__u16)(2 + n % 100);
		pb_mbox_guest_ctl_write(mbox, &h->g);
	} else if (strcmp(h->mode, "hello-flood") == 0) {
		hostile_session(h, n % 3 ? PB_MBOX_ROLE_NORMAL : PB_MBOX_ROLE_KDUMP, random_id());
	} else if (strcmp(h->mode, "huge-length") == 0 || strcmp(h->mode, "flip") == 0) {
		struct pb_mbox_rec *rec;

		if (n % 50 == 0)
			hostile_session(h, PB_MBOX_ROLE_NORMAL, 0);
		rec = (struct pb_mbox_rec *)(h->g2h.data + h->g2h.pos);
		rec->len = htole32(h->mode[0] == 'h' ? 0x7ffffff0 : (n % 2 ? 256 : 0x10000));
		rec->type = htole16(PB_MBOX_MSG_KDUMP_STATUS);
		rec->seq = htole32(h->g2h.seq);
		rec->crc32c = htole32((__u32)random());
		__atomic_store_n(index_of(PB_MBOX_OFF_G2H_PROD), htole32(h->g2h.pos + 4096),
				 __ATOMIC_RELEASE);
	} else if (strcmp(h->mode, "ring-flood") == 0) {
		__u8 junk[512] = { 0 };

		if (n % 200 == 0)
			hostile_session(h, PB_MBOX_ROLE_NORMAL, 0);
		for (int i = 0; i < 8; i++)
			(void)pb_mbox_ring_put(&h->g2h, 0x0077, junk, sizeof(junk), NULL);
	} else if (strcmp(h->mode, "slot-spam") == 0 || strcmp(h->mode, "unload-spam") == 0) {
		struct pb_mbox_panic_info pi = { .uptime_ns = n };
		char msg[64];

		if (n % 100 == 0)
			hostile_session(h, PB_MBOX_ROLE_NORMAL, 0);
		if (h->mode[0] == 's') {
			snprintf(msg, sizeof(msg), "Kernel panic - not syncing: hostile %lu", n);
			(void)pb_mbox_panic_write(slot, le32toh(layout.panic_size), h->g.session_id,
						  ++h->seq, &pi, msg, (__u32)strlen(msg), "", 0);
		}
		h->g.state = n % 2 ? PB_MBOX_GUEST_UNLOADING : PB_MBOX_GUEST_UNLOADED;
		h->g.unload_seq++;
		pb_mbox_guest_ctl_write(mbox, &h->g);
	} else if (strcmp(h->mode, "kdump-flood") == 0) {
		struct pb_mbox_kdump_info k = { .state = (__u32)(1 + n % 6),
						.percent = (__u32)(n % 300) };
		struct pb_mbox_kdump_status ks;
		__u32 len;

		if (n % 20 == 0) {
			hostile_session(h, PB_MBOX_ROLE_KDUMP, random_id());
			h->g.state = PB_MBOX_GUEST_ACTIVE;
			pb_mbox_guest_ctl_write(mbox, &h->g);
		}
		snprintf(k.reason, sizeof(k.reason), "hostile \x01\x7f %lu", n);
		len = (__u32)pb_mbox_kdump_encode(&k, &ks);
		(void)pb_mbox_ring_put(&h->g2h, PB_MBOX_MSG_KDUMP_STATUS, &ks, len, NULL);
	} else if (strcmp(h->mode, "badslot") == 0) {
		struct pb_mbox_slot *sh = (struct pb_mbox_slot *)slot;

		for (int i = 0; i < 64; i++)
			slot[i] = (__u8)random();
		__atomic_store_n(&sh->state, htole32(PB_MBOX_SLOT_COMPLETE), __ATOMIC_RELEASE);
		h->g.state = PB_MBOX_GUEST_UNLOADING;
		h->g.unload_seq++;
		if (n % 100 == 0)
			hostile_session(h, PB_MBOX_ROLE_NORMAL, 0);
		pb_mbox_guest_ctl_write(mbox, &h->g);
	} else if (strcmp(h->mode, "layout") == 0) {
		for (int i = 0; i < 64; i++)
			((__u8 *)mbox)[i] = (__u8)random();
	}
}

static volatile sig_atomic_t many_stopping;

static void many_stop(int sig)
{
	(void)sig;
	many_stopping = 1;
}

static int cmd_many(int argc, char **argv)
{
	struct hostile *hs = calloc((size_t)argc, sizeof(*hs));
	__u64 end = now_us() + (__u64)(atof(argv[0]) * 1e6);
	int n = argc - 1;

	if (!hs)
		die("--many", "out of memory");
	for (int i = 0; i < n; i++) {
		struct hostile *h = &hs[i];
		char *colon = strchr(argv[i + 1], ':');
		struct stat st;
		int k;

		if (!colon)
			die(argv[i + 1], "not MODE:FILE");
		*colon = '\0';
		h->mode = argv[i + 1];
		h->path = colon + 1;
		for (k = 0; hostile_modes[k] && strcmp(hostile_modes[k], h->mode); k++)
			;
		if (!hostile_modes[k])
			die(h->mode, "unknown mode");
		h->fd = open(h->path, O_RDWR);
		if (h->fd < 0 || fstat(h->fd, &st) < 0)
			die(h->path, strerror(errno));
		h->size = (__u32)st.st_size;
		h->map = mmap(NULL, h->size, PROT_READ | PROT_WRITE, MAP_SHARED, h->fd, 0);
		if (h->map == MAP_FAILED)
			die("mmap", strerror(errno));
		hostile_select(h);
		read_layout();
		h->layout = layout;
	}
	if (signal(SIGTERM, many_stop) == SIG_ERR || signal(SIGINT, many_stop) == SIG_ERR)
		die("signal", strerror(errno));
	while (now_us() < end && !many_stopping) {
		for (int i = 0; i < n; i++) {
			hostile_select(&hs[i]);
			hostile_step(&hs[i]);
		}
		usleep(2000);
	}
	for (int i = 0; i < n; i++) {
		if (strcmp(hs[i].mode, "idle") == 0) {
			printf("%s %s active=%d\n", hs[i].mode, hs[i].path,
			       hs[i].g.state == PB_MBOX_GUEST_ACTIVE);
			continue;
		}
		/* A truncating guest leaves its file whole, as QEMU would need it. */
		if (strcmp(hs[i].mode, "truncate") == 0 && ftruncate(hs[i].fd, hs[i].size) < 0)
			die(hs[i].path, strerror(errno));
		printf("%s %s steps=%lu\n", hs[i].mode, hs[i].path, hs[i].steps);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct pb_mbox_guest_info g;
	struct pb_mbox_ring g2h;
	__u32 wait_ms;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 3 && strcmp(argv[1], "--many") == 0)
		return cmd_many(argc - 2, argv + 2);
	if (argc < 3) {
		fprintf(stderr, "usage: pbfakeguest FILE hello|panic MSG|kdump-status STATE [PCT]|kdump-session PREV STEP...|kdump-flood|garbage-header|huge-length|flip-while-reading|ring-flood\n");
		return 2;
	}
	map_file(argv[1]);
	read_layout();
	if (strcmp(argv[2], "hello") == 0)
		return open_session(&g, PB_MBOX_ROLE_NORMAL, 0, &g2h, &wait_ms) ? 0 : 1;
	if (strcmp(argv[2], "panic") == 0 && argc > 3)
		return cmd_panic(argv[3]);
	if (strcmp(argv[2], "kdump-status") == 0 && argc > 3)
		return cmd_kdump(argc - 3, argv + 3);
	if (strcmp(argv[2], "kdump-session") == 0 && argc > 3)
		return cmd_kdump_session(argc - 3, argv + 3);
	if (strcmp(argv[2], "kdump-flood") == 0)
		return cmd_kdump_flood();
	return cmd_hostile(argv[2]);
}
