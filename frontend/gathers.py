"""Indirect reads (gathers): an index of a read that is itself a read of an integer input
tensor, as in `out[i, d] = table[ids[i], d]` or `y[i] += vals[p] * x[col[p]]`.

The rules, each with its own error:
- the whole index is the read (`table[ids[i], d]`; `table[ids[i] + 1, d]` is refused);
- the index tensor is an integer input: its values are fixed for the call, so they are checked
  once before it runs (`IndexCheck`, in loopweave.runtime), never in the generated code;
- its own indices are affine (no gather of a gather);
- writes stay affine: `out[ids[i]] = ...` (a scatter) is refused.
The polyhedral model treats the index as an unknown (`Statement.access_map`): the access may
touch any element along that dimension, so dependences through it are conservative.
"""

from __future__ import annotations

from collections.abc import Callable

import islpy as isl

from loopweave.errors import DSLTypeError
from loopweave.frontend import ast
from loopweave.frontend.ast_walk import walk
from loopweave.ir import expr as ir
from loopweave.ir import isl_helpers
from loopweave.ir.kernel import IndexCheck, Statement, Tensor
from loopweave.ir.types import INDEX


def tensor_read(e: ast.Expr) -> ast.Access | None:
    """The first tensor read inside `e` (an index expression), or None."""
    return next((x for x in walk(e) if isinstance(x, ast.Access)), None)


def scatter_error(tensor: str, dim: int, read: ast.Access) -> DSLTypeError:
    """The error for a write indexed by tensor values."""
    return DSLTypeError(f"index {dim} of the write to '{tensor}' reads tensor '{read.tensor}': "
                        "a data-dependent write (a scatter) is not supported; only reads may be "
                        f"indexed by tensor values, as in out[i] = {tensor}[{read.tensor}[i]]",
                        read.pos)


def gather_index(index: ast.Access, tensors: dict[str, Tensor],
                 load: Callable[[ast.Access], ir.Load]) -> ir.Expr:
    """The index `ids[i]` of a gather as an i64 expression; `load` checks and builds the read
    of the index tensor itself."""
    inner = load(index)
    t = tensors[index.tensor]
    if not t.dtype.is_int:
        raise DSLTypeError(f"'{t.name}' is {t.dtype} and cannot index a tensor: an index must "
                           "be an integer tensor (i8, u8, i16, i32 or i64)", index.pos)
    if t.role != "in":
        what = {"inout": "an inout tensor", "out": "an output",
                "temp": "a temporary"}.get(t.role, "written by the kernel")
        raise DSLTypeError(f"'{t.name}' is {what} and cannot index a tensor: an index tensor "
                           "must be a read-only input, whose values are checked before the call",
                           index.pos)
    if any(ir.is_indirect(x) for x in inner.indices):
        raise DSLTypeError(f"the indices of '{t.name}' read a tensor: an index tensor must be "
                           "read at affine indices (no gather of a gather)", index.pos)
    return inner if inner.dtype == INDEX else ir.Cast(INDEX, inner)


def access_text(load: ir.Load) -> str:
    """A gather as the DSL writes it: `table[ids[i], d]` (without the widening cast)."""
    def index(x: ir.Expr) -> str:
        inner = ir.loads(x)
        return ir.to_str(inner[0]) if ir.is_indirect(x) else ir.to_str(x)
    return f"{load.tensor}[{', '.join(index(x) for x in load.indices)}]"


def index_checks(stmts: list[Statement], params: tuple[str, ...],
                 context: isl.Set) -> tuple[IndexCheck, ...]:
    """What a call checks for each gather of `stmts`: the index tensor's elements the statement
    reads (their bounding box, empty for sizes where it reads none) against the extent of the
    dimension they index."""
    found: dict[IndexCheck, None] = {}
    for s in stmts:
        for load in ir.loads(s.rhs):
            for dim, x in enumerate(load.indices):
                if not ir.is_indirect(x):
                    continue
                index = ir.loads(x)[0]
                box = read_box(s, index, params, context)
                if box is not None:
                    found[IndexCheck(index.tensor, *box, load.tensor, dim, access_text(load),
                                     s.pos.line)] = None
    return tuple(found)


def read_box(s: Statement, load: ir.Load, params: tuple[str, ...], context: isl.Set
             ) -> tuple[tuple[ir.Expr, ...], tuple[ir.Expr, ...]] | None:
    """(lowest, one past the highest) element per dimension that `s` reads through `load`, in
    the parameters; None where it reads none for any sizes the context allows."""
    elements = s.access_map(params, load).range().intersect_params(context)
    if elements.is_empty():
        return None
    names = frozenset(params)
    n = elements.dim(isl.dim_type.set)
    lo = tuple(isl_helpers.pw_aff_to_expr(elements.dim_min(d), context, names)
               for d in range(n))
    hi = tuple(isl_helpers.pw_aff_to_expr(isl_helpers.extent_of(elements, d), context, names)
               for d in range(n))
    return lo, hi
