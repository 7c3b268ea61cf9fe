# SPDX-License-Identifier: MIT
"""The daemon's /metrics as a test reads it: HTTP on the API's unix socket
or its TCP listener, the text parsed into samples, promtool's verdict."""

import http.client
import shutil
import socket
import subprocess

import pytest

from tests.lib.wait import SCALE


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=10):
        super().__init__("localhost", timeout=timeout * SCALE)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def request(conn, method, path, body=None, headers=None):
    """(status, headers dict with lower-case names, body text); closes @conn."""
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode()
    finally:
        conn.close()


def tcp(port, method, path, token=None, body=None, headers=None):
    """A request to the TCP listener on 127.0.0.1:@port, with a bearer @token if given."""
    h = dict(headers or {})
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    if body is not None:
        h["Content-Type"] = "application/json"
    return request(http.client.HTTPConnection("127.0.0.1", port, timeout=10 * SCALE),
                   method, path, body, h)


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def samples(text):
    """{'name{labels}': value} of a scrape (comments left out)."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def promtool_check(text):
    """`promtool check metrics` passes @text, without a lint remark."""
    promtool = shutil.which("promtool")
    if not promtool:
        pytest.fail("promtool is missing: apt install prometheus (scripts/install-deps.sh)")
    p = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, f"promtool check metrics:\n{p.stdout}{p.stderr}\n{text}"
    # Lint problems are printed even when the exit status is 0.
    assert p.stdout.strip() == "" and p.stderr.strip() == "", p.stdout + p.stderr
