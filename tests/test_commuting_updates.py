"""Commuting updates (`Dependences.commuting`, `for_reordering`): `max=` and `min=` of one
integer element by different statements may run in either order, so a schedule may move them
past each other (nussinov's row update runs its k loop outside its j loop and vectorizes j);
every other dependence still holds, with every earlier write of the element counted, not only
the last."""

from __future__ import annotations

import islpy as isl
import numpy as np
import pytest

import loopweave
from loopweave.errors import ScheduleError
from loopweave.examples import load_polybench_references
from loopweave.ir.dependences import Dependences, violations
from loopweave.passes.default import default_schedule
from loopweave.passes.normalize import normalize
from loopweave.passes.schedule import Schedule
from loopweave.pipeline import front_end

poly = load_polybench_references()

# S0 and S1 update t[i]; S2 reads the final value. Program order's last writer of t[i] is S1,
# so the must-dependences hold S0 before S2 only through S0 -> S1, which commutes.
UPDATES = """kernel updates(x: {dt}[N], t: inout {dt}[N], y: inout {dt}[N]) {{
    t[i] max= x[i]
    t[i] max= 3
    y[i] = t[i]
}}"""


def test_integer_max_updates_of_one_element_commute_and_floats_do_not():
    ints = front_end(UPDATES.format(dt="i32"))
    floats = front_end(UPDATES.format(dt="f32"))
    assert set(Dependences.of(ints).commuting()) == {("S0", "S1"), ("S1", "S0")}
    assert Dependences.of(floats).commuting() == {}


def test_a_statement_that_reads_its_own_element_does_not_commute():
    kernel = front_end("""kernel k(x: i32[N], t: inout i32[N]) {
    t[i] max= t[i] + x[i]
    t[i] max= 3
}""")
    assert Dependences.of(kernel).commuting() == {}


@pytest.mark.parametrize("dt, swappable", [("i32", True), ("f32", False)])
def test_commuting_updates_may_swap(dt, swappable):
    kernel = front_end(UPDATES.format(dt=dt))
    assert not violations(kernel, _statement_order(kernel, ["S1", "S0", "S2"])) == swappable


def test_an_update_moved_past_the_reader_of_the_final_value_is_rejected():
    """S0 one iteration late runs after S2 reads t[i]: a violated flow dependence S0 -> S2
    that the last-writer dependences alone (S1 -> S2) would miss."""
    kernel = front_end(UPDATES.format(dt="i32"))
    late = Schedule().fuse("S0", "S1", "S2").shift("S0", "i", 1)
    with pytest.raises(ScheduleError, match="flow dependence on t from S0 to S2"):
        late.apply(kernel)
    found = violations(kernel, _statement_order(kernel, ["S1", "S2", "S0"]))
    assert {(v.dependence.source, v.dependence.sink) for v in found} == {("S0", "S2")}


def test_nussinov_runs_its_row_update_k_outside_a_vector_j_loop():
    kernel = normalize(front_end(poly.POLYBENCH["nussinov"].source()))
    steps = [(s.op, s.target, s.args) for s in default_schedule(kernel).steps]
    assert ("reorder", "S4", ("k", "j")) in steps
    assert ("vector", "S4", ("j",)) in steps
    case = poly.POLYBENCH["nussinov"]
    compiled = loopweave.compile(case.source(), tuning_db=False)
    for n in (13, 37):
        inputs = case.make_inputs({"N": n}, 1)
        expected = case.expected(inputs)
        compiled(**inputs)
        np.testing.assert_array_equal(inputs["table"], expected["table"])


def _statement_order(kernel, order: list[str]):
    """A schedule that runs whole statements (each over all i) in `order`."""
    ranks = "; ".join(f"{name}[i] -> [{rank}, i]" for rank, name in enumerate(order))
    return isl.Schedule.from_domain(kernel.domains()).insert_partial_schedule(
        isl.MultiUnionPwAff.from_union_map(
            isl.UnionMap(f"[N] -> {{ {ranks} }}").intersect_domain(kernel.domains())))
