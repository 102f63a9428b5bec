"""Iterated stencils (Jacobi, Gauss-Seidel) with `inout` arrays and a step count T."""

from __future__ import annotations

from functools import partial

import numpy as np

from .cases import Args, Sizes, f32, f64, make_case, rng, uniform


def jacobi_1d_inputs(s: Sizes, seed: int) -> Args:
    """A, B: inout f32[N]; T: i32."""
    r = rng(seed)
    return {"A": uniform(r, (s["N"],)), "B": uniform(r, (s["N"],)), "T": np.int32(s["T"])}


def jacobi_1d_ref(A, B, T):
    """T rounds of B[1:-1] = 3-point mean of A, then A[1:-1] = 3-point mean of B."""
    a, b = f64(A).copy(), f64(B).copy()
    for _ in range(int(T)):
        b[1:-1] = (a[:-2] + a[1:-1] + a[2:]) / 3.0
        a[1:-1] = (b[:-2] + b[1:-1] + b[2:]) / 3.0
    return {"A": f32(a), "B": f32(b)}


def jacobi_2d_inputs(s: Sizes, seed: int) -> Args:
    """A, B: inout f32[N, N]; T: i32."""
    r = rng(seed)
    n = s["N"]
    return {"A": uniform(r, (n, n)), "B": uniform(r, (n, n)), "T": np.int32(s["T"])}


def _five_point(x: np.ndarray) -> np.ndarray:
    return 0.2 * (x[1:-1, 1:-1] + x[1:-1, :-2] + x[1:-1, 2:] + x[2:, 1:-1] + x[:-2, 1:-1])


def jacobi_2d_ref(A, B, T):
    """T rounds of B[interior] = 5-point mean of A, then A[interior] = 5-point mean of B."""
    a, b = f64(A).copy(), f64(B).copy()
    for _ in range(int(T)):
        b[1:-1, 1:-1] = _five_point(a)
        a[1:-1, 1:-1] = _five_point(b)
    return {"A": f32(a), "B": f32(b)}


def seidel_2d_inputs(s: Sizes, seed: int) -> Args:
    """A: inout f32[N, N]; T: i32."""
    r = rng(seed)
    n = s["N"]
    return {"A": uniform(r, (n, n)), "T": np.int32(s["T"])}


def seidel_2d_ref(A, T):
    """T in-place Gauss-Seidel sweeps of the 9-point mean, points in row-major order.

    When point (i, j) is updated, row i-1 and A[i, j-1] already hold this sweep's values and
    A[i, j], A[i, j+1] and row i+1 the previous ones. Per row, everything but A[i, j-1] is
    summed vectorised; the remaining recurrence along j runs as a scalar loop.
    """
    a = f64(A).copy()
    n = a.shape[0]
    for _ in range(int(T)):
        for i in range(1, n - 1):
            up, mid, down = a[i - 1], a[i], a[i + 1]
            rest = (up[:-2] + up[1:-1] + up[2:] + mid[1:-1] + mid[2:]
                    + down[:-2] + down[1:-1] + down[2:])
            row = a[i].tolist()
            for j, c in enumerate(rest.tolist(), start=1):
                row[j] = (c + row[j - 1]) / 9.0
            a[i] = row
    return {"A": f32(a)}


_case = partial(make_case, globals())

CASES = (
    _case("jacobi_1d", inouts=["A", "B"], sizes=[
        {"N": 13, "T": 3}, {"N": 64, "T": 5}, {"N": 3, "T": 2}, {"N": 33, "T": 0}],
        demo={"N": 4000, "T": 100}),
    _case("jacobi_2d", inouts=["A", "B"], sizes=[{"N": 7, "T": 3}, {"N": 32, "T": 4}],
          demo={"N": 250, "T": 20}),
    _case("seidel_2d", inouts=["A"], sizes=[{"N": 7, "T": 2}, {"N": 13, "T": 3}, {"N": 32, "T": 2}],
          demo={"N": 120, "T": 10}),
)
