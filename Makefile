# Two commands do everything on a fresh machine:  make run   |   make test
# Both are idempotent: a second call skips every step that is already done.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501

.PHONY: run test lint bench bench-ddp bench-listing bench-memory setup data

run: $(VENV)/.stamp-app data
	$(BIN)/streamlit run streamlit_app.py --server.port $(PORT)

test: lint data $(VENV)/.stamp-ray
	scripts/ensure_system.sh browser
	$(BIN)/python -m pytest -q

lint: $(VENV)/.stamp-dev
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: $(VENV)/.stamp-app data
	$(BIN)/python benchmarks/train_bench.py

# Single process vs 2-process DDP (torchrun, gloo) on this machine's CPUs.
bench-ddp: $(VENV)/.stamp-app data
	$(BIN)/python benchmarks/ddp_bench.py

bench-listing: $(VENV)/.stamp-app
	$(BIN)/python benchmarks/listing_bench.py

# The server's memory over 50 trainings from the Train page (a browser drives it; ~15-30 min).
bench-memory: $(VENV)/.stamp-dev
	scripts/ensure_system.sh browser
	$(BIN)/python benchmarks/server_memory.py

setup: $(VENV)/.stamp-dev data

data:
	@scripts/ensure_system.sh data

$(VENV)/bin/python:
	$(PY) -m venv $(VENV)

$(VENV)/.stamp-app: requirements.txt | $(VENV)/bin/python
	$(BIN)/pip install -q -r requirements.txt
	@touch $@

$(VENV)/.stamp-dev: requirements-dev.txt $(VENV)/.stamp-app
	$(BIN)/pip install -q -r requirements-dev.txt
	@touch $@

# Ray Tune, for sweeps only (the app runs without it); the tests run a small sweep.
$(VENV)/.stamp-ray: requirements-ray.txt $(VENV)/.stamp-app
	$(BIN)/pip install -q -r requirements-ray.txt
	@touch $@
