"""LUT GEMV (examples/kernels/lut_table.lw, lut_gemv.lw) on the host: numerics on odd sizes,
the AVX2 fast path (backends/simd_lut.py) against the portable loops, and its refusals."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from test_emit import check_against_numpy, compile_warning_free, run_emitted  # tests/ on path

import loopweave
from loopweave.backends import simd, simd_lut
from loopweave.examples import load_references
from loopweave.pipeline import Pipeline
from loopweave.targets import host_cc, host_cflags
from loopweave.toolchain import build_shared_library

refs = load_references()
LUT = refs.KERNELS["lut_gemv"]
TABLE = refs.KERNELS["lut_table"]
helpers = refs.lut  # packing and dequantizing (examples/references/lut.py)


@pytest.fixture(scope="module")
def kernels():
    fast = loopweave.compile(LUT.source(), tuning_db=False)
    plain = loopweave.compile(LUT.source(), tuning_db=False, simd=False)
    table = loopweave.compile(TABLE.source(), tuning_db=False)
    return fast, plain, table


def _check(case, kernel, args):
    got = refs.results_of(case, args, kernel(*args.values()))
    for out, want in case.expected(args).items():
        err, ok = refs.compare(got[out], want, case.tol_scale)
        assert ok, f"{case.name}[{out}]: error {err:g}"


@pytest.mark.parametrize("k", [1, 5, 9, 13, 67, 130])
def test_table_matches_reference_on_odd_sizes(kernels, k):
    _check(TABLE, kernels[2], TABLE.make_inputs({"K": k}, k))


@pytest.mark.parametrize(("h", "b", "n"), [(1, 2, 1), (3, 4, 31), (9, 4, 33), (17, 2, 70),
                                           (8, 5, 96), (2, 1, 45)])
def test_lookup_fast_and_portable_agree_with_reference(kernels, h, b, n):
    fast, plain, _ = kernels
    args = LUT.make_inputs({"H": h, "B": b, "N": n}, h * n)
    _check(LUT, fast, args)
    _check(LUT, plain, args)
    # the same integer sums, combined in the same order: at most an f32 rounding apart
    np.testing.assert_allclose(fast(*args.values()), plain(*args.values()), rtol=1e-6, atol=0)


def test_fast_path_is_rendered_only_with_simd(kernels):
    fast, plain, _ = kernels
    args = LUT.make_inputs({"H": 2, "B": 2, "N": 40}, 0)
    fast(*args.values())
    plain(*args.values())
    assert "_mm256_shuffle_epi8" in fast.source and "lut_avx2" in fast.source
    assert "lut_avx2" not in plain.source


@pytest.mark.parametrize("case", ["not separable", "D past i8", "6 planes"])
def test_tables_the_fast_path_cannot_take_fall_back(kernels, case):
    fast = kernels[0]
    r = np.random.default_rng(3)
    b = 6 if case == "6 planes" else 3
    args = LUT.make_inputs({"H": 10, "B": b, "N": 64}, 5)
    if case == "not separable":
        args["T"] = r.integers(-128, 128, size=args["T"].shape, dtype=np.int8)
    elif case == "D past i8":  # T[h, 16d + c] = L[c] + D[d] with D = 200 for d = 1: wraps
        lo = r.integers(-60, 0, size=16)
        d = np.zeros(16, np.int64)
        d[1] = 200
        args["T"][:] = (lo[None, :] + d[:, None]).reshape(256).astype(np.int8)
    _check(LUT, fast, args)


@pytest.mark.parametrize("bits", [2, 4])
def test_lut_gemv_approximates_the_dequantized_gemv(kernels, bits):
    """The table's error, justified: each entry is within half a step of its exact value (the
    7-bit table of the block), so with x uniform in [-1, 1) each group of 4 adds an error of
    at most step / 2 per plane, independent across groups: for K = 1000 and 4 sigma of a sum of
    uniform errors the bound below holds; the result is also no further from the exact GEMV than
    a tenth of its norm, where dequantization alone is exact."""
    fast, _, table = kernels
    r = np.random.default_rng(bits)
    n, k = 45, 1000
    x = r.uniform(-1, 1, k).astype(np.float32)
    scale = r.uniform(0.01, 0.1, n).astype(np.float32)
    q = r.integers(0, 2**bits, size=(n, k))
    A = helpers.dequantize(q, bits, scale)
    T, s = table(x)
    y = fast(T, s, helpers.pack_bit_planes(q, bits), scale)
    want = A.astype(np.float64) @ x
    step = float(np.max(s)) * 2
    # per row: sum over planes 2^(p-1) * (group errors, each uniform in +-step/2)
    sigma = np.sqrt(k / 4 * sum(4.0**p for p in range(bits)) / 4 * step**2 / 12) * scale
    assert np.all(np.abs(y - want) <= 4 * sigma + 1e-6)
    assert np.linalg.norm(y - want) <= 0.1 * np.linalg.norm(want)


def test_pack_and_unpack_bit_planes_round_trip():
    q = np.random.default_rng(0).integers(0, 16, size=(37, 75))
    W = helpers.pack_bit_planes(q, 4)
    assert W.shape == (2, 2, 8, 4, 32) and W.dtype == np.uint8
    np.testing.assert_array_equal(helpers.unpack_bit_planes(W, 37, 75), q)
    assert W[0, 0, 0, 3, 5] == sum(((q[5, j] >> 3) & 1) << j for j in range(8))


def test_pattern_is_recognized_from_the_ir_only_in_its_shape():

    ir_of = lambda src: Pipeline(src, "cpu").unscheduled  # noqa: E731
    roles = simd_lut.match(ir_of(LUT.source()))
    assert roles == {"T": "T", "W": "W", "acc": "acc", "s": "s", "y": "y", "scale": "scale",
                     "H": "H", "B": "B", "N": "N"}
    other = LUT.source().replace("<< p ", "<< 1 ")
    assert simd_lut.match(ir_of(other)) is None
    assert simd_lut.match(ir_of(refs.KERNELS["ell_spmv"].source())) is None


@pytest.mark.parametrize("fixed", [True, False], ids=["fixed", "generic"])
def test_emitted_c_takes_the_fast_path_and_matches_numpy(fixed, tmp_path):
    """emit_c: the helper is called with the sizes as constants or as parameters, builds
    without warnings and gives the reference's numbers (the emitted C runs on its own)."""
    sizes = {"H": 9, "B": 4, "N": 70}
    result = loopweave.emit_c(LUT.source(), sizes if fixed else None, out_dir=tmp_path / "out")
    text = result.source.read_text()
    assert ("9, 4, 70)) return;" in text) == fixed and "_lut_avx2(" in text
    compile_warning_free(result.source)
    args = LUT.make_inputs(sizes, 2)
    got = run_emitted(result, LUT.source(), args, sizes, tmp_path)
    check_against_numpy(LUT, args, got, "emitted")


def _helper():
    """The fast path's helper alone, behind an exported wrapper: its return value says whether
    it handled the call (1) or left it to the generic loops (0)."""
    flags = host_cflags(None)
    if simd.isa_for(host_cc(), flags) not in (simd.AVX2, simd.AVX512):
        pytest.skip("the host compiler does not target AVX2 with these flags")
    source = ("#include <stdint.h>\n#include <math.h>\n"
              + simd_lut.HELPER.format(fn="lw_t", ahead=simd_lut.PREFETCH_AHEAD)
              + "int lw_t_call(const int8_t *T, const float *s, const uint8_t *W, const float "
                "*scale, float *y, int8_t *D, int64_t H, int64_t B, int64_t N) {\n"
                "  return lw_t(T, s, W, scale, y, D, H, B, N);\n}\n")
    lib = ctypes.CDLL(str(build_shared_library(source, host_cc(), (*flags, "-fPIC"))))
    lib.lw_t_call.argtypes = [ctypes.c_void_p] * 6 + [ctypes.c_int64] * 3
    return lib.lw_t_call


@pytest.mark.parametrize(("h", "b", "n"), [(9, 4, 70), (16, 2, 64), (1, 5, 32)])
def test_helper_handles_lut_tables_and_refuses_others(h, b, n):
    call = _helper()
    args = LUT.make_inputs({"H": h, "B": b, "N": n}, 7)
    y, scratch = np.zeros(n, np.float32), np.zeros(16 * h, np.int8)
    pointers = [a.ctypes.data for a in (*args.values(), y, scratch)]
    assert call(*pointers, h, b, n) == 1
    err, ok = refs.compare(y, LUT.expected(args)["y"], LUT.tol_scale)
    assert ok, err
    args["T"][h - 1, 17] += 1  # one entry off the sum of two 16-entry tables
    pointers[0] = args["T"].ctypes.data
    assert call(*pointers, h, b, n) == 0
