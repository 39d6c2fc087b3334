"""The recsys API on a real uvicorn (127.0.0.1, free port) over a tiny top-K Parquet written by the test."""

from __future__ import annotations

import os
import sys

import httpx
import pandas as pd
import pytest

from flagship.core.serving import free_port, serve_process

SERVER = (
    "import uvicorn; from flagship.core.serving import create_app; from flagship.recsys.serve import project_api; "
    "uvicorn.run(create_app([project_api()]), host='127.0.0.1', port={port}, log_level='warning')"
)


def write_batch(folder):
    topk = pd.DataFrame(
        {
            "userId": [7] * 3 + [8] * 3,
            "rank": [1, 2, 3] * 2,
            "movieId": [10, 20, 30, 40, 10, 50],
            "title": ["Ten", "Twenty", "Thirty", "Forty", "Ten", "Fifty"],
            "score": [0.9, 0.8, 0.7, 3.0, 2.0, 1.0],
        }
    )
    popular = pd.DataFrame({"rank": [1, 2], "movieId": [10, 40], "title": ["Ten", "Forty"], "score": [500.0, 400.0]})
    for name, df in (("topk", topk), ("popular", popular)):
        (folder / name).mkdir(parents=True)
        df.assign(model="popular" if name == "popular" else "svd", generated_at="20260101T000000Z").to_parquet(
            folder / name / "part-0.parquet", index=False
        )


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """A real uvicorn over an empty batch folder; fails (never yields) if the server does not come up."""
    batch = tmp_path_factory.mktemp("recsys-batch")
    port = free_port()
    env = {**os.environ, "FLAGSHIP_RECSYS_BATCH": str(batch), "OMP_NUM_THREADS": "1"}
    url = f"http://127.0.0.1:{port}"
    with serve_process([sys.executable, "-c", SERVER.format(port=port)], f"{url}/health", 30, env=env):
        with httpx.Client(base_url=url, timeout=10) as client:
            yield client, batch


def test_missing_artifacts_give_503_then_load_once_written(api):
    client, batch = api
    r = client.get("/recsys/recommend/7")
    assert r.status_code == 503 and "make run P=10" in r.json()["detail"]
    assert client.get("/health").json()["projects"]["10-recommender-system"]["ready"] is False
    write_batch(batch)
    r = client.get("/recsys/recommend/7", params={"k": 2})
    assert r.status_code == 200
    body = r.json()
    assert body["fallback"] is False and body["model"] == "svd" and body["model_version"] == "svd-20260101T000000Z"
    assert [(i["rank"], i["movie_id"], i["title"]) for i in body["items"]] == [(1, 10, "Ten"), (2, 20, "Twenty")]
    assert body["items"][0]["score"] == pytest.approx(0.9)
    assert client.get("/health").json()["projects"]["10-recommender-system"]["ready"] is True


def test_k_larger_than_stored_returns_what_exists_and_unknown_user_gets_fallback(api):
    client, batch = api
    if not (batch / "topk").exists():
        write_batch(batch)
    assert [i["movie_id"] for i in client.get("/recsys/recommend/8", params={"k": 100}).json()["items"]] == [40, 10, 50]
    r = client.get("/recsys/recommend/12345", params={"k": 5}).json()
    assert r["fallback"] is True and r["model"] == "popular"
    assert [i["movie_id"] for i in r["items"]] == [10, 40] and r["items"][0]["title"] == "Ten"


@pytest.mark.parametrize("k", [0, 101, -3, "ten"])
def test_k_out_of_bounds_is_422_naming_the_field(api, k):
    client, _ = api
    r = client.get("/recsys/recommend/7", params={"k": k})
    assert r.status_code == 422
    assert r.json()["detail"][0]["field"] == "query.k"


def test_openapi_documents_bounds_and_metrics_count_predictions(api):
    client, batch = api
    if not (batch / "topk").exists():
        write_batch(batch)
    client.get("/recsys/recommend/7", params={"k": 3})
    spec = client.get("/openapi.json").json()
    params = {p["name"]: p for p in spec["paths"]["/recsys/recommend/{user_id}"]["get"]["parameters"]}
    assert params["k"]["schema"]["minimum"] == 1 and params["k"]["schema"]["maximum"] == 100
    metrics = client.get("/metrics").text
    line = next(x for x in metrics.splitlines() if x.startswith("model_predictions_total") and "10-recommender-system" in x)
    assert float(line.rsplit(" ", 1)[1]) >= 3
