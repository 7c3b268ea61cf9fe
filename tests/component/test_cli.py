# SPDX-License-Identifier: MIT
"""panicbrokerd and pbctl as an operator meets them: help, errors, config check."""

import json
import os
import subprocess

from tests.lib.daemon import BUILD, daemon_binary, pbctl

DAEMON = os.path.join(BUILD, "panicbrokerd")
PBCTL = os.path.join(BUILD, "pbctl")


def run(*argv):
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=30)


def test_help_and_version():
    for prog in (DAEMON, PBCTL):
        p = run(prog, "--help")
        assert p.returncode == 0 and "Usage:" in p.stdout, p
        p = run(prog, "--version")
        assert p.returncode == 0 and "0.1.0" in p.stdout, p


def test_check_config_prints_the_effective_configuration(tmp_path):
    conf = tmp_path / "pb.conf"
    conf.write_text("# two VMs\nspool /srv/pb\nvm a,qmp=/run/a.sock\n"
                    "vm b,qmp=/run/b.sock,final_action=preserve,kdump_timeout=90\n")
    p = run(DAEMON, "--config", str(conf), "--vm",
            "c,qmp=/run/c.sock,final_action=poweroff,snapshot=always,snapshot_format=elf,"
            "mailbox=/dev/shm/pb-c",
            "--check-config")
    assert p.returncode == 0, p.stderr
    assert p.stdout == ("spool /srv/pb\n"
                        "max-dumps 1\n"
                        "vm a,qmp=/run/a.sock,final_action=restart,kdump_timeout=600,"
                        "snapshot=on-kdump-failure,snapshot_format=kdump-zlib\n"
                        "vm b,qmp=/run/b.sock,final_action=preserve,kdump_timeout=90,"
                        "snapshot=on-kdump-failure,snapshot_format=kdump-zlib\n"
                        "vm c,qmp=/run/c.sock,final_action=poweroff,kdump_timeout=600,"
                        "snapshot=always,snapshot_format=elf,mailbox=/dev/shm/pb-c\n"
                        "configuration OK\n")


def test_bad_configuration_is_a_usage_error_with_a_reason(tmp_path):
    cases = [
        (("--no-api",), "no VMs configured"),
        (("--vm", "web1"), "qmp=PATH is required"),
        (("--vm", "web1,qmp=/q,final_action=reboot"), "restart, poweroff or preserve"),
        (("--vm", "a,qmp=/q", "--vm", "a,qmp=/r"), "configured twice"),
        (("--config", str(tmp_path / "missing.conf")), "missing.conf: No such file"),
        (("--vm", "a,qmp=/q", "stray"), "unexpected argument 'stray'"),
        (("--vm", "a,qmp=/q,snapshot=sometimes"), "always, on-kdump-failure or never"),
        (("--vm", "a,qmp=/q,snapshot_format=win-dmp"), "kdump-zlib, kdump-lzo, kdump-snappy or elf"),
        (("--vm", "a,qmp=/q", "--max-dumps", "0"), "max-dumps must be a whole number"),
    ]
    for args, reason in cases:
        p = run(DAEMON, "--spool", str(tmp_path / "s"), *args)
        assert p.returncode == 2, (args, p)
        assert reason in p.stderr, (args, p.stderr)
    assert not (tmp_path / "s").exists(), "a refused configuration must not touch the spool"


def test_one_daemon_per_spool(tmp_path):
    spool = str(tmp_path / "spool")
    first = subprocess.Popen([daemon_binary(), "--spool", spool, "--vm", "a,qmp=/nonexistent", "--no-api"],
                             stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(100):
            if os.path.exists(os.path.join(spool, "crashes")):
                break
            subprocess.run(["sleep", "0.05"])
        p = run(DAEMON, "--spool", spool, "--vm", "a,qmp=/nonexistent")
        assert p.returncode == 1
        assert "in use by another panicbrokerd" in p.stderr
    finally:
        first.terminate()
        first.wait(timeout=20)
    assert first.returncode == 0


def test_pbctl_on_an_empty_and_a_damaged_spool(tmp_path):
    spool = tmp_path / "spool"
    p = run(PBCTL, "--spool", str(spool), "list")
    assert p.returncode == 1 and "cannot open spool" in p.stderr
    (spool / "crashes" / "20260101T000000.000000Z-a").mkdir(parents=True)
    (spool / "crashes" / "20260101T000000.000000Z-a" / "record.json").write_text('{"vm": ')
    good = spool / "crashes" / "20260101T000001.000000Z-b"
    good.mkdir()
    (good / "record.json").write_text(json.dumps({"id": good.name, "vm": "b",
                                                  "event": "GUEST_PANICKED", "state": "closed"}))
    p = run(PBCTL, "--spool", str(spool), "list")
    assert p.returncode == 1, "a damaged record must be reported in the exit status"
    assert "not a JSON object, skipping" in p.stderr
    assert "20260101T000001.000000Z-b" in p.stdout and "GUEST_PANICKED" in p.stdout
    recs = json.loads(pbctl(str(spool), "list", "--json", "--vm", "b", check=False).stdout)
    assert [r["vm"] for r in recs] == ["b"]
    assert run(PBCTL, "--spool", str(spool), "show", "../../etc").returncode == 2
    p = run(PBCTL, "--spool", str(spool), "show", "20260101T000009.000000Z-zz")
    assert p.returncode == 1 and "no crash" in p.stderr
    assert run(PBCTL, "--spool", str(spool), "frobnicate").returncode == 2
