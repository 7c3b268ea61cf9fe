# SPDX-License-Identifier: MIT
"""The three Debian packages through their life, in a chroot of the real
guest's base file system (Debian 12 with kdump-tools, dkms, the 6.1 kernel
and headers; tests/realguest/image.sh), with apt on local repositories only:

install -> reinstall -> upgrade (the same packages repacked as a higher
version) -> remove -> purge, checking at each step what is there, and at the
end that nothing is left that was not there before (piuparts does the same
with a fresh chroot per run and needs the archive; it is not used here).

    /usr/bin/python3 -m pytest -v tests/realguest/test_packages.py
"""

import os
import re
import shutil
import subprocess

import pytest

from tests.realguest.conftest import DEB_DIR, IMAGE_SH, TOP, WORK

PKGS = ["panicbroker", "panicbroker-dkms", "panicbroker-guest"]
# what changes in any package operation, or is the package manager's own
VOLATILE = re.compile(r"^/(var/lib/dpkg|var/lib/apt|var/cache|var/log|var/lib/systemd/deb-systemd"
                      r"|var/lib/ucf|etc/ld\.so\.cache|tmp|var/tmp|run|usr/sbin/policy-rc\.d"
                      r"|var/local/panicbroker|var/lib/dkms$|etc/apt)(/|$)")


@pytest.fixture(scope="module")
def root():
    if os.geteuid() != 0:
        pytest.skip("needs root (chroot)")
    if not shutil.which("mmdebstrap"):
        pytest.skip("mmdebstrap missing: scripts/install-deps.sh")
    if not list(DEB_DIR.glob("panicbroker-guest_*.deb")):
        pytest.fail(f"no packages in {DEB_DIR}: run make deb")
    debs = WORK / "pkgtest-debs"
    shutil.rmtree(debs, ignore_errors=True)
    debs.mkdir(parents=True)
    for d in DEB_DIR.glob("*.deb"):
        if "dbgsym" not in d.name:
            shutil.copy(d, debs)
    repack_higher(debs)
    r = WORK / "pkgtest-root"
    subprocess.run([str(IMAGE_SH), "unpack", str(r), str(debs)], check=True, timeout=3600)
    yield r
    shutil.rmtree(r, ignore_errors=True)


def repack_higher(debs):
    """Adds each package again as VERSION+test1 (the upgrade step)."""
    for deb in sorted(debs.glob("*.deb")):
        x = debs / "x"
        subprocess.run(["dpkg-deb", "-R", str(deb), str(x)], check=True)
        ctl = x / "DEBIAN" / "control"
        text = ctl.read_text()
        v = re.search(r"^Version: (\S+)$", text, re.M).group(1)
        text = re.sub(r"^Version: .*$", f"Version: {v}+test1", text, flags=re.M)
        text = text.replace(f"(= {v})", f"(= {v}+test1)")
        ctl.write_text(text)
        subprocess.run(["dpkg-deb", "-b", "--root-owner-group", str(x),
                        str(debs / deb.name.replace(f"_{v}_", f"_{v}+test1_"))],
                       check=True, capture_output=True)
        shutil.rmtree(x)


def sh(root, cmd, check=True, timeout=900):
    p = subprocess.run([str(IMAGE_SH), "chroot", str(root), "sh", "-c", cmd],
                       capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if check and p.returncode != 0:
        raise AssertionError(f"'{cmd}' exited {p.returncode}:\n{p.stdout[-4000:]}\n{p.stderr[-4000:]}")
    return p.stdout


def files(root):
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        rel = "/" + os.path.relpath(dirpath, root)
        rel = "/" if rel == "/." else rel
        if rel in ("/proc", "/sys", "/dev"):
            dirnames[:] = []
            continue
        for n in dirnames + filenames:
            p = os.path.join(rel, n) if rel != "/" else "/" + n
            if not VOLATILE.match(p):
                out.add(p)
    return out


def kver(root):
    return sh(root, "linux-version list").split()[0]


def kdump_initrd_has_module(root, k):
    return "updates/dkms/panicbroker.ko" in sh(root, f"lsinitramfs /var/lib/kdump/initrd.img-{k}")


def check_installed(root, version):
    k = kver(root)
    st = sh(root, "dpkg-query -W -f '${Package} ${Version} ${Status}\\n' " + " ".join(PKGS))
    for p in PKGS:
        assert f"{p} {version} install ok installed" in st, st
    for f in ("/usr/sbin/panicbrokerd", "/usr/bin/pbctl", "/usr/bin/pbvmcore",
              "/etc/panicbroker/panicbrokerd.conf", "/lib/systemd/system/panicbrokerd.service",
              "/usr/sbin/pbreport", "/usr/lib/panicbroker/kdump-tools-dump",
              "/lib/systemd/system/kdump-tools-dump.service.d/panicbroker.conf",
              "/usr/lib/modules-load.d/panicbroker.conf",
              "/usr/share/initramfs-tools/hooks/panicbroker",
              f"/lib/modules/{k}/updates/dkms/panicbroker.ko"):
        assert (root / f.lstrip("/")).exists(), f"{f} missing after installing {version}"
    # enabled the Debian way (deb-systemd-helper), not started in a chroot
    assert (root / "etc/systemd/system/multi-user.target.wants/panicbrokerd.service").is_symlink()
    assert re.search(rf"panicbroker/[^,]+, {re.escape(k)}, x86_64: installed",
                     sh(root, "dkms status panicbroker"))
    assert kdump_initrd_has_module(root, k)


def test_lifecycle(root):
    k = kver(root)
    # the host package's libraries first: they stay, as apt leaves them
    sh(root, "apt-get install -y -q libjson-c5 libmicrohttpd12 libcurl4 libvirt0 libxml2")
    before = files(root)
    assert not kdump_initrd_has_module(root, k)

    v = subprocess.run(["dpkg-parsechangelog", "-l", "debian/changelog", "-S", "Version"],
                       capture_output=True, text=True, check=True,
                       cwd=TOP).stdout.strip()
    pinned = " ".join(f"{p}={v}" for p in PKGS)
    sh(root, f"apt-get install -y -q {pinned}")
    check_installed(root, v)

    sh(root, f"apt-get install -y -q --reinstall {pinned}")
    check_installed(root, v)

    # an admin's change to the configuration survives the upgrade
    conf = root / "etc/panicbroker/panicbrokerd.conf"
    conf.write_text(conf.read_text() + "vm web1,qmp=/run/panicbroker/web1.qmp\n")
    sh(root, "apt-get install -y -q -o Dpkg::Options::=--force-confold "
             + " ".join(f"{p}={v}+test1" for p in PKGS))
    check_installed(root, v + "+test1")
    assert "vm web1," in conf.read_text()

    sh(root, "apt-get remove -y -q " + " ".join(PKGS))
    assert not (root / f"lib/modules/{k}/updates/dkms/panicbroker.ko").exists()
    assert not (root / "var/lib/dkms/panicbroker").exists()
    assert not kdump_initrd_has_module(root, k)
    assert conf.exists(), "a conffile went with remove"
    assert not (root / "usr/sbin/panicbrokerd").exists()

    sh(root, "apt-get purge -y -q " + " ".join(PKGS))
    after = files(root)
    assert sorted(after - before) == [], "left behind after purge"
    assert sorted(before - after) == [], "gone after purge though there before"
