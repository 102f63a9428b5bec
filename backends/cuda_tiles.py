"""The body of a contraction kernel (`C[i, j] op= f(A[i, k], B[k, j])`).

Each block computes a block_m x block_n tile of outputs; each thread a thread_m x thread_n
register tile of it, rows `ty + m * TY` and columns `tx + n * TX` (so that a warp's loads and
stores are consecutive). The innermost reduction dimension advances block_k at a time: the
threads copy the operands' tiles into `__shared__` memory cooperatively (consecutive threads
read consecutive addresses), `__syncthreads()`, accumulate from shared memory into registers,
and `__syncthreads()` again before the next copy overwrites the tiles. Int8 dot products use
`__dp4a` (four products per instruction, int32 accumulation).
"""

from __future__ import annotations

from loopweave.backends.c_family import c_name
from loopweave.backends.cuda_lower import KernelPlan
from loopweave.backends.cuda_raw import Raw
from loopweave.ir import expr as ir
from loopweave.ir.types import F32, INDEX, identity


def contraction_body(r, plan: KernelPlan) -> list[str]:
    """Lines of the kernel body (`r` is the CudaRenderer)."""
    spec = plan.contraction
    t = r.tiles
    n = len(plan.dims)
    tx, ty = t.block_n // t.thread_n, t.block_m // t.thread_m
    di, dj = n - 2, n - 1  # positions of the tiled dimensions in plan.dims
    names = {spec.tile_i: ("i", di, t.block_m), spec.tile_j: ("j", dj, t.block_n)}
    s = spec.stmt
    acc_t = s.rhs.dtype
    acc = r.ctype(acc_t)
    ident = r.const(identity(s.op, acc_t), acc_t)
    k = spec.red_inner.name
    lines = []
    for x, st in enumerate(spec.staged):
        side, _, rows = names[st.along]
        ct = r.ctype(st.load.dtype)
        shape = f"[{rows}][{t.block_k + 4}]" if spec.dp4a else f"[{t.block_k}][{rows + 1}]"
        lines.append(f"  __shared__ __align__(16) {ct} lw_s{x}{shape};")
    lines += [
        f"  const int lw_tid = (int)(threadIdx.y * {tx} + threadIdx.x);",
        f"  for (int64_t lw_z = blockIdx.z; lw_z < {r.flat_extent(n - 2)}; lw_z += gridDim.z) {{"]
    lines += r.decode(plan.dims[:n - 2], 0, "lw_z", "    ")
    lines += [
        f"    for (int64_t lw_bi = blockIdx.y; lw_bi < (lw_n{di} + {t.block_m - 1}) / "
        f"{t.block_m}; lw_bi += gridDim.y) {{",
        f"    for (int64_t lw_bj = blockIdx.x; lw_bj < (lw_n{dj} + {t.block_n - 1}) / "
        f"{t.block_n}; lw_bj += gridDim.x) {{",
        f"      const int64_t lw_i0 = lw_lo{di} + lw_bi * {t.block_m};",
        f"      const int64_t lw_j0 = lw_lo{dj} + lw_bj * {t.block_n};",
        f"      {acc} lw_acc[{t.thread_m}][{t.thread_n}];"]
    point = _point(r, spec, di, dj, tx, ty)
    lhs = ir.Load(s.lhs.tensor, s.lhs.indices, s.lhs.dtype)
    start = f"(lw_in && ({r.expr(spec.guard_red)})) ? {r.expr(lhs)} : {ident}"
    if spec.init is not None:
        start = f"(lw_in && ({r.expr(spec.guard_init)})) ? {ident} : ({start})"
    lines += [*point("      "), f"        lw_acc[lw_m][lw_n] = {start};", "      }}"]
    indent = "      "
    for d in spec.red_outer:
        v = c_name(d.name)
        lines.append(f"{indent}for (int64_t {v} = {r.expr(d.lo)}; {v} <= {r.expr(d.hi)}; "
                     f"{v} += 1) {{")
        indent += "  "
    kv = c_name(k)
    lines += [f"{indent}for (int64_t lw_k0 = {r.expr(spec.red_inner.lo)}; lw_k0 <= "
              f"{r.expr(spec.red_inner.hi)}; lw_k0 += {t.block_k}) {{"]
    inner = indent + "  "
    for x, st in enumerate(spec.staged):
        lines += _stage(r, spec, x, st, names, inner, tx * ty, di, dj)
    lines.append(f"{inner}__syncthreads();")
    if spec.dp4a:
        lines += _dp4a_compute(r, spec, names, inner, tx, ty)
    else:
        lines += _compute(r, spec, names, inner, tx, ty, kv, di, dj)
    lines += [f"{inner}__syncthreads();", f"{indent}}}"]
    while indent != "      ":
        indent = indent[:-2]
        lines.append(f"{indent}}}")
    target = r.expr(lhs)
    final = f"if ({r.expr(spec.guard_red)}) {target} = lw_acc[lw_m][lw_n];"
    if spec.init is not None:
        final += f" else if ({r.expr(spec.guard_init)}) {target} = {ident};"
    lines += [*point("      "), f"        if (lw_in) {{ {final} }}", "      }}",
              "    }", "    }", "  }"]
    return lines


def _point(r, spec, di: int, dj: int, tx: int, ty: int):
    """The loops over a thread's register tile, declaring the tile dimensions' variables."""
    t = r.tiles
    vi, vj = c_name(spec.tile_i), c_name(spec.tile_j)

    def lines(indent: str) -> list[str]:
        return [f"{indent}#pragma unroll",
                f"{indent}for (int lw_m = 0; lw_m < {t.thread_m}; ++lw_m) {{",
                f"{indent}#pragma unroll",
                f"{indent}for (int lw_n = 0; lw_n < {t.thread_n}; ++lw_n) {{",
                f"{indent}  const int64_t {vi} = lw_i0 + threadIdx.y + lw_m * {ty};",
                f"{indent}  const int64_t {vj} = lw_j0 + threadIdx.x + lw_n * {tx};",
                f"{indent}  const bool lw_in = {vi} < lw_lo{di} + lw_n{di} && "
                f"{vj} < lw_lo{dj} + lw_n{dj};"]
    return lines


def _stage(r, spec, x: int, st, names, indent: str, threads: int, di: int, dj: int) -> list[str]:
    """Copy one operand's tile into shared memory (zero outside the ranges)."""
    t = r.tiles
    side, pos, rows = names[st.along]
    k = spec.red_inner.name
    last = st.load.indices[-1] if st.load.indices else ir.Const(0)
    k_fastest = k in {v.name for v in ir.walk(last) if isinstance(v, ir.Var)}
    if k_fastest:
        split = [f"const int lw_t = lw_e / {t.block_k};", f"const int lw_kk = lw_e % {t.block_k};"]
    else:
        split = [f"const int lw_kk = lw_e / {rows};", f"const int lw_t = lw_e % {rows};"]
    base = "lw_i0" if side == "i" else "lw_j0"
    load = ir.substitute(st.load, {st.along: Raw(f"({base} + lw_t)", INDEX),
                                   k: Raw("(lw_k0 + lw_kk)", INDEX)})
    conds = [f"{base} + lw_t < lw_lo{pos} + lw_n{pos}",
             f"lw_k0 + lw_kk <= {r.expr(spec.red_inner.hi)}"]
    for ix, dim in zip(load.indices, r.shapes[st.load.tensor], strict=True):
        conds.append(f"{r.expr(ix, 10)} >= 0 && {r.expr(ix, 10)} < {r.expr(dim, 10)}")
    cell = f"lw_s{x}[lw_t][lw_kk]" if spec.dp4a else f"lw_s{x}[lw_kk][lw_t]"
    zero = f"({r.ctype(st.load.dtype)})0" if st.load.dtype.is_int else \
        r.cast(st.load.dtype, ir.Const(0.0, F32))
    return [f"{indent}for (int lw_e = lw_tid; lw_e < {t.block_k * rows}; lw_e += {threads}) {{",
            *(f"{indent}  {line}" for line in split),
            f"{indent}  {cell} = ({' && '.join(conds)}) ? {r.expr(load)} : {zero};",
            f"{indent}}}"]


def _operands(spec, names, tx: int, ty: int, kk: str, dp4a: bool):
    """Raw expressions for each staged operand in the register-tile loops."""
    out = {}
    for x, st in enumerate(spec.staged):
        side = names[st.along][0]
        row = f"threadIdx.y + lw_m * {ty}" if side == "i" else f"threadIdx.x + lw_n * {tx}"
        cell = f"lw_s{x}[{row}][{kk}]" if dp4a else f"lw_s{x}[{kk}][{row}]"
        out[st.load] = Raw(cell, st.load.dtype)
    return out


def _compute(r, spec, names, indent: str, tx: int, ty: int, kv: str, di: int,
             dj: int) -> list[str]:
    t = r.tiles
    s = spec.stmt
    operands = _operands(spec, names, tx, ty, "lw_kk", False)
    value = ir.rewrite(s.rhs, lambda e: operands.get(e) if isinstance(e, ir.Load) else None)
    acc = "lw_acc[lw_m][lw_n]"
    update = r.reduce(s.op, acc, r.expr(value, 13 if s.op == "*=" else 12), s.rhs.dtype)
    vi, vj = c_name(spec.tile_i), c_name(spec.tile_j)
    uses = {v.name for v in ir.walk(value) if isinstance(v, ir.Var)}
    decls = []
    if spec.tile_i in uses:
        decls.append(f"const int64_t {vi} = lw_i0 + threadIdx.y + lw_m * {ty};")
    if spec.tile_j in uses:
        decls.append(f"const int64_t {vj} = lw_j0 + threadIdx.x + lw_n * {tx};")
    direct = [ld for ld in ir.loads(value) if {spec.tile_i, spec.tile_j} & {
        v.name for ix in ld.indices for v in ir.walk(ix) if isinstance(v, ir.Var)}]
    if direct:  # an operand read from global memory at the output point: stay in range
        for v, side in ((vi, "i"), (vj, "j")):
            if f"const int64_t {v} " not in " ".join(decls):
                decls.append(f"const int64_t {v} = " + (
                    f"lw_i0 + threadIdx.y + lw_m * {ty};" if side == "i"
                    else f"lw_j0 + threadIdx.x + lw_n * {tx};"))
        decls.append(f"if (!({vi} < lw_lo{di} + lw_n{di} && {vj} < lw_lo{dj} + lw_n{dj})) "
                     "continue;")
    kdecl = [f"{indent}  const int64_t {kv} = lw_k0 + lw_kk;"] if spec.red_inner.name in uses \
        else []
    return [f"{indent}const int lw_kn = (int)lw_min_i64({t.block_k}, "
            f"{r.expr(spec.red_inner.hi)} - lw_k0 + 1);",
            f"{indent}for (int lw_kk = 0; lw_kk < lw_kn; ++lw_kk) {{", *kdecl,
            f"{indent}  #pragma unroll",
            f"{indent}  for (int lw_m = 0; lw_m < {t.thread_m}; ++lw_m) {{",
            f"{indent}    #pragma unroll",
            f"{indent}    for (int lw_n = 0; lw_n < {t.thread_n}; ++lw_n) {{",
            *(f"{indent}      {d}" for d in decls),
            f"{indent}      {acc} = {update};",
            f"{indent}    }}", f"{indent}  }}", f"{indent}}}"]


def _dp4a_compute(r, spec, names, indent: str, tx: int, ty: int) -> list[str]:
    t = r.tiles
    operands = _operands(spec, names, tx, ty, "lw_kk", True)
    a, b = (operands[st.load].text for st in spec.staged)
    if names[spec.staged[0].along][0] != "i":
        a, b = b, a
    return [f"{indent}for (int lw_kk = 0; lw_kk < {t.block_k}; lw_kk += 4) {{",
            f"{indent}  #pragma unroll",
            f"{indent}  for (int lw_m = 0; lw_m < {t.thread_m}; ++lw_m) {{",
            f"{indent}    const int lw_a = *(const int *)&{a};",
            f"{indent}    #pragma unroll",
            f"{indent}    for (int lw_n = 0; lw_n < {t.thread_n}; ++lw_n) {{",
            f"{indent}      lw_acc[lw_m][lw_n] = __dp4a(lw_a, *(const int *)&{b}, "
            "lw_acc[lw_m][lw_n]);",
            f"{indent}    }}", f"{indent}  }}", f"{indent}}}"]
