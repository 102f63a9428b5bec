"""A factor invariant in a register tile's loops (PolyBench gemm's `alpha` in
`C[i, j] += alpha * A[i, k] * B[k, j]`, C inout) is applied once per tile element after the
k loop instead of once per A element in every k step (`register_tile.tile_invariant_factor`).
Checked on the source and numerically, on an inout accumulator with its own values, at odd
sizes, for f32, f64 and i32 (exact)."""

from __future__ import annotations

import numpy as np
import pytest

import loopweave
from loopweave.passes.default import FACTS
from loopweave.passes.default_arm import ARM_FACTS
from loopweave.passes.schedule import Schedule

KERNEL = """kernel scaled(alpha: {t}, A: {t}[M, K], B: {t}[K, N], C: inout {t}[M, N]) {{
    C[i, j] += alpha * A[i, k] * B[k, j]
}}"""
TYPES = {"f32": np.float32, "f64": np.float64, "i32": np.int32}


@pytest.mark.parametrize("dtype", sorted(TYPES))
def test_the_factor_scales_each_tile_once_and_the_result_is_right(dtype):
    kernel = loopweave.compile(KERNEL.format(t=dtype), tuning_db=False)
    assert "alpha * lw_r0_0" in kernel.source
    rng = np.random.default_rng(5)
    for m, k, n in [(1, 1, 1), (7, 300, 13), (37, 19, 45), (61, 257, 263)]:
        if dtype == "i32":
            a, b, c = (rng.integers(-9, 9, s).astype(np.int32) for s in ((m, k), (k, n), (m, n)))
            alpha = np.int32(-3)
        else:
            a, b, c = (rng.standard_normal(s).astype(TYPES[dtype]) for s in ((m, k), (k, n),
                                                                               (m, n)))
            alpha = TYPES[dtype](0.75)
        want = c + alpha * (a @ b)
        got = c.copy()
        kernel(alpha, a, b, got)
        if dtype == "i32":
            np.testing.assert_array_equal(got, want)
        else:
            tol = 1e-4 if dtype == "f32" else 1e-11
            np.testing.assert_allclose(got, want, rtol=tol, atol=tol * k)


def test_a_factor_that_varies_in_the_tile_stays_in_the_sum():
    source = """kernel rowscaled(s: f32[M], A: f32[M, K], B: f32[K, N]) -> C: f32[M, N] {
    C[i, j] += s[i] * A[i, k] * B[k, j]
}"""
    kernel = loopweave.compile(source, tuning_db=False)
    assert "* lw_r0_0;" not in kernel.source
    rng = np.random.default_rng(2)
    s, a, b = rng.random(37, np.float32), rng.random((37, 19), np.float32), \
        rng.random((19, 45), np.float32)
    np.testing.assert_allclose(kernel(s, a, b), (s[:, None] * a) @ b, rtol=1e-5)


@pytest.mark.parametrize("dtype,columns", [("f32", 48), ("f64", 24)])
def test_a_tile_row_of_three_vectors(dtype, columns):
    """A register tile's row may be whole vectors beyond a power of two bytes (AVX-512's
    few-rows 8 x 48 f32 and 8 x 24 f64 tiles: three 64-byte vectors a row), and one row
    (isl drops a rows loop of extent 1: `ir/loops.accumulator_nest` makes it up). Checked on
    the source and at odd sizes, edge strips included; any host (vector extensions)."""
    source = f"""kernel mm(A: {dtype}[M, K], B: {dtype}[K, N]) -> C: {dtype}[M, N] {{
    C[i, j] += A[i, k] * B[k, j]
}}"""
    for rows in (8, 1):
        schedule = Schedule().tile("S1", i=rows, j=columns).reorder(
            "S1", "i_o", "j_o", "k", "i", "j").cache_write("S1", at="k")
        kernel = loopweave.compile(source, schedule=schedule, tuning_db=False)
        assert f"lw_r{rows - 1}_2 +=" in kernel.source and f"lw_r{rows}_0" not in kernel.source
        rng = np.random.default_rng(rows)
        for m, k, n in [(rows, 5, columns), (17, 33, 101), (3, 7, 200)]:
            a, b = rng.random((m, k)).astype(TYPES[dtype]), rng.random((k, n)).astype(TYPES[dtype])
            np.testing.assert_allclose(kernel(a, b), a @ b, rtol=1e-5)


def test_every_target_panel_holds_whole_register_tiles():
    """A B panel NC columns wide that is not a whole number of the tile's columns leaves an
    edge strip in every panel (8 x 48 tiles in panels of 256: a 16-column strip each, slower
    per column than the tile); the facts of every host and Arm target avoid that for f32 and
    f64 tiles."""
    for name, facts in {**FACTS, **ARM_FACTS}.items():
        if facts.panel is None:
            continue
        nc = facts.panel[1]
        for tile in (facts.matmul_tile, facts.f64_tile or facts.matmul_tile):
            assert nc % tile[1] == 0, (name, tile, nc)


@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_many_rows_across_panels_and_chunks_of_k(dtype):
    """The host default from PANEL_MIN_ROWS rows (AVX-512: 8 x 48 tiles, f64 8 x 24, in
    panels of 288 columns): odd M, K across a KC chunk or none, N across a panel with a strip
    in the last one."""
    source = f"""kernel mm(A: {dtype}[M, K], B: {dtype}[K, N]) -> C: {dtype}[M, N] {{
        C[i, j] += A[i, k] * B[k, j] }}"""
    kernel = loopweave.compile(source, tuning_db=False, cost_model=False)
    rng = np.random.default_rng(23)
    for m, k, n in [(517, 259, 301), (1031, 1024, 97), (512, 300, 577), (600, 7, 289)]:
        a = rng.standard_normal((m, k)).astype(TYPES[dtype])
        b = rng.standard_normal((k, n)).astype(TYPES[dtype])
        np.testing.assert_allclose(kernel(a, b), a @ b, rtol=1e-4, atol=1e-4 * k)
