"""Minimal kernels the backend fuzzer (tests/fuzz/differential.py) found failing, shrunk.

Each case runs its target against the kernel in program order on the host, on the inputs of
its seed. FIXED cases are bugs fixed with them; KNOWN cases are open bugs, strict xfails whose
reason names the bug: when one starts passing, move it to FIXED. New cases come from the
fuzzer's output (`regression_snippet`).
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported: no GPU here

import pytest  # noqa: E402
from fuzz.differential import Regression, check_regression  # noqa: E402

FIXED = {
    # C wrote `-(-x)` as `--x`, a decrement of an rvalue: the build failed (backends/c_family.py).
    "double_negation": Regression(
        "reference",
        "kernel k(X: i32[N], F: f32[N]) -> (Y: i32[N], Z: f32[N]) {\n"
        "    Y[i] = -(-(X[i] & 5))\n"
        "    Z[i] = -(-F[i])\n"
        "}\n",
        sizes={"N": 5}),
    # Found failing by the fuzzer, fixed in the GPU backends by their own work since:
    # Triton wrote outside the domain, ignoring a `0 <= i - j < 3` condition.
    "triton_where_difference": Regression(
        "triton",
        "kernel fz107(A: f32[M, N]) -> O1: f32[M, M, N] {\n"
        "    O1[i, j, k] = A[j, k]  where 0 <= i - j < 3\n"
        "}\n",
        sizes={"M": 2, "N": 1}, seed=107),
    "triton_where_difference_in_place": Regression(
        "triton",
        "kernel fz4(A: inout f32[N, N]) {\n"
        "    A[i, k] = A[k, k]  where 0 <= i - k < 3\n"
        "}\n",
        sizes={"N": 2}, seed=4),
    # The CUDA planner crashed (isl_set_dim_max: unbounded optimum, backends/cuda_isl.py) on
    # two statements whose i ranges differ (N and M).
    "cuda_rows_of_different_sizes": Regression(
        "cuda",
        "kernel fz102(A: f32[M], B: f32[N], D: f32[M, M]) -> (O: f32[N, M], P: f32[M]) {\n"
        "    O[i, j] = A[j] + B[i]\n"
        "    P[i] += D[i, j]\n"
        "}\n",
        sizes={"M": 7, "N": 13}, seed=102),
    # The CUDA planner summed `B += C[i] - B` across a block with the initial B (program
    # order gives C[N-1]): a reduction that reads its target keeps its order
    # (backends/cuda_lower.is_row_reduction).
    "cuda_reduction_reading_its_target": Regression(
        "cuda",
        "kernel fz5003(B: inout f32[], C: f32[N]) {\n"
        "    B += C[i] - B\n"
        "}\n",
        sizes={"N": 5}, seed=5003),
    # Triton refused `u8 % 3`: a Python int literal is int32 to it, of other signedness
    # (backends/triton_expr.py writes unsigned literals in their type).
    "triton_u8_modulo": Regression(
        "triton",
        "kernel fz9(D: inout u8[L]) {\n"
        "    D[i] = D[i] % 3\n"
        "}\n",
        sizes={"L": 3}, seed=9),
}

KNOWN: dict[str, tuple[Regression, str]] = {
    "triton_pow_f64": (Regression(
        "triton",
        "kernel fz5009(C: f64[N, K, M]) -> (O0: f64[N, K, M]) {\n"
        "    O0[i, j, k] = pow(abs(C[i + 1, K - 1 - j, k]) + 0.5, 1.5)  where i in 1:N - 2\n"
        "}\n",
        sizes={"K": 1, "M": 1, "N": 4}, seed=5009),
        "triton's pow helper on f64 fails in the interpreter: TypeError: ufunc 'bitwise_and' "
        "not supported for the input types"),
    "triton_reduced_index_as_value": (Regression(
        "triton",
        "kernel fz8(C: f32[M, N]) -> O0: f32[M] {\n"
        "    O0[i] += sigmoid(C[M - 1 - i, j] + j)\n"
        "}\n",
        sizes={"M": 1, "N": 2}, seed=8),
        "triton: a reduced index used as a value inside a function (sigmoid(C[.., j] + j), "
        "summed over j) gives a wrong sum (0.908 for 1.292)"),
}


@pytest.mark.parametrize("name", sorted(FIXED))
def test_fixed(name):
    check_regression(FIXED[name])


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=r))
                                  for n, (_, r) in sorted(KNOWN.items())])
def test_known_bug(name):
    check_regression(KNOWN[name][0])
