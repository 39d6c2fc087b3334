"""Drift reports (real Evidently), the latest.json contract, the drift_score gauge and `flagship drift`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from flagship.core import monitoring
from flagship.core.monitoring import drift_dir, drift_report, latest_drift, run_drift, save_reference
from flagship.core.publish import atomic_write_json
from flagship.core.serving import create_app, example_project, serve_in_thread

FLAGSHIP = str(Path(sys.executable).parent / "flagship")  # the console script, as `make drift` runs it


@pytest.fixture
def frames():
    rng = np.random.default_rng(7)
    ref = pd.DataFrame(
        {
            "age": rng.normal(40, 10, 400),
            "hours": rng.normal(40, 5, 400),
            "city": rng.choice(["a", "b", "c"], 400),
            "y": rng.integers(0, 2, 400),
        }
    )
    cur = pd.DataFrame(
        {
            "age": rng.normal(55, 10, 300),
            "hours": rng.normal(40, 5, 300),
            "city": rng.choice(["a", "b", "c"], 300, p=[0.7, 0.2, 0.1]),
            "y": rng.integers(0, 2, 300),
        }
    )
    return ref, cur


@pytest.fixture
def outputs(tmp_path, monkeypatch):
    monkeypatch.setenv("FLAGSHIP_OUTPUTS", str(tmp_path))
    return tmp_path


def test_drift_report_share_columns_and_files(frames, tmp_path):
    ref, cur = frames
    s = drift_report(ref, cur, tmp_path / "d", columns=["age", "hours", "city"], project="x")
    assert s["count"] == 2 and s["share"] == pytest.approx(2 / 3) and s["n_columns"] == 3
    assert s["columns"]["age"]["drifted"] and s["columns"]["city"]["drifted"] and not s["columns"]["hours"]["drifted"]
    assert s["columns"]["age"]["method"].startswith("K-S") and s["columns"]["age"]["value"] < 0.05
    html = tmp_path / "d" / s["report"]
    assert html.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html") or "<html" in html.read_text()[:500]
    assert json.loads((tmp_path / "d" / "latest.json").read_text()) == json.loads(json.dumps(s))
    assert drift_report(ref, ref.iloc[::-1], tmp_path / "same", columns=["age", "hours", "city"])["share"] == 0.0


def test_drift_report_names_missing_columns_and_empty_data(frames, tmp_path):
    ref, cur = frames
    with pytest.raises(KeyError, match=r"\['city'\] not in the current data"):
        drift_report(ref, cur.drop(columns="city"), tmp_path, columns=["age", "city"])
    with pytest.raises(ValueError, match="empty data"):
        drift_report(ref, cur.iloc[:0], tmp_path)


def test_reports_are_pruned(frames, tmp_path, monkeypatch):
    ref, cur = frames
    monkeypatch.setattr(monitoring, "KEEP_REPORTS", 2)
    for _ in range(3):
        last = drift_report(ref[["hours"]], cur[["hours"]], tmp_path)
    htmls = sorted(p.name for p in tmp_path.glob("drift-*.html"))
    assert len(htmls) == 2 and last["report"] == htmls[-1]


def test_latest_drift_ignores_missing_and_corrupt(outputs, caplog):
    assert latest_drift("00-x") is None
    (drift_dir("00-x")).mkdir(parents=True)
    (drift_dir("00-x") / "latest.json").write_text("{not json")
    assert latest_drift("00-x") is None and "unreadable drift summary" in caplog.text
    atomic_write_json(drift_dir("00-x") / "latest.json", {"share": "high"})
    assert latest_drift("00-x") is None


def test_drift_score_gauge_follows_latest_report_with_ttl(frames, outputs):
    ref, cur = frames
    save_reference(ref, "00-example")
    cur.to_csv(outputs / "new.csv", index=False)
    cached = create_app([example_project()], metrics_ttl=3600)
    fresh = create_app([example_project()], metrics_ttl=0)
    with serve_in_thread(cached) as a, serve_in_thread(fresh) as b:
        assert "drift_score{" not in httpx.get(f"{a}/metrics").text  # no report yet: no series
        s = run_drift("00-example", outputs / "new.csv", columns=["age", "hours", "city"])
        assert s["share"] == pytest.approx(2 / 3)
        for url, expect_new in ((a, False), (b, True)):
            text = httpx.get(f"{url}/metrics").text
            assert ('drift_score{project="00-example"}' in text) is expect_new
        text = httpx.get(f"{b}/metrics").text
        assert f'drift_score{{project="00-example"}} {s["share"]}' in text
        assert 'drift_column_drifted{column="age",project="00-example"} 1.0' in text
        assert 'drift_column_drifted{column="hours",project="00-example"} 0.0' in text
        assert 'drift_report_timestamp_seconds{project="00-example"}' in text


def test_cli_drift_writes_report_and_fails_above_threshold(frames, outputs):
    ref, cur = frames
    save_reference(ref, "00-example")
    cur.to_csv(outputs / "new.csv", index=False)
    env = os.environ | {"FLAGSHIP_OUTPUTS": str(outputs)}
    cmd = [FLAGSHIP, "drift", "00-example", "--current", str(outputs / "new.csv")]
    ok = subprocess.run([*cmd, "--columns", "hours"], capture_output=True, text=True, env=env, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["share"] == 0.0
    high = subprocess.run(
        [*cmd, "--columns", "age,city", "--fail-above", "0.3"], capture_output=True, text=True, env=env, timeout=120
    )
    assert high.returncode == 3 and "above --fail-above 0.3" in high.stderr
    assert latest_drift("00-example")["share"] == 1.0
    missing = subprocess.run(
        [FLAGSHIP, "drift", "00-other", "--current", str(outputs / "new.csv")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert missing.returncode == 2 and "reference.parquet does not exist" in missing.stderr and "Traceback" not in missing.stderr
