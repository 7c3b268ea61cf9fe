# SPDX-License-Identifier: MIT
"""Many fake QEMU monitors in one process: an asyncio loop in a thread serves
one QMP socket per VM, each a small model of QEMU's run state, for the
reliability campaign (tests/reliability), the hostile-guest scale test and
the scale benchmark (tests/bench/scale-bench.py), where a thread per peer
(tests/lib/fakeqmp.py) does not scale to a thousand VMs.

The model, per VM (what panicbrokerd relies on):
  status      "running"; GUEST_PANICKED with action pause makes it
              "guest-panicked"; stop: running -> paused; cont: paused or
              prelaunch -> running (refused while guest-panicked, as QEMU
              does); system_reset, then a RESET event: guest-panicked ->
              prelaunch, paused stays, running stays; quit -> the
              connection closes, status "shutdown".
  dumps       query-dump-guest-memory-capability offers kdump-zlib and elf;
              getfd takes the descriptor passed with SCM_RIGHTS;
              dump-guest-memory writes a small synthetic flattened kdump
              (tests/tools/make-test-dump.py) into it over dump_seconds,
              answering query-dump with progress, then DUMP_COMPLETED;
              cont is refused while a dump runs, as QEMU does.
  latency     every reply is delayed by a random 0..latency seconds.

    peers = FakePeers(); vm = peers.add("vm1", "/tmp/x/vm1.qmp"); ...
    vm.emit("GUEST_PANICKED", {"action": "pause"}); peers.close()
"""

import array
import asyncio
import importlib.util
import json
import os
import random
import socket
import threading
import time

GREETING = {"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0},
                                "package": "fakepeers"}, "capabilities": []}}

_HERE = os.path.dirname(os.path.abspath(__file__))


def _dump_bytes():
    spec = importlib.util.spec_from_file_location(
        "make_test_dump", os.path.join(_HERE, "make-test-dump.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.flatten(mod.kdump()), mod.image(mod.elf64())


def _event(name, data=None):
    now = time.time()
    return {"event": name, "data": data or {},
            "timestamp": {"seconds": int(now), "microseconds": int(now * 1e6) % 1000000}}


class FakeVM:
    """One VM's monitor. Methods are called from any thread."""

    def __init__(self, peers, name, path, latency=0.0, dump_seconds=0.2,
                 memory=1 << 30):
        self.peers = peers
        self.name = name
        self.path = path
        self.latency = latency
        self.dump_seconds = dump_seconds
        self.memory = memory
        self.status = "running"
        self.commands = []
        self.connections = 0
        self.events_sent = 0
        self._conn = None          # the attached client's socket (loop thread only)
        self._fds = {}
        self._dump = None          # {"status", "completed", "total"}
        self._sock = None

    # -- called from the test's thread --

    def attached(self):
        return self._conn is not None and "query-status" in self.commands

    def emit(self, name, data=None):
        """Sends an event to the attached client (and models its effect)."""
        return self.peers.call(self._emit(name, data))

    def set_status(self, status):
        self.status = status

    # -- the loop's side --

    async def _emit(self, name, data):
        if name == "GUEST_PANICKED" and (data or {}).get("action") == "pause":
            self.status = "guest-panicked"
        if self._conn is None:
            return False
        await self._send(_event(name, data))
        return True

    async def _send(self, obj):
        conn = self._conn
        if conn is None:
            return
        data = obj if isinstance(obj, bytes) else (json.dumps(obj) + "\r\n").encode()
        try:
            await self.peers.loop.sock_sendall(conn, data)
            if isinstance(obj, dict) and "event" in obj:
                self.events_sent += 1
        except OSError:
            pass

    async def _serve(self):
        if os.path.exists(self.path):
            os.unlink(self.path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(self.path)
        self._sock.listen(4)
        self._sock.setblocking(False)
        loop = self.peers.loop
        while True:
            try:
                conn, _ = await loop.sock_accept(self._sock)
            except (OSError, asyncio.CancelledError):
                return
            self.connections += 1
            if self._conn is not None:
                conn.close()   # QEMU's monitor takes one client at a time
                continue
            loop.create_task(self._client(conn))

    async def _recv(self, conn):
        """(bytes, [fds]) from one recvmsg; b"" at the end."""
        loop = self.peers.loop
        while True:
            try:
                data, anc, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(16 * 4))
            except BlockingIOError:
                fut = loop.create_future()
                loop.add_reader(conn.fileno(), fut.set_result, None)
                try:
                    await fut
                finally:
                    loop.remove_reader(conn.fileno())
                continue
            fds = []
            for level, typ, payload in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                    a = array.array("i")
                    a.frombytes(payload[:len(payload) - len(payload) % a.itemsize])
                    fds.extend(a)
            return data, fds

    async def _client(self, conn):
        conn.setblocking(False)
        self._conn = conn
        buf = b""
        pending_fds = []
        try:
            await self._send(GREETING)
            while True:
                data, fds = await self._recv(conn)
                pending_fds.extend(fds)
                if not data:
                    return
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if not line.strip():
                        continue
                    try:
                        cmd = json.loads(line)
                    except ValueError:
                        continue
                    await self._command(cmd, pending_fds)
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self._conn = None
            for fd in pending_fds:
                os.close(fd)
            conn.close()

    async def _reply(self, cmd, ret=None, error=None):
        if self.latency:
            await asyncio.sleep(random.uniform(0, self.latency))
        msg = {"id": cmd.get("id")}
        if error:
            msg["error"] = {"class": "GenericError", "desc": error}
        else:
            msg["return"] = ret if ret is not None else {}
        await self._send(msg)

    async def _command(self, cmd, pending_fds):
        ex = cmd.get("execute")
        args = cmd.get("arguments") or {}
        self.commands.append(ex)
        if ex == "query-status":
            await self._reply(cmd, {"status": self.status,
                                    "running": self.status == "running"})
        elif ex == "stop":
            if self.status == "running":
                self.status = "paused"
            await self._reply(cmd)
        elif ex == "cont":
            if self.status == "guest-panicked":
                await self._reply(cmd, error="Resetting the Virtual Machine is required")
                return
            if self._dump and self._dump["status"] == "active":
                await self._reply(cmd, error="There is a dump in process, please wait.")
                return
            self.status = "running"
            await self._reply(cmd)
        elif ex == "system_reset":
            # A reset keeps a stopped VM stopped; a panicked one waits in
            # prelaunch for cont, as QEMU's main loop leaves it.
            self.status = {"guest-panicked": "prelaunch",
                           "paused": "paused"}.get(self.status, "running")
            await self._reply(cmd)
            await self._send(_event("RESET", {"guest": False,
                                              "reason": "host-qmp-system-reset"}))
        elif ex == "quit":
            self.status = "shutdown"
            await self._reply(cmd)
            self._conn.shutdown(socket.SHUT_RDWR)
        elif ex == "query-memory-size-summary":
            await self._reply(cmd, {"base-memory": self.memory})
        elif ex == "query-dump-guest-memory-capability":
            await self._reply(cmd, {"formats": ["elf", "kdump-zlib"]})
        elif ex == "getfd":
            if not pending_fds:
                await self._reply(cmd, error="No file descriptor supplied via SCM_RIGHTS")
                return
            name = args.get("fdname", "")
            if name in self._fds:
                os.close(self._fds[name])
            self._fds[name] = pending_fds.pop(0)
            await self._reply(cmd)
        elif ex == "dump-guest-memory":
            proto = args.get("protocol", "")
            fd = self._fds.pop(proto[3:], None) if proto.startswith("fd:") else None
            if fd is None:
                await self._reply(cmd, error=f"File descriptor named '{proto[3:]}' not found")
                return
            await self._reply(cmd)
            self.peers.loop.create_task(self._write_dump(fd, args.get("format", "elf")))
        elif ex == "query-dump":
            await self._reply(cmd, self._dump or {"status": "none", "completed": 0,
                                                  "total": 0})
        else:
            await self._reply(cmd)

    async def _write_dump(self, fd, fmt):
        data = self.peers.dump_kdump if fmt.startswith("kdump") else self.peers.dump_elf
        total = len(data)
        self._dump = {"status": "active", "completed": 0, "total": total}
        steps = 10
        try:
            for i in range(steps):
                chunk = data[i * total // steps:(i + 1) * total // steps]
                os.write(fd, chunk)
                self._dump["completed"] += len(chunk)
                await asyncio.sleep(self.dump_seconds / steps)
            self._dump["status"] = "completed"
            result = dict(self._dump)
            err = None
        except OSError as e:
            self._dump["status"] = "failed"
            result, err = dict(self._dump), str(e)
        finally:
            os.close(fd)
        data = {"result": result}
        if err:
            data["error"] = err
        await self._send(_event("DUMP_COMPLETED", data))

    async def _close(self):
        if self._sock:
            self._sock.close()
        if self._conn is not None:
            try:
                self._conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for fd in self._fds.values():
            os.close(fd)
        self._fds = {}
        if os.path.exists(self.path):
            os.unlink(self.path)


class FakePeers:
    """The loop thread and its VMs."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.vms = {}
        self.dump_kdump, self.dump_elf = _dump_bytes()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def call(self, coro, timeout=30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def add(self, name, path, **kw):
        vm = FakeVM(self, name, path, **kw)
        self.vms[name] = vm

        async def start():
            vm._task = self.loop.create_task(vm._serve())
            await asyncio.sleep(0)

        self.call(start())
        return vm

    def wait_attached(self, names=None, timeout=60):
        names = list(names or self.vms)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            missing = [n for n in names if not self.vms[n].attached()]
            if not missing:
                return
            time.sleep(0.05)
        raise AssertionError(f"not attached within {timeout} s: {missing[:10]}"
                             f"{' ...' if len(missing) > 10 else ''}")

    def storm(self, names, per_second, seconds):
        """Misbehaving peers: each of @names sends @per_second events a second
        (RTC_CHANGE, unknown events, BLOCK_IO_ERROR floods), in batches every
        100 ms, for @seconds. Returns the events sent (when it is over)."""
        kinds = [("RTC_CHANGE", {"offset": 1}),
                 ("X_UNKNOWN_EVENT", {"pad": "x" * 64}),
                 ("BLOCK_IO_ERROR", {"device": "d0", "operation": "write",
                                     "action": "report", "nospace": False}),
                 ("NIC_RX_FILTER_CHANGED", {"path": "/machine/peripheral/n0"})]

        async def run():
            sent = 0
            batch = max(1, per_second // 10)
            end = self.loop.time() + seconds
            while self.loop.time() < end:
                t = self.loop.time()
                for name in names:
                    vm = self.vms[name]
                    data = b"".join((json.dumps(_event(*kinds[(sent + i) % len(kinds)]))
                                     + "\r\n").encode() for i in range(batch))
                    await vm._send(data)
                    sent += batch
                await asyncio.sleep(max(0.0, 0.1 - (self.loop.time() - t)))
            return sent

        return asyncio.run_coroutine_threadsafe(run(), self.loop)

    def reset_commands(self):
        for vm in self.vms.values():
            vm.commands = []

    def close(self):
        async def stop():
            for vm in self.vms.values():
                await vm._close()
                vm._task.cancel()
        try:
            self.call(stop(), timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=5)
