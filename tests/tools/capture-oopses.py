#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Capture the crash-signature corpus (tests/golden/oops/) from live guests.

For every kernel series and every kind of crash, boots a test-bed guest with
a broker-channel mailbox, starts the real panicbrokerd on it, crashes the
guest (tests/guest/init "oops KIND", "panic" for sysrq, QMP inject-nmi for
NMI) and writes what the daemon recorded, panic.message and panic.log_tail,
to <out>/<series>/<kind>.txt. When no panic record comes (the kind never
reaches the module's panic step), the guest's console from the crash on is
kept instead, and the file says so. With pbsig built, <kind>.json next to it
is the signature computed from the file (review it: the golden tests compare
against it).

    tests/tools/capture-oopses.py [--out DIR] [--series 6.1 6.12] [--kinds null bug ...]

`make capture-oopses` runs it (about 20 guest boots; minutes under TCG).
Environment: PB_BUILD (pbctl, pbsig), PB_DAEMON, PB_GUEST_DIR, PB_TIMEOUT_SCALE.
"""

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, TOP)

from tests.lib import Guest, find_guests  # noqa: E402
from tests.lib.daemon import BUILD, Daemon  # noqa: E402

SERIES = ("6.1", "6.12")
# kind -> how it is caused (see tests/guest/init, tests/guest/pbtest-oops)
KINDS = {
    "null": "oops null",
    "bug": "oops bug",
    "warn": "oops warn",
    "divide": "oops divide",
    "stack": "oops stack",
    "softlockup": "oops softlockup",
    "hung": "oops hung",
    "oom": "oops oom",
    "sysrq": "panic",
    "nmi": None,            # QMP inject-nmi with kernel.unknown_nmi_panic=1
}
RELOADED = r"panicbroker: mailbox: crash kernel loaded; opening a new session"
ACCEPTED = r"panicbroker: mailbox: session ([0-9a-f]{16}) accepted by "
KDUMP_INIT = r"^PBTEST: kdump init reached"


def crash(g, kind):
    """Causes the crash; returns the console offset it started at."""
    if KINDS[kind]:
        mark = g.console_offset()
        g.command(KINDS[kind])
        return mark
    m = g.command("sh sysctl -w kernel.unknown_nmi_panic=1")
    g.wait_console(r"^PBTEST: sh rc=0$", 30, start=m.end())
    mark = g.console_offset()
    with g.qmp() as q:
        q.execute("inject-nmi")
    return mark


def capture_one(kdir, series, kind, timeout):
    """Returns (source, message, text, kver)."""
    work = tempfile.mkdtemp(prefix="pbcap-")   # short: unix socket paths
    g = d = None
    try:
        mbox = os.path.join(work, "mailbox")
        g = Guest(kdir, os.path.join(work, "g"), mailbox=mbox)
        g.start()
        d = Daemon(work, [f"vm1,qmp={g.qmp_path},mailbox={mbox},snapshot=never"])
        d.start()
        d.wait_log(r"VM vm1: attached to QMP", 30)
        g.wait_ready(120)
        m = g.wait_console(RELOADED, 60)
        g.wait_console(ACCEPTED, 60, start=m.end())
        mark = crash(g, kind)
        try:
            # the message may be empty: the module finds no oops line it knows
            rec = d.wait_record(lambda r: "log_tail" in r.get("panic", {}),
                                timeout, f"a panic record ({series} {kind})")
            p = rec["panic"]
            return "panic record", p["message"], p["log_tail"], g.kver
        except AssertionError as e:
            print(f"capture-oopses: {series} {kind}: no panic record, keeping the "
                  f"console: {str(e).splitlines()[0]}", file=sys.stderr)
        end = re.search(KDUMP_INIT, g.console_text()[mark:], re.M)
        text = g.console_text()[mark:mark + end.start()] if end else g.console_text()[mark:]
        msg = re.findall(r"Kernel panic - not syncing: (.*)", text)
        return "guest console", msg[-1] if msg else "", text, g.kver
    finally:
        if d:
            d.stop(check=False)
        if g:
            g.stop()
        shutil.rmtree(work, ignore_errors=True)


def write_golden(path, series, kind, kver, source, message, text):
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    what = ("panic.message and panic.log_tail of the crash record" if source == "panic record"
            else "the guest console from the crash on (no panic record came)")
    with open(path, "w", encoding="latin-1", newline="\n") as f:
        f.write(f"# panicbroker crash-signature corpus: {kind} on {kver} (series {series})\n")
        f.write(f"# source: {what}\n")
        f.write(f"# captured {now} by tests/tools/capture-oopses.py\n")
        f.write(f"message: {message}\n")
        f.write("log_tail:\n")
        f.write(text if text.endswith("\n") or not text else text + "\n")


def write_signature(pbsig, txt, out):
    p = subprocess.run([pbsig, "--golden", txt], capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        raise SystemExit(f"capture-oopses: pbsig {txt} failed: {p.stderr.strip()}")
    with open(out, "w") as f:
        f.write(p.stdout)
    return p.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(TOP, "tests", "golden", "oops"))
    ap.add_argument("--series", nargs="+", default=list(SERIES))
    ap.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    ap.add_argument("--timeout", type=float, default=240, help="seconds for a panic record")
    ap.add_argument("--pbsig", default=os.path.join(BUILD, "pbsig"))
    args = ap.parse_args()

    guests = find_guests(args.series)
    missing = [s for s in args.series if s not in guests]
    if missing:
        raise SystemExit(f"capture-oopses: no built guest for {', '.join(missing)}: make guests")
    failed = []
    for series in args.series:
        os.makedirs(os.path.join(args.out, series), exist_ok=True)
        for kind in args.kinds:
            t0 = time.monotonic()
            try:
                source, msg, text, kver = capture_one(guests[series], series, kind, args.timeout)
            except AssertionError as e:
                print(f"capture-oopses: {series} {kind}: FAILED: {e}", file=sys.stderr)
                failed.append(f"{series}/{kind}")
                continue
            txt = os.path.join(args.out, series, f"{kind}.txt")
            write_golden(txt, series, kind, kver, source, msg, text)
            sig = ""
            if os.access(args.pbsig, os.X_OK):
                s = json.loads(write_signature(args.pbsig, txt, txt[:-4] + ".json"))
                sig = f"{s['bucket']} {s['title']}"
            print(f"{series:5} {kind:11} {source:13} {time.monotonic() - t0:5.0f} s  "
                  f"{msg[:50]!r}  {sig}", flush=True)
    if failed:
        raise SystemExit(f"capture-oopses: not captured: {' '.join(failed)}")


if __name__ == "__main__":
    main()
