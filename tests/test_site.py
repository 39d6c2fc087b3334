"""The site: _quarto.yml rendered by smalldocs from a run's outputs, checked clean, and looked at in a real browser.

The fixture is a copy of the repository's site sources with one executed project page (a figure, a table and some
maths) and every project's overview, as a run leaves them. Chromium (Debian's, driven by Playwright) loads the pages
from a real HTTP server on 127.0.0.1, with no internet: KaTeX must come from the site itself.
"""

from __future__ import annotations

import base64
import functools
import http.server
import io
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from flagship.core.config import PROJECTS

REPO = Path(__file__).resolve().parents[1]
SLUG = "01-tabular-endtoend"
pytestmark = pytest.mark.slow


def executed_page() -> nbformat.NotebookNode:
    """An executed notebook as papermill leaves it: maths in prose, a PNG figure and an HTML table."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1, 2], [0, 1, 4])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    table = pd.DataFrame({"model": ["rf", "lightgbm"], "roc_auc": [0.9, 0.93]})
    fig_cell = new_code_cell(
        "plot()",
        execution_count=1,
        outputs=[new_output("display_data", data={"image/png": base64.b64encode(buf.getvalue()).decode()})],
    )
    tab_cell = new_code_cell(
        "table",
        execution_count=2,
        outputs=[new_output("execute_result", execution_count=2, data={"text/html": table.to_html(), "text/plain": str(table)})],
    )
    nb = new_notebook(
        cells=[
            new_markdown_cell(
                "# Data\n\n> The data page.\n\nThe score is $\\mathrm{AUC} = \\int_0^1 \\mathrm{TPR}\\, d\\,\\mathrm{FPR}$."
            ),
            fig_cell,
            tab_cell,
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "python3", "language": "python"}},
    )
    for i, c in enumerate(nb.cells):
        c["id"] = f"c{i}"
    return nb


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """Render the site from a copy of the sources and a fixture run; return the project folder."""
    root = tmp_path_factory.mktemp("site")
    for name in ("_quarto.yml", "_quarto-preview.yml", "index.qmd", "settings.ini"):
        shutil.copy(REPO / name, root / name)
    (root / "posts").mkdir()
    shutil.copy(REPO / "posts" / "index.qmd", root / "posts" / "index.qmd")  # the listing, without local drafts
    (root / "docs").mkdir()
    shutil.copy(REPO / "docs" / "benchmarks.qmd", root / "docs" / "benchmarks.qmd")
    (root / "tools" / "node").mkdir(parents=True)
    for script in ("site_pages.py", "site_postrender.py", "site_render.py"):
        shutil.copy(REPO / "tools" / script, root / "tools" / script)
    (root / "tools" / "node" / "node_modules").symlink_to(REPO / "tools" / "node" / "node_modules")
    for slug in PROJECTS:
        (root / "outputs" / slug).mkdir(parents=True)
        shutil.copy(REPO / "nbs" / slug / "00_overview.ipynb", root / "outputs" / slug / "00_overview.ipynb")
    nbformat.write(executed_page(), root / "outputs" / SLUG / "01_data.ipynb")
    env = {**os.environ, "FLAGSHIP_ROOT": str(root), "FLAGSHIP_OUTPUTS": str(root / "outputs")}
    smalldocs = str(Path(sys.executable).parent / "smalldocs")
    subprocess.run([smalldocs, "api", "build", "--dir", str(root)], env=env, check=True, capture_output=True)
    subprocess.run([sys.executable, str(root / "tools" / "site_pages.py")], env=env, check=True, capture_output=True)
    proc = subprocess.run(
        [sys.executable, str(root / "tools" / "site_render.py"), "--strict"], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return root


def test_smalldocs_check_is_clean(site: Path):
    env = {**os.environ, "FLAGSHIP_ROOT": str(site), "FLAGSHIP_OUTPUTS": str(site / "outputs")}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "smalldocs"), "check", str(site)], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_home_has_navbar_and_every_project_section(site: Path):
    home = (site / "_site" / "index.html").read_text()
    for text in ("Projects", "API", "Articles", "Benchmarks"):
        assert f">{text}<" in home, text
    for slug in PROJECTS:
        assert f"outputs/{slug}/00_overview.html" in home, slug
    assert (site / "_site" / "api" / "index.html").exists() and (site / "_site" / "docs" / "benchmarks.html").exists()
    assert (site / "_site" / "posts" / "index.html").exists()


def test_unbuilt_projects_say_so(site: Path):
    page = (site / "_site" / "outputs" / "04-predictive-maintenance" / "00_overview.html").read_text()
    assert "Not built yet" in page


def test_no_page_loads_anything_from_a_cdn(site: Path):
    for page in (site / "_site").rglob("*.html"):
        assert "cdn.jsdelivr.net" not in page.read_text(), page


@pytest.fixture(scope="module")
def server(site: Path):
    """A real HTTP server on 127.0.0.1 serving the rendered site."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site / "_site"))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_browser_shows_figure_table_and_maths(server: str, site: Path, tmp_path: Path):
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is missing: `make install` installs it (make system-deps)"
    from playwright.sync_api import sync_playwright

    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=args)
        page = browser.new_page(viewport={"width": 1200, "height": 1400})
        page.goto(f"{server}/outputs/{SLUG}/01_data.html", wait_until="networkidle")
        figure = page.locator("main img").first
        assert figure.is_visible() and page.evaluate("el => el.naturalWidth", figure.element_handle()) > 100
        assert page.locator("main table").first.is_visible()
        assert page.locator("main table").first.inner_text().count("lightgbm") == 1
        page.wait_for_selector(".katex", timeout=5000)  # KaTeX rendered the maths from the site's own copy
        shot = tmp_path / "page.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert shot.stat().st_size > 20_000
    shutil.copy(shot, site / "screenshot.png")


def test_benchmarks_page_shows_figures_as_measured(tmp_path):
    """A benchmark's figures appear with the precision its script recorded: 17.5 s, not 17.5000."""
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location("site_pages", REPO / "tools" / "site_pages.py")
    site_pages = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(site_pages)
    (tmp_path / "benchmarks").mkdir()
    doc = {"title": "Feature job", "columns": ["rows", "spark_s", "ratio"], "rows": [[10_000_000, 96.3, 3.7]]}
    (tmp_path / "benchmarks" / "spark.json").write_text(json.dumps(doc | {"command": "python x.py", "git_sha": "abc"}))
    page = site_pages.benchmarks(tmp_path)
    assert "| 10,000,000 | 96.3 | 3.7 |" in page and "96.3000" not in page
