# SPDX-License-Identifier: MIT
"""End to end: real Debian kernels in real QEMU, the real module, the real daemon.

Each test boots a test-bed guest (tests/guest), attaches panicbrokerd to its
QMP socket and watches three independent witnesses: the guest's serial
console, a second QMP monitor of the same QEMU (qmp-test.sock), and the crash
records the daemon leaves in its spool (read through pbctl).
"""

import re


from tests.lib.daemon import record_states

CRASH_EVENTS = ("GUEST_PANICKED", "GUEST_CRASHLOADED")
TIER_LINE = r"panicbroker: hypervisor tier"
BOOTED = r"^PBTEST: booted "
KDUMP_INIT = r"^PBTEST: kdump init reached"


def crash_events(q):
    q.drain()
    return [e for e in q.events if e.get("event") in CRASH_EVENTS]


def closed(rec):
    return rec["state"] == "closed"


def test_kdump_loaded_is_caught_before_kdump(series, attach):
    g, d = attach(series)
    assert re.search(r"^PBTEST: kdump loaded", g.console_text(), re.M)
    q = g.qmp()
    mark = g.console_offset()
    g.command("panic")

    ev = q.wait_event("GUEST_CRASHLOADED", 60)
    assert ev["data"]["action"] == "run"
    rec = d.wait_record(lambda r: True, 30, "a crash record")
    assert rec["vm"] == "vm1"
    assert rec["event"] == "GUEST_CRASHLOADED"
    assert rec["kdump_loaded"] is True
    assert rec["final_action"] == "restart"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", rec["detected_at"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", rec["qmp_timestamp"])

    # The tier did not break kdump: the crash kernel reaches its init ...
    m = g.wait_console(KDUMP_INIT, 120, start=mark)
    console = g.console_text()[mark:m.end()]
    # ... and ran exactly once, before it.
    assert len(re.findall(TIER_LINE, console)) == 1, console[-3000:]

    # The kdump kernel reboots the guest; the crash closes without a reset
    # from the host, and the guest boots again.
    g.wait_console(BOOTED, 120, start=m.end())
    rec = d.wait_record(closed, 60, "the crash closed")
    assert rec["final_action_result"]["outcome"] == "not-needed"
    assert record_states(rec) == ["detected", "kdump_running", "kdump_finished", "closed"]
    assert rec["duplicate_events"] == 0
    assert len(crash_events(q)) == 1
    assert len(d.records()) == 1


def test_no_kdump_is_held_recorded_then_restarted(series, attach):
    g, d = attach(series, cmdline=["pbtest.kdump=0"])
    q = g.qmp()
    mark = g.console_offset()
    g.command("panic")

    ev = q.wait_event("GUEST_PANICKED", 60)
    assert ev["data"]["action"] == "pause", "set-action panic=pause was not applied"
    q.wait_event("STOP", 30)
    rec = d.wait_record(closed, 60, "the crash closed")
    assert rec["event"] == "GUEST_PANICKED"
    assert rec["kdump_loaded"] is False
    assert record_states(rec) == ["detected", "held", "closed"]
    assert rec["final_action_result"]["outcome"] == "applied"
    q.wait_event("RESET", 30)
    # It boots again, and is running.
    g.wait_console(BOOTED, 120, start=mark)
    g.wait_ready(90, start=mark)
    assert q.execute("query-status")["status"] == "running"
    assert len(crash_events(q)) == 1


def test_oops_with_kdump_is_caught(series, attach):
    g, d = attach(series)
    q = g.qmp()
    mark = g.console_offset()
    g.command("oops")
    q.wait_event("GUEST_CRASHLOADED", 60)
    m = g.wait_console(KDUMP_INIT, 120, start=mark)
    console = g.console_text()[mark:m.end()]
    assert re.search(r"Oops|BUG: kernel NULL pointer dereference", console)
    assert len(re.findall(TIER_LINE, console)) == 1, console[-3000:]
    rec = d.wait_record(lambda r: True, 30)
    assert rec["event"] == "GUEST_CRASHLOADED" and rec["kdump_loaded"] is True


def test_control_without_module_the_host_hears_nothing(series, attach):
    """The gap panicbroker closes: stock pvpanic with kdump loaded is silent."""
    g, d = attach(series, cmdline=["pbtest.module=0"])
    assert re.search(r"^PBTEST: kdump loaded", g.console_text(), re.M)
    q = g.qmp()
    mark = g.console_offset()
    g.command("panic")
    m = g.wait_console(KDUMP_INIT, 120, start=mark)
    g.wait_console(BOOTED, 120, start=m.end())
    assert crash_events(q) == []
    assert not re.search(TIER_LINE, g.console_text()[mark:])
    assert d.records() == []


def test_reload_twenty_times_then_panic_is_caught_once(series, attach):
    g, d = attach(series)
    g.command("reload 20")
    g.wait_console(r"^PBTEST: reload done 20$", 120)
    q = g.qmp()
    mark = g.console_offset()
    g.command("panic")
    q.wait_event("GUEST_CRASHLOADED", 60)
    m = g.wait_console(KDUMP_INIT, 120, start=mark)
    assert len(re.findall(TIER_LINE, g.console_text()[mark:m.end()])) == 1
    g.wait_console(BOOTED, 120, start=m.end())
    d.wait_record(closed, 60)
    assert len(crash_events(q)) == 1
    assert len(d.records()) == 1


def test_pci_pvpanic_without_the_distro_driver(series, attach):
    g, d = attach(series, pvpanic="pci",
                      cmdline=["pbtest.distro_pvpanic=0"])
    q = g.qmp()
    mark = g.console_offset()
    g.command("panic")
    q.wait_event("GUEST_CRASHLOADED", 60)
    g.wait_console(KDUMP_INIT, 120, start=mark)
    rec = d.wait_record(lambda r: True, 30)
    assert rec["event"] == "GUEST_CRASHLOADED"
