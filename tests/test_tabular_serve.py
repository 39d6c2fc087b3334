"""The tabular API over real HTTP: uvicorn on 127.0.0.1 with a model trained on a small sample in a temporary
FLAGSHIP_OUTPUTS; every invalid request is a 422 naming the field, and a missing model is a 503, never a 500."""

from __future__ import annotations

import json

import httpx
import pytest

from flagship.core.serving import create_app
from flagship.core.serving import serve_in_thread as serve
from flagship.tabular.data import SLUG, load_data
from flagship.tabular.features import make_xy
from flagship.tabular.serve import (
    ENV_MODEL_DIR,
    EXAMPLE,
    MAX_INSTANCES,
    TabularModel,
    export_onnx,
    find_model,
    project_api,
    write_serving_meta,
)
from flagship.tabular.train import fit


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """A temporary FLAGSHIP_OUTPUTS holding a model exported like 05_serve does, plus an empty model folder."""
    root = tmp_path_factory.mktemp("outputs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FLAGSHIP_OUTPUTS", str(root))
        mp.delenv(ENV_MODEL_DIR, raising=False)
        train, _ = load_data(n_train=800, n_test=10, seed=5)
        X, y = make_xy(train)
        pipe = fit("lightgbm", X, y, seed=5, n_estimators=40)
        out = root / SLUG
        write_serving_meta(pipe, export_onnx(pipe, out, "lightgbm", "1.0.0"), "lightgbm", "1.0.0")
        (root / "empty").mkdir()
        yield root


@pytest.fixture(scope="module")
def base(outputs):
    """The API with the model found the default way: the last good run under FLAGSHIP_OUTPUTS."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FLAGSHIP_OUTPUTS", str(outputs))
        app = create_app([project_api()])
    with serve(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def no_model(outputs):
    """The API with FLAGSHIP_TABULAR_MODEL_DIR pointing at an empty folder."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ENV_MODEL_DIR, str(outputs / "empty"))
        app = create_app([project_api()])
    with serve(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


def test_predict_one(base, outputs):
    r = base.post("/tabular/predict", json={"instances": [EXAMPLE]}, headers={"X-Request-ID": "t-1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "lightgbm" and body["model_version"] == "1.0.0" and r.headers["x-request-id"] == "t-1"
    (pred,) = body["predictions"]
    assert pred["class"] in {"<=50K", ">50K"} and 0 <= pred["probability"] <= 1
    assert (pred["class"] == ">50K") == (pred["probability"] >= 0.5)
    expected = TabularModel(find_model(outputs / SLUG / "models")).predict_proba([EXAMPLE])[0]
    assert abs(pred["probability"] - expected) < 1e-6


def test_predict_batch_at_the_limit_keeps_order(base):
    rich = {**EXAMPLE, "age": 50, "marital_status": "Married-civ-spouse", "relationship": "Husband", "capital_gain": 15024}
    instances = [EXAMPLE, rich] * (MAX_INSTANCES // 2)
    r = base.post("/tabular/predict", json={"instances": instances})
    assert r.status_code == 200, r.text
    probs = [p["probability"] for p in r.json()["predictions"]]
    assert len(probs) == MAX_INSTANCES and probs[1] > probs[0] and probs[0] == probs[-2]


def test_null_is_accepted_where_the_data_has_missing_values(base):
    r = base.post(
        "/tabular/predict", json={"instances": [{**EXAMPLE, "workclass": None, "occupation": None, "native_country": None}]}
    )
    assert r.status_code == 200, r.text


NO_AGE = {k: v for k, v in EXAMPLE.items() if k != "age"}
BAD = [
    ("missing field", {"instances": [NO_AGE]}, "instances.0.age"),
    ("string for int", {"instances": [{**EXAMPLE, "age": "39"}]}, "instances.0.age"),
    ("float for int", {"instances": [{**EXAMPLE, "hours_per_week": 40.5}]}, "instances.0.hours_per_week"),
    ("bool for int", {"instances": [{**EXAMPLE, "capital_gain": True}]}, "instances.0.capital_gain"),
    ("out of range", {"instances": [{**EXAMPLE, "age": -3}]}, "instances.0.age"),
    ("int for category", {"instances": [{**EXAMPLE, "sex": 1}]}, "instances.0.sex"),
    ("unknown category", {"instances": [{**EXAMPLE, "workclass": "Astronaut"}]}, "instances.0.workclass"),
    (
        "unknown category, 2nd row",
        {"instances": [EXAMPLE, {**EXAMPLE, "native_country": "Atlantis"}]},
        "instances.1.native_country",
    ),
    ("null where not allowed", {"instances": [{**EXAMPLE, "education": None}]}, "instances.0.education"),
    ("extra field", {"instances": [{**EXAMPLE, "salary": 1}]}, "instances.0.salary"),
    ("empty list", {"instances": []}, "instances"),
    ("over the limit", {"instances": [EXAMPLE] * (MAX_INSTANCES + 1)}, "instances"),
    ("instances not a list", {"instances": EXAMPLE}, "instances"),
    ("no instances key", {"rows": [EXAMPLE]}, "instances"),
]


@pytest.mark.parametrize("case,body,field", BAD, ids=[b[0] for b in BAD])
def test_invalid_requests_are_422_naming_the_field(base, case, body, field):
    r = base.post("/tabular/predict", json=body)
    assert r.status_code == 422, (case, r.status_code, r.text)
    fields = [d["field"] for d in r.json()["detail"]]
    assert field in fields, (case, fields)


@pytest.mark.parametrize("content,kind", [(b"{not json", "json_invalid"), (b"", "missing"), (b"[1, 2]", "model_attributes_type")])
def test_bodies_that_are_not_a_request_object_are_422(base, content, kind):
    r = base.post("/tabular/predict", content=content, headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == kind, r.text


def test_unknown_category_message_lists_the_allowed_values(base):
    r = base.post("/tabular/predict", json={"instances": [{**EXAMPLE, "race": "Martian"}]})
    message = r.json()["detail"][0]["message"]
    assert "Martian" in message and "White" in message


def test_health_model_and_metrics(base):
    health = base.get("/health").json()
    assert health["status"] == "ok" and health["projects"][SLUG]["ready"] is True
    assert health["projects"][SLUG]["model_version"] == "1.0.0"
    described = base.get("/tabular/model").json()
    assert described["max_instances"] == MAX_INSTANCES and "Female" in described["vocabulary"]["sex"]
    metrics = base.get("/metrics").text
    line = next(x for x in metrics.splitlines() if x.startswith("model_predictions_total{") and SLUG in x)
    assert float(line.rsplit(" ", 1)[1]) >= 1


def test_openapi_documents_the_example_and_limit(base):
    spec = base.get("/openapi.json").json()
    assert "/tabular/predict" in spec["paths"]
    text = json.dumps(spec)
    assert '"State-gov"' in text and f'"maxItems": {MAX_INSTANCES}' in text


def test_missing_model_is_503_and_the_process_stays_up(no_model):
    r = no_model.post("/tabular/predict", json={"instances": [EXAMPLE]})
    assert r.status_code == 503 and "no exported model" in r.json()["detail"]
    health = no_model.get("/health")
    assert health.status_code == 200
    status = health.json()["projects"][SLUG]
    assert status["ready"] is False and status["model_version"] is None and "no exported model" in status["reason"]
    assert no_model.post("/tabular/predict", json={"instances": []}).status_code == 422  # validation still answers


def test_without_a_repository_or_env_the_router_still_builds(monkeypatch, tmp_path):
    """An install outside the repository with no FLAGSHIP_OUTPUTS: the app starts and the project reports why."""
    import flagship.tabular.serve as serve_module

    def no_root(_slug):
        raise FileNotFoundError("flagship repository root not found")

    monkeypatch.delenv(ENV_MODEL_DIR, raising=False)
    monkeypatch.setattr(serve_module, "project_dirs", no_root)
    status = project_api().status()
    assert status["ready"] is False and ENV_MODEL_DIR in status["reason"] and status["model_dir"] is None
