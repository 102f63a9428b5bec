"""f16 and bf16 operands with f32 arithmetic: GEMMs whose A, B or both are stored narrow,
against the same GEMM in f32 and against torch, side by side.

    .venv/bin/python -m benchmarks.narrow_gemm [--quick] [--threads N] [--types f16 bf16]

For each shape M x K x N and narrow type t (f16, bf16), `C[i, j] += f32(A[i, k]) * f32(B[k, j])`
(casts only on the narrow operands) compiled with the default schedule:
- loopweave f32: both operands f32 (the register tile's own speed);
- loopweave A t / B t / A,B t: the converted operands packed as f32 once (A per row block, B per
  panel: passes/tile_recipes.py); with few rows of C (4 x 4096^2 here) B streams, read in
  place (a narrow B converted in registers), A packed converted per row tile and chunk of k;
  with one row (1 x 4096^2: a decoding step's GEMV) the tile is a row of vectors;
  bf16 on both sides is the AMX or AVX512-BF16 micro-kernel where the build has one
  (backends/x86_gemm.py: `benchmarks.lowp_gemm` compares its paths);
- torch f32: `torch.matmul` of f32 tensors; torch A.float() @ B: what a torch user writes for a
  narrow A (the conversion included); torch t @ t: `torch.matmul` of two narrow tensors (its
  result narrow too: oneDNN's AVX512-FP16/BF16 or AMX kernels where present).
Every result is checked against numpy in f64 first. One thread unless --threads. The machine
is whatever this session has (printed).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from benchmarks.cli import bench_threads
from benchmarks.harness import Comparison, Work, format_table, measure
from benchmarks.machine import cpu_model, load_average

SHAPES = [(512, 512, 512), (1024, 1024, 1024), (2048, 2048, 2048), (16, 4096, 4096),
          (4, 4096, 4096), (1, 4096, 4096)]
QUICK_SHAPES = [(256, 256, 256), (16, 1024, 1024)]


def source(a_type: str, b_type: str) -> str:
    a = "f32(A[i, k])" if a_type != "f32" else "A[i, k]"
    b = "f32(B[k, j])" if b_type != "f32" else "B[k, j]"
    return f"""kernel mm(A: {a_type}[M, K], B: {b_type}[K, N]) -> C: f32[M, N] {{
    C[i, j] += {a} * {b}
}}"""


def compare(narrow: str, m: int, k: int, n: int, repeats: int, torch) -> Comparison:
    import ml_dtypes

    import loopweave

    np_types = {"f32": np.float32, "f16": np.float16, "bf16": ml_dtypes.bfloat16}
    rng = np.random.default_rng(0)
    a32 = rng.standard_normal((m, k)).astype(np_types[narrow]).astype(np.float32)
    b32 = rng.standard_normal((k, n)).astype(np_types[narrow]).astype(np.float32)
    want = a32.astype(np.float64) @ b32.astype(np.float64)
    scale = np.abs(a32.astype(np.float64)) @ np.abs(b32.astype(np.float64))

    def check(got, rtol, what):
        if not np.all(np.abs(np.asarray(got, dtype=np.float64) - want) <= rtol * scale):
            raise SystemExit(f"{what} {m}x{k}x{n}: a result differs from numpy")

    calls = {}
    for label, a_type, b_type in [("f32", "f32", "f32"), (f"A {narrow}", narrow, "f32"),
                                  (f"B {narrow}", "f32", narrow),
                                  (f"A,B {narrow}", narrow, narrow)]:
        a, b = a32.astype(np_types[a_type]), b32.astype(np_types[b_type])
        kernel = loopweave.compile(source(a_type, b_type), tuning_db=False)
        check(kernel(a, b), 1e-5, f"loopweave {label}")
        calls[f"loopweave {label}"] = (lambda kernel=kernel, a=a, b=b: kernel(a, b))
    if torch is not None:
        torch_type = {"f16": torch.float16, "bf16": torch.bfloat16}[narrow]
        ta32, tb32 = torch.from_numpy(a32), torch.from_numpy(b32)
        ta, tb = ta32.to(torch_type), tb32.to(torch_type)
        check(torch.matmul(ta32, tb32).numpy(), 1e-5, "torch f32")
        check(torch.matmul(ta.float(), tb32).numpy(), 1e-5, "torch A.float() @ B")
        check(torch.matmul(ta, tb).float().numpy(), 2.0 ** -7, f"torch {narrow} @ {narrow}")
        calls["torch f32"] = lambda: torch.matmul(ta32, tb32)
        calls["torch A.float() @ B"] = lambda: torch.matmul(ta.float(), tb32)
        calls[f"torch {narrow} @ {narrow}"] = lambda: torch.matmul(ta, tb)
    timings = measure(calls, repeats=repeats)
    return Comparison(f"{narrow} operands, f32 arithmetic", f"M={m}, K={k}, N={n}",
                      Work(flops=2.0 * m * n * k, bytes=float(2 * (m * k + k * n) + 4 * m * n)),
                      timings, ())


def _shape(text: str) -> tuple[int, int, int]:
    """`MxKxN` as three positive integers."""
    parts = text.split("x")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"{text!r} is not MxKxN (e.g. 1x4096x4096)")
    return tuple(int(p) for p in parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small shapes, 3 samples")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--types", nargs="+", default=["f16", "bf16"], choices=["f16", "bf16"])
    parser.add_argument("--shapes", nargs="+", metavar="MxKxN", type=_shape,
                        help="these shapes instead of the default ones (e.g. 1x4096x4096)")
    args = parser.parse_args(argv)
    torch = bench_threads(args.threads)
    repeats = 3 if args.quick else 9
    print(f"# {cpu_model()}, {args.threads} thread(s), load {load_average()}\n")
    for narrow in args.types:
        for m, k, n in args.shapes or (QUICK_SHAPES if args.quick else SHAPES):
            c = compare(narrow, m, k, n, repeats, torch)
            print(format_table(c))
            print("  over loopweave f32: " + ", ".join(
                f"{name} {c.ratio(name, 'loopweave f32'):.2f}x" for name in c.timings
                if name.startswith("loopweave ") and name != "loopweave f32") + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
