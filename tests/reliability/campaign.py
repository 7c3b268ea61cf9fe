#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""kill -9 anywhere: panicbrokerd killed with SIGKILL at a random point of
crash handling, restarted, and the spool checked, over and over.

Two VMs behind fake peers (tests/tools/fakepeers.py: QEMU's run state,
dumps into the passed descriptor, reply latency), each with a mailbox:

  a  panics held by QEMU (GUEST_PANICKED, action pause), snapshot=always:
     record, stop, dump (slow, in steps), read back, system_reset, closed.
  b  panics into kdump: a panic record and UNLOAD over the mailbox
     (build/pbfakeguest), GUEST_CRASHLOADED, then the kdump kernel's session
     (start, progress, done), then its reboot (RESET): closed.

Each round panics one or both, then kills the daemon either after a random
delay (uniform over the handling's length) or on a line of its debug log
(recorded, snapshot, DUMP_COMPLETED, kdump session, RESET, closed) plus a
few random milliseconds, restarts it at once, and waits until the spool
settles. Then, every round:

  - every panic is recorded exactly once (a record is new in the round per
    VM that panicked, no more, no less);
  - every record parses (json, and pbctl list --json, the C loader);
  - every crash reaches closed (nothing left in a state nothing moves on
    from: the kdump bounds are short, so even a lost RESET ends);
  - no temporary file is left in the spool (.new-*, .*.tmp, .vmcore.partial);
  - a snapshot is either done and verified, or failed/refused with a reason.

    tests/reliability/campaign.py --kills 100 [--seed N] [--keep DIR]
"""

import argparse
import glob
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, TOP)

from tests.lib.daemon import Daemon, pbctl  # noqa: E402
from tests.lib.fakeguest import FAKEGUEST  # noqa: E402
from tests.tools.fakepeers import FakePeers  # noqa: E402

# Log lines of crash handling to aim a kill at (each a regex).
AIM = [
    r"VM \w+: event GUEST_PANICKED",
    r"VM \w+: event GUEST_CRASHLOADED",
    r"crash \S+ recorded",
    r"mailbox: panic record of session",
    r"UNLOAD \d+ of session \S+ acknowledged",
    r"mailbox: kdump session \S+ accepted",
    r"event DUMP_COMPLETED",
    r"snapshot (failed|done|taken)",
    r"event RESET",
    r"crash \S+ closed",
]
TEMP_NAMES = re.compile(r"(^\.new-|\.tmp$|^\.vmcore\.partial$|\.partial$)")
SETTLE_S = 40


class CampaignError(AssertionError):
    pass


class Campaign:
    def __init__(self, workdir, seed=None, log=print):
        self.work = workdir
        self.rng = random.Random(seed)
        self.seed = seed
        self.log = log
        self.peers = FakePeers()
        self.vm = {}
        self.mbox = {}
        for name in ("a", "b"):
            self.mbox[name] = os.path.join(workdir, f"{name}.mbox")
            self.vm[name] = self.peers.add(name, os.path.join(workdir, f"{name}.qmp"),
                                           latency=0.01, dump_seconds=0.3)
        self.specs = [
            f"a,qmp={self.vm['a'].path},mailbox={self.mbox['a']},snapshot=always,"
            "final_action=restart",
            f"b,qmp={self.vm['b'].path},mailbox={self.mbox['b']},snapshot=never,"
            "final_action=restart,kdump_timeout=8,kdump_session_timeout=3,"
            "kdump_progress_timeout=3",
        ]
        self.daemon = None
        self.kills = 0
        self.rounds = 0
        self.aimed = {}
        self.states_killed = {}
        self.guests = []
        self.last_round = 0.0

    # -- the daemon --

    def start(self):
        self.daemon = Daemon(self.work, self.specs).start()
        self.peers.wait_attached(timeout=60)

    def kill(self):
        self.daemon.kill()
        self.kills += 1

    def stop(self):
        if self.daemon:
            self.daemon.stop(check=True)
            self.daemon = None

    def close(self):
        try:
            if self.daemon and self.daemon.proc:
                self.daemon.stop(check=False)
        finally:
            for t in self.guests:
                t.join(timeout=10)
            self.peers.close()

    # -- the spool --

    def spool(self):
        return self.daemon.spool if self.daemon else os.path.join(self.work, "spool")

    def read_records(self):
        out = {}
        for path in glob.glob(os.path.join(self.spool(), "crashes", "*", "record.json")):
            with open(path) as f:
                text = f.read()
            try:
                out[os.path.basename(os.path.dirname(path))] = json.loads(text)
            except ValueError as e:
                raise CampaignError(f"record {path} does not parse: {e}\n{text[:500]}")
        return out

    # -- a guest's side --

    def _guest(self, name, *args, timeout=30):
        p = subprocess.run([FAKEGUEST, self.mbox[name], *args], capture_output=True,
                           text=True, timeout=timeout)
        return p.returncode

    def _panic_a(self):
        self.vm["a"].emit("GUEST_PANICKED", {"action": "pause"})

    def _panic_b(self, n):
        """The guest's side of a panic into kdump, in a thread: it goes on
        whatever happens to the daemon, as a guest would."""
        def run():
            self._guest("b", "panic", f"Kernel panic - not syncing: campaign round {n}")
            self.vm["b"].emit("GUEST_CRASHLOADED", {"action": "run"})
            time.sleep(0.05)
            self._guest("b", "kdump-session", "auto", "start", "progress:50", "done:4096",
                        timeout=30)
            self.vm["b"].emit("RESET", {"guest": True, "reason": "guest-reset"})
            # The guest boots again: its module opens a new NORMAL session.
            self._guest("b", "hello")
        t = threading.Thread(target=run, daemon=True)
        t.start()
        self.guests.append(t)
        return t

    # -- one round --

    def round(self):
        n = self.rounds = self.rounds + 1
        # A guest boots for longer than a second between two panics; the
        # daemon reads one panic record a second per VM (chan.h).
        time.sleep(max(0.0, self.last_round + 1.2 - time.monotonic()))
        self.last_round = time.monotonic()
        before = set(self.read_records())
        which = self.rng.choice([("a",), ("b",), ("a", "b")])
        aim = self.rng.random() < 0.5
        mark = self.daemon.log_offset()
        t0 = time.monotonic()
        for name in which:
            if name == "a":
                self._panic_a()
            else:
                self._panic_b(n)
        if aim:
            rx = self.rng.choice(AIM)
            try:
                self.daemon.wait_log(rx, timeout=3, start=mark)
                time.sleep(self.rng.uniform(0, 0.003))
                how = f"on /{rx}/"
            except AssertionError:
                how = f"on /{rx}/ (not seen in 3 s: killed then)"
        else:
            delay = self.rng.uniform(0, 0.7)
            time.sleep(max(0.0, delay - (time.monotonic() - t0)))
            how = f"after {delay * 1000:.0f} ms"
        states = {r["vm"]: r["state"] for i, r in self.read_records().items()
                  if i not in before}
        self.kill()
        for s in states.values():
            self.states_killed[s] = self.states_killed.get(s, 0) + 1
        self.aimed[how.split(" (")[0] if aim else "random delay"] = \
            self.aimed.get(how.split(" (")[0] if aim else "random delay", 0) + 1
        self.start()
        for t in self.guests:
            t.join(timeout=30)
        self.guests = []
        new = self.settle(before, which)
        self.log(f"round {n}: panic {'+'.join(which)}, killed {how} "
                 f"(states then: {states or 'no record yet'}); "
                 "after restart: " + ", ".join(f"{r['vm']}:{r['state']}" for r in new.values()))

    def settle(self, before, which):
        """Waits until each VM that panicked has its one new record closed."""
        deadline = time.monotonic() + SETTLE_S
        while True:
            recs = self.read_records()
            new = {i: r for i, r in recs.items() if i not in before}
            done = all(r["state"] == "closed" for r in new.values()) and \
                sorted(r["vm"] for r in new.values()) == sorted(which)
            if done or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.check(recs, new, which)
        # The fake QEMUs are running again (a reset came), ready for the next round.
        for name in which:
            if self.vm[name].status != "running":
                raise CampaignError(f"VM {name} left {self.vm[name].status} after its crash "
                                    f"closed:\n{json.dumps(new, indent=1)[-3000:]}")
        return new

    def check(self, recs, new, which):
        def fail(msg):
            raise CampaignError(f"round {self.rounds} (seed {self.seed}): {msg}\n"
                                f"new records: {json.dumps(new, indent=1)[-4000:]}\n"
                                f"daemon log:\n{self.daemon.log_text()[-4000:]}")

        per_vm = {}
        for r in new.values():
            per_vm.setdefault(r["vm"], []).append(r["id"])
        for name in ("a", "b"):
            want = 1 if name in which else 0
            got = per_vm.get(name, [])
            if len(got) != want:
                fail(f"VM {name}: {len(got)} new records for {want} panic(s): {got}")
        for i, r in new.items():
            if r["state"] != "closed":
                fail(f"crash {i} left in state {r['state']}")
            snap = r.get("snapshot")
            if snap:
                st = snap.get("state")
                if st == "done":
                    if not (snap.get("verify") or {}).get("ok"):
                        fail(f"crash {i}: snapshot done but not verified: {snap}")
                elif st in ("failed", "refused"):
                    if not snap.get("reason"):
                        fail(f"crash {i}: snapshot {st} without a reason")
                else:
                    fail(f"crash {i}: snapshot left {st!r}")
        # The daemon's own reader must take every record too.
        listed = json.loads(pbctl(self.spool(), "list", "--json").stdout)
        now = self.read_records()
        if sorted(x["id"] for x in listed) != sorted(now):
            fail(f"pbctl list shows {len(listed)} records, the spool holds {len(now)}: "
                 f"{sorted(set(now) ^ set(x['id'] for x in listed))}")
        if set(now) != set(recs):
            fail(f"records appeared after the round settled: {sorted(set(now) - set(recs))}")
        for root, dirs, files in os.walk(self.spool()):
            for f in dirs + files:
                if TEMP_NAMES.search(f):
                    fail(f"temporary file left behind: {os.path.join(root, f)}")

    def summary(self):
        return (f"{self.kills} kills in {self.rounds} rounds (seed {self.seed}); "
                f"kill points: {dict(sorted(self.aimed.items()))}; "
                f"crash states at the kill: {dict(sorted(self.states_killed.items()))}")


def run(kills, workdir, seed=None, log=print):
    c = Campaign(workdir, seed, log)
    try:
        c.start()
        while c.kills < kills:
            c.round()
        total = len(c.read_records())
        c.stop()
        log(c.summary() + f"; {total} records")
        return c
    finally:
        c.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=100)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--keep", help="work in DIR and keep it")
    a = ap.parse_args()
    if not os.access(FAKEGUEST, os.X_OK):
        sys.exit("build/pbfakeguest is not built: run make")
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    work = a.keep or tempfile.mkdtemp(prefix="pbkill-", dir="/tmp")
    os.makedirs(work, exist_ok=True)
    t0 = time.monotonic()
    try:
        run(a.kills, work, seed)
    except CampaignError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        print(f"work directory kept: {work}", file=sys.stderr)
        sys.exit(1)
    print(f"passed in {time.monotonic() - t0:.0f} s")
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
