"""CSR sparse products (ranges read from tensors) against scipy.sparse, one thread.

    .venv/bin/python -m benchmarks.sparse [--quick]

- CSR SpMV: `y[i] += vals[p] * x[col[p]] where p in row_ptr[i]:row_ptr[i + 1]`
  (examples/kernels/csr_spmv.lw, default CPU schedule: rows in parallel, the row's nonzeros
  in a loop whose bounds are read from row_ptr) against scipy.sparse's `csr_matrix @ x`.
- CSR SpMM: `Y[i, j] += vals[p] * B[col[p], j] where ...` (examples/kernels/csr_spmm.lw: j in
  SIMD inside the nonzero loop) against `csr_matrix @ B`.
Issue 20's target: at least 0.5x scipy.sparse. Both sides take the same arrays; loopweave's
timed call includes its per-call checks (the index and row_ptr values, vectorized). Every
result is checked against the numpy reference before timing. The machine is shared: read the
spread column. Without scipy the table has loopweave's rows only.
"""

from __future__ import annotations

import argparse
import os
import sys

import loopweave
from benchmarks.harness import Comparison, Work, format_table, measure
from loopweave.examples import load_references

SPMV_SIZES = [{"R": 100001, "NNZ": 1600000, "N": 100000}, {"R": 20001, "NNZ": 2000000,
                                                             "N": 20000}]
SPMM_SIZES = [{"R": 4097, "NNZ": 65536, "K": 4096, "N": 64},
              {"R": 16385, "NNZ": 262144, "K": 16384, "N": 16}]


def _checked(case, kernel, args) -> None:
    refs = load_references()
    got = refs.results_of(case, args, kernel(*args.values()))
    for out, want in case.expected(args).items():
        err, ok = refs.compare(got[out], want, case.tol_scale)
        if not ok:
            raise SystemExit(f"{case.name}: wrong result, error {err:g}")


def product(name: str, sizes: dict, repeats: int) -> Comparison:
    """One CSR product (`name`: csr_spmv or csr_spmm) at `sizes`, against scipy if present."""
    case = load_references().KERNELS[name]
    kernel = loopweave.compile(case.source(), tuning_db=False)
    args = case.make_inputs(sizes, 0)
    _checked(case, kernel, args)
    row_ptr, col, vals, dense = args["row_ptr"], args["col"], args["vals"], args[
        "x" if name == "csr_spmv" else "B"]
    calls = {"loopweave": lambda: kernel(row_ptr, col, vals, dense)}
    try:
        import scipy.sparse  # an optional peer
    except ImportError:
        print("scipy is not installed: no scipy.sparse row", file=sys.stderr)
    else:
        csr = scipy.sparse.csr_matrix((vals, col, row_ptr), shape=(len(row_ptr) - 1,
                                                                   dense.shape[0]))
        calls["scipy.sparse CSR"] = lambda: csr @ dense
    timings = measure(calls, repeats=repeats)
    width = 1 if dense.ndim == 1 else dense.shape[1]
    nnz, rows = sizes["NNZ"], sizes["R"] - 1
    moved = 8.0 * nnz + 4.0 * rows + 4.0 * width * (nnz + rows)  # vals, col, row_ptr, x/B, y
    size = ", ".join(f"{k}={v}" for k, v in sizes.items())
    return Comparison(name, size, Work(flops=2.0 * nnz * width, bytes=moved), timings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 samples instead of 9")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # before the kernel loads libgomp
    repeats = 3 if args.quick else 9
    results = [product("csr_spmv", s, repeats) for s in SPMV_SIZES]
    results += [product("csr_spmm", s, repeats) for s in SPMM_SIZES]
    for c in results:
        print(format_table(c))
    return 0


if __name__ == "__main__":
    sys.exit(main())
