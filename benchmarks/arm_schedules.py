"""Executed instructions of the Arm targets' default schedules against program order, under QEMU.

    .venv/bin/python -m benchmarks.arm_schedules [--quick] [--target aarch64 ...]

For f32 matmul 64x64x64, int8 matmul 64x64x64 and a small conv2d (examples/kernels/), each
built at the target's default flags (and int8 matmul on aarch64 with `+dotprod` too): the
instructions executed inside the kernel function (the TCG plugin of `benchmarks.arm_counts`,
identical run to run; qemu-aarch64 takes `-plugin` in user mode too) with the target's default
schedule (`compile()` without a schedule) and with program order
(`schedule=loopweave.Schedule()`: the loop nest as written; the int8 MAC idiom of
`backends/arm_mac.py` applies to both). Every result is checked against numpy. The goal of
issue [one-schedule] is a ratio default / program order of at most 0.35.
"""

from __future__ import annotations

import argparse
import sys

import loopweave
from benchmarks.arm_counts import counting_runner
from loopweave.examples import load_references

TARGETS = ("aarch64", "cortex-m4", "cortex-m55")
#: (label, example kernel, sizes, quick sizes)
CASES = (
    ("f32 matmul", "matmul", {"M": 64, "K": 64, "N": 64}, {"M": 7, "K": 5, "N": 19}),
    ("int8 matmul", "qmm", {"M": 64, "K": 64, "N": 64}, {"M": 7, "K": 5, "N": 19}),
    ("conv2d", "conv2d", {"N": 1, "C": 8, "H": 10, "W": 18, "K": 8, "R": 3, "S": 3},
     {"N": 1, "C": 2, "H": 5, "W": 9, "K": 3, "R": 3, "S": 2}),
)


def count(name: str, target: str, sizes: dict, schedule, cflags=None) -> int:
    """Instructions executed in the kernel function for one call; checks the result."""
    refs = load_references()
    case = refs.KERNELS[name]
    runner = counting_runner(target, f"lw_{name}")
    kernel = loopweave.compile(case.source(), target=target, schedule=schedule, runner=runner,
                               cflags=cflags, tuning_db=False)
    args = case.make_inputs(sizes, 0)
    got = refs.results_of(case, args, kernel(*args.values()))
    for out, want in case.expected(args).items():
        err, ok = refs.compare(got[out], want, case.tol_scale)
        if not ok:
            raise AssertionError(f"{name} on {target}: {out} differs from numpy by {err:g}")
    return runner.count


#: Extra rows: (label, kernel, target, compiler flags) — int8 matmul where the flags allow
#: aarch64's dot-product instructions (SDOT; the default flags are plain armv8-a).
WITH_FLAGS = (("int8 matmul +dotprod", "qmm", "aarch64", ("-O3", "-march=armv8.2-a+dotprod")),)


def rows(quick: bool = False, targets=TARGETS) -> list[tuple[str, ...]]:
    """One row per (kernel, target): sizes, program-order count, default count, ratio."""
    out = []
    runs = [(label, name, target, None, small if quick else sizes)
            for label, name, sizes, small in CASES for target in targets]
    cases = {name: (sizes, small) for _, name, sizes, small in CASES}
    runs += [(label, name, target, flags, cases[name][1 if quick else 0])
             for label, name, target, flags in WITH_FLAGS if target in targets]
    runs.sort(key=lambda run: [c[0] for c in CASES].index(run[0].split(" +")[0]))
    for label, name, target, flags, sizes in runs:
        naive = count(name, target, sizes, loopweave.Schedule(), flags)
        default = count(name, target, sizes, None, flags)
        out.append((label, " ".join(f"{k}={v}" for k, v in sizes.items()), target,
                    str(naive), str(default), f"{default / naive:.2f}x"))
    return out


def main(argv: list[str] | None = None) -> int:
    """Print the table of instruction counts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    parser.add_argument("--target", action="append", choices=TARGETS,
                        help="only these targets (repeatable)")
    args = parser.parse_args(argv)
    header = ("kernel", "sizes", "target", "program order", "default", "default/program")
    table = rows(args.quick, tuple(args.target or TARGETS))
    widths = [max(len(r[i]) for r in (header, *table)) for i in range(len(header))]
    for row in (header, tuple("-" * w for w in widths), *table):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
