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

Blocked (`_blocked`), the rows below a block of BLOCK pivots take the block's pivots at once
for the columns past it: a rank-BLOCK update in registers instead of BLOCK sweeps of the
trailing rows (lu LARGE: 2.3x over the unblocked form, one thread or two).

The steps are the schedule's own, each checked by the isl dependences: every deepest statement
(`isl_choice.deepest_statements`) reorders its one reduction iterator outermost; every other
statement of its nest moves the loop whose index the updates read at k (lu's division writes
A[i, j] and the updates read A[i, k]: j) outermost, shifted by 0 or -1 (the first that is
legal) and distributed into a nest of its own; the updates share one nest. The blocked form
adds tiles, `separate` (pieces by rows and columns against the pivots' tile) and `order`.
Then the loop marks of passes/loop_kinds.py. Only where the heuristics run no loop of the
deepest statements in parallel (`isl_choice.idle_work` with "parallel"), and kept only where
the result does. The heuristics' steps on the nest's statements are dropped first.
"""

from __future__ import annotations

from dataclasses import dataclass

from loopweave.errors import ScheduleError
from loopweave.ir import expr as ir
from loopweave.ir.kernel import KernelIR, Statement
from loopweave.passes.index_split import split_pieces
from loopweave.passes.isl_choice import deepest_statements, idle_work
from loopweave.passes.loop_kinds import loop_marks
from loopweave.passes.schedule import Schedule, align_reads, try_steps, without_steps_on

#: Shifts of the other statements' time loop tried, in order: 0 runs them at the start of the
#: step of their own index, -1 at the end of the step before (lu's division).
TIME_SHIFTS = (0, -1)
#: Pivots per block (and rows and columns per tile) of the blocked form. lu LARGE (N 2000),
#: 2-core Xeon VM: one thread 348, 341, 349 ms and two threads 174-180, 130-181, 188 ms at
#: 16, 32, 64 (unblocked: 766-815 and 478-500 ms).
BLOCK = 32


@dataclass(frozen=True)
class Nest:
    """An elimination nest: its statements in program order, the updates among them, and
    each statement's time loop (the pivot), rows loop (the one after it) and, for an update,
    columns loop."""

    members: tuple[Statement, ...]
    updates: tuple[Statement, ...]
    time: dict[str, str]
    rows: dict[str, str]
    cols: dict[str, str]


def right_looking(kernel: KernelIR, schedule: Schedule, block: int = BLOCK) -> Schedule | None:
    """`schedule` with the steps that run an in-place elimination right-looking (module
    docstring), blocked by `block` pivots where that is legal, or None where the kernel has no
    such nest, the heuristics already run its updates in parallel, or no shift gives the
    updates a parallel loop (the tuner's `right_looking.block` knob sets `block`)."""
    if not idle_work(kernel, schedule, ("parallel",)):
        return None
    nest = _nest(kernel)
    if nest is None:
        return None
    names = {s.name for s in nest.members}
    base = without_steps_on(kernel, schedule, names)
    try:
        blocked = _blocked(kernel, base, nest, block)
    except ScheduleError:  # a piece or a loop the steps expect is not there
        blocked = None
    chosen = blocked or _unblocked(kernel, base, nest)
    # the trailing updates re-read the pivot rows in vector loops: on lines (Schedule.align)
    return align_reads(kernel, chosen, nest.members) if chosen is not None else None


def has_elimination_nest(kernel: KernelIR) -> bool:
    """Whether `kernel` has the in-place elimination nest this pass schedules (lu, ludcmp)."""
    return _nest(kernel) is not None


def _nest(kernel: KernelIR) -> Nest | None:
    """The nest of the kernel's deepest statements if it is an elimination (module
    docstring), else None."""
    updates = deepest_statements(kernel)
    if not updates:  # no nest two or more loops deep
        return None
    placements = Schedule().placements(kernel)
    outer = placements[updates[0].name].order[:1]
    if any(placements[s.name].order[:1] != outer for s in updates):
        return None
    members = [s for s in kernel.statements if placements[s.name].order[:1] == outer]
    time = {s.name: _time_loop(s, updates) for s in members}
    if None in time.values() or len(members) == len(updates):
        return None
    rest = {s.name: [v for v in s.iterators if v != time[s.name]] for s in members}
    return Nest(tuple(members), tuple(updates), time,
                {n: r[0] for n, r in rest.items() if r},
                {n: r[1] for n, r in rest.items() if len(r) == 2})


def _blocked(kernel: KernelIR, base: Schedule, nest: Nest, block: int) -> Schedule | None:
    """`base` plus blocked right-looking steps, or None where they are not legal or find no
    parallel loop. Per block of `block` pivots (`time_o`):

        for time_o:
            rows below the block before (in parallel, by tiles of rows):      "bottom"
                for time in that block: updates of the block's columns, divisions
                for columns past it: for time in that block: updates           (SIMD)
            rows of this block: unblocked right-looking, over all columns      "top"

    The bottom rows of block b need only the top rows of b (finished in the step before), so
    they run in parallel, each row's columns past the block taking all BLOCK updates of the
    block at once in registers (a rank-BLOCK update instead of BLOCK rank-1 sweeps of the
    trailing rows). Top and bottom (rows tile == or > the pivots' tile) and, for the bottom
    updates, the block's columns and those past it are pieces of `separate` steps."""
    if any(s.name not in nest.rows or (s in nest.updates) != (s.name in nest.cols)
           for s in nest.members):
        return None
    trial = Schedule(list(base.steps))
    tiled = {}
    for s in nest.members:
        t, r = nest.time[s.name], nest.rows[s.name]
        trial.reorder(s.name, t, r, *([nest.cols[s.name]] if s.name in nest.cols else []))
        trial.tile(s.name, **{t: block, r: block})
        tiled[s.name] = (f"{t}_o", f"{r}_o")
        if s not in nest.updates:
            trial.shift(s.name, t, -1)
    bottom = {}
    for s in nest.members:
        t_o, r_o = tiled[s.name]
        pieces = _pieces(kernel, trial, s.name, r_o, t_o)
        if list(pieces) != ["==", ">"]:
            return None
        trial.separate(s.name, r_o, t_o)
        bottom[s.name] = pieces[">"]
    panels, trailing = [], []
    origin = {b: name for name, b in bottom.items()}  # piece -> the nest statement
    for u in nest.updates:
        (t_o, r_o), t, r, c = tiled[u.name], nest.time[u.name], nest.rows[u.name], \
            nest.cols[u.name]
        b = bottom[u.name]
        trial.reorder(b, t_o, r_o, r, t, c).tile(b, **{c: block})
        trial.reorder(b, t_o, r_o, r, f"{c}_o", c, t)
        pieces = _pieces(kernel, trial, b, f"{c}_o", t_o)
        if "<" in pieces:
            return None
        trial.separate(b, f"{c}_o", t_o)
        origin.update({piece: u.name for piece in pieces.values()})
        if "==" in pieces:
            panels.append(pieces["=="])
            trial.reorder(pieces["=="], t_o, r_o, r, t, f"{c}_o", c)
        if ">" in pieces:
            trailing.append(pieces[">"])
    divisions = [bottom[s.name] for s in nest.members if s not in nest.updates]
    for s in nest.members:
        t_o, r_o = tiled[s.name]
        if s not in nest.updates:
            trial.reorder(bottom[s.name], t_o, r_o, nest.rows[s.name], nest.time[s.name])
    shifted = panels + trailing + divisions
    for name in shifted:
        trial.shift(name, tiled[origin[name]][0], 1)
    steps = [("fuse", *shifted, {"depth": 3})]
    if panels:
        steps += [("fuse", *panels, *divisions, {"depth": 4}),
                  ("order", ",".join(panels), ",".join(divisions))]
    steps += [("order", ",".join(panels + divisions), *trailing)] if panels else []
    steps += [("distribute", s.name, nest.rows[s.name]) for s in nest.members[1:]]
    steps += [("fuse", *(s.name for s in nest.updates), {"depth": 4}),
              ("order", ",".join(shifted), ",".join(s.name for s in nest.members))]
    if not try_steps(kernel, trial, steps):
        return None
    first = (panels + trailing)[0]
    vectors = [("vectorize", name, nest.cols[origin[name]]) for name in trailing]
    return trial if _parallel(kernel, trial, first, tiled[nest.updates[0].name][1],
                              {s.name for s in nest.members}, vectors) else None


def _pieces(kernel: KernelIR, schedule: Schedule, name: str, loop: str, other: str
            ) -> dict[str, str]:
    """The names of the pieces `schedule.separate(name, loop, other)` would make, by relation
    ("<", "==", ">"): the same split (index_split.split_pieces) on the same placements."""
    split, placements = schedule.placed(kernel)
    loops = {lp.name: lp.expr for lp in placements[name].loops}
    return {relation: piece.name for relation, piece in split_pieces(
        split, split.statement[name], loops[loop], loops[other], loop, set(placements))}


def _unblocked(kernel: KernelIR, base: Schedule, nest: Nest) -> Schedule | None:
    """`base` plus the right-looking steps, for the first shift in TIME_SHIFTS that is legal
    and gives the updates a parallel loop; None if none does."""
    for shift in TIME_SHIFTS:
        trial = Schedule(list(base.steps))
        steps = []
        for s in nest.members:
            steps.append(("reorder", s.name, nest.time[s.name],
                          *[v for v in s.iterators if v != nest.time[s.name]]))
            if s not in nest.updates and shift:
                steps.append(("shift", s.name, nest.time[s.name], shift))
        steps += [("distribute", s.name, nest.rows[s.name]) for s in nest.members[1:]
                  if s.name in nest.rows]
        steps.append(("fuse", *(s.name for s in nest.updates), {"depth": 2}))
        if try_steps(kernel, trial, steps) and _parallel(
                kernel, trial, nest.updates[0].name, nest.rows[nest.updates[0].name],
                {s.name for s in nest.members}):
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


def _parallel(kernel: KernelIR, schedule: Schedule, name: str, loop: str, nest: set[str],
              vectors: list[tuple] = ()) -> bool:
    """Mark loop `loop` of statement `name` parallel in `schedule` if it carries no
    dependence (loop_kinds leaves a pivot loop's inner loops serial: a fork per step of a loop
    that indexes what it stores measured slower on gramschmidt), then the `vectors` marks and
    the vector loops of passes/loop_kinds.py for the statements of the nest (`nest` and their
    pieces); whether the parallel mark held."""
    if not try_steps(kernel, schedule, [("parallel", name, loop)]):
        return False
    split, _ = schedule.placed(kernel)
    ours = nest | ({s.name for s in split.statements} - set(kernel.statement))
    ours -= {step[1] for step in vectors}  # their vector loop is given
    try_steps(kernel, schedule, list(vectors))
    try_steps(kernel, schedule, [m for m in loop_marks(kernel, schedule, True, set(), {})
                                 if m[0] == "vectorize" and m[1] in ours])
    return True
