"""The C-family renderer: expressions and loop nests of `ir.loops` as C text.

Shared by every C-like backend (portable C today; SIMD C and CUDA extend it). What differs
between dialects is data: `FLOAT_FUNCS` (function name per dtype), `PRELUDE` (helper functions)
and a few methods a subclass may override (`render_for`, `index_type`).
"""

from __future__ import annotations

import math
from dataclasses import replace

# c_name and c_var live in c_names (shared with register_tile); the backends import them here.
from loopweave.backends.c_lowp import C_LOWP
from loopweave.backends.c_names import c_name, c_var
from loopweave.backends.register_tile import render_register_tile, tile_fill
from loopweave.backends.simd_arg import render_topk_loop
from loopweave.backends.transpose_tile import render_transpose
from loopweave.errors import ScheduleError, TargetError
from loopweave.ir import expr as ir
from loopweave.ir.affine import row_major_offset
from loopweave.ir.argreduce import guard_topk
from loopweave.ir.loops import GPU_AXES, Block, For, If, Node, Scope, Store, walk
from loopweave.ir.types import BOOL, DType

#: Math functions by element type; `{x}` is the argument text.
FLOAT_FUNCS: dict[str, dict[str, str]] = {
    "f32": {"exp": "expf({0})", "exp2": "exp2f({0})", "ldexp": "ldexpf({0}, {1})",
            "log": "logf({0})", "sqrt": "sqrtf({0})", "tanh": "tanhf({0})",
            "erf": "erff({0})", "pow": "powf({0}, {1})", "abs": "fabsf({0})",
            "sigmoid": "(1.0f / (1.0f + expf(-({0}))))", "min": "lw_min_f32({0}, {1})",
            "max": "lw_max_f32({0}, {1})", "%": "lw_mod_f32({0}, {1})"},
    "f64": {"exp": "exp({0})", "exp2": "exp2({0})", "ldexp": "ldexp({0}, {1})",
            "log": "log({0})", "sqrt": "sqrt({0})", "tanh": "tanh({0})",
            "erf": "erf({0})", "pow": "pow({0}, {1})", "abs": "fabs({0})",
            "sigmoid": "(1.0 / (1.0 + exp(-({0}))))", "min": "lw_min_f64({0}, {1})",
            "max": "lw_max_f64({0}, {1})", "%": "lw_mod_f64({0}, {1})"},
}

#: The allocator of local buffers too large for the stack (`heap_local_bytes`), C99's malloc
#: and free: 64-byte aligned, as the stack's local arrays are (the block's own address kept in
#: front of it); a failed allocation stops the process rather than write through NULL.
HEAP_LOCALS = r"""#include <stdlib.h>
static void *lw_heap_local(int64_t bytes) {
  unsigned char *raw = (unsigned char *)malloc((size_t)(bytes > 0 ? bytes : 1) + 72);
  unsigned char *p;
  if (raw == NULL) abort();
  p = (unsigned char *)(((uintptr_t)raw + 8 + 63) & ~(uintptr_t)63);
  ((void **)p)[-1] = raw;
  return p;
}
static void lw_heap_free(void *p) { free(((void **)p)[-1]); }
"""

PRELUDE = r"""#include <stdint.h>
#include <string.h>
#include <math.h>

/* Floor division and modulo, as numpy and isl define them (0 for a zero divisor, as numpy). */
#define LW_INT_HELPERS(T, S) \
  static inline T lw_div_##S(T a, T b) { \
    if (b == 0) { return 0; } \
    T q = a / b; return (T)(((a % b != 0) && ((a < 0) != (b < 0))) ? q - 1 : q); } \
  static inline T lw_mod_##S(T a, T b) { \
    if (b == 0) { return 0; } \
    T r = a % b; return (T)((r != 0 && ((r < 0) != (b < 0))) ? r + b : r); } \
  static inline T lw_min_##S(T a, T b) { return a < b ? a : b; } \
  static inline T lw_max_##S(T a, T b) { return a > b ? a : b; } \
  static inline T lw_abs_##S(T a) { return a < 0 ? (T)-a : a; }
LW_INT_HELPERS(int8_t, i8)
LW_INT_HELPERS(int16_t, i16)
LW_INT_HELPERS(int32_t, i32)
LW_INT_HELPERS(int64_t, i64)
/* Unsigned: no sign cases (and no always-false comparisons for -Wextra to report). */
static inline uint8_t lw_div_u8(uint8_t a, uint8_t b) { return b == 0 ? 0 : (uint8_t)(a / b); }
static inline uint8_t lw_mod_u8(uint8_t a, uint8_t b) { return b == 0 ? 0 : (uint8_t)(a % b); }
static inline uint8_t lw_min_u8(uint8_t a, uint8_t b) { return a < b ? a : b; }
static inline uint8_t lw_max_u8(uint8_t a, uint8_t b) { return a > b ? a : b; }
static inline uint8_t lw_abs_u8(uint8_t a) { return a; }

/* min/max that propagate NaN, as numpy's maximum/minimum do. */
static inline float lw_max_f32(float a, float b) { return (a > b || a != a) ? a : b; }
static inline float lw_min_f32(float a, float b) { return (a < b || a != a) ? a : b; }
static inline double lw_max_f64(double a, double b) { return (a > b || a != a) ? a : b; }
static inline double lw_min_f64(double a, double b) { return (a < b || a != a) ? a : b; }
static inline float lw_mod_f32(float a, float b) {
  float r = fmodf(a, b); return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r; }
static inline double lw_mod_f64(double a, double b) {
  double r = fmod(a, b); return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r; }

""" + C_LOWP + r"""
/* f16 and bf16 are stored as bits and computed in f32 (round to nearest even on store). */
static inline float lw_bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t lw_f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
#if defined(__F16C__) && (defined(__x86_64__) || defined(__i386__))
/* One instruction (vcvtph2ps; exact, a signalling NaN comes out quiet): packing a 4096^2 f16
   B as f32 took 17 ms in the branches below, against 6.9 ms for the f32 product. */
#include <immintrin.h>
static inline float lw_f16_to_f32(uint16_t h) { return _cvtsh_ss(h); }
#else
static inline float lw_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
  if (e == 0x1F) return lw_bits_f32(sign | 0x7F800000u | (m << 13));
  if (e != 0) return lw_bits_f32(sign | ((e + 112u) << 23) | (m << 13));
  return lw_bits_f32(sign | lw_f32_bits((float)m * 5.9604644775390625e-8f));
}
#endif
static inline uint16_t lw_f32_to_f16(float f) {
  uint32_t x = lw_f32_bits(f), sign = (x >> 16) & 0x8000u, a = x & 0x7FFFFFFFu;
  if (a >= 0x7F800000u) return (uint16_t)(sign | 0x7C00u | (a > 0x7F800000u ? 0x200u : 0u));
  if (a >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u);
  if (a < 0x38800000u) /* subnormal: let an f32 addition do the rounding */
    return (uint16_t)(sign | (lw_f32_bits(lw_bits_f32(a) + 0.5f) - 0x3F000000u));
  return (uint16_t)(sign | ((a + 0xC8000FFFu + ((a >> 13) & 1u)) >> 13));
}
static inline float lw_bf16_to_f32(uint16_t h) { return lw_bits_f32((uint32_t)h << 16); }
static inline uint16_t lw_f32_to_bf16(float f) {
  uint32_t x = lw_f32_bits(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((x >> 16) | 0x40u);
  return (uint16_t)((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}
"""

_C_BINARY = {"+", "-", "*", "<<", ">>", "&", "|", "^", "<", "<=", ">", ">=", "==", "!="}
# C operator precedence (higher binds tighter); operands print parentheses only where needed.
_C_PREC = {"*": 13, "/": 13, "%": 13, "cdiv": 13, "crem": 13, "+": 12, "-": 12, "<<": 11,
           ">>": 11, "<": 10, "<=": 10, ">": 10, ">=": 10, "==": 9, "!=": 9, "&": 8, "^": 7,
           "|": 6, "and": 5, "or": 4}
_NARROW_INTS = ("i8", "u8", "i16")
#: C types that a bitcast converts with a plain cast (the same width, integers or stored bits).
_BIT_TYPES = ("int8_t", "uint8_t", "int16_t", "uint16_t", "int32_t", "int64_t")
_PAREN_OPERANDS = ("<<", ">>", "&", "^", "|", "or")
_C_OP_TEXT = {"and": "&&", "or": "||", "cdiv": "/", "crem": "%"}


#: A parallel loop inside a serial one gets a serial twin (`_by_thread_count`) only up to this
#: many lines: matmul's row blocks (a register-tiled micro-kernel, hundreds of lines, whose
#: accumulators live in registers anyway) are left alone.
MAX_VERSIONED_LINES = 150

#: omp_get_max_threads(), where the source is built with OpenMP.
OPENMP_HEADER = "#ifdef _OPENMP\n#include <omp.h>\n#endif\n"


def _reduces_across(loop: For) -> bool:
    """Does a reduction in `loop` update a location that does not move with the loop?"""
    for n in walk(loop.body):
        if isinstance(n, Store) and n.reduce and not any(
                isinstance(x, ir.Var) and x.name == loop.var
                for index in n.indices for x in ir.walk(index)):
            return True
    return False



#: The OpenMP schedule of a parallel loop whose iterations differ in work (`uneven_iterations`):
#: one iteration per thread in turn, so each thread gets long and short ones alike. The default
#: (static) gives the first thread the first half: on a triangle, 3/4 of the work. covariance
#: LARGE on two threads ran 1.38x faster than on one with the default.
CYCLIC_SCHEDULE = "schedule(static, 1)"


def collapsible(loop: For) -> bool:
    """Whether parallel `loop` and the parallel loop that is its whole body run as one
    (`collapse(2)`: OpenMP needs the inner bounds free of the outer variable)."""
    inner = loop.body
    return isinstance(inner, For) and inner.kind == "parallel" and loop.step == 1 and \
        inner.step == 1 and loop.var not in ir.variables(inner.init) | ir.variables(inner.cond)


def uneven_iterations(loop: For) -> bool:
    """Whether a loop inside `loop` has a start or an end, not both, that depends on `loop`'s
    variable: its iterations do different amounts of work (covariance's `j2 in j1:M`), while a
    tile's point loop, both bounds moving with the tile, does not."""
    for inner in walk(loop.body):
        if isinstance(inner, For):
            starts, ends = (loop.var in ir.variables(e) for e in (inner.init, inner.cond))
            if starts != ends:
                return True
    return False

class CFamilyRenderer:
    """Renders `ir.expr` and `ir.loops` as C. `shapes` maps a tensor to its dimension exprs."""

    index_type = "int64_t"

    def __init__(self, shapes: dict[str, tuple[ir.Expr, ...]]):
        self.shapes = shapes
        self.preamble: set[str] = set()  # file-scope definitions the rendered code needs

    # -- types and literals -----------------------------------------------------------------------

    def ctype(self, dtype: DType) -> str:
        return dtype.c_type

    def const(self, value: int | float, dtype: DType) -> str:
        if dtype.is_float:
            if math.isinf(value) or math.isnan(value):
                text = "NAN" if math.isnan(value) else "INFINITY" if value > 0 else "(-INFINITY)"
                return text if dtype.name != "f64" else f"((double){text})"
            text = repr(float(value))
            return f"{text}f" if dtype.name == "f32" else text
        if dtype == BOOL:
            return "1" if value else "0"
        v = int(value)
        if dtype.bits == 64 and not -(2**31) < v < 2**31:
            return "INT64_MIN" if v == -(2**63) else f"INT64_C({v})"
        if dtype.name == "i32" and v == -(2**31):
            return "INT32_MIN"
        return str(v)

    # -- expressions -----------------------------------------------------------------------------

    def linear_offset(self, tensor: str, indices: tuple[ir.Expr, ...]) -> ir.Expr:
        """Row-major offset: ((i0 * d1 + i1) * d2 + i2)."""
        return row_major_offset(self.shapes[tensor] if indices else (), indices)

    def linear_index(self, tensor: str, indices: tuple[ir.Expr, ...]) -> str:
        return self.expr(self.linear_offset(tensor, indices))

    def expr(self, e: ir.Expr, parent_prec: int = 0) -> str:
        """C text of `e`; parenthesized if its operator binds looser than `parent_prec`."""
        match e:
            case ir.Const(value=v, dtype=t):
                return self.const(v, t)
            case ir.Var(name=n):
                return c_var(n)
            case ir.Param(name=n) | ir.Scalar(name=n):
                return c_name(n)
            case ir.Load(tensor=t, indices=ix):
                return f"{c_name(t)}[{self.linear_index(t, ix)}]"
            case ir.Cast(dtype=t, operand=x):
                return self.cast(t, x)
            case ir.Unary(op=op, operand=x, dtype=t):
                operand = self.expr(x, 15)
                if op == "neg" and operand.startswith("-"):  # `--x` would be a decrement
                    operand = f"({operand})"
                text = {"neg": "-", "not": "!", "invert": "~"}[op] + operand
                return self.narrow(text, t)
            case ir.Binary(op=op, left=a, right=b, dtype=t):
                return self.binary(op, a, b, t, parent_prec)
            case ir.Call(func=f, args=args, dtype=t):
                return self.call(f, args, t)
        raise AssertionError(type(e).__name__)

    def narrow(self, text: str, dtype: DType) -> str:
        """C computes narrow integers in int; wrap back to the element type as numpy does."""
        return f"(({dtype.c_type})({text}))" if dtype.name in _NARROW_INTS else text

    def cast(self, dtype: DType, x: ir.Expr) -> str:
        inner = self.expr(x)
        source = x.dtype
        if source.is_storage_only:
            inner = f"lw_{source.name}_to_f32({inner})"
            source = dtype  # now an f32 value
        if dtype.is_storage_only:
            return f"lw_f32_to_{dtype.name}((float)({inner}))"
        if source == dtype:
            return inner
        return f"(({dtype.c_type})({inner}))"

    def binary(self, op: str, a: ir.Expr, b: ir.Expr, dtype: DType, parent_prec: int) -> str:
        operand_type = a.dtype
        if op in ("/", "%") and operand_type.is_int:
            return f"lw_{'div' if op == '/' else 'mod'}_{operand_type.name}({self.expr(a)}, " \
                   f"{self.expr(b)})"
        if op == "%":
            return FLOAT_FUNCS[operand_type.name]["%"].format(self.expr(a), self.expr(b))
        prec = _C_PREC[op]
        narrow = dtype.name in _NARROW_INTS
        # Bit operations and || parenthesize every compound operand: C's precedence there is
        # a classic trap, and gcc -Wall warns about it (-Wparentheses).
        operand_prec = 15 if op in _PAREN_OPERANDS else prec
        x, y = self.expr(a, operand_prec), self.expr(b, max(operand_prec, prec + 1))
        if op in ("<<", ">>") and isinstance(a, ir.Const) and operand_type.bits == 64:
            x = f"(({self.ctype(operand_type)}){x})"  # `1 << 40` would shift a 32-bit int
        text = f"{x} {_C_OP_TEXT.get(op, op)} {y}"
        if narrow:
            return self.narrow(text, dtype)
        return f"({text})" if prec < parent_prec else text

    def call(self, f: str, args: tuple[ir.Expr, ...], dtype: DType) -> str:
        if f == "bitcast":
            return self.bitcast(args[0], dtype)
        texts = [self.expr(a) for a in args]
        if f == "select":
            return f"({texts[0]} ? {texts[1]} : {texts[2]})"
        if dtype.is_float:
            return FLOAT_FUNCS[dtype.name][f].format(*texts)
        name = dtype.name if dtype.name != "bool" else "i32"
        return f"lw_{f}_{name}({', '.join(texts)})"

    def bitcast(self, x: ir.Expr, dtype: DType) -> str:
        """The bits of `x` as `dtype` (same width; a storage type is its stored bits)."""
        text = self.expr(x)
        for t in (x.dtype, dtype):
            if t.name not in ("f32", "f64") and self.ctype(t) not in _BIT_TYPES:
                raise TargetError(f"bitcast between {x.dtype} and {dtype}: this target "
                                  f"stores {t} as {self.ctype(t)}")
        if x.dtype.name in ("f32", "f64"):
            text = f"lw_{x.dtype.name}_as_u{x.dtype.bits}({text})"
        if dtype.name in ("f32", "f64"):
            return f"lw_u{dtype.bits}_as_{dtype.name}((uint{dtype.bits}_t)({text}))"
        return f"(({self.ctype(dtype)})({text}))"

    def reduce(self, op: str, current: str, value: str, dtype: DType) -> str:
        """The new value of a reduction `current <op>= value`."""
        if op == "+=":
            return self.narrow(f"{current} + {value}", dtype)
        if op == "*=":
            return self.narrow(f"{current} * {value}", dtype)
        func = "max" if op == "max=" else "min"
        name = dtype.compute.name
        return f"lw_{func}_{name}({current}, {value})"

    # -- loop nests ------------------------------------------------------------------------------

    def stmt(self, node: Node, indent: str) -> list[str]:
        match node:
            case Block(body=body):
                return self.render_block(body, indent)
            case For():
                return self.render_for(node, indent)
            case If(cond=c, then=t, orelse=e):
                lines = [f"{indent}if ({self.expr(c)}) {{", *self.stmt(t, indent + "  ")]
                if e is not None:
                    lines += [f"{indent}}} else {{", *self.stmt(e, indent + "  ")]
                return [*lines, f"{indent}}}"]
            case Store():
                return [f"{indent}{self.store(node)}"]
            case Scope():
                return self.render_scope(node, indent)
        raise AssertionError(type(node).__name__)

    def render_block(self, body: tuple[Node, ...], indent: str) -> list[str]:
        """The statements in order; a full tile's fill folds into the register tile after it
        where that nest renders as one (`register_tile.tile_fill`)."""
        lines: list[str] = []
        skip = False
        for here, after in zip(body, (*body[1:], None)[:len(body)], strict=True):
            if skip:
                skip = False
                continue
            fill = tile_fill(here, after) if after is not None else None
            if fill is None:
                lines += self.stmt(here, indent)
                continue
            saved, self.pending_fill = self.pending_fill, (after, fill)
            try:
                tile = self.stmt(after, indent)
                folded = self.pending_fill is None
            finally:
                self.pending_fill = saved  # (a block rendered inside keeps the outer one's)
            lines += tile if folded else [*self.stmt(here, indent), *tile]
            skip = True
        return lines

    #: (nest, TileFill): a fill that `nest`'s register tile may start from; None once it
    #: did (see `render_block`).
    pending_fill = None

    def render_scope(self, node: Scope, indent: str) -> list[str]:
        """A block declaring the local buffers (scalars as one-element arrays). Where
        `heap_local_bytes` is set, a buffer that may be larger lives on the heap (`_heap_local`)."""
        decls, frees = [], []
        for b in node.buffers:
            self.shapes[b.name] = b.shape
            size = ir.Const(1)
            for d in b.shape:
                size = ir.mul(size, d)
            text = self.expr(size)
            if not isinstance(size, ir.Const):  # a variable-length array may not be empty
                text = f"lw_max_i64({text}, 1)"
            align = self.array_alignment if b.shape else ""
            elem = max(b.dtype.bits // 8, 1)
            limit = self.heap_local_bytes
            if limit is not None and b.shape and not (
                    isinstance(size, ir.Const) and size.value * elem <= limit):
                lines, free = self._heap_local(b, text, elem, isinstance(size, ir.Const), align)
                decls += [f"{indent}  {line}" for line in lines]
                frees.append(f"{indent}  {free}")
                continue
            decls.append(f"{indent}  {self.ctype(b.dtype)} {c_name(b.name)}[{text}]{align};")
        return [f"{indent}{{", *decls, *self.stmt(node.body, indent + "  "), *frees,
                f"{indent}}}"]

    def _heap_local(self, b, count: str, elem: int, constant: bool, align: str
                    ) -> tuple[list[str], str]:
        """(declaration lines, the line that frees it) of a local buffer that may exceed
        `heap_local_bytes`: on the stack below that (a variable-length array), else from the
        heap, 64-byte aligned either way (as gcc is told). A fused row as wide as the data
        (softmax's `e[j]` of a row of 2.5M floats: 10 MB) overflowed an 8 MB thread stack."""
        self.preamble.add(HEAP_LOCALS)
        ctype, name, limit = self.ctype(b.dtype), c_name(b.name), self.heap_local_bytes
        if constant:
            return ([f"{ctype} *restrict {name} = ({ctype} *)lw_heap_local({count} * {elem});"],
                    f"lw_heap_free({name});")
        # lw_ names: a DSL name never renders as one (c_names), so these clash with none
        fits, stack = f"lw_{name}_on_stack", f"lw_{name}_stack"
        return ([f"const int64_t {fits} = {count} <= {limit // elem};",
                 f"{ctype} {stack}[{fits} ? {count} : 1]{align};",
                 f"{ctype} *restrict {name} = ({ctype} *)__builtin_assume_aligned({fits} ? "
                 f"(void *){stack} : lw_heap_local({count} * {elem}), 64);"],
                f"if (!{fits}) lw_heap_free({name});")

    #: What follows a local array's declaration (an alignment attribute, or nothing).
    array_alignment = ""
    #: Local buffers of more bytes than this (or that may be, at some sizes) come from the
    #: heap, not the stack (None: always the stack: a microcontroller's C has no heap to use).
    heap_local_bytes: int | None = None

    #: The line in front of a loop of each kind (OpenMP for parallel and vector loops).
    LOOP_PRAGMAS = {"parallel": "#pragma omp parallel for", "vector": "#pragma omp simd",
                    "unroll": "#pragma GCC unroll 8"}

    #: An optional `backends.simd.VectorISA`: it renders vector loops with intrinsics where it
    #: can (returning None where it cannot, and the loop keeps its pragma).
    vector_isa = None
    vector_isa_used = False

    #: Loops open around the one being rendered (`render_for`).
    loop_depth = 0

    def render_for(self, node: For, indent: str) -> list[str]:
        self.loop_depth += 1
        try:
            return self._render_for(node, indent)
        finally:
            self.loop_depth -= 1

    def _render_for(self, node: For, indent: str) -> list[str]:
        node = guard_topk(node)  # a top-k's slots skipped for values that enter none
        topk = render_topk_loop(self.vector_isa, self, node, indent) if self.vector_isa else None
        if topk is not None:
            self.vector_isa_used = True
            return topk
        fill = self.pending_fill[1] if self.pending_fill and self.pending_fill[0] is node \
            else None
        tile = render_register_tile(self, node, indent, fill) if fill else None
        if tile is not None:
            self.pending_fill = None  # folded
            return tile
        tile = render_register_tile(self, node, indent) or render_transpose(self, node, indent)
        if tile is not None:
            return tile
        if node.kind == "vector" and self.vector_isa is not None:
            lines = self.vector_isa.render_loop(self, node, indent)
            if lines is not None:
                self.vector_isa_used = True
                return lines
        return self.render_plain_for(node, indent)

    def render_plain_for(self, node: For, indent: str) -> list[str]:
        if node.kind == "parallel" and self.loop_depth > 1:
            return self._by_thread_count(node, indent)
        return self._plain_for(node, indent)

    def _by_thread_count(self, node: For, indent: str) -> list[str]:
        """A parallel loop inside a serial one (a stencil's rows in each time step), in two
        versions: OpenMP's where threads are available, else the plain loop. gcc moves an
        OpenMP loop's body into a function of its own, where its pointers lose `restrict`: at
        one thread that costs 8-13% (heat-3d MEDIUM, Zen 3), once per outer iteration."""
        parallel = self._plain_for(node, indent)
        if len(parallel) > MAX_VERSIONED_LINES:
            return parallel  # a register tile: not worth twice the code
        parallel = self._plain_for(node, indent + "  ")
        self.preamble.add(OPENMP_HEADER)
        serial = For(node.var, node.init, node.cond, node.step, node.body)
        return [f"{indent}#ifdef _OPENMP", f"{indent}if (omp_get_max_threads() > 1) {{",
                *parallel, f"{indent}}} else", f"{indent}#endif", f"{indent}{{",
                *self._plain_for(serial, indent + "  "), f"{indent}}}"]

    def _plain_for(self, node: For, indent: str) -> list[str]:
        if node.kind in GPU_AXES:
            raise ScheduleError(f"loop {node.var} is bound to {node.kind} (Schedule.bind); only "
                                f"the cuda and triton targets run loops on GPU axes")
        v = c_var(node.var)
        head = (f"{indent}for ({self.index_type} {v} = {self.expr(node.init)}; "
                f"{self.expr(node.cond)}; {v} += {node.step}) {{")
        pragma = [f"{indent}{self.LOOP_PRAGMAS[node.kind]}"] if node.kind in self.LOOP_PRAGMAS \
            else []
        if node.kind == "parallel" and uneven_iterations(node):
            pragma = [f"{pragma[0]} {CYCLIC_SCHEDULE}"]
        elif pragma and node.kind == "parallel" and collapsible(node):
            pragma = [f"{pragma[0]} collapse(2)"]
            node = replace(node, body=replace(node.body, kind="serial"))
        if node.kind == "vector" and _reduces_across(node):
            pragma = []  # `omp simd` without a reduction clause would race on the accumulator
        return [*pragma, head, *self.stmt(node.body, indent + "  "), f"{indent}}}"]

    def store(self, node: Store) -> str:
        target = f"{c_name(node.tensor)}[{self.linear_index(node.tensor, node.indices)}]"
        # The value of a reduction is an operand of + or *: parenthesize it accordingly.
        value = self.expr(node.value, 13 if node.reduce == "*=" else 12 if node.reduce else 0)
        if node.reduce is None:
            return f"{target} = {value};"
        dtype = node.value.dtype
        if dtype.is_storage_only:  # the value is Cast(f16, ...): combine in f32
            current = f"lw_{dtype.name}_to_f32({target})"
            combined = self.reduce(node.reduce, current, self.expr(node.value.operand, 13), dtype)
            return f"{target} = lw_f32_to_{dtype.name}({combined});"
        return f"{target} = {self.reduce(node.reduce, target, value, dtype)};"
