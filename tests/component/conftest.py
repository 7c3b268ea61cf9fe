# SPDX-License-Identifier: MIT
"""The component tests: the real daemon with fake peers (tests/lib/fakeqmp.py,
tests/lib/fakeguest.py), no QEMU, no guest. Their fixtures (make_daemon,
short_dir) are tests/conftest.py's."""
