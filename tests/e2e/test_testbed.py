# SPDX-License-Identifier: MIT
"""Sanity test of the guest test bed itself (tests/guest, tests/lib).

No daemon here: only the harness's own QMP socket (qmp-test.sock) is used; the
daemon's socket (qmp.sock) stays unconnected. For each kernel series it checks
the console contract of tests/guest/README.md, the command loop, and the
panic -> GUEST_CRASHLOADED -> kdump kernel -> reboot cycle.

    /usr/bin/python3 -m pytest -v tests/e2e/test_testbed.py
"""

import os
import re
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.lib import Guest, build_guests, find_guests  # noqa: E402

SERIES = ("6.1", "6.12")


@pytest.fixture(params=SERIES)
def kdir(request):
    """The built guest of one series; builds it when missing (fast)."""
    s = request.param
    found = find_guests([s])
    if s not in found:
        try:
            build_guests([s])
        except subprocess.CalledProcessError as e:
            pytest.fail(f"building the {s} guest failed:\n{e.stdout}")
        found = find_guests([s])
    assert s in found, f"no guest for series {s} after build-guests.sh"
    return found[s]


def lines(text, prefix="PBTEST: "):
    return [l for l in text.splitlines() if l.startswith(prefix)]


def test_boot_commands_panic_kdump_reboot(kdir, tmp_path):
    with Guest(kdir, tmp_path, pvpanic="isa") as g:
        t0 = time.monotonic()
        g.start()
        g.wait_ready(90)
        t_ready = time.monotonic() - t0
        boot = g.console_text()
        kver = (kdir / "kver").read_text().strip()
        assert f"PBTEST: booted {kver}" in lines(boot)
        assert "PBTEST: distro module qemu_fw_cfg loaded" in lines(boot)
        assert "PBTEST: distro module pvpanic-mmio loaded" in lines(boot)
        assert "PBTEST: module loaded" in lines(boot), lines(boot)
        assert "PBTEST: kdump loaded" in lines(boot), lines(boot)

        # the command loop: ack, sh with output and rc, unknown command,
        # reload, dmesg framing
        mark = g.console_offset()
        g.command("sh echo answer=$((6 * 7)); exit 3")
        g.wait_console(r"^answer=42\nPBTEST: sh rc=3$", 30, start=mark)
        g.command("frobnicate now")
        g.wait_console(r"^PBTEST: error unknown command frobnicate$", 30, start=mark)
        g.command("reload 2")
        g.wait_console(r"^PBTEST: reload done 2$", 60, start=mark)
        g.command("dmesg")
        g.wait_console(r"^PBTEST: dmesg begin\n(.*\n)*PBTEST: dmesg end$", 30, start=mark)
        assert "frobnicate" not in g.console_text()[mark:].replace(
            "PBTEST: ack frobnicate now", "").replace(
            "PBTEST: error unknown command frobnicate", ""), "input echoed to the console"

        with g.qmp() as q:
            assert q.execute("query-status")["status"] == "running"
            mark = g.console_offset()
            t0 = time.monotonic()
            g.command("panic")
            ev = q.wait_event("GUEST_CRASHLOADED", 60)
            assert ev["data"]["action"] == "run"
            m = g.wait_console(r"^PBTEST: kdump init reached (\S+)$", 120, start=mark)
            t_kdump = time.monotonic() - t0
            assert m[1] == kver
            g.wait_console(r"^PBTEST: vmcore size [1-9]\d*$", 30, start=m.end())
            g.wait_console(r"^PBTEST: kdump rebooting$", 30, start=m.end())
            # the reset brings the normal kernel back, with kdump loaded again
            b = g.wait_console(r"^PBTEST: booted ", 120, start=m.end())
            g.wait_ready(90, start=b.end())
            assert re.search(r"^PBTEST: kdump loaded$", g.console_text()[b.end():], re.M)
            q.drain()
            names = q.event_names()
            assert "GUEST_PANICKED" not in names, names
            assert names.count("GUEST_CRASHLOADED") == 1, names
            assert q.execute("query-status")["status"] == "running"
        print(f"\n{kver}: boot to ready {t_ready:.1f} s, panic to kdump init {t_kdump:.1f} s")


def test_switches_distro_pvpanic_only(kdir, tmp_path):
    """pbtest.module=0 pbtest.kdump=0: the distro pvpanic driver reports the
    panic (GUEST_PANICKED) and QEMU's default panic action ends QEMU."""
    with Guest(kdir, tmp_path, pvpanic="pci", cmdline=["pbtest.module=0", "pbtest.kdump=0"]) as g:
        g.start()
        g.wait_ready(90)
        boot = lines(g.console_text())
        assert "PBTEST: module skipped" in boot
        assert "PBTEST: kdump skipped" in boot
        assert "PBTEST: distro module pvpanic-pci loaded" in boot
        with g.qmp() as q:
            g.command("panic")
            q.wait_event("GUEST_PANICKED", 60)
        g.wait_exit(30)


def test_mailbox_device_and_pbreport(kdir, tmp_path):
    """Guest(mailbox=PATH): the ivshmem-plain device (1af4:1110) is there and
    its BAR 2 is the file, both ways, whether the file existed first (as when
    the daemon made it) or QEMU created it. /bin/pbreport runs in the guest;
    a normal kernel has no /dev/panicbroker. pbtest.module=0: nothing claims
    the device, so busybox devmem may map the BAR."""
    # QEMU creates a missing file, of the given size
    created = tmp_path / "created.mbox"
    with Guest(kdir, tmp_path / "q", mailbox=created, cmdline=["pbtest.module=0"]) as g:
        assert "ivshmem-plain,memdev=pbmb" in g.argv
        g.start()
        with g.qmp() as q:        # QMP answers once the machine is built
            q.execute("query-status")
        assert created.stat().st_size == 1 << 20

    # a file that exists first is mapped as it is, shared
    mbox = tmp_path / "mail,box"      # a comma must reach QEMU doubled
    with open(mbox, "wb") as f:
        f.write((0x5042_4d42).to_bytes(4, "little"))
        f.truncate(1 << 20)
    with Guest(kdir, tmp_path / "g", mailbox=mbox, cmdline=["pbtest.module=0", "pbtest.kdump=0"]) as g:
        g.start()
        g.wait_ready(90)
        mark = g.console_offset()
        g.command("sh d=$(grep -l 0x1110 /sys/bus/pci/devices/*/device) && d=${d%/device} && "
                  "echo pci $(cat $d/vendor):$(cat $d/device) && "
                  "a=$(sed -n 3p $d/resource | cut -d' ' -f1) && "
                  "echo bar2 $(devmem $a 32) && devmem $((a + 8)) 32 0xcafef00d && "
                  "/bin/pbreport --version && /bin/pbreport kdump start; echo pbreport rc=$?")
        m = g.wait_console(r"^PBTEST: sh rc=\d+$", 30, start=mark)
        out = g.console_text()[mark:m.end()]
        assert re.search(r"^pci 0x1af4:0x1110$", out, re.M), out
        assert re.search(r"^bar2 0x50424D42$", out, re.M | re.I), out
        assert re.search(r"^pbreport \S+$", out, re.M), out
        assert re.search(r"^pbreport: no /dev/panicbroker: ", out, re.M), out
        assert re.search(r"^pbreport rc=1$", out, re.M), out
        with open(mbox, "rb") as f:
            f.seek(8)
            assert int.from_bytes(f.read(4), "little") == 0xcafef00d
