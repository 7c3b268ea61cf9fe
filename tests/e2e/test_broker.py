# SPDX-License-Identifier: MIT
"""The broker channel end to end: real kernels in QEMU, the real module on a
real ivshmem-plain mailbox, the real daemon (protocol/SPEC.md).

Witnesses: the guest's console (the module's lines and the test bed's PBTEST
lines), the daemon's log, and the crash record read through pbctl.
"""

import os
import re
import shutil
import subprocess
import tempfile

from tests.lib.daemon import BUILD, Daemon
from tests.lib.fakeqmp import FakeQMP

TIER = r"panicbroker: hypervisor tier: signalling (\w+) via .* after (\d+) us"
CHAN = r"panicbroker: broker channel: session ([0-9a-f]{16}): panic record (\d+) bytes, "
ACKED = CHAN + r"UNLOAD acked after (\d+) us"
NOT_ACKED = CHAN + r"UNLOAD not acked within (\d+) ms"
ACCEPTED = r"panicbroker: mailbox: session ([0-9a-f]{16}) accepted by "
RELOADED = r"panicbroker: mailbox: crash kernel loaded; opening a new session"
KDUMP_INIT = r"^PBTEST: kdump init reached"
BOOTED = r"^PBTEST: booted "


def with_panic(rec):
    return bool(rec.get("panic", {}).get("message"))


def attach_mailbox(attach, tmp_path, series, vm_keys="", **kw):
    """A guest with a mailbox, the daemon attached to both; the session open."""
    mbox = tmp_path / "mailbox"
    g, d = attach(series, f",mailbox={mbox}{vm_keys}", mailbox=mbox, **kw)
    # The module loads before the test bed's init loads the crash kernel,
    # so the session that counts is the one reopened to say it is loaded.
    m = g.wait_console(RELOADED, 30)
    g.wait_console(ACCEPTED, 30, start=m.end())
    return g, d, mbox


def panic_and_wait_kdump(g):
    mark = g.console_offset()
    g.command("panic")
    m = g.wait_console(KDUMP_INIT, 180, start=mark)
    return g.console_text()[mark:m.end()]


def test_panic_record_and_unload(series, attach, tmp_path):
    """The record holds the panic message, a log tail with the backtrace and
    the guest's kernel release; UNLOAD is acked and its round trip recorded."""
    g, d, _ = attach_mailbox(attach, tmp_path, series)
    console = panic_and_wait_kdump(g)

    m = re.search(ACKED, console)
    assert m, console[-3000:]
    session, nbytes, rtt = m.group(1), int(m.group(2)), int(m.group(3))
    tier = re.search(TIER, console)
    assert tier and tier.group(1) == "CRASH_LOADED", console[-3000:]
    assert len(re.findall(r"panicbroker: hypervisor tier", console)) == 1

    rec = d.wait_record(with_panic, 60, "a crash record with the panic")
    assert rec["event"] == "GUEST_CRASHLOADED"
    p = rec["panic"]
    assert p["message"] == "sysrq triggered crash"
    assert int(p["session"], 16) == int(session, 16) and p["seq"] == 1
    assert p["crash_loaded"] is True and p["from_oops"] is False
    tail = p["log_tail"]
    assert len(tail) >= 16 * 1024, len(tail)
    assert "Kernel panic - not syncing: sysrq triggered crash" in tail
    assert "Call Trace:" in tail and "sysrq_handle_crash" in tail, tail[-3000:]
    assert rec["guest"]["kernel_release"] == g.kver
    assert re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", rec["guest"]["boot_id"])
    assert rec["guest"]["crash_size"] != "0x0"

    # The guest's own measurements, written after the ACK, reach the record.
    rec = d.wait_record(lambda r: r.get("unload", {}).get("rtt_us") is not None, 30,
                        "the unload round trip")
    assert rec["unload"]["acked"] is True
    assert rec["unload"]["rtt_us"] == rtt
    assert 0 < rtt <= 100_000
    assert rec["panic"]["tier_us"] == int(tier.group(2))
    assert nbytes > len("sysrq triggered crash") + 16 * 1024

    # The kdump kernel came up after all that, and the guest boots again.
    g.wait_console(BOOTED, 180)


def test_daemon_down_guest_waits_its_bound(attach, tmp_path):
    """A daemon that died with the session open: the guest waits no longer
    than unload_wait_ms, kdump still comes up, and a daemon started later
    salvages the panic record from the slot."""
    series = "6.12"
    g, d, mbox = attach_mailbox(attach, tmp_path, series,
                                cmdline=["pbtest.modparams=unload_wait_ms=40"])
    spool = d.spool
    d.kill()        # host state stays ACTIVE with our session: the guest waits

    console = panic_and_wait_kdump(g)
    m = re.search(NOT_ACKED, console)
    assert m and int(m.group(3)) == 40, console[-3000:]
    tier_us = int(re.search(TIER, console).group(2))
    assert 40_000 <= tier_us < 40_000 + 60_000, tier_us

    d2 = Daemon(str(tmp_path / "d2"), [f"vm1,qmp={g.qmp_path},mailbox={mbox},snapshot=never"],
                spool=spool)
    (tmp_path / "d2").mkdir()
    d2.start()
    try:
        rec = d2.wait_record(with_panic, 60, "the salvaged panic record")
        assert rec["panic"]["message"] == "sysrq triggered crash"
        assert rec["unload"]["acked"] is False
    finally:
        d2.stop()


def test_host_offline_no_wait(attach, tmp_path):
    """A daemon that stopped cleanly said OFFLINE: the guest does not wait."""
    g, d, _ = attach_mailbox(attach, tmp_path, "6.1")
    d.stop()
    console = panic_and_wait_kdump(g)
    assert re.search(CHAN + r"UNLOAD posted; host not active, not waiting", console), \
        console[-3000:]


def test_daemon_restart_new_session(attach, tmp_path):
    """A restarted daemon reformats the mailbox; the guest opens a new session
    on its own and the next panic is recorded through it."""
    g, d, mbox = attach_mailbox(attach, tmp_path, "6.12")
    first = re.findall(ACCEPTED, g.console_text())[-1]
    d.stop()
    mark = g.console_offset()
    d2 = Daemon(str(tmp_path / "d2"), [f"vm1,qmp={g.qmp_path},mailbox={mbox},snapshot=never"],
                spool=d.spool)
    (tmp_path / "d2").mkdir()
    d2.start()
    try:
        m = g.wait_console(r"host reformatted the mailbox", 30, start=mark)
        second = g.wait_console(ACCEPTED, 30, start=m.end()).group(1)
        assert second != first
        panic_and_wait_kdump(g)
        rec = d2.wait_record(with_panic, 60, "the panic record of the new session")
        assert int(rec["panic"]["session"], 16) == int(second, 16)
        assert rec["unload"]["acked"] is True
    finally:
        d2.stop()


def test_daemon_formats_after_guest_loaded(make_guest, make_daemon, tmp_path):
    """QEMU first, module loaded on an unformatted mailbox, daemon later: the
    module waits for the format and then opens its session."""
    mbox = tmp_path / "mailbox"
    g = make_guest("6.1", mailbox=mbox)
    g.wait_ready(90)
    assert re.search(r"panicbroker: mailbox [0-9a-f:.]+: not usable yet \(no mailbox magic\)",
                     g.console_text()), g.console_tail()
    mark = g.console_offset()
    d = make_daemon([f"vm1,qmp={g.qmp_path},mailbox={mbox},snapshot=never"])
    g.wait_console(ACCEPTED, 30, start=mark)
    panic_and_wait_kdump(g)
    rec = d.wait_record(with_panic, 60, "a panic record")
    assert rec["panic"]["message"] == "sysrq triggered crash"


def test_oops_to_kdump_message(attach, tmp_path):
    """An oops that goes to kdump without panic() (panic_on_oops): the
    message is the oops line, and the record says it came from an oops."""
    g, d, _ = attach_mailbox(attach, tmp_path, "6.1")
    mark = g.console_offset()
    g.command("oops")
    g.wait_console(KDUMP_INIT, 180, start=mark)
    rec = d.wait_record(with_panic, 60, "a panic record")
    p = rec["panic"]
    assert p["from_oops"] is True, p["message"]
    assert re.match(r"(BUG: |Oops: |general protection fault|kernel BUG at)", p["message"]), \
        p["message"]


def test_mailbox_off(attach, tmp_path):
    """mailbox=0: no session, pvpanic alone (v0) still catches the panic."""
    mbox = tmp_path / "mailbox"
    g, d = attach("6.12", f",mailbox={mbox}", mailbox=mbox,
                  cmdline=["pbtest.modparams=mailbox=0"])
    assert "mailbox off" in g.console_text()
    panic_and_wait_kdump(g)
    rec = d.wait_record(lambda r: True, 60, "a crash record")
    assert rec["event"] == "GUEST_CRASHLOADED"
    assert "panic" not in rec or not rec["panic"]
    assert "broker channel" not in g.console_text()


HOSTILE_MODES = ("garbage-header", "huge-length", "flip-while-reading", "ring-flood")


def test_hostile_neighbour_real_vm_served(make_guest, make_daemon, tmp_path):
    """VM a is hostile (a fake guest cycling through every hostile mode on its
    mailbox, and a QMP peer flooding events); VM b is a real guest with the
    module. The daemon stays up and b's panic record and UNLOAD come through."""
    fakeguest = os.path.join(BUILD, "pbfakeguest")
    work = tempfile.mkdtemp(prefix="pbhn-")  # short: unix socket paths
    qa = FakeQMP(os.path.join(work, "a.qmp"), "flood")
    mbox_a, mbox_b = os.path.join(work, "a.mbox"), tmp_path / "b.mbox"
    b = make_guest("6.12", name="b", mailbox=mbox_b)
    d = make_daemon([f"a,qmp={qa.path},mailbox={mbox_a},snapshot=never",
                     f"b,qmp={b.qmp_path},mailbox={mbox_b},snapshot=never"])
    try:
        b.wait_ready(90)
        m = b.wait_console(RELOADED, 30)
        b.wait_console(ACCEPTED, 30, start=m.end())
        for mode in HOSTILE_MODES:
            p = subprocess.run([fakeguest, mbox_a, mode], capture_output=True, text=True,
                               timeout=60)
            assert p.returncode == 0, (mode, p.stdout, p.stderr)
        d.wait_log(r"VM a: mailbox: (malformed guest input|skipping ring records of unknown)", 10)
        assert d.proc.poll() is None
        console = panic_and_wait_kdump(b)
        assert re.search(ACKED, console), console[-3000:]
        rec = d.wait_record(with_panic, 60, "VM b's panic record", vm="b")
        assert rec["panic"]["message"] == "sysrq triggered crash"
        assert d.proc.poll() is None
    finally:
        qa.close()
        shutil.rmtree(work, ignore_errors=True)


def test_reload_with_a_session_then_panic(attach, tmp_path):
    """rmmod with a session open closes it; each insmod opens a new one, and
    the panic record comes through the last one."""
    g, d, _ = attach_mailbox(attach, tmp_path, "6.1")
    mark = g.console_offset()
    g.command("reload 5")
    g.wait_console(r"^PBTEST: reload done 5", 120, start=mark)
    opened = re.findall(r"panicbroker: mailbox [0-9a-f:.]+: session ([0-9a-f]{16}) opened",
                        g.console_text()[mark:])
    assert len(set(opened)) == 5, opened
    g.wait_console(r"panicbroker: mailbox: session %s accepted by " % opened[-1], 30,
                   start=mark)
    console = panic_and_wait_kdump(g)
    chan = re.search(ACKED, console)
    assert chan and chan.group(1) == opened[-1], console[-3000:]
    rec = d.wait_record(with_panic, 60, "the panic record")
    assert int(rec["panic"]["session"], 16) == int(opened[-1], 16)
    assert rec["panic"]["message"] == "sysrq triggered crash"
