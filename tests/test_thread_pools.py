"""libgomp's spin count for the kernels (loopweave.thread_pools): set while the first OpenMP
kernel loads, read back from libgomp itself (OMP_DISPLAY_ENV=verbose prints what it runs with),
and left alone where the user or another library decided first."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from loopweave import thread_pools

SCRIPT = textwrap.dedent("""
    import ctypes, os, sys
    import numpy as np
    import loopweave
    from loopweave import thread_pools
    if "preload" in sys.argv:
        ctypes.CDLL("libgomp.so.1")
    serial = loopweave.compile("kernel add(x: f32[N]) -> y: f32[N] { y[i] = x[i] + 1.0 }",
                               target="cpu", schedule=loopweave.Schedule(), tuning_db=False)
    np.testing.assert_allclose(serial(np.ones(5, np.float32)), 2.0)
    print("after serial:", thread_pools.openmp_wait())
    gemm = loopweave.compile('''kernel gemm(A: f32[M, K], B: f32[K, N]) -> C: f32[M, N] {
      C[i, j] += A[i, k] * B[k, j]
    }''', target="cpu", tuning_db=False)
    a = np.arange(35 * 67, dtype=np.float32).reshape(35, 67) % 7
    b = np.arange(67 * 33, dtype=np.float32).reshape(67, 33) % 5
    np.testing.assert_allclose(gemm(a, b), a @ b)
    print("after gemm:", thread_pools.openmp_wait())
    print("env:", os.environ.get("GOMP_SPINCOUNT"))
""")


def run(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    return subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True,
                          env={**clean, "OMP_DISPLAY_ENV": "verbose", "OMP_NUM_THREADS": "2",
                               **env}, timeout=300)


def test_first_openmp_kernel_sets_the_spin_count_and_restores_the_environment():
    done = run()
    assert done.returncode == 0, done.stderr
    # a kernel without OpenMP does not decide: libgomp is not loaded yet
    assert "after serial: None" in done.stdout
    assert f"after gemm: GOMP_SPINCOUNT={thread_pools.SPIN_COUNT} (loopweave's)" in done.stdout
    assert "env: None" in done.stdout  # the environment is as it was
    assert f"GOMP_SPINCOUNT = '{thread_pools.SPIN_COUNT}'" in done.stderr  # libgomp's own word


def test_the_users_setting_wins():
    done = run(GOMP_SPINCOUNT="123")
    assert done.returncode == 0, done.stderr
    assert "GOMP_SPINCOUNT=123 (the user's)" in done.stdout
    assert "GOMP_SPINCOUNT = '123'" in done.stderr
    done = run(OMP_WAIT_POLICY="active")
    assert done.returncode == 0, done.stderr
    assert "OMP_WAIT_POLICY=active (the user's)" in done.stdout


def test_a_libgomp_loaded_before_keeps_its_defaults():
    done = run("preload")
    assert done.returncode == 0, done.stderr
    assert "libgomp's default" in done.stdout
    assert f"GOMP_SPINCOUNT = '{thread_pools.SPIN_COUNT}'" not in done.stderr


def test_loaded_libraries_lists_this_process():
    if not os.path.exists("/proc/self/maps"):
        pytest.skip("no /proc/self/maps on this system")
    assert any("python" in path or "libc" in path for path in thread_pools.loaded_libraries())
