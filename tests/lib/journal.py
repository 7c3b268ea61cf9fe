# SPDX-License-Identifier: MIT
"""A private systemd-journald for tests, and panicbrokerd in its reach.

No journald runs on a bare test host, and the one of a real host must not
be touched: the daemon runs in a private mount namespace (unshare -m) with
a tmpfs over /run, where PrivateJournal starts its own systemd-journald;
its journal files land in a directory of the test (bind-mounted over
/run/log/journal) and journalctl -D reads them there. namespace_usable()
says why that cannot be done here (not root, no unshare, no journald), for
a pytest skip.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import time

from tests.lib.daemon import TOP

JOURNALD = "/lib/systemd/systemd-journald"


def message_ids():
    """The ids journal.h defines, by name."""
    with open(os.path.join(TOP, "hostd", "journal.h")) as f:
        return dict(re.findall(r'#define JOURNAL_MID_(\w+)\s+"([0-9a-f]{32})"', f.read()))


# Runs in the new mount namespace, then becomes the daemon (exec), so the
# test's Daemon object signals the daemon itself.
NS_SCRIPT = r"""
set -e
jdir=$1 pidfile=$2
shift 2
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/log/journal /run/systemd/journal
mount --bind "$jdir" /run/log/journal
JOURNAL_STREAM= NOTIFY_SOCKET= %(journald)s </dev/null >"$jdir/../journald.log" 2>&1 &
echo $! >"$pidfile"
i=0
while [ ! -S /run/systemd/journal/socket ]; do
    i=$((i + 1)); [ $i -lt 200 ] || { echo "journald did not come up" >&2; exit 1; }
    sleep 0.05
done
exec "$@"
"""


def namespace_usable():
    """None, or why the private journal cannot be set up here."""
    if os.geteuid() != 0:
        return "needs root for a private mount namespace"
    if not shutil.which("unshare"):
        return "unshare(1) is not installed"
    if not os.access(JOURNALD, os.X_OK):
        return f"{JOURNALD} is not installed"
    if not shutil.which("journalctl"):
        return "journalctl is not installed"
    p = subprocess.run(["unshare", "-m", "--propagation", "private", "true"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return f"unshare -m is not permitted here: {p.stderr.strip()}"
    return None


class PrivateJournal:
    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "journal")
        os.makedirs(self.dir)
        self.script = os.path.join(workdir, "ns.sh")
        with open(self.script, "w") as f:
            f.write(NS_SCRIPT % {"journald": JOURNALD})
        self.pidfile = os.path.join(workdir, "journald.pid")
        self.log = os.path.join(workdir, "journald.log")

    def wrap(self, argv):
        return ["unshare", "-m", "--propagation", "private", "/bin/sh", self.script,
                self.dir, self.pidfile, *argv]

    def entries(self, **match):
        p = subprocess.run(["journalctl", "-D", self.dir, "-o", "json", "--no-pager",
                            *[f"{k}={v}" for k, v in match.items()]],
                           capture_output=True, text=True, timeout=30)
        if p.returncode != 0 and "No entries" not in p.stderr:
            raise AssertionError(f"journalctl failed: {p.stderr}")
        return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]

    def stop(self):
        try:
            with open(self.pidfile) as f:
                pid = int(f.read())
        except (OSError, ValueError):
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
