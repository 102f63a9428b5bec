"""Left-looking column blocks (passes/column_blocks.py): gramschmidt's columns, each updated
by every column left of it, run in blocks that take those updates while they are in cache.

Checked on the kernel's shape and the steps, the choice by sizes (the L2 bound, through the
pipeline and a call), the loop AST (the block loop outermost, the updates' loop over columns
innermost), numerically at odd sizes (partial blocks, one column, a block and one more)
against numpy and against the default, and that kernels of another shape get no
blocks."""

from __future__ import annotations

import numpy as np
import pytest
from polybench_check import assert_matches_reference, stores_in_loops

import loopweave
from loopweave.driver import front_end
from loopweave.examples import load_polybench_references
from loopweave.passes import column_blocks as cb
from loopweave.passes import default as default_pass
from loopweave.passes.schedule import Schedule
from loopweave.pipeline import Pipeline

poly = load_polybench_references()
GRAMSCHMIDT = poly.POLYBENCH["gramschmidt"].source()


def _blocked(columns: int) -> Schedule:
    kernel = front_end(GRAMSCHMIDT)
    schedule = cb.column_blocks(kernel, default_pass.default_schedule(kernel), columns)
    assert schedule is not None
    return schedule


def test_gramschmidt_has_the_shape_of_column_blocks():
    step, per_column, updates = cb.column_nest(front_end(GRAMSCHMIDT))
    assert step == "k"
    assert [s.name for s in per_column] == ["S0", "S1", "S2", "S3"]
    assert [(s.name, column) for s, column in updates] == [("S4", "j"), ("S5", "j")]


def test_kernels_of_another_shape_get_no_blocks():
    """lu and cholesky update rows below k, gemm and syrk have no loop over finished columns,
    trmm's loop right of k is its reduction's."""
    for name in ("lu", "cholesky", "gemm", "syrk", "trmm", "durbin"):
        kernel = front_end(poly.POLYBENCH[name].source())
        assert cb.column_nest(kernel) is None, name
        assert cb.column_blocks(kernel, default_pass.default_schedule(kernel)) is None, name


def test_the_block_loop_is_outermost_and_the_updates_run_down_its_columns():
    """Every store sits in one outer loop (the blocks); the updates' innermost loop is a vector
    loop over the block's columns, inside the loop over finished columns k."""
    scheduled = Pipeline(GRAMSCHMIDT, schedule=_blocked(8)).stages({"M": 40, "N": 50}).loops
    found = list(stores_in_loops(scheduled))
    assert len({id(loops[0]) for _, loops in found}) == 1
    updates = [loops for store, loops in found if store.tensor == "A"]
    assert updates and all(loops[-1].kind == "vector" and len(loops) >= 4 for loops in updates)


@pytest.mark.parametrize("sizes", [{"M": 1, "N": 1}, {"M": 9, "N": 8}, {"M": 17, "N": 9},
                                   {"M": 31, "N": 23}, {"M": 70, "N": 40}])
def test_column_blocks_match_numpy_at_odd_sizes(sizes):
    """Blocks of 8 columns: one column, one block, a block and one more, partial blocks (M
    at least N: with more columns than rows the input has no full rank, and the columns of Q
    past it are rounding noise in every order, program order's too)."""
    kernel = loopweave.compile(GRAMSCHMIDT, schedule=_blocked(8), tuning_db=False,
                               cost_model=False)
    assert_matches_reference("gramschmidt", kernel, sizes, 3)


@pytest.mark.parametrize("columns", [3, 16])
def test_column_blocks_match_the_default(columns):
    """Each element takes the same operations in the same order as column by column; only a
    vector loop's remainder differs (where a column falls in a vector or in its scalar rest:
    gcc's fused multiply-add there), so within a few units of rounding."""
    blocked = loopweave.compile(GRAMSCHMIDT, schedule=_blocked(columns), tuning_db=False)
    plain = loopweave.compile(GRAMSCHMIDT, tuning_db=False, cost_model=False)
    a = poly.POLYBENCH["gramschmidt"].make_inputs({"M": 37, "N": 29}, 5)["A"]
    got_a, want_a = a.copy(), a.copy()
    got, want = blocked(got_a), plain(want_a)
    for g, w in zip((got_a, *got), (want_a, *want), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


def test_blocks_only_where_the_data_outgrow_the_l2(monkeypatch):
    """The choice by sizes: the default below L2_MULTIPLE L2 caches, the blocks above; a call above
    it runs them and matches numpy."""
    monkeypatch.setattr(cb, "host_cache_bytes", lambda level: 32 * 1024)  # bound: 128 KB
    small, large = {"M": 30, "N": 20}, {"M": 100, "N": 80}  # 13 KB, 179 KB of A, Q and R
    assert Pipeline(GRAMSCHMIDT).stages(small).tuned is None
    chosen = Pipeline(GRAMSCHMIDT).stages(large).tuned
    assert chosen is not None and chosen.what == cb.ColumnBlocks.why
    assert ("tile", "S5", (("j", cb.COLUMNS),)) in [
        (s.op, s.target, s.args) for s in chosen.schedule.steps]
    kernel = loopweave.compile(GRAMSCHMIDT, tuning_db=False, cost_model=False)
    assert_matches_reference("gramschmidt", kernel, large, 4)
    assert_matches_reference("gramschmidt", kernel, small, 4)
