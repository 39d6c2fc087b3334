"""MLflow tracking of project 10 against a real SQLite store in a temporary FLAGSHIP_OUTPUTS: one run per model with
its parameters and ranking metrics, the champion tagged, and the served model registered under the alias `champion`."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from flagship.core.tracking import register_model, setup_mlflow, tracking_uri
from flagship.recsys.evaluate import log_model_runs
from flagship.recsys.jobs import fit_item_model, score_users, topk_pyfunc

SLUG = "10-recommender-system"
TABLE = pd.DataFrame(
    {"ndcg@10": [0.086, 0.039, 0.0995], "map@10": [0.047, 0.014, 0.044], "coverage@10": [0.015, 0.086, 0.080]},
    index=pd.Index(["popularity", "als", "svd"], name="model"),
)
PARAMS = {"als": {"rank": 20, "reg": 0.1, "max_iter": 5}, "svd": {"n_factors": 20}}
COMMON = {"profile": "ci", "seed": 42, "k": 10, "train_ratings": 12345}


@pytest.fixture
def store(tmp_path, monkeypatch):
    """Point flagship's tracking at a fresh SQLite store under a temporary FLAGSHIP_OUTPUTS."""
    monkeypatch.setenv("FLAGSHIP_OUTPUTS", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri() == f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    return tmp_path


def test_one_run_per_model_with_params_metrics_table_and_champion_tag(store):
    run_ids = log_model_runs(TABLE, PARAMS, "svd", COMMON, {"profile": "ci", "git_sha": "abc"}, SLUG)
    assert (store / "mlflow" / "mlflow.db").exists()
    mlflow = setup_mlflow(SLUG)
    client = mlflow.MlflowClient()
    experiment = mlflow.get_experiment_by_name(SLUG)
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.run_id for r in runs) == sorted(run_ids.values()) and set(run_ids) == set(TABLE.index)
    for name, run_id in run_ids.items():
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED" and run.info.run_name == f"{name}-ci"
        assert run.data.tags["model"] == name and run.data.tags["git_sha"] == "abc"
        assert run.data.tags["champion"] == ("true" if name == "svd" else "false")
        assert run.data.params == {k: str(v) for k, v in {**COMMON, **PARAMS.get(name, {})}.items()}
        assert run.data.metrics == pytest.approx({m.replace("@", "_at_"): v for m, v in TABLE.loc[name].items()})
        logged = pd.read_csv(io.StringIO(mlflow.artifacts.load_text(f"runs:/{run_id}/ranking_metrics.csv")), index_col=0)
        pd.testing.assert_frame_equal(logged, TABLE)
    champions = client.search_runs([experiment.experiment_id], "tags.champion = 'true'")
    assert [r.info.run_id for r in champions] == [run_ids["svd"]]


def test_unknown_champion_is_refused_before_anything_is_logged(store):
    with pytest.raises(ValueError, match="champion='sar' is not a row"):
        log_model_runs(TABLE, PARAMS, "sar", COMMON, project=SLUG)
    mlflow = setup_mlflow(SLUG)
    assert not mlflow.MlflowClient().search_runs([mlflow.get_experiment_by_name(SLUG).experiment_id])


def test_served_model_is_registered_as_champion_and_recommends_like_the_batch(store):
    ratings = pd.DataFrame(
        {
            "userId": [1, 1, 1, 2, 2, 3, 3, 3, 4],
            "movieId": [10, 20, 30, 10, 40, 20, 30, 40, 50],
            "rating": [5.0, 3.0, 4.0, 4.0, 4.0, 2.0, 5.0, 3.0, 1.0],
            "timestamp": np.arange(9),
        }
    )
    model = fit_item_model(ratings, "svd", n_factors=2)
    run_ids = log_model_runs(TABLE, PARAMS, "svd", COMMON, {"profile": "ci"}, SLUG)
    mlflow = setup_mlflow(SLUG)
    with mlflow.start_run(run_id=run_ids["svd"]):
        mlflow.set_tag("served", "true")
        info = mlflow.pyfunc.log_model(
            name="model", python_model=topk_pyfunc(model, k=3), pip_requirements=["numpy", "pandas"], input_example=ratings
        )
    version = register_model(info.model_uri, SLUG, alias="champion")
    aliased = mlflow.MlflowClient().get_model_version_by_alias(SLUG, "champion")
    assert aliased.run_id == run_ids["svd"] and str(aliased.version) == version == "1"
    got = mlflow.pyfunc.load_model(f"models:/{SLUG}@champion").predict(ratings)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), score_users(ratings, model, k=3).reset_index(drop=True))
    assert not got.merge(ratings, on=["userId", "movieId"]).shape[0]  # nothing a user already rated
