# SPDX-License-Identifier: MIT
"""Fixtures for the reliability tests: the real daemon (ASan build) beside
many fake peers in one process (tests/tools/fakepeers.py), spools on small
file systems of their own."""

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.lib.fakeguest import FAKEGUEST  # noqa: E402
from tests.tools.fakepeers import FakePeers  # noqa: E402


@pytest.fixture
def work():
    """A short directory (unix socket paths hold 107 bytes)."""
    d = tempfile.mkdtemp(prefix="pbrel", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def peers():
    p = FakePeers()
    yield p
    p.close()


@pytest.fixture
def fakeguest():
    if not os.access(FAKEGUEST, os.X_OK):
        pytest.fail("build/pbfakeguest is not built: run make")
    return FAKEGUEST


@pytest.fixture
def small_fs(work):
    """mount(SIZE_KIB) -> a directory on a tmpfs of that size of its own;
    remount(path, "ro"|"rw"). Skipped where mounting is not allowed."""
    mounted = []

    class FS:
        def mount(self, kib, path=None):
            path = path or os.path.join(work, f"fs{len(mounted)}")
            os.makedirs(path, exist_ok=True)
            p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k,mode=0755",
                                "pbtest", path], capture_output=True, text=True)
            if p.returncode != 0:
                pytest.skip(f"cannot mount a tmpfs here: {p.stderr.strip()}")
            mounted.append(path)
            return path

        def remount(self, path, how):
            subprocess.run(["mount", "-o", f"remount,{how}", path], check=True)

    yield FS()
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", path], capture_output=True)
