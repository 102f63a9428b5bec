"""The GPU resource table (benchmarks/gpu_resources.py) and `make gpu-check` on a machine
without a GPU.

No GPU here: the resource figures come from ahead-of-time compiles (nvcc, Triton for sm_90), and
`make gpu-check` must refuse at once, saying why, rather than fail somewhere later.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # benchmarks/ is a top-level folder, not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks import gpu_resources  # noqa: E402
from benchmarks.gpu_resources import occupancy  # noqa: E402
from loopweave.backends import cuda  # noqa: E402
from loopweave.backends import triton as triton_backend  # noqa: E402
from loopweave.driver import stages  # noqa: E402
from loopweave.examples import load_references  # noqa: E402

refs = load_references()
needs_nvcc = pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")


def test_occupancy_on_sm90():
    # 64 registers x 256 threads: 8 warps of 2048 registers, 32 warps fit the register file.
    assert occupancy(64, 256, 8320) == (0.5, "regs")
    assert occupancy(27, 128, 128) == (1.0, "warps+regs")
    assert occupancy(255, 128, 41216) == (0.125, "regs")
    assert occupancy(32, 1, 0) == (0.5, "blocks")  # one thread per block: 32 blocks, 32 warps
    assert occupancy(16, 128, 100 * 1024) == (8 / 64, "smem")  # two blocks' shared memory
    assert occupancy(16, 128, 230 * 1024) == (0.0, "smem")
    assert occupancy(16, 2048, 0)[0] == 0.0


def test_block_size_from_the_cuda_launcher():
    source = stages(refs.KERNELS["matmul"].source(), "cuda").source
    assert gpu_resources.cuda_block_threads(source) == {"lw_matmul_k0": 256}


@needs_nvcc
def test_registers_of_every_cuda_function():
    rows = gpu_resources.cuda_rows("attention", refs.KERNELS["attention"].source())
    assert len(rows) == 1 and not any(r.error for r in rows)  # FlashAttention-2: one launch
    for row in rows:
        assert row.registers > 0, row
        assert row.threads and row.threads % 32 == 0, row
        assert row.occupancy().endswith(")"), row


def test_a_kernel_that_does_not_compile_is_one_row():
    rows = gpu_resources.cuda_rows("broken", "kernel broken(A: f32[N]) -> (B: f32[N]) {")
    assert len(rows) == 1 and rows[0].error.startswith("DSLSyntaxError")
    body, _ = gpu_resources.table(rows)
    assert "| broken | cuda | error: DSLSyntaxError" in body


@pytest.mark.slow
def test_triton_resources_ahead_of_time():
    """Triton's own compile for sm_90 (a worker process; no GPU) gives registers and warps."""
    pytest.importorskip("triton", reason="triton not installed")
    rows = gpu_resources.triton_rows([("softmax", {"N": 64, "D": 128})], workers=1)["softmax"]
    assert rows[0].error is None, rows[0].error
    assert [r.function for r in rows] == ["lw_softmax_k0"]  # the step-written default: 1 launch
    # four warps: Triton's default for a program of 256 lanes (8 from 2048 on)
    assert rows[0].registers > 0 and rows[0].threads == 128 and rows[0].shared is not None


def _has_gpu() -> bool:
    return cuda.gpu_missing() is None


def _fake_nvidia_smi(tmp_path: Path, script: str) -> dict:
    (tmp_path / "nvidia-smi").write_text("#!/bin/sh\n" + script)
    (tmp_path / "nvidia-smi").chmod(0o755)
    return {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "OUT": str(tmp_path)}


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has nvidia-smi")
def test_make_gpu_check_without_a_gpu_fails_at_once():
    result = subprocess.run(["make", "-s", "gpu-check"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0
    assert "no GPU: nvidia-smi not found" in result.stderr


def test_gpu_check_with_a_driver_that_finds_no_device(tmp_path):
    env = _fake_nvidia_smi(tmp_path, "echo 'NVIDIA-SMI has failed because it could not "
                                     "communicate with the NVIDIA driver.'; exit 9\n")
    result = subprocess.run(["bash", ".ci/gpu-check"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert "no GPU: nvidia-smi -L failed: NVIDIA-SMI has failed" in result.stderr


@pytest.mark.slow
@pytest.mark.skipif(_has_gpu(), reason="this machine has a GPU: the check would run")
def test_gpu_check_without_a_cuda_torch(tmp_path):
    env = _fake_nvidia_smi(tmp_path, "echo 'GPU 0: Imaginary H200 (UUID: GPU-0)'\n")
    env["GPU_PYTHON"] = sys.executable
    result = subprocess.run(["bash", ".ci/gpu-check"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2
    assert "no GPU: no Python here has a torch that sees the GPU" in result.stderr
    assert not (tmp_path / "gpu_check.log").exists()  # refused before anything ran


@pytest.mark.parametrize("interp, numpy_version, fails", [
    ("3.6.0", "2.4.6", True), ("3.6.0", "2.3.5", False), ("3.7.0", "2.4.6", False),
    ("3.9.0", "2.5.0rc1", False), ("3.4.1", "2.10.0", True)])
def test_an_interpreter_that_cannot_run_is_named(monkeypatch, interp, numpy_version, fails):
    # The first GPU check's image had Triton 3.6 and numpy 2.5: every interpreted kernel
    # failed in int() of a loop bound (reproduced here with Triton 3.6.0 and numpy 2.4.6).
    monkeypatch.setattr(triton_backend.importlib.metadata, "version", lambda name: interp)
    monkeypatch.setattr(triton_backend.np, "__version__", numpy_version)
    problem = triton_backend.interpreter_problem()
    assert (problem is not None) == fails
    if fails:
        assert f"Triton {interp}'s interpreter" in problem and "triton>=3.7" in problem
