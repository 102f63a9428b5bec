"""Copies that transpose blocks in vector registers (backends/transpose_tile.py), blocked by the
default schedule (passes/default.transposition_steps): the shuffle rounds transpose, and every
copy matches numpy on sizes with whole blocks, cut blocks and none; blocks of fewer rows or
columns than lanes (a convolution's weight pack and output drain) under every ISA's masks."""

from __future__ import annotations

import ctypes
import os
import platform
import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_strided_conv import S2, conv_numpy  # (tests/ is on sys.path)

import loopweave
from loopweave.backends.transpose_tile import helper_name, transpose_helper, transposition_rounds
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


# -- partial blocks: packs and drains of localized buffers ---------------------------------------

#: Builds of the helper per ISA variant: AVX-512 masked moves, AVX ones, the portable memcpy
#: (what NEON and Helium builds take).
HELPER_BUILDS = {"avx512": ("-mavx512f", 64), "avx2": ("-mavx2", 32), "portable": ("", 16)}


def _host_can_run(flag: str) -> bool:
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    return not flag or f" {flag[2:]}" in flags


@pytest.mark.parametrize("build", sorted(HELPER_BUILDS))
@pytest.mark.parametrize("bits", [32, 64])
def test_partial_blocks_transpose_under_every_isa(build, bits, tmp_path):
    """The helper of a block of `rows` x `cols` valid elements, built with each ISA's masked
    moves (or the portable partial memcpy), writes dst's valid rows and columns as numpy's
    transpose and leaves every other element of dst as it was: every shape of a block."""
    flag, chunk = HELPER_BUILDS[build]
    if shutil.which("cc") is None or platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("needs an x86-64 host with a C compiler")
    if not _host_can_run(flag):
        pytest.skip(f"this CPU has no {flag[2:]}")
    lanes = chunk * 8 // bits
    ctype, dtype = ("float", np.float32) if bits == 32 else ("double", np.float64)
    base = f"lw_transpose_t_{lanes}"
    shapes = [(rows, cols) for rows in range(1, lanes + 1) for cols in range(1, lanes + 1)]
    source = ["#include <stdint.h>", "#include <string.h>"]
    for rows, cols in shapes:
        source.append(transpose_helper(base, ctype, bits, lanes, rows, cols))
        source.append(f"void call_{rows}_{cols}(const {ctype} *s, {ctype} *d) {{ "
                      f"{helper_name(base, lanes, rows, cols)}(s, {lanes + 3}, d, {lanes + 5}); }}")
    (tmp_path / "t.c").write_text("\n".join(source))
    lib = tmp_path / "t.so"
    subprocess.run(["cc", "-O2", *([flag] if flag else []), "-shared", "-fPIC", "-o", str(lib),
                    str(tmp_path / "t.c")], check=True, capture_output=True)
    so = ctypes.CDLL(str(lib))
    src = np.arange(lanes * (lanes + 3), dtype=dtype).reshape(lanes, lanes + 3) + 1
    for rows, cols in shapes:
        dst = np.full((lanes, lanes + 5), -1, dtype)
        getattr(so, f"call_{rows}_{cols}")(ctypes.c_void_p(src.ctypes.data),
                                           ctypes.c_void_p(dst.ctypes.data))
        want = np.full_like(dst, -1)
        want[:rows, :cols] = src[:cols, :rows].T
        np.testing.assert_array_equal(dst, want, err_msg=f"{rows} x {cols}")


def _conv_s2_case(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Data, weights and numpy's stride-2, padding-1 convolution of them."""
    n, c, h, w, k = shape
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, (n, c, h, w)).astype(np.float32)
    f = rng.uniform(-1, 1, (k, c, 3, 3)).astype(np.float32)
    return x, f, conv_numpy(x, f, (2, 2), (1, 1))


@pytest.mark.parametrize("shape", [(1, 64, 56, 56, 128), (2, 19, 13, 29, 37), (1, 8, 7, 5, 3)])
def test_a_convolutions_weight_pack_and_output_drain_are_transposed(shape):
    """A stride-2 convolution's weights F[k, c, r, s] packed [r][s][c][k] (r and s one run of
    9 in both) and its output tile Y_acc[x][k] drained into Y[k, y, x]: blocks of fewer rows
    or columns than lanes, transposed under masks where whole, loops where cut. Numpy's
    numbers on odd sizes; at ResNet's size both copies are helper calls."""
    kernel = loopweave.compile(S2, tuning_db=False, cost_model=False)
    x, f, want = _conv_s2_case(shape)
    np.testing.assert_allclose(kernel(x, f), want, rtol=1e-4, atol=1e-4)
    if shape[1] == 64 and "lw_transpose_f32_16" in kernel.source:  # an AVX-512 build
        assert "lw_transpose_f32_16_r9c16(&F[" in kernel.source
        assert "lw_transpose_f32_16_r16c14(&Y_acc[" in kernel.source

