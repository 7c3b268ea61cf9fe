# SPDX-License-Identifier: MIT
"""build/pbfakeguest (tests/tools/pbfakeguest.c), the fake guest side of the
broker channel, and reading a spool's records straight from the files."""

import glob
import json
import os
import subprocess

from tests.lib.daemon import BUILD

FAKEGUEST = os.path.join(BUILD, "pbfakeguest")


def guest(mbox, *args, timeout=30):
    """Runs the fake guest; returns its key=value output as a dict, plus
    "rc" (its exit status) and "stderr"."""
    p = subprocess.run([FAKEGUEST, mbox, *args], capture_output=True, text=True,
                       timeout=timeout)
    out = dict(line.split("=", 1) for line in p.stdout.splitlines() if "=" in line)
    out["rc"] = p.returncode
    out["stderr"] = p.stderr
    return out


def records(spool):
    """Every crash record in @spool, oldest first."""
    out = []
    for path in sorted(glob.glob(os.path.join(spool, "crashes", "*", "record.json"))):
        with open(path) as f:
            out.append(json.load(f))
    return out
