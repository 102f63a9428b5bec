"""`python -m benchmarks [NAME ...] [--quick] [--threads N] ...` (also `make bench`).

NAME selects suite kernels (`matmul softmax`), PolyBench kernels (`gemm`, `polybench:gemm`), or
the groups `suite` and `polybench`; no name runs everything. A full run (no names, no --quick)
writes benchmarks/results.md and benchmarks/results.png; any other run writes them under
benchmarks/out/ (not committed) unless --out says where.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from benchmarks import peers
from benchmarks.harness import format_table
from benchmarks.machine import describe_machine, load_average
from benchmarks.report import compile_table, write_markdown, write_plot
from benchmarks.run import compile_times, run_kernel
from benchmarks.suite import SUITE

HERE = Path(__file__).resolve().parent


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    p.add_argument("names", nargs="*", help="kernels or groups (suite, polybench) to run")
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes and few repeats: a smoke test of the harness, not figures")
    p.add_argument("--threads", type=int, default=1, help="threads for every implementation")
    p.add_argument("--repeats", type=int, default=None, help="timed samples per implementation")
    p.add_argument("--dataset", default="MEDIUM",
                   help="PolyBench dataset for the speedup table (MINI, SMALL, MEDIUM, LARGE)")
    p.add_argument("--no-check", action="store_true", help="skip checking results")
    p.add_argument("--out", type=Path, default=None, help="directory for results.md/.png")
    return p


def select(names: list[str]) -> tuple[list[str], list[str]]:
    """(suite kernel names, PolyBench kernel names) that `names` select."""
    from benchmarks.polybench import POLYBENCH

    if not names:
        return list(SUITE), list(POLYBENCH)
    suite, poly = [], []
    for name in names:
        if name == "suite":
            suite += list(SUITE)
        elif name == "polybench":
            poly += list(POLYBENCH)
        elif name in SUITE:
            suite.append(name)
        elif name.removeprefix("polybench:") in POLYBENCH:
            poly.append(name.removeprefix("polybench:"))
        else:
            known = ", ".join([*SUITE, *POLYBENCH])
            raise SystemExit(f"unknown benchmark {name!r}; known: suite, polybench, {known}")
    return list(dict.fromkeys(suite)), list(dict.fromkeys(poly))


def main(argv: list[str] | None = None, env_notes: tuple[str, ...] = ()) -> int:
    """Run the selected benchmarks, print the tables, write results.md and results.png."""
    from benchmarks.polybench import polybench_markdown, run_polybench

    args = parser().parse_args(argv)
    suite_names, poly_names = select(args.names)
    repeats = args.repeats or (2 if args.quick else 7)
    full_run = not args.names and not args.quick
    out = args.out or (HERE if full_run else HERE / "out")
    limit_threads(args.threads)
    machine = describe_machine(args.threads, quick=args.quick)
    print(machine.describe(), flush=True)
    load_start = load_average()
    notes = [*env_notes, peers.tvm_status()]
    suite = []
    for name in suite_names:
        result = run_kernel(SUITE[name], quick=args.quick, threads=args.threads,
                            repeats=repeats, check=not args.no_check)
        print("\n" + format_table(result, machine.limits), flush=True)
        suite.append(result)
    times = compile_times(list(dict.fromkeys(SUITE[n].case for n in suite_names)))
    poly_rows = run_polybench(poly_names, "MINI" if args.quick else args.dataset,
                              repeats=repeats, check=not args.no_check) if poly_names else []
    poly_md = polybench_markdown(poly_rows) if poly_rows else ""
    load_end = load_average()
    busy = any(v != "unknown" and float(v) > machine.cores - 0.5 for v in (load_start, load_end))
    notes.append(f"load average (1 min): {load_start} at start, {load_end} at end, on "
                 f"{machine.cores} logical cores" + ("; other work shared the machine during "
                                                     "this run, so figures are noisy" if busy
                                                     else ""))
    command = "python -m benchmarks " + shlex.join(argv if argv is not None else sys.argv[1:])
    write_markdown(out / "results.md", command=command.strip(), machine=machine, suite=suite,
                   compile_times=times, polybench=poly_md, notes=notes)
    write_plot(out / "results.png", suite, {r.kernel: r.speedup for r in poly_rows})
    print("\n" + compile_table(times))
    if poly_md:
        print(poly_md)
    print(f"wrote {out / 'results.md'} and {out / 'results.png'}")
    return 0


def bench_threads(threads: int):
    """Set up a GEMM script's thread count before anything runs: OpenMP's (before the kernels
    load libgomp), numpy's BLAS (`limit_threads`) and torch's; torch, or None where it is not
    installed."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    limit_threads(threads)
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def limit_threads(threads: int) -> None:
    """Cap every thread pool already loaded (BLAS, OpenMP) at `threads` (threadpoolctl)."""
    try:
        import threadpoolctl
    except ImportError:
        return
    import numpy  # noqa: F401 - load BLAS so the limit applies to it

    # Kept alive for the whole run: the limit lasts as long as the controller object.
    limit_threads.controller = threadpoolctl.threadpool_limits(threads)
