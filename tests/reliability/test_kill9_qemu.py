# SPDX-License-Identifier: MIT
"""kill -9 with a real guest (a handful: PB_QEMU_KILLS, 3 by default): a
Debian 6.1 test-bed guest in QEMU with a mailbox and no crash kernel, so
that its panic is held by QEMU and snapshotted (snapshot=always: a real
dump-guest-memory, read back by makedumpfile). The daemon is killed with
SIGKILL at a random point from the panic to the record's close, restarted,
and the crash must end exactly once, its record parsing, its snapshot done
and verified or failed with a reason, no temporary file left; then the
guest boots again for the next round."""

import json
import os
import random
import time

import pytest

from tests.lib import Guest, find_guests
from tests.lib.daemon import Daemon, pbctl
from tests.reliability.campaign import TEMP_NAMES

SERIES = "6.1"


def test_kill9_with_real_qemu(work):
    found = find_guests((SERIES,))
    if SERIES not in found:
        pytest.skip("no built 6.1 test-bed guest (make guests)")
    kills = int(os.environ.get("PB_QEMU_KILLS", "3"))
    seed = int(os.environ.get("PB_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    print(f"kill -9 with real QEMU: {kills} kills, seed {seed}")
    mbox = os.path.join(work, "mailbox")
    g = Guest(found[SERIES], os.path.join(work, "vm1"), mailbox=mbox, memory_mib=512,
              cmdline=["pbtest.kdump=0"])
    g.start()
    spec = [f"vm1,qmp={g.qmp_path},mailbox={mbox},snapshot=always,final_action=restart"]
    d = Daemon(work, spec).start()
    try:
        d.wait_log(r"VM vm1: attached to QMP", 60)
        g.wait_ready(180)
        for n in range(kills):
            spool = os.path.join(work, "spool")
            before = set(os.listdir(os.path.join(spool, "crashes")))
            console = g.console_offset()
            mark = d.log_offset()
            g.command("panic")
            d.wait_log(r"VM vm1: GUEST_PANICKED: crash \S+ recorded", 60, start=mark)
            delay = rng.uniform(0, 4.0)
            time.sleep(delay)
            states = {}
            for i in set(os.listdir(os.path.join(spool, "crashes"))) - before:
                with open(os.path.join(spool, "crashes", i, "record.json")) as f:
                    states[i] = json.load(f)["state"]
            d.kill()
            print(f"round {n + 1}: killed {delay * 1000:.0f} ms after the record, "
                  f"states then {states}")
            d = Daemon(work, spec).start()

            def done():
                new = [json.loads(open(os.path.join(spool, "crashes", i, "record.json")).read())
                       for i in set(os.listdir(os.path.join(spool, "crashes"))) - before
                       if not i.startswith(".")]
                return new if new and all(r["state"] == "closed" for r in new) else None

            deadline = time.monotonic() + 240
            new = None
            while time.monotonic() < deadline and not new:
                new = done()
                time.sleep(0.5)
            assert new, f"round {n + 1}: the crash did not close:\n{d.log_text()[-3000:]}"
            assert len(new) == 1, [r["id"] for r in new]
            snap = new[0].get("snapshot") or {}
            if snap.get("state") == "done":
                assert snap["verify"]["ok"] is True, snap
                assert os.path.exists(os.path.join(spool, "crashes", new[0]["id"],
                                                   snap["path"]))
            else:
                assert snap.get("state") in ("failed", "refused") and snap.get("reason"), snap
            print(f"  after restart: {new[0]['state']}, snapshot {snap.get('state')}"
                  f"{': ' + snap.get('reason', '')[:80] if snap.get('state') != 'done' else ''}")
            listed = json.loads(pbctl(spool, "list", "--json").stdout)
            assert len(listed) == len([i for i in os.listdir(os.path.join(spool, "crashes"))
                                       if not i.startswith(".")])
            left = [os.path.join(r, f) for r, ds, fs in os.walk(spool) for f in ds + fs
                    if TEMP_NAMES.search(f)]
            assert left == [], left
            # restart: the guest boots again for the next round.
            g.wait_ready(240, start=console)
    finally:
        d.stop(check=False)
        g.stop()
