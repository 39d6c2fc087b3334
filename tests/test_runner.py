"""tools/run_notebooks.py against a throwaway repository: caching, re-execution scope, failures and kills.

Each test builds two tiny projects with real notebooks and runs the real runner (papermill, jupyter-cache, real
kernels) in a subprocess, exactly as `make run` does.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

REPO = Path(__file__).resolve().parents[1]
A, B = "01-tabular-endtoend", "02-time-series-forecasting"

pytestmark = pytest.mark.slow


def notebook(*cells: str, params: str | None = None) -> nbformat.NotebookNode:
    """A notebook with an optional `parameters` cell followed by code cells."""
    body = [new_markdown_cell("# test notebook")]
    if params is not None:
        cell = new_code_cell(params)
        cell.metadata["tags"] = ["parameters"]
        body.append(cell)
    body += [new_code_cell(c) for c in cells]
    nb = new_notebook(cells=body, metadata={"kernelspec": {"name": "python3", "display_name": "python3", "language": "python"}})
    for i, c in enumerate(nb.cells):
        c["id"] = f"c{i}"
    return nb


PARAMS = 'profile = "ci"\nout_dir = None\nscale = 1'
WRITE = (
    "from pathlib import Path\n"
    "data = Path('../../sample_data') / Path.cwd().name / 'input.txt'\n"
    "value = int(data.read_text()) * scale\n"
    "Path(out_dir, 'value.txt').write_text(str(value))\n"
    "print(value)"
)
READ = "from pathlib import Path\nassert Path(out_dir, 'value.txt').exists()\nPath(out_dir, 'second.txt').write_text('ok')"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with two projects of two notebooks each and their input data."""
    shutil.copy(REPO / "settings.ini", tmp_path / "settings.ini")
    (tmp_path / "docs").mkdir()
    shutil.copy(REPO / "docs" / "price_table.yaml", tmp_path / "docs" / "price_table.yaml")  # cost estimates need it
    for slug, value in ((A, 3), (B, 5)):
        nbs, data = tmp_path / "nbs" / slug, tmp_path / "sample_data" / slug
        nbs.mkdir(parents=True)
        data.mkdir(parents=True)
        (data / "input.txt").write_text(str(value))
        (nbs / "params.yaml").write_text("ci:\n  scale: 1\nfull:\n  scale: 10\n")
        nbformat.write(notebook(WRITE, params=PARAMS), nbs / "01_data.ipynb")
        nbformat.write(notebook(READ, params=PARAMS), nbs / "02_train.ipynb")
    return tmp_path


def run(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the runner on `repo` and return the finished process."""
    env = {**os.environ, "FLAGSHIP_OUTPUTS": str(repo / "outputs"), "FLAGSHIP_ROOT": str(repo)}
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "run_notebooks.py"), "--root", str(repo), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def statuses(proc: subprocess.CompletedProcess) -> dict[tuple[str, str], str]:
    """{(project, notebook): status} from the summary table."""
    out = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1].endswith(".ipynb"):
            out[(parts[0][:2], parts[1])] = parts[2]
    return out


def test_second_run_executes_nothing_and_changes_rerun_only_their_project(repo: Path):
    first = run(repo)
    assert set(statuses(first).values()) == {"executed"} and "4 executed, 0 cached" in first.stdout
    manifest = json.loads((repo / "outputs" / A / "run.json").read_text())
    assert [n["notebook"] for n in manifest["notebooks"]] == ["01_data.ipynb", "02_train.ipynb"]
    assert all(n["seconds"] > 0 and n["peak_memory_mb"] > 10 for n in manifest["notebooks"])
    assert manifest["inputs"] == {f"sample_data/{A}/input.txt": manifest["inputs"][f"sample_data/{A}/input.txt"]}
    assert (repo / "outputs" / A / "value.txt").read_text() == "3"

    second = run(repo)
    assert "0 executed, 4 cached" in second.stdout

    # prose is not code: a markdown edit re-executes nothing, but the published notebook shows the new text
    nb = nbformat.read(repo / "nbs" / A / "01_data.ipynb", as_version=4)
    nb.cells[0].source = "# test notebook, reworded"
    nbformat.write(nb, repo / "nbs" / A / "01_data.ipynb")
    reworded = run(repo)
    assert "0 executed, 4 cached" in reworded.stdout
    published = nbformat.read(repo / "outputs" / A / "01_data.ipynb", as_version=4)
    assert published.cells[0].source == "# test notebook, reworded"
    assert [o["text"] for c in published.cells if c.cell_type == "code" for o in c.outputs if "text" in o] == ["3\n"]
    injected = next(c for c in published.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert json.dumps(str(repo / "outputs" / A)) in injected.source

    (repo / "nbs" / A / "params.yaml").write_text("ci:\n  scale: 2\nfull:\n  scale: 10\n")
    third = run(repo)
    assert statuses(third) == {
        ("01", "01_data.ipynb"): "executed",
        ("01", "02_train.ipynb"): "executed",
        ("02", "01_data.ipynb"): "cached",
        ("02", "02_train.ipynb"): "cached",
    }
    assert (repo / "outputs" / A / "value.txt").read_text() == "6"

    (repo / "sample_data" / B / "input.txt").write_text("7")
    fourth = run(repo)
    assert {k: v for k, v in statuses(fourth).items() if v == "executed"} == {
        ("02", "01_data.ipynb"): "executed",
        ("02", "02_train.ipynb"): "executed",
    }
    assert (repo / "outputs" / B / "value.txt").read_text() == "7"


def test_profile_parameters_are_injected(repo: Path):
    run(repo, "01", "--profile", "full")
    assert (repo / "outputs" / A / "value.txt").read_text() == "30"
    executed = nbformat.read(repo / "outputs" / A / "01_data.ipynb", as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "scale = 10" in injected[0].source and 'profile = "full"' in injected[0].source


def test_failing_notebook_stops_its_project_only_and_keeps_last_good_outputs(repo: Path):
    run(repo)
    before = (repo / "outputs" / A / "run.json").read_text()
    nbformat.write(notebook(READ, "assert 1 + 1 == 3, 'deliberate failure'", params=PARAMS), repo / "nbs" / A / "02_train.ipynb")
    (repo / "nbs" / A / "params.yaml").write_text("ci:\n  scale: 4\nfull:\n  scale: 10\n")  # so 01_data re-runs too
    (repo / "sample_data" / B / "input.txt").write_text("8")
    proc = run(repo, check=False)
    assert proc.returncode == 1
    assert statuses(proc)[("01", "02_train.ipynb")] == "failed"
    assert statuses(proc)[("02", "02_train.ipynb")] == "executed"  # the other project went on
    assert f"FAILED nbs/{A}/02_train.ipynb cell 3" in proc.stdout and "deliberate failure" in proc.stdout
    # the failed project's outputs are the last good run, untouched; the half-made run is gone
    assert (repo / "outputs" / A / "run.json").read_text() == before
    assert (repo / "outputs" / A / "value.txt").read_text() == "3"
    assert not list((repo / "outputs" / ".runs").glob(f"{A}-*"))
    assert (repo / "outputs" / B / "value.txt").read_text() == "8"


def test_killed_run_leaves_last_good_outputs(repo: Path):
    run(repo, "01")
    good = {p.name: p.read_bytes() for p in (repo / "outputs" / A).iterdir()}
    slow = "import time\nPath(out_dir, 'value.txt').write_text('half-written')\ntime.sleep(60)"
    nbformat.write(notebook(WRITE, slow, params=PARAMS), repo / "nbs" / A / "01_data.ipynb")
    env = {**os.environ, "FLAGSHIP_OUTPUTS": str(repo / "outputs"), "FLAGSHIP_ROOT": str(repo)}
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "tools" / "run_notebooks.py"), "--root", str(repo), "01"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline, reached = time.time() + 60, False
    while time.time() < deadline and not reached:
        reached = any(
            (d / "value.txt").exists() and (d / "value.txt").read_text() == "half-written"
            for d in (repo / "outputs" / ".runs").glob(f"{A}-*")
        )
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    assert reached, "the run never wrote its half-written value.txt under outputs/.runs/: the kill proved nothing"
    proc.wait(timeout=10)
    assert {p.name: p.read_bytes() for p in (repo / "outputs" / A).iterdir()} == good
    # the next run clears the killed run's folder and still finds the last good outputs
    nbformat.write(notebook(WRITE, params=PARAMS), repo / "nbs" / A / "01_data.ipynb")
    run(repo, "01")
    assert not list((repo / "outputs" / ".runs").glob(f"{A}-*"))
    assert (repo / "outputs" / A / "value.txt").read_text() == "3"
