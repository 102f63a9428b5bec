"""Random inputs and numpy reference results for the kernels in `examples/kernels/`.

This module is the numeric ground truth shared by `examples/demo.py` and `tests/test_kernels.py`.
`examples/` is not a package: scripts in this folder import it as `references`; tests load it by
path (see `tests/test_kernels.py`).

For every kernel `examples/kernels/<name>.lw` there is one `Case` in `KERNELS`:

* `case.make_inputs(sizes, seed)` returns the call arguments as a dict in parameter order
  (numpy arrays, C-contiguous, of the declared dtype; numpy scalars of the declared dtype);
* `case.reference(**args)` returns a dict of the expected outputs (in the declared output order)
  and the expected final values of the `inout` arrays, each with the kernel's declared dtype.
  It never modifies its arguments.

References compute in float64 (also for f32/f16 kernels) and round to the declared dtype at the
end; integer references are exact and wrap like numpy. In-place kernels whose answer depends on
the iteration order (trmm, lu, seidel_2d) reproduce the order the DSL defines: statement
instances in program order, each statement's iterations in lexicographic order of its
variables. `tests/test_references.py` checks every reference against a literal loop transcription
of its kernel on small sizes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

KERNEL_DIR = Path(__file__).resolve().parent / "kernels"

Sizes = Mapping[str, int]
Args = dict[str, Any]

# dtype name -> (rtol, atol). An element passes when
#     |got - expected| <= atol * scale + rtol * |expected|,   scale = max(1, max |expected|),
# i.e. atol is relative to the magnitude of the whole result. Integers must match exactly.
TOLERANCES: dict[str, tuple[float, float]] = {
    "float64": (1e-9, 1e-11),
    "float32": (1e-4, 1e-5),
    "float16": (2e-3, 1e-3),  # about 2 ulp: kernel and reference may round differently once
    "bfloat16": (1.6e-2, 8e-3),
}


@dataclass(frozen=True)
class Case:
    """One example kernel: how to make its inputs, its numpy reference, and its default sizes."""

    name: str
    make_inputs: Callable[[Sizes, int], Args]
    reference: Callable[..., dict[str, np.ndarray]]
    outputs: tuple[str, ...] = ()
    inouts: tuple[str, ...] = ()
    sizes: tuple[dict[str, int], ...] = ()
    demo_sizes: dict[str, int] = field(default_factory=dict)
    tol_scale: float = 1.0

    @property
    def path(self) -> Path:
        """The kernel's source file."""
        return KERNEL_DIR / f"{self.name}.lw"

    def source(self) -> str:
        """The kernel's DSL source text."""
        return self.path.read_text()

    def expected(self, args: Args) -> dict[str, np.ndarray]:
        """Reference results for `args` (outputs first, then inout arrays), never mutating args."""
        return self.reference(**{k: _copy(v) for k, v in args.items()})


def _copy(v: Any) -> Any:
    return v.copy() if isinstance(v, np.ndarray) else v


# --------------------------------------------------------------------------------------------
# Input helpers

def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _uniform(rng: np.random.Generator, shape: tuple[int, ...], dtype=np.float32,
             lo: float = -1.0, hi: float = 1.0) -> np.ndarray:
    return np.ascontiguousarray(rng.uniform(lo, hi, size=shape).astype(dtype))


def _f64(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


# --------------------------------------------------------------------------------------------
# Linear algebra

def matmul_inputs(s: Sizes, seed: int) -> Args:
    """A: f32[M, K], B: f32[K, N]."""
    r = _rng(seed)
    return {"A": _uniform(r, (s["M"], s["K"])), "B": _uniform(r, (s["K"], s["N"]))}


def matmul_ref(A, B):
    """C = A @ B."""
    return {"C": _f32(_f64(A) @ _f64(B))}


def bmm_inputs(s: Sizes, seed: int) -> Args:
    """A: f32[NB, M, K], B: f32[NB, K, N]."""
    r = _rng(seed)
    return {"A": _uniform(r, (s["NB"], s["M"], s["K"])),
            "B": _uniform(r, (s["NB"], s["K"], s["N"]))}


def bmm_ref(A, B):
    """C[b] = A[b] @ B[b]."""
    return {"C": _f32(np.matmul(_f64(A), _f64(B)))}


def gemm_inputs(s: Sizes, seed: int) -> Args:
    """alpha, beta: f32; C: inout f32[M, N]; A: f32[M, K]; B: f32[K, N]."""
    r = _rng(seed)
    return {"alpha": np.float32(1.5), "beta": np.float32(-0.75),
            "C": _uniform(r, (s["M"], s["N"])), "A": _uniform(r, (s["M"], s["K"])),
            "B": _uniform(r, (s["K"], s["N"]))}


def gemm_ref(alpha, beta, C, A, B):
    """C = alpha * A @ B + beta * C."""
    return {"C": _f32(float(alpha) * (_f64(A) @ _f64(B)) + float(beta) * _f64(C))}


def two_mm_inputs(s: Sizes, seed: int) -> Args:
    """alpha, beta: f32; A[NI, NK], B[NK, NJ], C[NJ, NL]; D: inout [NI, NL]."""
    r = _rng(seed)
    ni, nj, nk, nl = s["NI"], s["NJ"], s["NK"], s["NL"]
    return {"alpha": np.float32(1.5), "beta": np.float32(1.25),
            "A": _uniform(r, (ni, nk)), "B": _uniform(r, (nk, nj)), "C": _uniform(r, (nj, nl)),
            "D": _uniform(r, (ni, nl))}


def two_mm_ref(alpha, beta, A, B, C, D):
    """D = alpha * A @ B @ C + beta * D."""
    tmp = float(alpha) * (_f64(A) @ _f64(B))
    return {"D": _f32(tmp @ _f64(C) + float(beta) * _f64(D))}


def atax_inputs(s: Sizes, seed: int) -> Args:
    """A: f32[M, N], x: f32[N]."""
    r = _rng(seed)
    return {"A": _uniform(r, (s["M"], s["N"])), "x": _uniform(r, (s["N"],))}


def atax_ref(A, x):
    """y = A^T @ (A @ x)."""
    a = _f64(A)
    return {"y": _f32(a.T @ (a @ _f64(x)))}


def bicg_inputs(s: Sizes, seed: int) -> Args:
    """A: f32[N, M], r: f32[N], p: f32[M]."""
    g = _rng(seed)
    return {"A": _uniform(g, (s["N"], s["M"])), "r": _uniform(g, (s["N"],)),
            "p": _uniform(g, (s["M"],))}


def bicg_ref(A, r, p):
    """s = A^T @ r, q = A @ p."""
    a = _f64(A)
    return {"s": _f32(a.T @ _f64(r)), "q": _f32(a @ _f64(p))}


def mvt_inputs(s: Sizes, seed: int) -> Args:
    """x1, x2: inout f32[N]; y1, y2: f32[N]; A: f32[N, N]."""
    r = _rng(seed)
    n = s["N"]
    return {"x1": _uniform(r, (n,)), "x2": _uniform(r, (n,)), "y1": _uniform(r, (n,)),
            "y2": _uniform(r, (n,)), "A": _uniform(r, (n, n))}


def mvt_ref(x1, x2, y1, y2, A):
    """x1 += A @ y1, x2 += A^T @ y2."""
    a = _f64(A)
    return {"x1": _f32(_f64(x1) + a @ _f64(y1)), "x2": _f32(_f64(x2) + a.T @ _f64(y2))}


def syrk_inputs(s: Sizes, seed: int) -> Args:
    """alpha, beta: f32; C: inout f32[N, N]; A: f32[N, M]."""
    r = _rng(seed)
    return {"alpha": np.float32(1.5), "beta": np.float32(1.25),
            "C": _uniform(r, (s["N"], s["N"])), "A": _uniform(r, (s["N"], s["M"]))}


def syrk_ref(alpha, beta, C, A):
    """Lower triangle (diagonal included) of C = alpha * A @ A^T + beta * C; upper kept."""
    a = _f64(A)
    full = float(alpha) * (a @ a.T) + float(beta) * _f64(C)
    lower = np.tril(np.ones(C.shape, dtype=bool))
    return {"C": _f32(np.where(lower, full, _f64(C)))}


def trmm_inputs(s: Sizes, seed: int) -> Args:
    """alpha: f32; A: f32[M, M]; B: inout f32[M, N]."""
    r = _rng(seed)
    return {"alpha": np.float32(1.5), "A": _uniform(r, (s["M"], s["M"])),
            "B": _uniform(r, (s["M"], s["N"]))}


def trmm_ref(alpha, A, B):
    """B = alpha * (B + strict_lower(A)^T @ B), all of B's reads seeing its original values.

    Row i of B reads rows k > i, which the lexicographic (i, j, k) order updates later, so the
    in-place loop is the same as the out-of-place product.
    """
    b = _f64(B)
    return {"B": _f32(float(alpha) * (b + np.tril(_f64(A), -1).T @ b))}




def lu_inputs(s: Sizes, seed: int) -> Args:
    """A: inout f32[N, N], diagonally dominant so that LU without pivoting is well conditioned."""
    r = _rng(seed)
    n = s["N"]
    a = r.uniform(-1.0, 1.0, size=(n, n)) + n * np.eye(n)
    return {"A": _f32(a)}


def lu_ref(A):
    """In-place LU without pivoting (right-looking, the DSL's k-loop order)."""
    a = _f64(A).copy()
    n = a.shape[0]
    for k in range(n):
        a[k + 1:, k] /= a[k, k]
        a[k + 1:, k + 1:] -= np.outer(a[k + 1:, k], a[k, k + 1:])
    return {"A": _f32(a)}




# --------------------------------------------------------------------------------------------
# Stencils

def jacobi_1d_inputs(s: Sizes, seed: int) -> Args:
    """A, B: inout f32[N]; T: i32."""
    r = _rng(seed)
    return {"A": _uniform(r, (s["N"],)), "B": _uniform(r, (s["N"],)), "T": np.int32(s["T"])}


def jacobi_1d_ref(A, B, T):
    """T rounds of B[1:-1] = 3-point mean of A, then A[1:-1] = 3-point mean of B."""
    a, b = _f64(A).copy(), _f64(B).copy()
    for _ in range(int(T)):
        b[1:-1] = (a[:-2] + a[1:-1] + a[2:]) / 3.0
        a[1:-1] = (b[:-2] + b[1:-1] + b[2:]) / 3.0
    return {"A": _f32(a), "B": _f32(b)}


def jacobi_2d_inputs(s: Sizes, seed: int) -> Args:
    """A, B: inout f32[N, N]; T: i32."""
    r = _rng(seed)
    n = s["N"]
    return {"A": _uniform(r, (n, n)), "B": _uniform(r, (n, n)), "T": np.int32(s["T"])}


def _five_point(x: np.ndarray) -> np.ndarray:
    return 0.2 * (x[1:-1, 1:-1] + x[1:-1, :-2] + x[1:-1, 2:] + x[2:, 1:-1] + x[:-2, 1:-1])


def jacobi_2d_ref(A, B, T):
    """T rounds of B[interior] = 5-point mean of A, then A[interior] = 5-point mean of B."""
    a, b = _f64(A).copy(), _f64(B).copy()
    for _ in range(int(T)):
        b[1:-1, 1:-1] = _five_point(a)
        a[1:-1, 1:-1] = _five_point(b)
    return {"A": _f32(a), "B": _f32(b)}


def seidel_2d_inputs(s: Sizes, seed: int) -> Args:
    """A: inout f32[N, N]; T: i32."""
    r = _rng(seed)
    n = s["N"]
    return {"A": _uniform(r, (n, n)), "T": np.int32(s["T"])}


def seidel_2d_ref(A, T):
    """T in-place Gauss-Seidel sweeps of the 9-point mean, points in row-major order.

    When point (i, j) is updated, row i-1 and A[i, j-1] already hold this sweep's values and
    A[i, j], A[i, j+1] and row i+1 the previous ones. Per row, everything but A[i, j-1] is
    summed vectorised; the remaining recurrence along j runs as a scalar loop.
    """
    a = _f64(A).copy()
    n = a.shape[0]
    for _ in range(int(T)):
        for i in range(1, n - 1):
            up, mid, down = a[i - 1], a[i], a[i + 1]
            rest = (up[:-2] + up[1:-1] + up[2:] + mid[1:-1] + mid[2:]
                    + down[:-2] + down[1:-1] + down[2:])
            row = a[i].tolist()
            for j, c in enumerate(rest.tolist(), start=1):
                row[j] = (c + row[j - 1]) / 9.0
            a[i] = row
    return {"A": _f32(a)}




# --------------------------------------------------------------------------------------------
# Neural-network kernels

def softmax_inputs(s: Sizes, seed: int) -> Args:
    """X: f32[N, D] with a wide range, so that the max subtraction matters."""
    return {"X": _uniform(_rng(seed), (s["N"], s["D"]), lo=-8.0, hi=8.0)}


def softmax_ref(X):
    """Y = softmax(X) along rows."""
    x = _f64(X)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return {"Y": _f32(e / e.sum(axis=1, keepdims=True))}


def layernorm_inputs(s: Sizes, seed: int) -> Args:
    """X: f32[N, D] (with a row offset), gamma, beta: f32[D], eps: f32."""
    r = _rng(seed)
    n, d = s["N"], s["D"]
    x = r.uniform(-1.0, 1.0, size=(n, d)) * 2.0 + r.uniform(-3.0, 3.0, size=(n, 1))
    return {"X": _f32(x), "gamma": _uniform(r, (d,), lo=0.5, hi=1.5),
            "beta": _uniform(r, (d,)), "eps": np.float32(1e-5)}


def layernorm_ref(X, gamma, beta, eps):
    """Y = (X - mean) / sqrt(var + eps) * gamma + beta, per row, biased variance."""
    x = _f64(X)
    xc = x - x.mean(axis=1, keepdims=True)
    var = (xc * xc).mean(axis=1, keepdims=True)
    return {"Y": _f32(xc / np.sqrt(var + float(eps)) * _f64(gamma) + _f64(beta))}


def conv2d_inputs(s: Sizes, seed: int) -> Args:
    """X: f32[N, C, H, W], F: f32[K, C, R, S]."""
    r = _rng(seed)
    return {"X": _uniform(r, (s["N"], s["C"], s["H"], s["W"])),
            "F": _uniform(r, (s["K"], s["C"], s["R"], s["S"]))}


def conv2d_ref(X, F):
    """Y[n, k, y, x] = sum_{c, r, s} X[n, c, y + r, x + s] * F[k, c, r, s] (valid, stride 1)."""
    r, s = F.shape[2], F.shape[3]
    win = np.lib.stride_tricks.sliding_window_view(_f64(X), (r, s), axis=(2, 3))
    # win: [N, C, H-R+1, W-S+1, R, S]
    return {"Y": _f32(np.einsum("ncyxrs,kcrs->nkyx", win, _f64(F), optimize=True))}




def maxpool2d_inputs(s: Sizes, seed: int) -> Args:
    """X: f32[C, H, W]."""
    return {"X": _uniform(_rng(seed), (s["C"], s["H"], s["W"]))}


def maxpool2d_ref(X):
    """O[c, y, x] = max of the 2x2 window at (2y, 2x); an odd last row or column is dropped."""
    c, h, w = X.shape
    ho, wo = h // 2, w // 2
    win = X[:, :2 * ho, :2 * wo].reshape(c, ho, 2, wo, 2)
    return {"O": np.ascontiguousarray(win.max(axis=(2, 4)), dtype=np.float32)}


def attention_inputs(s: Sizes, seed: int) -> Args:
    """Q: f32[LQ, D], K: f32[LK, D], V: f32[LK, DV], scale = 1/sqrt(D)."""
    r = _rng(seed)
    d = s["D"]
    return {"Q": _uniform(r, (s["LQ"], d), lo=-2.0, hi=2.0),
            "K": _uniform(r, (s["LK"], d), lo=-2.0, hi=2.0),
            "V": _uniform(r, (s["LK"], s["DV"])), "scale": np.float32(1.0 / np.sqrt(d))}


def attention_ref(Q, K, V, scale):
    """O = softmax(scale * Q @ K^T, rows) @ V."""
    sc = float(scale) * (_f64(Q) @ _f64(K).T)
    e = np.exp(sc - sc.max(axis=1, keepdims=True))
    return {"O": _f32((e / e.sum(axis=1, keepdims=True)) @ _f64(V))}


def gelu_inputs(s: Sizes, seed: int) -> Args:
    """X: f32[N]."""
    return {"X": _uniform(_rng(seed), (s["N"],), lo=-4.0, hi=4.0)}


def gelu_ref(X):
    """Y = 0.5 * X * (1 + erf(X / sqrt(2)))."""
    from math import erf, sqrt

    x = _f64(X)
    return {"Y": _f32(0.5 * x * (1.0 + np.vectorize(erf)(x / sqrt(2.0))))}


# --------------------------------------------------------------------------------------------
# Integer, f64 and f16 kernels

def qmm_inputs(s: Sizes, seed: int) -> Args:
    """A: i8[M, K], B: i8[K, N], full int8 range."""
    r = _rng(seed)
    return {"A": r.integers(-128, 128, size=(s["M"], s["K"]), dtype=np.int8),
            "B": r.integers(-128, 128, size=(s["K"], s["N"]), dtype=np.int8)}


def qmm_ref(A, B):
    """C = A @ B exactly in int64, then wrapped to int32."""
    return {"C": (A.astype(np.int64) @ B.astype(np.int64)).astype(np.int32)}


def matmul_int4_inputs(s: Sizes, seed: int) -> Args:
    """X: f32[M, K], W: u8[K / 2, N] (two 4-bit weights a byte), scale: f32[N]; K even."""
    r = _rng(seed)
    m, k, n = s["M"], s["K"], s["N"]
    return {"X": _uniform(r, (m, k)),
            "W": r.integers(0, 256, size=(k // 2, n), dtype=np.uint8),
            "scale": _uniform(r, (n,), lo=0.01, hi=0.1)}


def unpack_int4(W: np.ndarray) -> np.ndarray:
    """u8[K/2, N] -> int64[K, N]: row 2m is the low nibble of W[m], row 2m+1 the high one."""
    q = np.empty((2 * W.shape[0], W.shape[1]), dtype=np.int64)
    q[0::2] = W & 15
    q[1::2] = W >> 4
    return q


def matmul_int4_ref(X, W, scale):
    """Y = X @ ((unpack(W) - 8) * scale)."""
    wd = (unpack_int4(W) - 8).astype(np.float64) * _f64(scale)
    return {"Y": _f32(_f64(X) @ wd)}


def covariance_inputs(s: Sizes, seed: int) -> Args:
    """float_n = N as f64; data: f64[N, M] with column offsets."""
    r = _rng(seed)
    n, m = s["N"], s["M"]
    data = r.uniform(-1.0, 1.0, size=(n, m)) + r.uniform(-2.0, 2.0, size=(1, m))
    return {"float_n": np.float64(n), "data": np.ascontiguousarray(data)}


def covariance_ref(float_n, data):
    """cov = sample covariance of data's columns (divisor float_n - 1)."""
    d = data - data.sum(axis=0) / float(float_n)
    return {"cov": (d.T @ d) / (float(float_n) - 1.0)}


def linear_f16_inputs(s: Sizes, seed: int) -> Args:
    """X: f16[M, K], W: f16[K, N], b: f16[N]."""
    r = _rng(seed)
    m, k, n = s["M"], s["K"], s["N"]
    return {"X": _uniform(r, (m, k), np.float16), "W": _uniform(r, (k, n), np.float16),
            "b": _uniform(r, (n,), np.float16)}


def linear_f16_ref(X, W, b):
    """Y = f16(X @ W + b), computed in float64 from the f16 values."""
    y = _f64(X) @ _f64(W) + _f64(b)
    return {"Y": np.ascontiguousarray(y.astype(np.float32).astype(np.float16))}


# --------------------------------------------------------------------------------------------
# Benchmark-suite kernels (benchmarks/suite.py): depthwise conv, fused RMSNorm + GELU, int8
# requantization, grouped 4-bit weights, selective scan

def depthwise_conv2d_inputs(s: Sizes, seed: int) -> Args:
    """X: f32[N, C, H, W], F: f32[C, R, S]."""
    r = _rng(seed)
    return {"X": _uniform(r, (s["N"], s["C"], s["H"], s["W"])),
            "F": _uniform(r, (s["C"], s["R"], s["S"]))}


def depthwise_conv2d_ref(X, F):
    """Y[n, c] = valid cross-correlation of X[n, c] with F[c]."""
    x, f = _f64(X), _f64(F)
    _, _, h, w = x.shape
    c, rr, ss = f.shape
    oh, ow = h - rr + 1, w - ss + 1
    y = np.zeros((x.shape[0], c, oh, ow))
    for r in range(rr):
        for s in range(ss):
            y += x[:, :, r:r + oh, s:s + ow] * f[None, :, r, s, None, None]
    return {"Y": _f32(y)}


def _gelu64(x: np.ndarray) -> np.ndarray:
    from math import erf, sqrt

    return 0.5 * x * (1.0 + np.vectorize(erf, otypes=[np.float64])(x / sqrt(2.0)))


def rmsnorm_gelu_inputs(s: Sizes, seed: int) -> Args:
    """X: f32[N, D], gamma: f32[D], eps: f32."""
    r = _rng(seed)
    return {"X": _uniform(r, (s["N"], s["D"]), lo=-3.0, hi=3.0),
            "gamma": _uniform(r, (s["D"],), lo=0.5, hi=1.5), "eps": np.float32(1e-5)}


def rmsnorm_gelu_ref(X, gamma, eps):
    """GELU(X / sqrt(mean(X^2 over the row) + eps) * gamma), exact (erf) GELU."""
    x = _f64(X)
    xn = x / np.sqrt((x * x).mean(axis=1, keepdims=True) + float(eps)) * _f64(gamma)
    return {"Y": _f32(_gelu64(xn))}


def qmm_requant_inputs(s: Sizes, seed: int) -> Args:
    """A: i8[M, K], B: i8[K, N], bias: i32[N]; multiplier / 2^shift maps the typical
    accumulator (about sqrt(K) * 128^2 / 3) to about 64, so the outputs use the int8 range.
    shift stays at most 31: the kernel's rounding term 1 << (shift - 1) is then exact even where
    the literal 1 is rendered as a 32-bit int."""
    r = _rng(seed)
    k = s["K"]
    scale = 64.0 / (np.sqrt(k) * 128.0 * 128.0 / 3.0)
    shift = min(31, 30 - int(np.floor(np.log2(scale))))
    return {"A": r.integers(-128, 128, size=(s["M"], k), dtype=np.int8),
            "B": r.integers(-128, 128, size=(k, s["N"]), dtype=np.int8),
            "bias": r.integers(-2000, 2000, size=(s["N"],), dtype=np.int32),
            "multiplier": np.int32(round(scale * 2.0**shift)), "shift": np.int32(shift),
            "zero_point": np.int32(3)}


def qmm_requant_ref(A, B, bias, multiplier, shift, zero_point):
    """clamp(((A @ B + bias) * multiplier + 2^(shift-1)) >> shift + zero_point) as int8;
    the accumulator and bias add wrap in int32, the product is exact in int64."""
    with np.errstate(over="ignore"):
        acc = (A.astype(np.int64) @ B.astype(np.int64)).astype(np.int32) + bias
    v = (acc.astype(np.int64) * int(multiplier) + (1 << (int(shift) - 1))) >> int(shift)
    out = v.astype(np.int32) + np.int32(zero_point)
    return {"C": np.ascontiguousarray(np.clip(out, -128, 127).astype(np.int8))}


INT4_GROUP = 128  # rows of K sharing one scale in matmul_int4_grouped.lw


def matmul_int4_grouped_inputs(s: Sizes, seed: int) -> Args:
    """X: f32[M, K], W: u8[K / 2, N], scales: f32[K / 128, N]; K a multiple of 128."""
    r = _rng(seed)
    m, k, n = s["M"], s["K"], s["N"]
    return {"X": _uniform(r, (m, k)),
            "W": r.integers(0, 256, size=(k // 2, n), dtype=np.uint8),
            "scales": _uniform(r, (k // INT4_GROUP, n), lo=0.01, hi=0.1)}


def dequantize_int4_grouped(W: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """float64[K, N]: (nibble - 8) * the scale of its group of 128 rows."""
    return (unpack_int4(W) - 8).astype(np.float64) * np.repeat(_f64(scales), INT4_GROUP, axis=0)


def matmul_int4_grouped_ref(X, W, scales):
    """Y = X @ dequantize(W, scales)."""
    return {"Y": _f32(_f64(X) @ dequantize_int4_grouped(W, scales))}


def selective_scan_inputs(s: Sizes, seed: int) -> Args:
    """x, delta: f32[T, D] (delta > 0, a step size); A: f32[D, NS] < 0 (a decay); B, C: f32[T, NS];
    h: f32[D, NS], the initial state."""
    r = _rng(seed)
    t, d, ns = s["T"], s["D"], s["NS"]
    return {"x": _uniform(r, (t, d)), "delta": _uniform(r, (t, d), lo=0.01, hi=0.2),
            "A": _uniform(r, (d, ns), lo=-2.0, hi=-0.1), "B": _uniform(r, (t, ns)),
            "C": _uniform(r, (t, ns)), "h": _uniform(r, (d, ns))}


def selective_scan_ref(x, delta, A, B, C, h):
    """Step by step over t: h = exp(delta[t] * A) * h + delta[t] * x[t] * B[t]; y[t] = h @ C[t]."""
    x, delta, a, b, c, state = map(_f64, (x, delta, A, B, C, h))
    state = state.copy()
    y = np.zeros(x.shape)
    for t in range(x.shape[0]):
        state = np.exp(delta[t][:, None] * a) * state + (delta[t] * x[t])[:, None] * b[t][None, :]
        y[t] = state @ c[t]
    return {"y": _f32(y), "h": _f32(state)}


# --------------------------------------------------------------------------------------------
# The table

def _case(name: str, outputs=(), inouts=(), sizes=(), demo=None, tol_scale=1.0) -> Case:
    g = globals()
    return Case(name, g[f"{name}_inputs"], g[f"{name}_ref"], tuple(outputs), tuple(inouts),
                tuple(sizes), dict(demo or sizes[-1]), tol_scale)


KERNELS: dict[str, Case] = {c.name: c for c in [
    _case("matmul", ["C"], sizes=[
        {"M": 7, "K": 13, "N": 33}, {"M": 16, "K": 32, "N": 16}, {"M": 1, "K": 1, "N": 1},
        {"M": 33, "K": 64, "N": 17}],
        demo={"M": 256, "K": 256, "N": 256}),
    _case("bmm", ["C"], sizes=[
        {"NB": 3, "M": 7, "K": 13, "N": 5}, {"NB": 2, "M": 16, "K": 32, "N": 16}],
        demo={"NB": 8, "M": 64, "K": 64, "N": 64}),
    _case("gemm", inouts=["C"], sizes=[
        {"M": 7, "K": 13, "N": 33}, {"M": 32, "K": 16, "N": 32}],
        demo={"M": 256, "K": 256, "N": 256}),
    _case("two_mm", inouts=["D"], sizes=[
        {"NI": 7, "NJ": 13, "NK": 5, "NL": 9}, {"NI": 16, "NJ": 32, "NK": 16, "NL": 32}],
        demo={"NI": 160, "NJ": 180, "NK": 210, "NL": 190}),
    _case("atax", ["y"], sizes=[{"M": 13, "N": 7}, {"M": 32, "N": 64}],
          demo={"M": 390, "N": 410}),
    _case("bicg", ["s", "q"], sizes=[{"N": 13, "M": 7}, {"N": 64, "M": 32}],
          demo={"N": 410, "M": 390}),
    _case("mvt", inouts=["x1", "x2"], sizes=[{"N": 13}, {"N": 32}], demo={"N": 400}),
    _case("syrk", inouts=["C"], sizes=[{"N": 7, "M": 13}, {"N": 32, "M": 16}, {"N": 1, "M": 3}],
          demo={"N": 240, "M": 200}),
    _case("trmm", inouts=["B"], sizes=[{"M": 7, "N": 13}, {"M": 32, "N": 16}, {"M": 33, "N": 5}],
          demo={"M": 200, "N": 240}),
    _case("lu", inouts=["A"], sizes=[{"N": 7}, {"N": 13}, {"N": 32}, {"N": 1}],
          demo={"N": 200}, tol_scale=10.0),
    _case("jacobi_1d", inouts=["A", "B"], sizes=[
        {"N": 13, "T": 3}, {"N": 64, "T": 5}, {"N": 3, "T": 2}, {"N": 33, "T": 0}],
        demo={"N": 4000, "T": 100}),
    _case("jacobi_2d", inouts=["A", "B"], sizes=[{"N": 7, "T": 3}, {"N": 32, "T": 4}],
          demo={"N": 250, "T": 20}),
    _case("seidel_2d", inouts=["A"], sizes=[{"N": 7, "T": 2}, {"N": 13, "T": 3}, {"N": 32, "T": 2}],
          demo={"N": 120, "T": 10}),
    _case("softmax", ["Y"], sizes=[{"N": 7, "D": 13}, {"N": 16, "D": 64}, {"N": 1, "D": 1}],
          demo={"N": 512, "D": 512}),
    _case("layernorm", ["Y"], sizes=[{"N": 7, "D": 13}, {"N": 16, "D": 64}],
          demo={"N": 512, "D": 768}),
    _case("conv2d", ["Y"], sizes=[
        {"N": 1, "C": 3, "H": 9, "W": 11, "K": 5, "R": 3, "S": 3},
        {"N": 2, "C": 4, "H": 16, "W": 16, "K": 8, "R": 3, "S": 2},
        {"N": 1, "C": 2, "H": 5, "W": 5, "K": 3, "R": 5, "S": 1}],
        demo={"N": 2, "C": 32, "H": 34, "W": 34, "K": 32, "R": 3, "S": 3}),
    _case("maxpool2d", ["O"], sizes=[{"C": 3, "H": 7, "W": 13}, {"C": 4, "H": 32, "W": 16}],
          demo={"C": 64, "H": 112, "W": 112}),
    _case("attention", ["O"], sizes=[
        {"LQ": 7, "LK": 13, "D": 8, "DV": 5}, {"LQ": 32, "LK": 64, "D": 16, "DV": 16}],
        demo={"LQ": 256, "LK": 256, "D": 64, "DV": 64}),
    _case("gelu", ["Y"], sizes=[{"N": 13}, {"N": 64}], demo={"N": 100000}),
    _case("qmm", ["C"], sizes=[{"M": 7, "K": 13, "N": 33}, {"M": 16, "K": 64, "N": 32}],
          demo={"M": 256, "K": 256, "N": 256}),
    _case("matmul_int4", ["Y"], sizes=[{"M": 7, "K": 14, "N": 9}, {"M": 16, "K": 64, "N": 32}],
          demo={"M": 128, "K": 512, "N": 256}),
    _case("covariance", ["cov"], sizes=[{"N": 13, "M": 7}, {"N": 32, "M": 16}],
          demo={"N": 300, "M": 240}),
    _case("linear_f16", ["Y"], sizes=[{"M": 7, "K": 13, "N": 9}, {"M": 16, "K": 32, "N": 16}],
          demo={"M": 128, "K": 256, "N": 128}),
    _case("depthwise_conv2d", ["Y"], sizes=[
        {"N": 1, "C": 3, "H": 9, "W": 11, "R": 3, "S": 3},
        {"N": 2, "C": 8, "H": 16, "W": 13, "R": 3, "S": 2}],
        demo={"N": 1, "C": 128, "H": 58, "W": 58, "R": 3, "S": 3}),
    _case("rmsnorm_gelu", ["Y"], sizes=[{"N": 7, "D": 13}, {"N": 16, "D": 64}, {"N": 1, "D": 1}],
          demo={"N": 512, "D": 768}),
    _case("qmm_requant", ["C"], sizes=[{"M": 7, "K": 13, "N": 33}, {"M": 16, "K": 64, "N": 32}],
          demo={"M": 256, "K": 256, "N": 256}),
    _case("matmul_int4_grouped", ["Y"], sizes=[
        {"M": 3, "K": 128, "N": 5}, {"M": 16, "K": 256, "N": 33}],
        demo={"M": 16, "K": 1024, "N": 1024}),
    _case("selective_scan", ["y"], inouts=["h"], sizes=[
        {"T": 5, "D": 3, "NS": 4}, {"T": 33, "D": 16, "NS": 8}],
        demo={"T": 1024, "D": 128, "NS": 16}),
]}


# --------------------------------------------------------------------------------------------
# Running and comparing (shared by the demo and the tests)

def tolerance(dtype: np.dtype, tol_scale: float = 1.0) -> tuple[float, float]:
    """(rtol, atol) for results of `dtype`; (0, 0) for integers and booleans."""
    dt = np.dtype(dtype)
    if dt.kind in "iub":
        return 0.0, 0.0
    rtol, atol = TOLERANCES.get(dt.name, TOLERANCES["float32"])
    return rtol * tol_scale, atol * tol_scale


def compare(got: np.ndarray, expected: np.ndarray,
            tol_scale: float = 1.0) -> tuple[float, bool]:
    """Return (max abs error, ok) of `got` against `expected` with the tolerance of its dtype.

    Shapes must match; NaN or infinity where `expected` is finite fails.
    """
    got = np.asarray(got)
    if got.shape != expected.shape:
        return float("inf"), False
    if expected.size == 0:
        return 0.0, True
    if expected.dtype.kind in "iub":
        diff = np.abs(got.astype(np.int64) - expected.astype(np.int64))
        err = float(diff.max())
        return err, err == 0
    g, e = got.astype(np.float64), expected.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(g - e)
    if not np.all(np.isfinite(diff)):
        return float("inf"), False
    rtol, atol = tolerance(expected.dtype, tol_scale)
    scale = max(1.0, float(np.max(np.abs(e))))
    ok = bool(np.all(diff <= atol * scale + rtol * np.abs(e)))
    return float(diff.max()), ok


def results_of(case: Case, args: Args, ret: Any) -> dict[str, Any]:
    """Gather a call's results by name: the returned outputs, then the inout arrays of `args`.

    `ret` is what the compiled kernel returned: None without outputs, the array with one,
    a tuple with several. Raises AssertionError if `ret` does not have that form.
    """
    got: dict[str, Any] = {}
    if not case.outputs:
        assert ret is None, f"{case.name}: expected None (no outputs), got {type(ret).__name__}"
    elif len(case.outputs) == 1:
        got[case.outputs[0]] = ret
    else:
        assert isinstance(ret, tuple) and len(ret) == len(case.outputs), (
            f"{case.name}: expected a tuple of {len(case.outputs)} outputs, got {ret!r:.80}")
        got.update(zip(case.outputs, ret, strict=True))
    for name in case.inouts:
        got[name] = args[name]
    return got


def kernel_files() -> list[Path]:
    """Every `.lw` file in examples/kernels, sorted by name."""
    return sorted(KERNEL_DIR.glob("*.lw"))
