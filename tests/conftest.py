# SPDX-License-Identifier: MIT
"""Fixtures every suite shares (component, e2e, reliability): the real daemon,
started and checked at teardown, and a short directory for unix sockets."""

import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.lib.daemon import Daemon  # noqa: E402


@pytest.fixture
def short_dir():
    """A short directory for unix sockets: sun_path holds 107 bytes and
    pytest's tmp_path can be longer than that."""
    d = tempfile.mkdtemp(prefix="pbc", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def make_daemon(tmp_path):
    """make_daemon([vm specs], **Daemon kwargs) -> a started Daemon.

    At teardown every daemon must exit cleanly on SIGTERM, with no
    sanitizer report, unless the test already stopped or killed it.
    """
    made = []

    def make(vms, **kw):
        d = Daemon(str(tmp_path), vms, **kw)
        made.append(d)
        return d.start()

    yield make
    errors = []
    for d in made:
        try:
            d.stop(check=True)
        except AssertionError as e:
            errors.append(str(e))
    if errors:
        pytest.fail("\n".join(errors))
