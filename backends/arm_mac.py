"""int8 multiply-accumulate nests in each Arm core's idiom (Cortex-M4 DSP, Cortex-M55 Helium,
AArch64 NEON).

The pattern (`match`) is a loop over a *lane* variable v whose body is a perfect nest of
reduction loops around one store

    for v:  for r1: ... for rn:  T[..., v + c] += i32(P[...]) * i32(Q[..., v + d])

with T an i32 tensor, P and Q int8, T and Q unit-stride in v (v only in their last index, with
coefficient 1), P independent of v, T independent of the r's, and the r loops' bounds
independent of v. Matrix multiplication (v = j), NCHW convolution and depthwise convolution
(v = x) all have this form. The lanes v, v+1, ... then run the reduction loops in lockstep:
each lane is its own accumulator and sees its terms in the original order, so the result is
exactly the loop nest's (int32 arithmetic wraps, as with -fwrapv).

Per core (`EMITTERS`):
- cortex-m55: 4 lanes in an int32x4_t; `vldrbq_z_s32` widens Q's bytes, `vmlaq_n_s32` multiplies
  by P broadcast; tail lanes are predicated (`vctp32q`), so there is no scalar epilogue.
- cortex-m4: 4 lanes as two pairs; the innermost reduction loop is taken two steps at a time so
  that `SMLAD` does two 16-bit MACs: P(r), P(r+1) packed into one word, Q's 2x2 bytes at
  (r, v..v+1), (r+1, v..v+1) loaded as two halfwords and split into the lanes' pairs by `SXTB16`
  (and `SXTB16` of the word rotated by 8). Odd steps and lanes finish in plain C.
- aarch64: 8 lanes in two int32x4_t; `vmovl_s8` widens Q, `vmlal_n_s16`/`vmlal_high_n_s16`
  multiply-accumulate by P. Leftover lanes finish in plain C.
Under the default schedule the M4's int8 matmul packs both operands, and this backend stores
those packed int8 copies widened to int16 (`WIDENED_PACKS`, `render_scope`; the copy loops four
bytes a word by SXTB16, `arm_mac_tile.render_widening_copy`), so that its dot tile feeds SMLAD
16-bit pairs straight from LDRD; only the renderers that know it take a widened buffer's address.
Without the DSP extension (`__ARM_FEATURE_SIMD32` undefined) the M4 helpers are plain C, so the
emitted file still compiles anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from loopweave.backends.arm_mac_tile import (
    exclusive_end,
    render_dot_tile,
    render_mac_tile,
    render_widening_copy,
)
from loopweave.backends.c import CBackend
from loopweave.backends.c_family import PRELUDE, c_name, c_var
from loopweave.ir import expr as ir
from loopweave.ir.kernel import KernelIR
from loopweave.ir.loops import Block, Buffer, For, Node, Scope, Store, walk
from loopweave.ir.types import I8, I16, I32


@dataclass(frozen=True)
class MacNest:
    """A matched nest: the lane loop, its reduction loops and the accumulation."""

    lane: For
    end: ir.Expr  # exclusive upper bound of the lane variable
    inner: tuple[For, ...]  # reduction loops, outermost first
    inner_ends: tuple[ir.Expr, ...]
    store: Store
    wide: ir.Load  # Q: unit stride in the lane variable
    bcast: ir.Load  # P: independent of the lane variable


def _has(e: ir.Expr, var: str) -> bool:
    return any(isinstance(x, ir.Var) and x.name == var for x in ir.walk(e))


def _unit(e: ir.Expr, var: str) -> bool:
    """True if `e` is var + (terms without var)."""
    match e:
        case ir.Var(name=n):
            return n == var
        case ir.Binary(op="+", left=a, right=b):
            return (_unit(a, var) and not _has(b, var)) or (_unit(b, var) and not _has(a, var))
        case ir.Binary(op="-", left=a, right=b):
            return _unit(a, var) and not _has(b, var)
    return False


def _unit_last(indices: tuple[ir.Expr, ...], var: str) -> bool:
    return bool(indices) and _unit(indices[-1], var) and not any(_has(i, var)
                                                                 for i in indices[:-1])


def _int8_product(value: ir.Expr) -> tuple[ir.Load, ir.Load] | None:
    match value:
        case ir.Binary(op="*", left=ir.Cast(dtype=t1, operand=ir.Load() as a),
                       right=ir.Cast(dtype=t2, operand=ir.Load() as b)) \
                if t1 == I32 and t2 == I32 and a.dtype.name == "i8" and b.dtype.name == "i8":
            return a, b
    return None


def match(node: For, kernel: KernelIR) -> MacNest | None:
    """The int8 MAC nest rooted at `node` (the lane loop), or None if it does not have the form."""
    v = node.var
    end = exclusive_end(node)
    if node.step != 1 or end is None or _has(end, v):
        return None
    inner, ends, body = [], [], node.body
    while True:
        while isinstance(body, Block) and len(body.body) == 1:
            body = body.body[0]
        if not isinstance(body, For):
            break
        e = exclusive_end(body)
        if body.step != 1 or e is None or _has(body.init, v) or _has(e, v):
            return None
        inner.append(body)
        ends.append(e)
        body = body.body
    if not inner or not isinstance(body, Store) or body.reduce != "+=":
        return None
    store = body
    operands = _int8_product(store.value)
    # The accumulator may be a local buffer (a cache_write's edge tile), not a kernel tensor.
    tensor = kernel.tensors.get(store.tensor)
    if operands is None or (tensor.dtype if tensor else store.value.dtype) != I32:
        return None
    if not _unit_last(store.indices, v) or any(_has(i, f.var) for f in inner
                                               for i in store.indices):
        return None
    a, b = operands
    if store.tensor in (a.tensor, b.tensor):
        return None
    a_has = any(_has(i, v) for i in a.indices)
    wide, bcast = (a, b) if a_has else (b, a)
    if not _unit_last(wide.indices, v) or any(_has(i, v) for i in bcast.indices):
        return None
    return MacNest(node, end, tuple(inner), tuple(ends), store, wide, bcast)


def _only_copied_into(body: Node, buffer: str) -> bool:
    """Whether every store to `buffer` in `body` is a plain copy of an int8 tensor element (a
    cache_read's packing), so that the buffer may hold the values in a wider type."""
    stores = [n for n in walk(body) if isinstance(n, Store) and n.tensor == buffer]
    return bool(stores) and all(s.reduce is None and isinstance(s.value, ir.Load)
                                and s.value.dtype == I8 for s in stores)


# -- emission ---------------------------------------------------------------------------------

def _at(backend, load: ir.Load | Store, shift: dict[str, int] | None = None) -> str:
    """`&X[index]`, with loop variables shifted by constants (`{"k": 1}`: k -> k + 1)."""
    indices = load.indices
    if shift:
        mapping = {n: ir.add(ir.Var(n), ir.Const(d)) for n, d in shift.items()}
        indices = tuple(ir.substitute(i, mapping) for i in indices)
    name = load.tensor
    return f"&{c_name(name)}[{backend.linear_index(name, indices)}]"


def _value(backend, load: ir.Load, shift: dict[str, int] | None = None) -> str:
    """`X[index]` (see `_at`)."""
    return _at(backend, load, shift)[1:]


def _heads(backend, loops: tuple[For, ...], indent: str) -> tuple[list[str], list[str], str]:
    """Opening lines of the reduction loops, their closing lines, and the innermost indent."""
    opens, closes = [], []
    for loop in loops:
        var = c_var(loop.var)
        opens.append(f"{indent}for ({backend.index_type} {var} = {backend.expr(loop.init)}; "
                     f"{backend.expr(loop.cond)}; {var} += 1) {{")
        closes.insert(0, f"{indent}}}")
        indent += "  "
    return opens, closes, indent


def _lane_block(backend, nest: MacNest, indent: str, width: int, main: list[str],
                tail: bool) -> list[str]:
    """`{ end; v = init; for (; v + width <= end; v += width) main; scalar tail }`."""
    it = backend.index_type
    v = c_var(nest.lane.var)
    end = f"lw_end_{v}"
    lines = [f"{indent}{{", f"{indent}  const {it} {end} = {backend.expr(nest.end)};",
             f"{indent}  {it} {v} = {backend.expr(nest.lane.init)};"]
    cond = f"{v} < {end}" if not tail else f"{v} + {width} <= {end}"
    lines += [f"{indent}  for (; {cond}; {v} += {width}) {{", *main, f"{indent}  }}"]
    if tail:  # leftover lanes: the original body, one lane at a time
        lines += [f"{indent}  for (; {v} < {end}; {v} += 1) {{",
                  *backend.stmt(nest.lane.body, indent + "    "), f"{indent}  }}"]
    return [*lines, f"{indent}}}"]


def emit_mve(backend, nest: MacNest, indent: str) -> list[str]:
    """Cortex-M55: 4 predicated int32 lanes, `vmlaq_n_s32` on widened bytes."""
    v = c_var(nest.lane.var)
    body = indent + "    "
    opens, closes, inner = _heads(backend, nest.inner, body)
    main = [f"{body}const mve_pred16_t lw_p = vctp32q((uint32_t)(lw_end_{v} - {v}));",
            f"{body}int32x4_t lw_acc = vldrwq_z_s32({_at(backend, nest.store)}, lw_p);",
            *opens,
            f"{inner}lw_acc = vmlaq_n_s32(lw_acc, vldrbq_z_s32({_at(backend, nest.wide)}, lw_p),"
            f" (int32_t){_value(backend, nest.bcast)});",
            *closes,
            f"{body}vstrwq_p_s32({_at(backend, nest.store)}, lw_acc, lw_p);"]
    return _lane_block(backend, nest, indent, 4, main, tail=False)


def emit_neon(backend, nest: MacNest, indent: str) -> list[str]:
    """AArch64: 8 int32 lanes in two vectors, `vmlal_n_s16` on widened bytes."""
    body = indent + "    "
    opens, closes, inner = _heads(backend, nest.inner, body)
    t = _at(backend, nest.store)
    main = [f"{body}int32x4_t lw_lo = vld1q_s32({t}), lw_hi = vld1q_s32({t} + 4);",
            *opens,
            f"{inner}const int16x8_t lw_q = vmovl_s8(vld1_s8({_at(backend, nest.wide)}));",
            f"{inner}const int16_t lw_s = (int16_t){_value(backend, nest.bcast)};",
            f"{inner}lw_lo = vmlal_n_s16(lw_lo, vget_low_s16(lw_q), lw_s);",
            f"{inner}lw_hi = vmlal_high_n_s16(lw_hi, lw_q, lw_s);",
            *closes,
            f"{body}vst1q_s32({t}, lw_lo);", f"{body}vst1q_s32({t} + 4, lw_hi);"]
    return _lane_block(backend, nest, indent, 8, main, tail=True)


def emit_dsp(backend, nest: MacNest, indent: str) -> list[str]:
    """Cortex-M4: 4 lanes, two reduction steps per SMLAD."""
    body = indent + "    "
    opens, closes, inner = _heads(backend, nest.inner[:-1], body)
    last = nest.inner[-1]
    r, it = c_var(last.var), backend.index_type
    rend = f"lw_end_{r}"
    accs = [f"lw_acc{i}" for i in range(4)]
    p0, p1 = _value(backend, nest.bcast), _value(backend, nest.bcast, {last.var: 1})
    step = [f"{inner}  const int8_t *lw_q0 = {_at(backend, nest.wide)}, "
            f"*lw_q1 = {_at(backend, nest.wide, {last.var: 1})};",
            f"{inner}  const uint32_t lw_a = lw_pack16({p0}, {p1});",
            f"{inner}  const uint32_t lw_b01 = lw_ld16(lw_q0) | (lw_ld16(lw_q1) << 16);",
            f"{inner}  const uint32_t lw_b23 = lw_ld16(lw_q0 + 2) | (lw_ld16(lw_q1 + 2) << 16);"]
    for i, acc in enumerate(accs):
        word = "lw_b01" if i < 2 else "lw_b23"
        half = word if i % 2 == 0 else f"lw_ror8({word})"
        step.append(f"{inner}  {acc} = lw_smlad(lw_a, lw_sxtb16({half}), {acc});")
    odd = [f"{inner}  const int32_t lw_s = {p0};",
           f"{inner}  const int8_t *lw_q0 = {_at(backend, nest.wide)};",
           *(f"{inner}  {acc} += lw_s * lw_q0[{i}];" for i, acc in enumerate(accs))]
    main = [f"{body}int32_t *lw_t = {_at(backend, nest.store)};",
            f"{body}int32_t {', '.join(f'{a} = lw_t[{i}]' for i, a in enumerate(accs))};",
            *opens,
            f"{inner}{{",
            f"{inner}  const {it} {rend} = {backend.expr(nest.inner_ends[-1])};",
            f"{inner}  {it} {r} = {backend.expr(last.init)};",
            f"{inner}  for (; {r} + 1 < {rend}; {r} += 2) {{",
            *[f"  {line}" for line in step],
            f"{inner}  }}",
            f"{inner}  if ({r} < {rend}) {{",
            *[f"  {line}" for line in odd],
            f"{inner}  }}",
            f"{inner}}}",
            *closes,
            *(f"{body}lw_t[{i}] = {a};" for i, a in enumerate(accs))]
    return _lane_block(backend, nest, indent, 4, main, tail=True)


_DSP_HELPERS = r"""
/* Cortex-M4 DSP: packed 16-bit MAC (SMLAD) and byte unpacking (SXTB16), plain C without it. */
#if defined(__ARM_FEATURE_SIMD32) && __ARM_FEATURE_SIMD32
#include <arm_acle.h>
#define lw_smlad(a, b, acc) __smlad((int16x2_t)(a), (int16x2_t)(b), (acc))
#define lw_sxtb16(x) ((uint32_t)__sxtb16((int8x4_t)(x)))
#else
static inline int32_t lw_smlad(uint32_t a, uint32_t b, int32_t acc) {
  return (int32_t)((uint32_t)acc + (uint32_t)((int32_t)(int16_t)a * (int16_t)b)
                   + (uint32_t)((int32_t)(int16_t)(a >> 16) * (int16_t)(b >> 16)));
}
static inline uint32_t lw_sxtb16(uint32_t x) {
  return (uint32_t)(uint16_t)(int16_t)(int8_t)x | ((uint32_t)(uint16_t)(int16_t)(int8_t)(x >> 16)
                                                    << 16);
}
#endif
static inline uint32_t lw_ror8(uint32_t x) { return (x >> 8) | (x << 24); }
#if defined(__ARM_FEATURE_SIMD32) && __ARM_FEATURE_SIMD32
/* SXTB16 with its operand rotated in the same instruction (gcc does not fold the rotation). */
static inline uint32_t lw_sxtb16_ror8(uint32_t x) {
  uint32_t r; __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x)); return r;
}
#else
static inline uint32_t lw_sxtb16_ror8(uint32_t x) { return lw_sxtb16(lw_ror8(x)); }
#endif
/* Two words of 16-bit pairs at p + off (int16 elements, word-aligned) by one LDRD (gcc 12
   splits a 64-bit load into two LDRs on the M4). */
#if defined(__ARM_FEATURE_SIMD32) && __ARM_FEATURE_SIMD32
#define lw_ldrd_at(p, off, lo, hi) \
  __asm__("ldrd %0, %1, [%2, %3]" : "=r"(lo), "=r"(hi) \
          : "r"(p), "n"(2 * (off)), "m"(*(const int16_t (*)[4])((p) + (off))))
#else
#define lw_ldrd_at(p, off, lo, hi) \
  do { memcpy(&(lo), (p) + (off), 4); memcpy(&(hi), (p) + (off) + 2, 4); } while (0)
#endif
static inline uint32_t lw_ld16(const int8_t *p) { uint16_t h; memcpy(&h, p, 2); return h; }
static inline uint32_t lw_ld32(const int8_t *p) { uint32_t w; memcpy(&w, p, 4); return w; }
static inline uint32_t lw_ld32h(const int16_t *p) { uint32_t w; memcpy(&w, p, 4); return w; }
static inline void lw_st32h(int16_t *p, uint32_t w) { memcpy(p, &w, 4); }
/* Two halfwords in order from SXTB16's even (e) and odd (o) pairs: (e.lo, o.lo), (e.hi, o.hi)
   (what gcc emits as PKHBT and PKHTB). */
static inline uint32_t lw_pkhbt(uint32_t e, uint32_t o) { return (e & 0xFFFFu) | (o << 16); }
static inline uint32_t lw_pkhtb(uint32_t o, uint32_t e) {
  return (o & 0xFFFF0000u) | (e >> 16);
}
static inline uint32_t lw_pack16(int32_t lo, int32_t hi) {
  return (uint32_t)(uint16_t)lo | ((uint32_t)hi << 16);
}
"""

#: Cores whose int8 packed buffers (cache_read copies) are stored widened to 16 bits, and the
#: alignment of those buffers in bytes. On the M4 SMLAD multiplies 16-bit pairs: a packed
#: operand already in pairs is one word load per two steps of k, where bytes need a load and
#: two SXTB16s per four steps; the copy widens for free (a load of a signed byte, a halfword
#: store), and every element of a packed panel is read by many tiles.
WIDENED_PACKS: dict[str, tuple[object, int]] = {"cortex-m4": (I16, 8)}

EMITTERS: dict[str, Callable[..., list[str]]] = {
    "cortex-m4": emit_dsp, "cortex-m55": emit_mve, "aarch64": emit_neon}
INCLUDES: dict[str, str] = {
    "cortex-m4": _DSP_HELPERS,
    "cortex-m55": "\n#include <arm_mve.h> /* Helium: int8 MAC nests */\n",
    "aarch64": "\n#include <arm_neon.h> /* NEON: int8 MAC nests */\n",
}


class ArmCBackend(CBackend):
    """The C backend plus a core's MAC idiom (`idioms=False`: plain C) and its vector ISA
    (`backends.simd`) for loops scheduled as vector loops."""

    #: Register tiles in 16-byte vectors (NEON, Helium): wider GCC vector types spill there.
    register_tile_chunk_bytes = 16
    #: Local buffers stay on the stack: a microcontroller's newlib has no heap to lean on.
    heap_local_bytes = None
    #: Accumulators loaded by value (`r = lw_vload(p)`): gcc 12 for aarch64 keeps variables
    #: whose address a memcpy takes on the stack, a load and a store per multiply-add.
    register_tile_by_value = True

    def __init__(self, kernel: KernelIR, core: str, idioms: bool = True, vector_isa=None):
        super().__init__(kernel)
        self.core = core
        self.vector_isa = vector_isa
        self.mac = EMITTERS[core] if idioms else None
        self.mac_used = False
        #: Local int8 buffers declared as int16 (`WIDENED_PACKS`): only the renderers that
        #: know it (the M4 dot tile, the widening copy) take their address; elements read the
        #: same either way.
        self.widened: set[str] = set()

    def render_for(self, node: For, indent: str) -> list[str]:
        tile = None
        if self.mac:  # the default schedule's register tiles, in the core's MAC idioms
            tile = render_mac_tile(self, node, indent) or render_dot_tile(self, node, indent)
        if self.widened and tile is None:  # packing into a widened buffer
            copy = render_widening_copy(self, node, indent)
            if copy is not None:
                return copy
        if tile is not None:
            self.mac_used = True
            return tile
        nest = match(node, self.kernel) if self.mac else None
        if nest is None or {nest.wide.tensor, nest.bcast.tensor} & self.widened:
            return super().render_for(node, indent)
        self.mac_used = True
        return self.mac(self, nest, indent)

    def render_scope(self, node: Scope, indent: str) -> list[str]:
        """The scope's buffers; on a core of `WIDENED_PACKS`, int8 copies widened and aligned."""
        widen = [b for b in node.buffers if self.mac and self.core in WIDENED_PACKS
                 and b.dtype == I8 and _only_copied_into(node.body, b.name)]
        if not widen:
            return super().render_scope(node, indent)
        dtype, align = WIDENED_PACKS[self.core]
        self.widened.update(b.name for b in widen)
        wide = tuple(Buffer(b.name, dtype, b.shape) if b in widen else b for b in node.buffers)
        lines = super().render_scope(Scope(wide, node.body), indent)
        names = {f"{indent}  {dtype.c_type} {c_name(b.name)}[" for b in widen}
        # Aligned so that the dot tile's word pairs may load as one LDRD.
        return [f"{line[:-1]} __attribute__((aligned({align})));"
                if any(line.startswith(n) for n in names) else line for line in lines]

    def header(self) -> str:
        return f"/* Generated by loopweave from kernel '{self.kernel.name}' for {self.core}. */\n"

    def render(self, loops: Node) -> str:
        body = self.render_body(loops)
        includes = INCLUDES[self.core] if self.mac_used else ""
        if self.vector_isa_used:
            includes += self.vector_isa.include_lines()
        return self.header() + PRELUDE + includes + "".join(sorted(self.preamble)) + "\n" + body
