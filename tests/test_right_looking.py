"""Right-looking elimination (passes/right_looking.py): lu and ludcmp run their updates' pivot
loop outermost, with the rows below the pivot in parallel, and still compute the reference."""

from __future__ import annotations

import numpy as np
import pytest

import loopweave
from loopweave.examples import load_polybench_references
from loopweave.passes import default as default_pass
from loopweave.passes import right_looking as right_looking_module
from loopweave.passes.right_looking import right_looking
from loopweave.passes.schedule import Schedule
from loopweave.pipeline import front_end

poly = load_polybench_references()

# lu as PolyBench writes it, with other names: the pass reads roles, not names.
LU_RENAMED = """
kernel elim(M: inout f64[R, R]) {
    for r in 0:R {
        for c in 0:r {
            M[r, c] -= M[r, p] * M[p, c]        where p in 0:c
            M[r, c] = M[r, c] / M[c, c]
        }
        M[r, c] -= M[r, p] * M[p, c]            where c in r:R, p in 0:r
    }
}"""


def _parallel_loops(kernel, schedule: Schedule) -> dict[str, list[str]]:
    """Each statement's loops marked parallel under `schedule`."""
    return {name: [lp.name for lp in p.loops if lp.kind == "parallel"]
            for name, p in schedule.placed(kernel)[1].items()}


@pytest.mark.parametrize("name", ["lu", "ludcmp"])
def test_blocks_of_pivots_update_the_rows_below_in_parallel(name):
    kernel = front_end(poly.POLYBENCH[name].source())
    schedule = default_pass.default_schedule(kernel)
    split, placements = schedule.placed(kernel)
    top, panel, trailing = "S0", "S0_i_o_after", "S0_i_o_after_j_o_after"
    assert {top, panel, trailing, "S1", "S1_i_o_after", "S2", "S2_i_o_after"} <= \
        set(split.statement)
    # the rows of the block: right-looking, pivot outside the rows
    assert placements[top].names() == ["k_o", "i_o", "k", "i", "j"]
    # the rows below: in parallel by tiles; the block's columns a pivot at a time, the
    # columns past it taking the block's pivots innermost, under a vector loop
    assert placements[panel].names() == ["k_o", "i_o", "i", "k", "j_o", "j"]
    assert placements[trailing].names() == ["k_o", "i_o", "i", "j_o", "j", "k"]
    kinds = {(n, lp.name): lp.kind for n, p in placements.items() for lp in p.loops}
    assert kinds[(panel, "i_o")] == "parallel"
    assert kinds[(trailing, "j")] == kinds[("S2_i_o_after", "j")] == "vector"
    # inside a block step: the rows below (the block before's) first, then the block's rows
    assert placements[panel].order[:1] == placements[top].order[:1]
    assert placements[panel].order[1] < placements[top].order[1]


def test_without_blocks_the_updates_run_pivot_outermost_with_parallel_rows(monkeypatch):
    monkeypatch.setattr(right_looking_module, "_blocked", lambda *args: None)
    kernel = front_end(poly.POLYBENCH["lu"].source())
    schedule = default_pass.default_schedule(kernel)
    placements = schedule.placements(kernel)
    assert placements["S0"].names() == ["k", "i", "j"]
    assert placements["S2"].names() == ["k", "i", "j"]
    assert placements["S1"].names() == ["j", "i"]  # the division: its column's step
    assert _parallel_loops(kernel, schedule)["S0"] == ["i"]
    # the updates share loops k and i; the division shares only k, in a nest after theirs
    assert placements["S0"].order[:2] == placements["S2"].order[:2]
    assert placements["S1"].order[:1] == placements["S0"].order[:1]
    assert placements["S1"].order[1] > placements["S0"].order[1]
    check = loopweave.compile(poly.POLYBENCH["lu"].source(), schedule=schedule,
                              tuning_db=False)
    _compare("lu", check, 37)


@pytest.mark.parametrize("name", ["lu", "ludcmp"])
@pytest.mark.parametrize("n", [1, 2, 9, 37, 64, 70])
def test_right_looking_computes_the_reference(name, n):
    _compare(name, loopweave.compile(poly.POLYBENCH[name].source(), tuning_db=False), n)


def _compare(name: str, kernel, n: int) -> None:
    """`kernel` against PolyBench `name` in program order, at N = n."""
    case = poly.POLYBENCH[name]
    reference = loopweave.compile(case.source(), schedule=Schedule(), tuning_db=False)
    got, want = case.make_inputs({"N": n}, 3), case.make_inputs({"N": n}, 3)
    kernel(*got.values())
    reference(*want.values())
    for out in got:
        np.testing.assert_allclose(got[out], want[out], rtol=1e-12, atol=1e-12)


def test_the_division_moves_to_the_end_of_the_step_before_its_column(monkeypatch):
    """The division of column j at the start of step j would come after the updates in
    program order, which read it: the shift of -1 is the legal one."""
    monkeypatch.setattr(right_looking_module, "_blocked", lambda *args: None)
    kernel = front_end(poly.POLYBENCH["lu"].source())
    schedule = right_looking(kernel, Schedule())
    assert schedule is not None
    assert ("skew", "S1", ("j", "j", 0, -1)) in [(s.op, s.target, s.args)
                                                 for s in schedule.steps]
    schedule.apply(kernel)


def test_the_pass_reads_roles_not_names():
    kernel = front_end(LU_RENAMED)
    schedule = default_pass.default_schedule(kernel)
    assert schedule.placements(kernel)["S0"].names() == ["p_o", "r_o", "p", "r", "c"]
    assert _parallel_loops(kernel, schedule)["S0_r_o_after"] == ["r_o"]
    compiled = loopweave.compile(LU_RENAMED, tuning_db=False)
    m = np.random.default_rng(0).random((45, 45)) + 45 * np.eye(45)
    want = m.copy()
    loopweave.compile(LU_RENAMED, schedule=Schedule(), tuning_db=False)(want)
    compiled(m)
    np.testing.assert_allclose(m, want, rtol=1e-12, atol=1e-12)


def test_nests_the_heuristics_run_in_parallel_keep_them():
    kernel = front_end(poly.POLYBENCH["gemm"].source())
    assert right_looking(kernel, default_pass.default_schedule(kernel)) is None


def test_a_statement_whose_pivot_loop_cannot_be_told_keeps_the_heuristics():
    """The second statement writes an element no update reads at its reduction index: there
    is no step of the pivot loop to put it in."""
    kernel = front_end("""
kernel odd(A: inout f64[N, N], b: inout f64[N]) {
    for i in 0:N {
        for j in 0:i {
            A[i, j] -= A[i, k] * A[k, j]        where k in 0:j
            b[j] = b[j] + A[i, j]
        }
    }
}""")
    assert right_looking(kernel, Schedule()) is None
