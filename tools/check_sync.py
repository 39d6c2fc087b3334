#!/usr/bin/env python
"""Fail when flagship/ is not what nbdev_export makes of nbs/, or when a notebook in nbs/ is not clean.

Clean means no outputs, no execution counts, and no cell metadata but papermill's `tags` (nbdev_clean strips the
metadata and counts and keeps `tags`; it keeps outputs unless told to drop every tag too, so `--fix` strips outputs
and then runs nbdev_clean). Executed notebooks belong in outputs/, never in nbs/.

    python tools/check_sync.py          # check (make check-sync, CI)
    python tools/check_sync.py --fix    # strip outputs, nbdev_clean, nbdev_export (pre-commit)
"""

from __future__ import annotations

import filecmp
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tree_diff(a: Path, b: Path) -> list[str]:
    """Relative paths of .py files that differ between two folders (or exist in only one)."""
    names = {p.relative_to(a) for p in a.rglob("*.py")} | {p.relative_to(b) for p in b.rglob("*.py")}
    return sorted(
        str(n) for n in names if not ((a / n).exists() and (b / n).exists() and filecmp.cmp(a / n, b / n, shallow=False))
    )


def dirty_notebooks(nbs: Path) -> list[str]:
    """Notebooks that carry outputs, execution counts or metadata nbdev_clean would strip."""
    bad = []
    for path in sorted(nbs.rglob("*.ipynb")):
        if ".ipynb_checkpoints" in path.parts:
            continue
        nb = json.loads(path.read_text(encoding="utf-8"))
        for i, cell in enumerate(nb["cells"]):
            extra = set(cell.get("metadata", {})) - {"tags"}
            if cell.get("outputs") or cell.get("execution_count") or extra:
                bad.append(
                    f"{path.relative_to(ROOT)} cell {i}: "
                    + ("outputs" if cell.get("outputs") else f"metadata {sorted(extra)}" if extra else "execution_count")
                )
                break
    return bad


def strip_outputs(nbs: Path) -> None:
    """Remove every code cell's outputs and execution count, in place."""
    for path in sorted(nbs.rglob("*.ipynb")):
        if ".ipynb_checkpoints" in path.parts:
            continue
        nb = json.loads(path.read_text(encoding="utf-8"))
        cells = [c for c in nb["cells"] if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]
        for cell in cells:
            cell["outputs"], cell["execution_count"] = [], None
        if cells:
            path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def main() -> int:
    if "--fix" in sys.argv[1:]:
        strip_outputs(ROOT / "nbs")
        subprocess.run([str(Path(sys.executable).parent / "nbdev_clean")], cwd=ROOT, check=True)
    with tempfile.TemporaryDirectory() as tmp:
        # export into a scratch copy: a check must not overwrite a hand edit it is about to report (--fix exports in place)
        scratch = ROOT if "--fix" in sys.argv[1:] else Path(tmp) / "repo"
        before = Path(tmp) / "flagship"
        shutil.copytree(ROOT / "flagship", before)
        if scratch != ROOT:
            shutil.copytree(ROOT / "nbs", scratch / "nbs", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
            shutil.copytree(ROOT / "flagship", scratch / "flagship")
            shutil.copy(ROOT / "settings.ini", scratch / "settings.ini")
        subprocess.run([str(Path(sys.executable).parent / "nbdev_export")], cwd=scratch, check=True)
        changed = tree_diff(before, scratch / "flagship")
    dirty = dirty_notebooks(ROOT / "nbs")
    for name in changed:
        print(f"flagship/{name} is not what nbdev_export makes of nbs/: edit the notebook, run nbdev_export, commit both")
    for line in dirty:
        print(f"{line}: run nbdev_clean (executed notebooks belong in outputs/)")
    if not changed and not dirty:
        print("flagship/ matches nbs/; notebooks are clean")
    return 1 if changed or dirty else 0


if __name__ == "__main__":
    sys.exit(main())
