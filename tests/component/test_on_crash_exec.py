# SPDX-License-Identifier: MIT
"""--on-crash-exec PROGRAM: run with the record's path when a crash closes,
without a shell, with a timeout; every outcome in on-crash-exec.json beside
the record, every failure in the daemon's log. Real daemon, fake QMP peer."""

import json
import os
import time

import pytest

from tests.lib.fakeqmp import FakeQMP
from tests.lib.wait import wait_until


@pytest.fixture
def peer(short_dir):
    made = []

    def make(name):
        f = FakeQMP(os.path.join(short_dir, f"{name}.qmp"), "behaved", reset_on_system_reset=True)
        made.append(f)
        return f

    yield make
    for f in made:
        f.close()


def program(tmp_path, name, body):
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def side_file(d, rec, timeout=20):
    path = os.path.join(d.spool, "crashes", rec["id"], "on-crash-exec.json")

    def read():
        if not os.path.exists(path):
            return None
        with open(path) as f:
            return json.load(f)

    return wait_until(read, f"{path}", timeout, describe=lambda: d.log_text()[-3000:])


def crash(d, q):
    q.wait_attached()
    q.emit("GUEST_PANICKED", {"action": "pause"})
    return d.wait_record(lambda r: r["state"] == "closed", 15, "the crash closed")


def test_the_program_gets_the_record_path(make_daemon, peer, tmp_path):
    q = peer("vm1")
    seen = tmp_path / "seen"
    # It may read the record: it is complete and closed when the program runs.
    prog = program(tmp_path, "hook", f'printf "%s\\n" "$#" "$1" > {seen}.tmp\n'
                                     f'grep -q \'"state": "closed"\' "$1" && echo closed >> {seen}.tmp\n'
                                     f'mv {seen}.tmp {seen}\necho hello from the hook\n')
    d = make_daemon([f"vm1,qmp={q.path},snapshot=never"], args=["--on-crash-exec", prog])
    rec = crash(d, q)
    out = side_file(d, rec)
    record_path = os.path.join(d.spool, "crashes", rec["id"], "record.json")
    assert seen.read_text().splitlines() == ["1", record_path, "closed"]
    assert out["outcome"] == "ok" and out["exit_status"] == 0
    assert out["argv"] == [prog, record_path]
    assert out["output"] == "hello from the hook\n" and out["output_truncated"] is False
    assert out["timeout_seconds"] == 60 and 0 <= out["seconds"] < 30
    assert out["started_at"] <= out["ended_at"]
    assert "on-crash-exec" not in d.log_text().split("supervising", 1)[1]  # nothing to say
    # The record itself is untouched by it.
    with open(record_path) as f:
        assert json.load(f) == rec


def test_a_failing_program_is_logged_and_recorded(make_daemon, peer, tmp_path):
    q = peer("vm1")
    prog = program(tmp_path, "hook", 'echo "it went wrong" >&2\nexit 3\n')
    d = make_daemon([f"vm1,qmp={q.path},snapshot=never"], args=["--on-crash-exec", prog])
    rec = crash(d, q)
    out = side_file(d, rec)
    assert out["outcome"] == "failed" and out["exit_status"] == 3
    assert out["output"] == "it went wrong\n"
    d.wait_log(rf"warning: VM vm1: on-crash-exec {prog} for crash {rec['id']}: failed, "
               r"exit status 3: it went wrong")


def test_a_hanging_program_is_killed_at_its_timeout(make_daemon, peer, tmp_path):
    q = peer("vm1")
    prog = program(tmp_path, "hook", "echo started\nexec sleep 60\n")
    d = make_daemon([f"vm1,qmp={q.path},snapshot=never"],
                    args=["--on-crash-exec", prog, "--on-crash-exec-timeout", "1"])
    rec = crash(d, q)
    t0 = time.monotonic()
    out = side_file(d, rec)
    assert time.monotonic() - t0 < 15
    assert out["outcome"] == "timeout" and out["exit_status"] is None
    assert out["timeout_seconds"] == 1 and 0.9 <= out["seconds"] < 10
    assert out["output"] == "started\n"
    d.wait_log(rf"on-crash-exec {prog} for crash {rec['id']}: timeout")
    # The loop was never held: the daemon answered everything meanwhile and
    # stops cleanly (the fixture checks).


def test_a_missing_program_is_logged_at_start_and_at_each_crash(make_daemon, peer, tmp_path):
    q = peer("vm1")
    prog = str(tmp_path / "no-such-hook")
    d = make_daemon([f"vm1,qmp={q.path},snapshot=never"], args=["--on-crash-exec", prog])
    d.wait_log(rf"warning: on-crash-exec {prog}: No such file or directory; it will fail "
               r"until it is there")
    rec = crash(d, q)
    out = side_file(d, rec)
    assert out["outcome"] == "failed" and out["exit_status"] == 127
    assert f"cannot run {prog}: No such file or directory" in out["output"]
    d.wait_log(rf"on-crash-exec {prog} for crash {rec['id']}: failed, exit status 127: "
               rf"cannot run {prog}: No such file or directory")


def test_a_relative_program_is_refused(make_daemon, tmp_path):
    import subprocess
    from tests.lib.daemon import daemon_binary

    p = subprocess.run([daemon_binary(), "--no-api", "--spool", str(tmp_path / "s"),
                        "--vm", "a,qmp=/x", "--on-crash-exec", "hook", "-n"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2
    assert "on-crash-exec must be an absolute path" in p.stderr
    p = subprocess.run([daemon_binary(), "--no-api", "--spool", str(tmp_path / "s"),
                        "--vm", "a,qmp=/x", "--on-crash-exec", "/bin/true",
                        "--on-crash-exec-timeout", "5", "-n"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert "on-crash-exec /bin/true\non-crash-exec-timeout 5\n" in p.stdout
