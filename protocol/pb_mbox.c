// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * The broker channel v1 library: layout, control blocks, rings, payloads
 * and the panic slot of the shared-memory mailbox (protocol/SPEC.md).
 *
 * Freestanding: the same file builds into the guest module and into the
 * host daemon (pb_mbox_internal.h supplies the differences). Pure
 * functions over caller-provided memory: no allocation, no locks, no
 * logging, every loop bounded. Whatever the peer wrote is read once, into
 * a private copy, and only the copy is checked and used.
 */
#include "pb_mbox_internal.h"

#include <panicbroker/mailbox.h>

/* The wire layout, checked at build time on both sides. */
#define PB_CHECK_SIZE(t, n) PB_STATIC_ASSERT(sizeof(struct t) == (n), #t " size")
PB_CHECK_SIZE(pb_mbox_layout, 64);
PB_CHECK_SIZE(pb_mbox_host_ctl, 64);
PB_CHECK_SIZE(pb_mbox_guest_ctl, 64);
PB_CHECK_SIZE(pb_mbox_index, 64);
PB_CHECK_SIZE(pb_mbox_rec, 16);
PB_CHECK_SIZE(pb_mbox_hello, 152);
PB_CHECK_SIZE(pb_mbox_hello_ack, 64);
PB_CHECK_SIZE(pb_mbox_kdump_status, 152);
PB_CHECK_SIZE(pb_mbox_slot, 64);
PB_CHECK_SIZE(pb_mbox_panic, 64);
PB_CHECK_SIZE(pb_mbox_header, PB_MBOX_PAGE);
#define PB_CHECK_OFF(f, o) \
	PB_STATIC_ASSERT(__builtin_offsetof(struct pb_mbox_header, f) == (o), #f " offset")
PB_CHECK_OFF(layout, PB_MBOX_OFF_LAYOUT);
PB_CHECK_OFF(host, PB_MBOX_OFF_HOST_CTL);
PB_CHECK_OFF(guest, PB_MBOX_OFF_GUEST_CTL);
PB_CHECK_OFF(g2h_prod, PB_MBOX_OFF_G2H_PROD);
PB_CHECK_OFF(g2h_cons, PB_MBOX_OFF_G2H_CONS);
PB_CHECK_OFF(h2g_prod, PB_MBOX_OFF_H2G_PROD);
PB_CHECK_OFF(h2g_cons, PB_MBOX_OFF_H2G_CONS);
PB_STATIC_ASSERT(__builtin_offsetof(struct pb_mbox_layout, crc32c) == 56, "layout crc");
PB_STATIC_ASSERT(__builtin_offsetof(struct pb_mbox_guest_ctl, crc32c) == 56, "guest crc");
PB_STATIC_ASSERT(sizeof(struct pb_mbox_panic) + PB_MBOX_PANIC_MSG_MAX + PB_MBOX_REC_ALIGN +
		 PB_MBOX_PANIC_LOG_MAX <= PB_MBOX_PANIC_PAYLOAD_MAX, "panic payload fits");
PB_STATIC_ASSERT(2 * (sizeof(struct pb_mbox_rec) + PB_MBOX_RING_PAYLOAD_MAX) <= PB_MBOX_RING_MIN,
		 "two records fit the smallest ring");

#define PB_REC_HDR	((__u32)sizeof(struct pb_mbox_rec))
#define PB_CRC_OFF	56u	/* layout and guest control blocks */

static int pb_mbox_fail(const char **reason, int err, const char *why)
{
	if (reason)
		*reason = why;
	return err;
}

static int pb_mbox_bad(const char **reason, const char *why)
{
	return pb_mbox_fail(reason, -EBADMSG, why);
}

static __u32 pb_mbox_align8(__u32 n)
{
	return (n + PB_MBOX_REC_ALIGN - 1) & ~(PB_MBOX_REC_ALIGN - 1);
}

/*
 * CRC32C (Castagnoli, reflected polynomial 0x82f63b78), four bits at a
 * time: a 64-byte table, fast enough for 128 KiB in panic context. Start
 * with 0 and chain: crc(crc(0, a), b) == crc(0, ab).
 */
static const __u32 pb_crc32c_nibble[16] = {
	0x00000000, 0x105ec76f, 0x20bd8ede, 0x30e349b1,
	0x417b1dbc, 0x5125dad3, 0x61c69362, 0x7198540d,
	0x82f63b78, 0x92a8fc17, 0xa24bb5a6, 0xb21572c9,
	0xc38d26c4, 0xd3d3e1ab, 0xe330a81a, 0xf36e6f75,
};

__u32 pb_mbox_crc32c(__u32 crc, const void *buf, __u32 len)
{
	const __u8 *p = buf;

	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		crc = (crc >> 4) ^ pb_crc32c_nibble[crc & 15];
		crc = (crc >> 4) ^ pb_crc32c_nibble[crc & 15];
	}
	return ~crc;
}

/* memcpy() that accepts NULL with a length of 0. */
static void pb_mbox_copy(void *dst, const void *src, __u32 n)
{
	if (n)
		memcpy(dst, src, n);
}

/* ---- Layout ---- */

static __u32 pb_mbox_layout_crc(const struct pb_mbox_layout *l)
{
	return pb_mbox_crc32c(0, l, PB_CRC_OFF);
}

int pb_mbox_format_begin(void *mbox, __u32 size, const char **reason)
{
	struct pb_mbox_header *hdr = mbox;

	if (!mbox)
		return pb_mbox_fail(reason, -EINVAL, "no mailbox");
	if (size < PB_MBOX_SIZE_MIN || size > PB_MBOX_SIZE_MAX ||
	    size % PB_MBOX_PAGE)
		return pb_mbox_fail(reason, -EINVAL,
				    "size not a multiple of 4 KiB in 256 KiB..64 MiB");
	/* Invalidate first, so that no reader takes a half-formatted block. */
	PB_MBOX_WRITE_ONCE(hdr->layout.magic, 0);
	PB_MBOX_WMB();
	return 0;
}

void pb_mbox_format_finish(void *mbox, __u32 size, __u64 host_generation)
{
	struct pb_mbox_header *hdr = mbox;
	struct pb_mbox_layout l;
	__u32 rest, ring = PB_MBOX_RING_MAX;

	rest = size - PB_MBOX_HEADER_SIZE - PB_MBOX_PANIC_SLOT_SIZE;
	while (2 * ring > rest)
		ring /= 2;

	memset(&l, 0, sizeof(l));
	l.magic = cpu_to_le32(PB_MBOX_MAGIC);
	l.version_major = cpu_to_le16(PB_MBOX_VERSION_MAJOR);
	l.version_minor = cpu_to_le16(PB_MBOX_VERSION_MINOR);
	l.total_size = cpu_to_le32(size);
	l.header_size = cpu_to_le32(PB_MBOX_HEADER_SIZE);
	l.host_generation = cpu_to_le64(host_generation);
	l.panic_offset = cpu_to_le32(PB_MBOX_HEADER_SIZE);
	l.panic_size = cpu_to_le32(PB_MBOX_PANIC_SLOT_SIZE);
	l.g2h_offset = cpu_to_le32(PB_MBOX_HEADER_SIZE + PB_MBOX_PANIC_SLOT_SIZE);
	l.g2h_size = cpu_to_le32(ring);
	l.h2g_offset = cpu_to_le32(PB_MBOX_HEADER_SIZE + PB_MBOX_PANIC_SLOT_SIZE + ring);
	l.h2g_size = cpu_to_le32(ring);
	l.crc32c = cpu_to_le32(pb_mbox_layout_crc(&l));
	PB_MBOX_WMB();
	memcpy(&hdr->layout, &l, sizeof(l));
	PB_MBOX_WMB();
	pb_mbox_host_set_state(mbox, PB_MBOX_HOST_READY, 0);
}

int pb_mbox_format(void *mbox, __u32 size, __u64 host_generation,
		   const char **reason)
{
	int r = pb_mbox_format_begin(mbox, size, reason);

	if (r < 0)
		return r;
	memset(mbox, 0, size);
	pb_mbox_format_finish(mbox, size, host_generation);
	return 0;
}

/* [off, off + size) is page-aligned, after the header, inside @total. */
static int pb_mbox_area_ok(__u32 off, __u32 size, __u32 total)
{
	return off % PB_MBOX_PAGE == 0 && off >= PB_MBOX_HEADER_SIZE &&
	       size <= total && off <= total - size;
}

static int pb_mbox_overlap(__u32 a, __u32 as, __u32 b, __u32 bs)
{
	return a < b + bs && b < a + as;	/* no overflow: all inside total */
}

static int pb_mbox_ring_size_ok(__u32 size)
{
	return size >= PB_MBOX_RING_MIN && size <= PB_MBOX_RING_MAX &&
	       (size & (size - 1)) == 0;
}

int pb_mbox_check_layout(const struct pb_mbox_layout *l, __u32 mapped_size,
			 const char **reason)
{
	__u32 total = le32_to_cpu(l->total_size);
	__u32 po = le32_to_cpu(l->panic_offset), ps = le32_to_cpu(l->panic_size);
	__u32 go = le32_to_cpu(l->g2h_offset), gs = le32_to_cpu(l->g2h_size);
	__u32 ho = le32_to_cpu(l->h2g_offset), hs = le32_to_cpu(l->h2g_size);

	if (le32_to_cpu(l->magic) != PB_MBOX_MAGIC)
		return pb_mbox_fail(reason, -EBADMSG, "no mailbox magic");
	if (le32_to_cpu(l->crc32c) != pb_mbox_layout_crc(l))
		return pb_mbox_fail(reason, -EBADMSG, "layout CRC mismatch");
	if (le16_to_cpu(l->version_major) != PB_MBOX_VERSION_MAJOR)
		return pb_mbox_fail(reason, -EPROTO, "unsupported major version");
	if (le32_to_cpu(l->header_size) != PB_MBOX_HEADER_SIZE)
		return pb_mbox_fail(reason, -EBADMSG, "header size is not 4 KiB");
	if (total < PB_MBOX_SIZE_MIN || total > PB_MBOX_SIZE_MAX ||
	    total % PB_MBOX_PAGE || total > mapped_size)
		return pb_mbox_fail(reason, -EBADMSG, "total size out of range");
	if (!pb_mbox_area_ok(po, ps, total) || ps < PB_MBOX_PANIC_SLOT_SIZE ||
	    ps > PB_MBOX_PANIC_SLOT_MAX)
		return pb_mbox_fail(reason, -EBADMSG, "panic slot out of range");
	if (!pb_mbox_area_ok(go, gs, total) || !pb_mbox_ring_size_ok(gs))
		return pb_mbox_fail(reason, -EBADMSG, "g2h ring out of range");
	if (!pb_mbox_area_ok(ho, hs, total) || !pb_mbox_ring_size_ok(hs))
		return pb_mbox_fail(reason, -EBADMSG, "h2g ring out of range");
	if (pb_mbox_overlap(po, ps, go, gs) || pb_mbox_overlap(po, ps, ho, hs) ||
	    pb_mbox_overlap(go, gs, ho, hs))
		return pb_mbox_fail(reason, -EBADMSG, "areas overlap");
	return 0;
}

int pb_mbox_read_layout(const void *mbox, __u32 mapped_size,
			struct pb_mbox_layout *copy, const char **reason)
{
	if (!mbox || mapped_size < PB_MBOX_HEADER_SIZE)
		return pb_mbox_fail(reason, -EINVAL, "mapping smaller than the header");
	PB_MBOX_RMB();
	memcpy(copy, mbox, sizeof(*copy));
	return pb_mbox_check_layout(copy, mapped_size, reason);
}

/* ---- Control blocks ---- */

void pb_mbox_guest_ctl_write(void *mbox, const struct pb_mbox_guest_info *g)
{
	struct pb_mbox_header *hdr = mbox;
	struct pb_mbox_guest_ctl c;

	memset(&c, 0, sizeof(c));
	c.magic = cpu_to_le32(PB_MBOX_GUEST_MAGIC);
	c.version_major = cpu_to_le16(g->version_major);
	c.version_minor = cpu_to_le16(g->version_minor);
	c.session_id = cpu_to_le64(g->session_id);
	c.session_generation = cpu_to_le64(g->session_generation);
	c.prev_session = cpu_to_le64(g->prev_session);
	c.role = cpu_to_le32(g->role);
	c.state = cpu_to_le32(g->state);
	c.unload_seq = cpu_to_le32(g->unload_seq);
	c.crc32c = cpu_to_le32(pb_mbox_crc32c(0, &c, PB_CRC_OFF));
	/* Whatever we wrote before (the panic slot, a HELLO) is seen first. */
	PB_MBOX_WMB();
	memcpy(&hdr->guest, &c, sizeof(c));
	PB_MBOX_WMB();
}

int pb_mbox_guest_ctl_read(const void *mbox, struct pb_mbox_guest_info *g,
			   const char **reason)
{
	const struct pb_mbox_header *hdr = mbox;
	struct pb_mbox_guest_ctl c;

	PB_MBOX_RMB();
	memcpy(&c, &hdr->guest, sizeof(c));
	PB_MBOX_RMB();
	memset(g, 0, sizeof(*g));
	if (c.magic == 0)
		return 0;	/* never written: no guest yet */
	if (le32_to_cpu(c.magic) != PB_MBOX_GUEST_MAGIC)
		return pb_mbox_fail(reason, -EBADMSG, "no guest magic");
	if (le32_to_cpu(c.crc32c) != pb_mbox_crc32c(0, &c, PB_CRC_OFF))
		return pb_mbox_fail(reason, -EBADMSG, "guest control CRC mismatch");
	g->version_major = le16_to_cpu(c.version_major);
	g->version_minor = le16_to_cpu(c.version_minor);
	g->session_id = le64_to_cpu(c.session_id);
	g->session_generation = le64_to_cpu(c.session_generation);
	g->prev_session = le64_to_cpu(c.prev_session);
	g->role = le32_to_cpu(c.role);
	g->state = le32_to_cpu(c.state);
	g->unload_seq = le32_to_cpu(c.unload_seq);
	if (g->version_major != PB_MBOX_VERSION_MAJOR)
		return pb_mbox_fail(reason, -EPROTO, "guest chose another major version");
	if (g->role != PB_MBOX_ROLE_NORMAL && g->role != PB_MBOX_ROLE_KDUMP)
		return pb_mbox_fail(reason, -EPROTO, "unknown guest role");
	if (g->state > PB_MBOX_GUEST_UNLOADED)
		return pb_mbox_fail(reason, -EPROTO, "unknown guest state");
	if (g->state != PB_MBOX_GUEST_NONE && g->session_id == 0)
		return pb_mbox_fail(reason, -EPROTO, "session id 0");
	return 0;
}

void pb_mbox_host_ctl_read(const void *mbox, struct pb_mbox_host_info *h)
{
	const struct pb_mbox_header *hdr = mbox;

	h->state = le32_to_cpu(PB_MBOX_READ_ONCE(hdr->host.state));
	PB_MBOX_RMB();
	h->accepted_session = le64_to_cpu(PB_MBOX_READ_ONCE(hdr->host.accepted_session));
	h->unload_ack_seq = le32_to_cpu(PB_MBOX_READ_ONCE(hdr->host.unload_ack_seq));
	PB_MBOX_RMB();
	h->unload_ack_session = le64_to_cpu(PB_MBOX_READ_ONCE(hdr->host.unload_ack_session));
	h->heartbeat = le64_to_cpu(PB_MBOX_READ_ONCE(hdr->host.heartbeat));
}

void pb_mbox_host_set_state(void *mbox, __u32 state, __u64 accepted_session)
{
	struct pb_mbox_header *hdr = mbox;

	PB_MBOX_WRITE_ONCE(hdr->host.accepted_session, cpu_to_le64(accepted_session));
	PB_MBOX_WMB();
	PB_MBOX_WRITE_ONCE(hdr->host.state, cpu_to_le32(state));
	PB_MBOX_WMB();
}

void pb_mbox_host_ack_unload(void *mbox, __u64 session, __u32 unload_seq)
{
	struct pb_mbox_header *hdr = mbox;

	PB_MBOX_WRITE_ONCE(hdr->host.unload_ack_session, cpu_to_le64(session));
	PB_MBOX_WMB();
	PB_MBOX_WRITE_ONCE(hdr->host.unload_ack_seq, cpu_to_le32(unload_seq));
	PB_MBOX_WMB();
}

void pb_mbox_host_heartbeat(void *mbox, __u64 count)
{
	struct pb_mbox_header *hdr = mbox;

	PB_MBOX_WRITE_ONCE(hdr->host.heartbeat, cpu_to_le64(count));
}

int pb_mbox_unload_acked(const void *mbox, __u64 session, __u32 seq)
{
	const struct pb_mbox_header *hdr = mbox;
	__u32 s;
	__u64 id;

	/* The host writes the session, then the seq: read them the other way. */
	s = le32_to_cpu(PB_MBOX_READ_ONCE(hdr->host.unload_ack_seq));
	PB_MBOX_RMB();
	id = le64_to_cpu(PB_MBOX_READ_ONCE(hdr->host.unload_ack_session));
	return s == seq && id == session;
}

/* ---- Rings ---- */

void pb_mbox_ring_init(struct pb_mbox_ring *r, void *mbox,
		       const struct pb_mbox_layout *copy, int dir)
{
	struct pb_mbox_header *hdr = mbox;

	if (dir == PB_MBOX_G2H) {
		r->prod = &hdr->g2h_prod.value;
		r->cons = &hdr->g2h_cons.value;
		r->data = (__u8 *)mbox + le32_to_cpu(copy->g2h_offset);
		r->size = le32_to_cpu(copy->g2h_size);
	} else {
		r->prod = &hdr->h2g_prod.value;
		r->cons = &hdr->h2g_cons.value;
		r->data = (__u8 *)mbox + le32_to_cpu(copy->h2g_offset);
		r->size = le32_to_cpu(copy->h2g_size);
	}
	r->pos = 0;
	r->seq = 0;
}

void pb_mbox_ring_reset(struct pb_mbox_ring *r)
{
	r->pos = 0;
	r->seq = 0;
	PB_MBOX_WRITE_ONCE(*r->prod, 0);
	PB_MBOX_WRITE_ONCE(*r->cons, 0);
	PB_MBOX_WMB();
}

/* Write one record at @off; a PAD's body is left as it is. */
static void pb_mbox_ring_write(struct pb_mbox_ring *r, __u32 off, __u16 type,
			       const void *payload, __u32 len)
{
	static const __u8 zero[PB_MBOX_REC_ALIGN];
	struct pb_mbox_rec h;
	__u32 crc;

	h.len = cpu_to_le32(len);
	h.type = cpu_to_le16(type);
	h.flags = 0;
	h.seq = cpu_to_le32(r->seq++);
	crc = pb_mbox_crc32c(0, &h, 12);
	if (type != PB_MBOX_MSG_PAD)
		crc = pb_mbox_crc32c(crc, payload, len);
	h.crc32c = cpu_to_le32(crc);
	memcpy(r->data + off, &h, sizeof(h));
	if (type != PB_MBOX_MSG_PAD) {
		pb_mbox_copy(r->data + off + PB_REC_HDR, payload, len);
		pb_mbox_copy(r->data + off + PB_REC_HDR + len, zero,
			     pb_mbox_align8(len) - len);
	}
}

int pb_mbox_ring_put(struct pb_mbox_ring *r, __u16 type, const void *payload,
		     __u32 len, const char **reason)
{
	__u32 cons, used, off, contig, need, skip = 0;

	if (type == PB_MBOX_MSG_PAD || (len && !payload))
		return pb_mbox_fail(reason, -EINVAL, "bad record");
	if (len > PB_MBOX_RING_PAYLOAD_MAX)
		return pb_mbox_fail(reason, -EMSGSIZE, "payload over 4 KiB");

	cons = le32_to_cpu(PB_MBOX_READ_ONCE(*r->cons));
	/* The consumer's reads of what we are about to overwrite are done. */
	PB_MBOX_MB();
	used = r->pos - cons;
	if (used > r->size || used % PB_MBOX_REC_ALIGN)
		return pb_mbox_fail(reason, -EPROTO, "consumer index out of range");

	need = PB_REC_HDR + pb_mbox_align8(len);
	off = r->pos & (r->size - 1);
	contig = r->size - off;
	if (contig < need)
		skip = contig;	/* never wrap a record: pad to the end */
	if (r->size - used < skip + need)
		return pb_mbox_fail(reason, -ENOSPC, "ring full");

	if (skip >= PB_REC_HDR)
		pb_mbox_ring_write(r, off, PB_MBOX_MSG_PAD, NULL, skip - PB_REC_HDR);
	if (skip)
		off = 0;
	pb_mbox_ring_write(r, off, type, payload, len);
	PB_MBOX_WMB();
	r->pos += skip + need;
	PB_MBOX_WRITE_ONCE(*r->prod, cpu_to_le32(r->pos));
	return 0;
}

/* Consumer: done with @n bytes; tell the producer. */
static void pb_mbox_ring_advance(struct pb_mbox_ring *r, __u32 n)
{
	PB_MBOX_MB();
	r->pos += n;
	PB_MBOX_WRITE_ONCE(*r->cons, cpu_to_le32(r->pos));
}

int pb_mbox_ring_get(struct pb_mbox_ring *r, void *buf, __u16 *type,
		     __u32 *len, const char **reason)
{
	struct pb_mbox_rec h;
	__u32 prod, avail, off, contig, rlen, need, crc;
	__u16 rtype;

	prod = le32_to_cpu(PB_MBOX_READ_ONCE(*r->prod));
	PB_MBOX_RMB();
	avail = prod - r->pos;
	if (avail > r->size || avail % PB_MBOX_REC_ALIGN)
		return pb_mbox_fail(reason, -EPROTO, "producer index out of range");

	/* At most two rounds: a skip or PAD moves us to offset 0, where none is allowed. */
	for (;;) {
		if (!avail)
			return 0;
		off = r->pos & (r->size - 1);
		contig = r->size - off;
		if (contig < PB_REC_HDR) {
			/* No room for a header before the end: skipped without one. */
			if (avail < contig)
				return pb_mbox_bad(reason, "index inside the end gap");
			pb_mbox_ring_advance(r, contig);
			avail -= contig;
			continue;
		}
		if (avail < PB_REC_HDR)
			return pb_mbox_fail(reason, -EBADMSG, "partial record header");

		memcpy(&h, r->data + off, sizeof(h));
		rlen = le32_to_cpu(h.len);
		rtype = le16_to_cpu(h.type);
		crc = pb_mbox_crc32c(0, &h, 12);

		if (rtype == PB_MBOX_MSG_PAD) {
			if (off == 0)
				return pb_mbox_bad(reason, "PAD at offset 0");
			if (rlen != contig - PB_REC_HDR)
				return pb_mbox_bad(reason, "PAD not ending at the wrap");
			if (avail < contig)
				return pb_mbox_bad(reason, "PAD past the producer index");
			need = contig;
		} else {
			if (rlen > PB_MBOX_RING_PAYLOAD_MAX)
				return pb_mbox_fail(reason, -EMSGSIZE, "record payload over 4 KiB");
			need = PB_REC_HDR + pb_mbox_align8(rlen);
			if (need > contig)
				return pb_mbox_bad(reason, "record crosses the wrap");
			if (need > avail)
				return pb_mbox_bad(reason, "record past the producer index");
			pb_mbox_copy(buf, r->data + off + PB_REC_HDR, rlen);
			crc = pb_mbox_crc32c(crc, buf, rlen);
		}
		if (crc != le32_to_cpu(h.crc32c))
			return pb_mbox_fail(reason, -EBADMSG, "record CRC mismatch");
		if (le32_to_cpu(h.seq) != r->seq)
			return pb_mbox_fail(reason, -EPROTO, "record sequence gap");
		if (rtype == PB_MBOX_MSG_PAD) {
			r->seq++;
			pb_mbox_ring_advance(r, need);
			avail -= need;
			continue;
		}
		if (rtype == PB_MBOX_MSG_PANIC || rtype == PB_MBOX_MSG_UNLOAD ||
		    rtype == PB_MBOX_MSG_UNLOAD_ACK)
			return pb_mbox_fail(reason, -EPROTO, "message type not allowed on a ring");
		r->seq++;
		pb_mbox_ring_advance(r, need);
		*type = rtype;
		*len = rlen;
		return 1;
	}
}

/* ---- Payloads ---- */

/* Encode a NUL-terminated string into a capped field; non-printables become '?'. */
static int pb_mbox_str_put(__u8 *dst, __le16 *dst_len, const char *s, __u32 cap)
{
	__u32 i, n;

	for (n = 0; n <= cap && s[n]; n++)
		;
	if (n > cap)
		return -EMSGSIZE;
	for (i = 0; i < n; i++)
		dst[i] = (s[i] >= 0x20 && s[i] <= 0x7e) ? s[i] : '?';
	*dst_len = cpu_to_le16(n);
	return 0;
}

/* Decode a capped field into @out (cap + 1 bytes, NUL-terminated). */
static int pb_mbox_str_get(char *out, const __u8 *src, __le16 src_len,
			   __u32 cap, const char **reason)
{
	__u32 i, n = le16_to_cpu(src_len);

	out[0] = '\0';
	if (n > cap)
		return pb_mbox_fail(reason, -EMSGSIZE, "string over its cap");
	for (i = 0; i < n; i++) {
		if (src[i] < 0x20 || src[i] > 0x7e)
			return pb_mbox_fail(reason, -EBADMSG, "string not printable ASCII");
		out[i] = (char)src[i];
	}
	out[n] = '\0';
	return 0;
}

int pb_mbox_hello_encode(const struct pb_mbox_hello_info *in,
			 struct pb_mbox_hello *out)
{
	memset(out, 0, sizeof(*out));
	memcpy(out->boot_id, in->boot_id, sizeof(out->boot_id));
	out->crash_base = cpu_to_le64(in->crash_base);
	out->crash_size = cpu_to_le64(in->crash_size);
	out->vmcoreinfo_paddr = cpu_to_le64(in->vmcoreinfo_paddr);
	out->flags = cpu_to_le32(in->flags);
	if (pb_mbox_str_put(out->release, &out->release_len, in->release,
			    PB_MBOX_RELEASE_MAX) ||
	    pb_mbox_str_put(out->driver_version, &out->driver_version_len,
			    in->driver_version, PB_MBOX_VERSION_STR_MAX))
		return -EMSGSIZE;
	return sizeof(*out);
}

int pb_mbox_hello_decode(const void *payload, __u32 len,
			 struct pb_mbox_hello_info *out, const char **reason)
{
	struct pb_mbox_hello w;
	int r;

	memset(out, 0, sizeof(*out));
	if (len < sizeof(w))
		return pb_mbox_fail(reason, -EBADMSG, "HELLO too short");
	memcpy(&w, payload, sizeof(w));	/* longer: a later minor appended */
	memcpy(out->boot_id, w.boot_id, sizeof(out->boot_id));
	out->crash_base = le64_to_cpu(w.crash_base);
	out->crash_size = le64_to_cpu(w.crash_size);
	out->vmcoreinfo_paddr = le64_to_cpu(w.vmcoreinfo_paddr);
	out->flags = le32_to_cpu(w.flags);
	r = pb_mbox_str_get(out->release, w.release, w.release_len,
			    PB_MBOX_RELEASE_MAX, reason);
	if (!r)
		r = pb_mbox_str_get(out->driver_version, w.driver_version,
				    w.driver_version_len, PB_MBOX_VERSION_STR_MAX,
				    reason);
	if (!r && out->crash_size > ~(__u64)0 - out->crash_base)
		r = pb_mbox_fail(reason, -EBADMSG, "crash kernel range wraps");
	return r;
}

int pb_mbox_hello_ack_encode(const struct pb_mbox_hello_ack_info *in,
			     struct pb_mbox_hello_ack *out)
{
	memset(out, 0, sizeof(*out));
	out->session_id = cpu_to_le64(in->session_id);
	out->host_generation = cpu_to_le64(in->host_generation);
	out->poll_ms = cpu_to_le32(in->poll_ms);
	out->unload_wait_ms = cpu_to_le32(in->unload_wait_ms);
	if (pb_mbox_str_put(out->daemon_version, &out->daemon_version_len,
			    in->daemon_version, PB_MBOX_VERSION_STR_MAX))
		return -EMSGSIZE;
	return sizeof(*out);
}

int pb_mbox_hello_ack_decode(const void *payload, __u32 len,
			     struct pb_mbox_hello_ack_info *out,
			     const char **reason)
{
	struct pb_mbox_hello_ack w;

	memset(out, 0, sizeof(*out));
	if (len < sizeof(w))
		return pb_mbox_fail(reason, -EBADMSG, "HELLO_ACK too short");
	memcpy(&w, payload, sizeof(w));
	out->session_id = le64_to_cpu(w.session_id);
	out->host_generation = le64_to_cpu(w.host_generation);
	out->poll_ms = le32_to_cpu(w.poll_ms);
	out->unload_wait_ms = le32_to_cpu(w.unload_wait_ms);
	if (out->session_id == 0)
		return pb_mbox_fail(reason, -EPROTO, "HELLO_ACK for session 0");
	return pb_mbox_str_get(out->daemon_version, w.daemon_version,
			       w.daemon_version_len, PB_MBOX_VERSION_STR_MAX,
			       reason);
}

int pb_mbox_kdump_encode(const struct pb_mbox_kdump_info *in,
			 struct pb_mbox_kdump_status *out)
{
	memset(out, 0, sizeof(*out));
	if (in->state < PB_MBOX_KDUMP_START || in->state > PB_MBOX_KDUMP_FAILED ||
	    in->percent > 100)
		return -EINVAL;
	out->state = cpu_to_le32(in->state);
	out->percent = cpu_to_le32(in->percent);
	out->bytes = cpu_to_le64(in->bytes);
	if (pb_mbox_str_put(out->reason, &out->reason_len, in->reason,
			    PB_MBOX_REASON_MAX))
		return -EMSGSIZE;
	return sizeof(*out);
}

int pb_mbox_kdump_decode(const void *payload, __u32 len,
			 struct pb_mbox_kdump_info *out, const char **reason)
{
	struct pb_mbox_kdump_status w;

	memset(out, 0, sizeof(*out));
	if (len < sizeof(w))
		return pb_mbox_fail(reason, -EBADMSG, "KDUMP_STATUS too short");
	memcpy(&w, payload, sizeof(w));
	out->state = le32_to_cpu(w.state);
	out->percent = le32_to_cpu(w.percent);
	out->bytes = le64_to_cpu(w.bytes);
	if (out->state < PB_MBOX_KDUMP_START || out->state > PB_MBOX_KDUMP_FAILED)
		return pb_mbox_fail(reason, -EPROTO, "unknown kdump state");
	if (out->percent > 100)
		return pb_mbox_fail(reason, -EBADMSG, "percent over 100");
	return pb_mbox_str_get(out->reason, w.reason, w.reason_len,
			       PB_MBOX_REASON_MAX, reason);
}

/* ---- Panic slot ---- */

int pb_mbox_panic_write(void *slot, __u32 slot_size, __u64 session,
			__u32 seq, const struct pb_mbox_panic_info *info,
			const char *msg, __u32 msg_len,
			const char *log, __u32 log_len)
{
	static const __u8 zero[PB_MBOX_REC_ALIGN];
	struct pb_mbox_slot *s = slot;
	__u8 *payload = (__u8 *)slot + PB_MBOX_PAGE;
	struct pb_mbox_slot h;
	struct pb_mbox_panic p;
	__u32 flags, msg_pad, total, crc;

	if (!slot || !info || slot_size < PB_MBOX_PANIC_SLOT_SIZE)
		return -EINVAL;
	if (!msg)
		msg_len = 0;
	if (!log)
		log_len = 0;
	flags = info->flags & ~(__u32)PB_MBOX_PANIC_LOG_TRUNCATED;
	if (msg_len > PB_MBOX_PANIC_MSG_MAX)
		msg_len = PB_MBOX_PANIC_MSG_MAX;	/* the head of the message */
	if (log_len > PB_MBOX_PANIC_LOG_MAX) {
		log += log_len - PB_MBOX_PANIC_LOG_MAX;	/* the tail of the log */
		log_len = PB_MBOX_PANIC_LOG_MAX;
		flags |= PB_MBOX_PANIC_LOG_TRUNCATED;
	}
	msg_pad = pb_mbox_align8(msg_len) - msg_len;

	memset(&p, 0, sizeof(p));
	p.uptime_ns = cpu_to_le64(info->uptime_ns);
	p.taint = cpu_to_le64(info->taint);
	p.cpu = cpu_to_le32(info->cpu);
	p.flags = cpu_to_le32(flags);
	p.msg_offset = cpu_to_le32(sizeof(p));
	p.msg_len = cpu_to_le32(msg_len);
	p.log_offset = cpu_to_le32(sizeof(p) + msg_len + msg_pad);
	p.log_len = cpu_to_le32(log_len);
	total = sizeof(p) + msg_len + msg_pad + log_len;

	memset(&h, 0, sizeof(h));
	h.seq = cpu_to_le32(seq);
	h.session_id = cpu_to_le64(session);
	h.payload_len = cpu_to_le32(total);
	/* The CRC comes from our own buffers: shared memory is never read back. */
	crc = pb_mbox_crc32c(0, (const __u8 *)&h + 4, 16);
	crc = pb_mbox_crc32c(crc, &p, sizeof(p));
	crc = pb_mbox_crc32c(crc, msg, msg_len);
	crc = pb_mbox_crc32c(crc, zero, msg_pad);
	crc = pb_mbox_crc32c(crc, log, log_len);
	h.crc32c = cpu_to_le32(crc);
	h.state = cpu_to_le32(PB_MBOX_SLOT_WRITING);

	PB_MBOX_WRITE_ONCE(s->state, cpu_to_le32(PB_MBOX_SLOT_WRITING));
	PB_MBOX_WMB();
	memcpy(s, &h, sizeof(h));
	memcpy(payload, &p, sizeof(p));
	pb_mbox_copy(payload + sizeof(p), msg, msg_len);
	pb_mbox_copy(payload + sizeof(p) + msg_len, zero, msg_pad);
	pb_mbox_copy(payload + sizeof(p) + msg_len + msg_pad, log, log_len);
	PB_MBOX_WMB();
	PB_MBOX_WRITE_ONCE(s->state, cpu_to_le32(PB_MBOX_SLOT_COMPLETE));
	PB_MBOX_WMB();
	return total;
}

void pb_mbox_panic_set_timing(void *slot, __u32 tier_us, __u32 unload_wait_us)
{
	struct pb_mbox_slot *s = slot;

	PB_MBOX_WRITE_ONCE(s->tier_us, cpu_to_le32(tier_us));
	PB_MBOX_WRITE_ONCE(s->unload_wait_us, cpu_to_le32(unload_wait_us));
	PB_MBOX_WMB();
}

/* @off/@len lie inside [sizeof(struct pb_mbox_panic), @total). */
static int pb_mbox_span_ok(__u32 off, __u32 len, __u32 total)
{
	return off >= sizeof(struct pb_mbox_panic) && off <= total &&
	       len <= total - off;
}

int pb_mbox_panic_decode(const void *payload, __u32 len,
			 struct pb_mbox_panic_view *out, const char **reason)
{
	struct pb_mbox_panic p;
	__u32 mo, ml, lo, ll;

	memset(out, 0, sizeof(*out));
	if (len > PB_MBOX_PANIC_PAYLOAD_MAX)
		return pb_mbox_fail(reason, -EMSGSIZE, "PANIC payload over 128 KiB");
	if (len < sizeof(p))
		return pb_mbox_fail(reason, -EBADMSG, "PANIC too short");
	memcpy(&p, payload, sizeof(p));
	mo = le32_to_cpu(p.msg_offset);
	ml = le32_to_cpu(p.msg_len);
	lo = le32_to_cpu(p.log_offset);
	ll = le32_to_cpu(p.log_len);
	if (ml > PB_MBOX_PANIC_MSG_MAX)
		return pb_mbox_fail(reason, -EMSGSIZE, "panic message over 1 KiB");
	if (ll > PB_MBOX_PANIC_LOG_MAX)
		return pb_mbox_fail(reason, -EMSGSIZE, "panic log over 120 KiB");
	if (!pb_mbox_span_ok(mo, ml, len) || !pb_mbox_span_ok(lo, ll, len))
		return pb_mbox_fail(reason, -EBADMSG, "panic message or log outside the payload");
	out->info.uptime_ns = le64_to_cpu(p.uptime_ns);
	out->info.taint = le64_to_cpu(p.taint);
	out->info.cpu = le32_to_cpu(p.cpu);
	out->info.flags = le32_to_cpu(p.flags);
	out->msg = (const char *)payload + mo;
	out->msg_len = ml;
	out->log = (const char *)payload + lo;
	out->log_len = ll;
	return 0;
}

int pb_mbox_panic_read(const void *slot, __u32 slot_size, void *buf,
		       struct pb_mbox_panic_view *out, const char **reason)
{
	const struct pb_mbox_slot *s = slot;
	struct pb_mbox_slot h;
	__u32 state, len, crc;
	int r;

	memset(out, 0, sizeof(*out));
	if (!slot || slot_size < PB_MBOX_PANIC_SLOT_SIZE)
		return pb_mbox_fail(reason, -EINVAL, "panic slot too small");
	state = le32_to_cpu(PB_MBOX_READ_ONCE(s->state));
	PB_MBOX_RMB();
	if (state == PB_MBOX_SLOT_EMPTY || state == PB_MBOX_SLOT_WRITING)
		return 0;
	if (state != PB_MBOX_SLOT_COMPLETE)
		return pb_mbox_fail(reason, -EBADMSG, "unknown panic slot state");

	memcpy(&h, s, sizeof(h));
	len = le32_to_cpu(h.payload_len);
	if (len > PB_MBOX_PANIC_PAYLOAD_MAX)
		return pb_mbox_fail(reason, -EMSGSIZE, "PANIC payload over 128 KiB");
	pb_mbox_copy(buf, (const __u8 *)slot + PB_MBOX_PAGE, len);
	PB_MBOX_RMB();
	if (le32_to_cpu(PB_MBOX_READ_ONCE(s->state)) != PB_MBOX_SLOT_COMPLETE)
		return 0;	/* rewritten while we copied: next poll */

	crc = pb_mbox_crc32c(0, (const __u8 *)&h + 4, 16);
	crc = pb_mbox_crc32c(crc, buf, len);
	if (crc != le32_to_cpu(h.crc32c))
		return pb_mbox_fail(reason, -EBADMSG, "panic slot CRC mismatch");
	r = pb_mbox_panic_decode(buf, len, out, reason);
	if (r < 0)
		return r;
	out->session_id = le64_to_cpu(h.session_id);
	out->seq = le32_to_cpu(h.seq);
	out->tier_us = le32_to_cpu(h.tier_us);
	out->unload_wait_us = le32_to_cpu(h.unload_wait_us);
	if (out->session_id == 0)
		return pb_mbox_fail(reason, -EPROTO, "panic slot for session 0");
	return 1;
}
