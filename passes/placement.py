"""Where each statement runs: its loops (outer to inner) and its place among its siblings.

A `Placement` is the classic "2d+1" schedule of a statement: `order[0]`, loop 0, `order[1]`,
loop 1, ..., `order[d]`. Statements whose `order` agree up to depth d share their loops 0..d-1
(they are fused there); `order[d]` sorts the siblings inside loop d-1. Each loop is an affine
function of the statement's iterators (`i_o` = floor(i / 32), a skewed `j + t`, ...).

Steps edit placements (tile, reorder, skew, fuse, distribute, loop kinds); `build_tree` turns
them into an isl schedule tree with one band per loop and marks for loop kinds and local
buffers.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import islpy as isl

from loopweave.errors import ScheduleError
from loopweave.ir import expr as ir
from loopweave.ir import isl_helpers
from loopweave.ir.kernel import KernelIR, Statement

LOOP_KINDS = ("parallel", "vector", "unroll", "dot")


@dataclass(frozen=True, slots=True)
class Loop:
    name: str
    expr: ir.Expr  # affine in the statement's iterators
    kind: str = "serial"


@dataclass(frozen=True, slots=True)
class Placement:
    loops: tuple[Loop, ...]
    order: tuple[int, ...]  # len(loops) + 1 sibling positions

    def names(self) -> list[str]:
        return [lp.name for lp in self.loops]

    def with_loops(self, loops: list[Loop], inserted_at: int | None = None) -> Placement:
        """New loops; a loop inserted at `inserted_at` gets sibling position 0 inside it."""
        order = list(self.order)
        if inserted_at is not None:
            for _ in range(len(loops) - len(self.loops)):
                order.insert(inserted_at + 1, 0)
        return Placement(tuple(loops), tuple(order))


# -- the initial placements, read from the program-order tree ----------------------------------

def initial_placements(kernel: KernelIR) -> dict[str, Placement]:
    """Each statement's loops and sibling positions in the kernel's program-order schedule."""
    return {s.name: _read(kernel.schedule.get_root(), s, [], [0]) for s in kernel.statements}


def _read(node: isl.ScheduleNode, s: Statement, loops: list[Loop],
          order: list[int]) -> Placement:
    kind = node.get_type()
    if kind == isl.schedule_node_type.band:
        for _ in range(node.band_n_member()):  # the checker's bands follow the iterators
            it = s.iterators[len(loops)]
            loops.append(Loop(it, ir.Var(it)))
            order.append(0)
        return _read(node.child(0), s, loops, order)
    if kind == isl.schedule_node_type.sequence:
        target = isl.UnionSet.from_set(s.domain)
        for i in range(node.n_children()):
            if target.is_subset(node.child(i).filter_get_filter()):
                order[-1] = i
                return _read(node.child(i).child(0), s, loops, order)
        raise AssertionError(f"{s.name} is in no child of the sequence")
    if node.n_children():
        return _read(node.child(0), s, loops, order)
    return Placement(tuple(loops), tuple(order))


def own_loop_count(kernel: KernelIR, s: Statement) -> int:
    """How many of the statement's loops are its own (not enclosing `for` loops)."""
    shared = 0
    mine = initial_placements(kernel)
    for other in kernel.statements:
        if other is s:
            continue
        shared = max(shared, _common_depth(mine[s.name], mine[other.name]))
    return len(mine[s.name].loops) - shared


def _common_depth(a: Placement, b: Placement) -> int:
    depth = 0
    while depth < min(len(a.loops), len(b.loops)) and a.order[depth] == b.order[depth]:
        depth += 1
    return depth


# -- steps ------------------------------------------------------------------------------------

def tile(p: Placement, sizes: dict[str, int]) -> Placement:
    """Each named loop v gets a tile loop v_o = floor(v / size) before the first tiled loop."""
    names = p.names()
    sizes = {v: n for v, n in sizes.items() if v in names}
    if not sizes:
        return p
    outer = [Loop(_fresh(f"{lp.name}_o", names), ir.Binary(
                 "/", lp.expr, ir.Const(sizes[lp.name]), lp.expr.dtype))
             for lp in p.loops if lp.name in sizes]
    first = min(names.index(v) for v in sizes)
    return p.with_loops([*p.loops[:first], *outer, *p.loops[first:]], inserted_at=first)


def interleave(p: Placement, loop: str, lanes: int) -> Placement:
    """Loop v (expr e) becomes v_lane = e mod lanes, then v_round = floor(e / lanes) inside it:
    lane l runs iterations l, l + lanes, l + 2 lanes, ... (a GPU thread's share, coalesced)."""
    names = p.names()
    if loop not in names:
        return p
    at = names.index(loop)
    e = p.loops[at].expr
    lane = Loop(_fresh(f"{loop}_lane", names), ir.Binary("%", e, ir.Const(lanes), e.dtype))
    round_ = Loop(_fresh(f"{loop}_round", names), ir.Binary("/", e, ir.Const(lanes), e.dtype))
    return p.with_loops([*p.loops[:at], lane, round_, *p.loops[at + 1:]], inserted_at=at)


def reorder(p: Placement, wanted: tuple[str, ...]) -> Placement:
    """The named loops in this order, in the slots they occupy now."""
    names = p.names()
    wanted = [n for n in wanted if n in names]
    slots = sorted(names.index(n) for n in wanted)
    loops = list(p.loops)
    for slot, name in zip(slots, wanted, strict=True):
        loops[slot] = p.loops[names.index(name)]
    return p.with_loops(loops)


def skew(p: Placement, loop: str, by: str, factor: int, offset: int = 0) -> Placement:
    """loop := loop + factor * by + offset (a wavefront: lets a stencil's time loop be tiled)."""
    names = p.names()
    if loop not in names or by not in names:
        return p
    lp, other = p.loops[names.index(loop)], p.loops[names.index(by)]
    skewed = ir.Binary("+", lp.expr, ir.Binary("*", ir.Const(factor), other.expr, lp.expr.dtype),
                       lp.expr.dtype)
    if offset:
        skewed = ir.Binary("+", skewed, ir.Const(offset), lp.expr.dtype)
    return p.with_loops([replace(x, expr=skewed) if x.name == loop else x for x in p.loops])


def set_kind(p: Placement, loop: str, kind: str) -> Placement:
    return p.with_loops([replace(x, kind=kind) if x.name == loop else x for x in p.loops])


def fuse(placements: dict[str, Placement], group: list[str], depth: int) -> None:
    """The statements in `group` share their outermost `depth` loops (in place).

    Statements already fused with a member at that depth come along; the siblings inside the
    shared loops keep their program order.
    """
    for name in group:
        if len(placements[name].loops) < depth:
            raise ScheduleError(f"fuse at depth {depth}: {name} has only "
                                f"{len(placements[name].loops)} loop(s)")
    first = min(group, key=lambda n: placements[n].order)
    prefixes = {placements[n].order[:depth] for n in group}
    members = [n for n, p in placements.items() if p.order[:depth] in prefixes
               and len(p.loops) >= depth]
    # Sibling positions inside the shared loops: by the old position up to this depth.
    keys = sorted({placements[n].order[:depth + 1] for n in members})
    rank = {k: i for i, k in enumerate(keys)}
    target = placements[first].order[:depth]
    for n in members:
        p = placements[n]
        order = (*target, rank[p.order[:depth + 1]], *p.order[depth + 1:])
        placements[n] = Placement(p.loops, order)


def order(placements: dict[str, Placement], groups: list[list[str]]) -> None:
    """The sibling positions of `groups` (statement names per target), inside the loops all of
    them share, permuted so that the groups run in the given order (in place)."""
    members = [n for g in groups for n in g]
    depth = min(_common_depth(placements[a], placements[b]) for a in members for b in members
                if a != b) if len(set(members)) > 1 else 0
    prefix = placements[members[0]].order[:depth]
    slots = []
    for g in groups:
        here = {placements[n].order[depth] for n in g if len(placements[n].order) > depth}
        if len(here) != 1:
            raise ScheduleError(f"order: {', '.join(g)} are not one sibling inside the loops "
                                f"they share with the other targets; distribute them first")
        slots.append(here.pop())
    if len(set(slots)) != len(slots):
        raise ScheduleError(f"order: two targets share one sibling position ({', '.join(members)}"
                            f"); distribute their loop first")
    moved = dict(zip(slots, sorted(slots), strict=True))
    for n, p in list(placements.items()):
        if p.order[:depth] == prefix and len(p.order) > depth and p.order[depth] in moved:
            order = list(p.order)
            order[depth] = moved[order[depth]]
            placements[n] = Placement(p.loops, tuple(order))


def distribute(placements: dict[str, Placement], name: str, depth: int) -> None:
    """Split the loop at `depth` of statement `name` before it (loop fission, in place): the
    statement and its later siblings in that loop run in a second copy of the loop, right
    after the first."""
    p = placements[name]
    prefix, here, cut = p.order[:depth], p.order[depth], p.order[depth + 1]
    if cut == 0:
        return  # nothing runs before it in that loop
    for n, q in list(placements.items()):
        if q.order[:depth] != prefix:
            continue
        order = list(q.order)
        if order[depth] > here:
            order[depth] += 1
        elif order[depth] == here and order[depth + 1] >= cut:
            order[depth] += 1
            order[depth + 1] -= cut
        placements[n] = Placement(q.loops, tuple(order))


def insert_before(placements: dict[str, Placement], anchor: str,
                  added: list[Statement]) -> None:
    """Place the statements `added`, in order, at the top level, right before the top-level
    loop or statement that holds statement `anchor` (in place: later top-level siblings
    move), each in loops over its own iterators (what normalizations add: copies)."""
    here = placements[anchor].order[0]
    for name, q in list(placements.items()):
        if q.order[0] >= here:
            placements[name] = Placement(q.loops, (q.order[0] + len(added), *q.order[1:]))
    for n, t in enumerate(added):
        own = [Loop(v, ir.Var(v)) for v in t.iterators]
        placements[t.name] = Placement(tuple(own), (here + n, *[0] * len(own)))


def place_after(placements: dict[str, Placement], anchor: str, added: Statement,
                depth: int) -> None:
    """Place `added` right after statement `anchor` inside `anchor`'s outer `depth` loops,
    in loops of its own over the rest of its iterators (none where `depth` is all of them),
    shifting the later siblings there (in place): a normalization's new statement (a scaling
    after a reduction, a sum's next term)."""
    p = placements[anchor]
    prefix, here = p.order[:depth], p.order[depth]
    for name, q in list(placements.items()):
        if q.order[:depth] == prefix and len(q.order) > depth and q.order[depth] > here:
            order = list(q.order)
            order[depth] += 1
            placements[name] = Placement(q.loops, tuple(order))
    own = [Loop(v, ir.Var(v)) for v in added.iterators[depth:]]
    placements[added.name] = Placement((*p.loops[:depth], *own),
                                       (*prefix, here + 1, *[0] * len(own)))


def fresh_name(name: str, taken: set[str]) -> str:
    """`name`, with `_`s appended while `taken` has it; the result is added to `taken`."""
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def line_padded(shape: tuple[ir.Expr, ...], dtype) -> tuple[ir.Expr, ...]:
    """The shape of a copy a pass adds: `shape` with its last extent one cache line longer
    (the extra elements are never read or written). Rows of a power-of-two number of lines
    (256 or 512 channels: 1 or 2 KiB; an LSTM's 4 * 256 gates: 4 KiB) fall into a few sets
    of the caches, and a register tile reading down such a copy's rows thrashes them."""
    return (*shape[:-1], ir.add(shape[-1], ir.Const(64 * 8 // dtype.bits)))


def _fresh(name: str, taken: list[str]) -> str:
    """`name`, or `name` with more `o`s if a loop already has it (tiling a tile loop)."""
    while name in taken:
        name += "o"
    return name


# -- placements -> isl schedule tree ------------------------------------------------------------

def build_tree(kernel: KernelIR, placements: dict[str, Placement],
               locals_at: dict[tuple[int, ...], list[str]] | None = None,
               caches_at: dict[tuple[int, ...], list[str]] | None = None) -> isl.Schedule:
    """The schedule tree of `placements`: one band per loop, a sequence per set of siblings.

    `locals_at` maps a sibling-position prefix (the loops it names) to local buffers declared
    inside the innermost of those loops (a "local:" mark under its band); `caches_at` to the
    tags of cache_read/cache_write buffers around that loop ("cache:" marks above it).
    """
    _check_unique(kernel, placements)
    marks = {"local": locals_at or {}, "cache": caches_at or {}}
    return _group(kernel, placements, list(kernel.statements), 0, marks)


def _group(kernel: KernelIR, placements: dict[str, Placement], stmts: list[Statement],
           depth: int, marks: dict) -> isl.Schedule:
    parts = []
    stmts = sorted(stmts, key=lambda s: placements[s.name].order[depth])
    for _, members in itertools.groupby(stmts, key=lambda s: placements[s.name].order[depth]):
        members = list(members)
        if len(placements[members[0].name].loops) == depth:
            parts.append(isl.Schedule.from_domain(isl.UnionSet.from_set(members[0].domain)))
            continue
        child = _group(kernel, placements, members, depth + 1, marks)
        prefix = placements[members[0].name].order[:depth + 1]
        if prefix in marks["local"]:
            child = _mark(child, "local:" + ",".join(marks["local"][prefix]))
        loops = [(s, placements[s.name].loops[depth]) for s in members]
        member = [(s.name, s.iterators, lp.expr) for s, lp in loops]
        child = child.insert_partial_schedule(isl_helpers.band(kernel.params, [member]))
        marked = [(s, lp) for s, lp in loops if lp.kind != "serial"]
        if marked:
            s, lp = marked[0]
            child = _mark(child, f"{lp.kind}:{s.name}:{lp.name}")
        for tag in marks["cache"].get(prefix, ()):
            child = _mark(child, f"cache:{tag}")
        parts.append(child)
    result = parts[0]
    for part in parts[1:]:
        result = result.sequence(part)
    return result


def _mark(schedule: isl.Schedule, name: str) -> isl.Schedule:
    """`schedule` with a mark node on top (under the domain)."""
    return schedule.get_root().child(0).insert_mark(isl.Id(name)).get_schedule()


def _check_unique(kernel: KernelIR, placements: dict[str, Placement]) -> None:
    """Two statements in the same place, or one ending where another has a loop, is a bug."""
    for a, b in itertools.combinations(kernel.statements, 2):
        pa, pb = placements[a.name], placements[b.name]
        d = _common_depth(pa, pb)
        if d == min(len(pa.loops), len(pb.loops)) and pa.order[d] == pb.order[d]:
            raise ScheduleError(f"statements {a.name} and {b.name} would be placed in the same "
                                "slot of the loop nest; fuse at a smaller depth")
