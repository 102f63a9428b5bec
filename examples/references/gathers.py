"""Kernels that read through indices (gathers): an embedding lookup, an ELLPACK sparse
matrix-vector product, and CSR sparse products, whose row ranges are read from row_ptr."""

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


def csr_matrix(r: np.random.Generator, rows: int, cols: int, nnz: int):
    """(row_ptr i32[rows + 1], col i32[nnz], vals f32[nnz]) of a random sparse matrix with
    `nnz` nonzeros (distinct positions, sorted columns per row), the first row and every third
    one empty."""
    allowed = np.array([i for i in range(rows) if i % 3], dtype=np.int64)
    cells = allowed.size * cols
    if nnz > cells:
        raise ValueError(f"{nnz} nonzeros do not fit {allowed.size} x {cols} free cells")
    flat = np.sort(r.choice(cells, size=nnz, replace=False)) if nnz else np.zeros(0, np.int64)
    row, col = allowed[flat // cols] if nnz else flat, flat % cols
    row_ptr = np.zeros(rows + 1, np.int32)
    np.cumsum(np.bincount(row, minlength=rows), out=row_ptr[1:])
    return row_ptr, col.astype(np.int32), uniform(r, (nnz,))


def csr_rows(row_ptr) -> np.ndarray:
    """The row of each nonzero of a CSR matrix."""
    return np.repeat(np.arange(len(row_ptr) - 1), np.diff(row_ptr))


def csr_spmv_inputs(s: Sizes, seed: int) -> Args:
    """row_ptr: i32[R], col: i32[NNZ], vals: f32[NNZ] (R - 1 rows, some empty), x: f32[N]."""
    r = rng(seed)
    row_ptr, col, vals = csr_matrix(r, s["R"] - 1, s["N"], s["NNZ"])
    return {"row_ptr": row_ptr, "col": col, "vals": vals, "x": uniform(r, (s["N"],))}


def csr_spmv_ref(row_ptr, col, vals, x):
    """y[i] = sum over row i's nonzeros of vals[p] * x[col[p]] (in f64)."""
    return {"y": f32(np.bincount(csr_rows(row_ptr), weights=f64(vals) * f64(x)[col],
                                 minlength=len(row_ptr) - 1))}


def csr_spmm_inputs(s: Sizes, seed: int) -> Args:
    """row_ptr: i32[R], col: i32[NNZ] in 0..K-1, vals: f32[NNZ], B: f32[K, N]."""
    r = rng(seed)
    row_ptr, col, vals = csr_matrix(r, s["R"] - 1, s["K"], s["NNZ"])
    return {"row_ptr": row_ptr, "col": col, "vals": vals, "B": uniform(r, (s["K"], s["N"]))}


def csr_spmm_ref(row_ptr, col, vals, B):
    """Y[i, :] = sum over row i's nonzeros of vals[p] * B[col[p], :] (in f64)."""
    y = np.zeros((len(row_ptr) - 1, B.shape[1]))
    np.add.at(y, csr_rows(row_ptr), f64(vals)[:, None] * f64(B)[col])
    return {"Y": f32(y)}


_case = partial(make_case, globals())

CASES = (
    _case("embedding", ["out"], sizes=[{"V": 7, "D": 5, "N": 9}, {"V": 50, "D": 33, "N": 17},
                                        {"V": 64, "D": 64, "N": 32}],
          demo={"V": 32000, "D": 256, "N": 4096}),
    _case("ell_spmv", ["y"], sizes=[{"M": 13, "K": 5, "N": 11}, {"M": 31, "K": 7, "N": 45},
                                     {"M": 64, "K": 8, "N": 64}],
          demo={"M": 100000, "K": 16, "N": 100000}),
    _case("csr_spmv", ["y"], sizes=[{"R": 14, "NNZ": 30, "N": 11}, {"R": 32, "NNZ": 97, "N": 45},
                                     {"R": 5, "NNZ": 0, "N": 7}, {"R": 65, "NNZ": 512, "N": 64}],
          demo={"R": 100001, "NNZ": 1600000, "N": 100000}),
    _case("csr_spmm", ["Y"], sizes=[{"R": 14, "NNZ": 30, "K": 11, "N": 7},
                                     {"R": 32, "NNZ": 97, "K": 45, "N": 33},
                                     {"R": 5, "NNZ": 0, "K": 7, "N": 3},
                                     {"R": 33, "NNZ": 200, "K": 32, "N": 64}],
          demo={"R": 4097, "NNZ": 65536, "K": 4096, "N": 64}),
)
