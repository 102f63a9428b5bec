"""Registers, spills and shared memory of CUDA attention: FlashAttention-2 as steps (the default,
passes/gpu_online) next to the planner's kernels (`schedule=Schedule()`, backends/cuda_lower),
per arch, from `nvcc -cubin -Xptxas -v` (no GPU needed).

    .venv/bin/python -m benchmarks.cuda_online_resources [--arch sm_80 --arch sm_90]
"""

from __future__ import annotations

import argparse

import loopweave
from loopweave.backends import cuda
from loopweave.examples import load_references
from loopweave.passes.schedule import Schedule


def rows(arch: str) -> list[tuple[str, str, dict[str, int]]]:
    """(schedule, function, ptxas usage) of the example attention kernel for `arch`."""
    source = load_references().KERNELS["attention"].source()
    out = []
    for label, schedule in (("steps", None), ("planner", Schedule())):
        extra = {} if schedule is None else {"schedule": schedule}
        text = loopweave.compile(source, target="cuda", arch=arch, tuning_db=False,
                                 **extra).source
        for function, usage in sorted(cuda.parse_ptxas(cuda.nvcc_check(text, arch)).items()):
            out.append((label, function, usage))
    return out


def main(argv: list[str] | None = None) -> int:
    """Print the table, one row per generated function."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cuda_online_resources")
    parser.add_argument("--arch", action="append", help="sm_80, sm_90, ... (repeatable)")
    args = parser.parse_args(argv)
    print(f"{'arch':6} {'schedule':8} {'function':16} {'regs':>4} {'spill st/ld (B)':>15} "
          f"{'smem (B)':>8}")
    for arch in args.arch or ["sm_80", "sm_90"]:
        for label, function, u in rows(arch):
            spills = f"{u['spill_stores']}/{u['spill_loads']}"
            print(f"{arch:6} {label:8} {function:16} {u['registers']:4} {spills:>15} "
                  f"{u['shared_bytes']:8}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
