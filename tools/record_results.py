#!/usr/bin/env python
"""Record a project's full-profile results beside its notebooks, where its overview page reads them.

    python tools/record_results.py 10 --run /tmp/full/10-recommender-system

Writes nbs/<slug>/recorded_results.json: the run's metrics sections (default `test` and `data`) with the profile,
commit and finish time of the run they came from. The overview then shows numbers from a recorded run, never typed
ones, and says which run. Only a `full` run of a clean commit is recorded (the figures a reader should quote).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flagship.core.config import project_dirs, project_slug
from flagship.core.publish import atomic_write_json, read_manifest


def record(project: str, run_dir: Path | None, sections: list[str]) -> Path:
    """Copy `sections` of the run's metrics with its provenance into nbs/<slug>/recorded_results.json."""
    slug = project_slug(project)
    run = read_manifest(slug, run_dir)
    if run is None:
        raise FileNotFoundError(
            f"{run_dir or project_dirs(slug)['out']}/run.json missing: run `make run P={slug[:2]} PROFILE=full`"
        )
    if run["profile"] != "full" or str(run.get("git_sha", "")).endswith("-dirty"):
        raise ValueError(f"run of profile {run['profile']!r} at {run.get('git_sha')}: record a full run of a clean commit")
    missing = [s for s in sections if s not in run["metrics"]]
    if missing:
        raise KeyError(f"the run's metrics have no section {missing} (found {sorted(run['metrics'])})")
    doc = {
        "command": f"python tools/record_results.py {slug[:2]} --run <run folder>",
        "profile": run["profile"],
        "git_sha": run["git_sha"],
        "finished_at": run["finished_at"],
        **{s: run["metrics"][s] for s in sections},
    }
    return atomic_write_json(project_dirs(slug)["nbs"] / "recorded_results.json", doc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("project", help="number, slug or module name, e.g. 10")
    parser.add_argument("--run", type=Path, default=None, help="the run folder (default: the project's last good run)")
    parser.add_argument("--sections", default="test,data", help="comma-separated metrics sections to record")
    args = parser.parse_args(argv)
    try:
        path = record(args.project, args.run, [s for s in args.sections.split(",") if s])
    except (FileNotFoundError, KeyError, ValueError) as e:
        print(f"record_results: {e}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
