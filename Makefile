# Thin on purpose: every target only calls the pipeline CLIs (or pytest / ruff).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install demo serve test bench lint

# Create the virtual environment with the machine's python3 and install the pinned stack, only when
# pyproject.toml or the lock file changed since the last install.
$(STAMP): pyproject.toml requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --constraint requirements.lock --editable ".[hopsworks,ui,dev]"
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(PY) -m feature_pipeline generate --preset small
	$(PY) -m feature_pipeline backfill --dataset synthetic:small
	$(PY) -m training_pipeline all --dataset synthetic:small --epochs 2 --objective Logloss --iterations 300
	$(PY) -m inference_pipeline demo

serve: install
	$(PY) -m inference_pipeline serve

test: install
	$(PY) -m pytest

bench: install
	@set -e; for script in benchmarks/[!_]*.py; do echo "== $$script"; $(PY) $$script; done

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
