"""Deep B panels where the call's K is known (issue [x86-peak]): from PANEL_MIN_ROWS rows of C
the AVX-512 default packs B in panels as deep as 3/8 of the L2 cache holds two register tiles'
columns (`tile_recipes.deep_panel`, `TargetFacts.panel_cache_share`), so that C's tiles are
loaded and stored once per K block, not once per 256 rows of B (f32 2048^3, one thread, Xeon
VM: 1.07-1.09x). Checked on the schedule the size rule gives and numerically at odd sizes,
with several K blocks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import loopweave
from loopweave.passes import default
from loopweave.passes.default import CPU_AVX512
from loopweave.passes.few_rows import PANEL_MIN_ROWS, panel_rows
from loopweave.passes.tile_recipes import DEEP_PANEL_MAX_BYTES, KC, deep_panel
from loopweave.pipeline import front_end

L2 = 2 << 20  # the Xeon's: a budget of 768 KB
BUDGET = int(CPU_AVX512.panel_cache_share * L2)


def matmul(dtype: str) -> str:
    return (f"kernel mm(A: {dtype}[M, K], B: {dtype}[K, N]) -> C: {dtype}[M, N] {{\n"
            f"    C[i, j] += A[i, k] * B[k, j]\n}}")


def test_deep_panel_fills_the_budget_with_the_deepest_blocks():
    """As deep as two tiles' columns fit, in equal blocks; the rest of the budget widens it."""
    assert deep_panel(256, 288, 1024, 48, 4, BUDGET) == (1024, 192)  # f32, 8 x 48 tiles
    assert deep_panel(256, 288, 2048, 48, 4, BUDGET) == (2048, 96)
    assert deep_panel(256, 288, 3000, 48, 4, BUDGET) == (1500, 96)  # two equal blocks
    assert deep_panel(256, 288, 1000, 24, 8, BUDGET) == (1000, 96)  # f64, 8 x 24 tiles
    assert deep_panel(256, 288, 2000, 24, 8, BUDGET) == (2000, 48)
    assert deep_panel(256, 288, 300, 48, 4, BUDGET) == (300, 288)  # as wide as before
    assert deep_panel(256, 288, 256, 48, 4, BUDGET) == (256, 288)  # K in one panel already
    assert deep_panel(256, 288, 4096, 48, 4, 64 << 10) == (256, 288)  # a small cache
    deep, wide = deep_panel(256, 288, 1 << 20, 48, 4, 64 << 20)  # capped: a stack buffer
    assert deep * wide * 4 <= DEEP_PANEL_MAX_BYTES and wide == 96


def _panel(rule, **sizes) -> tuple[int, int]:
    tiles = [dict(step.args) for step in rule.at(sizes).steps if step.op == "tile"]
    return tiles[0]["k"], tiles[0]["j"] * tiles[1]["j_o"]


@pytest.mark.parametrize("dtype,nr", [("f32", 48), ("f64", 24)])
def test_the_size_rule_deepens_panels_from_enough_rows(monkeypatch, dtype, nr):
    """The AVX-512 default at the call's sizes: deep panels from PANEL_MIN_ROWS rows and a K
    deeper than KC; fewer rows keep the few-rows panels, AVX2 its fixed ones, and a host
    whose L2 Linux does not report the fixed ones too."""
    monkeypatch.setattr(default, "L2_BYTES", L2)
    size = 4 if dtype == "f32" else 8
    rule = panel_rows(front_end(matmul(dtype)), lambda: 64)
    assert _panel(rule, M=PANEL_MIN_ROWS, K=1000, N=2000) == deep_panel(
        KC, 288, 1000, nr, size, BUDGET)
    assert _panel(rule, M=PANEL_MIN_ROWS, K=KC, N=2000) == (KC, 288)
    assert _panel(rule, M=PANEL_MIN_ROWS - 1, K=1000, N=2000) == (KC, 288)
    assert _panel(panel_rows(front_end(matmul(dtype)), lambda: 32),
                  M=PANEL_MIN_ROWS, K=1000, N=2000) == (KC, 256)
    monkeypatch.setattr(default, "L2_BYTES", None)
    assert _panel(panel_rows(front_end(matmul(dtype)), lambda: 64),
                  M=PANEL_MIN_ROWS, K=1000, N=2000) == (KC, 288)


def _has_avx512() -> bool:
    cpuinfo = Path("/proc/cpuinfo")
    return cpuinfo.exists() and "avx512f" in cpuinfo.read_text()


@pytest.mark.skipif(not _has_avx512(), reason="deep panels are AVX-512's: this CPU has none")
@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_deep_panels_compute_the_product(monkeypatch, dtype):
    """Numerics at odd sizes, one and two K blocks (a 150 KB budget: panels up to 400 deep,
    K = 301 in one block, 700 in two of 350), the build checked for the deep panel."""
    monkeypatch.setattr(default, "L2_BYTES", 400 << 10)
    kernel = loopweave.compile(matmul(dtype), tuning_db=False, cache=False)
    rng = np.random.default_rng(31)
    np_type = {"f32": np.float32, "f64": np.float64}[dtype]
    for m, k, n in [(PANEL_MIN_ROWS + 5, 301, 61), (PANEL_MIN_ROWS + 13, 700, 100)]:
        a = rng.standard_normal((m, k)).astype(np_type)
        b = rng.standard_normal((k, n)).astype(np_type)
        np.testing.assert_allclose(kernel(a, b), a @ b, rtol=1e-4, atol=1e-4 * k)
        deep, _ = deep_panel(KC, 288, k, 48 if dtype == "f32" else 24, np_type().itemsize,
                             int(CPU_AVX512.panel_cache_share * (400 << 10)))
        assert deep > KC and f"{deep} * c1" in kernel.source, (m, k, n)
