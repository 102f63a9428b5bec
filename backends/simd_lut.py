"""LUT GEMV on AVX2: table lookups with `_mm256_shuffle_epi8` (T-MAC's `pshufb`), recognized
from the IR of a kernel shaped as examples/kernels/lut_gemv.lw (names free):

    acc[h / 8, n] += i32(T[h, W[h / 8, n / 32, h % 8, p, n % 32]]) << p   T: i8[H, 256]
    y[n] += f32(acc[q, n]) * s[q]                    (q over the (H + 7) / 8 blocks)
    y[n] = y[n] * scale[n]

A byte of W holds two 4-bit codes; a table built by lut_table is the sum of one 16-entry table
per nibble, T[h, 16 d + c] = L[c] + D[d] with L[c] = T[h, c] and D[d] = T[h, 16 d] - T[h, 0].
The fast path keeps L and D in registers and looks up 32 rows at a time:

    for each block q of 8 bytes h:         (W is read once, in order: the tiled layout)
      for each tile of 32 rows n:          a0, a1 = 0 (i16)
        for h in the block, p in 0:B:      w = the 32 codes of (q, tile, h % 8, p)
          l = pshufb(L_h, w & 15); d = pshufb(D_h, w >> 4)
          a0 += maddubs(2^p, interleave_lo(l, d)); a1 += maddubs(2^p, interleave_hi(l, d))
        y[n..n+31] = fma(f32(a0, a1 widened), s[q], y[n..n+31])    (y stays in cache)
    y *= scale

Same numbers as the generic loops: each block's integer sum is exact (|T| <= 128, 8 bytes,
B <= 5 planes: at most 31744 in an i16), then combined in f32 in block order as the loops do
(the last, partial tile computes all 32 rows into a local array: the padding codes are
looked up too, and dropped). The helper first checks, per call, that T has the two-nibble form
and that D fits an i8, writing D into the kernel's own `acc` temporary, which the fast path
does not otherwise need (its Q x N i32 hold the 16 H bytes when N >= 32); where any check fails
(another table, B > 5, a small N) it returns 0 and the generic loops run. Guarded by
`__AVX2__`: a build without AVX2 keeps only the generic loops.
"""

from __future__ import annotations

from loopweave.backends.c_family import c_name
from loopweave.ir import expr as ir
from loopweave.ir.kernel import KernelIR
from loopweave.ir.types import INDEX

#: How far ahead the fast path prefetches W, in bytes.
PREFETCH_AHEAD = 4096

#: The helper's C text; {fn} is its name, {ahead} PREFETCH_AHEAD.
HELPER = r"""
#if defined(__AVX2__)
#include <immintrin.h>
static inline __attribute__((always_inline)) __m256i {fn}_table(const int8_t *t) {{
  return _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)t));
}}
/* 32 rows' codes: a0 += 2^p (L[w & 15] + D[w >> 4]) for rows 0-7 | 16-23, a1 for 8-15 | 24-31
   (unpack works within 128-bit lanes) */
static inline __attribute__((always_inline)) void {fn}_step(
    __m256i L, __m256i Dd, const uint8_t *codes, char bit, __m256i *a0, __m256i *a1) {{
  const __m256i nib = _mm256_set1_epi8(15), m = _mm256_set1_epi8(bit);
  const __m256i w = _mm256_loadu_si256((const __m256i *)(const void *)codes);
  const __m256i l = _mm256_shuffle_epi8(L, _mm256_and_si256(w, nib));
  const __m256i d = _mm256_shuffle_epi8(Dd, _mm256_and_si256(_mm256_srli_epi16(w, 4), nib));
  *a0 = _mm256_add_epi16(*a0, _mm256_maddubs_epi16(m, _mm256_unpacklo_epi8(l, d)));
  *a1 = _mm256_add_epi16(*a1, _mm256_maddubs_epi16(m, _mm256_unpackhi_epi8(l, d)));
}}
/* y[0..31] = fma(f32(block sums), s[q], y[0..31]) in row order */
static inline __attribute__((always_inline)) void {fn}_flush(
    float *y, __m256i a0, __m256i a1, __m256 sq) {{
  const __m128i part[4] = {{_mm256_castsi256_si128(a0), _mm256_castsi256_si128(a1),
                           _mm256_extracti128_si256(a0, 1), _mm256_extracti128_si256(a1, 1)}};
  for (int k = 0; k < 4; k++)
    _mm256_storeu_ps(y + 8 * k, _mm256_fmadd_ps(_mm256_cvtepi32_ps(
        _mm256_cvtepi16_epi32(part[k])), sq, _mm256_loadu_ps(y + 8 * k)));
}}
/* block q of 8 table rows (T, D at its first) over every tile of 32 rows */
static inline __attribute__((always_inline)) void {fn}_block(
    const int8_t *T, const int8_t *D, const uint8_t *W, int64_t q, int64_t NT, int64_t full,
    int64_t rows, int64_t B, __m256 sq, float *y, float *last) {{
  for (int64_t tile = 0; tile < NT; tile++) {{
    const uint8_t *w = W + (q * NT + tile) * 8 * B * 32;
    for (int64_t k = 0; k < 4 * B; k++)  /* the stream of W, {ahead} bytes ahead */
      _mm_prefetch((const char *)(w + {ahead} + 64 * k), _MM_HINT_T0);
    __m256i a0 = _mm256_setzero_si256(), a1 = a0;
    for (int64_t j = 0; j < rows; j++) {{
      const __m256i L = {fn}_table(T + j * 256), Dd = {fn}_table(D + j * 16);
      for (int64_t p = 0; p < B; p++)
        {fn}_step(L, Dd, w + (j * B + p) * 32, (char)(1 << p), &a0, &a1);
    }}
    {fn}_flush(tile < full ? y + tile * 32 : last, a0, a1, sq);
  }}
}}
static int {fn}(const int8_t *T, const float *s, const uint8_t *W, const float *scale,
                float *y, int8_t *D, int64_t H, int64_t B, int64_t N) {{
  const int64_t Q = (H + 7) / 8, NT = (N + 31) / 32, full = N / 32;
  if (B < 1 || B > 5 || 16 * H > 4 * Q * N) return 0;
  for (int64_t h = 0; h < H; h++) {{  /* T[h, 16d + c] == T[h, c] + D[d], D an i8 */
    const int8_t *t = T + h * 256;
    const __m256i lo = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)t));
    for (int d = 0; d < 16; d++) {{
      const int v = (int)t[16 * d] - (int)t[0];
      if (v < -128 || v > 127) return 0;
      D[h * 16 + d] = (int8_t)v;
      const __m256i got = _mm256_cvtepi8_epi16(
          _mm_loadu_si128((const __m128i *)(const void *)(t + 16 * d)));
      const __m256i diff = _mm256_sub_epi16(_mm256_add_epi16(lo, _mm256_set1_epi16((short)v)),
                                            got);
      if (!_mm256_testz_si256(diff, diff)) return 0;
    }}
  }}
  float last[32] = {{0}};  /* the partial tile's rows (and padding) */
  for (int64_t n = 0; n < full * 32; n++) y[n] = 0.0f;
  for (int64_t q = 0; q < Q; q++) {{
    const int64_t rows = 8 * q + 8 < H ? 8 : H - 8 * q;
    const __m256 sq = _mm256_set1_ps(s[q]);
    /* constant B and whole blocks unroll completely: the common cases get their own copy */
    const int8_t *Tq = T + 8 * q * 256, *Dq = D + 8 * q * 16;
    if (rows == 8 && B == 2) {fn}_block(Tq, Dq, W, q, NT, full, 8, 2, sq, y, last);
    else if (rows == 8 && B == 4) {fn}_block(Tq, Dq, W, q, NT, full, 8, 4, sq, y, last);
    else {fn}_block(Tq, Dq, W, q, NT, full, rows, B, sq, y, last);
  }}
  for (int64_t n = 0; n < full * 32; n += 8)
    _mm256_storeu_ps(y + n, _mm256_mul_ps(_mm256_loadu_ps(y + n), _mm256_loadu_ps(scale + n)));
  for (int64_t n = full * 32; n < N; n++) y[n] = last[n - full * 32] * scale[n];
  return 1;
}}
#endif
"""


def _var(e: ir.Expr) -> str | None:
    return e.name if isinstance(e, ir.Var) else None


def _cast_of(e: ir.Expr, dtype: str) -> ir.Expr | None:
    return e.operand if isinstance(e, ir.Cast) and e.dtype.name == dtype else None


def _op(op: str, var: str, k: int) -> ir.Expr:
    return ir.Binary(op, ir.Var(var, INDEX), ir.Const(k, INDEX), INDEX)


def _gather(st) -> dict[str, str] | None:
    """acc[h / 8, n] += i32(T[h, W[h / 8, n / 32, h % 8, p, n % 32]]) << p"""
    if st.op != "+=" or not isinstance(st.rhs, ir.Binary) or st.rhs.op != "<<":
        return None
    table = _cast_of(st.rhs.left, "i32")
    p = _var(_cast_of(st.rhs.right, "i32") or st.rhs.right)
    if not isinstance(table, ir.Load) or table.dtype.name != "i8" or len(table.indices) != 2:
        return None
    h = _var(table.indices[0])
    codes = _cast_of(table.indices[1], INDEX.name)
    if not isinstance(codes, ir.Load) or codes.dtype.name != "u8" or len(codes.indices) != 5:
        return None
    n = _var(codes.indices[4].left) if isinstance(codes.indices[4], ir.Binary) else None
    if None in (p, h, n) or len({p, h, n}) != 3 or codes.indices != (
            _op("/", h, 8), _op("/", n, 32), _op("%", h, 8), ir.Var(p, INDEX), _op("%", n, 32)):
        return None
    if st.lhs.dtype.name != "i32" or st.lhs.indices != (_op("/", h, 8), ir.Var(n, INDEX)):
        return None
    return {"T": table.tensor, "W": codes.tensor, "acc": st.lhs.tensor}


def _combine(st, acc: str) -> dict[str, str] | None:
    """y[n] += f32(acc[q, n]) * s[q]"""
    rhs = st.rhs
    if st.op != "+=" or not isinstance(rhs, ir.Binary) or rhs.op != "*":
        return None
    block, s = _cast_of(rhs.left, "f32"), rhs.right
    if not (isinstance(block, ir.Load) and block.tensor == acc and isinstance(s, ir.Load)
            and s.dtype.name == "f32" and len(s.indices) == 1 and len(block.indices) == 2
            and s.indices[0] == block.indices[0] and st.lhs.dtype.name == "f32"
            and st.lhs.indices == block.indices[1:] and _var(block.indices[1]) is not None):
        return None
    return {"s": s.tensor, "y": st.lhs.tensor}


def _rescale(st, y: str) -> dict[str, str] | None:
    """y[n] = y[n] * scale[n]"""
    rhs = st.rhs
    if st.op != "=" or st.lhs.tensor != y or not isinstance(rhs, ir.Binary) or rhs.op != "*" \
            or not isinstance(rhs.left, ir.Load) or rhs.left.tensor != y \
            or not isinstance(rhs.right, ir.Load) or rhs.right.dtype.name != "f32" \
            or rhs.left.indices != st.lhs.indices or rhs.right.indices != st.lhs.indices:
        return None
    return {"scale": rhs.right.tensor}


def match(kernel: KernelIR) -> dict[str, str] | None:
    """The roles (T, s, W, scale, y, acc, and the sizes H, B, N: names, or digits where the
    sizes are fixed) of a kernel shaped as lut_gemv, or None. Only its three statements (and
    their initialisations) may be there."""
    main = [st for st in kernel.statements if not st.is_init]
    if len(main) != 3:
        return None
    roles = _gather(main[0])
    more = _combine(main[1], roles["acc"]) if roles else None
    last = _rescale(main[2], more["y"]) if more else None
    if last is None:
        return None
    roles.update(**more, **last)
    shapes = {t.name: t.shape for t in kernel.tensors.values()}
    t_shape, w_shape, n_shape = shapes[roles["T"]], shapes[roles["W"]], shapes[roles["scale"]]
    sizes = (t_shape[0], w_shape[3], n_shape[0])
    if t_shape[1] != ir.Const(256, INDEX) or \
            not all(isinstance(x, ir.Param | ir.Const) for x in sizes) \
            or w_shape[2] != ir.Const(8, INDEX) or w_shape[4] != ir.Const(32, INDEX):
        return None
    temp = next((x for x in kernel.temporaries if x.name == roles["acc"]), None)
    if temp is None or len(temp.shape) != 2 or temp.shape[1] != n_shape[0]:
        return None  # the fast path borrows acc's Q x N i32 as scratch: it must be there whole
    # a size is a parameter, or a constant where emit_c fixed the sizes
    roles.update({k: x.name if isinstance(x, ir.Param) else str(x.value)
                  for k, x in zip("HBN", sizes, strict=True)})
    return roles


def fast_path(kernel: KernelIR, function: str) -> tuple[str, str] | None:
    """(the helper's C text, the line that calls it first in `function`'s body) for a kernel
    that `match`es, else None. The call returns from the kernel when the helper handled it."""
    roles = match(kernel)
    if roles is None:
        return None
    fn = f"{function}_lut_avx2"
    a = {k: v if v.isdigit() else c_name(v) for k, v in roles.items()}
    call = (f"#if defined(__AVX2__)\n  if ({fn}({a['T']}, {a['s']}, {a['W']}, {a['scale']}, "
            f"{a['y']}, (int8_t *)(void *){a['acc']}, {a['H']}, {a['B']}, {a['N']})) return;\n"
            "#endif")
    return HELPER.format(fn=fn, ahead=PREFETCH_AHEAD), call
