"""PolyBench/C 4.2 medley: inputs and numpy references."""

from __future__ import annotations

from functools import partial

import numpy as np

from .cases import dataset_sizes, poly_case, rand


def deriche_inputs(s, seed):
    r = np.random.default_rng(seed)
    w, h = s["W"], s["H"]
    return {"alpha": np.float32(0.25), "imgIn": rand(r, w, h, lo=0, hi=1, dtype=np.float32),
            "imgOut": np.zeros((w, h), np.float32), "y1": np.zeros((w, h), np.float32),
            "y2": np.zeros((w, h), np.float32)}


def _filter(x, taps, b1, b2):
    """y[:, j] = sum_d taps[d] x[:, j-d] + b1 y[:, j-1] + b2 y[:, j-2], zero before column 0."""
    y = np.zeros_like(x)
    for j in range(x.shape[1]):
        acc = np.zeros(x.shape[0])
        for d, tap in enumerate(taps):
            if j - d >= 0:
                acc = acc + tap * x[:, j - d]
        if j >= 1:
            acc = acc + b1 * y[:, j - 1]
        if j >= 2:
            acc = acc + b2 * y[:, j - 2]
        y[:, j] = acc
    return y


def deriche_ref(alpha, imgIn, imgOut, y1, y2):
    a = float(alpha)
    k = (1 - np.exp(-a)) ** 2 / (1 + 2 * a * np.exp(-a) - np.exp(2 * a))
    a1, a2 = k, k * np.exp(-a) * (a - 1)
    a3, a4 = k * np.exp(-a) * (a + 1), -k * np.exp(-2 * a)
    b1, b2 = 2.0 ** -a, -np.exp(-2 * a)

    def both(x):  # causal + anti-causal along axis 1; the anti-causal one is causal reversed
        causal = _filter(x, (a1, a2), b1, b2)
        anti = _filter(x[:, ::-1], (0.0, a3, a4), b1, b2)[:, ::-1]
        return causal, anti

    x = imgIn.astype(np.float64)
    h1, h2 = both(x)
    mid = h1 + h2
    v1, v2 = both(mid.T)
    out = (v1 + v2).T
    f32 = np.float32
    return {"imgOut": np.ascontiguousarray(out.astype(f32)),
            "y1": np.ascontiguousarray(v1.T.astype(f32)),
            "y2": np.ascontiguousarray(v2.T.astype(f32))}


def floyd_warshall_inputs(s, seed):
    r = np.random.default_rng(seed)
    n = s["N"]
    path = r.integers(1, 100, size=(n, n), dtype=np.int32)
    path[r.random((n, n)) < 0.3] = 999  # no direct edge
    return {"path": path}


def floyd_warshall_ref(path):
    p = path.copy()
    for k in range(p.shape[0]):  # row and column k do not change in step k (path >= 0)
        p = np.minimum(p, p[:, k:k + 1] + p[k:k + 1, :])
    return {"path": p}


def nussinov_inputs(s, seed):
    r = np.random.default_rng(seed)
    n = s["N"]
    return {"seq": r.integers(0, 4, size=n, dtype=np.int8), "table": np.zeros((n, n), np.int32)}


def nussinov_ref(seq, table):
    t = table.astype(np.int64)
    n = len(seq)
    for i in range(n - 1, -1, -1):
        for j in range(i + 1, n):
            best = max(t[i, j], t[i, j - 1], t[i + 1, j])
            pair = int(seq[i]) + int(seq[j]) == 3 if i < j - 1 else False
            best = max(best, t[i + 1, j - 1] + int(pair))
            if j > i + 1:
                best = max(best, int(np.max(t[i, i + 1:j] + t[i + 2:j + 1, j])))
            t[i, j] = best
    return {"table": t.astype(np.int32)}


_case = partial(poly_case, globals())

CASES = (
    _case("deriche", "deriche", inouts=["imgOut", "y1", "y2"], datasets=dataset_sizes(
        "W H", (64, 64), (192, 128), (720, 480), (4096, 2160))),
    _case("floyd-warshall", "floyd_warshall", inouts=["path"],
          datasets=dataset_sizes("N", (60,), (180,), (500,), (2800,))),
    _case("nussinov", "nussinov", inouts=["table"],
          datasets=dataset_sizes("N", (60,), (180,), (500,), (2500,))),
)
