# SPDX-License-Identifier: MIT
"""Crashes into the journal (hostd/journal.h): one structured entry when a
crash is detected and one when it closes, read back with journalctl -o
json from a private journald (tests/lib/journal.py; skipped, saying why,
where it cannot run); the message catalog (systemd/panicbroker.catalog)
parses and documents every MESSAGE_ID the daemon sends.
"""

import json
import os
import shutil
import subprocess
import time

import pytest

from tests.lib.daemon import SCALE, TOP, Daemon
from tests.lib.fakeguest import FAKEGUEST, guest
from tests.lib.fakeqmp import FakeQMP
from tests.lib.journal import PrivateJournal, message_ids, namespace_usable
from tests.lib.wait import wait_until

CATALOG = os.path.join(TOP, "systemd", "panicbroker.catalog")


@pytest.fixture
def journal(short_dir):
    why = namespace_usable()
    if why:
        pytest.skip(f"no private journald for this test: {why}")
    j = PrivateJournal(short_dir)
    yield j
    j.stop()


def test_crash_detection_and_close_are_one_entry_each(journal, short_dir):
    if not os.access(FAKEGUEST, os.X_OK):
        pytest.fail("build/pbfakeguest is not built: run make")
    ids = message_ids()
    q = FakeQMP(os.path.join(short_dir, "a.qmp"), "behaved", reset_on_system_reset=True)
    mbox = os.path.join(short_dir, "a.mbox")
    d = Daemon(short_dir, [f"a,qmp={q.path},mailbox={mbox},snapshot=never"])
    d.argv = journal.wrap(d.argv)
    d.start()
    try:
        q.wait_attached(timeout=20)
        # A crash with a panic record (so a signature), through kdump to its close.
        assert guest(mbox, "hello")["accepted"] == "1"
        # The panic record is what matters here, not how fast UNLOAD is acked.
        assert guest(mbox, "panic", "Kernel panic - not syncing: journal me")["rc"] == 0
        q.emit("GUEST_CRASHLOADED", {"action": "run"})
        d.wait_record(lambda r: r["state"] == "kdump_running", 15, "the crash in kdump")
        for state in ("start", "done"):
            assert guest(mbox, "kdump-status", state)["consumed"] == "1"
        d.wait_log(r"the kdump kernel reported done", 15)
        q.emit("RESET", {"guest": True, "reason": "guest-reset"})
        rec = d.wait_record(lambda r: r["state"] == "closed", 15, "the crash closed")
        # A second crash, without a panic record, closed by the final action.
        time.sleep(1.1)
        q.emit("GUEST_PANICKED", {"action": "pause"})
        rec2 = d.wait_record(lambda r: r["id"] != rec["id"] and r["state"] == "closed", 15,
                             "the second crash closed")

        def both():
            got = journal.entries(SYSLOG_IDENTIFIER="panicbrokerd")
            return got if len(got) >= 4 else None

        entries = wait_until(both, "four panicbrokerd entries in the journal", 10 * SCALE,
                             describe=lambda: json.dumps(journal.entries(), indent=1)[-3000:])
    finally:
        d.stop(check=True)
        q.close()

    assert len(entries) == 4, entries
    by = {(e["PANICBROKER_CRASH_ID"], e["MESSAGE_ID"]): e for e in entries}
    opened = by[(rec["id"], ids["CRASH_DETECTED"])]
    closed = by[(rec["id"], ids["CRASH_CLOSED"])]
    sig = rec["signature"]
    record_path = os.path.join(d.spool, "crashes", rec["id"], "record.json")
    for e in (opened, closed):
        assert e["PANICBROKER_VM"] == "a"
        assert e["PANICBROKER_EVENT"] == "GUEST_CRASHLOADED"
        assert e["PANICBROKER_SIGNATURE_BUCKET"] == sig["bucket"]
        assert e["PANICBROKER_SIGNATURE_TITLE"] == sig["title"] == "panic: journal me"
        assert e["PANICBROKER_SIGNATURE_KIND"] == sig["kind"]
        assert e["PANICBROKER_RECORD"] == record_path
        assert e["_TRANSPORT"] == "journal"
    assert opened["PRIORITY"] == "4"
    assert opened["MESSAGE"] == f"VM a crashed (GUEST_CRASHLOADED, panic: journal me): crash {rec['id']}"
    assert "PANICBROKER_FINAL_OUTCOME" not in opened
    assert closed["PRIORITY"] == "5"
    assert closed["PANICBROKER_STATE"] == "closed"
    assert closed["PANICBROKER_FINAL_OUTCOME"] == rec["final_action_result"]["outcome"] == "not-needed"
    assert closed["PANICBROKER_KDUMP_OUTCOME"] == rec["kdump"]["state"] == "done"
    assert closed["MESSAGE"] == (f"VM a: crash {rec['id']} closed, not-needed; kdump done; "
                                 "panic: journal me")

    opened2 = by[(rec2["id"], ids["CRASH_DETECTED"])]
    closed2 = by[(rec2["id"], ids["CRASH_CLOSED"])]
    assert opened2["PANICBROKER_EVENT"] == closed2["PANICBROKER_EVENT"] == "GUEST_PANICKED"
    assert "PANICBROKER_SIGNATURE_BUCKET" not in opened2
    assert "PANICBROKER_KDUMP_OUTCOME" not in closed2
    assert closed2["PANICBROKER_FINAL_OUTCOME"] == rec2["final_action_result"]["outcome"]


def test_a_failed_on_crash_exec_is_an_entry_too(journal, short_dir, tmp_path):
    ids = message_ids()
    q = FakeQMP(os.path.join(short_dir, "a.qmp"), "behaved", reset_on_system_reset=True)
    prog = str(tmp_path / "missing-hook")
    d = Daemon(short_dir, [f"a,qmp={q.path},snapshot=never"], args=["--on-crash-exec", prog])
    d.argv = journal.wrap(d.argv)
    d.start()
    try:
        q.wait_attached(timeout=20)
        q.emit("GUEST_PANICKED", {"action": "pause"})
        rec = d.wait_record(lambda r: r["state"] == "closed", 15, "the crash closed")
        got = wait_until(lambda: journal.entries(MESSAGE_ID=ids["EXEC_FAILED"]),
                         "the on-crash-exec entry", 20 * SCALE)
    finally:
        d.stop(check=True)
        q.close()
    e = got[0]
    assert e["PANICBROKER_CRASH_ID"] == rec["id"] and e["PANICBROKER_VM"] == "a"
    assert e["PANICBROKER_EXEC_PROGRAM"] == prog
    assert e["PANICBROKER_EXEC_OUTCOME"] == "failed"
    assert "No such file or directory" in e["MESSAGE"]


def test_the_catalog_documents_every_message_id(tmp_path):
    """journalctl builds a catalog database from the file (in a private
    root) and lists each id the daemon sends, and no other."""
    if not shutil.which("journalctl"):
        pytest.skip("journalctl is not installed")
    root = tmp_path / "root"
    (root / "usr/lib/systemd/catalog").mkdir(parents=True)
    shutil.copy(CATALOG, root / "usr/lib/systemd/catalog/panicbroker.catalog")
    p = subprocess.run(["journalctl", f"--root={root}", "--update-catalog"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    p = subprocess.run(["journalctl", f"--root={root}", "--list-catalog"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    listed = {line.split()[0] for line in p.stdout.splitlines() if line.strip()}
    assert listed == set(message_ids().values())
    for mid in message_ids().values():
        p = subprocess.run(["journalctl", f"--root={root}", "--dump-catalog", mid],
                           capture_output=True, text=True, timeout=30)
        assert "Subject: " in p.stdout and "Defined-By: panicbroker" in p.stdout
