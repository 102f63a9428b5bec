"""Copies that transpose blocks in vector registers (backends/transpose_tile.py), blocked by the
default schedule (passes/default.transposition_steps): the shuffle rounds transpose, and every
copy matches numpy on sizes with whole blocks, cut blocks and none."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import loopweave
from loopweave.backends.transpose_tile import transposition_rounds
from loopweave.driver import front_end
from loopweave.passes.default import transposition_steps

TRANSPOSE = """
kernel transpose(A: {t}[M, N]) -> B: {t}[N, M] {{
    B[j, i] = A[i, j]
}}"""
# A padded channels-last copy, as a strided convolution's normalization writes it.
PADDED = """
kernel padded(X: f32[C, H, W]) -> Y: f32[H + 2, W + 2, C] {
    Y[a, b, c] = 0.0
    Y[a + 1, b + 1, c] = X[c, a, b] where a < H, b < W, c < C
}"""


@pytest.mark.parametrize("lanes", [2, 4, 8, 16])
def test_the_shuffle_rounds_transpose_a_square(lanes):
    square = np.arange(lanes * lanes).reshape(lanes, lanes)
    rows = [square[i] for i in range(lanes)]
    for h, low, high in transposition_rounds(lanes):
        new = list(rows)
        for i in range(lanes):
            if not i & h:
                pair = np.concatenate([rows[i], rows[i + h]])
                new[i], new[i + h] = pair[low], pair[high]
        rows = new
    np.testing.assert_array_equal(np.array(rows), square.T)


@pytest.mark.parametrize("t", ["f32", "i32", "f64"])
@pytest.mark.parametrize("m,n", [(64, 48), (37, 45), (5, 3), (16, 100)])
def test_transposed_copies_match_numpy(t, m, n):
    kernel = loopweave.compile(TRANSPOSE.format(t=t), tuning_db=False)
    a = (np.arange(m * n) * 3 - 7).reshape(m, n).astype({"f32": np.float32, "i32": np.int32,
                                                         "f64": np.float64}[t])
    np.testing.assert_array_equal(kernel(a), a.T)
    # whole blocks of a cache line each way: transposed in registers (the rest as loops)
    line = 64 * 8 // int(t[1:])
    if m >= line and n >= line:
        assert "lw_transpose_" in kernel.source


def test_a_padded_copy_is_blocked_and_transposed_in_registers():
    s = next(s for s in front_end(PADDED).statements if s.name == "S1")
    steps = transposition_steps(s, ["c", "a", "b"], 16)
    assert steps is not None and steps[2] == ("reorder", "S1", "c_o", "a", "b_o", "b", "c")
    kernel = loopweave.compile(PADDED, tuning_db=False)
    x = np.random.default_rng(0).standard_normal((35, 7, 40)).astype(np.float32)
    want = np.zeros((9, 42, 35), np.float32)
    want[1:-1, 1:-1] = x.transpose(1, 2, 0)
    np.testing.assert_array_equal(kernel(x), want)
    assert "lw_transpose_f32_" in kernel.source


def test_triangular_and_in_place_copies_keep_their_loops():
    """A copy over a triangle (its rows' bounds name the other loop) and one within a tensor
    (covariance's mirror, which may read what it wrote) are not transposed in blocks."""
    triangle = """kernel tri(A: f32[N, N]) -> B: f32[N, N] {
        B[i, j] = 0.0
        B[j, i] = A[i, j] where j in i:N
    }"""
    mirror = """kernel mirror(A: f32[N, N]) -> C: f32[N, N] {
        C[i, j] = A[i, j] where j in i:N
        C[j, i] = C[i, j] where j in i:N
    }"""
    a = np.random.default_rng(1).standard_normal((70, 70)).astype(np.float32)
    upper = np.triu(a)
    got = loopweave.compile(triangle, tuning_db=False)(a)
    np.testing.assert_array_equal(got, upper.T)
    got = loopweave.compile(mirror, tuning_db=False)(a)
    np.testing.assert_array_equal(got, upper + np.triu(a, 1).T)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.permutations([0, 1, 2]), st.lists(st.integers(1, 40), min_size=3, max_size=3),
       st.sampled_from(["f32", "f64", "i32"]), st.booleans())
def test_random_permuting_copies_match_numpy(order, extents, t, shifted):
    """Any permutation of a 3-D tensor's dimensions, at sizes around a block's, shifted
    into a larger tensor or not: the blocks transposed in registers and the cut ones as
    loops together write what numpy's transpose does."""
    names = ["a", "b", "c"]
    sizes = ["P", "Q", "R"]
    out_dims = [sizes[d] + (" + 1" if shifted else "") for d in order]
    written = [names[d] + (" + 1" if shifted else "") for d in order]
    source = (f"kernel perm(X: {t}[P, Q, R]) -> Y: {t}[{', '.join(out_dims)}] {{\n"
              + (f"    Y[{', '.join(names)}] = 0\n" if shifted else "")
              + f"    Y[{', '.join(written)}] = X[a, b, c]\n}}")
    source = source.replace("= 0\n", "= 0.0\n" if t != "i32" else "= 0\n")
    kernel = loopweave.compile(source, tuning_db=False)
    x = (np.arange(np.prod(extents)) - 11).reshape(extents).astype(
        {"f32": np.float32, "f64": np.float64, "i32": np.int32}[t])
    want = x.transpose(order)
    if shifted:
        want = np.pad(want, ((1, 0),) * 3)
    np.testing.assert_array_equal(kernel(x), want)
