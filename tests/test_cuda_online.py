"""FlashAttention-2 as steps on CUDA (passes/gpu_online, the default of passes/gpu_default):
one launch, 16 query rows a block, the key loop inside, the running maximum and sum rescaled,
the division after the loop; rendered by backends/cuda_scheduled, run in the CUDA emulation
(real threads and barriers on the CPU) against numpy at odd sizes, and compiled by nvcc.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from test_kernels import refs
from test_normalize import ATTENTION_INSIDE, ATTENTION_OUTSIDE, _attention

import loopweave
from loopweave.backends import cuda
from loopweave.driver import front_end, stages
from loopweave.errors import ScheduleError
from loopweave.passes.gpu_online import online_gpu_schedule

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")
needs_nvcc = pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")

ATTENTION = refs.KERNELS["attention"]
GOLDEN = Path(__file__).resolve().parent / "golden" / "cuda_attention_kernel.cu"

# f16 operands, f32 scores, sums and output (the form tensor cores would take)
ATTENTION_F16 = """
kernel attention(Q: f16[LQ, D], K: f16[LK, D], V: f16[LK, DV], scale: f32) -> O: f32[LQ, DV] {
    s[i, j] += f32(Q[i, d]) * f32(K[j, d])
    m[i] max= s[i, j]
    e[i, j] = exp(scale * (s[i, j] - m[i]))
    z[i] += e[i, j]
    O[i, v] += e[i, j] * f32(V[j, v]) / z[i]
}
"""

#: A second legal schedule: 32 rows a block, key blocks, value tiles and k steps of 16.
OTHER = {"rows": 32, "block": 16, "cols": 16, "depth": 16, "dot": False, "stage": True}


def _cuda(src: str, schedule=None):
    if schedule is None:
        return loopweave.compile(src, target="cuda", emulate=True, tuning_db=False)
    return loopweave.compile(src, target="cuda", emulate=True, schedule=schedule)


def _check(kernel, sizes: dict, seed: int = 3) -> None:
    args = ATTENTION.make_inputs(sizes, seed)
    want = ATTENTION.expected(args)["O"]
    got = refs.results_of(ATTENTION, args, kernel(*args.values()))["O"]
    err, ok = refs.compare(got, want)
    assert ok, f"O differs from numpy by {err:g} at sizes {sizes}"


def test_attention_defaults_to_one_launch_of_the_steps():
    source = _cuda(ATTENTION.source()).source
    assert "lowered from its schedule" in source
    assert source.count("__global__") == 1
    # the scores, exponentials and row statistics of a block stay in shared memory, and so
    # do the Q, K and V tiles of each step (K transposed: neighbouring lanes, neighbouring
    # words)
    for name, size in (("s", 16 * 32), ("e", 16 * 32), ("m", 16), ("z", 16), ("m_alpha", 16),
                       ("Q_pack", 16 * 32), ("K_pack", 32 * 32), ("V_pack", 32 * 32)):
        assert f"__shared__ float {name}[{size}];" in source, name
    assert "K_pack[(-32 * c2 + c5) * 32 + c4]" in source
    # a row's statistic in a block of rows x columns: one thread of the row updates it
    assert "if (threadIdx.x == 0) {" in source


@pytest.mark.parametrize("sizes", [
    {"LQ": 45, "LK": 70, "D": 33, "DV": 17}, {"LQ": 3, "LK": 1, "D": 1, "DV": 1},
    {"LQ": 17, "LK": 33, "D": 5, "DV": 40}, {"LQ": 64, "LK": 96, "D": 32, "DV": 32}],
    ids=["45x70x33x17", "3x1x1x1", "17x33x5x40", "64x96x32x32"])
def test_default_matches_numpy_at_odd_sizes(sizes):
    _check(_cuda(ATTENTION.source()), sizes)


@pytest.mark.parametrize("src", [ATTENTION_INSIDE, ATTENTION_OUTSIDE], ids=["inside", "outside"])
def test_both_spellings_run_the_steps(src):
    kernel = _cuda(src)
    assert "lowered from its schedule" in kernel.source
    assert kernel.source.count("__global__") == 1
    rng = np.random.default_rng(5)
    for lq, lk, d, dv in ((19, 37, 5, 7), (45, 70, 33, 17)):
        a = {"Q": rng.standard_normal((lq, d), dtype=np.float32),
             "K": rng.standard_normal((lk, d), dtype=np.float32),
             "V": rng.standard_normal((lk, dv), dtype=np.float32), "scale": np.float32(0.43)}
        np.testing.assert_allclose(kernel(*a.values()), _attention(a)["O"], rtol=1e-5,
                                   atol=1e-6, err_msg=str((lq, lk, d, dv)))


def test_f16_operands_match_numpy():
    kernel = _cuda(ATTENTION_F16)
    assert "lowered from its schedule" in kernel.source
    rng = np.random.default_rng(2)
    q = rng.standard_normal((45, 33)).astype(np.float16)
    k = rng.standard_normal((70, 33)).astype(np.float16)
    v = rng.standard_normal((70, 17)).astype(np.float16)
    scale = np.float32(1 / np.sqrt(33))
    s = float(scale) * (q.astype(np.float64) @ k.T.astype(np.float64))
    p = np.exp(s - s.max(axis=1, keepdims=True))
    want = (p / p.sum(axis=1, keepdims=True)) @ v.astype(np.float64)
    np.testing.assert_allclose(kernel(q, k, v, scale), want, rtol=1e-4, atol=1e-5)


def test_two_schedules_give_two_sources_that_both_match():
    default = _cuda(ATTENTION.source())
    other = _cuda(ATTENTION.source(), online_gpu_schedule(front_end(ATTENTION.source()),
                                                          **OTHER))
    assert default.source != other.source
    assert "__shared__ float s[512];" in other.source  # 32 rows x 16 keys
    assert "dim3(16, 32, 1)" in other.source and "dim3(32, 16, 1)" in default.source
    for kernel in (default, other):
        _check(kernel, {"LQ": 45, "LK": 70, "D": 33, "DV": 17})


def test_unstaged_steps_read_the_operands_from_device_memory():
    """Without `stage` each lane reads Q, K and V from device memory; same result."""
    schedule = online_gpu_schedule(front_end(ATTENTION.source()), rows=16, block=16, cols=16,
                                   dot=False)
    kernel = _cuda(ATTENTION.source(), schedule)
    assert "_pack" not in kernel.source and "__shared__ float s[256];" in kernel.source
    _check(kernel, {"LQ": 45, "LK": 70, "D": 33, "DV": 17})


def test_the_steps_are_checked_like_any_schedule():
    schedule = online_gpu_schedule(front_end(ATTENTION.source()), **OTHER)
    schedule.bind("S3", "j_o", "blockIdx.y")  # the running maximum's blocks are in order
    with pytest.raises(ScheduleError, match="j_o"):
        _cuda(ATTENTION.source(), schedule)


def test_batched_heads_are_one_launch():
    src = """
kernel mha(Q: f32[B, H, LQ, D], K: f32[B, H, LK, D], V: f32[B, H, LK, DV], scale: f32)
        -> O: f32[B, H, LQ, DV] {
    s[b, h, i, j] += Q[b, h, i, d] * K[b, h, j, d]
    m[b, h, i] max= s[b, h, i, j]
    e[b, h, i, j] = exp(scale * (s[b, h, i, j] - m[b, h, i]))
    z[b, h, i] += e[b, h, i, j]
    O[b, h, i, v] += e[b, h, i, j] * V[b, h, j, v] / z[b, h, i]
}
"""
    kernel = _cuda(src)
    assert kernel.source.count("__global__") == 1 and "blockIdx.z" in kernel.source
    rng = np.random.default_rng(7)
    q, k = (rng.uniform(-2, 2, (2, 3, n, 9)).astype(np.float32) for n in (19, 37))
    v = rng.uniform(-1, 1, (2, 3, 37, 5)).astype(np.float32)
    scale = np.float32(1 / 3)
    s = float(scale) * np.einsum("bhid,bhjd->bhij", q.astype(np.float64), k)
    p = np.exp(s - s.max(-1, keepdims=True))
    want = np.einsum("bhij,bhjv->bhiv", p / p.sum(-1, keepdims=True), v)
    np.testing.assert_allclose(kernel(q, k, v, scale), want, rtol=1e-5, atol=1e-6)


@needs_nvcc
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_nvcc_compiles_the_steps_without_spills(arch):
    source = loopweave.compile(ATTENTION.source(), target="cuda", arch=arch,
                               tuning_db=False).source
    usage = cuda.parse_ptxas(cuda.nvcc_check(source, arch))
    assert list(usage) == ["lw_attention_k0"]
    row = usage["lw_attention_k0"]
    assert 0 < row["registers"] <= 64 and row["spill_stores"] == row["spill_loads"] == 0
    assert row["shared_bytes"] == 4 * (2 * 16 * 32 + 4 * 16 + 16 * 32 + 2 * 32 * 32)


def test_golden_attention_kernel(update_golden):
    """The `__global__` function of the default (the prelude and the launcher left out)."""
    source = stages(ATTENTION.source(), "cuda").source
    body = source[source.index('extern "C" __global__'):source.index('extern "C" void lw_')]
    if update_golden or not GOLDEN.exists():
        GOLDEN.write_text(body)
        if not update_golden:
            pytest.fail(f"created {GOLDEN}; review it and rerun")
    assert body == GOLDEN.read_text(), "generated CUDA for attention changed; review the " \
                                       "diff and rerun with --update-golden if it is intended"
