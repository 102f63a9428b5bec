"""Math functions of generated C as straight-line arithmetic: exp, erf, tanh and sigmoid for f32.

libm's `expf`, `erff` and `tanhf` are calls that no compiler vectorizes, so the C backend
defines its own (`lw_expf`, `lw_erff`, `lw_tanhf`, `lw_sigmoidf`: scalar code that gcc's
vectorizer turns into vector code of any width), and explicit SIMD (backends/simd.py) calls
vector versions of `lw_expf`, `lw_tanhf` and `lw_sigmoidf` written in intrinsics
(`VECTOR_MATH`): the same operations in the same order, so a vector loop and its scalar
remainder round alike (tests/test_vector_math.py compares them bit for bit).
"""

from __future__ import annotations

from dataclasses import dataclass


def _horner(p: str, x: str, coefficients: tuple[str, ...]) -> str:
    """C lines evaluating a polynomial in `x` into float `p`, highest coefficient first."""
    lines = [f"  float {p} = {coefficients[0]};"]
    for c in coefficients[1:]:
        sign, magnitude = ("-", c[1:]) if c.startswith("-") else ("+", c)
        lines.append(f"  {p} = {p} * {x} {sign} {magnitude};")
    return "\n".join(lines) + "\n"


#: exp for f32 in straight-line arithmetic, so that vector loops stay vector loops (with
#: -fno-trapping-math, which lets gcc if-convert the clamps): Cody-Waite
#: reduction by ln 2, Cephes' degree-6 polynomial (at most 1.03 ulp over every f32, checked
#: exhaustively), 2^n built in two halves so that gradual underflow and overflow to infinity
#: come out as expf's; NaN passes through. n = floor(x log2 e + 1/2) is one instruction where
#: the ISA rounds to -inf (SSE4.1, Armv8): softmax 10-14% faster on Zen 3 than with the
#: conversion trick it replaced; elsewhere an exact floor from truncation, so every target
#: rounds the same.
EXPF_POLYNOMIAL = ("1.9875691500e-4f", "1.3981999507e-3f", "8.3334519073e-3f",
                   "4.1665795894e-2f", "1.6666665459e-1f", "5.0000001201e-1f")
VECTORIZABLE_EXPF = "".join((
    "static inline float lw_expf(float x) {\n"
    "  float xc = x > -104.0f ? x : -104.0f; /* NaN becomes -104 here and passes through below */\n"
    "  xc = xc < 89.0f ? xc : 89.0f;\n"
    "  float t = xc * 1.44269504088896341f + 0.5f;\n"
    "#if defined(__SSE4_1__) || defined(__aarch64__) || defined(__ARM_FEATURE_DIRECTED_ROUNDING)\n"
    "  float n = floorf(t); /* one instruction: roundps, frintm, vrintm */\n"
    "  int32_t k = (int32_t)n;\n"
    "#else\n"
    "  int32_t k = (int32_t)t; /* truncation, then floor for negative t */\n"
    "  k -= t < (float)k;\n"
    "  float n = (float)k;\n"
    "#endif\n"
    "  float r = xc - n * 0.693359375f + n * 2.12194440e-4f;\n",
    _horner("p", "r", EXPF_POLYNOMIAL),
    "  p = p * r * r + r + 1.0f;\n"
    "  int32_t k1 = k >> 1, k2 = k - k1; /* arithmetic shift (gcc): floor of k / 2 */\n"
    "  uint32_t b1 = (uint32_t)(k1 + 127) << 23, b2 = (uint32_t)(k2 + 127) << 23;\n"
    "  union { uint32_t u; float f; } s1 = {b1}, s2 = {b2};\n"
    "  return x != x ? x : p * s1.f * s2.f;\n"
    "}\n"))

#: erf for f32, also straight-line (vectorizable): erf(x) = x P(x^2) below |x| = 1 and
#: 1 - exp(Q(|x|)) up to 4 (1 above), P and Q least-squares fits made for this function
#: (degree 6 and 8; within 3 ulp of erf over all f32, tested); sign and NaN pass through.
ERFF_SMALL = ("7.9333506e-05f", "-8.034805e-04f", "5.191214e-03f", "-2.6855398e-02f",
              "1.1283626e-01f", "-3.761263e-01f", "1.1283792f")
ERFF_LARGE = ("1.6140493e-06f", "-4.5590394e-05f", "5.927677e-04f", "-4.7402144e-03f",
              "2.6364695e-02f", "-1.09978214e-01f", "-6.3193715e-01f", "-1.1301666f",
              "3.03209e-04f")
VECTORIZABLE_ERFF = "".join((
    "static inline float lw_expf(float x);\n"
    "static inline float lw_erff(float x) {\n"
    "  float a = fabsf(x), t = a * a;\n",
    _horner("p", "t", ERFF_SMALL),
    "  float b = a < 4.0f ? (a > 1.0f ? a : 1.0f) : 4.0f;\n",
    _horner("q", "b", ERFF_LARGE),
    "  float r = a < 1.0f ? a * p : (a < 4.0f ? 1.0f - lw_expf(q) : 1.0f);\n"
    "  return x != x ? x : copysignf(r, x);\n"
    "}\n"))


#: tanh for f32, straight-line: x + x^3 P(x^2) below |x| = 0.625 (Cephes' tanhf polynomial),
#: 1 - 2 / (exp(2x) + 1) above (either sign; inf and 0 where exp overflows or underflows give
#: +-1); within 3 ulp of tanh over the f32 range (tests/test_vector_math.py); NaN passes through.
TANHF_POLYNOMIAL = ("-5.70498872745e-3f", "2.06390887954e-2f", "-5.37397155531e-2f",
                    "1.33314422036e-1f", "-3.33332819422e-1f")
VECTORIZABLE_TANHF = "".join((
    "static inline float lw_expf(float x);\n"
    "static inline float lw_tanhf(float x) {\n"
    "  float s = x * x;\n",
    _horner("p", "s", TANHF_POLYNOMIAL),
    "  float small = x + x * s * p;\n"
    "  float big = 1.0f - 2.0f / (lw_expf(2.0f * x) + 1.0f);\n"
    "  return s < 0.390625f ? small : big;\n"
    "}\n"))
#: The logistic function 1 / (1 + exp(-x)) with `lw_expf` (libm's expf is a call).
VECTORIZABLE_SIGMOIDF = ("static inline float lw_expf(float x);\n"
                         "static inline float lw_sigmoidf(float x) {\n"
                         "  return 1.0f / (1.0f + lw_expf(-x));\n"
                         "}\n")
#: The straight-line f32 functions of the C backend: DSL name -> the definitions a call needs.
SCALAR_MATH = {"exp": (VECTORIZABLE_EXPF,), "erf": (VECTORIZABLE_EXPF, VECTORIZABLE_ERFF),
               "tanh": (VECTORIZABLE_EXPF, VECTORIZABLE_TANHF),
               "sigmoid": (VECTORIZABLE_EXPF, VECTORIZABLE_SIGMOIDF)}


@dataclass(frozen=True)
class _VectorISA:
    """What the vector math helpers of one instruction set are written with. `ops`: format
    strings of splat, min and max (NaN in the second operand comes out), fma(a, b, c) = a * b + c
    and fnma = c - a * b (as gcc contracts the scalar code), mul, add, sub, div, floor,
    lt_select(a, b, x, y) = a < b ? x : y and nan_select(y, x) = x where x is NaN, else y;
    `power` sets `y` to p * 2^n."""

    guard: str
    lanes: int
    vtype: str
    ops: dict[str, str]
    power: str

    def op(self, name: str, *args: str) -> str:
        return self.ops[name].format(*args)

    def c(self, literal: str) -> str:
        return self.op("splat", literal)

    def function(self, name: str, body: list[str]) -> str:
        """`static inline` lw_<name>_v<lanes>(x) with `body`, under the ISA's `#if`."""
        v = self.vtype
        head = f"static inline {v} lw_{name}_v{self.lanes}({v} x) {{"
        return "\n".join([f"#if {self.guard}", head, *(f"  {line}" for line in body), "}",
                          "#endif"]) + "\n"


def _vector_expf(a: _VectorISA) -> str:
    """`lw_expf` on vectors: the scalar code's operations in its order."""
    v, op, c = a.vtype, a.op, a.c
    body = [f"{v} xc = {op('min', c('89.0f'), op('max', c('-104.0f'), 'x'))};",
            f"{v} n = {op('floor', op('fma', 'xc', c('1.44269504088896341f'), c('0.5f')))};",
            f"{v} r = {op('fnma', 'n', c('0.693359375f'), 'xc')};",
            f"r = {op('fma', 'n', c('2.12194440e-4f'), 'r')};",
            f"{v} p = {c(EXPF_POLYNOMIAL[0])};"]
    body += [f"p = {op('fma', 'p', 'r', c(k))};" for k in EXPF_POLYNOMIAL[1:]]
    body += [f"p = {op('add', op('fma', op('mul', 'p', 'r'), 'r', 'r'), c('1.0f'))};",
             f"{v} y;", *a.power.splitlines(), f"return {op('nan_select', 'y', 'x')};"]
    return a.function("expf", body)


def _vector_tanhf(a: _VectorISA) -> str:
    v, op, c = a.vtype, a.op, a.c
    exp = f"lw_expf_v{a.lanes}({op('mul', c('2.0f'), 'x')})"
    body = [f"{v} s = {op('mul', 'x', 'x')};", f"{v} p = {c(TANHF_POLYNOMIAL[0])};"]
    body += [f"p = {op('fma', 'p', 's', c(k))};" for k in TANHF_POLYNOMIAL[1:]]
    body += [f"{v} small = {op('fma', op('mul', 'x', 's'), 'p', 'x')};",
             f"{v} big = {op('sub', c('1.0f'), op('div', c('2.0f'), op('add', exp, c('1.0f'))))};",
             f"return {op('lt_select', 's', c('0.390625f'), 'small', 'big')};"]
    return a.function("tanhf", body)


def _vector_sigmoidf(a: _VectorISA) -> str:
    # 0 - x, not -x: exp(+0) = exp(-0), and NaN stays NaN, so the result is the scalar's
    exp = f"lw_expf_v{a.lanes}({a.op('sub', a.c('0.0f'), 'x')})"
    one = a.c("1.0f")
    return a.function("sigmoidf", [f"return {a.op('div', one, a.op('add', one, exp))};"])


def _x86_ops(p: str) -> dict[str, str]:
    ops = {"splat": f"{p}_set1_ps({{0}})", "min": f"{p}_min_ps({{0}}, {{1}})",
           "max": f"{p}_max_ps({{0}}, {{1}})", "fma": f"{p}_fmadd_ps({{0}}, {{1}}, {{2}})",
           "fnma": f"{p}_fnmadd_ps({{0}}, {{1}}, {{2}})", "mul": f"{p}_mul_ps({{0}}, {{1}})",
           "add": f"{p}_add_ps({{0}}, {{1}})", "sub": f"{p}_sub_ps({{0}}, {{1}})",
           "div": f"{p}_div_ps({{0}}, {{1}})"}
    if p == "_mm512":
        ops["floor"] = "_mm512_roundscale_ps({0}, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)"
        blend = "_mm512_mask_blend_ps(_mm512_cmp_ps_mask"
        ops["nan_select"] = blend + "(x, x, _CMP_UNORD_Q), {0}, {1})"
        ops["lt_select"] = blend + "({0}, {1}, _CMP_LT_OQ), {3}, {2})"
    else:
        ops["floor"] = "_mm256_floor_ps({0})"
        ops["nan_select"] = "_mm256_blendv_ps({0}, {1}, _mm256_cmp_ps(x, x, _CMP_UNORD_Q))"
        ops["lt_select"] = "_mm256_blendv_ps({3}, {2}, _mm256_cmp_ps({0}, {1}, _CMP_LT_OQ))"
    return ops


#: p * 2^n in two halves, 2^floor(n / 2) and the rest, as `lw_expf` does it (one rounding: the
#: first product is exact), with integer vector operations: `{i}` the integer vector type,
#: `{cvt}` float to int (n is integral), `{sra}` and `{sll}` shifts, `{addi}` and `{subi}`.
_TWO_HALVES = """{i} k = {cvt}(n), k1 = {sra}(k, 1), k2 = {subi}(k, k1);
{i} b = {splati}(127);
y = {mul}({mul}(p, {asf}({sll}({addi}(k1, b), 23))), {asf}({sll}({addi}(k2, b), 23)));"""

_ISAS = {
    # AVX-512's scalef computes p * 2^n with one rounding, as the two halves do.
    "avx512": _VectorISA("defined(__AVX512F__)", 16, "__m512", _x86_ops("_mm512"),
                         "y = _mm512_scalef_ps(p, n);"),
    "avx2": _VectorISA("defined(__AVX2__) && defined(__FMA__)", 8, "__m256", _x86_ops("_mm256"),
                       _TWO_HALVES.format(
                           i="__m256i", cvt="_mm256_cvttps_epi32", sra="_mm256_srai_epi32",
                           subi="_mm256_sub_epi32", splati="_mm256_set1_epi32",
                           mul="_mm256_mul_ps", asf="_mm256_castsi256_ps",
                           sll="_mm256_slli_epi32", addi="_mm256_add_epi32")),
    "neon": _VectorISA("defined(__ARM_NEON) && defined(__aarch64__)", 4, "float32x4_t", {
        "splat": "vdupq_n_f32({0})", "min": "vminq_f32({0}, {1})", "max": "vmaxq_f32({0}, {1})",
        "fma": "vfmaq_f32({2}, {0}, {1})", "fnma": "vfmsq_f32({2}, {0}, {1})",
        "mul": "vmulq_f32({0}, {1})", "add": "vaddq_f32({0}, {1})", "sub": "vsubq_f32({0}, {1})",
        "div": "vdivq_f32({0}, {1})", "floor": "vrndmq_f32({0})",
        "nan_select": "vbslq_f32(vceqq_f32(x, x), {0}, {1})",
        "lt_select": "vbslq_f32(vcltq_f32({0}, {1}), {2}, {3})"},
        _TWO_HALVES.format(i="int32x4_t", cvt="vcvtq_s32_f32", sra="vshrq_n_s32",
                           subi="vsubq_s32", splati="vdupq_n_s32", mul="vmulq_f32",
                           asf="vreinterpretq_f32_s32", sll="vshlq_n_s32", addi="vaddq_s32")),
}


def _vector_math(a: _VectorISA) -> dict[str, tuple[str, ...]]:
    exp = _vector_expf(a)
    return {"exp": (exp,), "tanh": (exp, _vector_tanhf(a)), "sigmoid": (exp, _vector_sigmoidf(a))}


#: Per instruction set, the f32 vector functions of explicit SIMD (backends/simd_isas.py: the
#: operations "exp", "tanh" and "sigmoid" call lw_<f>f_v<lanes>): DSL name -> the definitions.
VECTOR_MATH = {name: _vector_math(a) for name, a in _ISAS.items()}
