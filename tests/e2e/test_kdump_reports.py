# SPDX-License-Identifier: MIT
"""The kdump kernel's session, end to end: the test bed's crash kernel
(tests/guest/kdump-init) loads the real panicbroker.ko (pbtest.kdump_module=1)
and reports with the real /bin/pbreport over the broker channel to the real
daemon, which coordinates kdump from those reports (protocol/SPEC.md §4.4,
docs/record.md "The kdump session").

- normal path: start, progress 50, done --bytes <vmcore size>, then an
  immediate reboot: every report reaches the record (the daemon drains the
  mailbox on the RESET), kdump.state is done, and the crash closes;
- failure path (pbtest.kdump_fail=1): start, failed: kdump.state failed and
  the final action (restart) follows;
- a kdump initramfs that hangs after start (pbtest.kdump_hang=1): hung after
  kdump_progress_timeout, then the final action;
- a kdump kernel that never opens its session (no module in the crash
  kernel, and hanging): hung after kdump_session_timeout, then the final action.

    /usr/bin/python3 -m pytest -v tests/e2e/test_kdump_reports.py
"""

import re

import pytest

from tests.lib.daemon import record_states

ACCEPTED = r"VM vm1: mailbox: guest session [0-9a-f]+ accepted"
BOOTED = r"^PBTEST: booted "


@pytest.fixture
def bed(tmp_path, make_guest, make_daemon):
    def start(series, *switches, keys="", kdump_module=True):
        mbox = tmp_path / "vm1.mbox"
        d = make_daemon([f"vm1,qmp={tmp_path}/vm1/qmp.sock,mailbox={mbox},snapshot=never{keys}"])
        cmdline = (["pbtest.kdump_module=1"] if kdump_module else []) + list(switches)
        g = make_guest(series, mailbox=mbox, cmdline=cmdline)
        d.wait_log(r"VM vm1: attached to QMP", 30)
        g.wait_ready(90)
        d.wait_log(ACCEPTED, 30)
        return g, d
    return start


def kdump_lines(g, start):
    return [l for l in g.console_text()[start:].splitlines()
            if l.startswith("PBTEST: ") and not l.startswith("PBTEST: ack")]


def closed(rec):
    return rec["state"] == "closed"


@pytest.mark.parametrize("series", ("6.1", "6.12"))
def test_normal_dump_reports(bed, series):
    g, d = bed(series)
    mark = g.console_offset()
    g.command("panic")
    m = g.wait_console(r"^PBTEST: kdump rebooting$", 120, start=mark)
    lines = kdump_lines(g, mark)
    size = next(int(l.split()[-1]) for l in lines if l.startswith("PBTEST: vmcore size "))
    assert size > 0
    i = lines.index("PBTEST: pbreport start rc=0")
    assert lines[i + 1:i + 4] == ["PBTEST: pbreport progress rc=0",
                                  "PBTEST: pbreport done rc=0",
                                  "PBTEST: kdump rebooting"], lines
    g.wait_ready(120, start=m.end())

    rec = d.wait_record(closed, 60, "the crash closed")
    k = rec["kdump"]
    assert [r["state"] for r in k["reports"]] == ["start", "progress", "done"], k
    assert k["reports"][1]["percent"] == 50
    assert k["state"] == "done"
    assert k["bytes"] == size
    assert k["linked"] is True
    # the kdump kernel named the session that crashed: the panic record's
    assert k["prev_session"] == k["crashed_session"] == rec["panic"]["session"]
    assert k["session"] != k["prev_session"]
    for t in ("session_at", "started_at", "last_report_at", "finished_at"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", k[t]), (t, k)
    assert not k.get("session_deadline") and not k.get("progress_deadline")
    assert record_states(rec) == ["detected", "kdump_running", "kdump_finished", "closed"]
    assert rec["final_action_result"]["outcome"] == "not-needed"
    assert "no open crash" not in d.log_text()


def test_failed_dump_final_action(bed):
    g, d = bed("6.12", "pbtest.kdump_fail=1")
    mark = g.console_offset()
    g.command("panic")
    m = g.wait_console(r"^PBTEST: pbreport failed rc=0$", 120, start=mark)
    lines = kdump_lines(g, mark)
    i = lines.index("PBTEST: pbreport start rc=0")
    assert lines[i + 1] == "PBTEST: pbreport failed rc=0", lines

    rec = d.wait_record(closed, 60, "the crash closed by the final action")
    k = rec["kdump"]
    assert [r["state"] for r in k["reports"]] == ["start", "failed"], k
    assert k["state"] == "failed"
    assert k["reason"] == "test bed asked for a failure"
    assert k["linked"] is True
    assert "kdump_failed" in record_states(rec)
    assert rec["final_action_result"]["action"] == "restart"
    assert rec["final_action_result"]["outcome"] == "applied"
    # the host reset the hanging kdump kernel: the guest boots again
    g.wait_console(BOOTED, 120, start=m.end())


def test_hanging_kdump_becomes_hung(bed):
    g, d = bed("6.1", "pbtest.kdump_hang=1", keys=",kdump_progress_timeout=8")
    mark = g.console_offset()
    g.command("panic")
    m = g.wait_console(r"^PBTEST: kdump hanging$", 120, start=mark)
    assert "PBTEST: pbreport start rc=0" in kdump_lines(g, mark)

    rec = d.wait_record(closed, 90, "the crash closed after the progress deadline")
    k = rec["kdump"]
    assert [r["state"] for r in k["reports"]] == ["start"], k
    assert k["state"] == "hung"
    assert k["reason"] == "no progress for 8 s"
    assert "kdump_timeout" in record_states(rec)
    assert rec["final_action_result"]["outcome"] == "applied"
    g.wait_console(BOOTED, 120, start=m.end())


def test_silent_kdump_kernel_becomes_hung(bed):
    """No module in the crash kernel: its session never opens.

    The deadline runs from the panic, so it must outlast the crash kernel's
    boot to its userspace, which under TCG on a loaded 2-core machine took
    more than 8 s (CI): 30 s leaves the console line time to come."""
    g, d = bed("6.12", "pbtest.kdump_hang=1", keys=",kdump_session_timeout=30",
               kdump_module=False)
    mark = g.console_offset()
    g.command("panic")
    m = g.wait_console(r"^PBTEST: kdump hanging$", 120, start=mark)
    assert "PBTEST: pbreport skipped: no /dev/panicbroker" in kdump_lines(g, mark)

    rec = d.wait_record(closed, 90, "the crash closed after the session deadline")
    k = rec["kdump"]
    assert k["state"] == "hung"
    assert k["reason"] == "no kdump session within 30 s"
    assert not k.get("reports")
    assert rec["final_action_result"]["outcome"] == "applied"
    g.wait_console(BOOTED, 120, start=m.end())
