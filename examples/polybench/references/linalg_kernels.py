"""PolyBench/C 4.2 linear-algebra/kernels: inputs and numpy references."""

from __future__ import annotations

from functools import partial

import numpy as np

from .cases import F64, N40, dataset_sizes, poly_case, rand

_ATAX = dataset_sizes("M N", (38, 42), (116, 124), (390, 410), (1900, 2100))


def two_mm_inputs(s, seed):
    r = np.random.default_rng(seed)
    ni, nj, nk, nl = s["NI"], s["NJ"], s["NK"], s["NL"]
    return {"alpha": F64(1.5), "beta": F64(1.2), "A": rand(r, ni, nk), "B": rand(r, nk, nj),
            "C": rand(r, nj, nl), "D": rand(r, ni, nl)}


def two_mm_ref(alpha, beta, A, B, C, D):
    return {"D": (alpha * A @ B) @ C + beta * D}


def three_mm_inputs(s, seed):
    r = np.random.default_rng(seed)
    ni, nj, nk, nl, nm = s["NI"], s["NJ"], s["NK"], s["NL"], s["NM"]
    return {"A": rand(r, ni, nk), "B": rand(r, nk, nj), "C": rand(r, nj, nm), "D": rand(r, nm, nl)}


def three_mm_ref(A, B, C, D):
    return {"G": (A @ B) @ (C @ D)}


def atax_inputs(s, seed):
    r = np.random.default_rng(seed)
    return {"A": rand(r, s["M"], s["N"]), "x": rand(r, s["N"])}


def atax_ref(A, x):
    return {"y": A.T @ (A @ x)}


def bicg_inputs(s, seed):
    r = np.random.default_rng(seed)
    return {"A": rand(r, s["N"], s["M"]), "r": rand(r, s["N"]), "p": rand(r, s["M"])}


def bicg_ref(A, r, p):
    return {"s": A.T @ r, "q": A @ p}


def doitgen_inputs(s, seed):
    r = np.random.default_rng(seed)
    return {"A": rand(r, s["NR"], s["NQ"], s["NP"]), "C4": rand(r, s["NP"], s["NP"])}


def doitgen_ref(A, C4):
    return {"A": np.ascontiguousarray(A @ C4)}


def mvt_inputs(s, seed):
    r = np.random.default_rng(seed)
    n = s["N"]
    return {"x1": rand(r, n), "x2": rand(r, n), "y1": rand(r, n), "y2": rand(r, n),
            "A": rand(r, n, n)}


def mvt_ref(x1, x2, y1, y2, A):
    return {"x1": x1 + A @ y1, "x2": x2 + A.T @ y2}


_case = partial(poly_case, globals())

CASES = (
    _case("2mm", "two_mm", inouts=["D"], datasets=dataset_sizes(
        "NI NJ NK NL", (16, 18, 22, 24), (40, 50, 70, 80), (180, 190, 210, 220),
        (800, 900, 1100, 1200))),
    _case("3mm", "three_mm", ["G"], datasets=dataset_sizes(
        "NI NJ NK NL NM", (16, 18, 20, 22, 24), (40, 50, 60, 70, 80), (180, 190, 200, 210, 220),
        (800, 900, 1000, 1100, 1200))),
    _case("atax", "atax", ["y"], datasets=_ATAX),
    _case("bicg", "bicg", ["s", "q"], datasets=_ATAX),
    _case("doitgen", "doitgen", inouts=["A"], datasets=dataset_sizes(
        "NQ NR NP", (8, 10, 12), (20, 25, 30), (40, 50, 60), (140, 150, 160))),
    _case("mvt", "mvt", inouts=["x1", "x2"], datasets=N40),
)
