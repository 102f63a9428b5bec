"""A reduction's constant initialisation folded into the x86 GEMM micro-kernel call that runs
the reduction (passes/cache.py `folded_gemm_init`, ir/codegen.py `_moved_init`,
backends/x86_gemm.py): the call writes the constant plus the products, C is neither zeroed
first nor read; every path the machine has, against numpy, with C's old elements garbage."""

from __future__ import annotations

import numpy as np
import pytest

import loopweave
from loopweave.passes.schedule import Schedule
from loopweave.pipeline import Pipeline
from tests.test_x86_gemm import BF16_PATHS, PATHS, _path_flags

# C's old elements must not matter: each test fills C with garbage first.
FILLED = """
kernel filled(A: {t}[M, K], B: {t}[K, N], C: inout {acc}[M, N]) {{
    C[i, j] = {value}
    C[i, j] += {acc}(A[i, k]) * {acc}(B[k, j])
}}"""
# D reads the constant before the reduction adds to it: nothing may fold.
READ_FIRST = """
kernel read_first(A: i8[M, K], B: i8[K, N]) -> C: i32[M, N], D: i32[M, N] {
    C[i, j] = 5
    D[i, j] = C[i, j] + 1
    C[i, j] += i32(A[i, k]) * i32(B[k, j])
}"""


def _operands(t: str, m: int, n: int, k: int, seed: int):
    rng = np.random.default_rng(seed)
    if t == "i8":
        return (rng.integers(-128, 128, (m, k), dtype=np.int8),
                rng.integers(-128, 128, (k, n), dtype=np.int8))
    ml_dtypes = pytest.importorskip("ml_dtypes")
    return (rng.standard_normal((m, k)).astype(ml_dtypes.bfloat16),
            rng.standard_normal((k, n)).astype(ml_dtypes.bfloat16))


def _check(t: str, a, b, c, value) -> None:
    if t == "i8":
        np.testing.assert_array_equal(c, value + a.astype(np.int32) @ b.astype(np.int32))
        return
    want = value + a.astype(np.float64) @ b.astype(np.float64)
    scale = abs(value) + np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64))
    assert np.all(np.abs(c - want) <= 1e-6 * (a.shape[1] + 1) * scale + 1e-30)


@pytest.mark.parametrize("t,path", [*[("i8", p) for p in PATHS],
                                    *[("bf16", p) for p in BF16_PATHS]])
# zero: AMX's whole blocks go straight from the tiles into C; 3: through the block buffer
@pytest.mark.parametrize("value", [0, 3])
# (64, 64, 96): whole 32 x 32 blocks only; (3, 300, 1000): AMX's few-rows form
@pytest.mark.parametrize("m,n,k", [(37, 45, 70), (64, 64, 96), (3, 300, 1000)])
def test_gemm_call_writes_the_initialisation_it_folds(t, path, value, m, n, k):
    acc = "i32" if t == "i8" else "f32"
    literal = str(value) if t == "i8" else f"{value}.0"
    source = FILLED.format(t=t, acc=acc, value=literal)
    paths = PATHS if t == "i8" else BF16_PATHS
    kernel = loopweave.compile(source, cflags=_path_flags(path, paths), tuning_db=False)
    a, b = _operands(t, m, n, k, m * n + k)
    garbage = np.full((m, n), np.nan if t == "bf16" else -123456789,
                      dtype=np.float32 if t == "bf16" else np.int32)
    kernel(a, b, garbage)
    _check(t, a, b, garbage, value)
    if path != "loops" and (t == "i8" or m >= 8):
        # the call fills C where K >= 1; the initialisation runs only behind it
        helper = "lw_s8gemm" if t == "i8" else "lw_bf16gemm"
        c_literal = literal if t == "i8" else f"{literal}f"
        call = kernel.source.index(f"if (!{helper}(")
        assert kernel.source.index(f", K >= 1, {c_literal}))", call) < kernel.source.index(
            f"C[c0 * N + c1] = {c_literal}", call)


@pytest.mark.parametrize("t", ["i8", "bf16"])
def test_an_empty_reduction_leaves_the_constant(t):
    acc = "i32" if t == "i8" else "f32"
    literal = "7" if t == "i8" else "7.0"
    kernel = loopweave.compile(FILLED.format(t=t, acc=acc, value=literal), tuning_db=False)
    a, b = _operands(t, 40, 33, 0, 1)
    c = np.full((40, 33), -1, dtype=np.float32 if t == "bf16" else np.int32)
    kernel(a, b, c)
    assert np.all(c == 7)


def test_the_fold_is_recorded_only_where_nothing_else_reads_the_constant():
    sizes = {"M": 64, "K": 64, "N": 64}
    folds = Pipeline(FILLED.format(t="i8", acc="i32", value="0")).stages(sizes).ir.folded_inits
    assert [(f.statement, f.init) for f in folds] == [("S1", "S0")]
    assert Pipeline(READ_FIRST).stages(sizes).ir.folded_inits == ()
    kernel = loopweave.compile(READ_FIRST, tuning_db=False)
    a, b = _operands("i8", 37, 45, 70, 2)
    c, d = kernel(a, b)
    np.testing.assert_array_equal(d, np.full((37, 45), 6))
    np.testing.assert_array_equal(c, 5 + a.astype(np.int32) @ b.astype(np.int32))


def test_an_initialisation_in_the_calls_own_nest_stays_where_it_is():
    """Fused into the GEMM's row loop after a read of C's old values, the initialisation may
    not move in front of that nest: it stays, and the call adds to the zeroed C."""
    source = """
kernel keep(A: i8[M, K], B: i8[K, N], C: inout i32[M, N]) -> D: i32[M, N] {
    D[i, j] = C[i, j]
    C[i, j] = 0
    C[i, j] += i32(A[i, k]) * i32(B[k, j])
}"""
    schedule = Schedule().fuse("S0", "S1", "S2", depth=1).dot("S2", "k")
    kernel = loopweave.compile(source, schedule=schedule, tuning_db=False)
    a, b = _operands("i8", 37, 45, 70, 3)
    c = np.arange(37 * 45, dtype=np.int32).reshape(37, 45)
    old = c.copy()
    d = kernel(a, b, c)
    np.testing.assert_array_equal(d, old)
    np.testing.assert_array_equal(c, a.astype(np.int32) @ b.astype(np.int32))
