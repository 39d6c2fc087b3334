"""The API against a real uvicorn on 127.0.0.1: readiness, request ids, JSON logs, validation, body limits, metrics."""

from __future__ import annotations

import io
import json
import logging

import httpx
import pytest
from fastapi import APIRouter, Request

from flagship.core.logs import configure_logging
from flagship.core.serving import (
    ProjectAPI,
    build_app,
    create_app,
    discover_projects,
    example_project,
    record_predictions,
    serve_in_thread,
)

ROWS = {"instances": [{"x1": 0.5, "x2": -1.2}, {"x1": -2.0, "x2": 2.0}]}


def _broken_status() -> dict:
    raise RuntimeError("model file models/x.onnx not found")


def _app(**kw):
    """The example project, one without a model, and one whose status() raises, in one app."""
    boom = APIRouter(prefix="/boom")

    @boom.get("/fail")
    def fail(request: Request) -> dict:
        record_predictions(request, "00-boom", "0.0.1", 1)
        raise ZeroDivisionError("bug")

    projects = [
        example_project(),
        example_project(ready=False, slug="00-missing", prefix="/missing"),
        ProjectAPI("00-boom", boom, _broken_status),
    ]
    return create_app(projects, **kw)


@pytest.fixture(scope="module")
def live():
    with serve_in_thread(_app(max_body_bytes=4_000)) as url:
        yield url


def _metric(text: str, prefix: str) -> float:
    """Return the value of the exposition line that starts with `prefix` (0 when absent)."""
    lines = [ln for ln in text.splitlines() if ln.startswith(prefix)]
    assert len(lines) <= 1, lines
    return float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0


def test_predict_and_health_with_a_missing_model(live):
    ok = httpx.post(f"{live}/example/predict", json=ROWS)
    assert ok.status_code == 200
    body = ok.json()
    assert body["model_version"] == "1.0.0" and len(body["predictions"]) == 2
    assert all(0 <= p <= 1 for p in body["probabilities"])
    missing = httpx.post(f"{live}/missing/predict", json=ROWS)
    assert missing.status_code == 503 and "model artifact missing" in missing.json()["detail"]
    health = httpx.get(f"{live}/health")
    assert health.status_code == 200  # the process is alive even though two projects are not ready
    h = health.json()
    assert h["status"] == "degraded"
    assert h["projects"]["00-example"] == {"ready": True, "model_version": "1.0.0"}
    assert h["projects"]["00-missing"]["ready"] is False
    assert h["projects"]["00-boom"]["ready"] is False and "models/x.onnx" in h["projects"]["00-boom"]["error"]


def test_request_id_round_trip_and_generation(live):
    r = httpx.post(f"{live}/example/predict", json=ROWS, headers={"X-Request-ID": "req-42.a"})
    assert r.headers["x-request-id"] == "req-42.a"
    generated = httpx.get(f"{live}/health").headers["x-request-id"]
    assert len(generated) == 32 and int(generated, 16) >= 0
    unsafe = httpx.get(f"{live}/health", headers={"X-Request-ID": "bad id; drop table"}).headers["x-request-id"]
    assert unsafe != "bad id; drop table" and len(unsafe) == 32


def test_validation_errors_name_the_field(live):
    r = httpx.post(f"{live}/example/predict", json={"instances": [{"x1": 1.0, "x2": "high"}]})
    assert r.status_code == 422
    fields = [d["field"] for d in r.json()["detail"]]
    assert fields == ["instances.0.x2"], r.json()
    extra = httpx.post(f"{live}/example/predict", json={"instances": [{"x1": 1, "x2": 2, "x3": 3}]})
    assert extra.status_code == 422 and extra.json()["detail"][0]["field"] == "instances.0.x3"
    empty = httpx.post(f"{live}/example/predict", json={"instances": []})
    assert empty.status_code == 422 and empty.json()["detail"][0]["field"] == "instances"
    not_json = httpx.post(f"{live}/example/predict", content=b"{nope", headers={"content-type": "application/json"})
    assert not_json.status_code == 422 and not_json.json()["detail"][0] == {
        "field": "body",
        "message": "JSON decode error",
        "type": "json_invalid",
    }


def test_body_limit_by_length_and_for_chunked_bodies(live):
    big = httpx.post(f"{live}/example/predict", json={"instances": [{"x1": 0.0, "x2": 0.0}] * 300})
    assert big.status_code == 413 and big.json()["detail"][0]["field"] == "body"
    chunked = httpx.post(
        f"{live}/example/predict", content=(b" " * 1000 for _ in range(10)), headers={"content-type": "application/json"}
    )
    assert chunked.status_code == 413
    small_chunked = httpx.post(
        f"{live}/example/predict", content=iter([json.dumps(ROWS).encode()]), headers={"content-type": "application/json"}
    )
    assert small_chunked.status_code == 200, small_chunked.text  # under the limit, a chunked body is replayed to the route


def test_unhandled_error_is_json_500_with_trace_id(live):
    r = httpx.get(f"{live}/boom/fail", headers={"X-Request-ID": "trace-500"})
    assert r.status_code == 500 and r.json() == {"detail": "internal error", "trace_id": "trace-500"}
    assert "ZeroDivisionError" not in r.text


def test_metrics_count_requests_errors_predictions(live):
    before = httpx.get(f"{live}/metrics").text
    for _ in range(3):
        httpx.post(f"{live}/example/predict", json=ROWS)
    httpx.post(f"{live}/example/predict", json={"instances": [{"x1": "?"}]})
    httpx.get(f"{live}/nowhere")
    text = httpx.get(f"{live}/metrics").text
    ok = 'http_requests_total{method="POST",route="/example/predict",status="200"}'
    assert _metric(text, ok) - _metric(before, ok) == 3
    err = 'http_errors_total{method="POST",route="/example/predict",status="422"}'
    assert _metric(text, err) - _metric(before, err) == 1
    assert _metric(text, 'http_errors_total{method="GET",route="unmatched",status="404"}') >= 1
    pred = 'model_predictions_total{model_version="1.0.0",project="00-example"}'
    assert _metric(text, pred) - _metric(before, pred) == 6
    assert _metric(text, 'http_request_duration_seconds_count{method="POST",route="/example/predict"}') >= 3
    assert _metric(text, 'model_info{model_version="1.0.0",project="00-example"}') == 1
    assert _metric(text, 'project_ready{project="00-missing"}') == 0
    assert "http_requests_in_progress" in text and "process_resident_memory_bytes" in text
    assert text.count("# TYPE http_request_duration_seconds histogram") == 1


def test_json_log_line_per_request():
    stream = io.StringIO()
    logger = configure_logging("INFO", stream)
    try:
        with serve_in_thread(_app()) as url:
            httpx.post(f"{url}/example/predict", json=ROWS, headers={"X-Request-ID": "log-me-1"})
            httpx.get(f"{url}/boom/fail", headers={"X-Request-ID": "log-me-2"})
    finally:
        for h in [h for h in logger.handlers if getattr(h, "_flagship", False)]:
            logger.removeHandler(h)
        logger.propagate, logger.level = True, logging.NOTSET
    lines = [json.loads(ln) for ln in stream.getvalue().splitlines() if ln.strip()]
    req = next(ln for ln in lines if ln.get("trace_id") == "log-me-1" and ln["message"] == "request")
    assert {"timestamp", "level", "trace_id", "project", "route", "status", "ms"} <= set(req)
    assert req["project"] == "00-example" and req["route"] == "/example/predict" and req["status"] == 200 and req["ms"] > 0
    errors = [ln for ln in lines if ln.get("trace_id") == "log-me-2"]
    assert any(ln["level"] == "ERROR" and "ZeroDivisionError" in ln.get("exc_info", "") for ln in errors), errors
    assert any(ln["message"] == "request" and ln["status"] == 500 and ln["project"] == "00-boom" for ln in errors)


def test_build_app_serves_whatever_is_built(tmp_path, monkeypatch):
    monkeypatch.setenv("FLAGSHIP_OUTPUTS", str(tmp_path))  # no artifacts at all: every built project must report not ready
    projects = discover_projects()
    with serve_in_thread(build_app()) as url:
        h = httpx.get(f"{url}/health")
        assert h.status_code == 200
        assert set(h.json()["projects"]) == {p.slug for p in projects}
        assert httpx.get(f"{url}/metrics").status_code == 200
        assert httpx.get(f"{url}/openapi.json").json()["info"]["title"] == "flagship API"


def test_small_bounded_load_has_no_failures():
    import asyncio
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("bench_load", Path(__file__).parents[1] / "tools" / "bench_load.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    with serve_in_thread(create_app([example_project()])) as url:
        res = asyncio.run(bench.run_load(url, connections=20, seconds=3))
        served = httpx.get(f"{url}/metrics").text
    print(res)
    assert res["failed"] == 0, res["failure_kinds"]
    ok = 'http_requests_total{method="POST",route="/example/predict",status="200"}'
    counted = next(float(line.split()[-1]) for line in served.splitlines() if line.startswith(ok))
    assert counted == res["requests"], "every request the load generator counted must be a 200 the API counted"


def test_data_freshness_from_status_is_a_gauge():
    """A project whose status() reports data_freshness_days gets it on /metrics (read on scrape, not per request)."""
    from fastapi.testclient import TestClient

    stale = ProjectAPI(
        "stale-project", APIRouter(), lambda: {"ready": True, "model_version": "1.0.0", "data_freshness_days": 41.5}
    )
    text = TestClient(create_app([stale])).get("/metrics").text
    assert 'data_freshness_days{project="stale-project"} 41.5' in text
