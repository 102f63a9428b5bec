"""MXFP8 dequantize-and-multiply against torch, one thread.

    .venv/bin/python -m benchmarks.mx_matmul [--quick]

loopweave runs examples/kernels/mxfp8_matmul.lw (default CPU schedule): the f8e4m3 blocks of A
and B times their e8m0 scales (one per 32 elements along k) into f32 temporaries, then an f32
matmul. torch does the same in three calls on the same bytes (float8_e4m3fn and
float8_e8m0fnu tensors): `A.float() * SA.float().repeat_interleave(32, 1)`, likewise for B, then
`a @ b` (its BLAS). Both allocate their output. Every result is checked against the numpy
reference before timing; samples are interleaved round-robin and the table shows medians.
Issue 20's target: at least 1.0x torch. The machine is shared: read the spread column.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

import loopweave
from benchmarks.harness import Comparison, Work, format_table, measure
from loopweave.examples import load_references

SIZES = [{"M": 256, "K": 512, "N": 256}, {"M": 512, "K": 1024, "N": 512},
         {"M": 1024, "K": 1024, "N": 1024}, {"M": 16, "K": 4096, "N": 4096}]


def torch_dequantize_matmul(torch, A, SA, B, SB):
    """A zero-argument call: torch's dequantize-then-matmul of the MX operands (views of the
    same bytes), checked to give the reference's numbers by the caller."""
    k = A.shape[1]
    tA = torch.from_numpy(A.view(np.uint8)).view(torch.float8_e4m3fn)
    tB = torch.from_numpy(B.view(np.uint8)).view(torch.float8_e4m3fn)
    tSA = torch.from_numpy(SA.view(np.uint8)).view(torch.float8_e8m0fnu)
    tSB = torch.from_numpy(SB.view(np.uint8)).view(torch.float8_e8m0fnu)

    def run():
        a = tA.float() * tSA.float().repeat_interleave(32, dim=1)[:, :k]
        b = tB.float() * tSB.float().repeat_interleave(32, dim=0)[:k]
        return a @ b
    return run


def mx_matmul(sizes: dict, repeats: int) -> Comparison:
    import torch  # the peer; optional for the rest of loopweave

    torch.set_num_threads(1)
    refs = load_references()
    case = refs.KERNELS["mxfp8_matmul"]
    kernel = loopweave.compile(case.source(), tuning_db=False)
    args = case.make_inputs(sizes, 0)
    want = case.expected(args)["C"]
    peer = torch_dequantize_matmul(torch, *args.values())
    for name, got in (("loopweave", kernel(*args.values())), ("torch", peer().numpy())):
        err, ok = refs.compare(got, want)
        if not ok:
            raise SystemExit(f"mxfp8_matmul {sizes}: {name} is wrong, error {err:g}")
    values = list(args.values())
    timings = measure({"loopweave": lambda: kernel(*values), "torch": peer}, repeats=repeats)
    m, k, n = sizes["M"], sizes["K"], sizes["N"]
    size = ", ".join(f"{key}={v}" for key, v in sizes.items())
    moved = m * k + k * n + 4.0 * m * n + (m + n) * -(-k // 32)
    return Comparison("mxfp8_matmul", size, Work(flops=2.0 * m * n * k, bytes=moved), timings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 samples instead of 9, two sizes")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # before the kernel loads libgomp
    sizes = SIZES[:2] if args.quick else SIZES
    for c in (mx_matmul(s, 3 if args.quick else 9) for s in sizes):
        print(format_table(c))
    return 0


if __name__ == "__main__":
    sys.exit(main())
