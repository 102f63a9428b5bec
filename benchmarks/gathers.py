"""Gathers (indirect reads) against numpy and scipy, one thread.

    .venv/bin/python -m benchmarks.gathers [--quick]

- embedding: `out[i, d] = table[ids[i], d]` (examples/kernels/embedding.lw, default CPU
  schedule) against `np.take(table, ids, axis=0)`; both allocate their output (not zeroed:
  the kernel writes all of it), and loopweave again into a caller's `out=` array, with the
  default schedule and in program order (no schedule: plain loops, the compiler's own
  vectorization). Issue 20's target: at least 0.5x np.take.
- ELL SpMV: `y[i] += vals[i, k] * x[col[i, k]]` (examples/kernels/ell_spmv.lw) against numpy
  (`(vals * x[col]).sum(1)`) and scipy.sparse's CSR product on the same matrix.
Every result is checked against the reference before timing (the index check of each call is
inside the timed loopweave call). The machine is shared: read the spread column.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

import loopweave
from benchmarks.harness import Comparison, Work, format_table, measure
from loopweave.examples import load_references

EMBEDDING_SIZES = [{"V": 32000, "D": 256, "N": 4096}, {"V": 50000, "D": 64, "N": 16384},
                   {"V": 8192, "D": 1024, "N": 1024}]
ELL_SIZES = [{"M": 100000, "K": 16, "N": 100000}]


def _checked(case, kernel, args) -> None:
    got = load_references().results_of(case, args, kernel(*args.values()))
    for out, want in case.expected(args).items():
        err, ok = load_references().compare(got[out], want, case.tol_scale)
        if not ok:
            raise SystemExit(f"{case.name}: wrong result, error {err:g}")


def embedding(sizes: dict, repeats: int) -> Comparison:
    case = load_references().KERNELS["embedding"]
    kernel = loopweave.compile(case.source(), tuning_db=False)
    plain = loopweave.compile(case.source(), tuning_db=False, schedule=loopweave.Schedule())
    args = case.make_inputs(sizes, 0)
    _checked(case, kernel, args)
    _checked(case, plain, args)
    table, ids = args["table"], args["ids"]
    out = np.empty((sizes["N"], sizes["D"]), np.float32)
    timings = measure({"loopweave": lambda: kernel(table, ids),
                       "loopweave out=": lambda: kernel(table, ids, out=out),
                       "program order out=": lambda: plain(table, ids, out=out),
                       "np.take": lambda: np.take(table, ids, axis=0)}, repeats=repeats)
    moved = 4.0 * 2 * sizes["N"] * sizes["D"] + 4.0 * sizes["N"]  # rows in and out, the ids
    size = ", ".join(f"{k}={v}" for k, v in sizes.items())
    return Comparison("embedding", size, Work(bytes=moved), timings)


def ell_spmv(sizes: dict, repeats: int) -> Comparison:
    case = load_references().KERNELS["ell_spmv"]
    kernel = loopweave.compile(case.source(), tuning_db=False)
    args = case.make_inputs(sizes, 0)
    _checked(case, kernel, args)
    vals, col, x = args["vals"], args["col"], args["x"]
    calls = {"loopweave": lambda: kernel(vals, col, x),
             "numpy": lambda: (vals * x[col]).sum(axis=1)}
    try:
        import scipy.sparse  # an optional peer
    except ImportError:
        pass
    else:
        m, k = vals.shape
        csr = scipy.sparse.csr_matrix((vals.ravel(), col.ravel(), np.arange(0, m * k + 1, k)),
                                      shape=(m, sizes["N"]))
        calls["scipy CSR"] = lambda: csr @ x
    timings = measure(calls, repeats=repeats)
    nnz = sizes["M"] * sizes["K"]
    size = ", ".join(f"{k}={v}" for k, v in sizes.items())
    return Comparison("ell_spmv", size, Work(flops=2.0 * nnz, bytes=8.0 * nnz + 8.0 * sizes["M"]),
                      timings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 samples instead of 9")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # before the kernel loads libgomp
    repeats = 3 if args.quick else 9
    results = [embedding(s, repeats) for s in EMBEDDING_SIZES]
    results += [ell_spmv(s, repeats) for s in ELL_SIZES]
    for c in results:
        print(format_table(c))
    return 0


if __name__ == "__main__":
    sys.exit(main())
