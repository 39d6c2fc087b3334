#!/usr/bin/env python
"""Execute each project's notebooks in order with a profile's parameters: papermill runs them, jupyter-cache skips
the ones whose code, parameters and inputs have not changed, and outputs/<project>/ only ever holds a complete run.

    python tools/run_notebooks.py                 # every project, ci profile
    python tools/run_notebooks.py 01 --profile full
    make run P=01 PROFILE=full

How a run stays safe: a project's notebooks execute into a fresh folder outputs/.runs/<project>-<run id>/, which
starts as a copy of the last good run; only when the last notebook has passed is it exchanged with outputs/<project>
in one atomic rename (renameat2), so a failed or killed run leaves the last good outputs as they were. A notebook is skipped when jupyter-cache holds an executed copy of
exactly this code with exactly these parameters and the same upstream key (input data, lock file, flagship.core
source and every earlier notebook of the project), and the last good run was made from that same key.
"""

from __future__ import annotations

import argparse
import copy
import ctypes
import fcntl
import hashlib
import json
import logging
import os
import shutil
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import nbformat
import papermill
import psutil
from jupyter_cache.base import CacheBundleIn
from jupyter_cache.cache.main import JupyterCacheBase
from papermill.exceptions import PapermillExecutionError
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook
from tqdm.auto import tqdm

from flagship.core.publish import atomic_write_text

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
logging.getLogger("papermill").setLevel(logging.ERROR)  # overview pages have no parameters cell; that is fine


class Cache(JupyterCacheBase):
    """jupyter-cache keyed on code cells and their tags only: papermill's timing metadata must not change the key."""

    def create_hashed_notebook(self, nb, nb_metadata=(), cell_metadata=("tags",)):
        return super().create_hashed_notebook(nb, nb_metadata, cell_metadata)


@dataclass
class Result:
    """What happened to one notebook."""

    project: str
    notebook: str
    status: str  # executed | cached | failed | not run
    seconds: float = 0.0
    peak_memory_mb: float = 0.0
    cache_key: str = ""
    error: str = ""


def sha256_text(*parts: str) -> str:
    """Hash strings in order."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def sha256_tree(paths: list[Path]) -> str:
    """Hash the names and bytes of files, in sorted order."""
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(str(p.name).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def upstream_key(root: Path, slug: str) -> str:
    """Hash what every notebook of a project depends on besides its own code: data, lock, core library, and the
    JSON files beside the notebooks (recorded baselines the evaluation asserts against)."""
    data = [p for p in (root / "sample_data" / slug).rglob("*") if p.is_file()]
    core = list((root / "flagship" / "core").glob("*.py"))
    lock = [root / "constraints.txt"] if (root / "constraints.txt").exists() else []
    beside = list((root / "nbs" / slug).glob("*.json"))
    return sha256_text(slug, sha256_tree(data), sha256_tree(core), sha256_tree(lock), sha256_tree(beside))


def project_notebooks(root: Path, slug: str) -> list[Path]:
    """The project's notebooks in execution order: NN_name.ipynb."""
    return sorted((root / "nbs" / slug).glob("[0-9][0-9]_*.ipynb"))


def prepare(nb_path: Path, params: dict, profile: str, chain: str) -> nbformat.NotebookNode:
    """Inject the parameters this notebook declares, with the upstream key in the injected cell's comment."""
    nb = load_notebook_node(str(nb_path))  # papermill's reader adds the metadata it expects
    declared = papermill.inspect_notebook(str(nb_path))
    chosen = {k: v for k, v in params.items() if k in declared}
    comment = f"Parameters injected by tools/run_notebooks.py (profile {profile}; upstream {chain[:16]})"
    return parameterize_notebook(nb, chosen, comment=comment)


@contextmanager
def peak_memory():
    """Sample the RSS of this process's children (the kernel) every 50 ms; yields a dict filled with peak_mb."""
    me, stats, stop = psutil.Process(), {"peak_mb": 0.0}, threading.Event()

    def sample():
        while not stop.is_set():
            try:
                rss = sum(c.memory_info().rss for c in me.children(recursive=True))
            except psutil.Error:
                rss = 0
            stats["peak_mb"] = max(stats["peak_mb"], rss / 2**20)
            stop.wait(0.05)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield stats
    finally:
        stop.set()
        thread.join()


def describe_failure(err: Exception, nb_path: Path, executed: Path) -> str:
    """Name the notebook and the failing cell: its index in the source notebook (0-based) and its first line."""
    if isinstance(err, PapermillExecutionError):
        index, first = err.cell_index, ""
        try:
            cells = nbformat.read(executed, as_version=4).cells
            first = (cells[index].source.strip().splitlines() or [""])[0][:80]
            index -= sum("injected-parameters" in c.metadata.get("tags", []) for c in cells[:index])
        except Exception:  # noqa: BLE001 - the message still names the notebook
            pass
        return f"{nb_path} cell {index} (`{first}`): {err.ename}: {err.evalue}"
    return f"{nb_path}: {type(err).__name__}: {err}"


def exchange(a: Path, b: Path) -> None:
    """Swap two folders in one atomic step (Linux renameat2 RENAME_EXCHANGE)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.renameat2(-100, os.fsencode(a), -100, os.fsencode(b), 2) != 0:  # AT_FDCWD, RENAME_EXCHANGE
        err = ctypes.get_errno()
        raise OSError(err, f"renameat2 exchange failed: {os.strerror(err)}", str(a))


def swap_in(out_dir: Path, run_dir: Path) -> None:
    """Make run_dir the project's outputs/<slug> atomically; the previous run is deleted afterwards."""
    if out_dir.is_symlink():
        out_dir.unlink()
    if out_dir.exists():
        exchange(run_dir, out_dir)  # readers see the old folder or the new one, never neither
        shutil.rmtree(run_dir, ignore_errors=True)
    else:
        os.rename(run_dir, out_dir)


def run_project(root: Path, slug: str, profile: str, cache: Cache, bar, force: bool = False) -> list[Result]:
    """Run one project's notebooks; return a Result per notebook."""
    from flagship.core.config import load_params
    from flagship.core.publish import write_manifest

    outputs = Path(os.environ.get("FLAGSHIP_OUTPUTS") or root / "outputs")
    out_dir_final, runs = outputs / slug, outputs / ".runs"
    previous = json.loads((out_dir_final / "run.json").read_text()) if (out_dir_final / "run.json").exists() else {}
    prev_keys = {n["notebook"]: n.get("cache_key") for n in previous.get("notebooks", [])}
    params = load_params(slug, profile)  # FLAGSHIP_ROOT points flagship.core at `root`
    notebooks = project_notebooks(root, slug)
    declared = set().union(*(papermill.inspect_notebook(str(nb)) for nb in notebooks)) if notebooks else set()
    for name in sorted(set(params) - declared):
        # papermill also misses a parameter whose line has a comment containing "=": it would silently keep its default
        print(
            f"warning: nbs/{slug}/params.yaml sets '{name}' ({profile}) but no notebook's parameters cell declares it",
            file=sys.stderr,
        )

    # Every notebook's key folds in the key before it, so a change re-runs that notebook and every later one.
    # The cache sees out_dir masked: it names a new folder each run, and the same code must give the same key.
    run_dir = runs / f"{slug}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    chain, plans = upstream_key(root, slug), []
    for nb_path in notebooks:
        masked = prepare(nb_path, {**params, "profile": profile, "out_dir": "<run dir>"}, profile, chain)
        key = cache.create_hashed_notebook(masked)[1]
        real = prepare(nb_path, {**params, "profile": profile, "out_dir": str(run_dir)}, profile, chain)
        plans.append((nb_path, real, masked, key))
        chain = sha256_text(chain, key)

    def fresh(i: int) -> bool:
        nb_path, _, masked, key = plans[i]
        if force or prev_keys.get(nb_path.name) != key or not (out_dir_final / nb_path.name).exists():
            return False
        try:
            cache.match_cache_notebook(masked)
            return True
        except KeyError:
            return False

    first_stale = next((i for i in range(len(plans)) if not fresh(i)), len(plans))
    results = [Result(slug, p[0].name, "cached", cache_key=p[3]) for p in plans[:first_stale]]
    bar.update(first_stale)
    if first_stale == len(plans):
        for nb_path, _, masked, _ in plans:  # prose may have changed; code and outputs have not
            refresh_cached(cache, masked, out_dir_final / nb_path.name, out_dir_final)
        return results

    runs.mkdir(parents=True, exist_ok=True)
    if out_dir_final.exists():
        shutil.copytree(out_dir_final, run_dir, symlinks=True)
    else:
        run_dir.mkdir(parents=True)
    for nb_path, _, masked, _ in plans[:first_stale]:
        refresh_cached(cache, masked, run_dir / nb_path.name, out_dir_final)
    for i in range(first_stale, len(plans)):
        nb_path, nb, masked, key = plans[i]
        bar.set_description(f"{slug[:2]} {nb_path.stem}")
        staged_input = run_dir / f".input-{nb_path.name}"
        nbformat.write(nb, staged_input)
        executed = run_dir / nb_path.name
        start = time.perf_counter()
        try:
            with peak_memory() as mem:
                papermill.execute_notebook(
                    str(staged_input),
                    str(executed),
                    parameters=None,
                    cwd=str(nb_path.parent),
                    kernel_name="python3",
                    progress_bar=False,
                    log_output=False,
                )
        except Exception as err:  # noqa: BLE001 - any failure stops this project only
            results.append(
                Result(
                    slug,
                    nb_path.name,
                    "failed",
                    round(time.perf_counter() - start, 2),
                    round(mem["peak_mb"], 1),
                    key,
                    describe_failure(err, nb_path.relative_to(root), executed),
                )
            )
            results += [Result(slug, p[0].name, "not run") for p in plans[i + 1 :]]
            bar.update(len(plans) - i)
            shutil.rmtree(run_dir, ignore_errors=True)
            return results
        finally:
            staged_input.unlink(missing_ok=True)
        seconds = round(time.perf_counter() - start, 2)
        shown = show_final_dir(nbformat.read(executed, as_version=4), str(run_dir), out_dir_final)
        atomic_write_text(executed, nbformat.writes(shown))
        cache.cache_notebook_bundle(
            CacheBundleIn(nb=with_outputs(masked, executed), uri=str(nb_path.relative_to(root))), overwrite=True
        )
        results.append(Result(slug, nb_path.name, "executed", seconds, round(mem["peak_mb"], 1), key))
        bar.update(1)

    notebooks_meta = [{k: v for k, v in asdict(r).items() if k not in ("project", "error")} for r in results]
    # keep the measured figures of notebooks that were cached in this run
    prev = {n["notebook"]: n for n in previous.get("notebooks", [])}
    for meta in notebooks_meta:
        if meta["status"] == "cached" and meta["notebook"] in prev:
            meta.update(
                seconds=prev[meta["notebook"]].get("seconds", 0), peak_memory_mb=prev[meta["notebook"]].get("peak_memory_mb", 0)
            )
    write_manifest(run_dir, slug, profile, params, notebooks_meta)
    swap_in(out_dir_final, run_dir)
    return results


def show_final_dir(nb: nbformat.NotebookNode, shown_as: str, out_dir_final: Path) -> nbformat.NotebookNode:
    """Make the injected-parameters cell show outputs/<slug>, where the run ends up, not the folder it ran in."""
    for cell in nb.cells:
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.source = cell.source.replace(json.dumps(shown_as), json.dumps(str(out_dir_final)))
    return nb


def refresh_cached(cache: Cache, masked: nbformat.NotebookNode, dest: Path, out_dir_final: Path) -> None:
    """Rewrite a cached notebook from its current source (its markdown may have changed) with the cached outputs."""
    _, merged = cache.merge_match_into_notebook(masked)
    text = nbformat.writes(show_final_dir(merged, "<run dir>", out_dir_final))
    if not dest.exists() or dest.read_text(encoding="utf-8") != text:
        atomic_write_text(dest, text)


def with_outputs(masked: nbformat.NotebookNode, executed: Path) -> nbformat.NotebookNode:
    """Copy the outputs of the executed notebook onto the cache's (masked) copy of it."""
    nb = copy.deepcopy(masked)
    ran = [c for c in nbformat.read(executed, as_version=4).cells if c.cell_type == "code"]
    for cell, out in zip([c for c in nb.cells if c.cell_type == "code"], ran, strict=True):
        cell.outputs, cell.execution_count = out.get("outputs", []), out.get("execution_count")
    return nb


def write_cards(outputs: Path, slug: str) -> list[Result]:
    """(Re)write a built project's model card and cost estimate from its last good run; cheap, so always done."""
    from flagship.core.cards import write_cards as cards
    from flagship.core.config import is_built

    if not is_built(slug):
        return []
    start = time.perf_counter()
    try:
        cards(outputs / slug, slug)
    except Exception as err:  # noqa: BLE001 - reported in the summary, the run goes on
        return [Result(slug, "model_card.md", "failed", error=f"{slug}: model card / cost estimate: {type(err).__name__}: {err}")]
    return [Result(slug, "model_card.md", "written", round(time.perf_counter() - start, 2))]


def print_summary(results: list[Result], seconds: float, stream=sys.stdout) -> None:
    """Print one line per notebook and the totals."""
    print(f"\n{'project':<28} {'notebook':<26} {'status':<9} {'seconds':>8} {'peak MB':>8}", file=stream)
    for r in results:
        print(f"{r.project[:28]:<28} {r.notebook[:26]:<26} {r.status:<9} {r.seconds:>8.1f} {r.peak_memory_mb:>8.0f}", file=stream)
    results = [r for r in results if r.notebook.endswith(".ipynb") or r.status == "failed"]  # cards only when they fail
    counts = {s: sum(r.status == s for r in results) for s in ("executed", "cached", "failed", "not run")}
    print(
        f"\n{counts['executed']} executed, {counts['cached']} cached, {counts['failed']} failed, {counts['not run']} not run "
        f"in {seconds:.1f} s",
        file=stream,
    )
    for r in results:
        if r.status == "failed":
            print(f"FAILED {r.error}", file=stream)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("projects", nargs="*", help="project numbers, slugs or module names (default: all)")
    parser.add_argument("--profile", default=os.environ.get("PROFILE", "ci"), choices=("ci", "full"), help="parameter profile")
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1], help="repository root")
    parser.add_argument("--force", action="store_true", help="execute even when the cache says nothing changed")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    os.environ["FLAGSHIP_ROOT"] = str(root)
    from flagship.core.config import PROJECTS, project_slug

    slugs = [project_slug(p) for p in args.projects] if args.projects else [s for s in PROJECTS if (root / "nbs" / s).is_dir()]
    slugs = [s for s in slugs if project_notebooks(root, s)]
    outputs = Path(os.environ.get("FLAGSHIP_OUTPUTS") or root / "outputs")
    (outputs / ".runs").mkdir(parents=True, exist_ok=True)
    cache = Cache(str(outputs / ".jupyter_cache"))
    start, results = time.perf_counter(), []
    with open(outputs / ".runs" / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"another run holds {outputs / '.runs' / '.lock'}; wait for it to finish", file=sys.stderr)
            return 2
        for stale in (outputs / ".runs").glob("*-*"):  # folders of runs that were killed: never swapped in
            shutil.rmtree(stale, ignore_errors=True)
        total = sum(len(project_notebooks(root, s)) for s in slugs)
        with tqdm(total=total, unit="nb", desc="notebooks", file=sys.stderr, dynamic_ncols=True) as bar:
            for slug in slugs:
                project_results = run_project(root, slug, args.profile, cache, bar, force=args.force)
                if all(r.status in ("executed", "cached") for r in project_results):
                    project_results += write_cards(outputs, slug)
                results += project_results
    print_summary(results, time.perf_counter() - start)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 1 if any(r.status == "failed" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
