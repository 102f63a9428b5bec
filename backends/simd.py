"""Explicit SIMD: a loop marked "vector" becomes intrinsics of one instruction set.

A `VectorISA` is data: per element type the vector and mask C types, the lane count and a format
string per operation (`load`, `splat`, `add`, `fma`, `lt`, `select`, ...; the tables are in
`backends/simd_isas.py`). `render_loop` lowers a vector loop lane-wise:

    {                                       /* for (c2 = init; c2 <= hi; c2++) body */
      int64_t c2 = init;
      const int64_t lw_end = hi + 1;
      <accumulators of horizontal reductions>
      for (; lw_end - c2 >= W; c2 += W) { <body on W lanes> }
      <accumulators folded into their targets>
      for (; c2 < lw_end; c2 += 1) { <the scalar body> }        /* the remainder */
    }

On AVX-512 the remainder is one masked vector step where the body allows it (`masked_tail`).

Lowering the body lane-wise is legal because the loop carries no dependence (the scheduler
checks that): statements run for W iterations at a time, inner loops and guards that do not
depend on the vector variable stay scalar around them. Accesses must be contiguous (stride 1),
read downwards (stride -1: loaded from the last lane's element, lanes reversed), invariant in
the vector loop (a broadcast) or gathers through an i32 tensor (`x[col[p]]`, simd_gather.py).
A reduction into a location invariant in the loop (`s[i] += e[i, j]` vectorized over j)
accumulates in a register and is folded after the loop; a reduction over an inner loop into a
contiguous target (`C[i, j] += A[i, k] * B[k, j]`, j vector, k inner) is kept in a register
across the inner loop. Anything else the lowering does not support (other gathers, integer
division, math but sqrt, exp, tanh, sigmoid, ...) leaves the loop to the scalar renderer and
its `#pragma omp simd`: never wrong code, at worst slower.

Intrinsics are wrapped in `#if <guard> ... #else <the plain loop> #endif` (so emitted C builds
for a machine without the instruction set too); f16 tensors load and store through f32 (F16C).
"""

from __future__ import annotations

import functools
import subprocess
from dataclasses import dataclass, field

from loopweave.backends.simd_arg import render_arg_loop
from loopweave.backends.simd_gather import gather_operands
from loopweave.backends.simd_isas import (
    AVX2_TYPES,
    AVX512_TYPES,
    MVE_TYPES,
    NEON_TYPES,
    CannotLower,
    VectorType,
)
from loopweave.backends.simd_reduce import LaneReductions
from loopweave.ir import expr as ir
from loopweave.ir.affine import coefficient
from loopweave.ir.loops import Block, For, If, Node, Store, single_upper_bound
from loopweave.ir.loops import walk as walk_loops
from loopweave.ir.types import I32, identity


@dataclass(frozen=True)
class VectorISA:
    """An instruction set: its header, the preprocessor test for it, its vector types, and
    the vectors per trip of a short vector loop (`UNROLL_MAX_LINES`; 4 where measured, on
    x86; 1 on microcontrollers, where code size counts)."""

    name: str
    include: str
    guard: str
    types: dict[str, VectorType] = field(compare=False)
    unroll: int = 1

    def lanes(self, dtype: str) -> int:
        """Lanes per vector of `dtype` (0: not supported)."""
        t = self.types.get(dtype)
        return t.lanes if t else 0

    def include_lines(self) -> str:
        """The guarded `#include` that a source using this ISA needs at file scope."""
        return f"#if {self.guard}\n{self.include}\n#endif\n"

    def render_loop(self, renderer, node: For, indent: str) -> list[str] | None:
        """`node` (a vector loop) as guarded intrinsics, or None if the lowering cannot."""
        arg_loop = render_arg_loop(self, renderer, node, indent)  # argmax=, argmin=
        if arg_loop is not None:
            return arg_loop
        lowering = _Lowering(self, renderer, node)
        try:
            lines = lowering.loop(indent)
        except CannotLower:
            return None
        if lowering.portable:
            return lines
        renderer.preamble.update(lowering.helpers)  # only now: a failed loop adds none
        plain = renderer.render_plain_for(node, indent)
        guard = self.guard
        if lowering.uses_f16 and self.name == "avx2":  # AVX-512F converts f16 itself
            guard += " && defined(__F16C__)"
        return [f"#if {guard}", *lines, "#else", *plain, "#endif"]


# -- instruction sets (their vector types: backends/simd_isas.py) ------------------------------

AVX2 = VectorISA("avx2", "#include <immintrin.h>", "defined(__AVX2__) && defined(__FMA__)",
                 AVX2_TYPES, unroll=4)
AVX512 = VectorISA("avx512", "#include <immintrin.h>", "defined(__AVX512F__)", AVX512_TYPES,
                   unroll=4)
NEON = VectorISA("neon", "#include <arm_neon.h>", "defined(__ARM_NEON) && defined(__aarch64__)",
                 NEON_TYPES)  # unroll: unmeasured (no Arm machine here, QEMU counts no time)
MVE = VectorISA("mve", "#include <arm_mve.h>",
                "defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 2)", MVE_TYPES)

#: Independent vector accumulators of a reduction in a vector loop (see `_Lowering.loop`).
ACCUMULATORS = 4
#: A vector loop with no inner loop, no reduction and a body of at most UNROLL_MAX_LINES lines
#: runs `VectorISA.unroll` bodies a trip, then one vector a trip. One thread, 2-core Xeon VM,
#: against one a trip: jacobi-1d LARGE 1.04-1.05x, durbin and trisolv 1.16-1.17x, fdtd-2d 1.13x,
#: nussinov 1.12x, jacobi-2d 1.07x; atax, bicg, adi 0.97-1.00x; heat-3d (32 lines) 0.96-0.98x.
UNROLL_MAX_LINES = 12
#: Every instruction set, preferred first when a compiler supports several.
ISAS: dict[str, VectorISA] = {isa.name: isa for isa in (AVX512, AVX2, NEON, MVE)}

_GUARD_MACROS = {"avx512": ("__AVX512F__",), "avx2": ("__AVX2__", "__FMA__"),
                 "neon": ("__ARM_NEON", "__aarch64__"), "mve": ("__ARM_FEATURE_MVE",)}


@functools.cache
def predefined_macros(cc: str, cflags: tuple[str, ...]) -> dict[str, str]:
    """What `cc` with `cflags` predefines (empty if the compiler cannot be run)."""
    try:
        out = subprocess.run([cc, *cflags, "-dM", "-E", "-x", "c", "/dev/null"],
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    macros = {}
    for line in out.stdout.splitlines():
        parts = line.split(maxsplit=2)
        if len(parts) >= 2 and parts[0] == "#define":
            macros[parts[1]] = parts[2] if len(parts) == 3 else ""
    return macros


def isa_for(cc: str, cflags: tuple[str, ...]) -> VectorISA | None:
    """The instruction set `cc` generates for with `cflags` (the widest it has), or None."""
    macros = predefined_macros(cc, tuple(cflags))
    for name, isa in ISAS.items():
        if all(m in macros for m in _GUARD_MACROS[name]):
            if name == "mve" and not int(macros["__ARM_FEATURE_MVE"] or 0) & 2:
                continue  # integer-only MVE: our lowering needs the float half too
            return isa
    return None


def isa_for_target(target, loops: Node) -> VectorISA | None:
    """The ISA for the vector loops of `loops` built for `target` (None if there are none,
    so the compiler is only asked when it matters, or if the target's option simd=False)."""
    if not target.options.get("simd", True):
        return None
    if not any(isinstance(n, For) and n.kind == "vector" for n in walk_loops(loops)):
        return None
    return isa_for(target.cc, target.cflags)


# -- lowering --------------------------------------------------------------------------------------

def _mentions(e: ir.Expr, var: str) -> bool:
    return var in ir.variables(e)


_BINARY_OPS = {"+": "add", "-": "sub", "*": "mul", "/": "div"}
_COMPARE_OPS = {"<": "lt", "<=": "le", ">": "gt", ">=": "ge", "==": "eq", "!=": "ne"}


class _Lowering(LaneReductions):
    """One vector loop lowered lane-wise; raises CannotLower for anything unsupported."""

    def __init__(self, isa: VectorISA, renderer, loop: For):
        self.isa, self.r, self.node = isa, renderer, loop
        self.var = loop.var
        self.count = 0
        self.lanes = 0  # every vector type in one loop must have the same lane count
        self.uses_f16 = False  # f16 loads or stores (F16C on AVX2)
        self.portable = False  # plain C (a memcpy): no #if for the instruction set
        self.nested = 0  # > 0: rendering under a guard or an inner loop of the body
        self.hoisted: dict[ir.Load, str] = {}  # invariant index loads -> their C names
        self.helpers: set[str] = set()  # file-scope definitions the intrinsics call
        self.tail: str | None = None  # while rendering the masked tail: its mask's C name

    def fresh(self, stem: str) -> str:
        self.count += 1
        return f"lw_{stem}{self.count}"

    def vtype(self, dtype) -> VectorType:
        t = self.isa.types.get(dtype.name)
        if t is None:
            raise CannotLower(dtype.name)
        if self.lanes and t.lanes != self.lanes:
            raise CannotLower("mixed lane counts")
        self.lanes = t.lanes
        return t

    # -- the loop ----------------------------------------------------------------------------

    def loop(self, indent: str) -> list[str]:
        node, r = self.node, self.r
        if node.step != 1 or _mentions(node.init, self.var):
            raise CannotLower("loop shape")
        bound = single_upper_bound(node.cond, self.var)
        if bound is None:
            raise CannotLower("loop bound")
        end = r.expr(bound)
        inner = indent + "  "
        copy = self.row_copy(node.body)
        if copy is not None:
            return self.copy_loop(copy, end, indent)
        horizontal = self.horizontal_stores(node.body)
        body = self.block(node.body, inner + "  ", horizontal)
        if not self.lanes:
            raise CannotLower("nothing to vectorize")
        v, end_name = r.expr(ir.Var(self.var)), self.fresh("end")
        lines = [f"{indent}{{", f"{inner}{r.index_type} {v} = {r.expr(node.init)};",
                 f"{inner}const {r.index_type} {end_name} = {end};"]
        # A reduction keeps ACCUMULATORS independent vector accumulators (the unrolled loop
        # deals vectors to them round-robin, then they are combined in a fixed order): one
        # alone is a chain of dependent adds, its latency (4 cycles) the loop's speed limit.
        copies = [{store: (f"{acc}_{n}", t) for store, (acc, t) in horizontal.items()}
                  for n in range(ACCUMULATORS if horizontal else 0)]
        for store, (acc, t) in horizontal.items():
            ident = r.const(identity(store.reduce, store.value.dtype), store.value.dtype)
            lines.append(f"{inner}{t.ctype} {acc} = {t.op('splat', ident)};")
            lines += [f"{inner}{t.ctype} {c[store][0]} = {acc};" for c in copies]
        first = len(lines)  # where the loops over whole vectors begin
        if copies:
            lines.append(f"{inner}for (; {end_name} - {v} >= {self.lanes * len(copies)}; ) {{")
            for c in copies:
                lines += [*self.block(node.body, inner + "  ", c),
                          f"{inner}  {v} += {self.lanes};"]
            lines.append(f"{inner}}}")
            for store, (acc, t) in horizontal.items():
                lines += self.merge(store, acc, [c[store][0] for c in copies], t, inner)
        unroll = self.isa.unroll
        if not copies and unroll > 1 and len(body) <= UNROLL_MAX_LINES and not any(
                isinstance(n, For) for n in walk_loops(node.body)):
            lines.append(f"{inner}for (; {end_name} - {v} >= {self.lanes * unroll}; ) {{")
            for _ in range(unroll):
                lines += [*self.block(node.body, inner + "  ", horizontal),
                          f"{inner}  {v} += {self.lanes};"]
            lines.append(f"{inner}}}")
        lines += [f"{inner}for (; {end_name} - {v} >= {self.lanes}; {v} += {self.lanes}) {{",
                  *body, f"{inner}}}"]
        if self.hoisted:
            lines = self.hoist_loads(lines, len(lines) - first, v, end_name, inner)
        for store, (acc, t) in horizontal.items():
            lines += self.fold(store, acc, t, inner)
        # A masked step where the body is long (not unrolled): its scalar remainder, up to
        # W - 1 runs of the body, costs most there. Short bodies measured even or slower
        # masked (gramschmidt, gemver MEDIUM, one thread: 0.97x, 0.93x; jacobi-2d 1.03x).
        long_body = len(body) > UNROLL_MAX_LINES
        tail = self.masked_tail(v, end_name, inner) if long_body and not horizontal and \
            not self.hoisted else None
        if tail is None:
            tail = [f"{inner}for (; {v} < {end_name}; {v} += 1) {{",
                    *r.stmt(node.body, inner + "  "), f"{inner}}}"]
        return [*lines, *tail, f"{indent}}}"]

    def masked_tail(self, v: str, end: str, indent: str) -> list[str] | None:
        """The loop's last, partial vector as one masked vector step (AVX-512: the lanes past
        `end` neither loaded nor stored), or None where the body needs the scalar remainder
        (no masked loads in the instruction set; reductions across lanes; updates in place
        outside a register kept across an inner loop; gathers, reversed or f16 accesses;
        index loads hoisted out of the vector loops).
        heat-3d MEDIUM (rows of 38 f64: 4 vectors and 6 scalar steps), one thread: 1.18x."""
        types = [t for t in self.isa.types.values() if t.lanes == self.lanes]
        if not types or any("load_masked" not in t.ops for t in types):
            return None
        mask, hoisted = self.fresh("tail"), len(self.hoisted)
        self.tail = mask
        try:
            body = self.block(self.node.body, indent + "  ")
        except CannotLower:
            return None
        finally:
            self.tail = None
        if len(self.hoisted) != hoisted:  # (names declared only around the whole vectors)
            return None
        ctype = types[0].mask  # one mask type per lane count (AVX-512: __mmask8, __mmask16)
        return [f"{indent}if ({v} < {end}) {{",
                f"{indent}  const {ctype} {mask} = ({ctype})((({self.r.index_type})1 << "
                f"({end} - {v})) - 1);", *body, f"{indent}}}"]

    def load(self, t: VectorType, ptr: str) -> str:
        """A vector load of `t` at `ptr` (masked in the tail)."""
        return t.op("load_masked", ptr, self.tail) if self.tail else t.op("load", ptr)

    def put(self, t: VectorType, ptr: str, value: str) -> str:
        """A vector store of `t` at `ptr` (masked in the tail)."""
        return t.op("store_masked", ptr, self.tail, value) if self.tail else \
            t.op("store", ptr, value)

    def untailed(self, what: str) -> None:
        """Refuse `what` in the masked tail (it keeps the scalar remainder)."""
        if self.tail:
            raise CannotLower(f"{what} in a masked tail")

    def row_copy(self, body: Node) -> Store | None:
        """The body when it is a gather's row copy (`out[i, d] = table[ids[i], d]`, d the
        vector variable): one plain store of a load, from another tensor through an index
        tensor, both contiguous in the loop. None otherwise."""
        store = body.body[0] if isinstance(body, Block) and len(body.body) == 1 else body
        if not isinstance(store, Store) or store.reduce is not None or \
                not isinstance(store.value, ir.Load):
            return None
        load = store.value  # the checker makes its type the target's: no conversion
        if load.tensor == store.tensor or not any(ir.is_indirect(i) for i in load.indices) or \
                coefficient(self.r.linear_offset(load.tensor, load.indices), self.var) != 1:
            return None  # `y[m] = x[col[m]]` is a gather
        return store

    def copy_loop(self, store: Store, end: str, indent: str) -> list[str]:
        """A row copy as one `memcpy` (glibc's copies rows of a few hundred bytes 1.2-1.4x
        faster than a loop of vector moves; different tensors never overlap: the call checks
        outputs and inout arguments against the others)."""
        r, inner = self.r, indent + "  "
        load = store.value
        v, end_name = r.expr(ir.Var(self.var)), self.fresh("end")
        for tensor, indices in ((store.tensor, store.indices), (load.tensor, load.indices)):
            if coefficient(r.linear_offset(tensor, indices), self.var) != 1:
                raise CannotLower("not contiguous")
        dst = f"&{r.expr(ir.Load(store.tensor, store.indices, load.dtype))}"
        self.portable = True
        return [f"{indent}{{", f"{inner}const {r.index_type} {v} = {r.expr(self.node.init)};",
                f"{inner}const {r.index_type} {end_name} = {end};",
                f"{inner}if ({end_name} > {v}) {{",
                f"{inner}  memcpy({dst}, &{r.expr(load)}, (size_t)({end_name} - {v}) * "
                f"sizeof({r.ctype(load.dtype)}));", f"{inner}}}", f"{indent}}}"]

    def hoist_loads(self, lines: list[str], count: int, v: str, end: str,
                    indent: str) -> list[str]:
        """The last `count` lines (the loops over whole vectors) under a test that they run
        at least once, the index loads they leave invariant (`ids[i]` in `table[ids[i], d]`)
        read once before them. Inside an OpenMP loop the compiler loses `restrict` and would
        read such an index again for every vector (1.5x slower gathers, one thread)."""
        r, head = self.r, lines[:-count]
        decls = [f"{indent}  const {r.ctype(load.dtype)} {name} = {r.expr(load)};"
                 for load, name in self.hoisted.items()]
        return [*head, f"{indent}if ({end} - {v} >= {self.lanes}) {{", *decls,
                *("  " + line for line in lines[-count:]), f"{indent}}}"]

    def hoisted_index(self, e: ir.Expr) -> tuple[ir.Expr, dict[str, str]]:
        """`e` with the loads that can be read once before the vector loops (see
        `hoist_loads`) replaced by placeholders, and each placeholder's text -> C name. Such a
        load sits directly in the body (no guard or inner loop around it: the statement runs
        in every iteration), does not move with the vector variable, and reads a tensor
        that the loop does not write."""
        placeholders: dict[str, str] = {}
        if self.nested:
            return e, placeholders

        def replace(x: ir.Expr) -> ir.Expr | None:
            if not isinstance(x, ir.Load) or _mentions(x, self.var) or \
                    any(isinstance(n, Store) and n.tensor == x.tensor
                        for n in walk_loops(self.node.body)):
                return None
            name = self.hoisted.get(x) or self.hoisted.setdefault(x, self.fresh("ix"))
            # No DSL name has a `#`: the placeholder's text cannot occur otherwise.
            placeholders[self.r.expr(ir.Var(f"{name}#", x.dtype))] = name
            return ir.Var(f"{name}#", x.dtype)
        return ir.rewrite(e, replace), placeholders

    # -- statements ----------------------------------------------------------------------------

    def block(self, node: Node, indent: str, horizontal: dict | None = None) -> list[str]:
        horizontal = horizontal or {}
        match node:
            case Block(body=body):
                return [line for b in body for line in self.block(b, indent, horizontal)]
            case Store() if node in horizontal:
                acc, t = horizontal[node]
                lines: list[str] = []
                update = self.combine(node, acc, t, lines, indent)
                return [*lines, f"{indent}{acc} = {update};"]
            case Store():
                return self.store(node, indent)
            case For():
                self.nested += 1
                try:
                    return self.inner_loop(node, indent)
                finally:
                    self.nested -= 1
            case If(cond=c, then=t, orelse=e) if not _mentions(c, self.var):
                self.nested += 1
                try:
                    lines = [f"{indent}if ({self.r.expr(c)}) {{", *self.block(t, indent + "  ")]
                    if e is not None:
                        lines += [f"{indent}}} else {{", *self.block(e, indent + "  ")]
                finally:
                    self.nested -= 1
                return [*lines, f"{indent}}}"]
        raise CannotLower(type(node).__name__)

    def combine(self, store: Store, current: str, t: VectorType, lines: list[str],
                indent: str) -> str:
        """The vector `current <op> value` of a reduction store (FMA for `+= a * b`)."""
        value = store.value
        if store.reduce == "+=" and isinstance(value, ir.Binary) and value.op == "*" and \
                "fma" in t.ops:
            a, b = self.value(value.left, t, lines, indent), self.value(value.right, t, lines,
                                                                        indent)
            return t.op("fma", a, b, current)
        if store.reduce == "+=" and isinstance(value, ir.Unary) and value.op == "neg":
            return t.op("sub", current, self.value(value.operand, t, lines, indent))
        x = self.value(value, t, lines, indent)
        if store.reduce == "+=":
            return t.op("add", current, x)
        if store.reduce == "*=":
            return t.op("mul", current, x)
        if store.reduce in ("max=", "min="):
            return self.minmax("max" if store.reduce == "max=" else "min", current, x, t, lines,
                               indent)
        raise CannotLower(store.reduce)

    def store(self, node: Store, indent: str) -> list[str]:
        value = node.value
        if value.dtype.name == "f16" and isinstance(value, ir.Cast) and node.reduce is None:
            self.untailed("an f16 store")
            t = self.vtype(value.operand.dtype)  # f16(x) stored: x rounded by the store
            if "store_f16" not in t.ops:
                raise CannotLower("f16 store")
            self.uses_f16 = True
            ptr = self.pointer(node.tensor, node.indices, stride_wanted=1)
            lines: list[str] = []
            result = self.value(value.operand, t, lines, indent)
            return [*lines, f"{indent}{t.op('store_f16', ptr, result)};"]
        t = self.vtype(node.value.dtype)
        ptr = self.pointer(node.tensor, node.indices, stride_wanted=1)
        lines: list[str] = []
        if node.reduce is None:
            result = self.value(node.value, t, lines, indent)
        else:
            # An update in place is read again by the next run of the loop over the same
            # elements (gramschmidt's R[k, j] += Q[i, k] * A[i, j] for each row i), and a masked
            # store does not forward to that load: it waits for the store to reach the cache
            # (gramschmidt MEDIUM, one thread: 0.89x with the tail masked).
            self.untailed("an update in place")
            result = self.combine(node, self.load(t, ptr), t, lines, indent)
        return [*lines, f"{indent}{self.put(t, ptr, result)};"]

    def inner_loop(self, node: For, indent: str) -> list[str]:
        if _mentions(node.init, self.var) or _mentions(node.cond, self.var):
            raise CannotLower("inner loop bounds depend on the vector variable")
        body = node.body
        # `target += f(k)` over the inner loop k into a contiguous target that k does not move:
        # keep the target in a register across the loop.
        if isinstance(body, Store) and body.reduce and \
                not any(_mentions(i, node.var) for i in body.indices) and \
                not self.touches(body, body.tensor, body):
            inner = indent + "  "
            t = self.vtype(body.value.dtype)
            ptr = self.pointer(body.tensor, body.indices, stride_wanted=1)
            acc, lines = self.fresh("acc"), []
            update = self.combine(body, acc, t, lines, inner + "  ")
            return [f"{indent}{{", f"{inner}{t.ctype} {acc} = {self.load(t, ptr)};",
                    *self.loop_head(node, inner), *lines, f"{inner}  {acc} = {update};",
                    f"{inner}}}", f"{inner}{self.put(t, ptr, acc)};", f"{indent}}}"]
        return [*self.loop_head(node, indent), *self.block(body, indent + "  "), f"{indent}}}"]

    def loop_head(self, node: For, indent: str) -> list[str]:
        r, v = self.r, self.r.expr(ir.Var(node.var))
        pragma = [f"{indent}{r.LOOP_PRAGMAS['unroll']}"] if node.kind == "unroll" else []
        return [*pragma, f"{indent}for ({r.index_type} {v} = {r.expr(node.init)}; "
                         f"{r.expr(node.cond)}; {v} += {node.step}) {{"]

    def pointer(self, tensor: str, indices: tuple[ir.Expr, ...], stride_wanted: int) -> str:
        offset = self.r.linear_offset(tensor, indices)
        if coefficient(offset, self.var) != stride_wanted:
            raise CannotLower("not contiguous")
        placeholders: dict[str, str] = {}
        if any(ir.is_indirect(i) for i in indices):
            hoisted = [self.hoisted_index(i) for i in indices]
            indices = tuple(i for i, _ in hoisted)
            placeholders = {k: v for _, p in hoisted for k, v in p.items()}
        text = f"&{self.r.expr(ir.Load(tensor, indices, ir.INDEX))}"
        for placeholder, name in placeholders.items():
            text = text.replace(placeholder, name)
        return text

    # -- expressions: each vector value is a named temporary ---------------------------------

    def let(self, ctype: str, text: str, lines: list[str], indent: str) -> str:
        name = self.fresh("v")
        lines.append(f"{indent}const {ctype} {name} = {text};")
        return name

    def value(self, e: ir.Expr, t: VectorType, lines: list[str], indent: str) -> str:
        """The name of a vector of type `t` holding `e` on each lane."""
        if self.isa.types.get(e.dtype.name) is not t:
            raise CannotLower(f"type {e.dtype}")
        if not _mentions(e, self.var):
            return self.let(t.ctype, t.op("splat", self.r.expr(e)), lines, indent)
        match e:
            case ir.Load(tensor=name, indices=ix) if "reverse" in t.ops and coefficient(
                    self.r.linear_offset(name, ix), self.var) == -1:
                # lanes var .. var + W - 1 read downwards: load from the last lane's element
                self.untailed("a reversed load")
                last = ir.add(ir.Var(self.var), ir.Const(t.lanes - 1))
                ix = tuple(ir.substitute(i, {self.var: last}) for i in ix)
                loaded = t.op("load", self.pointer(name, ix, -1))
                return self.let(t.ctype, t.op("reverse", loaded), lines, indent)
            case ir.Load(tensor=name, indices=ix) if any(
                    ir.is_indirect(i) and _mentions(i, self.var) for i in ix):  # x[col[p]]
                self.untailed("a gather")
                base, lane = gather_operands(ix, self.var)  # backends/simd_gather.py
                offsets = self.value(lane, self.vtype(I32), lines, indent)
                return self.let(t.ctype, t.op("gather", self.pointer(name, base, 0), offsets),
                                lines, indent)
            case ir.Load(tensor=name, indices=ix):
                return self.let(t.ctype, self.load(t, self.pointer(name, ix, 1)), lines, indent)
            case ir.Cast(operand=x) if x.dtype == e.dtype:
                return self.value(x, t, lines, indent)
            case ir.Cast(operand=ir.Load(tensor=name, indices=ix) as x) if \
                    x.dtype.name == "f16" and "load_f16" in t.ops:
                self.untailed("an f16 load")
                self.uses_f16 = True
                return self.let(t.ctype, t.op("load_f16", self.pointer(name, ix, 1)), lines,
                                indent)
            case ir.Cast(operand=ir.Cast(operand=x) as h) if h.dtype.name == "f16" and \
                    x.dtype == e.dtype and "round_f16" in t.ops:  # f32(f16(x)): rounded
                self.uses_f16 = True
                return self.let(t.ctype, t.op("round_f16", self.value(x, t, lines, indent)),
                                lines, indent)
            case ir.Cast(operand=x) if f"from_{x.dtype.name}" in t.ops:
                inner = self.value(x, self.vtype(x.dtype), lines, indent)
                return self.let(t.ctype, t.op(f"from_{x.dtype.name}", inner), lines, indent)
            case ir.Unary(op="neg", operand=x):
                return self.let(t.ctype, t.op("neg", self.value(x, t, lines, indent)), lines,
                                indent)
            # `a + -b` (what `-=` reads as) is `a - b`, bit for bit, and keeps the product in
            # `a - x * y` visible to the compiler's FMA contraction (a sign flip hides it).
            case ir.Binary(op="+" | "-" as op, left=a, right=ir.Unary(op="neg", operand=b)):
                x, y = self.value(a, t, lines, indent), self.value(b, t, lines, indent)
                return self.let(t.ctype, t.op("sub" if op == "+" else "add", x, y), lines,
                                indent)
            case ir.Binary(op=op, left=a, right=b) if op in _BINARY_OPS and \
                    (op != "/" or e.dtype.is_float):
                x, y = self.value(a, t, lines, indent), self.value(b, t, lines, indent)
                return self.let(t.ctype, t.op(_BINARY_OPS[op], x, y), lines, indent)
            case ir.Call(func="select", args=(c, a, b)):
                m = self.mask(c, t, lines, indent)
                x, y = self.value(a, t, lines, indent), self.value(b, t, lines, indent)
                return self.let(t.ctype, t.op("select", m, x, y), lines, indent)
            case ir.Call(func="min" | "max" as f, args=(a, b)):
                x, y = self.value(a, t, lines, indent), self.value(b, t, lines, indent)
                return self.let(t.ctype, self.minmax(f, x, y, t, lines, indent), lines, indent)
            case ir.Call(func="sqrt" | "exp" | "tanh" | "sigmoid" as f, args=(a,)):
                self.helpers.update(t.helpers.get(f, ()))  # lw_expf_v16 and the like
                return self.let(t.ctype, t.op(f, self.value(a, t, lines, indent)), lines, indent)
        raise CannotLower(type(e).__name__)

    def minmax(self, f: str, x: str, y: str, t: VectorType, lines: list[str],
               indent: str) -> str:
        """max(x, y) as the scalar code defines it: x if x > y or x is NaN, else y (NaN
        propagates as numpy's maximum does); integers use the instruction."""
        if f in t.ops:
            return t.op(f, x, y)
        better = t.op("gt" if f == "max" else "lt", x, y)
        pick = self.let(t.mask, t.op("mask_or", better, t.op("ne", x, x)), lines, indent)
        return t.op("select", pick, x, y)

    def mask(self, c: ir.Expr, t: VectorType, lines: list[str], indent: str) -> str:
        """The name of a mask (as `t`'s selects take it) holding the condition `c`."""
        match c:
            case ir.Binary(op=op, left=a, right=b) if op in _COMPARE_OPS:
                ct = self.vtype(a.dtype)
                if ct.mask != t.mask:
                    raise CannotLower("mask types differ")
                x, y = self.value(a, ct, lines, indent), self.value(b, ct, lines, indent)
                return self.let(t.mask, ct.op(_COMPARE_OPS[op], x, y), lines, indent)
            case ir.Binary(op="and" | "or" as op, left=a, right=b) if _mentions(c, self.var):
                x, y = self.mask(a, t, lines, indent), self.mask(b, t, lines, indent)
                return self.let(t.mask, t.op(f"mask_{op}", x, y), lines, indent)
        raise CannotLower("condition")
