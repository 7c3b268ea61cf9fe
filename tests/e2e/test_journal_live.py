# SPDX-License-Identifier: MIT
"""A live panic in the journal: a real 6.1 guest with the module and the
broker channel panics (a NULL dereference, kdump loaded); within a second
of its record, the crash's detection entry is in the journal with its
signature, and within a second of the closed record, its close entry with
the kdump outcome. The daemon runs beside a private journald
(tests/lib/journal.py); skipped, saying why, where that cannot run."""

import os
import time

import pytest

from tests.lib.daemon import SCALE, Daemon
from tests.lib.journal import PrivateJournal, message_ids, namespace_usable

RELOADED = r"panicbroker: mailbox: crash kernel loaded; opening a new session"
ACCEPTED = r"panicbroker: mailbox: session ([0-9a-f]{16}) accepted by "


def wait_entry(journal, mid, crash_id, since, what):
    """The entry, polled until a second after @since (monotonic)."""
    while True:
        got = journal.entries(MESSAGE_ID=mid, PANICBROKER_CRASH_ID=crash_id)
        if got:
            return got
        assert time.monotonic() - since < 1.0 * SCALE, \
            f"no {what} entry in the journal a second after the record"
        time.sleep(0.05)


def test_a_live_panic_is_in_the_journal_within_a_second(make_guest, tmp_path):
    why = namespace_usable()
    if why:
        pytest.skip(f"no private journald for this test: {why}")
    ids = message_ids()
    workdir = str(tmp_path)
    journal = PrivateJournal(os.path.join(workdir, "pj"))
    mbox = tmp_path / "mailbox"
    g = make_guest("6.1", mailbox=mbox)
    d = Daemon(workdir, [f"vm1,qmp={g.qmp_path},mailbox={mbox},snapshot=never"])
    d.argv = journal.wrap(d.argv)
    d.start()
    try:
        d.wait_log(r"VM vm1: attached to QMP", 30)
        g.wait_ready(90)
        m = g.wait_console(RELOADED, 30)
        g.wait_console(ACCEPTED, 30, start=m.end())

        g.command("oops null")
        rec = d.wait_record(lambda r: True, 120, "the crash's record")
        seen = time.monotonic()
        opened = wait_entry(journal, ids["CRASH_DETECTED"], rec["id"], seen, "detection")
        rec = d.wait_record(lambda r: r["state"] == "closed", 300, "the crash closed")
        seen = time.monotonic()
        closed = wait_entry(journal, ids["CRASH_CLOSED"], rec["id"], seen, "close")
    finally:
        d.stop(check=True)
        journal.stop()

    assert len(opened) == 1 and len(closed) == 1
    o, c = opened[0], closed[0]
    sig = rec["signature"]
    assert sig["kind"] == "null-deref"
    for e in (o, c):
        assert e["PANICBROKER_VM"] == "vm1"
        assert e["PANICBROKER_EVENT"] == rec["event"]
        assert e["PANICBROKER_SIGNATURE_BUCKET"] == sig["bucket"]
        assert e["PANICBROKER_SIGNATURE_TITLE"] == sig["title"]
        assert e["PANICBROKER_RECORD"].endswith(f"/crashes/{rec['id']}/record.json")
    assert sig["title"] in o["MESSAGE"]
    assert c["PANICBROKER_FINAL_OUTCOME"] == rec["final_action_result"]["outcome"]
    kdump = (rec.get("kdump") or {}).get("state")
    assert c.get("PANICBROKER_KDUMP_OUTCOME") == kdump, (rec.get("kdump"), c)
