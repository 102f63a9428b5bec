"""Left-looking column blocks: columns that every earlier column updates, in blocks that take
those updates while the block is in cache.

gramschmidt (modified Gram-Schmidt) finishes one column k at a time: its norm and Q[:, k],
then every column j > k takes the update of column k (`R[k, j] += Q[i, k] * A[i, j]`, then
`A[i, j] -= Q[i, k] * R[k, j]`):

    for k:                                      for j_o (blocks of COLUMNS columns):
        column k: nrm, R[k, k], Q[:, k]             for k < the block's end:
        for j > k: R[k, j], A[:, j] (all i)  ->         column k, where k is in the block
                                                        for j > k in the block: R[k, j], A[:, j]

Each step k streams all of A's columns right of k twice, from memory once A outgrows the L2
cache (PolyBench LARGE, A of 1000 x 1200 doubles: 9.6 MB). In blocks, a block's columns
take the updates of every column left of them in turn while they stay in the L2 cache (1000
x 64 doubles: 512 KB). Every element takes the same operations in the same order as column
by column (a column's updates come in the order of k); only where a column falls, in a
vector or in a vector loop's scalar rest, differs (gcc fuses the rest's multiply-add).
Where A fits the cache the default's longer vector loops are faster (PolyBench MEDIUM, 200 x
240: blocks of 64 columns 0.88x-1.02x; 0.8x-1.0x up to 6 MiB of data with a 2 MiB L2), so
this is a choice by sizes (`ColumnBlocks`): the blocks where the data outgrow a few times
the L2 cache (`L2_MULTIPLE`).

The steps are the schedule's own (tile, reorder, fuse), checked by the isl dependences. A
kernel qualifies where every statement sits in one outer loop over k, the statements of its
deepest nests (`isl_choice.deepest_statements`) each have a loop over columns right of k
(`j > k` on their domain), the others come before them and have no such loop, and the
heuristics run none of them in parallel (`isl_choice.idle_work`).
"""

from __future__ import annotations

from collections.abc import Callable

import islpy as isl

from loopweave.ir.kernel import KernelIR, Statement
from loopweave.passes.isl_choice import deepest_statements, footprint_bytes, idle_work
from loopweave.passes.loop_kinds import innermost_vector_marks
from loopweave.passes.schedule import Schedule, try_steps, without_steps_on
from loopweave.targets import host_cache_bytes

#: Columns per block. gramschmidt LARGE (1000 x 1200), one thread, 2-core Xeon VM (2 MB L2):
#: the default 533 ms; blocks of 16 671 ms, 32 486, 64 408, 128 429.
COLUMNS = 64
#: The blocks where the tensors outgrow this many times the host's L2 cache (1 MiB where sysfs
#: reports none). gramschmidt, one thread, 2-core Xeon VM (2 MiB L2), blocks against the
#: default by A, Q and R's size: 1.2 MiB 1.02x, 2.2 MiB 0.81x, 3.2 MiB 0.93x, 6.2 MiB 0.96x,
#: 7.9 MiB 1.07x, 9.9 MiB 1.46x, 11-15 MiB 1.38-1.41x, 26-29 MiB 1.26-1.36x: the default's
#: steps stream A's columns from the L2 until A is well past it.
L2_MULTIPLE = 4
DEFAULT_L2_BYTES = 1 << 20


def column_blocks(kernel: KernelIR, schedule: Schedule, columns: int = COLUMNS
                  ) -> Schedule | None:
    """`schedule` with the steps that run the kernel's columns in blocks of `columns` (module
    docstring), or None where the kernel does not qualify or a step is not legal."""
    shape = column_nest(kernel)
    if shape is None or not idle_work(kernel, schedule, ("parallel",)):
        return None
    step, per_column, updates = shape
    trial = without_steps_on(kernel, schedule, {s.name for s in kernel.statements})
    steps: list[tuple] = [("tile", s.name, {step: columns}) for s in per_column]
    for s, column in updates:
        rest = [v for v in s.iterators if v not in (step, column)]
        steps += [("tile", s.name, {column: columns}),
                  ("reorder", s.name, f"{column}_o", step, *rest, column)]
    steps.append(("fuse", *(s.name for s in kernel.statements), {"depth": 2}))
    if not try_steps(kernel, trial, steps):
        return None
    try_steps(kernel, trial, innermost_vector_marks(kernel, trial))
    return trial


def column_nest(kernel: KernelIR) -> tuple[str, list[Statement], list[tuple[Statement, str]]
                                            ] | None:
    """(the loop over finished columns, the statements of one column, (statement, its loop over
    the columns right of it) of each update) where the kernel has that shape (module
    docstring); else None."""
    deepest = deepest_statements(kernel)
    if not deepest or any(not s.iterators for s in kernel.statements):
        return None
    step = kernel.statements[0].iterators[0]
    placements = Schedule().placements(kernel)
    outer = {placements[s.name].order[:1] for s in kernel.statements}
    if any(s.iterators[0] != step for s in kernel.statements) or len(outer) != 1:
        return None
    updates = []
    for s in deepest:
        right = [v for v in s.iterators[1:] if _right_of(s, step, v)]
        if len(right) != 1:
            return None
        updates.append((s, right[0]))
    per_column = [s for s in kernel.statements if s not in deepest]
    order = [s.name for s in kernel.statements]
    if not per_column or any(_right_of(s, step, v) for s in per_column for v in s.iterators[1:]) \
            or max(order.index(s.name) for s in per_column) > \
            min(order.index(s.name) for s in deepest):
        return None
    return step, per_column, updates


def _right_of(s: Statement, step: str, column: str) -> bool:
    """Whether the statement's loop `column` runs right of its loop `step` on its whole domain
    (column > step)."""
    domain = s.domain
    a, b = s.iterators.index(column), s.iterators.index(step)
    right = isl.Constraint.inequality_alloc(isl.LocalSpace.from_space(domain.get_space()))
    right = right.set_coefficient_val(isl.dim_type.set, a, 1) \
        .set_coefficient_val(isl.dim_type.set, b, -1).set_constant_val(-1)  # column - step - 1 >= 0
    return domain.is_subset(domain.add_constraint(right))


class ColumnBlocks:
    """The default's choice by sizes for a kernel of `column_nest`'s shape: its columns in
    blocks (`column_blocks`) where the tensors its statements touch outgrow L2_MULTIPLE
    times the host's L2 cache, else None (the default schedule)."""

    why = "columns in blocks (the data far exceed the L2 cache)"

    def __init__(self, kernel: KernelIR, plain: Callable[[], Schedule]):
        self.kernel = kernel
        self.plain = plain
        self._blocked: list[Schedule | None] = []  # made once, on the first large sizes

    def at(self, sizes: dict[str, int]) -> Schedule | None:
        """The schedule for `sizes`, or None for the default's."""
        bound = L2_MULTIPLE * (host_cache_bytes(2) or DEFAULT_L2_BYTES)
        if footprint_bytes(self.kernel, sizes) <= bound:
            return None
        if not self._blocked:
            self._blocked.append(column_blocks(self.kernel, self.plain()))
        return self._blocked[0]


def column_block_rule(kernel: KernelIR, plain: Callable[[], Schedule]) -> ColumnBlocks | None:
    """A `ColumnBlocks` for a kernel of `column_nest`'s shape (`plain()`: its default
    schedule, asked only for large sizes), else None."""
    return ColumnBlocks(kernel, plain) if column_nest(kernel) is not None else None
