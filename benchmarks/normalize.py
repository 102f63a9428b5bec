"""Issue [x86-peak] figures for normalization (passes/normalize.py): two spellings of attention
under the default schedule, before and after normalization, single thread, fp32, measured side
by side (harness.measure interleaves them).

    .venv/bin/python -m benchmarks.normalize [--quick]

- "factors inside": `P += Q * K * scale` and `O += W * V / z[l]` (the scale and the division
  inside the contractions);
- "factors outside": the same mathematics with the scale inside `exp` and the division after
  the sum;
- "before": the target's default schedule on the front end's IR, as compile() chose it before
  normalization ran (a schedule function, so the pipeline does not normalize).

Also layernorm (examples/kernels/layernorm.lw, 4096x1024), whose `/ D` inside its two row sums
normalization moves into the reads of the means.
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
from benchmarks.machine import cpu_model, load_average  # noqa: E402
from benchmarks.peers import compile_default  # noqa: E402
from loopweave.examples import load_references  # noqa: E402
from loopweave.pipeline import apply_schedule, default_schedule, get_target  # noqa: E402

FACTORS_INSIDE = """
kernel attention(Q: f32[LQ, D], K: f32[LK, D], V: f32[LK, DV], scale: f32) -> O: f32[LQ, DV] {
    P[l, s] += Q[l, e] * K[s, e] * scale
    m[l] max= P[l, s]
    W[l, s] = exp(P[l, s] - m[l])
    z[l] += W[l, s]
    O[l, e] += W[l, s] * V[s, e] / z[l]
}
"""

FACTORS_OUTSIDE = """
kernel attention(Q: f32[LQ, D], K: f32[LK, D], V: f32[LK, DV], scale: f32) -> O: f32[LQ, DV] {
    P[l, s] += Q[l, e] * K[s, e]
    m[l] max= P[l, s]
    W[l, s] = exp(scale * (P[l, s] - m[l]))
    z[l] += W[l, s]
    U[l, e] += W[l, s] * V[s, e]
    O[l, e] = U[l, e] / z[l]
}
"""


def compile_unnormalized(source: str) -> loopweave.Kernel:
    """The default schedule of the front end's IR, unnormalized (as before passes/normalize)."""
    target = get_target("cpu")

    def schedule(kernel_ir):
        return apply_schedule(kernel_ir, default_schedule(kernel_ir, target))
    return loopweave.compile(source, schedule=schedule)


def reference(q, k, v, scale):
    s = scale * (q @ k.T)
    e = np.exp(s - s.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)) @ v


def attention(lq: int, lk: int, d: int, repeats: int) -> Comparison:
    rng = np.random.default_rng(0)
    q = rng.standard_normal((lq, d), dtype=np.float32)
    k = rng.standard_normal((lk, d), dtype=np.float32)
    v = rng.standard_normal((lk, d), dtype=np.float32)
    scale = np.float32(1 / np.sqrt(d))
    kernels = {"factors inside, before": compile_unnormalized(FACTORS_INSIDE),
               "factors inside": compile_default(FACTORS_INSIDE),
               "factors outside, before": compile_unnormalized(FACTORS_OUTSIDE),
               "factors outside": compile_default(FACTORS_OUTSIDE)}
    want = reference(q, k, v, scale)
    for fn in kernels.values():
        np.testing.assert_allclose(fn(q, k, v, scale), want, rtol=1e-3, atol=1e-4)
    impls = {name: (lambda fn=fn: fn(q, k, v, scale)) for name, fn in kernels.items()}
    impls["numpy"] = lambda: reference(q, k, v, scale)
    timings = measure(impls, repeats=repeats)
    flops = 4.0 * lq * lk * d
    return Comparison("attention, two spellings", f"LQ={lq} LK={lk} D=DV={d}, fp32, 1 thread",
                      Work(flops=flops, bytes=4.0 * (2 * lq * d + 2 * lk * d)), timings)


def layernorm(rows: int, cols: int, repeats: int) -> Comparison:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, cols), dtype=np.float32)
    gamma = np.linspace(0.5, 1.5, cols, dtype=np.float32)
    beta = np.linspace(-1, 1, cols, dtype=np.float32)
    src = load_references().KERNELS["layernorm"].source()
    kernels = {"before": compile_unnormalized(src), "normalized": compile_default(src)}
    mean = x.mean(axis=1, keepdims=True)
    want = (x - mean) / np.sqrt(((x - mean) ** 2).mean(axis=1, keepdims=True) + 1e-5) * gamma \
        + beta
    for fn in kernels.values():
        np.testing.assert_allclose(fn(x, gamma, beta, 1e-5), want, rtol=1e-4, atol=1e-4)
    impls = {name: (lambda fn=fn: fn(x, gamma, beta, 1e-5)) for name, fn in kernels.items()}
    return Comparison("layernorm", f"{rows}x{cols}, fp32, 1 thread",
                      Work(flops=0.0, bytes=2.0 * 4 * rows * cols),
                      measure(impls, repeats=repeats))


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    lq, lk, d, repeats = (128, 129, 16, 3) if quick else (1024, 1024, 64, 7)
    print(f"machine: {cpu_model()}; load average before: {load_average()}\n")
    print(format_table(attention(lq, lk, d, repeats)))
    print(format_table(layernorm(*((64, 129) if quick else (4096, 1024)), repeats)))
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main(sys.argv[1:])
