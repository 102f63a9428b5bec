"""exp, tanh and sigmoid of f32 vectors in intrinsics (backends/c_math.VECTOR_MATH): the same
arithmetic as the scalar `lw_expf`, `lw_tanhf` and `lw_sigmoidf`, so a vector loop and its
remainder (and a `simd=False` build) agree bit for bit; close to numpy everywhere, with the
edges right (overflow to inf, gradual underflow, NaN, the infinities)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import loopweave

S = loopweave.Schedule
FUNCTIONS = ("exp", "tanh", "sigmoid")
SCHEDULE = S().vectorize("Y", "i")
X86 = {"avx512": (("-O3", "-march=sapphirerapids"), "avx512f", 16),
       "avx2": (("-O3", "-march=x86-64-v3"), "avx2", 8)}


def kernel_text(f: str) -> str:
    return f"kernel v{f}(X: f32[N]) -> Y: f32[N] {{ Y[i] = {f}(X[i]) }}"


def numpy_f(f: str, x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        x64 = x.astype(np.float64)
        y = {"exp": np.exp, "tanh": np.tanh,
             "sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v))}[f](x64)
        return y.astype(np.float32)


def _host_has(flag: str) -> bool:
    try:
        return flag in Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False


def inputs() -> np.ndarray:
    """Edges (overflow, underflow, the clamps, NaN, infinities, zeros, subnormals), a dense
    sweep of the range where exp is finite and non-zero, and random bit patterns; an odd count,
    so the scalar remainder runs too."""
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 88.72, 88.7228, 88.73,
                        89.0, 89.5, 1e30, -87.3, -103.97, -104.0, -104.5, -1e30, 1e-40,
                        -1e-45, 0.5, -0.5, 1.0, np.log(2.0)], np.float32)
    sweep = np.linspace(-105.0, 90.0, 200_001, dtype=np.float32)
    bits = np.random.default_rng(7).integers(0, 2**32, 100_000, dtype=np.uint64)
    return np.concatenate([special, sweep, bits.astype(np.uint32).view(np.float32)])


def assert_same_bits(got: np.ndarray, want: np.ndarray, x: np.ndarray) -> None:
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    same = np.isnan(want) | (got.view(np.uint32) == want.view(np.uint32))
    assert same.all(), (x[~same][:5], got[~same][:5], want[~same][:5])


#: ulp of the f32 result within which each function stays (exp: Cephes' polynomial; tanh and
#: sigmoid: a division and a subtraction after exp)
ULPS = {"exp": 1.5, "tanh": 3.0, "sigmoid": 3.0}


def assert_close_to_numpy(f: str, got: np.ndarray, x: np.ndarray) -> None:
    """Within ULPS[f] of the function in double precision, rounded to f32; inf, 0 and NaN
    where it gives them."""
    want = numpy_f(f, x)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    normal = np.isfinite(want) & (np.abs(want) >= np.finfo(np.float32).tiny)
    err = np.abs(got[normal].astype(np.float64) - want[normal]) / np.spacing(np.abs(want[normal]))
    assert err.max() <= ULPS[f], (f, err.max(), x[normal][np.argmax(err)])
    edge = ~np.isnan(want) & ~normal
    # subnormal results: a few of their ulps (1.4e-45); sigmoid below -88.7 is 0, as
    # 1 / (1 + expf(-x)) is once expf(-x) overflows
    atol = np.finfo(np.float32).tiny if f == "sigmoid" else 3e-45
    assert np.allclose(got[edge], want[edge], rtol=4e-7, atol=atol)


@pytest.mark.parametrize("f", FUNCTIONS)
@pytest.mark.parametrize("isa", list(X86))
def test_vector_math_is_the_scalar_math_bit_for_bit(isa, f):
    cflags, cpu_flag, lanes = X86[isa]
    if not _host_has(cpu_flag):
        pytest.skip(f"this CPU has no {cpu_flag}")
    vector = loopweave.compile(kernel_text(f), schedule=SCHEDULE, cflags=cflags,
                               tuning_db=False, cost_model=False)
    scalar = loopweave.compile(kernel_text(f), schedule=SCHEDULE, cflags=cflags,
                               tuning_db=False, cost_model=False, simd=False)
    helper = f"lw_{f}f_v{lanes}"
    assert f"= {helper}(" in vector.source and helper not in scalar.source
    x = inputs()
    got = vector(x)
    assert_same_bits(got, scalar(x), x)
    assert_close_to_numpy(f, got, x)


@pytest.mark.parametrize("f", FUNCTIONS)
def test_vector_math_on_neon(f):
    try:
        k = loopweave.compile(kernel_text(f), target="aarch64", schedule=SCHEDULE,
                              tuning_db=False)
    except loopweave.TargetError as e:
        pytest.skip(f"aarch64 cannot run here: {e}")
    assert f"= lw_{f}f_v4(" in k.source
    x = inputs()[:20_001]  # QEMU: a smaller sample
    assert_close_to_numpy(f, k(x), x)


def test_softmax_exp_loop_is_intrinsics():
    """The default schedule's softmax: every loop of a row in intrinsics, the exp one too."""
    src = (Path(__file__).resolve().parent.parent / "examples/kernels/softmax.lw").read_text()
    k = loopweave.compile(src, tuning_db=False, cost_model=False)
    x = np.random.default_rng(3).standard_normal((5, 37)).astype(np.float32) * 30
    y = k(x)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(y, e / e.sum(axis=1, keepdims=True), rtol=3e-6, atol=1e-30)
    if "__AVX512F__" in k.source and _host_has("avx512f"):
        assert "lw_expf_v16(" in k.source.split("void lw_softmax")[1]
