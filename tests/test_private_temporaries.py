"""Temporaries private to each iteration of a loop (passes/storage.private_depth): a temporary
rewritten in every iteration before it is read (doitgen's `sum[p]`) gets a copy per
iteration, a local array declared in the loop body, so the loop may run in parallel; one whose
values flow from one iteration to the next stays shared and keeps the loop serial."""

from __future__ import annotations

import numpy as np
import pytest

import loopweave
from loopweave.examples import load_polybench_references
from loopweave.passes.default import default_schedule
from loopweave.pipeline import front_end

poly = load_polybench_references()
CFLAGS = "-O1 -march=native"

# Every use of t is inside the r loop, but iteration 0 writes what the others read.
CARRIED = """
kernel carried(A: f64[R, P]) -> B: f64[R, P] {
    for r in 0:R {
        t[p] = A[r, p] * 2.0         where p in 0:P, r == 0
        B[r, p] = t[p] + A[r, p]
    }
}
"""


def test_doitgen_runs_its_r_loop_in_parallel_with_a_private_sum():
    # The heuristics on doitgen as written (the default path first expands `sum` by the r and
    # q loops into a batched GEMM: tests/test_expand_accumulators.py).
    schedule = default_schedule(front_end(poly.POLYBENCH["doitgen"].source()))
    steps = [(s.op, s.target, tuple(s.args)) for s in schedule.steps]
    assert ("parallel", "S0", ("r",)) in steps
    kernel = loopweave.compile(poly.POLYBENCH["doitgen"].source(), schedule=schedule,
                               cflags=CFLAGS, tuning_db=False)
    assert [t.name for t in kernel.ir.locals] == ["sum"]
    assert "#pragma omp parallel for" in kernel.source
    case = poly.POLYBENCH["doitgen"]
    sizes = {"NR": 5, "NQ": 7, "NP": 9}
    args = case.make_inputs(sizes, 3)
    expected = case.expected({k: np.copy(v) for k, v in args.items()})
    kernel(*args.values())
    np.testing.assert_allclose(args["A"], expected["A"], rtol=1e-12)


def test_a_temporary_whose_values_cross_iterations_stays_shared():
    with pytest.raises(loopweave.ScheduleError, match="cannot be parallel"):
        loopweave.Schedule().parallel("S0", "r").apply(front_end(CARRIED))
    kernel = loopweave.compile(CARRIED, cflags=CFLAGS, tuning_db=False)
    assert not kernel.ir.locals and "omp parallel" not in kernel.source
    a = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(kernel(a), a + 2 * a[0])


def test_a_value_kept_across_an_outer_loop_is_not_made_local_by_fusion():
    """Fused over (r, p), `t[p]` is written at r == 0 and read at every r: a local declared in
    the p loop would start anew at each r (passes/storage.py checks the value's flow against
    every loop around the declaration, not only p)."""
    schedule = loopweave.Schedule().fuse("S0", "S1", depth=2)
    assert not schedule.apply(front_end(CARRIED)).locals
    kernel = loopweave.compile(CARRIED, schedule=schedule, cflags=CFLAGS, tuning_db=False)
    a = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(kernel(a), a + 2 * a[0])


def test_an_explicit_parallel_step_may_carry_a_private_temporary():
    kernel_ir = front_end(poly.POLYBENCH["doitgen"].source())
    scheduled = loopweave.Schedule().fuse("S0", "S1", "S2", depth=2).parallel(
        "S0", "r").apply(kernel_ir)
    assert [t.name for t in scheduled.locals] == ["sum"]


FUSED = """
kernel fused(A: f64[R, P], C4: f64[P, P]) -> (B: f64[R, P], D: f64[R]) {
    assume P >= 1
    for r in 0:R {
        D[r] = A[r, 0] * 2.0
        t[p] += A[r, s] * C4[s, p]
        B[r, p] = t[p]
    }
}
"""


def test_a_parallel_mark_on_another_statement_of_the_loop_privatizes_too():
    """The mark names D's statement, but its loop runs t's users as well (fuzz seeds of
    11550-11599 and 11800-11849: the loop ran in parallel over a shared t)."""
    kernel = loopweave.compile(FUSED, schedule=loopweave.Schedule().parallel("S0", "r"),
                               cflags=CFLAGS)
    assert [t.name for t in kernel.ir.locals] == ["t"]
    rng = np.random.default_rng(2)
    a, c4 = rng.random((5, 7)), rng.random((7, 7))
    b, d = kernel(a, c4)
    np.testing.assert_allclose(b, a @ c4, rtol=1e-12)
    np.testing.assert_allclose(d, a[:, 0] * 2.0)
