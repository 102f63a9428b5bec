"""A batched product keeps its batch loops shared with its neighbours (passes/default.py
`_isolate_contraction`, `fission.batch_prefix`): doitgen's `sum[p]`, expanded to a matrix per
(r, q) for the register tiles, lives one r at a time as a local instead of NR x NQ x NP in
memory.

Checked on the default's steps and loop AST (one outer loop over r, the product still
register-tiled, `sum` a local of one r), numerically at odd sizes and at sizes whose local
is past the stack's bound (`CBackend.heap_local_bytes`: from the heap), and that an LSTM's
time loop, which indexes none of its product's gates, is no batch loop."""

from __future__ import annotations

import pytest
from polybench_check import assert_matches_reference

import loopweave
from loopweave.driver import front_end
from loopweave.examples import load_polybench_references, load_references
from loopweave.ir.loops import For, Scope, walk
from loopweave.passes import default as default_pass
from loopweave.passes import placement as pl
from loopweave.passes.fission import batch_prefix
from loopweave.pipeline import Pipeline, normalize

poly = load_polybench_references()
DOITGEN = poly.POLYBENCH["doitgen"].source()


def _normalized(source: str):
    """The IR the default schedule sees (sum expanded per (r, q): the product's result)."""
    return normalize(front_end(source), True)


def test_doitgen_runs_one_r_at_a_time_with_sum_local():
    steps = [(s.op, s.target, s.args) for s in
             default_pass.default_schedule(_normalized(DOITGEN)).steps]
    assert ("distribute", "S1", ("r",)) not in steps and ("distribute", "S1", ("q",)) in steps
    assert any(op == "tile" and target == "S1" for op, target, _ in steps)
    loops = Pipeline(DOITGEN).stages({"NR": 5, "NQ": 12, "NP": 20}).loops
    outer = [n for n in walk(loops) if isinstance(n, For) and n.var == "c0"]
    assert len(outer) == 1 and outer[0].kind == "parallel"
    buffers = {b.name: b.shape for n in walk(outer[0]) if isinstance(n, Scope)
               for b in n.buffers}
    assert "sum" in buffers and len(buffers["sum"]) == 2


@pytest.mark.parametrize("sizes", [{"NR": 1, "NQ": 1, "NP": 1}, {"NR": 3, "NQ": 13, "NP": 27},
                                   {"NR": 2, "NQ": 9, "NP": 50},
                                   {"NR": 2, "NQ": 370, "NP": 371}])  # sum: 1.1 MB, heap
def test_doitgen_matches_numpy(sizes):
    kernel = loopweave.compile(DOITGEN, tuning_db=False, cost_model=False)
    assert_matches_reference("doitgen", kernel, sizes, 2)


def test_a_time_loop_is_no_batch_loop():
    """doitgen's r indexes the product's result; an LSTM's t indexes none of the gates its
    recurrent product writes (its input projection's s, over every step at once, does)."""
    doitgen = _normalized(DOITGEN)
    names = pl.initial_placements(doitgen)["S1"].names()
    assert batch_prefix(doitgen.statements[1], names) == 1
    lstm = _normalized(load_references().KERNELS["lstm"].source())
    placements = pl.initial_placements(lstm)
    prefix = {s.name: batch_prefix(s, placements[s.name].names()) for s in lstm.statements}
    assert prefix["S3"] == 0  # z[b, g] += h[b, j] * W_hh[g, j] under `for t`
    assert prefix["S1"] == 1  # xw[s, b, g] += x[s, b, i] * W_ih[g, i]: a product per step s
