"""Contractions over a triangular domain take the register-tiled micro-kernel (syrk: the lower
triangle of C += A A^T, 6.7x faster at PolyBench LARGE than the untiled default):

- a B operand that reads A's tensor too is read from a copy in [k, j] layout
  (passes/hoist_transpose.py), so that packing B makes a box (A's rows and B's columns of one
  tensor do not);
- an accumulator tile on the diagonal copies back, unchanged, the elements of its box that it
  does not write (passes/cache.py): only the loop runs between the copies, so that is safe
  unless another iteration of a parallel loop around it writes them;
- trmm's in-place operand is read from a copy: its reads see B's values at the start;
- a tile is full where its bounds hold at the values of the loops around them that make them
  tightest (ir/localize.py): the row for syrk's columns, the reduction for trmm's rows; tiles
  off the diagonal run in registers, syrk's diagonal ones a row at a time in vector strips
  (ir/strips.py);
- where the rows end at the reduction (trmm's `x < k`) or start after it (symm's `x > k`), a
  diagonal tile runs the part of its reduction that every row reaches in registers, and the
  triangle as plain loops, in the reduction's order (ir/localize.triangle_split).

Checked on the source and numerically at odd sizes (several row blocks, column tiles and k
chunks), f32 and f64."""

from __future__ import annotations

import re

import numpy as np
import pytest
from polybench_check import assert_matches_reference

import loopweave
from loopweave.driver import stages
from loopweave.errors import ScheduleError
from loopweave.examples import load_polybench_references
from loopweave.ir.affine import constant_value
from loopweave.ir.loops import Block, For, If, walk

poly = load_polybench_references()
SIZES = [(1, 1), (7, 5), (29, 19), (61, 37), (131, 300)]  # (N, M): M > 256, two k chunks


def test_syrk_default_reads_a_copy_in_register_tiles_and_matches_numpy():
    case = poly.POLYBENCH["syrk"]
    kernel = loopweave.compile(case.source(), tuning_db=False, cost_model=False)
    for n, m in SIZES:
        assert_matches_reference("syrk", kernel, {"N": n, "M": m}, 7)
    assert "A_t[" in kernel.source and "lw_r0_0" in kernel.source
    # The diagonal tiles: a row at a time, its columns (up to the row) in vector strips.
    assert re.search(r"for \(int64_t (\w+)_edge = [^\n]*\n[^\n]*\1_edge \+ 1\)[^\n]*>= 16",
                     kernel.source)


SELF_PRODUCTS = {
    # A times its own transpose, lower triangle: B is A read transposed
    "transposed": ("C[i, j] += A[i, k] * A[j, k]  where j in 0:i+1", "A_t[",
                   lambda a, c: c + np.tril(a @ a.T)),
    # A squared, upper triangle: B is A read as it is
    "untransposed": ("C[i, j] += A[i, k] * A[k, j]  where j in i:N", "A_copy[",
                     lambda a, c: c + np.triu(a @ a)),
}


@pytest.mark.parametrize("cflags", [None, "-O3 -mavx2 -mfma"])  # 8 x 24 or 6 x 16 tiles
@pytest.mark.parametrize("dtype", ["f32", "f64"])
@pytest.mark.parametrize("form", sorted(SELF_PRODUCTS))
def test_a_self_product_over_a_triangle_is_tiled_and_right(form, dtype, cflags):
    statement, copy, reference = SELF_PRODUCTS[form]
    shape = "N, M" if form == "transposed" else "N, N"
    kernel = loopweave.compile(f"kernel k(A: {dtype}[{shape}], C: inout {dtype}[N, N]) "
                               f"{{\n    {statement}\n}}", tuning_db=False, cost_model=False,
                               cflags=cflags)
    rng = np.random.default_rng(3)
    np_type = np.float32 if dtype == "f32" else np.float64
    for n, m in SIZES:
        a = rng.standard_normal((n, m if form == "transposed" else n)).astype(np_type)
        c = rng.standard_normal((n, n)).astype(np_type)
        want = reference(a.astype(np.float64), c.astype(np.float64))
        kernel(a, c)
        np.testing.assert_allclose(c, want, rtol=1e-4 if dtype == "f32" else 1e-10,
                                   atol=1e-3 if dtype == "f32" else 1e-10)
    assert copy in kernel.source and "lw_r0_0" in kernel.source


def _diagonal_tiles(statement: str) -> loopweave.Schedule:
    return loopweave.Schedule().tile(statement, i=8, j=8).reorder(
        statement, "i_o", "j_o", "k", "i", "j").cache_write(statement, "k")


def test_a_diagonal_tile_copies_back_only_what_the_kernel_never_writes():
    # The upper triangle is C's own (inout) values, never written: the diagonal tiles'
    # buffers copy it back unchanged.
    lower = """kernel k(A: f64[N, M], At: f64[M, N], C: inout f64[N, N]) {
    C[i, j] += A[i, k] * At[k, j]  where j in 0:i+1
}"""
    kernel = loopweave.compile(lower, schedule=_diagonal_tiles("S0"), tuning_db=False)
    rng = np.random.default_rng(4)
    a, c = rng.standard_normal((21, 13)), rng.standard_normal((21, 21))
    want = c + np.tril(a @ a.T)
    kernel(a, a.T.copy(), c)
    np.testing.assert_allclose(c, want, rtol=1e-12, atol=1e-12)
    assert "lw_r0_0" in kernel.source  # the tiles below the diagonal, in registers
    # A second statement writes the upper triangle, after the tiles: the copies back come
    # first, so it overwrites them.
    both = """kernel k(A: f64[N, M], At: f64[M, N], C: inout f64[N, N]) {
    C[i, j] += A[i, k] * At[k, j]  where j in 0:i+1
    C[i, j] = 0.0  where j in i+1:N
}"""
    c = rng.standard_normal((21, 21))
    want = np.tril(c + a @ a.T)
    loopweave.compile(both, schedule=_diagonal_tiles("S0"), tuning_db=False)(a, a.T.copy(), c)
    np.testing.assert_allclose(c, want, rtol=1e-12, atol=1e-12)


# S1 writes the upper triangle of a column tile from the column tile before it, inside the
# same parallel loop: a diagonal tile's copy back would race with it.
RACING = """kernel k(A: f64[N, K], B: f64[K, N], C: inout f64[N, N]) {
    C[i, j] += A[i, k] * B[k, j]  where j in 0:i+1
    C[i, j + 8] = 0.0  where j in i-7:N-8
}"""


@pytest.mark.parametrize("parallel", [False, True])
def test_a_diagonal_tile_is_refused_where_a_parallel_iteration_writes_the_rest(parallel):
    schedule = loopweave.Schedule().tile("S0", i=8, j=8).tile("S1", j=8).reorder(
        "S0", "j_o", "i_o", "k", "i", "j").reorder("S1", "j_o", "i", "j").fuse("S0", "S1")
    if parallel:
        schedule.parallel("S0", "j_o")
    schedule.cache_write("S0", "k")
    if parallel:
        with pytest.raises(ScheduleError, match="another iteration of a parallel loop"):
            loopweave.compile(RACING, schedule=schedule, tuning_db=False)
        return
    kernel = loopweave.compile(RACING, schedule=schedule, tuning_db=False)
    rng = np.random.default_rng(6)
    a, b, c = rng.standard_normal((21, 5)), rng.standard_normal((5, 21)), \
        rng.standard_normal((21, 21))
    want = c + np.tril(a @ b)
    want[np.triu_indices(21, 1)] = 0.0
    kernel(a, b, c)
    np.testing.assert_allclose(c, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name, triangle_first", [("trmm", True), ("symm", True),
                                                  ("symm", False)])
def test_a_diagonal_tile_splits_its_reduction_at_the_triangle(name, triangle_first):
    """The full tile's branch holds two loops over the same reduction variable: the triangle
    (rows that do not all reach it: loops starting from the tile's rows) and the registers'
    part (the rows counting from 0): the triangle first where the rows end at the reduction
    (trmm's, and symm's C[k, j] over i > k), last where they start after it (symm's
    temp2[i, j] over k < i)."""
    loops = stages(poly.POLYBENCH[name].source()).loops
    splits = []  # (triangle's rows start at the tile, registers' rows at 0) per split found
    for node in walk(loops):
        if isinstance(node, If) and isinstance(node.then, Block) and len(node.then.body) == 2 \
                and all(isinstance(b, For) for b in node.then.body) \
                and node.then.body[0].var == node.then.body[1].var:
            triangle, registers = node.then.body[::1 if triangle_first else -1]
            splits.append((constant_value(triangle.body.init), constant_value(registers.body.init)))
    assert (None, 0) in splits, f"{name}: no diagonal tile split: {splits}"


def test_trmm_default_reads_a_snapshot_in_register_tiles_and_matches_numpy():
    """trmm updates B in place, reading rows k > i that later rows' steps update: the reads
    see B's values at the start (a copy), and the row tiles, parallel, hold rows that one k
    chunk leaves alone (copied back as they were)."""
    case = poly.POLYBENCH["trmm"]
    kernel = loopweave.compile(case.source(), tuning_db=False, cost_model=False)
    for m, n in [(1, 1), (2, 3), (29, 31), (263, 301), (300, 97)]:
        assert_matches_reference("trmm", kernel, {"M": m, "N": n}, 5)
    assert "B_copy[" in kernel.source and "lw_r0_0" in kernel.source


@pytest.mark.parametrize("name", ["covariance", "correlation"])
def test_a_temporary_times_its_own_transpose_reads_a_copy_made_after_it(name):
    """covariance's `cov[i, j] += d[k, i] * d[k, j]` over j >= i: d, the centred data, is
    written before the product's loops, so the copy of d's columns can be made there."""
    case = poly.POLYBENCH[name]
    kernel = loopweave.compile(case.source(), tuning_db=False, cost_model=False)
    for m, n in [(1, 2), (27, 31), (85, 97), (61, 300)]:
        assert_matches_reference(name, kernel, {"M": m, "N": n}, 9)
    assert "d_copy[" in kernel.source and "lw_r0_0" in kernel.source
