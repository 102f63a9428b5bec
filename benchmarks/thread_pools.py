"""OpenMP wait settings against the OpenBLAS stall (issue 17), two threads, side by side.

    .venv/bin/python -m benchmarks.thread_pools [--quick] [--spins 0,3000,10000,300000]

Each setting runs in a fresh process (libgomp reads GOMP_SPINCOUNT once, when it is loaded):
"loopweave" is the spin count `loopweave.thread_pools` sets (SPIN_COUNT), the others are
GOMP_SPINCOUNT values given by hand (300000 is libgomp's default, 0 a passive wait). Per
setting, milliseconds per call, medians and 90th percentiles:

- gemm alone: f32 256^3, the default schedule, called back to back;
- gemm after numpy: the same call right after a numpy f64 300^3 matmul, whose OpenBLAS
  threads then spin for about 0.1 s (the stall: 3-15 ms instead of 0.4);
- gemm after torch: the same after torch's matmul on that array (torch's own OpenMP pool, a
  second libgomp that keeps its defaults; "nan" without torch);
- numpy alone, and numpy after gemm: that numpy matmul back to back, and right after a call of
  the gemm, whose OpenMP threads spin for a while after it (the stall the other way round);
- stencil: jacobi-2d N=250, 100 time steps per call: two parallel regions per step, so the cost
  of waking the team is paid 200 times a call (a passive wait loses here);
- gemm 1024^3 back to back, and the second call after 0.3 s idle: 13 parallel regions a
  call; on the project's KVM guests the scheduler wakes both threads on one vCPU after an
  idle spell, and each region then waits for a thread spinning beside its partner, unless the
  threads are placed on the cores (backends/c_threads.py; LOOPWEAVE_PIN_THREADS=0 in the
  environment compares without).

The settings run one after the other in one run; the machine is whatever this session has
(printed), with OMP_NUM_THREADS=2.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.machine import cpu_model, load_average

ROOT = Path(__file__).resolve().parents[1]
GEMM = """kernel gemm(A: f32[M, K], B: f32[K, N]) -> C: f32[M, N] {
  C[i, j] += A[i, k] * B[k, j]
}"""


def _ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1e3, ordered[int(0.9 * (len(ordered) - 1))] * 1e3


def child(calls: int) -> dict:
    """Measure in this process (run by `main` in a fresh one per setting)."""
    import numpy as np

    import loopweave
    from loopweave import thread_pools

    gemm = loopweave.compile(GEMM, target="cpu", tuning_db=False)
    jacobi = loopweave.compile((ROOT / "examples/kernels/jacobi_2d.lw").read_text(),
                               target="cpu", tuning_db=False)
    rng = np.random.default_rng(0)
    a, b = (rng.random((256, 256), dtype=np.float32) for _ in range(2))
    d = rng.random((300, 300))
    grid = rng.random((250, 250), dtype=np.float32)
    grid2 = grid.copy()
    np.testing.assert_allclose(gemm(a, b), a @ b, rtol=1e-4)

    def timed(call) -> float:
        start = time.perf_counter()
        call()
        return time.perf_counter() - start

    for _ in range(5):
        gemm(a, b)
        jacobi(grid, grid2, 100)
    alone = [timed(lambda: gemm(a, b)) for _ in range(calls)]
    after = []
    for _ in range(calls):
        d @ d
        after.append(timed(lambda: gemm(a, b)))
    numpy_alone = [timed(lambda: d @ d) for _ in range(calls)]
    numpy_after = []
    for _ in range(calls):
        gemm(a, b)
        numpy_after.append(timed(lambda: d @ d))
    stencil = [timed(lambda: jacobi(grid, grid2, 100)) for _ in range(max(5, calls // 4))]
    after_torch = [float("nan")]
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:  # torch's own OpenMP pool (a second libgomp) spins after its ops
        t = torch.from_numpy(d)
        after_torch = []
        for _ in range(calls):
            t @ t
            after_torch.append(timed(lambda: gemm(a, b)))
    big_a, big_b = (rng.random((1024, 1024), dtype=np.float32) for _ in range(2))
    gemm(big_a, big_b)
    big = [timed(lambda: gemm(big_a, big_b)) for _ in range(max(5, calls // 4))]
    idle = []
    for _ in range(max(5, calls // 4)):
        time.sleep(0.3)
        gemm(big_a, big_b)
        idle.append(timed(lambda: gemm(big_a, big_b)))
    return {"wait": thread_pools.openmp_wait(), "alone": _ms(alone), "after": _ms(after),
            "torch": _ms(after_torch), "numpy": _ms(numpy_alone),
            "numpy_after": _ms(numpy_after), "stencil": _ms(stencil), "big": _ms(big),
            "idle": _ms(idle)}


def main(argv: list[str] | None = None) -> int:
    """Run every setting in its own process and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few calls: a smoke test")
    parser.add_argument("--spins", default="0,3000,10000,30000,300000",
                        help="GOMP_SPINCOUNT values to compare with loopweave's setting")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    calls = 6 if opts.quick else 40
    if opts.child:
        print(json.dumps(child(calls)))
        return 0
    print(f"# OpenMP wait settings, 2 threads: {cpu_model()}, load average {load_average()}")
    print("| setting | gemm alone ms (p90) | gemm after numpy ms (p90) | gemm after torch ms (p90) "
          "| numpy alone ms (p90) | numpy after gemm ms (p90) "
          "| stencil ms (p90) | gemm 1024^3 ms (p90) | after 0.3 s idle ms (p90) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for spin in ["loopweave", *opts.spins.split(",")]:
        env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT",
                                                                "OMP_WAIT_POLICY")}
        env["OMP_NUM_THREADS"] = "2"
        if spin != "loopweave":
            env["GOMP_SPINCOUNT"] = spin.strip()
        run = subprocess.run([sys.executable, "-m", "benchmarks.thread_pools", "--child",
                              *(["--quick"] if opts.quick else [])], env=env, cwd=ROOT,
                             capture_output=True, text=True)
        if run.returncode != 0:
            print(f"| {spin} | failed: {run.stderr.strip().splitlines()[-1:]} | | | | | | | |")
            continue
        r = json.loads(run.stdout.strip().splitlines()[-1])
        cells = " | ".join(f"{r[k][0]:.3f} ({r[k][1]:.3f})" for k in (
            "alone", "after", "torch", "numpy", "numpy_after", "stencil", "big", "idle"))
        print(f"| {r['wait']} | {cells} |", flush=True)
    print(f"load average at end {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
