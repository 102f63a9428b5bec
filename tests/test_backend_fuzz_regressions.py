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
}

KNOWN: dict[str, tuple[Regression, str]] = {}


@pytest.mark.parametrize("name", sorted(FIXED))
def test_fixed(name):
    check_regression(FIXED[name])


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=r))
                                  for n, (_, r) in sorted(KNOWN.items())])
def test_known_bug(name):
    check_regression(KNOWN[name][0])
