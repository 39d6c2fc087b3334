"""A small Spark job that stays up until told to stop, so the driver's PrometheusServlet can be scraped while it runs.

tools/spark-submit-local.sh metrics_probe --stop-file /tmp/probe-stop &
curl -s 127.0.0.1:4040/metrics/prometheus/ | grep jvm_heap_used   # once it prints {"ready": true, ...}
touch /tmp/probe-stop                                             # the job exits within a second or two

It runs a few real actions (a range, a grouped aggregation with a shuffle, a cached count), writes one JSON line
{"ready": true, ...} to stdout and to --ready-file, then waits until --stop-file exists or --max-seconds pass.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from flagship.core.spark import get_spark


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=200_000, help="rows of the synthetic range (default 200000)")
    p.add_argument("--stop-file", type=Path, help="exit as soon as this file exists")
    p.add_argument("--ready-file", type=Path, help="written (with the summary JSON) once the actions have run")
    p.add_argument("--max-seconds", type=float, default=120.0, help="exit after this many seconds of waiting regardless")
    return p.parse_args(argv)


def run_actions(spark, rows: int) -> dict:
    """Run a few actions that touch the DAG scheduler, the shuffle and the block manager; return their results."""
    df = spark.range(rows).selectExpr("id", "id % 10 AS bucket")
    cached = df.cache()
    counted = cached.count()
    groups = cached.groupBy("bucket").count().orderBy("bucket").collect()
    total = cached.selectExpr("sum(id) AS s").first()["s"]
    return {"rows": counted, "groups": len(groups), "sum": int(total)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    spark = get_spark("flagship-metrics-probe")
    summary = {"ready": True, **run_actions(spark, args.rows), "ui": spark.sparkContext.uiWebUrl}
    summary["app_id"] = spark.sparkContext.applicationId
    line = json.dumps(summary)
    print(line, flush=True)
    if args.ready_file:
        args.ready_file.write_text(line + "\n")
    deadline, parent = time.monotonic() + args.max_seconds, os.getppid()
    while time.monotonic() < deadline and not (args.stop_file and args.stop_file.exists()):
        if os.getppid() != parent:  # spark-submit's JVM is gone: nothing left to serve the metrics
            return 1
        time.sleep(0.2)
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
