# SPDX-License-Identifier: MIT
"""Hostile guests at scale: a hundred fake guests misbehaving in every way
protocol/SPEC.md §8 lets a guest misbehave (build/pbfakeguest --many: one
process drives them all), one of them truncating its mailbox file under the
daemon, beside ten honest guests that panic into kdump. The honest crashes
complete as usual, each with its panic record, UNLOAD acknowledged within the
guest's bound and the kdump kernel's reports; the daemon stays up, and its
CPU and memory stay bounded."""

import os
import shutil
import subprocess
import tempfile
import threading
import time

import pytest

from tests.lib.daemon import Daemon
from tests.lib.fakeguest import FAKEGUEST, guest, records
from tests.lib.wait import wait_until
from tests.tools.fakepeers import FakePeers

MODES = ["garbage", "torn", "badver", "hello-flood", "huge-length", "flip", "ring-flood",
         "slot-spam", "unload-spam", "kdump-flood", "badslot", "layout", "truncate"]
N_HOSTILE = 100
N_HONEST = 10
HOSTILE_SECONDS = 6
# Bounds for the sanitized build (ASan's shadow memory and quarantine count
# in its RSS); the plain build's figures are in tests/bench/README.md.
RSS_GROWTH_MAX_KIB = 96 * 1024
CPU_MAX = 0.9   # of one core, averaged over the hostile run


def proc_stat(pid):
    """(utime + stime in seconds, VmRSS in KiB)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return cpu, rss


@pytest.fixture
def fleet():
    if not os.access(FAKEGUEST, os.X_OK):
        pytest.fail("build/pbfakeguest is not built: run make")
    work = tempfile.mkdtemp(prefix="pbhs", dir="/tmp")
    peers = FakePeers()
    state = {"work": work, "peers": peers, "daemon": None}
    yield state
    if state["daemon"]:
        state["daemon"].stop(check=False)
    peers.close()
    shutil.rmtree(work, ignore_errors=True)


def test_hostile_guests_at_scale(fleet):
    work, peers = fleet["work"], fleet["peers"]
    specs, hostile, honest = [], [], []
    for i in range(N_HOSTILE + N_HONEST):
        name = f"h{i:03d}" if i < N_HOSTILE else f"ok{i - N_HOSTILE}"
        q = peers.add(name, os.path.join(work, f"{name}.qmp"))
        mbox = os.path.join(work, f"{name}.mbox")
        specs.append(f"{name},qmp={q.path},mailbox={mbox},snapshot=never,kdump_timeout=30")
        (hostile if i < N_HOSTILE else honest).append((name, mbox))
    d = fleet["daemon"] = Daemon(work, specs, log_level="info").start()
    peers.wait_attached(timeout=120)
    wait_until(lambda: all(os.path.exists(m) for _, m in hostile + honest),
               "every mailbox formatted", 30)
    # The honest ones open their sessions before the storm.
    for name, mbox in honest:
        assert guest(mbox, "hello")["accepted"] == "1", name
    cpu0, rss0 = proc_stat(d.proc.pid)
    t0 = time.monotonic()
    storm = subprocess.Popen([FAKEGUEST, "--many", str(HOSTILE_SECONDS)] +
                             [f"{MODES[i % len(MODES)]}:{m}" for i, (_, m) in
                              enumerate(hostile)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1)

    # Ten honest panics into kdump, one after another, during the storm.
    results = {}

    def honest_crash(name, mbox):
        out = guest(mbox, "panic", f"Kernel panic - not syncing: honest {name}")
        peers.vms[name].emit("GUEST_CRASHLOADED", {"action": "run"})
        time.sleep(0.1)
        ks = guest(mbox, "kdump-session", "auto", "start", "progress:50", "done:4096")
        peers.vms[name].emit("RESET", {"guest": True, "reason": "guest-reset"})
        results[name] = (out, ks)

    threads = [threading.Thread(target=honest_crash, args=nm) for nm in honest]
    for t in threads:
        t.start()
        time.sleep(0.2)
    peak_rss = rss0
    while storm.poll() is None:
        peak_rss = max(peak_rss, proc_stat(d.proc.pid)[1])
        time.sleep(0.2)
    cpu1, rss1 = proc_stat(d.proc.pid)
    elapsed = time.monotonic() - t0
    so, se = storm.communicate()
    assert storm.returncode == 0, (so, se)
    for t in threads:
        t.join(timeout=60)

    assert d.proc.poll() is None, d.log_text()[-3000:]
    print("honest UNLOAD round trips (ms): " +
          ", ".join(f"{results[n][0].get('rtt_us', '?')[:-3] or 0}" for n, _ in honest))
    # The ACK within the guest's 100 ms bound: a shared, overloaded CI host
    # (load 10 on 2 cores) has been seen to deschedule one for longer; one
    # miss is tolerated, and its record must say so.
    missed = [n for n, _ in honest if results[n][0]["acked"] != "1"]
    assert len(missed) <= 1, {n: results[n][0] for n in missed}
    for name, _ in honest:
        out, ks = results[name]
        assert ks["accepted"] == "1" and ks["consumed"] == "1", (name, ks)
    recs = {}
    for name, _ in honest:
        rec = d.wait_record(lambda r, n=name: r["vm"] == n and r["state"] == "closed", 60,
                            f"{name}'s crash closed", vm=name)
        recs[name] = rec
        assert rec["panic"]["message"] == f"Kernel panic - not syncing: honest {name}", rec
        assert rec["unload"]["acked"] is (name not in missed), rec
        assert rec["kdump"]["state"] == "done", rec["kdump"]
        assert len([r for r in records(d.spool) if r["vm"] == name]) == 1
    # Hostile guests are malformed input, never crashes.
    assert [r["vm"] for r in records(d.spool) if r["vm"].startswith("h")] == []
    text = d.log_text()
    assert "malformed guest input" in text
    assert "while it was read (SIGBUS caught)" in text or "shrank below" in text
    cpu = (cpu1 - cpu0) / elapsed
    print(f"daemon (ASan) during {elapsed:.1f} s of {N_HOSTILE} hostile + {N_HONEST} honest "
          f"guests: CPU {cpu * 100:.0f}% of a core, RSS {rss0 // 1024} -> peak "
          f"{peak_rss // 1024} MiB, load {os.getloadavg()[0]:.1f}")
    assert peak_rss - rss0 < RSS_GROWTH_MAX_KIB, (rss0, peak_rss)
    assert cpu < CPU_MAX, cpu
    d.stop()
    fleet["daemon"] = None
