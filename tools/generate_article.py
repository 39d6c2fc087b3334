#!/usr/bin/env python
"""Write BOLT article drafts in posts/ from each project's run artifacts (outputs/<slug>/run.json, metrics.json, figures).

    python tools/generate_article.py 01              # one project
    python tools/generate_article.py --all           # every built project that has a run
    python tools/generate_article.py --all --export bolt   # also write outputs/articles/<post>/ bundles

Regenerating from unchanged artifacts leaves the post byte-identical. A post an editor has changed is never
overwritten: the new version is written beside it as posts/_<post>.regenerated.qmd, and this command says so.
The logic lives in flagship.core.articles (nbs/core/10_articles.ipynb); this is its command line.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("FLAGSHIP_ROOT", str(ROOT))

from flagship.core.articles import export_bolt, write_article  # noqa: E402
from flagship.core.config import PROJECTS, is_built, outputs_root, project_slug  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("projects", nargs="*", help="project numbers, slugs or module names (e.g. 01 tabular)")
    p.add_argument("--all", action="store_true", help="every built project with a run.json under the outputs folder")
    p.add_argument("--export", choices=["bolt"], help="also write a self-contained bundle per article under outputs/articles/")
    p.add_argument("--posts", type=Path, default=ROOT / "posts", help="where drafts are written (default: posts/)")
    p.add_argument("--outputs", type=Path, default=None, help="the outputs folder (default: $FLAGSHIP_OUTPUTS or outputs/)")
    args = p.parse_args(argv)
    if not args.all and not args.projects:
        p.error("name a project (e.g. 01) or pass --all")
    return args


def main(argv: list[str] | None = None) -> int:
    """Generate (and optionally export) the articles; exit 1 when a named project has no run."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    args = parse_args(argv)
    outputs = (args.outputs or outputs_root()).resolve()
    try:
        slugs = [s for s in PROJECTS if is_built(s)] if args.all else [project_slug(p) for p in args.projects]
    except KeyError as err:
        print(f"error: {err.args[0]}", file=sys.stderr)
        return 2
    failed = 0
    for slug in slugs:
        if not (outputs / slug / "run.json").exists():
            if not args.all:
                print(f"{slug}: no run at {outputs / slug / 'run.json'}; run `make run P={slug[:2]}` first", file=sys.stderr)
                failed += 1
            continue
        result = write_article(outputs / slug, args.posts, slug)
        print(f"{result['status']:<12} {result['message']}")
        if args.export == "bolt":
            print(f"{'exported':<12} {export_bolt(result['post'], outputs / 'articles')}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
