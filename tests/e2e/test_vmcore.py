# SPDX-License-Identifier: MIT
"""QEMU's kdump-compressed dumps, reassembled and repaired by the vmcore
library (through build/pbvmcore), on real guests of both kernel series.

For each series one guest (KASLR on, the distro default; no crash kernel, so
it stops in guest-panicked) is dumped with dump-guest-memory paging=false as
kdump-zlib into a file, as kdump-zlib into a FIFO that pbvmcore reassembles
while QEMU writes, and as ELF. Then, without QEMU:

- QEMU 7.2 writes the flattened layout; `makedumpfile -R` reassembles it, and
  `makedumpfile --dump-dmesg` still fails (the error depends on where KASLR put
  the kernel: "Can't get pgd", "Can't get pud_pte", ...) because the
  sub-header's phys_base is the guest's decimal NUMBER(phys_base) read as hex;
- `pbvmcore unflatten` gives the same bytes as `makedumpfile -R`, also when
  streaming from the FIFO;
- `pbvmcore fix-phys-base` writes the decimal value, and makedumpfile reads
  the guest's log, panic line included;
- the ELF dump carries the same vmcoreinfo note as the kdump file.

A second guest per series with `nokaslr` shows the same dump reads fine
unrepaired (phys_base 0 either way).

    /usr/bin/python3 -m pytest -v tests/e2e/test_vmcore.py
"""

import filecmp
import os
import re
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.lib import Guest, find_guests  # noqa: E402

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("PB_BUILD", os.path.join(TOP, "build"))
PBVMCORE = os.path.join(BUILD, "pbvmcore")
SERIES = ("6.1", "6.12")
PANIC_LINE = "Kernel panic - not syncing: sysrq triggered crash"


def run(*argv, timeout=300, **kw):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          timeout=timeout, **kw)


def pbvmcore(*args):
    p = run(PBVMCORE, *args)
    assert p.returncode == 0, f"pbvmcore {' '.join(map(str, args))}: {p.stderr}"
    return p.stdout


def dump(q, path, fmt):
    args = dict(paging=False, protocol=f"file:{path}", detach=True)
    if fmt != "elf":
        args["format"] = fmt
    q.execute("dump-guest-memory", **args)
    ev = q.wait_event("DUMP_COMPLETED", 300)
    assert "error" not in ev["data"], ev
    assert ev["data"]["result"]["status"] == "completed", ev
    # QEMU 7.2 sends DUMP_COMPLETED before the dump thread has cleaned up
    # its (global) state; a dump started at once can have its fd closed
    # under it ("failed to write elf header: Bad file descriptor").
    time.sleep(1)


def dump_dmesg(path, out):
    if os.path.exists(out):
        os.unlink(out)
    p = run("makedumpfile", "--dump-dmesg", path, out)
    text = open(out, errors="replace").read() if p.returncode == 0 else ""
    return p, text


def panicked_guest_dumps(kdir, workdir, cmdline=(), fifo=False, elf=False):
    """Boot, panic (held by panic=pause), dump; QEMU is gone on return."""
    d = {"dir": workdir}
    g = Guest(kdir, workdir / "vm", pvpanic="isa", cmdline=["pbtest.kdump=0", *cmdline])
    try:
        g.start()
        g.wait_ready(120)
        d["console"] = g.console_text()
        with g.qmp() as q:
            d["formats"] = q.execute("query-dump-guest-memory-capability")["formats"]
            q.execute("set-action", panic="pause")
            g.command("panic")
            q.wait_event("GUEST_PANICKED", 60)
            d["flat"] = workdir / "dump.flat"
            dump(q, d["flat"], "kdump-zlib")
            if fifo:
                fifo_path = workdir / "dump.fifo"
                os.mkfifo(fifo_path, 0o600)
                d["streamed"] = workdir / "streamed.kdump"
                # blocks in open() until QEMU opens the FIFO for writing
                reader = subprocess.Popen([PBVMCORE, "unflatten", str(fifo_path),
                                           str(d["streamed"])],
                                          stderr=subprocess.PIPE, text=True)
                try:
                    dump(q, fifo_path, "kdump-zlib")
                    _, err = reader.communicate(timeout=60)
                finally:
                    if reader.poll() is None:
                        reader.kill()
                        reader.wait()
                d["streamed_rc"] = (reader.returncode, err)
            if elf:
                d["elf"] = workdir / "dump.elf"
                dump(q, d["elf"], "elf")
    finally:
        g.stop()
    return d


@pytest.fixture(scope="module", params=SERIES)
def kaslr(request, tmp_path_factory):
    """Dumps of a KASLR guest of one series (one QEMU at a time)."""
    if not os.access(PBVMCORE, os.X_OK):
        pytest.fail(f"{PBVMCORE} missing: run make")
    found = find_guests([request.param])
    if request.param not in found:
        pytest.fail(f"no built guest for {request.param}: run make guests")
    workdir = tmp_path_factory.mktemp(f"vmcore-{request.param}")
    d = panicked_guest_dumps(found[request.param], workdir, fifo=True, elf=True)
    d["series"] = request.param
    d["kver"] = (found[request.param] / "kver").read_text().strip()
    yield d
    for k in ("flat", "streamed", "elf"):  # 1 GiB of ELF: do not keep it
        if k in d and os.path.exists(d[k]):
            os.unlink(d[k])


def test_capabilities_and_guest(kaslr):
    # Debian's QEMU 7.2 has no lzo/snappy: kdump-zlib is the only kdump format
    assert kaslr["formats"] == ["elf", "kdump-zlib", "win-dmp"], kaslr["formats"]
    assert "nokaslr" not in kaslr["console"]
    assert "PBTEST: distro module qemu_fw_cfg loaded" in kaslr["console"]


def test_qemu_writes_flattened(kaslr):
    assert pbvmcore("detect", kaslr["flat"]).strip() == "flattened"
    with open(kaslr["flat"], "rb") as f:
        head = f.read(32)
    assert head[:16] == b"makedumpfile".ljust(16, b"\0")
    assert head[16:] == (1).to_bytes(8, "big") + (1).to_bytes(8, "big")


def test_makedumpfile_R_alone_is_not_enough(kaslr, tmp_path):
    std = tmp_path / "std.kdump"
    with open(kaslr["flat"], "rb") as f:
        p = run("makedumpfile", "-R", std, stdin=f)
    assert p.returncode == 0, p.stdout + p.stderr
    out = tmp_path / "dmesg.txt"
    p, _ = dump_dmesg(std, out)
    said = p.stdout + p.stderr
    # Only the failure is certain: which translation fails first depends on
    # where KASLR put the kernel ("Can't get pgd", "Can't get pud_pte", ...).
    assert p.returncode != 0, "makedumpfile read the unrepaired dump: is QEMU's phys_base fixed?"
    log = open(out, errors="replace").read() if os.path.exists(out) else ""
    assert PANIC_LINE not in said + log, said
    # What it lacks is phys_base: repaired, the same file reads.
    fixed = pbvmcore("fix-phys-base", std).strip()
    assert fixed.endswith("(fixed)"), fixed
    p, text = dump_dmesg(std, out)
    assert p.returncode == 0, p.stdout + p.stderr
    assert PANIC_LINE in text


def test_unflatten_matches_makedumpfile_R(kaslr, tmp_path):
    std = tmp_path / "std.kdump"
    with open(kaslr["flat"], "rb") as f:
        assert run("makedumpfile", "-R", std, stdin=f).returncode == 0
    mine = tmp_path / "mine.kdump"
    pbvmcore("unflatten", kaslr["flat"], mine)
    assert os.path.getsize(mine) == os.path.getsize(std)
    assert filecmp.cmp(mine, std, shallow=False), "pbvmcore unflatten != makedumpfile -R"
    assert pbvmcore("detect", mine).strip() == "kdump"


def test_streamed_from_fifo(kaslr, tmp_path):
    rc, err = kaslr["streamed_rc"]
    assert rc == 0, err
    mine = tmp_path / "mine.kdump"
    pbvmcore("unflatten", kaslr["flat"], mine)
    # the guest is paused: both dumps of it are the same bytes
    assert filecmp.cmp(kaslr["streamed"], mine, shallow=False)


def test_fix_phys_base_makes_it_readable(kaslr, tmp_path):
    mine = tmp_path / "mine.kdump"
    pbvmcore("unflatten", kaslr["flat"], mine)
    info = pbvmcore("vmcoreinfo", mine)
    assert f"OSRELEASE={kaslr['kver']}\n" in info
    # Linux prints phys_base with %ld: KASLR can make it negative.
    dec = re.search(r"^NUMBER\(phys_base\)=(-?\d+)$", info, re.M).group(1)
    assert int(dec) != 0, "KASLR on, yet phys_base is 0"

    def u64(v):
        return v % (1 << 64)

    out = pbvmcore("fix-phys-base", mine).strip()
    # what QEMU 7.2 wrote: the decimal digits read as hexadecimal (strtoull
    # negates a leading '-')
    qemu = u64(-int(dec[1:], 16)) if dec.startswith("-") else int(dec, 16)
    assert out == f"phys_base {qemu:#x} -> {u64(int(dec)):#x} (fixed)", out
    assert pbvmcore("fix-phys-base", mine).strip() == \
        f"phys_base {u64(int(dec)):#x} (already right)"

    p, text = dump_dmesg(mine, tmp_path / "dmesg.txt")
    assert p.returncode == 0, p.stdout + p.stderr
    assert PANIC_LINE in text
    assert f"Linux version {kaslr['kver']}" in text


def test_elf_carries_the_same_vmcoreinfo(kaslr, tmp_path):
    mine = tmp_path / "mine.kdump"
    pbvmcore("unflatten", kaslr["flat"], mine)
    assert pbvmcore("detect", kaslr["elf"]).strip() == "elf64"
    assert pbvmcore("vmcoreinfo", kaslr["elf"]) == pbvmcore("vmcoreinfo", mine)
    # ELF has no header phys_base to repair
    p = run(PBVMCORE, "fix-phys-base", kaslr["elf"])
    assert p.returncode == 1 and "not a kdump-compressed file" in p.stderr


@pytest.mark.parametrize("series", SERIES)
def test_nokaslr_reads_without_repair(series, tmp_path):
    found = find_guests([series])
    if series not in found:
        pytest.fail(f"no built guest for {series}: run make guests")
    d = panicked_guest_dumps(found[series], tmp_path, cmdline=["nokaslr"])
    assert "nokaslr" in d["console"]
    std = tmp_path / "std.kdump"
    with open(d["flat"], "rb") as f:
        assert run("makedumpfile", "-R", std, stdin=f).returncode == 0
    p, text = dump_dmesg(std, tmp_path / "dmesg.txt")
    assert p.returncode == 0, p.stdout + p.stderr
    assert PANIC_LINE in text
    mine = tmp_path / "mine.kdump"
    pbvmcore("unflatten", d["flat"], mine)
    assert filecmp.cmp(mine, std, shallow=False)
    assert pbvmcore("fix-phys-base", mine).strip() == "phys_base 0x0 (already right)"
