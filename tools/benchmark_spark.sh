#!/usr/bin/env bash
# Benchmark the forecasting feature job: Spark local[2] vs DuckDB on the same synthetic CSV files (1M and 10M rows).
# Writes outputs/benchmarks/spark_features.json for the Benchmarks page. Takes minutes; run it on a quiet machine.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export OMP_NUM_THREADS=1 SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}"
exec python "$root/tools/benchmark_spark.py" "$@"
