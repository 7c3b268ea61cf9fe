# SPDX-License-Identifier: MIT
"""The kdump-tools hook's reading of kdump-config's output
(guest-tools/kdump-tools/kdump-tools-dump), on the host with a stand-in
kdump-config that prints what the real one and makedumpfile print:

- makedumpfile's "Copying data : [ PCT %]" progress ("\\r"-separated, as on
  a console) becomes "kdump progress PCT", only when PCT grew, at most once
  per PB_PROGRESS_SECONDS, never 100 (done follows);
- a failed save reports kdump-tools' own failure message with the error of
  the tool under it, e.g. "failed to save vmcore in DIR: No space left on
  device".

The rest of the wrapper (start/done/failed, reboot, KDUMP_FAIL_CMD) is
tests/e2e/test_kdump_tools.py; in a real guest: test_realguest.py.
"""

import os
import subprocess
import textwrap
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("PB_BUILD", TOP / "build"))
PBREPORT = BUILD / "pbreport"
WRAPPER = TOP / "guest-tools" / "kdump-tools" / "kdump-tools-dump"


def progress(pct, label="Copying data"):
    return f"\\r{label:<35}: [{pct:5.1f} %] /  eta: 1s"


@pytest.fixture
def run(tmp_path):
    if not os.access(PBREPORT, os.X_OK):
        pytest.fail(f"{PBREPORT} missing: run make")
    (tmp_path / "bin").mkdir()
    os.symlink(PBREPORT, tmp_path / "bin" / "pbreport")
    dev = tmp_path / "dev"
    dev.write_bytes(b"")
    vmcore = tmp_path / "vmcore"
    vmcore.write_bytes(b"\x7fELF" + b"\0" * 60)
    defaults = tmp_path / "defaults"
    defaults.write_text(f'USE_KDUMP=1\nKDUMP_COREDIR="{tmp_path}/crash"\n')
    reboot = tmp_path / "reboot"
    reboot.write_text("#!/bin/sh\n")
    reboot.chmod(0o755)

    def go(body, rc=0, seconds="0"):
        kc = tmp_path / "kdump-config"
        kc.write_text("#!/bin/sh\n" + textwrap.dedent(body) + f"\nexit {rc}\n")
        kc.chmod(0o755)
        env = {
            "PATH": "/usr/bin:/bin", "PB_KT_PATH": str(tmp_path / "bin"),
            "PB_KT_INIT": "/bin/false", "PB_KT_KDUMP_CONFIG": str(kc),
            "PB_KT_DEFAULTS": str(defaults), "PB_KT_VMCORE": str(vmcore),
            "PB_KT_REBOOT": str(reboot), "PB_KT_RUNDIR": str(tmp_path),
            "PBREPORT_DEVICE": str(dev), "PB_PROGRESS_SECONDS": seconds,
        }
        p = subprocess.run(["/bin/sh", str(WRAPPER)], capture_output=True, text=True,
                           env=env, timeout=60)
        assert p.returncode == 0, p.stderr
        assert not list(tmp_path.glob("panicbroker-kdump.*")), "temporary files left"
        return dev.read_text().splitlines(), p.stdout

    return go


def test_progress_from_makedumpfile_grows_and_skips_100(run):
    out = "".join([progress(0, "Excluding unnecessary pages"), progress(100, "Excluding unnecessary pages"),
                   progress(3.2), progress(3.9), progress(41.0), progress(40.0),
                   progress(87.5), progress(100.0)])
    reports, stdout = run(f"""\
        echo "kdump-tools: running makedumpfile -F -c -d 31 /proc/vmcore | compress > X."
        printf '%b\\n' '{out}' >&2
        echo "kdump-tools: saved vmcore in /x ... done."
        """)
    assert reports == ["kdump start", "kdump progress 3", "kdump progress 41",
                       "kdump progress 87", "kdump done 0"]
    # kdump-config's own lines still reach the console and the journal
    assert "running makedumpfile" in stdout and "saved vmcore" in stdout


def test_progress_is_bounded_in_rate(run):
    # one line a second would be one report each; 3 s between reports here
    body = "\n".join(f"printf '%b' '{progress(p)}' >&2; sleep 1" for p in (10, 20, 30, 40, 50))
    reports, _ = run(body, seconds="3")
    pcts = [r for r in reports if r.startswith("kdump progress")]
    assert pcts[0] == "kdump progress 10"
    assert 1 <= len(pcts) <= 2, reports


def test_failed_save_reports_kdump_tools_reason_and_the_tools_error(run):
    reports, _ = run("""\
        echo "kdump-tools: running makedumpfile -F -c -d 31 /proc/vmcore | compress > /var/crash-small/202612011400/dump-incomplete."
        echo "cat: write error: No space left on device" >&2
        echo "kdump-tools: makedumpfile failed, falling back to 'cp' ... failed!"
        echo "cp: error writing '/var/crash-small/202612011400/vmcore-incomplete': No space left on device" >&2
        echo "kdump-tools: failed to save vmcore in /var/crash-small/202612011400 ... failed!"
        """, rc=1)
    assert reports == ["kdump start", "kdump failed failed to save vmcore in "
                       "/var/crash-small/202612011400: No space left on device"]


def test_failed_save_without_a_message_keeps_the_exit_status(run):
    reports, _ = run("true", rc=4)
    assert reports == ["kdump start", "kdump failed kdump-config savecore failed (exit status 4)"]
