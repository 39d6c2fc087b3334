#!/usr/bin/env python
"""Post-render step of `_quarto.yml` (run by Quarto and smalldocs alike): make the rendered site work offline, and
put each project page's provenance note (which run its numbers come from) under the page title.

KaTeX is copied from the npm package installed by `make install` (tools/node/node_modules/katex) into
_site/site_libs/katex/, and every page's CDN links to KaTeX are rewritten to that copy, relative to the page.
Any other link to a CDN left in a page is reported; under smalldocs (the offline build, env SMALLDOCS=1) that fails
the step, so a page built here never depends on the internet. Quarto's own build (the publish workflow, online)
loads MathJax from its CDN, so there the links are only reported.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KATEX_SRC = ROOT / "tools" / "node" / "node_modules" / "katex" / "dist"
KATEX_CDN = re.compile(r"https://cdn\.jsdelivr\.net/npm/katex@[\d.]+/dist")
ANY_CDN = re.compile(r"""(?:src|href)=["'](https?://(?:cdn\.jsdelivr\.net|unpkg\.com|cdnjs\.cloudflare\.com)[^"']*)""")


def copy_katex(site: Path) -> Path:
    """Copy KaTeX's CSS, JS, auto-render and fonts into the site; return the folder."""
    if not KATEX_SRC.is_dir():
        raise SystemExit(f"{KATEX_SRC} is missing: run `make install` (npm ci --prefix tools/node) first")
    dest = site / "site_libs" / "katex"
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in ("katex.min.css", "katex.min.js"):
        shutil.copy2(KATEX_SRC / name, dest / name)
    (dest / "contrib").mkdir()
    shutil.copy2(KATEX_SRC / "contrib" / "auto-render.min.js", dest / "contrib" / "auto-render.min.js")
    shutil.copytree(KATEX_SRC / "fonts", dest / "fonts")
    return dest


def localise(site: Path) -> list[str]:
    """Point KaTeX links at the local copy; return every CDN link that remains, as 'page: url'."""
    katex, left = site / "site_libs" / "katex", []
    for page in sorted(site.rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        if KATEX_CDN.search(text):
            text = KATEX_CDN.sub(os.path.relpath(katex, page.parent), text)
            page.write_text(text, encoding="utf-8")
        left += [f"{page.relative_to(site)}: {url}" for url in ANY_CDN.findall(text)]
    return left


PROVENANCE = re.compile(r"<!-- flagship:provenance -->.*?<!-- /flagship:provenance -->", re.S)
TITLE_END = re.compile(r"(<header id=\"title-block-header\".*?</header>)", re.S)


def place_provenance(site: Path) -> None:
    """Move each page's provenance note (written at the top of <body> by include-before-body) under its title."""
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        note = PROVENANCE.search(text)
        if not note or not TITLE_END.search(text):
            continue
        block = note.group(0)
        text = text.replace(block, "", 1)
        text = TITLE_END.sub(lambda m, block=block: m.group(1) + block, text, count=1)
        page.write_text(text, encoding="utf-8")


def main() -> int:
    project = Path(os.environ.get("QUARTO_PROJECT_DIR", ROOT))
    site = project / os.environ.get("QUARTO_PROJECT_OUTPUT_DIR", "_site")
    copy_katex(site)
    place_provenance(site)
    left = localise(site)
    for line in left:
        print(f"CDN link left in {line}", file=sys.stderr)
    return 1 if left and os.environ.get("SMALLDOCS") else 0


if __name__ == "__main__":
    sys.exit(main())
