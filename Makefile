# The README's two commands: `make demo` (the main job) and `make test` (the whole test suite).
# Both build the virtual environment at .venv on first use, with only Python needed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
# A CPU build of torch; a GPU user installs a CUDA build instead (see README).
TORCH ?= torch==2.13.0

.PHONY: setup demo test test-unit test-integration clean

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install $(TORCH)
	$(PIP) install -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/interp demo $(ARGS)

test: setup
	$(PY) -m pytest

test-unit: setup
	$(PY) -m pytest tests/unit

test-integration: setup
	$(PY) -m pytest tests/integration

clean:
	rm -rf $(VENV) build *.egg-info
