"""SIMD for arg-reductions (ir/argreduce.py): argmax/argmin's vector loop (`render_arg_loop`)
and top-k's reduced loop (`render_topk_loop`: the guard of the rank step tested a vector at a
time, an entering value inserted directly).

Argmax: `idx[i] argmax= X[i, j]`, j a vector loop.

The loop body is the pair `idx = select(<X better than best>, j, idx); best max= X`. The loop
runs in chunks of CHUNK vectors. A chunk's largest value comes from four independent running
maxima (one instruction per vector); only a chunk that holds a larger value than the best so
far (for random data: the first few) is read again, to find where that value first occurs:

    {
      c1 = init; end = hi; b = best; k = idx;
      while (a whole vector left) {
        from = c1;  to = from + CHUNK W (or the whole vectors left);
        m_0..m_3 = X[from..]; for (; c1 < to; c1 += W ...) m_k = max(m_k, X[c1 ..]); nan |= ...
        if (nan) { c1 = from; break; }   /* a NaN (or inf + -inf): the scalar loop decides */
        m = max(m_0, .., m_3);
        if (k < 0 || any(m > b)) {
          b = the largest lane of m;  k = <j at> the first c1 in from..to with X[c1] == b;
        }
      }
      best = b; idx = k;
      for (; c1 < end; c1++) <the scalar body>                  /* the rest, one at a time */
    }

A chunk changes the answer only if it holds a strictly larger value (equal ones come later:
the first index wins, as numpy's tie rule), and then its first occurrence of that value is the
answer so far, so the result is the scalar loop's. AVX2 and AVX-512, f32 and f64; anything else
returns None and the loop stays scalar.
"""

from __future__ import annotations

from dataclasses import dataclass

from loopweave.ir import argreduce
from loopweave.ir import expr as ir
from loopweave.ir.affine import coefficient
from loopweave.ir.loops import Block, For, If, Store, single_upper_bound
from loopweave.ir.types import BOOL

#: Independent running maxima per chunk, and vectors per chunk.
CHAINS, CHUNK = 4, 32
#: How far ahead of its loads the loop over a chunk prefetches. The hardware's stream
#: prefetcher stops at each 4 KiB page, and the chunk's first-place search stalls the loads:
#: argmax of 4096 x 1024 f32 (16 MB) 0.70 -> 0.57 ms, 512 x 1024 (in L2) 0.051 -> 0.038 ms, 64 x
#: 32000 unchanged (one thread, Sapphire Rapids VM; 2 KiB ahead did 0.58 and 0.041).
PREFETCH_BYTES = 4096


@dataclass(frozen=True)
class _Ops:
    """Intrinsics of one (instruction set, value type): `{0}`, `{1}`, ... are operands."""

    vector: str  # the value vector type
    mask: str  # what a comparison gives
    lanes: int
    load: str
    store: str
    splat: str
    vmax: str
    vmin: str
    vadd: str
    cmp: str  # {0} {2} {1} as a mask ({2}: the predicate)
    mor: str
    bits: str  # a mask as an integer, a bit per lane


def _x86(width: int, suffix: str) -> _Ops:
    """AVX2 (`width` 256) or AVX-512 (512) vectors of f32 (`suffix` "ps") or f64 ("pd")."""
    p, d = f"_mm{width}", "" if suffix == "ps" else "d"
    lanes = width // (32 if suffix == "ps" else 64)
    common = dict(vector=f"__m{width}{d}", lanes=lanes, load=f"{p}_loadu_{suffix}({{0}})",
                  store=f"{p}_storeu_{suffix}({{0}}, {{1}})", splat=f"{p}_set1_{suffix}({{0}})",
                  vmax=f"{p}_max_{suffix}({{0}}, {{1}})", vmin=f"{p}_min_{suffix}({{0}}, {{1}})",
                  vadd=f"{p}_add_{suffix}({{0}}, {{1}})")
    if width == 256:
        return _Ops(mask=f"__m256{d}", cmp=f"{p}_cmp_{suffix}({{0}}, {{1}}, {{2}})",
                    mor=f"{p}_or_{suffix}({{0}}, {{1}})",
                    bits=f"(unsigned){p}_movemask_{suffix}({{0}})", **common)
    return _Ops(mask=f"__mmask{lanes}", cmp=f"{p}_cmp_{suffix}_mask({{0}}, {{1}}, {{2}})",
                mor="({0} | {1})", bits="(unsigned)({0})", **common)


OPS = {("avx2", "f32"): _x86(256, "ps"), ("avx2", "f64"): _x86(256, "pd"),
       ("avx512", "f32"): _x86(512, "ps"), ("avx512", "f64"): _x86(512, "pd")}
#: Whether a chunk's best beats the best so far (no NaN gets this far).
_STRICT = {"argmax=": "_CMP_GT_OQ", "argmin=": "_CMP_LT_OQ"}


def render_arg_loop(isa, renderer, node: For, indent: str) -> list[str] | None:
    """`node` (a vector loop whose body is an arg-reduction's pair) as guarded intrinsics of
    `isa`, or None if it is not such a loop or the lowering does not cover it."""
    body = node.body.body if isinstance(node.body, Block) else (node.body,)
    if len(body) != 2 or not all(isinstance(s, Store) for s in body) or node.step != 1:
        return None
    update, keep = body
    found = argreduce.pair_of(update.tensor, update.indices, update.value, keep.tensor,
                              keep.indices, keep.reduce, keep.value)
    value, var = keep.value, node.var
    ops = OPS.get((isa.name, value.dtype.name))
    if found is None or ops is None or not isinstance(value, ir.Load) or any(
            var in ir.variables(x) for x in (*update.indices, *keep.indices, node.init)):
        return None
    op, index = found
    if coefficient(index, var) != 1 or any(isinstance(x, ir.Load) for x in ir.walk(index)) \
            or coefficient(renderer.linear_offset(value.tensor, value.indices), var) != 1:
        return None
    bound = single_upper_bound(node.cond, var)
    if bound is None:
        return None
    end = renderer.expr(bound)
    lines = _Writer(ops, renderer, op, indent).loop(node, update, keep, index, end)
    plain = renderer.render_plain_for(node, indent)
    return [f"#if {isa.guard}", *lines, "#else", *plain, "#endif"]


class _Writer:
    def __init__(self, ops: _Ops, renderer, op: str, indent: str):
        self.o, self.r, self.op, self.indent = ops, renderer, op, indent

    def loop(self, node: For, update: Store, keep: Store, index: ir.Expr, end: str
             ) -> list[str]:
        o, r, w = self.o, self.r, self.o.lanes
        c = r.expr(ir.Var(node.var))
        i1, i2, i3, i4 = (self.indent + "  " * n for n in (1, 2, 3, 4))
        ctype = r.ctype(keep.value.dtype)
        best = r.expr(ir.Load(keep.tensor, keep.indices, keep.value.dtype))
        idx = r.expr(ir.Load(update.tensor, update.indices, update.value.dtype))
        better = o.vmax if self.op == "argmax=" else o.vmin
        cmp = ">" if self.op == "argmax=" else "<"
        x = [f"lw_x{k}" for k in range(CHAINS)]
        m = [f"lw_m{k}" for k in range(CHAINS)]
        unordered = o.cmp.format(o.vadd.format(x[0], x[1]), o.vadd.format(x[2], x[3]),
                                 "_CMP_UNORD_Q")
        at = f"lw_p + ({c} - lw_c0)"  # the value at the loop's current position
        first = o.load.format(at)
        nan = o.cmp.format("lw_x", "lw_x", "_CMP_UNORD_Q")
        beats = o.bits.format(o.cmp.format("lw_m", o.splat.format("lw_b"), _STRICT[self.op]))
        hit = o.bits.format(o.cmp.format(o.load.format("lw_p + (lw_q - lw_c0)"), "lw_want",
                                         "_CMP_EQ_OQ"))
        lines = [f"{self.indent}{{", f"{i1}int64_t {c} = {r.expr(node.init)};",
                 f"{i1}const int64_t lw_end = {end}, lw_c0 = {c};",
                 f"{i1}const {ctype} *lw_p = &{r.expr(keep.value)};",
                 f"{i1}const int64_t lw_base = {r.expr(index)} - {c};  /* j = lw_base + {c} */",
                 f"{i1}{ctype} lw_b = {best};", f"{i1}int64_t lw_k = {idx};",
                 f"{i1}while (lw_end - {c} >= {w}) {{",
                 f"{i2}const int64_t lw_from = {c};",
                 f"{i2}const int64_t lw_to = lw_from + (lw_end - lw_from >= {CHUNK * w} ? "
                 f"{CHUNK * w} : (lw_end - lw_from) / {w} * {w});",
                 f"{i2}{o.vector} {', '.join(f'{v} = {first}' for v in m)};",
                 f"{i2}{o.mask} lw_nan = {o.cmp.format(m[0], m[0], '_CMP_UNORD_Q')};",
                 f"{i2}for (; lw_to - {c} >= {CHAINS * w}; {c} += {CHAINS * w}) {{"]
        size = keep.value.dtype.bits // 8
        for k in range(CHAINS):
            if k * w * size % 64 == 0:  # one prefetch per cache line
                lines.append(f"{i3}_mm_prefetch((const char *)({at} + "
                             f"{PREFETCH_BYTES // size + k * w}), _MM_HINT_T0);")
            lines.append(f"{i3}const {o.vector} {x[k]} = {o.load.format(f'{at} + {k * w}')};")
        lines += [f"{i3}{m[k]} = {better.format(m[k], x[k])};" for k in range(CHAINS)]
        # a NaN in x0..x3 makes x0 + x1 or x2 + x3 NaN (so does inf + -inf: a false alarm)
        lines += [f"{i3}lw_nan = {o.mor.format('lw_nan', unordered)};", f"{i2}}}",
                  f"{i2}for (; {c} < lw_to; {c} += {w}) {{",
                  f"{i3}const {o.vector} lw_x = {first};",
                  f"{i3}{m[0]} = {better.format(m[0], 'lw_x')};",
                  f"{i3}lw_nan = {o.mor.format('lw_nan', nan)};",
                  f"{i2}}}",
                  f"{i2}if ({o.bits.format('lw_nan')}) {{",
                  f"{i3}{c} = lw_from;  /* a NaN: the scalar loop decides from here */",
                  f"{i3}break;", f"{i2}}}",
                  f"{i2}const {o.vector} lw_m = "
                  f"{better.format(better.format(m[0], m[1]), better.format(m[2], m[3]))};",
                  f"{i2}if (lw_k < 0 || {beats}) {{",
                  f"{i3}{ctype} lw_lanes[{w}];", f"{i3}{o.store.format('lw_lanes', 'lw_m')};",
                  *(f"{i3}for (int lw_l = 0; lw_l < {h}; lw_l++) lw_lanes[lw_l] = "
                    f"lw_lanes[lw_l + {h}] {cmp} lw_lanes[lw_l] ? lw_lanes[lw_l + {h}] : "
                    f"lw_lanes[lw_l];" for h in halves(w)),
                  f"{i3}lw_b = lw_lanes[0];",
                  f"{i3}const {o.vector} lw_want = {o.splat.format('lw_b')};",
                  f"{i3}for (int64_t lw_q = lw_from; ; lw_q += {w}) {{  /* its first place */",
                  f"{i4}const unsigned lw_hit = {hit};",
                  f"{i4}if (lw_hit) {{",
                  f"{i4}  lw_k = lw_base + lw_q + __builtin_ctz(lw_hit);",
                  f"{i4}  break;", f"{i4}}}", f"{i3}}}", f"{i2}}}", f"{i1}}}",
                  f"{i1}{best} = lw_b;", f"{i1}{idx} = lw_k;",
                  f"{i1}for (; {c} < lw_end; {c} += 1) {{", *r.stmt(node.body, i2),
                  f"{i1}}}", f"{self.indent}}}"]
        return lines


def halves(lanes: int) -> list[int]:
    """lanes / 2, lanes / 4, ..., 1: a pairwise reduction's steps (log2(lanes) dependent
    operations, where a running maximum over the lanes is lanes - 1)."""
    return [lanes >> k for k in range(1, lanes.bit_length())]


def render_topk_loop(isa, renderer, node: For, indent: str) -> list[str] | None:
    """A top-k's reduced loop whose rank step is guarded (ir/argreduce.guard_topk: `if (value
    beats the last rank) <step>`), with the guard tested a vector at a time: once the last
    rank is filled, a vector none of whose values beats it (a NaN does) is skipped whole, any
    other element runs the guarded step on its own. None for any other loop."""
    guard = node.body
    if not isinstance(guard, If) or guard.orelse is not None or node.step != 1:
        return None
    found = _topk_guard(guard.cond)
    if found is None:
        return None
    op, value, last, last_index = found
    ops = OPS.get((isa.name, value.dtype.name))
    var = node.var
    if ops is None or any(var in ir.variables(x) for x in (last, last_index, node.init)) or \
            coefficient(renderer.linear_offset(value.tensor, value.indices), var) != 1:
        return None
    bound = single_upper_bound(node.cond, var)
    if bound is None:
        return None
    end = renderer.expr(bound)
    r, w, c = renderer, ops.lanes, renderer.expr(ir.Var(var))
    i1, i2, i3 = (indent + "  " * n for n in (1, 2, 3))
    enters = ops.cmp.format(ops.load.format(f"lw_p + ({c} - lw_c0)"),
                            ops.splat.format(r.expr(last)),
                            "_CMP_NLE_UQ" if op == "argmax=" else "_CMP_NGE_UQ")
    lines = [f"{indent}{{", f"{i1}int64_t {c} = {r.expr(node.init)};",
             f"{i1}const int64_t lw_end = {end}, lw_c0 = {c};",
             f"{i1}const {r.ctype(value.dtype)} *lw_p = &{r.expr(value)};",
             f"{i1}while ({c} < lw_end) {{",
             f"{i2}if (lw_end - {c} >= {w} && {r.expr(last_index)} >= 0 && "
             f"!{ops.bits.format(enters)}) {{",
             f"{i3}{c} += {w};  /* no value here enters the ranks */",
             f"{i3}continue;", f"{i2}}}", *(_insertion(r, guard, value, op, i2)
                                            or r.stmt(guard, i2)), f"{i2}{c} += 1;",
             f"{i1}}}", f"{indent}}}"]
    plain = renderer.render_plain_for(node, indent)
    return [f"#if {isa.guard}", *lines, "#else", *plain, "#endif"]


def _topk_guard(cond: ir.Expr):
    """(op, value, last rank's value, last rank's index) of a top-k guard `value beats the
    last rank` (ir/argreduce.guard_topk), or None."""
    match cond:
        case ir.Binary(op="or", left=ir.Binary(op="or", left=ir.Binary(
                op=">" | "<" as cmp, left=ir.Load() as value, right=ir.Load() as last)),
                right=ir.Binary(op="<", left=ir.Load() as last_index)):
            op = "argmax=" if cmp == ">" else "argmin="
            beats = ir.Binary("or", argreduce.better(op, value, last), ir.Binary(
                "<", last_index, ir.Const(0, last_index.dtype), BOOL), BOOL)
            return (op, value, last, last_index) if beats == cond else None
    return None


def _insertion(r, guard: If, value: ir.Load, op: str, indent: str) -> list[str] | None:
    """The guarded rank step as a plain insertion (C): from the last rank up, move each rank
    down while the value beats the one above it, then put the value there; the same as the
    step's loop over the ranks (sorted ranks), without testing the ranks above. None if the
    step is not in the shape ir/argreduce.guard_topk made."""
    ranks = guard.then
    if not isinstance(ranks, For) or not isinstance(ranks.body, Block) or \
            ranks.init != ir.Const(0) or len(ranks.body.body) != 3:
        return None
    match ranks.cond:
        case ir.Binary(op="<" | "<=" as cmp, left=ir.Var(name=v), right=ir.Const(value=hi)) \
                if v == ranks.var:
            k = int(hi) + (cmp == "<=")
        case _:
            return None
    _, index, kept = ranks.body.body
    rank = ir.Var("lw_r")
    at = {ranks.var: ir.Binary("-", ir.Const(k - 1), rank, ir.INDEX)}
    above = {ranks.var: ir.Binary("-", ir.Const(k), rank, ir.INDEX)}
    here, mine = (ir.substitute(ir.Load(s.tensor, s.indices, s.value.dtype), at)
                  for s in (kept, index))
    up, up_index = (ir.substitute(ir.Load(s.tensor, s.indices, s.value.dtype), above)
                    for s in (kept, index))
    x = ir.Var("lw_v", value.dtype)  # the value, read once
    beats = ir.Binary("or", argreduce.better(op, x, up), ir.Binary(
        "<", up_index, ir.Const(0, up_index.dtype), BOOL), BOOL)
    j_value = index.value.args[2].args[1]
    n, v, i1, i2 = r.expr(rank), r.expr(x), indent + "  ", indent + "    "
    return [f"{indent}if ({r.expr(guard.cond)}) {{",
            f"{i1}const {r.ctype(value.dtype)} {v} = {r.expr(value)};",
            f"{i1}int64_t {n} = {k - 1};",
            f"{i1}while ({n} > 0 && ({r.expr(beats)})) {{",
            f"{i2}{r.expr(here)} = {r.expr(up)};",
            f"{i2}{r.expr(mine)} = {r.expr(up_index)};", f"{i2}{n} -= 1;", f"{i1}}}",
            f"{i1}{r.expr(here)} = {v};", f"{i1}{r.expr(mine)} = {r.expr(j_value)};",
            f"{indent}}}"]
