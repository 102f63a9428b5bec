"""PolyBench/C 4.2 in the loopweave DSL: inputs, dataset sizes and numpy references.

For every PolyBench kernel `examples/polybench/<name>.lw` there is one `PolyCase` in `POLYBENCH`
(keyed by PolyBench's own name, e.g. "2mm", "floyd-warshall"), built on `Case` from
examples/references/: `make_inputs(sizes, seed)` gives the call arguments in parameter order,
`reference(**args)` the expected outputs and final `inout` arrays (computed in float64; f32 and
integer kernels are rounded / exact as there). `datasets` holds PolyBench's MINI, SMALL, MEDIUM
and LARGE sizes; `sizes` are the ones tests use (MINI and SMALL, except where a case says why).

Inputs are random, not PolyBench's init_array formulas, but keep what the algorithm needs:
symmetric positive definite for cholesky, diagonally dominant for lu/ludcmp/trisolv, a stable
autocorrelation for durbin, full column rank for gramschmidt.

Load it with `loopweave.examples.load_polybench_references()` (it imports examples/references/
relatively, so it must be loaded as part of the examples folder). `cases.py` holds `PolyCase`
and the shared helpers; the other modules follow PolyBench's categories, each with a `CASES`
tuple.
"""

from __future__ import annotations

from ...references.cases import compare, results_of
from . import datamining, linalg_blas, linalg_kernels, linalg_solvers, medley, stencils
from .cases import DATASET_NAMES, POLY_DIR, PolyCase
from .datamining import correlation_inputs
from .linalg_solvers import cholesky_inputs, durbin_inputs, durbin_ref

GROUPS = (datamining, linalg_blas, linalg_kernels, linalg_solvers, medley, stencils)

POLYBENCH: dict[str, PolyCase] = {case.name: case for group in GROUPS for case in group.CASES}

__all__ = [
    "DATASET_NAMES", "GROUPS", "POLYBENCH", "POLY_DIR", "PolyCase", "cholesky_inputs", "compare",
    "correlation_inputs", "durbin_inputs", "durbin_ref", "results_of",
]
