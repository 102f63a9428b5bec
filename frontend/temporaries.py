"""What the checker decides about a temporary beyond its first write: its type when that write
has no typed value (`t[i] = 0`), and its shape as later writes reach further.

Type: the type of the first write's right side. An untyped one (only literals, sizes and index
variables) takes the type of the first later write of the same temporary that has a typed right
side (`t[i] = 0` then `t[i] += A[i, j]`); failing that, a float literal takes the kernel's float
type (f64 when every float tensor and scalar of the kernel is f64) and an integer one is i64.
Shape: the bounding box, from 0, of the elements all its writes reach.
"""

from __future__ import annotations

from collections.abc import Iterable

import islpy as isl

from loopweave.errors import DSLTypeError, SourcePos
from loopweave.frontend import ast
from loopweave.frontend.ast_walk import accessed, names_in
from loopweave.frontend.values import Typed, ValueTyper
from loopweave.ir import expr as ir
from loopweave.ir.kernel import ScalarArg, Tensor
from loopweave.ir.types import F32, INDEX, DType


def kernel_float_type(dtypes: Iterable[DType]) -> DType:
    """The kernel's one float compute type, or f32 where it has none or several."""
    floats = {d.compute for d in dtypes if d.is_float}
    return floats.pop() if len(floats) == 1 else F32


class _Unknown(Exception):
    """The statement names something not declared yet: its type cannot be told in advance."""


class _Lookahead(ValueTyper):
    """Types a later write's right side with what is declared now; the temporary being typed
    reads as an untyped value (it adopts its partners' type, as a literal does)."""

    def __init__(self, pending: str, tensors: dict[str, Tensor], scalars: dict[str, ScalarArg]):
        def resolve(name: str, pos: SourcePos) -> Typed:
            if name in scalars:
                return Typed(ir.Scalar(name, scalars[name].dtype.compute))
            if name in tensors and not tensors[name].shape:
                return self(ast.Access(name, (), pos))
            if name in tensors:
                raise _Unknown()
            return Typed(ir.Var(name), weak=True)  # an index variable, size or loop variable

        def load(a: ast.Access) -> ir.Load:
            if a.tensor not in tensors:
                raise _Unknown()
            return ir.Load(a.tensor, (), tensors[a.tensor].dtype)

        super().__init__(resolve, load)
        self.pending = pending

    def __call__(self, e: ast.Expr) -> Typed:
        is_pending = isinstance(e, ast.Access | ast.Name) and \
            (e.tensor if isinstance(e, ast.Access) else e.id) == self.pending
        if is_pending:
            return Typed(ir.Const(0, INDEX), weak=True)
        return super().__call__(e)


def temporary_type(st: ast.Statement, rhs: Typed, writes: list[ast.Statement],
                   tensors: dict[str, Tensor], scalars: dict[str, ScalarArg],
                   kernel_float: DType) -> tuple[DType, bool]:
    """The type of the temporary that `st` (among `writes`, all writes of it) declares with the
    value `rhs`, and whether it is a default that no write determined."""
    if not rhs.weak:
        return rhs.expr.dtype, False
    is_float = rhs.expr.dtype.is_float
    later = writes[next(k for k, w in enumerate(writes) if w is st) + 1:]
    typer = _Lookahead(st.lhs.tensor, tensors, scalars)
    for w in later:
        try:
            value = typer(w.rhs)
        except (_Unknown, DSLTypeError):
            continue
        dtype = value.expr.dtype
        # A float literal never becomes an integer; the write that would make it is an error.
        if not (value.weak or dtype.name == "bool" or (is_float and not dtype.is_float)):
            return dtype, False
    return (kernel_float if is_float else INDEX), True


def grown_extents(old: tuple[isl.PwAff, ...], new: tuple[isl.PwAff, ...],
                  context: isl.Set) -> tuple[isl.PwAff, ...] | None:
    """The per-dimension maximum of two extents, or None where `new` never exceeds `old`."""
    if all(context.is_subset(n.le_set(o)) for o, n in zip(old, new, strict=True)):
        return None
    return tuple(o.union_max(n).coalesce() for o, n in zip(old, new, strict=True))


def untyped_hints(st: ast.Statement, untyped: dict[str, SourcePos],
                  tensors: dict[str, Tensor], kernel_float: DType) -> str:
    """What to add to a type error in `st` for each temporary it reads whose type is a default
    (`untyped`: their first writes)."""
    used = names_in(st.rhs) | accessed(st.rhs)
    hints = []
    for name, pos in untyped.items():
        if name in used and name != st.lhs.tensor:
            dtype = tensors[name].dtype
            other = kernel_float if dtype.is_int else ("f32" if dtype.name == "f64" else "f64")
            hints.append(f" ('{name}' is {dtype} because its first write, line {pos.line}, has "
                         f"no typed value and no later write gives one; give the type there, "
                         f"e.g. {other}(0))")
    return "".join(hints)
