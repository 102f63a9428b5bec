# loopweave developer entry points. `make test` is what CI runs (through .ci/run).

PYTHON ?= python3
VENV   := .venv
VPY    := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: all venv demo test lint imports toolchains bench fuzz clean distclean

all: test

# The venv is (re)installed only when pyproject.toml is newer than the stamp.
venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -e '.[test]'
	touch $@

demo: venv
	$(VPY) examples/demo.py

test: venv toolchains imports
	$(VPY) -m pytest -q -n auto --durations=25

lint: venv imports
	$(VENV)/bin/ruff check .

# The layering contracts of pyproject.toml ([tool.importlinter]). import-linter reads the
# package from disk, and loopweave's subpackages live in top-level folders (package-dir), so
# the package is first laid out as installed, with symbolic links, under build/.
IMPORT_TREE := build/import-graph
imports: venv
	@rm -rf $(IMPORT_TREE) && mkdir -p $(IMPORT_TREE)/loopweave
	@ln -s $(CURDIR)/compiler/*.py $(IMPORT_TREE)/loopweave/
	@for p in frontend ir passes backends autotune; do \
		ln -s $(CURDIR)/$$p $(IMPORT_TREE)/loopweave/$$p; done
	PYTHONPATH=$(IMPORT_TREE) $(VENV)/bin/lint-imports --no-cache

# Cross toolchains and emulators for the Arm backends; never fails the build (see the script).
toolchains:
	@bash .ci/install-toolchains

# Tools of the benchmarks' optional peers (clang-19 with LLVM Polly); never fails (see the
# script). Not a prerequisite of `test`: no test needs them.
.PHONY: bench-tools
bench-tools:
	@bash .ci/install-bench-tools

# Benchmarks (benchmarks/README.md): `make bench`, or e.g. `make bench BENCH_ARGS="--quick"`.
bench: venv bench-tools
	$(VPY) -m benchmarks $(BENCH_ARGS)

# Differential fuzzing of the backends (docs/fuzzing.md): N random kernels on every target
# against program order, failures shrunk, e.g. `make fuzz N=2000 FUZZ_ARGS="--seed 5000"`.
N ?= 1000
fuzz: venv
	$(VPY) -m tests.fuzz.differential --n $(N) $(FUZZ_ARGS)

# The GPU check (benchmarks/README.md): run on a machine with an NVIDIA GPU; it makes its own
# environment there (not `venv`: no network, and the CUDA torch must stay). Without a GPU it
# fails at once with "no GPU: ...". E.g. `make gpu-check GPU_CHECK_ARGS="--skip tests"`.
.PHONY: gpu-check
gpu-check:
	@bash .ci/gpu-check $(GPU_CHECK_ARGS)

clean:
	rm -rf build dist .pytest_cache .ruff_cache .hypothesis benchmarks/out
	find . -path ./$(VENV) -prune -o \( -name __pycache__ -o -name '*.egg-info' \) \
		-type d -print -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
