# Two entry points for a fresh clone: `make demo` and `make test`.
# The environment lives in .venv, built with Python >= 3.12 (pyenv's 3.12 via .python-version).
PYTHON ?= $(shell command -v python3.12 2>/dev/null || command -v python3 2>/dev/null)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test bench clean

$(BIN)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else "metapool needs Python >= 3.12; found " + sys.version.split()[0] + " at $(PYTHON). Set PYTHON=/path/to/python3.12")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	@touch $@

demo: $(BIN)/.installed
	$(BIN)/metapool demo

test: $(BIN)/.installed
	@bash .ci/install_chromium.sh
	$(BIN)/python .ci/check_layers.py
	$(BIN)/python -m pytest -q

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/analytic_speed.py

clean:
	rm -rf $(VENV) build dist *.egg-info
