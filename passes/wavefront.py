"""Latency wavefronts: recurrences along the innermost loop run many at once.

seidel-2d's `A[i, j] = (... + A[i, j - 1] + ...) / 9` waits, at every j, for the sum and the
division of j - 1: about 40 cycles of latency a point, one point at a time, while the core
could start a new chain every few cycles. Iterations (i, j) and (i + 1, j - 2) are
independent (row i + 1 reads row i only up to column j - 1). Skewed, j' = j + 2i, the rows
of a strip of WAVEFRONT_ROWS consecutive i at one j' carry nothing between them; with the
strip innermost, the out-of-order core overlaps their chains:

    for t, for i_o, for j' (= j + 2i), for i in the strip: A[i, j' - 2i] = ...

The steps (`skew`, `tile`, `reorder`) are the schedule's own, each checked by the isl
dependences. Only for the kernel's deepest statements that the heuristics run neither in
parallel nor in SIMD (`isl_choice.idle_work`), before isl's fallback is asked.
"""

from __future__ import annotations

from loopweave.ir.kernel import KernelIR
from loopweave.passes.isl_choice import deepest_statements, idle_work
from loopweave.passes.loop_kinds import loops_carrying_nothing
from loopweave.passes.schedule import Schedule, try_steps

#: Rows of a strip: the chains the innermost loop interleaves. seidel-2d (N 2000, 40 steps),
#: one thread, 2-core Xeon VM, against the heuristics' program order (1013 ms): 4 rows 2.3x,
#: 8 3.2x, 16 4.1x, 32 4.5x, 64 2.5x (64 rows 16 KB apart overflow the L1 TLB).
WAVEFRONT_ROWS = 32
#: Skew factors tried, least first: 1 where row i + 1 reads row i up to column j, 2 up to
#: column j + 1 (seidel-2d's 9-point stencil).
SKEW_FACTORS = (1, 2)


def latency_wavefront(kernel: KernelIR, schedule: Schedule) -> Schedule | None:
    """`schedule` plus a wavefront (module docstring) for each statement of the kernel's
    deepest nests whose innermost loop carries a dependence and whose loop outside it, after
    the least skew that works, carries none at one skewed index; None where no statement gets
    one, or where the heuristics already run that work in parallel or in SIMD."""
    if not idle_work(kernel, schedule):
        return None
    result = Schedule(list(schedule.steps))
    changed = False
    for s in deepest_statements(kernel):
        loops = result.placements(kernel)[s.name].names()
        if len(loops) < 2 or _free(kernel, result, s.name, len(loops) - 1):
            continue
        outer, inner = loops[-2], loops[-1]
        for factor in SKEW_FACTORS:
            trial = Schedule(list(result.steps))
            steps = [("skew", s.name, inner, outer, factor),
                     ("tile", s.name, {outer: WAVEFRONT_ROWS}),
                     ("reorder", s.name, f"{outer}_o", inner, outer)]
            if try_steps(kernel, trial, steps) and _free(kernel, trial, s.name, len(loops)):
                result, changed = trial, True
                break
    return result if changed else None


def _free(kernel: KernelIR, schedule: Schedule, name: str, depth: int) -> bool:
    """Whether loop `depth` of statement `name` under `schedule` carries no dependence."""
    free, _, _ = loops_carrying_nothing(kernel, schedule.placements(kernel), {(name, depth)})
    return (name, depth) in free
