"""Cost-model features of a GPU candidate from its compiled code: what the compiler made of it.

Without a GPU, a cuda or triton candidate cannot be timed, but its compile statistics are real:
registers and spills (ptxas for CUDA C; Triton's cubin), shared memory per block, threads per
block, and from those the theoretical occupancy on the target architecture. They are appended to
the schedule's features (autotune/features.py) for these targets:

    [max registers per thread, spill bytes (all kernels), max shared bytes per block,
     max threads per block, min occupancy (resident warps / max warps), kernels launched]
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from loopweave.backends import cuda, triton_aot
from loopweave.errors import LoopweaveError
from loopweave.targets import Target

GPU_FEATURES = ("gpu_registers", "gpu_spill_bytes", "gpu_shared_bytes", "gpu_threads",
                "gpu_occupancy", "gpu_kernels")


@dataclass(frozen=True)
class SmLimits:
    """Per-SM limits of one architecture, as the CUDA occupancy calculator uses them."""

    name: str
    max_warps: int
    max_blocks: int
    registers: int
    register_unit: int  # registers are allocated per warp, in units of this many
    shared_bytes: int
    shared_unit: int  # shared memory is allocated per block, in units of this many bytes
    shared_reserved: int  # bytes the CUDA runtime reserves per block (sm_80 and later)
    max_threads_per_block: int = 1024


SM90 = SmLimits("sm_90", max_warps=64, max_blocks=32, registers=65536, register_unit=256,
                shared_bytes=228 * 1024, shared_unit=128, shared_reserved=1024)


def occupancy(registers: int, threads: int, shared: int,
              sm: SmLimits = SM90) -> tuple[float, str]:
    """Resident warps / the SM's maximum, and what limits the resident blocks
    ("warps", "blocks", "regs", "smem", several joined by "+"); (0, why) if a block cannot run."""
    if threads < 1 or threads > sm.max_threads_per_block:
        return 0.0, f"{threads} threads per block"
    warps = math.ceil(threads / 32)
    per_warp = math.ceil(max(registers, 1) * 32 / sm.register_unit) * sm.register_unit
    block_shared = math.ceil((shared + sm.shared_reserved) / sm.shared_unit) * sm.shared_unit
    limits = {
        "warps": sm.max_warps // warps,
        "blocks": sm.max_blocks,
        "regs": (sm.registers // per_warp) // warps,
        "smem": sm.shared_bytes // block_shared,
    }
    blocks = min(limits.values())
    if blocks == 0:
        return 0.0, "+".join(k for k, v in limits.items() if v == 0)
    return blocks * warps / sm.max_warps, "+".join(k for k, v in limits.items() if v == blocks)


#: A launch in the generated CUDA launcher: its kernel and block shape (the last dim3 of
#: constants on the line; the grid's dim3 before it holds expressions).
_CUDA_LAUNCH = re.compile(r"LW_LAUNCH\((\w+), .*dim3\((\d+), (\d+), (\d+)\)")


def kernel_stats(target: Target, source: str, dsl_source: str,
                 kernel_name: str | None) -> dict[str, dict[str, int]]:
    """Per GPU function of a generated source: registers, spill_bytes, shared_bytes, threads."""
    if target.backend == "cuda":
        threads = {m.group(1): int(m.group(2)) * int(m.group(3)) * int(m.group(4))
                   for m in _CUDA_LAUNCH.finditer(source)}
        usage = cuda.resource_usage(source, target)
        return {name: {"registers": u["registers"],
                       "spill_bytes": u["spill_stores"] + u["spill_loads"],
                       "shared_bytes": u["shared_bytes"], "threads": threads.get(name, 1)}
                for name, u in usage.items()}
    stats = triton_aot.compile_stats(dsl_source, kernel_name, source)
    warps = {m.group(1): int(m.group(2)) for m in
             re.finditer(r"(\w+)\[grid\]\(.*num_warps=(\d+)", source)}
    for name, s in stats.items():
        s["threads"] = 32 * warps.get(name, s["threads"] // 32)
    return stats


def gpu_features(target: Target, source: str, dsl_source: str,
                 kernel_name: str | None) -> list[float]:
    """The GPU_FEATURES of a candidate; all -1 when the compilers are not here (nvcc for CUDA,
    Triton's AOT compile), so a model still sees a row of the same length."""
    try:
        stats = kernel_stats(target, source, dsl_source, kernel_name)
    except LoopweaveError:
        return [-1.0] * len(GPU_FEATURES)
    if not stats:
        return [0.0] * len(GPU_FEATURES)
    rows = list(stats.values())
    return [float(max(r["registers"] for r in rows)),
            float(sum(r["spill_bytes"] for r in rows)),
            float(max(r["shared_bytes"] for r in rows)),
            float(max(r["threads"] for r in rows)),
            min(occupancy(r["registers"], r["threads"], r["shared_bytes"])[0] for r in rows),
            float(len(rows))]
