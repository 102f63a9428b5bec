"""Microscaling (OCP MX) kernels: 8-bit float blocks with a shared power-of-two scale."""

from __future__ import annotations

from functools import partial

import ml_dtypes
import numpy as np

from .cases import Args, Sizes, f32, f64, make_case, rng

MX_BLOCK = 32  # elements along k sharing one e8m0 scale in mxfp8_matmul.lw


def mx_quantize(x: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """`x` as f8e4m3 values and e8m0 scales, one per block of 32 along `axis` (the last block
    may be partial), as the OCP MX spec chooses them: the scale is the power of two of the
    block's largest magnitude over 2^8 (f8e4m3's largest power), values past 448 saturate."""
    moved = np.moveaxis(f64(x), axis, -1)
    k = moved.shape[-1]
    blocks = -(-k // MX_BLOCK)
    padded = np.zeros((*moved.shape[:-1], blocks * MX_BLOCK))
    padded[..., :k] = moved
    amax = np.abs(padded.reshape(*moved.shape[:-1], blocks, MX_BLOCK)).max(axis=-1)
    exponent = np.floor(np.log2(np.where(amax > 0, amax, 1.0))) - 8
    scales = np.exp2(np.clip(exponent, -127, 127))
    values = np.clip(moved / np.repeat(scales, MX_BLOCK, axis=-1)[..., :k], -448.0, 448.0)
    values = np.moveaxis(values, -1, axis).astype(np.float32).astype(ml_dtypes.float8_e4m3fn)
    scales = np.moveaxis(scales, -1, axis).astype(ml_dtypes.float8_e8m0fnu)
    return np.ascontiguousarray(values), np.ascontiguousarray(scales)


def mx_dequantize(values: np.ndarray, scales: np.ndarray, axis: int) -> np.ndarray:
    """f64 values * their block's scale along `axis` (the inverse of `mx_quantize`, exact)."""
    k = values.shape[axis]
    return f64(values.astype(np.float32)) * \
        np.repeat(f64(scales.astype(np.float32)), MX_BLOCK, axis=axis).take(range(k), axis=axis)


def mxfp8_matmul_inputs(s: Sizes, seed: int) -> Args:
    """A: f8e4m3[M, K] with SA: e8m0[M, ceil(K / 32)], B: f8e4m3[K, N] with
    SB: e8m0[ceil(K / 32), N], quantized from normal values whose magnitude changes by block
    (factors 2^-6 to 2^6), so the scales differ."""
    r = rng(seed)
    m, k, n = s["M"], s["K"], s["N"]
    blocks = -(-k // MX_BLOCK)
    a = r.standard_normal((m, k)) * np.repeat(np.exp2(r.integers(-6, 7, (m, blocks))),
                                              MX_BLOCK, axis=1)[:, :k]
    b = r.standard_normal((k, n)) * np.repeat(np.exp2(r.integers(-6, 7, (blocks, n))),
                                              MX_BLOCK, axis=0)[:k]
    A, SA = mx_quantize(a, axis=1)
    B, SB = mx_quantize(b, axis=0)
    return {"A": A, "SA": SA, "B": B, "SB": SB}


def mxfp8_matmul_ref(A, SA, B, SB):
    """C = dequantize(A, SA) @ dequantize(B, SB)."""
    return {"C": f32(mx_dequantize(A, SA, axis=1) @ mx_dequantize(B, SB, axis=0))}


_case = partial(make_case, globals())

CASES = (
    _case("mxfp8_matmul", ["C"], sizes=[{"M": 5, "K": 70, "N": 3}, {"M": 17, "K": 96, "N": 13},
                                         {"M": 33, "K": 161, "N": 31}],
          demo={"M": 512, "K": 1024, "N": 512}),
)
