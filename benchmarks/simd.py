"""Explicit SIMD against `#pragma omp simd`: the same schedule, rendered both ways.

    .venv/bin/python -m benchmarks.simd [--quick]

For each kernel and schedule (an explicit one that vectorizes the stride-1 loop, or the default
CPU schedule), builds of one loop nest timed side by side (benchmarks/harness.py), in pairs with
the same flags: `pragma256` (simd=False: gcc's auto-vectorizer with the OpenMP hint) against
`avx2` (intrinsics), both with -O3 -march=native -mno-avx512f; and, where the CPU has AVX-512F,
`pragma512` against `avx512`, both with -O3 -march=native. Every build is checked against numpy
before timing. One thread.
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
from pathlib import Path

import numpy as np

import loopweave
from benchmarks.harness import Comparison, Work, format_table, measure
from loopweave.examples import load_references

S = loopweave.Schedule
NATIVE = ("-O3", "-march=native")


def _mm(s):
    return Work(flops=2.0 * s["M"] * s["N"] * s["K"])


# (kernel, label, schedule (None: the default CPU schedule), sizes, work)
BENCHES = [
    ("matmul", "vectorize j", S().vectorize("C", "j"), {"M": 192, "K": 192, "N": 193}, _mm),
    ("matmul", "default", None, {"M": 256, "K": 256, "N": 257}, _mm),
    ("gemm", "vectorize j", S().vectorize("C", "j"), {"M": 192, "K": 192, "N": 193}, _mm),
    ("layernorm", "vectorize j", S().vectorize("xc", "j").vectorize("Y", "j"),
     {"N": 256, "D": 1023}, lambda s: Work(bytes=8.0 * s["N"] * s["D"])),
    ("softmax", "default", None, {"N": 256, "D": 1023},
     lambda s: Work(bytes=8.0 * s["N"] * s["D"])),
    ("jacobi_2d", "vectorize j", S().vectorize("A", "j").vectorize("B", "j"),
     {"N": 501, "T": 10}, lambda s: Work(flops=2 * 10 * 5.0 * (s["N"] - 2) ** 2)),
    ("conv2d", "vectorize x", S().vectorize("Y", "x"),
     {"N": 1, "C": 16, "H": 34, "W": 67, "K": 16, "R": 3, "S": 3},
     lambda s: Work(flops=2.0 * s["K"] * s["C"] * 9 * (s["H"] - 2) * (s["W"] - 2))),
    ("covariance", "vectorize j", S().vectorize("d", "j").vectorize("cov", "j"),
     {"N": 201, "M": 161}, lambda s: Work(flops=1.0 * s["M"] ** 2 * s["N"])),
]


def _has_avx512() -> bool:
    try:
        return "avx512f" in Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False


def _compile(src: str, schedule, cflags, simd: bool) -> loopweave.Kernel:
    extra = {"tuning_db": False} if "tuning_db" in inspect.signature(
        loopweave.compile).parameters else {}
    return loopweave.compile(src, schedule=schedule, cflags=cflags, simd=simd, **extra)


def _bound(kernel: loopweave.Kernel, args: tuple):
    return lambda: kernel(*args)


def run(quick: bool = False) -> list[Comparison]:
    refs = load_references()
    results = []
    no512 = (*NATIVE, "-mno-avx512f")
    variants = {"pragma256": (no512, False), "avx2": (no512, True)}
    if _has_avx512():
        variants.update({"pragma512": (NATIVE, False), "avx512": (NATIVE, True)})
    for name, label, schedule, sizes, work in BENCHES:
        case = refs.KERNELS[name]
        src = case.source()
        args = case.make_inputs(sizes, 0)
        expected = case.expected(args)
        calls = {}
        for variant, (cflags, simd) in variants.items():
            kernel = _compile(src, schedule, cflags, simd)
            copies = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in args.items()}
            got = refs.results_of(case, copies, kernel(*copies.values()))
            for out, want in expected.items():
                err, ok = refs.compare(got[out], want, tol_scale=case.tol_scale)
                if not ok:
                    raise SystemExit(f"{name} ({variant}): wrong result, error {err:g}")
            # inout kernels update their arguments in place; timing on them is fine
            calls[variant] = _bound(kernel, tuple(copies.values()))
        timings = measure(calls, repeats=3 if quick else 7)
        size = ", ".join(f"{k}={v}" for k, v in sizes.items())
        results.append(Comparison(f"{name} ({label})", size, work(sizes), timings))
    return results


_PAIRS = {"avx2": "pragma256", "avx512": "pragma512"}


def summary(results: list[Comparison]) -> str:
    """Median milliseconds of every build, and each intrinsics build against its pragma twin."""
    names = list(results[0].timings)
    pairs = [(n, p) for n, p in _PAIRS.items() if n in names]
    head = ["kernel (schedule)", *[f"{n} ms" for n in names],
            *[f"{n} vs {p}" for n, p in pairs]]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] *
                                                            (len(head) - 1)) + "|"]
    for c in results:
        row = [c.kernel, *[f"{c.timings[n].median * 1e3:.3f}" for n in names],
               *[f"{c.ratio(n, p):.2f}x" for n, p in pairs]]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 samples instead of 7")
    parser.add_argument("--tables", action="store_true", help="one table per kernel as well")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    results = run(args.quick)
    if args.tables:
        for c in results:
            print(format_table(c))
    print(summary(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
