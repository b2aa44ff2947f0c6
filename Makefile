# The README's two commands: `make demo` (the main job) and `make test` (the whole test suite).
# Both build the virtual environment at .venv on first use, with only Python needed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
# A CPU build of torch; a GPU user installs a CUDA build instead (see README).
TORCH ?= torch==2.13.0

.PHONY: setup chromium demo test test-fast test-unit test-integration clean

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip "setuptools>=77"
	$(PIP) install $(TORCH)
	$(PIP) install -e ".[dev,figures,quant]"
	touch $@

# Static figure export (kaleido) and the report's browser test need a Chrome/Chromium. Where none is
# found, install Debian's package (root + apt-get); otherwise say how to get one.
chromium:
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null \
	    || [ -n "$$BROWSER_PATH" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian's chromium (for static figure export and the report's browser test)"; \
	  (apt-get update -q >/dev/null 2>&1 || true); DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; \
	else \
	  echo "no Chrome/Chromium found: install one (e.g. 'sudo apt-get install chromium') or set BROWSER_PATH;"; \
	  echo "without it, PNG/SVG/PDF export fails with a clear error and the browser test is skipped."; \
	fi

setup: $(VENV)/.installed chromium

demo: setup
	$(VENV)/bin/interp demo $(ARGS)

test: setup
	$(PY) -m pytest

test-unit: setup
	$(PY) -m pytest tests/unit

# The fast tier: the unit tests on tiny random models (no default model) without the ones that
# start subprocesses or a browser; under 90 s on 2 cores.
test-fast: setup
	$(PY) -m pytest tests/unit -m "not slow"

test-integration: setup
	$(PY) -m pytest tests/integration

clean:
	rm -rf $(VENV) build *.egg-info
