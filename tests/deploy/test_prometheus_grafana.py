"""deploy/prometheus and deploy/grafana: promtool accepts the scrape config and
the rules, the rules' unit tests fire every alert and none on a healthy
device, and the dashboard and the rules query only what a real device exports."""

from __future__ import annotations

import json
import os
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import promql_parser
import pytest
import yaml
from conftest import run
from prometheus_client.parser import text_string_to_metric_families

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROMETHEUS_DIR = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "softena.json"
PROMTOOL = "/usr/bin/promtool"
needs_promtool = pytest.mark.skipif(not os.access(PROMTOOL, os.X_OK),
                                    reason=f"{PROMTOOL} missing: deploy/install.sh --test installs Debian's "
                                           "prometheus")
# Grafana's own interval variables: any duration parses the same.
GRAFANA_INTERVAL = re.compile(r"\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}")
PER_QUEUE = ("softena_qstats_", "softena_page_pool_", "softena_rx_latency_")
LABEL_VALUES = re.compile(r"^\s*label_values\((?:(?P<expr>.+),)?\s*(?P<label>\w+)\s*\)\s*$")


def promtool(*args: str) -> str:
    """Run promtool; its output, after asserting it succeeded."""
    proc = run([PROMTOOL, *args], timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def load_yaml(name: str) -> dict:
    with open(PROMETHEUS_DIR / name) as f:
        return yaml.safe_load(f)


def dashboard() -> dict:
    with open(DASHBOARD) as f:
        return json.load(f)


def alert_rules() -> list[dict]:
    return [rule for group in load_yaml("rules.yml")["groups"] for rule in group["rules"]]


def dashboard_queries() -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every panel target and of the query variables, with
    Grafana's interval variables made a plain duration."""
    dash = dashboard()
    for var in dash["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            match = LABEL_VALUES.match(query)  # Grafana's function around PromQL, not PromQL itself
            assert match and match["expr"], f"variable {var['name']}: label_values(METRIC, LABEL) expected"
            yield f"variable {var['name']}", match["expr"]
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r} {target['refId']}", GRAFANA_INTERVAL.sub("1m", target["expr"])


def rule_queries() -> Iterator[tuple[str, str]]:
    for rule in alert_rules():
        yield f"alert {rule['alert']}", rule["expr"]


def selectors_and_labels(expr: str) -> tuple[list[tuple[str, set[str]]], set[str]]:
    """The metrics EXPR selects, each with the labels its matchers name, and
    the labels its by/without/on/ignoring clauses name (promql-parser, the
    Rust parser's bindings, so a name is never taken for a keyword)."""
    selectors: list[tuple[str, set[str]]] = []
    grouping: set[str] = set()

    def visit(node) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            matchers = node.matchers.matchers if node.matchers else []
            name = node.name or next((m.value for m in matchers if m.name == "__name__"), None)
            assert name, f"{expr}: a selector without a metric name"
            selectors.append((name, {m.name for m in matchers} - {"__name__"}))
        elif isinstance(node, promql_parser.AggregateExpr) and node.modifier:
            grouping.update(node.modifier.labels)
        elif isinstance(node, promql_parser.BinaryExpr) and node.modifier and node.modifier.matching:
            grouping.update(node.modifier.matching.labels)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return selectors, grouping


def scrape(address: str) -> dict[str, set[str]]:
    """Series names of one scrape with the labels each carries: what
    Prometheus stores and a query can name (a histogram's _bucket, _sum and
    _count, a counter's _total, an info metric's _info)."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


@needs_promtool
def test_promtool_accepts_the_scrape_config_and_the_rules_file_it_names() -> None:
    out = promtool("check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
    assert "SUCCESS: 1 rule files found" in out
    assert f"SUCCESS: {len(alert_rules())} rules found" in out


@needs_promtool
def test_promtool_accepts_the_rules() -> None:
    assert f"SUCCESS: {len(alert_rules())} rules found" in promtool("check", "rules",
                                                                    str(PROMETHEUS_DIR / "rules.yml"))


@needs_promtool
def test_every_alert_fires_in_the_unit_tests_and_none_on_the_healthy_device() -> None:
    promtool("test", "rules", str(PROMETHEUS_DIR / "rules_test.yml"))
    alerts = {rule["alert"] for rule in alert_rules()}
    tests = load_yaml("rules_test.yml")["tests"]
    fired = {case["alertname"] for test in tests for case in test.get("alert_rule_test", []) if case["exp_alerts"]}
    healthy = next(test for test in tests if "healthy" in test["name"])
    quiet = {case["alertname"] for case in healthy["alert_rule_test"] if case["exp_alerts"] == []}
    assert fired == alerts, f"never shown firing: {alerts - fired}"
    assert quiet == alerts, f"never shown quiet on a healthy device: {alerts - quiet}"


def test_every_alert_says_how_bad_and_names_the_device() -> None:
    for rule in alert_rules():
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        notes = rule["annotations"]
        assert set(notes) == {"summary", "description"}, rule["alert"]
        for text in notes.values():
            assert "{{ $labels.device }}" in text, rule["alert"]
        # Devices of one name on many machines stay apart by instance: no sum by (device).
        assert "{{ $labels.instance }}" in notes["description"], rule["alert"]
        selectors, grouping = selectors_and_labels(rule["expr"])
        assert "device" not in grouping, f"{rule['alert']}: aggregating by device merges machines"
        # An alert on per-queue series keeps the queue and says which.
        if any(name.startswith(PER_QUEUE) for name, _ in selectors) and "queue" not in grouping:
            assert "{{ $labels.queue }}" in notes["summary"], rule["alert"]


def test_the_dashboard_is_a_grafana_dashboard_with_a_device_variable() -> None:
    dash = dashboard()
    assert dash["uid"] == "softena" and dash["title"] and isinstance(dash["schemaVersion"], int)
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert variables["device"]["multi"] and variables["device"]["includeAll"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells: set[tuple[int, int]] = set()
    for panel in dash["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["w"] > 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        covered = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not covered & cells, f"{panel['title']!r} overlaps another panel"
        cells |= covered
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert 'device=~"$device"' in target["expr"], f"{panel['title']!r} ignores $device"
    kinds = {p["type"] for p in dash["panels"]}
    assert {"timeseries", "heatmap"} <= kinds
    titles = " ".join(p["title"].lower() for p in dash["panels"])
    for subject in ("packets/s by queue", "bits/s by queue", "drops", "resets", "in flight", "allocations",
                    "recycles", "latency distribution", "p50 and p99"):
        assert subject in titles, subject


def test_every_query_parses_as_promql() -> None:
    for where, expr in [*dashboard_queries(), *rule_queries()]:
        try:
            promql_parser.parse(expr)
        except ValueError as exc:
            pytest.fail(f"{where}: {exc}: {expr}")


def test_the_dashboard_and_the_rules_name_only_what_a_device_exports(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    exported = scrape(dev.status["metrics"])
    assert "softena_rx_latency_seconds_bucket" in exported and "softena_health_resets_total" in exported
    all_labels = set().union(*exported.values())
    wrong = []
    for where, expr in [*dashboard_queries(), *rule_queries()]:
        selectors, grouping = selectors_and_labels(expr)
        for name, labels in selectors:
            if name not in exported:
                wrong.append(f"{where}: {name} is not exported")
            elif labels - exported[name]:
                wrong.append(f"{where}: {name} has no label {sorted(labels - exported[name])}")
        if grouping - all_labels:
            wrong.append(f"{where}: no metric has label {sorted(grouping - all_labels)}")
    assert not wrong, "\n".join(wrong)
