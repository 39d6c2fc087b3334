#!/usr/bin/env python
"""Write the site's generated parts from run artifacts, before rendering (`make pages`).

- outputs/site/_home.md: the home page's project table (status, headline metric, last run), from each run.json.
- outputs/site/_benchmarks.md: every outputs/benchmarks/*.json as a table, and each notebook's measured seconds and
  peak memory from run.json.
- outputs/<slug>/_metadata.yml: a provenance banner on every page of a project (which run its numbers come from).
- api/index.qmd: the API reference's landing page (smalldocs api build writes the module pages).

Nothing here is typed by hand: a page without a run says so instead of showing a number.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("FLAGSHIP_ROOT", str(ROOT))

from flagship.core.cards import home_table, md_table, provenance_note  # noqa: E402
from flagship.core.config import PROJECTS, outputs_root  # noqa: E402
from flagship.core.publish import atomic_write_text, read_manifest  # noqa: E402


def as_measured(value) -> str | object:
    """Show a benchmark figure with the precision its script recorded (17.5, not 17.5000), thousands separated."""
    return f"{value:,}" if isinstance(value, int | float) and not isinstance(value, bool) else value


def benchmarks(outputs: Path) -> str:
    """Every benchmark result, then the measured cost of each project's notebooks."""
    parts = []
    for path in sorted((outputs / "benchmarks").glob("*.json")):
        doc = json.loads(path.read_text())
        rows = [[as_measured(v) for v in row] for row in doc["rows"]]
        parts.append(f"## {doc['title']}\n\n" + md_table(doc["columns"], rows))
        parts.append(f"\nMeasured by `{doc['command']}` at commit `{str(doc.get('git_sha'))[:12]}`, {doc.get('generated_at')}.")
        if doc.get("notes"):
            parts.append(f" {doc['notes']}")
        parts.append("\n\n")
    if not parts:
        parts.append("No benchmark has been run for this build: `make bench` runs them and this page shows their results.\n\n")
    rows = []
    for slug in PROJECTS:
        run = read_manifest(slug, outputs / slug)
        for nb in (run or {}).get("notebooks", []):
            sha = str(run.get("git_sha", "unknown"))[:12]
            rows.append(
                [
                    slug,
                    nb["notebook"],
                    run["profile"],
                    nb.get("seconds", 0.0),
                    nb.get("peak_memory_mb", 0.0),
                    nb.get("status"),
                    f"[`{sha}`](../outputs/{slug}/run.json) {str(run.get('finished_at', ''))[:10]}",
                ]
            )
    parts.append(
        "## Notebook run times\n\nEach notebook's wall-clock seconds and its kernel's peak resident memory, as the runner measured "
    )
    parts.append(
        "them in the last good run of each project (`run.json`); a notebook marked cached kept the figures of the run that executed it.\n\n"
    )
    parts.append(
        md_table(["project", "notebook", "profile", "seconds", "peak MB", "in this run", "run"], rows)
        if rows
        else "No project has run yet.\n"
    )
    return "".join(parts)


PROVENANCE_OPEN, PROVENANCE_CLOSE = "<!-- flagship:provenance -->", "<!-- /flagship:provenance -->"
PROVENANCE_STYLE = (
    "border-left:4px solid #2780e3;padding:.4rem .8rem;margin:0 0 1rem;font-size:.9rem;background:rgba(39,128,227,.08)"
)


def provenance(outputs: Path) -> None:
    """Give every project page a note naming the run its numbers come from (the wording is flagship.core.cards')."""
    from markdown_it import MarkdownIt

    for slug in PROJECTS:
        folder = outputs / slug
        if not folder.is_dir():
            continue
        run = read_manifest(slug, folder)
        note = MarkdownIt().renderInline(provenance_note(run)) if run else "This project has no completed run yet."
        text = f"{PROVENANCE_OPEN}<p class='flagship-provenance' style='{PROVENANCE_STYLE}'>{note}</p>{PROVENANCE_CLOSE}"
        atomic_write_text(folder / "_metadata.yml", yaml.safe_dump({"include-before-body": [{"text": text}]}, sort_keys=False))


def api_index(root: Path) -> None:
    """The API reference's landing page: one line per module, from the module pages smalldocs wrote."""
    api = root / "api"
    rows = []
    for page in sorted(api.glob("*.qmd")):
        if page.name == "index.qmd":
            continue
        front = yaml.safe_load(page.read_text().split("---")[1])
        rows.append([f"[`{front['title']}`]({page.name})", front.get("description", "")])
    body = "---\ntitle: API reference\ndescription: Every public function of the flagship package, generated from its docstrings.\n---\n\n"
    body += "Generated from the code by `smalldocs api build`; the notebooks in `nbs/` are the source.\n\n"
    atomic_write_text(api / "index.qmd", body + md_table(["module", "what it does"], rows))


def main() -> int:
    outputs = outputs_root()
    site = outputs / "site"
    atomic_write_text(site / "_home.md", home_table(outputs))
    atomic_write_text(site / "_benchmarks.md", benchmarks(outputs))
    provenance(outputs)
    if (ROOT / "api").is_dir():
        api_index(ROOT)
    print(f"site pages: {site}/_home.md, _benchmarks.md, provenance banners, api/index.qmd", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
