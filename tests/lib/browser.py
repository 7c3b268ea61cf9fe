# SPDX-License-Identifier: MIT
"""Headless Chromium (Debian's `chromium`) on the dashboard, and the small
loopback TCP -> unix socket forwarder it needs: Chromium does not speak HTTP
over a unix socket. Chromium never reaches the network here: background
services off, every host name but 127.0.0.1 resolves to nothing, a fresh
profile per run."""

import os
import shutil
import socket
import subprocess
import tempfile
import threading

from tests.lib.wait import SCALE

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-default-apps", "--disable-extensions", "--mute-audio",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]


def chromium_binary():
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Forwarder:
    """127.0.0.1:<port> -> a unix socket, one thread per connection."""

    def __init__(self, unix_path):
        self.unix_path = unix_path
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (dst,):
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def _accept(self):
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                u.connect(self.unix_path)
            except OSError:
                c.close()
                continue
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def close(self):
        self._stop = True
        self.sock.close()


def chromium(url, workdir, screenshot=None, window="1280,2000", timeout=90):
    """Loads @url once; returns its DOM as Chromium serialises it (--dump-dom),
    and with @screenshot (a path) saves a PNG of the page in the same run."""
    exe = chromium_binary()
    if not exe:
        raise FileNotFoundError("chromium is not installed (apt install chromium)")
    prof = tempfile.mkdtemp(prefix="chromium-", dir=workdir)
    extra = [f"--screenshot={screenshot}"] if screenshot else []
    try:
        p = subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={prof}",
                            f"--window-size={window}", "--dump-dom", *extra, url],
                           capture_output=True, text=True, timeout=timeout * SCALE,
                           cwd=workdir)
    finally:
        shutil.rmtree(prof, ignore_errors=True)
    if p.returncode != 0:
        raise AssertionError(f"chromium exited {p.returncode}:\n{p.stderr[-3000:]}")
    if screenshot:
        assert os.path.exists(screenshot) and os.path.getsize(screenshot) > 1000, \
            f"chromium wrote no screenshot:\n{p.stderr[-3000:]}"
    return p.stdout


def keep_artifact(path, name):
    """A copy of @path in build/artifacts/ (CI keeps that folder)."""
    from tests.lib.daemon import BUILD

    out = os.path.join(BUILD, "artifacts")
    os.makedirs(out, exist_ok=True)
    shutil.copy(path, os.path.join(out, name))
    return os.path.join(out, name)


def get(api, path, method="GET", timeout=10):
    """(status, headers dict, body text) of one request on the unix socket."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout * SCALE)
    s.connect(api)
    s.sendall(f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
    reply = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        reply += chunk
    s.close()
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return int(lines[0].split()[1]), headers, body.decode("utf-8")
