"""Integer and low-precision kernels: int8 matmul and requantization, 4-bit weights, f16."""

from __future__ import annotations

from functools import partial

import numpy as np

from .cases import Args, Sizes, f32, f64, make_case, rng, uniform


def qmm_inputs(s: Sizes, seed: int) -> Args:
    """A: i8[M, K], B: i8[K, N], full int8 range."""
    r = rng(seed)
    return {"A": r.integers(-128, 128, size=(s["M"], s["K"]), dtype=np.int8),
            "B": r.integers(-128, 128, size=(s["K"], s["N"]), dtype=np.int8)}


def qmm_ref(A, B):
    """C = A @ B exactly in int64, then wrapped to int32."""
    return {"C": (A.astype(np.int64) @ B.astype(np.int64)).astype(np.int32)}


def qmm_requant_inputs(s: Sizes, seed: int) -> Args:
    """A: i8[M, K], B: i8[K, N], bias: i32[N]; multiplier / 2^shift maps the typical
    accumulator (about sqrt(K) * 128^2 / 3) to about 64, so the outputs use the int8 range.
    shift stays at most 31: the kernel's rounding term 1 << (shift - 1) is then exact even where
    the literal 1 is rendered as a 32-bit int."""
    r = rng(seed)
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


def matmul_int4_inputs(s: Sizes, seed: int) -> Args:
    """X: f32[M, K], W: u8[K / 2, N] (two 4-bit weights a byte), scale: f32[N]; K even."""
    r = rng(seed)
    m, k, n = s["M"], s["K"], s["N"]
    return {"X": uniform(r, (m, k)),
            "W": r.integers(0, 256, size=(k // 2, n), dtype=np.uint8),
            "scale": uniform(r, (n,), lo=0.01, hi=0.1)}


def unpack_int4(W: np.ndarray) -> np.ndarray:
    """u8[K/2, N] -> int64[K, N]: row 2m is the low nibble of W[m], row 2m+1 the high one."""
    q = np.empty((2 * W.shape[0], W.shape[1]), dtype=np.int64)
    q[0::2] = W & 15
    q[1::2] = W >> 4
    return q


def matmul_int4_ref(X, W, scale):
    """Y = X @ ((unpack(W) - 8) * scale)."""
    wd = (unpack_int4(W) - 8).astype(np.float64) * f64(scale)
    return {"Y": f32(f64(X) @ wd)}


INT4_GROUP = 128  # rows of K sharing one scale in matmul_int4_grouped.lw


def matmul_int4_grouped_inputs(s: Sizes, seed: int) -> Args:
    """X: f32[M, K], W: u8[K / 2, N], scales: f32[K / 128, N]; K a multiple of 128."""
    r = rng(seed)
    m, k, n = s["M"], s["K"], s["N"]
    return {"X": uniform(r, (m, k)),
            "W": r.integers(0, 256, size=(k // 2, n), dtype=np.uint8),
            "scales": uniform(r, (k // INT4_GROUP, n), lo=0.01, hi=0.1)}


def dequantize_int4_grouped(W: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """float64[K, N]: (nibble - 8) * the scale of its group of 128 rows."""
    return (unpack_int4(W) - 8).astype(np.float64) * np.repeat(f64(scales), INT4_GROUP, axis=0)


def matmul_int4_grouped_ref(X, W, scales):
    """Y = X @ dequantize(W, scales)."""
    return {"Y": f32(f64(X) @ dequantize_int4_grouped(W, scales))}


def linear_f16_inputs(s: Sizes, seed: int) -> Args:
    """X: f16[M, K], W: f16[K, N], b: f16[N]."""
    r = rng(seed)
    m, k, n = s["M"], s["K"], s["N"]
    return {"X": uniform(r, (m, k), np.float16), "W": uniform(r, (k, n), np.float16),
            "b": uniform(r, (n,), np.float16)}


def linear_f16_ref(X, W, b):
    """Y = f16(X @ W + b), computed in float64 from the f16 values."""
    y = f64(X) @ f64(W) + f64(b)
    return {"Y": np.ascontiguousarray(y.astype(np.float32).astype(np.float16))}


_case = partial(make_case, globals())

CASES = (
    _case("qmm", ["C"], sizes=[{"M": 7, "K": 13, "N": 33}, {"M": 16, "K": 64, "N": 32}],
          demo={"M": 256, "K": 256, "N": 256}),
    _case("qmm_requant", ["C"], sizes=[{"M": 7, "K": 13, "N": 33}, {"M": 16, "K": 64, "N": 32}],
          demo={"M": 256, "K": 256, "N": 256}),
    _case("matmul_int4", ["Y"], sizes=[{"M": 7, "K": 14, "N": 9}, {"M": 16, "K": 64, "N": 32}],
          demo={"M": 128, "K": 512, "N": 256}),
    _case("matmul_int4_grouped", ["Y"], sizes=[
        {"M": 3, "K": 128, "N": 5}, {"M": 16, "K": 256, "N": 33}],
        demo={"M": 16, "K": 1024, "N": 1024}),
    _case("linear_f16", ["Y"], sizes=[{"M": 7, "K": 13, "N": 9}, {"M": 16, "K": 32, "N": 16}],
          demo={"M": 128, "K": 256, "N": 128}),
)
