"""The OpenMP schedule of a parallel loop: cyclic (`schedule(static, 1)`) where its iterations
do different amounts of work (a loop inside starts or ends at its variable: a triangle), the
default (static halves) elsewhere, where a thread's rows stay in its cache from one time step
to the next."""

from __future__ import annotations

import numpy as np

import loopweave
from loopweave.backends.c_family import CYCLIC_SCHEDULE, uneven_iterations
from loopweave.examples import load_polybench_references
from loopweave.ir.codegen import loop_ast
from loopweave.ir.loops import For, Store, walk
from loopweave.passes.default import default_schedule
from loopweave.passes.normalize import normalize
from loopweave.passes.schedule import Schedule
from loopweave.pipeline import front_end

poly = load_polybench_references()

TRIANGLE = """kernel gram(X: f64[N, M]) -> G: f64[M, M] {
    G[i, j] += X[k, i] * X[k, j]      where j in i:M
}"""


def parallel_loops(kernel_ir):
    return [n for n in walk(loop_ast(kernel_ir)) if isinstance(n, For) and n.kind == "parallel"]


def test_a_triangle_is_uneven_and_a_square_is_not():
    tri = normalize(front_end(TRIANGLE))
    loops = parallel_loops(default_schedule(tri).apply(tri))
    # G = 0, then G += (j >= i) in row tiles: uneven; the copy of X (read as both operands,
    # passes/hoist_transpose.py) and its packing: rectangles, even
    writes = [{n.tensor for n in walk(p) if isinstance(n, Store)} for p in loops]
    assert [uneven_iterations(p) for p in loops] == ["G" in w for w in writes]
    assert sum("G" in w for w in writes) == 2 and len(loops) == 4
    heat = front_end(poly.POLYBENCH["heat-3d"].source())
    planes = parallel_loops(default_schedule(heat).apply(heat))
    assert planes and not any(uneven_iterations(p) for p in planes)


def test_a_triangle_runs_cyclic_and_computes_the_reference():
    kernel = loopweave.compile(TRIANGLE, tuning_db=False)
    assert f"#pragma omp parallel for {CYCLIC_SCHEDULE}" in kernel.source
    x = np.random.default_rng(0).standard_normal((37, 29))
    got = kernel(x)
    upper = np.triu(np.ones((29, 29), dtype=bool))
    np.testing.assert_allclose(got[upper], (x.T @ x)[upper], rtol=1e-12, atol=1e-12)


def test_time_tiles_keep_the_default_schedule():
    """isl's wavefront tiles: both bounds of a tile's loops move with the tile."""
    kernel = loopweave.compile(poly.POLYBENCH["jacobi-2d"].source(),
                               schedule=Schedule().isl(8), tuning_db=False)
    assert "#pragma omp parallel for" in kernel.source
    assert CYCLIC_SCHEDULE not in kernel.source
