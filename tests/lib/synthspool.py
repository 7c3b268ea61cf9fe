# SPDX-License-Identifier: MIT
"""Synthetic spools: closed crash records written the way panicbrokerd lays
them out (SPOOL/crashes/<id>/record.json, directories 0750, records 0640),
shaped like a real record of a kdump that finished (docs/record.md): a panic
record with a log tail, kdump reports, history and a signature. For the
dashboard's tests and the API benchmark (tests/bench/api-bench.py)."""

import datetime
import json
import os
import random

# Kinds of crash, as signature.c titles them; the guilty frame varies.
KINDS = [
    ("null-deref", "BUG: kernel NULL pointer dereference in {f}"),
    ("gpf", "general protection fault in {f}"),
    ("bug", "kernel BUG in {f}"),
    ("warning", "WARNING in {f}"),
    ("soft-lockup", "watchdog: BUG: soft lockup in {f}"),
    ("hung-task", "INFO: task hung in {f}"),
    ("oom", "Out of memory in {f}"),
    ("divide-error", "divide error in {f}"),
]


def fnv1a64(text):
    x = 0xcbf29ce484222325
    for b in text.encode():
        x = ((x ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return f"{x:016x}"


def ts(usec):
    """RFC 3339 with microseconds, as the daemon writes it."""
    d = datetime.datetime.fromtimestamp(usec // 1000000, datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + f".{usec % 1000000:06d}Z"


def ts_basic(usec):
    d = datetime.datetime.fromtimestamp(usec // 1000000, datetime.timezone.utc)
    return d.strftime("%Y%m%dT%H%M%S") + f".{usec % 1000000:06d}Z"


def bucket_of(n_buckets, rng):
    """A skewed choice: a few buckets hold most crashes, as in a fleet."""
    return min(int(rng.paretovariate(1.2)) - 1, n_buckets - 1)


def make_record(vm, usec, b, log_lines=24):
    """One closed record of VM @vm detected at @usec, in bucket number @b."""
    kind, fmt = KINDS[b % len(KINDS)]
    frame = f"drv{b}_probe"
    title = fmt.format(f=frame)
    bucket = fnv1a64(f"1|{kind}|{frame}")
    cid = f"{ts_basic(usec)}-{vm}"
    log = "".join(f"[{i:5d}.{i * 7919 % 1000000:06d}] synthetic log line {i} of {vm}\n"
                  for i in range(log_lines))
    log += (f"[ 99.000000] {title}\n[ 99.000001] RIP: 0010:{frame}+0x1c/0x80 [drv{b}]\n"
            f"[ 99.000002] Call Trace:\n[ 99.000003]  <TASK>\n[ 99.000004]  {frame}+0x1c/0x80 [drv{b}]\n"
            "[ 99.000005]  do_one_initcall+0x45/0x210\n[ 99.000006]  </TASK>\n")
    t = lambda ms: ts(usec + ms * 1000)  # noqa: E731
    rec = {
        "format": 1, "id": cid, "vm": vm, "event": "GUEST_CRASHLOADED",
        "detected_at": ts(usec), "qmp_timestamp": ts(usec - 300),
        "event_data": {"action": "run"}, "kdump_loaded": True, "state": "closed",
        "final_action": "restart",
        "final_action_result": {"action": "restart", "outcome": "not-needed",
                                "detail": "the kdump kernel rebooted the guest itself",
                                "at": t(13300)},
        "kdump_deadline": t(600000), "duplicate_events": 0,
        "history": [
            {"at": t(0), "state": "detected", "reason": "QMP event GUEST_CRASHLOADED, action run"},
            {"at": t(9), "state": "kdump_running",
             "reason": "a crash kernel is loaded: the guest runs on into kdump (deadline 600 s)"},
            {"at": t(13100), "state": "kdump_running",
             "reason": "kdump session 500d01412592e35c opened: prev_session bb5e22c07d5bc97f is the crashed session"},
            {"at": t(13200), "state": "kdump_running",
             "reason": "kdump session 500d01412592e35c reported done (926617600 bytes)"},
            {"at": t(13290), "state": "kdump_finished", "reason": "the guest reset itself from its kdump kernel"},
            {"at": t(13300), "state": "closed",
             "reason": "final action restart: not-needed: the kdump kernel rebooted the guest itself"},
        ],
        "backend": "qmp", "updated_at": t(13300),
        "kdump": {
            "state": "done", "crashed_session": "0xbb5e22c07d5bc97f",
            "crashed_session_from": "panic slot", "session_deadline": None, "sessions": 1,
            "session": "0x500d01412592e35c", "prev_session": "0xbb5e22c07d5bc97f",
            "linked": True, "session_at": t(13100), "progress_deadline": None,
            "reports": [
                {"at": t(13170), "state": "start", "percent": 0},
                {"at": t(13180), "state": "progress", "percent": 50},
                {"at": t(13200), "state": "done", "percent": 100, "bytes": 926617600},
            ],
            "last_report_at": t(13200), "started_at": t(13170), "bytes": 926617600,
            "finished_at": t(13200),
        },
        "panic": {
            "message": "Kernel panic - not syncing: Fatal exception", "log_tail": log,
            "log_truncated": True, "from_oops": True, "crash_loaded": True, "taint": "0x1",
            "cpu": 0, "uptime_ns": 99000000000, "session": "0xbb5e22c07d5bc97f", "seq": 1,
            "source": "mailbox, before UNLOAD_ACK", "tier_us": 11000,
        },
        "guest": {"kernel_release": "6.1.0-57-amd64", "driver_version": "1.1.0"},
        "unload": {"acked": True, "rtt_us": 6000},
        "signature": {"version": 1, "kind": kind, "title": title, "guilty_frame": frame,
                      "guilty_module": f"drv{b}", "frames": [frame], "bucket": bucket,
                      "from": "panic record"},
    }
    return rec


def write_record(spool, rec):
    d = os.path.join(spool, "crashes", rec["id"])
    os.makedirs(d, mode=0o750, exist_ok=True)
    fd = os.open(os.path.join(d, "record.json"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    with os.fdopen(fd, "w") as f:
        json.dump(rec, f, indent=2)
        f.write("\n")


def make_spool(spool, n, vms=1000, buckets=300, start_usec=1764547200 * 1000000,
               seed=1, log_lines=24):
    """@n closed records over @vms VMs and @buckets signature buckets, one
    every ~30 s from @start_usec (2025-12-01). Returns the ids, oldest first."""
    rng = random.Random(seed)
    os.makedirs(os.path.join(spool, "crashes"), mode=0o750, exist_ok=True)
    os.chmod(spool, 0o750)
    ids = []
    usec = start_usec
    for i in range(n):
        usec += 30 * 1000000 + rng.randrange(1000000)
        rec = make_record(f"vm{rng.randrange(vms)}", usec, bucket_of(buckets, rng), log_lines)
        write_record(spool, rec)
        ids.append(rec["id"])
    return ids
