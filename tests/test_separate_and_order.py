"""The `separate` (index-set splitting by two loops) and `order` (sibling order) schedule steps:
pieces keep the program order of their instances, orders are checked by the dependences."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import loopweave
from loopweave.errors import ScheduleError
from loopweave.passes.schedule import Schedule
from loopweave.pipeline import front_end

# Two statements in one loop: b reads the a of the row before, so "b before a" is illegal.
TWO = """
kernel two(x: f64[N], a: inout f64[N], b: inout f64[N]) {
    for i in 1:N {
        a[i] = x[i] * 2.0
        b[i] = a[i - 1] + 1.0
    }
}"""

# A triangle whose rows split into the first tile's and the rest.
TRIANGLE = """
kernel tri(A: inout f64[N, N]) {
    A[i, j] = A[i, j] * 0.5 + A[i, j - 1]      where i in 0:N, j in 1:i+1
}"""


def _run(source: str, schedule: Schedule | None, arrays: dict) -> dict:
    kernel = loopweave.compile(source, schedule=schedule, tuning_db=False)
    copies = {k: v.copy() for k, v in arrays.items()}
    kernel(**copies)
    return copies


def test_separate_makes_pieces_by_the_order_of_two_loops():
    kernel = front_end(TRIANGLE)
    schedule = Schedule().tile("S0", i=4, j=4).separate("S0", "j_o", "i_o")
    split, placements = schedule.placed(kernel)
    assert [s.name for s in split.statements] == ["S0", "S0_j_o_at"]  # no j_o > i_o piece
    # the piece runs in a copy of loop j_o (inside i_o) right after the statement's
    assert placements["S0"].order[:1] == placements["S0_j_o_at"].order[:1]
    assert placements["S0"].order[1] < placements["S0_j_o_at"].order[1]
    rows = np.random.default_rng(1).random((13, 13))
    want = _run(TRIANGLE, Schedule(), {"A": rows})
    got = _run(TRIANGLE, schedule, {"A": rows})
    np.testing.assert_array_equal(got["A"], want["A"])


def test_pieces_keep_the_program_order_of_their_instances():
    """The diagonal's piece reads the element left of it, in the other piece: run first, in
    the same tile of columns, it breaks the recurrence, and the check says so."""
    kernel = front_end(TRIANGLE)
    schedule = Schedule().tile("S0", j=4).separate("S0", "j", "i")
    pieces = [s.name for s in schedule.placed(kernel)[0].statements]
    assert pieces == ["S0", "S0_j_at"]  # j < i, j == i
    schedule.apply(kernel)  # in their own order: legal
    with pytest.raises(ScheduleError, match="dependence"):
        Schedule(list(schedule.steps)).order("S0_j_at", "S0").apply(kernel)


def test_separate_names_an_unknown_loop():
    with pytest.raises(ScheduleError, match="no loop named 'q'"):
        Schedule().separate("S0", "q", "i").apply(front_end(TRIANGLE))


def test_order_runs_siblings_in_the_given_order_where_legal():
    kernel = front_end(TWO)
    placements = Schedule().order("b", "a").placements(kernel)
    assert placements["S1"].order < placements["S0"].order
    Schedule().order("b", "a").apply(kernel)  # b reads a of the row before: fine
    x = np.random.default_rng(2).random(11)
    arrays = {"x": x, "a": np.zeros(11), "b": np.zeros(11)}
    want = _run(TWO, Schedule(), arrays)
    got = _run(TWO, Schedule().order("b", "a"), arrays)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])


def test_an_order_against_a_dependence_names_it():
    source = TWO.replace("a[i - 1]", "a[i]")
    with pytest.raises(ScheduleError, match="flow dependence on a"):
        Schedule().order("b", "a").apply(front_end(source))


def test_order_needs_distinct_siblings():
    with pytest.raises(ScheduleError, match="order needs at least two targets"):
        Schedule().order("a")
    with pytest.raises(ScheduleError, match="share one sibling position"):
        Schedule().order("a", "a").apply(front_end(TWO))


def test_separate_and_order_round_trip_through_json():
    schedule = Schedule().tile("S0", i=4, j=4).separate("S0", "j_o", "i_o").order(
        "S0_j_o_at", "S0")
    again = Schedule.from_json(schedule.to_json())
    assert again.steps == schedule.steps


def test_a_range_read_from_tensors_is_not_separated():
    source = (Path(__file__).resolve().parents[1] / "examples/kernels/csr_spmv.lw").read_text()
    kernel = front_end(source)  # S1: y[i] += vals[p] * x[col[p]], p in row_ptr[i]:row_ptr[i+1]
    assert kernel.statement["S1"].data_ranges
    with pytest.raises(ScheduleError, match="range is read from tensors"):
        Schedule().separate("S1", "p", "i").apply(kernel)


# Pieces of one statement share its implicit loops; CUDA's planner launches each on its own.
ROW_PIVOT = """
kernel rowpivot(O: inout f32[J, K], D: f32[K]) {
    O[j, l] += O[j, K - 1 - j] + D[K - 1 - j]  where j in 0:J, l in 0:K, j < K
}"""
# Each row reads the row before it one column to the right: the pieces l > j of row j - 1
# feed the piece l == j of row j.
SHIFTED = """
kernel shifted(O: inout f32[J, K]) {
    O[j, l] = O[j - 1, l + 1] + 1.0  where j in 1:J, l in 0:K - 1
}"""


@pytest.mark.filterwarnings("ignore::loopweave.SequentialLoopWarning")
def test_cuda_launches_pieces_in_program_order():
    rng = np.random.default_rng(3)
    arrays = {"O": rng.standard_normal((6, 9)).astype(np.float32),
              "D": rng.standard_normal(9).astype(np.float32)}
    want = _run(ROW_PIVOT, Schedule(), arrays)
    kernel = loopweave.compile(ROW_PIVOT, target="cuda", emulate=True, tuning_db=False,
                               schedule=Schedule().separate("S0", "l", "j"))
    got = {k: v.copy() for k, v in arrays.items()}
    kernel(**got)
    np.testing.assert_allclose(got["O"], want["O"], rtol=1e-6)


@pytest.mark.filterwarnings("ignore::loopweave.SequentialLoopWarning")
def test_cuda_refuses_pieces_whose_launches_would_break_a_dependence():
    schedule = Schedule().separate("S0", "l", "j")
    with pytest.raises(ScheduleError, match=r"launches S0_l_at before S0_l_after .* flow "
                                            r"dependence on O: S0_l_after\(j=\d+, l=\d+\)"):
        loopweave.compile(SHIFTED, target="cuda", emulate=True, tuning_db=False,
                          schedule=schedule)
    # the same schedule on the host is legal and exact
    rng = np.random.default_rng(4)
    arrays = {"O": rng.standard_normal((5, 7)).astype(np.float32)}
    np.testing.assert_array_equal(_run(SHIFTED, schedule, arrays)["O"],
                                  _run(SHIFTED, Schedule(), arrays)["O"])
