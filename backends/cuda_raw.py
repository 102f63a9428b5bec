"""`Raw`: C text standing for a value inside an IR expression.

The CUDA renderer (`cuda_render`) prints a `Raw` as its text; it and the contraction kernels
(`cuda_tiles`) put one where a value lives in a register or a shared-memory cell rather than in
a tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

from loopweave.ir.types import DType


@dataclass(frozen=True)
class Raw:
    """C text standing for a value inside an expression (a register, a shared-memory cell)."""

    text: str
    dtype: DType
