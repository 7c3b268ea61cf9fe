# SPDX-License-Identifier: MIT
"""Fixtures for the end-to-end tests: real guests, real QEMU, real daemon."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.lib import Guest, find_guests  # noqa: E402

SERIES = ("6.1", "6.12")


@pytest.fixture(scope="session")
def guest_dirs():
    found = find_guests(SERIES)
    missing = [s for s in SERIES if s not in found]
    if missing:
        pytest.fail(f"no built guest for kernel series {', '.join(missing)}: "
                    "run scripts/install-deps.sh, then make guests")
    return found


@pytest.fixture(params=SERIES)
def series(request):
    return request.param


@pytest.fixture
def make_guest(tmp_path, guest_dirs):
    """make_guest(series, name="vm1", **Guest kwargs) -> a started Guest."""
    made = []

    def make(series, name="vm1", **kw):
        workdir = tmp_path / name
        workdir.mkdir(exist_ok=True)
        g = Guest(guest_dirs[series], workdir, **kw)
        made.append(g)
        g.start()
        return g

    yield make
    for g in made:
        g.stop()


@pytest.fixture
def attach(make_guest, make_daemon):
    """attach(series, vm_keys="", **Guest kwargs) -> (guest, daemon): a guest
    whose command loop is ready and a daemon attached to it as VM "vm1"
    (with snapshot=never unless vm_keys says otherwise)."""

    def make(series, vm_keys="", **guest_kw):
        g = make_guest(series, **guest_kw)
        # Snapshots have tests of their own; elsewhere they only cost time.
        if "snapshot=" not in vm_keys:
            vm_keys += ",snapshot=never"
        d = make_daemon([f"vm1,qmp={g.qmp_path}{vm_keys}"])
        d.wait_log(r"VM vm1: attached to QMP", 30)
        g.wait_ready(90)
        return g, d

    return make
