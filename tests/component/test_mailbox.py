# SPDX-License-Identifier: MIT
"""The host side of the broker channel (protocol/SPEC.md) against a fake guest.

build/pbfakeguest maps the VM's mailbox file and plays the guest; a
well-behaved FakeQMP plays QEMU, so no real guest is needed. The daemon is the
sanitized build, checked for sanitizer reports when it stops.
"""

import os
import shutil
import subprocess
import tempfile
import time

import pytest

from tests.lib.daemon import Daemon
from tests.lib.fakeqmp import FakeQMP
from tests.lib.fakeguest import FAKEGUEST, guest, records
from tests.lib.wait import wait_until

def wait_for(pred, timeout=10, what="condition"):
    return wait_until(pred, what, timeout)


@pytest.fixture
def bed():
    """Two VMs, a and b, each a behaved FakeQMP and a mailbox file."""
    if not os.access(FAKEGUEST, os.X_OK):
        pytest.fail("build/pbfakeguest is not built: run make")
    work = tempfile.mkdtemp(prefix="pbmb-")  # short: unix socket paths
    qmps = {n: FakeQMP(os.path.join(work, f"{n}.qmp"), "behaved") for n in ("a", "b")}
    mboxes = {n: os.path.join(work, f"{n}.mbox") for n in ("a", "b")}
    vms = [f"{n},qmp={qmps[n].path},mailbox={mboxes[n]},final_action=preserve,snapshot=never"
           for n in ("a", "b")]
    state = {"work": work, "qmp": qmps, "mbox": mboxes, "vms": vms, "daemons": []}

    def start():
        d = Daemon(work, vms).start()
        state["daemons"].append(d)
        for q in qmps.values():
            q.wait_attached()
        return d

    state["start"] = start
    yield state
    for d in state["daemons"]:
        d.stop(check=False)
    for q in qmps.values():
        q.close()
    shutil.rmtree(work, ignore_errors=True)


def test_mailbox_file_created_and_formatted(bed):
    d = bed["start"]()
    st = os.stat(bed["mbox"]["a"])
    assert st.st_size == 1024 * 1024
    assert st.st_mode & 0o777 == 0o600
    with open(bed["mbox"]["a"], "rb") as f:
        assert f.read(4) == b"PBMB"
    d.stop()


def test_hello_panic_and_kdump_reports(bed):
    d = bed["start"]()
    a = bed["mbox"]["a"]
    out = guest(a, "hello")
    assert out["rc"] == 0 and out["accepted"] == "1", out
    assert out["host_poll_ms"] == "40" and out["daemon_version"] == "0.1.0", out
    d.wait_log(r"VM a: mailbox: guest session [0-9a-f]+ accepted: kernel 6.1.0-fake-amd64")

    out = guest(a, "panic", "Kernel panic - not syncing: fake \x01 panic")
    assert out["rc"] == 0 and out["waited"] == "1" and out["acked"] == "1", out
    assert int(out["rtt_us"]) < 50000, out  # one 10 ms poll, plus ASan slack

    bed["qmp"]["a"].emit("GUEST_CRASHLOADED", {"action": "run"})
    rec = wait_for(lambda: next((r for r in records(d.spool)
                                 if r.get("unload", {}).get("rtt_us") is not None), None),
                   what="a record with the mailbox's panic")
    assert rec["vm"] == "a" and rec["state"] == "kdump_running", rec
    assert rec["panic"]["message"] == "Kernel panic - not syncing: fake \\x01 panic"
    assert rec["panic"]["log_tail"].endswith("Call Trace: fake_panic+0x0\n")
    assert "fake kernel log line 0\n" in rec["panic"]["log_tail"]
    assert rec["panic"]["taint"] == "0x1" and rec["panic"]["cpu"] == 1
    assert rec["panic"]["uptime_ns"] == 123456789
    assert rec["guest"]["kernel_release"] == "6.1.0-fake-amd64"
    assert rec["guest"]["boot_id"] == "10111213-1415-1617-1819-1a1b1c1d1e1f"
    assert rec["guest"]["crash_loaded"] is True
    assert rec["unload"]["acked"] is True
    assert rec["unload"]["rtt_us"] == int(out["rtt_us"])
    assert rec["panic"]["tier_us"] >= rec["unload"]["rtt_us"]

    for args in (("start",), ("progress", "50"), ("done",)):
        out = guest(a, "kdump-status", *args)
        assert out["rc"] == 0 and out["accepted"] == "1" and out["consumed"] == "1", out
    rec = wait_for(lambda: next((r for r in records(d.spool)
                                 if len(r.get("kdump", {}).get("reports", [])) == 3), None),
                   what="three kdump reports")
    assert [r["state"] for r in rec["kdump"]["reports"]] == ["start", "progress", "done"]
    assert rec["kdump"]["reports"][1]["percent"] == 50
    # The first kdump session names the crashed one (SPEC 4.4).
    assert rec["kdump"]["reports"][0]["prev_session"] == rec["panic"]["session"]
    assert "mailbox" not in rec, rec["mailbox"]
    d.stop()


def test_daemon_down_unload_wait_is_bounded_and_restart_salvages(bed):
    d = bed["start"]()
    a = bed["mbox"]["a"]
    assert guest(a, "hello")["accepted"] == "1"
    d.kill()  # dies: host control still says ACTIVE, nobody answers
    t0 = time.monotonic()
    out = guest(a, "panic", "Kernel panic - not syncing: nobody home")
    assert out["rc"] == 0 and out["waited"] == "1" and out["acked"] == "0", out
    assert 100000 <= int(out["rtt_us"]) < 400000, out
    assert out["wait_bound_ms"] == "100"
    assert time.monotonic() - t0 < 5

    # A new daemon salvages the slot (SPEC §4.1) and files it with the crash.
    d = bed["start"]()
    bed["qmp"]["a"].emit("GUEST_PANICKED", {"action": "pause"})
    rec = wait_for(lambda: next((r for r in records(d.spool) if "panic" in r), None),
                   what="a record with the salvaged panic")
    assert rec["panic"]["message"] == "Kernel panic - not syncing: nobody home"
    assert rec["panic"]["source"].startswith("salvaged")
    assert rec["unload"]["acked"] is False
    # ...and the reformat gave the guest a new generation: a new session opens.
    assert guest(a, "hello")["accepted"] == "1"
    d.stop()


@pytest.mark.parametrize("mode", ["garbage-header", "huge-length",
                                  "flip-while-reading", "ring-flood"])
def test_hostile_guest_leaves_the_daemon_up_and_others_served(bed, mode):
    d = bed["start"]()
    a, b = bed["mbox"]["a"], bed["mbox"]["b"]
    hostile = subprocess.Popen([FAKEGUEST, a, mode], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)
    out = guest(b, "hello")  # served while a misbehaves
    assert out["accepted"] == "1", out
    so, se = hostile.communicate(timeout=20)
    assert hostile.returncode == 0, (so, se)
    d.wait_log(r"VM a: mailbox: (malformed guest input|skipping ring records of unknown)",
               timeout=10)
    # VM b still answers UNLOAD at once, VM a opens a fresh session.
    out = guest(b, "panic", "b panics")
    assert out["acked"] == "1" and int(out["rtt_us"]) < 50000, out
    assert guest(a, "hello")["accepted"] == "1"
    assert d.proc.poll() is None
    d.stop()


def test_existing_file_of_a_wrong_size_is_a_clear_error(tmp_path):
    mbox = tmp_path / "bad.mbox"
    mbox.write_bytes(b"\0" * 1000)
    d = Daemon(str(tmp_path), [f"x,qmp={tmp_path}/x.qmp,mailbox={mbox}"])
    d.start()
    d.proc.wait(timeout=20)
    text = d.log_text()
    d.stop(check=False)
    assert "is 1000 bytes; it must be a multiple of 4 KiB" in text, text
    assert mbox.stat().st_size == 1000  # never truncated


def test_malformed_input_is_recorded_in_the_open_crash(bed):
    d = bed["start"]()
    a = bed["mbox"]["a"]
    bed["qmp"]["a"].emit("GUEST_CRASHLOADED", {"action": "run"})
    wait_for(lambda: records(d.spool), what="a crash record")
    out = guest(a, "huge-length")
    assert out["rc"] == 0, out
    rec = wait_for(lambda: next((r for r in records(d.spool) if "mailbox" in r), None),
                   what="mailbox.malformed in the record")
    assert rec["mailbox"]["malformed"] == ["g2h ring: record payload over 4 KiB"], rec
    assert rec["mailbox"]["malformed_count"] == 1
    out = guest(a, "ring-flood")
    rec = wait_for(lambda: next((r for r in records(d.spool)
                                 if r.get("mailbox", {}).get("unknown_records")), None),
                   what="mailbox.unknown_records in the record")
    assert rec["state"] == "kdump_running"
    assert guest(a, "hello")["accepted"] == "1"
    d.stop()


@pytest.mark.parametrize("size", [1024 * 1024, 256 * 1024])
def test_qemu_first_file_is_adopted_and_formatted_in_place(bed, size):
    """QEMU started first: it created the file and maps it; the guest waits."""
    a = bed["mbox"]["a"]
    with open(a, "wb") as f:
        f.truncate(size)
    ino = os.stat(a).st_ino
    early = subprocess.Popen([FAKEGUEST, a, "hello"], stdout=subprocess.PIPE, text=True)
    time.sleep(0.2)  # mapped before the daemon formats the file under it
    d = bed["start"]()
    so, _ = early.communicate(timeout=20)
    assert "accepted=1" in so, so
    st = os.stat(a)
    assert st.st_size == size and st.st_ino == ino  # not truncated, not replaced
    d.stop()


def test_restart_bumps_the_generation_and_clean_stop_says_offline(bed):
    import struct

    def header(path):
        with open(path, "rb") as f:
            b = f.read(0x90)
        return struct.unpack_from("<Q", b, 16)[0], struct.unpack_from("<I", b, 0x80)[0]

    a = bed["mbox"]["a"]
    d = bed["start"]()
    gen1, state = header(a)
    assert state == 1  # READY
    assert guest(a, "hello")["accepted"] == "1"
    assert header(a)[1] == 2  # ACTIVE
    d.stop()
    assert header(a) == (gen1, 0)  # OFFLINE, layout kept
    d = bed["start"]()
    gen2, state = header(a)
    assert gen2 == gen1 + 1 and state == 1
    d.stop()


def test_a_truncated_mailbox_file_is_given_up_not_fatal(bed):
    d = bed["start"]()
    assert guest(bed["mbox"]["a"], "hello")["accepted"] == "1"
    os.truncate(bed["mbox"]["a"], 4096)
    d.wait_log(r"VM a: mailbox file .* shrank below 1048576 bytes: mailbox given up")
    out = guest(bed["mbox"]["b"], "panic", "b panics")  # the other VM is still served
    assert out["acked"] == "1", out
    assert d.proc.poll() is None
    d.stop()
