"""The monthly re-forecast as a real Prefect flow, with no Prefect server running: from a raw CSV through the real
Spark feature job to forecasts.json; its run history; bad input failing at once with the previous forecasts kept;
the schedule defined in code; and the `flagship reforecast` command."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flagship.core.publish import save_metrics
from flagship.forecasting.data import load_data, select_series, write_raw
from flagship.forecasting.reforecast import SCHEDULE_CRON, deployment, next_runs, reforecast_flow


@pytest.fixture(scope="module", autouse=True)
def no_prefect_server():
    """Every test here runs as a user without a Prefect server: no PREFECT_API_URL. Prefect then starts its
    temporary API on the first flow run; stop it here, while the test session's log streams are still open."""
    from prefect.server.api.server import SubprocessASGIServer

    saved = os.environ.pop("PREFECT_API_URL", None)
    yield
    SubprocessASGIServer().stop()  # the unnamed instance the flow runs started, as Prefect's own test fixtures do
    if saved is not None:
        os.environ["PREFECT_API_URL"] = saved


@pytest.fixture(scope="module")
def raw_csv(tmp_path_factory) -> Path:
    """Three real ABS series from 2008 on, in the raw layout the Spark job ingests."""
    df = select_series(load_data(), n_series=3)
    return write_raw(df[df["month"] >= "2008-01-01"], tmp_path_factory.mktemp("raw") / "aus_retail.csv")


@pytest.fixture(scope="module")
def flow_run(spark, raw_csv, tmp_path_factory):
    """One flow run from the raw CSV (features -> fit -> publish); returns (run folder, final state, seconds)."""
    out = tmp_path_factory.mktemp("reforecast")
    save_metrics(out, {"name": "lightgbm", "version": "1.2.0"}, section="model")  # as 03_train records the production model
    start = time.perf_counter()
    state = reforecast_flow(str(out), csv=str(raw_csv), rounds=20, return_state=True)
    return out, state, time.perf_counter() - start


def test_flow_builds_features_and_forecasts_from_a_raw_csv(flow_run):
    out, state, seconds = flow_run
    assert state.is_completed(), state
    summary = state.result()
    assert summary["series"] == 3 and summary["rounds"] == 20 and summary["data_last_month"] == "2018-12"
    doc = json.loads((out / "forecasts.json").read_text())
    assert doc["model_version"] == "1.2.0", "the forecasts report the version 03_train recorded"
    assert len(doc["series"]) == 3 and all(len(s["yhat"]) == 12 and min(s["yhat"]) > 0 for s in doc["series"].values())
    assert any((out / "features").glob("month=2018-12-01*/*.parquet")), "the Spark job's month partitions"
    assert 'forecast_data_freshness_days{project="02-time-series-forecasting"}' in (out / "freshness.prom").read_text()
    print(f"flow run from raw CSV: {seconds:.1f} s")


def test_the_run_is_in_prefect_history_with_one_task_run_per_step(flow_run):
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    _, state, _ = flow_run
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
    assert run.state.is_completed() and run.parameters["rounds"] == 20
    assert sorted((t.name.rsplit("-", 1)[0], t.state.name) for t in tasks) == [
        ("features", "Completed"),
        ("fit", "Completed"),
        ("publish", "Completed"),
    ]


def test_rerun_on_the_same_features_gives_the_same_forecasts(flow_run):
    out, _, _ = flow_run
    first = json.loads((out / "forecasts.json").read_text())
    reforecast_flow(str(out), rounds=20)  # no csv: refit on the features the first run wrote
    second = json.loads((out / "forecasts.json").read_text())
    assert second["series"] == first["series"] and second["created_at"] >= first["created_at"]


def test_bad_csv_fails_at_once_naming_the_column_and_keeps_the_forecasts(flow_run, tmp_path):
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    out, _, _ = flow_run
    before = (out / "forecasts.json").read_bytes()
    bad = tmp_path / "bad.csv"
    bad.write_text("State,Industry,Series ID,Month\nVictoria,Food retailing,A3349849A,2019 Jan\n")
    start = time.perf_counter()
    state = reforecast_flow(str(out), csv=str(bad), rounds=20, return_state=True)
    seconds = time.perf_counter() - start
    assert state.is_failed()
    with pytest.raises(ValueError, match="Turnover") as err:
        state.result()
    assert str(bad) in str(err.value)
    assert (out / "forecasts.json").read_bytes() == before, "a failed run must leave the last forecasts in place"
    with get_client(sync_client=True) as client:
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
    features = [t for t in tasks if t.name.startswith("features-")]
    assert len(features) == 1 and features[0].run_count == 1, "bad input must not be retried"
    assert seconds < 30, f"bad input took {seconds:.0f} s: it waited for retries (retry_delay_seconds=30)"


def test_missing_features_and_no_csv_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="features missing: pass csv="):
        reforecast_flow(str(tmp_path))


def test_schedule_is_defined_in_code_and_deployable():
    assert SCHEDULE_CRON == "0 6 12 * *"
    runs = next_runs(3, dt.datetime(2026, 12, 20, tzinfo=dt.UTC))
    assert runs == [dt.datetime(y, m, 12, 6, tzinfo=dt.UTC) for y, m in ((2027, 1), (2027, 2), (2027, 3))]
    monthly = deployment("/data/02-time-series-forecasting", csv="/data/raw/aus_retail.csv")
    assert monthly.name == "monthly" and monthly.entrypoint == "flagship.forecasting.reforecast.reforecast_flow"
    assert [(s.schedule.cron, s.schedule.timezone) for s in monthly.schedules] == [(SCHEDULE_CRON, "UTC")]
    assert monthly.parameters == {"out_dir": "/data/02-time-series-forecasting", "csv": "/data/raw/aus_retail.csv"}


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [str(Path(sys.executable).parent / "flagship"), *args]  # the installed console script
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})})


def test_cli_runs_one_reforecast_and_refuses_to_serve_without_a_server(flow_run):
    out, _, _ = flow_run
    run = _cli("reforecast", "--out", str(out), "--rounds", "20")
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout)["series"] == 3
    serve = _cli("reforecast", "--serve", "--out", str(out))
    assert serve.returncode == 2 and "PREFECT_API_URL is not set" in serve.stderr


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    """A real Prefect server on 127.0.0.1 (what `flagship reforecast --serve` needs to keep time); yield its API URL."""
    from flagship.core.serving import free_port, serve_process

    home, port = tmp_path_factory.mktemp("prefect-server"), free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_UI_ENABLED": "false", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    cmd = [str(Path(sys.executable).parent / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with (home / "server.log").open("w") as log:
        with serve_process(cmd, f"http://127.0.0.1:{port}/api/health", 120, stdout=log, stderr=subprocess.STDOUT, env=env):
            yield f"http://127.0.0.1:{port}/api"


def test_serve_registers_the_in_code_schedule_and_runs_what_the_server_triggers(flow_run, prefect_server, tmp_path):
    """`flagship reforecast --serve` against a real Prefect server: the deployment carries the cron from code, the
    server's scheduler books the next monthly runs, and a run the server hands out re-forecasts in the serving process."""
    import httpx

    from flagship.core.serving import serve_process

    out, _, _ = flow_run
    before = (out / "forecasts.json").stat().st_mtime_ns
    env = {**os.environ, "PREFECT_API_URL": prefect_server, "PREFECT_HOME": str(tmp_path / "client")}
    cmd = [str(Path(sys.executable).parent / "flagship"), "reforecast", "--serve", "--out", str(out), "--rounds", "20"]
    deployment_url = f"{prefect_server}/deployments/name/forecasting-reforecast/monthly"
    with (tmp_path / "serve.log").open("w") as log, httpx.Client(timeout=10) as api:
        with serve_process(cmd, deployment_url, 120, stdout=log, stderr=subprocess.STDOUT, env=env):
            deployment = api.get(deployment_url).json()
            assert [(s["schedule"]["cron"], s["schedule"]["timezone"]) for s in deployment["schedules"]] == [
                (SCHEDULE_CRON, "UTC")
            ]
            assert deployment["parameters"] == {"out_dir": str(out), "rounds": 20}
            flow_runs = lambda body: api.post(f"{prefect_server}/flow_runs/filter", json=body).json()  # noqa: E731
            deadline = time.monotonic() + 60
            while not (booked := flow_runs({"flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}}})):
                assert time.monotonic() < deadline, "the server's scheduler booked no run of the deployment"
                time.sleep(1)
            starts = sorted(dt.datetime.fromisoformat(r["expected_start_time"]) for r in booked)
            assert starts[0] == next_runs(1)[0], (starts, next_runs(3))  # the next 12th of the month, 06:00 UTC
            run = api.post(f"{prefect_server}/deployments/{deployment['id']}/create_flow_run", json={}).json()
            deadline = time.monotonic() + 120
            while (state := api.get(f"{prefect_server}/flow_runs/{run['id']}").json()["state_type"]) != "COMPLETED":
                assert state not in ("FAILED", "CRASHED") and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()[
                    -3000:
                ]
                time.sleep(1)
    assert (out / "forecasts.json").stat().st_mtime_ns > before, "the triggered run did not rewrite the forecasts"
