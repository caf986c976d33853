# Two commands: `make serve` and `make test`. Both create .venv when needed
# and (re)install the package when its build inputs changed: the Cython
# kernel and the stubs are built by `pip install -e .` (setup.py).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
ARGS ?=
BUILD_INPUTS := pyproject.toml setup.py $(wildcard ext/*.pyx ext/*.pxd ext/*.h protos/roiclass/*/*.proto)

.PHONY: serve test install dev bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

$(VENV)/.installed: $(PY) $(BUILD_INPUTS)
	$(PIP) install -e .
	touch $@

# The extras (geo, video, http) install with the dev tools, so their tests always run.
# nudenet (tests/integration/test_detector_nudenet.py: a real YOLOv8 ONNX detector from
# PyPI, and its own postprocessing as the reference) without its dependencies: it
# names the CPU onnxruntime wheel, which would replace onnxruntime-gpu.
NUDENET_VERSION := 3.4.2

$(VENV)/.installed-dev: $(PY) $(BUILD_INPUTS)
	$(PIP) install -e '.[dev,geo,video,http]'
	$(PIP) install --no-deps 'nudenet==$(NUDENET_VERSION)'
	touch $@ $(VENV)/.installed

# checkov (tests/deploy/test_kubernetes.py scans deploy/kubernetes) in a venv of
# its own: it brings ~80 packages and pins old ones (packaging 23, networkx 2.6),
# none of which the project needs. Pinned: a new release brings new checks.
CHECKOV_VERSION := 3.3.30
CHECKOV := .venv-tools/checkov-$(CHECKOV_VERSION)/bin/checkov

$(CHECKOV):
	$(PYTHON) -m venv .venv-tools/checkov-$(CHECKOV_VERSION)
	.venv-tools/checkov-$(CHECKOV_VERSION)/bin/python -m pip install -q "checkov==$(CHECKOV_VERSION)"

# tritonclient (tests/integration/oip/ run its scripts against the live server) in a
# venv of its own, as a user's environment would be: it pins protobuf < 7, roiclass
# needs 7. Its current pure-Python release, pinned.
TRITONCLIENT_VERSION := 2.73.0
TRITONCLIENT := .venv-tools/tritonclient-$(TRITONCLIENT_VERSION)

$(TRITONCLIENT)/.installed:
	$(PYTHON) -m venv $(TRITONCLIENT)
	$(TRITONCLIENT)/bin/python -m pip install -q "tritonclient[grpc,http]==$(TRITONCLIENT_VERSION)" numpy
	touch $@

# KServe's Python client (InferenceGRPCClient), likewise: it clashes with tritonclient in one process.
KSERVE_VERSION := 0.21.0
KSERVE := .venv-tools/kserve-$(KSERVE_VERSION)

$(KSERVE)/.installed:
	$(PYTHON) -m venv $(KSERVE)
	$(KSERVE)/bin/python -m pip install -q "kserve==$(KSERVE_VERSION)"
	touch $@

install: $(VENV)/.installed

dev: $(VENV)/.installed-dev

serve: install
	$(VENV)/bin/roiclass serve $(ARGS)

# The second run: the ext suite against the x86-64-v2 kernel build, which
# CPUs without AVX2 get (the first run uses the v3 build where the CPU has it).
test: dev $(CHECKOV) $(TRITONCLIENT)/.installed $(KSERVE)/.installed
	ROICLASS_CHECKOV=$(CHECKOV) ROICLASS_TRITONCLIENT=$(TRITONCLIENT) ROICLASS_KSERVE=$(KSERVE) $(PY) -m pytest $(ARGS)
	ROICLASS_EXT_SO="$$($(PY) -c 'import roiclass.ext._preprocess as m; print(m.__file__)')" \
		$(PY) -m pytest -q -p tests.unit.ext.asan_plugin tests/unit/ext

bench: dev
	$(PY) bench/run_all.py $(ARGS)

clean:
	rm -rf build *.egg-info ext/_preprocess.c ext/*.so protos/roiclass/*/*_pb2*.py* .pytest_cache
