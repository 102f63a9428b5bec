"""The on-disk kernel cache: a second compile() of the same kernel, in a new process, runs no
C compiler; different flags or sources build anew; the generated source is kept for inspection."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CC = shutil.which("cc") or shutil.which("gcc")

SCRIPT = textwrap.dedent("""
    import sys, numpy as np, loopweave
    k = loopweave.compile('''
    kernel axpy(a: f32, X: f32[N], Y: f32[N]) -> Z: f32[N] {
        Z[i] = a * X[i] + Y[i]
    }''', cc=sys.argv[1], cflags=sys.argv[2:])
    x = np.arange(5, dtype=np.float32)
    assert np.array_equal(k(2.0, x, x), 3 * x)
""")


@pytest.fixture
def logging_cc(tmp_path: Path) -> tuple[Path, Path]:
    """A C compiler wrapper that records each build (not --version) in a log file."""
    log = tmp_path / "cc.log"
    wrapper = tmp_path / "logging-cc"
    wrapper.write_text(f"#!/bin/sh\ncase \"$*\" in *--version*) ;; *) echo build >> {log};; esac\n"
                       f"exec {CC} \"$@\"\n")
    wrapper.chmod(0o755)
    return wrapper, log


def _run(cache: Path, cc: Path, *flags: str) -> None:
    env = {**os.environ, "LOOPWEAVE_CACHE_DIR": str(cache)}
    subprocess.run([sys.executable, "-c", SCRIPT, str(cc), *flags], env=env, check=True)


def _builds(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


@pytest.mark.skipif(CC is None, reason="no C compiler on PATH")
def test_second_compile_in_a_new_process_runs_no_c_compiler(tmp_path, logging_cc):
    cc, log = logging_cc
    cache = tmp_path / "cache"
    _run(cache, cc, "-O2")
    assert _builds(log) == 1
    _run(cache, cc, "-O2")
    assert _builds(log) == 1, "the cached library was rebuilt"
    _run(cache, cc, "-O1")  # other flags: another library
    assert _builds(log) == 2
    sources = list(cache.glob("*.c"))
    assert len(sources) == 2 and "lw_axpy" in sources[0].read_text()
    assert not list(cache.glob("build-*")), "temporary build directories were left behind"
