"""Element types of tensors and scalars.

f16 and bf16 are storage types: values are widened to f32 when loaded and rounded when stored,
so arithmetic on them happens in f32 (as Triton and CUDA kernels do). So are the 8-bit floats
f8e4m3, f8e5m2 and e8m0 (numpy arrays of `ml_dtypes.float8_e4m3fn`, `float8_e5m2`,
`float8_e8m0fnu`; the C conversions are `backends/c_lowp.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class DType:
    name: str
    bits: int
    kind: str  # "float", "int", "uint", "bool"
    c_type: str  # how a C backend stores it

    @property
    def is_float(self) -> bool:
        return self.kind == "float"

    @property
    def is_int(self) -> bool:
        return self.kind in ("int", "uint")

    @property
    def is_storage_only(self) -> bool:
        """True for f16, bf16 and the 8-bit floats: computed in f32, stored narrow."""
        return self.name in _STORAGE_ONLY

    @property
    def compute(self) -> DType:
        """The type arithmetic on this type happens in."""
        return F32 if self.is_storage_only else self

    @property
    def numpy(self) -> np.dtype:
        """The numpy dtype of arrays of this type: ml_dtypes' for bf16 and the 8-bit floats,
        their bits (uint16, uint8) where ml_dtypes is missing or lacks the type."""
        if self.name in _ML_DTYPES:
            try:
                import ml_dtypes  # optional: numpy has no bfloat16 or float8 of its own

                return np.dtype(getattr(ml_dtypes, _ML_DTYPES[self.name]))
            except (ImportError, AttributeError):
                return self.bits_numpy
        return np.dtype(_NUMPY_NAMES[self.name])

    @property
    def bits_numpy(self) -> np.dtype:
        """The unsigned integer dtype of the same width (a storage type's bits)."""
        return np.dtype(f"uint{self.bits}")

    @property
    def has_inf(self) -> bool:
        """Whether the type holds infinities (f8e4m3, e8m0 and f4e2m1 do not, nor do
        integers)."""
        return self.is_float and self.name not in _FINITE_MAX

    def __str__(self) -> str:
        return self.name


F16 = DType("f16", 16, "float", "uint16_t")
BF16 = DType("bf16", 16, "float", "uint16_t")
F8E4M3 = DType("f8e4m3", 8, "float", "uint8_t")
F8E5M2 = DType("f8e5m2", 8, "float", "uint8_t")
E8M0 = DType("e8m0", 8, "float", "uint8_t")
F4E2M1 = DType("f4e2m1", 8, "float", "uint8_t")  # one 4-bit code per byte, as ml_dtypes holds it
F32 = DType("f32", 32, "float", "float")
F64 = DType("f64", 64, "float", "double")
I8 = DType("i8", 8, "int", "int8_t")
U8 = DType("u8", 8, "uint", "uint8_t")
I16 = DType("i16", 16, "int", "int16_t")
I32 = DType("i32", 32, "int", "int32_t")
I64 = DType("i64", 64, "int", "int64_t")
BOOL = DType("bool", 8, "bool", "int")

_NUMPY_NAMES = {"f16": "float16", "f32": "float32", "f64": "float64", "i8": "int8", "u8": "uint8",
                "i16": "int16", "i32": "int32", "i64": "int64", "bool": "bool"}

DTYPES: dict[str, DType] = {t.name: t for t in (F16, BF16, F32, F64, I8, U8, I16, I32, I64,
                                                 F8E4M3, F8E5M2, E8M0, F4E2M1)}

_STORAGE_ONLY = ("f16", "bf16", "f8e4m3", "f8e5m2", "e8m0", "f4e2m1")
#: The ml_dtypes scalar type of each type numpy lacks.
_ML_DTYPES = {"bf16": "bfloat16", "f8e4m3": "float8_e4m3fn", "f8e5m2": "float8_e5m2",
              "e8m0": "float8_e8m0fnu", "f4e2m1": "float4_e2m1fn"}
#: The largest finite value of each float type without infinities (its reductions start there).
_FINITE_MAX = {"f8e4m3": 448.0, "e8m0": 2.0 ** 127, "f4e2m1": 6.0}

#: The type of index variables, sizes and integer scalars used in index arithmetic.
INDEX = I64


def identity(op: str, dtype: DType) -> int | float:
    """The identity element of a reduction operator (`+=`, `*=`, `max=`, `min=`) on `dtype`."""
    if op == "+=":
        return 0.0 if dtype.is_float else 0
    if op == "*=":
        return 1.0 if dtype.is_float else 1
    if dtype.is_float and not dtype.has_inf:  # -inf would round to NaN: the finite extremes
        if dtype.name == "e8m0":  # no sign, no zero: the smallest power, 2^-127
            return 2.0 ** -127 if op == "max=" else _FINITE_MAX["e8m0"]
        return -_FINITE_MAX[dtype.name] if op == "max=" else _FINITE_MAX[dtype.name]
    if dtype.is_float:
        return float("-inf") if op == "max=" else float("inf")
    info = np.iinfo(_NUMPY_NAMES[dtype.name])
    return int(info.min) if op == "max=" else int(info.max)
