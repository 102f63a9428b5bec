"""LUT GEMV (T-MAC / LUT-GEMM) against loopweave's own f32 GEMV and numpy, one thread, batch 1.

    .venv/bin/python -m benchmarks.lut_gemm [--quick]

For each shape N x K (4096 x 4096 and 11008 x 4096, LLaMA-7B's square and MLP-up
projections) and weight widths 2 and 4 bits: random codes packed into bit planes
(examples/references/lut.py), the matrix they mean dequantized to f32, and
- loopweave f32 GEMV: `y[n] += A[n, k] * x[k]` (default CPU schedule) on the dequantized matrix;
- LUT 2-bit / 4-bit: examples/kernels/lut_table.lw then lut_gemv.lw, both in the timed call
  (the table is rebuilt for every x, as at inference);
- numpy f32 GEMV: `A @ x` (OpenBLAS, one thread when threadpoolctl is there).
Every result is checked first: the LUT result against the exact GEMV of the dequantized matrix
(its relative error, about 1.2% from the 7-bit tables, is printed; see docs/dsl.md), the GEMV
against numpy. GFLOP/s and GB/s count the f32 GEMV's work (2 N K, 4 N K bytes) for every
row. Issue 20's target: LUT at least 1.5x faster than loopweave's f32 GEMV. The machine is
shared: read the spread column.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

import loopweave
from benchmarks.harness import Comparison, Work, format_table, measure
from loopweave.examples import load_references

SHAPES = [(4096, 4096), (11008, 4096)]
GEMV = """kernel gemv(A: f32[N, K], x: f32[K]) -> y: f32[N] {
    y[n] += A[n, k] * x[k]
}"""


def _lut():
    refs = load_references()
    table = loopweave.compile(refs.KERNELS["lut_table"].source(), tuning_db=False)
    lookup = loopweave.compile(refs.KERNELS["lut_gemv"].source(), tuning_db=False)

    def run(x, W, scale):
        T, s = table(x)
        return lookup(T, s, W, scale)
    return run


def compare(n: int, k: int, repeats: int) -> Comparison:
    helpers = load_references().lut  # packing and dequantizing (examples/references/lut.py)
    r = np.random.default_rng(0)
    x = r.uniform(-1, 1, k).astype(np.float32)
    scale = r.uniform(0.01, 0.1, n).astype(np.float32)
    gemv = loopweave.compile(GEMV, tuning_db=False)
    calls, notes = {}, []
    for bits in (2, 4):
        q = r.integers(0, 2**bits, size=(n, k))
        W = helpers.pack_bit_planes(q, bits)
        dense = helpers.dequantize(q, bits, scale)  # the 4-bit one is kept for the GEMVs
        run = _lut()
        want = dense.astype(np.float64) @ x.astype(np.float64)
        rel = float(np.linalg.norm(run(x, W, scale) - want) / np.linalg.norm(want))
        if rel > 0.05:  # docs/dsl.md: about 1.2% from the 7-bit tables
            raise SystemExit(f"LUT {bits}-bit {n}x{k}: relative error {rel:g}")
        notes.append(f"LUT {bits}-bit relative error {rel:.4f}")
        calls[f"LUT {bits}-bit"] = (lambda run=run, W=W: run(x, W, scale))
    np.testing.assert_allclose(gemv(dense, x), dense @ x, rtol=1e-3, atol=1e-3)
    calls = {"loopweave f32 GEMV": lambda: gemv(dense, x), **calls,
             "numpy f32 GEMV": lambda: dense @ x}
    timings = measure(calls, repeats=repeats)
    return Comparison("lut_gemv", f"N={n}, K={k}", Work(flops=2.0 * n * k, bytes=4.0 * n * k),
                      timings, tuple(notes))


def _one_thread():
    try:
        from threadpoolctl import threadpool_limits  # optional
    except ImportError:
        return None
    return threadpool_limits(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 samples instead of 9")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # before the kernel loads libgomp
    limits = _one_thread()
    repeats = 3 if args.quick else 9
    for n, k in SHAPES:
        c = compare(n, k, repeats)
        print(format_table(c))
        base = c.timings["loopweave f32 GEMV"].median
        print("  LUT speedup over loopweave f32 GEMV: " + ", ".join(
            f"{name} {base / c.timings[name].median:.2f}x" for name in c.timings
            if name.startswith("LUT")) + "\n")
    del limits
    return 0


if __name__ == "__main__":
    sys.exit(main())
