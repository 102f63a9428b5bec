"""f32 GEMMs with few rows of C (a GEMV, a decoding step's or a small batch's layer) against
numpy and torch, side by side.

    .venv/bin/python -m benchmarks.skinny_gemm [--quick] [--threads N]

For each M x K x N: `compile()`'s default for matmul (examples/kernels/matmul.lw), which
chooses by the call's sizes (passes/few_rows.py: B streamed unpacked up to a tile's rows,
panels as wide as B up to 64 rows, the few-rows tile below 512), `numpy.matmul` (OpenBLAS) and
`torch.mm`. Every result is checked against numpy first. One thread unless --threads (numpy's
too, through threadpoolctl). The
machine is whatever this session has (printed); GB/s counts A, B and C once each.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from benchmarks.cli import bench_threads
from benchmarks.harness import Comparison, Work, measure
from benchmarks.machine import cpu_model, load_average

ROOT = Path(__file__).resolve().parents[1]
ROWS = [1, 4, 8, 16, 32, 64, 128]
SHAPES = [(m, 4096, 4096) for m in ROWS] + [(m, 1024, 1024) for m in ROWS] + [(5, 333, 1000)]
QUICK_SHAPES = [(1, 512, 512), (8, 512, 512), (32, 512, 512)]


def compare(m: int, k: int, n: int, repeats: int, torch) -> Comparison:
    import loopweave

    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    want = a @ b
    kernel = loopweave.compile((ROOT / "examples/kernels/matmul.lw").read_text(),
                               tuning_db=False)
    np.testing.assert_allclose(kernel(a, b), want, rtol=1e-4, atol=1e-4 * k)
    calls = {"loopweave": lambda: kernel(a, b), "numpy": lambda: a @ b}
    if torch is not None:
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        np.testing.assert_allclose(torch.mm(ta, tb).numpy(), want, rtol=1e-4, atol=1e-4 * k)
        calls["torch"] = lambda: torch.mm(ta, tb)
    timings = measure(calls, repeats=repeats)
    return Comparison("matmul f32, few rows", f"M={m}, K={k}, N={n}",
                      Work(flops=2.0 * m * n * k, bytes=4.0 * (m * k + k * n + m * n)),
                      timings, ())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small shapes, 3 samples")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch = bench_threads(args.threads)
    repeats = 3 if args.quick else 9
    print(f"# {cpu_model()}, {args.threads} thread(s), load {load_average()}\n")
    rows = []
    for m, k, n in QUICK_SHAPES if args.quick else SHAPES:
        rows.append((m, k, n, compare(m, k, n, repeats, torch)))
    print("| M x K x N | loopweave GFLOP/s | numpy GFLOP/s | torch GFLOP/s | vs numpy | vs torch |")
    print("|---|---:|---:|---:|---:|---:|")
    for m, k, n, c in rows:
        t = {name: timing.median for name, timing in c.timings.items()}
        flops = c.work.flops
        torch_cells = (f"{flops / t['torch'] / 1e9:.1f}", f"{c.ratio('loopweave', 'torch'):.2f}x") \
            if "torch" in t else ("-", "-")
        print(f"| {m} x {k} x {n} | {flops / t['loopweave'] / 1e9:.1f} | "
              f"{flops / t['numpy'] / 1e9:.1f} | {torch_cells[0]} | "
              f"{c.ratio('loopweave', 'numpy'):.2f}x | {torch_cells[1]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
