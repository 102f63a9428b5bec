"""int8 and bf16 GEMM micro-kernels on x86 (backends/x86_gemm.py): each path this machine has
(AMX tiles, AVX512-VNNI or AVX512-BF16, the scheduled loops), chosen by compiler flags, against
numpy on odd sizes, transposed operands and int32 wrap-around; every path at least compiled for
the processors that have it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import loopweave
from benchmarks.machine import cpu_flags
from loopweave.driver import front_end
from loopweave.passes.default import CPU_AVX512, CPU_FEW_ROWS, default_schedule
from loopweave.passes.schedule import Schedule

QMM = """
kernel qmm(A: i8[M, K], B: i8[K, N]) -> C: i32[M, N] {
    C[i, j] += i32(A[i, k]) * i32(B[k, j])
}"""
# C accumulates onto what it holds; A is read transposed, B with its rows as the columns.
ACCUMULATE_T = """
kernel qmm_t(At: i8[K, M], Bt: i8[N, K], C: inout i32[M, N]) {
    C[i, j] += i32(At[k, i]) * i32(Bt[j, k])
}"""


ROOT = Path(__file__).resolve().parents[1]
FLAGS = cpu_flags()
NO_AMX = ("-mno-amx-tile", "-mno-amx-int8", "-mno-amx-bf16")
#: path -> (the cflags that select it, the cpuinfo flags it needs to run)
PATHS = {"amx": ((), {"amx_tile", "amx_int8"}),
         "avx512vnni": (NO_AMX, {"avx512_vnni", "avx512bw"}),
         "avx2": ((*NO_AMX, "-mno-avx512f", "-mno-avxvnni"), {"avx2"}),
         "loops": ((*NO_AMX, "-mno-avx2"), set())}
BF16_PATHS = {"amx": ((), {"amx_tile", "amx_bf16"}),
              "avx512bf16": (NO_AMX, {"avx512_bf16", "avx512bw"}),
              "loops": ((*NO_AMX, "-mno-avx512bf16"), set())}
#: gcc 12 knows no znver4: Zen 4's AVX-512 subsets on top of Zen 3 stand for it.
ZEN4 = ["-march=znver3", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512vnni",
        "-mavx512bf16"]
BF16_MM = """
kernel bmm(A: bf16[M, K], B: bf16[K, N]) -> C: f32[M, N] {
    C[i, j] += f32(A[i, k]) * f32(B[k, j])
}"""


def _path_flags(path: str, paths: dict = PATHS) -> list[str]:
    extra, needed = paths[path]
    if not needed <= FLAGS:
        pytest.skip(f"this processor lacks {', '.join(sorted(needed - FLAGS))}")
    if shutil.which("gcc") is None:
        pytest.skip("no gcc")
    return ["-O3", "-march=native", *extra]


@pytest.mark.parametrize("path", list(PATHS))
# On AMX, C of up to FEW_MAX_ROWS rows takes B in chunks of k across blocks of columns whose C
# fits FEW_ROWS_BYTES (3 x 4096 x 1000: four chunks; 40 x 2100: two blocks of columns, rows
# in a block of 32 and one of 16), the last block of rows 16 where 16 remain (16 and 17 on
# either side); (520, 300, 4100): more rows, B packed in several blocks of panels
@pytest.mark.parametrize("m,n,k", [(37, 45, 70), (1, 1, 1), (33, 65, 129), (64, 32, 64),
                                   (33, 300, 4100), (3, 4096, 1000), (520, 300, 4100),
                                   (16, 130, 200), (17, 130, 200), (40, 2100, 300)])
def test_each_path_matches_numpy_on_odd_sizes(path, m, n, k):
    kernel = loopweave.compile(QMM, cflags=_path_flags(path), tuning_db=False)
    rng = np.random.default_rng(m * n * k)
    a = rng.integers(-128, 128, (m, k), dtype=np.int8)
    b = rng.integers(-128, 128, (k, n), dtype=np.int8)
    c = kernel(a, b)
    np.testing.assert_array_equal(c, a.astype(np.int32) @ b.astype(np.int32))
    # a build without a micro-kernel keeps the loops alone
    assert ("lw_s8gemm" in kernel.source) == (path != "loops")


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("k", [200, 4200])  # 4200: on AMX, K in two chunks (MIN_PANELS)
def test_transposed_operands_accumulate_and_wrap_as_numpy(path, k):
    kernel = loopweave.compile(ACCUMULATE_T, cflags=_path_flags(path), tuning_db=False)
    m, n = 35, 50
    rng = np.random.default_rng(7)
    at = rng.integers(-128, 128, (k, m), dtype=np.int8)
    bt = rng.integers(-128, 128, (n, k), dtype=np.int8)
    # start near the int32 limits, so that the sums wrap around
    c = rng.integers(2**31 - 100_000, 2**31, (m, n), dtype=np.int64).astype(np.int32)
    c[::2] = -c[::2]
    want = c + at.T.astype(np.int32) @ bt.T.astype(np.int32)
    kernel(at, bt, c)
    np.testing.assert_array_equal(c, want)


def test_two_threads_match_numpy(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    kernel = loopweave.compile(QMM, tuning_db=False)
    rng = np.random.default_rng(3)
    a = rng.integers(-128, 128, (100, 300), dtype=np.int8)
    b = rng.integers(-128, 128, (300, 70), dtype=np.int8)
    np.testing.assert_array_equal(kernel(a, b), a.astype(np.int32) @ b.astype(np.int32))


#: int8 and bf16 GEMMs in a fresh process with OMP_NUM_THREADS=2 (libgomp reads it once), built
#: with the flags in argv after -O3 -march=native: C of
#: 150 x 1100 with K 4100 (blocks of B's panels, two a thread or more: each thread packs and
#: multiplies its own; K in chunks) and of 40 x 1100 (few rows: each thread its share of the
#: columns); prints whether each matches numpy.
TWO_THREADS = r"""
import json, sys
import numpy as np
import ml_dtypes
import loopweave
sys.path.insert(0, "tests")
from test_x86_gemm import BF16_MM, QMM
rng = np.random.default_rng(5)
flags = ["-O3", "-march=native", *sys.argv[1:]]
qmm = loopweave.compile(QMM, tuning_db=False, cflags=flags)
bmm = loopweave.compile(BF16_MM, tuning_db=False, cflags=flags)
ok = []
for m, n, k in ((150, 1100, 4100), (40, 1100, 700)):
    a = rng.integers(-128, 128, (m, k), dtype=np.int8)
    b = rng.integers(-128, 128, (k, n), dtype=np.int8)
    ok.append(bool(np.array_equal(qmm(a, b), a.astype(np.int32) @ b.astype(np.int32))))
    a = rng.standard_normal((m, k)).astype(ml_dtypes.bfloat16)
    b = rng.standard_normal((k, n)).astype(ml_dtypes.bfloat16)
    want = a.astype(np.float64) @ b.astype(np.float64)
    scale = np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64))
    ok.append(bool(np.all(np.abs(bmm(a, b) - want) <= 1e-6 * k * scale + 1e-30)))
print(json.dumps(ok))
"""


@pytest.mark.parametrize("path", ["amx", "avx512", "avx2"])
def test_two_threads_with_blocks_of_their_own_match_numpy(path):
    """On two threads each thread packs and multiplies blocks of B of its own (where there are
    two a thread), or on AMX its share of the columns (few rows): int8 and bf16 match numpy on
    every path (bf16 on AVX2: the loops)."""
    _path_flags({"amx": "amx", "avx512": "avx512vnni", "avx2": "avx2"}[path])
    if path != "avx2":
        _path_flags({"amx": "amx", "avx512": "avx512bf16"}[path], BF16_PATHS)
    extra = {"amx": (), "avx512": NO_AMX, "avx2": PATHS["avx2"][0]}[path]
    pytest.importorskip("ml_dtypes")
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    done = subprocess.run([sys.executable, "-c", TWO_THREADS, *extra], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [True] * 4


def _dots(source: str, has_kernel: bool = True) -> list[tuple]:
    steps = default_schedule(front_end(source), gemm_kernel=lambda kind: has_kernel).steps
    return [(s.op, s.target, s.args) for s in steps if s.op in ("dot", "fuse")]


def test_the_default_schedule_marks_int8_contractions_dot_where_the_build_has_a_kernel():
    assert _dots(QMM) == [("dot", "S1", ("k",))]
    assert _dots(QMM, has_kernel=False) == []
    # the contraction stays out of the epilogue's loop (the call needs a nest of its own)
    requant = open("examples/kernels/qmm_requant.lw").read()
    assert _dots(requant) == [("dot", "S1", ("k",))]
    assert [op for op, *_ in _dots(requant, has_kernel=False)] == ["fuse"]
    f32 = QMM.replace("i8", "f32").replace("i32(A[i, k])", "A[i, k]").replace(
        "i32(B[k, j])", "B[k, j]").replace("i32[M, N]", "f32[M, N]")
    assert _dots(f32) == []


def test_without_a_dot_mark_the_loops_run_alone():
    kernel = loopweave.compile(QMM, schedule=Schedule().parallel("S1", "i"), tuning_db=False)
    assert "lw_s8gemm" not in kernel.source


# An AVX2 core (x86-64-v3) gets vpmaddwd for int8 and the loops for bf16; SSE4.2 the loops.
@pytest.mark.parametrize("march,instruction", [
    (["-march=sapphirerapids"], "tdpbssd"), (ZEN4, "vpdpbusd"),
    (["-march=icelake-server"], "vpdpbusd"), (["-march=x86-64-v3"], "vpmaddwd"),
    (["-march=x86-64-v2"], None), (["-march=cooperlake"], "vdpbf16ps"),
    (["-march=sapphirerapids"], "tdpbf16ps"), (ZEN4, "vdpbf16ps")])
def test_each_path_compiles_for_its_processors(tmp_path, march, instruction):
    gcc, objdump = shutil.which("gcc"), shutil.which("objdump")
    if gcc is None or objdump is None:
        pytest.skip("no gcc or objdump")
    source = BF16_MM if "bf16" in (instruction or "") else QMM
    # built for a processor with every path, so the default marks the GEMM whatever the host
    c = loopweave.emit_c(source, out_dir=tmp_path, tuning_db=False,
                         cflags=["-O3", "-march=sapphirerapids"]).source
    assert "gemm(" in c.read_text()
    obj = tmp_path / "qmm.o"
    # no inlining: the micro-kernels keep their labels in the listing
    subprocess.run([gcc, "-O3", "-fno-inline", "-fno-inline-functions-called-once", *march,
                    "-std=c99", "-fwrapv", "-fopenmp", "-c", str(c), "-o", str(obj)],
                   check=True, capture_output=True)
    listing = subprocess.run([objdump, "-d", str(obj)], check=True, capture_output=True,
                             text=True).stdout
    helpers = set(re.findall(r"<(lw_\w+gemm\w*)[.>]", listing))  # also f.constprop.0
    if instruction is None:
        assert not helpers
    else:
        helper = {"tdpbssd": "lw_s8gemm_amx_block", "vpdpbusd": "lw_s8gemm_vec_rows",
                  "vpmaddwd": "lw_s8gemm_avx2_vec_rows", "tdpbf16ps": "lw_bf16gemm_amx_block",
                  "vdpbf16ps": "lw_bf16gemm_vec_rows"}[instruction]
        assert helper in helpers and instruction in listing, helpers


@pytest.mark.parametrize("path", list(BF16_PATHS))
@pytest.mark.parametrize("m,n,k", [(37, 45, 70), (1, 1, 1), (33, 65, 129), (33, 300, 4100),
                                   (3, 4096, 1000), (520, 300, 4100), (7, 50, 40), (8, 50, 40),
                                   (16, 130, 200), (17, 130, 200), (40, 2100, 300)])
def test_bf16_paths_match_numpy_within_f32_rounding(path, m, n, k):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    kernel = loopweave.compile(BF16_MM, cflags=_path_flags(path, BF16_PATHS), tuning_db=False)
    rng = np.random.default_rng(m + n + k)
    a = rng.standard_normal((m, k)).astype(ml_dtypes.bfloat16)
    b = rng.standard_normal((k, n)).astype(ml_dtypes.bfloat16)
    want = a.astype(np.float64) @ b.astype(np.float64)
    got = kernel(a, b)
    # products of bf16 are exact in f32; the sums' rounding differs with their order
    scale = np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64))
    assert np.all(np.abs(got - want) <= 1e-6 * k * scale + 1e-30)
    # fewer rows of C than the few-rows f32 tile's (8 on AVX-512, 6 on AVX2): B streams,
    # converted in the tile (`default._gemm_call`), where the micro-kernel would pack all of
    # B for them; without a micro-kernel a converted B streams wherever C's rows fit one tile
    rows = (CPU_AVX512 if "avx512f" in FLAGS else CPU_FEW_ROWS).matmul_tile[0]
    streamed = m < rows or (path == "loops" and m == rows)
    assert ("lw_bf16gemm(" in kernel.source) == (path != "loops" and not streamed)
    assert ("<< 16))" in kernel.source) == streamed, m


def _aligned_copy(x: np.ndarray, offset_bytes: int) -> np.ndarray:
    """A copy of `x` whose data starts `offset_bytes` past a 64-byte boundary."""
    buf = np.empty(x.nbytes + 128, np.uint8)
    start = (-buf.ctypes.data) % 64 + offset_bytes
    out = buf[start:start + x.nbytes].view(x.dtype).reshape(x.shape)
    out[...] = x
    assert out.ctypes.data % 64 == offset_bytes
    return out


@pytest.mark.parametrize("offset", [0, 16])
# C over FEW_ROWS_BYTES (the few-rows path packs A its own way); edge columns of C too; K deep
# enough to be taken in chunks (MIN_PANELS), C's tiles adding each chunk's products
@pytest.mark.parametrize("m,n,k", [(512, 288, 64), (544, 300, 96), (1024, 160, 160),
                                   (64, 300, 4160)])
def test_amx_reads_whole_line_rows_of_a_in_place(offset, m, n, k):
    """Where A's rows are whole 64-byte lines (64-byte aligned, K a multiple of the tile's
    64 bytes, whole blocks of 32 rows) the tiles read A where it is, without the packed copy;
    16 bytes off a line it is packed. int8 and bf16 products match numpy either way."""
    _path_flags("amx", BF16_PATHS)
    _path_flags("amx")
    ml_dtypes = pytest.importorskip("ml_dtypes")
    rng = np.random.default_rng(m + n + k + offset)
    qmm = loopweave.compile(QMM, cflags=_path_flags("amx"), tuning_db=False)
    a = _aligned_copy(rng.integers(-128, 128, (m, k), dtype=np.int8), offset)
    b = rng.integers(-128, 128, (k, n), dtype=np.int8)
    np.testing.assert_array_equal(qmm(a, b), a.astype(np.int32) @ b.astype(np.int32))
    bmm = loopweave.compile(BF16_MM, cflags=_path_flags("amx", BF16_PATHS), tuning_db=False)
    a = _aligned_copy(rng.standard_normal((m, k)).astype(ml_dtypes.bfloat16), offset)
    b = rng.standard_normal((k, n)).astype(ml_dtypes.bfloat16)
    want = a.astype(np.float64) @ b.astype(np.float64)
    scale = np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64))
    assert np.all(np.abs(bmm(a, b) - want) <= 1e-6 * k * scale + 1e-30)
