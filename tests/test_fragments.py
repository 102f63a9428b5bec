"""ir/fragments: a block-level tile whose every element one thread owns lives in that thread's
registers (CUDA's default for f32/f64 contractions: 4 x 4 outputs per thread across the k
steps); a tile the threads share stays in shared memory. Numbers under the CUDA emulation, on
odd sizes; the register tile's indices must be constants for nvcc (no local memory)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from test_kernels import refs

import loopweave
from loopweave.ir.codegen import loop_ast
from loopweave.ir.launches import lower_launches
from loopweave.passes.gpu_default import STAGED_TILES, GpuTiles, default_gpu_schedule, gpu_schedule
from loopweave.pipeline import front_end
from loopweave.targets import GPU_FACTS

needs_nvcc = pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")

CUDA = GPU_FACTS["cuda"]


def launches(source: str, schedule):
    kernel = front_end(source)
    return lower_launches(loop_ast(schedule.apply(kernel)), kernel.name,
                          CUDA.shared_bytes).launches


def test_the_output_tile_of_the_default_contraction_is_in_registers():
    source = refs.KERNELS["matmul"].source()
    (launch,) = launches(source, default_gpu_schedule(front_end(source), CUDA))
    assert [b.name for b in launch.registers] == ["C_acc_reg"]
    assert [int(d.value) for d in launch.registers[0].shape] == [4, 5]  # 64 x 80 over 16 x 16
    assert sorted(b.name for b in launch.shared) == ["A_pack", "B_pack"]


def test_a_batch_dimension_of_one_element_needs_no_owner():
    source = refs.KERNELS["bmm"].source()
    (launch,) = launches(source, default_gpu_schedule(front_end(source), CUDA))
    assert [int(d.value) for d in launch.registers[0].shape] == [1, 4, 5]


def test_a_tile_whose_elements_threads_share_stays_in_shared_memory():
    """One output per thread (micro 1): the staged operand slices are read by many threads,
    and the register rule does not apply to them."""
    source = refs.KERNELS["matmul"].source()
    schedule = gpu_schedule(front_end(source), GpuTiles(threads_y=16, stage=True), CUDA)
    (launch,) = launches(source, schedule)
    assert not launch.registers and len(launch.shared) == 2


@pytest.mark.parametrize("name", ["matmul", "bmm", "gemm", "two_mm", "syrk", "trmm"])
def test_register_tiles_match_numpy(name):
    """The default (register tiles wherever the contraction takes STAGED_TILES) against the
    reference, on the suite's odd sizes, in the emulation with its real barriers."""
    case = refs.KERNELS[name]
    kernel = loopweave.compile(case.source(), "cuda", emulate=True, tuning_db=False)
    for sizes in case.sizes:
        args = case.make_inputs(sizes, 3)
        expected = case.expected(args)
        got = refs.results_of(case, args, kernel(*args.values()))
        for out, want in expected.items():
            err, ok = refs.compare(got[out], want, case.tol_scale)
            assert ok, f"{name} {sizes}: {out} differs by {err:g}"


@pytest.mark.parametrize("m, k, n", [(1, 1, 1), (63, 17, 65), (64, 16, 64), (129, 33, 70)])
def test_partial_and_whole_tiles(m, k, n):
    kernel = loopweave.compile(refs.KERNELS["matmul"].source(), "cuda", emulate=True,
                               tuning_db=False)
    rng = np.random.default_rng(m * k * n)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    np.testing.assert_allclose(kernel(a, b), a @ b, rtol=1e-4, atol=1e-4)


@needs_nvcc
def test_the_register_tile_does_not_spill():
    usage = loopweave.compile(refs.KERNELS["matmul"].source(), "cuda", arch="sm_90",
                              tuning_db=False).resource_usage["lw_matmul_k0"]
    assert usage["spill_stores"] == 0 and usage["spill_loads"] == 0
    assert usage["shared_bytes"] < CUDA.shared_bytes


def test_the_staged_tiles_are_the_planners_shape():
    assert (STAGED_TILES.threads_x * STAGED_TILES.micro,
            STAGED_TILES.threads_y * STAGED_TILES.micro) == (64, 64)
