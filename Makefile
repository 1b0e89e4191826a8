# Two entry points (see README): `make demo` and `make test`.
# Both create ./.venv on first use and reuse it afterwards; the environment is
# re-installed only when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install viz mlflow-ui validation clean-outputs roi-example

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	$(BIN)/python -m vlm_brain.encoding.warm_up  # the engine's compiled kernels into numba's cache (~20 s, once)
	touch $(STAMP)

install: $(STAMP)

## Generate the embedded demo dataset if needed and run every pipeline on it.
demo: $(STAMP)
	$(BIN)/kedro run
	@echo "Report: data/08_reporting/report.html (findings: data/08_reporting/findings.json)"

## Data beyond HCP: write the generated ROI example (once) and run the study on it (conf/roi).
roi-example: $(STAMP)
	test -d data/01_raw/roi || $(BIN)/python -m vlm_brain.simulate.roi_example data/01_raw/roi
	$(BIN)/kedro run --env roi
	@echo "Report: data/08_reporting/report.html"

## Method validation on simulated BOLD with a planted truth (~3 minutes on the demo).
validation: $(STAMP)
	$(BIN)/kedro run --pipelines validation

## Run the whole test suite.
test: $(STAMP)
	$(BIN)/python -m pytest

## Browse the pipeline DAG in kedro-viz (http://127.0.0.1:4141).
viz: $(STAMP)
	$(BIN)/kedro viz run --no-browser

## Browse tracked runs (http://127.0.0.1:5000).
mlflow-ui: $(STAMP)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db
