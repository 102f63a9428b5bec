"""PolyBench/C 4.2 linear-algebra/blas: inputs and numpy references."""

from __future__ import annotations

from functools import partial

import numpy as np

from .cases import F64, MN, N40, dataset_sizes, poly_case, rand


def gemm_inputs(s, seed):
    r = np.random.default_rng(seed)
    return {"alpha": F64(1.5), "beta": F64(1.2), "C": rand(r, s["NI"], s["NJ"]),
            "A": rand(r, s["NI"], s["NK"]), "B": rand(r, s["NK"], s["NJ"])}


def gemm_ref(alpha, beta, C, A, B):
    return {"C": alpha * A @ B + beta * C}


def gemver_inputs(s, seed):
    r = np.random.default_rng(seed)
    n = s["N"]
    v = {k: rand(r, n) for k in ("u1", "v1", "u2", "v2", "w", "x", "y", "z")}
    return {"alpha": F64(1.5), "beta": F64(1.2), "A": rand(r, n, n), "u1": v["u1"], "v1": v["v1"],
            "u2": v["u2"], "v2": v["v2"], "w": v["w"], "x": v["x"], "y": v["y"], "z": v["z"]}


def gemver_ref(alpha, beta, A, u1, v1, u2, v2, w, x, y, z):
    a = A + np.outer(u1, v1) + np.outer(u2, v2)
    x = x + beta * a.T @ y + z
    return {"A": a, "w": w + alpha * a @ x, "x": x}


def gesummv_inputs(s, seed):
    r = np.random.default_rng(seed)
    n = s["N"]
    return {"alpha": F64(1.5), "beta": F64(1.2), "A": rand(r, n, n), "B": rand(r, n, n),
            "x": rand(r, n)}


def gesummv_ref(alpha, beta, A, B, x):
    return {"y": alpha * A @ x + beta * B @ x}


def symm_inputs(s, seed):
    r = np.random.default_rng(seed)
    m, n = s["M"], s["N"]
    return {"alpha": F64(1.5), "beta": F64(1.2), "C": rand(r, m, n), "A": rand(r, m, m),
            "B": rand(r, m, n)}


def symm_ref(alpha, beta, C, A, B):
    """A's lower triangle (diagonal included) mirrored is the symmetric matrix multiplied."""
    sym = np.tril(A) + np.tril(A, -1).T
    return {"C": alpha * sym @ B + beta * C}


def syr2k_inputs(s, seed):
    r = np.random.default_rng(seed)
    n, m = s["N"], s["M"]
    return {"alpha": F64(1.5), "beta": F64(1.2), "C": rand(r, n, n), "A": rand(r, n, m),
            "B": rand(r, n, m)}


def _lower(new, old):
    return np.where(np.tril(np.ones(old.shape, dtype=bool)), new, old)


def syr2k_ref(alpha, beta, C, A, B):
    return {"C": _lower(alpha * (A @ B.T + B @ A.T) + beta * C, C)}


def syrk_inputs(s, seed):
    r = np.random.default_rng(seed)
    return {"alpha": F64(1.5), "beta": F64(1.2), "C": rand(r, s["N"], s["N"]),
            "A": rand(r, s["N"], s["M"])}


def syrk_ref(alpha, beta, C, A):
    return {"C": _lower(alpha * A @ A.T + beta * C, C)}


def trmm_inputs(s, seed):
    r = np.random.default_rng(seed)
    return {"alpha": F64(1.5), "A": rand(r, s["M"], s["M"]), "B": rand(r, s["M"], s["N"])}


def trmm_ref(alpha, A, B):
    return {"B": alpha * (B + np.tril(A, -1).T @ B)}


_case = partial(poly_case, globals())

CASES = (
    _case("gemm", "gemm", inouts=["C"], datasets=dataset_sizes(
        "NI NJ NK", (20, 25, 30), (60, 70, 80), (200, 220, 240), (1000, 1100, 1200))),
    _case("gemver", "gemver", inouts=["A", "w", "x"], datasets=N40),
    _case("gesummv", "gesummv", ["y"], datasets=dataset_sizes("N", (30,), (90,), (250,), (1300,))),
    _case("symm", "symm", inouts=["C"], datasets=MN),
    _case("syr2k", "syr2k", inouts=["C"], datasets=MN),
    _case("syrk", "syrk", inouts=["C"], datasets=MN),
    _case("trmm", "trmm", inouts=["B"], datasets=MN),
)
