# SPDX-License-Identifier: MIT
"""A misbehaving QMP server, to check that panicbrokerd copes with garbage."""

import json
import os
import socket
import threading
import time

from tests.lib.wait import wait_until

GREETING = {"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0},
                                "package": "fake"}, "capabilities": []}}


def _send(conn, obj_or_bytes):
    data = obj_or_bytes if isinstance(obj_or_bytes, bytes) else \
        (json.dumps(obj_or_bytes) + "\r\n").encode()
    conn.sendall(data)


def _event(event, data=None):
    now = time.time()
    return {"event": event, "data": data or {},
            "timestamp": {"seconds": int(now), "microseconds": int(now * 1e6) % 1000000}}


def _read_command(f):
    line = f.readline()
    if not line:
        return None
    return json.loads(line)


class FakeQMP:
    """Serves one behaviour to every client, counting the connections.

    behaviours:
      malformed   greeting, capabilities, then a line that is not JSON
      oversized   greeting, capabilities, then a 100 KiB line
      unexpected  greeting, capabilities, then a reply to an id never sent
      silent      accepts and says nothing (no greeting)
      nonobject   greeting, then a JSON array instead of an object
      flood       greeting, capabilities, then 500 events at once
      behaved     answers every command ({} or, for query-status, .status,
                  "running" unless set);
                  emit() sends events on demand. With reset_on_system_reset,
                  a system_reset is followed by a RESET event, as QEMU does.
    """

    def __init__(self, path, behaviour, reset_on_system_reset=False):
        self.path = path
        self.behaviour = behaviour
        self.reset_on_system_reset = reset_on_system_reset
        self.connections = 0
        self.commands = []
        self.status = "running"
        self._conn = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        if os.path.exists(path):
            os.unlink(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            try:
                self._one(conn)
            except OSError:
                pass
            finally:
                conn.close()

    def _one(self, conn):
        conn.settimeout(10)
        b = self.behaviour
        if b == "silent":
            # Hold the connection open until the client gives up.
            while not self._stop.is_set():
                try:
                    if not conn.recv(4096):
                        return
                except socket.timeout:
                    continue
            return
        _send(conn, GREETING)
        f = conn.makefile("rb")
        if b == "behaved":
            self._behave(conn, f)
            return
        if b == "nonobject":
            _send(conn, b"[1, 2, 3]\r\n")
        else:
            cmd = _read_command(f)
            if cmd is None:
                return
            _send(conn, {"return": {}, "id": cmd.get("id")})
            if b == "malformed":
                _send(conn, b'{"event": "GUEST_PANICKED", "data": {\r\n')
            elif b == "oversized":
                _send(conn, b'{"event": "X", "data": {"pad": "' + b"A" * (100 * 1024) + b'"}}\r\n')
            elif b == "unexpected":
                _send(conn, {"return": {}, "id": 424242})
            elif b == "flood":
                ev = (json.dumps({"event": "RTC_CHANGE", "data": {"offset": 1},
                                  "timestamp": {"seconds": 1, "microseconds": 0}})
                      + "\r\n").encode()
                _send(conn, ev * 500)
        # Wait for the client to hang up.
        conn.settimeout(10)
        try:
            while conn.recv(4096):
                pass
        except OSError:
            pass

    def _behave(self, conn, f):
        with self._lock:
            self._conn = conn
        conn.settimeout(None)
        try:
            while not self._stop.is_set():
                cmd = _read_command(f)
                if cmd is None:
                    return
                self.commands.append(cmd.get("execute"))
                ret = {"status": self.status, "running": self.status == "running"} \
                    if cmd.get("execute") == "query-status" else {}
                with self._lock:
                    _send(conn, {"return": ret, "id": cmd.get("id")})
                    if cmd.get("execute") == "system_reset" and self.reset_on_system_reset:
                        _send(conn, _event("RESET", {"guest": False,
                                                     "reason": "host-qmp-system-reset"}))
        finally:
            with self._lock:
                self._conn = None

    def wait_attached(self, timeout=15):
        """Waits until a client is attached and has asked query-status."""
        def attached():
            with self._lock:
                return self._conn is not None and "query-status" in self.commands

        wait_until(attached, f"QMP client attached to {self.path}", timeout, interval=0.02)

    def emit(self, event, data=None):
        """Sends @event (behaved mode) to the attached client."""
        msg = _event(event, data)
        with self._lock:
            if self._conn is None:
                raise AssertionError("no QMP client attached")
            _send(self._conn, msg)

    def close(self):
        self._stop.set()
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self.sock.close()
        self.thread.join(timeout=5)
        if os.path.exists(self.path):
            os.unlink(self.path)
