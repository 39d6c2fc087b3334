"""Model cards, cost estimates, the home table and provenance notes, generated from fixture run folders in tmp."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from flagship.core import cards
from flagship.core.config import PROJECTS, is_built

SLUG = "01-tabular-endtoend"
SPEC = {
    "title": "Income prediction",
    "kind": "classification",
    "headline": {"metric": "roc_auc", "section": "test"},
    "intended_use": "Teaching an end-to-end tabular pipeline.",
    "limitations": ["Old census data."],
    "retrain_policy": "Retrain when drift alerts fire.",
}


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A fixture run folder as tools/run_notebooks.py leaves it."""
    return cards.write_example_run(tmp_path / "outputs" / SLUG)


def set_metric(run_dir: Path, section: str, name: str, value: float) -> None:
    """Change one metric in metrics.json, as a new run would."""
    path = run_dir / "metrics.json"
    doc = json.loads(path.read_text())
    doc[section][name] = value
    path.write_text(json.dumps(doc, indent=2, sort_keys=True))


def test_model_card_has_every_section_with_metrics_and_their_split(run_dir):
    card = cards.model_card(cards.read_run(run_dir), SPEC, run_dir)
    headings = [ln for ln in card.splitlines() if ln.startswith("## ")]
    assert headings == ["## Intended use", "## Data", "## Metrics", "## Fairness slices", "## Limitations", "## Retrain policy"]
    assert "| test | roc_auc | 0.9123 |" in card and "| baseline | roc_auc | 0.5000 |" in card
    assert "| version | `1.0.0` |" in card and "| date | `2026-12-04T20:15:03+00:00` |" in card
    assert "| sex = Female | 1,621 | 0.9034 |" in card and "- Old census data." in card
    assert "Retrain when drift alerts fire." in card and "[run.json](run.json)" in card


def test_model_card_says_which_key_is_missing_and_uses_the_fairness_note(run_dir):
    run = cards.read_run(run_dir)
    del run["metrics"]["fairness"]
    card = cards.model_card(run, {"fairness_note": "No people in this data."})
    assert "No people in this data." in card and "add `intended_use:` to nbs/01-tabular-endtoend/card.yaml" in card
    assert cards.model_card({"project": SLUG, "metrics": {}}, {}).count("Not documented yet") == 5


def test_card_numbers_follow_the_artifacts(run_dir):
    before = cards.model_card(cards.read_run(run_dir), SPEC)
    set_metric(run_dir, "test", "roc_auc", 0.7777)
    after = cards.model_card(cards.read_run(run_dir), SPEC)
    assert "| test | roc_auc | 0.9123 |" in before and "| test | roc_auc | 0.7777 |" in after and "0.9123" not in after


def test_cost_estimate_is_the_documented_arithmetic(run_dir, tmp_path):
    """Round prices and usage make every cell computable by hand."""
    table = {
        "provider": "test cloud",
        "recorded": "2026-01-01",
        "prices": {
            "storage_gb_month": {"usd": 1.0, "what": "per GB-month", "source": "https://example.invalid/s"},
            "compute_hour": {"usd": 3.6, "what": "per hour", "source": "https://example.invalid/c"},
            "egress_gb": {"usd": 2.0, "what": "per GB", "source": "https://example.invalid/e"},
        },
        "scenarios": {
            "low": {
                "retrains_per_month": 1,
                "runs_kept": 1,
                "serving_hours": 0,
                "requests_per_month": 0,
                "response_bytes": 0,
                "model_downloads": 0,
            },
            "high": {
                "retrains_per_month": 10,
                "runs_kept": 2,
                "serving_hours": 100,
                "requests_per_month": 1000,
                "response_bytes": 1_000_000,
                "model_downloads": 4,
            },
        },
    }
    (tmp_path / "prices.yaml").write_text(yaml.safe_dump(table, sort_keys=False))
    prices = cards.load_prices(tmp_path / "prices.yaml")
    run = cards.read_run(run_dir)
    run["artifacts"], run["seconds"] = {"models/m.onnx": 250_000_000, "metrics.json": 250_000_000}, 3600.0
    costs = cards.scenario_costs(cards.measured_usage(run, root=tmp_path), prices)
    assert costs["low"] == pytest.approx(
        {"storage": 0.5, "training": 3.6, "serving": 0.0, "egress": 0.0, "total": 4.1, "storage_gb": 0.5, "egress_gb": 0.0}
    )
    # high: 0.5 GB x 2 kept = 1 GB; 10 x 1 h x 3.6; 100 h x 3.6; (1000 x 1 MB + 4 x 0.25 GB) = 2 GB x 2
    assert costs["high"] == pytest.approx(
        {"storage": 1.0, "training": 36.0, "serving": 360.0, "egress": 4.0, "total": 401.0, "storage_gb": 1.0, "egress_gb": 2.0}
    )
    assert cards.scenario_costs(cards.measured_usage(run, root=tmp_path), prices, serves=False)["high"]["total"] == pytest.approx(
        39.0
    )  # no API: 1 + 36 + 4 x 0.25 GB x 2
    text = cards.cost_estimate(run, prices, SPEC, root=tmp_path)
    assert "| **total per month** | **$4.10** | **$401.00** |" in text and "https://example.invalid/c" in text


def test_the_committed_price_table_is_documented_and_scenarios_grow(run_dir):
    prices = cards.load_prices()
    assert list(prices["scenarios"]) == ["low", "medium", "high"]
    for name, price in prices["prices"].items():
        assert price["usd"] > 0 and price["what"] and price["source"].startswith("https://"), name
    totals = [v["total"] for v in cards.scenario_costs(cards.measured_usage(cards.read_run(run_dir)), prices).values()]
    assert totals == sorted(totals) and totals[0] < totals[-1]


def test_load_prices_names_the_missing_key(tmp_path):
    (tmp_path / "p.yaml").write_text("prices: {compute_hour: {usd: 1}}\nscenarios: {}\n")
    with pytest.raises(ValueError, match="prices.storage_gb_month is missing"):
        cards.load_prices(tmp_path / "p.yaml")


def test_write_cards_writes_both_files_byte_identically(run_dir):
    paths = cards.write_cards(run_dir, SLUG)
    assert {p.name for p in paths.values()} == {"model_card.md", "COST_ESTIMATE.md"}
    first = {k: p.read_bytes() for k, p in paths.items()}
    assert {k: p.read_bytes() for k, p in cards.write_cards(run_dir, "01").items()} == first
    assert b"## Monthly cost (USD)" in first["cost_estimate"] and b"# Model card:" in first["model_card"]


def test_write_cards_names_the_missing_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="run.json not found: run the project first"):
        cards.write_cards(tmp_path, SLUG)


def test_home_table_lists_every_project_with_status_and_headline(run_dir, monkeypatch):
    monkeypatch.setattr(cards, "load_card_spec", lambda slug: SPEC if slug == SLUG else {})
    table = cards.home_table(run_dir.parent)
    rows = table.strip().splitlines()[2:]
    assert len(rows) == len(PROJECTS)
    built = rows[0]
    assert "| built | roc_auc (test) **0.9123** | 2026-12-04 | `ci` |" in built
    assert f"(outputs/{SLUG}/00_overview.ipynb)" in built and f"[`3f2a9c1e5b7d`](outputs/{SLUG}/run.json)" in built
    for slug, row in zip(list(PROJECTS)[1:], rows[1:], strict=True):  # no run: status only, from the notebooks in nbs/
        assert ("| built, not run yet |" if is_built(slug) else "| not built |") in row and "2026" not in row


def test_provenance_note_names_the_run_in_one_line(run_dir):
    note = cards.provenance_note(cards.read_run(run_dir), "../outputs/x/run.json")
    assert "\n" not in note and "`3f2a9c1e5b7d`" in note and "profile `ci`" in note
    assert "`2026-12-04T20:15:03+00:00`" in note and note.endswith("[run.json](../outputs/x/run.json)*")
    assert "-dirty" in cards.provenance_note({"git_sha": "abc-dirty", "profile": "ci", "finished_at": "t"})
