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

from loopweave.backends import cuda, triton_aot
from loopweave.errors import LoopweaveError
from loopweave.targets import Target

GPU_FEATURES = ("gpu_registers", "gpu_spill_bytes", "gpu_shared_bytes", "gpu_threads",
                "gpu_occupancy", "gpu_kernels")


#: Per-SM limits of the architectures the features are computed for (sm_90: H100/H200).
SM_LIMITS = {"warps": 64, "registers": 65536, "shared_bytes": 228 * 1024, "blocks": 32}

#: A launch in the generated CUDA launcher: its kernel and block shape (the last dim3 of
#: constants on the line; the grid's dim3 before it holds expressions).
_CUDA_LAUNCH = re.compile(r"LW_LAUNCH\((\w+), .*dim3\((\d+), (\d+), (\d+)\)")


def occupancy(registers: int, threads: int, shared_bytes: int,
              limits: dict[str, int] = SM_LIMITS) -> float:
    """Resident warps per SM over the maximum, for blocks of `threads` threads using
    `registers` per thread and `shared_bytes` per block (allocation granularity ignored)."""
    warps = max(1, math.ceil(threads / 32))
    blocks = min(limits["blocks"], limits["warps"] // warps)
    if registers:
        blocks = min(blocks, limits["registers"] // (registers * warps * 32))
    if shared_bytes:
        blocks = min(blocks, limits["shared_bytes"] // shared_bytes)
    return blocks * warps / limits["warps"]


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
            min(occupancy(r["registers"], r["threads"], r["shared_bytes"]) for r in rows),
            float(len(rows))]
