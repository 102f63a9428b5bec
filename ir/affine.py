"""Affine index expressions as linear forms {term: coefficient}, for simplification and for the
questions the loop-AST passes ask (is this constant? what is the stride along this variable?).

A term is a `Var`, a `Param` or an opaque non-affine sub-expression (a floor division, a min);
the constant has the key `None`.
"""

from __future__ import annotations

import islpy as isl

from loopweave.ir.expr import Binary, Const, Expr, Param, Unary, Var, add, mul, variables
from loopweave.ir.isl_helpers import dsl_name
from loopweave.ir.types import INDEX

Form = dict  # term (Expr) or None -> int


def linear(e: Expr) -> Form:
    """`e` as a linear form; non-affine parts become opaque terms."""
    match e:
        case Const(value=v) if isinstance(v, int):
            return {None: v}
        case Var() | Param():
            return {e: 1}
        case Unary(op="neg", operand=x):
            return {k: -c for k, c in linear(x).items()}
        case Binary(op="+" | "-", left=a, right=b):
            sign = 1 if e.op == "+" else -1
            form = dict(linear(a))
            for k, c in linear(b).items():
                form[k] = form.get(k, 0) + sign * c
            return {k: c for k, c in form.items() if c != 0 or k is None}
        case Binary(op="*", left=a, right=b):
            fa, fb = linear(a), linear(b)
            if set(fa) <= {None}:
                return {k: fa.get(None, 0) * c for k, c in fb.items()}
            if set(fb) <= {None}:
                return {k: fb.get(None, 0) * c for k, c in fa.items()}
    return {e: 1}


def from_linear(form: Form) -> Expr:
    """The expression of a linear form (terms in a stable order, constant last)."""
    result: Expr | None = None
    for term, coef in sorted(((k, c) for k, c in form.items() if k is not None and c),
                             key=lambda kc: str(kc[0])):
        part = term if coef == 1 else mul(Const(coef, INDEX), term)
        result = part if result is None else add(result, part)
    const = form.get(None, 0)
    if result is None:
        return Const(const, INDEX)
    return add(result, Const(const, INDEX)) if const else result


def simplify(e: Expr) -> Expr:
    """`e` with its affine parts collected: terms in a stable order, the constant last."""
    return from_linear(linear(e))


def constant_value(e: Expr) -> int | None:
    """The value of `e` if it is a constant once simplified."""
    form = linear(e)
    return form.get(None, 0) if all(k is None or c == 0 for k, c in form.items()) else None


def coefficient(e: Expr, var: str) -> int | None:
    """The coefficient of index variable `var` in `e`, or None if `var` is inside a non-affine
    part."""
    form = linear(e)
    coef = 0
    for term, c in form.items():
        if term == Var(var):
            coef = c
        elif term is not None and var in variables(term):
            return None
    return coef


def aff_to_expr(aff: isl.Aff, dim_names: list[str]) -> Expr:
    """An isl affine function of set dimensions `dim_names` (and parameters) as an expression."""
    den = aff.get_denominator_val().to_python()
    form: Form = {None: (aff.get_constant_val() * den).to_python()}
    for k, name in enumerate(dim_names):
        form[Var(name)] = (aff.get_coefficient_val(isl.dim_type.in_, k) * den).to_python()
    for k in range(aff.dim(isl.dim_type.param)):
        name = dsl_name(aff.get_dim_name(isl.dim_type.param, k))
        form[Param(name)] = (aff.get_coefficient_val(isl.dim_type.param, k) * den).to_python()
    for k in range(aff.dim(isl.dim_type.div)):
        if not aff.get_coefficient_val(isl.dim_type.div, k).is_zero():
            raise ValueError(f"not an affine expression without divisions: {aff}")
    e = from_linear(form)
    return e if den == 1 else Binary("/", e, Const(den, INDEX), INDEX)


def row_major_offset(shape: tuple[Expr, ...], indices: tuple[Expr, ...]) -> Expr:
    """The row-major element offset of `indices` in a tensor of `shape`:
    ((i0 * d1 + i1) * d2 + i2); 0 for a tensor without dimensions."""
    if not indices:
        return Const(0)
    result = indices[0]
    for dim, index in zip(shape[1:], indices[1:], strict=True):
        result = add(mul(result, dim), index)
    return result
