#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The demo (`make demo`): a stock Debian guest with kdump loaded panics, and
panicbrokerd hears it before kdump runs, records it, snapshots its memory
(snapshot=always), and lets kdump finish.

Environment: PB_DEMO_SERIES (default 6.1), PB_ACCEL (tcg or kvm),
PB_DEMO_DIR (default build/demo; the spool stays there for pbctl).
"""

import os
import re
import shutil
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TOP)

from tests.lib import Guest, find_guests  # noqa: E402
from tests.lib.daemon import BUILD, Daemon  # noqa: E402


def say(msg):
    print(f"\n== {msg}", flush=True)


def show(text, prefix="   | "):
    for line in text.rstrip("\n").splitlines():
        print(prefix + line)


def main():
    series = os.environ.get("PB_DEMO_SERIES", "6.1")
    workdir = os.environ.get("PB_DEMO_DIR", os.path.join(BUILD, "demo"))
    guests = find_guests([series])
    if series not in guests:
        sys.exit(f"demo: no guest for kernel series {series}: run make guests")
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    os.environ.setdefault("PB_DAEMON", os.path.join(BUILD, "panicbrokerd"))

    say(f"booting a Debian {series} guest (kdump loaded, panicbroker.ko loaded, "
        "a broker-channel mailbox) in QEMU")
    mbox = os.path.join(workdir, "mailbox")
    g = Guest(guests[series], workdir, mailbox=mbox, cmdline=["pbtest.kdump_module=1"])
    g.start()
    d = Daemon(workdir, [f"demo,qmp={g.qmp_path},mailbox={mbox},snapshot=always"],
               log_level="info")
    d.start()
    try:
        d.wait_log(r"VM demo: attached to QMP", 30)
        g.wait_ready(120)
        # the session reopened once kexec -p loaded the crash kernel
        m = g.wait_console(r"panicbroker: mailbox: crash kernel loaded", 30)
        g.wait_console(r"panicbroker: mailbox: session \w+ accepted", 30, start=m.end())
        show("\n".join(l for l in g.console_text().splitlines()
                       if l.startswith("PBTEST:") or "panicbroker:" in l))

        say("panicking the guest: echo c > /proc/sysrq-trigger")
        mark = g.console_offset()
        t0 = time.monotonic()
        g.command("panic")
        rec = d.wait_record(lambda r: True, 60)
        print(f"   panicbrokerd recorded crash {rec['id']} ({rec['event']}) "
              f"{time.monotonic() - t0:.1f} s after the command")
        m = g.wait_console(r"^PBTEST: kdump init reached.*$", 120, start=mark)
        say("the guest's console: the hypervisor tier ran, then kdump took over")
        show("\n".join(l for l in g.console_text()[mark:m.end()].splitlines()
                       if re.search(r"Kernel panic|panicbroker:|PBTEST:|sysrq", l)))

        rec = d.wait_record(lambda r: r.get("snapshot", {}).get("state") in
                            ("done", "failed", "refused"), 120)
        snap = rec["snapshot"]
        say("panicbrokerd paused the guest and took a memory snapshot before kdump went on")
        print(f"   {snap['state']}: {snap['reason']}")
        if snap["state"] == "done":
            vmcore = os.path.join(d.spool, "crashes", rec["id"], snap["path"])
            print(f"   {vmcore}: {snap['bytes']} bytes in {snap['seconds']:.1f} s, "
                  f"phys_base fixed: {snap['phys_base']['fixed']}")
            print(f"   makedumpfile --dump-dmesg reads it: {snap['verify']['panic_line']}")

        say("the kdump kernel reports over the broker channel, reboots the guest; the crash closes")
        g.wait_console(r"^PBTEST: booted", 120, start=m.end())
        rec = d.wait_record(lambda r: r["state"] == "closed", 60)

        say("what the guest told the host over the broker channel")
        p, k, u = rec.get("panic", {}), rec.get("kdump", {}), rec.get("unload", {})
        print(f"   panic.message: {p.get('message')!r}")
        print(f"   guest.kernel_release: {rec.get('guest', {}).get('kernel_release')}")
        print(f"   unload: acked {u.get('acked')}, round trip {u.get('rtt_us')} us; "
              f"tier {p.get('tier_us')} us before pvpanic")
        print(f"   kdump.state: {k.get('state')}, reports "
              f"{[r['state'] for r in k.get('reports', [])]}, bytes {k.get('bytes')}")
        print("   panic.log_tail (last lines):")
        show("\n".join((p.get("log_tail") or "").splitlines()[-12:]), prefix="   | ")

        say(f"pbctl --spool {d.spool} list")
        show(subprocess.run([os.path.join(BUILD, "pbctl"), "--spool", d.spool, "list"],
                            capture_output=True, text=True, check=True).stdout)
        say(f"pbctl --spool {d.spool} show {rec['id']}")
        show(subprocess.run([os.path.join(BUILD, "pbctl"), "--spool", d.spool, "show",
                             rec["id"]], capture_output=True, text=True, check=True).stdout)
        say("panicbrokerd's log")
        show(d.log_text())
    finally:
        d.stop(check=False)
        g.stop()
    print(f"\ndemo: done; the spool is kept in {d.spool}")


if __name__ == "__main__":
    main()
