# loopweave developer entry points. `make test` is what CI runs (through .ci/run).

PYTHON ?= python3
VENV   := .venv
VPY    := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: all venv demo test lint toolchains bench clean distclean

all: test

# The venv is (re)installed only when pyproject.toml is newer than the stamp.
venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -e '.[test]'
	touch $@

demo: venv
	$(VPY) examples/demo.py

test: venv toolchains
	$(VPY) -m pytest -q

lint: venv
	$(VENV)/bin/ruff check .

# Cross toolchains and emulators for the Arm backends; never fails the build (see the script).
toolchains:
	@bash .ci/install-toolchains

# Benchmarks (benchmarks/README.md): `make bench`, or e.g. `make bench BENCH_ARGS="--quick"`.
bench: venv
	$(VPY) -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf build dist .pytest_cache .ruff_cache .hypothesis benchmarks/out
	find . -path ./$(VENV) -prune -o \( -name __pycache__ -o -name '*.egg-info' \) \
		-type d -print -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
