// SPDX-License-Identifier: MIT
/*
 * Dumps written by QEMU's dump-guest-memory: format detection, flattened ->
 * standard kdump reassembly, vmcoreinfo, the phys_base repair. See vmcore.h.
 *
 * The kdump-compressed headers, as makedumpfile (diskdump_mod.h) and QEMU
 * (include/sysemu/dump.h, DiskDumpHeader64/KdumpSubHeader64) lay them out
 * for a 64-bit target, little-endian on x86_64; byte offsets:
 *
 *  struct disk_dump_header (block 0)      struct kdump_sub_header (block 1)
 *    0 signature "KDUMP   "                 0 phys_base          u64
 *    8 header_version   i32                 8 dump_level         i32  v1
 *   12 utsname          6 x 65 chars       12 split              i32  v2
 *  402 (padding)                           16 start_pfn          u64  v2
 *  408 timestamp        struct timeval     24 end_pfn            u64  v2
 *  424 status           u32                32 offset_vmcoreinfo  u64  v3
 *  428 block_size       i32                40 size_vmcoreinfo    u64  v3
 *  432 sub_hdr_size     i32 (in blocks)    48 offset_note        u64  v4
 *  436 bitmap_blocks    u32                56 size_note          u64  v4
 *  440 max_mapnr        u32                64 offset_eraseinfo   u64  v5
 *  444 total_ram_blocks u32                72 size_eraseinfo     u64  v5
 *  448 device_blocks    u32                80 start_pfn_64       u64  v6
 *  452 written_blocks   u32                88 end_pfn_64         u64  v6
 *  456 current_cpu      u32                96 max_mapnr_64       u64  v6
 *  460 nr_cpus          i32               104 (end)
 *  464 (end)
 *
 * The sub-header starts at block 1 (DISKDUMP_HEADER_BLOCKS = 1); QEMU and
 * makedumpfile use the guest page size as block_size and write version 6.
 */
#include <elf.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "util.h"
#include "io.h"
#include "vmcore.h"

#define FLAT_SIGNATURE "makedumpfile" /* with its NUL: 13 of 16 bytes */
#define FLAT_TYPE 1
#define FLAT_VERSION 1
#define FLAT_RECORD_HEADER 16

#define KDUMP_SIGNATURE "KDUMP   "
#define KDUMP_SIG_LEN 8
#define DH_HEADER_VERSION 8
#define DH_BLOCK_SIZE 428
#define DH_SUB_HDR_SIZE 432
#define DH_SIZE 464
#define KDUMP_VERSION_MAX 6
#define KDUMP_BLOCK_MIN 1024
#define KDUMP_BLOCK_MAX (1024 * 1024)

#define KSH_PHYS_BASE 0
#define KSH_OFFSET_VMCOREINFO 32
#define KSH_SIZE_VMCOREINFO 40
#define KSH_SIZE 104

#define VMCOREINFO_NOTE_NAME "VMCOREINFO" /* namesz 11, with the NUL */
#define ELF_PHNUM_MAX (1U << 20)
#define ELF_NOTE_SEGMENT_MAX (64ULL * 1024 * 1024)
#define PHYS_BASE_KEY "NUMBER(phys_base)"

static uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static uint64_t get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

#define get_le16(p) ((uint16_t)get_le((p), 2))
#define get_le32(p) ((uint32_t)get_le((p), 4))
#define get_le64(p) get_le((p), 8)

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++, v >>= 8)
		p[i] = v & 0xff;
}

static uint64_t align4(uint64_t v)
{
	return (v + 3) & ~(uint64_t)3;
}

const char *vmcore_format_name(enum vmcore_format f)
{
	switch (f) {
	case VMCORE_ELF64:
		return "elf64";
	case VMCORE_ELF32:
		return "elf32";
	case VMCORE_KDUMP:
		return "kdump";
	case VMCORE_FLATTENED:
		return "flattened";
	case VMCORE_UNKNOWN:
		break;
	}
	return "unknown";
}

static bool flat_header_ok(const uint8_t *b, size_t n)
{
	return n >= 24 && memcmp(b, FLAT_SIGNATURE, sizeof(FLAT_SIGNATURE)) == 0 &&
	       get_be64(b + 16) == FLAT_TYPE;
}

int vmcore_detect(int fd)
{
	uint8_t b[32];
	ssize_t n = io_pread_full(fd, b, sizeof(b), 0);

	if (n < 0)
		return n;
	if ((size_t)n > EI_CLASS && memcmp(b, ELFMAG, SELFMAG) == 0) {
		if (b[EI_CLASS] == ELFCLASS64)
			return VMCORE_ELF64;
		if (b[EI_CLASS] == ELFCLASS32)
			return VMCORE_ELF32;
		return VMCORE_UNKNOWN;
	}
	if (n >= KDUMP_SIG_LEN && memcmp(b, KDUMP_SIGNATURE, KDUMP_SIG_LEN) == 0)
		return VMCORE_KDUMP;
	if (flat_header_ok(b, n))
		return VMCORE_FLATTENED;
	return VMCORE_UNKNOWN;
}

int vmcore_is_flattened(int fd)
{
	uint8_t b[24];
	ssize_t n = io_pread_full(fd, b, sizeof(b), 0);

	if (n < 0)
		return n;
	return flat_header_ok(b, n);
}

int vmcore_unflatten(int in_fd, int out_fd, uint64_t max_size, char *err,
		     size_t errlen)
{
	_cleanup_free_ uint8_t *buf = NULL;
	uint64_t pos, nrec = 0;
	struct stat sin, sout;
	ssize_t n;
	int r;

	if (max_size == 0)
		return err_set(err, errlen, -EINVAL, "no size limit given");
	if (max_size > INT64_MAX)
		max_size = INT64_MAX;
	if (fstat(in_fd, &sin) < 0 || fstat(out_fd, &sout) < 0)
		return err_set(err, errlen, -errno, "cannot stat the files: %m");
	if (sin.st_dev == sout.st_dev && sin.st_ino == sout.st_ino)
		return err_set(err, errlen, -EINVAL, "input and output are the same file");
	buf = malloc(VMCORE_COPY_CHUNK);
	if (!buf)
		return err_set(err, errlen, -ENOMEM, "out of memory");
	if (S_ISREG(sout.st_mode) && ftruncate(out_fd, 0) < 0)
		return err_set(err, errlen, -errno, "cannot truncate the output: %m");

	n = io_read_full(in_fd, buf, VMCORE_FLAT_HEADER_SIZE);
	if (n < 0)
		return err_set(err, errlen, n, "cannot read the dump: %s", strerror(-n));
	if (n == 0)
		return err_set(err, errlen, -EBADMSG, "the dump is empty");
	if (n < (ssize_t)sizeof(FLAT_SIGNATURE) ||
	    memcmp(buf, FLAT_SIGNATURE, sizeof(FLAT_SIGNATURE)) != 0)
		return err_set(err, errlen, -EMEDIUMTYPE,
			       "not a flattened dump (no makedumpfile signature)");
	if (n < VMCORE_FLAT_HEADER_SIZE)
		return err_set(err, errlen, -EBADMSG,
			       "flattened header truncated (%zd of %d bytes)", n,
			       VMCORE_FLAT_HEADER_SIZE);
	if (!flat_header_ok(buf, n))
		return err_set(err, errlen, -EBADMSG,
			       "flattened header type is %lld, not %d",
			       (long long)get_be64(buf + 16), FLAT_TYPE);
	if (get_be64(buf + 24) != FLAT_VERSION)
		return err_set(err, errlen, -EPROTONOSUPPORT,
			       "flattened format version %lld not supported",
			       (long long)get_be64(buf + 24));
	pos = VMCORE_FLAT_HEADER_SIZE;

	for (;;) {
		uint8_t h[FLAT_RECORD_HEADER];
		int64_t off, size;
		uint64_t o, left;

		n = io_read_full(in_fd, h, sizeof(h));
		if (n < 0)
			return err_set(err, errlen, n, "cannot read the dump: %s",
				       strerror(-n));
		if (n == 0)
			return err_set(err, errlen, -EBADMSG,
				       "dump ends after %llu record%s without the end marker (incomplete)",
				       (unsigned long long)nrec, nrec == 1 ? "" : "s");
		if (n < (ssize_t)sizeof(h))
			return err_set(err, errlen, -EBADMSG,
				       "record header truncated at input offset %llu",
				       (unsigned long long)pos);
		off = (int64_t)get_be64(h);
		size = (int64_t)get_be64(h + 8);
		if (off == -1 && size == -1)
			break;
		nrec++;
		if (off < 0)
			return err_set(err, errlen, -EBADMSG,
				       "record %llu has a negative offset (%lld)",
				       (unsigned long long)nrec, (long long)off);
		if (size <= 0)
			return err_set(err, errlen, -EBADMSG,
				       "record %llu has size %lld",
				       (unsigned long long)nrec, (long long)size);
		if ((uint64_t)size > VMCORE_FLAT_RECORD_MAX)
			return err_set(err, errlen, -EFBIG,
				       "record %llu: %lld bytes, over the %llu-byte record limit",
				       (unsigned long long)nrec, (long long)size,
				       VMCORE_FLAT_RECORD_MAX);
		if ((uint64_t)off > max_size || (uint64_t)size > max_size - (uint64_t)off)
			return err_set(err, errlen, -EFBIG,
				       "record %llu: offset %lld + %lld bytes is beyond the %llu-byte limit",
				       (unsigned long long)nrec, (long long)off,
				       (long long)size, (unsigned long long)max_size);
		pos += sizeof(h);

		for (o = off, left = size; left;) {
			size_t want = left < VMCORE_COPY_CHUNK ? left : VMCORE_COPY_CHUNK;

			n = io_read_full(in_fd, buf, want);
			if (n < 0)
				return err_set(err, errlen, n, "cannot read the dump: %s",
					       strerror(-n));
			if ((size_t)n < want)
				return err_set(err, errlen, -EBADMSG,
					       "dump truncated in the data of record %llu (input offset %llu)",
					       (unsigned long long)nrec,
					       (unsigned long long)(pos + n));
			r = io_pwrite_full(out_fd, buf, want, o);
			if (r < 0)
				return err_set(err, errlen, r,
					       "cannot write the output at offset %llu: %s",
					       (unsigned long long)o, strerror(-r));
			o += want;
			left -= want;
			pos += want;
		}
	}
	if (nrec == 0)
		return err_set(err, errlen, -EBADMSG, "flattened dump has no records");

	n = io_read_full(in_fd, buf, 1);
	if (n < 0)
		return err_set(err, errlen, n, "cannot read the dump: %s", strerror(-n));
	if (n > 0)
		return err_set(err, errlen, -EBADMSG,
			       "data after the end marker (input offset %llu)",
			       (unsigned long long)(pos + FLAT_RECORD_HEADER));
	return 0;
}

struct kdump_hdr {
	uint32_t header_version;
	uint32_t block_size;
	uint32_t sub_hdr_size;
	uint64_t phys_base;
	uint64_t offset_vmcoreinfo;
	uint64_t size_vmcoreinfo;
};

/* Sub-header bytes that exist in each header version. */
static size_t kdump_sub_header_len(uint32_t version)
{
	static const size_t len[] = { 0, 12, 32, 48, 64, 80, KSH_SIZE };

	return len[version];
}

static int kdump_read_header(int fd, struct kdump_hdr *k, char *err,
			     size_t errlen)
{
	uint8_t h[DH_SIZE], sh[KSH_SIZE];
	int32_t version, bs, sub;
	size_t need;
	ssize_t n;

	n = io_pread_full(fd, h, sizeof(h), 0);
	if (n < 0)
		return err_set(err, errlen, n, "cannot read the dump: %s", strerror(-n));
	if (n < KDUMP_SIG_LEN || memcmp(h, KDUMP_SIGNATURE, KDUMP_SIG_LEN) != 0) {
		if (flat_header_ok(h, n))
			return err_set(err, errlen, -EMEDIUMTYPE,
				       "the dump is flattened: unflatten it first");
		return err_set(err, errlen, -EMEDIUMTYPE, "not a kdump-compressed file");
	}
	if (n < DH_SIZE)
		return err_set(err, errlen, -EBADMSG, "kdump header truncated");
	version = (int32_t)get_le32(h + DH_HEADER_VERSION);
	bs = (int32_t)get_le32(h + DH_BLOCK_SIZE);
	sub = (int32_t)get_le32(h + DH_SUB_HDR_SIZE);
	if (version < 1)
		return err_set(err, errlen, -EBADMSG, "kdump header version %d is invalid",
			       version);
	if (version > KDUMP_VERSION_MAX)
		return err_set(err, errlen, -EPROTONOSUPPORT,
			       "kdump header version %d not supported", version);
	if (bs < KDUMP_BLOCK_MIN || bs > KDUMP_BLOCK_MAX || (bs & (bs - 1)))
		return err_set(err, errlen, -EBADMSG,
			       "kdump block size %d is invalid (not a 64-bit kdump header?)",
			       bs);
	if (sub < 1)
		return err_set(err, errlen, -EBADMSG, "kdump sub-header size %d is invalid",
			       sub);

	need = kdump_sub_header_len(version);
	n = io_pread_full(fd, sh, need, (uint64_t)bs);
	if (n < 0)
		return err_set(err, errlen, n, "cannot read the dump: %s", strerror(-n));
	if ((size_t)n < need)
		return err_set(err, errlen, -EBADMSG, "kdump sub-header truncated");

	*k = (struct kdump_hdr){
		.header_version = version,
		.block_size = bs,
		.sub_hdr_size = sub,
		.phys_base = get_le64(sh + KSH_PHYS_BASE),
	};
	if (version >= 3) {
		k->offset_vmcoreinfo = get_le64(sh + KSH_OFFSET_VMCOREINFO);
		k->size_vmcoreinfo = get_le64(sh + KSH_SIZE_VMCOREINFO);
	}
	return 0;
}

/* Copies @size bytes at @off as vmcoreinfo text. */
static int read_text(int fd, uint64_t off, uint64_t size, char **ret_text,
		     size_t *ret_len, char *err, size_t errlen)
{
	_cleanup_free_ char *t = NULL;
	ssize_t n;
	size_t len;

	if (size > VMCORE_VMCOREINFO_MAX)
		return err_set(err, errlen, -EFBIG,
			       "vmcoreinfo of %llu bytes is over the %d-byte limit",
			       (unsigned long long)size, VMCORE_VMCOREINFO_MAX);
	t = malloc(size + 1);
	if (!t)
		return err_set(err, errlen, -ENOMEM, "out of memory");
	n = io_pread_full(fd, t, size, off);
	if (n < 0)
		return err_set(err, errlen, n, "cannot read the dump: %s", strerror(-n));
	if ((uint64_t)n < size)
		return err_set(err, errlen, -EBADMSG,
			       "vmcoreinfo lies beyond the end of the file");
	t[size] = '\0';
	len = strlen(t);
	if (len == 0)
		return err_set(err, errlen, -ENODATA, "vmcoreinfo is empty");
	*ret_text = TAKE_PTR(t);
	if (ret_len)
		*ret_len = len;
	return 0;
}

static int kdump_read_vmcoreinfo(int fd, const struct kdump_hdr *k,
				 char **ret_text, size_t *ret_len, char *err,
				 size_t errlen)
{
	if (k->header_version < 3 || k->size_vmcoreinfo == 0)
		return err_set(err, errlen, -ENODATA, "no vmcoreinfo in the dump");
	if (k->offset_vmcoreinfo < k->block_size)
		return err_set(err, errlen, -EBADMSG,
			       "vmcoreinfo offset %llu lies in the kdump header",
			       (unsigned long long)k->offset_vmcoreinfo);
	return read_text(fd, k->offset_vmcoreinfo, k->size_vmcoreinfo, ret_text,
			 ret_len, err, errlen);
}

/* Walks the notes of one PT_NOTE segment. 1 and the text when it holds the
 * VMCOREINFO note, 0 when not, or -errno. */
static int elf_scan_notes(int fd, uint64_t off, uint64_t size, char **ret_text,
			  size_t *ret_len, char *err, size_t errlen)
{
	static const char name[] = VMCOREINFO_NOTE_NAME;
	uint64_t p = 0;

	if (size > ELF_NOTE_SEGMENT_MAX)
		return err_set(err, errlen, -EFBIG, "PT_NOTE segment of %llu bytes is too large",
			       (unsigned long long)size);
	if (off > INT64_MAX - size)
		return err_set(err, errlen, -EBADMSG, "PT_NOTE offset is invalid");
	while (size - p >= 12) {
		uint8_t nh[12 + sizeof(name)];
		uint64_t namesz, descsz, body;
		ssize_t n;

		n = io_pread_full(fd, nh, 12, off + p);
		if (n < 0)
			return err_set(err, errlen, n, "cannot read the dump: %s",
				       strerror(-n));
		if (n < 12)
			return err_set(err, errlen, -EBADMSG,
				       "PT_NOTE lies beyond the end of the file");
		namesz = get_le32(nh);
		descsz = get_le32(nh + 4);
		body = align4(namesz) + align4(descsz);
		if (body > size - p - 12)
			return err_set(err, errlen, -EBADMSG,
				       "malformed note at offset %llu",
				       (unsigned long long)(off + p));
		if (namesz == sizeof(name)) {
			n = io_pread_full(fd, nh + 12, sizeof(name), off + p + 12);
			if (n < 0)
				return err_set(err, errlen, n, "cannot read the dump: %s",
					       strerror(-n));
			if (n < (ssize_t)sizeof(name))
				return err_set(err, errlen, -EBADMSG,
					       "PT_NOTE lies beyond the end of the file");
			if (memcmp(nh + 12, name, sizeof(name)) == 0) {
				int r;

				if (descsz == 0)
					return err_set(err, errlen, -ENODATA,
						       "vmcoreinfo is empty");
				r = read_text(fd, off + p + 12 + align4(namesz), descsz,
					      ret_text, ret_len, err, errlen);
				return r < 0 ? r : 1;
			}
		}
		p += 12 + body;
	}
	return 0;
}

static int elf_read_vmcoreinfo(int fd, bool is64, char **ret_text,
			       size_t *ret_len, char *err, size_t errlen)
{
	const size_t ehsz = is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
	const size_t phsz = is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
	const size_t shsz = is64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr);
	uint8_t eh[sizeof(Elf64_Ehdr)], ph[64 * sizeof(Elf64_Phdr)];
	uint64_t phoff, shoff, phnum, i;
	ssize_t n;

	n = io_pread_full(fd, eh, ehsz, 0);
	if (n < 0)
		return err_set(err, errlen, n, "cannot read the dump: %s", strerror(-n));
	if ((size_t)n < ehsz)
		return err_set(err, errlen, -EBADMSG, "ELF header truncated");
	if (eh[EI_DATA] != ELFDATA2LSB)
		return err_set(err, errlen, -EPROTONOSUPPORT,
			       "big-endian ELF dumps are not supported");
	if (get_le16(eh + offsetof(Elf64_Ehdr, e_type)) != ET_CORE)
		return err_set(err, errlen, -EMEDIUMTYPE, "not an ELF core file");
	if (is64) {
		phoff = get_le64(eh + offsetof(Elf64_Ehdr, e_phoff));
		shoff = get_le64(eh + offsetof(Elf64_Ehdr, e_shoff));
		phnum = get_le16(eh + offsetof(Elf64_Ehdr, e_phnum));
		if (get_le16(eh + offsetof(Elf64_Ehdr, e_phentsize)) != phsz)
			return err_set(err, errlen, -EBADMSG, "unexpected ELF program header size");
	} else {
		phoff = get_le32(eh + offsetof(Elf32_Ehdr, e_phoff));
		shoff = get_le32(eh + offsetof(Elf32_Ehdr, e_shoff));
		phnum = get_le16(eh + offsetof(Elf32_Ehdr, e_phnum));
		if (get_le16(eh + offsetof(Elf32_Ehdr, e_phentsize)) != phsz)
			return err_set(err, errlen, -EBADMSG, "unexpected ELF program header size");
	}
	if (phnum == PN_XNUM) {
		/* The real count is in section header 0's sh_info. */
		uint8_t sh[4];
		size_t at = is64 ? offsetof(Elf64_Shdr, sh_info) : offsetof(Elf32_Shdr, sh_info);
		uint16_t shentsize = get_le16(eh + (is64 ? offsetof(Elf64_Ehdr, e_shentsize)
							 : offsetof(Elf32_Ehdr, e_shentsize)));

		if (shoff == 0 || shentsize != shsz)
			return err_set(err, errlen, -EBADMSG,
				       "ELF program header count missing (PN_XNUM without section 0)");
		n = io_pread_full(fd, sh, sizeof(sh), shoff + at);
		if (n < 0)
			return err_set(err, errlen, n, "cannot read the dump: %s",
				       strerror(-n));
		if (n < (ssize_t)sizeof(sh))
			return err_set(err, errlen, -EBADMSG,
				       "ELF section header beyond the end of the file");
		phnum = get_le32(sh);
	}
	if (phnum == 0)
		return err_set(err, errlen, -ENODATA, "ELF dump has no program headers");
	if (phnum > ELF_PHNUM_MAX)
		return err_set(err, errlen, -EFBIG, "ELF dump has %llu program headers",
			       (unsigned long long)phnum);
	if (phoff > INT64_MAX - phnum * phsz)
		return err_set(err, errlen, -EBADMSG, "ELF program header offset is invalid");

	for (i = 0; i < phnum;) {
		uint64_t batch = phnum - i < 64 ? phnum - i : 64;

		n = io_pread_full(fd, ph, batch * phsz, phoff + i * phsz);
		if (n < 0)
			return err_set(err, errlen, n, "cannot read the dump: %s",
				       strerror(-n));
		if ((uint64_t)n < batch * phsz)
			return err_set(err, errlen, -EBADMSG,
				       "ELF program headers beyond the end of the file");
		for (uint64_t j = 0; j < batch; j++) {
			const uint8_t *p = ph + j * phsz;
			uint64_t off, size;
			int r;

			if (get_le32(p) != PT_NOTE)
				continue;
			if (is64) {
				off = get_le64(p + offsetof(Elf64_Phdr, p_offset));
				size = get_le64(p + offsetof(Elf64_Phdr, p_filesz));
			} else {
				off = get_le32(p + offsetof(Elf32_Phdr, p_offset));
				size = get_le32(p + offsetof(Elf32_Phdr, p_filesz));
			}
			r = elf_scan_notes(fd, off, size, ret_text, ret_len, err, errlen);
			if (r != 0)
				return r < 0 ? r : 0;
		}
		i += batch;
	}
	return err_set(err, errlen, -ENODATA, "no VMCOREINFO note in the dump");
}

int vmcore_read_vmcoreinfo(int fd, char **ret_text, size_t *ret_len,
			   char *err, size_t errlen)
{
	struct kdump_hdr k;
	int r = vmcore_detect(fd);

	if (r < 0)
		return err_set(err, errlen, r, "cannot read the dump: %s", strerror(-r));
	switch (r) {
	case VMCORE_ELF64:
	case VMCORE_ELF32:
		return elf_read_vmcoreinfo(fd, r == VMCORE_ELF64, ret_text, ret_len,
					   err, errlen);
	case VMCORE_KDUMP:
		r = kdump_read_header(fd, &k, err, errlen);
		if (r < 0)
			return r;
		return kdump_read_vmcoreinfo(fd, &k, ret_text, ret_len, err, errlen);
	case VMCORE_FLATTENED:
		return err_set(err, errlen, -EMEDIUMTYPE,
			       "the dump is flattened: unflatten it first");
	default:
		return err_set(err, errlen, -EMEDIUMTYPE, "not an ELF or kdump-compressed dump");
	}
}

int vmcore_vmcoreinfo_value(const char *text, size_t len, const char *key,
			    const char **ret_value, size_t *ret_vlen)
{
	size_t klen = strlen(key);
	const char *p = text, *end = text + len;

	if (klen == 0 || strchr(key, '=') || strchr(key, '\n'))
		return -EINVAL;
	while (p < end) {
		const char *nl = memchr(p, '\n', end - p);
		const char *eol = nl ? nl : end;

		if ((size_t)(eol - p) > klen && memcmp(p, key, klen) == 0 &&
		    p[klen] == '=') {
			*ret_value = p + klen + 1;
			*ret_vlen = eol - (p + klen + 1);
			return 0;
		}
		p = eol + 1;
	}
	return -ENOENT;
}

/* What Linux's VMCOREINFO_NUMBER() prints: %ld. */
static int parse_long_decimal(const char *s, size_t len, int64_t *ret)
{
	char buf[24], *end;
	long long v;

	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (!(buf[0] == '-' ? len > 1 && buf[1] >= '0' && buf[1] <= '9'
			    : buf[0] >= '0' && buf[0] <= '9'))
		return -EINVAL;
	errno = 0;
	v = strtoll(buf, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*ret = v;
	return 0;
}

int vmcore_kdump_fix_phys_base(int fd, uint64_t *ret_old, uint64_t *ret_new,
			       char *err, size_t errlen)
{
	_cleanup_free_ char *text = NULL;
	struct kdump_hdr k;
	const char *val;
	size_t len, vlen;
	int64_t v;
	int r;

	r = kdump_read_header(fd, &k, err, errlen);
	if (r < 0)
		return r;
	r = kdump_read_vmcoreinfo(fd, &k, &text, &len, err, errlen);
	if (r < 0)
		return r;
	if (vmcore_vmcoreinfo_value(text, len, PHYS_BASE_KEY, &val, &vlen) < 0)
		return err_set(err, errlen, -ENOENT,
			       "no " PHYS_BASE_KEY " in vmcoreinfo (not an x86_64 guest?)");
	if (parse_long_decimal(val, vlen, &v) < 0)
		return err_set(err, errlen, -EBADMSG,
			       PHYS_BASE_KEY "=%.*s is not a decimal number",
			       (int)(vlen > 40 ? 40 : vlen), val);
	if (k.phys_base != (uint64_t)v) {
		uint8_t b[8];

		put_le64(b, (uint64_t)v);
		r = io_pwrite_full(fd, b, sizeof(b), (uint64_t)k.block_size + KSH_PHYS_BASE);
		if (r < 0)
			return err_set(err, errlen, r, "cannot rewrite phys_base: %s",
				       strerror(-r));
	}
	if (ret_old)
		*ret_old = k.phys_base;
	if (ret_new)
		*ret_new = (uint64_t)v;
	return 0;
}
