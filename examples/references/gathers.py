"""Kernels that read through indices (gathers): an embedding lookup and an ELLPACK sparse
matrix-vector product."""

from __future__ import annotations

from functools import partial

import numpy as np

from .cases import Args, Sizes, f32, f64, make_case, rng, uniform


def embedding_inputs(s: Sizes, seed: int) -> Args:
    """table: f32[V, D], ids: i32[N] in 0..V-1 (repeats included)."""
    r = rng(seed)
    return {"table": uniform(r, (s["V"], s["D"])),
            "ids": r.integers(0, s["V"], size=s["N"], dtype=np.int32)}


def embedding_ref(table, ids):
    """out = table[ids] (np.take along rows)."""
    return {"out": np.ascontiguousarray(np.take(table, ids, axis=0))}


def ell_spmv_inputs(s: Sizes, seed: int) -> Args:
    """vals: f32[M, K] with about a third of the slots padding (value 0), col: i32[M, K] in
    0..N-1, x: f32[N]."""
    r = rng(seed)
    m, k, n = s["M"], s["K"], s["N"]
    vals = uniform(r, (m, k))
    vals[r.random((m, k)) < 1 / 3] = 0.0
    return {"vals": vals, "col": r.integers(0, n, size=(m, k), dtype=np.int32),
            "x": uniform(r, (n,))}


def ell_spmv_ref(vals, col, x):
    """y[i] = sum_k vals[i, k] * x[col[i, k]]."""
    return {"y": f32((f64(vals) * f64(x)[col]).sum(axis=1))}


_case = partial(make_case, globals())

CASES = (
    _case("embedding", ["out"], sizes=[{"V": 7, "D": 5, "N": 9}, {"V": 50, "D": 33, "N": 17},
                                        {"V": 64, "D": 64, "N": 32}],
          demo={"V": 32000, "D": 256, "N": 4096}),
    _case("ell_spmv", ["y"], sizes=[{"M": 13, "K": 5, "N": 11}, {"M": 31, "K": 7, "N": 45},
                                     {"M": 64, "K": 8, "N": 64}],
          demo={"M": 100000, "K": 16, "N": 100000}),
)
