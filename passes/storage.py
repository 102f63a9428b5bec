"""Storage reduction: a temporary whose every use sits inside shared (fused) loops, one
iteration at a time, shrinks to what one iteration needs and becomes a local buffer.

softmax fused over rows: `m[i] max= X[i, j]` ... `Y[i, j] = e[i, j] / s[i]` all inside loop i;
`m` and `s` become scalars declared in the body of loop i, `e` one row. The dimension indexed by
a shared loop is dropped when no dependence on the temporary crosses iterations of that loop.
"""

from __future__ import annotations

from dataclasses import replace

import islpy as isl

from loopweave.ir import expr as ir
from loopweave.ir import isl_helpers
from loopweave.ir.dependences import Dependence, Dependences
from loopweave.ir.kernel import KernelIR, Statement, Tensor
from loopweave.passes.placement import Placement


def reduce_storage(kernel: KernelIR, placements: dict[str, Placement]
                   ) -> tuple[KernelIR, dict[tuple[int, ...], list[str]]]:
    """`kernel` with fused temporaries turned into locals, and where each local lives (the
    sibling-position prefix of the loop whose body declares it)."""
    deps: list[Dependence] | None = None
    locals_at: dict[tuple[int, ...], list[str]] = {}
    shrunk: dict[str, tuple[int, ...]] = {}  # tensor -> dimensions dropped
    for t in kernel.temporaries:
        users = [s for s in kernel.statements if _accesses(s, t.name)]
        if len(users) < 2:
            continue
        dropped = _droppable_dims(t, users, placements)
        deps = deps if deps is not None else Dependences.of(kernel).all
        if not dropped:
            depth = private_depth(kernel, t, placements, deps)
            if depth is not None and _under_parallel_loop(users, placements, depth):
                shrunk[t.name] = ()  # privatized: declared whole in that loop's body
                locals_at.setdefault(placements[users[0].name].order[:depth + 1], []).append(
                    t.name)
            continue
        depths = sorted(set(dropped.values()))
        # A value read must be written in the same iteration of every loop around the
        # declaration, not only of the loops that index the dropped dimensions: `t[p]`
        # written at r == 0 and read at every r, fused over (r, p), would lose its value
        # with each r. Other dependences vanish with a fresh local per iteration.
        around = list(range(max(depths) + 1))
        if not all(_within_one_iteration(kernel, d, placements,
                                         around if d.kind == "flow" else depths)
                   for d in deps if d.tensor == t.name):
            continue
        shrunk[t.name] = tuple(sorted(dropped))
        locals_at.setdefault(placements[users[0].name].order[:max(depths) + 1], []).append(t.name)
    if not shrunk:
        return kernel, {}
    return _rewrite(kernel, shrunk), locals_at


#: Most dimensions of a privatized temporary (a local array on each thread's stack: a row,
#: as softmax's fused rows, not a matrix).
PRIVATE_DIMS = 1


def private_depth(kernel: KernelIR, t: Tensor, placements: dict[str, Placement],
                  deps: list[Dependence]) -> int | None:
    """The depth of the innermost loop that runs every statement using temporary `t`, if `t`
    can be private to each iteration of it and the loops outside (privatization): no value
    of `t` flows from one iteration to another (doitgen's `sum[p]`, rewritten for each r
    and q before it is read). The other dependences on `t` then vanish with a copy of `t`
    per iteration, so those loops may run in parallel; `reduce_storage` privatizes it where
    one of them is marked parallel. None where it cannot (or `t` has more than PRIVATE_DIMS
    dimensions)."""
    users = [s for s in kernel.statements if _accesses(s, t.name)]
    if len(t.shape) > PRIVATE_DIMS or len(users) < 2 or any(s.name not in placements
                                                            for s in users):
        return None
    shared = _shared_loops([placements[s.name] for s in users])
    if shared == 0:
        return None
    depths = list(range(shared))
    flows = [d for d in deps if d.tensor == t.name and d.kind == "flow"]
    if not all(_within_one_iteration(kernel, d, placements, depths) for d in flows):
        return None
    return shared - 1


def private_dependences(kernel: KernelIR, placements: dict[str, Placement],
                        depth: int) -> isl.UnionMap:
    """The dependences on the temporaries that `reduce_storage` makes private to each
    iteration of the loop at `depth` (or of a loop inside it): a parallel loop there carries
    them without harm, each thread having its own copy."""
    result = isl.UnionMap.empty(kernel.context.get_space())
    deps = Dependences.of(kernel).all
    for t in kernel.temporaries:
        found = private_depth(kernel, t, placements, deps)
        if found is not None and found >= depth:
            for d in deps:
                if d.tensor == t.name:
                    result = result.union(isl.UnionMap.from_map(d.relation))
    return result


def _under_parallel_loop(users: list[Statement], placements: dict[str, Placement],
                         depth: int) -> bool:
    """Whether a loop marked parallel (the C targets' threads) runs the users of a temporary
    at `depth` or outside it: privatization is what lets it carry the temporary's
    dependences (the GPU planners keep their own rules for locals, and bind instead)."""
    # A parallel mark names one statement, but its loop runs every statement fused in it.
    p = placements[users[0].name]  # the users share their loops down to `depth`
    return any(q.order[:d + 1] == p.order[:d + 1] and len(q.loops) > d
               and q.loops[d].kind == "parallel"
               for d in range(depth + 1) for q in placements.values())


def _shared_loops(ps: list[Placement]) -> int:
    """How many outer loops the placements `ps` all share."""
    shared = min(len(p.loops) for p in ps)
    for d in range(shared):
        if len({p.order[:d + 1] for p in ps}) > 1:
            return d
    return shared


def _accesses(s: Statement, tensor: str) -> list[ir.Load]:
    return [a for a in (s.lhs, *ir.loads(s.rhs)) if a.tensor == tensor]


def _droppable_dims(t: Tensor, users: list[Statement],
                    placements: dict[str, Placement]) -> dict[int, int]:
    """dimension -> depth of the shared loop that indexes it in every access."""
    shared = _shared_loops([placements[s.name] for s in users])
    dropped = {}
    for k in range(len(t.shape)):
        for d in range(shared):
            if all(a.indices[k] == placements[s.name].loops[d].expr
                   for s in users for a in _accesses(s, t.name)):
                dropped[k] = d
                break
    return dropped


def _within_one_iteration(kernel: KernelIR, dep: Dependence, placements: dict[str, Placement],
                          depths: list[int]) -> bool:
    """Do source and sink of `dep` always run in the same iteration of the loops at `depths`?"""
    def loop_values(stmt: str) -> isl.Map:
        s = kernel.statement[stmt]
        exprs = tuple(placements[stmt].loops[d].expr for d in depths)
        return isl_helpers.make_map(kernel.params, stmt, s.iterators, "L", exprs)

    pairs = dep.relation.apply_domain(loop_values(dep.source)).apply_range(loop_values(dep.sink))
    return pairs.is_subset(isl.Map.identity(pairs.get_space()))


def _rewrite(kernel: KernelIR, shrunk: dict[str, tuple[int, ...]]) -> KernelIR:
    def shrink(e: ir.Expr) -> ir.Expr | None:
        if isinstance(e, ir.Load) and e.tensor in shrunk:
            keep = tuple(x for k, x in enumerate(e.indices) if k not in shrunk[e.tensor])
            return replace(e, indices=keep)
        return None

    statements = tuple(replace(s, lhs=ir.rewrite(s.lhs, shrink), rhs=ir.rewrite(s.rhs, shrink))
                       for s in kernel.statements)
    local = tuple(replace(t, shape=tuple(d for k, d in enumerate(t.shape)
                                         if k not in shrunk[t.name]), role="local")
                  for t in kernel.temporaries if t.name in shrunk)
    temporaries = tuple(t for t in kernel.temporaries if t.name not in shrunk)
    return replace(kernel, statements=statements, temporaries=temporaries,
                   locals=kernel.locals + local)
