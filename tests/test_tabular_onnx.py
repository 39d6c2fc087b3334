"""The ONNX exports of both tabular models predict what scikit-learn predicts (probabilities within 1e-5)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from flagship.tabular.data import load_data
from flagship.tabular.features import make_xy
from flagship.tabular.serve import TabularModel, export_onnx, find_model, onnx_inputs, to_onnx, write_serving_meta
from flagship.tabular.train import fit

TOLERANCE = 1e-5  # float32 inputs and tree sums in ONNX vs float64 in scikit-learn: ~1e-7 in practice


@pytest.fixture(scope="module")
def data():
    train, test = load_data(n_train=1_500, n_test=3_000, seed=7)
    return make_xy(train), make_xy(test)


@pytest.mark.parametrize("name,params", [("lightgbm", {"n_estimators": 60}), ("random_forest", {"n_estimators": 25})])
def test_onnx_matches_sklearn(data, name, params):
    (X, y), (X_test, _) = data
    pipe = fit(name, X, y, seed=3, **params)
    session = ort.InferenceSession(to_onnx(pipe), providers=["CPUExecutionProvider"])
    labels, proba = session.run(None, onnx_inputs(X_test))
    expected = pipe.predict_proba(X_test)
    assert proba.shape == expected.shape == (len(X_test), 2)
    assert np.abs(proba - expected).max() < TOLERANCE
    np.testing.assert_array_equal(labels, pipe.predict(X_test))


def test_exported_model_serves_the_same_numbers(data, tmp_path):
    (X, y), (X_test, _) = data
    pipe = fit("lightgbm", X, y, seed=3, n_estimators=40)
    onnx_path = export_onnx(pipe, tmp_path, "lightgbm", "2.1.0")
    assert onnx_path.name == "01-tabular-endtoend-lightgbm-v2.1.0.onnx"
    write_serving_meta(pipe, onnx_path, "lightgbm", "2.1.0")
    model = TabularModel(find_model(tmp_path / "models"))
    records = X_test.head(200).to_dict("records")
    assert model.version == "2.1.0"
    assert np.abs(model.predict_proba(records) - pipe.predict_proba(X_test.head(200))[:, 1]).max() < TOLERANCE


def test_newest_version_wins(data, tmp_path):
    (X, y), _ = data
    pipe = fit("lightgbm", X, y, seed=3, n_estimators=5)
    for version in ("1.2.0", "1.10.0", "1.9.3"):  # semver order, not string order
        write_serving_meta(pipe, export_onnx(pipe, tmp_path, "lightgbm", version), "lightgbm", version)
    assert find_model(tmp_path / "models").name == "01-tabular-endtoend-serving-v1.10.0.json"
