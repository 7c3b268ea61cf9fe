# SPDX-License-Identifier: MIT
"""The Debian kdump-tools hook (guest-tools/kdump-tools/kdump-tools-dump), run
on the host with stand-ins: a kdump-config that "saves" a dump (or fails), an
init script and a reboot that only log, a non-empty file as /proc/vmcore, and
the real build/pbreport writing to a regular file as its device (pbreport
appends, so the file holds every report in order).

It checks what the wrapper sends (start, then done --bytes SIZE of the file
kdump-config wrote, or failed REASON), that it then does what
/etc/init.d/kdump-tools start does (KDUMP_FAIL_CMD on a failure when set,
else date -R and reboot -f), that without a vmcore it hands over to the init
script, that a missing device never stops the dump, and the ExecStopPost=
mode. Not covered: a real kdump kernel with systemd and kdump-tools (see
docs/kdump-tools.md for what was verified and how).

    /usr/bin/python3 -m pytest -v tests/e2e/test_kdump_tools.py
"""

import os
import shutil
import subprocess
import textwrap

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("PB_BUILD", os.path.join(TOP, "build"))
PBREPORT = os.path.join(BUILD, "pbreport")
WRAPPER = os.path.join(TOP, "guest-tools", "kdump-tools", "kdump-tools-dump")
DUMP_SIZE = 12345


def script(path, body):
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return path


class Bed:
    def __init__(self, tmp):
        self.tmp = tmp
        self.log = tmp / "calls.log"          # what the stand-ins were asked
        self.dev = tmp / "panicbroker"        # pbreport's device
        self.dev.write_bytes(b"")
        self.coredir = tmp / "crash"
        self.coredir.mkdir()
        self.vmcore = tmp / "vmcore"
        self.vmcore.write_bytes(b"\x7fELF" + b"\0" * 60)
        self.bin = tmp / "bin"
        self.bin.mkdir()
        os.symlink(PBREPORT, self.bin / "pbreport")
        self.defaults = tmp / "kdump-tools.defaults"
        self.set_defaults()
        # savecore: what kdump_save_core() leaves: COREDIR/STAMP/dmesg.STAMP
        # and dump.STAMP (or vmcore.STAMP); $SAVECORE_RC and $SAVECORE_FILE
        # steer it
        self.kdump_config = script(tmp / "kdump-config", f"""\
            . "$PB_KT_DEFAULTS"
            echo "kdump-config $*" >> {self.log}
            d=${{KDUMP_COREDIR:-/var/crash}}/202611242300
            mkdir -p "$d"
            echo dmesg > "$d/dmesg.202611242300"
            [ -n "$SAVECORE_FILE" ] && head -c {DUMP_SIZE} /dev/zero > "$d/$SAVECORE_FILE"
            exit ${{SAVECORE_RC:-0}}
            """)
        self.init = script(tmp / "init.d-kdump-tools", f'echo "init $*" >> {self.log}\n')
        self.reboot = script(tmp / "reboot", f'echo "reboot $*" >> {self.log}\n')
        self.fail_cmd = script(tmp / "fail-cmd", f'echo "fail-cmd $*" >> {self.log}\n')

    def set_defaults(self, **kw):
        values = {"USE_KDUMP": "1", "KDUMP_COREDIR": str(self.coredir), **kw}
        self.defaults.write_text("".join(f'{k}="{v}"\n' for k, v in values.items()))

    def run(self, *args, env=None, device=None):
        e = {
            "PATH": "/usr/bin:/bin",
            "PB_KT_PATH": str(self.bin),
            "PB_KT_INIT": str(self.init),
            "PB_KT_KDUMP_CONFIG": str(self.kdump_config),
            "PB_KT_DEFAULTS": str(self.defaults),
            "PB_KT_VMCORE": str(self.vmcore),
            "PB_KT_REBOOT": f"{self.reboot} -f",
            "PB_KT_RUNDIR": str(self.tmp),
            "PBREPORT_DEVICE": str(device or self.dev),
            "SAVECORE_FILE": "dump.202611242300",
        }
        e.update(env or {})
        return subprocess.run(["/bin/sh", WRAPPER, *args], capture_output=True, text=True,
                              env=e, timeout=30)

    def reports(self):
        return self.dev.read_text()

    def calls(self):
        return self.log.read_text().splitlines() if self.log.exists() else []


@pytest.fixture
def bed(tmp_path):
    if not os.access(PBREPORT, os.X_OK):
        pytest.fail(f"{PBREPORT} missing: run make")
    return Bed(tmp_path)


def test_saved_dump_reports_start_and_done_with_its_size_then_reboots(bed):
    # an older dump of an earlier crash must not be taken for this one
    old = bed.coredir / "202601010000"
    old.mkdir()
    (old / "dump.202601010000").write_bytes(b"x" * 99)
    os.utime(old / "dump.202601010000", (1_000_000_000, 1_000_000_000))
    p = bed.run()
    assert p.returncode == 0, p.stderr
    assert bed.reports() == f"kdump start\nkdump done {DUMP_SIZE}\n"
    assert bed.calls() == ["kdump-config savecore", "reboot -f"]
    assert p.stdout.startswith("Starting kdump-tools: ")
    assert p.stderr == ""
    assert not list(bed.tmp.glob("panicbroker-kdump.*")), "marker left behind"


def test_cp_fallback_file_counts(bed):
    p = bed.run(env={"SAVECORE_FILE": "vmcore.202611242300"})
    assert p.returncode == 0, p.stderr
    assert bed.reports() == f"kdump start\nkdump done {DUMP_SIZE}\n"


def test_compressed_dump_counts(bed):
    p = bed.run(env={"SAVECORE_FILE": "dump.202611242300.xz"})
    assert p.returncode == 0, p.stderr
    assert bed.reports() == f"kdump start\nkdump done {DUMP_SIZE}\n"


@pytest.mark.parametrize("remote", ["NFS", "SSH", "FTP"])
def test_remote_dump_size_unknown(bed, remote):
    bed.set_defaults(**{remote: "server:/x"})
    p = bed.run()
    assert p.returncode == 0, p.stderr
    assert bed.reports() == "kdump start\nkdump done 0\n"


def test_success_without_a_dump_file_is_size_zero(bed):
    p = bed.run(env={"SAVECORE_FILE": ""})
    assert p.returncode == 0, p.stderr
    assert bed.reports() == "kdump start\nkdump done 0\n"


def test_failed_save_runs_kdump_fail_cmd(bed):
    bed.set_defaults(KDUMP_FAIL_CMD=f"{bed.fail_cmd} one two")
    p = bed.run(env={"SAVECORE_RC": "3"})
    assert p.returncode == 0, p.stderr
    assert bed.reports() == ("kdump start\n"
                             "kdump failed kdump-config savecore failed (exit status 3)\n")
    assert bed.calls() == ["kdump-config savecore", "fail-cmd one two"]


def test_failed_save_without_fail_cmd_reboots(bed):
    p = bed.run(env={"SAVECORE_RC": "1"})
    assert p.returncode == 0, p.stderr
    assert bed.reports() == ("kdump start\n"
                             "kdump failed kdump-config savecore failed (exit status 1)\n")
    assert bed.calls() == ["kdump-config savecore", "reboot -f"]


@pytest.mark.parametrize("case", ["empty vmcore", "no vmcore", "USE_KDUMP=0", "no USE_KDUMP"])
def test_not_a_dump_hands_over_to_the_init_script(bed, case):
    if case == "empty vmcore":
        bed.vmcore.write_bytes(b"")
    elif case == "no vmcore":
        bed.vmcore.unlink()
    elif case == "USE_KDUMP=0":
        bed.set_defaults(USE_KDUMP="0")
    else:
        bed.defaults.write_text(f'KDUMP_COREDIR="{bed.coredir}"\n')
    p = bed.run()
    assert p.returncode == 0, p.stderr
    assert bed.calls() == ["init start"]
    assert bed.reports() == ""
    assert p.stderr == ""


def test_no_device_never_stops_the_dump(bed):
    missing = bed.tmp / "no-such-device"
    p = bed.run(device=missing)
    assert p.returncode == 0
    assert bed.calls() == ["kdump-config savecore", "reboot -f"]
    assert p.stderr == (f"panicbroker: no {missing} (panicbroker.ko not loaded in this "
                        "kdump kernel?): not reporting to the host\n")
    assert not missing.exists()


def test_no_pbreport_never_stops_the_dump(bed):
    (bed.bin / "pbreport").unlink()
    if shutil.which("pbreport", path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"):
        pytest.skip("this machine has a pbreport installed")
    p = bed.run()
    assert p.returncode == 0
    assert bed.calls() == ["kdump-config savecore", "reboot -f"]
    assert "pbreport not found: not reporting to the host" in p.stderr
    assert bed.reports() == ""


def test_pbreport_failure_is_logged_not_fatal(bed):
    # a directory as the device: every pbreport call fails
    d = bed.tmp / "devdir"
    d.mkdir()
    p = bed.run(device=d)
    assert p.returncode == 0
    assert bed.calls() == ["kdump-config savecore", "reboot -f"]
    assert "panicbroker: pbreport kdump start exited 1" in p.stderr
    assert "panicbroker: pbreport kdump done exited 1" in p.stderr


def test_stopped_reports_an_abnormal_end(bed):
    p = bed.run("--stopped", env={"SERVICE_RESULT": "signal", "EXIT_CODE": "killed",
                                  "EXIT_STATUS": "KILL"})
    assert p.returncode == 0, p.stderr
    assert bed.reports() == "kdump failed kdump-tools-dump.service failed: signal killed KILL\n"
    assert bed.calls() == []


@pytest.mark.parametrize("env", [{"SERVICE_RESULT": "success"}, {}])
def test_stopped_after_success_says_nothing(bed, env):
    p = bed.run("--stopped", env=env)
    assert p.returncode == 0, p.stderr
    assert bed.reports() == "" and bed.calls() == []


def test_stopped_outside_a_kdump_kernel_says_nothing(bed):
    bed.vmcore.unlink()
    p = bed.run("--stopped", env={"SERVICE_RESULT": "exit-code", "EXIT_CODE": "exited",
                                  "EXIT_STATUS": "1"})
    assert p.returncode == 0, p.stderr
    assert bed.reports() == ""


def test_stopped_reason_is_made_printable_and_short(bed):
    p = bed.run("--stopped", env={"SERVICE_RESULT": "exit-code\tx" + "y" * 200,
                                  "EXIT_CODE": "exited", "EXIT_STATUS": "1"})
    assert p.returncode == 0, p.stderr
    line = bed.reports()
    assert line.startswith("kdump failed kdump-tools-dump.service failed: exit-code?xyyy")
    assert len(line) == len("kdump failed ") + 128 + 1


def test_shell_syntax_and_shellcheck():
    subprocess.run(["sh", "-n", WRAPPER], check=True)
    if subprocess.run(["sh", "-c", "command -v shellcheck"], capture_output=True).returncode:
        pytest.skip("shellcheck not installed")
    p = subprocess.run(["shellcheck", WRAPPER], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout
