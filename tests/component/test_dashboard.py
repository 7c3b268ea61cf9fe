# SPDX-License-Identifier: MIT
"""The dashboard (hostd/api_html.h) of the real daemon, with fake peers:
the pages after fake panics, a hostile panic record from a fake guest and a
hostile record in the spool, paging over a synthetic spool; headless
Chromium loads the pages and the DOM is checked. Screenshots stay in the
test's tmp dir, and one copy of each in build/artifacts/."""

import json
import os
import re
import time
from html.parser import HTMLParser

import pytest

from tests.lib.browser import Forwarder, chromium, chromium_binary, get, keep_artifact
from tests.lib.daemon import SCALE
from tests.lib.fakeguest import FAKEGUEST, guest
from tests.lib.fakeqmp import FakeQMP
from tests.lib.synthspool import make_record, make_spool, write_record
from tests.lib.wait import wait_until

HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'&amp;<!--"
PAGE_MAX = 2 * 1024 * 1024 + 4096  # HTML_MAX_BYTES and the closing notice


def rows(page):
    """The crash list's rows: ids in page order."""
    return re.findall(r'<tr class="crash" data-id="([^"]+)"', page)


def wait_socket(d, path, timeout=15):
    def ready():
        if d.proc.poll() is not None:
            raise AssertionError(f"panicbrokerd exited:\n{d.log_text()[-3000:]}")
        return os.path.exists(path)

    wait_until(ready, f"API socket {path}", timeout)


def assert_html(status, headers, body, want=200):
    assert status == want, (status, body[:500])
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert "script-src" not in headers["content-security-policy"]
    assert headers["content-security-policy"].startswith("default-src 'none'")
    assert len(body.encode()) <= PAGE_MAX
    assert body.startswith("<!DOCTYPE html>") and body.rstrip().endswith("</html>")
    # Nothing from the network: no absolute URL anywhere in the markup.
    assert not re.search(r'(src|href)="(https?:)?//', body), body[:2000]


class _Elements(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.attrs, self.text = set(), [], []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attrs += [(tag, k, v or "") for k, v in attrs]

    def handle_data(self, data):
        self.text.append(data)


def dom_parse(dom):
    p = _Elements()
    p.feed(dom)
    p.close()
    return p


def assert_dom_inert(dom):
    """What Chromium built holds no element or attribute a hostile record
    could bring: only the pages' own tags, no handlers, no script URLs."""
    p = dom_parse(dom)
    assert p.tags <= {"html", "head", "meta", "title", "style", "body", "nav", "a", "span",
                      "main", "h1", "h2", "p", "b", "code", "table", "thead", "tbody", "tr",
                      "th", "td", "pre", "mark", "dl", "dt", "dd", "div", "ul", "li"}, p.tags
    for tag, k, v in p.attrs:
        assert not k.startswith("on"), (tag, k, v)
        assert k in {"lang", "charset", "http-equiv", "content", "name", "class", "id", "href",
                     "rel", "style", "title", "data-id", "data-bucket", "colspan"}, (tag, k)
        if k == "href":
            assert v.startswith("/") or v.startswith("#"), v
    return p


@pytest.fixture
def browser(tmp_path):
    if not chromium_binary():
        pytest.skip("chromium is not installed (scripts/install-deps.sh)")
    fwd = []

    def make(api):
        f = Forwarder(api)
        fwd.append(f)
        return f

    yield make
    for f in fwd:
        f.close()


@pytest.fixture
def qmps(short_dir):
    made = {n: FakeQMP(os.path.join(short_dir, f"{n}.qmp"), "behaved") for n in ("vmA", "vmB")}
    yield made
    for q in made.values():
        q.close()


def test_pages_after_fake_panics(make_daemon, qmps, short_dir, browser, tmp_path):
    api = os.path.join(short_dir, "api.sock")
    a, b = qmps["vmA"], qmps["vmB"]
    d = make_daemon([f"vmA,qmp={a.path},snapshot=never", f"vmB,qmp={b.path},snapshot=never"],
                    args=["--api", api])
    wait_socket(d, api)
    a.wait_attached()
    b.wait_attached()
    st, hd, body = get(api, "/")
    assert_html(st, hd, body)
    assert rows(body) == [] and "No crashes here." in body

    # vmA panics without kdump (closed by its final action); vmB runs into kdump (open).
    a.emit("GUEST_PANICKED", {"action": "pause"})
    ra = d.wait_record(lambda r: r["vm"] == "vmA" and r["state"] == "closed", what="vmA's crash closed")
    b.emit("GUEST_CRASHLOADED", {"action": "run"})
    rb = d.wait_record(lambda r: r["vm"] == "vmB", what="vmB's crash")
    t_record = time.monotonic()
    page = wait_until(lambda: (lambda p: p if rb["id"] in rows(p) else None)(get(api, "/")[2]),
                      "vmB's crash on the dashboard", timeout=1)
    assert time.monotonic() - t_record < 1.0 * SCALE
    assert rows(page) == [rb["id"], ra["id"]]  # newest first
    assert '<span id="open">1</span> open' in page
    row_b = page[page.index(f'data-id="{rb["id"]}"'):].split("</tr>")[0]
    assert ">vmB</a>" in row_b and "GUEST_CRASHLOADED" in row_b and "st-kdump_running" in row_b

    st, hd, crash = get(api, f"/crashes/{ra['id']}")
    assert_html(st, hd, crash)
    for h in ra["history"]:
        assert h["reason"].replace("'", "&#39;").replace('"', "&quot;") in crash
    assert "No panic record" in crash and "None taken." in crash
    assert '<table id="events">' in crash and 'id="lane-decisions"' in crash

    # Errors are pages too; nothing but GET.
    st, hd, body = get(api, "/crashes/20261124T204155.123456Z-nope")
    assert_html(st, hd, body, 404)
    for path in ("/crashes/..%2Fx", "/?page=0", "/?page=x", "/?vm=../x", "/?bucket=XYZ",
                 "/?sort=1", "/?page=1&page=2", "/buckets?x=1"):
        st, hd, body = get(api, path)
        assert_html(st, hd, body, 400)
    assert get(api, "/", method="POST")[0] == 405

    # The browser: the list, a crash's page.
    fwd = browser(api)
    shot = str(tmp_path / "dashboard-list.png")
    dom = chromium(fwd.url + "/", str(tmp_path), screenshot=shot)
    assert f'data-id="{ra["id"]}"' in dom and f'data-id="{rb["id"]}"' in dom
    assert "<h1>Crashes</h1>" in dom
    keep_artifact(shot, "dashboard-list.png")
    # (Crash pages in Chromium: the hostile tests below and tests/e2e.)
    d.stop()


def test_hostile_panic_record_from_the_guest(make_daemon, short_dir, browser, tmp_path):
    if not os.access(FAKEGUEST, os.X_OK):
        pytest.fail("build/pbfakeguest is not built: run make")
    api = os.path.join(short_dir, "api.sock")
    q = FakeQMP(os.path.join(short_dir, "g.qmp"), "behaved")
    mbox = os.path.join(short_dir, "g.mbox")
    try:
        d = make_daemon([f"g,qmp={q.path},mailbox={mbox},final_action=preserve,snapshot=never"],
                        args=["--api", api])
        wait_socket(d, api)
        q.wait_attached()
        assert guest(mbox, "hello")["accepted"] == "1"
        msg = "Kernel panic - not syncing: " + HOSTILE + "\x01\x7f" + "x" * 900
        out = guest(mbox, "panic", msg)
        assert out["rc"] == 0 and out["acked"] == "1", out
        q.emit("GUEST_CRASHLOADED", {"action": "run"})
        rec = d.wait_record(lambda r: "panic" in r, what="the crash with its panic record")
        assert HOSTILE in rec["panic"]["message"]

        st, hd, page = get(api, f"/crashes/{rec['id']}")
        assert_html(st, hd, page)
        assert "<script" not in page and "<img" not in page
        assert ("&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;"
                "&quot;&#39;&amp;amp;&lt;!--") in page
        assert "\\x01\\x7f" in page  # the daemon's escape of the guest's bytes, shown as text

        fwd = browser(api)
        shot = str(tmp_path / "dashboard-hostile-guest.png")
        dom = chromium(f"{fwd.url}/crashes/{rec['id']}", str(tmp_path), screenshot=shot)
        p = assert_dom_inert(dom)
        # The message is text in the DOM, whole.
        assert any(HOSTILE in t for t in p.text), dom[:3000]
        keep_artifact(shot, "dashboard-hostile-guest.png")
        d.stop()
    finally:
        q.close()


def test_hostile_record_in_the_spool(make_daemon, short_dir, browser, tmp_path):
    """A record no daemon would write: markup in every field, NULs, a
    megabyte-sized line, wrong types. Pages stay capped and inert."""
    spool = str(tmp_path / "spool")
    rec = make_record("h1", 1764598689000000, 3, log_lines=4)
    rec["vm"] = HOSTILE
    rec["event"] = HOSTILE
    rec["signature"]["title"] = HOSTILE + "\u0000after-nul"
    rec["signature"]["guilty_frame"] = "evil_fn"
    rec["signature"]["bucket"] = '"><script>alert(3)</script>'
    rec["panic"]["message"] = "a\u0000" + HOSTILE
    line = ("<script>" + "&\"'<>" * 20000)  # 100 KB of markup on one line
    rec["panic"]["log_tail"] = (line + "\n") * 7 + "\u0000 evil_fn+0x1/0x2 " + HOSTILE + "\n"
    rec["history"].append({"at": "2026-12-01T14:18:09.029415Z", "state": HOSTILE, "reason": HOSTILE})
    rec["history"].append(HOSTILE)
    rec["kdump"]["reports"].append({"at": rec["detected_at"], "state": "failed", "reason": HOSTILE})
    rec["snapshot"] = {"state": "done", "path": "../../x\"><a href=\"javascript:alert(4)\">",
                       "format": HOSTILE}
    rec["mailbox"] = {"malformed": [HOSTILE] * 20, "malformed_count": "many"}
    write_record(spool, rec)
    assert os.path.getsize(os.path.join(spool, "crashes", rec["id"], "record.json")) < 1024 * 1024

    api = os.path.join(short_dir, "api.sock")
    d = make_daemon([], spool=spool, args=["--api", api])
    wait_socket(d, api)
    st, hd, page = get(api, "/")
    assert_html(st, hd, page)
    assert rows(page) == [rec["id"]]
    assert "<script" not in page and "&lt;script&gt;alert(1)" in page
    st, hd, page = get(api, f"/crashes/{rec['id']}")
    assert_html(st, hd, page)
    assert "<script" not in page and "javascript:" not in page.replace("javascript:alert(4)&quot;&gt;", "")
    assert "Only the last" in page  # the log tail is shown from its last 128 KiB
    assert '<mark class="guilty" id="guilty">&#xFFFD; evil_fn+0x1/0x2 &lt;script&gt;' in page
    assert "after-nul" in page and "a&#xFFFD;&lt;script&gt;" in page

    fwd = browser(api)
    for path, name in (("/", "dashboard-hostile-list.png"),
                       (f"/crashes/{rec['id']}", "dashboard-hostile-record.png")):
        shot = str(tmp_path / name)
        dom = chromium(fwd.url + path, str(tmp_path), screenshot=shot)
        assert_dom_inert(dom)
        assert "panicbroker" in dom
        keep_artifact(shot, name)
    st, hd, page = get(api, "/buckets")
    assert_html(st, hd, page)
    assert "<script" not in page and "1 without a signature" in page  # its bucket is not one
    d.stop()


def test_paging_and_buckets_over_a_spool(make_daemon, short_dir, tmp_path):
    spool = str(tmp_path / "spool")
    ids = make_spool(spool, 130, vms=4, buckets=6, seed=7, log_lines=2)
    recs = {}
    for i in ids:
        with open(os.path.join(spool, "crashes", i, "record.json")) as f:
            recs[i] = json.load(f)
    api = os.path.join(short_dir, "api.sock")
    d = make_daemon([], spool=spool, args=["--api", api])
    wait_socket(d, api)

    newest = ids[::-1]
    st, hd, p1 = get(api, "/")
    assert_html(st, hd, p1)
    assert rows(p1) == newest[:50]
    assert '<span id="total">130</span> crashes' in p1 and "page 1 of 3" in p1
    assert 'href="/?page=2"' in p1 and "Buckets of the latest 130 crashes" in p1
    assert rows(get(api, "/?page=2")[2]) == newest[50:100]
    p3 = get(api, "/?page=3")[2]
    assert rows(p3) == newest[100:] and 'href="/?page=2"' in p3 and "older" not in p3
    assert rows(get(api, "/?page=9")[2]) == []

    vm = recs[ids[0]]["vm"]
    mine = [i for i in newest if recs[i]["vm"] == vm]
    page = get(api, f"/?vm={vm}")[2]
    assert rows(page) == mine[:50] and f'<span id="total">{len(mine)}</span>' in page

    st, hd, page = get(api, "/buckets")
    assert_html(st, hd, page)
    counts = {}
    for r in recs.values():
        b = r["signature"]["bucket"]
        counts[b] = counts.get(b, 0) + 1
    found = dict(re.findall(r'data-bucket="([0-9a-f]{16})">.*?<td class="n">(\d+)</td>', page))
    assert {k: int(v) for k, v in found.items()} == counts
    top = max(counts, key=counts.get)
    page = get(api, f"/?bucket={top}")[2]
    assert f'<span id="total">{counts[top]}</span>' in page
    assert all(recs[i]["signature"]["bucket"] == top for i in rows(page))
    d.stop()
