"""A compiled PolyBench kernel against its numpy reference (examples/polybench/references/),
for the tests of the default's normalizations."""

from __future__ import annotations

import numpy as np

from loopweave.examples import load_polybench_references
from loopweave.ir.loops import For, Store, children

poly = load_polybench_references()


def assert_matches_reference(name: str, kernel, sizes: dict[str, int], seed: int) -> None:
    """Run `kernel` (PolyBench `name` compiled) at `sizes` on the case's inputs and compare
    every output and updated input with the reference, within the case's tolerance."""
    case = poly.POLYBENCH[name]
    args = case.make_inputs(sizes, seed)
    want = case.expected({k: v.copy() if hasattr(v, "copy") else v for k, v in args.items()})
    got = poly.results_of(case, args, kernel(*args.values()))
    for out, expected in want.items():
        err, ok = poly.compare(np.asarray(got[out]), expected, case.tol_scale)
        assert ok, f"{name}[{out}] at {sizes}: differs by {err:g}"


def stores_in_loops(node, around=()):
    """(store, the loops around it, outer first) for every store of a loop AST."""
    if isinstance(node, Store):
        yield node, around
    for child in children(node):
        yield from stores_in_loops(child, (*around, node) if isinstance(node, For) else around)
