# SPDX-License-Identifier: MIT
"""panicbrokerd --libvirt against a real libvirtd (started here as root,
virtlogd -d, libvirtd -d), with the test-bed kernels of both series booted as
TCG domains by direct kernel boot.

One story per test, the domains of a test run side by side (TCG is slow:
each boot is a minute on a busy host):
  - metadata: a domain without it is untouched, malformed metadata is
    logged and the defaults used, undefine drops the VM, pbctl enable
    --dry-run changes nothing, enable supervises at once with its policy (a
    panic without kdump, no snapshot, powered off by libvirt), disable gives
    the XML back;
  - the story: B (6.12, no kdump) enabled, started by libvirt with the
    daemon down (the hook formats its mailbox), panics and sits crashed;
    the daemon started then records it, snapshots it (read back with
    makedumpfile) and restarts it through libvirt; A (6.1, kdump) defined,
    enabled and started after the daemon is supervised without a restart,
    panics into kdump (GUEST_CRASHLOADED with the mailbox's panic record and
    the kdump kernel's reports) and reboots by itself; panicking again, its
    crash completes across a libvirtd killed and started again while it
    sits in kdump; destroy and undefine drop both.
"""
import json
import os
import pwd
import stat
import subprocess
import time

import pytest

from tests.lib.daemon import Daemon, pbctl_binary
from tests.lib.libvirtd import Libvirtd, LibvirtGuest, available, virsh
from tests.lib.wait import wait_until

pytestmark = pytest.mark.skipif(available() is not None, reason=str(available()))

META_NS = "https://panicbroker.org/xmlns/libvirt/1"


@pytest.fixture(scope="module")
def libvirtd():
    with Libvirtd(hook_pbctl=pbctl_binary()) as lv:
        yield lv


@pytest.fixture
def domains(libvirtd):
    made = []

    def make(*a, **kw):
        g = LibvirtGuest(libvirtd, *a, **kw)
        made.append(g)
        return g

    yield make
    for g in made:
        g.remove()


@pytest.fixture
def daemon(tmp_path):
    """The daemon (the sanitized build when there is one: Daemon.stop()
    checks its log), with its API on a socket of its own."""
    made = []

    def make():
        d = Daemon(str(tmp_path), [], args=["--libvirt", "--api", str(tmp_path / "api.sock")])
        made.append(d)
        return d.start()

    yield make
    for d in made:
        if d.proc:
            d.stop()


def pbctl(*args, check=True):
    p = subprocess.run([pbctl_binary(), *args], capture_output=True, text=True, timeout=60)
    if check and p.returncode != 0:
        raise AssertionError(f"pbctl {' '.join(args)} exited {p.returncode}: {p.stderr}")
    return p


def status(tmp_path):
    p = pbctl("--api", str(tmp_path / "api.sock"), "status", "--json")
    return {v["name"]: v for v in json.loads(p.stdout)}


def test_metadata_decides_supervision(libvirtd, domains, daemon, guest_dirs, tmp_path):
    plain = domains("pbt-plain", guest_dirs["6.1"], cmdline=["pbtest.kdump=0"]).define()
    bad = domains("pbt-bad", guest_dirs["6.1"],
                  metadata=f"<pb:panicbroker xmlns:pb='{META_NS}' final_action='bogus'/>")
    d = daemon()
    d.wait_log(r"libvirt qemu:///system: connected")
    bad.define()
    d.wait_log(r"domain pbt-bad: malformed panicbroker metadata: .*final_action.*; "
               r"supervised with the defaults")
    vms = wait_until(lambda: "pbt-bad" in status(tmp_path) and status(tmp_path),
                     "pbt-bad in the daemon's VM list", 30)
    assert vms["pbt-bad"]["backend"] == "libvirt"
    assert vms["pbt-bad"]["attach_state"] == "detached"  # defined, not running
    assert "pbt-plain" not in vms
    assert "pbt-plain" not in d.log_text()

    # --dry-run: the diff, and nothing changed
    before = virsh("dumpxml", "--inactive", "pbt-plain").stdout
    p = pbctl("enable", "--dry-run", "pbt-plain", "final_action=poweroff")
    assert "+  <on_crash>preserve</on_crash>" in p.stdout
    assert "panicbroker-pbt-plain" in p.stdout and "<panic model=\"isa\"/>" in p.stdout
    assert virsh("dumpxml", "--inactive", "pbt-plain").stdout == before
    assert "pbt-plain" not in status(tmp_path)

    # enable: supervised at once (DEFINED event), with its policy; disable: as before
    p = pbctl("enable", "pbt-plain", "final_action=poweroff")
    assert "applies when the domain next starts" in p.stdout
    d.wait_log(r"VM pbt-plain: supervised \(libvirt, mailbox=/dev/shm/panicbroker-pbt-plain\)")

    # its policy holds: a panic without kdump, no snapshot, powered off by libvirt
    pbctl("enable", "pbt-plain", "final_action=poweroff", "snapshot=never")
    plain.start()
    plain.wait_console(r"^PBTEST: ready$", 240)
    plain.send("panic")
    rec = d.wait_record(lambda r: r["vm"] == "pbt-plain" and r["state"] == "closed", 240,
                        "pbt-plain's crash closed")
    assert rec["event"] == "GUEST_PANICKED" and "snapshot" not in rec
    assert rec["final_action_result"]["action"] == "poweroff"
    assert rec["final_action_result"]["outcome"] == "applied", rec["final_action_result"]
    wait_until(lambda: plain.state() == "shut off (destroyed)", "pbt-plain shut off", 60)

    p = pbctl("disable", "pbt-plain")
    assert "removed panicbroker's <metadata>" in p.stdout
    d.wait_log(r"VM pbt-plain: no longer supervised \(its panicbroker metadata was removed\)")
    after = virsh("dumpxml", "--inactive", "pbt-plain").stdout
    for elem in ("<panic", "<shmem", "vmcoreinfo", "preserve", "panicbroker"):
        assert elem not in after, elem

    # libvirt-unmarked observe: every domain, the unmarked with the defaults
    obs = Daemon(str(tmp_path / "observe"), [], args=["--libvirt", "--libvirt-unmarked",
                                                       "observe"])
    os.makedirs(obs.workdir, exist_ok=True)
    obs.start()
    try:
        obs.wait_log(r"VM pbt-plain: supervised \(libvirt\)")
        obs.wait_log(r"VM pbt-bad: supervised \(libvirt\)")
    finally:
        obs.stop()

    virsh("undefine", "pbt-bad")
    d.wait_log(r"VM pbt-bad: no longer supervised \(the domain was undefined\)")
    assert "pbt-bad" not in status(tmp_path)


def _mailbox_ok(path):
    st = os.stat(path)
    assert st.st_size == 1024 * 1024
    assert stat.S_IMODE(st.st_mode) == 0o644, oct(st.st_mode)
    assert pwd.getpwuid(st.st_uid).pw_name == "libvirt-qemu"


def test_crashes_of_libvirt_domains(libvirtd, domains, daemon, guest_dirs, tmp_path):
    # B: 6.12 without kdump, enabled and started while no daemon runs
    b = domains("pbt-b", guest_dirs["6.12"], cmdline=["pbtest.kdump=0"]).define()
    pbctl("enable", "pbt-b", "final_action=restart")
    b_mbox = "/dev/shm/panicbroker-pbt-b"
    if os.path.exists(b_mbox):
        os.unlink(b_mbox)
    b.start()
    # made and formatted by the hook at prepare, before QEMU mapped it (QEMU
    # alone would leave it zeros, and the guest's module would find no mailbox)
    _mailbox_ok(b_mbox)
    with open(b_mbox, "rb") as f:
        assert f.read(4096) != bytes(4096), "the hook did not format the mailbox"
    b.wait_console(r"^PBTEST: ready$", 240)
    assert "PBTEST: module loaded" in b.console_text()
    b.send("panic")
    wait_until(lambda: b.state() == "crashed (panicked)", "pbt-b crashed and held", 120)

    # the daemon, started now, finds B crashed: recorded and handled (the
    # final action: libvirt resets it and it boots again)
    d = daemon()
    rec_b = d.wait_record(lambda r: r["vm"] == "pbt-b" and r["state"] == "closed", 240,
                          "pbt-b's crash closed")
    assert rec_b["backend"] == "libvirt"
    assert rec_b["event"] == "GUEST_PANICKED"
    # the panic record came through the mailbox the hook had formatted
    assert rec_b["panic"]["message"] == "sysrq triggered crash"
    assert rec_b["final_action_result"]["outcome"] == "applied", rec_b["final_action_result"]
    start = b.console_offset()
    b.wait_console(r"^PBTEST: ready$", 240, start=start)

    # a panic while the daemon runs: held, snapshot read back, restarted by libvirt
    b.send("panic")
    rec_b2 = d.wait_record(lambda r: r["vm"] == "pbt-b" and r["id"] != rec_b["id"] and
                           r["state"] == "closed", 240, "pbt-b's second crash closed")
    assert rec_b2["event"] == "GUEST_PANICKED"
    assert rec_b2["panic"]["message"] == "sysrq triggered crash"
    snap = rec_b2["snapshot"]
    assert snap["state"] == "done" and snap["vmcoreinfo"] and snap["phys_base"]["fixed"], snap
    vmcore = os.path.join(d.spool, "crashes", rec_b2["id"], "vmcore")
    assert stat.S_IMODE(os.stat(vmcore).st_mode) == 0o600
    out = subprocess.run(["makedumpfile", "--dump-dmesg", vmcore, str(tmp_path / "dmesg")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr + out.stdout
    assert "Kernel panic - not syncing: sysrq triggered crash" in (tmp_path / "dmesg").read_text()
    assert rec_b2["final_action_result"]["outcome"] == "applied", rec_b2["final_action_result"]
    b.wait_console(r"^PBTEST: booted ", 240, start=b.console_text().rfind("PBTEST: ack panic"))

    # A: 6.1 with kdump, defined, enabled and started after the daemon
    a = domains("pbt-a", guest_dirs["6.1"], cmdline=["pbtest.kdump_module=1"]).define()
    pbctl("enable", "pbt-a")
    d.wait_log(r"VM pbt-a: supervised \(libvirt")
    a.start()
    a.wait_console(r"^PBTEST: kdump loaded$", 240)
    a.wait_console(r"^PBTEST: ready$", 60)
    a.send("panic")
    rec_a = d.wait_record(lambda r: r["vm"] == "pbt-a" and r["state"] == "closed", 240,
                          "pbt-a's first crash closed")
    assert rec_a["event"] == "GUEST_CRASHLOADED" and rec_a["backend"] == "libvirt"
    assert rec_a["panic"]["message"] == "sysrq triggered crash"
    assert "Command line: console=ttyS0" in rec_a["panic"]["log_tail"]
    assert rec_a["kdump"]["state"] == "done", rec_a["kdump"]
    assert rec_a["final_action_result"]["outcome"] == "not-needed"
    first = rec_a["id"]

    # again, and libvirtd dies and comes back while the crash sits in kdump
    a.wait_console(r"^PBTEST: ready$", 240, start=a.console_text().rfind("PBTEST: kdump rebooting"))
    off = d.log_offset()
    a.send("panic")
    rec = d.wait_record(lambda r: r["vm"] == "pbt-a" and r["id"] != first, 120,
                        "pbt-a's second crash")
    assert rec["state"] == "kdump_running", rec["state"]
    libvirtd.kill_libvirtd()
    d.wait_log(r"libvirt qemu:///system: connection lost; reconnecting", 60, off)
    time.sleep(2)
    libvirtd.start_libvirtd()
    d.wait_log(r"libvirt qemu:///system: connected", 60, off)
    rec = d.wait_record(lambda r: r["id"] == rec["id"] and r["state"] == "closed", 240,
                        "pbt-a's second crash closed after libvirtd came back")
    assert rec["kdump"]["state"] == "done", rec["kdump"]

    # destroy and undefine drop both cleanly; the release hook removes the files
    for g in (a, b):
        virsh("destroy", g.name)
        virsh("undefine", g.name)
        d.wait_log(rf"VM {g.name}: no longer supervised \(the domain was undefined\)")
    assert not os.path.exists(b_mbox)
    assert not os.path.exists("/dev/shm/panicbroker-pbt-a")
    vms = status(tmp_path)
    assert "pbt-a" not in vms and "pbt-b" not in vms
