"""A reduction's initialisation folded into its accumulator tile (issue [x86-peak]): where a
`cache_write` buffer holds the whole reduction of each element (one block of K) and a
statement storing a constant is all that precedes it (`C[i, j] = 0` before `C[i, j] += A[i, k]
* B[k, j]`), the tile starts from the constant and that statement does not run: no pass that
zeroes C, and no read of C back into the registers (f32 1024^3, one thread: 1.02x). Where K
needs several blocks, the statement runs and the tile copies in, by a condition on the sizes;
where anything else reads the constant, or the loop reads what nothing stored, nothing is
folded. Checked on the cache specs, the loop AST and numerically."""

from __future__ import annotations

import numpy as np
from test_strided_conv import conv_numpy  # (tests/ is on sys.path)

import loopweave
from loopweave.examples import EXAMPLES_DIR
from loopweave.ir.expr import Const, evaluate
from loopweave.ir.loops import Block, For, If, Store, walk, without_statements
from loopweave.ir.types import BOOL, F32, INDEX
from loopweave.pipeline import Pipeline

MATMUL = """kernel mm(A: f32[M, K], B: f32[K, N]) -> C: f32[M, N] {
    C[i, j] += A[i, k] * B[k, j]
}"""


def _stores_of(loops, statement: str) -> list[Store]:
    return [n for n in walk(loops) if isinstance(n, Store) and n.stmt == statement]


def _guards_of(loops, statement: str) -> list[If]:
    """The guards directly around a nest holding `statement`'s stores alone."""
    return [n for n in walk(loops) if isinstance(n, If) and _stores_of(n.then, statement)
            and {s.stmt for s in walk(n.then) if isinstance(s, Store)} == {statement}]


def test_the_matmul_tile_starts_from_zero_where_k_fits_one_block():
    """The accumulator's spec names the initialisation and its sizes: K within one panel of
    the default (KC = 256 below PANEL_MIN_ROWS rows); the loop AST keeps the zeroing only
    under the opposite condition, and numerics hold on both sides of it."""
    stages = Pipeline(MATMUL).stages({"M": 37, "K": 200, "N": 45})
    (spec,) = [c for c in stages.ir.caches if c.tensor == "C"]
    assert spec.fill == Const(0.0, F32) and stages.ir.statement[spec.folds].is_init
    assert spec.fill_when is not None and "K" in str(spec.fill_when)
    (guard,) = _guards_of(stages.loops, spec.folds)
    assert guard.cond.op == "not"
    kernel = loopweave.compile(MATMUL, tuning_db=False, cache=False)
    rng = np.random.default_rng(41)
    for m, k, n in [(37, 200, 45), (37, 300, 45), (13, 256, 61), (5, 1, 3), (4, 0, 5)]:
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        np.testing.assert_allclose(kernel(a, b), a @ b, rtol=1e-4, atol=1e-4 * max(k, 1))


def test_a_constant_read_before_the_reduction_is_not_folded():
    """D reads C's zero before the reduction: the initialisation must run."""
    source = """kernel k(A: f32[M, K], B: f32[K, N]) -> (C: f32[M, N], D: f32[M, N]) {
        C[i, j] = 0.0
        D[i, j] = C[i, j] + 1.0
        C[i, j] += A[i, k] * B[k, j]
    }"""
    stages = Pipeline(source).stages({"M": 37, "K": 20, "N": 45})
    assert [c.folds for c in stages.ir.caches if c.tensor == "C"] in ([""], [])
    kernel = loopweave.compile(source, tuning_db=False, cache=False)
    rng = np.random.default_rng(42)
    a = rng.standard_normal((37, 20)).astype(np.float32)
    b = rng.standard_normal((20, 45)).astype(np.float32)
    c, d = kernel(a, b)
    np.testing.assert_allclose(c, a @ b, rtol=1e-4, atol=1e-3)
    np.testing.assert_array_equal(d, np.ones((37, 45), np.float32))


def test_values_that_come_with_the_call_are_copied_in():
    """C is `inout` and zeroed in its first rows only: the tile's other rows read the call's
    values, which no statement stored, so nothing is folded."""
    source = """kernel k(A: f32[M, K], B: f32[K, N], C: inout f32[M, N]) {
        C[i, j] = 0.0 where i < 4
        C[i, j] += A[i, k] * B[k, j]
    }"""
    stages = Pipeline(source).stages({"M": 37, "K": 20, "N": 45})
    assert [c for c in stages.ir.caches if c.tensor == "C"]
    assert all(not c.folds and c.fill is None for c in stages.ir.caches)
    kernel = loopweave.compile(source, tuning_db=False, cache=False)
    rng = np.random.default_rng(44)
    a = rng.standard_normal((37, 20)).astype(np.float32)
    b = rng.standard_normal((20, 45)).astype(np.float32)
    c = rng.standard_normal((37, 45)).astype(np.float32)
    want = c.copy()
    want[:4] = 0
    want += a @ b
    kernel(a, b, c)
    np.testing.assert_allclose(c, want, rtol=1e-4, atol=1e-3)


def test_a_strided_convolution_starts_its_tiles_from_zero():
    """The output of the channels-last convolution is not zeroed in a pass of its own at the
    sizes it was scheduled for."""
    source = (EXAMPLES_DIR / "kernels" / "conv2d_s2.lw").read_text()
    sizes = {"N": 1, "C": 16, "H": 15, "W": 15, "K": 32, "R": 3, "S": 3}
    stages = Pipeline(source).stages(sizes)
    (spec,) = [c for c in stages.ir.caches if c.tensor == "Y" and c.folds]
    assert evaluate(spec.fill_when, sizes)  # (the weights' pack holds the call's C, R and S)
    (guard,) = _guards_of(stages.loops, spec.folds)
    assert guard.cond.op == "not" and guard.cond.operand == spec.fill_when
    kernel = loopweave.compile(source, tuning_db=False, cache=False)
    rng = np.random.default_rng(43)
    for n, c, h, w, k in [(1, 16, 15, 15, 32), (2, 3, 9, 11, 5)]:
        x = rng.standard_normal((n, c, h, w)).astype(np.float32)
        f = rng.standard_normal((k, c, 3, 3)).astype(np.float32)
        want = conv_numpy(x, f, (2, 2), (1, 1))
        np.testing.assert_allclose(kernel(x, f), want, rtol=1e-4, atol=1e-4)


def test_without_statements_prunes_what_is_left_empty():
    i = "i"
    keep = Store("B", (), Const(1.0, F32), None, "S2")
    drop = Store("A", (), Const(0.0, F32), None, "S1")
    loop = For(i, Const(0, INDEX), Const(True, BOOL), 1, Block((drop,)))
    tree = Block((loop, If(Const(True, BOOL), drop, keep), For(i, Const(0, INDEX),
                                                                Const(True, BOOL), 1, keep)))
    pruned = without_statements(tree, {"S1"})
    assert [type(n).__name__ for n in pruned.body] == ["If", "For"]
    assert pruned.body[0].then == Block(()) and pruned.body[0].orelse == keep
    assert without_statements(loop, {"S1"}) is None


def test_an_epilogue_that_sees_the_constant_only_when_k_is_zero_still_folds():
    """acc's epilogue reads the initialisation's zero itself only where the reduction is
    empty (K = 0), where nothing folds: at K >= 1 it reads the reduction's sums, so the tile
    starts from zero there; both sides of the condition hold numerically."""
    source = """kernel epi(A: f32[M, K], B: f32[K, N]) -> C: f32[M, N] {
        acc[i, j] += A[i, k] * B[k, j]
        C[i, j] = acc[i, j] + 1.0
    }"""
    stages = Pipeline(source).stages({"M": 37, "K": 20, "N": 45})
    (spec,) = [c for c in stages.ir.caches if c.tensor == "acc"]
    assert spec.folds and "K" in str(spec.fill_when)
    kernel = loopweave.compile(source, tuning_db=False, cache=False)
    rng = np.random.default_rng(43)
    for m, k, n in [(37, 20, 45), (37, 0, 45), (8, 1, 16)]:
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        np.testing.assert_allclose(kernel(a, b), a @ b + 1, rtol=1e-4, atol=1e-4 * max(k, 1))
