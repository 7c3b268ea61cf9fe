# SPDX-License-Identifier: MIT
"""The daemon restarted beside fake QMP peers: a VM that a preserved crash
left in guest-panicked is that same crash while the same process runs it,
and a new crash once another process does; SIGHUP adds and removes VMs."""

import os
import signal
import subprocess
import sys

import pytest

from tests.lib.fakeqmp import FakeQMP
from tests.lib.wait import wait_until


@pytest.fixture
def peer(short_dir):
    made = []

    def make(name):
        f = FakeQMP(os.path.join(short_dir, f"{name}.qmp"), "behaved")
        made.append(f)
        return f

    yield make
    for f in made:
        f.close()


def preserved_crash(make_daemon, q):
    d = make_daemon([f"vm1,qmp={q.path},final_action=preserve,snapshot=never"])
    q.wait_attached()
    q.emit("GUEST_PANICKED", {"action": "pause"})
    rec = d.wait_record(lambda r: r["state"] == "closed", 15, "the preserved crash")
    assert rec["final_action_result"]["outcome"] == "preserved"
    assert rec["vm_instance"]["pid"] == os.getpid()  # the fake peer runs in this process
    assert rec["backend"] == "qmp"
    q.status = "guest-panicked"  # as QEMU leaves it
    d.stop()
    return rec, d.spool


def test_the_same_panicked_process_is_not_a_new_crash(make_daemon, peer):
    q = peer("vm1")
    rec, _ = preserved_crash(make_daemon, q)

    d = make_daemon([f"vm1,qmp={q.path},final_action=preserve,snapshot=never"])
    d.wait_log(r"VM vm1: attached to QMP .*\(VM status guest-panicked\)", 15)
    d.wait_log(r"VM vm1: still guest-panicked from a crash whose final action was preserve", 10)
    assert [r["id"] for r in d.records()] == [rec["id"]]


def test_another_process_panicked_is_a_new_crash(make_daemon, peer, short_dir):
    q = peer("vm1")
    rec, _ = preserved_crash(make_daemon, q)
    q.close()
    # Another QEMU process behind the socket, found panicked: a new crash.
    top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    other = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; sys.path.insert(0, sys.argv[1]);"
         "from tests.lib.fakeqmp import FakeQMP;"
         "f = FakeQMP(sys.argv[2], 'behaved'); f.status = 'guest-panicked';"
         "time.sleep(60)", top, q.path])
    try:
        wait_until(lambda: os.path.exists(q.path), "the other process's QMP socket")
        d = make_daemon([f"vm1,qmp={q.path},final_action=preserve,snapshot=never"])
        new = d.wait_record(lambda x: x["id"] != rec["id"], 15, "a second crash")
        assert new["event"] == "GUEST_PANICKED"
        assert "found the VM in guest-panicked at attach" in new["history"][0]["reason"]
        assert new["vm_instance"]["pid"] == other.pid
    finally:
        other.kill()
        other.wait()


def test_sighup_adds_and_removes_vms_and_keeps_open_crashes(make_daemon, peer, tmp_path):
    a, b = peer("a"), peer("b")
    conf = tmp_path / "pb.conf"
    conf.write_text(f"vm a,qmp={a.path},snapshot=never\n")
    d = make_daemon([], args=["--config", str(conf)])
    a.wait_attached()
    a.emit("GUEST_CRASHLOADED", {"action": "run"})
    open_a = d.wait_record(lambda r: r["vm"] == "a" and r["state"] == "kdump_running", 15,
                           "a's crash in kdump")

    # b comes, a goes: a's open crash stays open in the spool.
    conf.write_text(f"vm b,qmp={b.path},snapshot=never\n")
    mark = d.log_offset()
    d.proc.send_signal(signal.SIGHUP)
    d.wait_log(r"SIGHUP: configuration read again; supervising 1 VM", 10, start=mark)
    b.wait_attached()
    b.emit("GUEST_PANICKED", {"action": "pause"})
    rec_b = d.wait_record(lambda r: r["vm"] == "b" and r["state"] == "closed", 15, "b's crash")
    assert rec_b["final_action_result"]["outcome"] == "applied"
    rec_a = next(r for r in d.records() if r["id"] == open_a["id"])
    assert rec_a["state"] == "kdump_running"
    assert "no longer supervised" in rec_a["history"][-1]["reason"]
    d.wait_log(r"VM a: no longer supervised \(removed from the configuration\)", 5, start=mark)

    # a comes back: its open crash is resumed, not recorded anew.
    conf.write_text(f"vm a,qmp={a.path},snapshot=never\nvm b,qmp={b.path},snapshot=never\n")
    mark = d.log_offset()
    d.proc.send_signal(signal.SIGHUP)
    d.wait_log(r"VM a: resuming open crash " + open_a["id"], 10, start=mark)
    d.wait_log(r"VM a: attached to QMP", 15, start=mark)
    a.emit("RESET", {"guest": True, "reason": "guest-reset"})
    rec_a = d.wait_record(lambda r: r["id"] == open_a["id"] and r["state"] == "closed", 15,
                          "a's crash closed after the kdump kernel's reset")
    assert rec_a["final_action_result"]["outcome"] == "not-needed"
    assert len([r for r in d.records() if r["vm"] == "a"]) == 1

    # A configuration that does not parse changes nothing.
    conf.write_text("vm a,qmp=\n")
    mark = d.log_offset()
    d.proc.send_signal(signal.SIGHUP)
    d.wait_log(r"SIGHUP: the configuration does not parse", 10, start=mark)
    wait_until(lambda: a.connections >= 1, "a still attached")
