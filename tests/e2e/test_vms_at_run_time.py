# SPDX-License-Identifier: MIT
"""End to end: VMs that come while the daemon runs catch real panics. One
guest is attached through the local API (pbctl attach), another is added to
the configuration file before a SIGHUP; both are real Debian guests in QEMU
that panic without kdump and are held, recorded and restarted."""

import os
import signal
import subprocess

from tests.lib.daemon import pbctl_binary, record_states
from tests.lib.wait import wait_until

SERIES = "6.1"
BOOTED = r"^PBTEST: booted "


def closed_for(vm):
    return lambda r: r["vm"] == vm and r["state"] == "closed"


def panic_is_caught(g, d, vm):
    mark = g.console_offset()
    g.command("panic")
    rec = d.wait_record(closed_for(vm), 90, f"{vm}'s crash closed")
    assert rec["event"] == "GUEST_PANICKED"
    assert record_states(rec) == ["detected", "held", "closed"]
    assert rec["final_action_result"]["outcome"] == "applied"
    g.wait_console(BOOTED, 120, start=mark)
    return rec


def test_attached_through_the_api_and_added_at_sighup(make_guest, make_daemon, tmp_path,
                                                      short_dir):
    api = os.path.join(short_dir, "api.sock")
    conf = tmp_path / "pb.conf"
    conf.write_text("# no VMs yet\n")
    d = make_daemon([], args=["--config", str(conf), "--api", api])
    wait_until(lambda: os.path.exists(api), "the API socket", 15)

    g1 = make_guest(SERIES, name="vm1", cmdline=["pbtest.kdump=0"])
    g1.wait_ready(90)
    p = subprocess.run([pbctl_binary(), "--api", api, "attach",
                        f"vm1,qmp={g1.qmp_path},snapshot=never"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    d.wait_log(r"VM vm1: attached to QMP", 30)
    panic_is_caught(g1, d, "vm1")

    g2 = make_guest(SERIES, name="vm2", cmdline=["pbtest.kdump=0"])
    g2.wait_ready(90)
    conf.write_text(f"vm vm2,qmp={g2.qmp_path},snapshot=never\n")
    mark = d.log_offset()
    d.proc.send_signal(signal.SIGHUP)
    d.wait_log(r"VM vm2: attached to QMP", 30, start=mark)
    panic_is_caught(g2, d, "vm2")

    # The API's VM stays through the reload; status shows both.
    p = subprocess.run([pbctl_binary(), "--api", api, "status"], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    rows = {ln.split()[0]: ln.split() for ln in p.stdout.splitlines()[1:]}
    assert rows["vm1"][1:3] == ["qmp", "attached"] and rows["vm2"][1:3] == ["qmp", "attached"]
    assert sorted(r["vm"] for r in d.records()) == ["vm1", "vm2"]
