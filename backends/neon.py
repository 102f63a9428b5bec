"""aarch64 target: C with NEON intrinsics (arm_neon.h), run under QEMU user mode.

The portable C backend's function, built by `aarch64-linux-gnu-gcc` as a static Linux binary
together with the harness of `loopweave.backends.arm_harness`; each call runs it under
`qemu-aarch64` (`runners.QemuUserRunner`). int8 multiply-accumulate nests use NEON widening
multiply-accumulates (`vmlal_n_s16`, see `loopweave.backends.arm_mac`); `idioms=False` gives the
plain C (still auto-vectorized by gcc). `#pragma omp simd` hints are honoured
(`-fopenmp-simd`); parallel loops run serially (QEMU user mode runs one host thread per guest
thread anyway).

Options: `runner=` another `Runner` (an ssh runner for a board), `cpu=` the QEMU CPU model (e.g.
"cortex-a53"), `idioms=`.
"""

from __future__ import annotations

import shutil

from loopweave.backends import simd
from loopweave.backends.arm_harness import (
    MALLOC_ARENA,
    HarnessInvoker,
    build_program,
    harness_source,
)
from loopweave.backends.arm_mac import ArmCBackend
from loopweave.backends.runners import QemuUserRunner, check_options
from loopweave.ir.kernel import KernelIR
from loopweave.ir.loops import Node
from loopweave.passes.default_arm import arm_default_schedule
from loopweave.passes.schedule import Schedule
from loopweave.targets import Target

CC = "aarch64-linux-gnu-gcc"
DEFAULT_CFLAGS = ("-O3", "-march=armv8-a")
OPTIONS = ("runner", "idioms", "cpu")


def make_target(name: str, cc: str | None, cflags: tuple[str, ...] | None,
                options: dict) -> Target:
    """AArch64 Linux: aarch64-linux-gnu-gcc, a static binary run by qemu-aarch64 (or `runner=`)."""
    check_options(name, options, OPTIONS)
    # -ffp-contract=fast: a * b + c may be one FMLA (ISO C99 mode turns contraction off, which
    # doubles a register tile's instructions), as on the host.
    flags = (*(cflags if cflags is not None else DEFAULT_CFLAGS), "-std=c99", "-fwrapv",
             "-ffp-contract=fast", "-fopenmp-simd")
    return Target(name, "neon", cc or CC, flags,
                  "aarch64 with NEON, a static binary run under qemu-aarch64", dict(options))


def default_schedule(kernel: KernelIR, target: Target) -> Schedule:
    """The schedule `compile()` uses without one: `passes/default_arm.py`'s for this core."""
    return arm_default_schedule(kernel, "aarch64")


def render(kernel: KernelIR, loops: Node, target: Target) -> str:
    """C source with NEON intrinsics of a scheduled kernel."""
    isa = simd.isa_for(target.cc, target.cflags) if shutil.which(target.cc) else None
    return ArmCBackend(kernel, "aarch64", target.options.get("idioms", True), isa).render(loops)


def load(kernel: KernelIR, source: str, target: Target) -> HarnessInvoker:
    """Build kernel + harness into a static binary (cached) and run calls under QEMU."""
    runner = target.options.get("runner") or QemuUserRunner(cpu=target.options.get("cpu"))
    runner.check()
    program = build_program(source + harness_source(kernel, "int64_t", MALLOC_ARENA), {},
                            target.cc, target.cflags, ("-static", "-lm"))
    return HarnessInvoker(kernel, program, runner, target.name)
