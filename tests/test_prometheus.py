"""Prometheus: the shipped config and alert rules pass promtool (check + unit tests), and a real Prometheus
server on 127.0.0.1 scrapes a real uvicorn and reads the request counter back through its HTTP API."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from flagship.core.monitoring import drift_dir
from flagship.core.publish import atomic_write_json
from flagship.core.serving import create_app, example_project, free_port, serve_in_thread, serve_process

DEPLOY = Path(__file__).resolve().parents[1] / "deploy" / "prometheus"
INSTALL = "install Debian's `prometheus` package (`apt-get install -y prometheus`, or `make system-deps` as root)"


def require(binary: str, path: str | None = None, how: str = INSTALL) -> str:  # how: the install hint
    """Return the path of `binary`, failing the test (never skipping it) when it is not installed."""
    found = shutil.which(binary, path=path)
    if found is None:
        pytest.fail(f"`{binary}` not found on PATH: {how}; CI installs it, so this test fails rather than skips")
    return found


def test_missing_promtool_fails_with_a_clear_message():
    with pytest.raises(pytest.fail.Exception, match=r"`promtool` not found on PATH: install Debian's `prometheus` package"):
        require("promtool", path="")


def _promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([require("promtool"), *args], capture_output=True, text=True, cwd=DEPLOY, timeout=60)


def test_promtool_check_config_and_rules():
    config = _promtool("check", "config", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr
    rules = _promtool("check", "rules", "alerts.yml")
    assert rules.returncode == 0 and "SUCCESS: 7 rules found" in rules.stdout, rules.stdout + rules.stderr


def test_promtool_unit_tests_of_the_alert_rules():
    run = _promtool("test", "rules", "tests/alerts_test.yml")
    assert run.returncode == 0 and "SUCCESS" in run.stdout, run.stdout + run.stderr


def test_alert_rules_match_the_issue():
    groups = {r.get("alert"): r for g in yaml.safe_load((DEPLOY / "alerts.yml").read_text())["groups"] for r in g["rules"]}
    assert (
        groups["FlagshipDataDrift"]["expr"].strip().endswith("drift_score) > 0.3") and groups["FlagshipDataDrift"]["for"] == "10m"
    )
    assert "histogram_quantile(0.99" in groups["FlagshipHighLatencyP99"]["expr"]
    assert "http_errors_total" in groups["FlagshipHighErrorRate"]["expr"]


@contextlib.contextmanager
def prometheus_server(target: str, tmp: Path, interval: str = "1s", job_name: str = "flagship-api"):
    """Run a real Prometheus on 127.0.0.1 with the shipped rules and only the shipped scrape job `job_name`, pointed
    at `target`; yield its URL."""
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    config["global"].update(scrape_interval=interval, evaluation_interval=interval)
    config["rule_files"] = [str(DEPLOY / f) for f in config["rule_files"]]
    config["scrape_configs"] = [j for j in config["scrape_configs"] if j["job_name"] == job_name]
    assert len(config["scrape_configs"]) == 1, f"deploy/prometheus/prometheus.yml has no scrape job {job_name!r}"
    job = config["scrape_configs"][0]
    job["static_configs"][0]["targets"] = [target]
    job["scrape_timeout"] = interval
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    cmd = [require("prometheus"), f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'data'}"]
    cmd += [f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
    url = f"http://127.0.0.1:{port}"
    with (tmp / "prometheus.log").open("w") as log, contextlib.ExitStack() as stack:
        try:
            stack.enter_context(serve_process(cmd, f"{url}/-/ready", timeout=30, stdout=log, stderr=subprocess.STDOUT))
        except RuntimeError as err:
            pytest.fail(f"{err}: {(tmp / 'prometheus.log').read_text()[-2000:]}")
        yield url


def _query(url: str, expr: str) -> list[dict]:
    r = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=5).json()
    assert r["status"] == "success", r
    return r["data"]["result"]


def _wait_for(url: str, expr: str, want: float, timeout: float = 30.0) -> float:
    """Poll Prometheus until `expr` evaluates to `want` (returns the last value seen)."""
    deadline, value = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        result = _query(url, expr)
        value = float(result[0]["value"][1]) if result else None
        if value == want:
            return value
        time.sleep(0.5)
    return value


@pytest.mark.slow
def test_real_prometheus_scrapes_the_api(tmp_path, monkeypatch):
    monkeypatch.setenv("FLAGSHIP_OUTPUTS", str(tmp_path / "outputs"))
    atomic_write_json(
        drift_dir("00-example") / "latest.json", {"share": 0.25, "created_at": "2026-12-04T20:00:00+00:00", "columns": {}}
    )
    app = create_app([example_project()], metrics_ttl=0)
    with serve_in_thread(app) as api:
        n = 7
        for i in range(n):
            r = httpx.post(f"{api}/example/predict", json={"instances": [{"x1": i, "x2": -i}]})
            assert r.status_code == 200
        httpx.post(f"{api}/example/predict", json={"instances": [{"x1": "bad"}]})
        with prometheus_server(api.removeprefix("http://"), tmp_path) as prom:
            route = 'route="/example/predict"'
            assert _wait_for(prom, f'sum(http_requests_total{{{route},status="200"}})', n) == n
            assert _wait_for(prom, f'sum(http_errors_total{{{route},status="422"}})', 1) == 1
            assert _wait_for(prom, 'sum(model_predictions_total{project="00-example"})', n) == n
            assert _wait_for(prom, 'drift_score{project="00-example"}', 0.25) == 0.25
            assert _wait_for(prom, 'up{job="flagship-api"}', 1) == 1
            for _ in range(3):  # new traffic shows up on the next scrape
                httpx.post(f"{api}/example/predict", json={"instances": [{"x1": 0, "x2": 0}]})
            assert _wait_for(prom, f'sum(http_requests_total{{{route},status="200"}})', n + 3) == n + 3
            rules = httpx.get(f"{prom}/api/v1/rules").json()["data"]["groups"]
            names = {r["name"] for g in rules for r in g["rules"]}
            assert {"FlagshipDataDrift", "FlagshipHighErrorRate", "FlagshipHighLatencyP99"} <= names
            health = [r["health"] for g in rules for r in g["rules"]]
            assert all(h in ("ok", "unknown") for h in health), rules
