# SPDX-License-Identifier: MIT
"""The local API (hostd/api.h) of the real daemon, with fake QMP peers:
pbctl status / attach / detach, and requests that are malformed, oversized
or slow while the daemon goes on catching a panic."""

import json
import os
import socket
import stat
import subprocess
import time

import pytest

from tests.lib.daemon import SCALE, daemon_binary, pbctl_binary
from tests.lib.fakeqmp import FakeQMP
from tests.lib.wait import wait_until

# The daemon's default idle timeout for an API connection (API_DEFAULT_CONNECTION_TIMEOUT_SEC).
API_IDLE_SEC = 5


def pbctl(api, *args, spool=None):
    argv = [pbctl_binary(), "--api", api]
    if spool:
        argv += ["--spool", spool]
    return subprocess.run(argv + list(args), capture_output=True, text=True, timeout=60)


def http(api, method, path, body=None, headers=(), raw=None, timeout=10):
    """One request on a fresh connection: (status, headers text, parsed JSON or None).
    status 0: the server closed the connection without a reply."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout * SCALE)
    s.connect(api)
    if raw is None:
        data = body.encode() if isinstance(body, str) else (body or b"")
        head = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        for h in headers:
            head += h + "\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        raw = head.encode() + b"\r\n" + data
    try:
        s.sendall(raw)
    except (BrokenPipeError, ConnectionResetError):
        pass  # refused before it read everything: the reply tells why
    reply = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
    except ConnectionResetError:
        pass
    s.close()
    if not reply:
        return 0, "", None
    head, _, payload = reply.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    try:
        parsed = json.loads(payload) if payload else None
    except ValueError:
        parsed = None
    return status, head.decode(errors="replace"), parsed


def wait_socket(d, path, timeout=15):
    def ready():
        if d.proc.poll() is not None:
            raise AssertionError(f"panicbrokerd exited ({d.proc.returncode}):\n{d.log_text()[-3000:]}")
        return os.path.exists(path)

    wait_until(ready, f"API socket {path}", timeout, describe=lambda: d.log_text()[-3000:])


def status_json(api):
    p = pbctl(api, "status", "--json")
    assert p.returncode == 0, p.stderr
    return {vm["name"]: vm for vm in json.loads(p.stdout)}


def wait_status(api, predicate, what, timeout=20):
    def shown():
        vms = status_json(api)
        return vms if predicate(vms) else None

    return wait_until(shown, f"{what} in pbctl status", timeout, interval=0.1,
                      describe=lambda: json.dumps(status_json(api), indent=1))


@pytest.fixture
def fake(short_dir):
    made = []

    def make(name, behaviour="behaved"):
        f = FakeQMP(os.path.join(short_dir, f"{name}.qmp"), behaviour)
        made.append(f)
        return f

    yield make
    for f in made:
        f.close()


def test_status_shows_an_attached_vm_and_one_whose_qemu_is_not_up(make_daemon, fake, short_dir):
    a = fake("vmA")
    api = os.path.join(short_dir, "api.sock")
    d = make_daemon([f"vmA,qmp={a.path}", f"vmB,qmp={short_dir}/absent.qmp"], args=["--api", api])
    wait_socket(d, api)
    a.wait_attached()
    vms = wait_status(api, lambda v: v.get("vmA", {}).get("attach_state") == "attached",
                      "vmA attached")
    assert set(vms) == {"vmA", "vmB"}
    assert vms["vmB"]["attach_state"] != "attached"
    for vm in vms.values():
        assert vm["backend"] == "qmp"
        assert vm["open_crash"] is None
    p = pbctl(api, "status")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].split()[:3] == ["VM", "BACKEND", "ATTACH"]
    rows = {ln.split()[0]: ln.split() for ln in lines[1:]}
    assert rows["vmA"][1:3] == ["qmp", "attached"]
    assert rows["vmB"][2] == vms["vmB"]["attach_state"]

    # A panic shows as vmA's open crash.
    a.emit("GUEST_PANICKED", {"action": "pause"})
    rec = d.wait_record(lambda r: r["vm"] == "vmA", what="vmA's crash")
    vms = wait_status(api, lambda v: v["vmA"]["open_crash"] is not None or
                      v["vmA"].get("last_crash") == rec["id"], "vmA's crash")
    assert vms["vmA"]["last_crash"] == rec["id"]


def test_attach_and_detach_through_pbctl(make_daemon, fake, short_dir):
    a, c = fake("vmA"), fake("vmC")
    api = os.path.join(short_dir, "api.sock")
    d = make_daemon([f"vmA,qmp={a.path}"], args=["--api", api])
    wait_socket(d, api)

    p = pbctl(api, "attach", f"vmC,qmp={c.path}")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "attached vmC"
    c.wait_attached()
    wait_status(api, lambda v: v.get("vmC", {}).get("attach_state") == "attached", "vmC attached")

    # The new VM catches a panic like a configured one; into kdump, it stays open.
    c.emit("GUEST_CRASHLOADED", {"action": "run"})
    rec = d.wait_record(lambda r: r["vm"] == "vmC" and r["state"] == "kdump_running",
                        what="vmC's crash, kdump running")
    wait_status(api, lambda v: v["vmC"]["open_crash"] == {"id": rec["id"], "state": "kdump_running"},
                "vmC's open crash")

    p = pbctl(api, "attach", f"vmC,qmp={c.path}2")
    assert p.returncode == 1 and "(HTTP 409)" in p.stderr, p
    p = pbctl(api, "attach", "vmD")
    assert p.returncode == 1 and "qmp=PATH is required" in p.stderr and "(HTTP 400)" in p.stderr, p
    p = pbctl(api, "attach", "vmD,qmp=/q,final_action=reboot")
    assert p.returncode == 1 and "restart, poweroff or preserve" in p.stderr, p

    p = pbctl(api, "detach", "vmC")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "detached vmC"
    assert set(status_json(api)) == {"vmA"}
    # The open crash stays in the spool, not closed by the detach.
    recs = d.records(vm="vmC")
    assert [r["id"] for r in recs] == [rec["id"]]
    assert recs[0]["state"] != "closed"
    p = pbctl(api, "detach", "vmC")
    assert p.returncode == 1 and "(HTTP 404)" in p.stderr, p
    p = pbctl(api, "detach", "../x")
    assert p.returncode == 2 and "not a VM name" in p.stderr, p

    # Attached again, it picks its open crash up from the spool (no new record).
    p = pbctl(api, "attach", f"vmC,qmp={c.path}")
    assert p.returncode == 0, p.stderr
    wait_status(api, lambda v: (v.get("vmC", {}).get("open_crash") or {}).get("id") == rec["id"],
                "vmC's crash resumed")


def test_bad_requests_and_a_slow_client_while_a_panic_is_caught(make_daemon, fake, short_dir):
    a = fake("vmA")
    api = os.path.join(short_dir, "api.sock")
    d = make_daemon([f"vmA,qmp={a.path},final_action=preserve"], args=["--api", api])
    wait_socket(d, api)
    a.wait_attached()

    # A slow client: half a request, then nothing.
    slow = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    slow.connect(api)
    slow.sendall(b"GET /v1/vms HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
    slow_since = time.monotonic()

    # Meanwhile: malformed, oversized, unknown.
    st, _, body = http(api, "POST", "/v1/vms", body='{"spec": "vmX,qmp=/q"')
    assert st == 400 and "malformed JSON" in body["error"], (st, body)
    st, _, body = http(api, "POST", "/v1/vms", body="[1, 2]")
    assert st == 400 and "JSON object" in body["error"], (st, body)
    st, _, body = http(api, "POST", "/v1/vms", body='{"spec": "' + "a" * (128 * 1024) + '"}')
    assert st == 413 and "larger than" in body["error"], (st, body)
    st, _, _ = http(api, "GET", "/v1/vms", headers=["X-Pad: " + "p" * (64 * 1024)])
    assert st in (0, 431), st
    st, _, body = http(api, "GET", "/v1/crashes?limit=5000")
    assert st == 400 and "limit must be" in body["error"], (st, body)
    st, hdrs, body = http(api, "PATCH", "/v1/vms")
    assert st == 405 and "Allow: GET, POST" in hdrs, (st, hdrs)
    st, _, body = http(api, "GET", "/v1/nothing")
    assert st == 404 and body == {"error": "no such resource"}, (st, body)

    # The panic is caught while the slow client still holds its connection.
    a.emit("GUEST_PANICKED", {"action": "pause"})
    rec = d.wait_record(lambda r: r["vm"] == "vmA" and r["state"] == "closed",
                        what="vmA's crash, closed (preserve)")

    st, _, crashes = http(api, "GET", "/v1/crashes?vm=vmA&limit=1")
    assert st == 200 and [c["id"] for c in crashes] == [rec["id"]], (st, crashes)
    assert crashes[0]["final_action_outcome"] == "preserved", crashes
    st, _, whole = http(api, "GET", f"/v1/crashes/{rec['id']}")
    assert st == 200 and whole["id"] == rec["id"] and "history" in whole, (st, whole)
    st, _, body = http(api, "GET", "/v1/crashes/20000101T000000.000000Z-none")
    assert st == 404, (st, body)

    # The slow client is dropped after the idle timeout, unanswered.
    slow.settimeout((API_IDLE_SEC + 10) * SCALE)
    assert slow.recv(4096) == b""
    waited = time.monotonic() - slow_since
    assert API_IDLE_SEC - 1 <= waited <= (API_IDLE_SEC + 10) * SCALE, waited
    slow.close()

    # And the API still answers.
    assert set(status_json(api)) == {"vmA"}


def test_many_stalled_clients_do_not_stop_panic_detection(make_daemon, fake, short_dir):
    a = fake("vmA")
    api = os.path.join(short_dir, "api.sock")
    d = make_daemon([f"vmA,qmp={a.path},final_action=preserve"], args=["--api", api])
    wait_socket(d, api)
    a.wait_attached()
    # More stalled connections than the API takes (API_DEFAULT_MAX_CONNECTIONS).
    stalled = []
    for _ in range(48):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(api)
            s.send(b"GET /v1/vms HTTP/1.1\r\n")
        except (BlockingIOError, ConnectionRefusedError, ConnectionResetError, BrokenPipeError):
            pass
        stalled.append(s)
    a.emit("GUEST_PANICKED", {"action": "pause"})
    d.wait_record(lambda r: r["vm"] == "vmA", timeout=10, what="vmA's crash")
    for s in stalled:
        s.close()
    # Once they are gone the API serves again.
    wait_status(api, lambda v: "vmA" in v, "vmA", timeout=API_IDLE_SEC + 10)


def test_socket_mode_stale_socket_and_a_second_daemon(make_daemon, fake, short_dir, tmp_path):
    a = fake("vmA")
    api = os.path.join(short_dir, "api.sock")
    # A stale socket from a daemon that died: nobody listens, it is replaced.
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(api)
    stale.close()
    d = make_daemon([f"vmA,qmp={a.path}"], args=["--api", api])
    wait_socket(d, api)
    a.wait_attached()
    wait_status(api, lambda v: "vmA" in v, "vmA")
    st = os.stat(api)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660, oct(st.st_mode)

    # A second daemon on the same socket refuses to start and leaves it alone.
    other = tmp_path / "other"
    other.mkdir()
    p = subprocess.run([daemon_binary(), "--spool", str(other / "spool"),
                        "--vm", f"vmZ,qmp={short_dir}/z.qmp", "--api", api],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "another daemon is listening on" in p.stderr, p
    assert set(status_json(api)) == {"vmA"}

    d.stop()
    assert not os.path.exists(api)


def test_pbctl_without_the_daemon(make_daemon, fake, short_dir):
    a = fake("vmA")
    api = os.path.join(short_dir, "api.sock")
    d = make_daemon([f"vmA,qmp={a.path},final_action=preserve"], args=["--api", api])
    wait_socket(d, api)
    a.wait_attached()
    a.emit("GUEST_PANICKED", {"action": "pause"})
    rec = d.wait_record(lambda r: r["vm"] == "vmA", what="vmA's crash")
    d.stop()

    p = pbctl(api, "status")
    assert p.returncode == 1, p
    assert p.stderr.strip() == (f"pbctl: cannot reach panicbrokerd at {api}: "
                                "No such file or directory; is it running?"), p.stderr
    # The spool still answers.
    p = pbctl(api, "list", spool=d.spool)
    assert p.returncode == 0 and rec["id"] in p.stdout, p
    p = pbctl(api, "show", rec["id"], spool=d.spool)
    assert p.returncode == 0 and json.loads(p.stdout)["id"] == rec["id"], p
