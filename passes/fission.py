"""Statements split out of the loops they share (fission), so that the default schedule can
give one statement loops of its own: a contraction its micro-kernel (`default._isolate_contraction`
asks for the steps here) and any statement its stride-one loop innermost."""

from __future__ import annotations

from loopweave.ir import expr as ir
from loopweave.ir.isl_helpers import iterator_range
from loopweave.ir.kernel import KernelIR, Statement
from loopweave.passes.interchange import interchange_candidates
from loopweave.passes.isl_choice import in_time_loop
from loopweave.passes.patterns import match_contraction, walk
from loopweave.passes.schedule import Schedule, try_steps


def first_after(placements, name: str) -> tuple[str, list[str]] | None:
    """(the first statement after `name` in its top-level loop, its loops), or None."""
    mine = placements[name].order
    later = sorted((p.order, n) for n, p in placements.items()
                   if n != name and p.order[:1] == mine[:1] and p.order > mine)
    return (later[0][1], placements[later[0][1]].names()) if later else None


def distribute_before(name: str, loops: list[str]) -> list[tuple]:
    """Steps that split each of `loops` (the statement's, outermost first) before statement
    `name`, innermost first: a loop splits only where something runs before the statement in
    it, so trmm's `B[i, j] *= alpha` leaves the contraction's i loop once it has left j."""
    return [("distribute", name, loop) for loop in reversed(loops)]


# A loop of fewer iterations than this, fixed by the source (`where dx in 0:2`), is no
# innermost loop: vectorized, it fills 2 of 16 lanes.
SHORT_LOOP = 4


def constant_extent(s: Statement, var: str) -> int | None:
    """The iterations of loop `var` of `s` if the domain fixes them (`dx in 0:2`), else None
    (also for a loop that is none of the statement's own iterators)."""
    if var not in s.iterators:
        return None
    lo, hi = (b.get_pieces() for b in iterator_range(s.domain, s.iterators.index(var)))
    if len(lo) != 1 or len(hi) != 1 or not lo[0][1].is_cst() or not hi[0][1].is_cst():
        return None
    return hi[0][1].get_constant_val().to_python() - lo[0][1].get_constant_val().to_python() + 1


def stride_one_innermost(kernel: KernelIR, schedule: Schedule, s: Statement) -> None:
    """Move innermost the statement's loop that walks the most accesses with stride 1 and the
    fewest with a larger stride (`O[i, v] += p[j] * V[j, v]` runs j then v; a row reduction
    keeps its row loop inside), if that is legal. A loop the source fixes to fewer than
    SHORT_LOOP iterations is never that loop, and one already innermost gives way to the best
    other loop that walks no more accesses strided than with stride 1 (max pooling's 2 x 2
    window goes outside the output's columns: 4.8x at 64 x 112 x 112, one thread). Where that
    loop is shared with other statements (trmm's j: `B[i, j] += A[k, i] * B[k, j]` next to
    `B[i, j] *= alpha`), the statement first gets a copy of the loops it shares (fission), if
    that is legal too; where it is not, the loop goes innermost with the statements sharing
    it shifted
    (passes/interchange.py: lu's row update)."""
    placements = schedule.placements(kernel)
    mine = placements[s.name]
    names = mine.names()
    exprs = {lp.name: lp.expr for lp in mine.loops}
    plain = {n for n in names if isinstance(exprs[n], ir.Var)}

    def score(name: str) -> tuple[int, bool]:
        """(accesses walked with stride 1 - accesses walked with a larger stride, the store is
        one of the first): a loop that makes no access strided wins."""
        var = exprs[name].name
        walks = {id(a): walk(a, var) for a in (s.lhs, *ir.loads(s.rhs))}
        unit = sum(w == "unit" for w in walks.values())
        strided = sum(w == "strided" for w in walks.values())
        return (unit - strided, walks[id(s.lhs)] == "unit")

    short = {n for n in plain if (e := constant_extent(s, exprs[n].name)) is not None
             and e < SHORT_LOOP}
    best = max(sorted(plain - short), key=score, default=None)
    if best is None or len(names) < 2 or best == names[-1] or names[-1] not in plain:
        return  # (not plain: shifted by an interchange)
    if score(best) <= score(names[-1]) and not (names[-1] in short and score(best)[0] >= 0):
        return
    shared = max((_shared_depth(mine, p) for n, p in placements.items() if n != s.name),
                 default=0)
    split = []
    if names.index(best) < shared and not in_time_loop(kernel):
        # The loop is shared: split s off at its loops first. Not in a time loop: there isl's
        # schedule (`isl_fallback`) tiles the sweeps too (adi: 2.05x, one thread, MEDIUM;
        # the back substitution split off and vectorized alone, 1.13x).
        split = fission_steps(placements, s.name, names[names.index(best):shared])
    own = names[min(shared, names.index(best)):] if split else names[shared:]
    reorder = ("reorder", s.name, *[n for n in own if n != best], best)
    if best in own and len(own) >= 2 and try_steps(kernel, schedule, [*split, reorder]):
        return
    if split:  # illegal: the statements sharing the loop consume s's result (lu)
        for steps in interchange_candidates(placements, s.name, best):
            if try_steps(kernel, schedule, steps):  # the first legal offset
                return


def fission_steps(placements, name: str, loops: list[str]) -> list[tuple]:
    """`distribute` steps that give statement `name` its own copy of each of `loops` (loops
    it shares with others): split before it, and before the first statement after it."""
    mine = placements[name]
    steps = []
    for loop in loops:
        depth = mine.names().index(loop)
        inside = sorted((p.order, n) for n, p in placements.items()
                        if p.order[:depth + 1] == mine.order[:depth + 1] and
                        len(p.loops) > depth and p.names()[depth] == loop)
        position = [n for _, n in inside].index(name)
        if position > 0:
            steps.append(("distribute", name, loop))
        if position + 1 < len(inside):
            steps.append(("distribute", inside[position + 1][1], loop))
    return steps


def _shared_depth(a, b) -> int:
    """Loops that placements `a` and `b` share, from the outermost."""
    depth = 0
    while depth < min(len(a.loops), len(b.loops)) and a.order[depth] == b.order[depth]:
        depth += 1
    return depth


def group_size(placements, s: Statement) -> int:
    """Statements in the top-level loop of `s`, itself included."""
    return sum(1 for p in placements.values() if p.order[:1] == placements[s.name].order[:1])


def batch_prefix(s: Statement, names: list[str]) -> int:
    """How many of the statement's outermost loops are batch loops of its contraction: none
    of its rows, columns or reduction, and indexing its result (each batch its own product;
    an LSTM's time loop indexes none of its recurrent product's gates: kept shared, the
    product packed W_hh at every step: lstm 0.76x)."""
    c = match_contraction(s, names)
    if c is None:
        return 0
    batch = set().union(*(ir.variables(x) for x in c.out.indices)) - {c.i, c.j, c.k}
    return next((n for n, var in enumerate(names) if var not in batch), len(names))


def alone_below_batch(placements, s: Statement, names: list[str]) -> bool:
    """Whether a contraction shares only its batch loops (`batch_prefix`) with other
    statements: its register tiles then sit inside them."""
    shared = batch_prefix(s, names)
    mine = placements[s.name].order[:shared + 1]
    return 0 < shared < len(names) and sum(
        1 for p in placements.values() if p.order[:shared + 1] == mine) == 1
