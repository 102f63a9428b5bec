"""Dense linear algebra in f32 (matmul, BLAS-like products, LU) and the f64 covariance."""

from __future__ import annotations

from functools import partial

import numpy as np

from .cases import Args, Sizes, f32, f64, make_case, rng, uniform


def matmul_inputs(s: Sizes, seed: int) -> Args:
    """A: f32[M, K], B: f32[K, N]."""
    r = rng(seed)
    return {"A": uniform(r, (s["M"], s["K"])), "B": uniform(r, (s["K"], s["N"]))}


def matmul_ref(A, B):
    """C = A @ B."""
    return {"C": f32(f64(A) @ f64(B))}


def bmm_inputs(s: Sizes, seed: int) -> Args:
    """A: f32[NB, M, K], B: f32[NB, K, N]."""
    r = rng(seed)
    return {"A": uniform(r, (s["NB"], s["M"], s["K"])),
            "B": uniform(r, (s["NB"], s["K"], s["N"]))}


def bmm_ref(A, B):
    """C[b] = A[b] @ B[b]."""
    return {"C": f32(np.matmul(f64(A), f64(B)))}


def gemm_inputs(s: Sizes, seed: int) -> Args:
    """alpha, beta: f32; C: inout f32[M, N]; A: f32[M, K]; B: f32[K, N]."""
    r = rng(seed)
    return {"alpha": np.float32(1.5), "beta": np.float32(-0.75),
            "C": uniform(r, (s["M"], s["N"])), "A": uniform(r, (s["M"], s["K"])),
            "B": uniform(r, (s["K"], s["N"]))}


def gemm_ref(alpha, beta, C, A, B):
    """C = alpha * A @ B + beta * C."""
    return {"C": f32(float(alpha) * (f64(A) @ f64(B)) + float(beta) * f64(C))}


def two_mm_inputs(s: Sizes, seed: int) -> Args:
    """alpha, beta: f32; A[NI, NK], B[NK, NJ], C[NJ, NL]; D: inout [NI, NL]."""
    r = rng(seed)
    ni, nj, nk, nl = s["NI"], s["NJ"], s["NK"], s["NL"]
    return {"alpha": np.float32(1.5), "beta": np.float32(1.25),
            "A": uniform(r, (ni, nk)), "B": uniform(r, (nk, nj)), "C": uniform(r, (nj, nl)),
            "D": uniform(r, (ni, nl))}


def two_mm_ref(alpha, beta, A, B, C, D):
    """D = alpha * A @ B @ C + beta * D."""
    tmp = float(alpha) * (f64(A) @ f64(B))
    return {"D": f32(tmp @ f64(C) + float(beta) * f64(D))}


def atax_inputs(s: Sizes, seed: int) -> Args:
    """A: f32[M, N], x: f32[N]."""
    r = rng(seed)
    return {"A": uniform(r, (s["M"], s["N"])), "x": uniform(r, (s["N"],))}


def atax_ref(A, x):
    """y = A^T @ (A @ x)."""
    a = f64(A)
    return {"y": f32(a.T @ (a @ f64(x)))}


def bicg_inputs(s: Sizes, seed: int) -> Args:
    """A: f32[N, M], r: f32[N], p: f32[M]."""
    g = rng(seed)
    return {"A": uniform(g, (s["N"], s["M"])), "r": uniform(g, (s["N"],)),
            "p": uniform(g, (s["M"],))}


def bicg_ref(A, r, p):
    """s = A^T @ r, q = A @ p."""
    a = f64(A)
    return {"s": f32(a.T @ f64(r)), "q": f32(a @ f64(p))}


def mvt_inputs(s: Sizes, seed: int) -> Args:
    """x1, x2: inout f32[N]; y1, y2: f32[N]; A: f32[N, N]."""
    r = rng(seed)
    n = s["N"]
    return {"x1": uniform(r, (n,)), "x2": uniform(r, (n,)), "y1": uniform(r, (n,)),
            "y2": uniform(r, (n,)), "A": uniform(r, (n, n))}


def mvt_ref(x1, x2, y1, y2, A):
    """x1 += A @ y1, x2 += A^T @ y2."""
    a = f64(A)
    return {"x1": f32(f64(x1) + a @ f64(y1)), "x2": f32(f64(x2) + a.T @ f64(y2))}


def syrk_inputs(s: Sizes, seed: int) -> Args:
    """alpha, beta: f32; C: inout f32[N, N]; A: f32[N, M]."""
    r = rng(seed)
    return {"alpha": np.float32(1.5), "beta": np.float32(1.25),
            "C": uniform(r, (s["N"], s["N"])), "A": uniform(r, (s["N"], s["M"]))}


def syrk_ref(alpha, beta, C, A):
    """Lower triangle (diagonal included) of C = alpha * A @ A^T + beta * C; upper kept."""
    a = f64(A)
    full = float(alpha) * (a @ a.T) + float(beta) * f64(C)
    lower = np.tril(np.ones(C.shape, dtype=bool))
    return {"C": f32(np.where(lower, full, f64(C)))}


def trmm_inputs(s: Sizes, seed: int) -> Args:
    """alpha: f32; A: f32[M, M]; B: inout f32[M, N]."""
    r = rng(seed)
    return {"alpha": np.float32(1.5), "A": uniform(r, (s["M"], s["M"])),
            "B": uniform(r, (s["M"], s["N"]))}


def trmm_ref(alpha, A, B):
    """B = alpha * (B + strict_lower(A)^T @ B), all of B's reads seeing its original values.

    Row i of B reads rows k > i, which the lexicographic (i, j, k) order updates later, so the
    in-place loop is the same as the out-of-place product.
    """
    b = f64(B)
    return {"B": f32(float(alpha) * (b + np.tril(f64(A), -1).T @ b))}


def lu_inputs(s: Sizes, seed: int) -> Args:
    """A: inout f32[N, N], diagonally dominant so that LU without pivoting is well conditioned."""
    r = rng(seed)
    n = s["N"]
    a = r.uniform(-1.0, 1.0, size=(n, n)) + n * np.eye(n)
    return {"A": f32(a)}


def lu_ref(A):
    """In-place LU without pivoting (right-looking, the DSL's k-loop order)."""
    a = f64(A).copy()
    n = a.shape[0]
    for k in range(n):
        a[k + 1:, k] /= a[k, k]
        a[k + 1:, k + 1:] -= np.outer(a[k + 1:, k], a[k, k + 1:])
    return {"A": f32(a)}


def covariance_inputs(s: Sizes, seed: int) -> Args:
    """float_n = N as f64; data: f64[N, M] with column offsets."""
    r = rng(seed)
    n, m = s["N"], s["M"]
    data = r.uniform(-1.0, 1.0, size=(n, m)) + r.uniform(-2.0, 2.0, size=(1, m))
    return {"float_n": np.float64(n), "data": np.ascontiguousarray(data)}


def covariance_ref(float_n, data):
    """cov = sample covariance of data's columns (divisor float_n - 1)."""
    d = data - data.sum(axis=0) / float(float_n)
    return {"cov": (d.T @ d) / (float(float_n) - 1.0)}


_case = partial(make_case, globals())

CASES = (
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
    _case("covariance", ["cov"], sizes=[{"N": 13, "M": 7}, {"N": 32, "M": 16}],
          demo={"N": 300, "M": 240}),
)
