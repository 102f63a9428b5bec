"""Temporaries that a Triton program keeps in registers, and loops rendered as a tensor axis.

A temporary lives in a register tensor of its launch (declared zero at the top of each block
iteration) instead of device memory when no other launch touches it and every access to it is
inside thread regions, indexed by lane variables only, each dimension always by lanes with the
same origin and count (the rows `16 * c0 + tl.arange(0, 16)` of a query block; the keys `0 +
tl.arange(0, 16)` of a key block): each program then reads only what it wrote, element by
element. A dimension may also be indexed by a `vector` loop or a `dot` loop of those lanes:

    vector loop in a 1-D region, its body one reduction `m[r] max= f(.., v)`:
        v = init + tl.arange(0, P)[None, :]; r_v = r[:, None]
        m = tl.where(mask, tl.maximum(m, tl.max(tl.where(mask2, f, -inf), axis=1)), m)
    dot operand: the register tile itself (its k lanes out of the loop's range read 0)

Such a tensor is read in a region of other lanes arranged to them (`m[:, None]` in a 2-D
region of the same rows); it is written only where its dimensions are the region's axes in
order (or reduced over the vector or dot axis). FlashAttention's scores, exponentials and row
statistics are such temporaries (passes/gpu_online).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from loopweave.backends.triton_expr import REDUCE_OVER_AXIS, TL_TYPES
from loopweave.errors import ScheduleError
from loopweave.ir import expr as ir
from loopweave.ir.launch_nodes import Launch, kernel_children
from loopweave.ir.loops import (
    THREAD_AXES,
    Block,
    For,
    If,
    Scope,
    Store,
    full_extent,
    upper_bound,
    walk,
)
from loopweave.ir.types import identity


@dataclass(frozen=True)
class Tile:
    """A temporary in registers: its Python name and, per dimension, the lanes indexing it."""

    name: str
    # per dimension (the lanes' origin, as text; their count), or ("@index", 0) for an index
    # of the block loops alone (one element per program: not a dimension of the tensor)
    dims: tuple[tuple[str, int], ...]


def register_tiles(kernel, launches: tuple[Launch, ...], launch: Launch) -> dict[str, tuple]:
    """{temporary: its dimensions' (origin, count)} for the temporaries of `launch` that can
    live in registers (see the module docstring)."""
    found: dict[str, list] = {}
    bad: set[str] = set()
    temps = {t.name for t in (*kernel.temporaries, *kernel.locals)
             if not t.dtype.is_storage_only}
    elsewhere = {ld for other in launches if other is not launch for ld in _touched(other)}
    # the block loops: an index of them alone is one element per program (a storage-reduced
    # local's copy per block), the same in every access
    blocks = [(b.var, None, "block") for b in launch.blocks]
    _visit(launch.body, blocks, temps, found, bad)
    return {t: tuple(sig) for t, sig in found.items()
            if t not in bad and t not in elsewhere and None not in sig}


def _touched(launch: Launch) -> set[str]:
    out = set()
    for n in walk(launch.body, kernel_children):
        if isinstance(n, Store):
            out.add(n.tensor)
            out |= {ld.tensor for x in (n.value, *n.indices) for ld in ir.loads(x)}
        elif isinstance(n, For | If):
            cond = n.cond
            out |= {ld.tensor for ld in ir.loads(cond)}
    return out


def _visit(node, axes: list, temps: set[str], found: dict, bad: set[str]) -> None:
    if isinstance(node, For):
        for e in (node.init, node.cond):
            _accesses(e, axes, temps, found, bad)
        extent = full_extent(node)
        if extent is not None and (node.kind in (*THREAD_AXES, "dot") or node.kind == "vector"
                                   and _vector_axis(node, axes)):
            axes = [*axes, (node.var, (ir.to_str(node.init), extent), node.kind)]
        _visit(node.body, axes, temps, found, bad)
        return
    if isinstance(node, Store):
        for x in node.indices:
            _accesses(x, axes, temps, found, bad)
        _accesses(node.value, axes, temps, found, bad)
        if node.tensor in temps:
            lanes = [a for a in axes if a[1] is not None]
            reduced = {a[0] for a in lanes if a[2] in ("vector", "dot")}
            mine = [x.name for x in node.indices if isinstance(x, ir.Var)
                    and x.name in {a[0] for a in lanes}]
            missing = [a for a in lanes if a[0] not in mine]
            plain = [a[0] for a in lanes if a[0] in mine]
            if missing and (node.reduce is None or {a[0] for a in missing} - reduced) or \
                    plain != mine:
                bad.add(node.tensor)
            _record(ir.Load(node.tensor, node.indices, node.value.dtype), axes, found, bad)
        return
    if isinstance(node, If):
        _accesses(node.cond, axes, temps, found, bad)
    for child in kernel_children(node):
        _visit(child, axes, temps, found, bad)


def _vector_axis(loop: For, axes: list) -> bool:
    """Will `vector_loop` render `loop` as an axis (inside one row of lanes)?"""
    store = loop.body
    axes = [a for a in axes if a[1] is not None]
    lanes = {a[0] for a in axes}
    end = upper_bound(loop.cond, loop.var)
    return len(axes) == 1 and axes[0][2] in THREAD_AXES and isinstance(store, Store) \
        and store.reduce in REDUCE_OVER_AXIS and not any(
            loop.var in ir.variables(x) for x in store.indices) \
        and not ir.variables(loop.init) & lanes and (end is None or not ir.variables(end) & lanes)


def _accesses(e: ir.Expr, axes: list, temps: set[str], found: dict, bad: set[str]) -> None:
    for ld in ir.loads(e):
        if ld.tensor in temps:
            _record(ld, axes, found, bad)


def _record(ld: ir.Load, axes: list, found: dict, bad: set[str]) -> None:
    by_var = {a[0]: a[1] for a in axes if a[1] is not None}
    blocks = {a[0] for a in axes if a[2] == "block"}
    sig = [by_var.get(x.name) if isinstance(x, ir.Var) and x.name in by_var else
           (f"@{ir.to_str(x)}", 0) if ir.variables(x) <= blocks and not ir.loads(x) else None
           for x in ld.indices]
    if not any(n for _, n in filter(None, sig)) or None in sig:
        bad.add(ld.tensor)
        return
    known = found.setdefault(ld.tensor, sig)
    if known != sig:
        bad.add(ld.tensor)


def declare(w, tiles: dict[str, tuple], depth: int) -> dict[str, Tile]:
    """Declare each register tile (zeros) in the launch writer `w`; {tensor: Tile}."""
    out = {}
    for tensor, dims in tiles.items():
        name = w.fresh(f"{tensor}_reg")
        shape = ", ".join(str(_pow2(n)) for _, n in dims if n)
        kind = TL_TYPES[w.kernel.tensors[tensor].dtype.compute.name]
        w.emit(f"{name} = tl.zeros([{shape}], dtype={kind})", depth)
        w.registers[tensor] = name
        out[tensor] = Tile(name, dims)
    return out


def arranged(tile: Tile, load: ir.Load, axes: tuple[str, ...]) -> str:
    """The tile read by `load` as a tensor over `axes` (the current lanes, outer first)."""
    where = [axes.index(x.name) if isinstance(x, ir.Var) and x.name in axes else None
             for x, (_, n) in zip(load.indices, tile.dims, strict=True) if n]
    if where == list(range(len(axes))):
        return tile.name
    if where == [1, 0] and len(axes) == 2:
        return f"tl.trans({tile.name})"
    if len(where) == 1 and where[0] is not None and len(axes) == 2:
        return f"{tile.name}[:, None]" if where[0] == 0 else f"{tile.name}[None, :]"
    raise ScheduleError(f"{load.tensor} is kept in registers but read as {ir.to_str(load)} "
                        f"over lanes {', '.join(axes)}")


def dot_operand(w, tile: Tile, load: ir.Load, loop: For, lane: str, size: int,
                axes: tuple[str, str]) -> str:
    """A dot loop's operand read from a register tile: its k lanes outside the loop's range
    read 0 (the tile keeps an earlier block's values there)."""
    k_dim = [n for n, x in enumerate(load.indices) if x == ir.Var(loop.var)]
    if len(k_dim) != 1 or tile.dims[k_dim[0]] != (ir.to_str(loop.init), full_extent(loop)) \
            or _pow2(tile.dims[k_dim[0]][1]) != size:
        raise ScheduleError(f"dot loop {loop.var}: its operand {load.tensor} is kept in "
                            f"registers over other lanes")
    text = arranged(tile, load, axes)
    inside = w.text(ir.substitute(loop.cond, {loop.var: ir.Var(lane)}))
    return f"tl.where({inside}, {text}, 0.0)"


def vector_loop(w, loop: For, depth: int) -> bool:
    """Render `loop` (kind vector) in a 1-D thread region as a tensor axis when its body is one
    reduction into an element it does not index (see the module docstring); False (nothing
    written) otherwise."""
    store, lanes = loop.body, w.lanes
    extent = full_extent(loop)
    end = upper_bound(loop.cond, loop.var)
    if lanes is None or len(lanes.shape) != 1 or extent is None or not isinstance(
            store, Store) or store.reduce not in REDUCE_OVER_AXIS or any(
            loop.var in ir.variables(x) for x in store.indices) or w.varies(loop.init) or (
            end is not None and w.varies(end)):
        return False
    rows = lanes.vars[0]
    wide = w.fresh(f"{rows}_v")
    size = _pow2(extent)
    var = w.lane_name(loop.var, (1, size))
    w.emit(f"{var} = {w.text(loop.init)} + tl.arange(0, {size}).to(tl.int64)[None, :] * "
           f"{loop.step}", depth)
    w.emit(f"{wide} = {rows}[:, None]", depth)
    zeros = w.lane_name("lw_lanes", (lanes.shape[0], size))
    w.emit(f"{zeros} = tl.zeros([{lanes.shape[0]}, {size}], dtype=tl.int64)", depth)
    w.lane_vars |= {var, wide}
    moved = {rows: ir.Var(wide), loop.var: ir.Var(var)}
    value = ir.substitute(store.value, moved)
    cond = ir.substitute(loop.cond, moved)
    mask = w.fresh("lw_mask")
    w.emit(f"{mask} = ({lanes.mask})[:, None] & ({w.text(cond)})", depth)
    w.lanes = replace(lanes, shape=(lanes.shape[0], size), mask=mask, vars=(wide, var),
                      zeros=zeros)
    dtype = store.value.dtype.compute
    start = w.expr.const(identity(store.reduce, dtype), dtype)
    if store.reduce == "*=":
        w.use("_lw_mul")
    part = w.fresh("lw_part")
    body = f"tl.where({mask}, {w.text(value)}, {start})"
    w.emit(f"{part} = {REDUCE_OVER_AXIS[store.reduce].format(v=body, a=1)}", depth)
    w.lanes = lanes
    w.lane_vars -= {var, wide}
    w.store(store, depth, value=part)
    return True


def scalar_loop_vars(body) -> set[str]:
    """The variables of the loops in a launch body that are not lanes (Python scalars)."""
    return {n.var for n in walk(body, kernel_children)
            if isinstance(n, For) and n.kind not in THREAD_AXES}


def rename_vars(node, names: dict[str, ir.Expr]):
    """`node` (a thread region's body: loops, guards, blocks, scopes, stores) with the index
    variables `names` renamed."""
    def sub(e: ir.Expr) -> ir.Expr:
        return ir.substitute(e, names)

    match node:
        case Store():
            return replace(node, indices=tuple(sub(x) for x in node.indices),
                           value=sub(node.value))
        case For():
            return replace(node, init=sub(node.init), cond=sub(node.cond),
                           body=rename_vars(node.body, names))
        case If():
            return If(sub(node.cond), rename_vars(node.then, names),
                      None if node.orelse is None else rename_vars(node.orelse, names))
        case Block():
            return Block(tuple(rename_vars(b, names) for b in node.body))
        case Scope():
            return replace(node, body=rename_vars(node.body, names))
    raise AssertionError(type(node).__name__)


def _pow2(n: int) -> int:
    return 1 << (n - 1).bit_length()

