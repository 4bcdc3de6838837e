# Thin on purpose: every target only calls the pipeline CLIs (or pytest, ruff, streamlit, the benchmark scripts).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install demo serve ui test bench lint

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

# The demo shop (Streamlit) over the endpoint of `make serve`; settings from RECSYS_* / .env as everywhere.
UI_PORT    ?= 8501
UI_ADDRESS ?= 127.0.0.1
ui: install
	$(PY) -m streamlit run recsys/ui/app.py --server.headless true --server.address $(UI_ADDRESS) \
		--server.port $(UI_PORT) --browser.gatherUsageStats false

test: install
	$(PY) -m pytest

bench: install
	@set -e; for script in benchmarks/[!_]*.py; do echo "== $$script"; $(PY) $$script; done

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
