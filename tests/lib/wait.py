# SPDX-License-Identifier: MIT
"""The one way the tests wait: poll a condition until it holds or a deadline
(scaled by PB_TIMEOUT_SCALE) passes, then fail saying what was awaited."""

import json
import os
import time

SCALE = float(os.environ.get("PB_TIMEOUT_SCALE", "1"))


def wait_until(pred, what, timeout=10, interval=0.05, describe=None):
    """pred()'s first truthy value; AssertionError naming @what (and
    @describe()'s text, if given) after @timeout seconds."""
    deadline = time.monotonic() + timeout * SCALE
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            extra = describe() if describe else ""
            raise AssertionError(f"no {what} within {timeout * SCALE:.0f} s"
                                 + (f":\n{extra}" if extra else ""))
        time.sleep(interval)


def wait_record(read, pred, what="a matching crash record", timeout=15, describe=None):
    """The first record of read() (a list of records) that matches @pred."""
    def first():
        return next((r for r in read() if pred(r)), None)

    def show():
        text = json.dumps(read(), indent=1)[-5000:]
        return text + ("\n" + describe() if describe else "")

    return wait_until(first, what, timeout, interval=0.05, describe=show)
