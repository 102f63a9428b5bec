"""The cuda target: generated .cu checked by nvcc (sm_80, sm_90, no warnings) and run on the CPU
through the emulation header (fiber threads, real barriers) against the numpy references.

No GPU here: calling a kernel without emulation must raise TargetError; running on a GPU is not
tested by this file on this machine (it runs the same calls when `gpu_missing()` is None).
"""

from __future__ import annotations

import ctypes
import shutil
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import islpy as isl
import numpy as np
import pytest
from test_kernels import refs

import loopweave
from loopweave.backends import cuda, cuda_isl
from loopweave.backends.cuda_lower import SHARED_LIMIT, Tiles, lower, shared_bytes
from loopweave.backends.cuda_render import CUDA_PRELUDE
from loopweave.driver import front_end, stages
from loopweave.errors import CompileError, TargetError

GOLDEN = Path(__file__).resolve().parent / "golden"


needs_nvcc = pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
needs_cxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")
SMALL_TILES = {"block_m": 16, "block_n": 16, "block_k": 4, "thread_m": 2, "thread_n": 2,
               "block_threads": 32}


def _compile(name: str, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cuda.SequentialLoopWarning)
        return loopweave.compile(refs.KERNELS[name].source(), target="cuda", emulate=True,
                                 **options)


@pytest.fixture(scope="module")
def emulated():
    """Every example kernel built for emulation, the g++ runs in parallel."""
    if shutil.which("g++") is None:
        pytest.skip("g++ not installed")
    with ThreadPoolExecutor(4) as pool:
        built = dict(zip(refs.KERNELS, pool.map(_compile, refs.KERNELS), strict=True))
    return built


def _check(case, kernel, sizes, seed):
    args = case.make_inputs(sizes, seed)
    expected = case.expected(args)
    got = refs.results_of(case, args, kernel(*args.values()))
    for out, want in expected.items():
        err, ok = refs.compare(got[out], want, case.tol_scale)
        assert ok, f"{case.name}[{out}] at {sizes}: error {err:g}"


CASES = [(name, i) for name, case in refs.KERNELS.items() for i in range(len(case.sizes))]


@pytest.mark.parametrize(("name", "size_index"), CASES)
def test_emulation_matches_numpy(emulated, name, size_index):
    case = refs.KERNELS[name]
    _check(case, emulated[name], case.sizes[size_index], 1000 + size_index)


MANY_BLOCKS = [("matmul", {"M": 37, "K": 29, "N": 45}), ("qmm", {"M": 19, "K": 23, "N": 35}),
               ("bmm", {"NB": 2, "M": 17, "K": 9, "N": 33}),
               ("syrk", {"N": 35, "M": 6}), ("linear_f16", {"M": 18, "K": 21, "N": 17}),
               ("conv2d", {"N": 1, "C": 2, "H": 12, "W": 21, "K": 17, "R": 3, "S": 2}),
               ("softmax", {"N": 3, "D": 77}),
               ("attention", {"LQ": 19, "LK": 37, "D": 5, "DV": 18})]


@needs_cxx
@pytest.mark.parametrize(("name", "sizes"), MANY_BLOCKS)
def test_small_tiles_many_blocks(name, sizes):
    """Tiles much smaller than the sizes: many blocks, many K tiles, partial tiles at the edges."""
    _check(refs.KERNELS[name], _compile(name, **SMALL_TILES), sizes, 7)


def test_kernel_shapes_in_the_source():
    """Shared-memory tiles and barriers for matmul, warp shuffles for softmax, dp4a for int8,
    half types for f16, host loops for time steps."""
    def source(name, schedule=None, **options):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            text = stages(refs.KERNELS[name].source(), "cuda", schedule=schedule,
                          options=options).source
        return text[text.index('extern "C" __global__'):]  # the kernels, not the prelude

    matmul = source("matmul")  # the default: written as steps (passes/gpu_default)
    assert "__shared__ float A_pack[" in matmul and "__shared__ float B_pack[" in matmul
    assert "float C_acc_reg[" in matmul and "#pragma unroll" in matmul  # the register tile
    planner = source("matmul", loopweave.Schedule())
    assert "__shared__" in planner and planner.count("__syncthreads();") == 2
    assert "lw_acc[4][4]" in planner
    softmax = source("softmax")
    assert softmax.count("lw_block_reduce<") == 2 and softmax.count("__global__") == 1
    assert "nvcuda::wmma::mma_sync(" in source("qmm")  # the default: tensor cores (steps)
    assert "__dp4a(" in source("qmm", loopweave.Schedule())  # the planner: dp4a
    assert "const __half *__restrict__ X" in source("linear_f16")
    jacobi = source("jacobi_1d")
    assert jacobi.count("LW_LAUNCH(") == 2 and "for (int64_t c0 = 0; c0 < T" in jacobi


def test_warns_about_sequential_loops():
    with pytest.warns(cuda.SequentialLoopWarning) as record:
        stages(refs.KERNELS["seidel_2d"].source(), "cuda")
    text = "\n".join(str(w.message) for w in record)
    assert "loop t carries a dependence" in text
    assert "loop(s) i, j" in text and "single CUDA thread" in text
    with pytest.warns(cuda.SequentialLoopWarning, match="loop k carries"):  # the planner's
        stages(refs.KERNELS["lu"].source(), "cuda", schedule=loopweave.Schedule())
    with pytest.warns(cuda.SequentialLoopWarning, match="host loop .* one launch per iteration"):
        stages(refs.KERNELS["lu"].source(), "cuda")  # the step-written default's


def test_golden_matmul_cu(update_golden):
    source = stages(refs.KERNELS["matmul"].source(), "cuda").source
    golden = GOLDEN / "cuda_matmul.cu"
    if update_golden or not golden.exists():
        golden.write_text(source)
        if not update_golden:
            pytest.fail(f"created {golden}; review it and rerun")
    assert source == golden.read_text(), "generated CUDA for matmul changed; review the diff " \
                                         "and rerun with --update-golden if it is intended"


# -- nvcc ------------------------------------------------------------------------------------

def _combined_source(names, arch):
    """The .cu of several kernels in one file (the prelude is include-guarded), one nvcc run."""
    parts = []
    for name in names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parts.append(stages(refs.KERNELS[name].source(), "cuda",
                                options={"arch": arch}).source)
    return "\n".join(parts)


def _assert_compiles_cleanly(names, arch):
    messages = cuda.nvcc_check(_combined_source(names, arch), arch)
    assert "warning" not in messages.lower(), messages
    usage = cuda.parse_ptxas(messages)
    assert {f"lw_{n}" for n in names} <= {k.rsplit("_k", 1)[0] for k in usage}


@needs_nvcc
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_nvcc_compiles_without_warnings(arch):
    _assert_compiles_cleanly(["matmul", "softmax", "qmm", "linear_f16", "seidel_2d"], arch)


@needs_nvcc
@pytest.mark.slow
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_nvcc_compiles_every_kernel_without_warnings(arch):
    _assert_compiles_cleanly(list(refs.KERNELS), arch)


@needs_nvcc
def test_resource_usage():
    kernel = loopweave.compile(refs.KERNELS["matmul"].source(), target="cuda", arch="sm_90")
    usage = kernel.resource_usage
    assert set(usage) == {"lw_matmul_k0"}
    k0 = usage["lw_matmul_k0"]
    assert 16 <= k0["registers"] <= 255 and k0["spill_stores"] == 0
    # the step default (passes/gpu_default.STAGED_TILES): a 64 x 16 slice of A and a 16 x 64
    # slice of B per k step in shared memory (B's rows padded to 80), C's tile in registers
    assert k0["shared_bytes"] == (64 * 16 + 16 * 80) * 4
    planned = loopweave.compile(refs.KERNELS["matmul"].source(), target="cuda", arch="sm_90",
                                schedule=loopweave.Schedule())
    planner = planned.resource_usage["lw_matmul_k0"]
    program = lower(planned.ir, cuda.tiles_of(cuda.make_target("cuda", None, None, {})))
    assert planner["spill_stores"] == 0
    assert planner["shared_bytes"] == shared_bytes(program.kernels[0].contraction,
                                                   Tiles(64, 64, 16, 4, 4, 128)) == 2 * 16 * 65 * 4
    assert kernel.resource_usage is not usage  # a copy read back from the on-disk cache
    assert kernel.resource_usage == usage


def test_parse_ptxas():
    text = """ptxas info    : Compiling entry function 'lw_a_k0' for 'sm_90'
ptxas info    : Function properties for lw_a_k0
    8 bytes stack frame, 4 bytes spill stores, 12 bytes spill loads
ptxas info    : Used 40 registers, used 1 barriers, 8320 bytes smem, 400 bytes cmem[0]
ptxas info    : Compiling entry function 'lw_a_k1' for 'sm_90'
ptxas info    : Used 12 registers, 400 bytes cmem[0]"""
    assert cuda.parse_ptxas(text) == {
        "lw_a_k0": {"registers": 40, "spill_stores": 4, "spill_loads": 12,
                    "shared_bytes": 8320, "stack_bytes": 8},
        "lw_a_k1": {"registers": 12, "spill_stores": 0, "spill_loads": 0, "shared_bytes": 0,
                    "stack_bytes": 0}}


@needs_nvcc
def test_nvcc_rejection_is_compile_error():
    with pytest.raises(CompileError, match="nvcc failed"):
        cuda.nvcc_check(CUDA_PRELUDE + "\n__global__ void broken() { undeclared = 1; }\n",
                        "sm_90")


# -- running without a GPU ---------------------------------------------------------------------

def test_call_without_gpu_raises_target_error(monkeypatch):
    if cuda.gpu_missing() is None:
        pytest.skip("this machine has a GPU")
    monkeypatch.delenv("LOOPWEAVE_CUDA_EMULATE", raising=False)
    kernel = loopweave.compile(refs.KERNELS["gelu"].source(), target="cuda")
    with pytest.raises(TargetError, match="emulate=True"):
        kernel(np.ones(5, dtype=np.float32))


@needs_cxx
def test_emulation_by_environment_variable(monkeypatch):
    monkeypatch.setenv("LOOPWEAVE_CUDA_EMULATE", "1")
    kernel = loopweave.compile(refs.KERNELS["gelu"].source(), target="cuda")
    x = np.linspace(-3, 3, 77, dtype=np.float32)
    np.testing.assert_allclose(kernel(x), refs.gelu_ref(x)["Y"], rtol=1e-5, atol=1e-6)


def test_options_are_validated():
    src = refs.KERNELS["matmul"].source()
    bad = [{"block_m": 48}, {"thread_n": 3}, {"block_threads": 100}, {"arch": "sm_50"},
           {"emulate": "yes"}, {"tile": 4},
           {"block_m": 128, "block_n": 128, "thread_m": 1, "thread_n": 1},  # 16384 threads
           {"block_m": 16, "block_n": 16, "thread_m": 8, "thread_n": 8}]  # 4 threads
    for options in bad:
        with pytest.raises(TargetError):
            stages(src, "cuda", options=options)


def test_tuning_space():
    space = cuda.tuning_space(None)
    defaults = {k: v[0] for k, v in space.items()}
    assert cuda.tile_problem(defaults) is None
    assert defaults == {k: v for k, v in cuda.make_target("cuda", None, None, {}).options.items()
                        if k in space}
    valid = 0
    for bm in space["block_m"]:
        for tm in space["thread_m"]:
            config = {**defaults, "block_m": bm, "thread_m": tm}
            if cuda.tile_problem(config) is None:
                cuda.make_target("cuda", None, None, config)
                valid += 1
            else:
                with pytest.raises(TargetError):
                    cuda.make_target("cuda", None, None, config)
    assert 0 < valid < len(space["block_m"]) * len(space["thread_m"])


def test_large_tiles_fall_back_when_shared_memory_is_short():
    """f64 operands in 128-wide tiles with block_k 32 need more than 48 KiB: no contraction."""
    options = {"block_m": 128, "block_n": 128, "block_k": 32, "thread_m": 8, "thread_n": 8}
    ir = stages(refs.KERNELS["covariance"].source(), "cuda", options=options).ir
    tiles = cuda.tiles_of(cuda.make_target("cuda", None, None, options))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kinds = [k.kind for k in lower(ir, tiles).kernels]
    assert "contraction" not in kinds
    assert 2 * 32 * 129 * 8 > SHARED_LIMIT


# -- the emulation itself -------------------------------------------------------------------------

HAND_WRITTEN = CUDA_PRELUDE + r"""
/* Each block reverses its 64 elements through shared memory, then (loop) adds the reversed
   values of the next tile: the tile buffer is rewritten while others may still read it. */
extern "C" __global__ void reverse(const float *__restrict__ x, float *__restrict__ y, int tiles) {
  __shared__ float tile[64];
  float sum = 0.0f;
  for (int t = 0; t < tiles; ++t) {
    tile[threadIdx.x] = x[(blockIdx.x * tiles + t) * 64 + threadIdx.x];
    BARRIER_AFTER_WRITE
    sum += tile[63 - threadIdx.x];
    BARRIER_BEFORE_REWRITE
  }
  y[blockIdx.x * 64 + threadIdx.x] = sum;
}
extern "C" __global__ void diverge(float *y) {
  if (threadIdx.x < 16) __syncthreads();
  y[threadIdx.x] = 1.0f;
}
extern "C" void run(const float *x, float *y, int blocks, int tiles, int divergent) {
  lw_error_text[0] = 0;
  auto body = [&]() -> cudaError_t {
    if (divergent) {
      LW_LAUNCH(diverge, dim3(1), dim3(64), y);
    } else {
      LW_LAUNCH(reverse, dim3(blocks), dim3(64), x, y, tiles);
    }
    LW_TRY(cudaGetLastError());
    return cudaSuccess;
  };
  body();
}
"""


def _hand_written(after_write: bool, before_rewrite: bool):
    source = HAND_WRITTEN.replace("BARRIER_AFTER_WRITE",
                                  "__syncthreads();" if after_write else "")
    source = source.replace("BARRIER_BEFORE_REWRITE", "__syncthreads();" if before_rewrite else "")
    lib = ctypes.CDLL(str(cuda.build_emulation_library(source)))
    lib.run.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                        ctypes.c_int]
    lib.lw_cuda_error.restype = ctypes.c_char_p
    return lib


def _reverse(lib, blocks=3, tiles=4):
    x = np.arange(blocks * tiles * 64, dtype=np.float32)
    y = np.zeros(blocks * 64, dtype=np.float32)
    lib.run(x.ctypes.data, y.ctypes.data, blocks, tiles, 0)
    want = x.reshape(blocks, tiles, 64)[:, :, ::-1].sum(axis=1).reshape(-1)
    return y, want


@needs_cxx
def test_emulation_catches_a_missing_syncthreads():
    y, want = _reverse(_hand_written(True, True))
    np.testing.assert_array_equal(y, want)  # with both barriers: right
    y, want = _reverse(_hand_written(False, True))
    assert not np.array_equal(y, want)  # reads shared memory before the others wrote it
    y, want = _reverse(_hand_written(True, False))
    assert not np.array_equal(y, want)  # thread 0 rewrites the tile while others still read it


@needs_cxx
def test_emulation_reports_barrier_divergence():
    lib = _hand_written(True, True)
    y = np.zeros(64, dtype=np.float32)
    lib.run(None, y.ctypes.data, 1, 1, 1)
    assert b"barrier divergence" in lib.lw_cuda_error()


def test_an_unbounded_grid_dimension_is_a_loopweave_error():
    """isl's "unbounded optimum" (once the planner's convex hull of 0:M and 0:N, fuzz seeds
    5029 and 5071) reaches the user as a TargetError naming the kernel and dimension."""
    kernel = front_end("kernel k(X: f32[N]) -> Y: f32[N] { Y[i] = X[i] }")
    with pytest.raises(TargetError, match=r"kernel 'k': the CUDA target found no bound of j"):
        cuda_isl.bounds(kernel, isl.Set("[N] -> { lwq[j] : j >= 0 }"), 0)
