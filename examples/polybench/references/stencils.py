"""PolyBench/C 4.2 stencils: inputs and numpy references."""

from __future__ import annotations

from functools import partial

import numpy as np

from .cases import dataset_sizes, poly_case, rand


def adi_inputs(s, seed):
    r = np.random.default_rng(seed)
    n = s["N"]
    zeros = {k: np.zeros((n, n)) for k in ("v", "p", "q")}
    return {"u": rand(r, n, n, lo=0, hi=1), **zeros, "T": np.int32(s["T"])}


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
    return {**{k: rand(r, *shape_of(s)) for k in names}, "T": np.int32(s["T"])}


def fdtd_2d_inputs(s, seed):
    r = np.random.default_rng(seed)
    nx, ny = s["NX"], s["NY"]
    return {"ex": rand(r, nx, ny), "ey": rand(r, nx, ny), "hz": rand(r, nx, ny),
            "fict": rand(r, s["TMAX"])}


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


_case = partial(poly_case, globals())

CASES = (
    _case("adi", "adi", inouts=["u", "v", "p", "q"], datasets=dataset_sizes(
        "T N", (20, 20), (40, 60), (100, 200), (500, 1000))),
    _case("fdtd-2d", "fdtd_2d", inouts=["ex", "ey", "hz"], datasets=dataset_sizes(
        "TMAX NX NY", (20, 20, 30), (40, 60, 80), (100, 200, 240), (500, 1000, 1200))),
    _case("heat-3d", "heat_3d", inouts=["A", "B"], datasets=dataset_sizes(
        "T N", (20, 10), (40, 20), (100, 40), (500, 120))),
    _case("jacobi-1d", "jacobi_1d", inouts=["A", "B"], datasets=dataset_sizes(
        "T N", (20, 30), (40, 120), (100, 400), (500, 2000))),
    _case("jacobi-2d", "jacobi_2d", inouts=["A", "B"], datasets=dataset_sizes(
        "T N", (20, 30), (40, 90), (100, 250), (500, 1300))),
    _case("seidel-2d", "seidel_2d", inouts=["A"], datasets=dataset_sizes(
        "T N", (20, 40), (40, 120), (100, 400), (500, 2000))),
)
