"""Where isl's time tiles start to win: the bound passes/isl_choice.TIME_TILE_BYTES (issue 18).

    .venv/bin/python -m benchmarks.time_tiles [--quick] [--threads N]

jacobi-2d and fdtd-2d (PolyBench), 100 time steps, and heat-3d, 20, at sizes whose data run
from one MiB to past the last-level cache: the heuristics' schedule (sweeps: rows in
parallel, a vector loop inside) against `Schedule().isl(ISL_TILE)` (isl's time tiles) and
`Schedule().isl(ROW_TILE, rows=True)` (row tiles: whole rows under time tiles), wall-time
medians of 5, alternating. The default takes the tiles above `time_tile_bound` (half the
last-level cache, at most 16 MiB; or the L2 per thread where the L3 is a big shared one;
printed); the "x" columns (sweeps' time over the tiles') show where that is right (for
heat-3d the default's tiles are the row tiles, on one thread only).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import loopweave
from benchmarks.machine import cpu_model, load_average
from loopweave.examples import load_polybench_references
from loopweave.passes.default import default_schedule
from loopweave.passes.isl_choice import ISL_TILE, ROW_TILE, footprint_bytes, time_tile_bound
from loopweave.passes.normalize import normalize
from loopweave.passes.schedule import Schedule
from loopweave.pipeline import front_end
from loopweave.targets import openmp_threads

SIZES = {"jacobi-2d": [{"N": n, "T": 100} for n in (250, 350, 500, 800, 1000, 1150, 1300)],
         "fdtd-2d": [{"NX": n, "NY": n + 200, "TMAX": 100}
                     for n in (150, 250, 400, 600, 800, 1000)],
         "heat-3d": [{"N": n, "T": 20} for n in (40, 60, 80, 100, 120)]}
QUICK = {"jacobi-2d": [{"N": 120, "T": 10}], "fdtd-2d": [{"NX": 90, "NY": 110, "TMAX": 10}],
         "heat-3d": [{"N": 20, "T": 4}]}


def main(argv: list[str] | None = None) -> int:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--threads", type=int, help="OpenMP threads (default: OMP_NUM_THREADS, "
                        "else every core)")
    opts = parser.parse_args(argv)
    if opts.threads is not None:  # before the first kernel starts OpenMP
        os.environ["OMP_NUM_THREADS"] = str(opts.threads)
    poly = load_polybench_references()
    threads = os.environ.get("OMP_NUM_THREADS", "all")
    bound = time_tile_bound(openmp_threads())
    print(f"# time tiles against sweeps, {threads} thread(s): {cpu_model()}, time tiles above "
          f"{bound / 2 ** 20:.1f} MiB, load average {load_average()}")
    print("| kernel | sizes | data MiB | sweeps ms | tiles ms | row tiles ms | tiles x | "
          "row tiles x | default takes |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for name, size_list in (QUICK if opts.quick else SIZES).items():
        case = poly.POLYBENCH[name]
        source = case.source()
        ir = normalize(front_end(source))
        kernels = {label: loopweave.compile(source, schedule=schedule, tuning_db=False,
                                            cost_model=False)
                   for label, schedule in (("sweeps", default_schedule(ir)),
                                           ("tiles", Schedule().isl(ISL_TILE)),
                                           ("row tiles", Schedule().isl(ROW_TILE, rows=True)))}
        for sizes in size_list:
            inputs = case.make_inputs(sizes, 0)
            times: dict[str, list[float]] = {label: [] for label in kernels}
            for kernel in kernels.values():  # the first call at new sizes builds or plans
                kernel(*(v.copy() if hasattr(v, "copy") else v for v in inputs.values()))
            for _ in range(2 if opts.quick else 5):
                for label, kernel in kernels.items():
                    args = {k: v.copy() if hasattr(v, "copy") else v for k, v in inputs.items()}
                    start = time.perf_counter()
                    kernel(*args.values())
                    times[label].append(time.perf_counter() - start)
            ms = {k: statistics.median(v) * 1e3 for k, v in times.items()}
            data = footprint_bytes(ir, sizes)
            chosen = "tiles" if data > bound else "sweeps"
            print(f"| {name} | {sizes} | {data / 2 ** 20:.1f} | {ms['sweeps']:.1f} | "
                  f"{ms['tiles']:.1f} | {ms['row tiles']:.1f} | "
                  f"{ms['sweeps'] / ms['tiles']:.2f}x | {ms['sweeps'] / ms['row tiles']:.2f}x | "
                  f"{chosen} |", flush=True)
    print(f"load average at end {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
