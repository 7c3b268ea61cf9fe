"""Boot a panicbroker test-bed guest in QEMU and talk to it.

    from tests.lib.guest import Guest, find_guests
    kdir = find_guests(["6.1"])["6.1"]           # build/guest/6.1
    with Guest(kdir, tmp_path, pvpanic="isa") as g:
        g.start()
        g.wait_console(r"PBTEST: ready", 30)
        with g.qmp() as q:                        # qmp-test.sock
            g.send("panic")
            q.wait_event("GUEST_CRASHLOADED", 30)
        g.wait_console(r"PBTEST: kdump init reached", 60)

The guests are built by tests/guest/build-guests.sh; their console protocol
is described in tests/guest/README.md.

The serial console: QEMU serves it on <workdir>/serial.sock with wait=on, so
it starts the guest only once this class is connected; a thread reads every
byte the guest writes and appends it to <workdir>/console.log and to memory.
(QEMU 7.2's own chardev "logfile=" is not used: it records a byte twice
whenever a write to the socket has to be retried, e.g. "[[    1.75...".)

Offsets used by wait_console()/console_offset()/console_text() are character
offsets in the console text as console_text() returns it: decoded as latin-1
(one byte, one character) with every "\\r" removed. The log survives
restart(): offsets taken before a restart stay valid after it.

Every timeout is multiplied by the environment variable PB_TIMEOUT_SCALE
(float, default 1).
"""

from __future__ import annotations

import atexit
import ctypes
import os
import re
import shlex
import signal
import socket
import subprocess
import threading
import time
import weakref
from pathlib import Path
from typing import Iterable

try:
    from .qmp import QMP
except ImportError:  # imported as a top-level module (tests/lib on sys.path)
    from qmp import QMP  # type: ignore[no-redef]

__all__ = ["Guest", "find_guests", "build_guests", "timeout_scale", "REPO_TOP", "GUEST_DIR"]

REPO_TOP = Path(__file__).resolve().parents[2]
GUEST_DIR = Path(os.environ.get("PB_GUEST_DIR") or REPO_TOP / "build" / "guest")
BUILD_SCRIPT = REPO_TOP / "tests" / "guest" / "build-guests.sh"
DEFAULT_SERIES = ("6.1", "6.12")

# Longest path bind()/connect() accept for an AF_UNIX socket on Linux.
_SUN_PATH_MAX = 107


def timeout_scale() -> float:
    """The PB_TIMEOUT_SCALE multiplier (default 1)."""
    try:
        v = float(os.environ.get("PB_TIMEOUT_SCALE", "1") or 1)
    except ValueError:
        return 1.0
    return v if v > 0 else 1.0


def find_guests(series_list: Iterable[str] = DEFAULT_SERIES,
                guest_dir: str | os.PathLike | None = None) -> dict[str, Path]:
    """Map each series that has a built guest to its directory.

    Looks for <guest_dir>/<series>/{vmlinuz,initrd.img} (guest_dir defaults to
    $PB_GUEST_DIR or build/guest under the repo top). Series without a built
    guest are left out, so a test can skip them with a clear message.
    """
    base = Path(guest_dir) if guest_dir is not None else GUEST_DIR
    found: dict[str, Path] = {}
    for s in series_list:
        d = base / s
        if (d / "vmlinuz").is_file() and (d / "initrd.img").is_file():
            found[s] = d.resolve()
    return found


def build_guests(series_list: Iterable[str] = DEFAULT_SERIES,
                 guest_dir: str | os.PathLike | None = None,
                 extra: Iterable[str] = ()) -> subprocess.CompletedProcess:
    """Run tests/guest/build-guests.sh (incremental, fast when nothing changed).

    Raises subprocess.CalledProcessError (with the script's output) on failure.
    """
    cmd = [str(BUILD_SCRIPT), "--out", str(Path(guest_dir) if guest_dir else GUEST_DIR),
           *extra, *series_list]
    return subprocess.run(cmd, check=True, text=True, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT)


# --- process hygiene ---------------------------------------------------------
_live: "weakref.WeakSet[Guest]" = weakref.WeakSet()

try:
    _libc = ctypes.CDLL(None, use_errno=True)
    _prctl = _libc.prctl
except (OSError, AttributeError):  # pragma: no cover
    _prctl = None

_PR_SET_PDEATHSIG = 1


def _child_setup() -> None:
    # QEMU dies with the thread that started it, even if the test process is
    # killed outright (atexit does not run then).
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


@atexit.register
def _kill_leftovers() -> None:
    for g in list(_live):
        try:
            g.stop(timeout=2)
        except Exception:
            pass


class Guest:
    """One QEMU guest booted from a build-guests.sh kernel directory."""

    def __init__(self, kdir: str | os.PathLike, workdir: str | os.PathLike, *,
                 pvpanic: str | None = "isa", smp: int = 2, memory_mib: int = 1024,
                 cmdline: Iterable[str] = (), accel: str | None = None,
                 extra_args: Iterable[str] = (), crashkernel: str = "192M",
                 qemu: str | None = None, mailbox: str | os.PathLike | None = None,
                 mailbox_size: str = "1M"):
        self.kdir = Path(kdir).resolve()
        self.workdir = Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        for f in ("vmlinuz", "initrd.img"):
            if not (self.kdir / f).is_file():
                raise FileNotFoundError(
                    f"{self.kdir / f} missing: run tests/guest/build-guests.sh")
        kv = self.kdir / "kver"
        self.kver = kv.read_text().strip() if kv.is_file() else self.kdir.name
        if pvpanic not in ("isa", "pci", None):
            raise ValueError(f"pvpanic must be 'isa', 'pci' or None, not {pvpanic!r}")
        self.pvpanic = pvpanic
        self.smp = smp
        self.memory_mib = memory_mib
        self.cmdline = list(cmdline)
        self.accel = accel or os.environ.get("PB_ACCEL", "tcg")
        self.extra_args = list(extra_args)
        self.crashkernel = crashkernel
        self.qemu = qemu or os.environ.get("PB_QEMU", "qemu-system-x86_64")
        # The broker channel's mailbox (protocol/SPEC.md): an ivshmem-plain
        # device backed by this file. QEMU creates the file when it does not
        # exist; a daemon may have created and formatted it first.
        self.mailbox = Path(mailbox).absolute() if mailbox is not None else None
        self.mailbox_size = mailbox_size

        self.serial_path = self.workdir / "serial.sock"
        self.qmp_path = self.workdir / "qmp.sock"            # for the daemon under test
        self.test_qmp_path = self.workdir / "qmp-test.sock"  # for the harness
        self.console_log = self.workdir / "console.log"
        self.qemu_log = self.workdir / "qemu.log"
        self.pidfile = self.workdir / "qemu.pid"
        for p in (self.serial_path, self.qmp_path, self.test_qmp_path):
            if len(os.fsencode(p)) > _SUN_PATH_MAX:
                raise ValueError(f"socket path too long for AF_UNIX ({len(str(p))} > "
                                 f"{_SUN_PATH_MAX}): {p}; use a shorter workdir")

        self.append = " ".join([f"console=ttyS0 crashkernel={self.crashkernel}",
                                *self.cmdline])
        self.argv = self._build_argv()

        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self._ser: socket.socket | None = None
        self._ser_thread: threading.Thread | None = None
        self._ser_lock = threading.Lock()
        self._text = ""

    # --- command line -----------------------------------------------------
    def _build_argv(self) -> list[str]:
        # wait=on: QEMU waits for start() to connect before it runs the guest,
        # so the console is captured from the first byte
        chardev = f"socket,id=ser0,path={self.serial_path},server=on,wait=on"
        accel = self.accel
        if accel == "tcg":
            # One host thread for all vCPUs. With multi-threaded TCG, QEMU 7.2
            # sometimes runs stale code while Linux live-patches its text
            # (text_poke_bp), and the guest dies with "Oops: int3" during boot.
            accel = "tcg,thread=single"
        argv = [
            self.qemu,
            "-accel", accel,
            "-machine", "pc",
            "-m", str(self.memory_mib),
            "-smp", str(self.smp),
            "-nodefaults", "-display", "none", "-no-user-config",
            "-kernel", str(self.kdir / "vmlinuz"),
            "-initrd", str(self.kdir / "initrd.img"),
            "-append", self.append,
            "-chardev", chardev,
            "-serial", "chardev:ser0",
            "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
            "-qmp", f"unix:{self.test_qmp_path},server=on,wait=off",
        ]
        if self.pvpanic == "isa":
            argv += ["-device", "pvpanic"]
        elif self.pvpanic == "pci":
            argv += ["-device", "pvpanic-pci"]
        argv += ["-device", "vmcoreinfo", "-pidfile", str(self.pidfile)]
        if self.mailbox is not None:
            # a comma in a QEMU option value is written as two
            path = str(self.mailbox).replace(",", ",,")
            argv += ["-object", f"memory-backend-file,id=pbmb,mem-path={path},"
                                f"size={self.mailbox_size},share=on",
                     "-device", "ivshmem-plain,memdev=pbmb"]
        argv += self.extra_args
        return argv

    def command_line(self) -> str:
        """The QEMU command line, quoted for a shell (to reproduce by hand)."""
        return shlex.join(self.argv)

    # --- lifecycle --------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def returncode(self) -> int | None:
        return self.proc.poll() if self.proc is not None else None

    def start(self, timeout: float = 10.0) -> "Guest":
        """Start QEMU; returns once its sockets exist (not when the guest is up:
        wait_console(r"PBTEST: ready") for that)."""
        if self.running:
            raise RuntimeError("guest already running")
        self._close_serial()
        if self.starts == 0:
            # a fresh guest starts a fresh log; restart() keeps appending
            for f in (self.console_log, self.qemu_log):
                f.unlink(missing_ok=True)
            self._text = ""
        for p in (self.serial_path, self.qmp_path, self.test_qmp_path, self.pidfile):
            p.unlink(missing_ok=True)
        with open(self.qemu_log, "a") as log:
            log.write(f"=== start {self.starts + 1}: {self.command_line()}\n")
            log.flush()
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, preexec_fn=_child_setup,
                                         close_fds=True)
        self.starts += 1
        _live.add(self)
        deadline = time.monotonic() + timeout * timeout_scale()
        # 1. the serial socket (QEMU blocks until we are connected to it)
        while True:
            try:
                with self._ser_lock:
                    self._open_serial()
                break
            except (FileNotFoundError, ConnectionRefusedError):
                pass
            self._check_starting(deadline)
        # 2. the QMP sockets
        while not (self.test_qmp_path.exists() and self.qmp_path.exists()):
            self._check_starting(deadline)
        return self

    def _check_starting(self, deadline: float) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            self._close_serial()
            _live.discard(self)
            raise RuntimeError(f"QEMU exited at start (rc={self.proc.returncode}):\n"
                               f"{self._qemu_log_tail()}")
        if time.monotonic() > deadline:
            self.stop()
            raise RuntimeError(f"QEMU did not create its sockets in time:\n"
                               f"{self._qemu_log_tail()}")
        time.sleep(0.01)

    def restart(self, timeout: float = 10.0) -> "Guest":
        """Stop QEMU (if running) and start a new one with the same arguments
        and socket paths. The console log keeps growing (offsets stay valid);
        QMP clients must reconnect."""
        self.stop()
        return self.start(timeout)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to QEMU (no-op when it is not running)."""
        if self.running:
            assert self.proc is not None
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass

    def wait_exit(self, timeout: float = 30.0) -> int:
        """Wait for QEMU to exit; returns its exit status (negative: signal).
        Raises AssertionError on timeout."""
        if self.proc is None:
            raise RuntimeError("guest was never started")
        t = timeout * timeout_scale()
        try:
            rc = self.proc.wait(t)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"QEMU still running after {t:.1f}s\n"
                                 f"--- console tail ---\n{self.console_tail()}") from None
        self._close_serial()
        _live.discard(self)
        return rc

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM (QEMU shuts down cleanly), then SIGKILL after `timeout`
        seconds. Never leaves the process behind. Returns the exit status."""
        rc = None
        if self.proc is not None:
            if self.proc.poll() is None:
                try:
                    self.proc.terminate()
                    rc = self.proc.wait(timeout * timeout_scale())
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    rc = self.proc.wait()
                except ProcessLookupError:
                    rc = self.proc.wait()
            else:
                rc = self.proc.returncode
        self._close_serial()
        _live.discard(self)
        return rc

    def __enter__(self) -> "Guest":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __del__(self) -> None:
        try:
            if self.running:
                self.stop(timeout=1)
        except Exception:
            pass

    # --- QMP ----------------------------------------------------------------
    def qmp(self, timeout: float = 10.0) -> QMP:
        """A new QMP client on the harness socket (qmp-test.sock)."""
        return QMP(self.test_qmp_path, timeout)

    # --- serial console: input ----------------------------------------------
    def _open_serial(self) -> socket.socket:
        """Connect to serial.sock and start the reader thread (call with
        _ser_lock held)."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(str(self.serial_path))
        except OSError:
            s.close()
            raise
        self._ser = s
        t = threading.Thread(target=self._read_serial, args=(s,), daemon=True,
                             name=f"serial-{self.workdir.name}")
        t.start()
        self._ser_thread = t
        return s

    def _read_serial(self, s: socket.socket) -> None:
        """Copy everything the guest writes to console.log and to memory."""
        with open(self.console_log, "ab") as log:
            while True:
                try:
                    data = s.recv(65536)
                except OSError:
                    break
                if not data:
                    break
                log.write(data)
                log.flush()
                # str += under the GIL: readers see the old or the new text
                self._text += data.decode("latin-1").replace("\r", "")

    def _close_serial(self) -> None:
        with self._ser_lock:
            s, self._ser = self._ser, None
            t, self._ser_thread = self._ser_thread, None
        if t is not None and (self.proc is None or self.proc.poll() is not None):
            # QEMU is gone: let the reader take in what is left, up to EOF
            t.join(2)
        if s is not None:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        if t is not None:
            t.join(2)

    def send(self, cmd: str) -> None:
        """Write `cmd` + "\\n" to the guest's serial console. The guest reads
        commands only after "PBTEST: ready"; see tests/guest/README.md."""
        data = (cmd.rstrip("\n") + "\n").encode()
        with self._ser_lock:
            s = self._ser
            if s is None:
                raise RuntimeError("guest not running (no serial connection)")
            s.sendall(data)

    def command(self, cmd: str, timeout: float = 30.0) -> re.Match:
        """send(cmd) and wait for the guest's "PBTEST: ack <cmd>"."""
        start = self.console_offset()
        self.send(cmd)
        return self.wait_console(r"^PBTEST: ack " + re.escape(cmd) + r"$", timeout, start=start)

    # --- serial console: output ---------------------------------------------
    def console_text(self) -> str:
        """Everything the guest printed so far (latin-1, "\\r" removed)."""
        return self._text

    def console_offset(self) -> int:
        """Current end of the console text (use as `start` for wait_console)."""
        return len(self.console_text())

    def console_tail(self, chars: int = 3000, start: int = 0) -> str:
        text = self.console_text()
        return text[max(start, len(text) - chars):]

    def wait_console(self, pattern: str | re.Pattern, timeout: float = 30.0,
                     start: int = 0) -> re.Match:
        """Wait until regex `pattern` (re.MULTILINE) matches the console text
        at or after offset `start`; returns the match (its offsets are
        absolute). Raises AssertionError with the console tail on timeout,
        or as soon as QEMU has exited without the pattern appearing."""
        rx = pattern if isinstance(pattern, re.Pattern) else re.compile(pattern, re.M)
        t = timeout * timeout_scale()
        deadline = time.monotonic() + t
        while True:
            exited = self.proc is not None and self.proc.poll() is not None
            if exited:
                # let the reader thread take in the last bytes
                t = self._ser_thread
                if t is not None:
                    t.join(2)
            m = rx.search(self.console_text(), start)
            if m:
                return m
            if exited:
                why = f"QEMU exited (rc={self.proc.returncode}) without"
                break
            if time.monotonic() > deadline:
                why = f"timed out after {t:.1f}s waiting for"
                break
            time.sleep(0.05)
        text = self.console_text()
        boots = len(re.findall(r"^PBTEST: booted ", text[start:], re.M))
        if boots:
            why = f"(guest booted {boots}x since offset {start}) " + why
        raise AssertionError(f"[{self.kver}] {why} {rx.pattern!r}\n"
                             f"--- console tail (from offset {start}, of {len(text)}) ---\n"
                             f"{self.console_tail(start=start)}\n"
                             f"--- qemu.log tail ---\n{self._qemu_log_tail()}")

    def wait_ready(self, timeout: float = 60.0, start: int = 0) -> re.Match:
        """Wait for "PBTEST: ready" (the command loop is up)."""
        return self.wait_console(r"^PBTEST: ready$", timeout, start=start)

    def _qemu_log_tail(self, chars: int = 2000) -> str:
        try:
            return self.qemu_log.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "stopped"
        return f"<Guest {self.kver} {self.workdir} {state}>"
