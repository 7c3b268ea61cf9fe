# SPDX-License-Identifier: MIT
"""panicbrokerd against failure: QEMU dying, hostile QMP peers, its own
restarts, and each final action. One kernel series is enough here: these
exercise the host side (the guest side runs on both in test_panic.py)."""

import os
import re

from tests.lib.daemon import record_states
from tests.lib.fakeqmp import FakeQMP

SERIES = "6.1"
BOOTED = r"^PBTEST: booted "


def closed(rec):
    return rec["state"] == "closed"


def test_qemu_killed_and_restarted_reattaches(attach):
    g, d = attach(SERIES, cmdline=["pbtest.kdump=0"])

    mark, console_mark = d.log_offset(), g.console_offset()
    g.kill()
    d.wait_log(r"VM vm1: QMP session ended: QEMU closed the QMP connection", 30, start=mark)
    g.restart()
    d.wait_log(r"VM vm1: attached to QMP", 30, start=mark)
    # Re-attached for real: the new QEMU got set-action, so a panic is held.
    g.wait_ready(90, start=console_mark)
    q = g.qmp()
    g.command("panic")
    assert q.wait_event("GUEST_PANICKED", 60)["data"]["action"] == "pause"
    rec = d.wait_record(closed, 60)
    assert rec["final_action_result"]["outcome"] == "applied"


def test_hostile_qmp_peers_do_not_stall_a_real_vm(tmp_path, make_guest, make_daemon):
    behaviours = {
        "malformed": r"bad QMP message \(malformed JSON",
        "oversized": r"QMP line longer than 65536 bytes",
        "unexpected": r"reply to id 424242, which was never sent",
        "silent": r"no QMP greeting within 5 s",
        "nonobject": r"bad QMP message \(message is a JSON array, not an object\)",
        "flood": r"more than 100 QMP events in a second, dropped",
    }
    fakes = {b: FakeQMP(str(tmp_path / f"fake-{b}.sock"), b) for b in behaviours}
    try:
        g = make_guest(SERIES, cmdline=["pbtest.kdump=0"])
        specs = [f"fake-{b},qmp={f.path}" for b, f in fakes.items()]
        specs.append(f"real,qmp={g.qmp_path},snapshot=never")
        d = make_daemon(specs)
        d.wait_log(r"VM real: attached to QMP", 30)
        for b, rx in behaviours.items():
            d.wait_log(rf"VM fake-{b}: QMP session ended: {rx}.*\(reconnecting\)", 30)
        g.wait_ready(90)
        q = g.qmp()
        mark = g.console_offset()
        g.command("panic")
        q.wait_event("GUEST_PANICKED", 60)
        rec = d.wait_record(closed, 60, vm="real")
        assert rec["vm"] == "real"
        g.wait_console(BOOTED, 120, start=mark)
        g.wait_ready(90, start=mark)
        # The daemon kept retrying the bad peers, and said so only once each.
        for b, f in fakes.items():
            if b != "silent":
                assert f.connections >= 2, (b, f.connections)
        log = d.log_text()
        for b, rx in behaviours.items():
            warnings = re.findall(rf"warning: VM fake-{b}: QMP session ended: {rx}", log)
            assert len(warnings) == 1, (b, warnings)
        assert [r["vm"] for r in d.records()] == ["real"]
    finally:
        for f in fakes.values():
            f.close()


def test_panic_while_the_daemon_is_down_is_found_at_attach(attach, make_daemon):
    g, d = attach(SERIES, cmdline=["pbtest.kdump=0"])
    d.stop()

    q = g.qmp()
    mark = g.console_offset()
    g.command("panic")
    # QEMU keeps the action the daemon set: the guest is held, not powered off.
    assert q.wait_event("GUEST_PANICKED", 60)["data"]["action"] == "pause"
    assert q.execute("query-status")["status"] == "guest-panicked"

    d2 = make_daemon([f"vm1,qmp={g.qmp_path},snapshot=never"])
    rec = d2.wait_record(closed, 60)
    assert rec["event"] == "GUEST_PANICKED"
    assert rec["qmp_timestamp"] is None
    assert "QMP event was missed" in rec["history"][0]["reason"]
    assert record_states(rec) == ["detected", "held", "closed"]
    g.wait_console(BOOTED, 120, start=mark)


def test_final_action_preserve_keeps_the_guest_paused(attach):
    g, d = attach(SERIES, ",final_action=preserve", cmdline=["pbtest.kdump=0"])
    q = g.qmp()
    g.command("panic")
    rec = d.wait_record(closed, 60)
    assert rec["final_action"] == "preserve"
    assert rec["final_action_result"]["outcome"] == "preserved"
    assert q.execute("query-status")["status"] == "guest-panicked"
    assert "RESET" not in q.event_names()


def test_a_preserved_panic_is_not_recorded_again_after_a_restart(attach, make_daemon):
    """The VM that preserve left in guest-panicked is the same panic when the
    daemon comes back to the same QEMU process: one record, not two."""
    g, d = attach(SERIES, ",final_action=preserve", cmdline=["pbtest.kdump=0"])
    q = g.qmp()
    g.command("panic")
    rec = d.wait_record(closed, 60)
    assert rec["final_action_result"]["outcome"] == "preserved"
    assert rec["vm_instance"]["pid"] == g.proc.pid
    d.stop()

    d2 = make_daemon([f"vm1,qmp={g.qmp_path},final_action=preserve,snapshot=never"])
    d2.wait_log(r"VM vm1: attached to QMP .*\(VM status guest-panicked\)", 30)
    d2.wait_log(r"VM vm1: still guest-panicked from a crash whose final action was preserve", 10)
    assert q.execute("query-status")["status"] == "guest-panicked"
    assert [r["id"] for r in d2.records()] == [rec["id"]]


def test_final_action_poweroff_ends_qemu(attach):
    g, d = attach(SERIES, ",final_action=poweroff", cmdline=["pbtest.kdump=0"])
    g.command("panic")
    rec = d.wait_record(closed, 60)
    assert rec["final_action_result"]["outcome"] == "applied"
    assert rec["final_action_result"]["detail"] == "QEMU quit"
    g.wait_exit(30)


def test_hung_kdump_times_out_and_survives_a_daemon_restart(tmp_path, make_guest, make_daemon):
    g = make_guest(SERIES, cmdline=["pbtest.kdump_hang=1"])
    spec = f"vm1,qmp={g.qmp_path},kdump_timeout=25,snapshot=never"
    d = make_daemon([spec])
    d.wait_log(r"VM vm1: attached to QMP", 30)
    g.wait_ready(90)
    mark = g.console_offset()
    g.command("panic")
    rec = d.wait_record(lambda r: r["state"] == "kdump_running", 60)
    m = g.wait_console(r"^PBTEST: kdump hanging", 120, start=mark)

    # The daemon goes away and comes back while kdump hangs: the open crash
    # and its deadline survive in the spool.
    d.stop()
    d2 = make_daemon([spec])
    d2.wait_log(r"VM vm1: resuming open crash " + re.escape(rec["id"]), 30)
    rec = d2.wait_record(closed, 90)
    assert record_states(rec)[:2] == ["detected", "kdump_running"]
    assert "kdump_timeout" in record_states(rec)
    assert rec["final_action_result"]["outcome"] == "applied"
    g.wait_console(BOOTED, 120, start=m.end())
    assert len(d2.records()) == 1
    assert not os.path.exists(os.path.join(d2.spool, "crashes", rec["id"], ".record.json.tmp"))


def test_daemon_log_for_a_vm_that_never_appears(tmp_path, make_daemon):
    d = make_daemon([f"ghost,qmp={tmp_path}/nothing.sock"])
    d.wait_log(r"warning: VM ghost: cannot connect to QMP socket .*nothing.sock: "
               r"No such file or directory \(retrying\)", 10)
    # Retries continue quietly (debug), not as a flood of warnings.
    d.wait_log(r"debug: VM ghost: cannot connect", 10)
    assert len(re.findall(r"warning: VM ghost", d.log_text())) == 1
