"""Copies that transpose blocks in vector registers.

A copy that permutes its tensor's dimensions, blocked by the default schedule
(`passes/default.transposition_steps`), ends in two loops of a cache line each

    for r in block:                      # the read tensor's last (unit-stride) variable
      for w in block (vector):           # the written tensor's last variable
        dst[.., r, w] = src[.., w, .., r]

where the vector loop reads `src` one element per row (a gather: a convolution's channels-last
copy of its data spent 10% of a stride-2 layer that way). Here each square of L x L elements,
L a vector's lanes, is L vector loads of `src`'s rows along r, a transposition in registers by
log2(L) rounds of two-vector shuffles (row i and row i + h exchange their h x h off-diagonal
blocks, h = 1, 2, 4, ...), and L vector stores along w. GCC and Clang vector extensions, so it
is portable C for every target with vectors. Where a block is cut by the tensor's edge, or the
shape differs, the loops render as before.
"""

from __future__ import annotations

from loopweave.backends.c_names import c_name
from loopweave.backends.register_tile import CHUNK_BYTES, linear
from loopweave.ir import expr as ir
from loopweave.ir.affine import coefficient, simplify
from loopweave.ir.localize import full_tile_loop
from loopweave.ir.loops import Block, For, Store, max_terms, upper_bounds
from loopweave.ir.types import BOOL, INDEX

#: Element widths (bits) of the copies transposed in registers (the shuffle masks' ints).
MASK_TYPES = {32: "int32_t", 64: "int64_t"}


def transposition_rounds(lanes: int) -> list[tuple[int, list[int], list[int]]]:
    """Per round (h = 1, 2, 4, .. < lanes): h, and the shuffle indices into the pair (row i,
    row i + h), 0 .. 2 lanes - 1, of the new row i and the new row i + h."""
    rounds, h = [], 1
    while h < lanes:
        low = [j if j & h == 0 else lanes + j - h for j in range(lanes)]
        high = [j + h if j & h == 0 else lanes + j for j in range(lanes)]
        rounds.append((h, low, high))
        h *= 2
    return rounds


def transpose_helper(name: str, ctype: str, bits: int, lanes: int) -> str:
    """The C function `name(src, src_row, dst, dst_row)`: dst's rows (dst_row elements apart)
    are the columns of the lanes x lanes block of src's rows (src_row apart)."""
    vec, mask = f"{name}_vec", f"{name}_mask"
    head = [f"typedef {ctype} {vec} __attribute__((vector_size({lanes * bits // 8})));",
            f"typedef {MASK_TYPES[bits]} {mask} __attribute__((vector_size({lanes * bits // 8})));"]
    # GCC's generic shuffle takes a mask vector, Clang's constant indices.
    bodies = [_transpose_body(name, ctype, vec, lanes, lambda ix: (
        f"__builtin_shufflevector(a, b, {', '.join(map(str, ix))})")),
        _transpose_body(name, ctype, vec, lanes, lambda ix: (
            f"__builtin_shuffle(a, b, ({mask}){{{', '.join(map(str, ix))}}})"))]
    return "\n".join([*head, "#if defined(__clang__)", *bodies[0], "#else", *bodies[1],
                      "#endif", ""])


def _transpose_body(name: str, ctype: str, vec: str, lanes: int, shuffle) -> list[str]:
    rows = [f"r{i}" for i in range(lanes)]
    lines = [f"static inline void {name}(const {ctype} *src, int64_t src_row, {ctype} *dst,",
             "    int64_t dst_row) {",
             f"  {vec} {', '.join(rows)};"]
    lines += [f"  __builtin_memcpy(&r{i}, src + {i} * src_row, sizeof r{i});"
              for i in range(lanes)]
    for h, low, high in transposition_rounds(lanes):
        for i in range(lanes):
            if not i & h:
                lines.append(f"  {{ const {vec} a = r{i}, b = r{i + h}; r{i} = {shuffle(low)}; "
                             f"r{i + h} = {shuffle(high)}; }}")
    lines += [f"  __builtin_memcpy(dst + {j} * dst_row, &r{j}, sizeof r{j});"
              for j in range(lanes)]
    return [*lines, "}"]


def _block(node: For) -> tuple[For, For, Store, ir.Load] | None:
    """(rows loop, vector loop, store, load) of a two-loop copy nest, or None."""
    if node.kind != "serial":
        return None  # (a parallel rows loop keeps its threads)
    inner = node.body
    while isinstance(inner, Block) and len(inner.body) == 1:
        inner = inner.body[0]
    if not isinstance(inner, For) or inner.kind != "vector":
        return None
    store = inner.body
    while isinstance(store, Block) and len(store.body) == 1:
        store = store.body[0]
    if not isinstance(store, Store) or store.reduce is not None or \
            not isinstance(store.value, ir.Load) or store.value.tensor == store.tensor:
        return None  # (a copy within one tensor may read what it wrote: covariance's)
    if node.var in ir.variables(inner.init) | ir.variables(inner.cond):
        return None  # a triangle's rows: no square blocks
    return node, inner, store, store.value


def _full_block(loop: For, lanes: int) -> tuple[ir.Expr, int, ir.Expr | None] | None:
    """(the loop's first value in a whole block, its trip count there, a multiple of `lanes`;
    the condition that the block is whole, None for always: the loop's only bound is the
    block's), or None (`localize.full_tile_loop`, as for register tiles)."""
    full = full_tile_loop(loop, {}) if loop.step == 1 else None
    if full is None or full[1] % lanes:
        return None
    start, extent, cond = full
    whole = len(upper_bounds(loop.cond, loop.var)) == 1 and len(max_terms(loop.init)) == 1
    return start, extent, None if whole else cond


def render_transpose(r, node: For, indent: str) -> list[str] | None:
    """Lines for `node` as blocks transposed in registers, or None when it is not such a
    copy or the renderer has no vectors (its register tiles' width: `render_register_tile`)."""
    shape = _block(node)
    if shape is None or r.vector_isa is None or getattr(r, "scalar_register_tiles", False):
        return None
    rows, cols, store, load = shape
    dtype = load.dtype
    lanes = getattr(r, "register_tile_chunk_bytes", CHUNK_BYTES) * 8 // dtype.bits
    if dtype.bits not in MASK_TYPES or lanes < 2:
        return None
    src, dst = linear(r, load.tensor, load.indices), linear(r, store.tensor, store.indices)
    # unit stride along the block's rows in src and its columns in dst; the other strides may
    # be sizes (a generic build's)
    if coefficient(src, rows.var) != 1 or coefficient(dst, cols.var) != 1 or \
            cols.var not in ir.variables(src) or rows.var not in ir.variables(dst):
        return None
    blocks = [_full_block(loop, lanes) for loop in (rows, cols)]
    if None in blocks:
        return None
    (row_start, row_extent, row_cond), (col_start, col_extent, col_cond) = blocks

    def at(offset: ir.Expr, row: ir.Expr, col: ir.Expr) -> ir.Expr:
        return simplify(ir.substitute(offset, {rows.var: row, cols.var: col}))

    zero = ir.Const(0)
    src_row = simplify(ir.Binary("-", at(src, zero, ir.Const(1)), at(src, zero, zero), INDEX))
    dst_row = simplify(ir.Binary("-", at(dst, ir.Const(1), zero), at(dst, zero, zero), INDEX))
    name = f"lw_transpose_{dtype.name}_{lanes}"
    r.preamble.add(transpose_helper(name, r.ctype(dtype), dtype.bits, lanes))
    calls = []
    for a in range(0, row_extent, lanes):
        for b in range(0, col_extent, lanes):
            row = simplify(ir.Binary("+", row_start, ir.Const(a), INDEX))
            col = simplify(ir.Binary("+", col_start, ir.Const(b), INDEX))
            calls.append(f"{indent}  {name}(&{c_name(load.tensor)}[{r.expr(at(src, row, col))}], "
                         f"{r.expr(src_row)}, &{c_name(store.tensor)}"
                         f"[{r.expr(at(dst, row, col))}], {r.expr(dst_row)});")
    conds = [c for c in (row_cond, col_cond) if c is not None]
    if not conds:
        return [f"{indent}{{", *calls, f"{indent}}}"]
    cond = conds[0] if len(conds) == 1 else ir.Binary("and", *conds, BOOL)
    return [f"{indent}if ({r.expr(cond)}) {{", *calls, f"{indent}}} else {{",
            *r.render_plain_for(node, indent + "  "), f"{indent}}}"]
