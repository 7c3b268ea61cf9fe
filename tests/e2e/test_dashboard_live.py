# SPDX-License-Identifier: MIT
"""The dashboard after a real panic: a real kernel in QEMU with the module
and a broker-channel mailbox, the real daemon with its API. The crash shows
on the dashboard's list within a second of its record appearing in the
spool; its page holds the panic message, the signature and the guilty frame
marked in the log tail, then the kdump kernel's reports on the timeline;
headless Chromium loads both pages (screenshots kept as artefacts)."""

import glob
import json
import os
import re
import shutil
import tempfile
import time

import pytest

from tests.lib.browser import Forwarder, chromium, chromium_binary, get, keep_artifact
from tests.lib.wait import SCALE, wait_until

RELOADED = r"panicbroker: mailbox: crash kernel loaded; opening a new session"
ACCEPTED = r"panicbroker: mailbox: session ([0-9a-f]{16}) accepted by "


def spool_records(spool):
    out = []
    for path in sorted(glob.glob(os.path.join(spool, "crashes", "*", "record.json"))):
        try:
            with open(path) as f:
                out.append(json.load(f))
        except (OSError, ValueError):
            pass  # replaced meanwhile: the next look sees it
    return out


@pytest.mark.parametrize("series", ["6.12"])
def test_live_panic_on_the_dashboard(series, make_guest, make_daemon, tmp_path):
    if not chromium_binary():
        pytest.skip("chromium is not installed (scripts/install-deps.sh)")
    sock_dir = tempfile.mkdtemp(prefix="pbdash", dir="/tmp")  # sun_path is short
    api = os.path.join(sock_dir, "api.sock")
    mbox = tmp_path / "mailbox"
    fwd = None
    try:
        # The test bed's crash kernel loads the module and reports with pbreport.
        g = make_guest(series, mailbox=mbox, cmdline=["pbtest.kdump_module=1"])
        d = make_daemon([f"vm1,qmp={g.qmp_path},mailbox={mbox},snapshot=never"],
                        args=["--api", api])
        d.wait_log(r"VM vm1: attached to QMP", 30)
        g.wait_ready(90)
        m = g.wait_console(RELOADED, 30)
        g.wait_console(ACCEPTED, 30, start=m.end())
        fwd = Forwarder(api)

        g.command("panic")
        # The record as it first lands in the spool, then the list that shows it.
        rec = wait_until(lambda: next(iter(spool_records(d.spool)), None),
                         "the crash record in the spool", timeout=120, interval=0.01)
        t_record = time.monotonic()
        wait_until(lambda: f'data-id="{rec["id"]}"' in get(api, "/")[2],
                   "the crash on the dashboard", timeout=1, interval=0.02)
        shown_after = time.monotonic() - t_record
        assert shown_after < 1.0 * SCALE, shown_after

        # Its page once the panic record is in (it usually is from the first save).
        rec = wait_until(lambda: next((r for r in spool_records(d.spool)
                                       if r.get("signature", {}).get("title")), None),
                         "the record's signature", timeout=60)
        st, _, page = get(api, f"/crashes/{rec['id']}")
        assert st == 200
        assert '<h1 id="title">sysrq triggered crash</h1>' in page
        assert '<pre id="panic-message">sysrq triggered crash</pre>' in page
        guilty = rec["signature"]["guilty_frame"]
        assert guilty == "sysrq_handle_crash"
        m = re.search(r'<mark class="guilty" id="guilty">([^<]*)</mark>', page)
        assert m and guilty + "+0x" in m.group(1), page[-5000:]

        # The kdump kernel reports; the timeline has them.
        rec = d.wait_record(lambda r: r.get("kdump", {}).get("state") == "done", 240,
                            "the kdump kernel's done report")
        st, _, page = get(api, f"/crashes/{rec['id']}")
        events = page[page.index('<table id="events">'):]
        assert "kdump session opened" in events and "report: done" in events, events[:3000]
        assert 'id="lane-kdump"' in page and 'class="bar"' in page

        shot = str(tmp_path / "dashboard-live-crash.png")
        dom = chromium(f"{fwd.url}/crashes/{rec['id']}", str(tmp_path), screenshot=shot)
        assert "sysrq triggered crash" in dom and 'id="guilty"' in dom
        assert "<script" not in dom
        keep_artifact(shot, "dashboard-live-crash.png")
        shot = str(tmp_path / "dashboard-live-list.png")
        dom = chromium(fwd.url + "/", str(tmp_path), screenshot=shot)
        assert f'data-id="{rec["id"]}"' in dom and "sysrq triggered crash" in dom
        keep_artifact(shot, "dashboard-live-list.png")
        print(f"dashboard: the crash was listed {shown_after * 1000:.0f} ms after its record")
    finally:
        if fwd:
            fwd.close()
        shutil.rmtree(sock_dir, ignore_errors=True)
