"""Default schedules of the Arm targets (`aarch64`, `cortex-m4`, `cortex-m55`): the CPU
heuristics of `passes/default.py` with each core's numbers (`TargetFacts`), chosen by counting
executed instructions under QEMU (`python -m benchmarks.arm_schedules`)."""

from __future__ import annotations

from loopweave.ir.kernel import KernelIR
from loopweave.passes.default import TargetFacts, schedule_for
from loopweave.passes.schedule import Schedule

#: Per-core facts. aarch64: 32 128-bit NEON registers, threads. cortex-m55: 8 128-bit Helium
#: (MVE) registers. cortex-m4: no SIMD; 32 single-precision FPU registers (a 16-byte row of the
#: tile is 4 scalars). Neither microcontroller has threads or a data cache worth packing for,
#: except B for int8 matmul, packed transposed so that its dot-product tiles (Helium's VMLADAV,
#: the M4's SMLAD on 4-byte words) read both operands along k.
ARM_FACTS: dict[str, TargetFacts] = {
    "aarch64": TargetFacts("aarch64", 16, 32, True, (4, 16), (256, 256), (4, 16), (4, 16),
                           (4, 16)),
    "cortex-m55": TargetFacts("cortex-m55", 16, 8, False, (3, 8), None, (2, 8), (2, 8),
                              (3, 8), int8_dot=(2, 2, 256, 64)),
    "cortex-m4": TargetFacts("cortex-m4", 0, 32, False, (4, 4), None, (2, 8), (2, 8),
                             (2, 4), int8_dot=(2, 2, 256, 64)),
}


def arm_default_schedule(kernel: KernelIR, target_name: str) -> Schedule:
    """The default schedule of `kernel` on the Arm target `target_name`."""
    return schedule_for(kernel, ARM_FACTS[target_name])
