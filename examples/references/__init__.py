"""Random inputs and numpy reference results for the kernels in `examples/kernels/`.

This package is the numeric ground truth shared by `examples/demo.py`, the tests, the tuner and
the benchmarks. `examples/` is not on sys.path: `examples/demo.py` imports it as `references`
(its own folder), everything else through `loopweave.examples.load_references()`, which loads it
by path once per process.

For every kernel `examples/kernels/<name>.lw` there is one `Case` in `KERNELS`:

* `case.make_inputs(sizes, seed)` returns the call arguments as a dict in parameter order
  (numpy arrays, C-contiguous, of the declared dtype; numpy scalars of the declared dtype);
* `case.reference(**args)` returns a dict of the expected outputs (in the declared output order)
  and the expected final values of the `inout` arrays, each with the kernel's declared dtype.
  It never modifies its arguments.

References compute in float64 (also for f32/f16 kernels) and round to the declared dtype at the
end; integer references are exact and wrap like numpy. In-place kernels whose answer depends on
the iteration order (trmm, lu, seidel_2d) reproduce the order the DSL defines: statement
instances in program order, each statement's iterations in lexicographic order of its
variables. `tests/test_references.py` checks every reference against a literal loop transcription
of its kernel (`tests/naive_loops.py`) on small sizes.

Layout: `cases.py` holds the machinery (`Case`, `TOLERANCES`, `compare()`, input helpers); each
other module one group of kernels, their inputs, references and sizes (a `CASES` tuple).
"""

from __future__ import annotations

from . import (
    convolutions,
    gathers,
    layers,
    linalg,
    lut,
    microscaling,
    quantized,
    selection,
    stencils,
)
from .cases import (
    KERNEL_DIR,
    TOLERANCES,
    Args,
    Case,
    Sizes,
    compare,
    kernel_files,
    make_case,
    results_of,
    tolerance,
)
from .layers import gelu_ref, softmax_ref
from .linalg import lu_ref, trmm_ref
from .quantized import INT4_GROUP, dequantize_int4_grouped, qmm_requant_ref, unpack_int4
from .stencils import seidel_2d_ref

GROUPS = (linalg, stencils, layers, convolutions, quantized, gathers, microscaling, selection,
          lut)

KERNELS: dict[str, Case] = {case.name: case for group in GROUPS for case in group.CASES}

__all__ = [
    "GROUPS", "INT4_GROUP", "KERNELS", "KERNEL_DIR", "TOLERANCES", "Args", "Case", "Sizes",
    "compare", "dequantize_int4_grouped", "gelu_ref", "kernel_files", "lu_ref", "make_case",
    "qmm_requant_ref", "results_of", "seidel_2d_ref", "softmax_ref", "tolerance", "trmm_ref",
    "unpack_int4",
]
