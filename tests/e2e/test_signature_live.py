# SPDX-License-Identifier: MIT
"""Crash signatures on live panics: the signature of what a real guest sends
now is the golden one of the corpus (tests/golden/oops/, captured by
`make capture-oopses`), so the golden tests still speak of real kernels.

Two panics only (the corpus has twenty): a NULL dereference on 6.1 and a
BUG() on 6.12, each through the real module, the broker channel and the
real daemon. The signature is computed by build/pbsig from the crash
record's panic.message and panic.log_tail; when the record carries its own
"signature" object, that must be the same.
"""

import glob
import json
import os
import subprocess

import pytest

from tests.lib.daemon import BUILD

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOLDEN = os.path.join(TOP, "tests", "golden", "oops")
RELOADED = r"panicbroker: mailbox: crash kernel loaded; opening a new session"
ACCEPTED = r"panicbroker: mailbox: session ([0-9a-f]{16}) accepted by "
KDUMP_INIT = r"^PBTEST: kdump init reached"


def pbsig(*args):
    path = os.path.join(BUILD, "pbsig")
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is not built: make userspace")
    p = subprocess.run([path, *args], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


@pytest.mark.parametrize("series,kind", [("6.1", "null"), ("6.12", "bug")])
def test_live_signature_is_golden(attach, tmp_path, series, kind):
    golden = os.path.join(GOLDEN, series, f"{kind}.json")
    with open(golden) as f:
        want = json.load(f)

    mbox = tmp_path / "mailbox"
    g, d = attach(series, f",mailbox={mbox}", mailbox=mbox)
    m = g.wait_console(RELOADED, 30)
    g.wait_console(ACCEPTED, 30, start=m.end())
    mark = g.console_offset()
    g.command(f"oops {kind}")
    g.wait_console(KDUMP_INIT, 180, start=mark)

    rec = d.wait_record(lambda r: "log_tail" in r.get("panic", {}), 60, "a panic record")
    paths = glob.glob(os.path.join(d.spool, "crashes", rec["id"], "record.json"))
    assert paths, rec["id"]
    got = pbsig("--record", paths[0])
    assert got == want, (f"live {series} {kind}: {json.dumps(got)}\n"
                         f"golden {golden}: {json.dumps(want)}\n"
                         f"message: {rec['panic']['message']!r}")
    # panicbrokerd stores it itself, with where it was computed from.
    stored = dict(rec["signature"])
    assert stored.pop("from") == "panic record", rec["signature"]
    assert stored == want, rec["signature"]
