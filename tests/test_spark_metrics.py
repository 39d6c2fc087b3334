"""Spark's PrometheusServlet during a live job: a real driver started by tools/spark-submit-local.sh (with
deploy/spark/metrics.properties) serves driver and executor metrics on its UI port while tools/spark_jobs/metrics_probe.py
waits, the text parses as Prometheus exposition format, and a real Prometheus scrapes it with the shipped `spark-driver`
job."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import httpx
import pyspark
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from test_prometheus import DEPLOY, _query, _wait_for, prometheus_server, require

from flagship.core.serving import free_port, serve_process

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
NAMESPACE = "flagship"  # spark.metrics.namespace: stable metric names instead of the per-run application id
DRIVER = f"metrics_{NAMESPACE}_driver_"
HOW = {
    "prometheus": "run `make install` (its system-deps step installs Debian's `prometheus` package as root)",
    "java": "PySpark needs a JDK 17: `apt-get install -y openjdk-17-jre-headless`, then run `make install`",
    "spark-submit": "run `make install` (pyspark provides spark-submit in .venv/bin)",
}


def need(binary: str, path: str | None = None) -> str:
    """Return the path of `binary`, failing the test (never skipping it) with its install hint when it is missing."""
    return require(binary, path, HOW[binary])


def test_missing_java_fails_with_a_clear_message():
    with pytest.raises(pytest.fail.Exception, match=r"`java` not found on PATH: PySpark needs a JDK 17"):
        need("java", path="")


def samples(text: str) -> dict[str, list]:
    """Parse Prometheus text with prometheus_client (malformed text raises); return {sample name: [samples]}."""
    out = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name].append(s)
    return out


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


@pytest.fixture(scope="module")
def driver_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory, driver_port):
    """A real Prometheus whose shipped `spark-driver` job scrapes the driver's port (down until the driver is up)."""
    need("prometheus")
    tmp = tmp_path_factory.mktemp("prometheus")
    with prometheus_server(f"127.0.0.1:{driver_port}", tmp, job_name="spark-driver") as url:
        yield {"url": url, "log": tmp / "prometheus.log"}


@pytest.fixture(scope="module")
def spark_job(tmp_path_factory, driver_port, prometheus):  # Prometheus first: its ~5 s target discovery overlaps the JVM start
    """A live spark-submit driver (UI on `driver_port`) that has run its actions and waits; yield its URL and summary."""
    need("java"), need("spark-submit", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    tmp, port = tmp_path_factory.mktemp("spark-metrics"), driver_port
    # no spark.ui.enabled and no FLAGSHIP_SPARK_UI: under spark-submit get_spark leaves the UI to Spark, which turns it on
    conf = f"spark.ui.port={port} spark.ui.prometheus.enabled=true spark.metrics.namespace={NAMESPACE}"
    conf += " spark.sql.shuffle.partitions=2 spark.ui.showConsoleProgress=false spark.port.maxRetries=0"
    env = {**os.environ, "SPARK_CONF": conf, "PYSPARK_PYTHON": sys.executable}
    env.pop("FLAGSHIP_SPARK_UI", None)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    stop, ready_file, log_path = tmp / "stop", tmp / "ready.json", tmp / "driver.log"
    cmd = ["bash", str(ROOT / "tools/spark-submit-local.sh"), "metrics_probe", "--rows", "100000"]
    cmd += ["--stop-file", str(stop), "--ready-file", str(ready_file), "--max-seconds", "120"]
    url, exit_code = f"http://127.0.0.1:{port}", {}
    with log_path.open("w") as log, contextlib.ExitStack() as stack:
        try:  # the servlet answers before the actions end: wait for both
            proc = stack.enter_context(
                serve_process(
                    cmd,
                    f"{url}/metrics/prometheus/",
                    timeout=90,
                    ready=lambda r: r.status_code == 200 and ready_file.exists(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,  # its own process group: java, the Python driver and any worker
                )
            )
        except RuntimeError as err:
            pytest.fail(f"{err}\n{log_path.read_text()[-3000:]}")
        stack.callback(_kill_group, proc.pid)  # last resort; runs after the clean stop below

        @stack.callback
        def _stop():  # the way the job is meant to end: its sentinel file
            stop.touch()
            with contextlib.suppress(subprocess.TimeoutExpired):
                exit_code["value"] = proc.wait(30)

        yield {"url": url, "port": port, "summary": json.loads(ready_file.read_text())}
    if exit_code.get("value") != 0:
        pytest.fail(f"metrics_probe did not exit 0 within 30 s of its stop file: {exit_code}\n{log_path.read_text()[-3000:]}")


@pytest.mark.slow
def test_job_ran_real_actions_under_spark_submit(spark_job):
    s = spark_job["summary"]
    assert s["ready"] and s["rows"] == 100_000 and s["groups"] == 10 and s["sum"] == sum(range(100_000))
    assert s["ui"] == spark_job["url"], s  # the UI bound to 127.0.0.1 on the port we chose


@pytest.mark.slow
def test_driver_serves_prometheus_text(spark_job):
    r = httpx.get(f"{spark_job['url']}/metrics/prometheus/", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain"), r.headers
    got = samples(r.text)
    heap = got[f"{DRIVER}jvm_heap_used_Value"]  # JvmSource: configured by deploy/spark/metrics.properties
    assert heap and heap[0].labels == {"type": "gauges"} and heap[0].value > 1e6, heap
    assert got[f"{DRIVER}jvm_heap_max_Value"][0].value >= heap[0].value
    assert got[f"{DRIVER}BlockManager_memory_maxMem_MB_Value"][0].value > 0
    assert got[f"{DRIVER}DAGScheduler_job_allJobs_Value"][0].value >= 3  # count, groupBy+collect, first
    assert got[f"{DRIVER}DAGScheduler_job_activeJobs_Value"][0].value == 0  # all done, the job is waiting
    assert got[f"{DRIVER}appStatus_tasks_completedTasks_Count"][0].value > 0
    app = spark_job["summary"]["app_id"].replace("-", "_")
    assert not [n for n in got if app in n], "spark.metrics.namespace did not replace the application id in names"


@pytest.mark.slow
def test_driver_serves_executor_metrics(spark_job):
    r = httpx.get(f"{spark_job['url']}/metrics/executors/prometheus/", timeout=10)
    assert r.status_code == 200, r.text[:500]
    got = samples(r.text)
    assert got["spark_info"][0].labels["version"] == pyspark.__version__
    want = {"application_id": spark_job["summary"]["app_id"], "application_name": "flagship-metrics-probe"}
    tasks = got["metrics_executor_completedTasks_total"]
    assert len(tasks) == 1 and tasks[0].labels == {**want, "executor_id": "driver"}, tasks  # local mode: one executor
    assert tasks[0].value >= 3 and got["metrics_executor_failedTasks_total"][0].value == 0
    assert got["metrics_executor_totalCores"][0].value == 2  # local[2] from tools/spark-submit-local.sh
    assert got["metrics_executor_maxMemory_bytes"][0].value > 0  # peak JVM-heap gauges stay 0 until a heartbeat
    assert got["metrics_executor_rddBlocks"][0].value > 0  # the probe's cached range
    assert got["metrics_executor_totalShuffleWrite_bytes_total"][0].value > 0  # its groupBy


def test_shipped_scrape_job_matches_the_k8s_annotations():
    jobs = {j["job_name"]: j for j in yaml.safe_load((DEPLOY / "prometheus.yml").read_text())["scrape_configs"]}
    path = jobs["spark-driver"]["metrics_path"]
    assert path == "/metrics/prometheus/"
    assert f"prometheus.io/path={path}" in (ROOT / "tools/spark-submit-k8s.sh").read_text()
    assert f"prometheus.io/path: {path}" in (ROOT / "deploy/k8s/SparkApplication.yaml").read_text()
    assert jobs["spark-driver"]["static_configs"][0]["targets"] == ["127.0.0.1:4040"]  # Spark's default UI port


@pytest.mark.slow
def test_real_prometheus_scrapes_the_driver(spark_job, prometheus):
    prom, target = prometheus["url"], f"127.0.0.1:{spark_job['port']}"
    assert _wait_for(prom, f'up{{job="spark-driver",instance="{target}"}}', 1) == 1, prometheus["log"].read_text()[-2000:]
    assert _wait_for(prom, f'count({DRIVER}jvm_heap_used_Value{{job="spark-driver"}})', 1) == 1
    heap = _query(prom, f'{DRIVER}jvm_heap_used_Value{{job="spark-driver",service="spark-driver",type="gauges"}}')
    assert len(heap) == 1 and float(heap[0]["value"][1]) > 1e6, heap
    jobs = _query(prom, f'{DRIVER}DAGScheduler_job_allJobs_Value{{job="spark-driver"}}')
    assert float(jobs[0]["value"][1]) >= 3, jobs
