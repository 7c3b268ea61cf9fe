# SPDX-License-Identifier: MIT
"""Memory snapshots: dump-guest-memory into the spool, in a layout the real
makedumpfile and crash read, on KASLR guests (the distro default), with the
policy deciding when."""

import os
import re
import shutil
import subprocess
import time

import pytest

from tests.lib.daemon import record_states

PANIC_LINE = "Kernel panic - not syncing: sysrq triggered crash"
BOOTED = r"^PBTEST: booted "


def closed(rec):
    return rec["state"] == "closed"


def crash_dir(d, rec):
    return os.path.join(d.spool, "crashes", rec["id"])


def dump_dmesg(path, tmp_path):
    """What an operator would run: makedumpfile --dump-dmesg on the file."""
    out = tmp_path / "dmesg-by-test.txt"
    if out.exists():
        out.unlink()
    p = subprocess.run(["makedumpfile", "--dump-dmesg", path, str(out)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"makedumpfile failed on {path}:\n{p.stdout}\n{p.stderr}"
    return out.read_text(errors="replace")


def crash_log(kver, path):
    """The guest's log as crash(8) prints it from @path, or None when crash or
    the kernel's debug symbols (linux-image-<kver>-dbg, ~860 MB) are missing."""
    vmlinux = f"/usr/lib/debug/boot/vmlinux-{kver}"
    if not (shutil.which("crash") and os.path.exists(vmlinux)):
        return None
    p = subprocess.run(["crash", "-s", vmlinux, path], input="log\nquit\n",
                       capture_output=True, text=True, timeout=600)
    return p.stdout + p.stderr


def no_stray_files(cdir):
    names = sorted(os.listdir(cdir))
    assert not [n for n in names if n.startswith(".")], names
    return names


def test_no_kdump_snapshot_is_readable_by_makedumpfile(series, attach, tmp_path):
    g, d = attach(series, ",snapshot=always", cmdline=["pbtest.kdump=0"])
    assert "nokaslr" not in g.command_line()
    mark = g.console_offset()
    g.command("panic")
    rec = d.wait_record(closed, 300, "the crash closed after its snapshot")
    snap = rec["snapshot"]
    assert snap["state"] == "done", snap
    assert snap["format"] == "kdump-zlib"
    assert snap["path"] == "vmcore"
    assert snap["vmcoreinfo"] is True
    assert snap["layout"].startswith("standard")
    assert snap["verify"]["ok"] is True
    assert PANIC_LINE in snap["verify"]["panic_line"]
    assert record_states(rec)[:3] == ["detected", "held", "snapshotting"]

    cdir = crash_dir(d, rec)
    assert no_stray_files(cdir) == ["dmesg.txt", "record.json", "vmcore"]
    vmcore = os.path.join(cdir, "vmcore")
    assert os.stat(vmcore).st_mode & 0o777 == 0o600
    assert os.path.getsize(vmcore) == snap["bytes"]
    # The file as left in the spool, read directly, no -R, no fix-ups.
    assert PANIC_LINE in dump_dmesg(vmcore, tmp_path)
    log = crash_log(g.kver, vmcore)
    if log is not None:  # crash(8) too, where the debug symbols are installed
        assert PANIC_LINE in log, log[-3000:]
    # Then the final action: the guest boots again.
    g.wait_console(BOOTED, 120, start=mark)
    assert rec["final_action_result"]["outcome"] == "applied"


def test_elf_snapshot_opens_in_crash(attach, tmp_path):
    g, d = attach("6.1", ",snapshot=always,snapshot_format=elf", cmdline=["pbtest.kdump=0"])
    g.command("panic")
    rec = d.wait_record(closed, 300)
    snap = rec["snapshot"]
    assert snap["state"] == "done", snap
    assert snap["path"] == "vmcore.elf"
    assert snap["vmcoreinfo"] is True
    assert snap["verify"]["ok"] is None and "crash" in snap["verify"]["reason"]
    elf = os.path.join(crash_dir(d, rec), "vmcore.elf")
    with open(elf, "rb") as f:
        assert f.read(4) == b"\x7fELF"
    log = crash_log(g.kver, elf)
    if log is None:
        pytest.skip(f"crash(8) and /usr/lib/debug/boot/vmlinux-{g.kver} (package "
                    f"linux-image-{g.kver}-dbg, ~860 MB) are not installed: "
                    "the ELF snapshot is not opened in crash")
    assert PANIC_LINE in log, log[-3000:]


def test_hung_kdump_is_snapshotted_after_the_deadline_then_reset(attach, tmp_path):
    g, d = attach("6.1", ",kdump_timeout=20,snapshot=on-kdump-failure",
                  cmdline=["pbtest.kdump_hang=1"])
    mark = g.console_offset()
    g.command("panic")
    m = g.wait_console(r"^PBTEST: kdump hanging", 120, start=mark)
    rec = d.wait_record(closed, 400, "the crash closed")
    assert record_states(rec)[:3] == ["detected", "kdump_running", "kdump_timeout"]
    assert "snapshotting" in record_states(rec)
    snap = rec["snapshot"]
    assert snap["state"] == "done", snap
    # The crashed kernel's memory, not the kdump kernel's.
    assert PANIC_LINE in dump_dmesg(os.path.join(crash_dir(d, rec), "vmcore"), tmp_path)
    assert rec["final_action_result"]["outcome"] == "applied"
    g.wait_console(BOOTED, 120, start=m.end())


def test_snapshot_always_with_kdump_dumps_before_kdump_goes_on(attach, tmp_path):
    g, d = attach("6.12", ",snapshot=always")
    q = g.qmp()
    mark = g.console_offset()
    g.command("panic")
    q.wait_event("GUEST_CRASHLOADED", 60)
    q.wait_event("STOP", 30)
    rec = d.wait_record(lambda r: r.get("snapshot", {}).get("state") == "done", 300)
    assert PANIC_LINE in dump_dmesg(os.path.join(crash_dir(d, rec), "vmcore"), tmp_path)
    m = g.wait_console(r"^PBTEST: kdump init reached", 120, start=mark)
    g.wait_console(BOOTED, 120, start=m.end())
    rec = d.wait_record(closed, 60)
    assert record_states(rec)[:2] == ["detected", "snapshotting"]
    assert "kdump_running" in record_states(rec) and "kdump_finished" in record_states(rec)


def test_qemu_killed_during_the_dump_leaves_no_complete_looking_file(attach):
    g, d = attach("6.1", ",snapshot=always", cmdline=["pbtest.kdump=0"])
    # Incompressible guest memory makes the dump take long enough to interrupt.
    g.command("sh dd if=/dev/urandom of=/fill bs=1M count=200 2>/dev/null")
    g.wait_console(r"^PBTEST: sh rc=0$", 300)
    g.command("panic")
    rec = d.wait_record(lambda r: r.get("snapshot", {}).get("state") == "running", 120,
                        "a running snapshot")
    time.sleep(1)
    g.kill()
    rec = d.wait_record(lambda r: r["snapshot"]["state"] == "failed", 60, "the snapshot failed")
    assert "QMP session ended" in rec["snapshot"]["reason"]
    cdir = crash_dir(d, rec)
    assert no_stray_files(cdir) == ["record.json"]


@pytest.fixture
def small_spool(tmp_path):
    path = tmp_path / "small-spool"
    path.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m,mode=0750", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        pytest.fail(f"cannot mount a small tmpfs for the test (needs root): {p.stderr}")
    yield str(path)
    subprocess.run(["umount", "-l", str(path)])


def test_a_spool_too_small_refuses_the_dump_but_keeps_the_record(make_guest, make_daemon,
                                                                small_spool):
    g = make_guest("6.1", cmdline=["pbtest.kdump=0"])
    d = make_daemon([f"vm1,qmp={g.qmp_path},snapshot=always"], spool=small_spool)
    d.wait_log(r"VM vm1: attached to QMP", 30)
    g.wait_ready(90)
    mark = g.console_offset()
    g.command("panic")
    rec = d.wait_record(closed, 120)
    snap = rec["snapshot"]
    assert snap["state"] == "refused"
    assert re.search(r"not enough space: the dump may need up to 10\d\d MiB .* MiB are free",
                     snap["reason"]), snap["reason"]
    assert no_stray_files(crash_dir(d, rec)) == ["record.json"]
    g.wait_console(BOOTED, 120, start=mark)
