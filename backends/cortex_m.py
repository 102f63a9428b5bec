"""Cortex-M4 and Cortex-M55 targets: C99 for microcontrollers, run bare-metal under QEMU.

The generated function is the portable C backend's, with 32-bit sizes and index arithmetic (the
cores are 32-bit), no heap and no static state: outputs and temporaries are caller-provided
buffers whose sizes the header comment states. int8 multiply-accumulate nests use each core's
idiom (see `loopweave.backends.arm_mac`): the M4's packed 16-bit MAC (SMLAD, from arm_acle.h),
the M55's Helium vectors (arm_mve.h); `idioms=False` gives the plain C. float32 runs on the FPU
(hard-float ABI); only the libm functions the kernel calls are linked.

`loopweave.compile(src, target="cortex-m4")` builds the kernel with a harness, startup file and
linker script (`arm_baremetal`) and runs every call under `qemu-system-arm` with semihosting
(`runners`); `runner=` swaps in another `Runner` (a board).
"""

from __future__ import annotations

import shutil

from loopweave.backends import simd
from loopweave.backends.arm_baremetal import (
    ARENA_BYTES,
    ARENA_SECTION,
    BOARDS,
    LINK_FLAGS,
    SUPPORT_FILES,
)
from loopweave.backends.arm_harness import (
    HarnessInvoker,
    build_program,
    harness_source,
    static_arena,
)
from loopweave.backends.arm_mac import ArmCBackend
from loopweave.backends.c_family import c_name
from loopweave.backends.runners import QemuSemihostingRunner, check_options
from loopweave.ir import expr as ir
from loopweave.ir.expr import Expr, evaluate, to_str
from loopweave.ir.kernel import KernelIR
from loopweave.ir.loops import Node
from loopweave.ir.types import INDEX, DType
from loopweave.passes.default_arm import arm_default_schedule
from loopweave.passes.schedule import Schedule
from loopweave.targets import Target

CC = "arm-none-eabi-gcc"
DEFAULT_CFLAGS = ("-O3",)
OPTIONS = ("runner", "idioms")


class CortexMBackend(ArmCBackend):
    """C for a Cortex-M core: 32-bit sizes and indices, the buffers reported in the header."""

    index_type = "int32_t"

    @property
    def scalar_register_tiles(self) -> bool:
        """The M4 has no SIMD registers: register tiles are scalar accumulators there."""
        return self.core == "cortex-m4"

    def signature(self) -> str:
        # Sizes are the last parameters: give them the 32-bit index type.
        wide = ", ".join(f"int64_t {c_name(s)}" for s in self.kernel.sizes)
        text = super().signature()
        if not wide:
            return text
        assert text.endswith(wide + ")")
        return text[:-len(wide) - 1] + wide.replace("int64_t ", "int32_t ") + ")"

    def header(self) -> str:
        return super().header() + scratch_comment(self.kernel)

    # Index arithmetic (loop bounds: min, max, floor division) is 32-bit on these cores: the
    # 64-bit helpers would cost a compare-with-carry pair per bound in every loop.
    def call(self, f: str, args: tuple[Expr, ...], dtype: DType) -> str:
        if f in ("min", "max") and _index_only(dtype, args):
            return f"lw_{f}_i32({', '.join(self.expr(a) for a in args)})"
        return super().call(f, args, dtype)

    def binary(self, op: str, a: Expr, b: Expr, dtype: DType, parent_prec: int) -> str:
        if op in ("/", "%") and _index_only(a.dtype, (a, b)):
            return f"lw_{'div' if op == '/' else 'mod'}_i32({self.expr(a)}, {self.expr(b)})"
        return super().binary(op, a, b, dtype, parent_prec)


def _index_only(dtype: DType, args: tuple[Expr, ...]) -> bool:
    """Whether `args` are index arithmetic (no tensor element or scalar argument in them)."""
    return dtype == INDEX and not any(isinstance(x, ir.Load | ir.Scalar)
                                      for a in args for x in ir.walk(a))


def _bytes_expr(dims: tuple[Expr, ...], itemsize: int) -> str:
    return " * ".join([str(itemsize), *(f"({to_str(d)})" for d in dims)])


def scratch_comment(kernel: KernelIR) -> str:
    """The header comment that reports the caller-provided buffers and their sizes."""
    lines = ["/* No heap, no static state. Caller-provided buffers (bytes, row-major):"]
    for t in kernel.outputs:
        lines.append(f" *   output    {t.name}: {t.dtype}[{', '.join(map(to_str, t.shape))}] = "
                     f"{_bytes_expr(t.shape, t.dtype.bits // 8)}")
    for t in kernel.temporaries:
        lines.append(f" *   scratch   {t.name}: {t.dtype}[{', '.join(map(to_str, t.shape))}] = "
                     f"{_bytes_expr(t.shape, t.dtype.bits // 8)}")
    if not kernel.temporaries:
        lines.append(" *   scratch   none")
    return "\n".join(lines) + "\n */\n"


def scratch_bytes(kernel: KernelIR, sizes: dict[str, int]) -> int:
    """Bytes of scratch (temporaries) the kernel needs for `sizes` (sizes and int scalars)."""
    total = 0
    for t in kernel.temporaries:
        n = t.dtype.bits // 8
        for d in t.shape:
            n *= evaluate(d, sizes)
        total += n
    return total


def make_target(name: str, cc: str | None, cflags: tuple[str, ...] | None,
                options: dict) -> Target:
    """A Cortex-M core: arm-none-eabi-gcc for it, QEMU's board for it (or `runner=`)."""
    check_options(name, options, OPTIONS)
    board = BOARDS[name]
    # -ffp-contract=fast: a * b + c may be one VFMA (FPU) or VFMA.F32 (MVE), as on the host.
    flags = (*(cflags if cflags is not None else DEFAULT_CFLAGS), *board.cpu_flags,
             "-std=c99", "-fwrapv", "-ffp-contract=fast", "-fopenmp-simd")
    return Target(name, "cortex_m", cc or CC, flags,
                  f"{name} ({board.features}), run under qemu-system-arm -M {board.machine}",
                  dict(options))


def default_schedule(kernel: KernelIR, target: Target) -> Schedule:
    """The schedule `compile()` uses without one: `passes/default_arm.py`'s for this core."""
    return arm_default_schedule(kernel, target.name)


def render(kernel: KernelIR, loops: Node, target: Target) -> str:
    """C source of a scheduled kernel for the target's core."""
    isa = simd.isa_for(target.cc, target.cflags) if shutil.which(target.cc) else None
    idioms = target.options.get("idioms", True)
    return CortexMBackend(kernel, target.name, idioms, isa).render(loops)


def load(kernel: KernelIR, source: str, target: Target) -> HarnessInvoker:
    """Build kernel + harness + startup into an ELF (cached) and run calls on the board."""
    board = BOARDS[target.name]
    runner = target.options.get("runner") or QemuSemihostingRunner(board.machine)
    runner.check()
    program_source = source + harness_source(kernel, "int32_t",
                                             static_arena(ARENA_SECTION, ARENA_BYTES))
    program = build_program(program_source, SUPPORT_FILES, target.cc, target.cflags, LINK_FLAGS)
    return HarnessInvoker(kernel, program, runner, target.name, capacity=ARENA_BYTES)
