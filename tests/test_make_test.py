"""`make test` executes every notebook; a notebook whose assert fails must fail it. Proven on the real recipe."""

from __future__ import annotations

import subprocess
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def write(folder: Path, name: str, code: str) -> None:
    nb = new_notebook(
        cells=[new_code_cell(code)], metadata={"kernelspec": {"name": "python3", "display_name": "python3", "language": "python"}}
    )
    nb.cells[0]["id"] = "c0"
    nbformat.write(nb, folder / name)


def make_notebooks(folder: Path) -> subprocess.CompletedProcess:
    """Run the Makefile's notebook step (the one `make test` runs) on `folder`."""
    return subprocess.run(
        ["make", "-s", "test-notebooks", f"NBS={folder}"], cwd=REPO, capture_output=True, text=True, timeout=300
    )


def test_failing_assert_in_a_notebook_fails_make_test(tmp_path: Path):
    write(tmp_path, "good.ipynb", "assert 1 + 1 == 2")
    assert make_notebooks(tmp_path).returncode == 0
    write(tmp_path, "bad.ipynb", "assert 1 + 1 == 3, 'deliberate'")
    proc = make_notebooks(tmp_path)
    assert proc.returncode != 0 and "bad.ipynb" in proc.stdout + proc.stderr
