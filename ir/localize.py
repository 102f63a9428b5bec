"""Loop-AST side of cache_read / cache_write (see passes/cache.py): declare the buffer, copy the
footprint in before the loop and back after it, and redirect the loop's accesses.

For a written buffer (an accumulator tile) the loop is also versioned for full tiles: when
every inner loop whose bounds depend only on enclosing loops runs its full extent, a copy with
constant trip counts from 0 runs instead (what lets the C compiler keep the tile in registers);
the general loop nest handles the partial tiles at the edges.
"""

from __future__ import annotations

from dataclasses import replace

from loopweave.ir import expr as ir
from loopweave.ir.affine import constant_value, simplify
from loopweave.ir.kernel import CacheSpec, Tensor
from loopweave.ir.loops import Block, Buffer, For, If, Node, Scope, Store, full_extent, walk
from loopweave.ir.strips import is_accumulator_nest, strip_partial_tiles
from loopweave.ir.types import BOOL, INDEX


def lower_cache(spec: CacheSpec, loop: Node, tensor: Tensor) -> Node:
    """`loop` (the loop marked for `spec`) with its footprint of `tensor` in a local buffer.

    A full tile of an accumulator nest skips the buffer: its registers (see
    backends/register_tile.py) load from and store to the tensor itself, so only the edge
    tiles pay for the copies in and out."""
    if not _accesses(loop, spec.tensor):
        # A piece of the loop that isl split off for other statements: no buffer (its outer
        # loops may be gone too, fixed in that piece, and the offsets would name them).
        return loop
    body = _redirect(loop, spec)
    outer = {f"c{k}" for k in range(spec.depth)}
    if spec.copy_out:
        tile_vars = {v for n in walk(loop) if isinstance(n, Store) and n.tensor == spec.tensor
                     for x in n.indices for v in ir.variables(x)}
        conds: list[ir.Expr] = []
        direct = _constant_trip_counts(loop, outer, conds, tile_vars)
        if conds and is_accumulator_nest(direct, outer):
            return If(_all(conds), direct,
                      _buffered(spec, tensor, strip_partial_tiles(body, outer)))
        body = _version_full_tiles(body, outer, tile_vars)
    return _buffered(spec, tensor, body)


def _accesses(node: Node, tensor: str) -> bool:
    """Whether a store inside `node` writes or reads `tensor`."""
    return any(isinstance(n, Store) and (n.tensor == tensor or any(
        ld.tensor == tensor for e in (n.value, *n.indices) for ld in ir.loads(e)))
        for n in walk(node))


def _buffered(spec: CacheSpec, tensor: Tensor, body: Node) -> Scope:
    """`body` inside the buffer's scope, between the copies in and out."""
    parts = []
    if spec.copy_in:
        parts.append(_copy(spec, tensor, into_buffer=True))
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


def _shift(spec: CacheSpec, indices: tuple[ir.Expr, ...]) -> tuple[ir.Expr, ...]:
    """The buffer indices of a tensor element."""
    shifted = [simplify(ir.Binary("-", x, off, INDEX))
               for x, off in zip(indices, spec.offsets, strict=True)]
    return _in_layout(spec, shifted)


def _in_layout(spec: CacheSpec, per_tensor_dim: list) -> tuple:
    return tuple(per_tensor_dim[d] for d in spec.layout) if spec.layout else \
        tuple(per_tensor_dim)


def _redirect(node: Node, spec: CacheSpec) -> Node:
    """Every access to the tensor inside `node` goes to the buffer instead."""
    def load(e: ir.Expr) -> ir.Expr | None:
        if isinstance(e, ir.Load) and e.tensor == spec.tensor:
            return ir.Load(spec.buffer.name, _shift(spec, e.indices), e.dtype)
        return None

    def visit(n: Node) -> Node:
        match n:
            case Store():
                value = ir.rewrite(n.value, load)
                if n.tensor == spec.tensor:
                    return replace(n, tensor=spec.buffer.name, indices=_shift(spec, n.indices),
                                   value=value)
                return replace(n, value=value)
        return _map_children(n, visit)

    return visit(node)


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


def _copy(spec: CacheSpec, tensor: Tensor, into_buffer: bool) -> Node:
    """Loops over the box, clipped to the tensor: buffer <- tensor, or tensor <- buffer."""
    names = [f"c{spec.depth}_{d}" for d in range(len(spec.sizes))]
    xs = [ir.Var(v) for v in names]
    elements = tuple(simplify(ir.Binary("+", off, x, INDEX))
                     for off, x in zip(spec.offsets, xs, strict=True))
    local = ir.Load(spec.buffer.name, _in_layout(spec, xs), tensor.dtype)
    outside = ir.Load(tensor.name, elements, tensor.dtype)
    node: Node = (Store(spec.buffer.name, _in_layout(spec, xs), outside, None,
                        f"copy_{spec.tag}")
                  if into_buffer else
                  Store(tensor.name, elements, local, None, f"copy_{spec.tag}"))
    for d in reversed(range(len(names))):
        off, size, dim = spec.offsets[d], spec.sizes[d], tensor.shape[d]
        start = simplify(ir.Unary("neg", off, INDEX))
        init = ir.Call("max", (ir.Const(0), start), INDEX) if constant_value(start) is None \
            else ir.Const(max(0, constant_value(start)))
        stop = ir.Call("min", (ir.Const(size), simplify(ir.Binary("-", dim, off, INDEX))), INDEX)
        node = For(names[d], init, ir.Binary("<", xs[d], stop, BOOL), 1, node)
    return node


# -- full-tile versioning ------------------------------------------------------------------------

def _version_full_tiles(node: Node, outer: set[str], tile_vars: set[str]) -> Node:
    conds: list[ir.Expr] = []
    full = _constant_trip_counts(node, outer, conds, tile_vars)
    if not conds:
        return node
    return If(_all(conds), full, strip_partial_tiles(node, outer))


def _constant_trip_counts(n: Node, outer: set[str], conds: list[ir.Expr],
                          tile_vars: set[str]) -> Node:
    """`n` with each loop over the tile (a variable of `tile_vars`) of constant extent in full
    tiles counting from 0; appends the condition under which each such loop runs its full
    extent. The reduction loops keep their bounds: registers do not need them constant."""
    if isinstance(n, For) and n.step == 1 and n.var in tile_vars and \
            ir.variables(n.init) <= outer and ir.variables(n.cond) <= outer | {n.var}:
        extent = full_extent(n)
        if extent is not None:
            var = ir.Var(n.var)
            last = ir.substitute(n.cond, {n.var: simplify(ir.Binary(
                "+", n.init, ir.Const(extent - 1), INDEX))})
            conds.append(last)
            shifted = simplify(ir.Binary("+", n.init, var, INDEX))
            body = _substitute(n.body, {n.var: shifted})
            body = _constant_trip_counts(body, outer, conds, tile_vars)
            return replace(n, init=ir.Const(0),
                           cond=ir.Binary("<", var, ir.Const(extent), BOOL), body=body)
    return _map_children(n, lambda c: _constant_trip_counts(c, outer, conds, tile_vars))


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
