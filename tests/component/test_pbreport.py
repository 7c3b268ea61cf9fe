# SPDX-License-Identifier: MIT
"""pbreport (guest-tools/pbreport.c) without a guest: build/pbreport writes
to a regular file or a FIFO given with --device (or $PBREPORT_DEVICE).

- the exact bytes of each report, one write each;
- every usage error: exit 2, one "pbreport: " line, nothing written (the
  device is not even opened: a sentinel file keeps its bytes and mtime);
- a device that is missing or cannot take the write: exit 1, and --quiet
  keeps stderr empty;
- the binary is static (it goes into a kdump initramfs as it is).

What needs the real /dev/panicbroker (ENOTCONN, EAGAIN and its retries,
EINVAL from the module) is not covered here.

    /usr/bin/python3 -m pytest -v tests/e2e/test_pbreport.py
"""

import os
import stat
import subprocess
import threading

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("PB_BUILD", os.path.join(TOP, "build"))
PBREPORT = os.path.join(BUILD, "pbreport")
SENTINEL = b"untouched\n"


@pytest.fixture(scope="module", autouse=True)
def binary():
    if not os.access(PBREPORT, os.X_OK):
        pytest.fail(f"{PBREPORT} missing: run make (or make build/pbreport)")


def run(*args, env=None, device_env=None):
    e = {k: v for k, v in os.environ.items() if k != "PBREPORT_DEVICE"}
    if device_env is not None:
        e["PBREPORT_DEVICE"] = device_env
    if env:
        e.update(env)
    return subprocess.run([PBREPORT, *args], capture_output=True, env=e, timeout=30)


@pytest.fixture
def dev(tmp_path):
    """A regular file standing in for the device, holding a sentinel."""
    p = tmp_path / "dev"
    p.write_bytes(SENTINEL)
    os.utime(p, (1_000_000_000, 1_000_000_000))
    return p


def report(dev, *args):
    """Run pbreport --device DEV ARGS; must succeed silently; returns the bytes."""
    dev.write_bytes(b"")
    p = run("--device", str(dev), *args)
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"" and p.stderr == b""
    return dev.read_bytes()


@pytest.mark.parametrize("args, wire", [
    (["kdump", "start"], b"kdump start\n"),
    (["kdump", "progress", "0"], b"kdump progress 0\n"),
    (["kdump", "progress", "7"], b"kdump progress 7\n"),
    (["kdump", "progress", "100"], b"kdump progress 100\n"),
    (["kdump", "progress", "007"], b"kdump progress 7\n"),
    (["kdump", "done"], b"kdump done 0\n"),
    (["kdump", "done", "--bytes", "0"], b"kdump done 0\n"),
    (["kdump", "done", "--bytes", "123456789"], b"kdump done 123456789\n"),
    (["kdump", "done", "--bytes=42"], b"kdump done 42\n"),
    (["kdump", "done", "--bytes", "18446744073709551615"], b"kdump done 18446744073709551615\n"),
    (["kdump", "failed", "disk"], b"kdump failed disk\n"),
    (["kdump", "failed", "makedumpfile", "exited", "1"], b"kdump failed makedumpfile exited 1\n"),
    (["kdump", "failed", "no space  left", "on /var"], b"kdump failed no space  left on /var\n"),
    (["kdump", "failed", "--", "-ENOSPC", "--bytes"], b"kdump failed -ENOSPC --bytes\n"),
    (["kdump", "failed", "~!@#$%^&*()_+{}|:\"<>? `'"], b"kdump failed ~!@#$%^&*()_+{}|:\"<>? `'\n"),
    (["kdump", "failed", "x" * 128], b"kdump failed " + b"x" * 128 + b"\n"),
    (["kdump", "failed", "a" * 63, "b" * 64], b"kdump failed " + b"a" * 63 + b" " + b"b" * 64 + b"\n"),
])
def test_wire_bytes(dev, args, wire):
    assert report(dev, *args) == wire
    assert len(wire) <= 160


def test_reports_append_to_a_regular_file(dev):
    dev.write_bytes(b"")
    for args in (["kdump", "start"], ["kdump", "progress", "50"],
                 ["kdump", "done", "--bytes", "9"]):
        assert run("--device", str(dev), *args).returncode == 0
    assert dev.read_bytes() == b"kdump start\nkdump progress 50\nkdump done 9\n"


def test_device_option_forms_and_env(tmp_path, dev):
    other = tmp_path / "other"
    other.write_bytes(b"")
    dev.write_bytes(b"")
    assert run(f"--device={dev}", "kdump", "start").returncode == 0
    assert dev.read_bytes() == b"kdump start\n"
    dev.write_bytes(b"")
    assert run("-d", str(dev), "-q", "kdump", "progress", "3").returncode == 0
    assert dev.read_bytes() == b"kdump progress 3\n"
    # $PBREPORT_DEVICE is the default; --device wins over it
    dev.write_bytes(b"")
    assert run("kdump", "done", device_env=str(dev)).returncode == 0
    assert dev.read_bytes() == b"kdump done 0\n"
    dev.write_bytes(b"")
    assert run("--device", str(other), "kdump", "start", device_env=str(dev)).returncode == 0
    assert dev.read_bytes() == b"" and other.read_bytes() == b"kdump start\n"
    # "--" ends the options
    other.write_bytes(b"")
    assert run("--device", str(other), "--", "kdump", "done").returncode == 0
    assert other.read_bytes() == b"kdump done 0\n"


def test_fifo_one_write(tmp_path):
    """A FIFO reader sees each report as one whole line; pbreport waits for
    the reader like any writer of a FIFO."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got = []

    def reader():
        fd = os.open(fifo, os.O_RDONLY)
        try:
            chunks = []
            while True:
                b = os.read(fd, 4096)
                if not b:
                    break
                chunks.append(b)
            got.append(chunks)
        finally:
            os.close(fd)

    for args, wire in ((["kdump", "start"], b"kdump start\n"),
                       (["kdump", "failed", "r" * 128], b"kdump failed " + b"r" * 128 + b"\n")):
        t = threading.Thread(target=reader)
        t.start()
        p = run("--device", str(fifo), *args)
        t.join(10)
        assert p.returncode == 0, p.stderr
        assert got.pop() == [wire]


USAGE_ERRORS = [
    ([], "no command given"),
    (["--frob", "kdump", "start"], "unknown option --frob"),
    (["-x"], "unknown option -x"),
    (["--device"], "--device needs a path"),
    (["--device="], "--device needs a non-empty path"),
    (["status"], "unknown command status"),
    (["kdump"], "kdump needs start, progress, done or failed"),
    (["kdump", "frob"], "unknown kdump report frob"),
    (["kdump", "start", "now"], "kdump start takes no argument"),
    (["kdump", "--quiet", "start"], "unknown kdump report --quiet"),
    (["kdump", "progress"], "kdump progress needs one PCT"),
    (["kdump", "progress", "1", "2"], "kdump progress needs one PCT"),
    (["kdump", "progress", "101"], "PCT must be an integer 0..100"),
    (["kdump", "progress", "-1"], "PCT must be an integer 0..100"),
    (["kdump", "progress", "+5"], "PCT must be an integer 0..100"),
    (["kdump", "progress", " 5"], "PCT must be an integer 0..100"),
    (["kdump", "progress", "5.5"], "PCT must be an integer 0..100"),
    (["kdump", "progress", "0x10"], "PCT must be an integer 0..100"),
    (["kdump", "progress", ""], "PCT must be an integer 0..100"),
    (["kdump", "progress", "99999999999999999999999"], "PCT must be an integer 0..100"),
    (["kdump", "done", "5"], "kdump done takes only --bytes N, not 5"),
    (["kdump", "done", "--bytes"], "--bytes needs a number"),
    (["kdump", "done", "--bytes", "1", "2"], "kdump done takes only --bytes N"),
    (["kdump", "done", "--bytes", "-1"], "N must be a decimal number"),
    (["kdump", "done", "--bytes", "18446744073709551616"], "N must be a decimal number"),
    (["kdump", "done", "--bytes", "1k"], "N must be a decimal number"),
    (["kdump", "done", "--bytes="], "N must be a decimal number"),
    (["kdump", "failed"], "kdump failed needs a REASON"),
    (["kdump", "failed", "--"], "kdump failed needs a REASON"),
    (["kdump", "failed", ""], "kdump failed needs a non-empty REASON"),
    (["kdump", "failed", "x" * 129], "REASON is longer than 128 bytes"),
    (["kdump", "failed", "a" * 64, "b" * 64], "REASON is longer than 128 bytes"),
    (["kdump", "failed", "tab\there"], "byte 0x09 is not"),
    (["kdump", "failed", "line\nbreak"], "byte 0x0a is not"),
    (["kdump", "failed", "del\x7f"], "byte 0x7f is not"),
    (["kdump", "failed", "caf\u00e9"], "byte 0xc3 is not"),
]


@pytest.mark.parametrize("args, message", USAGE_ERRORS,
                         ids=[" ".join(a)[:40] or "(none)" for a, _ in USAGE_ERRORS])
def test_usage_error(dev, args, message):
    before = os.stat(dev)
    # the device comes from the environment, so that every argument list is
    # exactly the one under test
    p = run(*args, device_env=str(dev))
    assert p.returncode == 2, (p.returncode, p.stderr)
    err = p.stderr.decode()
    assert err.startswith("pbreport: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert message in err, err
    assert p.stdout == b""
    after = os.stat(dev)
    assert dev.read_bytes() == SENTINEL
    assert (after.st_mtime_ns, after.st_size) == (before.st_mtime_ns, before.st_size)


def test_usage_error_even_when_quiet(dev):
    p = run("--quiet", "kdump", "progress", "200", device_env=str(dev))
    assert p.returncode == 2 and b"PCT must be" in p.stderr
    assert dev.read_bytes() == SENTINEL


def test_missing_device(tmp_path):
    missing = tmp_path / "nope" / "panicbroker"
    p = run("--device", str(missing), "kdump", "start")
    assert p.returncode == 1
    assert p.stderr.decode() == f"pbreport: no {missing}: No such file or directory\n"
    assert not missing.exists()
    # --quiet: the same status, nothing on stderr
    p = run("--quiet", "--device", str(missing), "kdump", "failed", "x")
    assert (p.returncode, p.stdout, p.stderr) == (1, b"", b"")


@pytest.mark.skipif(os.path.exists("/dev/panicbroker"), reason="this machine has /dev/panicbroker")
def test_missing_default_device():
    p = run("kdump", "start")
    assert p.returncode == 1
    err = p.stderr.decode()
    assert err.startswith("pbreport: no /dev/panicbroker: panicbroker.ko is not loaded "
                          "in this kdump kernel"), err
    assert err.count("\n") == 1


def test_device_that_cannot_take_the_write(tmp_path):
    # a directory cannot be opened for writing
    p = run("--device", str(tmp_path), "kdump", "start")
    assert p.returncode == 1
    assert p.stderr.decode() == f"pbreport: {tmp_path}: Is a directory\n"
    # /dev/full fails the write itself
    p = run("--device", "/dev/full", "kdump", "done", "--bytes", "1")
    assert p.returncode == 1
    assert p.stderr.decode() == "pbreport: writing to /dev/full: No space left on device\n"
    # a device without write permission (root ignores the mode, so skip then)
    ro = tmp_path / "ro"
    ro.write_bytes(b"")
    ro.chmod(0o400)
    if os.geteuid() != 0:
        p = run("--device", str(ro), "kdump", "start")
        assert p.returncode == 1 and b"Permission denied" in p.stderr


def test_help_and_version():
    p = run("--help")
    assert p.returncode == 0 and p.stderr == b""
    out = p.stdout.decode()
    assert out.startswith("Usage: pbreport [--device PATH] [--quiet] kdump start\n")
    for w in ("progress PCT", "done [--bytes N]", "failed REASON...", "PBREPORT_DEVICE",
              "/dev/panicbroker", "Exit status: 0 sent, 1 not sent, 2 usage error."):
        assert w in out
    assert run("-h").stdout == p.stdout
    p = run("--version")
    assert p.returncode == 0
    assert p.stdout.decode().startswith("pbreport ") and p.stdout.decode().count("\n") == 1


def test_static_and_small():
    out = subprocess.run(["file", "-L", PBREPORT], capture_output=True, text=True,
                         check=True).stdout
    assert "statically linked" in out, out
    assert "dynamically linked" not in out, out
    st = os.stat(PBREPORT)
    assert stat.S_ISREG(st.st_mode)
    # glibc's static floor is about 660 KiB; keep pbreport near it
    assert st.st_size < 1024 * 1024, st.st_size
    # no program interpreter: runs with nothing else in the initramfs
    ph = subprocess.run(["readelf", "-l", PBREPORT], capture_output=True, text=True,
                        check=True).stdout
    assert "INTERP" not in ph
