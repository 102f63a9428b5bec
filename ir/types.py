"""Element types of tensors and scalars.

f16 and bf16 are storage types: values are widened to f32 when loaded and rounded when stored,
so arithmetic on them happens in f32 (as Triton and CUDA kernels do).
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
        """True for f16/bf16: computed in f32, stored narrow."""
        return self.name in ("f16", "bf16")

    @property
    def compute(self) -> DType:
        """The type arithmetic on this type happens in."""
        return F32 if self.is_storage_only else self

    @property
    def numpy(self) -> np.dtype:
        if self.name == "bf16":
            try:
                import ml_dtypes  # optional: numpy has no bfloat16 of its own

                return np.dtype(ml_dtypes.bfloat16)
            except ImportError:
                return np.dtype(np.uint16)
        return np.dtype(_NUMPY_NAMES[self.name])

    def __str__(self) -> str:
        return self.name


F16 = DType("f16", 16, "float", "uint16_t")
BF16 = DType("bf16", 16, "float", "uint16_t")
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

DTYPES: dict[str, DType] = {t.name: t for t in (F16, BF16, F32, F64, I8, U8, I16, I32, I64)}

#: The type of index variables, sizes and integer scalars used in index arithmetic.
INDEX = I64


def identity(op: str, dtype: DType) -> int | float:
    """The identity element of a reduction operator (`+=`, `*=`, `max=`, `min=`) on `dtype`."""
    if op == "+=":
        return 0.0 if dtype.is_float else 0
    if op == "*=":
        return 1.0 if dtype.is_float else 1
    if dtype.is_float:
        return float("-inf") if op == "max=" else float("inf")
    info = np.iinfo(_NUMPY_NAMES[dtype.name])
    return int(info.min) if op == "max=" else int(info.max)
