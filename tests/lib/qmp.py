"""A small blocking QMP client for the panicbroker tests.

    q = QMP("/path/qmp-test.sock", timeout=10)    # connect, greeting, capabilities
    q.execute("query-status")                      # -> the "return" value
    q.execute("set-action", panic="pause")
    q.execute("dump-guest-memory", {"detach": True}, paging=False, protocol="fd:x")
    ev = q.wait_event("GUEST_CRASHLOADED", timeout=30)
    q.events        # every event received so far, in order
    q.close()

Events can arrive at any time, also between a command and its reply; they are
kept in `events` (all of them, each with an added "received" key: the
time.monotonic() at which this client read it) and in a queue of events not
yet returned by wait_event()/drain().
"""

from __future__ import annotations

import json
import os
import select
import socket
import time
from typing import Any

__all__ = ["QMP", "QMPError", "QMPClosed", "QMPTimeout"]


def _scale() -> float:
    try:
        return float(os.environ.get("PB_TIMEOUT_SCALE", "1") or 1)
    except ValueError:
        return 1.0


class QMPError(Exception):
    """A QMP command failed: `cls` and `desc` come from QEMU's error reply."""

    def __init__(self, cls: str, desc: str, cmd: str | None = None):
        self.cls = cls
        self.desc = desc
        self.cmd = cmd
        where = f"{cmd}: " if cmd else ""
        super().__init__(f"{where}{cls}: {desc}")


class QMPClosed(QMPError, ConnectionError):
    """The QMP connection was closed (QEMU exited, or close() was called)."""

    def __init__(self, desc: str = "connection closed"):
        QMPError.__init__(self, "Closed", desc)


class QMPTimeout(QMPError, TimeoutError):
    """Nothing suitable arrived within the timeout."""

    def __init__(self, desc: str):
        QMPError.__init__(self, "Timeout", desc)


class QMP:
    """Blocking QMP client over a unix socket."""

    def __init__(self, path: str | os.PathLike, timeout: float = 10.0):
        self.path = os.fspath(path)
        self.timeout = timeout * _scale()
        self.events: list[dict[str, Any]] = []
        self.greeting: dict[str, Any] | None = None
        self._pending: list[dict[str, Any]] = []
        self._buf = b""
        self._next_id = 1
        self._sock: socket.socket | None = None
        self._connect(self.timeout)
        try:
            self.greeting = self._read_message(time.monotonic() + self.timeout)
            if "QMP" not in self.greeting:
                raise QMPError("Protocol", f"unexpected greeting {self.greeting!r}")
            self.execute("qmp_capabilities")
        except BaseException:
            self.close()
            raise

    # --- connection -------------------------------------------------------
    def _connect(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.path)
                self._sock = s
                return
            except (FileNotFoundError, ConnectionRefusedError) as e:
                # QEMU not started yet, or still creating the socket
                s.close()
                last = e
            if time.monotonic() >= deadline:
                raise QMPTimeout(f"cannot connect to {self.path}: {last}")
            time.sleep(0.05)

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def __enter__(self) -> "QMP":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._sock is None

    # --- wire -------------------------------------------------------------
    def _read_message(self, deadline: float | None) -> dict[str, Any]:
        """Next message (reply, error or event) off the wire.

        deadline None means: only what can be read without blocking; raises
        QMPTimeout when that is nothing.
        """
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line, self._buf = self._buf[:nl], self._buf[nl + 1 :]
                if not line.strip():
                    continue
                try:
                    msg = json.loads(line)
                except ValueError as e:
                    raise QMPError("Protocol", f"bad JSON from QEMU: {line[:200]!r}") from e
                if not isinstance(msg, dict):
                    raise QMPError("Protocol", f"unexpected message {msg!r}")
                return msg
            if self._sock is None:
                raise QMPClosed("not connected")
            wait = 0.0 if deadline is None else max(0.0, deadline - time.monotonic())
            r, _, _ = select.select([self._sock], [], [], wait)
            if not r:
                raise QMPTimeout(f"no message from {self.path} in time")
            try:
                data = self._sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                self.close()
                raise QMPClosed(f"{self.path}: QEMU closed the connection")
            self._buf += data

    def _note_event(self, msg: dict[str, Any]) -> None:
        msg["received"] = time.monotonic()
        self.events.append(msg)
        self._pending.append(msg)

    # --- API --------------------------------------------------------------
    def execute(self, cmd: str, _args: dict[str, Any] | None = None, *,
                timeout: float | None = None, **args: Any) -> Any:
        """Run one command; returns its "return" value or raises QMPError.

        Arguments go as keywords; names that are not Python identifiers
        (e.g. "x-foo-bar") go in the optional dict `_args`.
        """
        if self._sock is None:
            raise QMPClosed("not connected")
        allargs = dict(_args or {})
        allargs.update(args)
        cid = self._next_id
        self._next_id += 1
        req: dict[str, Any] = {"execute": cmd, "id": cid}
        if allargs:
            req["arguments"] = allargs
        self._sock.sendall(json.dumps(req).encode() + b"\n")
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout * _scale())
        while True:
            try:
                msg = self._read_message(deadline)
            except QMPTimeout:
                raise QMPTimeout(f"{cmd}: no reply within the timeout") from None
            if "event" in msg:
                self._note_event(msg)
                continue
            if msg.get("id") != cid:
                # a reply to something else (should not happen with one
                # command in flight); ignore it
                continue
            if "error" in msg:
                err = msg["error"]
                raise QMPError(err.get("class", "?"), err.get("desc", ""), cmd)
            return msg.get("return")

    def wait_event(self, name: str | None = None, timeout: float = 30.0) -> dict[str, Any]:
        """Return the oldest not yet returned event called `name` (any event
        if None), waiting for it up to `timeout` seconds (scaled by
        PB_TIMEOUT_SCALE). Raises QMPTimeout (a TimeoutError) listing the
        events that did arrive, or QMPClosed if QEMU went away."""
        deadline = time.monotonic() + timeout * _scale()
        while True:
            for i, ev in enumerate(self._pending):
                if name is None or ev.get("event") == name:
                    del self._pending[i]
                    return ev
            try:
                msg = self._read_message(deadline)
            except QMPTimeout:
                seen = [e.get("event") for e in self.events]
                raise QMPTimeout(f"no {name or 'event'} within {timeout * _scale():.1f}s;"
                                 f" events so far: {seen}") from None
            if "event" in msg:
                self._note_event(msg)

    def drain(self) -> list[dict[str, Any]]:
        """Read whatever arrived, without waiting; return the events not yet
        returned by wait_event()/drain() and mark them returned."""
        while self._sock is not None:
            try:
                msg = self._read_message(None)
            except QMPTimeout:
                break
            except QMPClosed:
                break
            if "event" in msg:
                self._note_event(msg)
        out, self._pending = self._pending, []
        return out

    def event_names(self) -> list[str]:
        """Names of all events received so far, in order."""
        return [e.get("event", "?") for e in self.events]
