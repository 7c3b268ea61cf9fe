// SPDX-License-Identifier: MIT
/*
 * Unit tests: the host end of the broker channel (hostd/chan.c) on a real
 * mailbox file in a scratch directory and a real sd-event loop. The test
 * plays the guest with the pb_mbox_* guest-side functions, as
 * tests/tools/pbfakeguest.c does, and checks the typed events.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <panicbroker/mailbox.h>

#include "chan.h"
#include "evutil.h"
#include "scratch.h"

#define T_TIMEOUT_USEC (3 * 1000000ULL)
#define T_MAX_EVENTS 256

/* A copy of one event: its pointers are valid during the callback only. */
struct t_event {
	enum chan_event_type type;
	uint64_t session, prev_session, count, at_usec;
	uint32_t role, seq, unload_seq;
	uint64_t guest_session;		/* 0: no guest */
	char release[PB_MBOX_RELEASE_MAX + 1];
	char msg[128], source[96], what[64], reason[PB_MBOX_REASON_MAX + 1];
	struct chan_timing timing;
	uint32_t state, percent;
	uint64_t bytes;
};

static sd_event *loop;
static struct chan *ch;
static char path[128];
static struct t_event evs[T_MAX_EVENTS];
static unsigned int n_ev, n_end;

/* The guest's side: its own mapping and private state. */
static uint8_t *mb;
static uint32_t mb_size;
static struct pb_mbox_layout lay;
static struct pb_mbox_guest_info g;
static struct pb_mbox_ring g2h, h2g;

static uint64_t mono_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void t_copy(char *dst, size_t n, const char *s, size_t len)
{
	snprintf(dst, n, "%.*s", (int)len, s ? s : "");
}

static void t_on_event(void *ud, const struct chan_event *ev)
{
	struct t_event *t;

	(void)ud;
	assert_true(n_ev < T_MAX_EVENTS);
	t = &evs[n_ev++];
	memset(t, 0, sizeof(*t));
	t->type = ev->type;
	t->session = ev->session;
	t->prev_session = ev->prev_session;
	t->role = ev->role;
	t->count = ev->count;
	t->unload_seq = ev->unload_seq;
	t->at_usec = ev_now_usec(loop);
	t->timing = ev->timing;
	t->state = ev->report.state;
	t->percent = ev->report.percent;
	t->bytes = ev->report.bytes;
	if (ev->report.reason)
		t_copy(t->reason, sizeof(t->reason), ev->report.reason, strlen(ev->report.reason));
	if (ev->guest) {
		t->guest_session = ev->guest->session;
		t_copy(t->release, sizeof(t->release), ev->guest->hello.release,
		       strlen(ev->guest->hello.release));
	}
	if (ev->panic) {
		t->seq = ev->panic->seq;
		t_copy(t->msg, sizeof(t->msg), ev->panic->msg, ev->panic->msg_len);
		t_copy(t->source, sizeof(t->source), ev->panic->source, strlen(ev->panic->source));
		if (ev->panic->guest)
			t->guest_session = ev->panic->guest->session;
	}
	if (ev->what)
		t_copy(t->what, sizeof(t->what), ev->what, strlen(ev->what));
	if (ev->type == CHAN_EV_MALFORMED && ev->reason)
		t_copy(t->reason, sizeof(t->reason), ev->reason, strlen(ev->reason));
}

static void t_on_end(void *ud)
{
	(void)ud;
	n_end++;
}

static const struct chan_ops t_ops = { .event = t_on_event, .end = t_on_end };

static unsigned int t_count(enum chan_event_type type)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < n_ev; i++)
		n += evs[i].type == type;
	return n;
}

/* The @nth (from 0) event of @type, or NULL. */
static const struct t_event *t_find(enum chan_event_type type, unsigned int nth)
{
	for (unsigned int i = 0; i < n_ev; i++)
		if (evs[i].type == type && nth-- == 0)
			return &evs[i];
	return NULL;
}

/* Runs the loop until @n events of @type came, or @timeout_usec passed. */
static bool t_run_until(enum chan_event_type type, unsigned int n, uint64_t timeout_usec)
{
	uint64_t end = mono_usec() + timeout_usec;

	while (t_count(type) < n && mono_usec() < end)
		assert_true(sd_event_run(loop, 5000) >= 0);
	return t_count(type) >= n;
}

static void t_run_for(uint64_t usec)
{
	uint64_t end = mono_usec() + usec;

	while (mono_usec() < end)
		assert_true(sd_event_run(loop, 5000) >= 0);
}

static int setup(void **state)
{
	(void)state;
	if (scratch_setup("/tmp/pbchanXXXXXX") < 0 || sd_event_new(&loop) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/vm.mbox", scratch_dir);
	n_ev = n_end = 0;
	ch = NULL;
	mb = NULL;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	chan_free(ch);
	ch = NULL;
	if (mb)
		munmap(mb, mb_size);
	mb = NULL;
	loop = sd_event_unref(loop);
	return scratch_teardown();
}

/* Maps the file as the guest does and reads the layout the host wrote. */
static void guest_map(void)
{
	struct stat st;
	int fd = open(path, O_RDWR | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	mb_size = (uint32_t)st.st_size;
	mb = mmap(NULL, mb_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(mb != MAP_FAILED);
	close(fd);
	assert_int_equal(pb_mbox_read_layout(mb, mb_size, &lay, NULL), 0);
}

static void t_open_start(void)
{
	char err[256] = "";

	assert_int_equal(chan_open(loop, "vm1", path, &t_ops, NULL, &ch, err, sizeof(err)), 0);
	assert_int_equal(chan_start(ch), 0);
	guest_map();
}

/* SPEC §4.2 steps 2-4: HELLO on the ring, then the control block (no wait). */
static void guest_hello(uint32_t role, uint64_t id, uint64_t prev)
{
	struct pb_mbox_hello_info hi = { 0 };
	struct pb_mbox_hello hello;
	uint32_t len;

	memset(&g, 0, sizeof(g));
	g.version_major = PB_MBOX_VERSION_MAJOR;
	g.role = role;
	pb_mbox_guest_ctl_write(mb, &g);
	pb_mbox_ring_init(&g2h, mb, &lay, PB_MBOX_G2H);
	pb_mbox_ring_init(&h2g, mb, &lay, PB_MBOX_H2G);
	pb_mbox_ring_reset(&g2h);
	pb_mbox_ring_reset(&h2g);
	for (int i = 0; i < 16; i++)
		hi.boot_id[i] = (uint8_t)(0x10 + i);
	hi.flags = PB_MBOX_HELLO_CRASH_LOADED;
	strcpy(hi.release, "6.1.0-test-amd64");
	strcpy(hi.driver_version, "test-0.1");
	len = (uint32_t)pb_mbox_hello_encode(&hi, &hello);
	assert_int_equal(pb_mbox_ring_put(&g2h, PB_MBOX_MSG_HELLO, &hello, len, NULL), 0);
	g.session_id = id;
	g.session_generation = le64toh(lay.host_generation);
	g.prev_session = prev;
}

static void guest_publish(uint32_t state)
{
	g.state = state;
	pb_mbox_guest_ctl_write(mb, &g);
}

static void guest_kdump(uint32_t state, uint32_t percent, const char *reason)
{
	struct pb_mbox_kdump_info k = { .state = state, .percent = percent };
	struct pb_mbox_kdump_status ks;
	uint32_t len;

	snprintf(k.reason, sizeof(k.reason), "%s", reason ? reason : "");
	len = (uint32_t)pb_mbox_kdump_encode(&k, &ks);
	assert_int_equal(pb_mbox_ring_put(&g2h, PB_MBOX_MSG_KDUMP_STATUS, &ks, len, NULL), 0);
}

/* A NORMAL session, accepted and ACTIVE. */
static void guest_session(uint64_t id)
{
	guest_hello(PB_MBOX_ROLE_NORMAL, id, 0);
	guest_publish(PB_MBOX_GUEST_HELLO);
	assert_true(t_run_until(CHAN_EV_SESSION, t_count(CHAN_EV_SESSION) + 1, T_TIMEOUT_USEC));
	guest_publish(PB_MBOX_GUEST_ACTIVE);
}

static void guest_panic(uint32_t seq, const char *msg)
{
	struct pb_mbox_panic_info pi = { .uptime_ns = 123, .taint = 1, .cpu = 1 };
	static const char log[] = "[ 1.0] a log line\nCall Trace: test_panic+0x0\n";

	assert_true(pb_mbox_panic_write(mb + le32toh(lay.panic_offset),
					le32toh(lay.panic_size), g.session_id, seq, &pi,
					msg, (uint32_t)strlen(msg), log,
					(uint32_t)strlen(log)) > 0);
	g.unload_seq++;
	guest_publish(PB_MBOX_GUEST_UNLOADING);
}

static void test_open_creates(void **state)
{
	struct pb_mbox_host_info h;
	struct stat st;
	uint32_t role = 7;

	(void)state;
	t_open_start();
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_size, PB_MBOX_SIZE_DEFAULT);
	assert_int_equal(st.st_mode & 07777, 0600);
	pb_mbox_host_ctl_read(mb, &h);
	assert_int_equal(h.state, PB_MBOX_HOST_READY);
	assert_int_equal(chan_session(ch, &role), 0);
	assert_int_equal(role, 0);
	/* Nothing to say: no event, no end, but the heartbeat goes on. */
	t_run_for(50000);
	assert_int_equal(n_ev, 0);
	assert_int_equal(n_end, 0);
	pb_mbox_host_ctl_read(mb, &h);
	assert_true(h.heartbeat > 0);
}

static void test_wrong_size_refused(void **state)
{
	static const off_t sizes[] = { 300000, 128 * 1024, 128 * 1024 * 1024 };
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
		struct stat st;

		assert_true(fd >= 0);
		assert_int_equal(ftruncate(fd, sizes[i]), 0);
		close(fd);
		err[0] = '\0';
		assert_int_equal(chan_open(loop, "vm1", path, &t_ops, NULL, &ch, err,
					   sizeof(err)), -EINVAL);
		assert_null(ch);
		assert_non_null(strstr(err, "it must be a multiple of 4 KiB"));
		/* Never truncated: QEMU may have it mapped. */
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_size, sizes[i]);
	}
}

static void test_salvage(void **state)
{
	struct pb_mbox_panic_info pi = { .uptime_ns = 1 };
	const struct t_event *e;
	char err[256] = "";
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	uint8_t *old;

	(void)state;
	/* A guest panicked while no daemon ran: its slot is COMPLETE. */
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, PB_MBOX_SIZE_DEFAULT), 0);
	old = mmap(NULL, PB_MBOX_SIZE_DEFAULT, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(old != MAP_FAILED);
	close(fd);
	assert_int_equal(pb_mbox_format(old, PB_MBOX_SIZE_DEFAULT, 5, NULL), 0);
	assert_int_equal(pb_mbox_read_layout(old, PB_MBOX_SIZE_DEFAULT, &lay, NULL), 0);
	assert_true(pb_mbox_panic_write(old + le32toh(lay.panic_offset),
					le32toh(lay.panic_size), 0xabc, 1, &pi,
					"salvage me", 10, "log", 3) > 0);
	munmap(old, PB_MBOX_SIZE_DEFAULT);

	assert_int_equal(chan_open(loop, "vm1", path, &t_ops, NULL, &ch, err, sizeof(err)), 0);
	guest_map();
	assert_int_equal(le64toh(lay.host_generation), 6);	/* the old one + 1 */
	t_run_for(30000);
	assert_int_equal(n_ev, 0);	/* nothing before chan_start() */
	assert_int_equal(chan_start(ch), 0);
	assert_int_equal(n_ev, 1);
	assert_int_equal(n_end, 1);
	e = t_find(CHAN_EV_PANIC, 0);
	assert_non_null(e);
	assert_int_equal(e->session, 0xabc);
	assert_int_equal(e->seq, 1);
	assert_string_equal(e->msg, "salvage me");
	assert_string_equal(e->source, "salvaged from the mailbox at daemon start");
	assert_int_equal(e->guest_session, 0);
	/* Formatted: the slot is empty now, and nothing comes twice. */
	t_run_for(50000);
	assert_int_equal(t_count(CHAN_EV_PANIC), 1);
}

static void test_hello(void **state)
{
	struct pb_mbox_hello_ack_info ai;
	struct pb_mbox_host_info h;
	const struct t_event *e;
	uint8_t buf[PB_MBOX_RING_PAYLOAD_MAX];
	uint16_t type;
	uint32_t len, role = 0;

	(void)state;
	t_open_start();
	guest_session(0x1111);
	e = t_find(CHAN_EV_SESSION, 0);
	assert_int_equal(e->session, 0x1111);
	assert_int_equal(e->role, PB_MBOX_ROLE_NORMAL);
	assert_int_equal(e->prev_session, 0);
	assert_int_equal(e->guest_session, 0x1111);
	assert_string_equal(e->release, "6.1.0-test-amd64");
	assert_true(n_end >= 1);
	assert_int_equal(chan_session(ch, &role), 0x1111);
	assert_int_equal(role, PB_MBOX_ROLE_NORMAL);

	pb_mbox_host_ctl_read(mb, &h);
	assert_int_equal(h.state, PB_MBOX_HOST_ACTIVE);
	assert_int_equal(h.accepted_session, 0x1111);
	assert_int_equal(pb_mbox_ring_get(&h2g, buf, &type, &len, NULL), 1);
	assert_int_equal(type, PB_MBOX_MSG_HELLO_ACK);
	assert_int_equal(pb_mbox_hello_ack_decode(buf, len, &ai, NULL), 0);
	assert_int_equal(ai.session_id, 0x1111);
	assert_int_equal(ai.host_generation, le64toh(lay.host_generation));
	assert_int_equal(ai.poll_ms, PB_MBOX_HOST_QUIET_POLL_MS);
	assert_int_equal(ai.unload_wait_ms, PB_MBOX_UNLOAD_WAIT_MS);

	/* Module unload: state NONE drops the session. */
	guest_publish(PB_MBOX_GUEST_NONE);
	chan_drain(ch);
	assert_int_equal(chan_session(ch, NULL), 0);
	pb_mbox_host_ctl_read(mb, &h);
	assert_int_equal(h.state, PB_MBOX_HOST_READY);
	assert_int_equal(t_count(CHAN_EV_SESSION), 1);
}

static void test_panic_unload_timing(void **state)
{
	const struct t_event *p1, *p2, *u, *t;
	uint64_t end;

	(void)state;
	t_open_start();
	guest_session(0x2222);
	guest_panic(1, "Kernel panic - not syncing: first");
	/* The guest's bounded wait for UNLOAD_ACK, with the loop running. */
	end = mono_usec() + T_TIMEOUT_USEC;
	while (!pb_mbox_unload_acked(mb, 0x2222, 1) && mono_usec() < end)
		assert_true(sd_event_run(loop, 2000) >= 0);
	assert_true(pb_mbox_unload_acked(mb, 0x2222, 1));
	/* The record was read before the ACK went out. */
	p1 = t_find(CHAN_EV_PANIC, 0);
	u = t_find(CHAN_EV_UNLOAD, 0);
	assert_non_null(p1);
	assert_non_null(u);
	assert_true(p1 < u);
	assert_int_equal(p1->session, 0x2222);
	assert_int_equal(p1->seq, 1);
	assert_int_equal(p1->guest_session, 0x2222);	/* the current session's HELLO */
	assert_string_equal(p1->msg, "Kernel panic - not syncing: first");
	assert_string_equal(p1->source, "mailbox, before UNLOAD_ACK");
	assert_int_equal(u->session, 0x2222);
	assert_int_equal(u->unload_seq, 1);

	/* SPEC §4.3 step 4: UNLOADED, then the advisory timing in the slot. */
	guest_publish(PB_MBOX_GUEST_UNLOADED);
	pb_mbox_panic_set_timing(mb + le32toh(lay.panic_offset), 1234, 56);
	assert_true(t_run_until(CHAN_EV_TIMING, 1, T_TIMEOUT_USEC));
	t = t_find(CHAN_EV_TIMING, 0);
	assert_int_equal(t->timing.session, 0x2222);
	assert_int_equal(t->timing.seq, 1);
	assert_int_equal(t->timing.tier_us, 1234);
	assert_true(t->timing.acked);
	assert_int_equal(t->timing.rtt_us, 56);

	/* A second panic record within the second: late, not lost. */
	guest_panic(2, "Kernel panic - not syncing: second");
	chan_poll(ch);
	assert_int_equal(t_count(CHAN_EV_UNLOAD), 2);	/* acknowledged all the same */
	assert_true(pb_mbox_unload_acked(mb, 0x2222, 2));
	assert_int_equal(t_count(CHAN_EV_PANIC), 1);
	assert_true(t_run_until(CHAN_EV_PANIC, 2, T_TIMEOUT_USEC));
	p1 = t_find(CHAN_EV_PANIC, 0);
	p2 = t_find(CHAN_EV_PANIC, 1);
	assert_int_equal(p2->seq, 2);
	assert_string_equal(p2->msg, "Kernel panic - not syncing: second");
	assert_string_equal(p2->source, "mailbox, held back by the rate limit");
	assert_true(p2->at_usec - p1->at_usec >= 1000000);
	/* And a pvpanic event's look does not deliver it again. */
	chan_poll(ch);
	assert_int_equal(t_count(CHAN_EV_PANIC), 2);
}

static void test_kdump_reports(void **state)
{
	const struct t_event *e;

	(void)state;
	t_open_start();
	/* HELLO and 20 reports before the host looks: all read in one look. */
	guest_hello(PB_MBOX_ROLE_KDUMP, 0x3333, 0x2222);
	guest_kdump(PB_MBOX_KDUMP_START, 0, NULL);
	for (uint32_t i = 1; i < 15; i++)
		guest_kdump(PB_MBOX_KDUMP_PROGRESS, i, NULL);
	guest_kdump(PB_MBOX_KDUMP_FAILED, 0, "disk full");
	for (uint32_t i = 0; i < 5; i++)
		guest_kdump(PB_MBOX_KDUMP_PROGRESS, 50, NULL);
	guest_publish(PB_MBOX_GUEST_HELLO);
	assert_true(t_run_until(CHAN_EV_REPORTS_DROPPED, 1, T_TIMEOUT_USEC));
	assert_int_equal(n_end, 1);
	e = t_find(CHAN_EV_SESSION, 0);
	assert_int_equal(e->role, PB_MBOX_ROLE_KDUMP);
	assert_int_equal(e->prev_session, 0x2222);
	assert_int_equal(t_count(CHAN_EV_KDUMP_REPORT), PB_MBOX_HOST_KDUMP_STATUS_PER_S);
	e = t_find(CHAN_EV_KDUMP_REPORT, 0);
	assert_int_equal(e->state, PB_MBOX_KDUMP_START);
	assert_int_equal(e->session, 0x3333);
	assert_int_equal(e->prev_session, 0x2222);
	e = t_find(CHAN_EV_KDUMP_REPORT, 14);
	assert_int_equal(e->percent, 14);
	e = t_find(CHAN_EV_KDUMP_REPORT, 15);
	assert_int_equal(e->state, PB_MBOX_KDUMP_FAILED);
	assert_string_equal(e->reason, "disk full");
	e = t_find(CHAN_EV_REPORTS_DROPPED, 0);
	assert_int_equal(e->count, 5);
	assert_int_equal(e->session, 0x3333);

	/* The next second has room again. */
	guest_publish(PB_MBOX_GUEST_ACTIVE);
	t_run_for(1100000);
	guest_kdump(PB_MBOX_KDUMP_DONE, 100, NULL);
	assert_true(t_run_until(CHAN_EV_KDUMP_REPORT, PB_MBOX_HOST_KDUMP_STATUS_PER_S + 1,
				T_TIMEOUT_USEC));
	assert_int_equal(t_count(CHAN_EV_REPORTS_DROPPED), 1);
}

static void test_malformed(void **state)
{
	const struct t_event *e;
	uint8_t *ctl;

	(void)state;
	t_open_start();
	guest_session(0x4444);
	/* KDUMP_STATUS is for KDUMP sessions only. */
	guest_kdump(PB_MBOX_KDUMP_START, 0, NULL);
	assert_true(t_run_until(CHAN_EV_MALFORMED, 1, T_TIMEOUT_USEC));
	e = t_find(CHAN_EV_MALFORMED, 0);
	assert_string_equal(e->what, "g2h ring");
	assert_string_equal(e->reason, "KDUMP_STATUS in a NORMAL session");
	assert_int_equal(e->count, 1);
	assert_int_equal(t_count(CHAN_EV_KDUMP_REPORT), 0);

	/* More within the second: counted, not one event each. */
	ctl = mb + PB_MBOX_OFF_GUEST_CTL;
	for (int i = 0; i < 64; i++)
		ctl[i] = (uint8_t)(0xa5 ^ i);
	for (int i = 0; i < 5; i++)
		chan_poll(ch);
	assert_int_equal(t_count(CHAN_EV_MALFORMED), 1);
	assert_int_equal(chan_session(ch, NULL), 0);
	/* Once the second is over, the count goes out. */
	assert_true(t_run_until(CHAN_EV_MALFORMED, 2, T_TIMEOUT_USEC));
	e = t_find(CHAN_EV_MALFORMED, 1);
	assert_string_equal(e->what, "guest control");
	assert_true(e->count >= 2);
	assert_true(e->at_usec - t_find(CHAN_EV_MALFORMED, 0)->at_usec >= 1000000);
}

static void test_unknown_records(void **state)
{
	uint8_t junk[64] = { 0 };

	(void)state;
	t_open_start();
	guest_session(0x5555);
	for (int i = 0; i < 3; i++)
		assert_int_equal(pb_mbox_ring_put(&g2h, 0x0077, junk, sizeof(junk), NULL), 0);
	assert_true(t_run_until(CHAN_EV_UNKNOWN_RECORDS, 1, T_TIMEOUT_USEC));
	assert_int_equal(t_find(CHAN_EV_UNKNOWN_RECORDS, 0)->count, 3);
	assert_int_equal(t_count(CHAN_EV_MALFORMED), 0);
	assert_int_equal(chan_session(ch, NULL), 0x5555);
}

static void test_shrunk(void **state)
{
	(void)state;
	t_open_start();
	guest_session(0x6666);
	munmap(mb, mb_size);	/* the guest's pages past the end would be SIGBUS too */
	mb = NULL;
	assert_int_equal(truncate(path, 4096), 0);
	chan_poll(ch);		/* no SIGBUS: given up */
	assert_int_equal(chan_session(ch, NULL), 0);
	chan_set_kdump(ch, true);
	chan_drain(ch);
	t_run_for(50000);
	chan_free(ch);		/* no OFFLINE written either */
	ch = NULL;
}

static void test_offline_at_free(void **state)
{
	struct pb_mbox_host_info h;

	(void)state;
	t_open_start();
	guest_session(0x7777);
	chan_free(ch);
	ch = NULL;
	pb_mbox_host_ctl_read(mb, &h);
	assert_int_equal(h.state, PB_MBOX_HOST_OFFLINE);
	assert_int_equal(h.accepted_session, 0);
}

/* ---- the sweep (chan_sweep.c) ---- */

/*
 * A quiet session gets quick checks (a heartbeat each, no event), and an
 * UNLOAD written with no pvpanic to follow is acknowledged within a quiet
 * period: the guest's wait is PB_MBOX_UNLOAD_WAIT_MS.
 */
static void test_sweep_quiet_then_unload(void **state)
{
	struct pb_mbox_host_info h0, h1;
	uint64_t t0, end;
	unsigned int n0;

	(void)state;
	t_open_start();
	guest_session(0x8888);
	t_run_for(100000);
	n0 = n_ev;
	pb_mbox_host_ctl_read(mb, &h0);
	t_run_for(10 * PB_MBOX_HOST_QUIET_POLL_MS * 1000);
	pb_mbox_host_ctl_read(mb, &h1);
	assert_int_equal(n_ev, n0);		/* nothing changed, nothing said */
	assert_true(h1.heartbeat >= h0.heartbeat + 5);	/* ~10 checks, at least half */
	assert_true(h1.heartbeat <= h0.heartbeat + 15);	/* not one per 10 ms */

	guest_panic(1, "Kernel panic - not syncing: unannounced");
	t0 = mono_usec();
	end = t0 + T_TIMEOUT_USEC;
	while (!pb_mbox_unload_acked(mb, 0x8888, 1) && mono_usec() < end)
		assert_true(sd_event_run(loop, 1000) >= 0);
	assert_true(pb_mbox_unload_acked(mb, 0x8888, 1));
	/* within the quiet period, with slack for a loaded machine */
	assert_true(mono_usec() - t0 < PB_MBOX_UNLOAD_WAIT_MS * 1000);
	assert_int_equal(t_count(CHAN_EV_PANIC), 1);
	assert_int_equal(t_count(CHAN_EV_UNLOAD), 1);
}

static uint32_t t_index(uint32_t off)
{
	return le32toh(__atomic_load_n((uint32_t *)(mb + off), __ATOMIC_ACQUIRE));
}

/*
 * Records beyond one look's share are read at the next ticks, though the
 * guest wrote nothing since: without that, the quick check would find its
 * producer index unchanged and leave them for the full look, 10 s later.
 */
static void test_sweep_backlog(void **state)
{
	uint64_t end;

	(void)state;
	t_open_start();
	guest_hello(PB_MBOX_ROLE_KDUMP, 0x9999, 0x8888);
	guest_publish(PB_MBOX_GUEST_HELLO);
	assert_true(t_run_until(CHAN_EV_SESSION, 1, T_TIMEOUT_USEC));
	guest_publish(PB_MBOX_GUEST_ACTIVE);
	t_run_for(100000);
	for (unsigned int i = 0; i < 2 * PB_MBOX_HOST_RECORDS_PER_POLL + 3; i++)
		guest_kdump(PB_MBOX_KDUMP_PROGRESS, i % 100, NULL);
	chan_drain(ch);		/* one look: one share */
	assert_int_not_equal(t_index(PB_MBOX_OFF_G2H_CONS), t_index(PB_MBOX_OFF_G2H_PROD));
	end = mono_usec() + 1000000;
	while (t_index(PB_MBOX_OFF_G2H_CONS) != t_index(PB_MBOX_OFF_G2H_PROD) &&
	       mono_usec() < end)
		assert_true(sd_event_run(loop, 5000) >= 0);
	assert_int_equal(t_index(PB_MBOX_OFF_G2H_CONS), t_index(PB_MBOX_OFF_G2H_PROD));
	assert_true(t_count(CHAN_EV_KDUMP_REPORT) >= 1);
	assert_true(t_count(CHAN_EV_REPORTS_DROPPED) >= 1);
}

/* Many channels on one loop; one freed by another's event callback, mid-sweep. */
#define T_MANY 40
static struct chan *many[T_MANY];
static unsigned int many_events;

static void t_many_event(void *ud, const struct chan_event *ev)
{
	unsigned int i = (unsigned int)(uintptr_t)ud;

	many_events++;
	if (ev->type == CHAN_EV_SESSION && i == 10 && many[11]) {
		chan_free(many[11]);
		many[11] = NULL;
	}
}

static const struct chan_ops t_many_ops = { .event = t_many_event };

static void test_sweep_many(void **state)
{
	char p[160], err[256];
	uint8_t *gm[T_MANY];
	uint64_t end;

	(void)state;
	for (unsigned int i = 0; i < T_MANY; i++) {
		snprintf(p, sizeof(p), "%s/m%u.mbox", scratch_dir, i);
		assert_int_equal(chan_open(loop, "vmN", p, &t_many_ops, (void *)(uintptr_t)i,
					   &many[i], err, sizeof(err)), 0);
		assert_int_equal(chan_start(many[i]), 0);
	}
	/* Guests 10 and 12 open sessions; 10's callback frees 11 mid-sweep. */
	for (unsigned int i = 10; i <= 12; i += 2) {
		snprintf(path, sizeof(path), "%s/m%u.mbox", scratch_dir, i);
		guest_map();
		gm[i] = mb;
		guest_hello(PB_MBOX_ROLE_NORMAL, 0xa000 + i, 0);
		guest_publish(PB_MBOX_GUEST_HELLO);
	}
	end = mono_usec() + T_TIMEOUT_USEC;
	while ((!many[10] || many[11] || chan_session(many[12], NULL) != 0xa00c) &&
	       mono_usec() < end)
		assert_true(sd_event_run(loop, 5000) >= 0);
	assert_null(many[11]);
	assert_int_equal(chan_session(many[10], NULL), 0xa00a);
	assert_int_equal(chan_session(many[12], NULL), 0xa00c);
	/* and the sweep goes on over the array it compacted */
	guest_panic(1, "Kernel panic - not syncing: many");	/* mb: guest 12 */
	end = mono_usec() + T_TIMEOUT_USEC;
	while (!pb_mbox_unload_acked(mb, 0xa00c, 1) && mono_usec() < end)
		assert_true(sd_event_run(loop, 5000) >= 0);
	assert_true(pb_mbox_unload_acked(mb, 0xa00c, 1));
	munmap(gm[10], mb_size);
	for (unsigned int i = 0; i < T_MANY; i++) {
		chan_free(many[i]);
		many[i] = NULL;
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_creates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_size_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_salvage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hello, setup, teardown),
		cmocka_unit_test_setup_teardown(test_panic_unload_timing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kdump_reports, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shrunk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_offline_at_free, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sweep_quiet_then_unload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sweep_backlog, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sweep_many, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
