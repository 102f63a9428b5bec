"""PolyBench/C 4.2 in the loopweave DSL: inputs, dataset sizes and numpy references.

For every PolyBench kernel `examples/polybench/<name>.lw` there is one `PolyCase` in `POLYBENCH`
(keyed by PolyBench's own name, e.g. "2mm", "floyd-warshall"), built on `Case` from
examples/references.py: `make_inputs(sizes, seed)` gives the call arguments in parameter order,
`reference(**args)` the expected outputs and final `inout` arrays (computed in float64; f32 and
integer kernels are rounded / exact as there). `datasets` holds PolyBench's MINI, SMALL, MEDIUM
and LARGE sizes; `sizes` are the ones tests use (MINI and SMALL, except where a case says why).

Inputs are random, not PolyBench's init_array formulas, but keep what the algorithm needs:
symmetric positive definite for cholesky, diagonally dominant for lu/ludcmp/trisolv, a stable
autocorrelation for durbin, full column rank for gramschmidt.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

POLY_DIR = Path(__file__).resolve().parent


def _load_example_references():
    name = "loopweave_example_references"  # the same module object tests and benchmarks use
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, POLY_DIR.parent / "references.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


refs = _load_example_references()
compare, results_of = refs.compare, refs.results_of


@dataclass(frozen=True)
class PolyCase(refs.Case):
    """A PolyBench kernel: a `Case` whose source lives in examples/polybench/<file>.lw."""

    file: str = ""
    datasets: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return POLY_DIR / f"{self.file}.lw"


def _u(r, *shape, lo=-1.0, hi=1.0, dtype=np.float64):
    return np.ascontiguousarray(r.uniform(lo, hi, size=shape).astype(dtype))


F64 = np.float64


# ---- datamining -------------------------------------------------------------------------------

def correlation_inputs(s, seed):
    r = np.random.default_rng(seed)
    data = _u(r, s["N"], s["M"]) + _u(r, 1, s["M"], lo=-2, hi=2)
    data[:, 0] = 0.5  # a constant column: its deviation is below 0.1, so it is divided by 1.0
    return {"float_n": F64(s["N"]), "data": data}


def correlation_ref(float_n, data):
    mean = data.sum(axis=0) / float_n
    std = np.sqrt(((data - mean) ** 2).sum(axis=0) / float_n)
    std = np.where(std <= 0.1, 1.0, std)
    d = (data - mean) / (np.sqrt(float_n) * std)
    corr = d.T @ d
    np.fill_diagonal(corr, 1.0)
    return {"corr": corr}


def covariance_inputs(s, seed):
    r = np.random.default_rng(seed)
    return {"float_n": F64(s["N"]), "data": _u(r, s["N"], s["M"]) + _u(r, 1, s["M"], lo=-2, hi=2)}


def covariance_ref(float_n, data):
    d = data - data.sum(axis=0) / float_n
    return {"cov": d.T @ d / (float_n - 1.0)}


# ---- linear algebra: blas ----------------------------------------------------------------------

def gemm_inputs(s, seed):
    r = np.random.default_rng(seed)
    return {"alpha": F64(1.5), "beta": F64(1.2), "C": _u(r, s["NI"], s["NJ"]),
            "A": _u(r, s["NI"], s["NK"]), "B": _u(r, s["NK"], s["NJ"])}


def gemm_ref(alpha, beta, C, A, B):
    return {"C": alpha * A @ B + beta * C}


def gemver_inputs(s, seed):
    r = np.random.default_rng(seed)
    n = s["N"]
    v = {k: _u(r, n) for k in ("u1", "v1", "u2", "v2", "w", "x", "y", "z")}
    return {"alpha": F64(1.5), "beta": F64(1.2), "A": _u(r, n, n), "u1": v["u1"], "v1": v["v1"],
            "u2": v["u2"], "v2": v["v2"], "w": v["w"], "x": v["x"], "y": v["y"], "z": v["z"]}


def gemver_ref(alpha, beta, A, u1, v1, u2, v2, w, x, y, z):
    a = A + np.outer(u1, v1) + np.outer(u2, v2)
    x = x + beta * a.T @ y + z
    return {"A": a, "w": w + alpha * a @ x, "x": x}


def gesummv_inputs(s, seed):
    r = np.random.default_rng(seed)
    n = s["N"]
    return {"alpha": F64(1.5), "beta": F64(1.2), "A": _u(r, n, n), "B": _u(r, n, n),
            "x": _u(r, n)}


def gesummv_ref(alpha, beta, A, B, x):
    return {"y": alpha * A @ x + beta * B @ x}


def symm_inputs(s, seed):
    r = np.random.default_rng(seed)
    m, n = s["M"], s["N"]
    return {"alpha": F64(1.5), "beta": F64(1.2), "C": _u(r, m, n), "A": _u(r, m, m),
            "B": _u(r, m, n)}


def symm_ref(alpha, beta, C, A, B):
    """A's lower triangle (diagonal included) mirrored is the symmetric matrix multiplied."""
    sym = np.tril(A) + np.tril(A, -1).T
    return {"C": alpha * sym @ B + beta * C}


def syr2k_inputs(s, seed):
    r = np.random.default_rng(seed)
    n, m = s["N"], s["M"]
    return {"alpha": F64(1.5), "beta": F64(1.2), "C": _u(r, n, n), "A": _u(r, n, m),
            "B": _u(r, n, m)}


def _lower(new, old):
    return np.where(np.tril(np.ones(old.shape, dtype=bool)), new, old)


def syr2k_ref(alpha, beta, C, A, B):
    return {"C": _lower(alpha * (A @ B.T + B @ A.T) + beta * C, C)}


def syrk_inputs(s, seed):
    r = np.random.default_rng(seed)
    return {"alpha": F64(1.5), "beta": F64(1.2), "C": _u(r, s["N"], s["N"]),
            "A": _u(r, s["N"], s["M"])}


def syrk_ref(alpha, beta, C, A):
    return {"C": _lower(alpha * A @ A.T + beta * C, C)}


def trmm_inputs(s, seed):
    r = np.random.default_rng(seed)
    return {"alpha": F64(1.5), "A": _u(r, s["M"], s["M"]), "B": _u(r, s["M"], s["N"])}


def trmm_ref(alpha, A, B):
    return {"B": alpha * (B + np.tril(A, -1).T @ B)}


# ---- linear algebra: kernels -------------------------------------------------------------------

def two_mm_inputs(s, seed):
    r = np.random.default_rng(seed)
    ni, nj, nk, nl = s["NI"], s["NJ"], s["NK"], s["NL"]
    return {"alpha": F64(1.5), "beta": F64(1.2), "A": _u(r, ni, nk), "B": _u(r, nk, nj),
            "C": _u(r, nj, nl), "D": _u(r, ni, nl)}


def two_mm_ref(alpha, beta, A, B, C, D):
    return {"D": (alpha * A @ B) @ C + beta * D}


def three_mm_inputs(s, seed):
    r = np.random.default_rng(seed)
    ni, nj, nk, nl, nm = s["NI"], s["NJ"], s["NK"], s["NL"], s["NM"]
    return {"A": _u(r, ni, nk), "B": _u(r, nk, nj), "C": _u(r, nj, nm), "D": _u(r, nm, nl)}


def three_mm_ref(A, B, C, D):
    return {"G": (A @ B) @ (C @ D)}


def atax_inputs(s, seed):
    r = np.random.default_rng(seed)
    return {"A": _u(r, s["M"], s["N"]), "x": _u(r, s["N"])}


def atax_ref(A, x):
    return {"y": A.T @ (A @ x)}


def bicg_inputs(s, seed):
    r = np.random.default_rng(seed)
    return {"A": _u(r, s["N"], s["M"]), "r": _u(r, s["N"]), "p": _u(r, s["M"])}


def bicg_ref(A, r, p):
    return {"s": A.T @ r, "q": A @ p}


def doitgen_inputs(s, seed):
    r = np.random.default_rng(seed)
    return {"A": _u(r, s["NR"], s["NQ"], s["NP"]), "C4": _u(r, s["NP"], s["NP"])}


def doitgen_ref(A, C4):
    return {"A": np.ascontiguousarray(A @ C4)}


def mvt_inputs(s, seed):
    r = np.random.default_rng(seed)
    n = s["N"]
    return {"x1": _u(r, n), "x2": _u(r, n), "y1": _u(r, n), "y2": _u(r, n), "A": _u(r, n, n)}


def mvt_ref(x1, x2, y1, y2, A):
    return {"x1": x1 + A @ y1, "x2": x2 + A.T @ y2}


# ---- linear algebra: solvers -------------------------------------------------------------------

def cholesky_inputs(s, seed):
    r = np.random.default_rng(seed)
    n = s["N"]
    m = _u(r, n, n)
    return {"A": np.ascontiguousarray(m @ m.T / n + np.eye(n))}


def cholesky_ref(A):
    """L in the lower triangle (diagonal included); the strict upper triangle is not touched."""
    return {"A": np.tril(np.linalg.cholesky(A)) + np.triu(A, 1)}


def durbin_inputs(s, seed):
    """r[i] = u * 0.5^(i+1): sum |r| < 1, so the Toeplitz matrix is positive definite."""
    r = np.random.default_rng(seed)
    n = s["N"]
    return {"r": _u(r, n) * 0.5 ** np.arange(1, n + 1)}


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
    return {"A": _u(r, s["M"], s["N"])}


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
    return np.ascontiguousarray(_u(r, n, n) + n * np.eye(n))


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
    return {"A": _dominant(r, s["N"]), "b": _u(r, s["N"])}


def ludcmp_ref(A, b):
    lu = _doolittle(A)
    y = np.linalg.solve(np.tril(lu, -1) + np.eye(len(b)), b)
    return {"x": np.linalg.solve(np.triu(lu), y), "A": lu}


def trisolv_inputs(s, seed):
    r = np.random.default_rng(seed)
    return {"L": _dominant(r, s["N"]), "b": _u(r, s["N"])}


def trisolv_ref(L, b):
    return {"x": np.linalg.solve(np.tril(L), b)}


# ---- medley ------------------------------------------------------------------------------------

def deriche_inputs(s, seed):
    r = np.random.default_rng(seed)
    w, h = s["W"], s["H"]
    return {"alpha": np.float32(0.25), "imgIn": _u(r, w, h, lo=0, hi=1, dtype=np.float32),
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


# ---- stencils ----------------------------------------------------------------------------------

def adi_inputs(s, seed):
    r = np.random.default_rng(seed)
    n = s["N"]
    zeros = {k: np.zeros((n, n)) for k in ("v", "p", "q")}
    return {"u": _u(r, n, n, lo=0, hi=1), **zeros, "T": np.int32(s["T"])}


def adi_ref(u, v, p, q, T):
    u, v, p, q = u.copy(), v.copy(), p.copy(), q.copy()
    n = u.shape[0]
    mul1 = 2.0 * (1.0 / int(T)) / ((1.0 / n) * (1.0 / n))
    mul2 = 1.0 * (1.0 / int(T)) / ((1.0 / n) * (1.0 / n))
    a, b, d, e = -mul1 / 2.0, 1.0 + mul1, -mul2 / 2.0, 1.0 + mul2
    c, f = a, d
    inner = slice(1, n - 1)

    def sweep(src, dst, lo, mid, hi, diag, off):
        # rows i of p, q and the solved lines of dst, all interior i at once; src(j) gives the
        # three neighbours (i-1, i, i+1 along the other axis) at position j
        p[inner, 0], q[inner, 0] = 0.0, 1.0
        for j in range(1, n - 1):
            left, centre, right = src(j)
            den = lo * p[inner, j - 1] + diag
            p[inner, j] = -hi / den
            q[inner, j] = (-off * left + (1.0 + 2.0 * off) * centre - off * right
                           - lo * q[inner, j - 1]) / den
        dst(n - 1, np.ones(n - 2))
        line = np.ones(n - 2)
        for j in range(n - 2, 0, -1):
            line = p[inner, j] * line + q[inner, j]
            dst(j, line)
        dst(0, np.ones(n - 2))

    def set_v(j, val):
        v[j, inner] = val

    def set_u(j, val):
        u[inner, j] = val

    for _ in range(int(T)):
        sweep(lambda j: (u[j, :-2], u[j, 1:-1], u[j, 2:]), set_v, a, None, c, b, d)
        sweep(lambda j: (v[:-2, j], v[1:-1, j], v[2:, j]), set_u, d, None, f, e, a)
    return {"u": u, "v": v, "p": p, "q": q}


def _stencil_inputs(names, shape_of, seed, s):
    r = np.random.default_rng(seed)
    return {**{k: _u(r, *shape_of(s)) for k in names}, "T": np.int32(s["T"])}


def fdtd_2d_inputs(s, seed):
    r = np.random.default_rng(seed)
    nx, ny = s["NX"], s["NY"]
    return {"ex": _u(r, nx, ny), "ey": _u(r, nx, ny), "hz": _u(r, nx, ny),
            "fict": _u(r, s["TMAX"])}


def fdtd_2d_ref(ex, ey, hz, fict):
    ex, ey, hz = ex.copy(), ey.copy(), hz.copy()
    for f in fict:
        ey[0, :] = f
        ey[1:, :] = ey[1:, :] - 0.5 * (hz[1:, :] - hz[:-1, :])
        ex[:, 1:] = ex[:, 1:] - 0.5 * (hz[:, 1:] - hz[:, :-1])
        hz[:-1, :-1] = hz[:-1, :-1] - 0.7 * (ex[:-1, 1:] - ex[:-1, :-1] + ey[1:, :-1]
                                             - ey[:-1, :-1])
    return {"ex": ex, "ey": ey, "hz": hz}


def heat_3d_inputs(s, seed):
    return _stencil_inputs(("A", "B"), lambda s: (s["N"],) * 3, seed, s)


def _heat(x):
    c = x[1:-1, 1:-1, 1:-1]
    return (0.125 * (x[2:, 1:-1, 1:-1] - 2.0 * c + x[:-2, 1:-1, 1:-1])
            + 0.125 * (x[1:-1, 2:, 1:-1] - 2.0 * c + x[1:-1, :-2, 1:-1])
            + 0.125 * (x[1:-1, 1:-1, 2:] - 2.0 * c + x[1:-1, 1:-1, :-2]) + c)


def heat_3d_ref(A, B, T):
    a, b = A.copy(), B.copy()
    for _ in range(int(T)):
        b[1:-1, 1:-1, 1:-1] = _heat(a)
        a[1:-1, 1:-1, 1:-1] = _heat(b)
    return {"A": a, "B": b}


def jacobi_1d_inputs(s, seed):
    return _stencil_inputs(("A", "B"), lambda s: (s["N"],), seed, s)


def jacobi_1d_ref(A, B, T):
    a, b = A.copy(), B.copy()
    for _ in range(int(T)):
        b[1:-1] = 0.33333 * (a[:-2] + a[1:-1] + a[2:])
        a[1:-1] = 0.33333 * (b[:-2] + b[1:-1] + b[2:])
    return {"A": a, "B": b}


def jacobi_2d_inputs(s, seed):
    return _stencil_inputs(("A", "B"), lambda s: (s["N"], s["N"]), seed, s)


def _five(x):
    return 0.2 * (x[1:-1, 1:-1] + x[1:-1, :-2] + x[1:-1, 2:] + x[2:, 1:-1] + x[:-2, 1:-1])


def jacobi_2d_ref(A, B, T):
    a, b = A.copy(), B.copy()
    for _ in range(int(T)):
        b[1:-1, 1:-1] = _five(a)
        a[1:-1, 1:-1] = _five(b)
    return {"A": a, "B": b}


def seidel_2d_inputs(s, seed):
    return _stencil_inputs(("A",), lambda s: (s["N"], s["N"]), seed, s)


def seidel_2d_ref(A, T):
    """Row i-1 and A[i, j-1] hold this sweep's values when (i, j) is updated: the old
    neighbours are summed a row at a time, the recurrence along j runs as a scalar loop."""
    a = A.copy()
    for _ in range(int(T)):
        for i in range(1, a.shape[0] - 1):
            up, mid, down = a[i - 1], a[i], a[i + 1]
            old = (up[:-2] + up[1:-1] + up[2:] + mid[1:-1] + mid[2:]
                   + down[:-2] + down[1:-1] + down[2:]).tolist()
            row = mid.tolist()
            for j, rest in enumerate(old, start=1):
                row[j] = (rest + row[j - 1]) / 9.0
            a[i] = row
    return {"A": a}


# ---- the table ---------------------------------------------------------------------------------

DATASET_NAMES = ("MINI", "SMALL", "MEDIUM", "LARGE")


def _sizes(keys: str, *rows: tuple[int, ...]) -> dict[str, dict[str, int]]:
    return {d: dict(zip(keys.split(), row, strict=True))
            for d, row in zip(DATASET_NAMES, rows, strict=True)}


def _poly(name, func, outputs=(), inouts=(), datasets=None, test_sizes=None, tol_scale=1.0):
    g = globals()
    sizes = test_sizes or (datasets["MINI"], datasets["SMALL"])
    return PolyCase(name, g[f"{func}_inputs"], g[f"{func}_ref"], tuple(outputs), tuple(inouts),
                    tuple(sizes), dict(datasets["MEDIUM"]), tol_scale, file=name,
                    datasets=datasets)


_MN = _sizes("M N", (20, 30), (60, 80), (200, 240), (1000, 1200))
_N40 = _sizes("N", (40,), (120,), (400,), (2000,))
_ATAX = _sizes("M N", (38, 42), (116, 124), (390, 410), (1900, 2100))
_CORR = _sizes("M N", (28, 32), (80, 100), (240, 260), (1200, 1400))

POLYBENCH: dict[str, PolyCase] = {c.name: c for c in [
    _poly("correlation", "correlation", ["corr"], datasets=_CORR),
    _poly("covariance", "covariance", ["cov"], datasets=_CORR),
    _poly("gemm", "gemm", inouts=["C"], datasets=_sizes(
        "NI NJ NK", (20, 25, 30), (60, 70, 80), (200, 220, 240), (1000, 1100, 1200))),
    _poly("gemver", "gemver", inouts=["A", "w", "x"], datasets=_N40),
    _poly("gesummv", "gesummv", ["y"], datasets=_sizes("N", (30,), (90,), (250,), (1300,))),
    _poly("symm", "symm", inouts=["C"], datasets=_MN),
    _poly("syr2k", "syr2k", inouts=["C"], datasets=_MN),
    _poly("syrk", "syrk", inouts=["C"], datasets=_MN),
    _poly("trmm", "trmm", inouts=["B"], datasets=_MN),
    _poly("2mm", "two_mm", inouts=["D"], datasets=_sizes(
        "NI NJ NK NL", (16, 18, 22, 24), (40, 50, 70, 80), (180, 190, 210, 220),
        (800, 900, 1100, 1200))),
    _poly("3mm", "three_mm", ["G"], datasets=_sizes(
        "NI NJ NK NL NM", (16, 18, 20, 22, 24), (40, 50, 60, 70, 80), (180, 190, 200, 210, 220),
        (800, 900, 1000, 1100, 1200))),
    _poly("atax", "atax", ["y"], datasets=_ATAX),
    _poly("bicg", "bicg", ["s", "q"], datasets=_ATAX),
    _poly("doitgen", "doitgen", inouts=["A"], datasets=_sizes(
        "NQ NR NP", (8, 10, 12), (20, 25, 30), (40, 50, 60), (140, 150, 160))),
    _poly("mvt", "mvt", inouts=["x1", "x2"], datasets=_N40),
    _poly("cholesky", "cholesky", inouts=["A"], datasets=_N40),
    _poly("durbin", "durbin", ["y"], datasets=_N40),
    # PolyBench's gramschmidt sizes have fewer rows than columns (M < N): the trailing columns
    # are linearly dependent and the result is rounding noise. Tests use M >= N.
    _poly("gramschmidt", "gramschmidt", ["R", "Q"], inouts=["A"], datasets=_MN,
          test_sizes=({"M": 30, "N": 20}, {"M": 80, "N": 60}), tol_scale=10.0),
    _poly("lu", "lu", inouts=["A"], datasets=_N40),
    _poly("ludcmp", "ludcmp", ["x"], inouts=["A"], datasets=_N40),
    _poly("trisolv", "trisolv", ["x"], datasets=_N40),
    _poly("deriche", "deriche", inouts=["imgOut", "y1", "y2"], datasets=_sizes(
        "W H", (64, 64), (192, 128), (720, 480), (4096, 2160))),
    _poly("floyd-warshall", "floyd_warshall", inouts=["path"],
          datasets=_sizes("N", (60,), (180,), (500,), (2800,))),
    _poly("nussinov", "nussinov", inouts=["table"],
          datasets=_sizes("N", (60,), (180,), (500,), (2500,))),
    _poly("adi", "adi", inouts=["u", "v", "p", "q"], datasets=_sizes(
        "T N", (20, 20), (40, 60), (100, 200), (500, 1000))),
    _poly("fdtd-2d", "fdtd_2d", inouts=["ex", "ey", "hz"], datasets=_sizes(
        "TMAX NX NY", (20, 20, 30), (40, 60, 80), (100, 200, 240), (500, 1000, 1200))),
    _poly("heat-3d", "heat_3d", inouts=["A", "B"], datasets=_sizes(
        "T N", (20, 10), (40, 20), (100, 40), (500, 120))),
    _poly("jacobi-1d", "jacobi_1d", inouts=["A", "B"], datasets=_sizes(
        "T N", (20, 30), (40, 120), (100, 400), (500, 2000))),
    _poly("jacobi-2d", "jacobi_2d", inouts=["A", "B"], datasets=_sizes(
        "T N", (20, 30), (40, 90), (100, 250), (500, 1300))),
    _poly("seidel-2d", "seidel_2d", inouts=["A"], datasets=_sizes(
        "T N", (20, 40), (40, 120), (100, 400), (500, 2000))),
]}
