"""Portable C99 backend: one function per kernel, `restrict` pointers, row-major tensors.

    void lw_<kernel>(<tensor and scalar arguments in call order>, <outputs>, <temporaries>,
                     int64_t <size>, ...);

Inputs are `const T *restrict`; outputs, inout tensors and temporaries are `T *restrict`
(the caller allocates temporaries; the generated code mallocs only a local buffer, such as a
fused row, larger than `CBackend.heap_local_bytes`, which a thread's stack would not hold).
Sizes come last.
"""

from __future__ import annotations

import ctypes
import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from loopweave.backends import simd, simd_lut, x86_gemm
from loopweave.backends.c_family import PRELUDE, CFamilyRenderer, c_name
from loopweave.backends.c_math import SCALAR_MATH
from loopweave.backends.c_threads import placed_call, placed_source, places_threads
from loopweave.backends.lines import LineCopies
from loopweave.errors import LoopweaveError
from loopweave.ir.kernel import KernelIR, Tensor
from loopweave.ir.loops import Block, For, Node, statements_in
from loopweave.ir.types import INDEX, DType
from loopweave.passes.column_blocks import column_block_rule
from loopweave.passes.conv_columns import channel_columns
from loopweave.passes.default import default_schedule as cpu_default
from loopweave.passes.few_rows import panel_rows
from loopweave.passes.isl_choice import time_tiles
from loopweave.targets import Target, check_choice, check_option_names, host_cc, host_cflags
from loopweave.thread_pools import load_library
from loopweave.toolchain import build_shared_library

#: gcc vectorizes the loops left to it (`#pragma omp simd`: exp, divisions, selects) with 256-bit
#: vectors on AVX-512 cores unless told otherwise (its tuning for Intel server parts). 512-bit ones
#: measured, one thread, 2-core Sapphire Rapids VM, suite sizes: softmax 1.27x, rmsnorm_gelu 1.43x,
#: int4 GEMM 1.37x, selective_scan 1.18x, attention 1.16x, layernorm 1.04x; PolyBench LARGE even
#: (MEDIUM: build-placement noise either way). Our intrinsics are 512-bit already. The pragma
#: rides in the source, so `emit_c`'s file gets it whatever flags it is built with.
WIDE_VECTORS_HINT = """#if defined(__GNUC__) && !defined(__clang__) && defined(__AVX512F__)
#pragma GCC target("prefer-vector-width=512")
#endif
"""


@dataclass(frozen=True, slots=True)
class CParam:
    """One parameter of the generated C function, in order."""

    name: str
    kind: str  # "tensor", "scalar" or "size"
    dtype: DType
    const: bool = False


def c_params(kernel: KernelIR) -> tuple[CParam, ...]:
    """The generated function's parameters; the loader passes arguments in this order."""
    params = []
    for a in kernel.args:
        if isinstance(a, Tensor):
            params.append(CParam(a.name, "tensor", a.dtype, const=a.role == "in"))
        else:
            params.append(CParam(a.name, "scalar", a.dtype))
    params += [CParam(t.name, "tensor", t.dtype) for t in (*kernel.outputs, *kernel.temporaries)]
    params += [CParam(s, "size", INDEX) for s in kernel.sizes]
    return tuple(params)


def function_name(kernel: KernelIR) -> str:
    return f"lw_{kernel.name}"


class CBackend(CFamilyRenderer):
    """Portable C for any host compiler."""

    name = "c"
    file_suffix = ".c"
    #: Local arrays start on a cache line, so that a packed panel's vector loads never straddle
    #: two (matmul 1024^3, one thread, AVX-512 Xeon: 132 -> 140 GFLOP/s).
    array_alignment = " __attribute__((aligned(64)))"
    #: A fused row or tile larger than this lives on the heap (`render_scope`): threads'
    #: stacks are 8 MB or less, and a row this wide takes far longer than the allocation.
    heap_local_bytes = 1 << 20

    def __init__(self, kernel: KernelIR, vector_isa=None,
                 vector_bytes: Callable[[], int] | None = None):
        super().__init__({t.name: t.shape for t in kernel.tensors.values()})
        self.kernel = kernel
        self.vector_isa = vector_isa  # a backends.simd.VectorISA for vector loops, or None
        self._vector_bytes = vector_bytes
        self.entry: tuple[str, str] | None = None  # a whole-kernel fast path (simd_lut)
        self.gemm_calls = False  # GEMM nests as micro-kernel calls (x86_gemm)

    @property
    def register_tile_chunk_bytes(self) -> int:
        """A register tile's row is cut into vectors of this many bytes, the machine's width:
        gcc keeps a wider vector type (64 bytes on AVX2) in memory, not registers (matmul 8x
        slower). Asked only when a tile is rendered: it may run the compiler."""
        return self._vector_bytes() if self._vector_bytes is not None else 64

    def render_for(self, node: For, indent: str) -> list[str]:
        # A GEMM nest at the top of the function: the micro-kernel call, which has its own
        # threads, in front of the loops (backends/x86_gemm.py).
        if self.loop_depth == 0 and self.gemm_calls:
            lines = x86_gemm.render_call(self, node, indent,
                                              lambda pad: super(CBackend, self).render_for(
                                                  node, pad))
            if lines is not None:
                return lines
        return super().render_for(node, indent)

    def stmt(self, node: Node, indent: str) -> list[str]:
        if isinstance(node, Block) and self.loop_depth == 0 and self.gemm_calls and \
                self.kernel.folded_inits:
            return self._folding_inits(node.body, indent)
        return super().stmt(node, indent)

    def _folding_inits(self, body: tuple[Node, ...], indent: str) -> list[str]:
        """The top-level nodes, each GEMM call that folds the initialisation moved in front of
        it (`codegen._moved_init`) writing the constant with the products: the initialisation
        runs only behind the call, with the loops, where the build or the machine has no
        micro-kernel."""
        folds = {(f.init, f.statement): f for f in self.kernel.folded_inits}
        lines, n = [], 0
        while n < len(body):
            init, nest = body[n], body[n + 1] if n + 1 < len(body) else None
            fold = folds.get((_only_statement(init), _only_statement(nest)))
            if fold is not None and isinstance(nest, For):
                when = "1" if fold.when is None else self.expr(fold.when)
                call = x86_gemm.render_call(
                    self, nest, indent, lambda pad, i=init, x=nest: [
                        *super(CBackend, self).stmt(i, pad),
                        *super(CBackend, self).render_for(x, pad)],
                    fill=(when, self.expr(fold.fill)))
                if call is not None:
                    lines += call
                    n += 2
                    continue
            lines += self.stmt(init, indent)
            n += 1
        return lines

    def call(self, f: str, args, dtype: DType) -> str:
        if f in SCALAR_MATH and dtype.name == "f32":  # libm's are calls gcc cannot vectorize
            self.preamble.update(SCALAR_MATH[f])
            return f"lw_{f}f({self.expr(args[0])})"
        return super().call(f, args, dtype)

    def signature(self) -> str:
        return f"void {function_name(self.kernel)}({_declarations(self.kernel)})"

    def render_body(self, loops: Node) -> str:
        """The function definition alone (what golden tests compare)."""
        entry = [self.entry[1]] if self.entry is not None else []
        lines = [f"{self.signature()} {{", *entry, *self.stmt(loops, "  "), "}"]
        return "\n".join(lines) + "\n"

    def render(self, loops: Node) -> str:
        header = f"/* Generated by loopweave from kernel '{self.kernel.name}'. */\n"
        body = self.render_body(loops)
        simd = self.vector_isa.include_lines() if self.vector_isa_used else ""
        return (header + WIDE_VECTORS_HINT + PRELUDE + simd + "".join(sorted(self.preamble)) + "\n"
                + body)


def build_flags(source: str) -> tuple[str, ...]:
    """Compiler flags the rendered source needs (OpenMP for parallel and simd loops)."""
    return ("-fopenmp",) if "#pragma omp" in source else ()


def make_target(name: str, cc: str | None, cflags: tuple[str, ...] | None,
                options: dict) -> Target:
    """The host: portable C built by the system compiler into a shared library.

    Option `simd` (default True): vector loops as intrinsics of the widest instruction set the
    compiler targets with these flags (backends/simd.py); False keeps `#pragma omp simd`.
    """
    check_option_names(name, options, ("simd",))
    check_choice(name, "simd", options.get("simd", True), (True, False))
    # -fwrapv: integer overflow wraps, as numpy's does. -fno-trapping-math: we never enable
    # floating-point traps, and it lets gcc vectorize loops with comparisons and selects.
    # -ffp-contract=fast: a * b + c may become one FMA (as in gnu99 mode; ISO C99 mode turns it
    # off, which halves the register tiles' throughput). -fno-math-errno: nothing reads errno,
    # and a `sqrtf` that may set it is a store gcc will not move past another: a loop that
    # stores and takes a row's square root neither hoists nor vectorizes it (rmsnorm with its
    # two statements fused, 3.6x slower than unfused); the results are the same (IEEE sqrt).
    return Target(name, "c", cc or host_cc(), (*host_cflags(cflags), "-std=c99", "-fwrapv",
                                                "-fno-trapping-math", "-fno-math-errno",
                                                "-ffp-contract=fast"),
                  "host CPU, C99 built with the system C compiler", options)


def default_schedule(kernel: KernelIR, target: Target | None = None):
    """The schedule `compile()` uses without one: passes/default.py's CPU heuristics, with
    register tiles as wide as the vectors the target's compiler flags give."""
    return cpu_default(kernel, lambda: vector_bytes(target),
                       gemm_kernel=lambda kind: gemm_path(target, kind) is not None)


def gemm_path(target: Target | None, kind: str) -> str | None:
    """The path ("amx", "vector") of the GEMM micro-kernel for operand type `kind` ("i8",
    "bf16"; backends/x86_gemm.py) that the target's compiler flags enable, or None (also for
    the simd=False option)."""
    if target is None or not target.options.get("simd", True):
        return None
    return x86_gemm.path_for(kind, simd.predefined_macros(target.cc, tuple(target.cflags)))


def size_rule(kernel: KernelIR, target: Target | None = None):
    """The default's choice by sizes (the pipeline asks it per call sizes): isl's time tiles
    for a stencil in time whose data exceed the cache (passes/isl_choice.py `TimeTiles`),
    columns in blocks for a left-looking factorization whose data exceed the L2 cache
    (passes/column_blocks.py `ColumnBlocks`: gramschmidt), B
    packed row by row for a contraction with too few rows for micro-panels
    (passes/few_rows.py `PanelRows`), the wide tile of strided convolutions with many output
    columns (passes/conv_columns.py `ChannelColumns`)."""
    width = (lambda: vector_bytes(target)) if target is not None else None

    def gemm(kind: str) -> bool:
        return gemm_path(target, kind) is not None

    return time_tiles(kernel) or column_block_rule(
        kernel, lambda: default_schedule(kernel, target)) or panel_rows(
        kernel, width, gemm) or channel_columns(kernel, width, gemm)


#: The widest vector of each x86 instruction set, in bytes (the SSE baseline: 16).
VECTOR_BYTES = {"avx512": 64, "avx2": 32}


def vector_bytes(target: Target | None) -> int:
    """The SIMD width the target's compiler flags give (AVX2 without a target)."""
    if target is None:
        return VECTOR_BYTES["avx2"]
    isa = simd.isa_for(target.cc, target.cflags)
    return VECTOR_BYTES.get(isa.name, 16) if isa is not None else 16


def render(kernel: KernelIR, loops: Node, target: Target | None = None) -> str:
    """C source of a scheduled kernel."""
    isa = simd.isa_for_target(target, loops) if target is not None else None
    width = (lambda: vector_bytes(target)) if target is not None else None
    backend = CBackend(kernel, isa, width)
    if target is not None and target.options.get("simd", True):
        backend.gemm_calls = True
        backend.entry = simd_lut.fast_path(kernel, function_name(kernel))
        if backend.entry is not None:
            backend.preamble.add(backend.entry[0])
    return backend.render(loops)


_CTYPES = {"f32": ctypes.c_float, "f64": ctypes.c_double, "i8": ctypes.c_int8,
           "u8": ctypes.c_uint8, "i16": ctypes.c_int16, "i32": ctypes.c_int32,
           "i64": ctypes.c_int64, "f16": ctypes.c_uint16, "bf16": ctypes.c_uint16,
           "f8e4m3": ctypes.c_uint8, "f8e5m2": ctypes.c_uint8, "e8m0": ctypes.c_uint8,
           "f4e2m1": ctypes.c_uint8}


def address(array) -> int:
    """The address of a C-contiguous numpy array's first element. A plain ndarray's read
    from its object where CPython's layout allows (`array_data_offset`: 0.37 us, any dtype),
    else a writable, non-empty one's through the buffer protocol (0.7 us), where
    `array.ctypes.data` builds a helper object (1.2 us, a third of the host overhead of a
    small kernel's call). Dtypes the buffer protocol has no code for (ml_dtypes' bfloat16,
    float8) take the slow way there."""
    offset = array_data_offset()
    if offset is not None and type(array) is np.ndarray:
        return ctypes.c_void_p.from_address(id(array) + offset).value or 0
    if array.flags.writeable and array.size and array.dtype.isbuiltin == 1:
        return ctypes.addressof(ctypes.c_char.from_buffer(array))
    return array.ctypes.data


@functools.cache
def array_data_offset() -> int | None:
    """Where a numpy array object keeps its data pointer: right after the object header
    (the first field of numpy's PyArrayObject), checked on live arrays of three kinds; None
    where that does not hold (not CPython, another layout), and calls pass addresses."""
    if sys.implementation.name != "cpython":  # id() is an address in CPython only
        return None
    offset = object.__basicsize__
    samples = [np.zeros(3), np.arange(10)[2:], np.ones((2, 3), np.int8).T]
    if all(ctypes.c_void_p.from_address(id(a) + offset).value == a.ctypes.data
           for a in samples):
        return offset
    return None


def placed_entry(kernel: KernelIR, source: str) -> str:
    """C text of `lw_<kernel>_placed`, the kernel's function with its OpenMP threads placed
    on the cores for the call (backends/c_threads.py), where `source` places them ("" where
    it runs no threads)."""
    if not places_threads(source):
        return ""
    call = placed_call(source, f"{function_name(kernel)}({', '.join(_arguments(kernel))})")
    return (f"\n/* The kernel with its threads placed on the cores (c_threads.py). */\n"
            f"void {function_name(kernel)}_placed({_declarations(kernel)}) {{\n  {call}\n}}\n")


def _arguments(kernel: KernelIR) -> list[str]:
    return [c_name(p.name) for p in c_params(kernel)]


def _declarations(kernel: KernelIR, tensor: str | None = None) -> str:
    """The C function's parameter list, its tensors declared as `tensor` where given."""
    declared = []
    for p in c_params(kernel):
        if p.kind != "tensor":
            declared.append(f"{p.dtype.c_type} {c_name(p.name)}")
        elif tensor is not None:
            declared.append(f"{tensor} {c_name(p.name)}")
        else:
            const = "const " if p.const else ""
            declared.append(f"{const}{p.dtype.c_type} *restrict {c_name(p.name)}")
    return ", ".join(declared) or "void"


def object_entry(kernel: KernelIR, offset: int, source: str = "") -> str:
    """C text of `lw_<kernel>_objects`, the kernel's function taking each array as its numpy
    object, whose data pointer it reads at `offset` (`array_data_offset`), its threads placed
    where `source` places them (`placed_call`). What repeated calls run
    (loopweave.call_plan): Python passes the objects as they are, where an address costs a
    buffer-protocol request each (about 0.3 us warm, 3-5 us after streaming)."""
    params = c_params(kernel)
    passed = [f"*(void **)((char *){c_name(p.name)} + {offset})" if p.kind == "tensor" else
              c_name(p.name) for p in params]
    name = function_name(kernel)
    call = placed_call(source, f"{name}({', '.join(passed)})")
    return (f"\n/* The entry loopweave's Python runtime calls with numpy array objects. */\n"
            f"void {name}_objects({_declarations(kernel, 'void *')}) {{\n  {call}\n}}\n")


class SharedLibraryInvoker:
    """Calls the kernel's function in a shared library through ctypes."""

    def __init__(self, kernel: KernelIR, library: Path):
        self.library_path = library
        self.params = c_params(kernel)
        try:
            self._lib = load_library(library)
        except OSError as e:  # a cached library that cannot be loaded
            raise LoopweaveError(f"cannot load the built kernel {library}: {e}") from None
        # The entry that places the threads (`placed_entry`), where the library has one.
        placed = f"{function_name(kernel)}_placed"
        self._fn = self._function(placed if hasattr(self._lib, placed) else
                                  function_name(kernel), ctypes.c_void_p)
        # The entry for numpy objects (`object_entry`), where the library has one.
        has_objects = hasattr(self._lib, f"{function_name(kernel)}_objects")
        self._objects = self._function(f"{function_name(kernel)}_objects",
                                       ctypes.py_object) if has_objects else None
        self._tensors = tuple(p.kind == "tensor" for p in self.params)
        # The arrays the schedule's `align` steps ask on lines (backends/lines.py).
        aligned = [pos for pos, p in enumerate(self.params) if p.name in kernel.aligned]
        self._lines = LineCopies(tuple(aligned), tuple(not self.params[pos].const
                                                       for pos in aligned),
                                 address) if aligned else None

    def _function(self, name: str, array_type) -> Callable:
        fn = getattr(self._lib, name)
        fn.restype = None
        fn.argtypes = [array_type if p.kind == "tensor" else
                       ctypes.c_int64 if p.kind == "size" else _CTYPES[p.dtype.name]
                       for p in self.params]
        return fn

    def __call__(self, arrays: dict, scalars: dict, sizes: dict) -> None:
        values = [arrays[p.name] if p.kind == "tensor" else
                  scalars[p.name] if p.kind == "scalar" else sizes[p.name] for p in self.params]
        if self._lines is not None:
            self._lines.wrap(self._fn, self._tensors, address)(*values)
            return
        self._fn(*[address(v) if tensor else v
                   for v, tensor in zip(values, self._tensors, strict=True)])

    def direct(self, sizes: dict[str, int]) -> DirectCall:
        """How calls with `sizes` reach the function without this object (what a repeated
        call runs: loopweave.call_plan): numpy arrays as objects where the library has the
        entry for them, else by address."""
        arrays = tuple(p.kind == "tensor" for p in self.params if p.kind != "size")
        fixed = tuple(sizes[p.name] for p in self.params if p.kind == "size")
        function, passed = (self._objects, None) if self._objects is not None else \
            (self._fn, address)
        if self._lines is not None:  # the values' arrays first moved onto lines
            return DirectCall(self._lines.wrap(function, arrays, passed), arrays, fixed,
                              address=None)
        return DirectCall(function, arrays, fixed, address=passed)


@dataclass(frozen=True)
class DirectCall:
    """A kernel's C function called straight: `function(*values, *fixed)`, where `values` are the
    kernel's arguments (converted scalars), outputs and temporaries in that order, each one flagged
    in `arrays` passed as `address(value)` (as the numpy array itself where `address` is None: the
    library's `object_entry`); `after` (a function of no argument) runs after it where given;
    `chosen` where a caller switches to this call from another (the invoker that picks code by sizes
    notes which source runs). Callers must pass exact numpy arrays, C-contiguous, of the kernel's
    dtypes. One flat call, where an invoker goes through its parameters by name: a call that follows
    megabytes of streaming finds Python's objects out of the cache, and each step it saves is worth
    about a microsecond there."""

    function: Callable
    arrays: tuple[bool, ...]
    fixed: tuple[int, ...]
    after: Callable[[], object] | None = None
    chosen: Callable[[], object] | None = None
    address: Callable[[object], int] | None = address


def load(kernel: KernelIR, source: str, target: Target) -> SharedLibraryInvoker:
    """Build `source` (cached on disk), with the entry that places its threads where it runs
    some (`placed_entry`) and the entry for numpy objects where this Python allows it
    (`object_entry`), and load it."""
    offset = array_data_offset()
    built = placed_source(source)
    built += placed_entry(kernel, built)
    if offset is not None:
        built += object_entry(kernel, offset, built)
    library = build_shared_library(built, target.cc, (*target.cflags, *build_flags(source)))
    return SharedLibraryInvoker(kernel, library)


def _only_statement(node: Node | None) -> str | None:
    """The one statement whose stores `node` holds (None for none or several)."""
    names = statements_in(node) if node is not None else set()
    return names.pop() if len(names) == 1 else None
