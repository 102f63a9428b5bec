"""Ranges read from tensors in the loop AST (`where p in row_ptr[i]:row_ptr[i + 1]`; the
frontend side is frontend/data_ranges.py).

The statement's domain bounds `p` by an over-approximation (the extent of what it indexes), so
isl generates `for p in 0:NNZ`. Each instance is guarded by its `DataRange` (`guarded`), which
is always right whatever the schedule did; the translator (ir/codegen.py) then moves the guard
into the loops (`into_bounds`): a guard that does not depend on a loop's variable goes above
that loop, and `lo <= p` / `p < hi` on the loop's own variable become its bounds:
`for p = max(0, row_ptr[i]); p < min(NNZ, row_ptr[i + 1])`. Every target renders that loop,
so the data bounds are read in one place. The bound reads are at affine indices proved in
bounds, and the loop never leaves the over-approximation, so no read goes wild even before
the call-time check (which reports values outside it instead of clamping them silently).
"""

from __future__ import annotations

from loopweave.errors import ScheduleError
from loopweave.ir.expr import Binary, Call, Expr, Var, loads, substitute, variables
from loopweave.ir.kernel import Statement
from loopweave.ir.loops import Block, For, If, Node, loop_end
from loopweave.ir.types import BOOL, INDEX

#: Schedule steps a loop whose range is read from tensors cannot take: tiles, strips and skews
#: need affine bounds, GPU axes and dot tiles a trip count known before the launch. A vector
#: mark is allowed: the C backends read the end once and run whole vectors then a tail
#: (`s[b] += X[b, t] where t in 0:lengths[b]` in SIMD; the CPU default does so).
REFUSED_STEPS = ("tile", "interleave", "skew", "bind", "dot")


def guarded(stmt: Statement, node: Node, mapping: dict[str, Expr]) -> Node:
    """`node` (an instance of `stmt`, its iterators replaced per `mapping`) under the guard of
    the statement's ranges read from tensors; `node` itself when it has none."""
    if not stmt.data_ranges:
        return node
    cond = None
    for r in stmt.data_ranges:
        g = substitute(r.guard(), mapping)
        cond = g if cond is None else Binary("and", cond, g, BOOL)
    return If(cond, node)


def _conjuncts(e: Expr) -> list[Expr]:
    if isinstance(e, Binary) and e.op == "and":
        return _conjuncts(e.left) + _conjuncts(e.right)
    return [e]


def _join(parts: list[Expr]) -> Expr:
    out = parts[0]
    for p in parts[1:]:
        out = Binary("and", out, p, BOOL)
    return out


def into_bounds(loop: For) -> Node:
    """`loop` with the data guards of its body moved out: those free of its variable above it,
    `lo <= var` and `var < hi` into its bounds. Only conditions that read a tensor move (isl's
    own guards stay where isl put them), and only from an `If` that is the loop's whole body."""
    body = loop.body
    while isinstance(body, Block) and len(body.body) == 1:
        body = body.body[0]
    if not isinstance(body, If) or body.orelse is not None or loop.step != 1:
        return loop
    v = loop.var
    above, lower, upper, keep = [], [], [], []
    for c in _conjuncts(body.cond):
        if not loads(c):
            keep.append(c)
        elif v not in variables(c):
            above.append(c)
        elif isinstance(c, Binary) and c.op == "<=" and c.right == Var(v) \
                and v not in variables(c.left):
            lower.append(c.left)
        elif isinstance(c, Binary) and c.op == "<" and c.left == Var(v) \
                and v not in variables(c.right):
            upper.append(c.right)
        else:
            keep.append(c)
    if not (above or lower or upper):
        return loop
    init, cond = loop.init, loop.cond
    for lo in lower:
        init = Call("max", (init, lo), INDEX)
    end = loop_end(loop)
    for hi in upper:
        if end is not None:
            end = Call("min", (end, hi), INDEX)
            cond = Binary("<", Var(v), end, BOOL)
        else:
            cond = Binary("and", cond, Binary("<", Var(v), hi, BOOL), BOOL)
    inner = body.then if not keep else If(_join(keep), body.then)
    result: Node = For(v, init, cond, loop.step, inner, loop.kind)
    return If(_join(above), result) if above else result


def check_step(stmt: Statement, op: str, loop: str) -> None:
    """A ScheduleError if schedule step `op` on `loop` of `stmt` needs affine bounds that a
    range read from tensors does not have."""
    ranged = {r.var: r for r in stmt.data_ranges}
    if op in REFUSED_STEPS and loop in ranged:
        raise ScheduleError(f"{op} on loop {loop!r} of {stmt.name} (line {stmt.pos.line}): its "
                            f"range is read from tensors ({ranged[loop].text}), so it cannot be "
                            "tiled, split, skewed or bound to a GPU axis; the loops "
                            "outside it can")


def check_order(stmt: Statement, loops: list[tuple[str, Expr]]) -> None:
    """A ScheduleError if a loop over a variable whose range is read from tensors would run
    outside a loop its bounds read (`p` outside `i` for `p in row_ptr[i]:row_ptr[i + 1]`):
    its bounds could not be loop bounds, and each of its iterations would test every row.
    `loops`: the statement's loops after a step, outermost first, as (name, expression in the
    statement's iterators)."""
    for r in stmt.data_ranges:
        needs = set().union(*(variables(side) for side in (r.lo, r.hi) if side is not None))
        needs &= set(stmt.iterators)
        mine = [k for k, (_, e) in enumerate(loops) if r.var in variables(e)]
        outer = [k for k, (_, e) in enumerate(loops) if variables(e) & needs]
        if mine and outer and min(mine) <= max(outer):
            inner = loops[max(outer)][0]
            raise ScheduleError(f"loop {loops[min(mine)][0]!r} of {stmt.name} (line "
                                f"{stmt.pos.line}) has its range read from tensors "
                                f"({r.text}) and must stay inside loop {inner!r}, which "
                                "its bounds read")
