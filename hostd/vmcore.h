/* SPDX-License-Identifier: MIT */
/*
 * vmcore: the guest memory dumps QEMU writes for dump-guest-memory.
 *
 * Formats (see vmcore_detect()):
 *
 *   ELF64 / ELF32  format "elf": an ELF core file. With paging=false QEMU
 *                  puts one PT_NOTE (per-CPU "CORE" and "QEMU" notes, then
 *                  the guest's "VMCOREINFO" note when -device vmcoreinfo is
 *                  present and the guest has filled it in) and one PT_LOAD
 *                  per guest RAM block.
 *   FLATTENED      formats "kdump-zlib", "kdump-lzo", "kdump-snappy" of
 *                  QEMU 7.2: makedumpfile's flattened layout, made for
 *                  writing into pipes. A 4096-byte header ("makedumpfile",
 *                  NUL-padded to 16 bytes; big-endian int64 type = 1 and
 *                  version = 1; zeroes), then records {big-endian int64
 *                  offset, big-endian int64 size, size bytes of data}, each
 *                  meaning "these bytes go at this offset of the real
 *                  file", ended by a record whose offset and size are both
 *                  -1. Readers (makedumpfile, crash) need the real file:
 *                  vmcore_unflatten() writes it (what `makedumpfile -R`
 *                  does).
 *   KDUMP          the real ("diskdump", kdump-compressed) layout: block 0
 *                  struct disk_dump_header ("KDUMP   ", header_version,
 *                  block_size, sub_hdr_size in blocks, ...), block 1 the
 *                  struct kdump_sub_header (phys_base, ...,
 *                  offset_vmcoreinfo/size_vmcoreinfo, offset_note/
 *                  size_note, ...) followed by the ELF notes, then the two
 *                  page bitmaps, the page descriptors and the pages. Only
 *                  the 64-bit little-endian layout (x86_64 guests) is
 *                  parsed.
 *
 * QEMU 7.2 fills the sub-header's phys_base by parsing the guest's
 * "NUMBER(phys_base)=" vmcoreinfo line as hexadecimal, but Linux writes it
 * in decimal (VMCOREINFO_NUMBER uses %ld). With KASLR the physical load
 * offset is not 0 and the header is wrong: makedumpfile then fails with
 * "Can't get pgd". vmcore_kdump_fix_phys_base() rewrites it from the
 * vmcoreinfo the dump carries. (phys_base is the only header field QEMU
 * takes from vmcoreinfo; on aarch64 it reads NUMBER(PHYS_OFFSET), which
 * Linux writes as 0x-prefixed hex, so that one is right.)
 *
 * Contract, for every function here:
 *   - Returns 0 (or the documented non-negative value) on success, a
 *     negative errno on failure, and then, if @err is not NULL, a one-phrase
 *     reason in @err (NUL-terminated, truncated to @errlen). Never logs.
 *   - Input files are untrusted in content: every size and offset is
 *     checked before use, memory is bounded (VMCORE_COPY_CHUNK for copying,
 *     VMCORE_VMCOREINFO_MAX for vmcoreinfo), nothing is written outside the
 *     output's [0, max_size) range.
 *   - Error numbers: -EBADMSG malformed or truncated input, -EFBIG a size or
 *     offset over a limit, -EMEDIUMTYPE the wrong format for the operation,
 *     -ENODATA no vmcoreinfo in the dump, -ENOENT no such vmcoreinfo key,
 *     -EPROTONOSUPPORT a layout this library does not parse (big-endian,
 *     32-bit kdump, unknown version); anything else comes from the system.
 *   - Blocking fds only (a pipe may be EAGAIN-nonblocking: then we poll).
 */
#ifndef PB_VMCORE_H
#define PB_VMCORE_H

#include <stddef.h>
#include <stdint.h>

enum vmcore_format {
	VMCORE_UNKNOWN = 0,
	VMCORE_ELF64,
	VMCORE_ELF32,
	VMCORE_KDUMP,
	VMCORE_FLATTENED,
};

/* Size of the flattened format's header block. */
#define VMCORE_FLAT_HEADER_SIZE 4096
/* Largest data record vmcore_unflatten() accepts (QEMU writes at most a few
 * pages, or the notes, per record). */
#define VMCORE_FLAT_RECORD_MAX (64ULL * 1024 * 1024)
/* Bytes copied at a time (the unflattener's only buffer). */
#define VMCORE_COPY_CHUNK (1024 * 1024)
/* Largest vmcoreinfo text accepted (Linux's is one page). */
#define VMCORE_VMCOREINFO_MAX (1024 * 1024)

/* "elf64", "elf32", "kdump", "flattened", "unknown". */
const char *vmcore_format_name(enum vmcore_format f);

/*
 * Looks at the first bytes of @fd (pread at offset 0; the file position is
 * not used). Returns an enum vmcore_format (VMCORE_UNKNOWN also for a file
 * too short to tell) or a negative errno when reading fails.
 */
int vmcore_detect(int fd);

/* 1 if @fd starts with the flattened header (signature and type), 0 if
 * not, negative errno when reading fails. */
int vmcore_is_flattened(int fd);

/*
 * Reassembles a flattened dump: reads @in_fd sequentially from its current
 * position to EOF (a pipe is fine: the dump can be reassembled while QEMU
 * writes it) and pwrite()s every record's data at its offset of @out_fd,
 * which must be seekable and must not be @in_fd; @out_fd is truncated to 0
 * first, so holes read as zeroes exactly as with `makedumpfile -R`.
 * Checks the header (signature, type 1, version 1), every record (offset
 * >= 0, 0 < size <= VMCORE_FLAT_RECORD_MAX, offset + size <= @max_size,
 * which must be > 0), that there is at least one record, the end marker,
 * and that nothing follows it (so on a pipe it returns only when every
 * writer has closed it: close your own copy of the write end). A stream that stops early (QEMU died, disk full) is
 * -EBADMSG. Records are applied in order: a later one overwrites an
 * earlier one where they overlap, as with `makedumpfile -R`. On failure
 * @out_fd holds what was written so far: the caller removes it.
 * The caller fsyncs @out_fd.
 */
int vmcore_unflatten(int in_fd, int out_fd, uint64_t max_size, char *err,
		     size_t errlen);

/*
 * Reads the guest's vmcoreinfo text from a KDUMP file (sub-header
 * offset_vmcoreinfo/size_vmcoreinfo, header_version >= 3) or an ELF file
 * (the "VMCOREINFO" note of a PT_NOTE segment). On success *ret_text is a
 * malloc()ed, NUL-terminated copy (the caller frees it) and *ret_len
 * (may be NULL) its length up to the first NUL. -ENODATA when the dump has
 * none (no -device vmcoreinfo, or the guest never filled it in: Linux does
 * so when its qemu_fw_cfg driver loads); -EMEDIUMTYPE for a flattened file
 * (unflatten it first) or an unknown one.
 */
int vmcore_read_vmcoreinfo(int fd, char **ret_text, size_t *ret_len,
			   char *err, size_t errlen);

/*
 * Finds "KEY=value" in vmcoreinfo text (one entry per line, exact key
 * match at the start of a line). *ret_value points into @text, *ret_vlen
 * is the value's length up to the end of the line. -ENOENT if absent.
 */
int vmcore_vmcoreinfo_value(const char *text, size_t len, const char *key,
			    const char **ret_value, size_t *ret_vlen);

/*
 * Checks the sub-header's phys_base of a KDUMP file (@fd opened read-write)
 * against the decimal "NUMBER(phys_base)=" of the vmcoreinfo in the same
 * file and, if they differ, rewrites the 8 bytes in place. Returns 0 when
 * fixed or already right, with the header's old and the correct value in
 * *ret_old / *ret_new (both may be NULL; equal when nothing changed).
 * -ENODATA: no vmcoreinfo in the dump; -ENOENT: the vmcoreinfo has no
 * NUMBER(phys_base) (not an x86_64 guest: nothing to fix). The caller
 * fsyncs.
 */
int vmcore_kdump_fix_phys_base(int fd, uint64_t *ret_old, uint64_t *ret_new,
			       char *err, size_t errlen);

#endif
