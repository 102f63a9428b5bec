"""Right-looking elimination: the reduction loop of an in-place elimination runs outermost.

lu in PolyBench's row by row (Doolittle) order computes row i from every row above it:

    for i:                                        for k:                      (the time loop)
        for j < i:                                    for i > k:              (parallel)
            A[i, j] -= A[i, k] * A[k, j]  (k < j)         A[i, j] -= A[i, k] * A[k, j]  (j > k)
            A[i, j] /= A[j, j]               ->       for i > k + 1:
        A[i, j] -= A[i, k] * A[k, j]  (k < i <= j)        A[i, k + 1] /= A[k + 1, k + 1]

Each iteration of i waits for the one before, so none of the heuristics' loops of the updates
runs in parallel. With the updates' reduction loop k outermost, the rows below k are
independent at each k, and each element still receives the same updates in the same order
(increasing k). The division of column j moves to the end of step j - 1, the
step after which its element and its pivot are final.

The steps are the schedule's own, each checked by the isl dependences: every deepest statement
(`isl_choice.deepest_statements`) reorders its one reduction iterator outermost; every other
statement of its nest moves the loop whose index the updates read at k (lu's division writes
A[i, j] and the updates read A[i, k]: j) outermost, shifted by 0 or -1 (the first that is
legal) and distributed into a nest of its own; the updates share one nest. Then the loop marks
of passes/loop_kinds.py. Only where the heuristics run no loop of the deepest statements in
parallel (`isl_choice.idle_work` with "parallel"), and kept only where the result does.
"""

from __future__ import annotations

from loopweave.ir import expr as ir
from loopweave.ir.kernel import KernelIR, Statement
from loopweave.passes.isl_choice import deepest_statements, idle_work
from loopweave.passes.loop_kinds import loop_marks
from loopweave.passes.schedule import Schedule, try_steps

#: Shifts of the other statements' time loop tried, in order: 0 runs them at the start of the
#: step of their own index, -1 at the end of the step before (lu's division).
TIME_SHIFTS = (0, -1)


def right_looking(kernel: KernelIR, schedule: Schedule) -> Schedule | None:
    """`schedule` plus the steps that run an in-place elimination right-looking (module
    docstring), or None where the kernel has no such nest, the heuristics already run its
    updates in parallel, or no shift gives the updates a parallel loop."""
    if not idle_work(kernel, schedule, ("parallel",)):
        return None
    updates = deepest_statements(kernel)
    placements = schedule.placements(kernel)
    nest = placements[updates[0].name].order[:1]
    if any(placements[s.name].order[:1] != nest for s in updates):
        return None
    members = [s for s in kernel.statements if placements[s.name].order[:1] == nest]
    if any(sorted(placements[s.name].names()) != sorted(s.iterators) for s in members):
        return None  # tiled or skewed loops: not a program-order nest
    times = {s.name: _time_loop(s, updates) for s in members}
    if None in times.values() or len(members) == len(updates):
        return None
    names = {s.name: placements[s.name].names() for s in members}
    for shift in TIME_SHIFTS:
        trial = Schedule(list(schedule.steps))
        steps = []
        for s in members:
            rest = [v for v in names[s.name] if v != times[s.name]]
            steps.append(("reorder", s.name, times[s.name], *rest))
            if s not in updates and shift:
                steps.append(("shift", s.name, times[s.name], shift))
        steps += [("distribute", s.name, _second_loop(s, times)) for s in members[1:]
                  if len(s.iterators) > 1]
        steps.append(("fuse", *(s.name for s in updates), {"depth": 2}))
        if try_steps(kernel, trial, steps) and \
                _parallel_updates(kernel, trial, members, updates, times):
            return trial
    return None


def _time_loop(s: Statement, updates: list[Statement]) -> str | None:
    """The iterator of `s` that becomes the time loop: an update's one reduction iterator (in
    none of its write's indices); for another statement, the iterator at the one place where
    its write differs from an update's read of the same tensor at that update's reduction
    iterator (A[i, j] written, A[i, k] read: j). None where there is none."""
    if s in updates:
        written = set().union(*(ir.variables(x) for x in s.lhs.indices))
        free = [v for v in s.iterators if v not in written]
        return free[0] if len(free) == 1 else None
    for u in updates:
        k = _time_loop(u, updates)
        for read in u.reads:
            if read.tensor != s.lhs.tensor or len(read.indices) != len(s.lhs.indices):
                continue
            differ = [(w, r) for w, r in zip(s.lhs.indices, read.indices, strict=True) if w != r]
            if len(differ) == 1 and differ[0][1] == ir.Var(k) and \
                    isinstance(differ[0][0], ir.Var) and differ[0][0].name in s.iterators:
                return differ[0][0].name
    return None


def _second_loop(s: Statement, times: dict[str, str]) -> str:
    """The loop of `s` right inside its time loop, after the reorder."""
    return [v for v in s.iterators if v != times[s.name]][0]


def _parallel_updates(kernel: KernelIR, schedule: Schedule, members: list[Statement],
                      updates: list[Statement], times: dict[str, str]) -> bool:
    """Mark the updates' loop inside the time loop parallel in `schedule` if it carries no
    dependence (loop_kinds leaves a pivot loop's inner loops serial: a fork per step of a
    loop that indexes what it stores, measured slower on gramschmidt), then the vector
    loops of passes/loop_kinds.py for the nest of `members`; whether the first held."""
    if not try_steps(kernel, schedule, [("parallel", updates[0].name,
                                         _second_loop(updates[0], times))]):
        return False
    names = {s.name for s in members}
    try_steps(kernel, schedule, [m for m in loop_marks(kernel, schedule, True, set(), {})
                                 if m[0] == "vectorize" and m[1] in names])
    return True
