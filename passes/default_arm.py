"""Default schedules of the Arm targets (`aarch64`, `cortex-m4`, `cortex-m55`): the CPU
heuristics of `passes/default.py` with each core's numbers (`TargetFacts`), chosen by counting
executed instructions under QEMU (`python -m benchmarks.arm_schedules`)."""

from __future__ import annotations

from loopweave.errors import ScheduleError
from loopweave.ir.kernel import KernelIR
from loopweave.passes.default import TargetFacts, schedule_for
from loopweave.passes.patterns import match_contraction
from loopweave.passes.schedule import Schedule

#: Per-core facts. aarch64: 32 128-bit NEON registers, threads. cortex-m55: 8 128-bit Helium
#: (MVE) registers. cortex-m4: no SIMD; 32 single-precision FPU registers (a 16-byte row of the
#: tile is 4 scalars). Neither microcontroller has threads or a data cache worth packing for,
#: except B for int8 matmul, packed transposed so that its dot-product tiles (Helium's VMLADAV,
#: the M4's SMLAD on 16-bit pairs) read both operands along k. The M4's int8 dot tile is a
#: block of 2x2 sub-tiles (what its core registers hold), large so that the block's set-up
#: is paid rarely; its B panel is 128 deep so that the widened copy stays 16 KiB.
#: A microcontroller's convolution weight packs (on its stack, of some hundred KB of RAM).
MCU_PACK_BYTES = 1 << 13
ARM_FACTS: dict[str, TargetFacts] = {
    "aarch64": TargetFacts("aarch64", 16, 32, True, (4, 16), (256, 256), (4, 16), (4, 16),
                           (4, 16)),
    "cortex-m55": TargetFacts("cortex-m55", 16, 8, False, (3, 8), None, (2, 8), (2, 8),
                              (3, 8), int8_dot=(2, 2, 256, 64), weight_pack_bytes=MCU_PACK_BYTES),
    "cortex-m4": TargetFacts("cortex-m4", 0, 32, False, (4, 4), None, (2, 8), (2, 8),
                             (2, 4), int8_dot=(8, 32, 128, 64), weight_pack_bytes=MCU_PACK_BYTES),
}

#: Cores whose int8 dot tiles also read A from a packed copy (its rows of the tile for one k
#: panel, packed before the loop over the tile's columns): the M4's renderer stores packed
#: int8 widened to 16-bit pairs (backends/arm_mac.WIDENED_PACKS), so that SMLAD takes both
#: operands as loaded, with no SXTB16.
PACKED_DOT_ROWS = frozenset({"cortex-m4"})


def arm_default_schedule(kernel: KernelIR, target_name: str) -> Schedule:
    """The default schedule of `kernel` on the Arm target `target_name`."""
    schedule = schedule_for(kernel, ARM_FACTS[target_name])
    if target_name in PACKED_DOT_ROWS:
        pack_dot_rows(kernel, schedule)
    return schedule


def pack_dot_rows(kernel: KernelIR, schedule: Schedule) -> None:
    """Add to `schedule` a packed copy of A for each contraction it gives a dot tile (the
    `dot_steps` form: B packed at i_o, the reduction innermost), where that stays legal."""
    loops = Schedule().placements(kernel)
    for s in kernel.statements:
        c = match_contraction(s, loops[s.name].names())
        if c is None or not _is_dot_tile(schedule, s.name, c):
            continue
        saved = list(schedule.steps)
        try:
            schedule.cache_read(s.name, c.a.tensor, f"{c.j}_o").apply(kernel)
        except ScheduleError:
            schedule.steps = saved


def _is_dot_tile(schedule: Schedule, statement: str, c) -> bool:
    """Whether `schedule` tiles `statement` as `dot_steps` does: its loops reordered to end in
    i, j, k and B packed at i_o."""
    ops = {(step.op, step.args[-3:] if step.op == "reorder" else step.args[:2])
           for step in schedule.steps if step.target == statement}
    return ("reorder", (c.i, c.j, c.k)) in ops and \
        ("cache_read", (c.b.tensor, f"{c.i}_o")) in ops
