"""A sum of contractions reduced into one tensor (syr2k's `C[i, j] += A[j, k] * B[i, k] +
B[j, k] * A[i, k]`) becomes one reduction per term (passes/split_sums.py); `reassociate`d
together, the terms' updates of one element commute (`Dependences.commuting`), so each term
leaves the shared loops and takes the micro-kernel (syr2k: register tiles in the default
schedule). Every other dependence on the tensor still holds: its initialisation before every
term, its readers after."""

from __future__ import annotations

import numpy as np
import pytest
from polybench_check import assert_matches_reference

import loopweave
from loopweave.errors import ScheduleError
from loopweave.examples import load_polybench_references
from loopweave.ir.expr import to_str
from loopweave.passes.split_sums import split_sums, sum_terms
from loopweave.pipeline import front_end

poly = load_polybench_references()


THREE_TERMS = """kernel k(A: f32[N, K], B: f32[K, N], D: f32[N, K], E: f32[K, N]) -> C: f32[N, N] {
    C[i, j] += A[i, k] * B[k, j] - D[i, k] * E[k, j] + A[i, k] * E[k, j]
}"""


def test_a_sum_of_contractions_becomes_one_reduction_per_term():
    compiled = loopweave.compile(THREE_TERMS, tuning_db=False, cost_model=False)
    rng = np.random.default_rng(1)
    a, b, d, e = (rng.standard_normal(s).astype(np.float32)
                  for s in ((37, 301), (301, 37), (37, 301), (301, 37)))
    np.testing.assert_allclose(compiled(a, b, d, e), a @ b - d @ e + a @ e, rtol=1e-4,
                               atol=1e-3)
    assert compiled.source.count("lw_r0_0 +=") >= 3
    kernel = split_sums(front_end(THREE_TERMS))
    sums = [s for s in kernel.statements if not s.is_init]
    assert [s.name for s in sums] == ["S1", "S1_term", "S1_term_"]
    assert [to_str(s.rhs) for s in sums] == ["A[i, k] * B[k, j]", "-1.0 * (D[i, k] * E[k, j])",
                                             "A[i, k] * E[k, j]"]
    assert sum_terms(kernel) == [["S1", "S1_term", "S1_term_"]]


@pytest.mark.parametrize("statement", [
    "C[i, j] += A[i, k] * B[k, j] + A[i, k]",  # a term that is no contraction
    "C[i, j] += A[i, k] * B[k, j] + C[i, k] * B[k, j]",  # a term reads C
    "C[i, j] += A[i, k] * B[k, j]",  # one term
])
def test_other_reductions_stay_whole(statement):
    kernel = front_end(f"""kernel k(A: f32[N, N], B: f32[N, N], C: inout f32[N, N]) {{
    {statement}
}}""")
    assert split_sums(kernel) is kernel


def test_syr2k_default_tiles_each_term_and_matches_numpy():
    case = poly.POLYBENCH["syr2k"]
    kernel = loopweave.compile(case.source(), tuning_db=False, cost_model=False)
    for n, m in [(1, 1), (7, 5), (29, 19), (61, 37), (131, 300)]:
        assert_matches_reference("syr2k", kernel, {"N": n, "M": m}, 11)
    assert kernel.source.count("lw_r0_0 +=") >= 2  # each term's register tile


TWO_SUMS = """kernel k(A: f64[N, K], B: f64[K, N], D: f64[N, K], E: f64[K, N],
                      C: inout f64[N, N], Y: inout f64[N, N]) {
    C[i, j] = 0.5 * C[i, j]
    C[i, j] += A[i, k] * B[k, j]
    C[i, j] += D[i, k] * E[k, j]
    Y[i, j] = 2.0 * C[i, j]
}"""


def _fused_then_swapped(*reassociated: str) -> loopweave.Schedule:
    """S1 and S2 in one nest (their k loops shared), S2's update first in it."""
    schedule = loopweave.Schedule()
    for name in reassociated:
        schedule.reassociate(name)
    return schedule.fuse("S1", "S2", depth=3).order("S2", "S1")


def test_reassociated_terms_may_leave_their_loops_and_no_other_dependence_moves():
    assert [s.name for s in front_end(TWO_SUMS).statements] == ["S0", "S1", "S2", "S3"]
    with pytest.raises(ScheduleError, match="on C from S1 to S2"):
        loopweave.compile(TWO_SUMS, schedule=_fused_then_swapped(), tuning_db=False)
    with pytest.raises(ScheduleError):  # one of them alone is not enough
        loopweave.compile(TWO_SUMS, schedule=_fused_then_swapped("S1"), tuning_db=False)
    kernel = loopweave.compile(TWO_SUMS, schedule=_fused_then_swapped("S1", "S2"),
                               tuning_db=False)
    rng = np.random.default_rng(2)
    a, b, d, e = (rng.standard_normal(s) for s in ((9, 5), (5, 9), (9, 5), (5, 9)))
    c, y = rng.standard_normal((9, 9)), np.zeros((9, 9))
    want = 0.5 * c + a @ b + d @ e
    kernel(a, b, d, e, c, y)
    np.testing.assert_allclose(c, want, rtol=1e-12)
    np.testing.assert_allclose(y, 2 * want, rtol=1e-12)
    # The reader of C still runs after both sums, and the initialisation before them.
    for order, broken in ((("S0", "S1", "S3", "S2"), "from S2 to S3"),
                          (("S2", "S0", "S1", "S3"), "from S0 to S2")):
        schedule = loopweave.Schedule().reassociate("S1").reassociate("S2").order(*order)
        with pytest.raises(ScheduleError, match=broken):
            loopweave.compile(TWO_SUMS, schedule=schedule, tuning_db=False)
