# SPDX-License-Identifier: MIT
"""pbctl watch, buckets and show --log against the real daemon, with a fake
QMP peer and a fake guest on the broker channel (so crashes have a panic
record, a log tail and a signature)."""

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import threading
import time

import pytest

from tests.lib.daemon import SCALE, Daemon, pbctl_binary
from tests.lib.fakeguest import FAKEGUEST, guest, records
from tests.lib.fakeqmp import FakeQMP
from tests.lib.wait import wait_until


class Bed:
    """One VM "a" (fake QMP + mailbox) and an API socket, in a short dir."""

    def __init__(self, work):
        self.work = work
        self.qmp = FakeQMP(os.path.join(work, "a.qmp"), "behaved")
        self.mbox = os.path.join(work, "a.mbox")
        self.api = os.path.join(work, "api.sock")
        self.spool = os.path.join(work, "spool")
        self.vm = f"a,qmp={self.qmp.path},mailbox={self.mbox},snapshot=never"
        self.daemons = []

    def start(self, extra=()):
        d = Daemon(self.work, [self.vm], spool=self.spool,
                   args=["--api", self.api, *extra]).start()
        self.daemons.append(d)
        wait_until(lambda: os.path.exists(self.api), "the API socket", 15,
                   describe=lambda: d.log_text()[-3000:])
        self.qmp.wait_attached()
        return d

    def crash(self, d, message):
        """A panic with a panic record, through kdump to its close; the record."""
        known = {r["id"] for r in records(self.spool)}
        if known:
            time.sleep(1.1)  # the daemon reads at most one panic record a second
        assert guest(self.mbox, "hello")["accepted"] == "1"
        out = guest(self.mbox, "panic", message)
        assert out["rc"] == 0 and out["acked"] == "1", out
        self.qmp.emit("GUEST_CRASHLOADED", {"action": "run"})
        d.wait_record(lambda r: r["id"] not in known and r["state"] == "kdump_running",
                      15, "the crash in kdump")
        for state in ("start", "done"):
            assert guest(self.mbox, "kdump-status", state)["consumed"] == "1"
        d.wait_log(r"the kdump kernel reported done", 15)
        self.qmp.emit("RESET", {"guest": True, "reason": "guest-reset"})
        return d.wait_record(lambda r: r["id"] not in known and r["state"] == "closed",
                             15, "the crash closed")

    def close(self):
        for d in self.daemons:
            d.stop(check=True)
        self.qmp.close()


@pytest.fixture
def bed(short_dir):
    if not os.access(FAKEGUEST, os.X_OK):
        pytest.fail("build/pbfakeguest is not built: run make")
    b = Bed(short_dir)
    yield b
    b.close()


class Watch:
    """pbctl watch in the background, its lines collected."""

    def __init__(self, api, *args):
        self.proc = subprocess.Popen([pbctl_binary(), "--api", api, "watch", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.lines = queue.Queue()
        self.seen = []
        self.err = []
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines),
                         daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, self.err),
                         daemon=True).start()

    @staticmethod
    def _pump(f, out):
        for line in f:
            if isinstance(out, list):
                out.append(line)
            else:
                out.put(line)

    def expect(self, pattern, timeout=15):
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout * SCALE
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                assert self.proc.poll() is None, \
                    f"pbctl watch exited {self.proc.returncode}: {''.join(self.err)}"
                continue
            self.seen.append(line)
            if rx.search(line):
                return line
        raise AssertionError(f"no /{pattern}/ from pbctl watch within {timeout} s; "
                             f"saw {self.seen}, stderr {self.err}")

    def wait_stderr(self, pattern, timeout=15):
        wait_until(lambda: any(re.search(pattern, l) for l in self.err),
                   f"/{pattern}/ on pbctl watch's stderr", timeout,
                   describe=lambda: "".join(self.err))

    def interrupt(self):
        self.proc.send_signal(signal.SIGINT)
        rc = self.proc.wait(timeout=10 * SCALE)
        assert rc == 0, f"pbctl watch exited {rc} on SIGINT: {''.join(self.err)}"


def started_watch(api):
    w = Watch(api)
    # It follows from now on: give it its first poll before anything happens.
    time.sleep(0.7 * SCALE)
    assert w.proc.poll() is None, "".join(w.err)
    return w


def test_watch_sees_a_crash_open_change_state_and_close(bed):
    d = bed.start()
    w = started_watch(bed.api)
    rec = bed.crash(d, "Kernel panic - not syncing: watch me")
    cid = re.escape(rec["id"])
    w.expect(rf"^\S+Z a crash-opened {cid} GUEST_CRASHLOADED \"panic: watch me\"$")
    w.expect(rf"^\S+Z a crash-state {cid} detected -> kdump_running$")
    w.expect(rf"^\S+Z a kdump-outcome {cid} done$")
    w.expect(rf"^\S+Z a crash-closed {cid} not-needed \"panic: watch me\"$")
    w.interrupt()

    # --json: one event object a line, the API's own.
    wj = Watch(bed.api, "--json")
    time.sleep(0.7 * SCALE)
    bed.qmp.emit("GUEST_PANICKED", {"action": "pause"})
    ev = json.loads(wj.expect(r'"type":"crash-opened"'))
    assert ev["vm"] == "a" and ev["event"] == "GUEST_PANICKED" and ev["seq"] > 0
    wj.interrupt()


def test_watch_waits_for_a_restarted_daemon_and_follows_it(bed):
    d = bed.start()
    w = started_watch(bed.api)
    d.stop()
    w.wait_stderr(r"lost panicbrokerd at .*waiting for it to come back")
    d2 = bed.start()
    w.wait_stderr(r"panicbrokerd restarted; following the new one")
    rec = bed.crash(d2, "Kernel panic - not syncing: after the restart")
    # The new daemon's events from its start: the VM, then the crash.
    w.expect(r"^\S+Z a vm-added$")
    w.expect(rf"^\S+Z a crash-closed {re.escape(rec['id'])} not-needed")
    w.interrupt()


def test_watch_without_a_daemon_fails_at_once(bed):
    p = subprocess.run([pbctl_binary(), "--api", bed.api, "watch"], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 1
    assert "cannot reach panicbrokerd" in p.stderr


def test_buckets_count_from_the_daemon_and_from_the_spool(bed):
    d = bed.start()
    first = bed.crash(d, "Kernel panic - not syncing: disk on fire")
    second = bed.crash(d, "Kernel panic - not syncing: disk on fire")
    other = bed.crash(d, "Kernel panic - not syncing: out of coffee")
    assert "signature" in first and "signature" in second and "signature" in other, (first, second, other)
    assert first["signature"]["bucket"] == second["signature"]["bucket"]
    assert other["signature"]["bucket"] != first["signature"]["bucket"]

    def buckets(*args):
        p = subprocess.run([pbctl_binary(), "--api", bed.api, "--spool", bed.spool,
                            "buckets", *args], capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        return p

    p = buckets("--json")
    assert p.stderr == ""
    api = json.loads(p.stdout)
    assert [(b["bucket"], b["count"]) for b in api] == [
        (first["signature"]["bucket"], 2), (other["signature"]["bucket"], 1)]
    top = api[0]
    assert top["title"] == "panic: disk on fire"
    assert top["first_seen"] == first["detected_at"]
    assert top["last_seen"] == second["detected_at"]
    assert top["last_crash"] == second["id"] and top["last_vm"] == "a"
    assert json.loads(buckets("--json", "--from-spool").stdout) == api

    table = buckets().stdout.splitlines()
    assert table[0].split() == ["COUNT", "BUCKET", "FIRST", "SEEN", "LAST", "SEEN", "LAST",
                                "VM", "TITLE"]
    assert table[1].split()[:2] == ["2", first["signature"]["bucket"]]
    assert table[1].endswith("panic: disk on fire")
    assert table[2].split()[:2] == ["1", other["signature"]["bucket"]]

    d.stop()
    p = buckets("--json")
    assert "counting the spool instead" in p.stderr
    assert json.loads(p.stdout) == api


def test_show_log_prints_the_log_tail_else_the_snapshot_log(bed):
    d = bed.start()
    rec = bed.crash(d, "Kernel panic - not syncing: log me")
    d.stop()

    def show(cid, *args):
        return subprocess.run([pbctl_binary(), "--spool", bed.spool, "show", cid, *args],
                              capture_output=True, text=True, timeout=30)

    p = show(rec["id"], "--log")
    assert p.returncode == 0, p.stderr
    assert p.stdout == rec["panic"]["log_tail"]
    assert p.stdout.endswith("Call Trace: fake_panic+0x0\n")
    assert show("--log", rec["id"]).stdout == p.stdout  # either order

    # A crash without a panic record: the snapshot's log, dmesg.txt beside it.
    cdir = os.path.join(bed.spool, "crashes", rec["id"])
    other = rec["id"] + "-9"
    odir = os.path.join(bed.spool, "crashes", other)
    os.mkdir(odir)
    r = dict(rec, id=other)
    del r["panic"]
    r["snapshot"] = {"state": "done", "verify": {"ok": True, "log_path": "dmesg.txt"}}
    with open(os.path.join(odir, "record.json"), "w") as f:
        json.dump(r, f)
    with open(os.path.join(odir, "dmesg.txt"), "w") as f:
        f.write("[    0.000000] Linux version 6.1.0\n[   42.000000] Kernel panic\n")
    p = show(other, "--log")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "[    0.000000] Linux version 6.1.0\n[   42.000000] Kernel panic\n"

    # Neither: said so, exit 1.
    del r["snapshot"]
    with open(os.path.join(odir, "record.json"), "w") as f:
        json.dump(r, f)
    p = show(other, "--log")
    assert p.returncode == 1 and "has no guest log" in p.stderr
    assert os.path.isdir(cdir)
    shutil.rmtree(odir)
