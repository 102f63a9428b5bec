"""A loop the schedule marked `dot` (Schedule.dot), as one `tl.dot` of two tiles.

Inside a 2-D thread region (rows on threadIdx.y, columns on threadIdx.x) the loop's body is
`acc += A[.., row, k] * B[.., k, col] * f` (f: factors that do not use k). The loop variable
becomes a lane axis of its own, once as columns of the A tile and once as rows of the B tile:

    k_a = init + tl.arange(0, K)[None, :]      a = tl.load(A + row * KA + k_a, mask=...)  [R, K]
    k_b = init + tl.arange(0, K)[:, None]      b = tl.load(B + k_b * N + col, mask=...)   [K, C]
    acc = acc + tl.dot(a, b) * f

Lanes of the tiles outside the loop's range or the tensors read 0, so they add nothing. f16 and
bf16 tiles stay in their type (tensor cores), i8 ones accumulate in int32.
"""

from __future__ import annotations

from loopweave.backends.triton_expr import Layout, py_name
from loopweave.backends.triton_registers import dot_operand
from loopweave.errors import ScheduleError
from loopweave.ir import expr as ir
from loopweave.ir.affine import row_major_offset
from loopweave.ir.loops import For, Store, full_extent, upper_bound
from loopweave.ir.types import BOOL, F32, I32, DType
from loopweave.passes.patterns import factors as product_factors
from loopweave.targets import GPU_FACTS

#: What tl.dot multiplies: the tiles' storage types (int8 accumulates in int32).
DOT_TYPES = GPU_FACTS["triton"].dot_types

#: tl.dot's smallest tile side on a GPU.
MIN_DOT = GPU_FACTS["triton"].dot_min


def dot_update(w, loop: For, depth: int) -> None:
    """Emit the dot loop `loop` into the launch writer `w` (a triton_scheduled._LaunchWriter)."""
    lanes = w.lanes
    where = f"dot loop {loop.var}"
    if lanes is None or len(lanes.shape) != 2:
        raise ScheduleError(f"{where} must be inside two loops bound to threadIdx.y (rows) and "
                            f"threadIdx.x (columns)")
    extent = full_extent(loop)
    if extent is None:
        raise ScheduleError(f"{where} has no constant trip count: tile it (Schedule.tile)")
    end = upper_bound(loop.cond, loop.var)
    if w.varies(loop.init) or end is not None and w.varies(end):
        raise ScheduleError(f"{where}: its bounds differ between threads")
    store = loop.body
    if not isinstance(store, Store) or store.reduce != "+=":
        raise ScheduleError(f"{where} must hold one `+=` of a product (a contraction)")
    rows, cols = lanes.vars
    a, b, rest = _operands(store.value, loop.var, rows, cols, where)
    size = max(MIN_DOT, 1 << (extent - 1).bit_length())
    if min(lanes.shape) < MIN_DOT:
        raise ScheduleError(f"{where}: tl.dot needs tiles of at least {MIN_DOT} x {MIN_DOT} "
                            f"threads, not {lanes.shape[0]} x {lanes.shape[1]}")
    k_a, k_b = w.fresh(f"{py_name(loop.var)}_a"), w.fresh(f"{py_name(loop.var)}_b")
    lanes_k = f"tl.arange(0, {size}).to(tl.int64)"
    w.emit(f"{k_a} = {w.text(loop.init)} + {lanes_k}[None, :] * {loop.step}", depth)
    w.emit(f"{k_b} = {w.text(loop.init)} + {lanes_k}[:, None] * {loop.step}", depth)
    types = {_storage(a).name, _storage(b).name}
    if not types <= set(DOT_TYPES) or len(types) > 1 and not types <= {"f16", "bf16", "f32"}:
        raise ScheduleError(f"{where}: tl.dot multiplies tiles of {', '.join(DOT_TYPES)} "
                            f"(floats may mix), not {' and '.join(sorted(types))}")
    mixed = len(types) > 1  # floats of two types: both as f32
    tile_a = _tile(w, a, loop, k_a, depth, mixed, size, (rows, loop.var))
    tile_b = _tile(w, b, loop, k_b, depth, mixed, size, (loop.var, cols))
    operand = _storage(a) if not mixed else F32
    if operand.is_int:
        kind = "out_dtype=tl.int32"
    elif operand.name == "f32":
        kind = f"input_precision=\"{w.module.options.get('input_precision', 'ieee')}\""
    else:
        kind = ""  # f32 accumulation of f16/bf16 tiles
    reg = w.registers.get(store.tensor)
    if rest is None and w.created_under.get(reg) == (lanes.mask,
                                                      I32 if operand.is_int else F32):
        # The accumulator of these lanes since the mask it began in: tl.dot adds into it (the
        # lanes outside the mask hold values nobody stores).
        w.emit(f"{reg} = tl.dot({tile_a}, {tile_b}, {reg}{', ' + kind if kind else ''})", depth)
        return
    product = f"tl.dot({tile_a}, {tile_b}{', ' + kind if kind else ''})"
    if rest is not None:
        product = f"{product} * {w.expr.render(rest, Layout(()), 12)}"
    w.store(store, depth, value=product)


def _storage(load: ir.Expr) -> DType:
    return (load.operand if isinstance(load, ir.Cast) else load).dtype


def _operands(value: ir.Expr, k: str, rows: str, cols: str, where: str):
    """(A load, B load, the product of the other factors or None); A reads the rows, B the
    columns, both k (each possibly under a widening cast)."""
    factors = product_factors(value)
    uses = [f for f in factors if k in ir.variables(f)]
    a = [f for f in uses if rows in ir.variables(f) and cols not in ir.variables(f)]
    b = [f for f in uses if cols in ir.variables(f) and rows not in ir.variables(f)]
    if len(uses) != 2 or len(a) != 1 or len(b) != 1 or not all(
            isinstance(x.operand if isinstance(x, ir.Cast) else x, ir.Load) for x in uses):
        raise ScheduleError(f"{where}: its update is not A[row, {k}] * B[{k}, column] (times "
                            f"factors without {k}), so it is no matrix product")
    others = [f for f in factors if f not in uses]
    rest = None
    for f in others:
        rest = f if rest is None else ir.Binary("*", rest, f, f.dtype)
    return a[0], b[0], rest


def _tile(w, operand: ir.Expr, loop: For, lane: str, depth: int, to_f32: bool, size: int,
          axes: tuple[str, str]) -> str:
    """Load the tile of `operand` with the loop variable as the lane tensor `lane`; lanes out
    of the loop's range or of the tensor read 0. A temporary the program keeps in registers
    (`axes`: the tile's rows and columns) is that tensor (triton_registers)."""
    load = operand.operand if isinstance(operand, ir.Cast) else operand
    if load.tensor in w.tiles:
        name = dot_operand(w, w.tiles[load.tensor], load, loop, lane, size, axes)
        return f"{name}.to(tl.float32)" if to_f32 else name
    tensor = w.kernel.tensors[load.tensor]
    moved = ir.substitute(load, {loop.var: ir.Var(lane)})
    inside = [ir.substitute(loop.cond, {loop.var: ir.Var(lane)})]
    for index, dim in zip(moved.indices, tensor.shape, strict=True):
        inside += [ir.Binary(">=", index, ir.Const(0), BOOL), ir.Binary("<", index, dim, BOOL)]
    # Only what varies over the tile's lanes: scalar loop variables are in range by their loops
    # (and a scalar `&` a tensor gives the interpreter a mask of the wrong type).
    lanes = w.lane_vars | {lane}
    mask = " & ".join(f"({w.text(c)})" for c in inside if ir.variables(c) & lanes)
    off = row_major_offset(tensor.shape, moved.indices)
    name = w.fresh(f"{py_name(load.tensor)}_tile")
    w.emit(f"{name} = tl.load({py_name(load.tensor)}_ptr + {w.text(off)}, mask={mask}, "
           f"other=0)", depth)
    return f"{name}.to(tl.float32)" if to_f32 else name
