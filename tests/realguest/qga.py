# SPDX-License-Identifier: MIT
"""A small client of qemu-guest-agent (Debian's package, running in the real
guest): the tests' way to run commands in it, as an admin's tooling would.

QEMU serves the agent's virtio-serial port on a unix socket (server=on): the
connection outlives guest reboots, so every request is preceded by
guest-sync-delimited with a fresh id, which discards whatever an earlier
agent (or an earlier boot) left in the pipe.

    a = Agent("/path/qga.sock")
    a.wait(120)                         # the agent answers
    rc, out, err = a.run("kdump-config status")
    a.spawn("echo c > /proc/sysrq-trigger")   # no answer expected
"""

import base64
import json
import os
import random
import socket
import time

SCALE = float(os.environ.get("PB_TIMEOUT_SCALE", "1") or 1)


class AgentError(Exception):
    pass


class Agent:
    def __init__(self, path):
        self.path = str(path)
        self.sock = None
        self.buf = b""

    def close(self):
        if self.sock:
            self.sock.close()
        self.sock = None
        self.buf = b""

    def _connect(self):
        if self.sock is None:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(self.path)
            self.sock = s
            self.buf = b""

    def _read_json(self, deadline):
        while True:
            # 0xff (after guest-sync-delimited) and stray newlines are noise
            self.buf = self.buf.lstrip(b"\xff\r\n ")
            if self.buf:
                try:
                    obj, end = json.JSONDecoder().raw_decode(self.buf.decode("latin-1"))
                    self.buf = self.buf[end:]
                    return obj
                except ValueError:
                    pass
            left = deadline - time.monotonic()
            if left <= 0:
                raise AgentError("no answer from the guest agent")
            self.sock.settimeout(min(left, 1.0))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                self.close()
                raise AgentError("guest agent socket closed")
            self.buf += data

    def _sync(self, timeout):
        self._connect()
        token = random.randrange(1, 2**31)
        self.sock.sendall(b"\xff" + json.dumps(
            {"execute": "guest-sync-delimited", "arguments": {"id": token}}).encode())
        deadline = time.monotonic() + timeout
        while True:
            obj = self._read_json(deadline)
            if obj.get("return") == token:
                return

    def call(self, cmd, args=None, timeout=10):
        """One request; returns its 'return' value."""
        self._sync(timeout)
        msg = {"execute": cmd}
        if args is not None:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode())
        obj = self._read_json(time.monotonic() + timeout)
        if "error" in obj:
            raise AgentError(f"{cmd}: {obj['error'].get('desc')}")
        return obj.get("return")

    def wait(self, timeout):
        """Waits until the agent answers (the guest booted far enough)."""
        deadline = time.monotonic() + timeout * SCALE
        while True:
            try:
                self.call("guest-ping", timeout=3)
                return
            except (OSError, AgentError):
                self.close()
                if time.monotonic() > deadline:
                    raise AssertionError(f"the guest agent did not answer within "
                                         f"{timeout * SCALE:.0f} s")
                time.sleep(1)

    def spawn(self, command):
        """Starts /bin/sh -c COMMAND in the guest; returns its pid."""
        r = self.call("guest-exec", {"path": "/bin/sh", "arg": ["-c", command],
                                     "capture-output": True})
        return r["pid"]

    def run(self, command, timeout=60, check=False):
        """Runs /bin/sh -c COMMAND in the guest; returns (status, stdout, stderr)."""
        pid = self.spawn(command)
        deadline = time.monotonic() + timeout * SCALE
        while True:
            st = self.call("guest-exec-status", {"pid": pid})
            if st.get("exited"):
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"'{command}' still running in the guest after "
                                     f"{timeout * SCALE:.0f} s")
            time.sleep(0.5)
        out = base64.b64decode(st.get("out-data", "")).decode(errors="replace")
        err = base64.b64decode(st.get("err-data", "")).decode(errors="replace")
        rc = st.get("exitcode", -st.get("signal", 0) or -1)
        if check and rc != 0:
            raise AssertionError(f"'{command}' exited {rc} in the guest:\n{out}\n{err}")
        return rc, out, err

    def out(self, command, timeout=60):
        """stdout of COMMAND, which must succeed."""
        return self.run(command, timeout, check=True)[1]
