"""Ranges read from tensors: `y[i] += vals[p] * x[col[p]] where p in row_ptr[i]:row_ptr[i + 1]`
(CSR rows, ragged batches: `where t in 0:lengths[b]`).

A side of a `where v in lo:hi` range may be a read `T[affine]` of an integer input tensor. The
polyhedral model cannot know its value, so the statement's domain bounds `v` by what it indexes
directly instead (`vals[p]`: 0 <= p < extent of vals; an affine other side stays exact): an
over-approximation, so dependences stay conservative and sound. The statement keeps the range
(`ir.kernel.DataRange`): each instance runs only where `lo <= v < hi` holds (ir/codegen.py turns
that into the bounds of the loop over `v`). The values are checked once per call against the
over-approximation (an `IndexCheck` with `bound`: 0 <= value <= extent), never in the kernel;
`lo <= hi` is not required (an empty range runs nothing). `assume 0 <= row_ptr <= NNZ` declares
the values instead (`declared_values`): the domain takes that range, and the call checks it.
"""

from __future__ import annotations

from collections.abc import Callable

import islpy as isl

from loopweave.errors import DSLTypeError
from loopweave.frontend import ast
from loopweave.frontend.gathers import read_box, tensor_read
from loopweave.ir import expr as ir
from loopweave.ir.kernel import DataRange, IndexCheck, Statement, Tensor
from loopweave.ir.types import INDEX


def is_data_range(w: ast.WhereRange) -> bool:
    """Whether a side of `where v in lo:hi` reads a tensor."""
    return tensor_read(w.lo) is not None or tensor_read(w.hi) is not None


def ast_text(e: ast.Expr) -> str:
    """A bound as the DSL writes it (for messages)."""
    match e:
        case ast.Name(id=n):
            return n
        case ast.Num(value=v):
            return str(v)
        case ast.Access(tensor=t, indices=ix):
            return f"{t}[{', '.join(ast_text(i) for i in ix)}]"
        case ast.Binary(op=op, left=a, right=b):
            return f"{ast_text(a)} {op} {ast_text(b)}"
        case ast.Unary(op="-", operand=x):
            return f"-{ast_text(x)}"
    return "..."


def data_bound(side: ast.Expr, var: str, which: str, tensors: dict[str, Tensor],
               to_affine: Callable[[ast.Expr, str], ir.Expr]) -> ir.Expr:
    """The i64 expression of a range side read from a tensor (`row_ptr[i + 1]`); raises
    DSLTypeError unless it is a whole read of an integer input at affine indices."""
    if not isinstance(side, ast.Access):
        raise DSLTypeError(f"the {which} bound of '{var}' reads a tensor inside an expression: "
                           f"a range bound read from a tensor must be the whole read, as in "
                           f"`where {var} in row_ptr[i]:row_ptr[i + 1]` (put offsets into the "
                           "tensor)", side.pos)
    t = tensors.get(side.tensor)
    if t is None:
        raise DSLTypeError(f"unknown tensor '{side.tensor}'", side.pos)
    if not t.dtype.is_int:
        raise DSLTypeError(f"'{t.name}' is {t.dtype} and cannot bound a range: a range bound "
                           "must be read from an integer tensor (i8, u8, i16, i32 or i64)",
                           side.pos)
    if t.role != "in":
        raise DSLTypeError(f"'{t.name}' is not a read-only input and cannot bound a range: "
                           "its values are checked before the call", side.pos)
    if len(side.indices) != len(t.shape):
        raise DSLTypeError(f"'{t.name}' has rank {len(t.shape)} but is indexed with "
                           f"{len(side.indices)} index(es)", side.pos)
    for i in side.indices:
        if tensor_read(i) is not None:
            raise DSLTypeError(f"the indices of '{t.name}' read a tensor: a range bound is read "
                               "at affine indices", i.pos)
        if var in _names(i):
            raise DSLTypeError(f"the {which} bound of '{var}' depends on '{var}' itself",
                               i.pos)
    load = ir.Load(t.name, tuple(to_affine(i, f"index {k} of '{t.name}'")
                                 for k, i in enumerate(side.indices)), t.dtype)
    return load if load.dtype == INDEX else ir.Cast(INDEX, load)


def _names(e: ast.Expr) -> set[str]:
    found = set()

    def visit(x: ast.Expr) -> None:
        match x:
            case ast.Name(id=n):
                found.add(n)
            case ast.Access(indices=ix):
                for i in ix:
                    visit(i)
            case ast.Unary(operand=y):
                visit(y)
            case ast.Binary(left=a, right=b) | ast.Compare(left=a, right=b):
                visit(a)
                visit(b)
    visit(e)
    return found


_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "=="}


def declared_values(cond: ast.Expr, tensors: dict[str, Tensor],
                    to_affine: Callable[[ast.Expr], ir.Expr]
                    ) -> list[tuple[str, str, ir.Expr]] | None:
    """`assume 0 <= row_ptr <= NNZ`: [(tensor, "low" or "high", inclusive value)] for an
    `assume` condition that compares a bare tensor name with sizes; None if it names none."""
    parts, stack = [], [cond]
    while stack:
        c = stack.pop()
        if isinstance(c, ast.Binary) and c.op == "and":
            stack += [c.right, c.left]
        else:
            parts.append(c)

    def named(e: ast.Expr) -> bool:
        return isinstance(e, ast.Name) and e.id in tensors
    if not any(isinstance(c, ast.Compare) and (named(c.left) or named(c.right)) for c in parts):
        return None
    found = []
    for c in parts:
        if not isinstance(c, ast.Compare) or named(c.left) == named(c.right) or c.op == "!=":
            raise DSLTypeError("an `assume` on tensor values compares one tensor name with "
                               "sizes, as in `assume 0 <= row_ptr <= NNZ`", c.pos)
        name, other, op = (c.left.id, c.right, c.op) if named(c.left) \
            else (c.right.id, c.left, _FLIP[c.op])
        if not tensors[name].dtype.is_int or tensors[name].role != "in":
            raise DSLTypeError(f"`assume` bounds the values of integer inputs only, not "
                               f"'{name}'", c.pos)
        value = to_affine(other)
        if op in ("<=", "<", "=="):
            found.append((name, "high", value if op != "<" else ir.add(value, ir.Const(-1))))
        if op in (">=", ">", "=="):
            found.append((name, "low", value if op != ">" else ir.add(value, ir.Const(1))))
    return found


def data_range(w: ast.WhereRange, st: ast.Statement, tensors: dict[str, Tensor],
               to_affine: Callable[[ast.Expr, str], ir.Expr],
               declared: dict[str, dict[str, ir.Expr]]) -> tuple[DataRange, list[ir.Expr]]:
    """The range of `w` (a side read from a tensor) and the domain conditions of its affine
    side, if it has one, and of the values `declared` by `assume` lines for its bound tensors
    (tensor -> {"low": .., "high": ..}). Without a declaration for each, `w.var` must index a
    tensor of `st` directly."""
    use = direct_use(w.var, st, tensors)
    text = f"where {w.var} in {ast_text(w.lo)}:{ast_text(w.hi)}"
    sides, conds, known = [], [], []
    for which, e in (("lower", w.lo), ("upper", w.hi)):
        if tensor_read(e) is None:
            bound = to_affine(e, f"{which} bound of '{w.var}'")
            conds.append(ir.Binary("<=", bound, ir.Var(w.var), INDEX) if which == "lower"
                         else ir.Binary("<", ir.Var(w.var), bound, INDEX))
            sides.append(None)
            continue
        sides.append(data_bound(e, w.var, which, tensors, to_affine))
        values = declared.get(e.tensor, {})
        if "low" in values and "high" in values:
            known.append((e.tensor, values["low"], values["high"]))
            # lo >= low, hi <= high: the values bound v on their side
            conds.append(ir.Binary("<=", values["low"], ir.Var(w.var), INDEX) if which == "lower"
                         else ir.Binary("<", ir.Var(w.var), values["high"], INDEX))
        elif use is None:
            raise DSLTypeError(
                f"'{w.var}' has a range read from tensors ({text}), so its bounds for the "
                f"polyhedral model come from the tensor dimensions it indexes directly (as "
                f"vals[{w.var}]), and it indexes none; or declare the values of '{e.tensor}' "
                f"with `assume 0 <= {e.tensor} <= ...`", w.pos)
    return DataRange(w.var, sides[0], sides[1], text, *(use or ("", -1)),
                     declared=tuple(dict.fromkeys(known))), conds


def direct_use(var: str, st: ast.Statement, tensors: dict[str, Tensor]) -> tuple[str, int] | None:
    """The first (tensor, dimension) that `var` indexes directly in `st` (right side first, as
    `index_vars.implicit_range` takes the extent), or None."""
    def visit(e: ast.Expr) -> tuple[str, int] | None:
        match e:
            case ast.Access(tensor=t, indices=ix):
                for d, i in enumerate(ix):
                    if isinstance(i, ast.Name) and i.id == var and t in tensors \
                            and len(ix) == len(tensors[t].shape):
                        return t, d
                    if (found := visit(i)) is not None:
                        return found
            case ast.Unary(operand=x):
                return visit(x)
            case ast.Binary(left=a, right=b) | ast.Compare(left=a, right=b):
                return visit(a) or visit(b)
            case ast.Call(args=args):
                return next((f for a in args if (f := visit(a)) is not None), None)
        return None
    return visit(st.rhs) or visit(st.lhs)


def range_loads(s: Statement) -> list[ir.Load]:
    """The reads of the range bounds of `s` (proved in bounds like any access)."""
    return [x for r in s.data_ranges for side in (r.lo, r.hi) if side is not None
            for x in ir.loads(side)]


def range_checks(stmts: list[Statement], params: tuple[str, ...], context: isl.Set,
                 tensors: dict[str, Tensor]) -> tuple[IndexCheck, ...]:
    """What a call checks for each range read from tensors: the bound tensor's elements the
    statement reads (their bounding box) lie in 0 .. extent of the tensor dimension that
    bounds the variable in the model."""
    found: dict[IndexCheck, None] = {}
    for s in stmts:
        for r in s.data_ranges:
            declared = {t: (low, high) for t, low, high in r.declared}
            for load in [x for side in (r.lo, r.hi) if side is not None
                         for x in ir.loads(side)]:
                box = read_box(s, load, params, context)
                if box is None:
                    continue
                lo, hi = box
                if r.tensor:  # the extent that bounds the variable (its final shape)
                    found[IndexCheck(load.tensor, lo, hi, r.tensor, r.dim, r.text, s.pos.line,
                                     bound=True, low=ir.Const(0),
                                     high=tensors[r.tensor].shape[r.dim])] = None
                if load.tensor in declared:  # the values an `assume` declared
                    low, high = declared[load.tensor]
                    found[IndexCheck(load.tensor, lo, hi, "", -1, r.text, s.pos.line,
                                     bound=True, low=low, high=high)] = None
    return tuple(found)
