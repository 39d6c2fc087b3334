#!/usr/bin/env python
"""Render the site defined by `_quarto.yml` into _site/: with Quarto when `quarto` is on PATH, else with smalldocs.

    python tools/site_render.py            # preview build: article drafts shown (profile `preview`)
    python tools/site_render.py --publish  # publish build: drafts left out

Quarto applies `_quarto-preview.yml` through `--profile preview`; smalldocs does not read profile files, so for it
the profile is merged here into the configuration it loaded, exactly as Quarto merges it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--publish", action="store_true", help="leave article drafts out (the published site)")
    parser.add_argument("--root", type=Path, default=ROOT, help="the project folder holding _quarto.yml")
    parser.add_argument("--strict", action="store_true", help="fail on any warning (broken links, ignored options)")
    args = parser.parse_args(argv)
    profile = [] if args.publish else ["preview"]
    if shutil.which("quarto"):
        return subprocess.run(["quarto", "render", *[a for p in profile for a in ("--profile", p)]], cwd=args.root).returncode
    from smalldocs.config import ConfigError, load, merge
    from smalldocs.site import BuildError, Site

    if profile:
        os.environ["QUARTO_PROFILE"] = ",".join(profile)  # smalldocs reads it for `when-profile` blocks
    try:
        project = load(args.root)
        for name in profile:
            overlay = args.root / f"_quarto-{name}.yml"
            project.config = merge(project.config, yaml.safe_load(overlay.read_text(encoding="utf-8")) or {})
        site = Site(project)
        site.build()
    except (ConfigError, BuildError) as err:
        print(f"site build failed: {err}", file=sys.stderr)
        return 1
    for warning in site.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 1 if args.strict and site.warnings else 0


if __name__ == "__main__":
    sys.exit(main())
