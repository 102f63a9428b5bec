"""Gathers in a vector loop: `x[col[p]]`, p the vector variable, col an i32 tensor.

The lanes' elements are read by one gather instruction (AVX2 and AVX-512 `i32gather`, Helium's
`vldrwq_gather_shifted_offset`) from a base pointer, with the lanes' index values as a vector of
i32 offsets in elements. The index must move only the tensor's last dimension (offsets in
elements, stride 1): `x[col[p]]`, `T[g, w[k]]` (base `&T[g, 0]`; the checker allows a tensor
value only as a whole index). The offsets are the index tensor's own i32 values, so they cannot
overflow, and every value was checked against the tensor's extent when the kernel was called
(`compiler/runtime.check_indices`): each lane reads inside the tensor. NEON has no gather
instruction: such a loop stays scalar there.
"""

from __future__ import annotations

from loopweave.backends.simd_isas import CannotLower
from loopweave.ir import expr as ir
from loopweave.ir.types import I32


def gather_operands(indices: tuple[ir.Expr, ...], var: str
                    ) -> tuple[tuple[ir.Expr, ...], ir.Expr]:
    """The indices of the base element and the i32 expression of each lane's offset from it,
    for a load whose indices move with the vector variable `var` through a tensor read.
    Raises CannotLower for any other shape (the loop then stays scalar)."""
    moving = [k for k, x in enumerate(indices) if var in ir.variables(x)]
    if moving != [len(indices) - 1]:
        raise CannotLower("gather: the index moves a dimension but the last")
    lane = indices[-1]
    while isinstance(lane, ir.Cast) and lane.dtype.kind == "int" and \
            lane.operand.dtype.kind == "int" and lane.dtype.bits >= lane.operand.dtype.bits:
        lane = lane.operand  # i64(col[p]): the i32 value itself, widened losslessly
    if lane.dtype != I32:
        raise CannotLower("gather: offsets that are not i32")
    return (*indices[:-1], ir.Const(0)), lane

