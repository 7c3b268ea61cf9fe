#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Small synthetic guest memory dumps shaped like QEMU 7.2's dump-guest-memory
output, for the vmcore fuzz corpus and for trying pbvmcore by hand.

    tests/tools/make-test-dump.py DIR      # writes the files below into DIR

    kdump        standard kdump-compressed file (header v6, 4 KiB blocks,
                 sub-header, CORE/QEMU/VMCOREINFO notes, bitmaps, one page),
                 with phys_base as QEMU 7.2 writes it under KASLR: the decimal
                 NUMBER(phys_base) read as hex
    flat-kdump   the same, flattened in QEMU's record order (header, sub-header,
                 notes, bitmap blocks, page descriptors, page data)
    elf64        ELF64 core: PT_NOTE (CORE, QEMU, VMCOREINFO notes) + PT_LOAD
    flat-elf     elf64 flattened (what makedumpfile -F -E would write)

Layouts: see the comment at the top of hostd/vmcore.c.
"""

import os
import struct
import sys

BS = 4096
PHYS_BASE = 553648128  # 0x21000000, a KASLR load offset
VMCOREINFO = (
    "OSRELEASE=6.1.0-test-amd64\n"
    "BUILD-ID=0123456789abcdef0123456789abcdef01234567\n"
    "PAGESIZE=4096\n"
    "SYMBOL(init_uts_ns)=ffffffff9a616340\n"
    "SYMBOL(swapper_pg_dir)=ffffffff9a60a000\n"
    "OFFSET(list_head.next)=0\n"
    "NUMBER(phys_base)=%d\n"
    "KERNELOFFSET=17a00000\n"
    "NUMBER(KERNEL_IMAGE_SIZE)=1073741824\n"
    "NUMBER(sme_mask)=0\n" % PHYS_BASE
).encode()


def pad4(b):
    return b + b"\0" * (-len(b) % 4)


def note(name, ntype, desc):
    n = name.encode() + b"\0"
    return struct.pack("<III", len(n), len(desc), ntype) + pad4(n) + pad4(desc)


def notes():
    """Two vCPUs: NT_PRSTATUS "CORE" and QEMU's "QEMU" CPU state, then the
    guest's VMCOREINFO note. Returns (bytes, offset of the vmcoreinfo text)."""
    out = b""
    for cpu in range(2):
        out += note("CORE", 1, bytes([cpu]) * 336)
    for cpu in range(2):
        out += note("QEMU", 0, bytes([0x40 + cpu]) * 440)
    text_at = len(out) + 12 + 12  # header + "VMCOREINFO\0" padded to 12
    out += note("VMCOREINFO", 0, VMCOREINFO)
    return out, text_at


def kdump():
    """The standard file as a list of (offset, bytes) writes, in QEMU's order."""
    nts, text_at = notes()
    sub_hdr_size = -(-(104 + len(nts)) // BS)
    bitmap_blocks = 2
    max_mapnr = 16  # 16 pages of "guest RAM"
    h = bytearray(464)
    h[0:8] = b"KDUMP   "
    struct.pack_into("<i", h, 8, 6)
    h[12 + 4 * 65:12 + 4 * 65 + 6] = b"x86_64"
    struct.pack_into("<IiiIIIIIIi", h, 424, 1, BS, sub_hdr_size, bitmap_blocks,
                     max_mapnr, 0, 0, 0, 0, 2)
    sh = bytearray(104)
    misparsed = int(str(PHYS_BASE), 16)  # QEMU 7.2's base-16 parse
    struct.pack_into("<QiiQQQQQQQQQQQ", sh, 0, misparsed, 1, 0, 0, 0,
                     BS + 104 + text_at, len(VMCOREINFO), BS + 104, len(nts),
                     0, 0, 0, 0, max_mapnr)
    bitmap_off = (1 + sub_hdr_size) * BS
    bitmap = bytearray(BS // 2)
    bitmap[0:2] = b"\xff\xff"  # pages 0..15 present
    page_off = bitmap_off + bitmap_blocks * BS
    # 16 descriptors: all zero pages share the first data page, page 3 is
    # stored raw
    desc_size = 24
    data_off = page_off + desc_size * max_mapnr
    descs = b""
    for pfn in range(max_mapnr):
        if pfn == 3:
            descs += struct.pack("<QIIQ", data_off + BS, BS, 0, 0)
        else:
            descs += struct.pack("<QIIQ", data_off, BS, 0, 0)
    page3 = bytes(range(256)) * (BS // 256)
    return [
        (0, bytes(h)),
        (BS, bytes(sh)),
        (BS + 104, nts),
        (bitmap_off, bytes(bitmap)),
        (bitmap_off + len(bitmap), bytes(bitmap)),
        (page_off, descs),
        (data_off, bytes(BS)),
        (data_off + BS, page3),
    ]


def elf64():
    nts, _ = notes()
    phnum = 2
    notes_off = 64 + 56 * phnum
    load_off = notes_off + len(nts)
    ram = bytes(range(256)) * 16
    eh = struct.pack("<16sHHIQQQIHHHHHH",
                     b"\x7fELF\x02\x01\x01" + b"\0" * 9, 4, 62, 1, 0, 64, 0, 0,
                     64, 56, phnum, 0, 0, 0)
    ph = struct.pack("<IIQQQQQQ", 4, 0, notes_off, 0, 0, len(nts), len(nts), 0)
    ph += struct.pack("<IIQQQQQQ", 1, 0, load_off, 0, 0, len(ram), len(ram), 0)
    return [(0, eh + ph + nts + ram)]


def image(writes):
    size = max(off + len(b) for off, b in writes)
    out = bytearray(size)
    for off, b in writes:
        out[off:off + len(b)] = b
    return bytes(out)


def flatten(writes):
    out = b"makedumpfile".ljust(16, b"\0") + struct.pack(">qq", 1, 1)
    out = out.ljust(4096, b"\0")
    for off, b in writes:
        out += struct.pack(">qq", off, len(b)) + b
    return out + struct.pack(">qq", -1, -1)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    d = sys.argv[1]
    os.makedirs(d, exist_ok=True)
    k, e = kdump(), elf64()
    for name, data in (("kdump", image(k)), ("flat-kdump", flatten(k)),
                       ("elf64", image(e)), ("flat-elf", flatten(e))):
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
