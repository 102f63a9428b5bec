"""Normalization: a temporary that a contraction accumulates into, restarted in every iteration
of the DSL `for` loops around it, gets a dimension per such loop (scalar expansion), so that
the contraction is a matrix product the micro-kernel can tile:

    for i in 0:M {                                    for i in 0:M {
        for j in 0:N {                                    for j in 0:N {
            temp2 += B[k, j] * A[i, k]  where k < i  ->      temp2[i, j] += B[k, j] * A[i, k] ...
            C[i, j] = ... + alpha * temp2                     C[i, j] = ... + alpha * temp2[i, j]

(symm). Only where no value of the temporary flows from one iteration of those loops to
another (checked with isl on the flow dependences), every statement that uses it sits in the
same loops, their extents are affine in the sizes from 0, and some reduction into it is then a
contraction (`passes/patterns.match_contraction`) where none was before. The storage grows by
the loops' extents (symm at LARGE: 1000 x 1200 doubles); where the default keeps the statements
together, storage reduction makes it a local again.

Like `passes/normalize.py`, it runs only where no schedule names statements.
"""

from __future__ import annotations

from dataclasses import replace

import islpy as isl

from loopweave.ir import expr as ir
from loopweave.ir.affine import aff_to_expr, simplify
from loopweave.ir.dependences import Dependences
from loopweave.ir.isl_helpers import iterator_range
from loopweave.ir.kernel import KernelIR, Statement, Tensor
from loopweave.passes import placement as pl
from loopweave.passes.patterns import match_contraction


def expand_accumulators(kernel: KernelIR) -> KernelIR:
    """`kernel` with each such temporary expanded by its enclosing `for` loops (module
    docstring); the same object when there is none."""
    result = kernel
    for t in kernel.temporaries:
        expanded = _expanded(result, t)
        if expanded is not None:
            result = expanded
    return result


def _expanded(kernel: KernelIR, t: Tensor) -> KernelIR | None:
    users = [s for s in kernel.statements if s.lhs.tensor == t.name
             or any(load.tensor == t.name for load in ir.loads(s.rhs))]
    if any(s.lhs.tensor == t.name and match_contraction(s) is not None for s in users):
        return None  # a contraction already: nothing to gain
    loops = _shared_for_loops(kernel, users)
    if not loops:
        return None
    index = tuple(ir.Var(v) for v in loops)

    def widened(load: ir.Load) -> ir.Load:
        return replace(load, indices=(*index, *load.indices))

    statements = [replace(s, lhs=widened(s.lhs) if s.lhs.tensor == t.name else s.lhs,
                          rhs=ir.rewrite(s.rhs, lambda e: widened(e) if isinstance(
                              e, ir.Load) and e.tensor == t.name else None))
                  if s in users else s for s in kernel.statements]
    if not any(s.lhs.tensor == t.name and s.op == "+=" and not s.is_init and
               match_contraction(s) is not None for s in statements):
        return None
    # The isl checks last: most temporaries fail the pattern above, at no dependence analysis.
    extents = _extents(users[0], len(loops))
    if extents is None or not _restarts_every_iteration(kernel, t.name, len(loops)):
        return None
    wide = replace(t, shape=(*extents, *t.shape))
    return replace(kernel, statements=tuple(statements), temporaries=tuple(
        wide if u.name == t.name else u for u in kernel.temporaries))


def _shared_for_loops(kernel: KernelIR, users: list[Statement]) -> list[str]:
    """The DSL `for` loops (iterators, outermost first) that every one of `users` sits in, the
    same loops for all (one position in the kernel's loops), or none."""
    if not users:
        return []
    placements = pl.initial_placements(kernel)
    n = min(s.enclosing for s in users)
    first = users[0]
    for s in users[1:]:
        while n and (s.iterators[:n] != first.iterators[:n] or
                     placements[s.name].order[:n] != placements[first.name].order[:n]):
            n -= 1
    return list(first.iterators[:n])


def _restarts_every_iteration(kernel: KernelIR, tensor: str, n: int) -> bool:
    """Whether every flow of a value of `tensor` stays inside one iteration of the outer `n`
    loops (the same values of its source's and sink's first `n` iterators)."""
    for d in Dependences.of(kernel).all:
        if d.tensor != tensor or d.kind != "flow":
            continue
        same = d.relation
        for k in range(n):
            same = same.equate(isl.dim_type.in_, k, isl.dim_type.out, k)
        if not d.relation.is_subset(same):
            return False
    return True


def _extents(s: Statement, n: int) -> tuple[ir.Expr, ...] | None:
    """The extents of the first `n` loops of `s` (each from 0 to an affine size), or None."""
    extents = []
    for k in range(n):
        lo, hi = (b.get_pieces() for b in iterator_range(s.domain, k))
        if len(lo) != 1 or len(hi) != 1 or not lo[0][1].is_cst() or \
                lo[0][1].get_constant_val().to_python() != 0:
            return None
        try:
            extents.append(simplify(ir.add(aff_to_expr(hi[0][1], []), ir.Const(1))))
        except ValueError:
            return None
    return tuple(extents)
