// SPDX-License-Identifier: MIT
/*
 * Unit tests: the vmcore library on hand-built dumps in memfds: flattened
 * streams -> the exact standard bytes, hostile streams -> clear errors and no
 * write past the cap, the phys_base repair, vmcoreinfo from kdump and ELF.
 */
#include <elf.h>
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
#include <unistd.h>
#include <cmocka.h>

#include "vmcore.h"

/* --- building blocks -------------------------------------------------- */

struct buf {
	uint8_t *p;
	size_t len, cap;
};

static void buf_reserve(struct buf *b, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
}

static void buf_put(struct buf *b, const void *data, size_t n)
{
	buf_reserve(b, n);
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

static void buf_zero(struct buf *b, size_t n)
{
	buf_reserve(b, n);
	memset(b->p + b->len, 0, n);
	b->len += n;
}

static void buf_be64(struct buf *b, uint64_t v)
{
	uint8_t x[8];

	for (int i = 7; i >= 0; i--, v >>= 8)
		x[i] = v & 0xff;
	buf_put(b, x, 8);
}

static void buf_free(struct buf *b)
{
	free(b->p);
	*b = (struct buf){ 0 };
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++, v >>= 8)
		p[i] = v & 0xff;
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++, v >>= 8)
		p[i] = v & 0xff;
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void flat_header(struct buf *b, uint64_t type, uint64_t version)
{
	uint8_t h[VMCORE_FLAT_HEADER_SIZE] = "makedumpfile";

	buf_put(b, h, 16);
	buf_be64(b, type);
	buf_be64(b, version);
	buf_put(b, h + 32, sizeof(h) - 32);
}

static void flat_record(struct buf *b, uint64_t off, const void *data, size_t len)
{
	buf_be64(b, off);
	buf_be64(b, len);
	buf_put(b, data, len);
}

static void flat_end(struct buf *b)
{
	buf_be64(b, UINT64_MAX);
	buf_be64(b, UINT64_MAX);
}

static int memfd_with(const void *data, size_t len)
{
	int fd = memfd_create("vmcore-test", MFD_CLOEXEC);

	assert_true(fd >= 0);
	if (len)
		assert_int_equal(pwrite(fd, data, len, 0), (ssize_t)len);
	return fd;
}

static off_t fd_size(int fd)
{
	struct stat st;

	assert_int_equal(fstat(fd, &st), 0);
	return st.st_size;
}

static uint8_t *fd_bytes(int fd, size_t *ret_len)
{
	size_t len = fd_size(fd);
	uint8_t *p = malloc(len + 1);

	assert_non_null(p);
	assert_int_equal(pread(fd, p, len, 0), (ssize_t)len);
	*ret_len = len;
	return p;
}

/* Runs vmcore_unflatten() on @stream; returns its result, the output in
 * *ret_out (an fd the caller closes) and the message in @err. */
static int unflatten(const struct buf *stream, uint64_t max, int *ret_out,
		     char *err, size_t errlen)
{
	int in = memfd_with(stream->p, stream->len);
	int out = memfd_with(NULL, 0);
	int r;

	err[0] = '\0';
	r = vmcore_unflatten(in, out, max, err, errlen);
	close(in);
	*ret_out = out;
	return r;
}

/* --- unflatten ----------------------------------------------------------- */

static void test_unflatten_basic(void **state)
{
	struct buf s = { 0 };
	uint8_t big[5000], *got, expect[3 * 4096 + 5000] = { 0 };
	size_t len;
	char err[256];
	int out;

	(void)state;
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = i * 7 + 1;
	flat_header(&s, 1, 1);
	/* out of order, overlapping, with holes: as QEMU writes them */
	flat_record(&s, 100, "hello", 5);
	flat_record(&s, 0, "AB", 2);
	flat_record(&s, 3 * 4096, big, sizeof(big));
	flat_record(&s, 102, "XY", 2);
	flat_end(&s);

	memcpy(expect, "AB", 2);
	memcpy(expect + 100, "heXYo", 5);
	memcpy(expect + 3 * 4096, big, sizeof(big));

	assert_int_equal(unflatten(&s, 1 << 20, &out, err, sizeof(err)), 0);
	got = fd_bytes(out, &len);
	assert_int_equal(len, sizeof(expect));
	assert_memory_equal(got, expect, sizeof(expect));
	assert_int_equal(vmcore_detect(out), VMCORE_UNKNOWN);
	free(got);
	close(out);
	buf_free(&s);
}

static void test_unflatten_big_record(void **state)
{
	const size_t n = VMCORE_COPY_CHUNK * 2 + VMCORE_COPY_CHUNK / 2 + 3;
	const uint64_t off = VMCORE_COPY_CHUNK + 7;
	struct buf s = { 0 };
	uint8_t *data = malloc(n), *got;
	size_t len;
	char err[256];
	int out;

	(void)state;
	assert_non_null(data);
	for (size_t i = 0; i < n; i++)
		data[i] = (i >> 3) ^ i;
	flat_header(&s, 1, 1);
	flat_record(&s, off, data, n);
	flat_end(&s);
	assert_int_equal(unflatten(&s, off + n, &out, err, sizeof(err)), 0);
	got = fd_bytes(out, &len);
	assert_int_equal(len, off + n);
	assert_memory_equal(got + off, data, n);
	for (size_t i = 0; i < off; i++)
		assert_int_equal(got[i], 0);
	free(got);
	free(data);
	close(out);
	buf_free(&s);
}

static void test_unflatten_pipe_and_truncate(void **state)
{
	struct buf s = { 0 };
	uint8_t junk[10000], *got;
	char err[256] = "";
	int p[2], out;
	size_t len;

	(void)state;
	flat_header(&s, 1, 1);
	flat_record(&s, 4, "data", 4);
	flat_record(&s, 0, "some", 4);
	flat_end(&s);
	assert_true(s.len < 65536);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], s.p, s.len), (ssize_t)s.len);
	close(p[1]);

	/* the output had older, longer content: it must not survive */
	memset(junk, 0xff, sizeof(junk));
	out = memfd_with(junk, sizeof(junk));
	assert_int_equal(vmcore_unflatten(p[0], out, 1 << 20, err, sizeof(err)), 0);
	got = fd_bytes(out, &len);
	assert_int_equal(len, 8);
	assert_memory_equal(got, "somedata", 8);
	free(got);
	close(p[0]);

	/* the same file on both sides is refused before anything is touched */
	assert_int_equal(vmcore_unflatten(out, out, 1 << 20, err, sizeof(err)), -EINVAL);
	assert_true(strlen(err) > 0);
	assert_int_equal(fd_size(out), 8);
	close(out);
	buf_free(&s);
}

enum hostile {
	H_EMPTY,
	H_SHORT_HEADER,
	H_BAD_SIGNATURE,
	H_BAD_TYPE,
	H_BAD_VERSION,
	H_NO_RECORDS_EOF,
	H_ONLY_END,
	H_SHORT_RECORD_HEADER,
	H_SHORT_DATA,
	H_NEGATIVE_OFFSET,
	H_HALF_END_MARKER,
	H_ZERO_SIZE,
	H_NEGATIVE_SIZE,
	H_HUGE_RECORD,
	H_BEYOND_CAP,
	H_CROSSES_CAP,
	H_OVERFLOW,
	H_TRAILING,
	H_NO_END,
	H_COUNT
};

static void hostile_stream(enum hostile h, struct buf *s)
{
	static const uint8_t ten[10] = "0123456789";

	switch (h) {
	case H_EMPTY:
		return;
	case H_SHORT_HEADER:
		flat_header(s, 1, 1);
		s->len = 100;
		return;
	case H_BAD_SIGNATURE:
		flat_header(s, 1, 1);
		s->p[0] = 'M';
		break;
	case H_BAD_TYPE:
		flat_header(s, 2, 1);
		break;
	case H_BAD_VERSION:
		flat_header(s, 1, 2);
		break;
	default:
		flat_header(s, 1, 1);
		break;
	}
	switch (h) {
	case H_NO_RECORDS_EOF:
		return;
	case H_ONLY_END:
		break;
	case H_SHORT_RECORD_HEADER:
		flat_record(s, 0, ten, 10);
		buf_be64(s, 20);
		return;
	case H_SHORT_DATA:
		flat_record(s, 0, ten, 10);
		s->len -= 4;
		return;
	case H_NEGATIVE_OFFSET:
		flat_record(s, (uint64_t)-5, ten, 10);
		break;
	case H_HALF_END_MARKER:
		flat_record(s, UINT64_MAX, ten, 10);
		break;
	case H_ZERO_SIZE:
		flat_record(s, 0, ten, 0);
		break;
	case H_NEGATIVE_SIZE:
		buf_be64(s, 0);
		buf_be64(s, (uint64_t)-16);
		buf_zero(s, 16);
		break;
	case H_HUGE_RECORD:
		buf_be64(s, 0);
		buf_be64(s, VMCORE_FLAT_RECORD_MAX + 1);
		buf_zero(s, 4096);
		break;
	case H_BEYOND_CAP:
		flat_record(s, 1 << 20, ten, 1);
		break;
	case H_CROSSES_CAP:
		flat_record(s, (1 << 20) - 5, ten, 10);
		break;
	case H_OVERFLOW:
		buf_be64(s, INT64_MAX - 1);
		buf_be64(s, 16);
		buf_zero(s, 16);
		break;
	case H_TRAILING:
		flat_record(s, 0, ten, 10);
		flat_end(s);
		buf_put(s, "x", 1);
		return;
	case H_NO_END:
		flat_record(s, 0, ten, 10);
		flat_record(s, 20, ten, 10);
		return;
	default:
		flat_record(s, 0, ten, 10);
		break;
	}
	flat_end(s);
}

static void test_unflatten_hostile(void **state)
{
	static const int expect[H_COUNT] = {
		[H_EMPTY] = -EBADMSG,
		[H_SHORT_HEADER] = -EBADMSG,
		[H_BAD_SIGNATURE] = -EMEDIUMTYPE,
		[H_BAD_TYPE] = -EBADMSG,
		[H_BAD_VERSION] = -EPROTONOSUPPORT,
		[H_NO_RECORDS_EOF] = -EBADMSG,
		[H_ONLY_END] = -EBADMSG,
		[H_SHORT_RECORD_HEADER] = -EBADMSG,
		[H_SHORT_DATA] = -EBADMSG,
		[H_NEGATIVE_OFFSET] = -EBADMSG,
		[H_HALF_END_MARKER] = -EBADMSG,
		[H_ZERO_SIZE] = -EBADMSG,
		[H_NEGATIVE_SIZE] = -EBADMSG,
		[H_HUGE_RECORD] = -EFBIG,
		[H_BEYOND_CAP] = -EFBIG,
		[H_CROSSES_CAP] = -EFBIG,
		[H_OVERFLOW] = -EFBIG,
		[H_TRAILING] = -EBADMSG,
		[H_NO_END] = -EBADMSG,
	};

	(void)state;
	for (int h = 0; h < H_COUNT; h++) {
		struct buf s = { 0 };
		char err[256];
		int out, r;

		hostile_stream(h, &s);
		r = unflatten(&s, 1 << 20, &out, err, sizeof(err));
		if (r != expect[h])
			fail_msg("case %d: got %d (%s), expected %d", h, r, err, expect[h]);
		assert_true(strlen(err) > 0);
		assert_true(fd_size(out) <= 1 << 20);
		close(out);
		buf_free(&s);
	}
}

static void test_unflatten_cap_edge(void **state)
{
	struct buf s = { 0 };
	char err[256];
	int out, in;

	(void)state;
	flat_header(&s, 1, 1);
	flat_record(&s, 4095, "z", 1); /* ends exactly at the cap */
	flat_end(&s);
	assert_int_equal(unflatten(&s, 4096, &out, err, sizeof(err)), 0);
	assert_int_equal(fd_size(out), 4096);
	close(out);
	assert_int_equal(unflatten(&s, 4095, &out, err, sizeof(err)), -EFBIG);
	close(out);

	in = memfd_with(s.p, s.len);
	out = memfd_with(NULL, 0);
	assert_int_equal(vmcore_unflatten(in, out, 0, err, sizeof(err)), -EINVAL);
	/* NULL err is allowed */
	assert_int_equal(vmcore_unflatten(in, out, 0, NULL, 0), -EINVAL);
	close(in);
	close(out);
	buf_free(&s);
}

/* --- a synthetic kdump file ------------------------------------------------ */

#define BS 4096
#define VMCI_OFF (BS + 104 + 40) /* after the sub-header and a fake note */

static const char vmcoreinfo_text[] =
	"OSRELEASE=6.1.0-test\n"
	"PAGESIZE=4096\n"
	"NUMBER(phys_base_x)=1\n"
	"NUMBER(phys_base)=553648128\n"
	"KERNELOFFSET=17a00000\n";

/* A kdump file like QEMU's: @phys_base in the sub-header, @text as the
 * vmcoreinfo, then bitmap/page blocks of filler. */
static void kdump_build(struct buf *b, uint32_t version, uint64_t phys_base,
			const char *text)
{
	uint8_t *h, *sh;
	size_t tlen = text ? strlen(text) : 0;

	buf_zero(b, 4 * BS);
	h = b->p;
	memcpy(h, "KDUMP   ", 8);
	put_le32(h + 8, version);
	memcpy(h + 12 + 4 * 65, "x86_64", 6);
	put_le32(h + 424, 1);   /* status: zlib */
	put_le32(h + 428, BS);  /* block_size */
	put_le32(h + 432, 1);   /* sub_hdr_size */
	put_le32(h + 436, 2);   /* bitmap_blocks */
	sh = b->p + BS;
	put_le64(sh, phys_base);
	put_le32(sh + 8, 1); /* dump_level */
	if (text) {
		put_le64(sh + 32, VMCI_OFF);
		put_le64(sh + 40, tlen);
		memcpy(b->p + VMCI_OFF, text, tlen);
	}
	put_le64(sh + 48, BS + 104);
	put_le64(sh + 56, 40 + tlen);
	memset(b->p + 2 * BS, 0xa5, 2 * BS);
}

static void test_kdump_fix_phys_base(void **state)
{
	struct buf k = { 0 };
	uint64_t old = 1, new = 2;
	uint8_t *got;
	char *text = NULL, err[256] = "";
	size_t len;
	int fd;

	(void)state;
	/* what QEMU 7.2 writes: the decimal string read as hex */
	kdump_build(&k, 6, 0x553648128ULL, vmcoreinfo_text);
	fd = memfd_with(k.p, k.len);
	assert_int_equal(vmcore_detect(fd), VMCORE_KDUMP);
	assert_int_equal(vmcore_is_flattened(fd), 0);

	assert_int_equal(vmcore_read_vmcoreinfo(fd, &text, &len, err, sizeof(err)), 0);
	assert_string_equal(text, vmcoreinfo_text);
	assert_int_equal(len, strlen(vmcoreinfo_text));
	free(text);

	assert_int_equal(vmcore_kdump_fix_phys_base(fd, &old, &new, err, sizeof(err)), 0);
	assert_int_equal(old, 0x553648128ULL);
	assert_int_equal(new, 553648128ULL);
	got = fd_bytes(fd, &len);
	assert_int_equal(len, k.len);
	assert_int_equal(get_le64(got + BS), 553648128ULL);
	/* nothing else changed */
	put_le64(k.p + BS, 553648128ULL);
	assert_memory_equal(got, k.p, k.len);
	free(got);

	/* again: already right, nothing written */
	assert_int_equal(vmcore_kdump_fix_phys_base(fd, &old, &new, err, sizeof(err)), 0);
	assert_int_equal(old, 553648128ULL);
	assert_int_equal(new, 553648128ULL);
	assert_int_equal(vmcore_kdump_fix_phys_base(fd, NULL, NULL, NULL, 0), 0);
	close(fd);

	/* nokaslr: 0 both ways */
	buf_free(&k);
	kdump_build(&k, 6, 0, "NUMBER(phys_base)=0\n");
	fd = memfd_with(k.p, k.len);
	assert_int_equal(vmcore_kdump_fix_phys_base(fd, &old, &new, err, sizeof(err)), 0);
	assert_int_equal(old, 0);
	assert_int_equal(new, 0);
	close(fd);

	/* %ld can be negative, and the last line may lack its newline */
	buf_free(&k);
	kdump_build(&k, 6, 0, "A=1\nNUMBER(phys_base)=-4096");
	fd = memfd_with(k.p, k.len);
	assert_int_equal(vmcore_kdump_fix_phys_base(fd, &old, &new, err, sizeof(err)), 0);
	assert_int_equal(new, (uint64_t)-4096);
	close(fd);

	/* a fix needs a writable fd */
	buf_free(&k);
	kdump_build(&k, 6, 0x553648128ULL, vmcoreinfo_text);
	fd = memfd_with(k.p, k.len);
	{
		char path[64];
		int ro;

		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		ro = open(path, O_RDONLY | O_CLOEXEC);
		assert_true(ro >= 0);
		assert_int_equal(vmcore_kdump_fix_phys_base(ro, &old, &new, err, sizeof(err)),
				 -EBADF);
		assert_non_null(strstr(err, "phys_base"));
		close(ro);
	}
	close(fd);
	buf_free(&k);
}

enum kbad {
	K_NO_LINE,
	K_HEX,
	K_TRAILING_JUNK,
	K_EMPTY_VALUE,
	K_OVERFLOW,
	K_VERSION_2,
	K_NO_VMCOREINFO,
	K_VMCI_BEYOND_EOF,
	K_VMCI_TOO_BIG,
	K_VMCI_IN_HEADER,
	K_VMCI_OFFSET_HUGE,
	K_VMCI_EMPTY_TEXT,
	K_BLOCK_SIZE_ODD,
	K_BLOCK_SIZE_ZERO,
	K_BLOCK_SIZE_NEGATIVE,
	K_VERSION_7,
	K_VERSION_0,
	K_SUB_HDR_0,
	K_SHORT_HEADER,
	K_SHORT_SUB_HEADER,
	K_NOT_KDUMP,
	K_FLATTENED,
	K_COUNT
};

static void test_kdump_hostile(void **state)
{
	static const int expect[K_COUNT] = {
		[K_NO_LINE] = -ENOENT,
		[K_HEX] = -EBADMSG,
		[K_TRAILING_JUNK] = -EBADMSG,
		[K_EMPTY_VALUE] = -EBADMSG,
		[K_OVERFLOW] = -EBADMSG,
		[K_VERSION_2] = -ENODATA,
		[K_NO_VMCOREINFO] = -ENODATA,
		[K_VMCI_BEYOND_EOF] = -EBADMSG,
		[K_VMCI_TOO_BIG] = -EFBIG,
		[K_VMCI_IN_HEADER] = -EBADMSG,
		[K_VMCI_OFFSET_HUGE] = -EBADMSG,
		[K_VMCI_EMPTY_TEXT] = -ENODATA,
		[K_BLOCK_SIZE_ODD] = -EBADMSG,
		[K_BLOCK_SIZE_ZERO] = -EBADMSG,
		[K_BLOCK_SIZE_NEGATIVE] = -EBADMSG,
		[K_VERSION_7] = -EPROTONOSUPPORT,
		[K_VERSION_0] = -EBADMSG,
		[K_SUB_HDR_0] = -EBADMSG,
		[K_SHORT_HEADER] = -EBADMSG,
		[K_SHORT_SUB_HEADER] = -EBADMSG,
		[K_NOT_KDUMP] = -EMEDIUMTYPE,
		[K_FLATTENED] = -EMEDIUMTYPE,
	};

	(void)state;
	for (int c = 0; c < K_COUNT; c++) {
		struct buf k = { 0 };
		const char *text = vmcoreinfo_text;
		uint32_t version = 6;
		uint8_t *sh;
		uint64_t old = 7, new = 7;
		char err[256] = "";
		int fd, r;

		switch (c) {
		case K_NO_LINE:
			text = "OSRELEASE=6.1\nNUMBER(phys_base_x)=1\n";
			break;
		case K_HEX:
			text = "NUMBER(phys_base)=0x1000\n";
			break;
		case K_TRAILING_JUNK:
			text = "NUMBER(phys_base)=4096 \n";
			break;
		case K_EMPTY_VALUE:
			text = "NUMBER(phys_base)=\n";
			break;
		case K_OVERFLOW:
			text = "NUMBER(phys_base)=99999999999999999999\n";
			break;
		case K_VERSION_2:
			version = 2;
			break;
		case K_NO_VMCOREINFO:
			text = NULL;
			break;
		case K_VERSION_7:
			version = 7;
			break;
		case K_VERSION_0:
			version = 0;
			break;
		}
		kdump_build(&k, version, 0x553648128ULL, text);
		sh = k.p + BS;
		switch (c) {
		case K_VMCI_BEYOND_EOF:
			put_le64(sh + 32, k.len - 10);
			break;
		case K_VMCI_TOO_BIG:
			put_le64(sh + 40, VMCORE_VMCOREINFO_MAX + 1);
			break;
		case K_VMCI_IN_HEADER:
			put_le64(sh + 32, 100);
			break;
		case K_VMCI_OFFSET_HUGE:
			put_le64(sh + 32, UINT64_MAX - 5);
			break;
		case K_VMCI_EMPTY_TEXT:
			memset(k.p + VMCI_OFF, 0, strlen(text));
			break;
		case K_BLOCK_SIZE_ODD:
			put_le32(k.p + 428, 3000);
			break;
		case K_BLOCK_SIZE_ZERO:
			put_le32(k.p + 428, 0);
			break;
		case K_BLOCK_SIZE_NEGATIVE:
			put_le32(k.p + 428, 0x80000000u);
			break;
		case K_SUB_HDR_0:
			put_le32(k.p + 432, 0);
			break;
		case K_SHORT_HEADER:
			k.len = 300;
			break;
		case K_SHORT_SUB_HEADER:
			k.len = BS + 20;
			break;
		case K_NOT_KDUMP:
			memcpy(k.p, "DISKDUMP", 8);
			break;
		case K_FLATTENED:
			k.len = 0;
			flat_header(&k, 1, 1);
			break;
		}
		fd = memfd_with(k.p, k.len);
		r = vmcore_kdump_fix_phys_base(fd, &old, &new, err, sizeof(err));
		if (r != expect[c])
			fail_msg("case %d: got %d (%s), expected %d", c, r, err, expect[c]);
		assert_true(strlen(err) > 0);
		assert_int_equal(old, 7); /* untouched on failure */
		if (k.len >= BS + 8) {
			uint8_t b[8];

			assert_int_equal(pread(fd, b, 8, BS), 8);
			if (c != K_FLATTENED)
				assert_int_equal(get_le64(b), 0x553648128ULL);
		}
		close(fd);
		buf_free(&k);
	}
}

/* --- a synthetic ELF core --------------------------------------------------- */

static void note(struct buf *b, const char *name, uint32_t type, const void *desc,
		 uint32_t descsz)
{
	uint32_t namesz = strlen(name) + 1;
	uint32_t h[3] = { namesz, descsz, type };

	buf_put(b, h, sizeof(h));
	buf_put(b, name, namesz);
	buf_zero(b, ((namesz + 3) & ~3u) - namesz);
	if (desc)
		buf_put(b, desc, descsz);
	else
		buf_zero(b, descsz);
	buf_zero(b, ((descsz + 3) & ~3u) - descsz);
}

enum ebad {
	E_GOOD,
	E_GOOD_XNUM,
	E_NO_NOTE,
	E_NOTE_BEYOND_EOF,
	E_NOTE_DESC_TOO_BIG,
	E_NOT_CORE,
	E_BIG_ENDIAN,
	E_PHENTSIZE,
	E_PHNUM_0,
	E_PHOFF_BEYOND_EOF,
	E_XNUM_NO_SECTION,
	E_VMCI_EMPTY,
	E_COUNT
};

/* An ELF64 core like QEMU's paging=false dump: PT_NOTE (CORE, QEMU,
 * VMCOREINFO notes) and a PT_LOAD. */
static void elf64_build(struct buf *b, enum ebad c)
{
	struct buf notes = { 0 };
	Elf64_Ehdr eh = { 0 };
	Elf64_Phdr ph[2] = { 0 };
	Elf64_Shdr sh = { 0 };
	size_t notes_off, vmci_at;

	note(&notes, "CORE", NT_PRSTATUS, NULL, 336);
	note(&notes, "QEMU", 0, NULL, 440);
	vmci_at = notes.len;
	if (c != E_NO_NOTE)
		note(&notes, "VMCOREINFO", 0, c == E_VMCI_EMPTY ? NULL : vmcoreinfo_text,
		     c == E_VMCI_EMPTY ? 0 : strlen(vmcoreinfo_text));
	if (c == E_NOTE_DESC_TOO_BIG)
		put_le32(notes.p + vmci_at + 4, 1 << 30);

	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = c == E_BIG_ENDIAN ? ELFDATA2MSB : ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	eh.e_type = c == E_NOT_CORE ? ET_EXEC : ET_CORE;
	eh.e_machine = EM_X86_64;
	eh.e_version = EV_CURRENT;
	eh.e_phoff = c == E_PHOFF_BEYOND_EOF ? 1 << 20 : sizeof(eh);
	eh.e_ehsize = sizeof(eh);
	eh.e_phentsize = c == E_PHENTSIZE ? 32 : sizeof(Elf64_Phdr);
	eh.e_phnum = c == E_PHNUM_0 ? 0 : 2;
	if (c == E_GOOD_XNUM || c == E_XNUM_NO_SECTION) {
		eh.e_phnum = PN_XNUM;
		if (c == E_GOOD_XNUM) {
			eh.e_shoff = sizeof(eh) + sizeof(ph);
			eh.e_shentsize = sizeof(sh);
			eh.e_shnum = 1;
		}
	}
	notes_off = sizeof(eh) + sizeof(ph) + sizeof(sh);
	ph[0].p_type = PT_NOTE;
	ph[0].p_offset = notes_off;
	ph[0].p_filesz = ph[0].p_memsz = notes.len;
	ph[1].p_type = PT_LOAD;
	ph[1].p_offset = notes_off + notes.len;
	ph[1].p_filesz = ph[1].p_memsz = 4096;
	sh.sh_info = 2;

	buf_put(b, &eh, sizeof(eh));
	buf_put(b, ph, sizeof(ph));
	buf_put(b, &sh, sizeof(sh));
	buf_put(b, notes.p, notes.len);
	buf_zero(b, 4096);
	if (c == E_NOTE_BEYOND_EOF) /* a dump cut short inside the note */
		b->len = notes_off + notes.len - 20;
	buf_free(&notes);
}

static void test_elf_vmcoreinfo(void **state)
{
	static const int expect[E_COUNT] = {
		[E_GOOD] = 0,
		[E_GOOD_XNUM] = 0,
		[E_NO_NOTE] = -ENODATA,
		[E_NOTE_BEYOND_EOF] = -EBADMSG,
		[E_NOTE_DESC_TOO_BIG] = -EBADMSG,
		[E_NOT_CORE] = -EMEDIUMTYPE,
		[E_BIG_ENDIAN] = -EPROTONOSUPPORT,
		[E_PHENTSIZE] = -EBADMSG,
		[E_PHNUM_0] = -ENODATA,
		[E_PHOFF_BEYOND_EOF] = -EBADMSG,
		[E_XNUM_NO_SECTION] = -EBADMSG,
		[E_VMCI_EMPTY] = -ENODATA,
	};

	(void)state;
	for (int c = 0; c < E_COUNT; c++) {
		struct buf e = { 0 };
		char *text = NULL, err[256] = "";
		size_t len = 0;
		int fd, r;

		elf64_build(&e, c);
		fd = memfd_with(e.p, e.len);
		assert_int_equal(vmcore_detect(fd), VMCORE_ELF64);
		r = vmcore_read_vmcoreinfo(fd, &text, &len, err, sizeof(err));
		if (r != expect[c])
			fail_msg("case %d: got %d (%s), expected %d", c, r, err, expect[c]);
		if (r == 0) {
			assert_string_equal(text, vmcoreinfo_text);
			assert_int_equal(len, strlen(vmcoreinfo_text));
			free(text);
		} else {
			assert_null(text);
			assert_true(strlen(err) > 0);
		}
		/* an ELF dump has no kdump header to fix */
		assert_int_equal(vmcore_kdump_fix_phys_base(fd, NULL, NULL, err, sizeof(err)),
				 -EMEDIUMTYPE);
		close(fd);
		buf_free(&e);
	}
}

static void test_elf32_vmcoreinfo(void **state)
{
	struct buf e = { 0 }, notes = { 0 };
	Elf32_Ehdr eh = { 0 };
	Elf32_Phdr ph = { 0 };
	char *text = NULL, err[256] = "";
	int fd;

	(void)state;
	note(&notes, "CORE", NT_PRSTATUS, NULL, 144);
	note(&notes, "VMCOREINFO", 0, "OSRELEASE=x\n", 12);
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS32;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_type = ET_CORE;
	eh.e_phoff = sizeof(eh);
	eh.e_phentsize = sizeof(ph);
	eh.e_phnum = 1;
	ph.p_type = PT_NOTE;
	ph.p_offset = sizeof(eh) + sizeof(ph);
	ph.p_filesz = notes.len;
	buf_put(&e, &eh, sizeof(eh));
	buf_put(&e, &ph, sizeof(ph));
	buf_put(&e, notes.p, notes.len);
	fd = memfd_with(e.p, e.len);
	assert_int_equal(vmcore_detect(fd), VMCORE_ELF32);
	assert_int_equal(vmcore_read_vmcoreinfo(fd, &text, NULL, err, sizeof(err)), 0);
	assert_string_equal(text, "OSRELEASE=x\n");
	free(text);
	close(fd);
	buf_free(&e);
	buf_free(&notes);
}

/* --- detection, lookup, the whole chain --------------------------------- */

static void test_detect(void **state)
{
	struct buf s = { 0 };
	char *text = NULL, err[256];
	int fd;

	(void)state;
	fd = memfd_with(NULL, 0);
	assert_int_equal(vmcore_detect(fd), VMCORE_UNKNOWN);
	assert_int_equal(vmcore_is_flattened(fd), 0);
	assert_int_equal(vmcore_read_vmcoreinfo(fd, &text, NULL, err, sizeof(err)),
			 -EMEDIUMTYPE);
	close(fd);

	fd = memfd_with("KDUMP", 5);
	assert_int_equal(vmcore_detect(fd), VMCORE_UNKNOWN);
	close(fd);

	flat_header(&s, 1, 1);
	fd = memfd_with(s.p, s.len);
	assert_int_equal(vmcore_detect(fd), VMCORE_FLATTENED);
	assert_int_equal(vmcore_is_flattened(fd), 1);
	assert_int_equal(vmcore_read_vmcoreinfo(fd, &text, NULL, err, sizeof(err)),
			 -EMEDIUMTYPE);
	assert_non_null(strstr(err, "unflatten"));
	close(fd);
	buf_free(&s);

	flat_header(&s, 2, 1);
	fd = memfd_with(s.p, s.len);
	assert_int_equal(vmcore_detect(fd), VMCORE_UNKNOWN);
	assert_int_equal(vmcore_is_flattened(fd), 0);
	close(fd);
	buf_free(&s);

	assert_int_equal(vmcore_detect(-1), -EBADF);
	assert_int_equal(vmcore_is_flattened(-1), -EBADF);
	assert_string_equal(vmcore_format_name(VMCORE_KDUMP), "kdump");
	assert_string_equal(vmcore_format_name(VMCORE_FLATTENED), "flattened");
	assert_string_equal(vmcore_format_name(99), "unknown");
}

static void test_vmcoreinfo_value(void **state)
{
	static const char t[] = "A=1\nAB=22\nNUMBER(x)=\nLAST=end";
	const char *v;
	size_t n;

	(void)state;
	assert_int_equal(vmcore_vmcoreinfo_value(t, strlen(t), "A", &v, &n), 0);
	assert_int_equal(n, 1);
	assert_memory_equal(v, "1", 1);
	assert_int_equal(vmcore_vmcoreinfo_value(t, strlen(t), "AB", &v, &n), 0);
	assert_memory_equal(v, "22", 2);
	assert_int_equal(vmcore_vmcoreinfo_value(t, strlen(t), "NUMBER(x)", &v, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(vmcore_vmcoreinfo_value(t, strlen(t), "LAST", &v, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(vmcore_vmcoreinfo_value(t, strlen(t), "B", &v, &n), -ENOENT);
	assert_int_equal(vmcore_vmcoreinfo_value(t, strlen(t), "LAS", &v, &n), -ENOENT);
	/* @len bounds the search */
	assert_int_equal(vmcore_vmcoreinfo_value(t, 5, "AB", &v, &n), -ENOENT);
	assert_int_equal(vmcore_vmcoreinfo_value(t, strlen(t), "", &v, &n), -EINVAL);
	assert_int_equal(vmcore_vmcoreinfo_value(t, strlen(t), "A=1", &v, &n), -EINVAL);
}

/* A kdump file flattened the way QEMU does it (header, sub-header, notes,
 * bitmaps and pages in several out-of-order records), then unflatten ->
 * fix -> read back. */
static void test_flattened_kdump_roundtrip(void **state)
{
	struct buf k = { 0 }, s = { 0 };
	static const size_t cuts[][2] = {
		{ 0, 464 }, { BS, 104 }, { BS + 104, 2 * BS - (BS + 104) },
		{ 3 * BS, BS }, { 2 * BS, BS },
	};
	uint64_t old, new;
	uint8_t *got;
	char *text = NULL, err[256] = "";
	size_t len;
	int out;

	(void)state;
	kdump_build(&k, 6, 0x553648128ULL, vmcoreinfo_text);
	flat_header(&s, 1, 1);
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
		flat_record(&s, cuts[i][0], k.p + cuts[i][0], cuts[i][1]);
	flat_end(&s);

	assert_int_equal(unflatten(&s, 1 << 30, &out, err, sizeof(err)), 0);
	got = fd_bytes(out, &len);
	assert_int_equal(len, k.len);
	assert_memory_equal(got, k.p, k.len);
	free(got);
	assert_int_equal(vmcore_detect(out), VMCORE_KDUMP);
	assert_int_equal(vmcore_kdump_fix_phys_base(out, &old, &new, err, sizeof(err)), 0);
	assert_int_equal(old, 0x553648128ULL);
	assert_int_equal(new, 0x21000000ULL);
	assert_int_equal(vmcore_read_vmcoreinfo(out, &text, &len, err, sizeof(err)), 0);
	assert_string_equal(text, vmcoreinfo_text);
	free(text);
	close(out);
	buf_free(&k);
	buf_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unflatten_basic),
		cmocka_unit_test(test_unflatten_big_record),
		cmocka_unit_test(test_unflatten_pipe_and_truncate),
		cmocka_unit_test(test_unflatten_hostile),
		cmocka_unit_test(test_unflatten_cap_edge),
		cmocka_unit_test(test_kdump_fix_phys_base),
		cmocka_unit_test(test_kdump_hostile),
		cmocka_unit_test(test_elf_vmcoreinfo),
		cmocka_unit_test(test_elf32_vmcoreinfo),
		cmocka_unit_test(test_detect),
		cmocka_unit_test(test_vmcoreinfo_value),
		cmocka_unit_test(test_flattened_kdump_roundtrip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
