# The README's two commands: `make demo` (the main job) and `make test` (the unit and integration tiers,
# docs build included); `make test-e2e` runs the end-to-end tier (notebooks, quick demo); CI runs both.
# Both build the virtual environment at .venv on first use, with only Python needed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
# A CPU build of torch; a GPU user installs a CUDA build instead (see README).
TORCH ?= torch==2.13.0

# The tested environment: every package at the version in requirements.lock (pip constraints; torch
# comes from TORCH above). `make lock` regenerates the lock; `make test-compat` tests the newest
# releases inside the ranges pyproject.toml declares (interp.versions.SUPPORTED).
LOCK := requirements.lock
# The transformers the lock is made with: the lowest tested release (the compat tier tests the newest).
LOCK_PINS ?= transformers==5.23.0
COMPAT := .venv-compat

.PHONY: setup chromium demo test test-e2e test-fast test-unit test-integration test-compat lock clean docs

$(VENV)/.installed: pyproject.toml Makefile $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip "setuptools>=77"
	$(PIP) install $(TORCH)
	$(PY) -m pip freeze | grep -i '^torch==' > $(VENV)/torch.txt  # nothing below may replace the torch just installed
	$(PIP) install -c $(LOCK) -c $(VENV)/torch.txt -e ".[dev,figures,quant,docs]"
	$(PY) -c "import interp"  # refuses an environment outside the tested ranges
	touch $@

# Regenerate requirements.lock: a fresh environment in a temporary folder, the newest releases in the
# declared ranges except LOCK_PINS, frozen (torch and interp itself left out).
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip --disable-pip-version-check -q install --upgrade pip "setuptools>=77"
	.venv-lock/bin/python -m pip --disable-pip-version-check -q install $(TORCH)
	.venv-lock/bin/python -m pip freeze | grep -i '^torch==' > .venv-lock/torch.txt
	.venv-lock/bin/python -m pip --disable-pip-version-check -q install -c .venv-lock/torch.txt -e ".[dev,figures,quant,docs]" $(LOCK_PINS)
	( echo "# The tested environment (pip constraints). Regenerate: make lock. torch comes from the Makefile's TORCH."; \
	  .venv-lock/bin/python -m pip freeze --exclude-editable | grep -v -i -E '^(torch|interp)==' ) > $(LOCK).tmp
	mv $(LOCK).tmp $(LOCK) && rm -rf .venv-lock

# The compatibility tier: a second environment with the newest transformers / TransformerLens / peft
# inside the declared ranges (everything else as locked), running the unit tier and generation parity.
$(COMPAT)/.installed: pyproject.toml Makefile $(LOCK)
	$(PYTHON) -m venv $(COMPAT)
	$(COMPAT)/bin/python -m pip --disable-pip-version-check -q install --upgrade pip "setuptools>=77"
	$(COMPAT)/bin/python -m pip --disable-pip-version-check -q install $(TORCH)
	grep -v -i -E '^(transformers|transformer-lens|transformer_lens|peft)==' $(LOCK) > $(COMPAT)/constraints.txt
	$(COMPAT)/bin/python -m pip freeze | grep -i '^torch==' >> $(COMPAT)/constraints.txt
	$(COMPAT)/bin/python -m pip --disable-pip-version-check -q install -c $(COMPAT)/constraints.txt -e ".[dev,figures,quant,docs]"
	$(COMPAT)/bin/python -m pip --disable-pip-version-check -q install --upgrade -c $(COMPAT)/constraints.txt \
	  $$($(COMPAT)/bin/python -c 'from interp.versions import SUPPORTED as S; print(" ".join(f"{n}>={a},<{b}" for n, (a, b) in S.items()))')
	touch $@

test-compat: $(COMPAT)/.installed
	$(COMPAT)/bin/python -c "from interp.versions import versions; print('compat tier:', versions())"
	$(COMPAT)/bin/python -m pytest tests/unit -m "not slow" -p no:cacheprovider
	$(COMPAT)/bin/python -m pytest tests/integration/test_generation_parity.py -p no:cacheprovider

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

# Test workers (pytest-xdist): one per core up to 4 (each integration worker loads the real pair, each
# e2e worker starts notebook kernels: about 3 GB apiece), each with cores/workers torch threads
# (tests/conftest.py): on 2 cores the suite's generation loops are single-threaded Python, so two
# processes finish sooner than one with two threads. TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= $(shell $(PYTHON) -c "import os; n = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count(); print(max(1, min(4, n or 1)))" 2>/dev/null || echo 2)

# The unit and integration tiers (pyproject's testpaths), the documentation build included.
test: setup
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadscope

# The end-to-end tier: the seven notebooks executed top to bottom (the copies `make docs` renders),
# `interp demo --quick` and `interp unmask --json` on the real default pair; tests one at a time
# across the workers.
test-e2e: setup
	$(PY) -m pytest tests/e2e -n $(TEST_WORKERS) --dist load

test-unit: setup
	$(PY) -m pytest tests/unit

# The fast tier: the unit tests on tiny random models (no default model) without the ones that
# start subprocesses or a browser; under 90 s on 2 cores.
test-fast: setup
	$(PY) -m pytest tests/unit -m "not slow"

test-integration: setup
	$(PY) -m pytest tests/integration

clean:
	rm -rf $(VENV) $(COMPAT) build site *.egg-info

# The documentation site, offline, into site/ (open site/index.html): MkDocs + Material, the API
# reference from the docstrings, the notebooks as `make test-e2e` last executed them, every number
# rendered from the results files. --strict: any warning (a broken link, an unknown results key) fails.
docs: setup
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict
