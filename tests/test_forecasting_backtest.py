"""Forecasting: the backtest harness, the models and the metrics on real ABS series (features built by DuckDB from
the same SQL the Spark job runs, so these tests need no JVM)."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from flagship.forecasting.data import load_data, select_series
from flagship.forecasting.evaluate import backtest_table, quality_bar, score
from flagship.forecasting.features import feature_sql
from flagship.forecasting.train import auto_ets, backtest, make_lightgbm, make_lstm, make_origins, seasonal_naive


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    """Features for four real series, computed by DuckDB with the feature job's SQL."""
    raw = select_series(load_data(), n_series=4)  # noqa: F841 - DuckDB reads the local frame by name
    df = duckdb.sql(feature_sql("raw")).df()
    df["month"] = pd.to_datetime(df["month"])
    for col in ("state", "industry"):
        df[col] = df[col].astype("category")
    return df.sort_values(["series_id", "month_idx"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def results(features) -> pd.DataFrame:
    models = {"seasonal_naive": seasonal_naive, "auto_ets": auto_ets, "lightgbm": make_lightgbm(60), "lstm": make_lstm(1)}
    return backtest(features, models, n_origins=3, horizon=12, seed=7)


def test_origins_cover_the_last_years_without_overlap(features):
    origins = make_origins(features, 3, 12)
    assert np.diff(origins).tolist() == [12, 12] and origins[-1] + 12 == features["month_idx"].max()


def test_backtest_has_every_model_origin_series_and_step(results, features):
    n = features["series_id"].nunique()
    assert results.groupby("model").size().to_dict() == {
        m: 3 * 12 * n for m in ["auto_ets", "lightgbm", "lstm", "seasonal_naive"]
    }
    assert results["yhat"].notna().all() and (results["month_idx"] > results["origin"]).all()


def test_seasonal_naive_matches_a_hand_computation(results, features):
    row = results[(results["model"] == "seasonal_naive") & (results["h"] == 5)].iloc[0]
    y = features.set_index(["series_id", "month_idx"])["turnover"]
    assert row["yhat"] == y[(row["series_id"], row["origin"] + 5 - 12)]
    hist = features[(features["series_id"] == row["series_id"]) & (features["month_idx"] <= row["origin"])]["turnover"].to_numpy()
    assert row["scale"] == pytest.approx(np.abs(hist[12:] - hist[:-12]).mean())  # MASE scale: in-sample seasonal MAE


def test_lightgbm_does_not_see_the_future(features):
    """Changing every value after the origin must not change the forecasts made at the origin."""
    origin = make_origins(features, 1, 12)[0]
    future = features["month_idx"] > origin
    shifted = features.copy()
    shifted.loc[future, "turnover"] *= 3
    lag_cols = [c for c in features.columns if c.startswith(("lag_", "roll_mean_"))]
    shifted.loc[future, lag_cols] *= 3  # features of future rows move too; rows at or before the origin do not
    a = make_lightgbm(40)(features, origin, 12, seed=1)
    b = make_lightgbm(40)(shifted, origin, 12, seed=1)
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))


def test_metrics_table_has_overall_and_every_step(results):
    table = backtest_table(results)
    assert set(table["step"]) == {"all", *map(str, range(1, 13))}
    assert set(table.columns) == {"model", "step", "MAPE", "sMAPE", "RMSE", "MASE"}
    overall = table[table["step"] == "all"].set_index("model")
    assert overall["MASE"].between(0.1, 5).all()  # real retail data: every model is within a sane range
    assert overall.loc["auto_ets", "MASE"] < overall.loc["seasonal_naive", "MASE"]  # ETS beats last-year on these series
    assert set(quality_bar(overall)) == {"model", "baseline", "gain", "min_gain", "passed"}


def test_score_on_known_errors():
    toy = pd.DataFrame({"model": "m", "y": [100.0, 50.0], "yhat": [90.0, 60.0], "scale": [5.0, 10.0]})
    s = score(toy).loc["m"]
    assert s["MAPE"] == pytest.approx((10 + 20) / 2)
    assert s["sMAPE"] == pytest.approx((200 * 10 / 190 + 200 * 10 / 110) / 2)
    assert s["MASE"] == pytest.approx((2 + 1) / 2) and s["RMSE"] == pytest.approx(10.0)


def test_seeds_make_the_lstm_reproducible(features):
    origin = make_origins(features, 1, 12)[0]
    a, b = make_lstm(1)(features, origin, 12, seed=3), make_lstm(1)(features, origin, 12, seed=3)
    np.testing.assert_allclose(a["yhat"], b["yhat"])
