"""The C conversions of the 8-bit float types, in one place for every C-family target.

f8e4m3 (`ml_dtypes.float8_e4m3fn`: no infinity, NaN is S.1111.111, largest 448), f8e5m2
(`ml_dtypes.float8_e5m2`: IEEE-like), e8m0 (`ml_dtypes.float8_e8m0fnu`: a power of two
2^(e - 127), no sign, no zero, 0xFF is NaN) and f4e2m1 (`ml_dtypes.float4_e2m1fn`: S.EE.M in the
low 4 bits of a byte, values 0, 0.5, 1, 1.5, 2, 3, 4, 6, no infinity or NaN) are stored as bytes
and computed in f32, as f16 and bf16 are. The conversions are integer code (no hardware or
rounding-mode dependence) that matches ml_dtypes bit for bit on every f32 input:

- f32 -> f8e4m3 / f8e5m2: round to nearest even, subnormals included; a magnitude that rounds
  past the largest finite value becomes NaN (f8e4m3) or infinity (f8e5m2), as ml_dtypes'
  `astype` does (it does not saturate); NaN becomes the type's quiet NaN with the input's sign.
- f32 -> e8m0: the nearest power of two with ties upward (a mantissa of 1.5 or more rounds up);
  below 2^-127 gives 2^-127; zero, negative values, infinity and NaN give NaN (0xFF).
- f32 -> f4e2m1: round to nearest even, saturating at +-6 (infinity too); NaN gives -0 and
  -NaN +0, as ml_dtypes does. Only the low 4 bits of a byte are read when widening.
- widening: exact; each NaN becomes f32's quiet NaN with its sign.

`C_LOWP` is plain C (static inline functions, `memcpy` for the bit casts) placed in the C prelude
ahead of its f16 section, so the CUDA prelude (which takes that part for host and device) has
it too: `lw_<t>_to_f32(uint8_t)` and `lw_f32_to_<t>(float)` for each of the four types.
"""

from __future__ import annotations

C_LOWP = r"""/* 8-bit floats (f8e4m3, f8e5m2, e8m0) and f4e2m1 (one per byte) are stored as bytes
   and computed in f32; conversions match ml_dtypes bit for bit (loopweave: backends/c_lowp.py). */
/* Bit casts (also the DSL's bitcast). */
static inline float lw_u32_as_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t lw_f32_as_u32(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline double lw_u64_as_f64(uint64_t u) { double f; memcpy(&f, &u, 8); return f; }
static inline uint64_t lw_f64_as_u64(double f) { uint64_t u; memcpy(&u, &f, 8); return u; }
/* A finite f32 magnitude `a` (bits, sign cleared) rounded to nearest even into a float with
   `m` mantissa bits and exponent bias `b`, subnormals included; the caller clamps overflow. */
static inline uint32_t lw_lp_round(uint32_t a, uint32_t m, uint32_t b) {
  uint32_t e = a >> 23, shift = 23 - m;
  if (e > 127 - b)  /* normal: rebias the exponent, round the mantissa (carries included) */
    return (a - ((127 - b) << 23) + ((1u << (shift - 1)) - 1u) + ((a >> shift) & 1u)) >> shift;
  uint32_t s = 151 - b - m - e;  /* subnormal: (1.mantissa << e) in units of 2^(1-b-m) */
  if (e == 0 || s > 24) return 0;
  uint32_t mant = (a & 0x7FFFFFu) | 0x800000u, r = mant >> s, rest = mant & ((1u << s) - 1u);
  uint32_t half = 1u << (s - 1);
  return r + (rest > half || (rest == half && (r & 1u)));
}
/* A magnitude code `a` of a float with `m` mantissa bits and bias `b` widened to f32 bits. */
static inline float lw_lp_widen(uint32_t a, uint32_t m, uint32_t b, uint32_t sign) {
  if (a >= (1u << m))  /* normal */
    return lw_u32_as_f32(sign | ((a + ((127 - b) << m)) << (23 - m)));
  /* subnormal: a * 2^(1-b-m), exact in f32 */
  return lw_u32_as_f32(sign | lw_f32_as_u32((float)a * lw_u32_as_f32((128 - b - m) << 23)));
}
static inline float lw_f8e4m3_to_f32(uint8_t h) {
  uint32_t sign = (uint32_t)(h & 0x80u) << 24, a = h & 0x7Fu;
  if (a == 0x7Fu) return lw_u32_as_f32(sign | 0x7FC00000u);
  return lw_lp_widen(a, 3, 7, sign);
}
static inline uint8_t lw_f32_to_f8e4m3(float f) {
  uint32_t x = lw_f32_as_u32(f), sign = (x >> 24) & 0x80u, a = x & 0x7FFFFFFFu;
  if (a >= 0x7F800000u) return (uint8_t)(sign | 0x7Fu);  /* no infinity: NaN */
  uint32_t r = lw_lp_round(a, 3, 7);
  return (uint8_t)(sign | (r > 0x7Fu ? 0x7Fu : r));  /* past 448: NaN */
}
static inline float lw_f8e5m2_to_f32(uint8_t h) {
  uint32_t sign = (uint32_t)(h & 0x80u) << 24, a = h & 0x7Fu;
  if (a >= 0x7Cu) return lw_u32_as_f32(sign | (a == 0x7Cu ? 0x7F800000u : 0x7FC00000u));
  return lw_lp_widen(a, 2, 15, sign);
}
static inline uint8_t lw_f32_to_f8e5m2(float f) {
  uint32_t x = lw_f32_as_u32(f), sign = (x >> 24) & 0x80u, a = x & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return (uint8_t)(sign | 0x7Eu);
  if (a == 0x7F800000u) return (uint8_t)(sign | 0x7Cu);
  uint32_t r = lw_lp_round(a, 2, 15);
  return (uint8_t)(sign | (r > 0x7Cu ? 0x7Cu : r));  /* past 57344: infinity */
}
static inline float lw_f4e2m1_to_f32(uint8_t h) {
  return lw_lp_widen(h & 0x7u, 1, 1, (uint32_t)(h & 0x8u) << 28);
}
static inline uint8_t lw_f32_to_f4e2m1(float f) {
  uint32_t x = lw_f32_as_u32(f), sign = (x >> 28) & 0x8u, a = x & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return (uint8_t)(sign ^ 0x8u);  /* NaN: -0 (and -NaN: +0) */
  uint32_t r = lw_lp_round(a, 1, 1);
  return (uint8_t)(sign | (r > 7u ? 7u : r));  /* saturates at 6, infinity too */
}
static inline float lw_e8m0_to_f32(uint8_t h) {
  if (h == 0xFFu) return lw_u32_as_f32(0x7FC00000u);
  return lw_u32_as_f32(h == 0 ? 0x00400000u : (uint32_t)h << 23);  /* 2^-127 is subnormal */
}
static inline uint8_t lw_f32_to_e8m0(float f) {
  uint32_t x = lw_f32_as_u32(f);
  if (x == 0 || x >= 0x7F800000u) return 0xFFu;  /* zero, negative, inf, NaN */
  if (x < 0x00800000u) return x >= 0x00600000u ? 1u : 0u;  /* f32 subnormals */
  return (uint8_t)((x >> 23) + ((x >> 22) & 1u));  /* ties up; 2^128 is NaN */
}
"""
