"""Low-precision GEMMs on x86 as micro-kernel calls: AMX tiles, AVX512-VNNI or AVX512-BF16, with
the scheduled loops as fallback.

A statement `C[i, j] += i32(A[i, k]) * i32(B[k, j])` (int8 A and B, int32 C) or
`C[i, j] += f32(A[i, k]) * f32(B[k, j])` (bf16 A and B, f32 C), either operand possibly
transposed, whose reduction loop the schedule marks `dot` (`Schedule.dot`; the host's default
does so where the build has a micro-kernel) and whose three loops form one nest from 0 (in any
order) is rendered as

    if (!lw_s8gemm(A, B, C, <extents>, <strides>)) { <the loops as scheduled> }

(`lw_bf16gemm` for bf16). The helper packs A into rows of the K extent padded to 64 bytes and B
into the VNNI layout (panels of 32 columns, each group of 4 bytes of k stored per column: 4
int8 or 2 bf16), then runs the first path of its `KINDS` entry that the compiler flags enable:
- AMX (Sapphire Rapids and later): `_tile_dpbssd` (int8, signed x signed) or `_tile_dpbf16ps`
  on a 32 x 32 block of C in four 16 x 16 tiles, 64 bytes of k a step; the tile data
  permission is asked of Linux once (`arch_prctl(ARCH_REQ_XCOMP_PERM)`), and where it is
  refused the next path runs;
- AVX-512: an 8 x 32 block of C in 16 zmm accumulators, one group of k a step: `vpdpbusd`
  (AVX512-VNNI; unsigned x signed, so A is packed as A + 128, its bits xor 0x80, and 128 x
  the column sums of B are subtracted) or `vdpbf16ps` (AVX512-BF16).
int8 sums are exact in wrapping int32 arithmetic, which is associative: the result is the
loops' bit for bit. bf16 sums are f32 in the micro-kernel's order (pairs of products, as
`tl.dot` and WMMA sum on the GPU targets) and AMX flushes subnormal inputs and results to zero.
The parallel loop is over blocks of 32 rows and 32 columns (OpenMP), inside blocks of columns
whose packed B stays in the L2 cache; on the AMX path a block is at least MIN_PANELS panels
wide, K taken in chunks where it is deeper than that allows, C's tiles adding each chunk's
products (bf16 64-1024 x 4096 x 4096 1.09-1.24x, 64 x 11008 x 4096 2.0x: each row of B had been
read 256 bytes at a visit, a page apart); with threads and two blocks a thread or more, each
thread packs and multiplies blocks of its own (no barrier, no panel packed by one core and read
by another: bf16 160-512 x 4096 x 4096 on two threads 1.29-1.44x). Where C has few rows (up to
FEW_MAX_ROWS: a decoding step's GEMM), no packed panel would serve more than a few blocks of
rows, and the AMX path takes B in chunks of k across blocks of columns whose C has
FEW_ROWS_BYTES, each row's piece of B read whole, with the block's C kept in a buffer between
chunks (bf16 16 x 4096 x 4096, one thread, Xeon VM: 5.9 -> 3.4 ms; torch.matmul 3.1), in blocks
of 32 rows and the last of 16 where 16 remain (each chunk loads and stores the buffer: with
32-row blocks half of it was padding at m 8 and 16, K and N 1024-4096: 1.17-1.24x, 16 x 4096 x
4096 as fast as torch.matmul). The helper's C text is backends/x86_gemm_helper.py. Without a
path the helper is not emitted and the loops run as scheduled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from string import Template

from loopweave.backends.c_names import c_name
from loopweave.backends.x86_gemm_helper import HELPER
from loopweave.ir import expr as ir
from loopweave.ir.affine import constant_value
from loopweave.ir.loops import Block, For, Store
from loopweave.ir.types import F32, I32, DType

#: Bytes of packed B per block of columns (kept in the L2 cache while the row blocks pass).
B_BLOCK_BYTES = 1 << 20
#: Panels (of 32 columns) a block of B holds at least on the AMX path: deeper K is taken in
#: chunks (each row of B read 256 bytes a visit at 4 panels, K 4096 bf16).
MIN_PANELS = 8
#: Rows of C up to which the AMX path takes B in chunks of k across blocks of columns whose C
#: (32-row multiples) has FEW_ROWS_BYTES (`_amx_few_rows`: a decoding step's GEMM). Against
#: packed panels, bf16, one thread, Xeon VM: 33-100 x 4096 x 4096 1.14-1.34x, 64 x 4096 x
#: 11008 1.42x; 128 rows even; more rows (160) measured slower. 1 MB of C a block: 33-64 rows
#: 0.8x of 512 KB (C's blocks are loaded and stored each chunk: wider blocks, more traffic).
#: A tall, narrow C (1024 x 1024 x 128) runs in packed panels: 1.8x (it had fit 512 KB).
FEW_MAX_ROWS = 128
FEW_ROWS_BYTES = 1 << 19


@dataclass(frozen=True)
class GemmKind:
    """One element type's micro-kernels on one family of processors: the C pieces the helper
    template takes, and the compiler macros that enable each path."""

    fn: str  # the helper's name
    operand: str  # the DSL type of A and B
    result: DType  # the type of C (and of the casts of A and B)
    elem: str  # C type of A's and B's elements
    packed: str  # C type of their packed copies
    acc: str  # C type of C
    amx_macros: tuple[str, ...]  # what enables the AMX path (none: it has none)
    amx_dot: str  # the AMX tile product
    vec_macros: tuple[str, ...]  # what enables the vector path
    vec_rows: str  # the vector micro-kernel (a template fragment: out[8][32])
    vec_dot: str  # $x += $s (an A group broadcast) . $b (a B vector), as a C expression
    vec: dict[str, str]  # type, zero, load, store, sub of the accumulator vectors
    flip: int  # A's packed bytes xor this on the vector path (VNNI's unsigned A)
    add: str  # C[..] + out[..] in the result type ($c, $o)
    pack_macros: tuple[str, ...]  # what enables the vector packing of B
    pack_group: str  # vector code packing one group of k of 16 columns ($h) of B
    pack_begin: str = ""  # before a panel's vector packing, and after it
    pack_end: str = ""


def _defined(macros: tuple[str, ...]) -> str:
    """The C preprocessor condition that all of `macros` are defined ("0" for none)."""
    return " && ".join(f"defined({m})" for m in macros) or "0"


_INT_VEC = {"type": "__m512i", "zero": "_mm512_setzero_si512()",
            "load": "_mm512_loadu_si512((const void *)($p))",
            "store": "_mm512_storeu_si512((void *)($p), $v)", "sub": "_mm512_sub_epi32"}
_FLOAT_VEC = {"type": "__m512", "zero": "_mm512_setzero_ps()", "load": "_mm512_loadu_ps($p)",
              "store": "_mm512_storeu_ps($p, $v)", "sub": "_mm512_sub_ps"}
#: AVX-512 vector micro-kernel: 8 rows x 32 columns in 16 zmm, one group of k (4 bytes) a step
_VEC_ROWS_512 = r"""/* out[8][32] = 8 packed rows of A x a packed B panel, less corr per column */
static inline void ${FN}_vec_rows(const $PELEM *ap, const $PELEM *bp, int64_t kp,
                                  const $ACC *corr, $ACC *out) {
  $VTYPE c00 = $VZERO, c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00,
         c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00,
         c70 = c00, c71 = c00;
  for (int64_t k = 0; k < kp; k += ${NAME}_GROUP) {
    const __m512i b0 = _mm512_loadu_si512((const void *)(bp + 32 * k));
    const __m512i b1 = _mm512_loadu_si512((const void *)(bp + 32 * k + 16 * ${NAME}_GROUP));
    int32_t a[8];
    for (int r = 0; r < 8; r++) memcpy(&a[r], ap + r * kp + k, 4);
#define LW_ROW(r, x, y) { const __m512i s = _mm512_set1_epi32(a[r]); \
    x = $VDOT(x, s, b0); y = $VDOT(y, s, b1); }
    LW_ROW(0, c00, c01) LW_ROW(1, c10, c11) LW_ROW(2, c20, c21) LW_ROW(3, c30, c31)
    LW_ROW(4, c40, c41) LW_ROW(5, c50, c51) LW_ROW(6, c60, c61) LW_ROW(7, c70, c71)
#undef LW_ROW
    /* The accumulators stay in their registers: without this gcc 12 copies all 16 (and
       spills two) on every step around the in-place vpdpbusd / vdpbf16ps (8 x 32 x 1024 int8
       in L1, Xeon: 592 -> 856 GOP/s; clang needs none, 818). */
    __asm__("" : "+v"(c00), "+v"(c01), "+v"(c10), "+v"(c11), "+v"(c20), "+v"(c21),
                 "+v"(c30), "+v"(c31));
    __asm__("" : "+v"(c40), "+v"(c41), "+v"(c50), "+v"(c51), "+v"(c60), "+v"(c61),
                 "+v"(c70), "+v"(c71));
  }
  const $VTYPE k0 = $VLOAD(corr), k1 = $VLOAD(corr + 16);
#define LW_OUT(r, x, y) \
  $VSTORE(out + 32 * r, $VSUB(x, k0)); $VSTORE(out + 32 * r + 16, $VSUB(y, k1));
  LW_OUT(0, c00, c01) LW_OUT(1, c10, c11) LW_OUT(2, c20, c21) LW_OUT(3, c30, c31)
  LW_OUT(4, c40, c41) LW_OUT(5, c50, c51) LW_OUT(6, c60, c61) LW_OUT(7, c70, c71)
#undef LW_OUT
}
"""
#: AVX2 int8 (no VNNI): int8 packed as int16 pairs, `vpmaddwd` sums a pair of products into
#: each int32 lane exactly (|a b| <= 2^14); 4 rows x 16 columns in 8 ymm, twice over each half
_VEC_ROWS_AVX2 = r"""/* out[8][32] = 8 packed rows of A (int16) x a packed B panel (int16 pairs) */
static inline void ${FN}_vec_rows(const $PELEM *ap, const $PELEM *bp, int64_t kp,
                                  const $ACC *corr, $ACC *out) {
  (void)corr;
  for (int h = 0; h < 2; h++)
    for (int r0 = 0; r0 < 8; r0 += 4) {
      __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00,
              c21 = c00, c30 = c00, c31 = c00;
      const $PELEM *a0 = ap + r0 * kp;
      for (int64_t k = 0; k < kp; k += 2) {
        const $PELEM *b = bp + 32 * k + 32 * h;
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)(const void *)b);
        const __m256i b1 = _mm256_loadu_si256((const __m256i *)(const void *)(b + 16));
        int32_t a[4];
        for (int r = 0; r < 4; r++) memcpy(&a[r], a0 + r * kp + k, 4);
#define LW_ROW(r, x, y) { const __m256i s = _mm256_set1_epi32(a[r]); \
        x = _mm256_add_epi32(x, _mm256_madd_epi16(s, b0)); \
        y = _mm256_add_epi32(y, _mm256_madd_epi16(s, b1)); }
        LW_ROW(0, c00, c01) LW_ROW(1, c10, c11) LW_ROW(2, c20, c21) LW_ROW(3, c30, c31)
#undef LW_ROW
      }
      $ACC *o = out + 32 * r0 + 16 * h;
#define LW_OUT(r, x, y) _mm256_storeu_si256((__m256i *)(void *)(o + 32 * r), x); \
      _mm256_storeu_si256((__m256i *)(void *)(o + 32 * r + 8), y);
      LW_OUT(0, c00, c01) LW_OUT(1, c10, c11) LW_OUT(2, c20, c21) LW_OUT(3, c30, c31)
#undef LW_OUT
    }
}
"""
_SUMS_BEGIN = """__m512i total[2] = {_mm512_loadu_si512((const void *)sum),
                                _mm512_loadu_si512((const void *)(sum + 16))};"""
_SUMS_END = """_mm512_storeu_si512((void *)sum, total[0]);
            _mm512_storeu_si512((void *)(sum + 16), total[1]);"""

#: The micro-kernels by the operands' DSL type, in order of preference: each its own helper,
#: compiled where its macros are defined and no earlier one's are (AMX is asked of Linux at
#: run time too, and the vector path runs where it is refused).
KINDS: dict[str, tuple[GemmKind, ...]] = {
    "i8": (GemmKind(
        "lw_s8gemm", "i8", I32, "int8_t", "int8_t", "int32_t",
        ("__AMX_TILE__", "__AMX_INT8__", "__linux__"), "_tile_dpbssd",
        ("__AVX512VNNI__", "__AVX512BW__"), _VEC_ROWS_512, "_mm512_dpbusd_epi32($x, $s, $b)",
        _INT_VEC, 0x80, "(int32_t)((uint32_t)$c + (uint32_t)$o)", ("__AVX512BW__",),
        # 4 rows of k: 16 columns of 4 bytes each; the column sums for the VNNI correction
        """const __m128i r0 = _mm_loadu_si128(LW_ROW(0)), r1 = _mm_loadu_si128(LW_ROW(1));
        const __m128i r2 = _mm_loadu_si128(LW_ROW(2)), r3 = _mm_loadu_si128(LW_ROW(3));
        _mm512_storeu_si512(LW_DST, _mm512_or_si512(
          _mm512_or_si512(_mm512_cvtepu8_epi32(r0), _mm512_slli_epi32(_mm512_cvtepu8_epi32(r1), 8)),
          _mm512_or_si512(_mm512_slli_epi32(_mm512_cvtepu8_epi32(r2), 16),
                          _mm512_slli_epi32(_mm512_cvtepu8_epi32(r3), 24))));
        total[$h] = _mm512_add_epi32(total[$h], _mm512_add_epi32(
          _mm512_add_epi32(_mm512_cvtepi8_epi32(r0), _mm512_cvtepi8_epi32(r1)),
          _mm512_add_epi32(_mm512_cvtepi8_epi32(r2), _mm512_cvtepi8_epi32(r3))));""",
        _SUMS_BEGIN, _SUMS_END),
        GemmKind(
        "lw_s8gemm_avx2", "i8", I32, "int8_t", "int16_t", "int32_t",
        (), "", ("__AVX2__",), _VEC_ROWS_AVX2, "",
        {"type": "__m256i", "zero": "", "load": "", "store": "", "sub": ""}, 0,
        "(int32_t)((uint32_t)$c + (uint32_t)$o)", ("__AVX2__",),
        # 2 rows of k: 16 columns, 8 of int16 pairs a vector
        """const __m128i r0 = _mm_loadu_si128(LW_ROW(0)), r1 = _mm_loadu_si128(LW_ROW(1));
        const __m256i mask = _mm256_set1_epi32(0xFFFF);
        _mm256_storeu_si256((__m256i *)LW_DST, _mm256_or_si256(
          _mm256_and_si256(_mm256_cvtepi8_epi32(r0), mask),
          _mm256_slli_epi32(_mm256_cvtepi8_epi32(r1), 16)));
        _mm256_storeu_si256((__m256i *)LW_DST + 1, _mm256_or_si256(
          _mm256_and_si256(_mm256_cvtepi8_epi32(_mm_srli_si128(r0, 8)), mask),
          _mm256_slli_epi32(_mm256_cvtepi8_epi32(_mm_srli_si128(r1, 8)), 16)));""")),
    "bf16": (GemmKind(
        "lw_bf16gemm", "bf16", F32, "uint16_t", "uint16_t", "float",
        ("__AMX_TILE__", "__AMX_BF16__", "__linux__"), "_tile_dpbf16ps",
        ("__AVX512BF16__", "__AVX512BW__"), _VEC_ROWS_512,
        "_mm512_dpbf16_ps($x, (__m512bh)$s, (__m512bh)$b)", _FLOAT_VEC, 0, "$c + $o",
        ("__AVX512BW__",),
        # 2 rows of k: 16 columns of 2 bf16 each
        """const __m256i r0 = _mm256_loadu_si256(LW_ROW(0)), r1 = _mm256_loadu_si256(LW_ROW(1));
        _mm512_storeu_si512(LW_DST, _mm512_or_si512(_mm512_cvtepu16_epi32(r0),
                                          _mm512_slli_epi32(_mm512_cvtepu16_epi32(r1), 16)));"""),),
}




def _macro(piece: str, *names: str) -> str:
    """A kind's C piece with its $-names as a function-like macro's parameters (parenthesized)."""
    return Template(piece).substitute({n: f"({n})" for n in names})


def _guards(kind: GemmKind) -> tuple[str, str]:
    """The C conditions of `kind`'s AMX and vector paths: its macros defined, and no earlier
    kind's of its operand type (that one's helper runs there)."""
    earlier = KINDS[kind.operand][:KINDS[kind.operand].index(kind)]
    unless = " || ".join(f"({_defined(m)})" for k in earlier
                         for m in (k.amx_macros, k.vec_macros) if m)
    return tuple(f"({_defined(m)}) && !({unless})" if unless and m else _defined(m)
                 for m in (kind.amx_macros, kind.vec_macros))


def helper(kind: GemmKind) -> str:
    """The C text of `kind`'s helper function (`kind.fn`) and its micro-kernels."""
    name = kind.fn.upper()
    amx_guard, vec_guard = _guards(kind)
    text = Template(HELPER.replace("$VEC_ROWS", kind.vec_rows)).substitute(
        NAME=name, FN=kind.fn, ELEM=kind.elem, PELEM=kind.packed, ACC=kind.acc,
        FLIP=kind.flip, ELEM_SIGNED="int16_t" if kind.elem == "uint16_t" else "int8_t",
        B_BLOCK=B_BLOCK_BYTES, FEW_ROWS_BYTES=FEW_ROWS_BYTES, MIN_PANELS=MIN_PANELS,
        FEW_MAX_ROWS=FEW_MAX_ROWS,
        AMX_GUARD=amx_guard,
        VEC_GUARD=vec_guard,
        AMX_DOT=kind.amx_dot, VTYPE=kind.vec["type"], VZERO=kind.vec["zero"],
        VDOT=f"{name}_VDOT", VLOAD=f"{name}_VLOAD", VSTORE=f"{name}_VSTORE",
        VSUB=kind.vec["sub"], ADD=f"{name}_ADD", PACK_GUARD=_defined(kind.pack_macros),
        PACK_GROUP=Template(kind.pack_group).substitute(h="h"), PACK_BEGIN=kind.pack_begin,
        PACK_END=kind.pack_end)
    return text.replace(f"#define {name} 1\n", f"#define {name} 1\n" + "".join((
        f"#define {name}_VDOT(x, s, b) {_macro(kind.vec_dot, 'x', 's', 'b')}\n",
        f"#define {name}_VLOAD(p) {_macro(kind.vec['load'], 'p')}\n",
        f"#define {name}_VSTORE(p, v) {_macro(kind.vec['store'], 'p', 'v')}\n",
        f"#define {name}_ADD(c, o) {_macro(kind.add, 'c', 'o')}\n")), 1)


def path_for(operand: str, macros: dict[str, str]) -> str | None:
    """The micro-kernel path ("amx", "vector" or "avx2") for operand type `operand` ("i8",
    "bf16") that a build with these predefined `macros` runs, or None."""
    for kind in KINDS[operand]:
        for path, needed in (("amx", kind.amx_macros), ("vector", kind.vec_macros)):
            if needed and all(m in macros for m in needed):
                return "avx2" if kind.fn.endswith("avx2") else path
    return None


@dataclass(frozen=True)
class GemmNest:
    """A nest of three loops from 0 around `C[i, j] += T(A[i, k]) * T(B[k, j])`."""

    kinds: tuple[GemmKind, ...]
    a: ir.Load
    b: ir.Load
    store: Store
    extents: dict[str, ir.Expr]  # loop variable -> trip count
    i: str
    j: str
    k: str


def _extent(loop: For) -> ir.Expr | None:
    """The trip count of `for (v = 0; v < E or v <= E - 1; v += 1)` with E free of v."""
    cond = loop.cond
    if loop.step != 1 or constant_value(loop.init) != 0 or not isinstance(cond, ir.Binary) \
            or cond.left != ir.Var(loop.var, cond.left.dtype) or loop.var in ir.variables(
                cond.right):
        return None
    if cond.op == "<":
        return cond.right
    if cond.op == "<=":
        return ir.add(cond.right, ir.Const(1, cond.right.dtype))
    return None


def _operand(e: ir.Expr) -> ir.Load | None:
    """The 2-D load of a micro-kernel's element type under a cast to its result type."""
    if isinstance(e, ir.Cast) and isinstance(e.operand, ir.Load) \
            and e.operand.dtype.name in KINDS and len(e.operand.indices) == 2 \
            and e.dtype == KINDS[e.operand.dtype.name][0].result:
        return e.operand
    return None


def match_nest(node: For) -> GemmNest | None:
    """`node` as a GEMM nest of a `KINDS` type whose reduction loop is marked `dot`, or
    None."""
    loops, body = [], node
    while isinstance(body, For) and len(loops) < 3:
        loops.append(body)
        body = body.body
        while isinstance(body, Block) and len(body.body) == 1:
            body = body.body[0]
    extents = {loop.var: _extent(loop) for loop in loops}
    if len(loops) != 3 or not isinstance(body, Store) or body.reduce != "+=" \
            or None in extents.values() or not isinstance(body.value, ir.Binary) \
            or body.value.op != "*" or len(body.indices) != 2:
        return None
    a, b = _operand(body.value.left), _operand(body.value.right)
    names = [_var_name(x) for x in body.indices]
    if a is None or b is None or a.dtype != b.dtype or None in names or len(set(names)) != 2:
        return None
    kinds = KINDS[a.dtype.name]
    if body.value.dtype != kinds[0].result:
        return None
    i, j = names
    k = next(loop.var for loop in loops if loop.var not in names)
    a_vars, b_vars = {_var_name(x) for x in a.indices}, {_var_name(x) for x in b.indices}
    if a_vars != {i, k} and a_vars == {k, j}:
        a, b, a_vars, b_vars = b, a, b_vars, a_vars
    if a_vars != {i, k} or b_vars != {k, j} or \
            next(loop.kind for loop in loops if loop.var == k) != "dot":
        return None
    return GemmNest(kinds, a, b, body, extents, i, j, k)


def _var_name(e: ir.Expr) -> str | None:
    return e.name if isinstance(e, ir.Var) else None


def _strides(r, tensor: str, indices: tuple[ir.Expr, ...], first: str, second: str
             ) -> tuple[str, str]:
    """The element strides of loop variables `first` and `second` in a row-major 2-D access."""
    inner = r.shapes[tensor][1]
    stride = {_var_name(indices[0]): r.expr(inner), _var_name(indices[1]): "1"}
    return stride[first], stride[second]


def render_call(r, node: For, indent: str, loops: Callable[[str], list[str]],
                fill: tuple[str, str] = ("0", "0")) -> list[str] | None:
    """The nest as scheduled (`loops(indent)`: its lines) behind a call of the micro-kernel,
    which runs instead where the build has a path for it; None if `node` is not a GEMM nest
    of a `KINDS` type. `fill`: (a C condition, a C constant): where the condition holds the
    call writes the constant plus the products into C, whose elements it does not read (a
    folded initialisation: `loops` then include it)."""
    nest = match_nest(node)
    if nest is None:
        return None
    for kind in nest.kinds:
        r.preamble.add(helper(kind))
    strides = [*_strides(r, nest.a.tensor, nest.a.indices, nest.i, nest.k),
               *_strides(r, nest.b.tensor, nest.b.indices, nest.k, nest.j),
               *_strides(r, nest.store.tensor, nest.store.indices, nest.i, nest.j)]
    extents = [r.expr(nest.extents[v]) for v in (nest.i, nest.j, nest.k)]
    args = ", ".join([c_name(nest.a.tensor), c_name(nest.b.tensor), c_name(nest.store.tensor),
                      *extents, *strides, *fill])
    calls = []
    for n, kind in enumerate(nest.kinds):  # the first helper the build has
        calls += [f"{indent}#{'if' if n == 0 else 'elif'} defined({kind.fn.upper()})",
                  f"{indent}if (!{kind.fn}({args}))"]
    return [*calls, f"{indent}#endif", f"{indent}{{", *loops(indent + "  "), f"{indent}}}"]
