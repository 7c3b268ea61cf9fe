# SPDX-License-Identifier: MIT
"""A live panic in /metrics: a real 6.1 guest with the module and the broker
channel panics (a NULL dereference); within a second of its record the
crash is counted in /metrics, read over the TCP listener without a token,
with its signature bucket, and promtool accepts the text. The API's crash
listing over TCP needs the token."""

import os
import time


from tests.lib.prom import free_port, promtool_check, samples, tcp
from tests.lib.wait import SCALE

RELOADED = r"panicbroker: mailbox: crash kernel loaded; opening a new session"
ACCEPTED = r"panicbroker: mailbox: session ([0-9a-f]{16}) accepted by "
TOKEN = "e2e-token-0123456789abcdef0123456789"


def test_a_live_panic_is_in_metrics_within_a_second(make_guest, make_daemon, tmp_path, short_dir):
    mbox = tmp_path / "mailbox"
    token_file = os.path.join(short_dir, "token")
    with open(token_file, "w") as f:
        f.write(TOKEN + "\n")
    os.chmod(token_file, 0o600)
    port = free_port()

    g = make_guest("6.1", mailbox=mbox)
    d = make_daemon([f"vm1,qmp={g.qmp_path},mailbox={mbox},snapshot=never"],
                    args=["--api", os.path.join(short_dir, "api.sock"),
                          "--listen", f"127.0.0.1:{port}", "--api-token-file", token_file])
    d.wait_log(r"VM vm1: attached to QMP", 30)
    g.wait_ready(90)
    m = g.wait_console(RELOADED, 30)
    g.wait_console(ACCEPTED, 30, start=m.end())

    status, _, text = tcp(port, "GET", "/metrics")
    assert status == 200
    s = samples(text)
    assert s['panicbroker_vm_attached{vm="vm1"}'] == 1
    assert sum(v for k, v in s.items() if k.startswith("panicbroker_vm_crashes_total{")) == 0

    g.command("oops null")
    rec = d.wait_record(lambda r: (r.get("signature") or {}).get("bucket"), 120,
                        "a record with a signature")
    seen = time.monotonic()
    bucket = rec["signature"]["bucket"]
    want_crash = f'panicbroker_vm_crashes_total{{vm="vm1",event="{rec["event"]}"}}'
    want_bucket = f'panicbroker_crash_buckets_total{{bucket="{bucket}"}}'
    while True:
        status, _, text = tcp(port, "GET", "/metrics")
        s = samples(text)
        if s.get(want_crash) == 1 and s.get(want_bucket) == 1:
            break
        assert time.monotonic() - seen < 1.0 * SCALE, \
            f"the crash is not in /metrics a second after its record:\n{text}"
        time.sleep(0.05)
    promtool_check(text)
    assert s['panicbroker_unloads_total{acked="true"}'] == 1, text

    # The listing over TCP: the token, or 401.
    assert tcp(port, "GET", "/v1/crashes")[0] == 401
    status, _, body = tcp(port, "GET", "/v1/crashes", token=TOKEN)
    assert status == 200 and rec["id"] in body, body
