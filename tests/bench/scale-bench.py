#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""make bench-scale: one panicbrokerd (the plain build) supervising many VMs
made of fake peers (tests/tools/fakepeers.py, all QMP monitors in one
process) and fake guests (build/pbfakeguest --many, all mailboxes in one
process, every one with an open broker-channel session), and each figure of
issue 12 item 1 printed beside its target:

  idle      the daemon's CPU over --idle-seconds (target < 1% of a core),
            RSS (< 64 MiB), open descriptors;
  start-up  on a spool of --records closed records and the VMs: the first
            start (no index yet) and the next (target < 2 s);
  burst     a panic on --burst VMs within a second, each with its panic
            record and UNLOAD: UNLOAD round trip p50/p99/max against the
            guest's bound, every crash recorded, event to durable record
            p50/p99 (target p99 < 50 ms);
  storm     --storm-rate QMP events a second from misbehaving peers while
            real panics arrive on others: none lost, detection p99.

    tests/bench/scale-bench.py [--vms 1000] [--records 100000] [--idle-seconds 60]
"""

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, TOP)

from tests.lib.daemon import Daemon  # noqa: E402
from tests.lib.fakeguest import FAKEGUEST  # noqa: E402
from tests.lib import synthspool  # noqa: E402
from tests.tools.fakepeers import FakePeers  # noqa: E402


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def proc_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def rfc3339(s):
    """The daemon's timestamps (2026-12-01T14:30:07.196601Z) as epoch seconds."""
    m = re.match(r"(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)\.(\d+)Z", s)
    import calendar
    y, mo, d, h, mi, se, frac = m.groups()
    return calendar.timegm((int(y), int(mo), int(d), int(h), int(mi), int(se))) + \
        int(frac) / 10 ** len(frac)


def row(what, value, target, ok):
    mark = "" if ok is None else ("  ok" if ok else "  MISSED")
    print(f"  {what:<44} {value:>22}   target {target}{mark}", flush=True)


class Bench:
    def __init__(self, a):
        self.a = a
        self.work = tempfile.mkdtemp(prefix="pbscale", dir="/tmp")
        self.peers = FakePeers()
        self.names = [f"vm{i:04d}" for i in range(a.vms)]
        # The mailboxes on a tmpfs, as on a host (/run): on a disk file system
        # the heartbeat's writes would be written back every few seconds.
        shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
        self.mbox_dir = tempfile.mkdtemp(prefix="pbscale-mbox", dir=shm or self.work)
        self.mbox = {n: os.path.join(self.mbox_dir, f"{n}.mbox") for n in self.names}
        for n in self.names:
            self.peers.add(n, os.path.join(self.work, f"{n}.qmp"))
        self.conf = os.path.join(self.work, "panicbrokerd.conf")
        self.write_conf()
        self.spool = a.spool or os.path.join(self.work, "spool")
        self.daemon = None
        self.guests = None

    def write_conf(self):
        with open(self.conf, "w") as f:
            for n in self.names:
                f.write(f"vm {n},qmp={self.peers.vms[n].path},mailbox={self.mbox[n]},"
                        "snapshot=never,final_action=restart\n")

    def start_daemon(self):
        try:
            return self._start_daemon()
        except AssertionError:
            m = re.search(r"more than (\d+) VMs", self.daemon.log_text())
            if not m:
                raise
        # The configuration takes fewer: measured with as many as it takes.
        n = int(m.group(1))
        print(f"  the configuration refuses {len(self.names)} VMs (more than {n}): "
              f"measured with {n}", flush=True)
        self.daemon.proc = None
        self.names = self.names[:n]
        self.write_conf()
        return self._start_daemon()

    def _start_daemon(self):
        log = os.path.join(self.work, "panicbrokerd.log")
        mark = os.path.getsize(log) if os.path.exists(log) else 0
        t0 = time.time()
        self.daemon = Daemon(self.work, [], spool=self.spool, log_level="info",
                             args=["--config", self.conf]).start()
        m = self.daemon.wait_log(r"(\S+) panicbrokerd\[\d+\] info: panicbrokerd \S+: "
                                 r"supervising (\d+) VMs?", timeout=600, start=mark)
        n = int(m.group(2))
        if n != len(self.names):
            refused = re.search(r"VM (\S+): (.*most one daemon supervises.*)",
                                self.daemon.log_text()[mark:])
            print(f"  the daemon supervises {n} of {len(self.names)} VMs"
                  f"{': ' + refused.group(2) if refused else ''}; measured with {n}",
                  flush=True)
            self.names = self.names[:n]
        return rfc3339(m.group(1)) - t0

    def stop_daemon(self):
        if self.daemon:
            self.daemon.stop(check=False)
            self.daemon = None

    def start_guests(self):
        self.guests = subprocess.Popen([FAKEGUEST, "--many", "100000"] +
                                       [f"idle:{self.mbox[n]}" for n in self.names],
                                       stdout=subprocess.PIPE, text=True)

    def sessions_open(self):
        text = self.daemon.log_text()
        return len(set(re.findall(r"VM (\S+): mailbox: guest session \S+ accepted", text)))

    def stop_guests(self):
        if self.guests:
            self.guests.terminate()
            self.guests.communicate(timeout=30)
            self.guests = None

    # -- the figures --

    def startup(self):
        print(f"start-up: a spool of {self.a.records} closed records, {self.a.vms} VMs "
              f"{'(spool ' + self.a.spool + ')' if self.a.spool else ''}", flush=True)
        t0 = time.monotonic()
        if not self.a.spool:
            synthspool.make_spool(self.spool, self.a.records, vms=self.a.vms)
            print(f"  (spool written in {time.monotonic() - t0:.0f} s)", flush=True)
        for p in glob.glob(os.path.join(self.spool, "index*")):
            os.unlink(p)
        cold = self.start_daemon()
        self.peers.wait_attached(self.names, timeout=600)
        self.stop_daemon()
        warm = self.start_daemon()
        # Without SPOOL/index.tsv (a spool from before the index, or the file
        # deleted) the daemon reads every record once to write it: reported.
        # Every start after that is the one the target is for.
        row("first start, no index yet (builds it, once)", f"{cold:.2f} s", "(reported)", None)
        row("start-up (the index)", f"{warm:.2f} s", "< 2 s", warm < 2)
        self.peers.wait_attached(self.names, timeout=600)

    def idle(self):
        self.start_guests()
        deadline = time.monotonic() + 120
        while self.sessions_open() < len(self.names) and time.monotonic() < deadline:
            time.sleep(1)
        opened = self.sessions_open()
        time.sleep(3)
        pid = self.daemon.proc.pid
        c0, t0 = proc_cpu(pid), time.monotonic()
        time.sleep(self.a.idle_seconds)
        cpu = (proc_cpu(pid) - c0) / (time.monotonic() - t0)
        rss = proc_rss_kib(pid) / 1024
        with open(f"/proc/{pid}/status") as f:
            parts = {line.split(":")[0]: int(line.split()[1]) // 1024 for line in f
                     if line.startswith(("RssAnon", "RssFile", "RssShmem"))}
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        print(f"idle: {len(self.names)} VMs, {opened} with an open broker-channel session, "
              f"{self.a.idle_seconds} s", flush=True)
        row("daemon CPU", f"{cpu * 100:.1f}% of a core", "< 1%", cpu < 0.01)
        row("daemon RSS", f"{rss:.1f} MiB", "< 64 MiB", rss < 64)
        row("  of which anon / file / shmem",
            f"{parts.get('RssAnon')} / {parts.get('RssFile')} / {parts.get('RssShmem')} MiB",
            "(reported)", None)
        row("open descriptors", f"{fds}", "(reported)", None)

    def crash_times(self, names, since):
        """{vm: (qmp event time, durable time, record)} of records detected
        after @since. Durable: the daemon's "crash ID recorded" line, which it
        logs once the record's first write returned (written, fsynced,
        renamed into crashes/, the directory fsynced). Not the crash
        directory's ctime: every later save of the record changes it."""
        recorded = {}
        for m in re.finditer(r"^(\S+) panicbrokerd\[\d+\] \w+: VM (\S+): \S+: crash (\S+) "
                             r"recorded \(", self.daemon.log_text(), re.M):
            recorded[m.group(3)] = rfc3339(m.group(1))
        out = {}
        for p in glob.glob(os.path.join(self.spool, "crashes", "*-vm*", "record.json")):
            d = os.path.dirname(p)
            vm = d.rsplit("-", 1)[1]
            if vm not in names:
                continue
            try:
                with open(p) as f:
                    rec = json.load(f)
            except (OSError, ValueError):
                continue
            if rfc3339(rec["detected_at"]) < since or rec["id"] not in recorded:
                continue
            out[vm] = (rfc3339(rec["qmp_timestamp"]), recorded[rec["id"]], rec)
        return out

    def burst(self):
        names = self.names[:self.a.burst]
        print(f"burst: a panic on {len(names)} VMs within a second, each with its panic "
              "record and UNLOAD", flush=True)
        since = time.time()
        # One guest panics every 0.8 s / N; pvpanic comes right after its tier
        # (its UNLOAD wait): each VM's GUEST_CRASHLOADED as soon as its guest
        # is done, as QEMU would send it, while the next ones panic.
        rtts, bound, acked = [], None, 0
        pending, todo = {}, list(names)
        step = 0.8 / len(names)
        t_next = time.monotonic()
        end = t_next + 30
        while (todo or pending) and time.monotonic() < end:
            if todo and time.monotonic() >= t_next:
                n = todo.pop(0)
                pending[n] = subprocess.Popen([FAKEGUEST, self.mbox[n], "panic",
                                               f"Kernel panic - not syncing: burst {n}"],
                                              stdout=subprocess.PIPE, text=True)
                t_next += step
            for n, p in list(pending.items()):
                if p.poll() is None:
                    continue
                del pending[n]
                so, _ = p.communicate()
                self.peers.vms[n].emit("GUEST_CRASHLOADED", {"action": "run"})
                out = dict(line.split("=", 1) for line in so.splitlines() if "=" in line)
                if out.get("acked") == "1":
                    acked += 1
                    rtts.append(int(out["rtt_us"]) / 1000)
                bound = int(out.get("wait_bound_ms", 100))
            time.sleep(0.0005)
        for p in pending.values():
            p.kill()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            got = self.crash_times(set(names), since)
            if len(got) == len(names):
                break
            time.sleep(0.2)
        lat = [(dur - ev) * 1000 for ev, dur, _ in got.values()]
        with_panic = sum(1 for _, _, r in got.values() if "panic" in r)
        row("UNLOAD acked", f"{acked}/{len(names)}", "all", acked == len(names))
        row("UNLOAD round trip p50 / p99 / max",
            f"{pct(rtts, 50):.1f} / {pct(rtts, 99):.1f} / {max(rtts or [0]):.1f} ms",
            f"< {bound} ms (the guest's bound)", max(rtts or [1e9]) < bound)
        row("crashes recorded (with their panic record)",
            f"{len(got)} ({with_panic})/{len(names)}", "all", len(got) == len(names))
        row("event to durable record p50 / p99", f"{pct(lat, 50):.1f} / {pct(lat, 99):.1f} ms",
            "p99 < 50 ms", pct(lat, 99) < 50)
        # Each crash ends with the kdump kernel's reboot.
        for n in names:
            self.peers.vms[n].emit("RESET", {"guest": True, "reason": "guest-reset"})

    def storm(self):
        stormy = self.names[self.a.burst:self.a.burst + 100]
        real = self.names[self.a.burst + 100:self.a.burst + 110]
        per = self.a.storm_rate // len(stormy)
        print(f"storm: {per * len(stormy)} QMP events a second from {len(stormy)} misbehaving "
              f"peers for {self.a.storm_seconds} s, real panics on {len(real)} others",
              flush=True)
        pid = self.daemon.proc.pid
        c0 = proc_cpu(pid)
        fut = self.peers.storm(stormy, per, self.a.storm_seconds)
        time.sleep(2)
        since = time.time()
        for n in real:
            self.peers.vms[n].emit("GUEST_PANICKED", {"action": "pause"})
            time.sleep(self.a.storm_seconds / 2 / len(real))
        sent = fut.result(timeout=self.a.storm_seconds + 120)
        cpu = (proc_cpu(pid) - c0) / self.a.storm_seconds
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            got = self.crash_times(set(real), since)
            if len(got) == len(real):
                break
            time.sleep(0.2)
        lat = [(dur - ev) * 1000 for ev, dur, _ in got.values()]
        row("events sent (a second)", f"{sent} ({sent / self.a.storm_seconds:.0f}/s)",
            f"{self.a.storm_rate}/s", None)
        row("real panics recorded", f"{len(got)}/{len(real)}", "all", len(got) == len(real))
        row("event to durable record p50 / p99",
            f"{pct(lat, 50):.1f} / {pct(lat, 99):.1f} ms", "(reported)", None)
        row("daemon CPU during the storm", f"{cpu * 100:.0f}% of a core", "(reported)", None)
        alive = self.daemon.proc.poll() is None
        row("daemon up, every VM still attached", "yes" if alive else "NO", "yes", alive)

    def close(self):
        self.stop_guests()
        self.stop_daemon()
        self.peers.close()
        shutil.rmtree(self.mbox_dir, ignore_errors=True)
        if not self.a.keep:
            shutil.rmtree(self.work, ignore_errors=True)
        else:
            print(f"work directory kept: {self.work}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vms", type=int, default=1000)
    ap.add_argument("--records", type=int, default=100000)
    ap.add_argument("--idle-seconds", type=int, default=60)
    ap.add_argument("--burst", type=int, default=100)
    ap.add_argument("--storm-rate", type=int, default=10000)
    ap.add_argument("--storm-seconds", type=int, default=10)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--spool", help="a spool made by an earlier run (--keep) to start from")
    a = ap.parse_args()
    if not os.access(FAKEGUEST, os.X_OK):
        sys.exit("build/pbfakeguest is not built: run make")
    print(f"scale benchmark: {a.vms} VMs, daemon {os.environ.get('PB_DAEMON', 'default')}, "
          f"load {' '.join(f'{x:.1f}' for x in os.getloadavg())}, {os.cpu_count()} CPUs",
          flush=True)
    b = Bench(a)
    try:
        b.startup()
        b.idle()
        b.burst()
        b.storm()
    finally:
        b.close()
    print(f"load at the end {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
