"""Index-set splitting: a statement whose write and one of its reads of the same tensor meet
on one hyperplane of a loop runs as the pieces before, on and after that hyperplane.

    for k in 0:N {                                   for k in 0:N {
        path[i, j] min= path[i, k] + path[k, j]  ->      i < k:  j < k, j == k, j > k
    }                                                    i == k: j < k, j == k, j > k
                                                         i > k:  j < k, j == k, j > k
                                                     }

floyd-warshall's instance j = k writes path[i, k], which every other j reads: the j loop
carries that dependence, so it cannot be a vector loop, and the i loop carries the same through
path[k, j], so it cannot run in parallel. In each piece neither is carried: the write meets the
read only in the piece on the hyperplane. The pieces run in program order (consecutive loops
in the statement's place), so splitting is always legal; the default then finds a vector loop
and a parallel loop in them.

A statement is split at loop `v` where one read of the tensor it writes differs from the write
in one index only, `v` against an expression `e` of the loops outside `v` (and the sizes):
they meet on `v == e`. Only where the statement is the only one in its loops from `v` inward
(so no other statement's order relative to it changes), `v` is not a DSL `for` loop, and at
least two of the pieces `v < e`, `v == e`, `v > e` hold instances. The first piece keeps the
statement's name; the others are `<name>_<v>_at` and `<name>_<v>_after`. Runs on the
default path with the rest of passes/normalize.py (it adds statements).
"""

from __future__ import annotations

from dataclasses import replace

import islpy as isl

from loopweave.errors import ScheduleError
from loopweave.ir import expr as ir
from loopweave.ir import isl_helpers
from loopweave.ir.affine import linear
from loopweave.ir.kernel import KernelIR, Statement
from loopweave.ir.types import BOOL
from loopweave.passes import placement as pl

#: The pieces of a split, by their relation of `v` to `e`, with the suffix of their names.
PIECES = (("<", ""), ("==", "at"), (">", "after"))


def split_index_sets(kernel: KernelIR) -> KernelIR:
    """`kernel` with its statements split where a write meets a read on one hyperplane of a
    loop (see the module docstring); the same object when nothing splits."""
    statements = list(kernel.statements)
    placements = pl.initial_placements(kernel)
    k = 0
    while k < len(statements):
        split = _split(kernel, statements[k], placements)
        if split is None:
            k += 1
            continue
        depth, pieces = split
        _place(placements, statements[k], pieces, depth)
        statements[k:k + 1] = pieces  # each piece may split again at another loop
    if len(statements) == len(kernel.statements):
        return kernel
    result = replace(kernel, statements=tuple(statements))
    return result.with_schedule(pl.build_tree(result, placements))


def _split(kernel: KernelIR, s: Statement,
           placements) -> tuple[int, list[Statement]] | None:
    """The depth of the loop and the non-empty pieces of `s` at its first hyperplane that
    gives two or more, or None."""
    if s.is_init or s.data_ranges:
        return None
    for depth, v, e in _hyperplanes(s):
        if _shares_loop(placements, s, depth):
            continue
        pieces = [piece for _, piece in split_pieces(kernel, s, ir.Var(v), e, v,
                                                     set(placements))]
        if len(pieces) >= 2:
            return depth, pieces
    return None


def split_pieces(kernel: KernelIR, s: Statement, left: ir.Expr, right: ir.Expr, label: str,
                 taken: set[str]) -> list[tuple[str, Statement]]:
    """The non-empty pieces of `s` where `left` <, == and > `right` (expressions of its
    iterators), with their relations: the first keeps the statement's name, the others are
    `<name>_<label>_at` and `<name>_<label>_after` (made unique against `taken`, which they
    join)."""
    pieces = []
    for relation, suffix in PIECES:
        cond = ir.Binary(relation, left, right, BOOL)
        domain = s.domain.intersect(isl_helpers.make_set(
            kernel.params, s.name, s.iterators, [cond]))
        if domain.intersect_params(kernel.context).is_empty():
            continue
        name = _fresh(taken, f"{s.name}_{label}_{suffix}") if pieces else s.name
        pieces.append((relation, replace(s, name=name, domain=domain.set_tuple_name(name))))
    return pieces


def separate(kernel: KernelIR, placements: dict[str, pl.Placement], names: list[str],
             loop: str, other: str) -> KernelIR:
    """`kernel` with each statement of `names` split where its loop `loop` is less than, equal
    to and greater than its loop `other` (placement loops: `i_o` and `k_o` after tiles), into
    the pieces of `split_pieces`, each with the statement's loops: the first in its place, the
    others each in a copy of loop `loop` right after it (`placements`, updated in place). The
    program order, against which the dependences are computed, is the statement's own: each
    instance keeps its time. The same kernel where no statement has two pieces."""
    statements = list(kernel.statements)
    origin = {s.name: s.name for s in statements}
    for name in names:
        p = placements[name]
        loops = {lp.name: lp.expr for lp in p.loops}
        missing = [n for n in (loop, other) if n not in loops]
        if missing:
            raise ScheduleError(f"separate {name}: no loop named {missing[0]!r}; its loops are "
                                f"{', '.join(loops)}")
        at = next(k for k, s in enumerate(statements) if s.name == name)
        if statements[at].data_ranges:
            raise ScheduleError(f"separate {name}: its range is read from tensors, so its "
                                f"instances cannot be split by loops")
        pieces = [piece for _, piece in split_pieces(kernel, statements[at], loops[loop],
                                                     loops[other], loop, set(placements))]
        if len(pieces) < 2:
            continue
        _copies(placements, pieces, p.names().index(loop))
        statements[at:at + 1] = pieces
        origin.update({piece.name: origin[name] for piece in pieces})
    if len(statements) == len(kernel.statements):
        return kernel
    result = replace(kernel, statements=tuple(statements))
    return result.with_schedule(_program_order(kernel, result, origin))


def _copies(placements: dict[str, pl.Placement], pieces: list[Statement], depth: int) -> None:
    """The first piece keeps its statement's place; each other runs alone in a copy of the
    loop at `depth` (and those inside it), right after the statement's, in order (later
    siblings there move along; in place)."""
    p = placements[pieces[0].name]
    prefix, here = p.order[:depth], p.order[depth]
    _make_room(placements, prefix, here, len(pieces) - 1)
    for k, piece in enumerate(pieces[1:], 1):
        order = (*prefix, here + k) + (0,) * (len(p.order) - depth - 1)
        placements[piece.name] = pl.Placement(p.loops, order)


def _program_order(kernel: KernelIR, split: KernelIR, origin: dict[str, str]) -> isl.Schedule:
    """`kernel`'s program-order schedule over the statements of `split`: each piece's instance
    at the time of the instance of the statement it comes from."""
    to_origin = isl.UnionMap.empty(kernel.context.get_space())
    for s in split.statements:
        same = tuple(ir.Var(v) for v in s.iterators)
        to_origin = to_origin.union(isl.UnionMap.from_map(isl_helpers.make_map(
            kernel.params, s.name, s.iterators, origin[s.name], same).intersect_domain(s.domain)))
    return kernel.schedule.pullback_union_pw_multi_aff(
        isl.UnionPwMultiAff.from_union_map(to_origin))


def _hyperplanes(s: Statement):
    """(depth, v, e) per read of the written tensor that differs from the write only in one
    index, an iterator `v` (not a DSL `for` loop's) against an expression `e` of the
    iterators outside it: the instances with v == e write what the others read. Outer loops
    first."""
    found = []
    for read in ir.loads(s.rhs):
        if read.tensor != s.lhs.tensor or len(read.indices) != len(s.lhs.indices):
            continue
        differ = [(a, b) for a, b in zip(s.lhs.indices, read.indices, strict=True) if a != b]
        if len(differ) != 1:
            continue
        for x, y in (differ[0], differ[0][::-1]):
            if not isinstance(x, ir.Var) or x.name not in s.iterators[s.enclosing:]:
                continue
            depth = s.iterators.index(x.name)
            if ir.variables(y) & set(s.iterators[depth:]) or not _affine(y):
                continue
            found.append((depth, x.name, y))
    return sorted(found, key=lambda f: f[0])


def _affine(e: ir.Expr) -> bool:
    """Whether `e` is affine in variables and sizes (isl can read it)."""
    return all(term is None or isinstance(term, (ir.Var, ir.Param)) for term in linear(e))


def _shares_loop(placements, s: Statement, depth: int) -> bool:
    """Whether another statement runs inside `s`'s loop at `depth`."""
    prefix = placements[s.name].order[:depth + 1]
    return any(n != s.name and p.order[:depth + 1] == prefix and len(p.loops) > depth
               for n, p in placements.items())


def _place(placements, s: Statement, pieces: list[Statement], depth: int) -> None:
    """The pieces in `s`'s place, one after the other as siblings at `depth` (the loop they
    were split at), later siblings there moved along (in place)."""
    p = placements.pop(s.name)
    prefix, here = p.order[:depth], p.order[depth]
    _make_room(placements, prefix, here, len(pieces) - 1)
    for k, piece in enumerate(pieces):
        order = list(p.order)
        order[depth] = here + k
        placements[piece.name] = pl.Placement(p.loops, tuple(order))


def _make_room(placements: dict[str, pl.Placement], prefix: tuple[int, ...], here: int,
               count: int) -> None:
    """The siblings after position `here` inside the loops `prefix` names moved `count`
    positions along (in place), for pieces to take the positions after `here`."""
    depth = len(prefix)
    for name, q in list(placements.items()):
        if q.order[:depth] == prefix and len(q.order) > depth and q.order[depth] > here:
            order = list(q.order)
            order[depth] += count
            placements[name] = pl.Placement(q.loops, tuple(order))


def _fresh(taken: set[str], name: str) -> str:
    while name in taken:
        name += "_"
    taken.add(name)
    return name
