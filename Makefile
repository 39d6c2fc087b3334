# flagship: `make site` runs the main job, `make test` passes the tests. `make help` lists every target.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON_BOOT ?= python3.11
VENV        ?= .venv
BIN         := $(VENV)/bin
PY          := $(BIN)/python
PROFILE     ?= ci
P           ?=
NBS         ?= nbs
HOST        ?= 127.0.0.1
PORT        ?= 8080
PUBLISH     ?=
export MLFLOW_DISABLE_TELEMETRY := true
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PYDEVD_DISABLE_FILE_VALIDATION := 1
export OMP_NUM_THREADS ?= 1
export PATH := $(abspath $(BIN)):$(PATH)

STAMP := $(VENV)/.installed

.PHONY: help install system-deps export run articles pages render site test lint check-sync pytest test-notebooks \
        lab mlflow serve bench bench-spark drift reforecast clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

# ---------------------------------------------------------------- install
install: $(STAMP) ## .venv with torch 2.13.0 (CPU) first, then the pinned lock, the package (editable) and KaTeX

$(STAMP): constraints.txt settings.ini setup.py tools/node/package-lock.json
	@echo "==> [1/5] system packages (chromium for page tests, prometheus for promtool)"
	@$(MAKE) --no-print-directory system-deps
	@echo "==> [2/5] virtualenv $(VENV)"
	@test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@echo "==> [3/5] torch==2.13.0 (CPU build) before anything that depends on it"
	@# on a machine without a local CPU wheel set PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu (the workflows do)
	@$(PY) -m pip install --progress-bar on torch==2.13.0
	@echo "==> [4/5] pinned dependencies (constraints.txt) and flagship in editable mode"
	@$(PY) -m pip install --progress-bar on -c constraints.txt -e ".[all,dev]"
	@$(PY) -m pip check
	@echo "==> [5/5] site assets (KaTeX from npm, served locally)"
	@npm ci --prefix tools/node --no-audit --no-fund --loglevel=error
	@touch $@

system-deps: ## Debian packages the tests use (skipped when present or when not root)
	@missing=""; command -v chromium >/dev/null || missing="$$missing chromium"; \
	 command -v promtool >/dev/null || missing="$$missing prometheus"; \
	 command -v npm >/dev/null || missing="$$missing npm"; \
	 if [ -z "$$missing" ]; then echo "    all present"; \
	 elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	   echo "    installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	 else echo "    missing:$$missing (install them with your package manager; page and Prometheus tests need them)"; fi

# ---------------------------------------------------------------- the main job
export: $(STAMP) ## nbs/ -> flagship/ (nbdev_export)
	@$(BIN)/nbdev_export

run: $(STAMP) ## execute notebooks: make run P=01 PROFILE=full (default: every project, ci profile)
	@$(PY) tools/run_notebooks.py $(P) --profile $(PROFILE)

articles: $(STAMP) ## article drafts in posts/ from the run artifacts
	@if [ -f tools/generate_article.py ]; then $(PY) tools/generate_article.py --all; else echo "no article generator yet"; fi

pages: $(STAMP) ## generated site fragments (home table, benchmarks, API reference)
	@$(PY) tools/site_pages.py
	@$(BIN)/smalldocs api build --dir . >/dev/null

render: pages ## render _quarto.yml into _site/ (Quarto when installed, else smalldocs); PUBLISH=1 leaves drafts out
	@$(PY) tools/site_render.py $(if $(PUBLISH),--publish,)
	@echo "site: $(abspath _site/index.html)"

site: install export run articles render ## install, export, run every project, write articles, render the site

# ---------------------------------------------------------------- tests
test: install lint check-sync pytest test-notebooks ## lint + export/clean check + pytest + every notebook (ci profile)

lint: $(STAMP) ## ruff and black on code; black-style formatting, isort and ruff on notebooks
	@$(BIN)/ruff check flagship tools tests
	@$(BIN)/black --check --quiet tools tests
	@# notebooks get black's style from ruff's formatter: black rewrites `#| include: false` to `# | include: false`,
	@# which Quarto and smalldocs no longer read as a cell option; this also fails on any `# |` left behind
	@$(BIN)/ruff format --check --quiet $(NBS)
	@if grep -rlE '"\s*# \| ' $(NBS) --include='*.ipynb'; then echo 'these notebooks write cell options as `# |`: use `#|`'; exit 1; fi
	@$(BIN)/nbqa isort $(NBS) --check-only --quiet
	@$(BIN)/nbqa ruff $(NBS) --quiet

check-sync: $(STAMP) ## nbdev_export leaves flagship/ unchanged; notebooks carry no outputs
	@$(PY) tools/check_sync.py

pytest: $(STAMP) ## unit, API, runner and site tests
	@$(BIN)/pytest -q

test-notebooks: $(STAMP) ## execute every notebook in $(NBS) with its defaults (the ci profile), outputs to a temp folder
	@out=$$(mktemp -d); trap 'rm -rf "$$out"' EXIT; \
	 FLAGSHIP_OUTPUTS="$$out" $(BIN)/pytest -q -p no:cacheprovider --nbmake --nbmake-timeout=900 $(NBS) -o testpaths= -o addopts=

# ---------------------------------------------------------------- working with it
lab: $(STAMP) ## JupyterLab on the repository
	@$(BIN)/jupyter lab --ip=$(HOST) --no-browser --notebook-dir=.

mlflow: $(STAMP) ## MLflow UI on 127.0.0.1:5000 over the local store in outputs/mlflow
	@mkdir -p outputs/mlflow
	@$(BIN)/mlflow ui --host 127.0.0.1 --port 5000 --backend-store-uri "$${MLFLOW_TRACKING_URI:-sqlite:///$(abspath outputs)/mlflow/mlflow.db}"

serve: $(STAMP) ## the API with every built project (uvicorn on $(HOST):$(PORT))
	@$(BIN)/flagship serve --host $(HOST) --port $(PORT)

bench: $(STAMP) ## benchmarks; results go to outputs/benchmarks/ and the Benchmarks page
	@for b in tools/bench_*.py; do [ -f "$$b" ] || continue; echo "==> $$b"; $(PY) "$$b"; done

bench-spark: $(STAMP) ## the Spark feature job vs DuckDB at 1M and 10M rows (slow: minutes)
	@bash tools/benchmark_spark.sh

drift: $(STAMP) ## drift report against new data: make drift P=01 [CURRENT=new.csv] [DRIFT_MAX=0.3 fails above it]
	@$(BIN)/flagship drift $(P) $(if $(CURRENT),--current $(CURRENT),) $(if $(DRIFT_MAX),--fail-above $(DRIFT_MAX),)

reforecast: $(STAMP) ## re-forecast project 02 once (Prefect flow, no server): make reforecast [CSV=new_abs.csv]
	@$(BIN)/flagship reforecast $(if $(CSV),--csv $(CSV),)

clean: ## remove the site, caches and run outputs (keeps .venv)
	rm -rf _site _proc .quarto api _symbols.json .pytest_cache .ruff_cache
	find outputs -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +
