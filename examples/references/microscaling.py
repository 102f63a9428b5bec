"""Microscaling (OCP MX) kernels: 8-bit and 4-bit float blocks with a shared power-of-two scale."""

from __future__ import annotations

from functools import partial

import ml_dtypes
import numpy as np

from .cases import Args, Sizes, f32, f64, make_case, rng

MX_BLOCK = 32  # elements along k sharing one e8m0 scale in mxfp8_matmul.lw and mxfp4_matmul.lw


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


def mxfp4_quantize(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`x` [N, K] (K even) as MXFP4: f4e2m1 codes packed two a byte along k, low nibble first
    (OCP MX, torch's float4_e2m1fn_x2), u8[N, K / 2], and e8m0 scales [N, ceil(K / 32)], the
    power of two of each block's largest magnitude over 2^2 (f4e2m1's largest power); values
    past 6 saturate."""
    n, k = x.shape
    blocks = -(-k // MX_BLOCK)
    padded = np.zeros((n, blocks * MX_BLOCK))
    padded[:, :k] = x
    amax = np.abs(padded.reshape(n, blocks, MX_BLOCK)).max(axis=-1)
    exponent = np.floor(np.log2(np.where(amax > 0, amax, 1.0))) - 2
    scales = np.exp2(np.clip(exponent, -127, 127))
    values = np.clip(f64(x) / np.repeat(scales, MX_BLOCK, axis=1)[:, :k], -6.0, 6.0)
    codes = values.astype(np.float32).astype(ml_dtypes.float4_e2m1fn).view(np.uint8) & 15
    packed = codes[:, 0::2] | (codes[:, 1::2] << 4)
    return np.ascontiguousarray(packed), scales.astype(ml_dtypes.float8_e8m0fnu)


def mxfp4_unpack(W: np.ndarray) -> np.ndarray:
    """u8[N, K / 2] packed codes -> f64[N, K] values: element 2m of a row is byte m's low
    nibble, element 2m + 1 its high one, each decoded as ml_dtypes' float4_e2m1fn."""
    codes = np.stack([W & 15, W >> 4], axis=-1).reshape(W.shape[0], -1)
    return f64(codes.view(ml_dtypes.float4_e2m1fn).astype(np.float32))


def mxfp4_matmul_inputs(s: Sizes, seed: int) -> Args:
    """X: f32[M, K] normal, W: u8[N, K / 2] and S: e8m0[N, ceil(K / 32)], MXFP4 weights
    quantized from normal values whose magnitude changes by block (factors 2^-6 to 2^6)."""
    r = rng(seed)
    m, k, n = s["M"], s["K"], s["N"]
    blocks = -(-k // MX_BLOCK)
    w = r.standard_normal((n, k)) * np.repeat(np.exp2(r.integers(-6, 7, (n, blocks))),
                                              MX_BLOCK, axis=1)[:, :k]
    W, S = mxfp4_quantize(w)
    return {"X": f32(r.standard_normal((m, k))), "W": W, "S": S}


def mxfp4_matmul_ref(X, W, S):
    """Y = X @ dequantize(W, S).T (nn.Linear's layout: W holds a row of K weights per output)."""
    k = X.shape[1]
    scales = np.repeat(f64(S.astype(np.float32)), MX_BLOCK, axis=1)[:, :k]
    return {"Y": f32(f64(X) @ (mxfp4_unpack(W) * scales).T)}


_case = partial(make_case, globals())

CASES = (
    _case("mxfp8_matmul", ["C"], sizes=[{"M": 5, "K": 70, "N": 3}, {"M": 17, "K": 96, "N": 13},
                                         {"M": 33, "K": 161, "N": 31}],
          demo={"M": 512, "K": 1024, "N": 512}),
    _case("mxfp4_matmul", ["Y"], sizes=[{"M": 5, "K": 70, "N": 3}, {"M": 17, "K": 96, "N": 13},
                                         {"M": 33, "K": 162, "N": 31}],
          demo={"M": 512, "K": 1024, "N": 512}),
)
