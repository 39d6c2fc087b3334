"""Shared fixtures: one SparkSession for the whole test session (each JVM start costs seconds)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Prefect's temporary API keeps its SQLite state here, not in the repository's outputs/ (one folder per user, so
# its schema migrations run once per machine rather than on every test run); no telemetry calls.
os.environ.setdefault("PREFECT_HOME", str(Path(tempfile.gettempdir()) / f"flagship-tests-prefect-{os.getuid()}"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """A local SparkSession with flagship's defaults, two cores, UI off, warehouse in a temp folder."""
    from flagship.core.spark import get_spark

    warehouse = tmp_path_factory.mktemp("spark-warehouse")
    session = get_spark(
        "flagship-tests", master="local[2]", conf={"spark.sql.warehouse.dir": str(warehouse), "spark.sql.shuffle.partitions": "4"}
    )
    yield session
    session.stop()
