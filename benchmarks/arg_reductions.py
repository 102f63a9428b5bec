"""Arg-reductions against numpy, one thread, side by side.

    .venv/bin/python -m benchmarks.arg_reductions [--quick]

- argmax: `best[b] argmax= logits[b, v]` (the argmax statement of examples/kernels/argmax.lw,
  default CPU schedule: rows in parallel, the row loop in SIMD in chunks, backends/simd_arg.py)
  against `np.argmax(logits, axis=1)`, both into an output they allocate, and loopweave
  again into a caller's `out=` array; argmin likewise against `np.argmin`. Issue 20's target:
  at least 1.0x numpy.
- top-8: `idx[b, t] argmax= logits[b, v]; vals[b, t] = idx_best[b, t]` (examples/kernels/
  topk.lw) against `torch.topk(logits, 8, dim=1)` with `torch.set_num_threads(1)` (indices
  and values checked: random normal rows have no ties, where torch's order would be its own).
  Issue 20's target: at least 1.0x torch.topk.

Every result is checked against numpy before timing; interleaved samples, medians (the machine
is shared: read the spread column). OMP_NUM_THREADS=1 unless set.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

import loopweave
from benchmarks.harness import Comparison, Work, format_table, measure
from loopweave.examples import load_references

#: (rows, row length): greedy decoding over vocabularies, square-ish and short rows.
SIZES = [(64, 32000), (256, 50257), (4096, 1024), (16384, 256)]
KERNELS = {
    "argmax": "kernel argmax(logits: f32[B, V]) -> best: i64[B] {\n"
              "    best[b] argmax= logits[b, v]\n}\n",
    "argmin": "kernel argmin(logits: f32[B, V]) -> worst: i64[B] {\n"
              "    worst[b] argmin= logits[b, v]\n}\n",
}


def compare(name: str, rows: int, length: int, repeats: int) -> Comparison:
    """One arg-reduction over `rows` rows of `length` random f32 values."""
    kernel = loopweave.compile(KERNELS[name], tuning_db=False)
    peer = getattr(np, name)
    logits = np.random.default_rng(rows + length).standard_normal((rows, length),
                                                                  dtype=np.float32)
    want = peer(logits, axis=1)
    if not np.array_equal(kernel(logits), want):
        raise SystemExit(f"{name} {rows}x{length}: loopweave differs from numpy")
    out = np.empty(rows, np.int64)
    timings = measure({"loopweave": lambda: kernel(logits),
                       "loopweave out=": lambda: kernel(logits, out=out),
                       f"np.{name}": lambda: peer(logits, axis=1)}, repeats=repeats)
    return Comparison(name, f"{rows} x {length} f32", Work(bytes=4.0 * rows * length),
                      timings)


def topk(rows: int, length: int, repeats: int) -> Comparison | None:
    """Top-8 of `rows` rows of `length` random f32 values against torch.topk."""
    try:
        import torch  # an optional peer
    except ImportError:
        return None
    torch.set_num_threads(1)
    kernel = loopweave.compile(load_references().KERNELS["topk"].source(), tuning_db=False)
    logits = np.random.default_rng(rows + length).standard_normal((rows, length),
                                                                  dtype=np.float32)
    peer = torch.from_numpy(logits)
    vals, idx = kernel(logits)
    want_vals, want_idx = torch.topk(peer, 8, dim=1)
    if not (np.array_equal(vals, want_vals.numpy())
            and np.array_equal(idx, want_idx.numpy())):
        raise SystemExit(f"top-8 {rows}x{length}: loopweave differs from torch.topk")
    timings = measure({"loopweave": lambda: kernel(logits),
                       "torch.topk": lambda: torch.topk(peer, 8, dim=1)}, repeats=repeats)
    return Comparison("top-8", f"{rows} x {length} f32", Work(bytes=4.0 * rows * length),
                      timings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 samples and two sizes")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # before the kernel loads libgomp
    repeats, sizes = (3, SIZES[:1] + SIZES[-1:]) if args.quick else (9, SIZES)
    for name in KERNELS:
        for rows, length in sizes:
            print(format_table(compare(name, rows, length, repeats)))
    for rows, length in sizes:
        result = topk(rows, length, repeats)
        print(format_table(result) if result else "top-8: torch is not installed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
