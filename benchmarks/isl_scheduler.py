"""PolyBench/C 4.2 under isl's own scheduler (passes/isl_scheduler.py) next to loopweave's
default schedule, both over program order (the DSL kernel's identity schedule, gcc -O3
-march=native), with geometric means.

    python -m benchmarks.isl_scheduler                       # SMALL, every kernel
    python -m benchmarks.isl_scheduler --dataset MEDIUM gemm jacobi-2d

The calls are timed interleaved (benchmarks.harness.measure), `inout` arrays restored from a
pristine copy before each call (as benchmarks/polybench.py does), and each schedule's results
checked against program order's first. The parallel loops run on OpenMP's default thread count
(OMP_NUM_THREADS); program order has none.
"""

from __future__ import annotations

import argparse
import functools

from benchmarks import peers
from benchmarks.harness import geometric_mean
from benchmarks.polybench import differences, time_variants
from loopweave.examples import load_polybench_references
from loopweave.passes.isl_scheduler import isl_schedule

VARIANTS = ("program order", "default", "isl")


def variants(source: str, tile: int | None) -> dict[str, object]:
    """The kernel built three ways: program order, the default schedule, isl's schedule."""
    return {"program order": peers.compile_naive(source),
            "default": peers.compile_default(source),
            "isl": peers.loopweave.compile(source, schedule=functools.partial(isl_schedule,
                                                                               tile=tile))}


def run_one(name: str, dataset: str, tile: int | None, repeats: int) -> tuple[dict, list[str]]:
    """Median seconds per variant of one kernel, and check notes."""
    poly = load_polybench_references()
    case = poly.POLYBENCH[name]
    kernels = variants(case.source(), tile)
    args = case.make_inputs(case.datasets[dataset], 0)
    notes = differences(case, kernels, "program order", args, poly)
    return time_variants(case, kernels, args, repeats), notes


def table(rows: dict[str, dict], dataset: str) -> str:
    """Milliseconds per variant, speedups over program order, isl over default, geomeans."""
    lines = [f"PolyBench {dataset}: ms per call; speedups over program order (gcc -O3)",
             f"{'kernel':16s} {'program':>10s} {'default':>10s} {'isl':>10s} "
             f"{'default x':>10s} {'isl x':>8s} {'isl/def':>8s}"]
    ratios: dict[str, list[float]] = {"default": [], "isl": [], "isl/def": []}
    for name, t in rows.items():
        if t is None:
            lines.append(f"{name:16s} failed")
            continue
        d, i = t["program order"] / t["default"], t["program order"] / t["isl"]
        ratios["default"].append(d)
        ratios["isl"].append(i)
        ratios["isl/def"].append(t["default"] / t["isl"])
        lines.append(f"{name:16s} {t['program order'] * 1e3:10.3f} {t['default'] * 1e3:10.3f} "
                     f"{t['isl'] * 1e3:10.3f} {d:9.2f}x {i:7.2f}x {t['default'] / t['isl']:7.2f}x")
    gm = {k: geometric_mean(v) for k, v in ratios.items()}
    lines.append(f"{'geomean':16s} {'':32s} {gm['default']:9.2f}x {gm['isl']:7.2f}x "
                 f"{gm['isl/def']:7.2f}x")
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
