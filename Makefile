# dsa110-contimg: `make demo` sets everything up and runs the demo; `make test` runs the tests.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Station table: the one shipped in the package unless `make demo ANTPOS=/path/to.csv` (or PIPELINE_ANTPOS_CSV).
ANTPOS ?=

.PHONY: setup demo test test-slow bench clean

$(STAMP): pyproject.toml scripts/setup.sh
	PYTHON=$(PYTHON) bash scripts/setup.sh
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(if $(ANTPOS),PIPELINE_ANTPOS_CSV=$(ANTPOS) )$(VENV)/bin/contimg demo

test: $(STAMP)
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

clean:
	rm -rf state demo_output .pytest_cache
