# The two entry points of the README: `make pipeline` and `make test`. Both install into .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH ?= torch==2.13.0
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export DVC_NO_ANALYTICS ?= 1

.PHONY: install pipeline test test-all bench clean

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PIP) install -q -U pip "setuptools<81" wheel
	$(PIP) install -q "$(TORCH)"
	$(PIP) install -q -c constraints.txt -e ".[dev,whisper,wavlm,dnsmos,dask,s3,fasterwhisper]"
	# openai-whisper without its triton requirement (1 GB, CUDA-only path); its real deps come from the [whisper] extra.
	$(PIP) install -q --no-deps openai-whisper==20250625
	touch $@

install: $(VENV)/.installed

pipeline: install
	$(VENV)/bin/ns3 run

test: install
	$(VENV)/bin/pytest -q -m "not slow or e2e"

test-all: install
	$(VENV)/bin/pytest -q

bench: install
	for b in $(filter-out benchmarks/timing.py,$(wildcard benchmarks/*.py)); do $(PY) $$b; done

clean:
	rm -rf data metrics reports mlflow.db mlartifacts
