"""int8 and bf16 GEMMs on x86: each micro-kernel path against torch, side by side.

    .venv/bin/python -m benchmarks.lowp_gemm [--quick] [--threads N] [--aligned]

For each shape M x K x N (square ones, and M = 16, 64 and 256 rows of K = N = 4096: an LLM
layer's GEMM at decoding and on short prompts):
- int8 (int32 results), loopweave AMX / AVX512-VNNI / loops: examples/kernels/qmm.lw with the
  default schedule, built with `-march=native` (AMX where the processor has it), without AMX
  (`-mno-amx-*`: the AVX-512 path), without AVX-512 (the AVX2 path) and without a micro-kernel
  (the scheduled loops), each only where this processor can run it (backends/x86_gemm.py);
  torch._int_mm (oneDNN: AMX or VNNI);
- bf16 (f32 results), the same paths for `C[i, j] += f32(A[i, k]) * f32(B[k, j])` (AMX-BF16,
  AVX512-BF16); torch.matmul of bf16 tensors (oneDNN, bf16 results);
- one thread unless --threads;
- `--aligned`: the operands start on a 64-byte boundary, as torch's allocator gives its own
  tensors (numpy's arrays start 16 bytes into a line; AMX then reads A through a packed copy,
  where it reads whole-line rows in place);
- qmm_requant (examples/kernels/qmm_requant.lw, its epilogue included) against the suite's torch
  peer (`torch._int_mm` + bias, fixed-point multiply, shift, clamp).
Every result is checked against numpy first (int8 exactly; bf16 within f32 rounding, torch's
within its bf16 rounding). GOP/s count a multiply-add as 2.
The machine is whatever this session has (printed); the spread column says how quiet it was.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from benchmarks.cli import bench_threads
from benchmarks.harness import Comparison, Work, format_table, measure
from benchmarks.machine import cpu_flags, cpu_model, load_average

ROOT = Path(__file__).resolve().parents[1]
SHAPES = [(512, 512, 512), (1024, 1024, 1024), (2048, 2048, 2048), (16, 4096, 4096),
          (64, 4096, 4096), (256, 4096, 4096)]
QUICK_SHAPES = [(256, 256, 256), (16, 1024, 1024)]
NO_AMX = ("-mno-amx-tile", "-mno-amx-int8", "-mno-amx-bf16")
#: operand type -> column -> (extra cflags, the /proc/cpuinfo flags it needs)
PATHS = {
    "i8": {"loopweave AMX": ((), {"amx_tile", "amx_int8"}),
           "loopweave AVX512-VNNI": (NO_AMX, {"avx512_vnni", "avx512bw"}),
           "loopweave AVX2": ((*NO_AMX, "-mno-avx512f", "-mno-avxvnni"), {"avx2"}),
           "loopweave loops": ((*NO_AMX, "-mno-avx2"), set())},
    "bf16": {"loopweave AMX": ((), {"amx_tile", "amx_bf16"}),
             "loopweave AVX512-BF16": (NO_AMX, {"avx512_bf16", "avx512bw"}),
             "loopweave loops": ((*NO_AMX, "-mno-avx512bf16"), set())}}
BF16_MM = """kernel bmm(A: bf16[M, K], B: bf16[K, N]) -> C: f32[M, N] {
    C[i, j] += f32(A[i, k]) * f32(B[k, j])
}"""
#: The scheduled loops run about 5 GOP/s: only where a call takes under a second or so.
LOOPS_MAX_OPS = 3e9


def line_aligned(x: np.ndarray) -> np.ndarray:
    """A copy of `x` whose data starts on a 64-byte boundary (as a call's own outputs)."""
    from loopweave.call_plan import new_array

    out = new_array(x.shape, x.dtype, zeroed=False)
    out[...] = x
    return out


def compare(kind: str, m: int, k: int, n: int, repeats: int, torch, aligned: bool = False
            ) -> Comparison:
    import loopweave

    rng = np.random.default_rng(0)
    if kind == "i8":
        source = (ROOT / "examples/kernels/qmm.lw").read_text()
        a = rng.integers(-128, 128, (m, k), dtype=np.int8)
        b = rng.integers(-128, 128, (k, n), dtype=np.int8)
        want = a.astype(np.int32) @ b.astype(np.int32)
    else:
        import ml_dtypes
        source = BF16_MM
        a = rng.standard_normal((m, k)).astype(ml_dtypes.bfloat16)
        b = rng.standard_normal((k, n)).astype(ml_dtypes.bfloat16)
        want = a.astype(np.float64) @ b.astype(np.float64)
    scale = np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64))
    if aligned:
        a, b = line_aligned(a), line_aligned(b)

    def check(got, rtol):
        if not np.all(np.abs(np.asarray(got, dtype=np.float64) - want) <= rtol * scale):
            raise SystemExit(f"{kind} {m}x{k}x{n}: a result differs from numpy")

    flags, calls = cpu_flags(), {}
    for name, (extra, needed) in PATHS[kind].items():
        if not needed <= flags or (name.endswith("loops") and 2.0 * m * n * k > LOOPS_MAX_OPS):
            continue
        kernel = loopweave.compile(source, cflags=["-O3", "-march=native", *extra],
                                   tuning_db=False)
        check(kernel(a, b), 0 if kind == "i8" else 1e-6 * k)
        calls[name] = (lambda kernel=kernel: kernel(a, b))
    if torch is not None:
        if kind == "i8":
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            check(torch._int_mm(ta, tb).numpy(), 0)
            calls["torch._int_mm"] = lambda: torch._int_mm(ta, tb)
        else:
            ta = torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
            tb = torch.from_numpy(b.view(np.int16)).view(torch.bfloat16)
            check(torch.matmul(ta, tb).float().numpy(), 2.0 ** -7)
            calls["torch.matmul"] = lambda: torch.matmul(ta, tb)
    timings = measure(calls, repeats=repeats)
    size = 1 if kind == "i8" else 2
    return Comparison(f"{kind} GEMM", f"M={m}, K={k}, N={n}",
                      Work(flops=2.0 * m * n * k, bytes=float(size * (m * k + k * n) + 4 * m * n)),
                      timings, ())


def compare_requant(size: int, repeats: int, torch) -> Comparison:
    import loopweave
    from benchmarks.suite import SUITE
    from loopweave.examples import load_references

    bench, case = SUITE["qmm_requant"], load_references().KERNELS["qmm_requant"]
    args = case.make_inputs({"M": size, "K": size, "N": size}, 0)
    kernel = loopweave.compile(case.source(), tuning_db=False)
    calls = {"loopweave default": lambda: kernel(*args.values())}
    want = bench.numpy(args)()
    np.testing.assert_array_equal(kernel(*args.values()), want)
    if torch is not None:
        peer = bench.torch(torch, args)
        np.testing.assert_array_equal(peer().numpy(), want)
        calls["torch peer"] = peer
    timings = measure(calls, repeats=repeats)
    return Comparison("qmm_requant", f"M=K=N={size}", Work(flops=2.0 * size ** 3,
                                                           bytes=3.0 * size * size), timings, ())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small shapes, 3 samples")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--aligned", action="store_true",
                        help="operands on 64-byte boundaries (as torch allocates)")
    args = parser.parse_args(argv)
    torch = bench_threads(args.threads)
    repeats = 3 if args.quick else 9
    print(f"# {cpu_model()}, {args.threads} thread(s), load {load_average()}"
          f"{', operands 64-byte aligned' if args.aligned else ''}\n")
    for kind in PATHS:
        for m, k, n in QUICK_SHAPES if args.quick else SHAPES:
            c = compare(kind, m, k, n, repeats, torch, args.aligned)
            print(format_table(c))
            peer = next((name for name in c.timings if name.startswith("torch")), None)
            if peer is not None:
                print("  over torch: " + ", ".join(
                    f"{name} {c.ratio(name, peer):.2f}x" for name in c.timings
                    if name.startswith("loopweave")) + "\n")
    c = compare_requant(256 if args.quick else 512, repeats, torch)
    print(format_table(c))
    return 0


if __name__ == "__main__":
    sys.exit(main())
