"""schemathesis against the app's OpenAPI schema on a real uvicorn: no server error on any endpoint."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from flagship.core.serving import create_app, discover_projects, example_project, serve_in_thread


@pytest.mark.slow
def test_no_server_errors_on_any_operation(tmp_path):
    st = shutil.which("st", path=str(Path(sys.executable).parent)) or shutil.which("st")
    if st is None:
        pytest.fail("schemathesis (`st`) not found: install the dev extra (pip install -e '.[dev]')")
    projects = [example_project(), *discover_projects()]
    app = create_app(projects)
    with serve_in_thread(app) as url:
        health = httpx.get(f"{url}/health").json()["projects"]
        schema = httpx.get(f"{url}/openapi.json").json()
        operations = [(m, path) for path, item in schema["paths"].items() for m in item]
        # A project without its model answers 503 by design; its routes are tested once it is built.
        skipped = sorted({r.path for p in projects if not health[p.slug].get("ready") for r in p.router.routes})
        cmd = [st, "run", f"{url}/openapi.json", "--checks", "not_a_server_error", "--max-examples", "30", "--seed", "42"]
        cmd += ["--generation-database", "none", "--no-color", "--workers", "1", "--request-timeout", "10"]
        cmd += ["--phases", "examples,coverage,fuzzing"]
        for path in skipped:
            cmd += ["--exclude-path", path]
        run = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    out = run.stdout + run.stderr
    print("skipped (not ready):", skipped)
    print(out[-3000:])
    assert run.returncode == 0, out[-6000:]
    tested = int(re.search(r"Tested: (\d+)", out).group(1))
    assert tested == len(operations) - sum(1 for _, path in operations if path in skipped) >= 3, out[-3000:]
