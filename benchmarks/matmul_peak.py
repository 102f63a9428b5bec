"""Dense matmul against OpenBLAS and the FMA peak (issue 17), side by side in one run.

    .venv/bin/python -m benchmarks.matmul_peak [--quick] [--threads 1,2]

For each thread count a fresh process (OMP_NUM_THREADS and OPENBLAS_NUM_THREADS set before
either pool starts) times loopweave's default schedule and numpy's `A @ B` (OpenBLAS) on the
same arrays, in 7 rounds of one timed call each, in a shuffled order, each call after a pause
and a warm-up call: back-to-back calls would measure the stall of OpenBLAS's spinning threads
(`benchmarks.thread_pools`), not the kernels. f32 at 1024^3 and 2048^3, f64 at 1000^3 and
2000^3, checked first. GFLOP/s from the medians; `vs OpenBLAS` the median of the rounds'
ratios (`harness.paired_ratio`: the VM's drift between rounds stays out). The f32 FMA
peak of one core (benchmarks/machine.py) is measured in the same run; "of peak" is
loopweave's share of threads x that peak (f64: half of it). Issue 17's targets: at least
1.05x OpenBLAS, at least 80% of the peak on one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.harness import ORDER_SEED, paired_ratio
from benchmarks.machine import cpu_model, load_average, measure_peak_flops

ROOT = Path(__file__).resolve().parents[1]
CASES = [("f32", 1024), ("f32", 2048), ("f64", 1000), ("f64", 2000)]
QUICK_CASES = [("f32", 256), ("f64", 200)]


def child(cases: list[tuple[str, int]], repeats: int) -> list[dict]:
    """Time every case in this process (started by `main` per thread count)."""
    import numpy as np

    import loopweave

    rows = []
    for dtype, n in cases:
        kernel = loopweave.compile(
            f"kernel mm(A: {dtype}[M, K], B: {dtype}[K, N]) -> C: {dtype}[M, N] {{\n"
            f"    C[i, j] += A[i, k] * B[k, j]\n}}", tuning_db=False)
        rng = np.random.default_rng(0)
        a, b = (rng.random((n, n)).astype("float32" if dtype == "f32" else "float64")
                for _ in range(2))
        np.testing.assert_allclose(kernel(a, b), a @ b, rtol=1e-3 if dtype == "f32" else 1e-9)
        calls = {"loopweave": kernel, "openblas": np.matmul}
        times: dict[str, list[float]] = {name: [] for name in calls}
        order = random.Random(ORDER_SEED)
        for _ in range(repeats):
            for name in order.sample(list(calls), len(calls)):
                # Each call after a pause: OpenBLAS's threads spin for about 0.1 s after a
                # call and would take a core from loopweave's (benchmarks.thread_pools
                # measures that stall; this table measures the kernels).
                time.sleep(0.3)
                calls[name](a, b)
                start = time.perf_counter()
                calls[name](a, b)
                times[name].append(time.perf_counter() - start)
        flops = 2.0 * n ** 3
        rows.append({"dtype": dtype, "n": n,
                     "ratio": paired_ratio(times["loopweave"], times["openblas"]),
                     **{k: flops / statistics.median(v) / 1e9 for k, v in times.items()}})
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run each thread count in its own process and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    cases, repeats = (QUICK_CASES, 3) if opts.quick else (CASES, 7)
    if opts.child is not None:
        print(json.dumps(child(cases, repeats)))
        return 0
    peak, _ = measure_peak_flops(2_000_000 if opts.quick else 20_000_000)
    print(f"# matmul against OpenBLAS: {cpu_model()}, f32 FMA peak {peak / 1e9:.1f} GFLOP/s per "
          f"core, load average {load_average()}")
    print("| threads | dtype | size | loopweave GFLOP/s | OpenBLAS GFLOP/s | vs OpenBLAS "
          "| of peak |")
    print("|---:|---|---|---:|---:|---:|---:|")
    for threads in (int(t) for t in opts.threads.split(",")):
        env = {**os.environ, "OMP_NUM_THREADS": str(threads),
               "OPENBLAS_NUM_THREADS": str(threads)}
        run = subprocess.run([sys.executable, "-m", "benchmarks.matmul_peak", "--child",
                              str(threads), *(["--quick"] if opts.quick else [])],
                             env=env, cwd=ROOT, capture_output=True, text=True)
        if run.returncode != 0:
            print(f"| {threads} | failed: {run.stderr.strip().splitlines()[-1:]} |")
            continue
        for r in json.loads(run.stdout.strip().splitlines()[-1]):
            top = threads * peak / 1e9 / (2 if r["dtype"] == "f64" else 1)
            print(f"| {threads} | {r['dtype']} | {r['n']}^3 | {r['loopweave']:.1f} | "
                  f"{r['openblas']:.1f} | {r['ratio']:.2f}x | "
                  f"{r['loopweave'] / top:.0%} |", flush=True)
    print(f"load average at end {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
