#!/usr/bin/env python
"""Benchmark the recommender (project 10) on the full MovieLens data: training time of each model, batch top-K
scoring with Spark, ANN neighbour queries, and the API's latency on a real uvicorn. Writes
outputs/benchmarks/recsys.json for the Benchmarks page.

    python tools/bench_recsys.py                 # full data, ~2-4 minutes on 2 cores
    python tools/bench_recsys.py --users 150     # a quick run on a sample
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from flagship.core.serving import free_port, serve_process  # noqa: E402

SERVER = (
    "import uvicorn; from flagship.core.serving import create_app; from flagship.recsys.serve import project_api; "
    "uvicorn.run(create_app([project_api()]), host='127.0.0.1', port={port}, log_level='warning')"
)


def timed(fn, *args, **kwargs):
    """Return (result, seconds) of one call."""
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def bench_models(train, k: int) -> tuple[list[list], dict]:
    """Fit every model on the training split and time fitting and top-k scoring of all users."""
    import faiss

    from flagship.core.spark import get_spark
    from flagship.recsys.features import make_index, time_decay, to_matrix
    from flagship.recsys.train import (
        build_ann_index,
        fit_als,
        fit_ann_neighbours,
        fit_popularity,
        fit_sar,
        fit_svd,
        item_embeddings,
        recommend,
    )

    faiss.omp_set_num_threads(1)
    users, items = make_index(train.userId), make_index(train.movieId)
    R, B = to_matrix(train, users, items), to_matrix(train, users, items, value_col=None)
    A = to_matrix(train, users, items, weights=time_decay(train, 30))
    rows, models = [], {}
    models["popularity"], t_pop = timed(fit_popularity, B)
    models["svd"], t_svd = timed(fit_svd, R, 20)
    models["sar"], t_sar = timed(fit_sar, A)
    vectors = item_embeddings(models["svd"])
    index, t_index = timed(build_ann_index, vectors)
    models["ann"], t_ann = timed(fit_ann_neighbours, vectors, A, 50, index)
    spark, t_session = timed(
        get_spark, "recsys-bench", "local[2]", {"spark.sql.shuffle.partitions": "4", "spark.ui.showConsoleProgress": "false"}
    )
    models["als"], t_als = timed(fit_als, spark, train, users, items, 20, 0.1, 10, 42)
    fits = {"popularity": t_pop, "svd": t_svd, "sar": t_sar, "ann": t_svd + t_index + t_ann, "als": t_als}
    for name, model in models.items():
        _, t_rec = timed(recommend, model, B, users, items, k)
        note = {
            "ann": "SVD + HNSW index + neighbour graph",
            "als": f"Spark local[2], rank 20, 10 sweeps; session start {t_session:.1f} s",
        }
        rows.append(["train", name, f"{len(train):,} ratings", round(fits[name], 3), "", "", "", note.get(name, "")])
        rows.append(
            ["score top-k (in memory)", name, f"{len(users)} users x {len(items):,} items", round(t_rec, 3), "", "", "", ""]
        )
    return rows, {"spark": spark, "svd": models["svd"]}


def latency_row(step: str, what: str, size: str, lat_ms: list[float], digits: int, note: str = "") -> list:
    """Return one table row: total seconds, then p50/p95/p99 milliseconds of `lat_ms` rounded to `digits`."""
    p50, p95, p99 = np.percentile(lat_ms, [50, 95, 99])
    return [step, what, size, round(sum(lat_ms) / 1000, 3), round(p50, digits), round(p95, digits), round(p99, digits), note]


def bench_ann(item_vectors: np.ndarray, queries: int = 500) -> list[list]:
    """Time one-query-at-a-time neighbour search: HNSW against exact inner product."""
    import faiss

    from flagship.recsys.train import build_ann_index

    x = np.ascontiguousarray(item_vectors, dtype=np.float32).copy()
    faiss.normalize_L2(x)
    hnsw, exact = build_ann_index(item_vectors), faiss.IndexFlatIP(x.shape[1])
    exact.add(x)
    q = x[np.random.default_rng(0).choice(len(x), size=min(queries, len(x)), replace=False)]
    rows, found = [], {}
    for name, index in (("HNSW (faiss, M=32, efSearch=128)", hnsw), ("exact (faiss IndexFlatIP)", exact)):
        lat = []
        ids = []
        for v in q:
            start = time.perf_counter()
            ids.append(index.search(v[None, :], 11)[1][0])
            lat.append((time.perf_counter() - start) * 1000)
        found[name] = ids
        rows.append(latency_row("10 neighbours of a film", name, f"{len(q)} queries, {len(x):,} items", lat, 3))
    a, b = found.values()
    recall = np.mean([len(set(u) & set(v)) / len(v) for u, v in zip(a, b, strict=True)])
    rows[0][-1] = f"recall vs exact {recall:.3f}"
    return rows


def bench_serving(batch_dir: Path, user_ids: np.ndarray, n: int) -> list[list]:
    """Start a real uvicorn on 127.0.0.1 over the batch output and time sequential requests."""
    import httpx

    port = free_port()
    env = {**os.environ, "FLAGSHIP_RECSYS_BATCH": str(batch_dir)}
    rows, start = [], time.perf_counter()
    url = f"http://127.0.0.1:{port}"
    is_ready = lambda r: r.json()["projects"]["10-recommender-system"]["ready"]  # noqa: E731
    with (
        serve_process([sys.executable, "-c", SERVER.format(port=port)], f"{url}/health", 120, is_ready, env=env),
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        ready = time.perf_counter() - start
        rng = np.random.default_rng(0)
        for label, ids in (
            ("known user, k=10", rng.choice(user_ids, n)),
            ("unknown user (fallback), k=10", 10_000_000 + np.arange(n)),
        ):
            lat = []
            for u in ids:
                t = time.perf_counter()
                r = client.get(f"/recsys/recommend/{int(u)}", params={"k": 10})
                lat.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200, r.text
            note = f"uvicorn 127.0.0.1; start to ready {ready:.1f} s"
            rows.append(latency_row("serve GET /recsys/recommend", label, f"{n} sequential requests", lat, 2, note))
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=0, help="sample this many users (0 = all 671)")
    p.add_argument("--requests", type=int, default=500, help="requests per serving scenario")
    p.add_argument("--partitions", type=int, default=2, help="Spark partitions of the batch job")
    args = p.parse_args(argv)

    from flagship.core.publish import save_benchmark
    from flagship.recsys.data import load_ratings, sample_users, split_by_user_time
    from flagship.recsys.jobs import run_batch_topk
    from flagship.recsys.train import item_embeddings

    ratings = sample_users(load_ratings(), args.users)
    train, _ = split_by_user_time(ratings, 0.2)
    rows, ctx = bench_models(train, 10)
    spark = ctx["spark"]
    with tempfile.TemporaryDirectory(prefix="bench-recsys-") as tmp:
        ratings.to_parquet(Path(tmp) / "ratings.parquet", index=False)
        for mode in ("popular", "svd", "sar"):  # the first job also pays for starting Spark's Python workers
            note = "first job of the session (worker start-up)" if mode == "popular" else "fit on all ratings"
            res = run_batch_topk(
                spark, str(Path(tmp) / "ratings.parquet"), str(Path(tmp) / f"batch-{mode}"), 100, args.partitions, mode
            )
            rows.append(
                [
                    "batch top-100 (Spark job)",
                    mode,
                    f"{res['users']} users, {res['rows']:,} rows",
                    res["seconds"],
                    "",
                    "",
                    "",
                    f"{note} + score in {args.partitions} partitions + write Parquet",
                ]
            )
        spark.stop()
        rows += bench_ann(item_embeddings(ctx["svd"]))
        rows += bench_serving(Path(tmp) / "batch-svd", ratings.userId.unique(), args.requests)
    columns = ["stage", "model / case", "workload", "seconds", "p50 ms", "p95 ms", "p99 ms", "notes"]
    for r in rows:
        print(" | ".join(str(c) for c in r))  # noqa: T201 - a benchmark prints its figures
    path = save_benchmark(
        "recsys",
        "Recommender system (10): training, batch scoring, neighbour search and serving",
        columns,
        rows,
        "python tools/bench_recsys.py" + (f" --users {args.users}" if args.users else ""),
        f"MovieLens latest-small ({ratings.userId.nunique()} users, {len(ratings):,} ratings); per-user time split, 80% train. "
        f"Single-threaded NumPy/faiss (OMP_NUM_THREADS=1), Spark local[2], on a shared 2-core machine: figures vary with load.",
    )
    print(path)  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
