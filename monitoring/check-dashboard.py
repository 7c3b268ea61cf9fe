#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks the Grafana dashboard (make monitoring):

- its shape: a uid and title, the datasource and instance variables, panels
  with unique ids that fit the 24-column grid, every query on ${datasource};
- every query is PromQL that Prometheus parses: with Grafana's variables
  filled in, they become recording rules that `promtool check rules` reads;
- every panicbroker_ series a query or an alerting rule names is one the
  daemon exports (the names in hostd/metrics_daemon.c), so a renamed metric
  cannot leave a dashboard or an alert silently empty.

Usage: check-dashboard.py DASHBOARD.json [RULES.yml...]
"""

import json
import os
import re
import subprocess
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Grafana's variables, as a query would see them.
VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h",
             "$instance": ".*", "${instance}": ".*"}


def exported_names():
    """The families metrics_daemon.c registers, with a histogram's series."""
    with open(os.path.join(TOP, "hostd", "metrics_daemon.c")) as f:
        text = f.read()
    names = set()
    for m in re.finditer(r'\.name = "(panicbroker_\w+)",\s*\.help = (?:"(?:[^"\\]|\\.)*"\s*)+,'
                         r'\s*\.kind = (METRICS_\w+)', text):
        name, kind = m.group(1), m.group(2)
        names.add(name)
        if kind == "METRICS_HISTOGRAM":
            names |= {name + "_bucket", name + "_sum", name + "_count"}
    if len(names) < 10:
        sys.exit(f"check-dashboard: found only {sorted(names)} in hostd/metrics_daemon.c")
    return names


def fail(msg):
    print(f"check-dashboard: {msg}", file=sys.stderr)
    sys.exit(1)


def check_shape(dash):
    for key in ("uid", "title", "panels", "templating"):
        if not dash.get(key):
            fail(f"no {key}")
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    if variables.get("datasource", {}).get("type") != "datasource":
        fail("no datasource variable")
    if "instance" not in variables:
        fail("no instance variable")
    ids, exprs = set(), []
    for p in dash["panels"]:
        if p["id"] in ids:
            fail(f"panel id {p['id']} twice")
        ids.add(p["id"])
        g = p["gridPos"]
        if g["x"] < 0 or g["w"] <= 0 or g["x"] + g["w"] > 24 or g["h"] <= 0:
            fail(f"panel {p['title']!r} does not fit the grid: {g}")
        if p["type"] == "row":
            continue
        if p.get("datasource", {}).get("uid") != "${datasource}":
            fail(f"panel {p['title']!r} is not on ${{datasource}}")
        if not p.get("targets"):
            fail(f"panel {p['title']!r} has no query")
        for t in p["targets"]:
            exprs.append((p["title"], t["expr"]))
    return exprs


def check_promql(exprs):
    """promtool parses each query as a recording rule."""
    lines = ["groups:", "  - name: dashboard", "    rules:"]
    for i, (_, expr) in enumerate(exprs):
        for var, value in VARIABLES.items():
            expr = expr.replace(var, value)
        if "$" in expr.replace("$labels", ""):
            fail(f"an unknown Grafana variable in: {expr}")
        lines += [f"      - record: dashboard:query_{i}", f"        expr: {json.dumps(expr)}"]
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        f.write("\n".join(lines) + "\n")
    try:
        p = subprocess.run(["promtool", "check", "rules", f.name], capture_output=True, text=True)
    finally:
        os.unlink(f.name)
    if p.returncode != 0:
        fail(f"promtool does not parse the dashboard's queries:\n{p.stdout}{p.stderr}")


def check_names(where, text, names):
    for used in sorted(set(re.findall(r"\bpanicbroker_[a-z_]+", text))):
        if used not in names:
            fail(f"{where} uses {used}, which panicbrokerd does not export")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    names = exported_names()
    with open(sys.argv[1]) as f:
        dash = json.load(f)
    exprs = check_shape(dash)
    check_promql(exprs)
    for title, expr in exprs:
        check_names(f"panel {title!r}", expr, names)
    for rules in sys.argv[2:]:
        with open(rules) as f:
            check_names(rules, f.read(), names)
    print(f"check-dashboard: {len(exprs)} queries in {len(dash['panels'])} panels: OK")


if __name__ == "__main__":
    main()
