#!/usr/bin/env python
"""Benchmark the retail feature job (Spark, local[2]) against the same transform in DuckDB on the same files.

    python tools/benchmark_spark.py                     # 1M and 10M synthetic rows
    python tools/benchmark_spark.py --rows 1000000      # one size

For each size it writes one synthetic CSV in the raw ABS layout (State, Industry, Series ID, Month, Turnover), then
times, end to end on that file: Spark = flagship.forecasting.features.run_feature_job (read, validate, features, write
Parquet partitioned by month); DuckDB = read the same CSV, check the same rules, run the identical feature SQL
(flagship.forecasting.features.feature_sql) and COPY to Parquet partitioned by month. Results (seconds, rows/s,
Spark/DuckDB ratio, growth from the smallest size) go to outputs/benchmarks/spark_features.json via
flagship.core.publish.save_benchmark. A benchmark, not a test: the figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

MONTHS = 400  # months per synthetic series (1985 Jan onwards): the number of month partitions written


def make_csv(path: Path, rows: int, seed: int = 0) -> Path:
    """Write `rows` synthetic monthly turnover rows (rows / 400 series) in the raw ABS CSV layout."""
    rng = np.random.default_rng(seed)
    n_series = rows // MONTHS
    labels = np.array(
        [f"{1985 + m // 12} {'Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec'.split()[m % 12]}" for m in range(MONTHS)]
    )
    level = rng.lognormal(4, 1, n_series)[:, None]
    t = np.arange(MONTHS)[None, :]
    y = level * (1 + 0.002 * t) * (1 + 0.1 * np.sin(2 * np.pi * t / 12)) * rng.lognormal(0, 0.05, (n_series, MONTHS))
    sid = np.repeat(np.array([f"S{i:07d}" for i in range(n_series)]), MONTHS)
    table = pa.table(
        {
            "State": np.repeat(np.array(["NSW", "VIC", "QLD", "WA", "SA", "TAS", "ACT", "NT"])[np.arange(n_series) % 8], MONTHS),
            "Industry": np.repeat(np.array([f"Industry {i % 20}" for i in range(n_series)]), MONTHS),
            "Series ID": sid,
            "Month": np.tile(labels, n_series),
            "Turnover": np.round(y.ravel(), 2),
        }
    )
    pacsv.write_csv(table, path)
    return path


def run_spark(csv: Path, out: Path, spark) -> float:
    """Time the Spark feature job on `csv`."""
    from flagship.forecasting.features import run_feature_job

    start = time.perf_counter()
    run_feature_job(csv, out, schema=SCHEMA, partitions=2, spark=spark)
    return time.perf_counter() - start


def run_duckdb(csv: Path, out: Path, threads: int = 2) -> float:
    """Time the same read, validation, feature SQL and month-partitioned Parquet write in DuckDB."""
    import duckdb

    from flagship.forecasting.features import feature_sql

    start = time.perf_counter()
    con = duckdb.connect(config={"threads": threads})
    con.execute(f"""CREATE TEMP VIEW raw AS SELECT "Series ID" AS series_id, State AS state, Industry AS industry,
        CAST(try_strptime(Month, '%Y %b') AS DATE) AS month, TRY_CAST(Turnover AS DOUBLE) AS turnover
        FROM read_csv('{csv}', header = true, all_varchar = true)""")
    bad = con.execute(
        "SELECT count(*) FILTER (month IS NULL OR turnover IS NULL OR turnover < 0 OR series_id IS NULL) FROM raw"
    ).fetchone()[0]
    if bad:
        raise ValueError(f"{csv}: {bad} rows break the schema")
    con.execute(f"COPY ({feature_sql('raw')}) TO '{out}' (FORMAT PARQUET, PARTITION_BY (month), OVERWRITE_OR_IGNORE)")
    con.close()
    return time.perf_counter() - start


SCHEMA: Path | None = None


def main(argv: list[str] | None = None) -> list[list]:
    """Run both engines at every size and save the Benchmarks page table."""
    global SCHEMA
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000], help="synthetic row counts")
    p.add_argument("--master", default="local[2]", help="Spark master")
    p.add_argument("--workdir", default=None, help="scratch folder (default: a temp folder, removed afterwards)")
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from flagship.core.publish import save_benchmark
    from flagship.core.spark import get_spark
    from flagship.forecasting.data import data_paths

    SCHEMA = data_paths()["schema"]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-spark-"))
    spark = get_spark(
        "benchmark-features",
        master=args.master,
        conf={"spark.sql.shuffle.partitions": "8", "spark.ui.showConsoleProgress": "false"},
    )
    run_spark(make_csv(work / "warmup.csv", 4_000), work / "warm", spark)  # JVM start and first-action cost excluded
    rows, base = [], {}
    for n in args.rows:
        csv = make_csv(work / f"rows_{n}.csv", n)
        s, d = run_spark(csv, work / f"spark_{n}", spark), run_duckdb(csv, work / f"duckdb_{n}")
        base.setdefault("spark", s), base.setdefault("duckdb", d)
        rows.append(
            [
                f"{n:,}",
                round(s, 1),
                round(n / s),
                round(d, 1),
                round(n / d),
                round(s / d, 1),
                round(s / base["spark"], 2),
                round(d / base["duckdb"], 2),
            ]
        )
        print(dict(zip(COLUMNS, rows[-1], strict=True)), flush=True)  # noqa: T201 - progress of a CLI
        shutil.rmtree(work / f"spark_{n}", ignore_errors=True), shutil.rmtree(work / f"duckdb_{n}", ignore_errors=True)
    spark.stop()
    notes = (
        f"Synthetic raw CSV ({MONTHS} months per series), read + validated + 13 lags, 2 rolling means, calendar features, "
        f"Parquet partitioned by month ({MONTHS} partitions). Spark {args.master} (JVM start excluded); DuckDB 2 threads. "
        f"Growth = seconds / seconds at {args.rows[0]:,} rows. Machine: 2 cores shared with other jobs (load average "
        f"{os.getloadavg()[0]:.1f} at the end)."
    )
    command = "python tools/benchmark_spark.py " + " ".join(sys.argv[1:])
    save_benchmark("spark_features", "Feature job: Spark vs DuckDB", COLUMNS, rows, command.strip(), notes)
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return rows


COLUMNS = [
    "rows",
    "spark_s",
    "spark_rows_per_s",
    "duckdb_s",
    "duckdb_rows_per_s",
    "spark_duckdb_ratio",
    "spark_growth",
    "duckdb_growth",
]

if __name__ == "__main__":
    main()
