"""Literal loop transcriptions of the example kernels of [dsl-next]: gathers, ranges read from
tensors, low-precision formats, arg-reductions and lookup tables (the others are in
tests/naive_loops.py, whose conventions these follow)."""

from __future__ import annotations

import numpy as np
from naive_loops import as_f64


def naive_embedding(table, ids):
    table = as_f64(table)
    out = np.zeros((len(ids), table.shape[1]))
    for i in range(len(ids)):
        for d in range(table.shape[1]):
            out[i, d] = table[ids[i], d]
    return {"out": out}


def naive_ell_spmv(vals, col, x):
    vals, x = as_f64(vals), as_f64(x)
    m, k_ = vals.shape
    y = np.zeros(m)
    for i in range(m):
        for k in range(k_):
            y[i] += vals[i, k] * x[col[i, k]]
    return {"y": y}


def naive_csr_spmv(row_ptr, col, vals, x):
    vals, x = as_f64(vals), as_f64(x)
    y = np.zeros(len(row_ptr) - 1)
    for i in range(len(y)):
        for p in range(row_ptr[i], row_ptr[i + 1]):
            y[i] += vals[p] * x[col[p]]
    return {"y": y}


def naive_csr_spmm(row_ptr, col, vals, B):
    vals, B = as_f64(vals), as_f64(B)
    Y = np.zeros((len(row_ptr) - 1, B.shape[1]))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            for p in range(row_ptr[i], row_ptr[i + 1]):
                Y[i, j] += vals[p] * B[col[p], j]
    return {"Y": Y}


def naive_mxfp8_matmul(A, SA, B, SB):
    a, sa, b, sb = (np.asarray(x, dtype=np.float64) for x in (A, SA, B, SB))
    m, k_ = a.shape
    c = np.zeros((m, b.shape[1]))
    for i in range(m):
        for j in range(b.shape[1]):
            for k in range(k_):
                c[i, j] += a[i, k] * sa[i, k // 32] * b[k, j] * sb[k // 32, j]
    return {"C": c}


def naive_mxfp4_matmul(X, W, S):
    """Each weight decoded from its nibble by the OCP e2m1 formula (no ml_dtypes)."""
    def e2m1(code):
        sign, e, m = -1.0 if code & 8 else 1.0, (code >> 1) & 3, code & 1
        return sign * (m * 0.5 if e == 0 else (1 + m / 2) * 2.0 ** (e - 1))
    x, s = np.asarray(X, dtype=np.float64), np.asarray(S, dtype=np.float64)
    y = np.zeros((x.shape[0], W.shape[0]))
    for i in range(x.shape[0]):
        for j in range(W.shape[0]):
            for k in range(x.shape[1]):
                code = (int(W[j, k // 2]) >> (4 * (k % 2))) & 15
                y[i, j] += x[i, k] * e2m1(code) * s[j, k // 32]
    return {"Y": y}


def naive_argmax(logits):
    b_, v_ = logits.shape
    best, worst = np.zeros(b_, np.int64), np.zeros(b_, np.int32)
    for b in range(b_):
        for v in range(v_):
            if logits[b, v] > logits[b, best[b]]:
                best[b] = v
            if logits[b, v] < logits[b, worst[b]]:
                worst[b] = v
    return {"best": best, "worst": worst}


def naive_topk(logits):
    b_, v_ = logits.shape
    idx, vals = np.full((b_, 8), -1, np.int64), np.full((b_, 8), -np.inf)
    for b in range(b_):
        for v in range(v_):  # insert into the sorted ranks, after equal values
            r = 8
            while r > 0 and (idx[b, r - 1] < 0 or logits[b, v] > vals[b, r - 1]):
                r -= 1
            if r < 8:
                idx[b, r + 1:], vals[b, r + 1:] = idx[b, r:-1].copy(), vals[b, r:-1].copy()
                idx[b, r], vals[b, r] = v, logits[b, v]
    return {"vals": vals, "idx": idx}


def naive_lut_table(x):
    f = np.float32  # the kernel's f32 arithmetic, one operation at a time
    k_ = len(x)
    groups = (k_ + 7) // 8 * 2
    a, tf = np.zeros(groups, f), np.zeros((groups, 16), f)
    for g in range(groups):
        for b in range(4):
            if 4 * g + b < k_:
                a[g] = f(a[g] + abs(x[4 * g + b]))
                for c in range(16):
                    tf[g, c] = f(tf[g, c] + x[4 * g + b] * f(2 * ((c >> b) & 1) - 1))
    m = np.zeros((groups + 15) // 16, f)
    for g in range(groups):
        m[g // 16] = max(m[g // 16], a[g])
    tq = np.zeros((groups, 16), np.int64)
    for g in range(groups):
        step = f(m[g // 16] / f(63.0)) if m[g // 16] > 0 else f(1.0)
        for c in range(16):
            tq[g, c] = int(f(f(tf[g, c] / step) + f(0.5 if tf[g, c] >= 0 else -0.5)))
    table = np.zeros((groups // 2, 256), np.int64)
    for h in range(groups // 2):
        for c in range(256):
            table[h, c] = tq[2 * h, c % 16] + tq[2 * h + 1, c // 16]
    return {"T": table, "s": m / f(126.0)}


def naive_lut_gemv(T, s, W, scale):
    h_, n_, b_ = T.shape[0], scale.shape[0], W.shape[3]
    y = np.zeros(n_)
    for n in range(n_):
        for q in range((h_ + 7) // 8):
            acc = 0
            for h in range(8 * q, min(8 * q + 8, h_)):
                for p in range(b_):
                    acc += int(T[h, W[h // 8, n // 32, h % 8, p, n % 32]]) << p
            y[n] += acc * float(s[q])
        y[n] *= float(scale[n])
    return {"y": y}


NAIVE = {name[len("naive_"):]: fn for name, fn in globals().items() if name.startswith("naive_")}
