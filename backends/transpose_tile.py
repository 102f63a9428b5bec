"""Copies that transpose blocks in vector registers.

A copy that permutes its tensor's dimensions ends in loops where one side walks the read
tensor with unit stride (the block's rows) and the other the written one (its columns):

    for w in block:                      # the written tensor's last variable
      for r in block:                    # the read tensor's last (unit-stride) variable
        dst[.., r, w] = src[.., w, .., r]

Either loop alone reads or writes one element per row (a gather or a scatter: a
convolution's channels-last copy of its data spent 10% of a stride-2 layer that way). Here
each square of L x L elements, L a vector's lanes, is L vector loads of `src`'s rows along r,
a transposition in registers by log2(L) rounds of two-vector shuffles (row i and row i + h
exchange their h x h off-diagonal blocks, h = 1, 2, 4, ...), and L vector stores along w. GCC
and Clang vector extensions, so it is portable C for every target with vectors.

The copies come from two places: the default schedule blocks a kernel's own permuting copy by
a cache line each way (`passes/default.transposition_steps`), and a localized buffer is packed
or drained in the buffer's layout (`ir/localize`): a convolution's weights F[k, c, r, s]
packed [r][s][c][k], its output tile Y_acc[x][k] drained into Y[k, y, x]. There one side
is a run of loops that walks memory as one (r and s: 9 elements in a row of F and 9 rows of
F_pack apart, evenly), and a side may be shorter than a vector or not a multiple of one: the
block's rows are then loaded, and its columns stored, under a mask (AVX-512 and AVX masked
moves; elsewhere a partial memcpy). Where a block is cut by the tensor's edge, or the shape
differs, the loops render as before.
"""

from __future__ import annotations

from dataclasses import dataclass

from loopweave.backends.c_names import c_name
from loopweave.backends.register_tile import CHUNK_BYTES, linear
from loopweave.ir import expr as ir
from loopweave.ir.affine import coefficient, constant_value, simplify
from loopweave.ir.localize import full_tile_loop
from loopweave.ir.loops import Block, For, Store, max_terms, upper_bounds
from loopweave.ir.types import BOOL, INDEX

#: Element widths (bits) of the copies transposed in registers (the shuffle masks' ints).
MASK_TYPES = {32: "int32_t", 64: "int64_t"}
#: Blocks written out per copy nest at most (each a call of the helper): a longer copy keeps
#: its loops (a copy nest that large is not a buffer's tile).
MAX_BLOCKS = 16
#: Loops in a copy nest at most: one side's loop and a run of the other side's.
MAX_NEST = 4


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


def helper_name(base: str, lanes: int, rows: int, cols: int) -> str:
    """The helper's name for a block of `rows` x `cols` valid elements (rows: along the read
    tensor's unit stride): `base` for a whole square."""
    return base if rows == cols == lanes else f"{base}_r{rows}c{cols}"


def transpose_helper(base: str, ctype: str, bits: int, lanes: int, rows: int | None = None,
                     cols: int | None = None) -> str:
    """The C function `helper_name(base, ..)(src, src_row, dst, dst_row)`: dst's rows (dst_row
    elements apart) are the columns of the block of src's rows (src_row apart): `cols` rows of
    `src` of `rows` elements each (all lanes unless given) become `rows` rows of `dst` of
    `cols` elements each. Its vector types are defined once for every block shape."""
    rows, cols = rows or lanes, cols or lanes
    name = helper_name(base, lanes, rows, cols)
    vec, mask = f"{base}_vec", f"{base}_mask"
    head = [f"#ifndef {vec.upper()}", f"#define {vec.upper()}",
            f"typedef {ctype} {vec} __attribute__((vector_size({lanes * bits // 8})));",
            f"typedef {MASK_TYPES[bits]} {mask} __attribute__((vector_size({lanes * bits // 8})));",
            "#endif"]
    if (rows, cols) != (lanes, lanes) and lanes * bits in (256, 512):
        head = ["#if defined(__AVX__)", "#include <immintrin.h>", "#endif", *head]
    moves = _partial_moves(bits, lanes, rows, cols)
    # GCC's generic shuffle takes a mask vector, Clang's constant indices.
    bodies = [_transpose_body(name, ctype, vec, lanes, rows, cols, lambda ix: (
        f"__builtin_shufflevector(a, b, {', '.join(map(str, ix))})"), moves),
        _transpose_body(name, ctype, vec, lanes, rows, cols, lambda ix: (
            f"__builtin_shuffle(a, b, ({mask}){{{', '.join(map(str, ix))}}})"), moves)]
    return "\n".join([*head, "#if defined(__clang__)", *bodies[0], "#else", *bodies[1],
                      "#endif", ""])


#: Per ISA: its preprocessor condition (None: the portable fallback), and format strings of
#: the C line that loads register {r} (of type {vec}) from {p} and of the one that stores it.
Moves = list[tuple[str | None, str, str]]


def _partial_moves(bits: int, lanes: int, rows: int, cols: int) -> Moves:
    """Masked loads of `rows` elements and stores of `cols` (x86 with vectors of the block's
    width), else a memcpy of the valid part (a zeroed register first: the shuffles read it)."""
    load_mask, store_mask = (1 << rows) - 1, (1 << cols) - 1
    size = "ps" if bits == 32 else "pd"
    elem = "float" if bits == 32 else "double"
    variants: Moves = []
    if lanes * bits == 512:
        m = "__mmask16" if lanes == 16 else "__mmask8"
        variants.append(("defined(__AVX512F__)",
                         f"{{r}} = ({{vec}})_mm512_maskz_loadu_{size}(({m}){load_mask}, {{p}});",
                         f"_mm512_mask_storeu_{size}({{p}}, ({m}){store_mask}, "
                         f"(__m512{'' if bits == 32 else 'd'}){{r}});"))
    if lanes * bits == 256:
        def lanes_mask(n: int) -> str:
            if bits == 32:
                return f"_mm256_setr_epi32({', '.join('-1' if i < n else '0' for i in range(8))})"
            return f"_mm256_setr_epi64x({', '.join('-1' if i < n else '0' for i in range(4))})"
        variants.append(("defined(__AVX__)",
                         f"{{r}} = ({{vec}})_mm256_maskload_{size}((const {elem} *)({{p}}), "
                         f"{lanes_mask(rows)});",
                         f"_mm256_maskstore_{size}(({elem} *)({{p}}), {lanes_mask(cols)}, "
                         f"(__m256{'' if bits == 32 else 'd'}){{r}});"))
    variants.append((None,
                     f"{{r}} = ({{vec}}){{{{0}}}}; __builtin_memcpy(&{{r}}, {{p}}, "
                     f"{rows * bits // 8});",
                     f"__builtin_memcpy({{p}}, &{{r}}, {cols * bits // 8});"))
    return variants


def _transpose_body(name: str, ctype: str, vec: str, lanes: int, rows: int, cols: int,
                    shuffle, moves: Moves) -> list[str]:
    regs = [f"r{i}" for i in range(lanes)]
    lines = [f"static inline void {name}(const {ctype} *src, int64_t src_row, {ctype} *dst,",
             "    int64_t dst_row) {",
             f"  {vec} {', '.join(regs)};"]
    loads = [f"  __builtin_memcpy(&r{i}, src + {i} * src_row, sizeof r{i});" if rows == lanes
             else None for i in range(cols)]
    stores = [f"  __builtin_memcpy(dst + {j} * dst_row, &r{j}, sizeof r{j});" if cols == lanes
              else None for j in range(rows)]
    lines += _by_isa(moves, [(i, f"src + {i} * src_row") for i in range(cols)], loads, vec,
                     load=True)
    lines += [f"  r{i} = ({vec}){{0}};" for i in range(cols, lanes)]
    for h, low, high in transposition_rounds(lanes):
        for i in range(lanes):
            if not i & h:
                lines.append(f"  {{ const {vec} a = r{i}, b = r{i + h}; r{i} = {shuffle(low)}; "
                             f"r{i + h} = {shuffle(high)}; }}")
    lines += _by_isa(moves, [(j, f"dst + {j} * dst_row") for j in range(rows)], stores, vec,
                     load=False)
    return [*lines, "}"]


def _by_isa(moves: Moves, at: list[tuple[int, str]], whole: list[str | None], vec: str,
            load: bool) -> list[str]:
    """The loads (or stores) of registers `at`: whole-vector lines where given, else the
    partial ones under each ISA's condition."""
    if all(line is not None for line in whole):
        return [line for line in whole if line is not None]
    lines = []
    for n, (cond, load_fmt, store_fmt) in enumerate(moves):
        if cond is not None:
            lines.append(f"#{'elif' if n else 'if'} {cond}")
        elif n:
            lines.append("#else")
        fmt = load_fmt if load else store_fmt
        lines += [f"  {fmt.format(r=f'r{i}', p=p, vec=vec)}" for i, p in at]
    return [*lines, "#endif"] if len(moves) > 1 else lines


@dataclass(frozen=True)
class _Side:
    """One side of a block: a loop, or a run of loops that walks memory as one (trip counts
    `extents`, outermost first; the whole run's `extent`)."""
    loops: tuple[For, ...]
    starts: tuple[ir.Expr, ...]
    extents: tuple[int, ...]

    @property
    def extent(self) -> int:
        total = 1
        for e in self.extents:
            total *= e
        return total

    def at(self, position: int) -> dict[str, ir.Expr]:
        """Each loop's value at `position` along the run (row-major)."""
        values = {}
        for loop, start, e in zip(reversed(self.loops), reversed(self.starts),
                                  reversed(self.extents), strict=True):
            values[loop.var] = simplify(ir.Binary("+", start, ir.Const(position % e), INDEX))
            position //= e
        return values


def _copy_nest(node: For) -> tuple[list[For], Store, ir.Load] | None:
    """The loops of a perfect nest from `node` to a plain copy between two tensors (at most
    MAX_NEST loops, the rows loop serial), its store and its load; or None."""
    if node.kind != "serial":
        return None  # (a parallel rows loop keeps its threads)
    loops, inner = [], node
    while isinstance(inner, For) and len(loops) < MAX_NEST:
        loops.append(inner)
        inner = inner.body
        while isinstance(inner, Block) and len(inner.body) == 1:
            inner = inner.body[0]
    if len(loops) < 2 or not isinstance(inner, Store) or inner.reduce is not None or \
            not isinstance(inner.value, ir.Load) or inner.value.tensor == inner.tensor:
        return None  # (a copy within one tensor may read what it wrote: covariance's)
    if any(loop.kind == "parallel" for loop in loops[1:]):
        return None
    for n, loop in enumerate(loops):  # a triangle's rows: no square blocks
        if {outer.var for outer in loops[:n]} & (ir.variables(loop.init) |
                                                 ir.variables(loop.cond)):
            return None
    return loops, inner, inner.value


def _full(loop: For) -> tuple[ir.Expr, int, ir.Expr | None] | None:
    """(the loop's first value in a whole block, its trip count there; the condition that
    the block is whole, None for always: the loop's only bound is the block's), or None
    (`localize.full_tile_loop`, as for register tiles)."""
    full = full_tile_loop(loop, {}) if loop.step == 1 else None
    if full is None:
        return None
    start, extent, cond = full
    whole = len(upper_bounds(loop.cond, loop.var)) == 1 and len(max_terms(loop.init)) == 1
    return start, extent, None if whole else cond


def _run(loops: list[For], fulls: list, offsets: tuple[ir.Expr, ir.Expr]) -> _Side | None:
    """The loops as one side when they walk both tensors evenly (each loop's stride in each
    is the next one's times its trip count; loops of one trip are left out), else None."""
    kept = [(loop, full) for loop, full in zip(loops, fulls, strict=True) if full[1] > 1]
    if not kept:
        kept = [(loops[-1], fulls[-1])]
    for offset in offsets:
        for (outer, _), (inner, full) in zip(kept, kept[1:], strict=False):
            outer_c, inner_c = coefficient(offset, outer.var), coefficient(offset, inner.var)
            if outer_c is None or inner_c is None or outer_c != inner_c * full[1] or \
                    inner_c == 0:
                return None
    return _Side(tuple(loop for loop, _ in kept), tuple(f[0] for _, f in kept),
                 tuple(f[1] for _, f in kept))


def render_transpose(r, node: For, indent: str) -> list[str] | None:
    """Lines for `node` as blocks transposed in registers, or None when it is not such a
    copy or the renderer has no vectors (its register tiles' width: `render_register_tile`)."""
    if r.vector_isa is None or getattr(r, "scalar_register_tiles", False):
        return None
    shape = _copy_nest(node)
    if shape is None:
        return None
    loops, store, load = shape
    dtype = load.dtype
    lanes = getattr(r, "register_tile_chunk_bytes", CHUNK_BYTES) * 8 // dtype.bits
    if dtype.bits not in MASK_TYPES or lanes < 2:
        return None
    fulls = [_full(loop) for loop in loops]
    if None in fulls:
        return None
    src, dst = linear(r, load.tensor, load.indices), linear(r, store.tensor, store.indices)
    first = _Side((loops[0],), (fulls[0][0],), (fulls[0][1],))
    rest = _run(loops[1:], fulls[1:], (src, dst))
    if rest is None:
        return None
    # The rows walk src with unit stride, the columns dst; fixed: the loops of one trip.
    fixed = {loop.var: full[0] for loop, full in zip(loops[1:], fulls[1:], strict=True)
             if loop not in rest.loops}
    src, dst = (simplify(ir.substitute(e, fixed)) for e in (src, dst))
    for rows, cols in ((first, rest), (rest, first)):
        unit_src, unit_dst = rows.loops[-1].var, cols.loops[-1].var
        if coefficient(src, unit_src) == 1 and coefficient(dst, unit_dst) == 1 and \
                cols.loops[-1].var in ir.variables(src) and \
                all(loop.var in ir.variables(dst) for loop in rows.loops):
            break
    else:
        return None
    if rows.extent < 2 or cols.extent < 2:
        return None  # (a plain copy along one side)
    blocks = [(a, b) for a in range(0, rows.extent, lanes) for b in range(0, cols.extent, lanes)]
    if len(blocks) > MAX_BLOCKS:
        return None

    def at(offset: ir.Expr, row: int, col: int) -> ir.Expr:
        return simplify(ir.substitute(offset, {**rows.at(row), **cols.at(col)}))

    src_row = simplify(ir.Binary("-", at(src, 0, 1), at(src, 0, 0), INDEX))
    dst_row = simplify(ir.Binary("-", at(dst, 1, 0), at(dst, 0, 0), INDEX))
    stride = constant_value(dst_row)
    if stride is not None and abs(stride) < cols.extent:
        return None  # rows of dst that overlap: the loops' order decides what stays
    calls = []
    for a, b in blocks:
        n_rows, n_cols = min(lanes, rows.extent - a), min(lanes, cols.extent - b)
        base = f"lw_transpose_{dtype.name}_{lanes}"
        name = helper_name(base, lanes, n_rows, n_cols)
        r.preamble.add(transpose_helper(base, r.ctype(dtype), dtype.bits, lanes, n_rows, n_cols))
        calls.append(f"{indent}  {name}(&{c_name(load.tensor)}[{r.expr(at(src, a, b))}], "
                     f"{r.expr(src_row)}, &{c_name(store.tensor)}"
                     f"[{r.expr(at(dst, a, b))}], {r.expr(dst_row)});")
    conds = [full[2] for full in fulls if full[2] is not None]
    if not conds:
        return [f"{indent}{{", *calls, f"{indent}}}"]
    cond = conds[0]
    for more in conds[1:]:
        cond = ir.Binary("and", cond, more, BOOL)
    return [f"{indent}if ({r.expr(cond)}) {{", *calls, f"{indent}}} else {{",
            *r.render_plain_for(node, indent + "  "), f"{indent}}}"]
