"""Load-test the API on 127.0.0.1: N concurrent connections for S seconds, then p50/p99 and requests/s.

    python tools/bench_load.py                      # 200 connections x 60 s on the example app (make bench)
    python tools/bench_load.py --connections 20 --seconds 5 --app flagship.core.serving:build_app

The server runs in its own process (uvicorn, one worker, 127.0.0.1, a free port); the client is httpx on
asyncio with one keep-alive connection per simulated user. Results go to outputs/benchmarks/serve_load.json
(the Benchmarks page). Exit code 1 when any request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import time

import httpx

from flagship.core.serving import serve_process

BODY = {"instances": [{"x1": 0.5, "x2": -1.2}, {"x1": -2.0, "x2": 2.0}]}


async def _user(client: httpx.AsyncClient, path: str, body: dict, deadline: float, lat: list, failures: list) -> None:
    """Send requests back to back until `deadline`, recording latencies (ms) and failures."""
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        try:
            r = await client.post(path, json=body)
            if r.status_code != 200:
                failures.append(f"HTTP {r.status_code}")
        except httpx.HTTPError as e:
            failures.append(type(e).__name__)
        lat.append((time.perf_counter() - start) * 1000)


async def run_load(
    url: str, connections: int = 200, seconds: float = 60.0, path: str = "/example/predict", body: dict = BODY
) -> dict:
    """Drive `connections` concurrent users against url+path for `seconds`; return the figures."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    lat, failures = [], []
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30.0) as client:
        start = time.perf_counter()
        deadline = start + seconds
        await asyncio.gather(*(_user(client, path, body, deadline, lat, failures) for _ in range(connections)))
        elapsed = time.perf_counter() - start
    q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) > 1 else [lat[0]] * 99
    return {
        "requests": len(lat),
        "failed": len(failures),
        "failure_kinds": sorted(set(failures)),
        "seconds": round(elapsed, 2),
        "rps": round(len(lat) / elapsed, 1),
        "p50_ms": round(q[49], 2),
        "p99_ms": round(q[98], 2),
        "max_ms": round(max(lat), 2),
    }


@contextlib.contextmanager
def server(app: str, port: int, timeout: float = 60.0):
    """Run `uvicorn --factory app` on 127.0.0.1:port in a child process; yield its URL; stop it."""
    cmd = [sys.executable, "-m", "uvicorn", "--factory", app, "--host", "127.0.0.1", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    with serve_process(
        [*cmd, "--log-level", "warning", "--no-access-log"], f"{url}/health", timeout, env=os.environ | {"OMP_NUM_THREADS": "1"}
    ):
        yield url


def main(argv: list[str] | None = None) -> int:
    """Run the load test and save the serve_load benchmark."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--connections", type=int, default=200, help="concurrent keep-alive connections")
    p.add_argument("--seconds", type=float, default=60.0, help="duration of the load")
    p.add_argument("--app", default="flagship.core.serving:example_app", help="app factory for uvicorn --factory")
    p.add_argument("--path", default="/example/predict", help="route to POST to")
    p.add_argument("--no-save", action="store_true", help="print only; do not write outputs/benchmarks/serve_load.json")
    args = p.parse_args(argv)
    if args.connections > 500 or args.seconds > 600:
        p.error("bounded load only: at most 500 connections and 600 s")
    from flagship.core.publish import save_benchmark
    from flagship.core.serving import free_port

    with server(args.app, free_port()) as url:
        res = asyncio.run(run_load(url, args.connections, args.seconds, args.path))
    print(res)
    if not args.no_save:
        cols = ["app", "route", "connections", "seconds", "requests", "failed", "requests/s", "p50 ms", "p99 ms", "max ms"]
        row = [args.app, args.path, args.connections, res["seconds"], res["requests"], res["failed"], res["rps"]]
        path = save_benchmark(
            "serve_load",
            "API under load (uvicorn, 1 worker, 127.0.0.1)",
            cols,
            [row + [res["p50_ms"], res["p99_ms"], res["max_ms"]]],
            command=f"python tools/bench_load.py --connections {args.connections} --seconds {args.seconds:g} --app {args.app}",
            notes="Server and httpx client share the machine's 2 cores; each request classifies 2 rows. Latency includes client queueing.",
        )
        print(f"saved {path}")
    return 1 if res["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
