"""The forecasting API on a real uvicorn at 127.0.0.1: precomputed forecasts, 422 for unknown series and horizons,
503 JSON when the run has not produced forecasts, and the scheduled re-forecast flow."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
import time

import duckdb
import httpx
import pandas as pd
import pytest
import uvicorn

from flagship.core.serving import create_app
from flagship.forecasting.data import load_data, select_series
from flagship.forecasting.features import feature_sql
from flagship.forecasting.serve import (
    SCHEDULE,
    data_freshness_days,
    make_forecasts,
    next_run,
    project_api,
    reforecast_flow,
    save_forecasts,
)
from flagship.forecasting.train import direct_rows, fit_lightgbm


def _features() -> pd.DataFrame:
    raw = select_series(load_data(), n_series=3)  # noqa: F841 - DuckDB reads `raw` by name
    df = duckdb.sql(feature_sql("raw")).df()
    df["month"] = pd.to_datetime(df["month"])
    return df.assign(state=df["state"].astype("category"), industry=df["industry"].astype("category"))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run folder with real forecasts from a small LightGBM, and Parquet features for the flow."""
    out = tmp_path_factory.mktemp("forecasting-run")
    features = _features()
    features.to_parquet(out / "features.parquet")
    model = fit_lightgbm(direct_rows(features), int(features["month_idx"].max()), rounds=30)
    save_forecasts(make_forecasts(features, model), out)
    return out


def _serve(app):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def api(run_dir, tmp_path_factory):
    empty = tmp_path_factory.mktemp("never-ran")
    app = create_app([project_api(run_dir)])
    missing = create_app([project_api(empty)])
    (s1, t1, url), (s2, t2, url_missing) = _serve(app), _serve(missing)
    yield url, url_missing
    for server, thread in ((s1, t1), (s2, t2)):
        server.should_exit = True
        thread.join(timeout=10)


def test_forecast_returns_precomputed_values(api, run_dir):
    doc = json.loads((run_dir / "forecasts.json").read_text())
    sid = sorted(doc["series"])[0]
    r = httpx.post(f"{api[0]}/forecasting/forecast", json={"series_id": sid, "horizon": 3})
    assert r.status_code == 200 and r.headers["x-request-id"]
    body = r.json()
    assert body["forecast"] == doc["series"][sid]["yhat"][:3] and body["months"] == ["2019-01", "2019-02", "2019-03"]
    assert all(v > 0 for v in body["forecast"])
    metrics = httpx.get(f"{api[0]}/metrics").text
    assert 'model_predictions_total{model_version="1.0.0",project="02-time-series-forecasting"} 3.0' in metrics


@pytest.mark.parametrize(
    "body,field",
    [
        ({"series_id": "A0000000X", "horizon": 3}, "series_id"),
        ({"series_id": "A3349849A", "horizon": 13}, "horizon"),
        ({"series_id": "A3349849A", "horizon": 0}, "horizon"),
        ({"horizon": 3}, "series_id"),
    ],
)
def test_bad_requests_get_422_naming_the_field(api, body, field):
    r = httpx.post(f"{api[0]}/forecasting/forecast", json=body)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == field


def test_missing_artifacts_give_503_json_and_health_says_so(api):
    r = httpx.post(f"{api[1]}/forecasting/forecast", json={"series_id": "A3349849A", "horizon": 3})
    assert r.status_code == 503 and "forecasts not built" in r.json()["detail"]
    health = httpx.get(f"{api[1]}/health").json()
    assert health["status"] == "degraded" and health["projects"]["02-time-series-forecasting"]["ready"] is False


def test_health_reports_data_freshness(api):
    status = httpx.get(f"{api[0]}/health").json()["projects"]["02-time-series-forecasting"]
    assert status["ready"] and status["data_last_month"] == "2018-12" and status["data_freshness_days"] > 2000


def test_freshness_and_schedule():
    assert data_freshness_days("2018-12", dt.datetime(2019, 2, 1, tzinfo=dt.UTC)) == 31.0
    assert next_run(SCHEDULE["cron"], dt.datetime(2027, 1, 12, 6, 0, tzinfo=dt.UTC)) == dt.datetime(2027, 2, 12, 6, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match="only 'M H D"):
        next_run("*/5 * * * *", dt.datetime(2027, 1, 1, tzinfo=dt.UTC))


def test_reforecast_flow_rewrites_forecasts_deterministically(run_dir, monkeypatch):
    import flagship.forecasting.train as train

    features = pd.read_parquet(run_dir / "features.parquet")
    monkeypatch.setattr(train, "load_features", lambda path: features)  # the flow's Parquet folder comes from Spark
    first = reforecast_flow(run_dir, rounds=20)
    a = json.loads((run_dir / "forecasts.json").read_text())["series"]
    reforecast_flow(run_dir, rounds=20)
    b = json.loads((run_dir / "forecasts.json").read_text())["series"]
    assert first["series"] == 3 and a == b
    assert "forecast_data_freshness_days" in (run_dir / "freshness.prom").read_text()
