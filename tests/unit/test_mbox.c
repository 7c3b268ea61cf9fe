// SPDX-License-Identifier: MIT
/*
 * Unit tests: the broker channel library (protocol/pb_mbox.c) on a
 * mailbox in ordinary memory: format and layout checks, the control
 * blocks, rings (wrap, PAD, full, hostile indices and records), payload
 * round trips and rejections, the panic slot.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <panicbroker/mailbox.h>

#define SIZE PB_MBOX_SIZE_DEFAULT

static uint8_t *mb;
static struct pb_mbox_layout lay;

static int setup(void **state)
{
	const char *why = NULL;

	(void)state;
	mb = aligned_alloc(4096, SIZE);
	if (!mb)
		return -1;
	memset(mb, 0xa5, SIZE);
	if (pb_mbox_format(mb, SIZE, 7, &why) < 0)
		return -1;
	return pb_mbox_read_layout(mb, SIZE, &lay, &why);
}

static int teardown(void **state)
{
	(void)state;
	free(mb);
	return 0;
}

static struct pb_mbox_header *hdr(void)
{
	return (struct pb_mbox_header *)mb;
}

static void test_crc32c(void **state)
{
	(void)state;
	/* The standard check value, and chaining. */
	assert_int_equal(pb_mbox_crc32c(0, "123456789", 9), 0xe3069283);
	assert_int_equal(pb_mbox_crc32c(pb_mbox_crc32c(0, "1234", 4), "56789", 5),
			 0xe3069283);
	assert_int_equal(pb_mbox_crc32c(0, "", 0), 0);
}

static void test_format_layout(void **state)
{
	struct pb_mbox_layout l;
	struct pb_mbox_host_info h;
	const char *why = NULL;

	(void)state;
	assert_int_equal(le32toh(lay.total_size), SIZE);
	assert_int_equal(le64toh(lay.host_generation), 7);
	assert_int_equal(le32toh(lay.panic_offset), 0x1000);
	assert_int_equal(le32toh(lay.panic_size), PB_MBOX_PANIC_SLOT_SIZE);
	assert_int_equal(le32toh(lay.g2h_offset), 0x22000);
	assert_int_equal(le32toh(lay.g2h_size), 256 * 1024);
	assert_int_equal(le32toh(lay.h2g_offset), 0x62000);
	assert_int_equal(le32toh(lay.h2g_size), 256 * 1024);
	pb_mbox_host_ctl_read(mb, &h);
	assert_int_equal(h.state, PB_MBOX_HOST_READY);
	assert_int_equal(h.accepted_session, 0);

	/* Every size the host may format is valid; others are refused. */
	for (uint32_t sz = PB_MBOX_SIZE_MIN; sz <= 8 * 1024 * 1024; sz *= 2) {
		uint8_t *m = calloc(1, sz);

		assert_non_null(m);
		assert_int_equal(pb_mbox_format(m, sz, 1, &why), 0);
		assert_int_equal(pb_mbox_read_layout(m, sz, &l, &why), 0);
		assert_true(le32toh(l.g2h_size) >= PB_MBOX_RING_MIN);
		free(m);
	}
	assert_int_equal(pb_mbox_format(mb, PB_MBOX_SIZE_MIN - 4096, 1, &why), -EINVAL);
	assert_int_equal(pb_mbox_format(mb, SIZE + 1, 1, &why), -EINVAL);

	/* A smaller mapping than the host formatted. */
	assert_int_equal(pb_mbox_check_layout(&lay, SIZE / 2, &why), -EBADMSG);
	assert_string_equal(why, "total size out of range");
}

/* Change one field of a copy, fix the CRC, expect @err. */
static void expect_layout(void (*mutate)(struct pb_mbox_layout *), int err,
			  const char *reason)
{
	struct pb_mbox_layout l = lay;
	const char *why = NULL;

	mutate(&l);
	l.crc32c = htole32(pb_mbox_crc32c(0, &l, 56));
	assert_int_equal(pb_mbox_check_layout(&l, SIZE, &why), err);
	if (reason)
		assert_string_equal(why, reason);
}

static void m_major(struct pb_mbox_layout *l) { l->version_major = htole16(2); }
static void m_minor(struct pb_mbox_layout *l) { l->version_minor = htole16(9); }
static void m_ring_pow2(struct pb_mbox_layout *l) { l->g2h_size = htole32(48 * 1024); }
static void m_ring_big(struct pb_mbox_layout *l) { l->h2g_size = htole32(512 * 1024); }
static void m_ring_out(struct pb_mbox_layout *l) { l->h2g_offset = htole32(SIZE - 4096); }
static void m_ring_wrap(struct pb_mbox_layout *l) { l->h2g_offset = htole32(0xfffff000); }
static void m_overlap(struct pb_mbox_layout *l) { l->h2g_offset = l->g2h_offset; }
static void m_in_header(struct pb_mbox_layout *l) { l->panic_offset = 0; }
static void m_unaligned(struct pb_mbox_layout *l) { l->g2h_offset = htole32(0x22008); }
static void m_small_slot(struct pb_mbox_layout *l) { l->panic_size = htole32(64 * 1024); }
static void m_header(struct pb_mbox_layout *l) { l->header_size = htole32(8192); }

static void test_layout_rejects(void **state)
{
	struct pb_mbox_layout l = lay;
	const char *why = NULL;

	(void)state;
	l.g2h_size = htole32(1 << 20);	/* without fixing the CRC */
	assert_int_equal(pb_mbox_check_layout(&l, SIZE, &why), -EBADMSG);
	assert_string_equal(why, "layout CRC mismatch");
	l = lay;
	l.magic = 0;
	assert_int_equal(pb_mbox_check_layout(&l, SIZE, &why), -EBADMSG);

	expect_layout(m_major, -EPROTO, "unsupported major version");
	expect_layout(m_minor, 0, NULL);
	expect_layout(m_ring_pow2, -EBADMSG, "g2h ring out of range");
	expect_layout(m_ring_big, -EBADMSG, "h2g ring out of range");
	expect_layout(m_ring_out, -EBADMSG, "h2g ring out of range");
	expect_layout(m_ring_wrap, -EBADMSG, "h2g ring out of range");
	expect_layout(m_overlap, -EBADMSG, "areas overlap");
	expect_layout(m_in_header, -EBADMSG, "panic slot out of range");
	expect_layout(m_unaligned, -EBADMSG, "g2h ring out of range");
	expect_layout(m_small_slot, -EBADMSG, "panic slot out of range");
	expect_layout(m_header, -EBADMSG, "header size is not 4 KiB");
}

static void test_control_blocks(void **state)
{
	struct pb_mbox_guest_info g = {
		.version_major = 1, .session_id = 0x1122334455667788ULL,
		.session_generation = 7, .role = PB_MBOX_ROLE_KDUMP,
		.prev_session = 42, .state = PB_MBOX_GUEST_HELLO,
	}, back;
	struct pb_mbox_host_info h;
	const char *why = NULL;

	(void)state;
	/* Never written: no guest. */
	assert_int_equal(pb_mbox_guest_ctl_read(mb, &back, &why), 0);
	assert_int_equal(back.state, PB_MBOX_GUEST_NONE);

	pb_mbox_guest_ctl_write(mb, &g);
	assert_int_equal(pb_mbox_guest_ctl_read(mb, &back, &why), 0);
	assert_int_equal(back.version_major, 1);
	assert_int_equal(back.session_id, g.session_id);
	assert_int_equal(back.session_generation, 7);
	assert_int_equal(back.prev_session, 42);
	assert_int_equal(back.role, PB_MBOX_ROLE_KDUMP);
	assert_int_equal(back.state, PB_MBOX_GUEST_HELLO);

	/* A torn or forged block. */
	hdr()->guest.state = htole32(PB_MBOX_GUEST_ACTIVE);
	assert_int_equal(pb_mbox_guest_ctl_read(mb, &back, &why), -EBADMSG);
	assert_string_equal(why, "guest control CRC mismatch");
	g.role = 3;
	pb_mbox_guest_ctl_write(mb, &g);
	assert_int_equal(pb_mbox_guest_ctl_read(mb, &back, &why), -EPROTO);
	g.role = PB_MBOX_ROLE_NORMAL;
	g.state = 9;
	pb_mbox_guest_ctl_write(mb, &g);
	assert_int_equal(pb_mbox_guest_ctl_read(mb, &back, &why), -EPROTO);
	g.state = PB_MBOX_GUEST_ACTIVE;
	g.session_id = 0;
	pb_mbox_guest_ctl_write(mb, &g);
	assert_int_equal(pb_mbox_guest_ctl_read(mb, &back, &why), -EPROTO);
	assert_string_equal(why, "session id 0");

	/* UNLOAD / UNLOAD_ACK. */
	assert_false(pb_mbox_unload_acked(mb, 5, 1));
	pb_mbox_host_ack_unload(mb, 5, 1);
	assert_true(pb_mbox_unload_acked(mb, 5, 1));
	assert_false(pb_mbox_unload_acked(mb, 6, 1));
	assert_false(pb_mbox_unload_acked(mb, 5, 2));
	pb_mbox_host_set_state(mb, PB_MBOX_HOST_ACTIVE, 5);
	pb_mbox_host_heartbeat(mb, 99);
	pb_mbox_host_ctl_read(mb, &h);
	assert_int_equal(h.state, PB_MBOX_HOST_ACTIVE);
	assert_int_equal(h.accepted_session, 5);
	assert_int_equal(h.unload_ack_session, 5);
	assert_int_equal(h.unload_ack_seq, 1);
	assert_int_equal(h.heartbeat, 99);
}

/* Both ends of the g2h ring, as the guest and the host would hold them. */
static void rings(struct pb_mbox_ring *p, struct pb_mbox_ring *c)
{
	pb_mbox_ring_init(p, mb, &lay, PB_MBOX_G2H);
	pb_mbox_ring_init(c, mb, &lay, PB_MBOX_G2H);
	pb_mbox_ring_reset(p);
}

static void test_ring_basic(void **state)
{
	struct pb_mbox_ring p, c;
	uint8_t buf[PB_MBOX_RING_PAYLOAD_MAX], msg[PB_MBOX_RING_PAYLOAD_MAX];
	const char *why = NULL;
	uint16_t type;
	uint32_t len;

	(void)state;
	rings(&p, &c);
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i * 7);
	assert_int_equal(pb_mbox_ring_get(&c, buf, &type, &len, &why), 0);
	assert_int_equal(pb_mbox_ring_put(&p, 0x1234, msg, 13, &why), 0);
	assert_int_equal(pb_mbox_ring_put(&p, PB_MBOX_MSG_HELLO, NULL, 0, &why), 0);
	assert_int_equal(pb_mbox_ring_put(&p, PB_MBOX_MSG_HELLO, msg, sizeof(msg), &why), 0);
	assert_int_equal(le32toh(hdr()->g2h_prod.value), 16 + 16 + 16 + 16 + 4096);

	assert_int_equal(pb_mbox_ring_get(&c, buf, &type, &len, &why), 1);
	assert_int_equal(type, 0x1234);	/* unknown: the caller skips and counts it */
	assert_int_equal(len, 13);
	assert_memory_equal(buf, msg, 13);
	assert_int_equal(pb_mbox_ring_get(&c, buf, &type, &len, &why), 1);
	assert_int_equal(len, 0);
	assert_int_equal(pb_mbox_ring_get(&c, buf, &type, &len, &why), 1);
	assert_int_equal(len, sizeof(msg));
	assert_memory_equal(buf, msg, sizeof(msg));
	assert_int_equal(pb_mbox_ring_get(&c, buf, &type, &len, &why), 0);
	assert_int_equal(le32toh(hdr()->g2h_cons.value), le32toh(hdr()->g2h_prod.value));

	/* Caller errors. */
	assert_int_equal(pb_mbox_ring_put(&p, PB_MBOX_MSG_HELLO, msg, 4097, &why), -EMSGSIZE);
	assert_int_equal(pb_mbox_ring_put(&p, PB_MBOX_MSG_PAD, msg, 1, &why), -EINVAL);
}

/* Fill, drain, wrap many times with varied sizes: PADs and end gaps. */
static void test_ring_wrap_full(void **state)
{
	struct pb_mbox_ring p, c;
	uint8_t buf[PB_MBOX_RING_PAYLOAD_MAX], msg[PB_MBOX_RING_PAYLOAD_MAX];
	const char *why = NULL;
	uint32_t len, sent = 0, got = 0, lens[4096];
	uint16_t type;
	unsigned int full = 0;
	int r;

	(void)state;
	rings(&p, &c);
	memset(msg, 'x', sizeof(msg));
	srand(1);
	while (sent < 4000) {
		lens[sent % 4096] = (uint32_t)rand() % 4097;
		if (sent % 50 == 0)
			lens[sent % 4096] = 4096 - 8;	/* exercise the 8-byte end gap */
		msg[0] = (uint8_t)sent;
		r = pb_mbox_ring_put(&p, PB_MBOX_MSG_KDUMP_STATUS, msg,
				     lens[sent % 4096], &why);
		if (r == -ENOSPC) {
			full++;
			/* Drain a few, in order. */
			for (int i = 0; i < 5; i++) {
				r = pb_mbox_ring_get(&c, buf, &type, &len, &why);
				assert_int_equal(r, 1);
				assert_int_equal(len, lens[got % 4096]);
				if (len)
					assert_int_equal(buf[0], (uint8_t)got);
				got++;
			}
			continue;
		}
		assert_int_equal(r, 0);
		sent++;
	}
	while ((r = pb_mbox_ring_get(&c, buf, &type, &len, &why)) == 1) {
		assert_int_equal(len, lens[got % 4096]);
		got++;
	}
	assert_int_equal(r, 0);
	assert_int_equal(got, sent);
	assert_true(full > 0);
	assert_true(p.pos > 4 * p.size);	/* wrapped several times */
}

static void test_ring_index_wrap(void **state)
{
	struct pb_mbox_ring p, c;
	uint8_t buf[PB_MBOX_RING_PAYLOAD_MAX], msg[100] = { 0 };
	const char *why = NULL;
	uint32_t len;
	uint16_t type;

	(void)state;
	/* Free-running indices across 2^32. */
	rings(&p, &c);
	p.pos = c.pos = 0xfffff000u;
	hdr()->g2h_prod.value = hdr()->g2h_cons.value = htole32(0xfffff000u);
	for (int i = 0; i < 100; i++) {
		assert_int_equal(pb_mbox_ring_put(&p, 9, msg, sizeof(msg), &why), 0);
		assert_int_equal(pb_mbox_ring_get(&c, buf, &type, &len, &why), 1);
		assert_int_equal(len, sizeof(msg));
	}
	assert_true(p.pos < 0x10000);

	/* A record ending 8 bytes before the end: the gap is skipped without a PAD. */
	rings(&p, &c);
	p.pos = c.pos = p.size - 24;
	hdr()->g2h_prod.value = hdr()->g2h_cons.value = htole32(p.pos);
	assert_int_equal(pb_mbox_ring_put(&p, 9, NULL, 0, &why), 0);
	assert_int_equal(pb_mbox_ring_put(&p, 9, msg, 8, &why), 0);
	assert_int_equal(p.pos, p.size + 24);
	assert_int_equal(pb_mbox_ring_get(&c, buf, &type, &len, &why), 1);
	assert_int_equal(len, 0);
	assert_int_equal(pb_mbox_ring_get(&c, buf, &type, &len, &why), 1);
	assert_int_equal(len, 8);
	assert_int_equal(c.seq, 2);
	assert_int_equal(pb_mbox_ring_get(&c, buf, &type, &len, &why), 0);
}

static void test_ring_hostile(void **state)
{
	struct pb_mbox_ring p, c;
	uint8_t buf[PB_MBOX_RING_PAYLOAD_MAX], msg[64] = { 1, 2, 3 };
	uint8_t *rec = mb + le32toh(lay.g2h_offset);
	struct pb_mbox_rec *h = (struct pb_mbox_rec *)rec;
	const char *why = NULL;
	uint32_t len;
	uint16_t type;

	(void)state;
	/* Producer index beyond the ring, behind us, unaligned. */
	rings(&p, &c);
	hdr()->g2h_prod.value = htole32(p.size + 8);
	assert_int_equal(pb_mbox_ring_get(&c, buf, &type, &len, &why), -EPROTO);
	assert_string_equal(why, "producer index out of range");
	hdr()->g2h_prod.value = htole32(-8u);
	assert_int_equal(pb_mbox_ring_get(&c, buf, &type, &len, &why), -EPROTO);
	hdr()->g2h_prod.value = htole32(12);
	assert_int_equal(pb_mbox_ring_get(&c, buf, &type, &len, &why), -EPROTO);

	/* Consumer index the producer cannot believe. */
	rings(&p, &c);
	hdr()->g2h_cons.value = htole32(64);
	assert_int_equal(pb_mbox_ring_put(&p, 9, msg, 8, &why), -EPROTO);
	assert_string_equal(why, "consumer index out of range");

	/* A record whose length is over the cap, fixed CRC or not. */
	rings(&p, &c);
	assert_int_equal(pb_mbox_ring_put(&p, 9, msg, sizeof(msg), &why), 0);
	h->len = htole32(1 << 20);
	assert_int_equal(pb_mbox_ring_get(&c, buf, &type, &len, &why), -EMSGSIZE);
	/* Longer than what was published. */
	h->len = htole32(128);
	assert_int_equal(pb_mbox_ring_get(&c, buf, &type, &len, &why), -EBADMSG);
	assert_string_equal(why, "record past the producer index");
	/* A flipped payload byte: the bytes changed after the producer's CRC. */
	h->len = htole32(sizeof(msg));
	rec[20] ^= 1;
	assert_int_equal(pb_mbox_ring_get(&c, buf, &type, &len, &why), -EBADMSG);
	assert_string_equal(why, "record CRC mismatch");
	rec[20] ^= 1;
	/* Nothing was consumed by the failures: the record is still good. */
	assert_int_equal(pb_mbox_ring_get(&c, buf, &type, &len, &why), 1);

	/* Sequence gap: a replayed record. */
	hdr()->g2h_prod.value = htole32(p.pos + 80);
	memcpy(rec + 80, rec, 80);
	p.pos += 80;
	assert_int_equal(pb_mbox_ring_get(&c, buf, &type, &len, &why), -EPROTO);
	assert_string_equal(why, "record sequence gap");

	/* Types that never travel on a ring. */
	rings(&p, &c);
	assert_int_equal(pb_mbox_ring_put(&p, PB_MBOX_MSG_PANIC, msg, 8, &why), 0);
	assert_int_equal(pb_mbox_ring_get(&c, buf, &type, &len, &why), -EPROTO);

	/* A PAD in the middle of the ring, and a PAD at offset 0. */
	rings(&p, &c);
	p.seq = 0;
	{
		struct pb_mbox_rec pad = { .len = htole32(64), .type = 0, .seq = 0 };

		pad.crc32c = htole32(pb_mbox_crc32c(0, &pad, 12));
		memcpy(rec, &pad, sizeof(pad));
		hdr()->g2h_prod.value = htole32(80);
		assert_int_equal(pb_mbox_ring_get(&c, buf, &type, &len, &why), -EBADMSG);
		assert_string_equal(why, "PAD at offset 0");
	}
}

/*
 * The consumer validates its copy: a producer that rewrites the record
 * after publishing it either gets the old bytes or a CRC failure, never a
 * mix that passes. Simulated by corrupting the shared bytes after the get.
 */
static void test_ring_copy_is_private(void **state)
{
	struct pb_mbox_ring p, c;
	uint8_t buf[PB_MBOX_RING_PAYLOAD_MAX], msg[32];
	uint8_t *data = mb + le32toh(lay.g2h_offset);
	const char *why = NULL;
	uint32_t len;
	uint16_t type;

	(void)state;
	rings(&p, &c);
	memset(msg, 'a', sizeof(msg));
	assert_int_equal(pb_mbox_ring_put(&p, 9, msg, sizeof(msg), &why), 0);
	assert_int_equal(pb_mbox_ring_get(&c, buf, &type, &len, &why), 1);
	memset(data + 16, 'b', sizeof(msg));
	assert_memory_equal(buf, msg, sizeof(msg));
}

static void test_hello(void **state)
{
	struct pb_mbox_hello_info in = {
		.boot_id = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 },
		.crash_base = 0x2b000000, .crash_size = 192 << 20,
		.vmcoreinfo_paddr = 0x1234000, .flags = PB_MBOX_HELLO_CRASH_LOADED,
		.release = "6.1.0-56-amd64", .driver_version = "0.2",
	}, out;
	struct pb_mbox_hello w;
	uint8_t big[sizeof(w) + 40] = { 0 };
	const char *why = NULL;

	(void)state;
	assert_int_equal(pb_mbox_hello_encode(&in, &w), sizeof(w));
	assert_int_equal(pb_mbox_hello_decode(&w, sizeof(w), &out, &why), 0);
	assert_memory_equal(in.boot_id, out.boot_id, 16);
	assert_int_equal(in.crash_base, out.crash_base);
	assert_int_equal(in.crash_size, out.crash_size);
	assert_int_equal(in.vmcoreinfo_paddr, out.vmcoreinfo_paddr);
	assert_int_equal(in.flags, out.flags);
	assert_string_equal(in.release, out.release);
	assert_string_equal(in.driver_version, out.driver_version);

	/* A later minor appended fields: still decodes. Shorter: refused. */
	memcpy(big, &w, sizeof(w));
	assert_int_equal(pb_mbox_hello_decode(big, sizeof(big), &out, &why), 0);
	assert_int_equal(pb_mbox_hello_decode(&w, sizeof(w) - 1, &out, &why), -EBADMSG);

	/* Lengths over the cap, bytes that are not printable. */
	w.release_len = htole16(PB_MBOX_RELEASE_MAX + 1);
	assert_int_equal(pb_mbox_hello_decode(&w, sizeof(w), &out, &why), -EMSGSIZE);
	w.release_len = htole16(4);
	w.release[2] = '\0';
	assert_int_equal(pb_mbox_hello_decode(&w, sizeof(w), &out, &why), -EBADMSG);
	assert_string_equal(why, "string not printable ASCII");
	assert_int_equal(pb_mbox_hello_encode(&in, &w), sizeof(w));
	w.crash_base = htole64(-4096ULL);
	assert_int_equal(pb_mbox_hello_decode(&w, sizeof(w), &out, &why), -EBADMSG);

	/* The encoder refuses what does not fit and cleans what is not printable. */
	memset(in.release, 'r', sizeof(in.release));
	assert_int_equal(pb_mbox_hello_encode(&in, &w), -EMSGSIZE);
	strcpy(in.release, "a\tb");
	assert_int_equal(pb_mbox_hello_encode(&in, &w), sizeof(w));
	assert_int_equal(pb_mbox_hello_decode(&w, sizeof(w), &out, &why), 0);
	assert_string_equal(out.release, "a?b");
}

static void test_hello_ack(void **state)
{
	struct pb_mbox_hello_ack_info in = {
		.session_id = 77, .host_generation = 7, .poll_ms = 10,
		.unload_wait_ms = 100, .daemon_version = "panicbrokerd 0.3",
	}, out;
	struct pb_mbox_hello_ack w;
	const char *why = NULL;

	(void)state;
	assert_int_equal(pb_mbox_hello_ack_encode(&in, &w), sizeof(w));
	assert_int_equal(pb_mbox_hello_ack_decode(&w, sizeof(w), &out, &why), 0);
	assert_int_equal(in.session_id, out.session_id);
	assert_int_equal(in.host_generation, out.host_generation);
	assert_int_equal(in.poll_ms, out.poll_ms);
	assert_int_equal(in.unload_wait_ms, out.unload_wait_ms);
	assert_string_equal(in.daemon_version, out.daemon_version);
	assert_int_equal(pb_mbox_hello_ack_decode(&w, 10, &out, &why), -EBADMSG);
	w.daemon_version_len = htole16(1000);
	assert_int_equal(pb_mbox_hello_ack_decode(&w, sizeof(w), &out, &why), -EMSGSIZE);
	in.session_id = 0;
	assert_int_equal(pb_mbox_hello_ack_encode(&in, &w), sizeof(w));
	assert_int_equal(pb_mbox_hello_ack_decode(&w, sizeof(w), &out, &why), -EPROTO);
}

static void test_kdump_status(void **state)
{
	struct pb_mbox_kdump_info in = {
		.state = PB_MBOX_KDUMP_FAILED, .percent = 40, .bytes = 1 << 30,
		.reason = "makedumpfile: No space left on device",
	}, out;
	struct pb_mbox_kdump_status w;
	const char *why = NULL;

	(void)state;
	assert_int_equal(pb_mbox_kdump_encode(&in, &w), sizeof(w));
	assert_int_equal(pb_mbox_kdump_decode(&w, sizeof(w), &out, &why), 0);
	assert_int_equal(in.state, out.state);
	assert_int_equal(in.percent, out.percent);
	assert_int_equal(in.bytes, out.bytes);
	assert_string_equal(in.reason, out.reason);

	w.state = htole32(5);
	assert_int_equal(pb_mbox_kdump_decode(&w, sizeof(w), &out, &why), -EPROTO);
	w.state = htole32(PB_MBOX_KDUMP_PROGRESS);
	w.percent = htole32(101);
	assert_int_equal(pb_mbox_kdump_decode(&w, sizeof(w), &out, &why), -EBADMSG);
	w.percent = htole32(100);
	w.reason_len = htole16(PB_MBOX_REASON_MAX + 1);
	assert_int_equal(pb_mbox_kdump_decode(&w, sizeof(w), &out, &why), -EMSGSIZE);
	assert_int_equal(pb_mbox_kdump_decode(&w, 8, &out, &why), -EBADMSG);

	in.state = 0;
	assert_int_equal(pb_mbox_kdump_encode(&in, &w), -EINVAL);
	in.state = PB_MBOX_KDUMP_PROGRESS;
	in.percent = 200;
	assert_int_equal(pb_mbox_kdump_encode(&in, &w), -EINVAL);
}

static void test_panic_slot(void **state)
{
	uint8_t *slot = mb + le32toh(lay.panic_offset);
	uint32_t slot_size = le32toh(lay.panic_size);
	struct pb_mbox_panic_info info = {
		.uptime_ns = 123456789, .taint = 0x201, .cpu = 3,
		.flags = PB_MBOX_PANIC_CRASH_LOADED | PB_MBOX_PANIC_LOG_TRUNCATED,
	};
	struct pb_mbox_panic_view v;
	static char log[200 * 1024], buf[PB_MBOX_PANIC_PAYLOAD_MAX];
	char msg[2000];
	const char *why = NULL;
	int n;

	(void)state;
	assert_int_equal(pb_mbox_panic_read(slot, slot_size, buf, &v, &why), 0);	/* EMPTY */

	for (size_t i = 0; i < sizeof(log); i++)
		log[i] = (char)('a' + i % 26);
	strcpy(msg, "Kernel panic - not syncing: sysrq triggered crash");
	n = pb_mbox_panic_write(slot, slot_size, 0xabcdef, 1, &info, msg,
				(uint32_t)strlen(msg), log, 10000);
	assert_true(n > 0);
	pb_mbox_panic_set_timing(slot, 250, 1200);
	assert_int_equal(pb_mbox_panic_read(slot, slot_size, buf, &v, &why), 1);
	assert_int_equal(v.session_id, 0xabcdef);
	assert_int_equal(v.seq, 1);
	assert_int_equal(v.tier_us, 250);
	assert_int_equal(v.unload_wait_us, 1200);
	assert_int_equal(v.info.uptime_ns, 123456789);
	assert_int_equal(v.info.taint, 0x201);
	assert_int_equal(v.info.cpu, 3);
	/* LOG_TRUNCATED is the writer's to set, not the caller's. */
	assert_int_equal(v.info.flags, PB_MBOX_PANIC_CRASH_LOADED);
	assert_int_equal(v.msg_len, strlen(msg));
	assert_memory_equal(v.msg, msg, v.msg_len);
	assert_int_equal(v.log_len, 10000);
	assert_memory_equal(v.log, log, 10000);

	/* Over the caps: the head of the message, the tail of the log. */
	memset(msg, 'm', sizeof(msg));
	n = pb_mbox_panic_write(slot, slot_size, 5, 2, &info, msg, sizeof(msg),
				log, sizeof(log));
	assert_true(n > 0 && (uint32_t)n <= PB_MBOX_PANIC_PAYLOAD_MAX);
	assert_int_equal(pb_mbox_panic_read(slot, slot_size, buf, &v, &why), 1);
	assert_int_equal(v.msg_len, PB_MBOX_PANIC_MSG_MAX);
	assert_int_equal(v.log_len, PB_MBOX_PANIC_LOG_MAX);
	assert_memory_equal(v.log, log + sizeof(log) - PB_MBOX_PANIC_LOG_MAX,
			    PB_MBOX_PANIC_LOG_MAX);
	assert_true(v.info.flags & PB_MBOX_PANIC_LOG_TRUNCATED);

	/* No message, no log. */
	assert_true(pb_mbox_panic_write(slot, slot_size, 5, 3, &info, NULL, 9, NULL, 9) > 0);
	assert_int_equal(pb_mbox_panic_read(slot, slot_size, buf, &v, &why), 1);
	assert_int_equal(v.msg_len + v.log_len, 0);
	assert_int_equal(pb_mbox_panic_write(slot, 4096, 5, 3, &info, NULL, 0, NULL, 0), -EINVAL);
}

static void test_panic_hostile(void **state)
{
	uint8_t *slot = mb + le32toh(lay.panic_offset);
	uint32_t slot_size = le32toh(lay.panic_size);
	struct pb_mbox_slot *s = (struct pb_mbox_slot *)slot;
	struct pb_mbox_panic *p = (struct pb_mbox_panic *)(slot + PB_MBOX_PAGE);
	struct pb_mbox_panic_info info = { .cpu = 1 };
	struct pb_mbox_panic_view v;
	static char buf[PB_MBOX_PANIC_PAYLOAD_MAX];
	const char *why = NULL;

	(void)state;
	assert_true(pb_mbox_panic_write(slot, slot_size, 9, 1, &info, "boom", 4, "log", 3) > 0);

	/* WRITING (a guest that died mid-write): nothing yet. Unknown state: malformed. */
	s->state = htole32(PB_MBOX_SLOT_WRITING);
	assert_int_equal(pb_mbox_panic_read(slot, slot_size, buf, &v, &why), 0);
	s->state = htole32(7);
	assert_int_equal(pb_mbox_panic_read(slot, slot_size, buf, &v, &why), -EBADMSG);
	s->state = htole32(PB_MBOX_SLOT_COMPLETE);

	s->payload_len = htole32(PB_MBOX_PANIC_PAYLOAD_MAX + 1);
	assert_int_equal(pb_mbox_panic_read(slot, slot_size, buf, &v, &why), -EMSGSIZE);
	s->payload_len = htole32(64 + 8 + 3);
	p->log_len = htole32(4000);
	assert_int_equal(pb_mbox_panic_read(slot, slot_size, buf, &v, &why), -EBADMSG);
	assert_string_equal(why, "panic slot CRC mismatch");
	p->log_len = htole32(3);
	assert_int_equal(pb_mbox_panic_read(slot, slot_size, buf, &v, &why), 1);

	/* The decoder alone, on a private copy: spans outside the payload. */
	memcpy(buf, p, 64 + 8 + 3);
	((struct pb_mbox_panic *)buf)->log_offset = htole32(0xfffffff0);
	assert_int_equal(pb_mbox_panic_decode(buf, 75, &v, &why), -EBADMSG);
	((struct pb_mbox_panic *)buf)->log_offset = htole32(8);	/* inside the fixed part */
	assert_int_equal(pb_mbox_panic_decode(buf, 75, &v, &why), -EBADMSG);
	((struct pb_mbox_panic *)buf)->log_offset = htole32(72);
	((struct pb_mbox_panic *)buf)->msg_len = htole32(PB_MBOX_PANIC_MSG_MAX + 1);
	assert_int_equal(pb_mbox_panic_decode(buf, 75, &v, &why), -EMSGSIZE);
	assert_int_equal(pb_mbox_panic_decode(buf, 10, &v, &why), -EBADMSG);

	/* A record for session 0. */
	assert_true(pb_mbox_panic_write(slot, slot_size, 0, 1, &info, "x", 1, NULL, 0) > 0);
	assert_int_equal(pb_mbox_panic_read(slot, slot_size, buf, &v, &why), -EPROTO);
}

/* SPEC.md §4 end to end: open, accept, panic with UNLOAD, kdump session. */
static void test_session_flow(void **state)
{
	struct pb_mbox_ring g2h_g, g2h_h, h2g_g, h2g_h;
	struct pb_mbox_guest_info g = { .version_major = 1 }, seen;
	struct pb_mbox_host_info hi;
	struct pb_mbox_hello_info hello = { .release = "6.1.0-56-amd64", .driver_version = "0.2" }, hd;
	struct pb_mbox_hello_ack_info ack = { .poll_ms = 10, .unload_wait_ms = 100 }, ad;
	struct pb_mbox_kdump_info ks = { .state = PB_MBOX_KDUMP_DONE, .percent = 100, .bytes = 4096 }, kd;
	struct pb_mbox_panic_info pi = { .cpu = 0 };
	struct pb_mbox_panic_view v;
	struct pb_mbox_hello hw;
	struct pb_mbox_hello_ack aw;
	struct pb_mbox_kdump_status kw;
	static uint8_t buf[PB_MBOX_PANIC_PAYLOAD_MAX];
	uint8_t *slot = mb + le32toh(lay.panic_offset);
	const char *why = NULL;
	uint32_t len;
	uint16_t type;

	(void)state;
	/* Guest: NONE, reset rings, HELLO, state HELLO. */
	pb_mbox_guest_ctl_write(mb, &g);
	pb_mbox_ring_init(&g2h_g, mb, &lay, PB_MBOX_G2H);
	pb_mbox_ring_init(&h2g_g, mb, &lay, PB_MBOX_H2G);
	pb_mbox_ring_reset(&g2h_g);
	pb_mbox_ring_reset(&h2g_g);
	assert_int_equal(pb_mbox_hello_encode(&hello, &hw), sizeof(hw));
	assert_int_equal(pb_mbox_ring_put(&g2h_g, PB_MBOX_MSG_HELLO, &hw, sizeof(hw), &why), 0);
	g.session_id = 0x5151;
	g.session_generation = le64toh(lay.host_generation);
	g.role = PB_MBOX_ROLE_NORMAL;
	g.state = PB_MBOX_GUEST_HELLO;
	pb_mbox_guest_ctl_write(mb, &g);

	/* Host: a new session in HELLO; read HELLO at seq 0, answer, accept. */
	assert_int_equal(pb_mbox_guest_ctl_read(mb, &seen, &why), 0);
	assert_int_equal(seen.state, PB_MBOX_GUEST_HELLO);
	pb_mbox_ring_init(&g2h_h, mb, &lay, PB_MBOX_G2H);
	pb_mbox_ring_init(&h2g_h, mb, &lay, PB_MBOX_H2G);
	assert_int_equal(pb_mbox_ring_get(&g2h_h, buf, &type, &len, &why), 1);
	assert_int_equal(type, PB_MBOX_MSG_HELLO);
	assert_int_equal(pb_mbox_hello_decode(buf, len, &hd, &why), 0);
	assert_string_equal(hd.release, "6.1.0-56-amd64");
	ack.session_id = seen.session_id;
	ack.host_generation = seen.session_generation;
	assert_int_equal(pb_mbox_hello_ack_encode(&ack, &aw), sizeof(aw));
	assert_int_equal(pb_mbox_ring_put(&h2g_h, PB_MBOX_MSG_HELLO_ACK, &aw, sizeof(aw), &why), 0);
	pb_mbox_host_set_state(mb, PB_MBOX_HOST_ACTIVE, seen.session_id);

	/* Guest: accepted, HELLO_ACK, ACTIVE. */
	pb_mbox_host_ctl_read(mb, &hi);
	assert_int_equal(hi.accepted_session, g.session_id);
	assert_int_equal(pb_mbox_ring_get(&h2g_g, buf, &type, &len, &why), 1);
	assert_int_equal(type, PB_MBOX_MSG_HELLO_ACK);
	assert_int_equal(pb_mbox_hello_ack_decode(buf, len, &ad, &why), 0);
	assert_int_equal(ad.session_id, g.session_id);

	/* Panic: slot, UNLOAD, host copies and acks, guest sees the ACK. */
	assert_true(pb_mbox_panic_write(slot, le32toh(lay.panic_size), g.session_id, 1,
					&pi, "panic", 5, "log", 3) > 0);
	g.state = PB_MBOX_GUEST_UNLOADING;
	g.unload_seq++;
	pb_mbox_guest_ctl_write(mb, &g);
	assert_false(pb_mbox_unload_acked(mb, g.session_id, g.unload_seq));
	assert_int_equal(pb_mbox_guest_ctl_read(mb, &seen, &why), 0);
	assert_int_equal(seen.state, PB_MBOX_GUEST_UNLOADING);
	assert_int_equal(pb_mbox_panic_read(slot, le32toh(lay.panic_size), buf, &v, &why), 1);
	assert_int_equal(v.session_id, seen.session_id);
	pb_mbox_host_ack_unload(mb, seen.session_id, seen.unload_seq);
	assert_true(pb_mbox_unload_acked(mb, g.session_id, g.unload_seq));

	/* Kdump kernel: names the crashed session, reports DONE. */
	assert_int_equal(pb_mbox_guest_ctl_read(mb, &seen, &why), 0);
	g = (struct pb_mbox_guest_info){ .version_major = 1 };
	pb_mbox_guest_ctl_write(mb, &g);
	pb_mbox_ring_init(&g2h_g, mb, &lay, PB_MBOX_G2H);
	pb_mbox_ring_reset(&g2h_g);
	assert_int_equal(pb_mbox_ring_put(&g2h_g, PB_MBOX_MSG_HELLO, &hw, sizeof(hw), &why), 0);
	assert_int_equal(pb_mbox_kdump_encode(&ks, &kw), sizeof(kw));
	assert_int_equal(pb_mbox_ring_put(&g2h_g, PB_MBOX_MSG_KDUMP_STATUS, &kw, sizeof(kw), &why), 0);
	g.session_id = 0x6262;
	g.prev_session = seen.session_id;
	g.role = PB_MBOX_ROLE_KDUMP;
	g.state = PB_MBOX_GUEST_HELLO;
	pb_mbox_guest_ctl_write(mb, &g);

	assert_int_equal(pb_mbox_guest_ctl_read(mb, &seen, &why), 0);
	assert_int_equal(seen.prev_session, 0x5151);
	pb_mbox_ring_init(&g2h_h, mb, &lay, PB_MBOX_G2H);
	assert_int_equal(pb_mbox_ring_get(&g2h_h, buf, &type, &len, &why), 1);
	assert_int_equal(type, PB_MBOX_MSG_HELLO);
	assert_int_equal(pb_mbox_ring_get(&g2h_h, buf, &type, &len, &why), 1);
	assert_int_equal(type, PB_MBOX_MSG_KDUMP_STATUS);
	assert_int_equal(pb_mbox_kdump_decode(buf, len, &kd, &why), 0);
	assert_int_equal(kd.bytes, 4096);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c),
		cmocka_unit_test_setup_teardown(test_format_layout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_layout_rejects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_control_blocks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ring_basic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ring_wrap_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ring_index_wrap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ring_hostile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ring_copy_is_private, setup, teardown),
		cmocka_unit_test(test_hello),
		cmocka_unit_test(test_hello_ack),
		cmocka_unit_test(test_kdump_status),
		cmocka_unit_test_setup_teardown(test_panic_slot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_panic_hostile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_flow, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
