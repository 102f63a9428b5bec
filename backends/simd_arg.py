"""SIMD for an arg-reduction's vector loop (`idx[i] argmax= X[i, j]`, j vector; ir/argreduce.py).

The loop body is the pair `idx = select(<X better than best>, j, idx); best max= X`. Each lane
keeps its own (value, index) pair, four independent sets of lanes hide the blend latency:

    {
      c1 = init; end = hi;
      if (at least 4 vectors, and the offsets fit the index lanes) {
        base = <j at c1>;  v_k = load(X + k W);  i_k = iota + k W   (k < 4)  c1 += 4 W
        for (; 4 vectors left; ) for k: take = X > v_k or (X is NaN and v_k is not)
                                        v_k = take ? X : v_k;  i_k = take ? offset : i_k
        (then whole vectors into v_0, i_0)
        fold every lane into (best, idx), in any order: a lane wins if idx < 0, its value is
        better, or equal (both NaN counts as equal) with a smaller index
      }
      for (; c1 < end; c1++) <the scalar body>                    /* the remainder */
    }

A lane takes a value only if strictly better, so each lane holds its first best element, and
the fold's total order (value, then smaller index) makes the result that of the scalar loop:
numpy's tie rule, bit for bit, whatever the lane count. AVX2 and AVX-512, f32 (i32 index
lanes, so a loop of at most 2^31 - 1 iterations runs vectorized) and f64 (i64 lanes); anything
else returns None and the loop stays scalar.
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
    take: str  # {0}: x, {1}: the lane's best, {2}: the comparison predicate
    blend: str  # {0}: mask, {1}: kept, {2}: taken
    iblend: str


def _x86(width: int, suffix: str) -> _Ops:
    """AVX2 (`width` 256) or AVX-512 (512) vectors of f32 (`suffix` "ps", i32 index lanes) or
    f64 ("pd", i64 index lanes)."""
    p, bits = f"_mm{width}", 32 if suffix == "ps" else 64
    lanes = width // bits
    d = "" if suffix == "ps" else "d"
    x = "x" if width == 256 and bits == 64 else ""  # _mm256_set_epi64x
    iota = f"{p}_set_epi{bits}{x}({', '.join(str(n) for n in reversed(range(lanes)))})"
    common = dict(ivector=f"__m{width}i", lanes=lanes, itype=f"int{bits}_t", iota=iota,
                  load=f"{p}_loadu_{suffix}({{0}})", store=f"{p}_storeu_{suffix}({{0}}, {{1}})",
                  isplat=f"{p}_set1_epi{bits}{x}({{0}})", iadd=f"{p}_add_epi{bits}({{0}}, {{1}})")
    if width == 256:
        return _Ops(vector=f"__m256{d}", mask=f"__m256{d}",
                    istore="_mm256_storeu_si256((__m256i *)({0}), {1})",
                    take=f"{p}_and_{suffix}({p}_cmp_{suffix}({{0}}, {{1}}, {{2}}), "
                         f"{p}_cmp_{suffix}({{1}}, {{1}}, _CMP_ORD_Q))",
                    blend=f"{p}_blendv_{suffix}({{1}}, {{2}}, {{0}})",
                    iblend=f"{p}_blendv_epi8({{1}}, {{2}}, {p}_cast{suffix}_si256({{0}}))",
                    **common)
    return _Ops(vector=f"__m512{d}", mask=f"__mmask{lanes}", istore="_mm512_storeu_si512({0}, {1})",
                take=f"{p}_mask_cmp_{suffix}_mask({p}_cmp_{suffix}_mask({{1}}, {{1}}, "
                     f"_CMP_ORD_Q), {{0}}, {{1}}, {{2}})",
                blend=f"{p}_mask_blend_{suffix}({{0}}, {{1}}, {{2}})",
                iblend=f"{p}_mask_blend_epi{bits}({{0}}, {{1}}, {{2}})", **common)


OPS = {("avx2", "f32"): _x86(256, "ps"), ("avx2", "f64"): _x86(256, "pd"),
       ("avx512", "f32"): _x86(512, "ps"), ("avx512", "f64"): _x86(512, "pd")}
#: The comparison that takes a lane's new value: x > best or unordered (argmin: x < best).
_PREDICATE = {"argmax=": "_CMP_NLE_UQ", "argmin=": "_CMP_NGE_UQ"}


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
        total = CHAINS * w
        ptr = f"&{r.expr(keep.value)}"
        fits = f" && lw_end - {c} <= 2147483647" if o.itype == "int32_t" else ""
        lines = [f"{self.indent}{{", f"{i1}int64_t {c} = {r.expr(node.init)};",
                 f"{i1}const int64_t lw_end = {end};",
                 f"{i1}if (lw_end - {c} >= {total}{fits}) {{",
                 f"{i2}const int64_t lw_base = {r.expr(index)};",
                 f"{i2}const {o.ivector} lw_iota = {o.iota};"]
        for k in range(CHAINS):
            lines += [f"{i2}{o.vector} lw_v{k} = {o.load.format(f'{ptr} + {k * w}')};",
                      f"{i2}{o.ivector} lw_i{k} = "
                      f"{o.iadd.format('lw_iota', o.isplat.format(k * w))};"]
        lines += [f"{i2}{c} += {total};",
                  f"{i2}{o.ivector} lw_at = {o.iadd.format('lw_iota', o.isplat.format(total))};",
                  f"{i2}const {o.ivector} lw_step = {o.isplat.format(w)};",
                  f"{i2}for (; lw_end - {c} >= {total}; ) {{"]
        for k in range(CHAINS):
            lines += self.step(k, ptr, c, i3)
        lines += [f"{i2}}}", f"{i2}for (; lw_end - {c} >= {w}; ) {{", *self.step(0, ptr, c, i3),
                  f"{i2}}}", *self.fold(update, keep, i2), f"{i1}}}",
                  f"{i1}for (; {c} < lw_end; {c} += 1) {{", *r.stmt(node.body, i2),
                  f"{i1}}}", f"{self.indent}}}"]
        return lines

    def step(self, k: int, ptr: str, c: str, indent: str) -> list[str]:
        """One vector of the loop into the lanes of chain `k`."""
        o = self.o
        take = o.take.format("lw_x", f"lw_v{k}", _PREDICATE[self.op])
        return [f"{indent}{{",
                f"{indent}  const {o.vector} lw_x = {o.load.format(ptr)};",
                f"{indent}  const {o.mask} lw_t = {take};",
                f"{indent}  lw_v{k} = {o.blend.format('lw_t', f'lw_v{k}', 'lw_x')};",
                f"{indent}  lw_i{k} = {o.iblend.format('lw_t', f'lw_i{k}', 'lw_at')};",
                f"{indent}  lw_at = {o.iadd.format('lw_at', 'lw_step')};",
                f"{indent}  {c} += {o.lanes};", f"{indent}}}"]

    def fold(self, update: Store, keep: Store, indent: str) -> list[str]:
        """Every lane into the targets (`best`, `idx`): see the module docstring."""
        o, r, n = self.o, self.r, CHAINS * self.o.lanes
        ctype = r.ctype(keep.value.dtype)
        best = r.expr(ir.Load(keep.tensor, keep.indices, keep.value.dtype))
        idx = r.expr(ir.Load(update.tensor, update.indices, update.value.dtype))
        cmp = ">" if self.op == "argmax=" else "<"
        lines = [f"{indent}{{", f"{indent}  {ctype} lw_vs[{n}];",
                 f"{indent}  {o.itype} lw_is[{n}];"]
        for k in range(CHAINS):
            at = k * o.lanes
            lines += [f"{indent}  {o.store.format(f'lw_vs + {at}', f'lw_v{k}')};",
                      f"{indent}  {o.istore.format(f'lw_is + {at}', f'lw_i{k}')};"]
        better = f"lw_v {cmp} {best} || (lw_v != lw_v && {best} == {best})"
        equal = f"lw_v == {best} || (lw_v != lw_v && {best} != {best})"
        return [*lines, f"{indent}  for (int lw_l = 0; lw_l < {n}; lw_l++) {{",
                f"{indent}    const {ctype} lw_v = lw_vs[lw_l];",
                f"{indent}    const int64_t lw_j = lw_base + (int64_t)lw_is[lw_l];",
                f"{indent}    if ({idx} < 0 || {better} || (({equal}) && lw_j < {idx})) {{",
                f"{indent}      {best} = lw_v;",
                f"{indent}      {idx} = lw_j;",
                f"{indent}    }}", f"{indent}  }}", f"{indent}}}"]
