"""The forecasting Spark jobs on the shared session: idempotent partitioned writes, schema errors that write nothing,
Delta MERGE, streaming that processes only new files, the same SQL in DuckDB, and `spark-submit` unchanged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from flagship.core.data import SchemaError
from flagship.forecasting.data import data_paths, load_data, select_series, write_raw
from flagship.forecasting.features import feature_sql, read_delta, run_feature_job, run_stream

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = data_paths()["schema"]
pytestmark = pytest.mark.slow


MONTHS = 14  # enough for a lag_12 check; every month is a partition, and partitions dominate local write time


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory) -> Path:
    """Two real series, last 14 months, in the raw ABS layout."""
    panel = select_series(load_data(), n_series=2)
    panel = panel[panel["month"] > panel["month"].max() - pd.DateOffset(months=MONTHS)]
    return write_raw(panel, tmp_path_factory.mktemp("raw") / "retail.csv")


@pytest.fixture(scope="module")
def job(spark, small_csv, tmp_path_factory) -> dict:
    """The feature job run twice into the same folder."""
    out = tmp_path_factory.mktemp("job") / "features"
    runs = [run_feature_job(small_csv, out, SCHEMA, partitions=2, spark=spark) for _ in range(2)]
    return {"out": out, "runs": runs}


def test_feature_job_is_idempotent_and_partitioned_by_month(spark, job):
    df = spark.read.parquet(str(job["out"]))
    rows = [r["rows"] for r in job["runs"]]
    assert rows == [2 * MONTHS] * 2 and df.count() == df.select("series_id", "month").distinct().count() == 2 * MONTHS
    assert len(list(job["out"].glob("month=*"))) == MONTHS
    row = df.filter("month = '2018-12-01'").orderBy("series_id").first()
    prev = df.filter(f"month = '2017-12-01' AND series_id = '{row['series_id']}'").first()
    assert row["lag_12"] == prev["turnover"] and row["month_of_year"] == 12 and row["month_idx"] == 2018 * 12 + 11


def test_duckdb_runs_the_same_feature_sql(spark, job, small_csv):
    sp = spark.read.parquet(str(job["out"])).toPandas()
    raw = pd.read_csv(small_csv).rename(
        columns={"Series ID": "series_id", "State": "state", "Industry": "industry", "Turnover": "turnover"}
    )
    raw["month"] = pd.to_datetime(raw.pop("Month"), format="%Y %b")  # noqa: F841 - DuckDB reads `raw` by name
    dd = duckdb.sql(feature_sql("raw")).df()
    key = ["series_id", "month_idx"]
    sp, dd = sp.sort_values(key).reset_index(drop=True), dd.sort_values(key).reset_index(drop=True)
    for col in ["lag_1", "lag_12", "roll_mean_3", "roll_mean_12", "turnover"]:
        pd.testing.assert_series_equal(sp[col].astype(float), dd[col].astype(float), check_names=False)


def test_dynamic_overwrite_replaces_only_the_months_present(spark, job, small_csv, tmp_path):
    out = job["out"]  # runs after the tests above, which read the unmodified output; checks write semantics only (a real
    # correction is re-run with its history, or lags of the corrected month would be null)
    untouched = sorted((out / "month=2018-01-01").glob("*.parquet"))
    late, raw = tmp_path / "late.csv", pd.read_csv(small_csv)
    raw[raw["Month"] == "2018 Dec"].assign(Turnover=lambda d: d["Turnover"] + 1).to_csv(late, index=False)
    run_feature_job(late, out, SCHEMA, spark=spark)
    df = spark.read.parquet(str(out))
    assert df.count() == 2 * MONTHS and sorted((out / "month=2018-01-01").glob("*.parquet")) == untouched
    dec = df.filter("month = '2018-12-01'").toPandas().sort_values("series_id")
    want = raw[raw["Month"] == "2018 Dec"].sort_values("Series ID")["Turnover"].to_numpy() + 1
    assert (dec["turnover"].to_numpy() == want).all()


@pytest.mark.parametrize(
    "header,row,column,rule",
    [
        ("State,Industry,Series ID,Turnover", "ACT,Food,A1,4.4", "Month", "required column"),
        ("State,Industry,Series ID,Month,Turnover", "ACT,Food,A1,1982 Apx,4.4", "Month", "dtype date"),
        ("State,Industry,Series ID,Month,Turnover", "ACT,Food,A1,1982 Apr,-1", "Turnover", ">= 0"),
    ],
)
def test_bad_input_names_file_column_rule_and_writes_nothing(spark, tmp_path, header, row, column, rule):
    bad = tmp_path / "bad_input.csv"
    bad.write_text(f"{header}\n{row}\n")
    with pytest.raises(SchemaError) as err:
        run_feature_job(bad, tmp_path / "out", SCHEMA, spark=spark)
    assert (err.value.column, err.value.rule) == (column, rule) and "bad_input.csv" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_delta_merge_is_keyed_on_series_and_month(spark, small_csv, tmp_path):
    table = tmp_path / "delta"
    run_feature_job(small_csv, table, SCHEMA, mode="delta", spark=spark)
    run_feature_job(small_csv, table, SCHEMA, mode="delta", spark=spark)
    df = read_delta(spark, table)
    assert df.count() == df.select("series_id", "month").distinct().count() == 2 * MONTHS


def test_stream_processes_only_the_new_file(spark, small_csv, tmp_path):
    landing, raw = tmp_path / "landing", pd.read_csv(small_csv)
    landing.mkdir()
    raw.iloc[: MONTHS - 1].to_csv(landing / "a.csv", index=False)  # one series but its last month
    first = run_stream(landing, tmp_path / "out", tmp_path / "ckpt", SCHEMA, spark)
    raw.iloc[MONTHS - 1 :].to_csv(landing / "b.csv", index=False)
    second = run_stream(landing, tmp_path / "out", tmp_path / "ckpt", SCHEMA, spark)
    assert [Path(f).name for b in first for f in b["files"]] == ["a.csv"]
    assert [Path(f).name for b in second for f in b["files"]] == ["b.csv"] and second[0]["rows"] == MONTHS + 1
    assert run_stream(landing, tmp_path / "out", tmp_path / "ckpt", SCHEMA, spark) == []
    feats = read_delta(spark, tmp_path / "out" / "features")
    assert feats.count() == feats.select("series_id", "month").distinct().count() == 2 * MONTHS


def test_spark_submit_runs_the_job_unchanged(small_csv, tmp_path):
    env = {**os.environ, "SPARK_CONF": "spark.sql.shuffle.partitions=2 spark.driver.memory=1g", "PYSPARK_PYTHON": sys.executable}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    cmd = [
        "bash",
        str(ROOT / "tools/spark-submit-local.sh"),
        "forecasting_features",
        "--input",
        str(small_csv),
        "--output",
        str(tmp_path / "o"),
        "--schema",
        str(SCHEMA),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][-1])
    assert summary["master"] == "local[2]"  # spark-submit's master, not get_spark's local[*] default
    assert summary["rows"] == 2 * MONTHS and len(list((tmp_path / "o").glob("month=*"))) == MONTHS
