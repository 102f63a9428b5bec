"""Left-looking row blocks: rows that each read every finished row run in blocks that read a
finished row once.

cholesky in PolyBench's (dot product) form computes row i from the rows above it:

    for i:                                            for i_o (blocks of ROWS rows):
        for j < i:                                        for j < ROWS * i_o:     (rows done)
            A[i, j] -= A[i, k] * A[j, k]  (k < j)             for i in the block:
            A[i, j] /= A[j, j]                  ->                A[i, j] -= A[i, k] * A[j, k]
        A[i, i] -= A[i, k] * A[i, k]  (k < i)                     A[i, j] /= A[j, j]
        A[i, i] = sqrt(A[i, i])                           for i in the block: (as written)
                                                              j in the block, then A[i, i]

Row i reads all of rows 0 .. i - 1: past a few hundred rows they leave the L2 cache, and every
row streams the triangle above it from memory again (cholesky LARGE, N 2000: 400 ms, the time
of reading it). In blocks, a finished row j serves every row of the block while it is in the
L1 cache. Each element takes its products in the same order as row by row (each dot product
the same vector loop over k), so the results below the diagonal are the unblocked default's
bit for bit; the diagonal's sum, which runs beside the products now, takes its terms one at a
time instead of in a vector loop. Over the finished rows the block's rows are independent
and run in SHARES shares under a parallel loop; the rows of the block's own triangle wait on
each other and run as written, after them.

The steps are the schedule's own (tile, `separate` by the row tiles, reorder, fuse, order),
each checked by the isl dependences. A kernel qualifies where every statement sits in one
outer loop over rows, the deepest ones (`isl_choice.deepest_statements`) loop over columns j
below the row (`j < i` on their domain), no statement of the others comes before one of
them, and the heuristics run none of them in parallel (`isl_choice.idle_work`); the kernel
keeps the heuristics' schedule where a step is illegal. The heuristics' steps on its
statements are dropped first; the vector marks are passes/loop_kinds.py's.
"""

from __future__ import annotations

import islpy as isl

from loopweave.ir.kernel import KernelIR, Statement
from loopweave.passes.isl_choice import deepest_statements, idle_work
from loopweave.passes.loop_kinds import innermost_vector_marks
from loopweave.passes.schedule import Schedule, align_reads, try_steps, without_steps_on

#: Rows per block. cholesky LARGE (N 2000), one thread, 2-core Xeon VM: 4 rows 168-228 ms,
#: 8 rows 117-207, 16 rows 110-186 (the default's dot products 391-414 ms); a block's
#: triangle, run row by row, grows with it.
ROWS = 16
#: Shares of a block's rows, each running the finished rows against its own rows (in
#: parallel: the rows of a block are independent there). cholesky LARGE, two threads: 16 rows
#: in two shares 69-106 ms, 32 in two 59-106, unshared 16 rows 110-198.
SHARES = 2


def row_blocks(kernel: KernelIR, schedule: Schedule, rows: int = ROWS) -> Schedule | None:
    """`schedule` with the steps that run the kernel's rows in blocks of `rows` (module
    docstring), or None where the kernel does not qualify or a step is not legal."""
    shape = _row_nest(kernel)
    if shape is None or not idle_work(kernel, schedule, ("parallel",)):
        return None
    triangle, per_row = shape
    trial = without_steps_on(kernel, schedule, {s.name for s in kernel.statements})
    steps: list[tuple] = []
    for s in triangle:
        i, j = s.iterators[:2]
        steps += [("tile", s.name, {i: rows, j: rows}), ("separate", s.name, f"{j}_o", f"{i}_o"),
                  ("split", s.name, i, max(rows // SHARES, 1))]
    for s in per_row:
        steps.append(("tile", s.name, {s.iterators[0]: rows}))
    before = [s.name for s in triangle]  # the pieces over finished rows keep the names
    at = [f"{s.name}_{s.iterators[1]}_o_at" for s in triangle]
    for s, own in zip(triangle, at, strict=True):
        # the split's outer loop, over shares of the block's rows: `i_oo` (a tile of a tile's
        # point loop takes one more "o", placement._fresh)
        i, j, *rest = s.iterators
        steps += [("reorder", s.name, f"{i}_o", f"{i}_oo", f"{j}_o", j, i, *rest),
                  ("reorder", own, f"{i}_o", i, f"{j}_o", j, *rest)]
    if len(triangle) > 1:
        steps += [("fuse", *before, {"depth": 5}), ("fuse", *at, {"depth": 4}),
                  ("order", *at)]
    if per_row:
        steps += [("fuse", *at, *(s.name for s in per_row), {"depth": 2}),
                  ("order", at[0], *(s.name for s in per_row))]
    # the block's own rows in a loop of their own: the shares run in parallel without them
    steps.append(("distribute", at[0], triangle[0].iterators[0]))
    if not try_steps(kernel, trial, steps):
        return None
    try_steps(kernel, trial, innermost_vector_marks(kernel, trial))
    try_steps(kernel, trial, [("parallel", before[0], f"{triangle[0].iterators[0]}_oo")])
    # the dot products re-read finished rows in vector loops: on lines (Schedule.align)
    return align_reads(kernel, trial, triangle)


def _row_nest(kernel: KernelIR) -> tuple[list[Statement], list[Statement]] | None:
    """(the statements over finished rows, the others), each in program order, where every
    statement of the kernel shares one outer loop over rows (module docstring); else None."""
    deepest = deepest_statements(kernel)
    placements = Schedule().placements(kernel)
    outer = {placements[s.name].order[:1] for s in kernel.statements}
    if not deepest or len(outer) != 1 or any(not s.iterators for s in kernel.statements):
        return None
    row = deepest[0].iterators[0]
    if any(s.iterators[0] != row for s in kernel.statements) or \
            not all(_below_row(s) for s in deepest):
        return None
    triangle = [s for s in kernel.statements if len(s.iterators) >= 2 and _below_row(s)]
    per_row = [s for s in kernel.statements if s not in triangle]
    order = [s.name for s in kernel.statements]
    if per_row and max(order.index(s.name) for s in triangle) > \
            min(order.index(s.name) for s in per_row):
        return None
    return triangle, per_row


def _below_row(s: Statement) -> bool:
    """Whether the statement's second loop runs below its first on its whole domain (j < i)."""
    domain = s.domain
    below = isl.Constraint.inequality_alloc(isl.LocalSpace.from_space(domain.get_space()))
    below = below.set_coefficient_val(isl.dim_type.set, 0, 1) \
        .set_coefficient_val(isl.dim_type.set, 1, -1).set_constant_val(-1)  # i - j - 1 >= 0
    return domain.is_subset(domain.add_constraint(below))
