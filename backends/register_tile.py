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

import functools
from dataclasses import dataclass

from loopweave.backends.c_names import c_name, c_var
from loopweave.ir import expr as ir
from loopweave.ir.affine import coefficient, constant_value, simplify
from loopweave.ir.loops import For, If, Node, Store, accumulator_nest
from loopweave.ir.types import DType
from loopweave.passes.patterns import factors

MAX_ROWS = 16
MAX_SCALARS = 16
MAX_ROW_BYTES = 256
CHUNK_BYTES = 64
#: How far ahead `_prefetches` fetches, in iterations of the reduction loop (0: no prefetches).
#: lstm at the suite's sizes (its step: 16 x 1024 x 256, B read in place with rows 4 KB apart),
#: one thread, 2-core Xeon VM, interleaved medians of 31: 1.01-1.03x over none (4 and 16 rows
#: ahead measured alike).
PREFETCH_STEPS = 8
#: Rows read at a constant stride below this many bytes are left to the hardware.
PREFETCH_MIN_STRIDE = 1024
VECTOR_OPS = ("+", "-", "*")


def render_register_tile(r, node: For, indent: str,
                         fill: TileFill | None = None) -> list[str] | None:
    """Lines for `node` as a register tile, or None when it does not have that shape. With
    `fill` (the tile's fill, see `tile_fill`), the registers start from the fill's value
    instead of loading what it stored."""
    shape = tile_shape(node)
    if shape is None:
        return None
    reductions, rows_loop, cols_loop, store = shape
    rows, width = extent(rows_loop), extent(cols_loop)
    dtype = store.value.dtype
    if dtype.name not in ("f32", "f64", "i32") or store.reduce != "+=" or rows > MAX_ROWS:
        return None
    if getattr(r, "scalar_register_tiles", False):
        return None if fill else _scalar_tile(r, indent, reductions, rows_loop, cols_loop,
                                               store)
    nbytes = width * dtype.bits // 8
    # A row wider than one vector is several: gcc splits wide vector types badly. A renderer
    # gives its vector width as `register_tile_chunk_bytes` (16 on NEON and Helium). A row
    # is a power of two bytes up to one vector, or whole vectors (three: AVX-512's 8 x 48).
    vector = getattr(r, "register_tile_chunk_bytes", CHUNK_BYTES)
    if not 16 <= nbytes <= MAX_ROW_BYTES or (
            nbytes & (nbytes - 1) if nbytes <= vector else nbytes % vector):
        return None
    chunks = max(1, nbytes // vector)
    chunk_width, chunk_bytes = width // chunks, nbytes // chunks
    x, y = rows_loop.var, cols_loop.var
    starts = []
    for row in range(rows):
        offset = ir.substitute(linear(r, store.tensor, store.indices), {x: ir.Const(row)})
        if coefficient(offset, y) != 1:
            return None
        start = ir.substitute(offset, {y: ir.Const(0)})
        if ir.variables(start) & {loop.var for loop in reductions}:
            return None
        starts += [r.expr(simplify(ir.add(start, ir.Const(c * chunk_width))))
                   for c in range(chunks)]
    vec = f"lw_vec_{dtype.name}_{chunk_width}"
    scale, update = tile_invariant_factor(store, {x, y} | {loop.var for loop in reductions})
    updates = []
    for row in range(rows):
        for c in range(chunks):
            shifted = ir.Binary("+", ir.Var(y), ir.Const(c * chunk_width), ir.Var(y).dtype)
            value = ir.substitute(update, {x: ir.Const(row), y: shifted})
            text = _vector_expr(r, value, y, chunk_width, vec)
            if text is None:
                return None
            updates.append(text)
    r.preamble.add(_vector_type(vec, dtype, chunk_bytes))
    acc = c_name(store.tensor)
    regs = [f"lw_r{row}_{c}" for row in range(rows) for c in range(chunks)]
    inner = indent + "  "
    lines = [f"{indent}{{", f"{inner}{vec} {', '.join(regs)};"]
    if scale is not None:  # the sums start at zero; the tile adds scale * sum at the end
        lines += [f"{inner}{reg} = ({vec}){{0}};" for reg in regs]
    else:
        loaded = _loaded(r, regs, starts, acc, f"{dtype.name}_{chunk_width}", inner)
        lines += loaded if fill is None else _started(r, fill, regs, vec, loaded, inner)
    for depth, loop in enumerate(reductions):
        v, pad = c_var(loop.var), inner + "  " * depth
        lines.append(f"{pad}for ({r.index_type} {v} = {r.expr(loop.init)}; "
                     f"{r.expr(loop.cond)}; {v} += {loop.step}) {{")
    body = inner + "  " * len(reductions)
    if len(reductions) == 1:  # (a convolution's r, s, c read packed weights: none there)
        lines += _prefetches(r, update, y, reductions[0].var, chunks, chunk_width, body,
                             PREFETCH_STEPS)
    lines += [f"{body}{reg} += {text};" for reg, text in zip(regs, updates, strict=True)]
    lines += [f"{inner}{'  ' * depth}}}" for depth in reversed(range(len(reductions)))]
    if scale is not None:
        factor = r.expr(scale, 14)
        loaded = [f"{inner}{reg} = lw_vload_{dtype.name}_{chunk_width}(&{acc}[{s}]) + "
                  f"{factor} * {reg};" for reg, s in zip(regs, starts, strict=True)]
        lines += loaded if fill is None else _started(
            r, fill, regs, vec, loaded, inner, f" + {factor} * {{reg}}")
    lines += [f"{inner}__builtin_memcpy(&{acc}[{s}], &{reg}, sizeof {reg});"
              for reg, s in zip(regs, starts, strict=True)]
    return [*lines, f"{indent}}}"]


@dataclass(frozen=True)
class TileFill:
    """A full tile's fill: every element of the tile set to `value` (an expression that reads
    nothing) before the tile's loops, where `when` holds (None: always)."""

    value: ir.Expr
    when: ir.Expr | None = None


def tile_fill(fill: Node, nest: Node) -> TileFill | None:
    """`fill` as the start of register tile `nest` when it sets exactly the tile's elements
    to a value that reads nothing, over the tile's own rows and columns loops (ir/localize's
    `_tile_fill`), possibly under an `if` without an else; else None. The registers then
    start from the value: loading what the fill had just stored costs a store-forwarding
    stall per register wherever the C compiler merged the fill's stores into other widths
    (gcc's 32-byte stores under 64-byte loads: depthwise conv2d's 4 x 32 tiles)."""
    when = None
    if isinstance(fill, If) and fill.orelse is None:
        when, fill = fill.cond, fill.then
    shape = tile_shape(nest) if isinstance(nest, For) else None
    if shape is None or not isinstance(fill, For) or not isinstance(fill.body, For):
        return None
    _, rows, cols, store = shape
    element = fill.body.body
    if not (isinstance(element, Store) and element.reduce is None and _same_loop(fill, rows)
            and _same_loop(fill.body, cols) and element.tensor == store.tensor
            and element.indices == store.indices and not ir.loads(element.value)
            and not ir.variables(element.value) & {rows.var, cols.var}):
        return None
    return TileFill(element.value, when)


def _same_loop(a: For, b: For) -> bool:
    return (a.var, a.init, a.cond, a.step) == (b.var, b.init, b.cond, b.step)


def _loaded(r, regs: list[str], starts: list[str], acc: str, suffix: str,
            indent: str) -> list[str]:
    """The registers loaded from the tile's rows."""
    if getattr(r, "register_tile_by_value", False):  # see ArmCBackend
        return [f"{indent}{reg} = lw_vload_{suffix}(&{acc}[{s}]);"
                for reg, s in zip(regs, starts, strict=True)]
    return [f"{indent}__builtin_memcpy(&{reg}, &{acc}[{s}], sizeof {reg});"
            for reg, s in zip(regs, starts, strict=True)]


def _started(r, fill: TileFill, regs: list[str], vec: str, loaded: list[str],
             indent: str, rest: str = "") -> list[str]:
    """Each register set to the fill's value (plus `rest`, formatted with {reg}), under
    `fill.when` with `loaded` as the else branch."""
    value = r.expr(fill.value, 14)
    splat = [f"{indent}{reg} = (({vec}){{0}} + {value}){rest.format(reg=reg)};"
             for reg in regs]
    if fill.when is None:
        return splat
    deeper = ["  " + line for line in splat]
    return [f"{indent}if ({r.expr(fill.when)}) {{", *deeper, f"{indent}}} else {{",
            *["  " + line for line in loaded], f"{indent}}}"]


def tile_invariant_factor(store, loop_vars: set[str]) -> tuple[ir.Expr | None, ir.Expr]:
    """(f, rest) where the tile's update is `f * rest` with f invariant in every loop of the
    tile (PolyBench gemm's `alpha * A[i, k] * B[k, j]`: alpha), else (None, the update). The
    tile then sums `rest` from zero and adds `f * sum` once: f costs a multiplication per tile
    element instead of one per A element of every k step (6 per 12 FMAs in a 6x8 f64 tile)."""
    fs = factors(store.value)
    invariant = [f for f in fs if not ir.variables(f) & loop_vars
                 and all(ld.tensor != store.tensor for ld in ir.loads(f))]
    rest = [f for f in fs if not any(f is g for g in invariant)]
    if not invariant or len(rest) < 2:
        return None, store.value
    return functools.reduce(ir.mul, invariant), functools.reduce(ir.mul, rest)


def tile_shape(node: For):
    """(reduction loops, rows loop, columns loop, store) of an accumulator nest whose rows and
    columns loops count from 0 to a constant, or None."""
    shape = accumulator_nest(node)
    if shape is None or not (extent(shape[1]) and extent(shape[2])):
        return None
    return shape


def extent(loop: For) -> int | None:
    """The constant trip count of a loop `for v = 0 while v < E`."""
    if loop.step != 1 or constant_value(loop.init) != 0:
        return None
    match loop.cond:
        case ir.Binary(op="<", left=ir.Var(name=v), right=ir.Const(value=e)) if v == loop.var:
            return e
    return None


def linear(r, tensor: str, indices: tuple[ir.Expr, ...]) -> ir.Expr:
    """The row-major offset of an element as an expression."""
    shape = r.shapes[tensor]
    offset = indices[0] if indices else ir.Const(0)
    for dim, index in zip(shape[1:], indices[1:], strict=True):
        offset = ir.add(ir.mul(offset, dim), index)
    return offset


def _scalar_tile(r, indent: str, reductions, rows_loop, cols_loop, store) -> list[str] | None:
    """The tile as rows x columns scalar accumulators (a core without SIMD registers)."""
    rows, width = extent(rows_loop), extent(cols_loop)
    if rows * width > MAX_SCALARS:
        return None
    x, y = rows_loop.var, cols_loop.var
    acc, ctype = c_name(store.tensor), store.value.dtype.c_type
    cells = [(row, col) for row in range(rows) for col in range(width)]
    at = {}
    for row, col in cells:
        fixed = {x: ir.Const(row), y: ir.Const(col)}
        offset = simplify(ir.substitute(linear(r, store.tensor, store.indices), fixed))
        if ir.variables(offset) & {loop.var for loop in reductions}:
            return None
        at[row, col] = r.expr(offset)
    regs = {cell: f"lw_s{cell[0]}_{cell[1]}" for cell in cells}
    inner = indent + "  "
    lines = [f"{indent}{{"]
    lines += [f"{inner}{ctype} {regs[c]} = {acc}[{at[c]}];" for c in cells]
    for depth, loop in enumerate(reductions):
        v, pad = c_var(loop.var), inner + "  " * depth
        lines.append(f"{pad}for ({r.index_type} {v} = {r.expr(loop.init)}; "
                     f"{r.expr(loop.cond)}; {v} += {loop.step}) {{")
    body = inner + "  " * len(reductions)
    for row, col in cells:
        value = ir.substitute(store.value, {x: ir.Const(row), y: ir.Const(col)})
        lines.append(f"{body}{regs[row, col]} += {r.expr(value)};")
    lines += [f"{inner}{'  ' * depth}}}" for depth in reversed(range(len(reductions)))]
    lines += [f"{inner}{acc}[{at[c]}] = {regs[c]};" for c in cells]
    return [*lines, f"{indent}}}"]


def _prefetches(r, update: ir.Expr, y: str, k: str, chunks: int, width: int,
                indent: str, steps: int) -> list[str]:
    """Software prefetches, `steps` iterations of the reduction loop `k` ahead, of the vector
    rows that each iteration reads from a kernel tensor at a stride
    that is not a small constant (a row of B[k, j] read in place: each step's row is on
    another page, where the hardware's stride prefetchers stop). Packed panels (local
    buffers) need none."""
    lines: list[str] = []
    tensors = getattr(getattr(r, "kernel", None), "tensors", {}) if steps else {}
    min_bits = 8 * PREFETCH_MIN_STRIDE
    for load in ir.loads(update):
        offset = linear(r, load.tensor, load.indices)
        step = coefficient(offset, k)
        if load.tensor not in tensors or coefficient(offset, y) != 1 \
                or step == 0 or (step is not None and abs(step) * load.dtype.bits < min_bits):
            continue
        ahead = ir.substitute(offset, {y: ir.Const(0), k: ir.add(ir.Var(k), ir.Const(steps))})
        for c in range(chunks):
            start = r.expr(simplify(ir.add(ahead, ir.Const(c * width))))
            lines.append(f"{indent}__builtin_prefetch(&{c_name(load.tensor)}[{start}]);")
    return sorted(set(lines), key=lines.index)


def _vector_expr(r, e: ir.Expr, y: str, width: int, vec: str) -> str | None:
    """C text of `e` as a vector over y (a scalar where it does not depend on y); `vec` is the
    accumulator's vector type (what a widening cast converts to)."""
    if all(not (isinstance(x, ir.Var) and x.name == y) for x in ir.walk(e)):
        return r.expr(e, 14)
    match e:
        case ir.Cast(dtype=t, operand=ir.Load(dtype=narrow) as load) \
                if narrow.name in ("i8", "i16") and t.name == "i32":
            text = _vector_expr(r, load, y, width, vec)
            if text is None:
                return None
            r.preamble.add(_vector_type(f"lw_vec_{narrow.name}_{width}", narrow,
                                        width * narrow.bits // 8))
            return f"__builtin_convertvector({text}, {vec})"
        case ir.Cast(dtype=t, operand=ir.Load(dtype=narrow) as load) \
                if narrow.name in ("f16", "bf16") and t.name == "f32" and vec.endswith(
                    f"f32_{width}"):
            at = _row_pointer(r, load, y)
            return None if at is None else _widened_floats(r, narrow, at, width, vec)
        case ir.Load():
            at = _row_pointer(r, e, y)
            return None if at is None else f"lw_vload_{e.dtype.name}_{width}({at})"
        case ir.Binary(op=op, left=a, right=b) if op in VECTOR_OPS:
            left, right = _vector_expr(r, a, y, width, vec), _vector_expr(r, b, y, width, vec)
            if left is None or right is None:
                return None
            return f"({left} {op} {right})"
    return None


def _row_pointer(r, load: ir.Load, y: str) -> str | None:
    """C text of the address where `load`'s elements along y start, if they are contiguous."""
    offset = linear(r, load.tensor, load.indices)
    if coefficient(offset, y) != 1:
        return None
    return f"&{c_name(load.tensor)}[{r.expr(ir.substitute(offset, {y: ir.Const(0)}))}]"


def _widened_floats(r, narrow: DType, at: str, width: int, vec: str) -> str:
    """C text loading `width` f16 or bf16 elements from address `at` as the f32 vector type
    `vec`: bf16 by a shift into the high half of each f32 (exact); f16 by the ISA's
    conversion where the build has one (`load_f16` of its f32 vectors, backends/simd_isas.py:
    vcvtph2ps, a vector at a time), else element by element (`lw_f16_to_f32`)."""
    if narrow.name == "bf16":
        r.preamble.add(_vector_type(f"lw_vec_bf16_{width}", narrow, width * 2))
        bits, wide = f"lw_vload_bf16_{width}({at})", f"lw_vec_u32_{width}"
        r.preamble.add(f"typedef uint32_t {wide} __attribute__((vector_size({4 * width})));\n")
        return f"(({vec})(__builtin_convertvector({bits}, {wide}) << 16))"
    # (its own name for the vector type: the preamble is sorted, this may come first)
    name, floats = f"lw_widen_f16_{width}", f"lw_wf_{width}"
    loop = f"  for (int q = 0; q < {width}; q++) v[q] = lw_f16_to_f32(p[q]);\n"
    isa = getattr(r, "vector_isa", None)
    t = isa.types.get("f32") if isa is not None else None
    if t is not None and "load_f16" in t.ops and width % t.lanes == 0:
        r.vector_isa_used = True  # (its header)
        pieces = "".join(
            f"  {{ {t.ctype} x = {t.op('load_f16', f'p + {q}')}; "
            f"__builtin_memcpy((char *)&v + {4 * q}, &x, sizeof x); }}\n"
            for q in range(0, width, t.lanes))
        loop = f"#if {isa.guard}\n{pieces}#else\n{loop}#endif\n"
    r.preamble.add(
        f"typedef float {floats} __attribute__((vector_size({4 * width})));\n"
        f"static inline {floats} {name}(const uint16_t *p) {{\n  {floats} v;\n{loop}"
        f"  return v;\n}}\n")
    return f"{name}({at})"


def _vector_type(name: str, dtype: DType, nbytes: int) -> str:
    c = dtype.c_type
    width = nbytes * 8 // dtype.bits
    return (f"typedef {c} {name} __attribute__((vector_size({nbytes})));\n"
            f"static inline {name} lw_vload_{dtype.name}_{width}(const {c} *p) {{\n"
            f"  {name} v; __builtin_memcpy(&v, p, sizeof v); return v;\n}}\n")
