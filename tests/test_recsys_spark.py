"""Spark parts of flagship.recsys: the metrics agree with RankingEvaluator, the batch job with the pandas scorer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flagship.recsys.evaluate import ranking_metrics, spark_ranking_metrics
from flagship.recsys.jobs import fit_item_model, main, run_batch_topk, score_users


def random_case(seed=0, n_users=25, n_items=40, k=10):
    rng = np.random.default_rng(seed)
    recs, truth = [], []
    for u in range(1, n_users + 1):
        for r, i in enumerate(rng.choice(n_items, size=rng.integers(3, 13), replace=False), start=1):
            recs.append((u, int(i), r))
        for i in rng.choice(n_items, size=rng.integers(1, 15), replace=False):
            truth.append((u, int(i)))
    return pd.DataFrame(recs, columns=["userId", "movieId", "rank"]), pd.DataFrame(truth, columns=["userId", "movieId"])


def test_metrics_match_spark_ranking_evaluator(spark):
    recs, truth = random_case()
    for k in (3, 10):
        ours = ranking_metrics(recs, truth, n_items=40, k=k)
        theirs = spark_ranking_metrics(spark, recs, truth, k=k)
        for name, value in theirs.items():
            assert ours[name] == pytest.approx(value, abs=1e-12), name
        assert theirs[f"ndcg@{k}"] > 0  # a case with hits, so agreement is not 0 == 0


@pytest.fixture(scope="module")
def ratings(tmp_path_factory):
    rng = np.random.default_rng(1)
    rows = [
        (u, int(m), float(rng.integers(1, 11)) / 2, int(t), f"Film {m}")
        for u in range(1, 31)
        for t, m in enumerate(rng.choice(60, size=rng.integers(5, 20), replace=False))
    ]
    df = pd.DataFrame(rows, columns=["userId", "movieId", "rating", "timestamp", "title"])
    path = tmp_path_factory.mktemp("recsys") / "ratings.parquet"
    df.to_parquet(path, index=False)
    return df, path


def test_batch_job_writes_every_users_topk_like_the_pandas_scorer(spark, ratings, tmp_path):
    df, path, mode = *ratings, "sar"  # SAR exercises time decay and the sparse similarity; svd shares the same path
    result = run_batch_topk(spark, str(path), str(tmp_path), k=5, partitions=3, mode=mode, n_factors=4, half_life_days=30)
    topk = pd.read_parquet(tmp_path / "topk").sort_values(["userId", "rank"]).reset_index(drop=True)
    assert result["users"] == 30 and len(topk) == 30 * 5
    assert topk.groupby("userId")["rank"].apply(list).eq([[1, 2, 3, 4, 5]] * 30).all()
    assert topk.merge(df, on=["userId", "movieId"]).empty  # nothing the user already rated
    assert (topk.title == "Film " + topk.movieId.astype(str)).all()
    expected = score_users(df, fit_item_model(df, mode, 4, 42, 30), k=5).sort_values(["userId", "rank"]).reset_index(drop=True)
    assert np.allclose(topk.score, expected.score, rtol=1e-5)
    popular = pd.read_parquet(tmp_path / "popular")
    assert popular["rank"].tolist() == [1, 2, 3, 4, 5]
    assert popular.score.tolist() == sorted(df.groupby("movieId").size().tolist(), reverse=True)[:5]


def test_job_cli_rejects_unknown_mode():
    with pytest.raises(SystemExit):
        main(["--input", "x", "--output", "y", "--mode", "nope"])
