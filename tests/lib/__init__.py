"""Python helpers for the panicbroker guest test bed (see tests/guest/README.md).

    from tests.lib import Guest, QMP, QMPError, find_guests
"""

from .qmp import QMP, QMPClosed, QMPError, QMPTimeout
from .guest import Guest, build_guests, find_guests, timeout_scale

__all__ = ["Guest", "QMP", "QMPError", "QMPClosed", "QMPTimeout",
           "find_guests", "build_guests", "timeout_scale"]
