"""The forecasting API on a real uvicorn at 127.0.0.1: precomputed forecasts, 422 for unknown series and horizons,
503 JSON when the run has not produced forecasts, and the data-freshness status. The re-forecast flow is tested in
tests/test_forecasting_reforecast.py."""

from __future__ import annotations

import contextlib
import datetime as dt
import json

import duckdb
import httpx
import pandas as pd
import pytest

from flagship.core.serving import create_app, serve_in_thread
from flagship.forecasting.data import load_data, select_series
from flagship.forecasting.features import feature_sql
from flagship.forecasting.serve import data_freshness_days, make_forecasts, project_api, save_forecasts
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
    save_forecasts(make_forecasts(features, model, "1.0.0"), out)
    return out


@pytest.fixture(scope="module")
def api(run_dir, tmp_path_factory):
    """The API over a real run folder and over a folder that never ran, each on its own uvicorn."""
    empty = tmp_path_factory.mktemp("never-ran")
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(serve_in_thread(create_app([project_api(run_dir)])))
        url_missing = stack.enter_context(serve_in_thread(create_app([project_api(empty)])))
        yield url, url_missing


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


def test_freshness_counts_days_from_the_end_of_the_last_month():
    assert data_freshness_days("2018-12", dt.datetime(2019, 2, 1, tzinfo=dt.UTC)) == 31.0
    assert data_freshness_days("2018-11", dt.datetime(2018, 12, 1, tzinfo=dt.UTC)) == 0.0
