# SPDX-License-Identifier: MIT
"""A real libvirtd for the tests, started by hand (no systemd here), and
test-bed guests run by it as TCG domains with direct kernel boot.

    with Libvirtd(hook_pbctl="build/pbctl") as lv:     # virtlogd -d, libvirtd -d
        d = LibvirtGuest(lv, "pbt-a", guest_dirs["6.1"], cmdline=[...])
        d.define(); d.start(); d.wait_console(r"PBTEST: ready", 120)
        d.send("panic")

libvirtd runs privileged, so its paths are the system's (/run/libvirt,
/etc/libvirt, /var/lib/libvirt); a libvirtd already running is used as it is
(and never killed: `owned` says whether the tests started it). Debian's
libvirt-daemon without libvirt-daemon-system has no libvirt-qemu user and no
log directories: they are made here, as that package would.

The hook: systemd/libvirt-hook, with pbctl's path set to the build's, goes to
/etc/libvirt/hooks/qemu.d/panicbroker before libvirtd starts (libvirtd reads
its hooks at start) and is removed at the end.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.lib.guest import timeout_scale

URI = "qemu:///system"
SOCK = Path("/run/libvirt/libvirt-sock")
PIDFILE = Path("/run/libvirtd.pid")
HOOK = Path("/etc/libvirt/hooks/qemu.d/panicbroker")
IMAGES = Path("/var/lib/libvirt/pbtest")
REPO_TOP = Path(__file__).resolve().parents[2]


def virsh(*args, check=True, timeout=120):
    p = subprocess.run(["virsh", "-q", "-c", URI, *args], capture_output=True, text=True,
                       timeout=timeout * timeout_scale())
    if check and p.returncode != 0:
        raise AssertionError(f"virsh {' '.join(args)}: {p.stderr.strip()}")
    return p


def available() -> str | None:
    """None when libvirtd can run here, else why not."""
    for tool in ("libvirtd", "virtlogd", "virsh"):
        if not shutil.which(tool):
            return f"{tool} is not installed (scripts/install-deps.sh)"
    if os.geteuid() != 0:
        return "libvirtd is started as root"
    return None


def _pid() -> int | None:
    try:
        pid = int(PIDFILE.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def _answers() -> bool:
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(str(SOCK))
        return True
    except OSError:
        return False
    finally:
        s.close()


class Libvirtd:
    def __init__(self, hook_pbctl: str | os.PathLike | None = None):
        self.hook_pbctl = hook_pbctl
        self.owned = False
        self.hook_installed = False

    @staticmethod
    def _prepare_host():
        for d in ("/var/log/libvirt/qemu", "/var/lib/libvirt/qemu", "/var/cache/libvirt",
                  "/run/libvirt"):
            os.makedirs(d, exist_ok=True)
        if subprocess.run(["getent", "passwd", "libvirt-qemu"],
                          capture_output=True).returncode != 0:
            subprocess.run(["addgroup", "--system", "libvirt-qemu"], capture_output=True)
            subprocess.run(["adduser", "--system", "--ingroup", "libvirt-qemu",
                            "--no-create-home", "--home", "/var/lib/libvirt",
                            "--shell", "/usr/sbin/nologin", "libvirt-qemu"],
                           check=True, capture_output=True)
        # As libvirt-daemon-system's postinst does. Without it libvirtd finds
        # its cached QEMU capabilities (probed as root, with KVM) outdated at
        # every lookup and probes QEMU again: 40 s per virsh define here.
        groups = subprocess.run(["id", "-nG", "libvirt-qemu"], capture_output=True,
                                text=True).stdout.split()
        if "kvm" not in groups and subprocess.run(["getent", "group", "kvm"],
                                                  capture_output=True).returncode == 0:
            subprocess.run(["adduser", "libvirt-qemu", "kvm"], check=True, capture_output=True)
        IMAGES.mkdir(parents=True, exist_ok=True)
        IMAGES.chmod(0o755)

    def _install_hook(self):
        text = (REPO_TOP / "systemd" / "libvirt-hook").read_text()
        text = text.replace("/usr/bin/pbctl", str(Path(self.hook_pbctl).resolve()))
        HOOK.parent.mkdir(parents=True, exist_ok=True)
        HOOK.write_text(text)
        HOOK.chmod(0o755)
        self.hook_installed = True

    def start(self) -> "Libvirtd":
        self._prepare_host()
        if _answers():
            return self
        if self.hook_pbctl:
            self._install_hook()
        subprocess.run(["virtlogd", "-d"], check=True)
        self.start_libvirtd()
        self.owned = True
        return self

    def start_libvirtd(self):
        subprocess.run(["libvirtd", "-d"], check=True)
        deadline = time.monotonic() + 30 * timeout_scale()
        while not _answers():
            if time.monotonic() > deadline:
                raise RuntimeError("libvirtd did not open its socket in 30 s: "
                                   "see /var/log/libvirt/libvirtd.log")
            time.sleep(0.1)
        virsh("version")

    def kill_libvirtd(self):
        """SIGKILL to the libvirtd these tests started (its domains run on)."""
        assert self.owned, "not our libvirtd"
        pid = _pid()
        assert pid, "libvirtd is not running"
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        PIDFILE.unlink(missing_ok=True)
        SOCK.unlink(missing_ok=True)

    def stop(self):
        if self.hook_installed:
            HOOK.unlink(missing_ok=True)
            self.hook_installed = False
        if not self.owned:
            return
        pid = _pid()
        if pid:
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
        p = subprocess.run(["pidof", "virtlogd"], capture_output=True, text=True)
        for pid in p.stdout.split():
            os.kill(int(pid), signal.SIGTERM)
        self.owned = False

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class LibvirtGuest:
    """A test-bed guest as a libvirt domain (TCG, direct kernel boot, one vCPU:
    multi-threaded TCG breaks Linux's text patching on QEMU 7.2, see guest.py)."""

    def __init__(self, lv: Libvirtd, name: str, kdir: str | os.PathLike, *,
                 cmdline=(), memory_mib=1024, metadata: str | None = None):
        self.lv = lv
        self.name = name
        self.dir = IMAGES / name
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True)
        self.dir.chmod(0o755)
        for f in ("vmlinuz", "initrd.img"):
            # libvirt gives kernel and initrd to its QEMU user: copies, not the build's
            shutil.copy(Path(kdir) / f, self.dir / f)
        self.cmdline = " ".join(["console=ttyS0 crashkernel=192M", *cmdline])
        self.memory_mib = memory_mib
        self.metadata = metadata
        self.console_log = self.dir / "console.log"
        self.serial = self.dir / "serial.sock"

    def xml(self) -> str:
        md = f"<metadata>{self.metadata}</metadata>" if self.metadata else ""
        return f"""<domain type='qemu'>
  <name>{self.name}</name>
  {md}
  <memory unit='MiB'>{self.memory_mib}</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{self.dir}/vmlinuz</kernel>
    <initrd>{self.dir}/initrd.img</initrd>
    <cmdline>{self.cmdline}</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    <serial type='unix'>
      <source mode='bind' path='{self.serial}'/>
      <log file='{self.console_log}' append='on'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
</domain>
"""

    def define(self):
        path = self.dir / "domain.xml"
        path.write_text(self.xml())
        virsh("define", str(path))
        return self

    def start(self):
        virsh("start", self.name)
        return self

    def state(self) -> str:
        return virsh("domstate", "--reason", self.name).stdout.strip()

    def console_text(self) -> str:
        try:
            return self.console_log.read_bytes().decode("latin-1").replace("\r", "")
        except FileNotFoundError:
            return ""

    def console_offset(self) -> int:
        return len(self.console_text())

    def wait_console(self, pattern, timeout=60.0, start=0):
        rx = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout * timeout_scale()
        while True:
            m = rx.search(self.console_text(), start)
            if m:
                return m
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: no {pattern!r} on the console in "
                                     f"{timeout * timeout_scale():.0f} s; tail:\n"
                                     f"{self.console_text()[-3000:]}")
            time.sleep(0.2)

    def send(self, cmd: str):
        """One command line to the guest's init (after PBTEST: ready)."""
        s = socket.socket(socket.AF_UNIX)
        s.connect(str(self.serial))
        try:
            s.sendall((cmd + "\n").encode())
            time.sleep(0.5)
        finally:
            s.close()

    def command(self, cmd: str, timeout=60.0):
        start = self.console_offset()
        self.send(cmd)
        return self.wait_console(r"^PBTEST: ack " + re.escape(cmd) + r"$", timeout, start)

    def remove(self):
        virsh("destroy", self.name, check=False)
        virsh("undefine", self.name, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
