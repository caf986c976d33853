# Two commands: `make serve` and `make test`. Both create .venv when needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
ARGS ?=

.PHONY: serve test install dev bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip setuptools wheel

$(VENV)/.installed: $(PY) pyproject.toml setup.py
	$(PIP) install -e .
	touch $@

$(VENV)/.installed-dev: $(PY) pyproject.toml setup.py
	$(PIP) install -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
	# rebuild the extension and stubs when sources changed since the install
	$(PY) setup.py -q build_ext --inplace generate_protos

dev: $(VENV)/.installed-dev
	$(PY) setup.py -q build_ext --inplace generate_protos

serve: install
	$(VENV)/bin/roiclass serve $(ARGS)

test: dev
	$(PY) -m pytest $(ARGS)

bench: dev
	$(PY) bench/run_all.py

clean:
	rm -rf build *.egg-info ext/_preprocess.c ext/*.so protos/roiclass/v1/*_pb2*.py* .pytest_cache
