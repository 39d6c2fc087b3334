"""Forecasting: MLflow tracking of the backtest on the real SQLite store under a temporary FLAGSHIP_OUTPUTS: one run
per model with its parameters, overall metrics and per-step table, and the production LightGBM registered as
`champion` and loadable through models:/<project>@champion."""

from __future__ import annotations

import io
import os

import duckdb
import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from flagship.core.tracking import setup_mlflow, tracking_uri
from flagship.forecasting.data import load_data, select_series
from flagship.forecasting.evaluate import backtest_table, track_backtest
from flagship.forecasting.features import feature_sql
from flagship.forecasting.train import LGB_FEATURES, backtest, direct_rows, fit_lightgbm, make_lightgbm, seasonal_naive

SLUG = "02-time-series-forecasting"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A fresh FLAGSHIP_OUTPUTS (so a fresh mlflow.db) for this module, with no tracking server from the environment."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FLAGSHIP_OUTPUTS", str(tmp_path_factory.mktemp("outputs")))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        yield tracking_uri()


@pytest.fixture(scope="module")
def backtested(store, tmp_path_factory):
    """A two-model backtest on three real ABS series and the production booster refitted on all their months."""
    raw = select_series(load_data(), n_series=3)  # noqa: F841 - DuckDB reads the local frame by name
    features = duckdb.sql(feature_sql("raw")).df()
    features["month"] = pd.to_datetime(features["month"])
    for col in ("state", "industry"):
        features[col] = features[col].astype("category")
    features = features.sort_values(["series_id", "month_idx"]).reset_index(drop=True)
    results = backtest(features, {"seasonal_naive": seasonal_naive, "lightgbm": make_lightgbm(20)}, n_origins=2, horizon=12)
    rows = direct_rows(features, 12)
    booster = fit_lightgbm(rows, int(features["month_idx"].max()), rounds=20)
    path = tmp_path_factory.mktemp("models") / f"{SLUG}-lightgbm-v1.0.0.txt"
    booster.save_model(str(path))
    common = {"profile": "test", "seed": 42, "n_series": 3, "origins": 2, "horizon": 12}
    params = {"seasonal_naive": common | {"season": 12}, "lightgbm": common | {"rounds": 20, "train_months": 180}}
    return backtest_table(results), params, path, rows


@pytest.fixture(scope="module")
def tracked(backtested):
    table, params, path, _ = backtested
    return track_backtest(table, params, path, tags={"profile": "test", "version": "1.0.0"})


def test_store_is_the_sqlite_file_under_flagship_outputs(store, tracked):
    assert store == f"sqlite:///{os.environ['FLAGSHIP_OUTPUTS']}/mlflow/mlflow.db"
    assert os.path.getsize(store.removeprefix("sqlite:///")) > 0


def test_one_run_per_model_with_params_metrics_and_step_table(tracked, backtested):
    table, params, _, _ = backtested
    mlflow = setup_mlflow(SLUG)
    assert set(tracked["run_ids"]) == {"seasonal_naive", "lightgbm"}
    for name, run_id in tracked["run_ids"].items():
        run = mlflow.get_run(run_id)
        assert run.info.status == "FINISHED" and run.info.experiment_id == mlflow.get_experiment_by_name(SLUG).experiment_id
        assert run.data.params == {k: str(v) for k, v in params[name].items()}
        assert run.data.tags["model"] == name and run.data.tags["profile"] == "test"
        overall = table[(table["model"] == name) & (table["step"] == "all")].iloc[0]
        assert run.data.metrics == pytest.approx({m: overall[m] for m in ("MAPE", "sMAPE", "RMSE", "MASE")}, rel=1e-12)
        steps = pd.read_csv(io.StringIO(mlflow.artifacts.load_text(f"runs:/{run_id}/backtest_steps.csv")))
        assert steps["step"].astype(str).tolist() == ["all", *map(str, range(1, 13))]
        assert np.allclose(steps["MASE"], table.loc[table["model"] == name, "MASE"])


def test_champion_alias_loads_the_production_booster(tracked, backtested):
    _, _, path, rows = backtested
    mlflow = setup_mlflow(SLUG)
    champion = mlflow.MlflowClient().get_model_version_by_alias(SLUG, "champion")
    assert tracked["registered_model"] == SLUG and tracked["alias"] == "champion"
    assert str(champion.version) == tracked["registered_version"] and champion.run_id == tracked["run_ids"]["lightgbm"]
    loaded = mlflow.lightgbm.load_model(f"models:/{SLUG}@champion")
    x = rows.loc[rows["origin"] == rows["origin"].max(), LGB_FEATURES]
    expected = lgb.Booster(model_file=str(path)).predict(x)
    assert len(x) == 3 * 12 and np.allclose(loaded.predict(x), expected) and np.isfinite(expected).all()


def test_missing_params_name_the_model(backtested, store):
    table, params, path, _ = backtested
    with pytest.raises(ValueError, match=r"params has no entry for \['seasonal_naive'\]"):
        track_backtest(table, {"lightgbm": params["lightgbm"]}, path)
