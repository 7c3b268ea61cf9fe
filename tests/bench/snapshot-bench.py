#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Memory-snapshot benchmark (`make bench`): for guests of 1, 2 and 4 GiB and
each dump format QEMU offers, how long the VM stays paused, the throughput,
the file size and whether makedumpfile reads the file -- a plain
`dump-guest-memory` issued by hand through QMP (the anchor) side by side with
panicbrokerd's snapshot=always, in one run.

    tests/bench/snapshot-bench.py [--sizes 1,2,4] [--formats elf,kdump-zlib]
                                  [--series 6.1|6.12] [--keep DIR]
                                  [--busy [--fill-percent 85] [--vmlinux FILE]]

Per guest size: boot once (no crash kernel, so a panic leaves the guest in
guest-panicked), panic, and on the paused guest dump its memory by hand in
each format (paging=false, file:PATH). Then reset the guest and, per format,
start panicbrokerd with snapshot=always,snapshot_format=FMT,final_action=restart
on the running guest, panic it, and wait for the crash record to close: the
daemon dumps, verifies and restarts the guest, which then serves the next
format. See tests/bench/README.md for what each column means.

--busy: before each panic, fill the guest's memory (pbfill in the guest,
tests/guest/pbfill.c: --fill-percent of MemAvailable, half log-like text, a
quarter random, a quarter zero), so that the dump does real work; the guest's
RAM is a memory-backend-file (on /dev/shm), and on the paused guest the bench
also measures the physical limit: reading that file, and writing the same
bytes to the work directory's disk with fsync. The table then gives the RAM in
use at the panic, seconds per GiB in use, and whether crash(8) reads each file
(with the guest kernel's vmlinux: --vmlinux, /usr/lib/debug/boot/vmlinux-KVER
or build/debug/vmlinux-KVER).

Environment: PB_DAEMON (default build/panicbrokerd, the non-sanitized build),
PB_GUEST_DIR, PB_QEMU, PB_TIMEOUT_SCALE as for the other tests.
"""

import argparse
import atexit
import ctypes
import datetime
import glob
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, TOP)

from tests.lib import Guest, QMPError, QMPTimeout, find_guests  # noqa: E402
from tests.lib.daemon import BUILD, Daemon  # noqa: E402

PANIC_LINE = "Kernel panic - not syncing"
MiB = 1 << 20
GiB = 1 << 30
# the daemon refuses a snapshot unless the spool has room for RAM + 64 MiB
DAEMON_MARGIN = 64 * MiB
SLACK = 256 * MiB            # logs, dmesg files, records
SKIP_FORMATS = ("win-dmp",)  # Windows guests only
EXT = {"elf": "elf"}         # anchor file name suffix; kdump-* get "kdump"


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def human(n):
    if n is None:
        return "-"
    if n >= GiB:
        return f"{n / GiB:.2f} GiB"
    return f"{n / MiB:.1f} MiB"


# --- process hygiene -----------------------------------------------------------
# Guests: tests/lib/guest.py already gives QEMU PR_SET_PDEATHSIG and stops the
# rest at exit. The daemon gets the same here (tests/lib/daemon.py starts it in
# its own session, so a killed bench would otherwise leave it behind).
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # pragma: no cover
    _prctl = None


def _pdeathsig():
    if _prctl is not None:
        _prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


_daemons = []
_guests = []


class BenchDaemon(Daemon):
    """tests.lib.daemon.Daemon that dies with the bench, even on SIGKILL."""

    def start(self):
        env = dict(os.environ)
        env.pop("JOURNAL_STREAM", None)
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdout=self.log, stderr=self.log, env=env,
                                     start_new_session=True, preexec_fn=_pdeathsig)
        _daemons.append(self)
        return self

    def finish(self):
        """SIGTERM (then SIGKILL); returns the exit status, never raises."""
        if self.proc is None:
            return None
        proc = self.proc
        try:
            self.stop(check=False)
        except Exception:
            pass
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        return proc.returncode


@atexit.register
def _cleanup():
    for d in _daemons:
        if d.proc is not None:
            d.finish()
    for g in _guests:
        try:
            g.stop(timeout=3)
        except Exception:
            pass


class BenchAbort(Exception):
    """Nothing more can be measured in this run (a bad option, say)."""


def _on_signal(signum, _frame):
    # turn SIGTERM/SIGHUP into an exception so every finally: runs
    raise SystemExit(128 + signum)


# --- helpers -----------------------------------------------------------------
def qemu_time(ev):
    ts = ev.get("timestamp") or {}
    return ts.get("seconds", 0) + ts.get("microseconds", 0) / 1e6


def makedumpfile_reads(path, outdir):
    """What an operator runs: makedumpfile --dump-dmesg FILE OUT. Returns
    {ok, exit_status, panic_line, why, seconds}; ok means exit 0 and the
    panic line in the log it wrote."""
    if not shutil.which("makedumpfile"):
        return {"ok": None, "why": "makedumpfile not installed"}
    out = os.path.join(outdir, "makedumpfile-dmesg.txt")
    if os.path.exists(out):
        os.unlink(out)
    t0 = time.monotonic()
    try:
        p = subprocess.run(["makedumpfile", "--dump-dmesg", path, out],
                           capture_output=True, text=True, errors="replace", timeout=1800)
    except subprocess.TimeoutExpired:
        return {"ok": False, "exit_status": None, "why": "makedumpfile ran for 30 min"}
    secs = time.monotonic() - t0
    text = ""
    if os.path.exists(out):
        with open(out, errors="replace") as f:
            text = f.read()
        os.unlink(out)
    line = next((ln.strip() for ln in text.splitlines() if PANIC_LINE in ln), None)
    ok = p.returncode == 0 and line is not None
    why = ""
    if not ok:
        if p.returncode != 0:
            msgs = [ln.strip() for ln in (p.stderr + "\n" + p.stdout).splitlines()
                    if ln.strip() and not ln.startswith("Commandline parameter")
                    and "makedumpfile Failed" not in ln]
            why = f"exit {p.returncode}: " + " | ".join(msgs[:3])
        else:
            why = "exit 0 but no panic line in the log"
    with open(os.path.join(outdir, "makedumpfile.txt"), "a") as f:
        f.write(f"$ makedumpfile --dump-dmesg {path} {out}\n"
                f"exit {p.returncode}, {secs:.1f} s\n{p.stdout}{p.stderr}\n")
    return {"ok": ok, "exit_status": p.returncode, "panic_line": line, "why": why,
            "seconds": round(secs, 2)}


def crash_reads(path, vmlinux, outdir):
    """crash(8) on FILE with the kernel's debug symbols, as tests/e2e/test_snapshot.py
    runs it: `crash -s VMLINUX FILE`, then `log` and `quit`. Returns {ok, exit_status,
    why, seconds}; ok means the log it printed has the panic line."""
    if not shutil.which("crash"):
        return {"ok": None, "why": "crash not installed"}
    if not vmlinux:
        return {"ok": None, "why": "no vmlinux with debug symbols (--vmlinux)"}
    t0 = time.monotonic()
    try:
        p = subprocess.run(["crash", "-s", vmlinux, path], input="log\nquit\n",
                           capture_output=True, text=True, errors="replace", timeout=1800)
    except subprocess.TimeoutExpired:
        return {"ok": False, "exit_status": None, "why": "crash ran for 30 min"}
    secs = time.monotonic() - t0
    out = p.stdout + p.stderr
    ok = PANIC_LINE in out
    why = ""
    if not ok:
        msgs = [ln.strip() for ln in out.splitlines() if ln.strip()]
        why = f"exit {p.returncode}: " + " | ".join(msgs[-3:])
    with open(os.path.join(outdir, "crash.txt"), "a") as f:
        f.write(f"$ crash -s {vmlinux} {path}  (log, quit)\n"
                f"exit {p.returncode}, {secs:.1f} s\n{out[-4000:]}\n")
    return {"ok": ok, "exit_status": p.returncode, "why": why, "seconds": round(secs, 2)}


def find_vmlinux(kver, given):
    """The guest kernel's vmlinux with debug symbols: --vmlinux, else where
    linux-image-KVER-dbg installs it, else build/debug/vmlinux-KVER."""
    for v in ([given] if given else []) + [f"/usr/lib/debug/boot/vmlinux-{kver}",
                                            os.path.join(BUILD, "debug", f"vmlinux-{kver}")]:
        if v and os.path.exists(v):
            return v
    return None


# --- busy guests ---------------------------------------------------------------
def ram_backing(size, workdir):
    """Where the busy guest's RAM lives (memory-backend-file, share=on): a file
    on /dev/shm (tmpfs: the RAM stays in host memory, as QEMU's anonymous RAM
    would), else in the work directory. Returns (path, where)."""
    name = f"pbbench-{os.getpid()}-{size}g.ram"
    try:
        if shutil.disk_usage("/dev/shm").free > size * GiB + GiB:
            return os.path.join("/dev/shm", name), "/dev/shm (tmpfs)"
    except OSError:
        pass
    return os.path.join(workdir, name), f"{workdir} (the work directory's disk)"


def guest_sh(g, cmd, timeout):
    """`sh CMD` on the guest's console: (exit status, the output before the rc line)."""
    mark = g.console_offset()
    g.command(f"sh {cmd}")
    m = g.wait_console(r"^PBTEST: sh rc=(\d+)", timeout, start=mark)
    return int(m.group(1)), g.console_text()[mark:m.start()]


def meminfo(g):
    """The guest's /proc/meminfo figures (bytes) we report."""
    rc, out = guest_sh(g, "grep -E '^(MemTotal|MemFree|MemAvailable):' /proc/meminfo", 60)
    vals = {}
    for ln in out.splitlines():
        parts = ln.split()
        if len(parts) >= 2 and parts[0].rstrip(":") in ("MemTotal", "MemFree", "MemAvailable"):
            vals[parts[0].rstrip(":")] = int(parts[1]) * 1024
    if rc != 0 or "MemFree" not in vals:
        raise RuntimeError(f"reading the guest's /proc/meminfo failed (rc {rc}): {out[-300:]!r}")
    return vals


def fill_guest(g, ram, percent, timeout):
    """Fill the guest's memory with pbfill (tests/guest/pbfill.c: half text, a
    quarter random, a quarter zero, PERCENT of MemAvailable), then read its
    meminfo. Returns {filled_mib, fill_seconds (the guest's), fill_wall, meminfo,
    in_use (RAM - MemFree)}."""
    t0 = time.monotonic()
    rc, out = guest_sh(g, f"pbfill {percent}", timeout)
    wall = time.monotonic() - t0
    m = re.search(r"PBTEST: filled (\d+) MiB text (\d+) random (\d+) zero (\d+) in ([\d.]+) s",
                  out)
    if rc != 0 or not m:
        raise RuntimeError(f"pbfill failed (rc {rc}): {out.strip()[-300:]!r}")
    mi = meminfo(g)
    return {"filled_mib": int(m.group(1)), "text_mib": int(m.group(2)),
            "random_mib": int(m.group(3)), "zero_mib": int(m.group(4)),
            "fill_seconds": float(m.group(5)), "fill_wall": round(wall, 2),
            "meminfo": mi, "in_use": ram - mi["MemFree"]}


def physical_limit(ram_file, ram, outdir):
    """The floor under any snapshot on this machine: read the guest's RAM from
    its backing file (the guest paused), then write the same bytes to a file
    in the work directory (the spool's disk) and fsync it. Each timed alone."""
    CH = 16 * MiB
    buf = bytearray(CH)
    mv = memoryview(buf)
    res = {"bytes": ram, "ram_file": ram_file}
    fd = os.open(ram_file, os.O_RDONLY)
    try:
        t0 = time.monotonic()
        n = 0
        while True:
            k = os.readv(fd, [mv])
            if k <= 0:
                break
            n += k
        res["read_seconds"] = time.monotonic() - t0
        res["read_bytes"] = n
        out = os.path.join(outdir, "physical-limit.bin")
        wfd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            wsecs = 0.0
            while True:
                k = os.readv(fd, [mv])
                if k <= 0:
                    break
                t = time.monotonic()
                view = mv[:k]
                while view:
                    w = os.write(wfd, view)
                    view = view[w:]
                wsecs += time.monotonic() - t
            t = time.monotonic()
            os.fsync(wfd)
            res["fsync_seconds"] = time.monotonic() - t
            res["write_seconds"] = wsecs + res["fsync_seconds"]
        finally:
            os.close(wfd)
            os.unlink(out)
    finally:
        os.close(fd)
    return res


def remove(path, keep):
    if not keep and path and os.path.exists(path):
        os.unlink(path)


def daemon_has_snapshots(binary):
    try:
        p = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=10)
    except OSError as e:
        return False, str(e)
    if "snapshot_format" not in p.stdout + p.stderr:
        return False, f"{binary} --help does not list snapshot_format (feature not built)"
    return True, ""


def panic_and_hold(g, q, timeout):
    """Panic the guest (no crash kernel): QEMU's panic action is pause, so it
    stays in guest-panicked. Returns the GUEST_PANICKED event."""
    g.command("panic")
    ev = q.wait_event("GUEST_PANICKED", timeout)
    deadline = time.monotonic() + 30
    while q.execute("query-status")["status"] != "guest-panicked":
        if time.monotonic() > deadline:
            raise RuntimeError(f"guest not in guest-panicked: {q.execute('query-status')}")
        time.sleep(0.2)
    return ev


# --- the anchor: dump-guest-memory by hand -----------------------------------
def anchor_dump(q, fmt, path, ram, timeout):
    """A plain dump-guest-memory (paging=false, file:PATH, detach) on the
    paused guest; seconds = from the command to QEMU's DUMP_COMPLETED."""
    if os.path.exists(path):
        os.unlink(path)
    q.drain()
    t0 = time.time()
    q.execute("dump-guest-memory", paging=False, protocol=f"file:{path}", format=fmt,
              detach=True)
    deadline = time.monotonic() + timeout
    last = time.monotonic()
    while True:
        try:
            ev = q.wait_event("DUMP_COMPLETED", 2)
            break
        except QMPTimeout:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"anchor {fmt}: no DUMP_COMPLETED within {timeout:.0f} s")
        if time.monotonic() - last > 15:
            st = q.execute("query-dump")
            log(f"    ... {st.get('status')}: {human(st.get('completed'))} "
                f"of {human(st.get('total'))}")
            last = time.monotonic()
    secs = qemu_time(ev) - t0
    data = ev.get("data", {})
    if data.get("error"):
        raise RuntimeError(f"anchor {fmt}: dump failed: {data['error']}")
    return secs, data.get("result", {})


# --- panicbrokerd ------------------------------------------------------------
def read_records(spool):
    recs = []
    for p in sorted(glob.glob(os.path.join(spool, "crashes", "*", "record.json"))):
        try:
            with open(p) as f:
                recs.append(json.load(f))
        except (OSError, ValueError):
            pass  # replaced atomically, but be tolerant
    return recs


def daemon_snapshot(g, q, fmt, fdir, ram, timeout, boot_timeout, keep, crash=None):
    """One panic handled by panicbrokerd with snapshot=always in `fmt`.
    crash: {"vmlinux": PATH or None} to open the file in crash(8) too."""
    spool = os.path.join(fdir, "spool")
    spec = (f"bench,qmp={g.qmp_path},snapshot=always,snapshot_format={fmt},"
            f"final_action=restart")
    d = BenchDaemon(fdir, [spec], spool=spool, log_level="info")
    row = {"daemon_log": d.log_path, "spec": spec}
    d.start()
    try:
        d.wait_log(r"VM bench: attached to QMP", 30)
        q.drain()
        before = {r.get("id") for r in read_records(spool)}
        mark = g.console_offset()
        t_cmd = time.time()
        g.command("panic")
        deadline = time.monotonic() + timeout
        rec, last_state = None, None
        while True:
            q.drain()  # keep reading: events carry QEMU's own timestamps anyway
            recs = [r for r in read_records(spool) if r.get("id") not in before]
            if recs:
                rec = recs[-1]
                snap = rec.get("snapshot") or {}
                st = (rec.get("state"), snap.get("state"))
                if st != last_state:
                    log(f"    record: state {st[0]}, snapshot {st[1] or '-'}")
                    last_state = st
                if rec.get("state") == "closed":
                    break
            if d.proc.poll() is not None:
                raise RuntimeError(f"panicbrokerd exited ({d.proc.returncode}); "
                                   f"log: {d.log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the crash record did not close within {timeout:.0f} s"
                                   f" (last: {last_state}); log: {d.log_path}")
            time.sleep(0.25)
        row["record"] = rec
        row["record_path"] = os.path.join(spool, "crashes", rec["id"], "record.json")
        # the pause, as the test monitor saw it
        t_end = time.monotonic() + 30
        while True:
            evs = [e for e in q.events if qemu_time(e) >= t_cmd - 1]
            stops = [e for e in evs if e["event"] in ("GUEST_PANICKED", "STOP")]
            t0 = min((qemu_time(e) for e in stops), default=None)
            resumes = [e for e in evs if e["event"] == "RESUME"
                       and t0 is not None and qemu_time(e) >= t0]
            if resumes or time.monotonic() > t_end:
                break
            time.sleep(0.2)
            q.drain()
        row["events"] = [(e["event"], round(qemu_time(e) - t_cmd, 3), e.get("data"))
                         for e in evs]
        dumps = [e for e in evs if e["event"] == "DUMP_COMPLETED"
                 and t0 is not None and qemu_time(e) >= t0]
        row["dump_seconds"] = qemu_time(dumps[0]) - t0 if dumps else None
        if t0 is not None and resumes:
            row["paused"] = qemu_time(resumes[0]) - t0
        else:
            row["paused"] = None
            row.setdefault("notes", []).append(
                f"no STOP/GUEST_PANICKED..RESUME pair on the test monitor: "
                f"{[e['event'] for e in evs]}")
        snap = rec.get("snapshot") or {}
        row["snapshot"] = snap
        if snap.get("state") == "done" and snap.get("path"):
            cdir = os.path.join(spool, "crashes", rec["id"])
            f = os.path.join(cdir, snap["path"])
            row["file"] = f
            row["file_bytes"] = os.path.getsize(f) if os.path.exists(f) else None
            log(f"    makedumpfile --dump-dmesg {f}")
            row["mdf"] = makedumpfile_reads(f, fdir)
            if crash is not None:
                log(f"    crash -s VMLINUX {f}")
                row["crash"] = crash_reads(f, crash["vmlinux"], fdir)
            remove(f, keep)
        # final_action=restart: the guest boots again (its kernel prints)
        try:
            g.wait_console(r"^PBTEST: booted ", boot_timeout, start=mark)
            row["restarted"] = True
        except AssertionError as e:
            row["restarted"] = False
            row.setdefault("notes", []).append(
                "the guest did not boot again after the final action: "
                + str(e).splitlines()[0])
    finally:
        rc = d.finish()
        row["daemon_exit"] = rc
        if rc not in (0, None):
            row.setdefault("notes", []).append(f"panicbrokerd exited {rc} on SIGTERM")
    return row


# --- one guest size ------------------------------------------------------------
def bench_size(args, kdir, size, formats_wanted, use_daemon, results, caps_out):
    ram = size * GiB
    sdir = os.path.join(args.workdir, f"{size}g")
    shutil.rmtree(sdir, ignore_errors=True)  # an earlier run's spools, dumps, logs
    os.makedirs(sdir)
    vmdir = os.path.join(sdir, "vm")
    dump_timeout = 300 + 300 * size
    boot_timeout = 180 + 30 * size
    fill_timeout = 300 + 120 * size
    extra, ram_file, crash = [], None, None
    if args.busy:
        # the guest's RAM in a file, so that the physical limit can read it
        ram_file, where = ram_backing(size, args.workdir)
        qpath = ram_file.replace(",", ",,")
        extra = ["-object", f"memory-backend-file,id=pbram,size={size * 1024}M,"
                            f"mem-path={qpath},share=on",
                 "-machine", "memory-backend=pbram"]
    g = Guest(kdir, vmdir, pvpanic="isa", memory_mib=size * 1024, cmdline=["pbtest.kdump=0"],
              extra_args=extra)
    _guests.append(g)

    def drop_ram_file():
        if ram_file and os.path.exists(ram_file):
            os.unlink(ram_file)

    def busy_fill(side):
        log(f"{size} GiB: pbfill {args.fill_percent} (half text, a quarter random, "
            f"a quarter zero)")
        fi = fill_guest(g, ram, args.fill_percent, fill_timeout)
        log(f"    filled {fi['filled_mib']} MiB in {fi['fill_seconds']:.1f} s; in use "
            f"{human(fi['in_use'])} of {human(ram)} (MemFree "
            f"{human(fi['meminfo']['MemFree'])})")
        side["fill"] = fi
        return fi

    try:
        drop_ram_file()
        if args.busy:
            crash = {"vmlinux": find_vmlinux(g.kver, args.vmlinux)}
            log(f"{size} GiB: guest RAM in {ram_file} ({where}); crash(8) with "
                f"{crash['vmlinux'] or 'no vmlinux: the crash column says n/a'}")
        log(f"{size} GiB: booting {g.kver} ({size * 1024} MiB, TCG)")
        t = time.monotonic()
        g.start()
        g.wait_ready(boot_timeout)
        log(f"{size} GiB: ready after {time.monotonic() - t:.1f} s")
        q = g.qmp()
        offered = q.execute("query-dump-guest-memory-capability")["formats"]
        caps_out[:] = offered
        fmts = [f for f in offered if f not in SKIP_FORMATS]
        if formats_wanted:
            missing = [f for f in formats_wanted if f not in offered]
            if missing:
                raise BenchAbort(f"QEMU does not offer {', '.join(missing)} "
                                 f"(it offers {', '.join(offered)})")
            fmts = [f for f in formats_wanted]
        rows = {f: {"size_gib": size, "format": f, "anchor": {}, "daemon": {}} for f in fmts}
        for f in fmts:
            results.append(rows[f])

        # -- anchors, all on one panicked guest
        if args.busy:
            fi = busy_fill({})
            for f in fmts:
                rows[f]["anchor"]["fill"] = fi
        q.execute("set-action", panic="pause")
        mark = g.console_offset()
        log(f"{size} GiB: panic (panic action pause, no crash kernel)")
        panic_and_hold(g, q, 60)
        for f in fmts:
            a = rows[f]["anchor"]
            path = os.path.join(sdir, f"anchor-{f}.{EXT.get(f, 'kdump')}")
            log(f"{size} GiB anchor {f}: dump-guest-memory paging=false file:{path}")
            try:
                secs, res = anchor_dump(q, f, path, ram, dump_timeout)
                a.update(seconds=secs, file_bytes=os.path.getsize(path), qemu_result=res,
                         file=path)
                log(f"    {secs:.2f} s, {human(a['file_bytes'])}; makedumpfile --dump-dmesg")
                a["mdf"] = makedumpfile_reads(path, sdir)
                if crash is not None:
                    log(f"    crash -s VMLINUX {path}")
                    a["crash"] = crash_reads(path, crash["vmlinux"], sdir)
            except (RuntimeError, QMPError) as e:
                a["error"] = str(e)
                log(f"    FAILED: {e}")
            finally:
                remove(path, args.keep)

        if args.busy:
            # -- the physical limit, on the same paused guest's RAM
            log(f"{size} GiB: physical limit: read {ram_file}, write the same bytes to "
                f"{sdir} + fsync")
            try:
                lim = physical_limit(ram_file, ram, sdir)
                log(f"    read {lim['read_seconds']:.2f} s, write+fsync "
                    f"{lim['write_seconds']:.2f} s")
            except OSError as e:
                lim = {"error": str(e)}
                log(f"    FAILED: {e}")
            for f in fmts:
                rows[f]["limit"] = lim

        if not use_daemon:
            return
        # -- panicbrokerd, one panic per format, each on a fresh QEMU: after a
        # system_reset QEMU keeps the previous boot's RAM contents, so a
        # guest's second panic has more non-zero pages to dump (kdump-zlib
        # here: 50 -> 66 -> 71 MiB, 1.1 -> 1.7 -> 1.9 s over three resets),
        # which would bias the comparison with the anchor.
        for f in fmts:
            fdir = os.path.join(sdir, f"daemon-{f}")
            os.makedirs(fdir, exist_ok=True)
            q.close()
            log(f"{size} GiB: new QEMU, boot for panicbrokerd {f}")
            mark = g.console_offset()
            g.stop()
            drop_ram_file()  # a fresh QEMU starts from zeroed RAM here too
            g.start()
            g.wait_ready(boot_timeout, start=mark)
            q = g.qmp()  # panic action left at QEMU's default: the daemon sets it
            log(f"{size} GiB panicbrokerd {f}: snapshot=always,snapshot_format={f},"
                f"final_action=restart")
            try:
                fi = busy_fill({}) if args.busy else None
                rows[f]["daemon"] = daemon_snapshot(g, q, f, fdir, ram, dump_timeout + 600,
                                                    boot_timeout, args.keep, crash)
                if fi:
                    rows[f]["daemon"]["fill"] = fi
                dr = rows[f]["daemon"]
                snap = dr.get("snapshot", {})
                log(f"    snapshot {snap.get('state')}"
                    f"{': ' + snap['reason'] if snap.get('reason') else ''}; paused "
                    f"{'?' if dr.get('paused') is None else round(dr['paused'], 2)} s")
            except (RuntimeError, AssertionError, QMPError) as e:
                rows[f]["daemon"]["error"] = str(e).splitlines()[0]
                log(f"    FAILED: {e}")
    finally:
        g.stop()
        drop_ram_file()


# --- the table -------------------------------------------------------------------
def fmt_s(x):
    return "-" if x is None else f"{x:.1f}"


def fmt_rate(ram, secs):
    return "-" if not secs else f"{ram / MiB / secs:.0f}"


def fmt_mdf(m):
    if not m:
        return "-"
    if m.get("ok") is None:
        return "n/a"
    return "yes" if m["ok"] else "no"


def daemon_bytes(d):
    """(bytes, mark): the record's snapshot.bytes, else the file's size marked '*'."""
    snap = d.get("snapshot") or {}
    if snap.get("bytes") is not None:
        return snap["bytes"], ""
    if d.get("file_bytes") is not None:
        return d["file_bytes"], "*"
    return None, ""


def table(results):
    head1 = (f"{'':>4} {'':<11}| {'anchor: dump-guest-memory by hand':<34}"
             f"| panicbrokerd snapshot=always")
    head2 = (f"{'RAM':>4} {'format':<11}| {'paused s':>8} {'MiB/s':>6} {'file':>10} {'mdf':>5} "
             f"| {'paused s':>8} {'snap s':>6} {'dump s':>6} {'MiB/s':>6} {'file':>11} "
             f"{'mdf':>4} {'verify.ok':>9}  state")
    lines = [head1, head2, "-" * len(head2)]
    for r in results:
        ram = r["size_gib"] * GiB
        a, d = r["anchor"], r["daemon"]
        snap = d.get("snapshot") or {}
        verify = (snap.get("verify") or {}).get("ok", "-") if snap else "-"
        verify = {True: "true", False: "false", None: "null"}.get(verify, verify)
        state = d.get("error") and "ERROR" or snap.get("state") or ("-" if not d else "?")
        if a.get("error"):
            acols = f"{'ERROR':>8} {'':>6} {'':>10} {'':>5} "
        else:
            acols = (f"{fmt_s(a.get('seconds')):>8} {fmt_rate(ram, a.get('seconds')):>6} "
                     f"{human(a.get('file_bytes')):>10} {fmt_mdf(a.get('mdf')):>5} ")
        nbytes, star = daemon_bytes(d)
        lines.append(
            f"{r['size_gib']:>3}G {r['format']:<11}| {acols}"
            f"| {fmt_s(d.get('paused')):>8} {fmt_s(snap.get('seconds')):>6} "
            f"{fmt_s(d.get('dump_seconds')):>6} "
            f"{fmt_rate(ram, snap.get('seconds')):>6} {human(nbytes) + star:>11} "
            f"{fmt_mdf(d.get('mdf')):>4} {verify:>9}  {state}")
    return "\n".join(lines)


def fmt_spg(secs, in_use):
    return "-" if secs is None or not in_use else f"{secs / (in_use / GiB):.1f}"


def busy_table(results):
    """The busy-guest table: per size and format, anchor and daemon with the
    RAM in use at the panic, seconds per GiB in use and crash(8)."""
    head1 = (f"{'':>4} {'':<11}| {'anchor: dump-guest-memory by hand':<50}"
             f"| panicbrokerd snapshot=always")
    head2 = (f"{'RAM':>4} {'format':<11}| {'in use':>9} {'paused s':>8} {'s/GiB':>5} "
             f"{'file':>10} {'mdf':>4} {'crash':>5} "
             f"| {'in use':>9} {'paused s':>8} {'dump s':>6} {'s/GiB':>5} {'file':>11} "
             f"{'mdf':>4} {'crash':>5} {'verify.ok':>9}  state")
    lines = [head1, head2, "-" * len(head2)]
    for r in results:
        a, d = r["anchor"], r["daemon"]
        snap = d.get("snapshot") or {}
        verify = (snap.get("verify") or {}).get("ok", "-") if snap else "-"
        verify = {True: "true", False: "false", None: "null"}.get(verify, verify)
        state = d.get("error") and "ERROR" or snap.get("state") or ("-" if not d else "?")
        a_use = (a.get("fill") or {}).get("in_use")
        d_use = (d.get("fill") or {}).get("in_use")
        if a.get("error"):
            acols = f"{human(a_use):>9} {'ERROR':>8} {'':>5} {'':>10} {'':>4} {'':>5} "
        else:
            acols = (f"{human(a_use):>9} {fmt_s(a.get('seconds')):>8} "
                     f"{fmt_spg(a.get('seconds'), a_use):>5} "
                     f"{human(a.get('file_bytes')):>10} {fmt_mdf(a.get('mdf')):>4} "
                     f"{fmt_mdf(a.get('crash')):>5} ")
        nbytes, star = daemon_bytes(d)
        lines.append(
            f"{r['size_gib']:>3}G {r['format']:<11}| {acols}"
            f"| {human(d_use):>9} {fmt_s(d.get('paused')):>8} "
            f"{fmt_s(d.get('dump_seconds')):>6} {fmt_spg(d.get('paused'), d_use):>5} "
            f"{human(nbytes) + star:>11} {fmt_mdf(d.get('mdf')):>4} "
            f"{fmt_mdf(d.get('crash')):>5} {verify:>9}  {state}")
    # the physical limit, once per size
    lines.append("")
    seen = set()
    for r in results:
        lim = r.get("limit")
        if not lim or r["size_gib"] in seen:
            continue
        seen.add(r["size_gib"])
        if lim.get("error"):
            lines.append(f"physical limit {r['size_gib']} GiB: ERROR {lim['error']}")
            continue
        n = lim["bytes"]
        rs, ws = lim["read_seconds"], lim["write_seconds"]
        lines.append(
            f"physical limit {r['size_gib']} GiB: read the RAM file {rs:.2f} s "
            f"({n / MiB / rs:.0f} MiB/s, {rs / (n / GiB):.2f} s/GiB); write it to the "
            f"work dir's disk + fsync {ws:.2f} s ({n / MiB / ws:.0f} MiB/s, "
            f"{ws / (n / GiB):.2f} s/GiB; fsync {lim['fsync_seconds']:.2f} s)")
    return "\n".join(lines)


def notes(results):
    out = []
    for r in results:
        tag = f"{r['size_gib']}G {r['format']}"
        a, d = r["anchor"], r["daemon"]
        if a.get("error"):
            out.append(f"{tag} anchor: {a['error']}")
        elif a.get("mdf") and a["mdf"].get("ok") is False:
            out.append(f"{tag} anchor, makedumpfile: {a['mdf']['why']}")
        if d.get("error"):
            out.append(f"{tag} panicbrokerd: {d['error']}")
        snap = d.get("snapshot") or {}
        if snap and snap.get("state") != "done":
            out.append(f"{tag} panicbrokerd: snapshot {snap.get('state')}: {snap.get('reason')}")
        if d.get("mdf") and d["mdf"].get("ok") is False:
            out.append(f"{tag} panicbrokerd file, makedumpfile: {d['mdf']['why']}")
        if a.get("crash") and a["crash"].get("ok") is False:
            out.append(f"{tag} anchor, crash: {a['crash']['why']}")
        if d.get("crash") and d["crash"].get("ok") is False:
            out.append(f"{tag} panicbrokerd file, crash: {d['crash']['why']}")
        for side, x in (("anchor", a), ("panicbrokerd", d)):
            if (x.get("crash") or {}).get("ok") is None and (x.get("crash") or {}).get("why"):
                out.append(f"{tag} {side}, crash: n/a: {x['crash']['why']}")
        v = snap.get("verify") or {}
        if v.get("ok") is None and v.get("reason"):
            out.append(f"{tag} panicbrokerd verify: {v['reason']}")
        if snap.get("state") == "done" and snap.get("bytes") is None:
            out.append(f"{tag} panicbrokerd: the record has no snapshot.bytes (file size "
                       f"marked * is the file's own); fields present: {', '.join(snap)}")
        if (d.get("file_bytes") is not None and snap.get("bytes") is not None
                and d["file_bytes"] != snap["bytes"]):
            out.append(f"{tag} panicbrokerd: record says {snap['bytes']} bytes, "
                       f"the file has {d['file_bytes']}")
        for n in d.get("notes", []):
            out.append(f"{tag} panicbrokerd: {n}")
    return out


def verdict(results):
    """Which format the figures favour as the operators' default."""
    if not results:
        return "no results"
    big = max(r["size_gib"] for r in results)
    rows = {r["format"]: r for r in results if r["size_gib"] == big}

    def fig(r):
        d, a = r["daemon"], r["anchor"]
        snap = d.get("snapshot") or {}
        if snap.get("state") == "done":
            return ("panicbrokerd", daemon_bytes(d)[0], d.get("paused") or snap.get("seconds"),
                    (d.get("mdf") or {}).get("ok"))
        return ("anchor", a.get("file_bytes"), a.get("seconds"), (a.get("mdf") or {}).get("ok"))

    figs = {f: fig(r) for f, r in rows.items() if fig(r)[1] is not None}
    if not figs:
        return "no complete figures to compare"
    readable = [f for f, x in figs.items() if x[3]]
    pool = readable or list(figs)
    pick = min(pool, key=lambda f: (figs[f][1], figs[f][2] or 0))
    src, size, secs, ok = figs[pick]
    parts = []
    for f, (osrc, osize, osecs, ook) in sorted(figs.items()):
        if f == pick:
            continue
        ratio = osize / size if size else float("inf")
        t = ""
        if secs and osecs:
            t = (f", paused {secs:.1f} s vs {osecs:.1f} s"
                 f" ({'faster' if secs < osecs else 'slower'})")
        r = {True: "yes", False: "no", None: "n/a"}
        parts.append(f"{ratio:.1f}x smaller than {f} ({human(size)} vs {human(osize)}){t}, "
                     f"makedumpfile reads it: {r[ok]} vs {r[ook]}")
    why = "; ".join(parts) if parts else "the only format measured"
    basis = "readable by makedumpfile and smallest" if readable else \
        "smallest (no format was readable by makedumpfile)"
    return (f"Default for operators: the figures favour {pick} ({basis}; at {big} GiB, "
            f"{src}): {why}.")


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def other_qemus():
    """QEMU processes not started by this bench (they share the 2 cores)."""
    mine = {g.pid for g in _guests if g.pid}
    n = 0
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) in mine:
            continue
        try:
            with open(f"/proc/{d}/comm") as f:
                if f.read().startswith("qemu-system"):
                    n += 1
        except OSError:
            pass
    return n


# --- main ------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1,2,4", help="guest RAM in GiB, comma-separated "
                    "(default 1,2,4)")
    ap.add_argument("--formats", default="", help="comma-separated dump formats (default: "
                    "every format QEMU offers but win-dmp)")
    ap.add_argument("--series", default="6.1", choices=("6.1", "6.12"),
                    help="guest kernel series (default 6.1)")
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep every dump there "
                    "(default: work in build/bench, delete each dump once measured)")
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    ap.add_argument("--no-daemon", action="store_true",
                    help="anchor only: do not run panicbrokerd")
    ap.add_argument("--busy", action="store_true",
                    help="busy guests: fill the guest's memory before each panic (pbfill: "
                    "half text, a quarter random, a quarter zero), measure the physical "
                    "limit (read the RAM's backing file, write it to disk + fsync) and "
                    "open every file in crash(8) too")
    ap.add_argument("--fill-percent", type=int, default=85, metavar="PCT",
                    help="with --busy: how much of the guest's MemAvailable pbfill takes "
                    "(default 85)")
    ap.add_argument("--vmlinux", metavar="FILE",
                    help="with --busy: the guest kernel's vmlinux with debug symbols, for "
                    "crash(8) (default /usr/lib/debug/boot/vmlinux-KVER, else "
                    "build/debug/vmlinux-KVER; none: the crash column says n/a)")
    args = ap.parse_args()
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
        assert sizes and all(s > 0 for s in sizes)
    except (ValueError, AssertionError):
        ap.error(f"--sizes: positive integers (GiB) separated by commas, not {args.sizes!r}")
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    if not 1 <= args.fill_percent <= 95:
        ap.error(f"--fill-percent: 1 to 95, not {args.fill_percent}")
    args.workdir = os.path.abspath(args.keep or args.workdir or os.path.join(BUILD, "bench"))

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)

    guests = find_guests([args.series])
    if args.series not in guests:
        sys.exit(f"bench: no guest for kernel series {args.series}: run make guests")
    daemon = os.path.abspath(os.environ.get("PB_DAEMON") or os.path.join(BUILD, "panicbrokerd"))
    os.environ["PB_DAEMON"] = daemon
    use_daemon = not args.no_daemon
    if use_daemon:
        if not os.access(daemon, os.X_OK):
            sys.exit(f"bench: {daemon} is not built: run make (or use --no-daemon)")
        ok, why = daemon_has_snapshots(daemon)
        if not ok:
            sys.exit(f"bench: {why}; use --no-daemon for the anchor alone")
    if not shutil.which("makedumpfile"):
        log("makedumpfile not installed: the readability columns say n/a")

    os.makedirs(args.workdir, exist_ok=True)
    # -- disk space: a dump may not compress, so plan for the whole RAM
    nf = len(formats) if formats else 2
    if args.keep:
        need = sum(s * GiB for s in sizes) * nf * (2 if use_daemon else 1)
        plan = (f"--keep keeps every dump: up to RAM x {nf} formats"
                f"{' x 2 (anchor + daemon)' if use_daemon else ''} summed over the sizes")
    else:
        need = max(sizes) * GiB + DAEMON_MARGIN
        plan = ("one dump at a time, each deleted once measured: up to the largest RAM "
                "+ 64 MiB (what panicbrokerd demands before it dumps)")
    if args.busy:
        # the physical limit writes the RAM once more (the anchors' dumps are gone by then
        # unless --keep keeps them)
        need += max(sizes) * GiB if args.keep else 0
        plan += "; --busy: the physical limit writes up to the RAM once more"
    need += SLACK
    free = shutil.disk_usage(args.workdir).free
    log(f"work dir {args.workdir}: {human(free)} free, needs up to {human(need)} ({plan})")
    if free < need:
        sys.exit(f"bench: NOT ENOUGH DISK SPACE in {args.workdir}: {human(free)} free, "
                 f"up to {human(need)} needed ({plan}). Free some space, run fewer --sizes, "
                 f"or point --keep at a bigger file system.")

    # -- host memory: QEMU touches all of the guest's RAM by the time it is dumped
    avail = None
    with open("/proc/meminfo") as f:
        for ln in f:
            if ln.startswith("MemAvailable:"):
                avail = int(ln.split()[1]) * 1024
    if avail is not None and avail < max(sizes) * GiB + GiB:
        sys.exit(f"bench: not enough host memory for a {max(sizes)} GiB guest: "
                 f"{human(avail)} available, {human(max(sizes) * GiB + GiB)} wanted")

    started = datetime.datetime.now().astimezone()
    load0, others = loadavg(), other_qemus()
    if others:
        log(f"note: {others} other QEMU process(es) running: the timings share the CPUs")
    results, caps = [], []
    t_all = time.monotonic()
    kver = None
    interrupted = None
    try:
        for size in sizes:
            try:
                bench_size(args, guests[args.series], size, formats, use_daemon, results, caps)
            except (RuntimeError, AssertionError, QMPError, OSError) as e:
                log(f"{size} GiB: ABORTED: {e}")
                results.append({"size_gib": size, "format": "(all)",
                                "anchor": {"error": str(e).splitlines()[0]}, "daemon": {}})
            kver = kver or (_guests[-1].kver if _guests else None)
    except BenchAbort as e:
        _cleanup()
        sys.exit(f"bench: {e}")
    except (KeyboardInterrupt, SystemExit) as e:
        interrupted = e
    finally:
        _cleanup()
    if not results:
        sys.exit("bench: nothing was measured")

    elapsed = time.monotonic() - t_all
    out = []
    out.append(f"snapshot bench {started:%Y-%m-%d %H:%M %Z}: guest {kver or args.series}, "
               f"TCG, {os.cpu_count()} host cores, QEMU formats offered: "
               f"{', '.join(caps) or '?'}; {elapsed / 60:.1f} min")
    out.append(f"daemon {daemon}; load average {load0} at the start, {loadavg()} at the end; "
               f"other QEMUs at the start: {others}")
    out.append("")
    out.append(busy_table(results) if args.busy else table(results))
    out.append("")
    if args.busy:
        out.append("busy: before each panic pbfill took "
                   f"{args.fill_percent}% of MemAvailable (half text, a quarter random, a "
                   "quarter zero); in use = guest RAM - MemFree just before the panic;")
        out.append("      s/GiB = paused s / GiB in use; crash: crash -s VMLINUX FILE, `log` "
                   "has 'Kernel panic - not syncing'.")
    out.append("paused s: anchor = dump-guest-memory wall time (command to DUMP_COMPLETED);")
    out.append("          panicbrokerd = STOP/GUEST_PANICKED to RESUME on the test monitor.")
    if args.busy:
        out.append("dump s: STOP/GUEST_PANICKED to QEMU's DUMP_COMPLETED (the rest of the "
                   "pause is the daemon's rewrite, fsync, verify).")
    else:
        out.append("snap s: the record's snapshot.seconds; dump s: STOP/GUEST_PANICKED to "
                   "QEMU's DUMP_COMPLETED (the rest of the pause is the daemon's rewrite, "
                   "fsync, verify).")
        out.append("MiB/s: guest RAM / (anchor: paused s; panicbrokerd: snap s).")
    out.append("file: anchor file size / the record's snapshot.bytes (* = not in the record: "
               "the file's size). mdf: makedumpfile --dump-dmesg FILE")
    out.append("      exits 0 and the log it writes has 'Kernel panic - not syncing'; "
               "verify.ok: the record's snapshot.verify.ok.")
    ns = notes(results)
    if ns:
        out.append("")
        out.append("notes:")
        out += [f"  {n}" for n in ns]
    out.append("")
    out.append(("(interrupted: partial figures) " if interrupted is not None else "")
               + verdict(results))
    text = "\n".join(out)
    print("\n" + text, flush=True)
    with open(os.path.join(args.workdir, "results.txt"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(args.workdir, "results.json"), "w") as f:
        json.dump({"started": started.isoformat(), "series": args.series, "kver": kver,
                   "host": platform.node(), "cores": os.cpu_count(), "daemon": daemon,
                   "loadavg_start": load0, "loadavg_end": loadavg(),
                   "other_qemus_at_start": others, "formats_offered": caps,
                   "busy": args.busy, "fill_percent": args.fill_percent if args.busy else None,
                   "results": results}, f, indent=1, default=str)
    log(f"results in {args.workdir}/results.txt and results.json")
    if interrupted is not None:
        log("interrupted")
        sys.exit(130 if isinstance(interrupted, KeyboardInterrupt) else interrupted.code)
    bad = [r for r in results if r["anchor"].get("error") or r["daemon"].get("error")]
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
