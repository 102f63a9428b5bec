"""Arg-reductions: `idx[i] argmax= X[i, j]` and `argmin=` against numpy's argmax/argmin.

Odd sizes (1, 7, 1003: the SIMD path's remainders), ties (the first index wins), negative
values, -inf and NaN (the first NaN wins, as numpy), f32/f64/int values, a `where` range, an
enclosing `for` loop, every target (cpu, aarch64 and Cortex-M under QEMU, Triton's interpreter,
CUDA's emulation), and the errors for what is refused.
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported: no GPU here

import platform  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import loopweave  # noqa: E402
from loopweave.errors import DSLTypeError, ScheduleError  # noqa: E402

ARGMAX = """
kernel rows(X: f32[M, N]) -> (hi: i64[M], lo: i32[M]) {
    hi[i] argmax= X[i, j]
    lo[i] argmin= X[i, j]
}
"""

_compiled: dict[tuple, object] = {}


def compiled(source: str, target: str = "cpu"):
    key = (source, target)
    if key not in _compiled:
        options = {"emulate": True} if target == "cuda" else {}
        _compiled[key] = loopweave.compile(source, target, tuning_db=False, **options)
    return _compiled[key]


def special_rows(m: int, n: int, dtype, seed: int) -> np.ndarray:
    """Random values with rows of ties, negatives only, -inf, +inf and NaN mixed in."""
    r = np.random.default_rng(seed)
    x = r.standard_normal((m, n)).astype(dtype)
    x[::3] = np.round(x[::3])  # many ties among small integers
    if m > 1:
        x[1] = -np.abs(x[1]) - 1
    if m > 2:
        x[2] = -np.inf
    if m > 3 and n > 2:
        x[3, n // 2] = np.inf
        x[3, n - 1] = np.inf
    if m > 4:
        x[4, n // 3] = np.nan
        x[4, n - 1] = np.nan
    if m > 5:
        x[5] = np.nan
    if m > 6:
        x[6] = 0.0
        x[6, ::2] = -0.0  # -0.0 == 0.0: a tie
    if m > 7 and n > 100:  # inf + -inf in one SIMD sum: the scalar loop decides
        x[7, 40], x[7, 48], x[7, 72] = np.inf, -np.inf, np.inf
    return x


@pytest.mark.parametrize(("m", "n"), [(1, 1), (7, 1), (1, 7), (7, 7), (9, 1003), (3, 70000)])
@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_rows_match_numpy(m, n, dtype):
    kernel = compiled(ARGMAX.replace("f32", dtype))
    x = special_rows(m, n, np.float32 if dtype == "f32" else np.float64, m * n)
    hi, lo = kernel(x)
    assert hi.dtype == np.int64 and lo.dtype == np.int32
    np.testing.assert_array_equal(hi, np.argmax(x, axis=1))
    np.testing.assert_array_equal(lo, np.argmin(x, axis=1))


def test_the_cpu_default_runs_the_row_loop_in_simd_with_a_pair_per_lane():
    kernel = compiled(ARGMAX)
    if "_mm256_" not in kernel.source and "_mm512_" not in kernel.source:
        pytest.skip("the host compiler has neither AVX2 nor AVX-512")
    assert "lw_base" in kernel.source  # backends/simd_arg.py's loop
    # a row that only the lanes' fold decides: the best value in every lane, first one wins
    x = np.zeros((2, 1003), np.float32)
    x[0, [5, 37, 200, 998]] = 3.0
    x[1, [999, 1000, 640, 64]] = -1.0
    x[1] = -x[1]
    hi, lo = kernel(x)
    assert list(hi) == [5, 64] and list(lo) == [0, 0]


def test_integer_values_columns_and_an_expression():
    kernel = compiled("""
    kernel f(A: i32[M, N], X: f64[M, N]) -> (c: i64[N], r: i64[M]) {
        c[j] argmax= A[i, j]
        r[i] argmin= abs(X[i, j] - 0.5)
    }
    """)
    r = np.random.default_rng(2)
    a = r.integers(-5, 5, size=(37, 13)).astype(np.int32)
    x = r.random((37, 13))
    c, rr = kernel(a, x)
    np.testing.assert_array_equal(c, np.argmax(a, axis=0))
    np.testing.assert_array_equal(rr, np.argmin(np.abs(x - 0.5), axis=1))


def test_a_where_range_an_empty_range_and_a_for_loop():
    kernel = compiled("""
    kernel f(X: f32[B, M, N], n: i32) -> (t: i64[M], p: i64[B, M]) {
        assume B >= 1, N >= n
        t[i] argmax= X[0, i, j]   where j in i:n
        for b in 0:B {
            p[b, i] argmax= X[b, i, j]
        }
    }
    """)
    x = special_rows(3 * 11, 17, np.float32, 5).reshape(3, 11, 17)
    t, p = kernel(x, 9)
    want = [i + int(np.argmax(x[0, i, i:9])) if i < 9 else -1 for i in range(11)]
    np.testing.assert_array_equal(t, want)  # an empty range (i >= 9) gives -1
    np.testing.assert_array_equal(p, np.argmax(x, axis=2))


def _needs(target: str) -> None:
    tools = {"aarch64": ("aarch64-linux-gnu-gcc", "qemu-aarch64"),
             "cortex-m4": ("arm-none-eabi-gcc", "qemu-system-arm"),
             "cortex-m55": ("arm-none-eabi-gcc", "qemu-system-arm"), "cuda": ("g++",)}
    if target == "triton":
        pytest.importorskip("triton", reason="triton not installed")
        pytest.importorskip("torch", reason="torch not installed")
        if os.environ.get("TRITON_INTERPRET") != "1":
            pytest.skip("TRITON_INTERPRET was set to something else before the tests")
    for tool in tools.get(target, ()):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (make toolchains)")


@pytest.mark.parametrize("target", ["aarch64", "cortex-m4", "cortex-m55", "triton", "cuda"])
def test_every_target_matches_numpy(target):
    _needs(target)
    kernel = compiled(ARGMAX, target)
    for m, n in [(1, 1), (7, 7), (9, 1003)]:
        x = special_rows(m, n, np.float32, n)
        hi, lo = kernel(x)
        np.testing.assert_array_equal(hi, np.argmax(x, axis=1), err_msg=f"{target} {m}x{n}")
        np.testing.assert_array_equal(lo, np.argmin(x, axis=1), err_msg=f"{target} {m}x{n}")


# -- refusals ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "message"), [
    ("y[i] argmax= X[i, j]", r"argmax= writes an index, but 'y' is f32; declare it i32 or i64"),
    ("k[i] argmax= X[i, i]", r"needs exactly one reduced index variable .*here none"),
    ("k[0] argmin= X[i, j]", r"needs exactly one reduced index variable .*here 'i', 'j'"),
    ("k_best[i] = X[i, 0]\n        k[i] argmax= X[i, j]", r"keeps its best values? in 'k_best'"),
])
def test_wrong_uses_are_refused_with_their_position(body, message):
    source = f"""
    kernel f(X: f32[N, N]) -> (y: f32[N], k: i64[N]) {{
        y[i] = X[i, i]
        {body}
    }}
    """
    with pytest.raises(DSLTypeError, match=message) as info:
        loopweave.compile(source, tuning_db=False)
    assert info.value.line is not None and info.value.column is not None



def test_a_written_schedule_tiles_the_pair_and_keeps_it_together():
    source = """
    kernel am(X: f32[M, N]) -> idx: i64[M] {
        idx[i] argmax= X[i, j]
    }
    """
    s = loopweave.Schedule()  # S2: the index update, S3: the best value's max=
    for stmt in ("S2", "S3"):
        s.split(stmt, "j", 64)
        s.vectorize(stmt, "j")
    kernel = loopweave.compile(source, tuning_db=False, schedule=s)
    x = special_rows(9, 1003, np.float32, 3)
    x[8, 500:] = 9.0  # the best value first in a later tile, then again
    np.testing.assert_array_equal(kernel(x), np.argmax(x, axis=1))
    apart = loopweave.Schedule()
    apart.split("S2", "j", 64)  # the update's loop no longer the best value's
    with pytest.raises(ScheduleError, match="idx_best"):
        loopweave.compile(source, tuning_db=False, schedule=apart)


def test_the_avx512_loop_builds_and_runs_where_the_cpu_has_it():
    """Built for AVX-512 on any x86 host with gcc (the intrinsics type-check); run where the
    processor has AVX-512F."""
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("not an x86 host")
    source = ARGMAX.replace("f32", "f64") + ARGMAX.replace("kernel rows", "kernel rows32")
    try:
        kernel = loopweave.compile(source, kernel="rows", tuning_db=False,
                                   cflags=["-O3", "-march=skylake-avx512"])
        kernel32 = loopweave.compile(source, kernel="rows32", tuning_db=False,
                                     cflags=["-O3", "-march=skylake-avx512"])
    except loopweave.errors.CompileError as e:
        pytest.skip(f"the C compiler does not build for skylake-avx512: {e}")
    assert "_mm512_cmp_pd_mask" in kernel.source and "_mm512_cmp_ps_mask" in kernel32.source
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists() or "avx512f" not in cpuinfo.read_text():
        pytest.skip("this processor has no AVX-512F")
    for k, dtype in ((kernel, np.float64), (kernel32, np.float32)):
        x = special_rows(9, 1003, dtype, 11)
        hi, lo = k(x)
        np.testing.assert_array_equal(hi, np.argmax(x, axis=1))
        np.testing.assert_array_equal(lo, np.argmin(x, axis=1))


def test_a_temporary_index_is_i64_and_reads_like_any_temporary():
    kernel = compiled("""
    kernel f(X: f64[M, N]) -> y: f64[M] {
        t[i] argmin= X[i, j]
        y[i] = f64(t[i]) * 2.0
    }
    """)
    x = special_rows(8, 33, np.float64, 4)
    np.testing.assert_array_equal(kernel(x), 2.0 * np.argmin(x, axis=1))


# -- top-k: a rank variable on the left ---------------------------------------------------------

TOPK = """
kernel top(X: f32[M, N]) -> (vals: f32[M, 8], idx: i64[M, 8], low: i32[M, 3]) {
    idx[i, t] argmax= X[i, j]
    vals[i, t] = idx_best[i, t]
    low[i, r] argmin= X[i, j]
}
"""


def stable_topk(x: np.ndarray, k: int, largest: bool = True) -> np.ndarray:
    """The indices of the k best of each row: NaN first, equal values in index order."""
    key = np.where(np.isnan(x), -np.inf, -x if largest else x)
    return np.argsort(key, axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize(("m", "n"), [(1, 8), (7, 9), (9, 1003), (2, 5000)])
@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_topk_matches_a_stable_sort_and_torch(m, n, dtype):
    kernel = compiled(TOPK.replace("f32", dtype))
    x = special_rows(m, n, np.float32 if dtype == "f32" else np.float64, m + n)
    vals, idx, low = kernel(x)
    want = stable_topk(x, 8)
    np.testing.assert_array_equal(idx, want)
    np.testing.assert_array_equal(vals, np.take_along_axis(x, want, axis=1))
    np.testing.assert_array_equal(low, stable_topk(x, 3, largest=False))
    torch = pytest.importorskip("torch")
    ordinary = ~np.isnan(x).any(axis=1)  # torch orders NaN rows its own way
    tv, _ = torch.topk(torch.from_numpy(x[ordinary]), 8, dim=1)
    np.testing.assert_array_equal(vals[ordinary], tv.numpy())


def test_topk_of_a_range_shorter_than_k_leaves_empty_slots():
    kernel = compiled("""
    kernel top(X: f32[M, N], n: i32) -> idx: i64[M, 4] {
        assume N >= n
        idx[i, t] argmax= X[i, j]   where j in 0:n
    }
    """)
    x = np.arange(12, dtype=np.float32).reshape(2, 6)
    x[1] = -x[1]  # the second row falls: its best are the first
    np.testing.assert_array_equal(kernel(x, 2), [[1, 0, -1, -1], [0, 1, -1, -1]])
    np.testing.assert_array_equal(kernel(x, 6), [[5, 4, 3, 2], [0, 1, 2, 3]])


@pytest.mark.parametrize("target", ["aarch64", "cortex-m4", "cortex-m55", "triton", "cuda"])
def test_topk_on_every_target(target):
    _needs(target)
    kernel = compiled(TOPK, target)
    x = special_rows(7, 37, np.float32, 8)
    vals, idx, low = kernel(x)
    np.testing.assert_array_equal(idx, stable_topk(x, 8), err_msg=target)
    np.testing.assert_array_equal(low, stable_topk(x, 3, largest=False), err_msg=target)


@pytest.mark.parametrize(("body", "message"), [
    ("k[i, t] argmax= X[i, j]", r"dimension 1 of 'k' is long, which must be a constant"),
    ("e[i, t] argmax= X[i, j]", r"keeps the 8 best values, but the loop over 'j' never has 8"),
    ("e[i, t] argmax= X[i, j] + 0.0 * f32(u)   where u in 0:2",
     r"needs exactly one reduced index variable"),
])
def test_wrong_top_k_uses_are_refused(body, message):
    source = f"""
    kernel f(X: f32[N, 5], K: i32) -> (k: i64[N, K], e: i64[N, 8]) {{
        {body}
    }}
    """
    with pytest.raises(DSLTypeError, match=message) as info:
        loopweave.compile(source, tuning_db=False)
    assert info.value.line is not None and info.value.column is not None


def test_a_left_variable_used_by_a_where_range_is_no_rank():
    """`i` is not on the right but bounds j: the argmax of each prefix, not a top-k."""
    kernel = compiled("""
    kernel prefix(X: f32[N]) -> idx: i64[N] {
        idx[i] argmax= X[j]   where j in 0:i + 1
    }
    """)
    x = special_rows(1, 50, np.float32, 6)[0]
    x[30] = np.nan
    np.testing.assert_array_equal(kernel(x), [np.argmax(x[:i + 1]) for i in range(50)])
