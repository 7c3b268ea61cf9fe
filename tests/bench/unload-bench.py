#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Hypervisor-tier benchmark (`make bench-unload`): how long the tier holds a
panicking guest back from kdump, and the UNLOAD round trip over the broker
channel, as the median of several panics, side by side with the anchors:

  v0          mailbox=0: the tier only writes pvpanic (what it costs without
              the channel)
  channel     the daemon up: panic record, UNLOAD, wait for UNLOAD_ACK
  no daemon   the daemon killed with the session open: the guest waits its
              whole bound (unload_wait_ms, 100 ms by default), then goes on

    tests/bench/unload-bench.py [--series 6.1,6.12] [--panics 5]
                                [--cases v0,channel,nodaemon] [--keep DIR]

Each case boots one guest (crash kernel loaded) and panics it --panics times;
the kdump kernel reboots it, which serves the next panic. The figures come
from the module's own console lines ("broker channel: ... UNLOAD acked after
N us", "hypervisor tier: ... after N us") and, for the channel case, are
checked against what the daemon recorded (unload.rtt_us, panic.tier_us).

Environment: PB_DAEMON (default build/panicbrokerd, the non-sanitized build),
PB_GUEST_DIR, PB_QEMU, PB_ACCEL (tcg; kvm on real hosts), PB_TIMEOUT_SCALE.
"""

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, TOP)

from tests.lib import Guest, find_guests  # noqa: E402
from tests.lib.daemon import BUILD, Daemon  # noqa: E402

TIER = re.compile(r"panicbroker: hypervisor tier: signalling \w+ via .* after (\d+) us")
ACKED = re.compile(r"panicbroker: broker channel: session ([0-9a-f]{16}): "
                   r"panic record (\d+) bytes, UNLOAD acked after (\d+) us")
NOT_ACKED = re.compile(r"panicbroker: broker channel: .* UNLOAD not acked within (\d+) ms")
ACCEPTED = r"panicbroker: mailbox: session [0-9a-f]{16} accepted by "
RELOADED = r"panicbroker: mailbox: crash kernel loaded; opening a new session"
KDUMP_INIT = r"^PBTEST: kdump init reached"
CASES = ("v0", "channel", "nodaemon")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def span(values):
    if not values:
        return "-"
    return f"{statistics.median(values):>8.0f}  ({min(values)}..{max(values)})"


def run_case(kdir, work, case, panics):
    """Boots a guest for @case and panics it @panics times; returns the
    per-panic (tier_us, rtt_us or None, record rtt or None)."""
    mbox = os.path.join(work, "mailbox")
    params = "mailbox=0" if case == "v0" else ""
    cmdline = ["pbtest.modparams=" + params] if params else []
    g = Guest(kdir, os.path.join(work, "guest"), mailbox=mbox, cmdline=cmdline)
    os.makedirs(os.path.join(work, "daemon"), exist_ok=True)
    daemon_bin = os.path.abspath(os.environ.get("PB_DAEMON") or os.path.join(BUILD, "panicbrokerd"))
    os.environ["PB_DAEMON"] = daemon_bin
    d = Daemon(os.path.join(work, "daemon"),
               [f"vm1,qmp={g.qmp_path},mailbox={mbox},snapshot=never,final_action=restart"],
               log_level="info")
    out = []
    try:
        d.start()
        g.start()
        start = 0
        for i in range(panics):
            g.wait_ready(180, start=start)
            if case == "nodaemon" and i:
                # A new daemon reformats the mailbox and the guest opens a new
                # session on it (whose HELLO says "crash kernel loaded").
                mark = g.console_offset()
                d.start()
                g.wait_console(ACCEPTED, 30, start=mark)
            elif case != "v0":
                # The session whose HELLO says "crash kernel loaded": opened
                # again once the init's kexec -p has loaded it.
                m = g.wait_console(RELOADED, 30, start=start)
                g.wait_console(ACCEPTED, 30, start=m.end())
            if case == "nodaemon":
                d.kill()
            mark = g.console_offset()
            g.command("panic")
            m = g.wait_console(KDUMP_INIT, 180, start=mark)
            text = g.console_text()[mark:m.end()]
            tier = int(TIER.search(text).group(1))
            acked = ACKED.search(text)
            rtt = int(acked.group(3)) if acked else None
            if case != "v0" and not acked and not NOT_ACKED.search(text):
                raise RuntimeError(f"no broker channel line:\n{text[-2000:]}")
            rec_rtt = None
            if case == "channel":
                session = int(acked.group(1), 16)
                rec = d.wait_record(lambda r: int(r.get("panic", {}).get("session", "0"), 16) == session
                                    and r.get("unload", {}).get("rtt_us") is not None,
                                    60, "the panic's record")
                rec_rtt = rec["unload"]["rtt_us"]
            out.append((tier, rtt, rec_rtt))
            log(f"  {case} panic {i + 1}/{panics}: tier {tier} us, "
                f"UNLOAD rtt {rtt if rtt is not None else '-'} us"
                + (f" (record {rec_rtt} us)" if rec_rtt is not None else ""))
            start = m.end()
    finally:
        g.stop()
        if d.proc:
            d.stop(check=False)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", default="6.1,6.12")
    ap.add_argument("--panics", type=int, default=5)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--keep", help="keep the work files in this directory")
    args = ap.parse_args()
    if args.panics < 1:
        ap.error("--panics must be at least 1")
    cases = args.cases.split(",")
    for c in cases:
        if c not in CASES:
            ap.error(f"unknown case {c!r}: expected {', '.join(CASES)}")
    series = args.series.split(",")
    guests = find_guests(series)
    missing = [s for s in series if s not in guests]
    if missing:
        sys.exit(f"unload-bench: no built guest for {', '.join(missing)}: run make guests")

    work = args.keep or tempfile.mkdtemp(prefix="pbub-")
    os.makedirs(work, exist_ok=True)
    results = {}
    try:
        for s in series:
            for c in cases:
                log(f"{s}: {c}: booting")
                results[(s, c)] = run_case(guests[s], os.path.join(work, f"{s}-{c}"),
                                           c, args.panics)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    accel = os.environ.get("PB_ACCEL", "tcg")
    print()
    print(f"Hypervisor tier and UNLOAD round trip, median (min..max) of {args.panics} "
          f"panics, accel {accel}; UNLOAD bound {100} ms (unload_wait_ms default), "
          f"host poll {10} ms")
    print(f"{'series':<7} {'case':<10} {'tier us':>28} {'UNLOAD rtt us':>28}  recorded = console")
    for (s, c), rows in results.items():
        tiers = [r[0] for r in rows]
        rtts = [r[1] for r in rows if r[1] is not None]
        same = all(r[1] == r[2] for r in rows) if c == "channel" else None
        print(f"{s:<7} {c:<10} {span(tiers):>28} {span(rtts):>28}  "
              f"{'-' if same is None else ('yes' if same else 'NO')}")


if __name__ == "__main__":
    main()
