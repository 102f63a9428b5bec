"""C identifiers for DSL names: the reserved words and the mangling every C-family renderer
uses (its own module so that the renderer and its helpers, such as `register_tile`, share it
without importing each other)."""

from __future__ import annotations

import re

C_KEYWORDS = frozenset("""
auto break case char const continue default do double else enum extern float for goto if inline
int long register restrict return short signed sizeof static struct switch typedef union unsigned
void volatile while _Bool _Complex _Imaginary bool true false NULL main INFINITY NAN
alignas alignof constexpr nullptr static_assert thread_local typeof typeof_unqual asm
EOF errno HUGE HUGE_VAL MAXFLOAT memcpy memset memmove fmodf fmod
""".split())
# Names that generated code or its headers use: libm (f32 and f64 forms), object-like macros
# (INT8_MAX, M_PI), typedefs (int64_t, float32x4_t), isl's loop iterators (c0, c1, ...), and
# NEON/MVE intrinsics (vld1q_f32, vctp32q). A DSL name that could be one of them is mangled.
_LIBM = ("exp log sqrt tanh erf pow fabs fmin fmax floor ceil round trunc sin cos tan "
         "expm1 log1p log2 exp2 cbrt hypot isnan isinf").split()
_RESERVED = C_KEYWORDS | frozenset(_LIBM) | frozenset(f + "f" for f in _LIBM)
_MANGLE_PATTERN = re.compile(
    r"_.*|[lL][wW]_.*|.*_t|[A-Z][A-Z0-9]*_[A-Z0-9_]*|c[0-9]+|v[a-z]+[0-9]*q(_\w*)?|vctp[0-9]+q")
_LOOP_ITERATOR = re.compile(r"c[0-9]+")


def c_name(name: str) -> str:
    """A DSL name as a C identifier that cannot clash with C, its headers or our own names.

    Mangled names start with `lw_u_`, which no unmangled name does (names starting with `lw_`
    are mangled too), so distinct DSL names stay distinct.
    """
    if name in _RESERVED or _MANGLE_PATTERN.fullmatch(name):
        return f"lw_u_{name}"
    return name


def c_var(name: str) -> str:
    """A loop variable: isl's iterators `c0, c1, ...` as they are, any other name as `c_name`."""
    return name if _LOOP_ITERATOR.fullmatch(name) else c_name(name)
