#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Local API benchmark (`make bench-api`): the API's latency for /v1/crashes
and the dashboard (/, a deep page, /buckets, a crash's page) with 100,000
closed records in the spool, beside the time the daemon takes to start on
that spool, cold (no index.tsv: every record read) and warm (the index
file there), and the machine's load.

    tests/bench/api-bench.py [--records 100000] [--requests 200] [--dir DIR]

The spool is generated once (tests/lib/synthspool.py: records shaped like a
real closed kdump crash, 1,000 VMs, 300 signature buckets, skewed) into
DIR/spool-N (default build/bench-api) and reused while its stamp matches.
Each request is a new connection on the unix socket (as a browser without
keep-alive, as pbctl), one at a time; the daemon runs with no VMs.

Environment: PB_DAEMON (default build/panicbrokerd, the non-sanitized build).
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, TOP)

from tests.lib.daemon import BUILD  # noqa: E402
from tests.lib.synthspool import make_spool  # noqa: E402

GENERATOR_VERSION = 1
# What we hold ourselves to (ms): a page must feel instant, a listing must
# not hold the loop past its walk budget, a start must not hold systemd.
TARGETS = {
    "/v1/crashes": 250, "/": 50, "/?page=1000": 50, "/buckets": 100, "/crashes/ID": 50,
    "start, warm": 2000, "start, cold": 60000,
}


def request(api, path, timeout=30, headers=None):
    """(status, body bytes, seconds) of GET @path on a fresh connection;
    the reply's headers into @headers (a dict), if given."""
    t0 = time.perf_counter()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(api)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
    reply = bytearray()
    while True:
        chunk = s.recv(262144)
        if not chunk:
            break
        reply += chunk
    s.close()
    dt = time.perf_counter() - t0
    head, _, body = bytes(reply).partition(b"\r\n\r\n")
    if headers is not None:
        for line in head.decode(errors="replace").split("\r\n")[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
    return int(head.split(b" ", 2)[1]), body, dt


def spool_for(base, n):
    """A spool of @n synthetic records, made once and stamped."""
    spool = os.path.join(base, f"spool-{n}")
    stamp = os.path.join(base, f"spool-{n}.stamp")
    want = json.dumps({"generator": GENERATOR_VERSION, "records": n})
    if os.path.exists(stamp) and open(stamp).read() == want:
        return spool, 0.0
    shutil.rmtree(spool, ignore_errors=True)
    t0 = time.monotonic()
    make_spool(spool, n, vms=1000, buckets=300, seed=1)
    with open(stamp, "w") as f:
        f.write(want)
    return spool, time.monotonic() - t0


class Daemon:
    def __init__(self, exe, spool, api, log):
        self.argv = [exe, "--spool", spool, "--api", api, "--log-level", "info"]
        self.api, self.log = api, log

    def start(self):
        """Seconds from exec to the API's first answer."""
        if os.path.exists(self.api):
            os.unlink(self.api)
        self.logf = open(self.log, "ab")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(self.argv, stdout=self.logf, stderr=self.logf)
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"panicbrokerd exited {self.proc.returncode}: see {self.log}")
            try:
                if request(self.api, "/v1/vms", timeout=5)[0] == 200:
                    return time.monotonic() - t0
            except OSError:
                pass
            time.sleep(0.005)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        self.logf.close()


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=100000)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--dir", default=os.path.join(BUILD, "bench-api"))
    args = ap.parse_args()

    exe = os.environ.get("PB_DAEMON", os.path.join(BUILD, "panicbrokerd"))
    if not os.access(exe, os.X_OK):
        raise SystemExit(f"{exe} is not built: run make")
    os.makedirs(args.dir, exist_ok=True)
    load0 = os.getloadavg()
    spool, made = spool_for(args.dir, args.records)
    if made:
        print(f"generated {args.records} records in {made:.0f} s into {spool}")
    api = os.path.join("/tmp", f"pb-api-bench-{os.getpid()}.sock")
    log = os.path.join(args.dir, "panicbrokerd.log")
    if os.path.exists(log):
        os.unlink(log)  # this run's starts only
    d = Daemon(exe, spool, api, log)

    # Cold: no index file, every record read (and the index written).
    for name in ("index.tsv", ".index.tsv.tmp"):
        if os.path.exists(os.path.join(spool, name)):
            os.unlink(os.path.join(spool, name))
    starts = {"start, cold": d.start()}
    d.stop()
    warm = []
    for _ in range(3):
        warm.append(d.start())
        d.stop()
    starts["start, warm"] = statistics.median(warm)

    d.start()
    ids = sorted(os.listdir(os.path.join(spool, "crashes")))
    paths = ["/v1/crashes", "/", "/?page=1000", "/buckets", "/crashes/ID"]
    lat, size, notes = {}, {}, {}
    try:
        for p in paths:
            real = p.replace("ID", ids[len(ids) // 2]) if p.endswith("ID") else p
            st, body, _ = request(api, real)  # warm-up, and the check
            if st != 200:
                raise SystemExit(f"GET {real}: {st}: {body[:300]!r}")
            size[p] = len(body)
            lat[p] = []
            partial = 0
            for _ in range(args.requests):
                hd = {}
                st, body, dt = request(api, real, headers=hd)
                lat[p].append(dt * 1000)
                partial += "x-panicbroker-partial" in hd
                if p == "/v1/crashes":
                    notes[p] = f"{len(json.loads(body))} crashes in the last reply"
                elif p.startswith("/?") or p == "/":
                    notes[p] = "%d rows" % body.count(b'<tr class="crash"')
            if partial:
                notes[p] = notes.get(p, "") + f"; {partial}/{args.requests} cut by the walk budget"
    finally:
        d.stop()
        if os.path.exists(api):
            os.unlink(api)
    load1 = os.getloadavg()

    index_lines = []
    with open(log, errors="replace") as f:
        for line in f:
            if "spool index:" in line:
                index_lines.append(line.strip().split("info: ", 1)[-1])

    print(f"\nAPI benchmark: {args.records} closed records in {spool}")
    print(f"machine: {os.cpu_count()} CPUs, load average {load0[0]:.2f} at the start, "
          f"{load1[0]:.2f} at the end; daemon {exe}")
    print(f"{'request':<16} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'target':>8} {'bytes':>9}  n={args.requests}")
    for p in paths:
        v = lat[p]
        ok = "ok" if pct(v, 99) <= TARGETS[p] else "MISSED"
        print(f"{p:<16} {pct(v, 50):8.1f} {pct(v, 99):8.1f} {max(v):8.1f} "
              f"{'<' + str(TARGETS[p]):>8} {size[p]:9d}  {ok}  {notes.get(p, '')}")
    for k in ("start, cold", "start, warm"):
        ms = starts[k] * 1000
        print(f"{k:<16} {ms:8.0f} {'':>8} {'':>8} {'<' + str(TARGETS[k]):>8} {'':>9}  "
              f"{'ok' if ms <= TARGETS[k] else 'MISSED'}")
    print("start: exec to the API's first answer (warm: median of 3); cold = no index.tsv, "
          "every record read")
    if index_lines:
        print(f"the daemon, cold: {index_lines[0]}")
        print(f"the daemon, warm: {index_lines[-1]}")


if __name__ == "__main__":
    main()
