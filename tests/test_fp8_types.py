"""The 8-bit float types f8e4m3, f8e5m2, e8m0 and f4e2m1 (one 4-bit code per byte), and the
builtins exp2, ldexp, bitcast, inf, nan.

Conversions are checked bit for bit against ml_dtypes on every target (all 256 byte values
widened, the 16 codes of f4e2m1; f32 values at and around every representable value, past the
largest finite one, NaN and infinity, and random bits rounded); the MXFP8 example against numpy
at odd sizes on every target; wrong dtypes and misuse of the builtins as clear errors.
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported: no GPU here

import shutil  # noqa: E402

import ml_dtypes  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import loopweave  # noqa: E402
from loopweave.errors import ArgumentTypeError, DSLTypeError  # noqa: E402
from loopweave.examples import load_references  # noqa: E402

TYPES = {"f8e4m3": ml_dtypes.float8_e4m3fn, "f8e5m2": ml_dtypes.float8_e5m2,
         "e8m0": ml_dtypes.float8_e8m0fnu, "f4e2m1": ml_dtypes.float4_e2m1fn}
TARGETS = ["cpu", "aarch64", "cortex-m4", "triton", "cuda"]
_TOOLS = {"cpu": ["gcc"], "aarch64": ["aarch64-linux-gnu-gcc", "qemu-aarch64"],
          "cortex-m4": ["arm-none-eabi-gcc", "qemu-system-arm"], "cuda": ["g++"], "triton": []}

CONVERT = """
kernel narrow(X: f32[N]) -> (A: f8e4m3[N], B: f8e5m2[N], E: e8m0[N], F: f4e2m1[N]) {
    A[i] = f8e4m3(X[i])
    B[i] = f8e5m2(X[i])
    E[i] = e8m0(X[i])
    F[i] = f4e2m1(X[i])
}
kernel widen(A: f8e4m3[N], B: f8e5m2[N], E: e8m0[N], F: f4e2m1[N])
        -> (a: f32[N], b: f32[N], e: f32[N], f: f32[N]) {
    a[i] = f32(A[i])
    b[i] = f32(B[i])
    e[i] = f32(E[i])
    f[i] = f32(F[i])
}
"""

BUILTINS = """
kernel builtins(X: f32[N], A: f8e4m3[N], K: i32[N])
        -> (a: f32[N], b: u8[N], c: f8e5m2[N], d: i32[N], e: f32[N], f: f32[N], g: f32[N]) {
    a[i] = exp2(X[i]) + ldexp(X[i], K[i])
    b[i] = bitcast(A[i], u8)
    c[i] = bitcast(bitcast(A[i], u8) + 1, f8e5m2)
    d[i] = bitcast(X[i], i32)
    e[i] = bitcast(d[i] ^ 1, f32)
    f[i] = select(X[i] > 0.0, inf, -inf) + select(X[i] > 100.0, nan, 0.0)
    g[i] = ldexp(X[i], -140) + ldexp(X[i], K[i] + 100)
}
"""

_compiled: dict[tuple, object] = {}


def compiled(source: str, kernel: str, target: str):
    """The kernel on `target`, compiled once per test session (skipped where its tools are
    missing)."""
    for tool in _TOOLS[target]:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (make toolchains)")
    if target == "triton":
        pytest.importorskip("triton", reason="triton not installed")
        pytest.importorskip("torch", reason="torch not installed")
        if os.environ.get("TRITON_INTERPRET") != "1":
            pytest.skip("TRITON_INTERPRET was set to something else before the tests")
    key = (source, kernel, target)
    if key not in _compiled:
        options = {"emulate": True} if target == "cuda" else {}
        _compiled[key] = loopweave.compile(source, target, kernel=kernel, tuning_db=False,
                                           **options)
    return _compiled[key]


def rounding_inputs(n_random: int) -> np.ndarray:
    """f32 values where rounding to the 8-bit types is decided: every value of each type, the
    f32 neighbours of each and of the midpoints between neighbours (ties and just past them),
    zeros, infinities, NaNs with several payloads, f32 subnormals, and random bit patterns."""
    values = [np.float32([0.0, -0.0, np.inf, -np.inf, 448.0, 464.0, 465.0, 480.0, 57344.0,
                          61439.0, 61440.0, 1e30, -1e30, 2.0**-127, 1.5 * 2.0**-127, 1e-45])]
    for t in TYPES.values():
        exact = np.arange(256, dtype=np.uint8).view(t).astype(np.float64)
        exact = np.unique(exact[np.isfinite(exact)])
        mids = (exact[1:] + exact[:-1]) / 2
        for v in (exact, mids):
            v32 = v.astype(np.float32)
            values += [v32, np.nextafter(v32, np.float32(np.inf)),
                       np.nextafter(v32, np.float32(-np.inf))]
    nans = np.uint32([0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF800001, 0x7FA00000, 0x7FFFFFFF])
    bits = np.random.default_rng(20).integers(0, 2**32, n_random, dtype=np.uint64)
    return np.concatenate([*values, nans.view(np.float32),
                           np.uint32([1, 0x80000001, 0x007FFFFF]).view(np.float32),
                           bits.astype(np.uint32).view(np.float32)])


@pytest.mark.parametrize("target", TARGETS)
def test_widening_every_byte_matches_ml_dtypes_bit_for_bit(target):
    widen = compiled(CONVERT, "widen", target)
    byte = np.arange(256, dtype=np.uint8)
    codes = {name: byte & 15 if name == "f4e2m1" else byte for name in TYPES}  # 4-bit codes
    got = widen(*(codes[name].view(t) for name, t in TYPES.items()))
    for out, (name, t) in zip(got, TYPES.items(), strict=True):
        want = codes[name].view(t).astype(np.float32)
        np.testing.assert_array_equal(out.view(np.uint32), want.view(np.uint32), err_msg=name)


@pytest.mark.parametrize("target", TARGETS)
def test_rounding_from_f32_matches_ml_dtypes_bit_for_bit(target):
    """Round to nearest even, subnormals, NaN for f8e4m3 past 448 (ml_dtypes does not
    saturate), infinity for f8e5m2 past 57344, e8m0's ties upward and NaN for values <= 0,
    f4e2m1's saturation at 6."""
    narrow = compiled(CONVERT, "narrow", target)
    x = rounding_inputs(2000 if target in ("triton", "cortex-m4") else 20000)
    got = narrow(x)
    for out, (name, t) in zip(got, TYPES.items(), strict=True):
        assert out.dtype == t
        want = x.astype(t).view(np.uint8)
        bad = np.nonzero(out.view(np.uint8) != want)[0]
        assert not len(bad), f"{name}: f32 bits {x.view(np.uint32)[bad[:5]]} give " \
                             f"{out.view(np.uint8)[bad[:5]]}, ml_dtypes {want[bad[:5]]}"


def test_the_c_conversions_on_a_sweep_of_all_f32_bit_patterns():
    """Every 4099th f32 bit pattern (over a million, every exponent and sign) on the cpu: the C
    helpers were also checked on all 2^32 patterns once (no difference)."""
    narrow = compiled(CONVERT, "narrow", "cpu")
    x = np.arange(0, 2**32, 4099, dtype=np.uint64).astype(np.uint32).view(np.float32)
    for out, t in zip(narrow(x), TYPES.values(), strict=True):
        np.testing.assert_array_equal(out.view(np.uint8), x.astype(t).view(np.uint8))


@pytest.mark.parametrize("target", TARGETS)
def test_the_mxfp8_example_matches_numpy_at_odd_sizes(target):
    refs = load_references()
    case = refs.KERNELS["mxfp8_matmul"]
    kernel = compiled(case.source(), "mxfp8_matmul", target)
    sizes = case.sizes if target in ("cpu", "cuda") else case.sizes[:2]
    for seed, s in enumerate(sizes):
        args = case.make_inputs(s, seed)
        err, ok = refs.compare(kernel(*args.values()), case.reference(**args)["C"])
        assert ok, f"{target} {s}: off by {err:g}"


@pytest.mark.parametrize("target", TARGETS)
def test_exp2_ldexp_bitcast_inf_and_nan(target):
    kernel = compiled(BUILTINS, "builtins", target)
    r = np.random.default_rng(3)
    n = 37
    x = (r.standard_normal(n) * 50).astype(np.float32)
    x[:3] = [0.0, -0.0, 1e-40]  # zeros and a subnormal through ldexp
    a8 = r.integers(0, 255, n).astype(np.uint8)
    k = r.integers(-150, 150, n).astype(np.int32)
    a, b, c, d, e, f, g = kernel(x, a8.view(ml_dtypes.float8_e4m3fn), k)
    with np.errstate(all="ignore"):
        np.testing.assert_allclose(a, np.exp2(x) + np.ldexp(x, k), rtol=2e-6)
        np.testing.assert_array_equal(g, np.ldexp(x, -140) + np.ldexp(x, k + 100))
        np.testing.assert_array_equal(
            f, np.where(x > 0, np.inf, -np.inf) + np.where(x > 100, np.nan, 0.0))
    np.testing.assert_array_equal(b, a8)
    np.testing.assert_array_equal(c.view(np.uint8), a8 + 1)
    np.testing.assert_array_equal(d, x.view(np.int32))
    np.testing.assert_array_equal(e.view(np.int32), x.view(np.int32) ^ 1)


MXFP4 = """
kernel mxfp4_matmul(X: f32[M, K], W: u8[K / 2, N], S: e8m0[(K + 31) / 32, N]) -> Y: f32[M, N] {
    assume K % 2 == 0
    Wd[k, j] = f32(bitcast((W[k / 2, j] >> (4 * (k % 2))) & 15, f4e2m1)) * f32(S[k / 32, j])
        where k in 0:K
    Y[i, j] += X[i, k] * Wd[k, j]
}
"""


@pytest.mark.parametrize("target", TARGETS)
def test_packed_f4e2m1_codes_decode_through_bitcast(target):
    """MXFP4 with two f4e2m1 codes a byte (low nibble first) and an e8m0 scale per 32 rows."""
    kernel = compiled(MXFP4, "mxfp4_matmul", target)
    r = np.random.default_rng(5)
    m, k, n = 5, 70, 9
    codes = r.integers(0, 16, (k, n)).astype(np.uint8)
    w = (codes[0::2] | (codes[1::2] << 4)).astype(np.uint8)
    s = (2.0 ** r.integers(-3, 4, (3, n))).astype(ml_dtypes.float8_e8m0fnu)
    x = r.standard_normal((m, k)).astype(np.float32)
    wd = codes.view(ml_dtypes.float4_e2m1fn).astype(np.float64) * \
        np.repeat(s.astype(np.float64), 32, axis=0)[:k]
    np.testing.assert_allclose(kernel(x, w, s), x.astype(np.float64) @ wd, rtol=1e-5,
                               atol=1e-5)


def test_a_max_reduction_into_f8e4m3_starts_from_its_lowest_finite_value():
    """f8e4m3 has no -inf (it would round to NaN): max= starts from -448 instead."""
    kernel = compiled("""
    kernel rowmax(X: f32[M, N]) -> m: f8e4m3[M] {
        m[i] max= X[i, j]
    }""", "rowmax", "cpu")
    x = np.random.default_rng(4).uniform(-500, 100, (9, 7)).astype(np.float32)
    np.testing.assert_array_equal(kernel(x).astype(np.float32),
                                  x.max(axis=1).astype(ml_dtypes.float8_e4m3fn)
                                  .astype(np.float32))


# -- errors ----------------------------------------------------------------------------------------

def test_a_wrong_dtype_is_an_argument_type_error_and_the_bits_are_accepted():
    widen = compiled(CONVERT, "widen", "cpu")
    byte = np.arange(8, dtype=np.uint8)
    with pytest.raises(ArgumentTypeError, match=r"float8_e4m3fn \(f8e4m3 or uint8 bits\)"):
        widen(byte.astype(np.float32), byte.view(ml_dtypes.float8_e5m2),
              byte.view(ml_dtypes.float8_e8m0fnu), byte.view(ml_dtypes.float4_e2m1fn))
    with pytest.raises(ArgumentTypeError, match="float8_e5m2"):
        widen(byte.view(ml_dtypes.float8_e4m3fn), byte.view(ml_dtypes.float8_e4m3fn),
              byte.view(ml_dtypes.float8_e8m0fnu), byte.view(ml_dtypes.float4_e2m1fn))
    a, _, _, _ = widen(byte, byte, byte, byte)  # uint8 bits: the values they encode
    np.testing.assert_array_equal(a, byte.view(ml_dtypes.float8_e4m3fn).astype(np.float32))


@pytest.mark.parametrize(("body", "words"), [
    ("y[i] = f32(bitcast(X[i], u8))", ["bitcast() to u8 (8 bits)", "f32 (32 bits)"]),
    ("y[i] = bitcast(X[i], float)", ["bitcast(x, T) takes a value and a type name"]),
    ("y[i] = bitcast(1.5, i32)", ["bitcast() of a float literal"]),
    ("y[i] = ldexp(X[i], X[i])", ["ldexp(x, n) needs an integer n", "i32(...)"]),
    ("y[i] = ldexp(K[i], 3)", ["ldexp(x, n) needs a float x"]),
    ("y[i] = exp2(K[i])", ["exp2() needs a float argument"]),
    ("y[i] = f32(A[i]) + 1.0 where inf in 0:N", ["not an index variable"]),
    ("y[i] = f32(K[i] + inf)", ["is a float where i32 is needed"]),
])
def test_misuse_of_the_builtins_is_a_dsl_type_error(body, words):
    source = f"kernel k(X: f32[N], A: f8e4m3[N], K: i32[N]) -> y: f32[N] {{ {body} }}"
    with pytest.raises(DSLTypeError) as info:
        loopweave.compile(source, tuning_db=False)
    for w in words:
        assert w in str(info.value)


def test_torch_float8_tensors_in_and_out():
    """torch's float8_e4m3fn / float8_e5m2 / float8_e8m0fnu tensors are read as their bytes;
    outputs come back as torch tensors of the same types (f4e2m1 as uint8 codes: torch packs
    its float4 two a byte)."""
    torch = pytest.importorskip("torch", reason="torch not installed")
    widen = compiled(CONVERT, "widen", "cpu")
    narrow = compiled(CONVERT, "narrow", "cpu")
    byte = torch.arange(16, dtype=torch.uint8)
    a, b, e, f = widen(byte.view(torch.float8_e4m3fn), byte.view(torch.float8_e5m2),
                       byte.view(torch.float8_e8m0fnu), byte)
    assert torch.equal(a, byte.view(torch.float8_e4m3fn).float())
    assert torch.equal(b, byte.view(torch.float8_e5m2).float())
    x = torch.tensor([1.0, 500.0, -3.3, 0.1])
    outs = narrow(x)
    assert [t.dtype for t in outs] == [torch.float8_e4m3fn, torch.float8_e5m2,
                                       torch.float8_e8m0fnu, torch.uint8]
    for out, t in zip(outs, TYPES.values(), strict=True):
        np.testing.assert_array_equal(out.view(torch.uint8).numpy(),
                                      x.numpy().astype(t).view(np.uint8))


HALF_BITS = """
kernel halfbits(H: f16[N], B: bf16[N], D: f64[N])
        -> (a: i16[N], b: f16[N], c: i16[N], d: i64[N], e: f64[N]) {
    a[i] = bitcast(H[i], i16)
    b[i] = bitcast(bitcast(H[i], i16) + 1, f16)
    c[i] = bitcast(B[i], i16)
    d[i] = bitcast(D[i], i64)
    e[i] = bitcast(d[i] + 1, f64)
}
"""


@pytest.mark.parametrize("target", ["cpu", "triton", "cuda"])
def test_bitcast_of_16_and_64_bit_types(target):
    """f16/bf16 <-> i16 and f64 <-> i64; CUDA stores f16 as __half and refuses its bitcast."""
    if target == "cuda":
        with pytest.raises(loopweave.errors.TargetError, match="stores f16 as __half"):
            compiled(HALF_BITS, "halfbits", target)
        return
    kernel = compiled(HALF_BITS, "halfbits", target)
    r = np.random.default_rng(6)
    h = r.standard_normal(11).astype(np.float16)
    b16 = r.standard_normal(11).astype(ml_dtypes.bfloat16)
    d64 = r.standard_normal(11)
    a, b, c, d, e = kernel(h, b16, d64)
    np.testing.assert_array_equal(a, h.view(np.int16))
    np.testing.assert_array_equal(b.view(np.int16), h.view(np.int16) + 1)
    np.testing.assert_array_equal(c, b16.view(np.int16))
    np.testing.assert_array_equal(d, d64.view(np.int64))
    np.testing.assert_array_equal(e.view(np.int64), d64.view(np.int64) + 1)
