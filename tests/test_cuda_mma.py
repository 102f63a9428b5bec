"""CUDA tensor cores as a schedule step: a `dot` on cuda renders as WMMA (backends/cuda_wmma.py).

f16 and bf16 (f32 sums) and int8 (i32 sums) contractions get WMMA from the default schedule;
they run in the CUDA emulation (fibers per thread, a fragment per thread holding the whole
tile) and match a numpy reference that sums as the tensor cores do (products exact, sums in
k order in f32), bit for bit, at odd sizes; two legal schedules give different sources that
both match; illegal dots are ScheduleErrors naming the statement; nvcc compiles the kernels
for sm_80 and sm_90 into mma instructions.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest

import loopweave
from loopweave.backends import cuda
from loopweave.backends.cuda import facts_for_arch
from loopweave.driver import stages
from loopweave.errors import ScheduleError
from loopweave.passes.gpu_default import GpuTiles, default_gpu_schedule, gpu_schedule
from loopweave.pipeline import front_end, get_target

ROOT = Path(__file__).resolve().parent.parent
needs_cxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")
needs_nvcc = pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")

MATMUL = "kernel {name}(A: {t}[M, K], B: {t}[K, N]) -> C: f32[M, N] {{\n" \
         "    C[i, j] += f32(A[i, k]) * f32(B[k, j])\n}}\n"
HMM = MATMUL.format(name="hmm", t="f16")
BMM = MATMUL.format(name="bmm16", t="bf16")
QMM = (ROOT / "examples/kernels/qmm.lw").read_text()
LINEAR = (ROOT / "examples/kernels/linear_f16.lw").read_text()
SIZES = [(1, 1, 1), (17, 33, 9), (45, 70, 33), (64, 16, 64)]


def _bf16():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    return ml_dtypes.bfloat16


def _tensor_core_sum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b as WMMA sums it: each product exact in f32, added in k order in f32."""
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    acc = np.zeros((a.shape[0], b.shape[1]), np.float32)
    for k in range(a.shape[1]):
        acc = acc + np.outer(a32[:, k], b32[k, :])
    return acc


def _case(name: str, m: int, n: int, k: int):
    """(source, arguments, expected result) of one kernel at sizes m x n x k."""
    rng = np.random.default_rng(m * 10000 + n * 100 + k)
    if name == "qmm":
        a = rng.integers(-128, 128, (m, k)).astype(np.int8)
        b = rng.integers(-128, 128, (k, n)).astype(np.int8)
        return QMM, (a, b), (a.astype(np.int64) @ b.astype(np.int64)).astype(np.int32)
    if name == "linear_f16":
        x = rng.standard_normal((m, k)).astype(np.float16)
        w = rng.standard_normal((k, n)).astype(np.float16)
        bias = rng.standard_normal(n).astype(np.float16)
        y = (_tensor_core_sum(x, w) + bias.astype(np.float32)).astype(np.float16)
        return LINEAR, (x, w, bias), y
    t = np.float16 if name == "f16" else _bf16()
    a, b = (rng.standard_normal(s).astype(t) for s in ((m, k), (k, n)))
    return (HMM if name == "f16" else BMM), (a, b), _tensor_core_sum(a, b)


def _compile(source: str, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cuda.SequentialLoopWarning)
        return loopweave.compile(source, "cuda", emulate=True, tuning_db=False, **options)


@needs_cxx
@pytest.mark.parametrize("name", ["f16", "bf16", "qmm", "linear_f16"])
def test_default_schedule_runs_wmma_and_matches_numpy(name):
    source = _case(name, 1, 1, 1)[0]
    kernel = _compile(source)
    assert "nvcuda::wmma::mma_sync" in kernel.source
    for m, n, k in SIZES:
        _, args, expected = _case(name, m, n, k)
        got = kernel(*args)
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected, err_msg=f"{name} at {m}x{n}x{k}")


@needs_cxx
def test_two_schedules_give_different_sources_both_exact():
    facts = facts_for_arch("sm_90")
    ir = front_end(HMM)
    wide = default_gpu_schedule(ir, facts)
    narrow = gpu_schedule(ir, GpuTiles(threads_x=32, threads_y=16, depth=32, dot=True), facts)
    assert any(step.op == "dot" for step in narrow.steps)
    kernels = [_compile(HMM, schedule=s) for s in (wide, narrow)]
    assert kernels[0].source != kernels[1].source
    assert "lw_acc[4]" in kernels[0].source  # 64 x 64: 4 warps of 2 x 2 fragments
    assert "lw_acc[1]" in kernels[1].source  # 16 x 32: 2 warps of one fragment, 2 k steps
    for m, n, k in [(17, 33, 9), (45, 70, 33)]:
        _, args, expected = _case("f16", m, n, k)
        for kernel in kernels:
            np.testing.assert_array_equal(kernel(*args), expected)


def _dot_schedule(rows: int, cols: int, depth: int, stage: bool = True) -> loopweave.Schedule:
    s = loopweave.Schedule().tile("S1", i=rows, j=cols, k=depth)
    s.reorder("S1", "i_o", "j_o", "k_o", "i", "j", "k").dot("S1", "k")
    s.bind("S1", "i_o", "blockIdx.y").bind("S1", "j_o", "blockIdx.x")
    s.bind("S1", "i", "threadIdx.y").bind("S1", "j", "threadIdx.x").cache_write("S1", "k_o")
    if stage:
        s.cache_read("S1", "A", "i").cache_read("S1", "B", "i")
    return s


def test_a_tile_off_the_fragment_shape_is_refused():
    with pytest.raises(ScheduleError, match=r"dot on S1 \(line 2\).*48 x 24 x 16.*multiple"):
        stages(HMM, "cuda", schedule=_dot_schedule(48, 24, 16))


def test_a_type_the_arch_lacks_is_refused():
    with pytest.raises(ScheduleError, match=r"dot on S1 \(line 2\).*sm_75.*not bf16"):
        stages(BMM, "cuda", schedule=_dot_schedule(32, 32, 16), options={"arch": "sm_75"})
    assert "mma_sync" in stages(BMM, "cuda", schedule=_dot_schedule(32, 32, 16),
                                options={"arch": "sm_80"}).source


def test_operands_must_be_staged_in_shared_memory():
    with pytest.raises(ScheduleError, match="cache_read"):
        stages(HMM, "cuda", schedule=_dot_schedule(32, 32, 16, stage=False))


def test_int8_tiles_off_32_byte_boundaries_are_refused():
    with pytest.raises(ScheduleError, match=r"32-byte.*layout=\(1, 0\)"):
        stages(QMM, "cuda", schedule=_dot_schedule(32, 32, 16))


def test_default_keeps_the_planner_where_tensor_cores_cannot():
    assert default_gpu_schedule(front_end(QMM), facts_for_arch("sm_70")) is None
    assert default_gpu_schedule(front_end(QMM), facts_for_arch("sm_75")) is not None
    assert default_gpu_schedule(front_end(BMM), facts_for_arch("sm_75")) is None
    assert facts_for_arch("sm_90a").dot_types == ("f16", "bf16", "i8", "u8")


def _ptx_and_sass(source: str, arch: str, tmp: Path) -> tuple[str, str]:
    cu = tmp / f"k_{arch}.cu"
    cu.write_text(source)
    ptx, cubin = tmp / f"k_{arch}.ptx", tmp / f"k_{arch}.cubin"
    for flag, out in (("-ptx", ptx), ("-cubin", cubin)):
        subprocess.run(["nvcc", f"-arch={arch}", flag, "-o", str(out), str(cu)], check=True,
                       capture_output=True, text=True, timeout=600)
    cuobjdump = shutil.which("cuobjdump")
    if cuobjdump is None:
        triton = pytest.importorskip("triton")
        found = Path(triton.__file__).parent / "backends/nvidia/bin/cuobjdump"
        cuobjdump = str(found) if found.exists() else None
    sass = "" if cuobjdump is None else subprocess.run(
        [cuobjdump, "-sass", str(cubin)], capture_output=True, text=True, timeout=600).stdout
    return ptx.read_text(), sass


@needs_nvcc
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_nvcc_compiles_wmma_into_mma_instructions(arch, tmp_path):
    for source, sass_op in ((HMM, "HMMA"), (BMM, "HMMA"), (QMM, "IMMA"), (LINEAR, "HMMA")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            text = stages(source, "cuda", options={"arch": arch}).source
        messages = cuda.nvcc_check(text, arch)
        assert "warning" not in messages.lower(), messages
        usage = cuda.parse_ptxas(messages)
        assert all(u["spill_stores"] == 0 for u in usage.values()), usage
        ptx, sass = _ptx_and_sass(text, arch, tmp_path)
        assert re.search(r"\bwmma\.mma\.sync|\bmma\.sync", ptx), "no mma in the PTX"
        if sass:
            assert sass_op in sass, f"no {sass_op} in the SASS"


BATCHED = "kernel hbmm(A: f16[Bt, M, K], B: f16[Bt, K, N]) -> C: f32[Bt, M, N] {\n" \
          "    C[b, i, j] += f32(A[b, i, k]) * f32(B[b, k, j])\n}\n"
B_ROWS = "kernel hbt(A: f16[M, K], B: f16[N, K]) -> C: f32[M, N] {\n" \
         "    C[i, j] += f32(A[i, k]) * f32(B[j, k])\n}\n"
A_COLS = "kernel qat(A: i8[K, M], B: i8[K, N]) -> C: i32[M, N] {\n" \
         "    C[i, j] += i32(A[k, i]) * i32(B[k, j])\n}\n"


@needs_cxx
def test_batches_and_transposed_operands():
    """A batch on blockIdx.z (tiles of one batch in front), B stored [N, K] (col_major B
    fragments), int8 A stored [K, M] (staged k-fastest for 32-byte aligned fragments)."""
    rng = np.random.default_rng(7)
    m, n, k, batch = 17, 33, 20, 3
    kernel = _compile(BATCHED)
    a, b = (rng.standard_normal(s).astype(np.float16) for s in ((batch, m, k), (batch, k, n)))
    got = kernel(a, b)
    for x in range(batch):
        np.testing.assert_array_equal(got[x], _tensor_core_sum(a[x], b[x]))
    kernel = _compile(B_ROWS)
    assert "nvcuda::wmma::col_major" in kernel.source
    a, b = (rng.standard_normal(s).astype(np.float16) for s in ((m, k), (n, k)))
    np.testing.assert_array_equal(kernel(a, b), _tensor_core_sum(a, b.T))
    kernel = _compile(A_COLS)
    assert "mma_sync" in kernel.source
    a, b = (rng.integers(-128, 128, s).astype(np.int8) for s in ((k, m), (k, n)))
    np.testing.assert_array_equal(kernel(a, b), (a.T.astype(np.int64) @ b).astype(np.int32))


@needs_cxx
def test_the_tuner_space_offers_tensor_cores_for_the_targets_arch():
    """The cuda space reads the dot types of the target's arch: an f16 contraction's dot
    candidates on sm_80 are WMMA and exact; a bf16 one's are WMMA on sm_80 and plain bound
    loops on sm_75 (no bf16 tensor cores there)."""
    from loopweave.autotune.space import SearchSpace

    sizes = {"M": 17, "K": 33, "N": 9}
    space = SearchSpace(front_end(HMM), sizes, get_target("cuda", options={"arch": "sm_80",
                                                                            "emulate": True}),
                        base_options={"arch": "sm_80", "emulate": True})
    assert "gpu.dot" in {k.name for k in space.knobs}
    schedule, options = space.decode({**space.default(), "gpu.schedule": "steps",
                                      "gpu.dot": True, "gpu.threads_x": 32,
                                      "gpu.threads_y": 16, "gpu.depth": 16})
    kernel = _compile(HMM, schedule=schedule, arch=options["arch"])
    assert "nvcuda::wmma::mma_sync" in kernel.source
    _, args, expected = _case("f16", 17, 9, 33)
    np.testing.assert_array_equal(kernel(*args), expected)
    dot = {"gpu.schedule": "steps", "gpu.dot": True, "gpu.threads_x": 32, "gpu.threads_y": 16,
           "gpu.depth": 16}
    for arch, has_dot in (("sm_75", False), ("sm_80", True)):
        bf16 = SearchSpace(front_end(BMM), sizes, get_target("cuda", options={
            "arch": arch, "emulate": True}), base_options={"arch": arch, "emulate": True})
        steps, _ = bf16.decode({**bf16.default(), **dot})
        assert any(s.op == "dot" for s in steps.steps) == has_dot, arch
