"""MXFP8 and MXFP4 dequantize-and-multiply against torch, one thread.

    .venv/bin/python -m benchmarks.mx_matmul [--quick]

loopweave runs examples/kernels/mxfp8_matmul.lw (default CPU schedule): the f8e4m3 blocks of A
and B times their e8m0 scales (one per 32 elements along k) into f32 temporaries, then an f32
matmul. torch does the same in three calls on the same bytes (float8_e4m3fn and
float8_e8m0fnu tensors): `A.float() * SA.float().repeat_interleave(32, 1)`, likewise for B, then
`a @ b` (its BLAS). MXFP4 runs examples/kernels/mxfp4_matmul.lw: f32 activations X[M, K] times
weights W[N, K / 2] of f4e2m1 codes packed two a byte (low nibble first) with e8m0 scales
S[N, K / 32], as nn.Linear; torch unpacks the nibbles of the same bytes (`W & 15`, `W >> 4`),
decodes them through a 16-entry f32 table, scales them and calls `X @ w.T`. Both allocate
their output. Every result is checked against the numpy reference before timing; samples are
interleaved round-robin and the table shows medians. Issue 20's target: at least 1.0x torch.
`--parts` adds the f32 matmul alone (loopweave's matmul example, torch's BLAS): at the square
MXFP4 sizes it is nearly all of loopweave's time, at M=16 the decode into a K x N f32 temporary
is most of it. The machine is shared: read the spread column.
"""

from __future__ import annotations

import argparse
import os
import sys

import ml_dtypes
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


def torch_mxfp4_matmul(torch, X, W, S):
    """A zero-argument call: torch's unpack-decode-scale-matmul of MXFP4 weights (views of the
    same bytes), checked to give the reference's numbers by the caller."""
    n, k = W.shape[0], X.shape[1]
    tX, tW = torch.from_numpy(X), torch.from_numpy(W)
    tS = torch.from_numpy(S.view(np.uint8)).view(torch.float8_e8m0fnu)
    table = torch.from_numpy(np.arange(16, dtype=np.uint8).view(ml_dtypes.float4_e2m1fn)
                             .astype(np.float32))

    def run():
        codes = torch.stack((tW & 15, tW >> 4), dim=-1).view(n, k).long()
        w = table[codes] * tS.float().repeat_interleave(32, dim=1)[:, :k]
        return tX @ w.T
    return run


PEERS = {"mxfp8_matmul": torch_dequantize_matmul, "mxfp4_matmul": torch_mxfp4_matmul}


def matmul_parts(torch, X: np.ndarray, n: int) -> dict:
    """The f32 matmul alone, on a dense dequantized matrix: loopweave's matmul example
    (`X @ Wd`, Wd[K, N] as the MX kernels' temporaries) and torch's BLAS (`X @ w.T`)."""
    wd = np.random.default_rng(0).standard_normal((X.shape[1], n)).astype(np.float32)
    tX, tw = torch.from_numpy(X), torch.from_numpy(np.ascontiguousarray(wd.T))
    matmul = loopweave.compile(load_references().KERNELS["matmul"].source(), tuning_db=False)
    return {"loopweave matmul only": lambda: matmul(X, wd), "torch matmul only": lambda: tX @ tw.T}


def mx_matmul(sizes: dict, repeats: int, name: str = "mxfp8_matmul",
              parts: bool = False) -> Comparison:
    """loopweave's example `name` (mxfp8_matmul or mxfp4_matmul) against torch at `sizes`;
    `parts`: also the f32 matmul alone in each (an MXFP4 example's lower bound)."""
    import torch  # the peer; optional for the rest of loopweave

    torch.set_num_threads(1)
    refs = load_references()
    case = refs.KERNELS[name]
    kernel = loopweave.compile(case.source(), tuning_db=False)
    args = case.make_inputs(sizes, 0)
    want = next(iter(case.expected(args).values()))
    peer = PEERS[name](torch, *args.values())
    for impl, got in (("loopweave", kernel(*args.values())), ("torch", peer().numpy())):
        err, ok = refs.compare(got, want)
        if not ok:
            raise SystemExit(f"{case.name} {sizes}: {impl} is wrong, error {err:g}")
    values = list(args.values())
    callables = {"loopweave": lambda: kernel(*values), "torch": peer}
    if parts:
        callables.update(matmul_parts(torch, np.asarray(values[0], np.float32), sizes["N"]))
    timings = measure(callables, repeats=repeats)
    m, k, n = sizes["M"], sizes["K"], sizes["N"]
    size = ", ".join(f"{key}={v}" for key, v in sizes.items())
    if name == "mxfp4_matmul":  # f32 activations, half a byte a weight, a scale per block
        moved = 4.0 * m * k + k * n / 2 + 4.0 * m * n + n * -(-k // 32)
    else:
        moved = m * k + k * n + 4.0 * m * n + (m + n) * -(-k // 32)
    return Comparison(name, size, Work(flops=2.0 * m * n * k, bytes=moved), timings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 samples instead of 9, two sizes")
    parser.add_argument("--kernel", choices=sorted(PEERS), action="append",
                        help="only these examples (default: both)")
    parser.add_argument("--parts", action="store_true",
                        help="also time the f32 matmul alone (loopweave's and torch's)")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # before the kernel loads libgomp
    sizes = SIZES[:2] if args.quick else SIZES
    for name in args.kernel or PEERS:
        for c in (mx_matmul(s, 3 if args.quick else 9, name, args.parts) for s in sizes):
            print(format_table(c))
    return 0


if __name__ == "__main__":
    sys.exit(main())
