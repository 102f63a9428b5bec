"""Register tiles: an accumulator tile updated in a loop, kept in vector registers.

The full-tile version of a cache_write (see ir/localize.py) looks like

    for k = ...:                         # the reduction loop (or a nest of them: conv2d's
      for x = 0 while x < R:             #   c, r, s), each with a single loop as its body
        for y = 0 while y < W:           # a row, stride 1 in the buffer (constant extent)
          acc[x, y] += <expression of loads>

and becomes R vector accumulators (GCC/Clang vector extensions, so it is portable C for every
GCC target: SSE/AVX/AVX-512, NEON, MVE): each row is loaded before the k loop, updated with
vector arithmetic (loads stride-1 in y become vector loads, loads invariant in y broadcast), and
stored after it. Anything else in that shape returns None and is rendered as plain loops.
"""

from __future__ import annotations

from loopweave.backends.c_names import c_name, c_var
from loopweave.ir import expr as ir
from loopweave.ir.affine import coefficient, constant_value, simplify
from loopweave.ir.loops import For, accumulator_nest
from loopweave.ir.types import DType

MAX_ROWS = 16
MAX_ROW_BYTES = 256
CHUNK_BYTES = 64
VECTOR_OPS = ("+", "-", "*")


def render_register_tile(r, node: For, indent: str) -> list[str] | None:
    """Lines for `node` as a register tile, or None when it does not have that shape."""
    shape = _tile_shape(node)
    if shape is None:
        return None
    reductions, rows_loop, cols_loop, store = shape
    rows, width = _extent(rows_loop), _extent(cols_loop)
    dtype = store.value.dtype
    if dtype.name not in ("f32", "f64", "i32") or store.reduce != "+=" or rows > MAX_ROWS:
        return None
    nbytes = width * dtype.bits // 8
    if nbytes & (nbytes - 1) or not 16 <= nbytes <= MAX_ROW_BYTES:
        return None
    # A row wider than one 64-byte vector is several: gcc splits wide vector types badly.
    chunks = max(1, nbytes // CHUNK_BYTES)
    chunk_width, chunk_bytes = width // chunks, nbytes // chunks
    x, y = rows_loop.var, cols_loop.var
    starts = []
    for row in range(rows):
        offset = ir.substitute(_linear(r, store.tensor, store.indices), {x: ir.Const(row)})
        if coefficient(offset, y) != 1:
            return None
        start = ir.substitute(offset, {y: ir.Const(0)})
        if ir.variables(start) & {loop.var for loop in reductions}:
            return None
        starts += [r.expr(simplify(ir.add(start, ir.Const(c * chunk_width))))
                   for c in range(chunks)]
    updates = []
    for row in range(rows):
        for c in range(chunks):
            shifted = ir.Binary("+", ir.Var(y), ir.Const(c * chunk_width), ir.Var(y).dtype)
            value = ir.substitute(store.value, {x: ir.Const(row), y: shifted})
            text = _vector_expr(r, value, y, chunk_width)
            if text is None:
                return None
            updates.append(text)
    vec = f"lw_vec_{dtype.name}_{chunk_width}"
    r.preamble.add(_vector_type(vec, dtype, chunk_bytes))
    acc = c_name(store.tensor)
    regs = [f"lw_r{row}_{c}" for row in range(rows) for c in range(chunks)]
    inner = indent + "  "
    lines = [f"{indent}{{", f"{inner}{vec} {', '.join(regs)};"]
    lines += [f"{inner}__builtin_memcpy(&{reg}, &{acc}[{s}], sizeof {reg});"
              for reg, s in zip(regs, starts, strict=True)]
    for depth, loop in enumerate(reductions):
        v, pad = c_var(loop.var), inner + "  " * depth
        lines.append(f"{pad}for ({r.index_type} {v} = {r.expr(loop.init)}; "
                     f"{r.expr(loop.cond)}; {v} += {loop.step}) {{")
    body = inner + "  " * len(reductions)
    lines += [f"{body}{reg} += {text};" for reg, text in zip(regs, updates, strict=True)]
    lines += [f"{inner}{'  ' * depth}}}" for depth in reversed(range(len(reductions)))]
    lines += [f"{inner}__builtin_memcpy(&{acc}[{s}], &{reg}, sizeof {reg});"
              for reg, s in zip(regs, starts, strict=True)]
    return [*lines, f"{indent}}}"]


def _tile_shape(node: For):
    """(reduction loops, rows loop, columns loop, store) of an accumulator nest whose rows and
    columns loops count from 0 to a constant, or None."""
    shape = accumulator_nest(node)
    if shape is None or not (_extent(shape[1]) and _extent(shape[2])):
        return None
    return shape


def _extent(loop: For) -> int | None:
    """The constant trip count of a loop `for v = 0 while v < E`."""
    if loop.step != 1 or constant_value(loop.init) != 0:
        return None
    match loop.cond:
        case ir.Binary(op="<", left=ir.Var(name=v), right=ir.Const(value=e)) if v == loop.var:
            return e
    return None


def _linear(r, tensor: str, indices: tuple[ir.Expr, ...]) -> ir.Expr:
    """The row-major offset of an element as an expression."""
    shape = r.shapes[tensor]
    offset = indices[0] if indices else ir.Const(0)
    for dim, index in zip(shape[1:], indices[1:], strict=True):
        offset = ir.add(ir.mul(offset, dim), index)
    return offset


def _vector_expr(r, e: ir.Expr, y: str, width: int) -> str | None:
    """C text of `e` as a vector over y (a scalar where it does not depend on y)."""
    if all(not (isinstance(x, ir.Var) and x.name == y) for x in ir.walk(e)):
        return r.expr(e, 14)
    match e:
        case ir.Load(tensor=t, indices=ix):
            offset = _linear(r, t, ix)
            if coefficient(offset, y) != 1:
                return None
            start = r.expr(ir.substitute(offset, {y: ir.Const(0)}))
            return f"lw_vload_{e.dtype.name}_{width}(&{c_name(t)}[{start}])"
        case ir.Binary(op=op, left=a, right=b) if op in VECTOR_OPS:
            left, right = _vector_expr(r, a, y, width), _vector_expr(r, b, y, width)
            if left is None or right is None:
                return None
            return f"({left} {op} {right})"
    return None


def _vector_type(name: str, dtype: DType, nbytes: int) -> str:
    c = dtype.c_type
    width = nbytes * 8 // dtype.bits
    return (f"typedef {c} {name} __attribute__((vector_size({nbytes})));\n"
            f"static inline {name} lw_vload_{dtype.name}_{width}(const {c} *p) {{\n"
            f"  {name} v; __builtin_memcpy(&v, p, sizeof v); return v;\n}}\n")
