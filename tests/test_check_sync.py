"""The export/clean check that `make test` runs: it must catch a hand edit of flagship/ and a notebook with
outputs, and nbdev_clean must keep papermill's `parameters` tag (or profiles could not be injected)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A copy of the parts of the repository that nbdev reads and writes."""
    for name in ("settings.ini", "pyproject.toml", "setup.py", "README.md"):
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "nbs", tmp_path / "nbs", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    shutil.copytree(REPO / "flagship", tmp_path / "flagship", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "tools").mkdir()
    shutil.copy(REPO / "tools" / "check_sync.py", tmp_path / "tools" / "check_sync.py")
    return tmp_path


def check(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(root / "tools" / "check_sync.py")], cwd=root, capture_output=True, text=True, timeout=120
    )


def test_clean_repository_passes(copy: Path):
    proc = check(copy)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hand_edit_of_generated_package_fails(copy: Path):
    target = copy / "flagship" / "core" / "config.py"
    target.write_text(target.read_text() + "\nHAND_EDIT = True\n")
    proc = check(copy)
    assert proc.returncode == 1 and "flagship/core/config.py is not what nbdev_export makes" in proc.stdout
    assert target.read_text().endswith("HAND_EDIT = True\n"), "checking must not overwrite the edit it reports"


def test_notebook_with_outputs_fails(copy: Path):
    path = copy / "nbs" / "core" / "00_config.ipynb"
    nb = nbformat.read(path, as_version=4)
    code = next(c for c in nb.cells if c.cell_type == "code" and "default_exp" not in c.source)
    code.outputs = [new_output("stream", name="stdout", text="hello\n")]
    nbformat.write(nb, path)
    proc = check(copy)
    assert proc.returncode == 1 and "nbs/core/00_config.ipynb" in proc.stdout and "outputs" in proc.stdout


def test_fix_strips_outputs_and_nbdev_clean_keeps_the_parameters_tag(copy: Path):
    cell = new_code_cell('profile = "ci"', execution_count=3, outputs=[new_output("stream", name="stdout", text="x\n")])
    cell.metadata.update(tags=["parameters"], collapsed=True, scrolled=True)
    nb = new_notebook(cells=[cell])
    nb.cells[0]["id"] = "c0"
    path = copy / "nbs" / "scratch.ipynb"
    nbformat.write(nb, path)
    nbdev_clean = str(Path(sys.executable).parent / "nbdev_clean")
    subprocess.run([nbdev_clean, "--fname", str(path)], cwd=copy, check=True, capture_output=True)
    assert nbformat.read(path, as_version=4).cells[0].metadata == {"tags": ["parameters"]}
    fixed = subprocess.run(
        [sys.executable, str(copy / "tools" / "check_sync.py"), "--fix"], cwd=copy, capture_output=True, text=True
    )
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    cleaned = nbformat.read(path, as_version=4).cells[0]
    assert cleaned.metadata == {"tags": ["parameters"]} and cleaned.outputs == [] and cleaned.execution_count is None
