"""Bit-level values on the Triton target: the 8-bit float types, `bitcast` and `ldexp`.

f8e4m3, f8e5m2, e8m0 and f4e2m1 tensors reach a Triton kernel as uint8 tensors (their bits) and
are converted with integer code, the same steps as the C helpers (`backends/c_lowp.py`), so every
target rounds bit for bit as ml_dtypes does. Triton's own `tl.float8e4nv` / `tl.float8e5`
conversions are not used: in the interpreter (Triton 3.9) neither direction matches ml_dtypes
(widening the 256 byte values differs, and rounding f32 to f8 differs on about 40% of random
inputs), and on a GPU the e4m3 conversion saturates where ml_dtypes gives NaN.

`widen(text, dtype, use)` and `narrow(text, dtype, use)` write the conversion of one value;
`use(name)` records a helper the module must define (with the helpers it calls). `bits_of` and
`from_bits` write the two halves of a `bitcast`; `_lw_ldexp` is C's ldexpf (one rounding) in
integer steps, since libdevice calls return None in the interpreter.
"""

from __future__ import annotations

from collections.abc import Callable

from loopweave.ir.types import DType

#: The DSL types converted here, with (mantissa bits, exponent bias) of the signed formats.
FORMATS = {"f8e4m3": (3, 7), "f8e5m2": (2, 15), "f4e2m1": (1, 1)}
TYPES = (*FORMATS, "e8m0")

_ROUND = '''@triton.jit
def _lw_lp_round(a, M: tl.constexpr, B: tl.constexpr):
    # int32 bits of finite f32 magnitudes rounded to nearest even into a float with M mantissa
    # bits and bias B, subnormals included (backends/c_lowp.py: lw_lp_round)
    e = a >> 23
    normal = (a - ((127 - B) << 23) + ((1 << (22 - M)) - 1) + ((a >> (23 - M)) & 1)) >> (23 - M)
    s = tl.minimum(tl.maximum(151 - B - M - e, 1), 25)
    mant = (a & 0x7FFFFF) | 0x800000
    r = mant >> s
    rest = mant & ((1 << s) - 1)
    half = 1 << (s - 1)
    up = (rest > half) | ((rest == half) & ((r & 1) == 1))
    sub = tl.where(e == 0, 0, r + up.to(tl.int32))
    return tl.where(e > 127 - B, normal, sub)
'''

_WIDEN = '''@triton.jit
def _lw_lp_widen(a, sign, M: tl.constexpr, B: tl.constexpr):
    # a magnitude code (int32) widened to f32, `sign` its f32 sign bit (c_lowp: lw_lp_widen)
    normal = ((a + ((127 - B) << M)) << (23 - M)) | sign
    quantum = tl.full([], (128 - B - M) << 23, tl.int32).to(tl.float32, bitcast=True)
    sub = (a.to(tl.float32) * quantum).to(tl.int32, bitcast=True) | sign
    return tl.where(a >= (1 << M), normal, sub)
'''


def _to_f32(name: str, nan_test: str, special: str) -> str:
    m, b = FORMATS[name]
    return f'''@triton.jit
def _lw_{name}_to_f32(h):
    h = h.to(tl.int32) & 0xFF
    sign = (h & 0x80) << 24
    a = h & 0x7F
    bits = tl.where({nan_test}, {special}, _lw_lp_widen(a, sign, {m}, {b}))
    return bits.to(tl.float32, bitcast=True)
'''


def _from_f32(name: str, top: int, special: str) -> str:
    m, b = FORMATS[name]
    return f'''@triton.jit
def _lw_f32_to_{name}(f):
    x = tl.cast(f, tl.float32).to(tl.int32, bitcast=True)
    sign = (x >> 24) & 0x80
    a = x & 0x7FFFFFFF
    r = tl.minimum(_lw_lp_round(a, {m}, {b}), {top})
    r = {special}
    return (sign | r).to(tl.uint8)
'''


#: name -> (source, helpers it calls)
HELPERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "_lw_lp_round": (_ROUND, ()),
    "_lw_lp_widen": (_WIDEN, ()),
    # f8e4m3: S.1111.111 is NaN, no infinity; past 448 rounds to NaN (ml_dtypes, unsaturated)
    "_lw_f8e4m3_to_f32": (_to_f32("f8e4m3", "a == 0x7F", "sign | 0x7FC00000"),
                          ("_lw_lp_widen",)),
    "_lw_f32_to_f8e4m3": (_from_f32("f8e4m3", 0x7F, "tl.where(a >= 0x7F800000, 0x7F, r)"),
                          ("_lw_lp_round",)),
    # f8e5m2: IEEE-like, S.11111.00 is infinity
    "_lw_f8e5m2_to_f32": (_to_f32("f8e5m2", "a >= 0x7C",
                                  "sign | tl.where(a == 0x7C, 0x7F800000, 0x7FC00000)"),
                          ("_lw_lp_widen",)),
    "_lw_f32_to_f8e5m2": (_from_f32("f8e5m2", 0x7C,
                                    "tl.where(a > 0x7F800000, 0x7E, tl.where(a == 0x7F800000, "
                                    "0x7C, r))"),
                          ("_lw_lp_round",)),
    # f4e2m1: S.EE.M in the low 4 bits, no infinity or NaN: saturates at 6; NaN gives -0
    "_lw_f4e2m1_to_f32": ('''@triton.jit
def _lw_f4e2m1_to_f32(h):
    h = h.to(tl.int32)
    bits = _lw_lp_widen(h & 0x7, (h & 0x8) << 28, 1, 1)
    return bits.to(tl.float32, bitcast=True)
''', ("_lw_lp_widen",)),
    "_lw_f32_to_f4e2m1": ('''@triton.jit
def _lw_f32_to_f4e2m1(f):
    x = tl.cast(f, tl.float32).to(tl.int32, bitcast=True)
    sign = (x >> 28) & 0x8
    a = x & 0x7FFFFFFF
    r = tl.minimum(_lw_lp_round(a, 1, 1), 7)
    nan = a > 0x7F800000
    return (tl.where(nan, sign ^ 0x8, sign) | tl.where(nan, 0, r)).to(tl.uint8)
''', ("_lw_lp_round",)),
    # e8m0: 2^(h - 127), 0xFF is NaN; from f32 the nearest power, ties up (c_lowp.py)
    "_lw_e8m0_to_f32": ('''@triton.jit
def _lw_e8m0_to_f32(h):
    h = h.to(tl.int32) & 0xFF
    bits = tl.where(h == 0, 0x00400000, h << 23)
    bits = tl.where(h == 0xFF, 0x7FC00000, bits)
    return bits.to(tl.float32, bitcast=True)
''', ()),
    "_lw_f32_to_e8m0": ('''@triton.jit
def _lw_f32_to_e8m0(f):
    x = tl.cast(f, tl.float32).to(tl.int32, bitcast=True)
    r = (x >> 23) + ((x >> 22) & 1)
    r = tl.where(x < 0x00800000, (x >= 0x00600000).to(tl.int32), r)
    r = tl.where((x <= 0) | (x >= 0x7F800000), 0xFF, r)
    return r.to(tl.uint8)
''', ()),
}

HELPERS["_lw_f32_to_bf16"] = ('''@triton.jit
def _lw_f32_to_bf16(f):
    # to the nearest bf16, ties to even, a NaN kept quiet (C's lw_f32_to_bf16): Triton 3.9's
    # interpreter truncates in its own cast, rounding mode or not
    x = tl.cast(f, tl.float32).to(tl.int32, bitcast=True)
    r = (x + 0x7FFF + ((x >> 16) & 1)) >> 16
    r = tl.where((x & 0x7FFFFFFF) > 0x7F800000, (x >> 16) | 0x40, r)
    return (r & 0xFFFF).to(tl.int16).to(tl.bfloat16, bitcast=True)
''', ())

HELPERS["_lw_bf16_to_f32"] = ('''@triton.jit
def _lw_bf16_to_f32(h):
    # the bf16 bits as the high half of an f32: exact, subnormals included (Triton 3.9's
    # interpreter flushes or garbles them in its own conversion)
    bits = (h.to(tl.int16, bitcast=True).to(tl.int32) & 0xFFFF) << 16
    return bits.to(tl.float32, bitcast=True)
''', ())

HELPERS["_lw_ldexp"] = ('''@triton.jit
def _lw_ldexp(x, n):
    # x * 2^n rounded once, as C's ldexpf: x's exponent field moved by n where the result is
    # normal; one multiply by 2^-64 from a normal value where it is subnormal
    x = tl.cast(x, tl.float32)
    n = tl.minimum(tl.maximum(tl.cast(n, tl.int32), -400), 400)
    tiny = (x.to(tl.int32, bitcast=True) & 0x7F800000) == 0
    y = tl.where(tiny, x * 18446744073709551616.0, x)
    n = tl.where(tiny, n - 64, n)
    b = y.to(tl.int32, bitcast=True)
    e = ((b >> 23) & 0xFF) + n
    rest = b & -0x7F800001
    normal = (rest | (tl.minimum(tl.maximum(e, 1), 254) << 23)).to(tl.float32, bitcast=True)
    low = (rest | (tl.minimum(tl.maximum(e + 64, 1), 254) << 23)).to(tl.float32, bitcast=True)
    r = tl.where(e >= 1, normal, tl.where(e > -64, low * 5.421010862427522e-20, y * 0.0))
    r = tl.where(e >= 255, y * float("inf"), r)
    return tl.where((x == 0.0) | (x != x) | (tl.abs(x) == float("inf")), x, r)
''', ())

#: The helpers' sources by name, for the modules' helper tables.
SOURCES = {name: source for name, (source, _) in HELPERS.items()}


def _use(name: str, use: Callable[[str], None]) -> None:
    use(name)
    for dep in HELPERS[name][1]:
        use(dep)


def widen(text: str, dtype: DType, use: Callable[[str], None]) -> str:
    """The f32 value of `text`, a loaded value of storage type `dtype`."""
    if dtype.name == "bf16":
        _use("_lw_bf16_to_f32", use)
        return f"_lw_bf16_to_f32({text})"
    if dtype.name not in TYPES:
        return f"{text}.to(tl.float32)"
    _use(f"_lw_{dtype.name}_to_f32", use)
    return f"_lw_{dtype.name}_to_f32({text})"


def narrow(text: str, dtype: DType, use: Callable[[str], None]) -> str:
    """The bits (uint8) of the f32 value `text` rounded to 8-bit float type `dtype`."""
    _use(f"_lw_f32_to_{dtype.name}", use)
    return f"_lw_f32_to_{dtype.name}({text})"


def stored(text: str, dtype: DType, tl_types: dict[str, str],
           use: Callable[[str], None]) -> str:
    """The f32 value `text` (or a Python literal) converted to the stored type `dtype`."""
    if dtype.name in TYPES:
        return narrow(text, dtype, use)
    if dtype.name == "bf16":
        _use("_lw_f32_to_bf16", use)
        return f"_lw_f32_to_bf16({text})"
    return f"tl.cast({text}, {tl_types[dtype.name]})"  # tl.cast: a literal has no `.to`



def round_trip(text: str, dtype: DType, use: Callable[[str], None]) -> str:
    """The f32 value `text` rounded to `dtype` and widened back (the DSL's `f32(f8e4m3(x))`)."""
    return widen(narrow(text, dtype, use), dtype, use)


def ldexp(x: str, n: str, use: Callable[[str], None]) -> str:
    """`x * 2^n` (f32 `x`, integer `n`), rounded once."""
    _use("_lw_ldexp", use)
    return f"_lw_ldexp({x}, {n})"


def bits_of(text: str, dtype: DType, tl_types: dict[str, str],
            use: Callable[[str], None]) -> str:
    """The bits of the value `text` of type `dtype` as an integer tile of the same width (a
    storage type's value is an f32 holding it exactly: rounded back, NaNs canonical)."""
    if dtype.name in TYPES:
        return narrow(text, dtype, use)
    if dtype.is_storage_only:  # f16, bf16
        text = stored(text, dtype, tl_types, use)
    if dtype.is_float:
        return f"{text}.to(tl.int{dtype.bits}, bitcast=True)"
    return f"tl.cast({text}, {tl_types[dtype.name]})"  # also for a literal: `(3).to` fails


def from_bits(text: str, dtype: DType, tl_types: dict[str, str],
              use: Callable[[str], None]) -> str:
    """The value of type `dtype` (f32 for a storage type) whose bits the integer tile `text`
    holds."""
    if dtype.name in TYPES:
        return widen(f"{text}.to(tl.uint8, bitcast=True)", dtype, use)
    value = f"{text}.to({tl_types[dtype.name]}, bitcast=True)"
    return widen(value, dtype, use) if dtype.is_storage_only else value
