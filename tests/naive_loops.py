"""Literal loop transcriptions of the example kernels, the yardstick of
tests/test_references.py.

Every `naive_<kernel>` restates its kernel's DSL statements as plain Python loops in float64:
statements in program order, each statement's iterations in lexicographic order of its variables
(left side first), reductions into a fresh output or temporary starting from the identity.
"""

from __future__ import annotations

import math

import numpy as np

F64 = np.float64


def as_f64(x):
    """A float64 copy: the loops compute in float64 whatever the inputs."""
    return np.array(x, dtype=F64)


def naive_matmul(A, B):
    m, k_ = A.shape
    n = B.shape[1]
    C = np.zeros((m, n))
    for i in range(m):
        for j in range(n):
            for k in range(k_):
                C[i, j] += F64(A[i, k]) * F64(B[k, j])
    return {"C": C}


def naive_bmm(A, B):
    nb, m, k_ = A.shape
    n = B.shape[2]
    C = np.zeros((nb, m, n))
    for b in range(nb):
        for i in range(m):
            for j in range(n):
                for k in range(k_):
                    C[b, i, j] += F64(A[b, i, k]) * F64(B[b, k, j])
    return {"C": C}


def naive_gemm(alpha, beta, C, A, B):
    C, A, B = as_f64(C), as_f64(A), as_f64(B)
    m, n = C.shape
    for i in range(m):
        for j in range(n):
            C[i, j] = beta * C[i, j]
    for i in range(m):
        for j in range(n):
            for k in range(A.shape[1]):
                C[i, j] += alpha * A[i, k] * B[k, j]
    return {"C": C}


def naive_two_mm(alpha, beta, A, B, C, D):
    A, B, C, D = as_f64(A), as_f64(B), as_f64(C), as_f64(D)
    ni, nk = A.shape
    nj, nl = C.shape
    tmp = np.zeros((ni, nj))
    for i in range(ni):
        for j in range(nj):
            for k in range(nk):
                tmp[i, j] += alpha * A[i, k] * B[k, j]
    for i in range(ni):
        for l in range(nl):  # noqa: E741 - the kernel's own index name
            D[i, l] = beta * D[i, l]
    for i in range(ni):
        for l in range(nl):  # noqa: E741
            for j in range(nj):
                D[i, l] += tmp[i, j] * C[j, l]
    return {"D": D}


def naive_atax(A, x):
    A, x = as_f64(A), as_f64(x)
    m, n = A.shape
    tmp, y = np.zeros(m), np.zeros(n)
    for i in range(m):
        for j in range(n):
            tmp[i] += A[i, j] * x[j]
    for j in range(n):
        for i in range(m):
            y[j] += A[i, j] * tmp[i]
    return {"y": y}


def naive_bicg(A, r, p):
    A, r, p = as_f64(A), as_f64(r), as_f64(p)
    n, m = A.shape
    s, q = np.zeros(m), np.zeros(n)
    for j in range(m):
        for i in range(n):
            s[j] += r[i] * A[i, j]
    for i in range(n):
        for j in range(m):
            q[i] += A[i, j] * p[j]
    return {"s": s, "q": q}


def naive_mvt(x1, x2, y1, y2, A):
    x1, x2, y1, y2, A = map(as_f64, (x1, x2, y1, y2, A))
    n = A.shape[0]
    for i in range(n):
        for j in range(n):
            x1[i] += A[i, j] * y1[j]
    for i in range(n):
        for j in range(n):
            x2[i] += A[j, i] * y2[j]
    return {"x1": x1, "x2": x2}


def naive_syrk(alpha, beta, C, A):
    C, A = as_f64(C), as_f64(A)
    n, m = A.shape
    for i in range(n):
        for j in range(i + 1):
            C[i, j] = beta * C[i, j]
    for i in range(n):
        for j in range(i + 1):
            for k in range(m):
                C[i, j] += alpha * A[i, k] * A[j, k]
    return {"C": C}


def naive_trmm(alpha, A, B):
    A, B = as_f64(A), as_f64(B)
    m, n = B.shape
    for i in range(m):
        for j in range(n):
            for k in range(i + 1, m):
                B[i, j] += A[k, i] * B[k, j]
    for i in range(m):
        for j in range(n):
            B[i, j] = alpha * B[i, j]
    return {"B": B}


def naive_lu(A):
    A = as_f64(A)
    n = A.shape[0]
    for k in range(n):
        for i in range(k + 1, n):
            A[i, k] = A[i, k] / A[k, k]
        for i in range(k + 1, n):
            for j in range(k + 1, n):
                A[i, j] = A[i, j] - A[i, k] * A[k, j]
    return {"A": A}


def polybench_lu(A):
    """PolyBench's own loop order (Doolittle); equal to the kernel's up to rounding."""
    A = as_f64(A)
    n = A.shape[0]
    for i in range(n):
        for j in range(i):
            for k in range(j):
                A[i, j] -= A[i, k] * A[k, j]
            A[i, j] /= A[j, j]
        for j in range(i, n):
            for k in range(i):
                A[i, j] -= A[i, k] * A[k, j]
    return {"A": A}


def naive_jacobi_1d(A, B, T):
    A, B = as_f64(A), as_f64(B)
    n = A.shape[0]
    for _t in range(int(T)):
        for i in range(1, n - 1):
            B[i] = (A[i - 1] + A[i] + A[i + 1]) / 3.0
        for i in range(1, n - 1):
            A[i] = (B[i - 1] + B[i] + B[i + 1]) / 3.0
    return {"A": A, "B": B}


def naive_jacobi_2d(A, B, T):
    A, B = as_f64(A), as_f64(B)
    n = A.shape[0]
    for _t in range(int(T)):
        for i in range(1, n - 1):
            for j in range(1, n - 1):
                B[i, j] = 0.2 * (A[i, j] + A[i, j - 1] + A[i, j + 1] + A[i + 1, j] + A[i - 1, j])
        for i in range(1, n - 1):
            for j in range(1, n - 1):
                A[i, j] = 0.2 * (B[i, j] + B[i, j - 1] + B[i, j + 1] + B[i + 1, j] + B[i - 1, j])
    return {"A": A, "B": B}


def naive_seidel_2d(A, T):
    A = as_f64(A)
    n = A.shape[0]
    for _t in range(int(T)):
        for i in range(1, n - 1):
            for j in range(1, n - 1):
                A[i, j] = (A[i - 1, j - 1] + A[i - 1, j] + A[i - 1, j + 1]
                           + A[i, j - 1] + A[i, j] + A[i, j + 1]
                           + A[i + 1, j - 1] + A[i + 1, j] + A[i + 1, j + 1]) / 9.0
    return {"A": A}


def naive_softmax(X):
    X = as_f64(X)
    n, d = X.shape
    m, s = np.full(n, -np.inf), np.zeros(n)
    e, Y = np.zeros((n, d)), np.zeros((n, d))
    for i in range(n):
        for j in range(d):
            m[i] = max(m[i], X[i, j])
    for i in range(n):
        for j in range(d):
            e[i, j] = math.exp(X[i, j] - m[i])
    for i in range(n):
        for j in range(d):
            s[i] += e[i, j]
    for i in range(n):
        for j in range(d):
            Y[i, j] = e[i, j] / s[i]
    return {"Y": Y}


def naive_layernorm(X, gamma, beta, eps):
    X, gamma, beta = as_f64(X), as_f64(gamma), as_f64(beta)
    n, d = X.shape
    mean, var = np.zeros(n), np.zeros(n)
    xc, Y = np.zeros((n, d)), np.zeros((n, d))
    for i in range(n):
        for j in range(d):
            mean[i] += X[i, j] / d
    for i in range(n):
        for j in range(d):
            xc[i, j] = X[i, j] - mean[i]
    for i in range(n):
        for j in range(d):
            var[i] += xc[i, j] * xc[i, j] / d
    for i in range(n):
        for j in range(d):
            Y[i, j] = xc[i, j] / math.sqrt(var[i] + float(eps)) * gamma[j] + beta[j]
    return {"Y": Y}


def naive_conv2d(X, F):
    X, F = as_f64(X), as_f64(F)
    n_, c_, h, w = X.shape
    k_, _, r_, s_ = F.shape
    Y = np.zeros((n_, k_, h - r_ + 1, w - s_ + 1))
    for n in range(n_):
        for k in range(k_):
            for y in range(h - r_ + 1):
                for x in range(w - s_ + 1):
                    for c in range(c_):
                        for r in range(r_):
                            for s in range(s_):
                                Y[n, k, y, x] += X[n, c, y + r, x + s] * F[k, c, r, s]
    return {"Y": Y}


def naive_maxpool2d(X):
    X = as_f64(X)
    c_, h, w = X.shape
    O = np.full((c_, h // 2, w // 2), -np.inf)  # noqa: E741 - the kernel's own name
    for c in range(c_):
        for y in range(h // 2):
            for x in range(w // 2):
                for dy in range(2):
                    for dx in range(2):
                        O[c, y, x] = max(O[c, y, x], X[c, 2 * y + dy, 2 * x + dx])
    return {"O": O}


def naive_attention(Q, K, V, scale):
    Q, K, V = as_f64(Q), as_f64(K), as_f64(V)
    lq, d_ = Q.shape
    lk, dv = V.shape
    s = np.zeros((lq, lk))
    for i in range(lq):
        for j in range(lk):
            for d in range(d_):
                s[i, j] += Q[i, d] * K[j, d]
    m = np.full(lq, -np.inf)
    for i in range(lq):
        for j in range(lk):
            m[i] = max(m[i], s[i, j])
    e = np.zeros((lq, lk))
    for i in range(lq):
        for j in range(lk):
            e[i, j] = math.exp(float(scale) * (s[i, j] - m[i]))
    z = np.zeros(lq)
    for i in range(lq):
        for j in range(lk):
            z[i] += e[i, j]
    p = np.zeros((lq, lk))
    for i in range(lq):
        for j in range(lk):
            p[i, j] = e[i, j] / z[i]
    O = np.zeros((lq, dv))  # noqa: E741
    for i in range(lq):
        for v in range(dv):
            for j in range(lk):
                O[i, v] += p[i, j] * V[j, v]
    return {"O": O}


def naive_gelu(X):
    return {"Y": as_f64([0.5 * x * (1.0 + math.erf(x * 0.7071067811865476)) for x in as_f64(X)])}


def naive_qmm(A, B):
    m, k_ = A.shape
    n = B.shape[1]
    C = np.zeros((m, n), dtype=np.int32)
    with np.errstate(over="ignore"):
        for i in range(m):
            for j in range(n):
                for k in range(k_):
                    C[i, j] += np.int32(A[i, k]) * np.int32(B[k, j])
    return {"C": C}


def naive_matmul_int4(X, W, scale):
    X, scale = as_f64(X), as_f64(scale)
    m, k_ = X.shape
    n = W.shape[1]
    Wd = np.zeros((k_, n))
    for k in range(k_):
        for j in range(n):
            q = (int(W[k // 2, j]) >> (4 * (k % 2))) & 15
            Wd[k, j] = (q - 8) * scale[j]
    Y = np.zeros((m, n))
    for i in range(m):
        for j in range(n):
            for k in range(k_):
                Y[i, j] += X[i, k] * Wd[k, j]
    return {"Y": Y}


def naive_covariance(float_n, data):
    data = as_f64(data)
    n, m = data.shape
    mean = np.zeros(m)
    for j in range(m):
        for i in range(n):
            mean[j] += data[i, j] / float_n
    d = np.zeros((n, m))
    for i in range(n):
        for j in range(m):
            d[i, j] = data[i, j] - mean[j]
    cov = np.zeros((m, m))
    for i in range(m):
        for j in range(m):
            for k in range(n):
                cov[i, j] += d[k, i] * d[k, j]
    for i in range(m):
        for j in range(m):
            cov[i, j] = cov[i, j] / (float_n - 1.0)
    return {"cov": cov}


def naive_linear_f16(X, W, b):
    X, W, b = as_f64(X), as_f64(W), as_f64(b)
    m, k_ = X.shape
    n = W.shape[1]
    acc = np.zeros((m, n))
    for i in range(m):
        for j in range(n):
            for k in range(k_):
                acc[i, j] += X[i, k] * W[k, j]
    return {"Y": acc + b}



def naive_depthwise_conv2d(X, F):
    X, F = as_f64(X), as_f64(F)
    n_, c_, h, w = X.shape
    _, r_, s_ = F.shape
    Y = np.zeros((n_, c_, h - r_ + 1, w - s_ + 1))
    for n in range(n_):
        for c in range(c_):
            for y in range(h - r_ + 1):
                for x in range(w - s_ + 1):
                    for r in range(r_):
                        for s in range(s_):
                            Y[n, c, y, x] += X[n, c, y + r, x + s] * F[c, r, s]
    return {"Y": Y}


def naive_rmsnorm_gelu(X, gamma, eps):
    X, gamma = as_f64(X), as_f64(gamma)
    n, d = X.shape
    ms = np.zeros(n)
    for i in range(n):
        for j in range(d):
            ms[i] += X[i, j] * X[i, j] / d
    Y = np.zeros((n, d))
    for i in range(n):
        for j in range(d):
            xn = X[i, j] / math.sqrt(ms[i] + float(eps)) * gamma[j]
            Y[i, j] = 0.5 * xn * (1.0 + math.erf(xn * 0.7071067811865476))
    return {"Y": Y}


def naive_qmm_requant(A, B, bias, multiplier, shift, zero_point):
    m, k_ = A.shape
    n = B.shape[1]
    C = np.zeros((m, n), dtype=np.int8)
    for i in range(m):
        for j in range(n):
            acc = sum(int(A[i, k]) * int(B[k, j]) for k in range(k_)) + int(bias[j])
            v = (acc * int(multiplier) + (1 << (int(shift) - 1))) >> int(shift)
            C[i, j] = min(127, max(-128, v + int(zero_point)))
    return {"C": C}


def naive_matmul_int4_grouped(X, W, scales):
    X, scales = as_f64(X), as_f64(scales)
    m, k_ = X.shape
    n = W.shape[1]
    Y = np.zeros((m, n))
    for i in range(m):
        for j in range(n):
            for k in range(k_):
                q = (int(W[k // 2, j]) >> (4 * (k % 2))) & 15
                Y[i, j] += X[i, k] * ((q - 8) * scales[k // 128, j])
    return {"Y": Y}


def naive_selective_scan(x, delta, A, B, C, h):
    x, delta, A, B, C, h = map(as_f64, (x, delta, A, B, C, h))
    t_, d_ = x.shape
    ns = A.shape[1]
    y = np.zeros((t_, d_))
    for t in range(t_):
        for d in range(d_):
            for n in range(ns):
                decay = math.exp(delta[t, d] * A[d, n])
                h[d, n] = decay * h[d, n] + delta[t, d] * B[t, n] * x[t, d]
        for d in range(d_):
            for n in range(ns):
                y[t, d] += C[t, n] * h[d, n]
    return {"y": y, "h": h}


def naive_conv2d_s2(X, F):
    X, F = as_f64(X), as_f64(F)
    n_, c_, h_, w_ = X.shape
    k_, _, r_, s_ = F.shape
    oh, ow = (h_ + 2 - r_) // 2 + 1, (w_ + 2 - s_) // 2 + 1
    Y = np.zeros((n_, k_, oh, ow))
    for n in range(n_):
        for k in range(k_):
            for y in range(oh):
                for x in range(ow):
                    for c in range(c_):
                        for r in range(r_):
                            for s in range(s_):
                                a, b = 2 * y + r - 1, 2 * x + s - 1
                                if 0 <= a < h_ and 0 <= b < w_:
                                    Y[n, k, y, x] += X[n, c, a, b] * F[k, c, r, s]
    return {"Y": Y}


def naive_lstm(x, W_ih, W_hh, bias, h, c):
    x, W_ih, W_hh, bias, h, c = map(as_f64, (x, W_ih, W_hh, bias, h, c))
    t_, b_, i_ = x.shape
    g_, h_ = W_hh.shape

    def sigmoid(v):
        return 1.0 / (1.0 + math.exp(-v))
    xw = np.zeros((t_, b_, g_))
    for s in range(t_):
        for b in range(b_):
            for g in range(g_):
                for i in range(i_):
                    xw[s, b, g] += x[s, b, i] * W_ih[g, i]
    y = np.zeros((t_, b_, h_))
    for t in range(t_):
        z = np.zeros((b_, g_))
        for b in range(b_):
            for g in range(g_):
                z[b, g] = xw[t, b, g] + bias[g]
        for b in range(b_):
            for g in range(g_):
                for j in range(h_):
                    z[b, g] += h[b, j] * W_hh[g, j]
        for b in range(b_):
            for k in range(h_):
                c[b, k] = sigmoid(z[b, h_ + k]) * c[b, k] + \
                    sigmoid(z[b, k]) * math.tanh(z[b, 2 * h_ + k])
        for b in range(b_):
            for k in range(h_):
                h[b, k] = sigmoid(z[b, 3 * h_ + k]) * math.tanh(c[b, k])
        for b in range(b_):
            for k in range(h_):
                y[t, b, k] = h[b, k]
    return {"y": y, "h": h, "c": c}


NAIVE = {name[len("naive_"):]: fn for name, fn in globals().items() if name.startswith("naive_")}
