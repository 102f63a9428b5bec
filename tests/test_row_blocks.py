"""Left-looking row blocks (passes/row_blocks.py): cholesky's rows, each reading every finished
row, run in blocks of rows that read a finished row once.

Checked on the steps and the loop AST (the finished rows' pieces run the block's rows inside
the loop over a finished row; the block's own triangle row by row), numerically at odd sizes
(partial blocks, one row, a block and one more) against numpy and against program order, at
other block sizes, and that kernels of another shape keep the heuristics' schedule."""

from __future__ import annotations

import numpy as np
import pytest
from polybench_check import assert_matches_reference, stores_in_loops

import loopweave
from loopweave.driver import front_end, stages
from loopweave.examples import load_polybench_references
from loopweave.passes import default as default_pass
from loopweave.passes.row_blocks import row_blocks
from loopweave.passes.schedule import Schedule

poly = load_polybench_references()
CHOLESKY = poly.POLYBENCH["cholesky"].source()


def test_cholesky_default_runs_a_finished_row_against_a_block_of_rows():
    """The default is row_blocks' schedule: the product over finished rows, A[i, j] -=
    A[i, k] * A[j, k], runs the loop over the block's rows i inside the loop over the finished
    row j (program order has it outermost), under a parallel loop over shares of the block."""
    steps = default_pass.default_schedule(front_end(CHOLESKY)).steps
    assert ("separate", "S0") in [(s.op, s.target) for s in steps]
    found = []
    for store, loops in stores_in_loops(stages(CHOLESKY).loops):
        names = [lp.var for lp in loops]
        row, column = (x.name if hasattr(x, "name") else None for x in store.indices)
        if store.reduce and row in names and column in names:
            found.append((names.index(column) < names.index(row),
                          any(lp.kind == "parallel" for lp in loops[:names.index(column)])))
    assert (True, True) in found, found


@pytest.mark.parametrize("n", [1, 2, 15, 16, 17, 33, 70])
def test_cholesky_in_row_blocks_matches_numpy_at_odd_sizes(n):
    kernel = loopweave.compile(CHOLESKY, tuning_db=False, cost_model=False)
    assert_matches_reference("cholesky", kernel, {"N": n}, 3)


@pytest.mark.parametrize("rows", [2, 3, 8])
def test_other_block_sizes_match_program_order(rows):
    """Blocks of 2, 3 and 8 rows (29 rows: a partial last block) against program order, the
    same products in the same order up to the vector loops' partial sums of each dot."""
    kernel_ir = front_end(CHOLESKY)
    schedule = row_blocks(kernel_ir, Schedule(), rows)
    assert schedule is not None
    blocked = loopweave.compile(CHOLESKY, schedule=schedule, tuning_db=False)
    plain = loopweave.compile(CHOLESKY, schedule=Schedule(), tuning_db=False)
    a = poly.POLYBENCH["cholesky"].make_inputs({"N": 29}, 5)["A"]
    want, got = a.copy(), a.copy()
    plain(want)
    blocked(got)
    np.testing.assert_allclose(np.tril(got), np.tril(want), rtol=1e-12, atol=1e-12)


def test_kernels_of_another_shape_keep_the_heuristics():
    """gemm and syrk run rows in parallel, lu right-looking; trmm's rows read the rows below
    them: none gets row blocks."""
    for name in ("gemm", "syrk", "lu", "trmm"):
        kernel = front_end(poly.POLYBENCH[name].source())
        assert row_blocks(kernel, default_pass.default_schedule(kernel)) is None, name
