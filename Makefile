# The two set-up commands of the README:
#   make demo   -- set up everything and run the offline demo
#   make test   -- set up everything the tests need and run the whole suite
# Both are safe to re-run: set-up steps are skipped when already done.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench setup browser clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# torch and torchvision first, pinned to the releases that lie on this machine's disk,
# so that the project's looser range does not pull a multi-GB build from the registry.
$(STAMP): pyproject.toml | $(PY)
	$(PIP) install --quiet "torch==2.14.1" "torchvision==0.29.1"
	$(PIP) install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

# Debian's Chromium for the browser tests (Playwright's own browser download is not used).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

demo: setup
	$(VENV)/bin/crowdkit demo demo-study

test: setup browser
	$(VENV)/bin/ruff check crowdkit stimgen tests benchmarks
	$(VENV)/bin/mypy
	$(PY) -m pytest -q --durations=15

bench: setup
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b; done

clean:
	rm -rf $(VENV) demo-study .pytest_cache .mypy_cache
