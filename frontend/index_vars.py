"""A statement's index variables: which names they are, in order of first appearance, and the
range a variable takes from the extents of the tensor dimensions it indexes directly."""

from __future__ import annotations

from collections.abc import Callable

import islpy as isl

from loopweave.errors import DSLTypeError
from loopweave.frontend import ast
from loopweave.frontend.ast_walk import first_use, names_in
from loopweave.ir import expr as ir
from loopweave.ir.kernel import Tensor


def find_index_vars(st: ast.Statement, is_free: Callable[[str], bool]) -> list[str]:
    """Index variables in order of first appearance: left side, right side, `where`.
    `is_free(name)`: the name is no tensor, scalar, size or enclosing loop variable."""
    order: list[str] = []
    in_index: set[str] = set()

    def visit(e: ast.Expr, index_position: bool) -> None:
        match e:
            case ast.Name(id=n):
                if is_free(n) and n != st.lhs.tensor:
                    if n not in order:
                        order.append(n)
                    if index_position:
                        in_index.add(n)
            case ast.Access(indices=ix):
                for i in ix:
                    visit(i, True)
            case ast.Unary(operand=x):
                visit(x, index_position)
            case ast.Binary(left=a, right=b) | ast.Compare(left=a, right=b):
                visit(a, index_position)
                visit(b, index_position)
            case ast.Call(args=args):
                for a in args:
                    visit(a, index_position)

    visit(st.lhs, True)
    visit(st.rhs, False)
    for w in st.where:
        if isinstance(w, ast.WhereRange):
            if not is_free(w.var):
                raise DSLTypeError(f"'{w.var}' in `where {w.var} in ...` is not an index "
                                   "variable", w.pos)
            if w.var not in order:
                order.append(w.var)
            in_index.add(w.var)
            visit(w.lo, True)
            visit(w.hi, True)
        else:
            visit(w.cond, True)
    # A name seen only as a value (never indexing anything) is a misspelling, not a variable.
    return [n for n in order if n in in_index]


def implicit_range(var: str, st: ast.Statement, tensors: dict[str, Tensor],
                   extents: dict[str, tuple[isl.PwAff, ...]], context: isl.Set) -> isl.PwAff:
    """The extent of `var`, from the dimensions it indexes directly; they must agree."""
    uses: list[tuple[str, int, object]] = []

    def visit(e: ast.Expr) -> None:
        match e:
            case ast.Access(tensor=t, indices=ix):
                for d, i in enumerate(ix):
                    if isinstance(i, ast.Name) and i.id == var and t in tensors \
                            and len(ix) == len(tensors[t].shape):
                        uses.append((t, d, i.pos))
                    visit(i)
            case ast.Unary(operand=x):
                visit(x)
            case ast.Binary(left=a, right=b) | ast.Compare(left=a, right=b):
                visit(a)
                visit(b)
            case ast.Call(args=args):
                for a in args:
                    visit(a)
    visit(st.rhs)
    rhs_uses, uses[:] = list(uses), []
    # A temporary's own extent counts only when nothing else gives one: a later write that
    # reaches further grows it.
    target = tensors.get(st.lhs.tensor)
    if not (rhs_uses and target is not None and target.role == "temp"):
        visit(st.lhs)
    uses += rhs_uses
    if not uses:
        raise DSLTypeError(f"cannot infer the range of index '{var}': it never indexes a tensor "
                           f"dimension directly; give it with `where {var} in lo:hi`",
                           first_use(st, var) if var in names_in(st.rhs) else st.pos)
    t0, d0, _ = uses[0]
    for t, d, pos in uses[1:]:
        a, b = extents[t0][d0], extents[t][d]
        if not context.is_subset(a.eq_set(b)):
            ea, eb = ir.to_str(tensors[t0].shape[d0]), ir.to_str(tensors[t].shape[d])
            raise DSLTypeError(f"index '{var}' ranges over dimension {d0} of '{t0}' (extent "
                               f"{ea}) and dimension {d} of '{t}' (extent {eb}), which may "
                               f"differ; use `where {var} in lo:hi` or an `assume`", pos)
    return extents[t0][d0]
