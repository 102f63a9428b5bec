"""SIMD for an arg-reduction's vector loop (`idx[i] argmax= X[i, j]`, j vector; ir/argreduce.py).

The loop body is the pair `idx = select(<X better than best>, j, idx); best max= X`. Each lane
keeps its own (value, block) pair, in four independent sets of lanes (chains) that take one
vector each per block of four vectors:

    {
      c1 = init; end = hi;
      if (at least one block, and the offsets fit the index lanes) {
        start = c1; base = <j at c1>;  v_k = load(X + k W); b_k = 0 (k < 4); c1 += 4 W
        for (; a block left; c1 += 4 W)
          for k: take = X_k > v_k;  v_k = max(v_k, X_k);  b_k = take ? block : b_k
          nan |= X_0 + X_1 unordered with X_2 + X_3  (NaN in, or inf + -inf)
        if (nan) c1 = start;   /* a NaN (or opposite infinities): the scalar loop decides */
        else { index_k = b_k 4 W + k W + lane; chains merged, lanes folded into (best, idx) }
      }
      for (; c1 < end; c1++) <the scalar body>              /* the remainder, or all of it */
    }

A lane takes a value only if strictly larger, so each lane holds its first best element; the
merge and the fold order pairs by value, then by smaller index (ties: the first index wins), a
total order, so the result is the scalar loop's whatever the lane count, as numpy's tie rule
wants. AVX2 and AVX-512, f32 (i32 index lanes: a loop of at most 2^31 - 1 iterations runs in
SIMD) and f64 (i64 lanes); anything else returns None and the loop stays scalar.
"""

from __future__ import annotations

from dataclasses import dataclass

from loopweave.ir import argreduce
from loopweave.ir import expr as ir
from loopweave.ir.affine import coefficient
from loopweave.ir.loops import Block, For, Store

#: Independent (value, index) vector pairs per loop.
CHAINS = 4


@dataclass(frozen=True)
class _Ops:
    """Intrinsics of one (instruction set, value type): `{0}`, `{1}`, ... are operands."""

    vector: str  # the value vector type
    ivector: str  # the index vector type
    mask: str  # what a comparison gives
    lanes: int
    itype: str  # the C type of an index lane
    load: str
    store: str
    istore: str
    iota: str  # lane numbers 0, 1, ...
    isplat: str
    iadd: str
    ishl: str  # {0} << {1}
    anyset: str  # whether a mask has a lane set
    blend: str  # {0}: mask, {1}: kept, {2}: taken
    vmax: str
    vmin: str
    vadd: str
    iblend: str
    cmp: str  # {0} {2} {1} as a mask ({2}: the predicate)
    icmpgt: str  # index lanes {0} > {1} as a mask
    mor: str
    mand: str
    mandnot: str  # {1} and not {0}


def _x86(width: int, suffix: str) -> _Ops:
    """AVX2 (`width` 256) or AVX-512 (512) vectors of f32 (`suffix` "ps", i32 index lanes) or
    f64 ("pd", i64 index lanes)."""
    p, bits = f"_mm{width}", 32 if suffix == "ps" else 64
    lanes = width // bits
    d = "" if suffix == "ps" else "d"
    x = "x" if width == 256 and bits == 64 else ""  # _mm256_set_epi64x
    iota = f"{p}_set_epi{bits}{x}({', '.join(str(n) for n in reversed(range(lanes)))})"
    common = dict(ivector=f"__m{width}i", lanes=lanes, itype=f"int{bits}_t", iota=iota,
                  load=f"{p}_loadu_{suffix}({{0}})", vmax=f"{p}_max_{suffix}({{0}}, {{1}})",
                  vmin=f"{p}_min_{suffix}({{0}}, {{1}})", vadd=f"{p}_add_{suffix}({{0}}, {{1}})",
                  store=f"{p}_storeu_{suffix}({{0}}, {{1}})",
                  isplat=f"{p}_set1_epi{bits}{x}({{0}})", iadd=f"{p}_add_epi{bits}({{0}}, {{1}})",
                  ishl=f"{p}_slli_epi{bits}({{0}}, {{1}})")
    if width == 256:
        return _Ops(vector=f"__m256{d}", mask=f"__m256{d}",
                    cmp=f"{p}_cmp_{suffix}({{0}}, {{1}}, {{2}})",
                    icmpgt=f"{p}_castsi256_{suffix}({p}_cmpgt_epi{bits}({{0}}, {{1}}))",
                    mor=f"{p}_or_{suffix}({{0}}, {{1}})", mand=f"{p}_and_{suffix}({{0}}, {{1}})",
                    mandnot=f"{p}_andnot_{suffix}({{0}}, {{1}})",
                    istore="_mm256_storeu_si256((__m256i *)({0}), {1})",
                    anyset=f"{p}_movemask_{suffix}({{0}})",
                    blend=f"{p}_blendv_{suffix}({{1}}, {{2}}, {{0}})",
                    iblend=f"{p}_blendv_epi8({{1}}, {{2}}, {p}_cast{suffix}_si256({{0}}))",
                    **common)
    return _Ops(vector=f"__m512{d}", mask=f"__mmask{lanes}", istore="_mm512_storeu_si512({0}, {1})",
                cmp=f"{p}_cmp_{suffix}_mask({{0}}, {{1}}, {{2}})",
                icmpgt=f"{p}_cmpgt_epi{bits}_mask({{0}}, {{1}})", mor="({0} | {1})",
                mand="({0} & {1})", mandnot="({1} & ~{0})",
                anyset="{0}",
                blend=f"{p}_mask_blend_{suffix}({{0}}, {{1}}, {{2}})",
                iblend=f"{p}_mask_blend_epi{bits}({{0}}, {{1}}, {{2}})", **common)


OPS = {("avx2", "f32"): _x86(256, "ps"), ("avx2", "f64"): _x86(256, "pd"),
       ("avx512", "f32"): _x86(512, "ps"), ("avx512", "f64"): _x86(512, "pd")}
#: The comparison that takes a lane's new value (no NaN gets this far): x > best (argmin: <).
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
    match node.cond:
        case ir.Binary(op="<" | "<=", left=ir.Var(name=v), right=hi) if v == var and \
                var not in ir.variables(hi):
            end = renderer.expr(hi if node.cond.op == "<" else ir.add(hi, ir.Const(1)))
        case _:
            return None
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
        i1, i2, i3 = (self.indent + "  " * n for n in (1, 2, 3))
        block = CHAINS * w
        ptr = f"&{r.expr(keep.value)}"
        fits = f" && lw_end - {c} <= 2147483647" if o.itype == "int32_t" else ""
        lines = [f"{self.indent}{{", f"{i1}int64_t {c} = {r.expr(node.init)};",
                 f"{i1}const int64_t lw_end = {end};",
                 f"{i1}if (lw_end - {c} >= {block}{fits}) {{",
                 f"{i2}const int64_t lw_start = {c}, lw_base = {r.expr(index)};"]
        for k in range(CHAINS):
            lines += [f"{i2}{o.vector} lw_v{k} = {o.load.format(f'{ptr} + {k * w}')};",
                      f"{i2}{o.ivector} lw_i{k} = {o.isplat.format(0)};"]
        nan = self.unordered(*(f"lw_v{k}" for k in range(CHAINS)))
        lines += [f"{i2}{o.mask} lw_nan = {nan};",
                  f"{i2}{o.ivector} lw_at = {o.isplat.format(1)};",
                  f"{i2}const {o.ivector} lw_one = {o.isplat.format(1)};",
                  f"{i2}for ({c} += {block}; lw_end - {c} >= {block}; {c} += {block}) {{"]
        # No NaN gets here (if one does, the scalar loop reruns), so max (min) is the blend
        best = o.vmax if self.op == "argmax=" else o.vmin
        for k in range(CHAINS):  # two vectors at a time: AVX2 has only 16 registers
            x = f"lw_x{k}"
            lines.append(f"{i3}const {o.vector} {x} = {o.load.format(f'{ptr} + {k * w}')};")
            if k == 1:  # NaN in x0..x3 makes x0 + x1 or x2 + x3 NaN (so does inf + -inf)
                lines.append(f"{i3}const {o.vector} lw_s = {o.vadd.format('lw_x0', x)};")
            elif k == 3:
                unordered = o.cmp.format("lw_s", o.vadd.format("lw_x2", x), "_CMP_UNORD_Q")
                lines.append(f"{i3}lw_nan = {o.mor.format('lw_nan', unordered)};")
            if k % 2:
                for j in (k - 1, k):
                    take = o.cmp.format(f"lw_x{j}", f"lw_v{j}", _STRICT[self.op])
                    lines += [f"{i3}{{", f"{i3}  const {o.mask} lw_t = {take};",
                              f"{i3}  lw_v{j} = {best.format(f'lw_v{j}', f'lw_x{j}')};",
                              f"{i3}  lw_i{j} = {o.iblend.format('lw_t', f'lw_i{j}', 'lw_at')};",
                              f"{i3}}}"]
        lines += [f"{i3}lw_at = {o.iadd.format('lw_at', 'lw_one')};", f"{i2}}}",
                  f"{i2}if ({o.anyset.format('lw_nan')}) {{",
                  f"{i3}{c} = lw_start;  /* a NaN: the scalar loop decides, from the start */",
                  f"{i2}}} else {{", f"{i3}const {o.ivector} lw_iota = {o.iota};"]
        shift = block.bit_length() - 1
        for k in range(CHAINS):  # block numbers -> offsets from lw_start
            lane = o.iadd.format("lw_iota", o.isplat.format(k * w))
            lines.append(f"{i3}lw_i{k} = {o.iadd.format(o.ishl.format(f'lw_i{k}', shift), lane)};")
        lines += [*self.fold(update, keep, i3), f"{i2}}}", f"{i1}}}",
                  f"{i1}for (; {c} < lw_end; {c} += 1) {{", *r.stmt(node.body, i2),
                  f"{i1}}}", f"{self.indent}}}"]
        return lines

    def unordered(self, a: str, b: str, c: str, d: str) -> str:
        """A mask of the lanes where one of four vectors is NaN."""
        o = self.o
        return o.mor.format(o.cmp.format(a, b, "_CMP_UNORD_Q"), o.cmp.format(c, d, "_CMP_UNORD_Q"))

    def merge(self, a: int, b: int, indent: str) -> list[str]:
        """Chain `b`'s lanes into chain `a`'s where better: a larger value, a NaN over a
        number, or an equal value (both NaN included) at a smaller index."""
        o = self.o
        va, vb, ia, ib = f"lw_v{a}", f"lw_v{b}", f"lw_i{a}", f"lw_i{b}"
        strict = "_CMP_GT_OQ" if self.op == "argmax=" else "_CMP_LT_OQ"
        an, bn = o.cmp.format(va, va, "_CMP_UNORD_Q"), o.cmp.format(vb, vb, "_CMP_UNORD_Q")
        equal = o.mor.format(o.cmp.format(vb, va, "_CMP_EQ_OQ"), o.mand.format(an, bn))
        take = o.mor.format(o.mor.format(o.cmp.format(vb, va, strict), o.mandnot.format(an, bn)),
                            o.mand.format(equal, o.icmpgt.format(ia, ib)))
        return [f"{indent}{{", f"{indent}  const {o.mask} lw_t = {take};",
                f"{indent}  {va} = {o.blend.format('lw_t', va, vb)};",
                f"{indent}  {ia} = {o.iblend.format('lw_t', ia, ib)};", f"{indent}}}"]

    def fold(self, update: Store, keep: Store, indent: str) -> list[str]:
        """Every lane into the targets (`best`, `idx`): see the module docstring."""
        o, r = self.o, self.r
        ctype = r.ctype(keep.value.dtype)
        best = r.expr(ir.Load(keep.tensor, keep.indices, keep.value.dtype))
        idx = r.expr(ir.Load(update.tensor, update.indices, update.value.dtype))
        cmp = ">" if self.op == "argmax=" else "<"
        lines = [f"{indent}{{"]
        step = 1
        while step < CHAINS:  # chains pairwise into chain 0, lane by lane
            for k in range(0, CHAINS, 2 * step):
                lines += self.merge(k, k + step, indent + "  ")
            step *= 2
        n = o.lanes
        lines += [f"{indent}  {ctype} lw_vs[{n}];", f"{indent}  {o.itype} lw_is[{n}];",
                  f"{indent}  {o.store.format('lw_vs', 'lw_v0')};",
                  f"{indent}  {o.istore.format('lw_is', 'lw_i0')};"]
        better = f"lw_v {cmp} {best} || (lw_v != lw_v && {best} == {best})"
        equal = f"lw_v == {best} || (lw_v != lw_v && {best} != {best})"
        return [*lines, f"{indent}  for (int lw_l = 0; lw_l < {n}; lw_l++) {{",
                f"{indent}    const {ctype} lw_v = lw_vs[lw_l];",
                f"{indent}    const int64_t lw_j = lw_base + (int64_t)lw_is[lw_l];",
                f"{indent}    if ({idx} < 0 || {better} || (({equal}) && lw_j < {idx})) {{",
                f"{indent}      {best} = lw_v;",
                f"{indent}      {idx} = lw_j;",
                f"{indent}    }}", f"{indent}  }}", f"{indent}}}"]
