# SPDX-License-Identifier: MIT
"""The kdump kernel's broker channel session, host side (docs/record.md,
"The kdump session"): linking it to the crash, kdump.state, the session and
progress deadlines, and the final action that follows a failed or hung kdump.

build/pbfakeguest plays the guest on the VM's mailbox file and FakeQMP plays
QEMU (a system_reset is answered with a RESET event), so no real guest is
needed. The daemon is the sanitized build, checked when it stops.
"""

import os
import shutil
import subprocess
import tempfile
import time
from datetime import datetime, timezone

import pytest

from tests.lib.daemon import SCALE, Daemon, daemon_binary, record_states
from tests.lib.fakeqmp import FakeQMP
from tests.lib.fakeguest import FAKEGUEST, guest, records
from tests.lib.wait import wait_record

def wait_rec(spool, pred, what, timeout=15):
    """The first record of @spool matching @pred, waited for."""
    return wait_record(lambda: records(spool), pred, f"record with {what}", timeout)


def ts(s):
    """A record's RFC 3339 timestamp as seconds since the epoch."""
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def hexid(s):
    return int(s, 16)


def kd(rec):
    return rec.get("kdump", {})


def closed(rec):
    return rec["state"] == "closed"


@pytest.fixture
def bed():
    """VM "a": a FakeQMP that answers system_reset with RESET, a mailbox file,
    final_action=restart. start(keys, snapshot="never") starts a daemon."""
    if not os.access(FAKEGUEST, os.X_OK):
        pytest.fail("build/pbfakeguest is not built: run make")
    work = tempfile.mkdtemp(prefix="pbks-")  # short: unix socket paths
    qmp = FakeQMP(os.path.join(work, "a.qmp"), "behaved", reset_on_system_reset=True)
    mbox = os.path.join(work, "a.mbox")
    state = {"work": work, "qmp": qmp, "mbox": mbox, "daemons": []}

    def start(keys="", snapshot="never"):
        d = Daemon(work, [f"a,qmp={qmp.path},mailbox={mbox},snapshot={snapshot}{keys}"]).start()
        state["daemons"].append(d)
        qmp.wait_attached()
        return d

    state["start"] = start
    yield state
    for d in state["daemons"]:
        d.stop(check=False)
    qmp.close()
    shutil.rmtree(work, ignore_errors=True)


def panic_into_kdump(bed, d, msg="Kernel panic - not syncing: kdump session test"):
    """A guest session, its panic record, GUEST_CRASHLOADED: the crash in
    kdump_running. Returns its record."""
    out = guest(bed["mbox"], "hello")
    assert out["rc"] == 0 and out["accepted"] == "1", out
    out = guest(bed["mbox"], "panic", msg)
    assert out["rc"] == 0 and out["acked"] == "1", out
    bed["qmp"].emit("GUEST_CRASHLOADED", {"action": "run"})
    rec = wait_rec(d.spool, lambda r: not closed(r) and r.get("panic", {}).get("message") == msg
                   and r["state"] == "kdump_running", "the crash in kdump_running")
    # The crashed session is the one whose panic slot the daemon holds.
    assert kd(rec)["crashed_session"] == rec["panic"]["session"], rec
    assert kd(rec)["crashed_session_from"] == "panic slot"
    assert kd(rec)["state"] is None
    return rec


def test_done_then_the_next_normal_boot_closes_the_crash(bed):
    d = bed["start"](",kdump_session_timeout=5,kdump_progress_timeout=2")
    mbox = bed["mbox"]
    rec = panic_into_kdump(bed, d)
    assert kd(rec)["session_deadline"] is not None

    out = guest(mbox, "kdump-session", "auto", "start", "progress:40", "done:12345")
    assert out["rc"] == 0 and out["accepted"] == "1" and out["consumed"] == "1", out
    assert hexid(out["prev"]) == hexid(rec["panic"]["session"])  # found as the module finds it
    rec = wait_rec(d.spool, lambda r: kd(r).get("state") == "done", "kdump.state done")
    k = kd(rec)
    assert rec["state"] == "kdump_running"  # still waiting for the guest to reboot
    assert hexid(k["session"]) == hexid(out["session"])
    assert k["prev_session"] == rec["panic"]["session"] and k["linked"] is True
    assert "unlinked_sessions" not in k
    assert [r["state"] for r in k["reports"]] == ["start", "progress", "done"]
    assert k["reports"][1]["percent"] == 40 and k["reports"][2]["bytes"] == 12345
    assert k["bytes"] == 12345 and "reason" not in k
    assert k["session_at"] <= k["started_at"] <= k["last_report_at"] == k["finished_at"]
    assert k["session_deadline"] is None and k["progress_deadline"] is None
    assert any("reported done (12345 bytes)" in h["reason"] for h in rec["history"])

    # done cancelled the progress deadline: no hang after 2 s of silence.
    time.sleep(3)
    rec = records(d.spool)[0]
    assert rec["state"] == "kdump_running" and kd(rec)["state"] == "done", rec

    # No RESET event from the kdump kernel: its next boot closes the crash.
    out = guest(mbox, "hello")
    assert out["accepted"] == "1", out
    rec = wait_rec(d.spool, closed, "the crash closed")
    assert record_states(rec) == ["detected", "kdump_running", "kdump_finished", "closed"]
    assert "the guest booted again" in rec["history"][-2]["reason"]
    assert out["session"] in rec["history"][-2]["reason"]
    assert rec["final_action_result"]["outcome"] == "not-needed"
    assert "system_reset" not in bed["qmp"].commands
    d.stop()


def test_a_reset_after_done_closes_the_crash_as_before(bed):
    d = bed["start"]()
    panic_into_kdump(bed, d)
    out = guest(bed["mbox"], "kdump-session", "auto", "start", "done")
    assert out["consumed"] == "1", out
    wait_rec(d.spool, lambda r: kd(r).get("state") == "done", "kdump.state done")
    bed["qmp"].emit("RESET", {"guest": True, "reason": "guest-reset"})
    rec = wait_rec(d.spool, closed, "the crash closed")
    assert record_states(rec) == ["detected", "kdump_running", "kdump_finished", "closed"]
    assert rec["final_action_result"]["outcome"] == "not-needed"
    # The guest boots: a NORMAL session with no crash open. It closes and
    # opens nothing: the closed record stays as it was, and the next crash
    # still gets a record of its own (which also shows that the daemon has
    # long been done with that HELLO when the records are read).
    out = guest(bed["mbox"], "hello")
    assert out["accepted"] == "1", out
    again = panic_into_kdump(bed, d, "Kernel panic - not syncing: after the reboot")
    assert again["id"] != rec["id"]
    by_id = {r["id"]: r for r in records(d.spool)}
    assert sorted(by_id) == sorted([rec["id"], again["id"]]), list(by_id)
    assert by_id[rec["id"]] == rec
    d.stop()


def test_a_reset_before_the_session_closes_as_before(bed):
    """A kdump kernel without the module resets the guest: closed, and the
    record shows no session deadline pending."""
    d = bed["start"](",kdump_session_timeout=60")
    panic_into_kdump(bed, d)
    bed["qmp"].emit("RESET", {"guest": True, "reason": "guest-reset"})
    rec = wait_rec(d.spool, closed, "the crash closed")
    assert record_states(rec) == ["detected", "kdump_running", "kdump_finished", "closed"]
    assert kd(rec)["state"] is None and kd(rec)["session_deadline"] is None, kd(rec)
    assert rec["final_action_result"]["outcome"] == "not-needed"
    d.stop()


def test_kdump_timeout_stays_the_outer_bound(bed):
    """Reports keep coming, but kdump_timeout passes: hung, and the final action."""
    d = bed["start"](",kdump_timeout=3,kdump_progress_timeout=60")
    panic_into_kdump(bed, d)
    out = guest(bed["mbox"], "kdump-session", "auto", "start", "sleep:1", "progress:10",
                "sleep:1", "progress:20", "sleep:1.5", "progress:30")
    assert out["accepted"] == "1", out
    rec = wait_rec(d.spool, closed, "the crash closed")
    k = kd(rec)
    assert k["state"] == "hung", k
    assert k["reason"] == "kdump_timeout (3 s) passed with the kdump session still running"
    assert k["progress_deadline"] is None
    assert record_states(rec) == ["detected", "kdump_running", "kdump_timeout", "closed"]
    assert rec["final_action_result"]["outcome"] == "applied"
    d.stop()


def test_hung_takes_the_snapshot_the_policy_asks_for(bed):
    """snapshot=on-kdump-failure: a hung kdump is a failed one. (FakeQMP offers
    no dump format, so the snapshot is attempted and fails; then the final
    action.)"""
    d = bed["start"](",kdump_session_timeout=1", snapshot="on-kdump-failure")
    panic_into_kdump(bed, d)
    rec = wait_rec(d.spool, closed, "the crash closed")
    assert kd(rec)["state"] == "hung"
    assert record_states(rec) == ["detected", "kdump_running", "kdump_timeout", "snapshotting",
                                  "closed"]
    assert rec["snapshot"]["state"] == "failed", rec["snapshot"]
    cmds = bed["qmp"].commands
    assert cmds.index("stop") < cmds.index("system_reset"), cmds
    assert rec["final_action_result"]["outcome"] == "applied"
    d.stop()


def test_no_snapshot_after_done(bed):
    """done, then no reboot within kdump_timeout: the final action, but no
    host snapshot (the kdump kernel saved its dump)."""
    d = bed["start"](",kdump_timeout=3", snapshot="on-kdump-failure")
    panic_into_kdump(bed, d)
    assert guest(bed["mbox"], "kdump-session", "auto", "start", "done")["consumed"] == "1"
    rec = wait_rec(d.spool, closed, "the crash closed")
    assert kd(rec)["state"] == "done"
    assert record_states(rec) == ["detected", "kdump_running", "kdump_timeout", "closed"]
    assert "snapshot" not in rec and "stop" not in bed["qmp"].commands
    assert any("reported done, so the host takes no snapshot" in h["reason"]
               for h in rec["history"])
    assert rec["final_action_result"]["outcome"] == "applied"
    d.stop()


def test_failed_report_leads_to_the_final_action(bed):
    d = bed["start"]()
    panic_into_kdump(bed, d)
    out = guest(bed["mbox"], "kdump-session", "auto", "start", "progress:10",
                "failed:makedumpfile exited 1")
    assert out["consumed"] == "1", out
    rec = wait_rec(d.spool, closed, "the crash closed")
    k = kd(rec)
    assert k["state"] == "failed" and k["reason"] == "makedumpfile exited 1"
    assert k["finished_at"] == k["last_report_at"]
    assert [r["state"] for r in k["reports"]] == ["start", "progress", "failed"]
    assert record_states(rec) == ["detected", "kdump_running", "kdump_failed", "closed"]
    assert "makedumpfile exited 1" in next(h["reason"] for h in rec["history"]
                                           if h["state"] == "kdump_failed")
    assert rec["final_action_result"]["outcome"] == "applied"
    assert rec["final_action_result"]["detail"] == "system_reset: the guest boots again"
    assert "system_reset" in bed["qmp"].commands
    d.wait_log(r"VM a: crash \S+: the kdump kernel failed: makedumpfile exited 1")
    d.stop()


def test_no_kdump_session_within_the_deadline_is_hung(bed):
    d = bed["start"](",kdump_session_timeout=2")
    rec = panic_into_kdump(bed, d)
    entered = ts(next(h["at"] for h in rec["history"] if h["state"] == "kdump_running"))
    assert abs(ts(kd(rec)["session_deadline"]) - entered - 2) < 0.5
    rec = wait_rec(d.spool, closed, "the crash closed")
    k = kd(rec)
    assert k["state"] == "hung" and k["reason"] == "no kdump session within 2 s"
    assert 1.9 <= ts(k["finished_at"]) - entered < 2 + 3 * SCALE
    assert "session" not in k and "reports" not in k
    assert k["session_deadline"] is None
    assert record_states(rec) == ["detected", "kdump_running", "kdump_timeout", "closed"]
    assert rec["final_action_result"]["outcome"] == "applied"
    assert "system_reset" in bed["qmp"].commands
    d.wait_log(r"VM a: crash \S+: kdump hung: no kdump session within 2 s")
    d.stop()


def test_silence_after_the_session_is_hung_and_reports_rearm_it(bed):
    d = bed["start"](",kdump_progress_timeout=2")
    panic_into_kdump(bed, d)
    # 2.6 s of reports, none more than 1.3 s apart: the deadline moves on.
    out = guest(bed["mbox"], "kdump-session", "auto", "start", "sleep:1.3", "progress:30",
                "sleep:1.3", "progress:60")
    assert out["consumed"] == "1", out
    rec = wait_rec(d.spool, closed, "the crash closed")
    k = kd(rec)
    assert k["state"] == "hung" and k["reason"] == "no progress for 2 s", k
    assert [r["state"] for r in k["reports"]] == ["start", "progress", "progress"]
    assert ts(k["last_report_at"]) - ts(k["session_at"]) >= 2.5
    assert 1.9 <= ts(k["finished_at"]) - ts(k["last_report_at"]) < 2 + 3 * SCALE
    assert record_states(rec) == ["detected", "kdump_running", "kdump_timeout", "closed"]
    assert rec["final_action_result"]["outcome"] == "applied"
    d.stop()


def test_a_session_alone_counts_as_progress(bed):
    """The session opening arms the progress deadline, with no report yet."""
    d = bed["start"](",kdump_session_timeout=30,kdump_progress_timeout=2")
    panic_into_kdump(bed, d)
    out = guest(bed["mbox"], "kdump-session", "auto")
    assert out["accepted"] == "1", out
    rec = wait_rec(d.spool, lambda r: kd(r).get("state") == "running", "kdump.state running")
    assert kd(rec)["session_deadline"] is None
    assert abs(ts(kd(rec)["progress_deadline"]) - ts(kd(rec)["session_at"]) - 2) < 0.5
    rec = wait_rec(d.spool, closed, "the crash closed")
    assert kd(rec)["state"] == "hung" and kd(rec)["reason"] == "no progress for 2 s"
    d.stop()


def test_a_guest_that_never_spoke_the_channel_keeps_only_kdump_timeout(bed):
    """No session before the panic: no kdump session is owed (an old module in
    the crash kernel would otherwise be reset mid-dump)."""
    d = bed["start"](",kdump_session_timeout=1,kdump_progress_timeout=2")
    bed["qmp"].emit("GUEST_CRASHLOADED", {"action": "run"})
    rec = wait_rec(d.spool, lambda r: r["state"] == "kdump_running", "kdump_running")
    assert "kdump" not in rec, rec
    time.sleep(2)
    rec = records(d.spool)[0]
    assert rec["state"] == "kdump_running" and "kdump" not in rec, rec

    # A kdump session that turns up anyway (prev 0: it found none) is taken,
    # unlinked, and from then on it owes progress.
    out = guest(bed["mbox"], "kdump-session", "0", "start")
    assert out["consumed"] == "1" and out["prev"] == "0" * 16, out
    rec = wait_rec(d.spool, lambda r: kd(r).get("state") == "running", "kdump.state running")
    k = kd(rec)
    assert k["linked"] is False and k["prev_session"] == "0x0"
    assert [u["taken"] for u in k["unlinked_sessions"]] == [True]
    assert "prev_session 0: the kdump kernel found no crashed session" in k["unlinked_sessions"][0]["why"]
    assert k["progress_deadline"] is not None
    rec = wait_rec(d.spool, closed, "the crash closed")
    assert kd(rec)["state"] == "hung" and kd(rec)["reason"] == "no progress for 2 s"
    d.stop()


@pytest.mark.parametrize("prev", ["0", "0x1234"])
def test_a_mismatched_prev_session_is_unlinked_but_taken(bed, prev):
    d = bed["start"]()
    rec = panic_into_kdump(bed, d)
    crashed = rec["panic"]["session"]
    out = guest(bed["mbox"], "kdump-session", prev, "start", "progress:10")
    assert out["consumed"] == "1", out
    rec = wait_rec(d.spool, lambda r: len(kd(r).get("reports", [])) == 2, "two kdump reports")
    k = kd(rec)
    assert k["state"] == "running" and k["linked"] is False
    assert hexid(k["prev_session"]) == int(prev, 0)
    u = k["unlinked_sessions"]
    assert len(u) == 1 and u[0]["taken"] is True and hexid(u[0]["session"]) == hexid(out["session"])
    if prev == "0":
        assert u[0]["why"].startswith("prev_session 0: ")
    else:
        assert u[0]["why"] == f"prev_session 0000000000001234 is not the crashed session {hexid(crashed):016x}"
    assert any("opened, unlinked" in h["reason"] for h in rec["history"])
    d.wait_log(r"VM a: mailbox: kdump session [0-9a-f]+ (is unlinked \(|: )prev_session")

    # The kdump kernel reopens its session naming the crashed one: linked.
    out = guest(bed["mbox"], "kdump-session", crashed, "progress:50", "done")
    assert out["consumed"] == "1", out
    rec = wait_rec(d.spool, lambda r: kd(r).get("state") == "done", "kdump.state done")
    k = kd(rec)
    assert k["linked"] is True and k["prev_session"] == crashed
    assert hexid(k["session"]) == hexid(out["session"])
    assert [r["state"] for r in k["reports"]] == ["start", "progress", "progress", "done"]
    assert len(k["unlinked_sessions"]) == 1
    d.stop()


def test_a_session_naming_a_closed_crash_is_not_taken_by_a_later_one(bed):
    d = bed["start"]()
    mbox = bed["mbox"]
    first = panic_into_kdump(bed, d, "Kernel panic - not syncing: first")
    assert guest(mbox, "kdump-session", "auto", "start", "done")["consumed"] == "1"
    wait_rec(d.spool, lambda r: kd(r).get("state") == "done", "kdump.state done")
    assert guest(mbox, "hello")["accepted"] == "1"  # the guest boots: the first crash closes
    wait_rec(d.spool, closed, "the first crash closed")

    second = panic_into_kdump(bed, d, "Kernel panic - not syncing: second")
    assert second["id"] != first["id"]
    # A kdump kernel naming the first crash's session: not this crash's.
    out = guest(mbox, "kdump-session", first["panic"]["session"], "start", "progress:5")
    assert out["accepted"] == "1", out
    rec = wait_rec(d.spool, lambda r: r["id"] == second["id"]
                   and kd(r).get("unlinked_sessions"), "the refused session")
    k = kd(rec)
    u = k["unlinked_sessions"]
    assert len(u) == 1 and u[0]["taken"] is False
    assert "is the crashed session of a crash already closed" in u[0]["why"]
    time.sleep(0.5)
    rec = next(r for r in records(d.spool) if r["id"] == second["id"])
    assert kd(rec)["state"] is None and "reports" not in kd(rec) and "session" not in kd(rec)
    # Said at most once a second (else at debug), with the reason.
    d.wait_log(r"VM a: mailbox: kdump session [0-9a-f]+( refused \(|: )prev_session [0-9a-f]+ "
               r"is the crashed session of a crash already closed")
    first_now = next(r for r in records(d.spool) if r["id"] == first["id"])
    assert len(kd(first_now)["reports"]) == 2  # the closed record never changes

    # Its own kdump session is linked and reports as usual.
    out = guest(mbox, "kdump-session", second["panic"]["session"], "start")
    assert out["consumed"] == "1", out
    rec = wait_rec(d.spool, lambda r: r["id"] == second["id"] and kd(r).get("state") == "running"
                   and kd(r).get("reports"), "the second crash's kdump running, its report in")
    assert kd(rec)["linked"] is True and len(kd(rec)["reports"]) == 1
    d.stop()


@pytest.mark.parametrize("which", ["session", "progress"])
def test_a_pending_deadline_survives_a_daemon_restart(bed, which):
    keys = ",kdump_session_timeout=6" if which == "session" else ",kdump_progress_timeout=6"
    d = bed["start"](keys)
    rec = panic_into_kdump(bed, d)
    if which == "progress":
        assert guest(bed["mbox"], "kdump-session", "auto", "start")["consumed"] == "1"
        rec = wait_rec(d.spool, lambda r: kd(r).get("state") == "running", "kdump.state running")
    deadline = ts(kd(rec)[f"{which}_deadline"])
    d.stop()
    time.sleep(2)  # down for a third of the deadline
    restarted = time.time()
    d = bed["start"](keys)
    d.wait_log(r"VM a: resuming open crash " + rec["id"])
    rec = wait_rec(d.spool, closed, "the crash closed", timeout=20)
    k = kd(rec)
    reason = "no kdump session within 6 s" if which == "session" else "no progress for 6 s"
    assert k["state"] == "hung" and k["reason"] == reason, k
    # The deadline kept from before the restart, not a new one from it.
    assert deadline - 0.05 <= ts(k["finished_at"]) < deadline + 1.5 * SCALE
    assert ts(k["finished_at"]) < restarted + 6 - 1
    assert record_states(rec) == ["detected", "kdump_running", "kdump_timeout", "closed"]
    assert any("panicbrokerd restarted" in h["reason"] for h in rec["history"])
    assert rec["final_action_result"]["outcome"] == "applied"
    d.stop()


def test_done_survives_a_restart_and_the_next_boot_closes(bed):
    d = bed["start"](",kdump_progress_timeout=2")
    panic_into_kdump(bed, d)
    assert guest(bed["mbox"], "kdump-session", "auto", "start", "done:7")["consumed"] == "1"
    wait_rec(d.spool, lambda r: kd(r).get("state") == "done", "kdump.state done")
    d.stop()  # the kdump kernel's RESET comes while no daemon listens
    d = bed["start"](",kdump_progress_timeout=2")
    d.wait_log(r"VM a: resuming open crash")
    time.sleep(2.5)  # no progress deadline after done, restart or not
    rec = records(d.spool)[0]
    assert rec["state"] == "kdump_running" and kd(rec)["state"] == "done", rec
    out = guest(bed["mbox"], "hello")  # the rebooted guest, on the new format
    assert out["accepted"] == "1", out
    rec = wait_rec(d.spool, closed, "the crash closed")
    assert kd(rec)["bytes"] == 7
    assert record_states(rec)[-2:] == ["kdump_finished", "closed"]
    assert rec["final_action_result"]["outcome"] == "not-needed"
    d.stop()


def test_a_kdump_session_flood_is_bounded(bed):
    d = bed["start"]()
    panic_into_kdump(bed, d)
    out = guest(bed["mbox"], "kdump-flood")
    assert out["rc"] == 0 and int(out["opened"]) >= 20, out
    assert d.proc.poll() is None
    time.sleep(0.3)
    rec = records(d.spool)[0]
    k = kd(rec)
    # One report per session, at most 16 a second recorded; the rest counted.
    assert 1 <= len(k["reports"]) <= 16 * 3, len(k["reports"])
    assert 1 <= k["sessions"] <= int(out["opened"])
    # Four sessions are noted in the history; the rest only counted.
    notes = [h for h in rec["history"] if h["reason"].startswith("kdump session")]
    assert len(notes) == min(4, k["sessions"]), notes
    assert k["state"] == "running" and k["linked"] is True
    # Still served: the guest boots and its session is accepted at once.
    out = guest(bed["mbox"], "hello")
    assert out["accepted"] == "1", out
    d.stop()


def test_check_config_and_errors():
    def run(*args):
        return subprocess.run([daemon_binary(), "--spool", "/nonexistent/pb", *args],
                              capture_output=True, text=True, timeout=30)

    p = run("--vm", "a,qmp=/q,mailbox=/m,kdump_session_timeout=30,kdump_progress_timeout=45",
            "--vm", "b,qmp=/r,mailbox=/n", "--check-config")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[2].endswith(",mailbox=/m,kdump_session_timeout=30,kdump_progress_timeout=45"), lines
    assert lines[3].endswith(",mailbox=/n"), lines  # defaults (120 s, 300 s) as before
    for spec, reason in (
        ("a,qmp=/q,kdump_session_timeout=30",
         "VM a: kdump_session_timeout times the kdump kernel's broker channel session, "
         "so it needs mailbox=PATH"),
        ("a,qmp=/q,mailbox=/m,kdump_progress_timeout=0",
         "kdump_progress_timeout must be whole seconds from 1 to 604800, not '0'"),
        ("a,qmp=/q,mailbox=/m,kdump_session_timeout=2m",
         "kdump_session_timeout must be whole seconds from 1 to 604800, not '2m'"),
    ):
        p = run("--vm", spec)
        assert p.returncode == 2 and reason in p.stderr, (spec, p.stderr)
