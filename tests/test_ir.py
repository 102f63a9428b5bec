"""The polyhedral IR: domains, schedule, dependences, isl code generation, golden C bodies."""

from __future__ import annotations

from pathlib import Path

import islpy as isl
import pytest

from loopweave.backends.c import CBackend
from loopweave.driver import front_end
from loopweave.ir import expr as ir
from loopweave.ir.codegen import loop_ast
from loopweave.ir.dependences import Dependences, violations
from loopweave.ir.loops import For, Store, accumulator_nest, walk
from loopweave.ir.types import BOOL, F32

ROOT = Path(__file__).resolve().parent.parent
KERNELS = ROOT / "examples" / "kernels"

GAUSS_SEIDEL = """
kernel gs(A: inout f32[N, N]) {
    A[i, j] = (A[i - 1, j + 1] + A[i, j]) / 2.0   where i in 1:N, j in 0:N-1
}
"""


def test_ir_prints_domains_accesses_and_schedule():
    ir = front_end((KERNELS / "syrk.lw").read_text())
    text = str(ir)
    assert "0 <= j <= i" in text  # the triangular `where` domain, as isl prints it
    assert "C[i, j] += alpha * A[i, k] * A[j, k]" in text
    assert "schedule" in text and "sequence" in text


def test_reduction_into_fresh_output_gets_identity_init_over_full_range():
    ir = front_end((KERNELS / "matmul.lw").read_text())
    init, update = ir.statements
    assert init.is_init and not update.is_init
    # The init must not depend on K > 0: a sum over nothing is 0.
    assert "K" not in str(init.domain).split(":")[1]


def test_domain_parameters_are_sizes_and_integer_scalars():
    ir = front_end((KERNELS / "jacobi_1d.lw").read_text())
    assert ir.params == ("N", "T")
    assert ir.statements[0].iterators[0] == "t"


def test_flow_dependence_distance_of_a_stencil():
    ir = front_end(GAUSS_SEIDEL)
    flow = Dependences(ir).of_kind("flow")
    assert len(flow) == 1 and flow[0].tensor == "A"
    distances = flow[0].distances(ir.schedule)
    expected = isl.UnionSet("[N] -> { [1, -1] : N >= 3 }")
    assert distances.is_equal(expected)


@pytest.mark.parametrize("path", sorted(KERNELS.glob("*.lw")), ids=lambda p: p.stem)
def test_program_order_respects_every_dependence(path):
    ir = front_end(path.read_text())
    assert violations(ir, ir.schedule) == []


def test_interchange_of_a_gauss_seidel_sweep_is_a_violation_with_instances():
    ir = front_end(GAUSS_SEIDEL)
    swapped = isl.Schedule.from_domain(ir.domains()).insert_partial_schedule(
        isl.MultiUnionPwAff("[N] -> [{ S0[i, j] -> [(j)] }, { S0[i, j] -> [(i)] }]"))
    (v,) = violations(ir, swapped)
    assert v.dependence.kind == "flow"
    # The source writes A[i, j]; the sink reads it as A[i' - 1, j' + 1].
    assert v.sink_instance["i"] == v.source_instance["i"] + 1
    assert v.sink_instance["j"] == v.source_instance["j"] - 1


def test_loop_ast_comes_from_isl_and_holds_every_statement():
    ir = front_end((KERNELS / "softmax.lw").read_text())
    nodes = list(walk(loop_ast(ir)))
    stores = {n.stmt for n in nodes if isinstance(n, Store)}
    assert stores == {s.name for s in ir.statements}
    assert all(isinstance(n.step, int) for n in nodes if isinstance(n, For))


@pytest.mark.parametrize("name", ["matmul", "softmax", "jacobi_1d", "syrk", "maxpool2d"])
def test_generated_c_matches_golden(name, update_golden, check_golden):
    ir = front_end((KERNELS / f"{name}.lw").read_text())
    check_golden(f"{name}.c", CBackend(ir).render_body(loop_ast(ir)), update_golden)


def _nest(loop_vars: list[tuple[str, int]], store: Store) -> For:
    """for v0 < n0: for v1 < n1: ... store (loops counting from 0 to a constant)."""
    node = store
    for var, n in reversed(loop_vars):
        node = For(var, ir.Const(0), ir.Binary("<", ir.Var(var), ir.Const(n), BOOL), 1, node)
    return node


def _acc_store(indices: list[str]) -> Store:
    """acc[indices] += A[k, y] (reads nothing of acc)."""
    value = ir.Load("A", (ir.Var("k"), ir.Var("y")), F32)
    return Store("acc", tuple(ir.Var(v) for v in indices), value, "+=", "S")


def test_accumulator_nest_has_rows_columns_and_reductions():
    shape = accumulator_nest(_nest([("k", 9), ("x", 4), ("y", 16)], _acc_store(["x", "y"])))
    reductions, rows, cols, _ = shape
    assert [loop.var for loop in reductions] == ["k"] and (rows.var, cols.var) == ("x", "y")
    # rows and columns but no reduction loop: not an accumulator nest
    assert accumulator_nest(_nest([("x", 4), ("y", 16)], _acc_store(["x", "y"]))) is None


def test_a_dropped_rows_loop_is_a_made_up_loop_of_one_row():
    """isl drops a rows loop of extent 1 (a GEMV's one-row tile): the loop around the columns
    then does not index the store, so it is a reduction and the rows loop is made up (one
    row); with a rows loop present the same holds for a reduction right outside the columns
    (which earlier passed for rows: every "row" the same accumulator)."""
    for loops in ([("k", 9), ("y", 16)], [("x", 4), ("k", 9), ("y", 16)]):
        store = _acc_store(["x", "y"] if loops[0][0] == "x" else ["y"])
        reductions, rows, cols, _ = accumulator_nest(_nest(loops, store))
        assert [loop.var for loop in reductions] == [v for v, _ in loops[:-1]]
        assert cols.var == "y" and rows.var == "y_row" and rows.cond.right == ir.Const(1)
        assert rows.body is cols
