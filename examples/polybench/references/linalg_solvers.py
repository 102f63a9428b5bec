"""PolyBench/C 4.2 linear-algebra/solvers: inputs and numpy references."""

from __future__ import annotations

from functools import partial

import numpy as np

from .cases import MN, N40, poly_case, rand


def cholesky_inputs(s, seed):
    r = np.random.default_rng(seed)
    n = s["N"]
    m = rand(r, n, n)
    return {"A": np.ascontiguousarray(m @ m.T / n + np.eye(n))}


def cholesky_ref(A):
    """L in the lower triangle (diagonal included); the strict upper triangle is not touched."""
    return {"A": np.tril(np.linalg.cholesky(A)) + np.triu(A, 1)}


def durbin_inputs(s, seed):
    """r[i] = u * 0.5^(i+1): sum |r| < 1, so the Toeplitz matrix is positive definite."""
    r = np.random.default_rng(seed)
    n = s["N"]
    return {"r": rand(r, n) * 0.5 ** np.arange(1, n + 1)}


def durbin_ref(r):
    n = r.shape[0]
    y = np.zeros(n)
    y[0], alpha, beta = -r[0], -r[0], 1.0
    for k in range(1, n):
        beta = (1.0 - alpha * alpha) * beta
        alpha = -(r[k] + r[k - 1::-1] @ y[:k]) / beta
        y[:k] = y[:k] + alpha * y[k - 1::-1]
        y[k] = alpha
    return {"y": y}


def gramschmidt_inputs(s, seed):
    r = np.random.default_rng(seed)
    return {"A": rand(r, s["M"], s["N"])}


def gramschmidt_ref(A):
    a = A.copy()
    m, n = a.shape
    R, Q = np.zeros((n, n)), np.zeros((m, n))
    for k in range(n):
        R[k, k] = np.sqrt(a[:, k] @ a[:, k])
        Q[:, k] = a[:, k] / R[k, k]
        R[k, k + 1:] = Q[:, k] @ a[:, k + 1:]
        a[:, k + 1:] -= np.outer(Q[:, k], R[k, k + 1:])
    return {"R": R, "Q": Q, "A": a}


def _dominant(r, n):
    return np.ascontiguousarray(rand(r, n, n) + n * np.eye(n))


def lu_inputs(s, seed):
    return {"A": _dominant(np.random.default_rng(seed), s["N"])}


def _doolittle(a):
    a = a.copy()
    for i in range(a.shape[0]):
        for j in range(i):
            a[i, j] = (a[i, j] - a[i, :j] @ a[:j, j]) / a[j, j]
        a[i, i:] -= a[i, :i] @ a[:i, i:]
    return a


def lu_ref(A):
    return {"A": _doolittle(A)}


def ludcmp_inputs(s, seed):
    r = np.random.default_rng(seed)
    return {"A": _dominant(r, s["N"]), "b": rand(r, s["N"])}


def ludcmp_ref(A, b):
    lu = _doolittle(A)
    y = np.linalg.solve(np.tril(lu, -1) + np.eye(len(b)), b)
    return {"x": np.linalg.solve(np.triu(lu), y), "A": lu}


def trisolv_inputs(s, seed):
    r = np.random.default_rng(seed)
    return {"L": _dominant(r, s["N"]), "b": rand(r, s["N"])}


def trisolv_ref(L, b):
    return {"x": np.linalg.solve(np.tril(L), b)}


_case = partial(poly_case, globals())

CASES = (
    _case("cholesky", "cholesky", inouts=["A"], datasets=N40),
    _case("durbin", "durbin", ["y"], datasets=N40),
    # PolyBench's gramschmidt sizes have fewer rows than columns (M < N): the trailing columns
    # are linearly dependent and Q's are rounding noise (R's and A's are not). Tests use M >= N.
    _case("gramschmidt", "gramschmidt", ["R", "Q"], inouts=["A"], datasets=MN,
          test_sizes=({"M": 30, "N": 20}, {"M": 80, "N": 60}), tol_scale=10.0,
          noise=lambda s: ("Q",) if s["M"] < s["N"] else ()),
    _case("lu", "lu", inouts=["A"], datasets=N40),
    _case("ludcmp", "ludcmp", ["x"], inouts=["A"], datasets=N40),
    _case("trisolv", "trisolv", ["x"], datasets=N40),
)
