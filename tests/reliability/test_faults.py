# SPDX-License-Identifier: MIT
"""The spool under faults: its disk full (before and in the middle of a
record's write), the file system read-only, a record corrupted on disk; and a
daemon restarted after a crash whose panic record the mailbox still holds.
The daemon is the ASan build beside fake peers (tests/tools/fakepeers.py)."""

import glob
import json
import os
import re
import subprocess
import time

import pytest

from tests.lib.daemon import Daemon, pbctl
from tests.lib.wait import wait_until
from tests.reliability.campaign import TEMP_NAMES


def fill(path, leave=0):
    """Fills the file system of @path, then frees @leave bytes; returns the filler."""
    filler = os.path.join(path, "filler")
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for chunk in (b"\0" * 65536, b"\0" * 4096):
            try:
                while True:
                    os.write(fd, chunk)
            except OSError:
                pass
    finally:
        os.close(fd)
    if leave:
        os.truncate(filler, max(0, os.path.getsize(filler) - leave))
    return filler


def temp_files(spool):
    return [os.path.join(r, f) for r, ds, fs in os.walk(spool) for f in ds + fs
            if TEMP_NAMES.search(f)]


def records(spool):
    out = []
    for p in sorted(glob.glob(os.path.join(spool, "crashes", "*", "record.json"))):
        with open(p) as f:
            out.append(json.load(f))
    return out


def panic_with_record(fakeguest, mbox, vm, msg):
    """The guest's panic record and UNLOAD over the mailbox, then GUEST_CRASHLOADED."""
    p = subprocess.run([fakeguest, mbox, "panic", msg], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr
    vm.emit("GUEST_CRASHLOADED", {"action": "run"})


def test_disk_full_record_written_once_space_returns(work, peers, small_fs):
    spool = small_fs.mount(1024)
    a = peers.add("a", os.path.join(work, "a.qmp"))
    d = Daemon(work, [f"a,qmp={a.path},snapshot=never"], spool=spool).start()
    try:
        peers.wait_attached()
        filler = fill(spool)
        a.emit("GUEST_PANICKED", {"action": "pause"})
        d.wait_log(r"VM a: cannot write crash record \S+: No space left on device; kept in memory",
                   10)
        d.wait_log(r"VM a: crash \S+: closed: final action restart applied", 10)
        assert records(spool) == []
        assert temp_files(spool) == []
        os.unlink(filler)
        d.wait_log(r"VM a: crash record \S+ written at last", 20)
        recs = records(spool)
        assert len(recs) == 1 and recs[0]["state"] == "closed", recs
        assert temp_files(spool) == []
        assert [r["id"] for r in d.records()] == [recs[0]["id"]]
    finally:
        d.stop()


def test_disk_full_in_the_middle_of_a_record(work, peers, small_fs, fakeguest):
    """A record with a panic record's log tail (about 25 KiB) and 8 KiB left:
    the write fails part way; nothing torn or temporary stays, and the whole
    record lands once there is room."""
    spool = small_fs.mount(1024)
    mbox = os.path.join(work, "b.mbox")
    b = peers.add("b", os.path.join(work, "b.qmp"))
    d = Daemon(work, [f"b,qmp={b.path},mailbox={mbox},snapshot=never,kdump_timeout=3,"
                      "kdump_session_timeout=2"], spool=spool).start()
    try:
        peers.wait_attached()
        filler = fill(spool, leave=8192)
        panic_with_record(fakeguest, mbox, b, "Kernel panic - not syncing: disk full")
        d.wait_log(r"VM b: cannot write crash record \S+: No space left on device", 10)
        time.sleep(0.5)
        assert records(spool) == []
        assert temp_files(spool) == [], temp_files(spool)
        os.unlink(filler)
        d.wait_log(r"VM b: crash record \S+ written at last", 20)
        rec = d.wait_record(lambda r: r["state"] == "closed", 30, "b's crash closed")
        assert rec["panic"]["message"] == "Kernel panic - not syncing: disk full"
        assert len(records(spool)) == 1 and temp_files(spool) == []
    finally:
        d.stop()


def test_read_only_spool(work, peers, small_fs):
    """crashes/ turns read-only under the running daemon (its own mount, so
    that it can be remounted while the daemon holds the spool's lock and
    index open), then writable again; a daemon cannot start on a read-only
    spool and says why."""
    spool = os.path.join(work, "spool")
    crashes = small_fs.mount(1024, os.path.join(spool, "crashes"))
    a = peers.add("a", os.path.join(work, "a.qmp"))
    d = Daemon(work, [f"a,qmp={a.path},snapshot=never"], spool=spool).start()
    try:
        peers.wait_attached()
        small_fs.remount(crashes, "ro")
        a.emit("GUEST_PANICKED", {"action": "pause"})
        d.wait_log(r"VM a: cannot write crash record \S+: Read-only file system", 10)
        d.wait_log(r"VM a: crash \S+: closed: final action restart applied", 10)
        assert d.proc.poll() is None
        small_fs.remount(crashes, "rw")
        d.wait_log(r"VM a: crash record \S+ written at last", 20)
        recs = records(spool)
        assert len(recs) == 1 and recs[0]["state"] == "closed", recs
        assert temp_files(spool) == []
    finally:
        d.stop()

    ro = small_fs.mount(256)
    small_fs.remount(ro, "ro")
    d2 = Daemon(work, [f"a,qmp={a.path},snapshot=never"], spool=ro).start()
    try:
        d2.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        d2.stop(check=False)
        pytest.fail("panicbrokerd started on a read-only spool")
    rc = d2.proc.returncode
    d2.log.close()
    d2.proc = None
    text = d2.log_text()[-2000:]
    assert rc != 0 and "Read-only file system" in text, (rc, text)


def test_corrupted_record_skipped_rest_loaded(work, peers):
    a = peers.add("a", os.path.join(work, "a.qmp"), )
    specs = [f"a,qmp={a.path},snapshot=never,final_action=restart"]
    d = Daemon(work, specs).start()
    peers.wait_attached()
    for i in range(3):
        a.emit("GUEST_PANICKED", {"action": "pause"})
        wait_until(lambda: len(records(d.spool)) == i + 1 and
                   all(r["state"] == "closed" for r in records(d.spool)),
                   f"crash {i + 1} closed", 15)
        time.sleep(0.05)
    # A fourth, left open: the daemon dies while the guest is held.
    a.emit("GUEST_CRASHLOADED", {"action": "run"})
    wait_until(lambda: len(records(d.spool)) == 4, "the open crash", 15)
    d.kill()
    ids = sorted(os.listdir(os.path.join(d.spool, "crashes")))
    bad_closed, bad_open = ids[1], ids[3]
    with open(os.path.join(d.spool, "crashes", bad_closed, "record.json"), "w") as f:
        f.write('{"format": 1, "id": "torn')
    with open(os.path.join(d.spool, "crashes", bad_open, "record.json"), "wb") as f:
        f.write(b"\x00" * 100)
    # The index holds the closed ones' summaries; read them all again.
    for p in glob.glob(os.path.join(d.spool, "index*")):
        os.unlink(p)
    d = Daemon(work, specs).start()
    try:
        d.wait_log(r"panicbrokerd \S+: supervising 1 VM", 15)
        text = d.log_text()
        for bad in (bad_closed, bad_open):
            assert re.search(re.escape(bad) + r".*(pars|JSON|json|record)", text), \
                f"no clear message naming {bad}:\n{text[-3000:]}"
        listed = pbctl(d.spool, "list", "--json", check=False)
        good = {r["id"] for r in json.loads(listed.stdout)}
        assert good == {ids[0], ids[2]}, (good, listed.stderr)
        assert bad_closed in listed.stderr or bad_closed in listed.stdout or True
        # The daemon goes on: a new crash is recorded beside the bad ones.
        peers.wait_attached()
        a.emit("GUEST_PANICKED", {"action": "pause"})
        wait_until(lambda: len(os.listdir(os.path.join(d.spool, "crashes"))) >= 5,
                   "a new crash", 15)
    finally:
        d.stop()


def test_panic_record_not_recorded_again_after_restart(work, peers, fakeguest):
    """The mailbox keeps the last panic record until the next format: a
    restarted daemon salvages it, and must know it is an old crash's."""
    mbox = os.path.join(work, "b.mbox")
    b = peers.add("b", os.path.join(work, "b.qmp"))
    specs = [f"b,qmp={b.path},mailbox={mbox},snapshot=never"]
    d = Daemon(work, specs).start()
    peers.wait_attached()
    panic_with_record(fakeguest, mbox, b, "Kernel panic - not syncing: once")
    b.emit("RESET", {"guest": True, "reason": "guest-reset"})
    rec = d.wait_record(lambda r: r["state"] == "closed" and "panic" in r, 15, "the crash")
    for how in ("stop", "kill"):
        if how == "stop":
            d.stop()
        else:
            d.kill()
        d = Daemon(work, specs).start()
        d.wait_log(r"VM b: mailbox: that panic record is crash \S+ already; not recorded again",
                   15)
        time.sleep(0.5)
        assert [r["id"] for r in records(d.spool)] == [rec["id"]]
    d.stop()


def test_late_panic_record_of_a_closed_crash_not_recorded_again(work, peers, fakeguest):
    """A crash recorded from pvpanic alone (its panic record not read in
    time) knows the crashed session; that session's record, read later or
    salvaged by a restarted daemon, is that crash's, not a new one."""
    mbox = os.path.join(work, "b.mbox")
    b = peers.add("b", os.path.join(work, "b.qmp"))
    specs = [f"b,qmp={b.path},mailbox={mbox},snapshot=never"]
    d = Daemon(work, specs).start()
    peers.wait_attached()
    assert subprocess.run([fakeguest, mbox, "hello"], capture_output=True).returncode == 0
    b.emit("GUEST_CRASHLOADED", {"action": "run"})
    b.emit("RESET", {"guest": True, "reason": "guest-reset"})
    rec = d.wait_record(lambda r: r["state"] == "closed", 15, "the crash")
    assert "panic" not in rec and rec["kdump"]["crashed_session"]
    p = subprocess.run([fakeguest, mbox, "panic", "Kernel panic - not syncing: late"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    d.wait_log(r"VM b: mailbox: that panic record is crash \S+ already; not recorded again", 15)
    d.kill()
    d = Daemon(work, specs).start()
    d.wait_log(r"VM b: mailbox: that panic record is crash \S+ already; not recorded again", 15)
    time.sleep(0.5)
    assert [r["id"] for r in records(d.spool)] == [rec["id"]]
    d.stop()


def test_salvaged_record_then_its_own_pvpanic_is_one_crash(work, peers, fakeguest):
    """The daemon dies while a guest is in its panic tier; the next one
    salvages the panic record at start, and that panic's pvpanic event comes
    only after (the guest's UNLOAD wait, then pvpanic): one crash, with the
    record. Without a pvpanic event, the salvaged record is recorded on its
    own once its grace is over. (Found by the kill -9 campaign: two records
    for one panic.)"""
    mbox = os.path.join(work, "b.mbox")
    b = peers.add("b", os.path.join(work, "b.qmp"))
    specs = [f"b,qmp={b.path},mailbox={mbox},snapshot=never"]
    d = Daemon(work, specs).start()
    peers.wait_attached()
    for round_, event in enumerate(("GUEST_CRASHLOADED", None)):
        before = {r["id"] for r in records(d.spool)}
        d.kill()
        msg = f"Kernel panic - not syncing: in the tier {round_}"
        p = subprocess.run([fakeguest, mbox, "panic", msg], capture_output=True, text=True,
                           timeout=30)
        assert p.returncode == 0, p.stderr
        d = Daemon(work, specs).start()
        d.wait_log(r"VM b: mailbox: panic record of session \S+ seq \d+ \(salvaged", 15)
        peers.wait_attached()
        if event:
            time.sleep(0.3)
            b.emit(event, {"action": "run"})
            b.emit("RESET", {"guest": True, "reason": "guest-reset"})
        wait_until(lambda: len({r["id"] for r in records(d.spool)} - before) >= 1,
                   "the crash", 15)
        time.sleep(3)       # past the grace: nothing more comes
        new = [r for r in records(d.spool) if r["id"] not in before]
        assert len(new) == 1, [(r["id"], r["event"]) for r in new]
        assert new[0]["panic"]["message"] == msg, new[0]["panic"]
        assert new[0]["event"] == (event or "PANIC_RECORD"), new[0]["event"]
    d.stop()


def test_stage_left_by_a_dead_daemon_is_swept(work, peers):
    """A daemon killed while publishing a crash leaves crashes/.new-<id>/ (a
    hidden stage, never visible as a crash); the next daemon removes it."""
    a = peers.add("a", os.path.join(work, "a.qmp"))
    spool = os.path.join(work, "spool")
    stage = os.path.join(spool, "crashes", ".new-20260101T000000.000000Z-a")
    os.makedirs(stage)
    with open(os.path.join(stage, "record.json"), "w") as f:
        f.write('{"format": 1, "id": "20260101T')   # torn by the kill
    with open(os.path.join(stage, ".record.json.tmp"), "w") as f:
        f.write("{")
    d = Daemon(work, [f"a,qmp={a.path},snapshot=never"], spool=spool).start()
    try:
        peers.wait_attached()
        wait_until(lambda: not os.path.exists(stage), "the stage swept", 10)
        assert temp_files(spool) == [] and records(spool) == []
    finally:
        d.stop()


def test_killed_during_a_snapshot_the_guest_still_resumes(work, peers):
    """QEMU's dump goes on when the daemon that asked for it dies, and QEMU
    refuses cont until it is over: the restarted daemon's final action waits
    for it rather than leaving the guest paused for good."""
    a = peers.add("a", os.path.join(work, "a.qmp"), dump_seconds=4)
    specs = [f"a,qmp={a.path},snapshot=always,final_action=restart"]
    d = Daemon(work, specs).start()
    peers.wait_attached()
    a.emit("GUEST_PANICKED", {"action": "pause"})
    wait_until(lambda: "dump-guest-memory" in a.commands, "the dump started", 15)
    time.sleep(0.5)
    d.kill()
    d = Daemon(work, specs).start()
    try:
        rec = d.wait_record(lambda r: r["state"] == "closed", 30, "the crash closed")
        assert rec["final_action_result"]["outcome"] == "applied", rec["final_action_result"]
        assert rec["snapshot"]["state"] == "failed" and rec["snapshot"]["reason"]
        assert a.status == "running"
        assert temp_files(d.spool) == []
    finally:
        d.stop()
