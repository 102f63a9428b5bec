"""The on-disk kernel cache under concurrency and damage.

Several processes (spawned, released together by a barrier) compile the same kernel into one
fresh cache: all succeed with correct results, and the cache holds exactly one library and its
source, no temporary files. A truncated or damaged library (a full disk, a killed copy) is found
by its checksum and built again; loading it as it is can kill the process with SIGBUS. A
rebuild replaces the file atomically, so a process that loaded the old one keeps working.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import loopweave
from loopweave import toolchain

SOURCE = """kernel axpy(a: f32, X: f32[N], Y: f32[N]) -> Z: f32[N] {
    Z[i] = a * X[i] + Y[i]
}"""
PROCESSES = 4


def compile_and_run(barrier, source: str) -> list[float]:
    """In a spawned process: wait for the others, compile, run; the result as a list."""
    barrier.wait(timeout=120)
    k = loopweave.compile(source, tuning_db=False)
    x = np.arange(7, dtype=np.float32)
    return k(np.float32(2.0), x, x).tolist()


def run_together(source: str, cache: Path, monkeypatch) -> list[list[float]]:
    monkeypatch.setenv("LOOPWEAVE_CACHE_DIR", str(cache))  # inherited by the spawned processes
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Manager().Barrier(PROCESSES)
    with ctx.Pool(PROCESSES) as pool:
        jobs = [pool.apply_async(compile_and_run, (barrier, source)) for _ in range(PROCESSES)]
        return [job.get(timeout=300) for job in jobs]


PROBE = textwrap.dedent("""
    import sys, numpy as np, loopweave
    k = loopweave.compile(sys.stdin.read(), tuning_db=False)
    x = np.arange(5, dtype=np.float32)
    print(k(np.float32(2.0), x, x).tolist())
""")


def compile_in_a_new_process(cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "LOOPWEAVE_CACHE_DIR": str(cache)}
    return subprocess.run([sys.executable, "-c", PROBE], input=SOURCE, env=env,
                          capture_output=True, text=True, timeout=300)


def library(cache: Path) -> Path:
    (lib,) = cache.glob("*.so")
    return lib


def assert_one_clean_entry(cache: Path) -> None:
    """One library and its source, nothing else: no build directories, no temporary files."""
    names = sorted(p.name for p in cache.iterdir())
    assert len(names) == 2 and names[0].endswith(".c") and names[1].endswith(".so"), names
    assert toolchain.is_intact(library(cache))


def test_processes_compiling_one_kernel_at_once(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    results = run_together(SOURCE, cache, monkeypatch)
    assert results == [[3.0 * v for v in range(7)]] * PROCESSES
    assert_one_clean_entry(cache)


def test_processes_finding_one_damaged_entry_at_once(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    # Built elsewhere: truncating a library this process has loaded would kill it (SIGBUS).
    assert compile_in_a_new_process(cache).returncode == 0
    lib = library(cache)
    lib.write_bytes(lib.read_bytes()[:4000])
    results = run_together(SOURCE, cache, monkeypatch)
    assert results == [[3.0 * v for v in range(7)]] * PROCESSES
    assert_one_clean_entry(cache)


@pytest.mark.parametrize("damage", ["empty", "half", "one-byte-short", "flipped-byte"])
def test_a_damaged_cache_entry_is_built_again(tmp_path, damage):
    cache = tmp_path / "cache"
    first = compile_in_a_new_process(cache)
    assert first.returncode == 0, first.stderr
    lib = library(cache)
    data = lib.read_bytes()
    broken = {"empty": b"", "half": data[:len(data) // 2], "one-byte-short": data[:-1],
              "flipped-byte": data[:100] + bytes([data[100] ^ 0xFF]) + data[101:]}[damage]
    lib.write_bytes(broken)
    assert not toolchain.is_intact(lib)
    again = compile_in_a_new_process(cache)
    assert again.returncode == 0, (again.returncode, again.stderr[-2000:])
    assert again.stdout == first.stdout == "[0.0, 3.0, 6.0, 9.0, 12.0]\n"
    assert_one_clean_entry(cache)


def test_a_rebuild_leaves_a_loaded_library_alone(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("LOOPWEAVE_CACHE_DIR", str(cache))
    k = loopweave.compile(SOURCE, tuning_db=False)
    lib = library(cache)
    inode = lib.stat().st_ino
    with lib.open("ab") as f:  # damaged, though the pages this process mapped stay valid
        f.write(b"junk")
    # Writing the new library into this file (truncating it) would kill this process (SIGBUS)
    # when it next runs the kernel; a rename leaves the loaded file alone.
    assert compile_in_a_new_process(cache).returncode == 0
    assert lib.stat().st_ino != inode and toolchain.is_intact(lib)
    x = np.arange(5, dtype=np.float32)
    assert k(np.float32(2.0), x, x).tolist() == [0.0, 3.0, 6.0, 9.0, 12.0]
