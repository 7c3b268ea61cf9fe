# SPDX-License-Identifier: MIT
"""Start and watch the real panicbrokerd (the ASan/UBSan build by default)."""

import json
import os
import re
import signal
import subprocess
import time

from tests.lib.wait import SCALE, wait_record

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("PB_BUILD", os.path.join(TOP, "build"))


def daemon_binary():
    """PB_DAEMON, else the sanitized build, else the plain one."""
    for path in (os.environ.get("PB_DAEMON"),
                 os.path.join(BUILD, "asan", "panicbrokerd"),
                 os.path.join(BUILD, "panicbrokerd")):
        if path and os.access(path, os.X_OK):
            return path
    raise FileNotFoundError("panicbrokerd is not built: run make")


def pbctl_binary():
    return os.path.join(BUILD, "pbctl")


def pbctl(spool, *args, check=True):
    """Runs build/pbctl; returns the CompletedProcess."""
    p = subprocess.run([pbctl_binary(), "--spool", spool, *args],
                       capture_output=True, text=True, timeout=30)
    if check and p.returncode != 0:
        raise AssertionError(f"pbctl {' '.join(args)} exited {p.returncode}: {p.stderr}")
    return p


class Daemon:
    def __init__(self, workdir, vms, spool=None, args=(), log_level="debug"):
        self.workdir = workdir
        self.spool = spool or os.path.join(workdir, "spool")
        self.log_path = os.path.join(workdir, "panicbrokerd.log")
        self.argv = [daemon_binary(), "--spool", self.spool, "--log-level", log_level]
        for vm in vms:
            self.argv += ["--vm", vm]
        # Test daemons run side by side: no API on the shared default socket
        # unless the test gives one of its own.
        if not any(a in ("--api", "--no-api") or a.startswith("--api=") for a in args):
            self.argv.append("--no-api")
        self.argv += list(args)
        self.proc = None

    def start(self):
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=86")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1:exitcode=87")
        env.pop("JOURNAL_STREAM", None)
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdout=self.log, stderr=self.log,
                                     env=env, start_new_session=True)
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop(check=exc[0] is None)

    def log_text(self):
        with open(self.log_path, "r", errors="replace") as f:
            return f.read()

    def log_offset(self):
        return len(self.log_text())

    def wait_log(self, pattern, timeout=30, start=0):
        """Waits for a line matching @pattern in the daemon's log after @start."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout * SCALE
        while True:
            m = rx.search(self.log_text(), start)
            if m:
                return m
            if self.proc.poll() is not None:
                raise AssertionError(f"panicbrokerd exited ({self.proc.returncode}) "
                                     f"while waiting for /{pattern}/:\n{self.log_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no /{pattern}/ in panicbrokerd's log within "
                                     f"{timeout * SCALE:.0f} s:\n{self.log_text()[-3000:]}")
            time.sleep(0.05)

    def stop(self, check=True):
        """SIGTERM, then insists; with @check, a clean exit and no sanitizer report."""
        if not self.proc:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20 * SCALE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                if check:
                    raise AssertionError("panicbrokerd ignored SIGTERM for 20 s")
        self.log.close()
        rc, self.proc = self.proc.returncode, None
        text = self.log_text()
        if check:
            for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
                assert bad not in text, f"sanitizer report in panicbrokerd's log:\n{text[-6000:]}"
            assert rc == 0, f"panicbrokerd exited {rc}:\n{text[-3000:]}"

    def kill(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()
        self.proc = None

    # -- the spool, read the way an operator's tool would --

    def records(self, vm=None):
        args = ["list", "--json"] + (["--vm", vm] if vm else [])
        return json.loads(pbctl(self.spool, *args).stdout)

    def wait_record(self, predicate, timeout=60, what="a matching crash record", vm=None):
        def read():
            if not os.path.isdir(os.path.join(self.spool, "crashes")):
                return []
            return self.records(vm)

        return wait_record(read, predicate, what, timeout,
                           describe=lambda: "daemon log:\n" + self.log_text()[-3000:])


def record_states(rec):
    """The states a crash went through (notes in between folded away)."""
    out = []
    for h in rec["history"]:
        if not out or out[-1] != h["state"]:
            out.append(h["state"])
    return out
