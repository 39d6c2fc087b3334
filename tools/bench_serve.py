#!/usr/bin/env python
"""Benchmark project 01's serving path: the ONNX model called in-process against HTTP POST /tabular/predict on a real
uvicorn over 127.0.0.1, for one row and a 100-row batch, with one client and with 16 concurrent clients. Reports p50,
p99, requests/s and the HTTP / in-process ratio, and writes outputs/benchmarks/serve_tabular.json (Benchmarks page).

    python tools/bench_serve.py                       # the model of the last good run (make run P=01 first)
    python tools/bench_serve.py --requests 200 --seconds 10 --model-dir outputs/01-tabular-endtoend/models

Bounded: each of the 8 scenarios stops after --requests requests or --seconds seconds, whichever comes first.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np


def sample_records(n: int, seed: int = 0) -> list[dict]:
    """Return n real rows of the Adult test file as API instances (ints, strings, null for missing)."""
    import pandas as pd

    from flagship.tabular.data import load_adult, stratified_sample
    from flagship.tabular.features import FEATURES, NUMERIC

    df = stratified_sample(load_adult("test"), n, seed)[FEATURES]
    return [
        {c: int(v) if c in NUMERIC else (None if pd.isna(v) else str(v)) for c, v in row.items()} for row in df.to_dict("records")
    ]


def run(call, requests: int, seconds: float, clients: int) -> dict:
    """Call `call(worker)` from `clients` threads until `requests` calls or `seconds` pass; return latency stats in ms."""
    latencies, lock, deadline = [], threading.Lock(), time.perf_counter() + seconds
    issued = [0]

    def worker(i: int) -> None:
        while True:
            with lock:
                if issued[0] >= requests or time.perf_counter() > deadline:
                    return
                issued[0] += 1
            start = time.perf_counter()
            call(i)
            elapsed = (time.perf_counter() - start) * 1000
            with lock:
                latencies.append(elapsed)

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, range(clients)))
    wall = time.perf_counter() - start
    t = np.array(latencies)
    return {"requests": len(t), "p50": float(np.percentile(t, 50)), "p99": float(np.percentile(t, 99)), "rps": len(t) / wall}


def serve_api(model_dir: Path, port: int):
    """Run `flagship serve`'s app (build_app) with uvicorn on 127.0.0.1:port; the context yields once the model is ready."""
    from flagship.core.serving import serve_process

    env = {**os.environ, "FLAGSHIP_TABULAR_MODEL_DIR": str(model_dir), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "uvicorn", "flagship.core.serving:build_app", "--factory", "--host", "127.0.0.1",
           "--port", str(port), "--log-level", "warning", "--no-access-log"]  # fmt: skip
    ready = lambda r: r.json()["projects"]["01-tabular-endtoend"]["ready"]  # noqa: E731
    return serve_process(cmd, f"http://127.0.0.1:{port}/health", 60, ready, env=env, stdout=subprocess.DEVNULL)


def main(argv: list[str] | None = None) -> int:
    from flagship.core.config import project_dirs
    from flagship.core.publish import save_benchmark
    from flagship.core.serving import free_port
    from flagship.tabular.serve import ENV_MODEL_DIR, TabularModel, find_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=None, help="folder with the exported model (default: last good run)")
    parser.add_argument("--requests", type=int, default=300, help="requests per scenario (upper bound)")
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds per scenario (upper bound)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients in the concurrent scenarios")
    parser.add_argument("--batch", type=int, default=100, help="rows per request in the batch scenarios")
    args = parser.parse_args(argv)
    model_dir = args.model_dir or Path(os.environ.get(ENV_MODEL_DIR) or project_dirs("01")["out"] / "models")
    try:
        model = TabularModel(find_model(model_dir))
    except FileNotFoundError as e:
        print(f"bench_serve: {e}", file=sys.stderr)
        return 2
    records = sample_records(args.batch)
    payloads = {1: records[:1], args.batch: records}
    rows, results = [], {}
    for n in payloads:  # warm up both paths' caches
        model.predict_proba(payloads[n])
    for n, recs in payloads.items():
        for clients in (1, args.clients):
            results["in-process", n, clients] = run(
                lambda _i, recs=recs: model.predict_proba(recs), args.requests, args.seconds, clients
            )
    port = free_port()
    with serve_api(model_dir, port):
        http = [httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) for _ in range(args.clients)]
        for n, recs in payloads.items():
            body = {"instances": recs}
            for c in http:
                c.post("/tabular/predict", json=body).raise_for_status()  # warm-up and keep-alive connections

            def call(i: int, body=body) -> None:
                r = http[i].post("/tabular/predict", json=body)
                if r.status_code != 200:
                    raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")

            for clients in (1, args.clients):
                results["HTTP", n, clients] = run(call, args.requests, args.seconds, clients)
        for c in http:
            c.close()
    for (path, n, clients), r in results.items():
        ratio = r["p50"] / results["in-process", n, clients]["p50"] if path == "HTTP" else 1.0
        rows.append(
            [path, n, clients, r["requests"], round(r["p50"], 3), round(r["p99"], 3), round(r["rps"], 1), round(ratio, 1)]
        )
    rows.sort(key=lambda row: (row[1], row[2], row[0] != "in-process"))
    columns = ["path", "rows/request", "clients", "requests", "p50 ms", "p99 ms", "requests/s", "HTTP/in-process p50"]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    notes = (
        f"Model {model.name} v{model.version} (ONNX, onnxruntime, 1 thread) from {model_dir}. HTTP: uvicorn, one worker, "
        f"build_app() as `flagship serve` runs it, httpx keep-alive clients in threads of the same benchmark process. "
        f"With {args.clients} clients one worker serves the requests in turn, so HTTP latency there is mostly queueing: "
        f"compare requests/s. {os.cpu_count()} CPUs; load average at the end {load} (a shared machine: absolute figures "
        f"vary between runs)."
    )
    path = save_benchmark(
        "serve_tabular",
        "Tabular API: in-process ONNX vs HTTP /tabular/predict",
        columns,
        rows,
        "python tools/bench_serve.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        notes,
    )
    width = max(len(c) for c in columns)
    print(" | ".join(f"{c:>{min(width, 12)}}" for c in columns))
    for row in rows:
        print(" | ".join(f"{v!s:>{min(width, 12)}}" for v in row))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
