"""Article drafts from fixture run folders: byte-identical regeneration, edited drafts kept, numbers traced to the
artifacts, the BOLT export, the command line, and drafts shown in the preview build but not in the publish build."""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import yaml
from test_cards import set_metric  # change one metric as a new run would

from flagship.core import articles, cards

ROOT = Path(__file__).resolve().parents[1]
SLUG = "01-tabular-endtoend"
SPEC = {
    "title": "Income prediction on census data",
    "kind": "classification",
    "headline": {"metric": "roc_auc", "section": "test", "higher_is_better": True},
    "summary": "Who earns more than 50K a year?",
    "intended_use": "Teaching an end-to-end tabular pipeline.",
    "limitations": ["Old census data."],
    "article": {"categories": ["classification", "tabular"], "figures": {"roc.png": "ROC curve on the test split"}},
}
# A number as an article prints it: digits with optional thousands separators and decimals, not part of a word
# (so hex digests, `01_data.ipynb` or `50K` are identifiers, not numbers).
NUMBER = re.compile(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?![\w])")


def tiny_png() -> bytes:
    """A valid 1x1 grey PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00\x80")) + chunk(b"IEND", b"")


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch) -> Path:
    """A fixture run (run.json, metrics.json, a model, a figure, the model card) and card.yaml text for it."""
    out = cards.write_example_run(tmp_path / "outputs" / SLUG)
    (out / "figures").mkdir()
    (out / "figures" / "roc.png").write_bytes(tiny_png())
    (out / "model_card.md").write_text(cards.model_card(cards.read_run(out), SPEC))
    monkeypatch.setattr(articles, "load_card_spec", lambda slug: SPEC)
    return out


def numbers_in(obj) -> list[float]:
    """Every number an artifact holds: numeric values, and numbers written inside its strings (dates, names)."""
    if isinstance(obj, dict):
        return [n for k, v in obj.items() for n in numbers_in(k) + numbers_in(v)]
    if isinstance(obj, list):
        return [n for v in obj for n in numbers_in(v)]
    if isinstance(obj, bool) or obj is None:
        return []
    if isinstance(obj, int | float):
        return [float(obj)]
    text = re.sub(r"(?<=\d)T(?=\d)", " ", str(obj))  # an ISO timestamp's date and time are numbers too
    return [float(i.replace(",", "") + (f or "")) for i, f in NUMBER.findall(text)]


def test_regenerating_from_unchanged_artifacts_is_byte_identical(run_dir, tmp_path):
    posts = tmp_path / "posts"
    first = articles.write_article(run_dir, posts)
    data, mtime = first["path"].read_bytes(), first["path"].stat().st_mtime_ns
    again = articles.write_article(run_dir, posts)
    assert first["status"] == "written" and again["status"] == "unchanged"
    assert again["path"].read_bytes() == data and again["path"].stat().st_mtime_ns == mtime
    assert first["path"].name == "2026-12-04-01-tabular-endtoend.qmd"  # the run's date, not today's
    assert (posts / "2026-12-04-01-tabular-endtoend" / "roc.png").read_bytes() == tiny_png()


def test_front_matter_is_complete_and_marks_a_draft(run_dir, tmp_path):
    post = articles.write_article(run_dir, tmp_path / "posts")["path"]
    front, body = articles.split_front_matter(post.read_text())
    assert front["title"] == SPEC["title"] and front["date"] == "2026-12-04" and front["draft"] is True
    assert front["categories"] == ["classification", "tabular"] and "roc_auc 0.9123 on the test split" in front["description"]
    assert front["image"] == "2026-12-04-01-tabular-endtoend/roc.png" and len(front["content-hash"]) == 64
    assert "![ROC curve on the test split](2026-12-04-01-tabular-endtoend/roc.png)" in body
    assert "## Provenance" in body and "`3f2a9c1e5b7d4a6f8e0c2b4d6f8a0c2e4b6d8f0a`" in body and "sha256 `5b0026" in body
    assert "(../outputs/01-tabular-endtoend/model_card.md)" in body


def test_changing_a_metric_changes_the_article(run_dir, tmp_path):
    posts = tmp_path / "posts"
    before = articles.write_article(run_dir, posts)["path"].read_text()
    set_metric(run_dir, "test", "roc_auc", 0.9555)
    result = articles.write_article(run_dir, posts)
    after = result["path"].read_text()
    assert result["status"] == "written"  # an unedited draft follows its artifacts
    assert "| test | roc_auc | 0.9123 |" in before and "| test | roc_auc | 0.9555 |" in after and "0.9123" not in after
    assert "**0.9555**, against **0.5000** for the baseline (`dummy_prior`) (higher is better): the model beats it" in after
    set_metric(run_dir, "test", "roc_auc", 0.4)
    assert "the model does not beat it" in articles.write_article(run_dir, posts)["path"].read_text()


def test_every_number_in_the_article_is_in_the_artifacts(run_dir, tmp_path):
    text = articles.write_article(run_dir, tmp_path / "posts")["path"].read_text()
    sources = numbers_in(json.loads((run_dir / "run.json").read_text()))
    sources += numbers_in(json.loads((run_dir / "metrics.json").read_text())) + numbers_in(SPEC)
    found = NUMBER.findall(text)
    assert len(found) > 40  # the check below must have something to check
    for whole, frac in found:
        shown, decimals = float(whole.replace(",", "") + frac), max(len(frac) - 1, 0)
        assert any(abs(round(v, decimals) - shown) < 1e-9 for v in sources), f"{whole}{frac} is in the article but in no artifact"
    for value in (0.9123, 0.5, 0.8531, 0.6712, 27.75, 21.25, 512.7, 32561, 1621, 0.9034):  # and the key ones are shown
        assert any(abs(float(w.replace(",", "") + f) - value) < 1e-9 for w, f in found), value


def test_an_edited_draft_is_never_overwritten(run_dir, tmp_path):
    posts = tmp_path / "posts"
    post = articles.write_article(run_dir, posts)["path"]
    edited = post.read_text().replace("## Results", "## What we found").replace("draft: true", "draft: false")
    post.write_text(edited)
    set_metric(run_dir, "test", "roc_auc", 0.8888)
    result = articles.write_article(run_dir, posts)
    assert result["status"] == "kept-edited" and post.read_text() == edited
    assert result["path"] == posts / "_2026-12-04-01-tabular-endtoend.regenerated.qmd" and "0.8888" in result["path"].read_text()
    assert "edited by hand and is kept" in result["message"] and str(result["path"]) in result["message"]
    assert articles.is_edited(edited) and not articles.is_edited(result["path"].read_text())


def test_a_newer_run_replaces_an_unedited_draft_of_an_older_one(run_dir, tmp_path):
    posts = tmp_path / "posts"
    old = articles.write_article(run_dir, posts)["path"]
    run = json.loads((run_dir / "run.json").read_text())
    run["finished_at"] = "2026-12-11T09:00:00+00:00"
    (run_dir / "run.json").write_text(json.dumps(run))
    new = articles.write_article(run_dir, posts)["path"]
    assert new.name == "2026-12-11-01-tabular-endtoend.qmd" and not old.exists() and not (posts / old.stem).exists()
    assert sorted(p.name for p in posts.iterdir()) == ["2026-12-11-01-tabular-endtoend", "2026-12-11-01-tabular-endtoend.qmd"]


def test_export_bolt_writes_a_self_contained_bundle(run_dir, tmp_path):
    post = articles.write_article(run_dir, tmp_path / "posts")["path"]
    bundle = articles.export_bolt(post, tmp_path / "outputs" / "articles", "https://flagship.example/site/")
    assert sorted(str(p.relative_to(bundle)) for p in bundle.rglob("*")) == [
        "article.md",
        "front_matter.json",
        "images",
        "images/roc.png",
    ]
    meta = json.loads((bundle / "front_matter.json").read_text())
    md = (bundle / "article.md").read_text()
    assert (
        meta["title"] == SPEC["title"]
        and meta["draft"] is True
        and meta["image"] == "images/roc.png"
        and meta["images"] == ["images/roc.png"]
    )
    assert (
        md.startswith(f"# {SPEC['title']}\n")
        and "](images/roc.png)" in md
        and "](../" not in md
        and "---" not in md.splitlines()[1]
    )
    assert "(https://flagship.example/site/outputs/01-tabular-endtoend/model_card.html)" in md
    assert (bundle / "images" / "roc.png").read_bytes() == tiny_png()


def test_the_command_line_generates_and_exports(tmp_path):
    out = cards.write_example_run(tmp_path / "outputs" / SLUG)
    (out / "figures").mkdir()
    (out / "figures" / "roc.png").write_bytes(tiny_png())
    env = {**os.environ, "FLAGSHIP_OUTPUTS": str(tmp_path / "outputs")}
    cmd = [sys.executable, str(ROOT / "tools" / "generate_article.py"), "--posts", str(tmp_path / "posts")]
    done = subprocess.run([*cmd, "--all", "--export", "bolt"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("written") and "exported" in done.stdout
    assert (tmp_path / "posts" / "2026-12-04-01-tabular-endtoend.qmd").exists()
    assert (tmp_path / "outputs" / "articles" / "2026-12-04-01-tabular-endtoend" / "front_matter.json").exists()
    again = subprocess.run([*cmd, "01"], env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and again.stdout.startswith("unchanged")
    missing = subprocess.run([*cmd, "02"], env=env, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1 and "no run at" in missing.stderr and "make run P=02" in missing.stderr


@pytest.mark.slow
def test_drafts_are_listed_in_the_preview_build_and_gone_from_the_publish_build(run_dir, tmp_path, monkeypatch):
    """A scratch site: `_quarto.yml` keeps drafts out; the `preview` profile (`_quarto-preview.yml`) shows them."""
    from smalldocs.config import load, merge
    from smalldocs.site import Site

    site = tmp_path / "site"
    (site / "posts").mkdir(parents=True)
    config = {"project": {"type": "website", "render": ["index.qmd", "posts/"]}, "website": {"title": "t", "draft-mode": "gone"}}
    (site / "_quarto.yml").write_text(yaml.safe_dump(config))
    (site / "_quarto-preview.yml").write_text(yaml.safe_dump({"website": {"draft-mode": "visible"}}))
    (site / "index.qmd").write_text("---\ntitle: Home\n---\n\nHello.\n")
    note = '::: {.content-visible when-profile="preview"}\nPreview build: drafts are listed.\n:::\n'
    (site / "posts" / "index.qmd").write_text(
        f'---\ntitle: Articles\nlisting:\n  contents: "*.qmd"\n  sort: "date desc"\n---\n\n{note}'
    )
    post = articles.write_article(run_dir, site / "posts")["path"]
    built = site / "_site" / "posts" / f"{post.stem}.html"

    monkeypatch.delenv("QUARTO_PROFILE", raising=False)
    Site(load(site), quiet=True).build()  # publish: _quarto.yml alone
    listing = (site / "_site" / "posts" / "index.html").read_text()
    assert not built.exists() and SPEC["title"] not in listing and "Preview build" not in listing

    monkeypatch.setenv("QUARTO_PROFILE", "preview")  # what `quarto render --profile preview` sets
    project = load(site)  # smalldocs reads no profile files: merge it over _quarto.yml, as Quarto does
    project.config = merge(project.config, yaml.safe_load((site / "_quarto-preview.yml").read_text()))
    Site(project, quiet=True).build()
    listing = (site / "_site" / "posts" / "index.html").read_text()
    assert built.exists() and SPEC["title"] in listing and "Preview build: drafts are listed." in listing
    assert "0.9123" in built.read_text()
