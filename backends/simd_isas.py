"""The instruction-set tables of explicit SIMD (`backends/simd.py` lowers loops with them).

Per instruction set and element type a `VectorType`: the vector and mask C types, the lane
count and one C format string per operation (`load`, `splat`, `add`, `fma`, `lt`, `select`,
...). An operation missing from a table raises `CannotLower`, which makes the lowering leave the
loop to the scalar renderer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from loopweave.backends.c_math import VECTOR_MATH


class CannotLower(Exception):  # noqa: N818 - control flow, never escapes backends/simd.py
    """The loop uses something the lowering does not support."""


@dataclass(frozen=True)
class VectorType:
    """Vectors of one element type: C types, lane count and operations as format strings;
    `helpers` maps an operation to the file-scope C definitions it calls (`exp`, `tanh`)."""

    ctype: str
    mask: str
    lanes: int
    ops: dict[str, str]
    helpers: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def op(self, name: str, *args: str) -> str:
        """The C text of operation `name` on `args` (CannotLower: this type lacks it)."""
        fmt = self.ops.get(name)
        if fmt is None:
            raise CannotLower(name)
        return fmt.format(*args)


def _x86_float(p: str, suffix: str, lanes: int, width: int, avx512: bool) -> VectorType:
    """AVX2 (`p` = "_mm256") or AVX-512 (`p` = "_mm512") floats, `suffix` "ps" or "pd"."""
    ctype = f"__m{width}{'' if suffix == 'ps' else 'd'}"
    ops = {"load": f"{p}_loadu_{suffix}({{0}})", "store": f"{p}_storeu_{suffix}({{0}}, {{1}})",
           "splat": f"{p}_set1_{suffix}({{0}})", "fma": f"{p}_fmadd_{suffix}({{0}}, {{1}}, {{2}})",
           "sqrt": f"{p}_sqrt_{suffix}({{0}})"}
    for op in ("add", "sub", "mul", "div"):
        ops[op] = f"{p}_{op}_{suffix}({{0}}, {{1}})"
    predicates = {"lt": "LT_OQ", "le": "LE_OQ", "gt": "GT_OQ", "ge": "GE_OQ", "eq": "EQ_OQ",
                  "ne": "NEQ_UQ"}  # C's != is true for NaN: unordered
    # lanes in reverse order: a stride -1 access is loaded from its lowest address, reversed
    if avx512:
        index = "epi32" if suffix == "ps" else "epi64"
        ops["reverse"] = (f"{p}_permutexvar_{suffix}({p}_setr_{index}("
                          f"{', '.join(map(str, range(lanes - 1, -1, -1)))}), {{0}})")
    elif suffix == "ps":
        ops["reverse"] = f"{p}_permutevar8x32_ps({{0}}, {p}_setr_epi32(7, 6, 5, 4, 3, 2, 1, 0))"
    else:
        ops["reverse"] = f"{p}_permute4x64_pd({{0}}, 0x1B)"
    if avx512:
        mask = "__mmask16" if lanes == 16 else "__mmask8"
        for op, pred in predicates.items():
            ops[op] = f"{p}_cmp_{suffix}_mask({{0}}, {{1}}, _CMP_{pred})"
        ops["select"] = f"{p}_mask_blend_{suffix}({{0}}, {{2}}, {{1}})"
        ops["mask_or"] = f"(({mask})({{0}} | {{1}}))"
        ops["mask_and"] = f"(({mask})({{0}} & {{1}}))"
        # -x flips the sign bit (so -0.0 stays distinct from 0.0); AVX-512F has no xor_ps.
        bits = "epi32(INT32_MIN)" if suffix == "ps" else "epi64(INT64_MIN)"
        kind = "ps" if suffix == "ps" else "pd"
        ops["neg"] = (f"{p}_castsi512_{kind}({p}_xor_si512({p}_cast{kind}_si512({{0}}), "
                      f"{p}_set1_{bits}))")
        # the lanes' sum: halves, then quarters, ... (gcc and clang's order, as `fold`'s loops)
        ops["sum"] = f"{p}_reduce_add_{suffix}({{0}})"
        # the first lanes of a loop's last, partial vector ({1}: their mask); the others are
        # neither read (0.0 in the vector) nor written (`_Lowering.masked_tail`)
        ops["load_masked"] = f"{p}_maskz_loadu_{suffix}({{1}}, {{0}})"
        ops["store_masked"] = f"{p}_mask_storeu_{suffix}({{0}}, {{1}}, {{2}})"
    else:
        mask = ctype
        for op, pred in predicates.items():
            ops[op] = f"{p}_cmp_{suffix}({{0}}, {{1}}, _CMP_{pred})"
        ops["select"] = f"{p}_blendv_{suffix}({{2}}, {{1}}, {{0}})"
        ops["mask_or"] = f"{p}_or_{suffix}({{0}}, {{1}})"
        ops["mask_and"] = f"{p}_and_{suffix}({{0}}, {{1}})"
        zero = "-0.0f" if suffix == "ps" else "-0.0"
        ops["neg"] = f"{p}_xor_{suffix}({{0}}, {p}_set1_{suffix}({zero}))"
    if suffix == "ps":
        ops["from_i32"] = f"{p}_cvtepi32_ps({{0}})"
        # {0}: the base pointer, {1}: the lanes' i32 offsets in elements (backends/simd_gather)
        ops["gather"] = (f"{p}_i32gather_ps({{1}}, (const void *)({{0}}), 4)" if avx512 else
                         f"{p}_i32gather_ps((const float *)({{0}}), {{1}}, 4)")
        # f16 storage with f32 compute (F16C; AVX-512F has its own conversions): `lanes`
        # halves are loaded and widened, or rounded to nearest even and stored.
        half = "__m128i" if width == 256 else "__m256i"
        load_half = "_mm_loadu_si128" if width == 256 else "_mm256_loadu_si256"
        store_half = "_mm_storeu_si128" if width == 256 else "_mm256_storeu_si256"
        rounding = "_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC"
        ops["load_f16"] = f"{p}_cvtph_ps({load_half}((const {half} *)(const void *)({{0}})))"
        ops["store_f16"] = (f"{store_half}(({half} *)(void *)({{0}}), "
                            f"{p}_cvtps_ph({{1}}, {rounding}))")
        ops["round_f16"] = f"{p}_cvtph_ps({p}_cvtps_ph({{0}}, {rounding}))"
        math = VECTOR_MATH["avx512" if avx512 else "avx2"]
        ops.update({f: f"lw_{f}f_v{lanes}({{0}})" for f in math})
        return VectorType(ctype, mask, lanes, ops, math)
    return VectorType(ctype, mask, lanes, ops)


def _avx2_i32() -> VectorType:
    ops = {"load": "_mm256_loadu_si256((const __m256i *)(const void *)({0}))",
           "store": "_mm256_storeu_si256((__m256i *)(void *)({0}), {1})",
           "splat": "_mm256_set1_epi32({0})", "add": "_mm256_add_epi32({0}, {1})",
           "sub": "_mm256_sub_epi32({0}, {1})", "mul": "_mm256_mullo_epi32({0}, {1})",
           "min": "_mm256_min_epi32({0}, {1})", "max": "_mm256_max_epi32({0}, {1})",
           "neg": "_mm256_sub_epi32(_mm256_setzero_si256(), {0})",
           "gt": "_mm256_cmpgt_epi32({0}, {1})", "lt": "_mm256_cmpgt_epi32({1}, {0})",
           "eq": "_mm256_cmpeq_epi32({0}, {1})", "select": "_mm256_blendv_epi8({2}, {1}, {0})",
           "mask_or": "_mm256_or_si256({0}, {1})", "mask_and": "_mm256_and_si256({0}, {1})",
           "from_f32": "_mm256_cvttps_epi32({0})",
           "gather": "_mm256_i32gather_epi32((const int *)({0}), {1}, 4)",
           "reverse": "_mm256_permutevar8x32_epi32({0}, _mm256_setr_epi32(7, 6, 5, 4, 3, 2, 1, 0))"}
    return VectorType("__m256i", "__m256i", 8, ops)


def _avx512_i32() -> VectorType:
    ops = {"load": "_mm512_loadu_si512((const void *)({0}))",
           "store": "_mm512_storeu_si512((void *)({0}), {1})",
           "splat": "_mm512_set1_epi32({0})", "add": "_mm512_add_epi32({0}, {1})",
           "sub": "_mm512_sub_epi32({0}, {1})", "mul": "_mm512_mullo_epi32({0}, {1})",
           "min": "_mm512_min_epi32({0}, {1})", "max": "_mm512_max_epi32({0}, {1})",
           "neg": "_mm512_sub_epi32(_mm512_setzero_si512(), {0})",
           "select": "_mm512_mask_blend_epi32({0}, {2}, {1})",
           "mask_or": "((__mmask16)({0} | {1}))", "mask_and": "((__mmask16)({0} & {1}))",
           "from_f32": "_mm512_cvttps_epi32({0})", "sum": "_mm512_reduce_add_epi32({0})",
           "load_masked": "_mm512_maskz_loadu_epi32({1}, (const void *)({0}))",
           "store_masked": "_mm512_mask_storeu_epi32((void *)({0}), {1}, {2})",
           "gather": "_mm512_i32gather_epi32({1}, (const void *)({0}), 4)",
           "reverse": ("_mm512_permutexvar_epi32(_mm512_setr_epi32("
                       f"{', '.join(map(str, range(15, -1, -1)))}), {{0}})")}
    for op in ("lt", "le", "gt", "ge", "eq"):
        ops[op] = f"_mm512_cmp{op}_epi32_mask({{0}}, {{1}})"
    ops["ne"] = "_mm512_cmpneq_epi32_mask({0}, {1})"
    return VectorType("__m512i", "__mmask16", 16, ops)


def _arm(suffix: str, ctype: str, mask: str, lanes: int, *, mve: bool) -> VectorType:
    """NEON (aarch64) or Helium/MVE vectors of `suffix` (f32, f64, s32): the same names where
    the two agree; comparisons, selects and masks differ (MVE predicates are `mve_pred16_t`)."""
    is_float = suffix[0] == "f"
    ops = {"load": f"vld1q_{suffix}({{0}})", "store": f"vst1q_{suffix}({{0}}, {{1}})",
           "splat": f"vdupq_n_{suffix}({{0}})", "add": f"vaddq_{suffix}({{0}}, {{1}})",
           "sub": f"vsubq_{suffix}({{0}}, {{1}})", "mul": f"vmulq_{suffix}({{0}}, {{1}})",
           "neg": f"vnegq_{suffix}({{0}})"}
    if is_float:
        ops["fma"] = f"vfmaq_{suffix}({{2}}, {{0}}, {{1}})"
    else:
        ops["min"] = f"vminq_{suffix}({{0}}, {{1}})"
        ops["max"] = f"vmaxq_{suffix}({{0}}, {{1}})"
    if not mve:  # MVE has no vextq
        ops["reverse"] = (f"vextq_{suffix}({{0}}, {{0}}, 1)" if lanes == 2 else
                          f"vextq_{suffix}(vrev64q_{suffix}({{0}}), vrev64q_{suffix}({{0}}), 2)")
    if mve and lanes == 4:  # offsets in elements: the `shifted` form scales them by 4 bytes
        ops["gather"] = (f"vldrwq_gather_shifted_offset_{suffix}({{0}}, "
                         "vreinterpretq_u32_s32({1}))")
    if mve:
        for op in ("lt", "le", "gt", "ge", "eq", "ne"):
            ops[op] = f"vcmp{op}q_{suffix}({{0}}, {{1}})"
        ops["select"] = f"vpselq_{suffix}({{1}}, {{2}}, {{0}})"
        ops["mask_or"] = "((mve_pred16_t)({0} | {1}))"
        ops["mask_and"] = "((mve_pred16_t)({0} & {1}))"
    else:
        bits = mask[4:6]  # uint32x4_t -> "32"
        for op in ("lt", "le", "gt", "ge", "eq"):
            ops[op] = f"vc{op}q_{suffix}({{0}}, {{1}})"
        ops["ne"] = (f"vreinterpretq_u{bits}_u32(vmvnq_u32(vreinterpretq_u32_u{bits}("
                     f"vceqq_{suffix}({{0}}, {{1}}))))") if bits != "32" else \
            f"vmvnq_u32(vceqq_{suffix}({{0}}, {{1}}))"
        ops["select"] = f"vbslq_{suffix}({{0}}, {{1}}, {{2}})"
        ops["mask_or"] = f"vorrq_u{bits}({{0}}, {{1}})"
        ops["mask_and"] = f"vandq_u{bits}({{0}}, {{1}})"
        if is_float:
            ops["div"] = f"vdivq_{suffix}({{0}}, {{1}})"
            ops["sqrt"] = f"vsqrtq_{suffix}({{0}})"
        else:
            ops["fma"] = f"vmlaq_{suffix}({{2}}, {{0}}, {{1}})"
    if suffix == "f32":
        ops["from_i32"] = "vcvtq_f32_s32({0})"
        if not mve:
            ops.update({f: f"lw_{f}f_v4({{0}})" for f in VECTOR_MATH["neon"]})
            return VectorType(ctype, mask, lanes, ops, VECTOR_MATH["neon"])
    if suffix == "s32":
        ops["from_f32"] = "vcvtq_s32_f32({0})"
    return VectorType(ctype, mask, lanes, ops)


#: Vector types per element type of each instruction set (the ISAs themselves: `backends.simd`).
AVX2_TYPES = {"f32": _x86_float("_mm256", "ps", 8, 256, avx512=False),
              "f64": _x86_float("_mm256", "pd", 4, 256, avx512=False),
              "i32": _avx2_i32()}
AVX512_TYPES = {"f32": _x86_float("_mm512", "ps", 16, 512, avx512=True),
                "f64": _x86_float("_mm512", "pd", 8, 512, avx512=True),
                "i32": _avx512_i32()}
NEON_TYPES = {"f32": _arm("f32", "float32x4_t", "uint32x4_t", 4, mve=False),
              "f64": _arm("f64", "float64x2_t", "uint64x2_t", 2, mve=False),
              "i32": _arm("s32", "int32x4_t", "uint32x4_t", 4, mve=False)}
MVE_TYPES = {"f32": _arm("f32", "float32x4_t", "mve_pred16_t", 4, mve=True),
             "i32": _arm("s32", "int32x4_t", "mve_pred16_t", 4, mve=True)}
