"""The host C asks gcc for 512-bit vectors in the loops it vectorizes itself on AVX-512 cores
(backends/c.py, WIDE_VECTORS_HINT): softmax's exp loop is `#pragma omp simd`, not intrinsics."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

import loopweave
from loopweave.backends.c import WIDE_VECTORS_HINT

PRAGMA = next(line for line in WIDE_VECTORS_HINT.splitlines() if line.startswith("#pragma"))

KERNELS = Path(__file__).resolve().parent.parent / "examples" / "kernels"
SOFTMAX = (KERNELS / "softmax.lw").read_text()


def _listing(tmp_path, cc: str, march: str) -> str:
    objdump = shutil.which("objdump")
    if objdump is None:
        pytest.skip("no objdump")
    c = loopweave.emit_c(SOFTMAX, out_dir=tmp_path, tuning_db=False,
                         cflags=["-O3", march]).source
    assert PRAGMA in c.read_text()
    obj = tmp_path / "softmax.o"
    subprocess.run([cc, "-O3", march, "-std=c99", "-fwrapv", "-fno-trapping-math", "-fopenmp",
                    "-Werror=unknown-pragmas", "-c", str(c), "-o", str(obj)],
                   check=True, capture_output=True)
    return subprocess.run([objdump, "-d", str(obj)], check=True, capture_output=True,
                          text=True).stdout


def _exp_rounding_registers(listing: str) -> set[str]:
    """The registers of the exp polynomial's floor (vrndscaleps, AVX2: vroundps)."""
    return set(re.findall(r"v(?:rndscale|round)ps\s+\$0x[19],%([xyz])mm", listing))


def test_gcc_vectorizes_exp_with_512_bit_vectors_on_avx512(tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("no gcc")
    assert "z" in _exp_rounding_registers(_listing(tmp_path, "gcc", "-march=sapphirerapids"))


def test_the_hint_is_inert_without_avx512(tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("no gcc")
    registers = _exp_rounding_registers(_listing(tmp_path, "gcc", "-march=x86-64-v3"))
    assert registers and "z" not in registers


def test_clang_builds_the_source_without_the_gcc_pragma(tmp_path):
    clang = shutil.which("clang-19") or shutil.which("clang")
    if clang is None:
        pytest.skip("no clang (make bench-tools installs clang-19)")
    _listing(tmp_path, clang, "-march=sapphirerapids")  # -Werror=unknown-pragmas
