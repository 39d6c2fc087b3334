"""Ranking metrics of flagship.recsys.evaluate on cases small enough to compute by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from flagship.recsys.evaluate import catalogue_coverage, map_at_k, ndcg_at_k, precision_at_k, ranking_metrics, recall_at_k


def frame(rows):
    return pd.DataFrame(rows, columns=["userId", "movieId", "rank"])


# user 1 gets [a, b, c] and likes {a, c}; user 2 gets [y, x, z] and likes {x}
RECS = frame([(1, "a", 1), (1, "b", 2), (1, "c", 3), (2, "y", 1), (2, "x", 2), (2, "z", 3)])
TRUTH = pd.DataFrame({"userId": [1, 1, 2], "movieId": ["a", "c", "x"]})
L2, L3, L4 = math.log2(2), math.log2(3), math.log2(4)


def test_precision_counts_hits_over_k():
    assert precision_at_k(RECS, TRUTH, k=3) == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert precision_at_k(RECS, TRUTH, k=1) == pytest.approx((1 + 0) / 2)


def test_recall_counts_hits_over_relevant():
    assert recall_at_k(RECS, TRUTH, k=3) == pytest.approx(1.0)
    assert recall_at_k(RECS, TRUTH, k=1) == pytest.approx((1 / 2 + 0) / 2)


def test_ndcg_discounts_by_log_rank_and_normalises_by_ideal_list():
    user1 = (1 / L2 + 1 / L4) / (1 / L2 + 1 / L3)  # hits at ranks 1 and 3; ideal: ranks 1 and 2
    user2 = (1 / L3) / (1 / L2)  # hit at rank 2; ideal: rank 1
    assert ndcg_at_k(RECS, TRUTH, k=3) == pytest.approx((user1 + user2) / 2)
    assert ndcg_at_k(RECS, TRUTH, k=3) == pytest.approx((0.9197207891481876 + 0.6309297535714575) / 2)


def test_map_averages_precision_at_each_hit_over_min_k_relevant():
    user1 = (1 / 1 + 2 / 3) / 2
    user2 = (1 / 2) / 1
    assert map_at_k(RECS, TRUTH, k=3) == pytest.approx((user1 + user2) / 2)
    # k=1: user 1 has one hit out of min(1, 2) = 1 -> 1; user 2 none -> 0
    assert map_at_k(RECS, TRUTH, k=1) == pytest.approx(0.5)


def test_coverage_is_distinct_recommended_items_over_catalogue():
    assert catalogue_coverage(RECS, n_items=12, k=3) == pytest.approx(6 / 12)
    assert catalogue_coverage(RECS, n_items=12, k=1) == pytest.approx(2 / 12)
    with pytest.raises(ValueError, match="n_items"):
        catalogue_coverage(RECS, n_items=0)


def test_perfect_and_empty_lists():
    perfect = frame([(1, "a", 1), (1, "c", 2), (2, "x", 1)])
    metrics = ranking_metrics(perfect, TRUTH, n_items=3, k=2)
    assert metrics["ndcg@2"] == metrics["map@2"] == metrics["recall@2"] == pytest.approx(1.0)
    assert metrics["precision@2"] == pytest.approx((1 + 0.5) / 2)  # user 2 has one relevant item for two slots
    only_user1 = RECS[RECS.userId == 1]  # user 2 gets nothing: counts as 0, not dropped
    assert precision_at_k(only_user1, TRUTH, k=3) == pytest.approx((2 / 3) / 2)
    assert ndcg_at_k(only_user1, TRUTH, k=3) == pytest.approx(0.9197207891481876 / 2)


def test_ranks_not_rows_decide_order_and_duplicates_count_once():
    shuffled = RECS.sample(frac=1, random_state=0)
    assert ndcg_at_k(shuffled, TRUTH, k=3) == pytest.approx(ndcg_at_k(RECS, TRUTH, k=3))
    dup = frame([(1, "a", 1), (1, "a", 2), (1, "c", 3)])
    truth1 = TRUTH[TRUTH.userId == 1]
    assert precision_at_k(dup, truth1, k=3) == pytest.approx(2 / 3)  # the second "a" is dropped, "c" moves up to rank 2
    assert ndcg_at_k(dup, truth1, k=3) == pytest.approx(1.0)


def test_users_without_truth_are_ignored_and_bad_columns_are_named():
    extra = pd.concat([RECS, frame([(3, "a", 1)])])
    assert ndcg_at_k(extra, TRUTH, k=3) == pytest.approx(ndcg_at_k(RECS, TRUTH, k=3))
    with pytest.raises(KeyError, match="rank"):
        ndcg_at_k(RECS.drop(columns="rank"), TRUTH, k=3)
