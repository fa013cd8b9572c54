# Two commands do everything: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
# A pinned torch installs quickly on CPU-only machines that ship that wheel; on a GPU
# machine PyPI's wheel for the same version is the CUDA build. Override with TORCH=torch.
TORCH ?= torch==2.13.0
BIN = $(VENV)/bin

PIP = $(BIN)/python -m pip install -q --disable-pip-version-check
# The tests that compare two code paths' arithmetic run again with torch and oneDNN held to
# AVX2, so that a machine with AVX-512 also checks the narrower CPUs' kernels.
AVX2 = ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2

.PHONY: setup setup-dev demo test lint format clean

# The demo needs wmkit and its runtime only; the test tools, Ray, the trackers and VizDoom
# come with the dev extra, which `make test` adds to the same venv.
setup: $(VENV)/.installed

setup-dev: $(VENV)/.installed-dev

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) "$(TORCH)"
	$(PIP) -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) -e ".[dev]"
	touch $@

demo: setup
	$(BIN)/wmkit run recipes/carracing_quick.yaml

test: setup-dev
	$(AVX2) $(BIN)/python -m pytest -q -p no:cacheprovider -m isa -n 2 --dist loadfile
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

lint: setup-dev
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: setup-dev
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

clean:
	rm -rf $(VENV) runs .pytest_cache
