# SPDX-License-Identifier: MIT
"""Fixtures of the real-guest tests: the disk image (tests/realguest/image.sh:
a cached mmdebstrap base + this build's .debs installed with apt), a QEMU
guest booted from it, and the real daemon.

The guest is booted by QEMU directly (-kernel/-initrd taken from the image's
/boot), its root file system is the image (virtio disk /dev/vda), and the
tests reach it through qemu-guest-agent (qga.py). Nothing of the busybox
test bed (tests/guest/) is used.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]
if str(TOP) not in sys.path:
    sys.path.insert(0, str(TOP))

# PB_BUILD is pointed at the copies below; pytest may import this file twice
# (as conftest and as tests.realguest.conftest): the build's own directory is
# kept in PB_REALGUEST_BUILD
BUILD = Path(os.environ.get("PB_REALGUEST_BUILD") or os.environ.get("PB_BUILD")
             or TOP / "build")
os.environ["PB_REALGUEST_BUILD"] = str(BUILD)
WORK = BUILD / "realguest"


def _snapshot_binaries():
    """The daemon and pbctl these tests run, copied once: the story lasts many
    minutes, and a `make` in the same tree meanwhile must not swap them."""
    snap = WORK / "bin"
    for rel in ("asan/panicbrokerd", "panicbrokerd", "pbctl", "pbreport"):
        src = BUILD / rel
        if src.is_file():
            (snap / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, snap / rel)
    os.environ["PB_BUILD"] = str(snap)


_snapshot_binaries()
from tests.lib.daemon import Daemon  # noqa: E402
from tests.lib.guest import Guest  # noqa: E402
from tests.realguest.qga import Agent  # noqa: E402

DEB_DIR = Path(os.environ.get("PB_DEB_DIR", BUILD / "deb"))
IMAGE_SH = TOP / "tests" / "realguest" / "image.sh"

MEMORY_MIB = 1024
CRASHKERNEL = "256M"


def debugfs(disk, request):
    """Runs one debugfs request on the (stopped) guest's disk image."""
    p = subprocess.run(["debugfs", "-R", request, str(disk)], capture_output=True,
                       text=True, timeout=300)
    if p.returncode != 0:
        raise AssertionError(f"debugfs -R '{request}' failed: {p.stderr}")
    return p.stdout


def copy_out(disk, path, dest):
    """Copies PATH out of the disk image into DEST (a host path)."""
    debugfs(disk, f"dump -p {path} {dest}")
    if not os.path.exists(dest):
        raise AssertionError(f"{path} not in the guest's disk")
    return dest


class RealGuest:
    """One QEMU run of the image with one kernel; the disk stays across runs."""

    def __init__(self, image, kver, name, mailbox):
        self.image = image
        self.kver = kver
        self.workdir = WORK / name
        if self.workdir.exists():
            shutil.rmtree(self.workdir)
        self.workdir.mkdir(parents=True)
        self.qga_path = self.workdir / "qga.sock"
        extra = [
            "-drive", f"file={image.disk},format=raw,if=virtio,cache=unsafe",
            "-device", "virtio-serial",
            "-chardev", f"socket,id=qga0,path={self.qga_path},server=on,wait=off",
            "-device", "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0",
        ]
        self.g = Guest(image.boot / kver, self.workdir, pvpanic="isa",
                       memory_mib=MEMORY_MIB, crashkernel=CRASHKERNEL,
                       cmdline=["root=/dev/vda", "ro"], mailbox=mailbox, extra_args=extra)
        self.agent = Agent(self.qga_path)

    def start(self):
        self.g.start()
        return self

    def stop(self):
        self.agent.close()
        self.g.stop(timeout=30)


class Image:
    def __init__(self, disk, boot):
        self.disk = disk
        self.boot = boot

    def kvers(self):
        return sorted(p.name for p in self.boot.iterdir() if (p / "vmlinuz").is_file())

    def add_kernel(self, kver):
        """Copies /boot/vmlinuz-KVER and initrd.img-KVER out of the (stopped) image."""
        d = self.boot / kver
        d.mkdir(parents=True, exist_ok=True)
        for src, dst in (("vmlinuz", "vmlinuz"), ("initrd.img", "initrd.img")):
            out = d / dst
            if out.exists():
                out.unlink()
            copy_out(self.disk, f"/boot/{src}-{kver}", out)
        (d / "kver").write_text(kver + "\n")


@pytest.fixture(scope="session")
def image():
    if os.geteuid() != 0:
        pytest.skip("the real-guest image is built in a chroot: needs root")
    for tool in ("mmdebstrap", "debugfs", "apt-ftparchive", "qemu-system-x86_64"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} missing: scripts/install-deps.sh")
    debs = sorted(DEB_DIR.glob("panicbroker-*.deb"))
    if not any("panicbroker-guest_" in d.name for d in debs):
        pytest.fail(f"no packages in {DEB_DIR}: run make deb")
    out = WORK / "image"
    subprocess.run([str(IMAGE_SH), "disk", str(DEB_DIR), str(out)], check=True,
                   timeout=3600)
    return Image(out / "disk.img", out / "boot")


@pytest.fixture(scope="module")
def daemon_for():
    """daemon_for(mailbox, keys) -> a running Daemon watching VM 'pbguest'."""
    started = []

    def start(name, mailbox, keys=""):
        wd = WORK / f"daemon-{name}"
        if wd.exists():
            shutil.rmtree(wd)
        wd.mkdir(parents=True)
        qmp = WORK / name / "qmp.sock"
        d = Daemon(str(wd), [f"pbguest,qmp={qmp},mailbox={mailbox}{keys}"]).start()
        started.append(d)
        return d

    yield start
    for d in started:
        d.stop()
