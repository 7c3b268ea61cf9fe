# SPDX-License-Identifier: MIT
"""GET /metrics of the real daemon after real events (a panic over the
broker channel, a kdump session into closed), checked by promtool; and the
TCP listener: a bearer token for everything but /metrics, the token file's
mode checked at start. Fake peers: FakeQMP plays QEMU, build/pbfakeguest
plays the guest on the mailbox file. Only 127.0.0.1 is ever bound."""

import os
import re
import shutil
import subprocess
import tempfile

import pytest

from tests.lib.daemon import SCALE, Daemon
from tests.lib.fakeguest import FAKEGUEST, guest, records
from tests.lib.fakeqmp import FakeQMP
from tests.lib.prom import (UnixHTTPConnection, free_port, promtool_check, request,
                            samples, tcp)
from tests.lib.wait import wait_record, wait_until

TOKEN = "pb-test-token-0123456789abcdef"


@pytest.fixture
def bed():
    """VM "a": FakeQMP (a system_reset answered with RESET), a mailbox, the API."""
    if not os.access(FAKEGUEST, os.X_OK):
        pytest.fail("build/pbfakeguest is not built: run make")
    work = tempfile.mkdtemp(prefix="pbm-")  # short: unix socket paths
    qmp = FakeQMP(os.path.join(work, "a.qmp"), "behaved", reset_on_system_reset=True)
    state = {"work": work, "qmp": qmp, "mbox": os.path.join(work, "a.mbox"),
             "api": os.path.join(work, "api.sock"), "daemons": []}

    def start(args=(), keys=",snapshot=never"):
        d = Daemon(work, [f"a,qmp={qmp.path},mailbox={state['mbox']}{keys}"],
                   args=["--api", state["api"], *args]).start()
        state["daemons"].append(d)
        return d

    state["start"] = start
    yield state
    for d in state["daemons"]:
        d.stop(check=False)
    qmp.close()
    shutil.rmtree(work, ignore_errors=True)


def scrape(api):
    status, headers, text = request(UnixHTTPConnection(api), "GET", "/metrics")
    assert status == 200, (status, text)
    assert headers["content-type"].startswith("text/plain; version=0.0.4"), headers
    return text


def wait_scrape(api, pred, what, timeout=15):
    last = {}

    def ok():
        last["text"] = scrape(api)
        return pred(samples(last["text"]))

    wait_until(ok, what, timeout, interval=0.1, describe=lambda: last.get("text", ""))
    return last["text"]


def test_metrics_after_a_panic_and_a_kdump_into_closed(bed):
    d = bed["start"]()
    bed["qmp"].wait_attached()
    api, mbox = bed["api"], bed["mbox"]
    wait_until(lambda: os.path.exists(api), "the API socket", 15)
    text = wait_scrape(api, lambda s: s.get('panicbroker_vm_attached{vm="a"}') == 1,
                       "vm a attached")
    promtool_check(text)
    s = samples(text)
    assert s['panicbroker_build_info{version="%s"}' % re.search(
        r'version="([^"]+)"', text).group(1)] == 1
    assert s["panicbroker_vms_supervised"] == 1 and s["panicbroker_vms_attached"] == 1
    assert s["panicbroker_crashes_open"] == 0
    assert s['panicbroker_kdump_outcomes_total{outcome="done"}'] == 0

    # A panic with its record and UNLOAD, then kdump: an open crash.
    assert guest(mbox, "hello")["accepted"] == "1"
    out = guest(mbox, "panic", "Kernel panic - not syncing: metrics test")
    assert out["rc"] == 0 and out["acked"] == "1", out
    bed["qmp"].emit("GUEST_CRASHLOADED", {"action": "run"})
    wait_record(lambda: records(d.spool), lambda r: r["state"] == "kdump_running",
                "the crash in kdump_running", 15)
    text = wait_scrape(api, lambda s: s["panicbroker_crashes_open"] == 1, "one open crash")
    promtool_check(text)

    # The kdump kernel reports done, the guest resets: closed.
    out = guest(mbox, "kdump-session", "auto", "start", "progress:50", "done:4096")
    assert out["consumed"] == "1", out
    wait_record(lambda: records(d.spool), lambda r: r.get("kdump", {}).get("state") == "done",
                "kdump.state done", 15)
    bed["qmp"].emit("RESET", {"guest": True, "reason": "guest-reset"})
    rec = wait_record(lambda: records(d.spool), lambda r: r["state"] == "closed",
                      "the crash closed", 15)
    text = wait_scrape(api, lambda s: s["panicbroker_crashes_open"] == 0 and
                       s.get('panicbroker_crashes_closed_total{outcome="not-needed"}') == 1,
                       "the crash closed in the metrics")
    promtool_check(text)
    s = samples(text)
    opened = {k: v for k, v in s.items() if k.startswith("panicbroker_vm_crashes_total{")}
    assert opened == {'panicbroker_vm_crashes_total{vm="a",event="%s"}' % e:
                      1 if e == rec["event"] else 0
                      for e in ("GUEST_PANICKED", "GUEST_CRASHLOADED", "PANIC_RECORD")}, opened
    assert s['panicbroker_kdump_outcomes_total{outcome="done"}'] == 1
    assert s['panicbroker_kdump_outcomes_total{outcome="failed"}'] == 0
    assert s['panicbroker_kdump_outcomes_total{outcome="hung"}'] == 0
    bucket = (rec.get("signature") or {}).get("bucket") or "none"
    buckets = {k: v for k, v in s.items() if k.startswith("panicbroker_crash_buckets_total{")}
    assert buckets == {'panicbroker_crash_buckets_total{bucket="%s"}' % bucket: 1}, buckets
    assert s['panicbroker_unloads_total{acked="true"}'] == 1
    assert s["panicbroker_unload_round_trip_seconds_count"] == 1
    assert s['panicbroker_record_writes_total{result="saved"}'] >= 3
    assert s['panicbroker_record_writes_total{result="failed"}'] == 0
    assert s["panicbroker_record_write_duration_seconds_count"] == \
        s['panicbroker_record_writes_total{result="saved"}']
    assert s["panicbroker_guest_malformed_total"] == 0
    assert s["panicbroker_spool_crashes"] == 1
    d.stop()


def test_tcp_needs_the_token_for_everything_but_metrics(bed):
    token_file = os.path.join(bed["work"], "token")
    with open(token_file, "w") as f:
        f.write(TOKEN + "\n")
    os.chmod(token_file, 0o600)
    port = free_port()
    d = bed["start"](["--listen", f"127.0.0.1:{port}", "--api-token-file", token_file])
    d.wait_log(rf"API on TCP 127\.0\.0\.1:{port}")
    bed["qmp"].wait_attached()

    # /metrics: no token needed, and promtool likes it.
    status, headers, text = tcp(port, "GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    promtool_check(text)
    assert tcp(port, "GET", "/metrics", token="wrong-token-wrong-token")[0] == 200

    # Everything else: 401 without the token and with a wrong one, before any
    # route is looked up (a path that does not exist too).
    asks = [("GET", "/v1/vms", None), ("GET", "/v1/crashes", None),
            ("GET", "/v1/crashes/20260101T000000.000000Z-a", None),
            ("GET", "/v1/crashes/20260101T000000.000000Z-a/vmcore", None),
            ("POST", "/v1/vms", '{"spec": "b,qmp=/nonexistent"}'),
            ("DELETE", "/v1/vms/a", None), ("GET", "/", None), ("GET", "/nothing", None),
            ("GET", "/metrics/", None), ("GET", "/metricsx", None)]
    for token in (None, "", "wrong-token-wrong-token", TOKEN + "x", TOKEN[:-1]):
        for method, path, body in asks:
            status, headers, text = tcp(port, method, path, token=token, body=body)
            assert status == 401, (method, path, token, status, text)
            assert headers["www-authenticate"].startswith('Bearer realm="panicbroker"'), headers
            if token:
                assert 'error="invalid_token"' in headers["www-authenticate"]
    # Other spellings of the scheme are no token either.
    status, _, _ = tcp(port, "GET", "/v1/vms", headers={"Authorization": f"Basic {TOKEN}"})
    assert status == 401

    # With the token: the API as on the socket.
    status, _, text = tcp(port, "GET", "/v1/vms", token=TOKEN)
    assert status == 200 and '"name":"a"' in text, text
    status, _, _ = tcp(port, "GET", "/v1/crashes", token=TOKEN)
    assert status == 200
    # Memory dumps are not served over HTTP: no route reads one.
    status, _, _ = tcp(port, "GET", "/v1/crashes/20260101T000000.000000Z-a/vmcore", token=TOKEN)
    assert status in (400, 404)
    # The unix socket keeps its own rule (its mode): no token there.
    status, _, _ = request(UnixHTTPConnection(bed["api"]), "GET", "/v1/vms")
    assert status == 200
    d.stop()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_a_token_file_others_may_read_stops_the_start(bed, mode):
    token_file = os.path.join(bed["work"], "token")
    with open(token_file, "w") as f:
        f.write(TOKEN + "\n")
    os.chmod(token_file, mode)
    d = bed["start"](["--listen", f"127.0.0.1:{free_port()}", "--api-token-file", token_file])
    rc = d.proc.wait(timeout=20 * SCALE)
    assert rc != 0
    assert f"has mode {mode:04o}: group and others may not read it" in d.log_text()
    d.stop(check=False)


def test_listen_without_a_token_file_stops_the_start(bed):
    port = free_port()
    d = bed["start"](["--listen", f"127.0.0.1:{port}", "--api-token-file",
                      os.path.join(bed["work"], "absent")])
    assert d.proc.wait(timeout=20 * SCALE) != 0
    assert "cannot open the API token file" in d.log_text()
    d.stop(check=False)
    d = bed["start"](["--listen", f"127.0.0.1:{port}"])
    assert d.proc.wait(timeout=20 * SCALE) == 2
    assert "--listen needs --api-token-file" in d.log_text()
    d.stop(check=False)


def test_listen_options_in_the_configuration(tmp_path):
    from tests.lib.daemon import daemon_binary

    def run(*args):
        return subprocess.run([daemon_binary(), *args], capture_output=True, text=True,
                              timeout=30 * SCALE)

    conf = tmp_path / "pb.conf"
    conf.write_text("listen 127.0.0.1:9877\napi-token-file /etc/panicbroker/api-token\n"
                    "vm a,qmp=/run/a.sock\n")
    p = run("--config", str(conf), "--check-config")
    assert p.returncode == 0, p.stderr
    assert "listen 127.0.0.1:9877\napi-token-file /etc/panicbroker/api-token\n" in p.stdout
    # The command line overrides the file; "off" turns the listener off.
    p = run("--config", str(conf), "--listen", "off", "--check-config")
    assert p.returncode == 0 and "listen" not in p.stdout, p.stdout
    for args, why in [(("--listen", "127.0.0.1"), "listen must be ADDR:PORT"),
                      (("--listen", "127.0.0.1:9877", "--no-api"), "it needs the API"),
                      (("--listen", "127.0.0.1:9877"), "--listen needs --api-token-file"),
                      (("--api-token-file", "token"), "api-token-file must be an absolute path")]:
        p = run("--vm", "a,qmp=/run/a.sock", *args, "--check-config")
        assert p.returncode == 2 and why in p.stderr, (args, p.stderr)


def test_a_listen_address_that_is_not_numeric_stops_the_start(bed):
    token_file = os.path.join(bed["work"], "token")
    with open(token_file, "w") as f:
        f.write(TOKEN + "\n")
    os.chmod(token_file, 0o600)
    d = bed["start"](["--listen", "localhost:9877", "--api-token-file", token_file])
    assert d.proc.wait(timeout=20 * SCALE) != 0
    assert "'localhost' is not a numeric IPv4 address or [IPv6] address" in d.log_text()
    d.stop(check=False)
