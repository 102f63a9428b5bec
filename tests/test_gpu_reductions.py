"""Reductions across the threads of a block, and row kernels written as schedule steps.

`Schedule.interleave` deals a loop's iterations round-robin over threads; a reduction loop bound
to threadIdx.x keeps a partial result per thread that the block combines (CUDA: warp shuffles
and shared memory, checked through the emulation's real barriers; Triton: tl.sum / tl.max over
the lanes, under its interpreter). `gpu_schedule` fuses a row kernel (softmax, layernorm,
matrix-vector products) into one launch with a row per block; it is `compile()`'s default there.
"""

from __future__ import annotations

import os
import warnings

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported: no GPU here

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from test_gpu_schedule import assert_matches_reference, needs_triton  # noqa: E402
from test_kernels import refs  # noqa: E402

import loopweave  # noqa: E402
from loopweave.errors import ScheduleError  # noqa: E402
from loopweave.ir.codegen import loop_ast  # noqa: E402
from loopweave.ir.loops import to_text  # noqa: E402
from loopweave.passes.gpu_default import GpuTiles, gpu_schedule  # noqa: E402
from loopweave.pipeline import front_end  # noqa: E402
from loopweave.targets import GPU_FACTS  # noqa: E402

TARGETS = ["cuda", pytest.param("triton", marks=needs_triton)]


def build(source: str, target: str, schedule: loopweave.Schedule):
    options = {"emulate": True} if target == "cuda" else {}
    return loopweave.compile(source, target, schedule=schedule, tuning_db=False, **options)


def row_reduction(op: str, dtype: str) -> str:
    return f"kernel rowred(x: {dtype}[M, N]) -> s: {dtype}[M] {{\n  s[i] {op} x[i, j]\n}}"


def threads_reduce(lanes: int) -> loopweave.Schedule:
    return (loopweave.Schedule().reassociate("S1").interleave("S1", "j", lanes)
            .bind("S0,S1", "i", "blockIdx.x").bind("S1", "j_lane", "threadIdx.x"))


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("op, dtype", [("+=", "f32"), ("max=", "f32"), ("+=", "f16"),
                                       ("min=", "i32")])
def test_a_row_reduced_across_threads_matches_numpy(target, op, dtype):
    kernel = build(row_reduction(op, dtype), target, threads_reduce(64))
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((5, 131)) * 8).astype(np.dtype({"f32": "f4", "f16": "f2",
                                                              "i32": "i4"}[dtype]))
    want = {"+=": np.sum, "max=": np.max, "min=": np.min}[op](x.astype(np.float64), axis=1)
    got = kernel(x).astype(np.float64)
    tolerance = {"f32": 1e-4, "f16": 0.5, "i32": 0}[dtype]
    np.testing.assert_allclose(got, want, atol=tolerance, rtol=1e-3 if dtype == "f16" else 0)
    if target == "cuda":
        assert "lw_block_reduce<" in kernel.source
    else:
        assert "axis=0)" in kernel.source


def test_interleave_deals_iterations_round_robin():
    scheduled = threads_reduce(32).apply(front_end(row_reduction("+=", "f32")))
    text = to_text(loop_ast(scheduled))
    assert "x[c0, c1 + 32 * c2]" in text and "# threadIdx.x" in text


def test_reordering_an_interleaved_reduction_needs_reassociate():
    schedule = (loopweave.Schedule().interleave("S1", "j", 32)
                .bind("S1", "j_lane", "threadIdx.x"))
    with pytest.raises(ScheduleError, match="breaks the flow dependence on s"):
        schedule.apply(front_end(row_reduction("+=", "f32")))


def test_a_reduction_across_threads_needs_a_one_dimensional_block():
    source = ("kernel colsum(x: f32[B, M, N]) -> s: f32[B, M] {\n"
              "  s[b, i] += x[b, i, j]\n}")
    schedule = (loopweave.Schedule().reassociate("S1").tile("S1", i=4)
                .interleave("S1", "j", 32).bind("S0,S1", "b", "blockIdx.x")
                .bind("S1", "i_o", "blockIdx.y").bind("S1", "i", "threadIdx.y")
                .bind("S1", "j_lane", "threadIdx.x"))
    with pytest.raises(ScheduleError, match="needs a 1-D block"):
        build(source, "cuda", schedule)


@pytest.mark.parametrize("lanes", [48, 7])
def test_cuda_reduces_across_threads_that_are_not_whole_warps(lanes):
    """48 or 7 threads: one shared word per thread, combined in thread order (was refused)."""
    kernel = build(row_reduction("max=", "f32"), "cuda", threads_reduce(lanes))
    x = np.random.default_rng(4).standard_normal((5, 131)).astype(np.float32)
    np.testing.assert_array_equal(kernel(x), x.max(axis=1))
    assert "lw_block_reduce_n<2>(" in kernel.source and f"[{lanes}];" in kernel.source


ROW_KERNELS = {"softmax": {"N": 7, "D": 150}, "layernorm": {"N": 6, "D": 133},
               "mvt": {"N": 37}}


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", sorted(ROW_KERNELS))
def test_row_kernels_run_as_one_launch_with_a_row_per_block(name, target):
    case = refs.KERNELS[name]
    schedule = gpu_schedule(front_end(case.source()), GpuTiles(), GPU_FACTS[target])
    assert any(s.op == "interleave" for s in schedule.steps)
    kernel = build(case.source(), target, schedule)
    launches = kernel.source.count("__global__") if target == "cuda" else \
        kernel.source.count("@triton.jit")
    assert launches == 1, kernel.source
    assert_matches_reference(refs, case, ROW_KERNELS[name], 5, kernel, f"{name} on {target}")


def test_a_row_temporary_lives_in_device_memory_one_row_per_block():
    """softmax's e[i, j], local to a row once fused, has no constant shape: each block row
    keeps its copy in device memory (allocated by the launcher), not in shared memory."""
    case = refs.KERNELS["softmax"]
    schedule = gpu_schedule(front_end(case.source()), GpuTiles(), GPU_FACTS["cuda"])
    source = build(case.source(), "cuda", schedule).source
    assert "cudaMalloc((void **)&e" in source
    assert "__shared__ float e[" not in source


@pytest.mark.parametrize("name, cuda_steps, triton_steps", [
    ("softmax", True, True), ("gelu", True, True), ("matmul", True, True),
    ("bmm", True, True), ("qmm", True, True), ("attention", True, True)])
def test_compile_defaults_to_the_steps_where_they_write_the_planners_plan(name, cuda_steps,
                                                                          triton_steps):
    """Row and element-wise kernels get the step-written schedule by default, and so do
    contractions: dot tiles on Triton, shared-memory stages and per-thread register tiles of
    f32/f64 on CUDA (int8 and f16: WMMA, tests/test_cuda_mma.py); attention is FlashAttention-2 as
    steps on both (passes/gpu_online; on CUDA without dot, tests/test_cuda_online.py)."""
    for target, steps in (("cuda", cuda_steps), ("triton", triton_steps)):
        source = loopweave.compile(refs.KERNELS[name].source(), target, tuning_db=False,
                                   **({"emulate": True} if target == "cuda" else {})).source
        assert ("lowered from its schedule" in source) == steps, (name, target)
        if target == "triton" and name in ("matmul", "bmm"):
            # one launch: 64 x 64 tiles of C in a register from zero, a k step of 32 per tl.dot
            assert source.count("@triton.jit\ndef lw_") == 1
            assert "tl.dot(" in source and "tl.arange(0, 32)" in source
            assert "lw_acc_2 = tl.zeros([64, 64], dtype=tl.float32)\n" in source
        if target == "cuda" and name in ("matmul", "bmm"):
            # one launch: 16 x 16 threads, each with 4 x 4 outputs in registers across the
            # k steps (ir/fragments), A's and B's slices in shared memory
            assert source.count("__global__") == 1 and "__launch_bounds__(256)" in source
            assert "float C_acc_reg[" in source and "__shared__ float A_pack[" in source
            assert "__shared__ float C_acc" not in source


FULL_REDUCTIONS = {
    "sum": ("""kernel total(x: f32[N]) -> s: f32[] {
    s[] += x[i]
}""", lambda x: x.sum(dtype=np.float64)),
    "max": ("""kernel biggest(x: f32[N]) -> s: f32[] {
    s[] max= x[i] * 2.0
}""", lambda x: (2 * x).max()),
    "dot then scale": ("""kernel scaled(x: f32[N]) -> z: f32[N] {
    s[] += x[i] * x[i]
    z[i] = x[i] * s[]
}""", lambda x: x * (x.astype(np.float64) @ x)),
}


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", FULL_REDUCTIONS)
@pytest.mark.parametrize("n", [1, 1003])
def test_default_reduces_into_one_element_across_a_block(target, name, n):
    """The GPU default deals a 0-d reduction's loop over one block's threads (ThreadReduce),
    with no single-thread warning (a store outside any loop is no loss)."""
    source, reference = FULL_REDUCTIONS[name]
    options = {"emulate": True} if target == "cuda" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("error", loopweave.SequentialLoopWarning)
        kernel = loopweave.compile(source, target, tuning_db=False, **options)
    tree = str(kernel.ir.schedule)
    assert "threadIdx.x" in tree, tree
    x = np.random.default_rng(n).random(n, dtype=np.float32)
    np.testing.assert_allclose(kernel(x), reference(x), rtol=1e-5)


@pytest.mark.parametrize("name", ["linear_f16", "qmm_requant"])
def test_a_contractions_epilogue_shares_its_tiles_on_triton(name):
    """`Y[i, j] = f16(acc[i, j] + b[j])` after the contraction runs in the same tiles: one
    launch, the accumulator never reaching memory; numbers on odd sizes."""
    case = refs.KERNELS[name]
    kernel = loopweave.compile(case.source(), "triton", tuning_db=False)
    assert "lowered from its schedule" in kernel.source
    assert kernel.source.count("@triton.jit\ndef lw_") == 1 and "acc_ptr" not in kernel.source
    for sizes in case.sizes:
        args = case.make_inputs(sizes, 5)
        expected = case.expected(args)
        got = refs.results_of(case, args, kernel(*args.values()))
        for out, want in expected.items():
            assert refs.compare(got[out], want, case.tol_scale)[1], (name, sizes, out)
