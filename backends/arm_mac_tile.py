"""Register tiles in each Arm core's vector MAC idiom: `arm_mac`'s int8 idiom (and on the M55
f32's) over a tile of rows x lanes, so that one load of Q's lanes serves every row.

The shape is a register tile's full-tile nest (see `backends/register_tile.py`; the default
schedule's `cache_write` of an int8 contraction or convolution makes it):

    for r1: ... for rn:                  # reduction loops
      for x = 0 while x < R:             # rows (constant extent)
        for y = 0 while y < W:           # lanes, stride 1 in T and Q (constant extent)
          T[...] += i32(P[...]) * i32(Q[...])     # P independent of y, Q independent of x

T is int32, P and Q int8 (as `arm_mac.match`). Each row's lanes are int32 vectors kept in
registers through the reduction loops; per reduction step Q's W bytes are loaded and widened
once, and each row adds P(x) times them:
- aarch64 (NEON): W = 8 or 16; `vmovl_s8` widens Q to int16, `vmlal_n_s16` /
  `vmlal_high_n_s16` multiply-accumulate by P broadcast (4 lanes each);
  where P is stride 1 along the innermost reduction loop (a row-major A[i, k]) and the tile has
  at most 4 rows, that loop runs 8 steps at a time: each row's 8 bytes of P are loaded and
  widened once and `vmlal_laneq_s16` takes them lane by lane (no broadcast per step); with
  the dot-product extension (`cflags` with `-march=armv8.2-a+dotprod`, checked by the
  preprocessor: `__ARM_FEATURE_DOTPROD`) a 16-lane tile first runs 4 steps at a time by
  `vdotq_lane_s32` (SDOT: 16 MACs an instruction);
- cortex-m55 (Helium): W = 4, 8 or 16; `vldrbq_s32` loads 4 bytes widened to int32 lanes,
  `vmlaq_n_s32` multiplies by P in a core register. f32 tiles (`T += P * Q`, all f32) take
  the same form with `vldrwq_f32` and `vfmaq_n_f32` (GCC's vector extensions give a VDUP, a
  VMUL and a VADD per step there).
Every int8 lane sums its terms in the loop nest's order with wrapping int32 arithmetic, so the
result is exactly the nest's. Anything else returns None (the caller renders it otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass

from loopweave.backends.c_names import c_name, c_var
from loopweave.backends.register_tile import extent, linear, tile_shape
from loopweave.ir import expr as ir
from loopweave.ir.affine import coefficient, constant_value, simplify
from loopweave.ir.affine import linear as affine_linear
from loopweave.ir.loops import Block, For, Store
from loopweave.ir.types import F32, I32, INDEX

#: core -> (allowed lane counts W, most int32x4 accumulators)
SHAPES = {"aarch64": ((8, 16), 24), "cortex-m55": ((4, 8, 16), 7)}
#: NEON: P's bytes along the innermost reduction loop are loaded LANES at a time (one load and
#: widening per row), each step then multiplies by a lane of them (`vmlal_laneq_s16`).
LANES = 8


def _operands(value: ir.Expr, core: str) -> tuple[ir.Load, ir.Load, str] | None:
    """(P or Q, Q or P, "i8" or "f32") of `i32(P) * i32(Q)` (int8 loads) or, on the M55,
    `P * Q` (f32 loads: GCC 12 does not contract MVE vector multiply-adds into VFMA)."""
    match value:
        case ir.Binary(op="*", left=ir.Cast(dtype=t1, operand=ir.Load() as a),
                       right=ir.Cast(dtype=t2, operand=ir.Load() as b)) \
                if t1 == I32 and t2 == I32 and a.dtype.name == "i8" and b.dtype.name == "i8":
            return a, b, "i8"
        case ir.Binary(op="*", left=ir.Load() as a, right=ir.Load() as b) \
                if core == "cortex-m55" and a.dtype == F32 and b.dtype == F32:
            return a, b, "f32"
    return None


def _start(r, tensor: str, indices, fixed: dict[str, ir.Expr], y: str) -> ir.Expr | None:
    """The offset of an access at y = 0 with `fixed` substituted, if it is stride 1 in y."""
    offset = ir.substitute(linear(r, tensor, indices), fixed)
    if coefficient(offset, y) != 1:
        return None
    return simplify(ir.substitute(offset, {y: ir.Const(0)}))


def render_mac_tile(r, node: For, indent: str) -> list[str] | None:
    """Lines for `node` as an int8 MAC tile for `r.core`, or None if it is not one."""
    shape = tile_shape(node)
    if shape is None or r.core not in SHAPES:
        return None
    reductions, rows_loop, cols_loop, store = shape
    rows, width = extent(rows_loop), extent(cols_loop)
    lanes, most = SHAPES[r.core]
    operands = _operands(store.value, r.core)
    if store.reduce != "+=" or operands is None or width not in lanes \
            or rows * width // 4 > most:
        return None
    x, y = rows_loop.var, cols_loop.var
    a, b, kind = operands
    wide, bcast = (a, b) if any(y in ir.variables(i) for i in a.indices) else (b, a)
    if any(y in ir.variables(i) for i in bcast.indices) or \
            any(x in ir.variables(i) for i in wide.indices):
        return None
    q = _start(r, wide.tensor, wide.indices, {}, y)
    starts = [_start(r, store.tensor, store.indices, {x: ir.Const(row)}, y)
              for row in range(rows)]
    reduced = {loop.var for loop in reductions}
    if q is None or any(s is None or ir.variables(s) & reduced for s in starts):
        return None
    accs = [[f"lw_t{row}_{c}" for c in range(width // 4)] for row in range(rows)]
    t = c_name(store.tensor)
    inner = indent + "  "
    load = "vld1q_s32" if r.core == "aarch64" else f"vldrwq_{'s32' if kind == 'i8' else 'f32'}"
    vec = "int32x4_t" if kind == "i8" else "float32x4_t"
    lines = [f"{indent}{{"]
    for row in range(rows):
        lines += [f"{inner}{vec} {acc} = {load}(&{t}[{r.expr(starts[row])} + {4 * c}]);"
                  for c, acc in enumerate(accs[row])]
    last = reductions[-1] if reductions else None
    end = exclusive_end(last) if last is not None else None
    by_lanes = (r.core == "aarch64" and rows <= 4 and end is not None and last.step == 1
                and coefficient(linear(r, bcast.tensor, bcast.indices), last.var) == 1)
    loops = reductions[:-1] if by_lanes else reductions
    for depth, loop in enumerate(loops):
        v, pad = c_var(loop.var), inner + "  " * depth
        lines.append(f"{pad}for ({r.index_type} {v} = {r.expr(loop.init)}; "
                     f"{r.expr(loop.cond)}; {v} += {loop.step}) {{")
    body = inner + "  " * len(loops)

    def step(pad: str, shift: int = 0) -> list[str]:
        moved = {last.var: ir.add(ir.Var(last.var), ir.Const(shift))} if shift else {}
        q_at = f"&{c_name(wide.tensor)}[{r.expr(simplify(ir.substitute(q, moved)))}]"
        p = [r.expr(ir.substitute(bcast, {x: ir.Const(row), **moved})) for row in range(rows)]
        if r.core == "aarch64":
            return _neon_step(pad, q_at, p, accs, width)
        return _mve_step(pad, q_at, p, accs, width, kind)

    if by_lanes:
        v, it = c_var(last.var), r.index_type
        lines += [f"{body}{{", f"{body}  const {it} lw_kend = {r.expr(end)};",
                  f"{body}  {it} {v} = {r.expr(last.init)};"]
        if width == 16:
            lines += _dot_steps(r, body + "  ", wide, q, bcast, x, last.var, accs)
        lines += [f"{body}  for (; {v} + {LANES} <= lw_kend; {v} += {LANES}) {{"]
        lines += [f"{body}    const int16x8_t lw_a{row} = vmovl_s8(vld1_s8(&"
                  f"{r.expr(ir.substitute(bcast, {x: ir.Const(row)}))}));"
                  for row in range(rows)]
        for u in range(LANES):
            lines += _neon_step(body + "    ", _q_at(r, wide, q, last.var, u), None, accs,
                                width, u)
        lines += [f"{body}  }}", f"{body}  for (; {v} < lw_kend; {v} += 1) {{",
                  *step(body + "    "), f"{body}  }}", f"{body}}}"]
    else:
        lines += step(body)
    lines += [f"{inner}{'  ' * depth}}}" for depth in reversed(range(len(loops)))]
    store_fn = "vst1q_s32" if r.core == "aarch64" else f"vstrwq_{'s32' if kind == 'i8' else 'f32'}"
    for row in range(rows):
        lines += [f"{inner}{store_fn}(&{t}[{r.expr(starts[row])} + {4 * c}], {acc});"
                  for c, acc in enumerate(accs[row])]
    return [*lines, f"{indent}}}"]


def _dot_steps(r, pad: str, wide: ir.Load, q: ir.Expr, bcast: ir.Load, x: str, k: str,
               accs: list[list[str]]) -> list[str]:
    """Where the compiler targets the dot-product extension (`+dotprod`), four reduction steps
    at a time by SDOT: Q's four rows of 16 bytes interleaved by two rounds of zips into four
    vectors of 4 lanes x 4 steps, and each row's 4 bytes of P as the lane operand. Without it
    the lines are compiled out and the loops after them run every step."""
    v = c_var(k)
    rows = [f"lw_r{u}" for u in range(4)]
    out = ["#if defined(__ARM_FEATURE_DOTPROD) && defined(__aarch64__)",
           f"{pad}for (; {v} + 4 <= lw_kend; {v} += 4) {{",
           f"{pad}  const int8x16_t " + ", ".join(
               f"{name} = vld1q_s8({_q_at(r, wide, q, k, u)})" for u, name in enumerate(rows))
           + ";"]
    for z, (fn, a, b) in enumerate((("vzip1q_s8", 0, 1), ("vzip2q_s8", 0, 1),
                                    ("vzip1q_s8", 2, 3), ("vzip2q_s8", 2, 3))):
        out.append(f"{pad}  const int16x8_t lw_z{z} = vreinterpretq_s16_s8({fn}(lw_r{a}, "
                   f"lw_r{b}));")
    for d, (fn, a, b) in enumerate((("vzip1q_s16", 0, 2), ("vzip2q_s16", 0, 2),
                                    ("vzip1q_s16", 1, 3), ("vzip2q_s16", 1, 3))):
        out.append(f"{pad}  const int8x16_t lw_d{d} = vreinterpretq_s8_s16({fn}(lw_z{a}, "
                   f"lw_z{b}));")  # lanes 4d..4d+3, each its 4 steps' bytes
    for row, regs in enumerate(accs):
        at = r.expr(ir.substitute(bcast, {x: ir.Const(row)}))
        out += [f"{pad}  {{ int32_t lw_w; memcpy(&lw_w, &{at}, 4);",
                f"{pad}    const int8x8_t lw_p = vreinterpret_s8_s32(vdup_n_s32(lw_w));",
                *(f"{pad}    {acc} = vdotq_lane_s32({acc}, lw_d{c}, lw_p, 0);"
                  for c, acc in enumerate(regs)),
                f"{pad}  }}"]
    return [*out, f"{pad}}}", "#endif"]


def _q_at(r, wide: ir.Load, q: ir.Expr, var: str, shift: int) -> str:
    moved = ir.substitute(q, {var: ir.add(ir.Var(var), ir.Const(shift))})
    return f"&{c_name(wide.tensor)}[{r.expr(simplify(moved))}]"


def exclusive_end(loop: For) -> ir.Expr | None:
    """The exclusive upper bound of a loop `for v ...; v < e` or `v <= e`, else None."""
    match loop.cond:
        case ir.Binary(op="<", left=ir.Var(name=n), right=e) if n == loop.var:
            return e
        case ir.Binary(op="<=", left=ir.Var(name=n), right=e) if n == loop.var:
            return ir.add(e, ir.Const(1, e.dtype))
    return None


def _neon_step(body: str, q_at: str, p: list[str] | None, accs: list[list[str]],
               width: int, lane: int = 0) -> list[str]:
    """One reduction step on NEON: Q widened to int16 once, 4 lanes per `vmlal`; P broadcast
    per row, or (p None) lane `lane` of the row's vector `lw_a<row>`."""
    if width == 16:
        lines = [f"{body}const int8x16_t lw_q = vld1q_s8({q_at});",
                 f"{body}const int16x8_t lw_h0 = vmovl_s8(vget_low_s8(lw_q)), "
                 "lw_h1 = vmovl_high_s8(lw_q);"]
    else:
        lines = [f"{body}const int16x8_t lw_h0 = vmovl_s8(vld1_s8({q_at}));"]
    lines = [f"{body}{{", *(f"  {line}" for line in lines)]
    for row in range(len(accs)):
        if p is not None:
            lines.append(f"{body}  {{ const int16_t lw_p = (int16_t){p[row]};")
        for c, acc in enumerate(accs[row]):
            half = f"lw_h{c // 2}"
            if p is None:
                fn = "vmlal_laneq_s16" if c % 2 == 0 else "vmlal_high_laneq_s16"
                arg = f"vget_low_s16({half})" if c % 2 == 0 else half
                lines.append(f"{body}  {acc} = {fn}({acc}, {arg}, lw_a{row}, {lane});")
            else:
                lines.append(f"{body}    {acc} = vmlal_n_s16({acc}, vget_low_s16({half}), lw_p);"
                             if c % 2 == 0 else
                             f"{body}    {acc} = vmlal_high_n_s16({acc}, {half}, lw_p);")
        if p is not None:
            lines.append(f"{body}  }}")
    return [*lines, f"{body}}}"]


def _mve_step(body: str, q_at: str, p: list[str], accs: list[list[str]],
              width: int, kind: str) -> list[str]:
    """One reduction step on Helium: each 4 bytes of Q widened to int32 by the load (or 4
    floats loaded), multiplied by P in a core register and added (`vmlaq_n_s32`,
    `vfmaq_n_f32`)."""
    ctype, vec, load, mac = (("int8_t", "int32x4_t", "vldrbq_s32", "vmlaq_n_s32")
                             if kind == "i8" else
                             ("float", "float32x4_t", "vldrwq_f32", "vfmaq_n_f32"))
    scalar = "int32_t" if kind == "i8" else "float"
    lines = [f"{body}const {ctype} *lw_q = {q_at};"]
    lines += [f"{body}const {vec} lw_w{c} = {load}(lw_q + {4 * c});"
              for c in range(width // 4)]
    for row, value in enumerate(p):
        lines.append(f"{body}{{ const {scalar} lw_p = ({scalar}){value};")
        lines += [f"{body}  {acc} = {mac}({acc}, lw_w{c}, lw_p);"
                  for c, acc in enumerate(accs[row])]
        lines.append(f"{body}}}")
    return lines



# -- dot-product tiles: the reduction innermost --------------------------------------------

#: Cores with a dot-product tile renderer, and the most results a tile may have (the M55 keeps
#: them all in core registers; the M4 runs its tile in 2x2 sub-tiles).
DOT_CORES = {"cortex-m55": 6, "cortex-m4": 256}


def _dot_shape(node: For):
    """(rows loop, columns loop, reduction loop, store) of `for x < R: for y < W: for k: store`
    (R, W constants), else None."""
    nest = []
    while isinstance(node, For) and len(nest) < 3:
        nest.append(node)
        node = node.body
        while isinstance(node, Block) and len(node.body) == 1:
            node = node.body[0]
    if len(nest) != 3 or not isinstance(node, Store):
        return None
    rows_loop, cols_loop, k_loop = nest
    if not (extent(rows_loop) and extent(cols_loop)) or k_loop.step != 1:
        return None
    return rows_loop, cols_loop, k_loop, node


def render_dot_tile(r, node: For, indent: str) -> list[str] | None:
    """Lines for `node` as a tile of int8 dot products along k (the default schedule's
    `dot_steps`): on the M55 each of the R x W int32 results in a core register, 16 steps of k
    per `vmladavaq_s8` (Helium), the last partial run predicated (`vctp8q`); on the M4 in 2x2
    sub-tiles, 4 steps per pair of SMLADs (`_dsp_dot`). None if `node` is not that shape with
    P (rows) and Q (columns) both stride 1 along k."""
    shape = _dot_shape(node) if r.core in DOT_CORES else None
    if shape is None:
        return None
    rows_loop, cols_loop, k_loop, store = shape
    rows, width = extent(rows_loop), extent(cols_loop)
    operands = _operands(store.value, r.core)
    end = exclusive_end(k_loop)
    if store.reduce != "+=" or operands is None or operands[2] != "i8" or end is None \
            or rows * width > DOT_CORES[r.core]:
        return None
    x, y, k = rows_loop.var, cols_loop.var, k_loop.var
    a, b, _ = operands
    p, q = (a, b) if not any(y in ir.variables(i) for i in a.indices) else (b, a)
    if any(y in ir.variables(i) for i in p.indices) or \
            any(x in ir.variables(i) for i in q.indices):
        return None
    if any(coefficient(linear(r, ld.tensor, ld.indices), k) != 1 for ld in (p, q)):
        return None
    cells = [(row, col) for row in range(rows) for col in range(width)]
    at = {}
    for row, col in cells:
        offset = linear(r, store.tensor, store.indices)
        offset = simplify(ir.substitute(offset, {x: ir.Const(row), y: ir.Const(col)}))
        if k in ir.variables(offset):
            return None
        at[row, col] = f"{c_name(store.tensor)}[{r.expr(offset)}]"
    acc = {cell: f"lw_t{cell[0]}_{cell[1]}" for cell in cells}
    if r.core == "cortex-m4":
        return _dsp_dot(r, indent, (p, x, rows), (q, y, width), k_loop, end, store)
    ps = [f"&{r.expr(ir.substitute(p, {x: ir.Const(row)}))}" for row in range(rows)]
    qs = [f"&{r.expr(ir.substitute(q, {y: ir.Const(col)}))}" for col in range(width)]
    v, it, pad = c_var(k), r.index_type, indent + "  "

    # Pointers that walk k (post-incremented loads), one per row of P and column of Q.
    ptrs = [f"lw_pa{row}" for row in range(rows)] + [f"lw_pb{col}" for col in range(width)]

    def step(load: str, mac: str, pred: str) -> list[str]:
        return [*(f"{pad}  const int8x16_t lw_a{row} = {load}(lw_pa{row}{pred});"
                  for row in range(rows)),
                *(f"{pad}  const int8x16_t lw_b{col} = {load}(lw_pb{col}{pred});"
                  for col in range(width)),
                *(f"{pad}  {acc[c]} = {mac}({acc[c]}, lw_a{c[0]}, lw_b{c[1]}{pred});"
                  for c in cells)]

    run = 16  # steps of k per VMLADAV
    lines = [f"{indent}{{", *(f"{pad}int32_t {acc[c]} = {at[c]};" for c in cells),
             f"{pad}const {it} lw_kend = {r.expr(end)};",
             f"{pad}{it} {v} = {r.expr(k_loop.init)};",
             f"{pad}const int8_t " + ", ".join(
                 f"*{name} = {addr}" for name, addr in zip(ptrs, ps + qs, strict=True)) + ";",
             # A down-counter: k and its end stay out of the loop (a low-overhead loop, and
             # no registers spilled next to the accumulators and pointers).
             f"{pad}for ({it} lw_n = (lw_kend - {v}) / {run}; lw_n > 0; lw_n--, {v} += {run}, "
             + ", ".join(f"{name} += {run}" for name in ptrs) + ") {"]
    lines += [*step("vldrbq_s8", "vmladavaq_s8", ""), f"{pad}}}",
              f"{pad}if ({v} < lw_kend) {{",
              f"{pad}  const mve_pred16_t lw_p = vctp8q((uint32_t)(lw_kend - {v}));",
              *step("vldrbq_z_s8", "vmladavaq_p_s8", ", lw_p"), f"{pad}}}"]
    return [*lines, *(f"{pad}{at[c]} = {acc[c]};" for c in cells), f"{indent}}}"]


# -- the Cortex-M4 dot tile -------------------------------------------------------------------

#: Steps of k per iteration of the M4 dot tile (two SMLADs a result per four steps): the loop's
#: count and pointer updates paid once per 16 steps (int8 matmul 64^3: 4 steps 409k
#: instructions, 8 362k, 16 336k, before the widening copy).
DSP_RUN = 16
#: The M4 runs a dot tile as sub-tiles of at most this many rows x columns: 4 accumulators,
#: two rows' and two columns' words and the pointers fill its 13 core registers.
DSP_SUBTILE = (2, 2)
#: The largest immediate offset (bytes) of an LDRD: rows further apart get their own pointer.
LDRD_REACH = 1020


@dataclass(frozen=True)
class _Rows:
    """How one operand's rows (or columns) of an M4 sub-tile are read along k: the C
    declarations of its pointers, each row's pointer and element offset from it, whether the
    elements are 16-bit pairs (a widened packed buffer) and whether each row's first element
    lies on a word (then LDRD loads two words of pairs at once)."""

    decls: tuple[str, ...]
    at: tuple[tuple[str, int], ...]
    wide: bool
    aligned: bool

    def element(self, row: int) -> str:
        """C text of the row's element at the pointer."""
        ptr, off = self.at[row]
        return f"{ptr}[{off}]"

    def pointers(self) -> tuple[str, ...]:
        """The distinct pointers (each advanced along k)."""
        return tuple(dict.fromkeys(p for p, _ in self.at))


def _even(e: ir.Expr) -> bool:
    """Whether every term of `e`'s linear form has an even coefficient (e is even)."""
    return all(c % 2 == 0 for c in affine_linear(e).values())


def _rows(r, load: ir.Load, var: str, origin: ir.Expr, count: int, name: str, k: str,
          k_init: ir.Expr) -> _Rows:
    """Pointers for `load` at `var` = origin + 0 .. count-1 (the sub-tile's rows), from k's
    first step. Rows at a constant distance within LDRD's reach (a packed buffer) share one
    pointer and immediate offsets; others get a pointer each."""
    wide = load.tensor in getattr(r, "widened", ())
    ctype = "int16_t" if wide else "int8_t"
    form = linear(r, load.tensor, load.indices)
    offsets = [simplify(ir.substitute(form, {var: ir.add(origin, ir.Const(i)), k: k_init}))
               for i in range(count)]
    deltas = [constant_value(ir.add(o, ir.mul(ir.Const(-1), offsets[0]))) for o in offsets]
    aligned = wide and all(_even(o) for o in offsets)
    tensor = c_name(load.tensor)
    if all(d is not None and 0 <= 2 * d <= LDRD_REACH and d % 2 == 0 for d in deltas):
        return _Rows((f"const {ctype} *{name} = &{tensor}[{r.expr(offsets[0])}];",),
                     tuple((name, d) for d in deltas), wide, aligned)
    names = [f"{name}{i}" for i in range(count)]
    decls = tuple(f"const {ctype} *{n} = &{tensor}[{r.expr(o)}];"
                  for n, o in zip(names, offsets, strict=True))
    return _Rows(decls, tuple((n, 0) for n in names), wide, aligned)


def _dsp_words(rows: _Rows, row: int, name: str, step: int, other_wide: bool
               ) -> tuple[list[str], tuple[str, str]]:
    """Lines loading four steps of k (from `step`) of one row as two words, and their names.
    16-bit elements: the pairs (k, k+1) and (k+2, k+3) as they lie, by one LDRD where aligned.
    Bytes: one word split by
    SXTB16 into (k, k+2) and, rotated, (k+1, k+3); put in order (PKHBT, PKHTB) only where the
    other operand's pairs are in order."""
    ptr, off = rows.at[row]
    lo, hi = f"{name}_l{step}", f"{name}_h{step}"
    if rows.wide and rows.aligned:
        return [f"uint32_t {lo}, {hi}; lw_ldrd_at({ptr}, {off + step}, {lo}, {hi});"], (lo, hi)
    if rows.wide:
        return [f"const uint32_t {lo} = lw_ld32h({ptr} + {off + step}), "
                f"{hi} = lw_ld32h({ptr} + {off + step + 2});"], (lo, hi)
    w, e, o = f"{name}_w{step}", f"{name}_e{step}", f"{name}_o{step}"
    lines = [f"const uint32_t {w} = lw_ld32({ptr} + {off + step}), {e} = lw_sxtb16({w}), "
             f"{o} = lw_sxtb16_ror8({w});"]
    if not other_wide:
        return lines, (e, o)
    return [*lines, f"const uint32_t {lo} = lw_pkhbt({e}, {o}), {hi} = lw_pkhtb({o}, {e});"], \
        (lo, hi)


def _dsp_dot(r, indent: str, rows_of: tuple, cols_of: tuple, k_loop: For, end: ir.Expr,
             store: Store) -> list[str] | None:
    """The M4 dot tile: sub-tiles of `DSP_SUBTILE`, each result in a core register while k
    runs, `DSP_RUN` steps of k per iteration (two SMLADs a result per four steps, the 16-bit
    pairs of widened packed operands loaded by LDRD), the last steps in plain C. None if the
    tile does not split into sub-tiles."""
    (p, x, rows), (q, y, width) = rows_of, cols_of
    sub_rows, sub_cols = (min(n, DSP_SUBTILE[d]) for d, n in enumerate((rows, width)))
    if rows % sub_rows or width % sub_cols:
        return None
    k, v, it = k_loop.var, c_var(k_loop.var), r.index_type
    # The sub-tile's first row and column: a loop over the tile, or the tile's own.
    origin = {var: ir.Var(var, INDEX) if n > size else ir.Const(0)
              for var, n, size in ((x, rows, sub_rows), (y, width, sub_cols))}
    pa = _rows(r, p, x, origin[x], sub_rows, "lw_pa", k, k_loop.init)
    pb = _rows(r, q, y, origin[y], sub_cols, "lw_pb", k, k_loop.init)
    cells = [(row, col) for row in range(sub_rows) for col in range(sub_cols)]
    acc = {cell: f"lw_t{cell[0]}_{cell[1]}" for cell in cells}
    out = linear(r, store.tensor, store.indices)
    moved = {(row, col): f"{c_name(store.tensor)}[" + r.expr(simplify(ir.substitute(
        out, {x: ir.add(origin[x], ir.Const(row)), y: ir.add(origin[y], ir.Const(col))}))) + "]"
        for row, col in cells}
    lines, pad = [f"{indent}{{", f"{indent}  const {it} lw_kend = {r.expr(end)};"], indent + "  "
    for var, n, size in ((x, rows, sub_rows), (y, width, sub_cols)):
        if n > size:
            lines.append(f"{pad}for ({it} {c_var(var)} = 0; {c_var(var)} < {n}; "
                         f"{c_var(var)} += {size}) {{")
            pad += "  "
    opened = len(lines) - 2
    advanced = (*pa.pointers(), *pb.pointers())
    lines += [*(f"{pad}int32_t {acc[c]} = {moved[c]};" for c in cells),
              f"{pad}{it} {v} = {r.expr(k_loop.init)};",
              *(f"{pad}{d}" for d in (*pa.decls, *pb.decls)),
              # A down-counter: k and its end stay out of the loop (registers for the tile).
              f"{pad}for ({it} lw_n = (lw_kend - {v}) / {DSP_RUN}; lw_n > 0; lw_n--"
              + "".join(f", {n} += {DSP_RUN}" for n in advanced) + ") {"]
    for step in range(0, DSP_RUN, 4):
        words = {}
        for side, rows_, other, count in (("a", pa, pb, sub_rows), ("b", pb, pa, sub_cols)):
            for i in range(count):
                loads, words[side, i] = _dsp_words(rows_, i, f"lw_{side}{i}", step, other.wide)
                lines += [f"{pad}  {line}" for line in loads]
        for row, col in cells:
            (a0, a1), (b0, b1), s = words["a", row], words["b", col], acc[row, col]
            lines.append(f"{pad}  {s} = lw_smlad({a1}, {b1}, lw_smlad({a0}, {b0}, {s}));")
    lines += [f"{pad}}}",
              f"{pad}for ({v} += (lw_kend - {v}) / {DSP_RUN} * {DSP_RUN}; {v} < lw_kend; "
              f"{v}++" + "".join(f", {n}++" for n in advanced) + ") {",
              *(f"{pad}  {acc[row, col]} += (int32_t){pa.element(row)} * {pb.element(col)};"
                for row, col in cells), f"{pad}}}",
              *(f"{pad}{moved[c]} = {acc[c]};" for c in cells)]
    lines += [f"{indent}{'  ' * depth}  }}" for depth in reversed(range(opened))]
    return [*lines, f"{indent}}}"]


def render_widening_copy(r, node: For, indent: str) -> list[str] | None:
    """A packing loop `for v: D[..] = S[..]` into a buffer the M4 stores widened (int8 S,
    stride 1 along v; D int16 at a constant stride d): four elements per word load, split
    by SXTB16 into (0, 2) and (1, 3), stored as two words of pairs where d is 1, else as four
    halfwords; the last elements one at a time. None if `node` is not such a loop."""
    body = node.body
    while isinstance(body, Block) and len(body.body) == 1:
        body = body.body[0]
    end = exclusive_end(node)
    if not isinstance(body, Store) or body.reduce is not None or end is None \
            or body.tensor not in getattr(r, "widened", ()) or node.step != 1 \
            or not isinstance(body.value, ir.Load) or body.value.tensor in r.widened:
        return None
    src = linear(r, body.value.tensor, body.value.indices)
    stride = coefficient(linear(r, body.tensor, body.indices), node.var)
    if coefficient(src, node.var) != 1 or not stride or stride < 0:
        return None
    v, it, pad = c_var(node.var), r.index_type, indent + "    "
    dst = f"&{c_name(body.tensor)}[{r.linear_index(body.tensor, body.indices)}]"
    if stride == 1:
        stores = [f"{pad}lw_st32h({dst}, lw_pkhbt(lw_e, lw_o));",
                  f"{pad}lw_st32h({dst} + 2, lw_pkhtb(lw_o, lw_e));"]
    else:
        stores = [f"{pad}{{ int16_t *lw_d = {dst};",
                  f"{pad}  lw_d[0] = (int16_t)lw_e; lw_d[{stride}] = (int16_t)lw_o;",
                  f"{pad}  lw_d[{2 * stride}] = (int16_t)(lw_e >> 16); "
                  f"lw_d[{3 * stride}] = (int16_t)(lw_o >> 16); }}"]
    return [f"{indent}{{", f"{indent}  const {it} lw_vend = {r.expr(end)};",
            f"{indent}  {it} {v} = {r.expr(node.init)};",
            f"{indent}  for (; {v} + 4 <= lw_vend; {v} += 4) {{",
            f"{pad}const uint32_t lw_w = lw_ld32(&{c_name(body.value.tensor)}"
            f"[{r.expr(src)}]), lw_e = lw_sxtb16(lw_w), lw_o = lw_sxtb16_ror8(lw_w);",
            *stores, f"{indent}  }}",
            f"{indent}  for (; {v} < lw_vend; {v} += 1) {{", *r.stmt(node.body, pad),
            f"{indent}  }}", f"{indent}}}"]
