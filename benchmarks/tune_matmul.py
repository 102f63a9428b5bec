"""Tune fp32 matmul with `loopweave.tune()` and compare the best schedule with numpy (OpenBLAS).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tune_matmul.py [--size 1024 1024 1024]
        [--trials 200] [--db benchmarks/out/tune_matmul.sqlite]

Runs the sweep (continuing from the database), then times the best recorded schedule through
`loopweave.compile()` (which picks the record up by its key) against `numpy.matmul` on the same
inputs, in the same process. Set OMP_NUM_THREADS/OPENBLAS_NUM_THREADS for 1 or 2 threads.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MATMUL = (ROOT / "examples" / "kernels" / "matmul.lw").read_text()


def best_of(fn, repeats: int = 7) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", os.environ["OMP_NUM_THREADS"])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs=3, default=[1024, 1024, 1024],
                        metavar=("M", "K", "N"))
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--db", default=str(ROOT / "benchmarks" / "out" / "tune_matmul.sqlite"))
    args = parser.parse_args(argv)

    import numpy as np

    import loopweave

    m, k, n = args.size
    sizes = {"M": m, "K": k, "N": n}
    result = loopweave.tune(MATMUL, sizes, trials=args.trials, db=args.db,
                            timeout_s=args.timeout, repeats=3)
    if result.best is None:
        print("no correct schedule found", file=sys.stderr)
        return 1
    kernel = loopweave.compile(MATMUL, tuning_db=args.db)
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (m, k)).astype(np.float32)
    b = rng.uniform(-1, 1, (k, n)).astype(np.float32)
    np.testing.assert_allclose(kernel(a, b), a @ b, rtol=1e-3, atol=1e-3)
    flops = 2.0 * m * k * n
    ours = best_of(lambda: kernel(a, b))
    theirs = best_of(lambda: a @ b)
    print(f"matmul {m}x{k}x{n} threads={os.environ['OMP_NUM_THREADS']}: "
          f"loopweave {flops / ours / 1e9:.1f} GFLOP/s, numpy {flops / theirs / 1e9:.1f} GFLOP/s"
          f" ({theirs / ours:.2f}x numpy) after {len(result.measured)} new trials")
    print(f"schedule: {result.best.schedule}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
