"""The masked tail of AVX-512 vector loops (backends/simd.py `masked_tail`): a loop's last,
partial vector runs as one vector step whose lanes past the end are neither loaded nor stored,
where the body allows it; elsewhere (AVX2, reductions across lanes, updates in place, gathers,
reversed or f16 accesses) the scalar remainder stays.

Checked on the generated text, numerically at every remainder length for f32, f64 and i32
bodies, a select, a `+=` kept in a register across an inner loop, and `exp`, and with the
arrays ending at an unmapped page, where a lane read or written past the end would fault."""

from __future__ import annotations

import ctypes
import mmap
from pathlib import Path

import numpy as np
import pytest

import loopweave
from loopweave.backends import c as c_backend
from loopweave.backends import simd
from loopweave.driver import stages

S = loopweave.Schedule
# Bodies longer than simd.UNROLL_MAX_LINES lines: shorter ones keep the scalar remainder.
AXPY = """
kernel axpy(a: f64, X: f64[N], Y: inout f64[N]) {
    Y[i] = Y[i] + a * X[i] + X[i] * X[i] * 0.5 - X[i] * X[i] * X[i] * 0.125 + Y[i] * 0.0625
}
"""
#: gramschmidt's update: R[k, j] read again for every row i
UPDATE = """
kernel update(A: f64[M, N]) -> R: f64[N] {
    R[j] += A[i, j] * A[i, j]
}
"""
MIXED = """
kernel mixed(X: f32[N], K: i32[N], t: f32) -> (Y: f32[N], Z: i32[N]) {
    Y[i] = select(X[i] > t, exp(X[i]) / X[i] + X[i] * 0.5, f32(K[i]) * t + X[i] * X[i] * 0.25)
    Z[i] = max(K[i] * 3 + K[i] * K[i] - K[i] * 5, 7 + K[i] * 2)
}
"""
MV = """
kernel mv(A: f32[M, N], x: f32[M]) -> y: f32[N] {
    y[j] += A[i, j] * x[i] + A[i, j] * A[i, j] * 0.5 - A[i, j] * 0.25
}
"""
ROWS = """
kernel rows(A: f64[M, N], s: f64[M]) -> B: f64[M, N] {
    B[i, j] = A[i, j] * s[i] + 1.0 + A[i, j] * A[i, j] * 0.5 - A[i, j] * 0.25 + s[i] * s[i]
}
"""


def _host_has_avx512() -> bool:
    try:
        return "avx512f" in Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False


def _body(source: str, schedule, isa) -> str:
    st = stages(source, schedule=schedule)
    return c_backend.CBackend(st.ir, isa).render_body(st.loops)


def test_avx512_loops_end_in_one_masked_vector_and_avx2_in_scalars():
    body = _body(AXPY, S().vectorize("Y", "i"), simd.AVX512)
    assert "_mm512_maskz_loadu_pd(lw_tail" in body and "_mm512_mask_storeu_pd(" in body
    assert "c0 += 1)" not in body.split("#else")[0]  # no scalar remainder loop
    mixed = _body(MIXED, S().vectorize("Y", "i").vectorize("Z", "i"), simd.AVX512)
    assert mixed.count("__mmask16 lw_tail") == 2 and "_mm512_maskz_loadu_epi32(" in mixed
    assert "_mm512_mask_storeu_epi32(" in mixed
    avx2 = _body(AXPY, S().vectorize("Y", "i"), simd.AVX2)
    assert "lw_tail" not in avx2 and "c0 += 1)" in avx2.split("#else")[0]


def test_short_bodies_keep_the_scalar_remainder():
    """A body of at most UNROLL_MAX_LINES lines (unrolled four vectors a trip): masked, it
    measured even or slower (gramschmidt, gemver MEDIUM)."""
    body = _body("kernel axpy(a: f64, X: f64[N], Y: inout f64[N]) { Y[i] = Y[i] + a * X[i] }",
                 S().vectorize("Y", "i"), simd.AVX512)
    assert ">= 32; )" in body and "lw_tail" not in body


def test_loops_the_tail_cannot_mask_keep_the_scalar_remainder():
    """A sum across the lanes (folded after the loop), a reversed load, an update in place
    (`R[j] +=` in a loop over rows i: the next row's load of R[j] would wait for a masked
    store to reach the cache; a plain one forwards)."""
    total = _body("kernel total(X: f32[N]) -> s: f32[] { s[] += X[i] }",
                  S().vectorize("s", "i"), simd.AVX512)
    flip = _body("kernel flip(X: f32[N]) -> Y: f32[N] { Y[i] = X[N - 1 - i] * 2.0 }",
                 S().vectorize("Y", "i"), simd.AVX512)
    update = _body(UPDATE, S().reorder("S1", "i", "j").vectorize("S1", "j"), simd.AVX512)
    for body in (total, flip, update.split("#if ")[-1]):
        assert "_mm512" in body and "lw_tail" not in body and "+= 1) {" in body.split("#else")[0]


@pytest.mark.parametrize("n", [1, 5, 8, 15, 16, 17, 31, 33, 70])
def test_every_remainder_length_gives_numpys_result(n):
    rng = np.random.default_rng(n)
    axpy = loopweave.compile(AXPY, schedule=S().vectorize("Y", "i"), tuning_db=False)
    x, y = rng.random(n), rng.random(n)
    want = y + 2.5 * x + x * x * 0.5 - x * x * x * 0.125 + y * 0.0625
    axpy(2.5, x, y)
    np.testing.assert_allclose(y, want, rtol=1e-14)
    mixed = loopweave.compile(MIXED, schedule=S().vectorize("Y", "i").vectorize("Z", "i"),
                              tuning_db=False)
    x = (rng.random(n, dtype=np.float32) * 2).astype(np.float32)
    k = rng.integers(-9, 9, n).astype(np.int32)
    y, z = mixed(x, k, np.float32(1.0))
    np.testing.assert_allclose(y, np.where(x > 1, np.exp(x) / x + x * 0.5, k + x * x * 0.25),
                               rtol=2e-6)
    np.testing.assert_array_equal(z, np.maximum(k * 3 + k * k - k * 5, 7 + k * 2))
    rows = loopweave.compile(ROWS, schedule=S().vectorize("B", "j"), tuning_db=False)
    a, s = rng.random((3, n)), rng.random(3)
    want = a * s[:, None] + 1.0 + a * a * 0.5 - a * 0.25 + (s * s)[:, None]
    np.testing.assert_allclose(rows(a, s), want, rtol=1e-14)
    # y[j] kept in a register across the inner loop over i: a masked load and store
    mv = loopweave.compile(MV, schedule=S().reorder("y", "j", "i").vectorize("y", "j"),
                           tuning_db=False)
    a, x = rng.random((5, n), dtype=np.float32), rng.random(5, dtype=np.float32)
    np.testing.assert_allclose(mv(a, x), x @ a + (a * a * 0.5 - a * 0.25).sum(0), rtol=1e-5)


def test_a_target_kept_in_a_register_across_an_inner_loop_is_masked_too():
    body = _body(MV, S().reorder("y", "j", "i").vectorize("y", "j"), simd.AVX512)
    update = next(part for part in body.split("#if ") if "for (int64_t c1" in part)
    update = update.split("#else")[0]  # the intrinsics, not the plain loop
    assert update.count("_mm512_maskz_loadu_ps(lw_tail") == 1 + 4  # y, then A's 4 loads
    assert update.count("_mm512_mask_storeu_ps(&y[c0], lw_tail") == 1
    assert "_mm512_maskz_loadu_ps(lw_tail" in update and "c0 += 1)" not in update


def _before_unmapped_page(count: int, dtype) -> np.ndarray:
    """A writable array of `count` elements that ends where an unreadable page begins."""
    page = mmap.PAGESIZE
    buffer = mmap.mmap(-1, 2 * page)
    start = ctypes.addressof(ctypes.c_char.from_buffer(buffer))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    if libc.mprotect(start + page, page, 0) != 0:  # PROT_NONE
        pytest.skip(f"mprotect failed (errno {ctypes.get_errno()})")
    nbytes = count * np.dtype(dtype).itemsize
    return np.frombuffer(buffer, dtype, count, page - nbytes)  # (it keeps the mapping)


@pytest.mark.skipif(not _host_has_avx512(), reason="the masked tail is AVX-512's; this CPU "
                    "has no avx512f")
@pytest.mark.parametrize("n", [3, 13, 21])
def test_the_masked_lanes_touch_nothing_past_the_arrays(n):
    """X and Y end where a PROT_NONE page begins: a lane past the end read or written would
    kill the process."""
    axpy = loopweave.compile(AXPY, schedule=S().vectorize("Y", "i"), tuning_db=False)
    assert "lw_tail" in axpy.source
    x, y = _before_unmapped_page(n, np.float64), _before_unmapped_page(n, np.float64)
    x[:] = np.arange(n)
    y[:] = 1.0
    axpy(0.5, x, y)
    x = np.arange(n, dtype=np.float64)
    np.testing.assert_allclose(y, 1.0 + 0.5 * x + x * x * 0.5 - x * x * x * 0.125 + 0.0625,
                               rtol=1e-14)
