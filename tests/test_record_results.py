"""tools/record_results.py: only a full run of a clean commit is recorded, with its provenance, beside the notebooks."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from flagship.core.cards import write_example_run

REPO = Path(__file__).resolve().parents[1]
SLUG = "10-recommender-system"


@pytest.fixture
def tool(tmp_path, monkeypatch):
    """The tool against a scratch repository root (settings.ini + nbs/<slug>/), so nothing in the checkout is written."""
    (tmp_path / "settings.ini").write_text("[DEFAULT]\nlib_name = flagship\n")
    (tmp_path / "nbs" / SLUG).mkdir(parents=True)
    monkeypatch.setenv("FLAGSHIP_ROOT", str(tmp_path))
    spec = importlib.util.spec_from_file_location("record_results", REPO / "tools" / "record_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(folder: Path, **changes) -> Path:
    write_example_run(folder, slug=SLUG)
    run = json.loads((folder / "run.json").read_text())
    (folder / "run.json").write_text(json.dumps(run | changes))
    return folder


def test_full_clean_run_is_recorded_with_its_provenance(tool, tmp_path):
    run = _run(tmp_path / "run", profile="full")
    path = tool.record("10", run, ["test", "data"])
    doc = json.loads(path.read_text())
    assert path == tmp_path / "nbs" / SLUG / "recorded_results.json"
    assert doc["profile"] == "full" and doc["git_sha"].startswith("3f2a9c1e") and doc["test"]["roc_auc"] == 0.9123
    assert doc["data"]["rows_test"] == 16281 and doc["finished_at"] == "2026-12-04T20:15:03+00:00"


@pytest.mark.parametrize("changes", [{"profile": "ci"}, {"profile": "full", "git_sha": "abc-dirty"}])
def test_ci_or_dirty_runs_are_refused(tool, tmp_path, changes, capsys):
    run = _run(tmp_path / "run", **changes)
    assert tool.main(["10", "--run", str(run)]) == 2
    assert "record a full run of a clean commit" in capsys.readouterr().err
    assert not (tmp_path / "nbs" / SLUG / "recorded_results.json").exists()
