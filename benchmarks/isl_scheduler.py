"""PolyBench/C 4.2 under isl's own scheduler (passes/isl_scheduler.py) next to loopweave's
default schedule, both over program order (the DSL kernel's identity schedule, gcc -O3
-march=native), with geometric means.

    python -m benchmarks.isl_scheduler                       # SMALL, every kernel
    python -m benchmarks.isl_scheduler --dataset MEDIUM gemm jacobi-2d

The calls are timed interleaved (benchmarks.harness.measure), `inout` arrays restored from a
pristine copy before each call (as benchmarks/polybench.py does), and each schedule's results
checked against program order's first. The parallel loops run on OpenMP's default thread count
(OMP_NUM_THREADS); program order has none. Where clang-19 with Polly is installed (`make
bench-tools`), program order built by it with Polly (benchmarks/peers.py; -polly-parallel when
OMP_NUM_THREADS > 1) is a fourth column, with `lw/polly` = Polly's time over the default's.
"""

from __future__ import annotations

import argparse
import functools

from benchmarks import peers
from benchmarks.harness import geometric_mean
from benchmarks.polybench import differences, omp_threads, time_variants
from loopweave.errors import LoopweaveError
from loopweave.examples import load_polybench_references
from loopweave.passes.isl_scheduler import isl_schedule

VARIANTS = ("program order", "default", "isl", "polly")


def variants(source: str, tile: int | None) -> dict[str, object]:
    """The kernel built three ways: program order, the default schedule, isl's schedule; and
    program order by clang-19 with Polly where it is installed."""
    built = {"program order": peers.compile_naive(source),
             "default": peers.compile_default(source),
             "isl": peers.loopweave.compile(source, schedule=functools.partial(isl_schedule,
                                                                                tile=tile))}
    threads = omp_threads()
    if peers.polly_status(threads) is None:
        try:
            built["polly"] = peers.compile_polly(source, threads)
        except LoopweaveError as e:  # the other three are still worth a row
            print(f"polly: build failed ({str(e).splitlines()[0]}); omitted", flush=True)
    return built


def run_one(name: str, dataset: str, tile: int | None, repeats: int) -> tuple[dict, list[str]]:
    """Median seconds per variant of one kernel, and check notes."""
    poly = load_polybench_references()
    case = poly.POLYBENCH[name]
    kernels = variants(case.source(), tile)
    args = case.make_inputs(case.datasets[dataset], 0)
    notes = differences(case, kernels, "program order", args, poly, case.datasets[dataset])
    return time_variants(case, kernels, args, repeats), notes


def table(rows: dict[str, dict], dataset: str) -> str:
    """Milliseconds per variant, speedups over program order, isl over default, loopweave's
    default over Polly (where measured), geomeans."""
    polly = any(t is not None and "polly" in t for t in rows.values())
    names = [v for v in VARIANTS[1:] if polly or v != "polly"]
    ratio_names = [*(f"{v} x" for v in names), "isl/def", *(["lw/polly"] if polly else [])]
    lines = [f"PolyBench {dataset}: ms per call; speedups over program order (gcc -O3)",
             f"{'kernel':16s} {'program':>10s} " + " ".join(f"{v:>10s}" for v in names) + " "
             + " ".join(f"{r:>9s}" for r in ratio_names)]
    ratios: dict[str, list[float]] = {r: [] for r in ratio_names}
    for name, t in rows.items():
        if t is None:
            lines.append(f"{name:16s} failed")
            continue
        here = {f"{v} x": t["program order"] / t[v] for v in names if v in t}
        here["isl/def"] = t["default"] / t["isl"]
        if "polly" in t:
            here["lw/polly"] = t["polly"] / t["default"]
        for r, value in here.items():
            ratios[r].append(value)
        lines.append(f"{name:16s} {t['program order'] * 1e3:10.3f} "
                     + " ".join(f"{t[v] * 1e3:10.3f}" if v in t else f"{'-':>10s}"
                                for v in names) + " "
                     + " ".join(f"{here[r]:8.2f}x" if r in here else f"{'-':>9s}"
                                for r in ratio_names))
    gm = [geometric_mean(ratios[r]) for r in ratio_names]
    lines.append(f"{'geomean':16s} {'':10s} " + " ".join(f"{'':10s}" for _ in names) + " "
                 + " ".join(f"{g:8.2f}x" for g in gm))
    if not polly and peers.polly_status(omp_threads()) is not None:
        lines.append(peers.polly_status(omp_threads()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kernels", nargs="*", help="PolyBench kernels (default: all 30)")
    parser.add_argument("--dataset", default="SMALL", choices=("MINI", "SMALL", "MEDIUM", "LARGE"))
    parser.add_argument("--tile", type=int, default=32, help="isl_schedule's tile (0: none)")
    parser.add_argument("--repeats", type=int, default=5)
    opts = parser.parse_args(argv)
    names = opts.kernels or sorted(load_polybench_references().POLYBENCH)
    rows: dict[str, dict | None] = {}
    for name in names:
        try:
            rows[name], notes = run_one(name, opts.dataset, opts.tile or None, opts.repeats)
        except Exception as e:  # reported in the table, the run goes on
            print(f"{name}: failed: {type(e).__name__}: {str(e).splitlines()[0]}", flush=True)
            rows[name] = None
            continue
        for note in notes:
            print(f"{name}: {note}", flush=True)
        print(f"{name}: " + ", ".join(f"{k} {v * 1e3:.3f} ms" for k, v in rows[name].items()),
              flush=True)
    print(table(rows, opts.dataset))


if __name__ == "__main__":
    main()
