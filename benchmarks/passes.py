"""Issue [passes] figures: the default schedule and a hand schedule against numpy, torch and the
naive loop nest, single thread, fp32, measured side by side (harness.measure interleaves them).

    .venv/bin/python -m benchmarks.passes [--quick]

matmul 1024^3 (GFLOP/s), softmax and layernorm 4096x1024 (GB/s of the input and output).
"""

from __future__ import annotations

import os
import sys

# One thread everywhere, before numpy/torch start their pools. The workplace may set
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE for old OpenBLAS builds; they slow a current numpy.
os.environ.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(var, None)

import numpy as np  # noqa: E402

import loopweave  # noqa: E402
from benchmarks.harness import Comparison, Work, format_table, measure  # noqa: E402
from benchmarks.machine import blas_info, cpu_model  # noqa: E402
from benchmarks.peers import compile_default, compile_naive, torch_module  # noqa: E402
from loopweave.examples import load_references  # noqa: E402


def _source(name: str) -> str:
    return load_references().KERNELS[name].source()


def hand_matmul_schedule() -> loopweave.Schedule:
    """The best hand schedule found: an 8x32 register tile, KC=512, NC=256 packed B panels."""
    return (loopweave.Schedule().tile("S1", i=8, j=32, k=512).tile("S1", j_o=8)
            .reorder("S1", "j_o_o", "k_o", "i_o", "j_o", "k", "i", "j")
            .cache_read("S1", "B", at="i_o").cache_write("S1", at="k"))


def matmul(n: int, repeats: int) -> Comparison:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    src = _source("matmul")
    default, naive = compile_default(src), compile_naive(src)
    hand = loopweave.compile(src, schedule=hand_matmul_schedule())
    for k in (default, hand, naive):
        np.testing.assert_allclose(k(a, b), a @ b, rtol=2e-3, atol=2e-3)
    torch = torch_module(1)
    impls = {"numpy": lambda: a @ b, "loopweave default": lambda: default(a, b),
             "loopweave hand": lambda: hand(a, b), "naive C": lambda: naive(a, b)}
    if torch is not None:
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        impls["torch"] = lambda: ta @ tb
    timings = measure(impls, repeats=repeats)
    return Comparison("matmul", f"M=K=N={n}, fp32, 1 thread", Work(flops=2.0 * n**3,
                      bytes=3.0 * 4 * n * n), timings)


def _row_kernel(name: str, rows: int, cols: int, repeats: int, numpy_fn, torch_fn,
                extra_args=()) -> Comparison:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, cols), dtype=np.float32)
    args = (x, *extra_args)
    src = _source(name)
    default, naive = compile_default(src), compile_naive(src)
    want = numpy_fn(*args)
    for k in (default, naive):
        np.testing.assert_allclose(k(*args), want, rtol=1e-4, atol=1e-5)
    impls = {"numpy": lambda: numpy_fn(*args), "loopweave default": lambda: default(*args),
             "naive C": lambda: naive(*args)}
    torch = torch_module(1)
    if torch is not None:
        targs = tuple(torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in args)
        impls["torch"] = lambda: torch_fn(torch, *targs)
    timings = measure(impls, repeats=repeats)
    return Comparison(name, f"{rows}x{cols}, fp32, 1 thread",
                      Work(flops=0.0, bytes=2.0 * 4 * rows * cols), timings)


def _softmax_np(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _layernorm_np(x, gamma, beta, eps):
    mean = x.mean(axis=1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    n, rows, repeats = (256, 256, 3) if quick else (1024, 4096, 7)
    print(f"machine: {cpu_model()}; numpy BLAS: {blas_info()}\n")
    print(format_table(matmul(n, repeats)))
    print(format_table(_row_kernel("softmax", rows, 1024, repeats, _softmax_np,
                                   lambda t, x: t.softmax(x, dim=1))))
    gamma = np.linspace(0.5, 1.5, 1024, dtype=np.float32)
    beta = np.linspace(-1, 1, 1024, dtype=np.float32)
    print(format_table(_row_kernel(
        "layernorm", rows, 1024, repeats, _layernorm_np,
        lambda t, x, g, b, eps: t.nn.functional.layer_norm(x, (1024,), g, b, eps),
        extra_args=(gamma, beta, 1e-5))))


if __name__ == "__main__":
    main(sys.argv[1:])
