"""A temporary that a contraction accumulates into, restarted in every iteration of the `for`
loops around it, is expanded by those loops (passes/expand_accumulators.py), and a contraction
that must run after the statements following it leaves their loops after them
(passes/default._isolate_contraction): PolyBench's symm then runs both of its products in
register tiles (20x faster at LARGE in an in-process A/B), doitgen its per-(r, q) products as
one batched GEMM. Checked numerically at odd sizes; the expansion is refused where a value
flows from one iteration to the next, and left out where the reduction is a contraction
already (an LSTM's gates in each time step)."""

from __future__ import annotations

import pytest
from polybench_check import assert_matches_reference

import loopweave
from loopweave.examples import EXAMPLES_DIR, load_polybench_references
from loopweave.passes.expand_accumulators import _restarts_every_iteration, expand_accumulators
from loopweave.pipeline import front_end

poly = load_polybench_references()


@pytest.mark.parametrize("name, sizes", [
    ("symm", [{"M": 1, "N": 1}, {"M": 19, "N": 29}, {"M": 61, "N": 91}, {"M": 270, "N": 37}]),
    ("doitgen", [{"NR": 3, "NQ": 5, "NP": 7}, {"NR": 9, "NQ": 11, "NP": 31},
                 {"NR": 5, "NQ": 21, "NP": 53}]),
])
def test_the_expanded_accumulator_feeds_a_register_tile_and_the_result_is_right(name, sizes):
    case = poly.POLYBENCH[name]
    kernel = loopweave.compile(case.source(), tuning_db=False, cost_model=False)
    for at in sizes:
        assert_matches_reference(name, kernel, at, 4)
    # symm: both products in register tiles, the rows-above update after row i's statements
    assert kernel.source.count("lw_r0_0 +=") >= (2 if name == "symm" else 1)
    accumulator = {"symm": "temp2", "doitgen": "sum"}[name]
    assert len(expand_accumulators(front_end(case.source())).tensors[accumulator].shape) == \
        len(front_end(case.source()).tensors[accumulator].shape) + 2


def test_a_value_carried_to_the_next_iteration_is_not_expanded():
    # r accumulates across i (written before the loop): its flow leaves each iteration of i.
    running = front_end("""kernel k(A: f64[N, K], B: f64[K, N]) -> C: f64[N, N] {
    r[j] = 0.0  where j in 0:N
    for i in 0:N {
        r[j] += A[i, k] * B[k, j]
        C[i, j] = r[j]
    }
}""")
    assert not _restarts_every_iteration(running, "r", 1)
    assert expand_accumulators(running) is running
    restarted = front_end("""kernel k(A: f64[N, K], B: f64[K, N]) -> C: f64[N, N] {
    for i in 0:N {
        r[j] += A[i, k] * B[k, j]
        C[i, j] = r[j] * 2.0
    }
}""")
    assert _restarts_every_iteration(restarted, "r", 1)


def test_a_contraction_already_is_left_alone():
    lstm = front_end((EXAMPLES_DIR / "kernels" / "lstm.lw").read_text())
    assert expand_accumulators(lstm) is lstm
