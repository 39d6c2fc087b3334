"""Grafana dashboards: valid JSON, the panels the issue asks for, and every query names a metric the API exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from flagship.core.monitoring import drift_dir
from flagship.core.publish import atomic_write_json
from flagship.core.serving import create_app, example_project, serve_in_thread

ROOT = Path(__file__).resolve().parents[1]
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "rate", "irate", "increase", "histogram_quantile", "time", "by", "without",
    "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset", "abs", "clamp_min", "topk",
    "label_values",
}  # fmt: skip
FROM_PROMETHEUS = {"up"}  # series Prometheus itself adds to every scrape target


def metric_names(expr: str) -> set[str]:
    """Return the metric names a PromQL expression reads."""
    expr = re.sub(r'"[^"]*"', "", expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", " ", expr)
    return set(re.findall(r"(?<![\w.$])[A-Za-z_:][A-Za-z0-9_:]*", expr)) - PROMQL_WORDS


def test_metric_names_parser():
    assert metric_names('histogram_quantile(0.99, sum by (le, route) (rate(x_bucket{route=~"$route"}[5m])))') == {"x_bucket"}
    assert metric_names("time() - max by (project) (drift_report_timestamp_seconds)") == {"drift_report_timestamp_seconds"}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Every sample name the API exports once it has served traffic and has a drift report."""
    mp = pytest.MonkeyPatch()
    mp.setenv("FLAGSHIP_OUTPUTS", str(tmp_path_factory.mktemp("out")))
    summary = {"share": 0.5, "created_at": "2026-12-04T20:00:00+00:00"}
    summary["columns"] = {"age": {"method": "K-S p_value", "value": 0.01, "drifted": True}}
    atomic_write_json(drift_dir("00-example") / "latest.json", summary)
    with serve_in_thread(create_app([example_project()], metrics_ttl=0)) as url:
        httpx.post(f"{url}/example/predict", json={"instances": [{"x1": 1, "x2": 2}]})
        httpx.post(f"{url}/example/predict", json={"instances": []})
        text = httpx.get(f"{url}/metrics").text
    mp.undo()
    return {ln.split("{")[0].split(" ")[0] for ln in text.splitlines() if ln and not ln.startswith("#")} | FROM_PROMETHEUS


def panels(path: Path) -> list[dict]:
    doc = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for p in doc["panels"]:
        out += p.get("panels", []) + [p]  # rows may nest panels
    return [p for p in out if p.get("type") != "row"]


def test_dashboards_exist_and_cover_the_issue():
    assert {p.stem for p in DASHBOARDS} == {"flagship-api", "flagship-models"}
    titles = " | ".join(p["title"].lower() for d in DASHBOARDS for p in panels(d))
    for words in (
        "latency",
        "error rate",
        "concurrent",
        "predictions",
        "model versions",
        "drift score over time",
        "drift per feature",
    ):
        assert words in titles, f"no panel about {words!r}: {titles}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_query_names_an_exported_metric(path, exported):
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["uid"] == path.stem and doc["title"]
    ids = [p["id"] for p in panels(path)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels(path):
        exprs = [t["expr"] for t in panel.get("targets", [])]
        assert exprs, f"panel {panel['title']!r} has no query"
        for expr in exprs:
            names = metric_names(expr)
            assert names, f"{panel['title']}: no metric in {expr}"
            assert names <= exported, f"{panel['title']}: {sorted(names - exported)} not exported by the API ({expr})"
    for var in doc.get("templating", {}).get("list", []):
        m = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", var["query"])
        assert m and m.group(1) in exported, var["query"]
