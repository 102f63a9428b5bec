"""Loop-AST side of cache_read / cache_write (see passes/cache.py): declare the buffer, copy the
footprint in before the loop and back after it, and redirect the loop's accesses.

For a written buffer (an accumulator tile) the loop is also versioned for full tiles: when
every inner loop whose bounds depend only on enclosing loops runs its full extent, a copy with
constant trip counts from 0 runs instead (what lets the C compiler keep the tile in registers);
the general loop nest handles the partial tiles at the edges.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import replace

from loopweave.ir import expr as ir
from loopweave.ir.affine import coefficient, constant_value, from_linear, linear, simplify
from loopweave.ir.kernel import CacheSpec, Tensor
from loopweave.ir.loops import (
    Block,
    Buffer,
    For,
    If,
    Node,
    Scope,
    Store,
    full_extent,
    max_terms,
    only_upper_bounds,
    upper_bound,
    upper_bounds,
    walk,
)
from loopweave.ir.strips import is_accumulator_nest, overlapped_tile, strip_partial_tiles
from loopweave.ir.types import BOOL, INDEX

#: Elements a copy into a buffer needs to run in parallel (where the loop it feeds does): a
#: 64 KB f32 box, about as long to copy as an OpenMP fork takes.
PARALLEL_COPY_ELEMENTS = 1 << 14


def lower_cache(spec: CacheSpec, loop: Node, tensor: Tensor,
                panels: Sequence[CacheSpec] = (), boxed: frozenset[str] | set[str] = frozenset()
                ) -> Node:
    """`loop` (the loop marked for `spec`) with its footprint of `tensor` in a local buffer.

    A full tile of an accumulator nest skips the buffer: its registers (see
    backends/register_tile.py) load from and store to the tensor itself, so only the edge
    tiles pay for the copies in and out. `panels`: micro-panel buffers of loops around this
    one (`CacheSpec.panel`), whose reads inside are redirected first, while the tile's column
    loop still runs within one panel (the edge strips start it at opaque offsets, where the
    run and the position in it could no longer be told apart). `boxed`: tensors read
    through buffers of fixed boxes (the caches around, local buffers), whose reads an edge
    tile pulled back must not move."""
    for outer in panels:
        loop = _redirect(loop, outer)
    if not _accesses(loop, spec.tensor) and not _accesses(loop, spec.buffer.name):
        # A piece of the loop that isl split off for other statements: no buffer (its outer
        # loops may be gone too, fixed in that piece, and the offsets would name them).
        return loop
    body = _redirect(loop, spec)
    outer = {f"c{k}" for k in range(spec.depth)}
    if spec.copy_out:
        tile_vars = {v for n in walk(loop) if isinstance(n, Store) and n.tensor == spec.tensor
                     for x in n.indices for v in ir.variables(x)}
        # (a buffer laid out along another dimension than the tensor's last, acc[x][k] for
        # Y[k, x], keeps its copies: the registers' rows run along the buffer's)
        along_last = not spec.layout or spec.layout[-1] == len(spec.layout) - 1
        split = triangle_split(loop, tile_vars) if spec.fill is None and along_last else None
        if split is not None:
            full, triangle, triangle_first = split
            # (an empty full range: the tile's rows or columns may pass the tensor's edge,
            # which only the reduction's bound kept them from)
            conds = [ir.Binary("<", full.init, upper_bound(full.cond, full.var), BOOL)]
            direct = _constant_trip_counts(full, outer, conds, tile_vars)
            if is_accumulator_nest(direct, outer):
                pieces = (triangle, direct) if triangle_first else (direct, triangle)
                return If(_all(conds), Block(pieces),
                          _edge_tile(spec, tensor, loop, body, outer, boxed))
        conds: list[ir.Expr] = []
        direct = _constant_trip_counts(loop, outer, conds, tile_vars)
        if conds and along_last and is_accumulator_nest(direct, outer):
            if spec.fill is not None:  # the registers start from it (register_tile.tile_fill)
                fill = _tile_fill(direct, spec, tensor)
                direct = Block((fill if spec.fill_when is None else If(spec.fill_when, fill),
                                direct))
            return If(_all(conds), direct, _edge_tile(spec, tensor, loop, body, outer, boxed))
        body = _version_full_tiles(body, outer, tile_vars)
    return _buffered(spec, tensor, body)


def _edge_tile(spec: CacheSpec, tensor: Tensor, loop: Node, body: Node, outer: set[str],
               boxed: frozenset[str] | set[str]) -> Node:
    """A partial tile: in the buffer, its edges in strips, or where the tile may be pulled
    back over the one before it (`CacheSpec.overlap_from`) and the sums start from the fill,
    a whole tile so pulled back (`strips.overlapped_tile`), the buffer only where even that
    does not fit."""
    edge = _buffered(spec, tensor, strip_partial_tiles(body, outer))
    overlapped = overlapped_tile(loop, outer, spec.overlap_from, boxed) \
        if spec.overlap_from and spec.fill is not None else None
    if overlapped is None:
        return edge
    tile, inside = overlapped
    when = inside if spec.fill_when is None else _all([spec.fill_when, inside])
    return If(when, Block((_tile_fill(tile, spec, tensor), tile)), edge)


def _tile_fill(nest: Node, spec: CacheSpec, tensor: Tensor) -> Node:
    """The elements of full tile `nest` (an accumulator nest with constant trip counts) set
    to `spec.fill`, over the nest's loops that index the tile: constant trip counts, which
    the C compiler unrolls into a few vector stores (over the box clipped to the tensor, with
    min and max bounds, depthwise conv2d's 4 x 32 tiles ran 2.5% slower than zeroing Y in a
    pass of its own)."""
    loops = []
    while isinstance(nest, For):
        loops.append(nest)
        nest = nest.body
    indexing = set().union(*(ir.variables(x) for x in nest.indices))
    tile = [loop for loop in loops if loop.var in indexing]  # (an int8 tile's reduction runs
    # between its rows and columns loops)
    if any((ir.variables(loop.init) | ir.variables(loop.cond)) & {lp.var for lp in loops}
           - {lp.var for lp in tile} for loop in tile):
        return _copy(spec, tensor, into_buffer=False, fill=spec.fill)
    node: Node = Store(nest.tensor, nest.indices, spec.fill, None, f"fill_{spec.tag}")
    for loop in reversed(tile):
        node = replace(loop, body=node, kind="serial")
    return node


def _accesses(node: Node, tensor: str) -> bool:
    """Whether a store inside `node` writes or reads `tensor`."""
    return any(isinstance(n, Store) and (n.tensor == tensor or any(
        ld.tensor == tensor for e in (n.value, *n.indices) for ld in ir.loads(e)))
        for n in walk(node))


def _buffered(spec: CacheSpec, tensor: Tensor, body: Node) -> Scope:
    """`body` inside the buffer's scope, between the copies in and out."""
    parts = []
    if spec.copy_in:
        copy = _copy(spec, tensor, into_buffer=True)
        if spec.fill is not None:
            fill = _copy(spec, tensor, into_buffer=True, fill=spec.fill)
            copy = fill if spec.fill_when is None else If(spec.fill_when, fill, copy)
        # Packing before a parallel loop (matmul's B panels, 256 KB each) runs on one thread
        # while the others wait at the loop: parallel too where it is large enough to pay
        # for a fork (2 threads, 1024^3 and 2048^3 f32: 3-7% faster, by hand).
        if isinstance(body, For) and body.kind == "parallel" and isinstance(copy, For) \
                and math.prod(spec.sizes) >= PARALLEL_COPY_ELEMENTS:
            copy = replace(copy, kind="parallel")
        parts.append(copy)
    parts.append(body)
    if spec.copy_out:
        parts.append(_copy(spec, tensor, into_buffer=False))
    b = spec.buffer
    return Scope((Buffer(b.name, b.dtype, b.shape),), Block(tuple(parts)))


def _all(conds: list[ir.Expr]) -> ir.Expr:
    cond = conds[0]
    for c in conds[1:]:
        cond = ir.Binary("and", cond, c, BOOL)
    return cond


def _shift(spec: CacheSpec, indices: tuple[ir.Expr, ...], loops: dict[str, For]
           ) -> tuple[ir.Expr, ...]:
    """The buffer indices of a tensor element, inside the loops `loops` (by variable)."""
    shifted = [simplify(ir.Binary("-", x, off, INDEX))
               for x, off in zip(indices, spec.offsets, strict=True)]
    ordered = _in_layout(spec, shifted)
    if not spec.panel:
        return ordered
    run, at = _split_run(ordered[-1], spec.panel, loops)
    return (run, *ordered[:-1], at)


def _split_run(x: ir.Expr, panel: int, loops: dict[str, For]) -> tuple[ir.Expr, ir.Expr]:
    """(x // panel, x % panel), affine where a loop variable v of `x` runs within one aligned
    run: x = (v - lo) + rest, v from lo to at most lo + span, rest = panel * q + r with q
    affine and 0 <= r, r + span < panel. Then x // panel = q and x % panel = r + v - lo: a
    register tile's column loop over one run reads its panel at stride 1. Elsewhere (edge
    loops of other shapes) floor division and modulo."""
    for v, loop in loops.items():
        if coefficient(x, v) != 1 or loop.step != 1:
            continue
        span = _span(loop)
        rest = linear(simplify(ir.Binary("+", ir.Binary("-", x, ir.Var(v), INDEX), loop.init,
                                         INDEX)))
        r = rest.get(None, 0) % panel
        if span is None or r + span >= panel or any(
                c % panel for k, c in rest.items() if k is not None):
            continue
        q = {k: (c - r) // panel if k is None else c // panel for k, c in rest.items()}
        return (from_linear(q), simplify(ir.Binary("+", ir.Const(r), ir.Binary(
            "-", ir.Var(v), loop.init, INDEX), INDEX)))
    return (ir.Binary("/", x, ir.Const(panel), INDEX), ir.Binary("%", x, ir.Const(panel), INDEX))


def _span(loop: For) -> int | None:
    """The most by which `loop`'s variable can exceed its start, if a bound says so."""
    match loop.cond:
        case ir.Binary(op=op, left=ir.Var(name=v), right=bound) if v == loop.var and op in (
                "<", "<="):
            bounds = bound.args if isinstance(bound, ir.Call) and bound.func == "min" \
                else (bound,)
            spans = [constant_value(ir.Binary("-", b, loop.init, INDEX)) for b in bounds]
            known = [s - (op == "<") for s in spans if s is not None]
            return min(known) if known else None
    return None


def _in_layout(spec: CacheSpec, per_tensor_dim: list) -> tuple:
    return tuple(per_tensor_dim[d] for d in spec.layout) if spec.layout else \
        tuple(per_tensor_dim)


def _redirect(node: Node, spec: CacheSpec) -> Node:
    """Every access to the tensor inside `node` goes to the buffer instead."""

    def visit(n: Node, loops: dict[str, For]) -> Node:
        def load(e: ir.Expr) -> ir.Expr | None:
            if spec.converted:  # only the reads converting to the buffer's type read it
                if isinstance(e, ir.Cast) and e.dtype == spec.buffer.dtype and isinstance(
                        e.operand, ir.Load) and e.operand.tensor == spec.tensor:
                    return ir.Load(spec.buffer.name, _shift(spec, e.operand.indices, loops),
                                   e.dtype)
                return None
            if isinstance(e, ir.Load) and e.tensor == spec.tensor:
                return ir.Load(spec.buffer.name, _shift(spec, e.indices, loops), e.dtype)
            return None

        match n:
            case Store():
                value = ir.rewrite(n.value, load)
                if n.tensor == spec.tensor:
                    return replace(n, tensor=spec.buffer.name,
                                   indices=_shift(spec, n.indices, loops), value=value)
                return replace(n, value=value)
            case For():
                return replace(n, body=visit(n.body, {**loops, n.var: n}))
        return _map_children(n, lambda child: visit(child, loops))

    return visit(node, {})


def _map_children(n: Node, fn) -> Node:
    match n:
        case For():
            return replace(n, body=fn(n.body))
        case If():
            return replace(n, then=fn(n.then), orelse=None if n.orelse is None else fn(n.orelse))
        case Block():
            return Block(tuple(fn(b) for b in n.body))
        case Scope():
            return replace(n, body=fn(n.body))
    return n


def _copy(spec: CacheSpec, tensor: Tensor, into_buffer: bool, fill: ir.Expr | None = None
          ) -> Node:
    """Loops over the box, clipped to the tensor: buffer <- tensor, or tensor <- buffer (each
    side <- `fill` instead, where given)."""
    names = [f"c{spec.depth}_{d}" for d in range(len(spec.sizes))]
    xs: list[ir.Expr] = [ir.Var(v) for v in names]
    run_var = f"c{spec.depth}_run"
    if spec.panel:  # the cut dimension's index is panel * run + (its loop's variable)
        cut = spec.layout[-1] if spec.layout else len(names) - 1
        xs[cut] = ir.add(ir.mul(ir.Const(spec.panel), ir.Var(run_var)), ir.Var(names[cut]))
    at = _in_layout(spec, [ir.Var(v) for v in names])
    at = (ir.Var(run_var), *at[:-1], at[-1]) if spec.panel else at
    elements = tuple(simplify(ir.Binary("+", off, x, INDEX))
                     for off, x in zip(spec.offsets, xs, strict=True))
    local = ir.Load(spec.buffer.name, at, spec.buffer.dtype)
    outside: ir.Expr = ir.Load(tensor.name, elements, tensor.dtype)
    if spec.converted:  # a converting pack (cache_read dtype)
        outside = ir.Cast(spec.buffer.dtype, outside)
    if fill is not None:
        outside, local = fill, fill
    node: Node = (Store(spec.buffer.name, at, outside, None, f"copy_{spec.tag}")
                  if into_buffer else
                  Store(tensor.name, elements, local, None, f"copy_{spec.tag}"))
    # The cut dimension's loops innermost (runs, then the elements of one run): the tensor
    # is read along its rows, each run written contiguously.
    order = _copy_order(spec)
    if spec.panel:
        order.remove(cut)
        order.append(cut)
    for d in reversed(order):
        off, size, dim = spec.offsets[d], spec.sizes[d], tensor.shape[d]
        start = simplify(ir.Binary("-", ir.Unary("neg", off, INDEX), _run_start(spec, d), INDEX))
        init = ir.Call("max", (ir.Const(0), start), INDEX) if constant_value(start) is None \
            else ir.Const(max(0, constant_value(start)))
        stop = ir.Call("min", (ir.Const(size), simplify(ir.Binary("-", dim, off, INDEX))), INDEX)
        if spec.panel and d == cut:
            stop = ir.Call("min", (ir.Const(spec.panel), simplify(ir.Binary(
                "-", stop, _run_start(spec, d), INDEX))), INDEX)
        node = For(names[d], init, ir.Binary("<", xs[d] if not (spec.panel and d == cut)
                                              else ir.Var(names[d]), stop, BOOL), 1, node,
                   # a converting copy's rows in SIMD (f16 -> f32: vcvtph2ps, 16 at a time;
                   # one at a time, an f16 B packed for 16 x 4096^2 took 13 ms, 5 after)
                   "vector" if spec.converted and d == order[-1] else "serial")
        if spec.panel and d == cut:  # the runs next: each row of the tensor read in order
            runs = -(-spec.sizes[cut] // spec.panel)
            node = For(run_var, ir.Const(0), ir.Binary("<", ir.Var(run_var), ir.Const(runs),
                                                        BOOL), 1, node)
    return node


def _copy_order(spec: CacheSpec) -> list[int]:
    """The copy's loops, outermost first, as tensor dimensions: the tensor's order, except
    that a buffer laid out with another last dimension runs that one just outside the
    tensor's trailing dimensions that the buffer keeps in the same order, so that both sides
    fill and drain a few cache lines at a time (weights F[k, c, r, s] packed [r][s][c][k]:
    c, k, then r, s, one thread, 4.7 MB of weights: 0.55 ms; k outermost, every element a
    line of its own, 2.3 ms)."""
    order = list(range(len(spec.sizes)))
    if not spec.layout or spec.layout[-1] == order[-1]:
        return order
    position = {d: n for n, d in enumerate(spec.layout)}
    run = [order[-1]]
    while len(run) < len(order) - 1 and run[0] - 1 != spec.layout[-1] and \
            position.get(run[0] - 1, -2) == position[run[0]] - 1:
        run.insert(0, run[0] - 1)
    rest = [d for d in order if d not in run and d != spec.layout[-1]]
    return [*rest, spec.layout[-1], *run]


def _run_start(spec: CacheSpec, d: int) -> ir.Expr:
    """Where the copy's run starts along tensor dimension d (0 unless d is the cut one)."""
    cut = (spec.layout[-1] if spec.layout else len(spec.sizes) - 1) if spec.panel else None
    return ir.mul(ir.Const(spec.panel), ir.Var(f"c{spec.depth}_run")) if d == cut \
        else ir.Const(0)


# -- full-tile versioning ------------------------------------------------------------------------

def _version_full_tiles(node: Node, outer: set[str], tile_vars: set[str]) -> Node:
    conds: list[ir.Expr] = []
    full = _constant_trip_counts(node, outer, conds, tile_vars)
    if not conds:
        return node
    return If(_all(conds), full, strip_partial_tiles(node, outer))


def _constant_trip_counts(n: Node, outer: set[str], conds: list[ir.Expr],
                          tile_vars: set[str],
                          ranges: dict[str, tuple[ir.Expr, ir.Expr]] | None = None) -> Node:
    """`n` with each loop over the tile (a variable of `tile_vars`) of constant extent in full
    tiles counting from 0; appends the condition under which each such loop runs its full
    extent. The reduction loops keep their bounds: registers do not need them constant.
    A bound may also use a loop outside it in the tile (`ranges`: its variable -> its first
    value and end): syrk's columns end at the row, `y <= x`, an upper triangle's start there,
    `y >= x`, and trmm's rows at the reduction, `x < k`; the tile is full where such a bound
    is not the binding one even at the outer loop's value that makes it tightest."""
    ranges = ranges or {}
    known = outer | set(ranges)
    if isinstance(n, For) and n.step == 1 and \
            ir.variables(n.init) | ir.variables(n.cond) <= known | {n.var}:
        if n.var not in tile_vars:  # a reduction loop: its bounds stay
            end = upper_bound(n.cond, n.var) if only_upper_bounds(n.cond, n.var) else None
            inner = {**ranges, n.var: (n.init, end)} if end is not None else ranges
            return replace(n, body=_constant_trip_counts(n.body, outer, conds, tile_vars, inner))
        full = full_tile_loop(n, ranges)
        if full is not None:
            start, extent, cond = full
            conds.append(cond)
            var = ir.Var(n.var)
            body = _substitute(n.body, {n.var: simplify(ir.Binary("+", start, var, INDEX))})
            body = _constant_trip_counts(body, outer, conds, tile_vars,
                                         {**ranges, n.var: (ir.Const(0), ir.Const(extent))})
            return replace(n, init=ir.Const(0),
                           cond=ir.Binary("<", var, ir.Const(extent), BOOL), body=body)
    return _map_children(n, lambda c: _constant_trip_counts(c, outer, conds, tile_vars,
                                                            ranges))


def triangle_split(loop: Node, tile_vars: set[str]) -> tuple[For, For, bool] | None:
    """(full, triangle, triangle first) where `loop` is a reduction loop whose tile's rows or
    columns end at it or start after it (trmm's rows `x < k`, symm's `x > k`): the range of
    the reduction where every such bound lets the whole tile through (the registers' full
    tile), and the rest (the triangle of a diagonal tile, run on the tensor as written), in
    the reduction's order; the caller runs the registers only where the full range is not
    empty. Without the split a tile on the diagonal ran its whole block of the reduction
    through the edge code (trmm and symm, PolyBench LARGE, one thread: about a quarter of the
    work, at a sixth of the registers' speed). None where no tile loop's bound uses the
    reduction, or one does other than as `k + constant`, or bounds on both sides do."""
    if not isinstance(loop, For) or loop.var in tile_vars or loop.step != 1 \
            or not only_upper_bounds(loop.cond, loop.var):
        return None
    r, end = loop.var, upper_bound(loop.cond, loop.var)
    ranges = {r: (loop.init, end)}
    full_from, full_to = [], []  # the tile is full for r >= each of these / r <= each
    for inner in walk(loop.body):
        if not isinstance(inner, For) or inner.var not in tile_vars \
                or r not in ir.variables(inner.init) | ir.variables(inner.cond):
            continue
        full = full_tile_loop(inner, ranges)
        if full is None:
            return None
        start, extent, _ = full
        last = simplify(ir.Binary("+", start, ir.Const(extent - 1), INDEX))
        for bound, ends in [(b, True) for b in upper_bounds(inner.cond, inner.var)] + \
                [(t, False) for t in max_terms(inner.init)]:
            if r not in ir.variables(bound):
                continue
            rest = simplify(ir.Binary("-", bound, ir.Var(r), INDEX))
            if coefficient(bound, r) != 1 or ir.variables(rest) & (tile_vars | {r}):
                return None
            if ends:  # last < r + rest: r >= last - rest + 1
                full_from.append(simplify(ir.Binary("-", ir.Binary("+", last, ir.Const(1), INDEX),
                                                    rest, INDEX)))
            else:  # r + rest <= start: r <= start - rest
                full_to.append(simplify(ir.Binary("-", start, rest, INDEX)))
    if bool(full_from) == bool(full_to):
        return None
    var = ir.Var(r)

    def below(limit: ir.Expr) -> ir.Expr:  # r < min(end, limit)
        return ir.Binary("<", var, ir.Call("min", (end, limit), INDEX), BOOL)

    if full_from:
        first = functools.reduce(lambda a, b: ir.Call("max", (a, b), INDEX), full_from)
        return (replace(loop, init=ir.Call("max", (loop.init, first), INDEX)),
                replace(loop, cond=below(first)), True)
    after = functools.reduce(lambda a, b: ir.Call("min", (a, b), INDEX), full_to)
    after = simplify(ir.Binary("+", after, ir.Const(1), INDEX))
    return (replace(loop, cond=below(after)),
            replace(loop, init=ir.Call("max", (loop.init, after), INDEX)), False)


def full_tile_loop(loop: For, ranges: dict[str, tuple[ir.Expr, ir.Expr]]
                   ) -> tuple[ir.Expr, int, ir.Expr] | None:
    """(first value, extent, condition) of `loop` in a full tile: it starts at the term of
    its `max(...)` start that uses no loop of `ranges` and from which it runs a constant
    extent, under the condition that every other bound is no tighter for any value of those
    loops; None where a bound is not affine in them or no such start exists."""
    if not only_upper_bounds(loop.cond, loop.var):
        return None
    inside = set(ranges)
    starts = max_terms(loop.init)
    # The tile's own start: the term from which the loop has a constant extent (isl starts a
    # syrk tile's rows at max(6 * r, 8 * c) where 6-row tiles meet 8-column ones).
    base = [t for t in starts if not ir.variables(t) & inside
            and full_extent(replace(loop, init=t)) is not None]
    if not base:
        return None
    start = base[0]
    extent = full_extent(replace(loop, init=start))
    last = simplify(ir.Binary("+", start, ir.Const(extent - 1), INDEX))
    if len(starts) == 1 and not ir.variables(loop.cond) & inside:
        return start, extent, ir.substitute(loop.cond, {loop.var: last})
    parts = []
    for other in starts:  # each later start must not pass the base one: other <= start
        if other is not start:
            tightest = _at_extreme(other, ranges, largest=True)
            if tightest is None:
                return None
            parts.append(ir.Binary("<=", tightest, start, BOOL))
    for bound in upper_bounds(loop.cond, loop.var):  # last < bound, at the smallest bound
        tightest = _at_extreme(bound, ranges, largest=False)
        if tightest is None:
            return None
        parts.append(ir.Binary("<", last, tightest, BOOL))
    return start, extent, _all(parts)


def _at_extreme(e: ir.Expr, ranges: dict[str, tuple[ir.Expr, ir.Expr]], largest: bool
                ) -> ir.Expr | None:
    """`e` at the values of the loops of `ranges` (each from its first value to its end - 1)
    that make it largest (or smallest), or None where it is not affine in them."""
    values = {}
    for v in ir.variables(e) & set(ranges):
        c = coefficient(e, v)
        if c is None:
            return None
        first, end = ranges[v]
        values[v] = simplify(ir.Binary("-", end, ir.Const(1), INDEX)) \
            if (c > 0) == largest and c != 0 else first
    return simplify(ir.substitute(e, values)) if values else e


def _substitute(n: Node, mapping: dict[str, ir.Expr]) -> Node:
    """Substitute index variables everywhere in a loop nest (indices simplified)."""
    def expr(e: ir.Expr) -> ir.Expr:
        return ir.rewrite(ir.substitute(e, mapping), _simplify_indices)

    match n:
        case Store():
            return replace(n, indices=tuple(simplify(ir.substitute(x, mapping))
                                            for x in n.indices), value=expr(n.value))
        case For():
            return replace(n, init=expr(n.init), cond=expr(n.cond),
                           body=_substitute(n.body, mapping))
        case If():
            return replace(n, cond=expr(n.cond), then=_substitute(n.then, mapping),
                           orelse=None if n.orelse is None else _substitute(n.orelse, mapping))
    return _map_children(n, lambda c: _substitute(c, mapping))


def _simplify_indices(e: ir.Expr) -> ir.Expr | None:
    if isinstance(e, ir.Load):
        return replace(e, indices=tuple(simplify(x) for x in e.indices))
    return None
