// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: arbitrary bytes as what a hostile peer leaves in the
 * mailbox (protocol/pb_mbox.c). Input: one flags byte, the producer index
 * and the consumer's starting position (little-endian u32 each), then a
 * body that is, all at once:
 *
 *   - a HELLO, HELLO_ACK, KDUMP_STATUS and PANIC payload for the decoders;
 *   - the layout block (its first 64 bytes) for pb_mbox_check_layout();
 *   - the guest control block (its first 64 bytes);
 *   - the g2h ring's data area, read with pb_mbox_ring_get() until it
 *     stops (with flag 1 the harness first fixes up the record CRCs, so
 *     that the fuzzer reaches the length, PAD and sequence checks);
 *   - the panic slot: a 64-byte slot header, then the payload.
 *
 * Besides the sanitizers' checks: every failure has a reason, every
 * decoded string is printable and within its cap, every returned length
 * and span is within its limit and its buffer, the ring never moves past
 * the producer index.
 *
 * Seeds: tests/fuzz/corpus/mbox/: a ring of HELLO + KDUMP_STATUS records
 * (flag 1), the same wrapping with a PAD, a formatted layout block, a
 * guest control block, a PANIC slot, each payload alone.
 */
#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <panicbroker/mailbox.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MB_SIZE PB_MBOX_SIZE_MIN

static uint8_t *mb;
static struct pb_mbox_layout lay;

static void check(int r, const char *why)
{
	if (r < 0 && !why)
		__builtin_trap();	/* a failure without its reason */
}

static void check_str(const char *s, size_t cap)
{
	size_t n = strnlen(s, cap + 1);

	if (n > cap)
		__builtin_trap();
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			__builtin_trap();
}

static void decoders(const uint8_t *body, uint32_t len)
{
	struct pb_mbox_hello_info h;
	struct pb_mbox_hello_ack_info a;
	struct pb_mbox_kdump_info k;
	struct pb_mbox_panic_view v;
	const char *why;
	int r;

	why = NULL;
	r = pb_mbox_hello_decode(body, len, &h, &why);
	check(r, why);
	if (r == 0) {
		check_str(h.release, PB_MBOX_RELEASE_MAX);
		check_str(h.driver_version, PB_MBOX_VERSION_STR_MAX);
	}
	why = NULL;
	r = pb_mbox_hello_ack_decode(body, len, &a, &why);
	check(r, why);
	if (r == 0)
		check_str(a.daemon_version, PB_MBOX_VERSION_STR_MAX);
	why = NULL;
	r = pb_mbox_kdump_decode(body, len, &k, &why);
	check(r, why);
	if (r == 0) {
		check_str(k.reason, PB_MBOX_REASON_MAX);
		if (k.percent > 100 || k.state < 1 || k.state > 4)
			__builtin_trap();
	}
	why = NULL;
	r = pb_mbox_panic_decode(body, len, &v, &why);
	check(r, why);
	if (r == 0) {
		const char *end = (const char *)body + len;

		if (v.msg_len > PB_MBOX_PANIC_MSG_MAX || v.log_len > PB_MBOX_PANIC_LOG_MAX ||
		    v.msg < (const char *)body || v.msg + v.msg_len > end ||
		    v.log < (const char *)body || v.log + v.log_len > end)
			__builtin_trap();
	}
}

static void layout(const uint8_t *body, uint32_t len)
{
	struct pb_mbox_layout l;
	const char *why = NULL;
	int r;

	memset(&l, 0, sizeof(l));
	memcpy(&l, body, len < sizeof(l) ? len : sizeof(l));
	r = pb_mbox_check_layout(&l, MB_SIZE, &why);
	check(r, why);
	if (r == 0) {
		uint32_t t = le32toh(l.total_size);

		if (t > MB_SIZE || le32toh(l.g2h_offset) + le32toh(l.g2h_size) > t ||
		    le32toh(l.h2g_offset) + le32toh(l.h2g_size) > t ||
		    le32toh(l.panic_offset) + le32toh(l.panic_size) > t)
			__builtin_trap();
	}
}

static void guest_ctl(const uint8_t *body, uint32_t len)
{
	struct pb_mbox_header *hdr = (struct pb_mbox_header *)mb;
	struct pb_mbox_guest_info g;
	const char *why = NULL;
	int r;

	memset(&hdr->guest, 0, sizeof(hdr->guest));
	memcpy(&hdr->guest, body, len < sizeof(hdr->guest) ? len : sizeof(hdr->guest));
	r = pb_mbox_guest_ctl_read(mb, &g, &why);
	check(r, why);
	if (r == 0 && g.state > PB_MBOX_GUEST_UNLOADED)
		__builtin_trap();
}

/* What a well-behaved producer would have written, CRC-wise. */
static void fix_crcs(uint8_t *d, uint32_t size)
{
	uint32_t pos = 0;

	while (size - pos >= sizeof(struct pb_mbox_rec)) {
		struct pb_mbox_rec h;
		uint32_t len, crc;

		memcpy(&h, d + pos, sizeof(h));
		len = le32toh(h.len);
		crc = pb_mbox_crc32c(0, &h, 12);
		if (le16toh(h.type) == PB_MBOX_MSG_PAD) {
			h.crc32c = htole32(crc);
			memcpy(d + pos, &h, sizeof(h));
			return;
		}
		if (len > PB_MBOX_RING_PAYLOAD_MAX || len > size - pos - sizeof(h))
			return;
		h.crc32c = htole32(pb_mbox_crc32c(crc, d + pos + sizeof(h), len));
		memcpy(d + pos, &h, sizeof(h));
		pos += sizeof(h) + ((len + 7) & ~7u);
	}
}

static void ring(uint8_t flags, uint32_t prod, uint32_t start,
		 const uint8_t *body, uint32_t len)
{
	struct pb_mbox_header *hdr = (struct pb_mbox_header *)mb;
	static uint8_t buf[PB_MBOX_RING_PAYLOAD_MAX];
	struct pb_mbox_ring r;
	uint32_t off, n, got;
	const char *why;
	uint16_t type;
	int ret, i;

	pb_mbox_ring_init(&r, mb, &lay, PB_MBOX_G2H);
	off = start & (r.size - 1);
	n = len < r.size ? len : r.size;
	/* The body starts where the consumer is, as a producer would have put it. */
	memset(r.data, 0, r.size);
	for (uint32_t i2 = 0; i2 < n; i2++)
		r.data[(off + i2) & (r.size - 1)] = body[i2];
	if (flags & 1) {
		fix_crcs(r.data + off, r.size - off);
		if (off)
			fix_crcs(r.data, off);	/* after a wrap, from offset 0 */
	}
	r.pos = start;
	hdr->g2h_prod.value = htole32(prod);
	for (i = 0, got = 0; i < 10000; i++) {
		why = NULL;
		ret = pb_mbox_ring_get(&r, buf, &type, &n, &why);
		check(ret, why);
		if (ret <= 0)
			break;
		if (n > PB_MBOX_RING_PAYLOAD_MAX || type == PB_MBOX_MSG_PAD)
			__builtin_trap();
		got++;
	}
	if (r.pos - start > prod - start || r.seq < got)
		__builtin_trap();	/* consumed past what was published */
	if (le32toh(hdr->g2h_cons.value) != r.pos && r.pos != start)
		__builtin_trap();
}

static void panic_slot(const uint8_t *body, uint32_t len)
{
	uint8_t *slot = mb + le32toh(lay.panic_offset);
	static uint8_t buf[PB_MBOX_PANIC_PAYLOAD_MAX];
	struct pb_mbox_panic_view v;
	const char *why = NULL;
	uint32_t hl = len < 64 ? len : 64;
	int r;

	memset(slot, 0, 64);
	memcpy(slot, body, hl);
	if (len - hl > PB_MBOX_PANIC_PAYLOAD_MAX)
		len = hl + PB_MBOX_PANIC_PAYLOAD_MAX;
	memcpy(slot + PB_MBOX_PAGE, body + hl, len - hl);
	r = pb_mbox_panic_read(slot, le32toh(lay.panic_size), buf, &v, &why);
	check(r, why);
	if (r == 1 && (v.msg + v.msg_len > (char *)buf + sizeof(buf) ||
		       v.log + v.log_len > (char *)buf + sizeof(buf)))
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t prod, start, len;
	const uint8_t *body;
	const char *why = NULL;

	if (!mb) {
		mb = aligned_alloc(4096, MB_SIZE);
		if (!mb || pb_mbox_format(mb, MB_SIZE, 1, &why) ||
		    pb_mbox_read_layout(mb, MB_SIZE, &lay, &why))
			abort();
	}
	if (size < 9)
		return 0;
	memcpy(&prod, data + 1, 4);
	memcpy(&start, data + 5, 4);
	prod = le32toh(prod);
	start = le32toh(start) & ~7u;	/* a consumer's own position is always aligned */
	body = data + 9;
	len = (uint32_t)(size - 9 > 1 << 20 ? 1 << 20 : size - 9);

	decoders(body, len);
	layout(body, len);
	guest_ctl(body, len);
	ring(data[0], prod, start, body, len);
	panic_slot(body, len);
	return 0;
}
