"""LUT GEMV (T-MAC, LUT-GEMM): the table of an activation vector (`lut_table`) and the lookup
product with bit-plane weights (`lut_gemv`), plus the helpers that pack weights into the
kernel's layout and dequantize them (the benchmark's f32 GEMV runs on the dequantized matrix)."""

from __future__ import annotations

from functools import partial

import numpy as np

from .cases import Args, Sizes, f32, f64, make_case, rng, uniform

#: Activations per scale block of the table (8 bytes of codes: 16 groups of 4).
LUT_BLOCK = 64


def lut_table_ref(x):
    """The kernel's arithmetic in f32, in its order (each entry a sum over b = 0..3 in turn;
    the quantization rounds half away from zero), so the i8 table matches exactly."""
    k = x.shape[0]
    groups = (k + 7) // 8 * 2
    xp = np.zeros(groups * 4, np.float32)
    xp[:k] = x
    xg = xp.reshape(groups, 4)
    signs = np.array([[1.0 if (c >> b) & 1 else -1.0 for b in range(4)] for c in range(16)],
                     np.float32)
    a = np.zeros(groups, np.float32)
    tf = np.zeros((groups, 16), np.float32)
    for b in range(4):
        a = a + np.abs(xg[:, b])
        tf = tf + xg[:, b:b + 1] * signs[None, :, b]
    m = np.zeros((groups + 15) // 16, np.float32)
    for g in range(groups):
        m[g // 16] = max(m[g // 16], a[g])
    mg = np.repeat(m, 16)[:groups]
    step = np.where(mg > 0, mg / np.float32(63.0), np.float32(1.0)).astype(np.float32)
    v = (tf / step[:, None]).astype(np.float32)
    v = (v + np.where(tf >= 0, np.float32(0.5), np.float32(-0.5))).astype(np.float32)
    tq = np.trunc(v).astype(np.int32)
    c = np.arange(256)
    table = tq[0::2][:, c % 16] + tq[1::2][:, c // 16]
    return {"T": np.ascontiguousarray(table.astype(np.int8)),
            "s": f32(m / np.float32(126.0)).astype(np.float32)}


def lut_table_inputs(s: Sizes, seed: int) -> Args:
    """x: f32[K], some of it zero (a block of zeros gets step 1)."""
    x = uniform(rng(seed), (s["K"],))
    x[: min(s["K"], 3)] = 0.0
    return {"x": x}


def pack_bit_planes(q: np.ndarray, bits: int) -> np.ndarray:
    """Quantized weights q: int[N, K] in 0 .. 2^bits - 1 -> W: u8[ceil(H/8), ceil(N/32), 8,
    bits, 32] (H = ceil(K/8)), zero codes in the padding: the byte for row n, weights 8h .. 8h+7
    and plane p holds bit p of q[n, 8h + j] at bit j, at W[h / 8, n / 32, h % 8, p, n % 32]."""
    n, k = q.shape
    h = (k + 7) // 8
    hq, nt = (h + 7) // 8, (n + 31) // 32
    qp = np.zeros((nt * 32, hq * 64), np.int64)
    qp[:n, :k] = q
    planes = (qp[None] >> np.arange(bits)[:, None, None]) & 1  # [bits, N', 8H']
    packed = (planes.reshape(bits, nt * 32, hq * 8, 8) << np.arange(8)).sum(axis=3)
    tiles = packed.reshape(bits, nt, 32, hq, 8)  # [p, t, i, hq, j]
    return np.ascontiguousarray(tiles.transpose(3, 1, 4, 0, 2).astype(np.uint8))


def unpack_bit_planes(W: np.ndarray, n: int, k: int) -> np.ndarray:
    """The inverse of `pack_bit_planes`: int64[n, k] codes."""
    hq, nt, _, bits, _ = W.shape
    tiles = W.astype(np.int64).transpose(3, 1, 4, 0, 2)  # [p, t, i, hq, j]
    planes = (tiles.reshape(bits, nt * 32, hq * 8)[..., None] >> np.arange(8)) & 1
    q = (planes.reshape(bits, nt * 32, hq * 64) << np.arange(bits)[:, None, None]).sum(axis=0)
    return q[:n, :k]


def dequantize(q: np.ndarray, bits: int, scale: np.ndarray) -> np.ndarray:
    """f32[N, K]: (q - (2^bits - 1) / 2) * scale[n], the matrix lut_gemv multiplies by."""
    return f32((q - (2**bits - 1) / 2.0) * f64(scale)[:, None])


def lut_gemv_inputs(s: Sizes, seed: int) -> Args:
    """A table of random activations (from lut_table_ref, so it has the two-nibble form the
    fast path uses), random B-bit codes packed by `pack_bit_planes`, row scales."""
    r = rng(seed)
    h, b, n = s["H"], s["B"], s["N"]
    table = lut_table_ref(uniform(r, (8 * h,)))
    q = r.integers(0, 2**b, size=(n, 8 * h))
    W = pack_bit_planes(q, b)
    if W.size and n % 32:  # the padding rows may hold anything: random bytes
        W[:, -1, :, :, n % 32:] = r.integers(0, 256, size=W[:, -1, :, :, n % 32:].shape)
    return {"T": table["T"], "s": table["s"], "W": W,
            "scale": uniform(r, (n,), lo=0.01, hi=0.1)}


def lut_gemv_ref(T, s, W, scale):
    """y[n] = scale[n] * sum_q s[q] * (exact integer sum of the block's lookups << p)."""
    h, n, bits = T.shape[0], scale.shape[0], W.shape[3]
    codes = W.transpose(0, 2, 3, 1, 4).reshape(-1, bits, W.shape[1] * 32)[:h, :, :n]
    acc = np.zeros(((h + 7) // 8, n), np.int64)
    for p in range(bits):
        for g in range(h):
            acc[g // 8] += T[g, codes[g, p]].astype(np.int64) << p
    return {"y": f32((acc * f64(s)[:, None]).sum(axis=0) * f64(scale))}


_case = partial(make_case, globals())

CASES = (
    _case("lut_table", ["T", "s"], sizes=[{"K": 9}, {"K": 13}, {"K": 67}, {"K": 256}],
          demo={"K": 4096}),
    _case("lut_gemv", ["y"], sizes=[{"H": 1, "B": 2, "N": 5}, {"H": 9, "B": 4, "N": 37},
                                     {"H": 17, "B": 2, "N": 70}, {"H": 16, "B": 4, "N": 64}],
          demo={"H": 512, "B": 4, "N": 4096}),
)
