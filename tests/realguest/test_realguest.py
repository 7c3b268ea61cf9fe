# SPDX-License-Identifier: MIT
"""panicbroker in a real Debian 12 guest, set up the way its admin would:
systemd, Debian's kdump-tools, the module built by DKMS from panicbroker-dkms,
panicbroker-guest's kdump-tools integration, all installed with apt
(tests/realguest/image.sh). The host side is this build's daemon.

One guest disk goes through the whole story, in this order:

1. 6.1 (linux-image-amd64) boots to multi-user.target; kdump-config says
   ready; systemd loaded panicbroker.ko (modules-load.d) and its broker
   session is open; the kdump initramfs holds the module and pbreport.
2. sysrq panic: the daemon records GUEST_CRASHLOADED with the panic record;
   the crash kernel boots into kdump-tools-dump.service; pbreport reports
   start, progress (makedumpfile's), done with the size of the dump file;
   the guest reboots by itself.
3. kdump target too small (KDUMP_COREDIR on a 16 MiB tmpfs): failed with
   kdump-tools' reason in the record; the host's final action follows.
4. apt installs the 6.12 kernel and headers in the guest (file: repository
   in the image, no network): DKMS builds the module for it, kdump-tools'
   initramfs of 6.12 holds it.
5. 6.12 boots (from the upgraded disk) and a panic is caught and dumped the
   same way.
After the runs the dumps are read from the guest's disk with
makedumpfile --dump-dmesg and must hold the panic line.

    make realguest          (or: /usr/bin/python3 -m pytest -v tests/realguest)
"""

import re
import subprocess
import time

import pytest

from tests.lib.daemon import record_states
from tests.realguest.conftest import WORK, RealGuest, copy_out, debugfs
from tests.realguest.qga import SCALE, AgentError

PANIC_LINE = "Kernel panic - not syncing: sysrq triggered crash"
ACCEPTED = r"VM pbguest: mailbox: guest session [0-9a-f]+ accepted"


class Story:
    """What the ordered tests hand on to each other."""
    guest = None
    daemon = None
    dumps = {}          # kver -> [(dump path in the guest, size)]
    kver_new = None


story = Story()


def boot(image, daemon_for, kver, name):
    mbox = WORK / f"{name}.mbox"
    if mbox.exists():
        mbox.unlink()     # an earlier run's panic record would be salvaged
    d = daemon_for(name, mbox, ",snapshot=never,kdump_session_timeout=300")
    rg = RealGuest(image, kver, name, mbox).start()
    story.guest, story.daemon = rg, d
    d.wait_log(r"VM pbguest: attached to QMP", 30)
    rg.agent.wait(300)
    return rg, d


def check_ready(rg, d, kver):
    a = rg.agent
    assert a.out("uname -r").strip() == kver
    # multi-user.target, as systemd sees it once the boot is over
    a.run("systemctl is-system-running --wait", timeout=300)
    assert a.out("systemctl is-active multi-user.target").strip() == "active"
    failed = a.out("systemctl --failed --no-legend --plain")
    assert failed.strip() == "", f"failed units:\n{failed}"
    st = a.out("kdump-config status")
    assert "ready to kdump" in st, st
    # loaded by systemd-modules-load from panicbroker-guest's modules-load.d
    assert a.run("test -d /sys/module/panicbroker")[0] == 0, "panicbroker.ko not loaded"
    j = a.out("journalctl -b -o short | grep -F 'panicbroker' || true")
    assert re.search(r"systemd-modules-load\[\d+\]: Inserted module 'panicbroker'", j), j
    dm = a.out("dmesg")
    assert re.search(r"panicbroker: armed: kprobe __crash_kexec", dm), dm[-3000:]
    assert re.search(r"panicbroker: mailbox: session [0-9a-f.]+ accepted", dm), dm[-3000:]
    d.wait_log(ACCEPTED, 60)
    # the module came from DKMS, for this kernel
    modpath = a.out("modinfo -n panicbroker").strip()
    assert modpath.startswith(f"/lib/modules/{kver}/updates/dkms/panicbroker.ko"), modpath
    # kdump-tools' initramfs of this kernel holds the module and pbreport
    files = a.out(f"lsinitramfs /var/lib/kdump/initrd.img-{kver}", timeout=120)
    assert re.search(r"/updates/dkms/panicbroker\.ko", files), "module not in kdump initramfs"
    assert re.search(r"^usr/sbin/pbreport$", files, re.M), "pbreport not in kdump initramfs"
    # ... and loads the module early (the hook's force_load: conf/modules)
    mods = a.out(f"rm -rf /tmp/kd && unmkinitramfs /var/lib/kdump/initrd.img-{kver} /tmp/kd"
                 " && cat $(find /tmp/kd -path '*/conf/modules'); rm -rf /tmp/kd", timeout=120)
    assert re.search(r"^panicbroker$", mods, re.M), mods


def wait_normal_boot(a, old_boot_id, timeout=600):
    """Waits for the agent of a boot other than OLD_BOOT_ID that is not a
    kdump kernel (qemu-guest-agent starts in the crash kernel's boot too)."""
    deadline = time.monotonic() + timeout * SCALE
    while True:
        a.close()
        a.wait(max(1, (deadline - time.monotonic()) / SCALE))
        try:
            out = a.out("cat /proc/sys/kernel/random/boot_id; test -e /proc/vmcore && echo kdump;"
                        " true", timeout=30)
            lines = out.split()
            if lines and lines[0] != old_boot_id and "kdump" not in lines:
                return
        except (AgentError, AssertionError, OSError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError("the guest did not come back to a normal boot")
        time.sleep(5)


def panic_and_dump(rg, d, kver):
    """sysrq panic; kdump-tools dumps; the guest reboots; returns the record."""
    a = rg.agent
    boot_id = a.out("cat /proc/sys/kernel/random/boot_id").strip()
    mark = rg.g.console_offset()
    old = {r["id"] for r in d.records()}
    a.spawn("sleep 1; echo c > /proc/sysrq-trigger")
    rec = d.wait_record(lambda r: r["id"] not in old and r["event"] == "GUEST_CRASHLOADED",
                        60, "a GUEST_CRASHLOADED record")
    assert PANIC_LINE.split(": ", 1)[1] in rec["panic"]["message"], rec["panic"]
    assert rec["kdump_loaded"] is True
    assert rec["guest"]["kernel_release"] == kver

    # the crash kernel boots the root file system into kdump-tools' dump unit
    g = rg.g
    g.wait_console(r"Command line: .*systemd\.unit=kdump-tools-dump\.service", 120, start=mark)
    # systemd starts kdump-tools' dump unit ("Starting kdump-tools-dump.service -
    # Kernel crash dump capture service...", cut to the console's width), whose
    # ExecStart is panicbroker's wrapper, which runs kdump-config savecore
    g.wait_console(r"Starting .*kdump-tools-dump\..*crash dump capture service", 300, start=mark)
    g.wait_console(r"kdump-tools-dump\[\d+\]: Starting kdump-tools:", 120, start=mark)
    g.wait_console(r"kdump-tools-dump\[\d+\]: running makedumpfile -F", 120, start=mark)

    rec = d.wait_record(lambda r: r["id"] == rec["id"] and
                        (r.get("kdump") or {}).get("state") in ("done", "failed", "hung"),
                        600, "kdump done")
    k = rec["kdump"]
    states = [r["state"] for r in k["reports"]]
    assert k["state"] == "done", k
    assert states[0] == "start" and states[-1] == "done", states
    assert "progress" in states, f"no progress report: {states}"
    pcts = [r["percent"] for r in k["reports"] if r["state"] == "progress"]
    assert pcts == sorted(pcts) and all(0 <= p < 100 for p in pcts), pcts
    assert k["bytes"] > 0 and k["linked"] is True, k

    # the guest reboots by itself (the crash closes on that reset), into the
    # same kernel
    rec = d.wait_record(lambda r: r["id"] == rec["id"] and r["state"] == "closed", 300,
                        "the crash closed")
    wait_normal_boot(a, boot_id)
    assert a.out("uname -r").strip() == kver

    # the dump kdump-tools wrote, of the size reported
    out = a.out("ls -1t /var/crash/*/dump.* | head -n 1")
    path = out.strip()
    size = int(a.out(f"stat -c %s {path}").strip())
    assert size == k["bytes"], (path, size, k["bytes"])
    story.dumps.setdefault(kver, []).append((path, size))
    return rec


def read_dumps(image, kver):
    """Reads this kernel's dumps out of the stopped guest's disk."""
    for path, size in story.dumps.get(kver, []):
        local = WORK / (kver + "-" + path.replace("/", "_"))
        copy_out(image.disk, path, local)
        assert local.stat().st_size == size
        # kdump-tools writes makedumpfile's flattened format: rearrange, then read
        plain = local.with_suffix(".vmcore")
        with open(local, "rb") as f:
            p = subprocess.run(["makedumpfile", "-R", str(plain)], stdin=f,
                               capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stdout + p.stderr
        dmesg = local.with_suffix(".dmesg")
        p = subprocess.run(["makedumpfile", "--dump-dmesg", str(plain), str(dmesg)],
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stdout + p.stderr
        text = dmesg.read_text(errors="replace")
        assert PANIC_LINE in text, text[-2000:]
        assert f"{kver}" in text
        local.unlink()
        plain.unlink()


def poweroff(rg):
    rg.agent.spawn("sleep 1; systemctl poweroff")
    rg.g.wait_exit(180)
    rg.stop()


def guest_61(image, daemon_for):
    """The 6.1 guest of the story; booted here when an earlier step was not
    selected (pytest -k)."""
    if story.guest is None:
        kver = next(k for k in image.kvers() if k.startswith("6.1."))
        boot(image, daemon_for, kver, "vm61")
    return story.guest, story.daemon


def test_61_boots_ready(image, daemon_for):
    rg, d = guest_61(image, daemon_for)
    check_ready(rg, d, rg.kver)


def test_61_panic_is_caught_and_dumped_by_kdump_tools(image, daemon_for):
    rg, d = guest_61(image, daemon_for)
    panic_and_dump(rg, d, rg.kver)


def test_61_kdump_target_too_small_fails_with_the_reason(image, daemon_for):
    rg, d = guest_61(image, daemon_for)
    a = rg.agent
    a.out("cp /etc/default/kdump-tools /root/kdump-tools.saved && "
          "sed -i 's|^KDUMP_COREDIR=.*|KDUMP_COREDIR=\"/var/crash-small\"|' "
          "/etc/default/kdump-tools && grep -q crash-small /etc/default/kdump-tools && sync")
    old = {r["id"] for r in d.records()}
    boot_id = a.out("cat /proc/sys/kernel/random/boot_id").strip()
    a.spawn("sleep 1; echo c > /proc/sysrq-trigger")
    rec = d.wait_record(lambda r: r["id"] not in old and r["event"] == "GUEST_CRASHLOADED"
                        and (r.get("kdump") or {}).get("state") in ("done", "failed", "hung"),
                        600, "kdump failed")
    k = rec["kdump"]
    assert k["state"] == "failed", k
    assert "failed to save vmcore in /var/crash-small/" in k["reason"], k
    assert "No space left on device" in k["reason"], k
    assert [r["state"] for r in k["reports"]][0] == "start"
    # the host's final action (restart) follows the failure
    rec = d.wait_record(lambda r: r["id"] == rec["id"] and r.get("final_action_result"),
                        120, "the final action")
    assert rec["final_action_result"]["action"] == "restart", rec
    assert rec["final_action_result"]["outcome"] == "applied", rec
    assert "kdump_failed" in record_states(rec), record_states(rec)
    wait_normal_boot(a, boot_id)
    a.out("mv /root/kdump-tools.saved /etc/default/kdump-tools && sync")
    a.run("systemctl is-system-running --wait", timeout=300)
    assert "ready to kdump" in a.out("kdump-config status")


def test_kernel_upgrade_with_apt_builds_the_module(image, daemon_for):
    rg, _ = guest_61(image, daemon_for)
    a = rg.agent
    t0 = time.monotonic()
    # --force-unsafe-io: dpkg skips its fsync per file (some 20000 files here),
    # which under TCG is most of the unpacking; the disk is a throwaway image
    rc, out, err = a.run("DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
                         "-o Dpkg::Options::=--force-unsafe-io "
                         "linux-image-6.12-amd64 linux-headers-6.12-amd64 2>&1", timeout=1500)
    log = WORK / "apt-upgrade.log"
    log.write_text(out + err)
    assert rc == 0, (out + err)[-4000:]
    print(f"apt-get install of the 6.12 kernel in the guest: {time.monotonic() - t0:.0f} s")
    kver = next(k for k in a.out("linux-version list").split() if k.startswith("6.12."))
    story.kver_new = kver
    st = a.out("dkms status panicbroker")
    assert re.search(rf"panicbroker/[^,]+, {re.escape(kver)}, x86_64: installed", st), st
    files = a.out(f"lsinitramfs /var/lib/kdump/initrd.img-{kver}", timeout=120)
    assert f"lib/modules/{kver}/updates/dkms/panicbroker.ko" in files
    poweroff(rg)
    image.add_kernel(kver)
    read_dumps(image, rg.kver)


def test_612_boots_ready_and_panic_is_caught(image, daemon_for):
    kver = story.kver_new
    if not kver:
        pytest.skip("the kernel upgrade did not happen")
    rg, d = boot(image, daemon_for, kver, "vm612")
    check_ready(rg, d, kver)
    panic_and_dump(rg, d, kver)
    poweroff(rg)
    read_dumps(image, kver)


def test_dump_dirs_left_on_disk(image):
    # what kdump-tools left in /var/crash: one directory per dump, dmesg + dump
    listing = debugfs(image.disk, "ls -l /var/crash")
    stamps = re.findall(r"\s(\d{12})\s*$", listing, re.M)
    assert len(stamps) >= len([p for ps in story.dumps.values() for p in ps]), listing
    for stamp in stamps:
        names = debugfs(image.disk, f"ls /var/crash/{stamp}")
        assert f"dmesg.{stamp}" in names and f"dump.{stamp}" in names, names
