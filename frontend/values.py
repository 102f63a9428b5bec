"""Typing of DSL expressions: value expressions (with dtypes) and affine index expressions.

Typing rules (strict, as in Triton/Halide with explicit casts):
- Operands of an arithmetic or comparison operator must have the same dtype.
- Literals, size symbols and index variables are *weak*: they take the type of the other operand
  (`X[i] / D` divides by D converted to X's type; `2 * x` multiplies in x's type).
  A weak float never becomes an integer. An expression made only of weak parts is typed by its
  assignment target; on its own a weak integer is i64 and a weak float is f32.
- f16 and bf16 values are computed in f32: loads widen, stores round.
- Integer `/` and `%` are floor division and floor modulo; bit operations need integers.
- `inf` and `nan` are weak float literals; `bitcast(x, T)` reinterprets the bits of a value
  (a storage type's stored bits) as type T of the same width.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from loopweave.errors import DSLTypeError, SourcePos
from loopweave.frontend import ast
from loopweave.ir import expr as ir
from loopweave.ir.affine import linear
from loopweave.ir.types import BOOL, DTYPES, F32, I16, I32, I64, INDEX, U8, DType

MATH_FUNCS = ("exp", "exp2", "log", "sqrt", "tanh", "sigmoid", "erf")
NUMERIC_FUNCS = ("abs", "min", "max", "pow", "ldexp", "select")
FUNCTIONS = (*MATH_FUNCS, *NUMERIC_FUNCS, "bitcast")
#: Names that are float literals, never index variables or tensors.
FLOAT_WORDS = {"inf": math.inf, "nan": math.nan}
#: The integer type of each width: bitcast's weak literals take it.
_BITS_INT = {8: U8, 16: I16, 32: I32, 64: I64}
_ARITH = ("+", "-", "*", "/", "%")
_BITS = ("&", "|", "^", "<<", ">>")


@dataclass(frozen=True, slots=True)
class Typed:
    """A checked expression; `weak` marks literals/sizes/indices that adopt a partner's type."""

    expr: ir.Expr
    weak: bool = False


def _fits(value: int, dtype: DType) -> bool:
    info = np.iinfo(dtype.numpy)
    return int(info.min) <= value <= int(info.max)


def coerce(t: Typed, dtype: DType, pos: SourcePos, what: str) -> ir.Expr:
    """`t` as a value of `dtype`; weak values convert, strong ones must already match."""
    if t.expr.dtype == dtype:
        return t.expr
    if not t.weak:
        raise DSLTypeError(f"{what} has type {t.expr.dtype} where {dtype} is needed; "
                           f"convert it with {dtype}(...)", pos)
    if t.expr.dtype.is_float and not dtype.is_float:
        raise DSLTypeError(f"{what} is a float where {dtype} is needed; "
                           f"convert it with {dtype}(...)", pos)
    if dtype.kind == "bool":  # `1 < (a < b)`: a number is not a truth value
        raise DSLTypeError(f"{what} is a number where a bool is needed (a comparison's "
                           f"result); compare it instead, e.g. (... != 0)", pos)
    if isinstance(t.expr, ir.Const):
        if dtype.is_float:
            return ir.Const(float(t.expr.value), dtype)
        if not _fits(int(t.expr.value), dtype):
            raise DSLTypeError(f"literal {t.expr.value} does not fit in {dtype}", pos)
        return ir.Const(int(t.expr.value), dtype)
    if t.expr.dtype.is_float and dtype.is_float:
        return _retyped(t.expr, dtype)
    return ir.Cast(dtype, t.expr)


def _retyped(e: ir.Expr, dtype: DType) -> ir.Expr:
    """A weak float expression computed in `dtype` throughout, not computed in its own type
    and converted (`tanh(1.0)` stored to f64 is f64's tanh of 1.0: a weak expression is typed
    by its target). Its conditions and integer parts keep their types."""
    weak = e.dtype
    def visit(x: ir.Expr) -> ir.Expr:
        if x.dtype != weak:  # a condition of a select, an index: not a weak float
            return x
        match x:
            case ir.Const(value=v):
                return ir.Const(float(v), dtype)
            case ir.Cast(operand=o):  # a weak integer (an index, a size) made a float
                return ir.Cast(dtype, o)
            case ir.Unary(op=op, operand=o):
                return ir.Unary(op, visit(o), dtype)
            case ir.Binary(op=op, left=a, right=b):
                return ir.Binary(op, visit(a), visit(b), dtype)
            case ir.Call(func=f, args=args):
                return ir.Call(f, tuple(visit(a) for a in args), dtype)
        return ir.Cast(dtype, x)
    return visit(e)


def default_type(t: Typed) -> ir.Expr:
    """A weak expression standing alone: integers as i64, floats as f32."""
    if not t.weak:
        return t.expr
    return coerce(t, F32 if t.expr.dtype.is_float else INDEX, SourcePos(0, 0), "")


def unify(a: Typed, b: Typed, pos: SourcePos, op: str) -> tuple[ir.Expr, ir.Expr, DType, bool]:
    """Bring two operands to one dtype; returns (a, b, dtype, weak)."""
    if a.weak and b.weak:
        if a.expr.dtype.is_float or b.expr.dtype.is_float:
            dtype = F32 if F32 in (a.expr.dtype, b.expr.dtype) else a.expr.dtype
            dtype = dtype if dtype.is_float else b.expr.dtype
            return (coerce(a, dtype, pos, "operand"), coerce(b, dtype, pos, "operand"), dtype, True)
        return a.expr, b.expr, INDEX, True
    if a.weak:
        return coerce(a, b.expr.dtype, pos, f"left operand of '{op}'"), b.expr, b.expr.dtype, False
    if b.weak:
        return a.expr, coerce(b, a.expr.dtype, pos, f"right operand of '{op}'"), a.expr.dtype, False
    if a.expr.dtype != b.expr.dtype:
        raise DSLTypeError(f"operands of '{op}' have types {a.expr.dtype} and {b.expr.dtype}; "
                           f"convert one of them, e.g. {a.expr.dtype}(...)", pos)
    return a.expr, b.expr, a.expr.dtype, False


class ValueTyper:
    """Types the right side of a statement. `resolve(name, pos)` says what a bare name means."""

    def __init__(self, resolve: Callable[[str, SourcePos], Typed],
                 load: Callable[[ast.Access], ir.Load]):
        self.resolve = resolve
        self.load = load

    def __call__(self, e: ast.Expr) -> Typed:
        match e:
            case ast.Num(value=v, is_float=True):
                if not math.isfinite(v):
                    raise DSLTypeError(f"float literal out of range: {v}", e.pos)
                return Typed(ir.Const(v, F32), weak=True)
            case ast.Num(value=v):
                if not _fits(v, INDEX):
                    raise DSLTypeError(f"integer literal {v} does not fit in 64 bits", e.pos)
                return Typed(ir.Const(v, INDEX), weak=True)
            case ast.Name(id=name) if name in FLOAT_WORDS:
                return Typed(ir.Const(FLOAT_WORDS[name], F32), weak=True)
            case ast.Name(id=name):
                return self.resolve(name, e.pos)
            case ast.Access():
                load = self.load(e)
                if load.dtype.is_storage_only:
                    return Typed(ir.Cast(F32, load))
                return Typed(load)
            case ast.Unary(op=op, operand=x):
                return self._unary(op, self(x), e.pos)
            case ast.Binary(op=op, left=a, right=b):
                return self._binary(op, self(a), self(b), e.pos)
            case ast.Compare(op=op, left=a, right=b):
                ea, eb, _, _ = unify(self(a), self(b), e.pos, op)
                return Typed(ir.Binary(op, ea, eb, BOOL))
            case ast.Call(func="bitcast", args=args):
                return self._bitcast(args, e.pos)
            case ast.Call(func=f, args=args):
                return self._call(f, [self(a) for a in args], e.pos)
        raise AssertionError(type(e).__name__)

    def _unary(self, op: str, x: Typed, pos: SourcePos) -> Typed:
        if op == "not":
            if x.expr.dtype != BOOL:
                raise DSLTypeError(f"'not' needs a condition, not a {x.expr.dtype} value", pos)
            return Typed(ir.Unary("not", x.expr, BOOL))
        if op == "~" and x.expr.dtype.is_float:
            raise DSLTypeError("'~' needs an integer operand", pos)
        if x.expr.dtype == BOOL:
            raise DSLTypeError(f"'{op}' cannot apply to a condition", pos)
        if op == "-":
            return negated(x)
        return Typed(ir.Unary("invert", x.expr, x.expr.dtype), x.weak)

    def _binary(self, op: str, a: Typed, b: Typed, pos: SourcePos) -> Typed:
        if op in ("and", "or"):
            if a.expr.dtype != BOOL or b.expr.dtype != BOOL:
                raise DSLTypeError(f"'{op}' joins conditions (comparisons), not values", pos)
            return Typed(ir.Binary(op, a.expr, b.expr, BOOL))
        if BOOL in (a.expr.dtype, b.expr.dtype):
            raise DSLTypeError(f"'{op}' cannot apply to a condition; use select(c, a, b)", pos)
        ea, eb, dtype, weak = unify(a, b, pos, op)
        if op in _BITS and dtype.is_float:
            raise DSLTypeError(f"'{op}' needs integer operands, not {dtype}", pos)
        return Typed(ir.Binary(op, ea, eb, dtype), weak)

    def _call(self, f: str, args: list[Typed], pos: SourcePos) -> Typed:
        if f in DTYPES:
            if len(args) != 1:
                raise DSLTypeError(f"the cast {f}(x) takes one argument, not {len(args)}", pos)
            target = DTYPES[f]
            if args[0].expr.dtype == BOOL:
                raise DSLTypeError(f"cannot cast a condition to {f}; use select(c, 1, 0)", pos)
            value = default_type(args[0])
            if target.is_storage_only:
                # f16/bf16 values live in f32: round through the narrow type.
                return Typed(ir.Cast(F32, ir.Cast(target, value)))
            if isinstance(value, ir.Const):
                converted = float(value.value) if target.is_float else int(value.value)
                if not target.is_float and not _fits(converted, target):
                    raise DSLTypeError(f"constant {converted} does not fit in {f}", pos)
                return Typed(ir.Const(converted, target))
            return Typed(ir.Cast(target, value) if value.dtype != target else value)
        arity = {"select": 3, "pow": 2, "ldexp": 2, "min": 2, "max": 2}.get(f, 1)
        if f not in FUNCTIONS:
            raise DSLTypeError(f"unknown function '{f}'; known: {', '.join(FUNCTIONS)} and casts "
                               f"({', '.join(DTYPES)})", pos)
        if len(args) != arity:
            raise DSLTypeError(f"{f}() takes {arity} argument(s), not {len(args)}", pos)
        if f == "select":
            cond, a, b = args
            if cond.expr.dtype != BOOL:
                raise DSLTypeError("the first argument of select() must be a condition", pos)
            ea, eb, dtype, weak = unify(a, b, pos, "select")
            return Typed(ir.Call("select", (cond.expr, ea, eb), dtype), weak)
        if any(a.expr.dtype == BOOL for a in args):
            raise DSLTypeError(f"{f}() takes numbers, not conditions", pos)
        if f == "ldexp":
            return _ldexp(*args, pos)
        if f in MATH_FUNCS or f == "pow":
            if not all(a.expr.dtype.is_float or a.weak for a in args):
                raise DSLTypeError(f"{f}() needs a float argument; convert with f32(...)", pos)
            if len(args) == 2:
                ea, eb, dtype, weak = unify(*_floaty(args), pos, f)
                return Typed(ir.Call(f, (ea, eb), dtype), weak)
            (a,) = _floaty(args)
            return Typed(ir.Call(f, (a.expr,), a.expr.dtype), a.weak)
        if len(args) == 2:
            ea, eb, dtype, weak = unify(args[0], args[1], pos, f)
            return Typed(ir.Call(f, (ea, eb), dtype), weak)
        return Typed(ir.Call(f, (args[0].expr,), args[0].expr.dtype), args[0].weak)

    def _bitcast(self, args: tuple[ast.Expr, ...], pos: SourcePos) -> Typed:
        """`bitcast(x, T)`: the bits of `x` (a storage type's stored bits) as type `T`."""
        if len(args) != 2 or not isinstance(args[1], ast.Name) or args[1].id not in DTYPES:
            raise DSLTypeError("bitcast(x, T) takes a value and a type name, e.g. "
                               "bitcast(X[i], u8)", pos)
        target = DTYPES[args[1].id]
        x = self(args[0])
        if x.expr.dtype == BOOL:
            raise DSLTypeError("bitcast() takes a number, not a condition", pos)
        if x.weak and x.expr.dtype.is_float:
            raise DSLTypeError("bitcast() of a float literal: write the bits as an integer, or "
                               "cast the literal first, e.g. bitcast(f32(1.5), i32)", pos)
        value = coerce(x, _BITS_INT[target.bits], pos, "bitcast's argument") if x.weak \
            else x.expr
        if isinstance(value, ir.Cast) and value.dtype == F32 and \
                value.operand.dtype.is_storage_only:
            value = value.operand  # a storage type's value: its stored bits
        if value.dtype.bits != target.bits:
            raise DSLTypeError(f"bitcast() to {target} ({target.bits} bits) needs a value of "
                               f"{target.bits} bits, not {value.dtype} ({value.dtype.bits} bits)",
                               pos)
        result = ir.Call("bitcast", (value,), target)
        return Typed(ir.Cast(F32, result) if target.is_storage_only else result)


def _ldexp(x: Typed, n: Typed, pos: SourcePos) -> Typed:
    """`ldexp(x, n)`: x * 2^n for a float x and an integer n (converted to i32), rounded once."""
    if not (x.expr.dtype.is_float or x.weak):
        raise DSLTypeError("ldexp(x, n) needs a float x; convert with f32(...)", pos)
    if n.expr.dtype.is_float:
        raise DSLTypeError(f"ldexp(x, n) needs an integer n, not {n.expr.dtype}; convert "
                           f"with i32(...)", pos)
    (x,) = _floaty([x])
    value = default_type(x) if x.weak else x.expr
    exponent = coerce(n, I32, pos, "ldexp's exponent") if n.weak else \
        (n.expr if n.expr.dtype == I32 else ir.Cast(I32, n.expr))
    return Typed(ir.Call("ldexp", (value, exponent), value.dtype))


def negated(x: Typed) -> Typed:
    """`-x` (a number, not a condition), folded when `x` is a constant."""
    if isinstance(x.expr, ir.Const):
        return Typed(ir.Const(-x.expr.value, x.expr.dtype), x.weak)
    return Typed(ir.Unary("neg", x.expr, x.expr.dtype), x.weak)


def _floaty(args: list[Typed]) -> list[Typed]:
    """Weak integers passed to a math function become weak floats."""
    out = []
    for a in args:
        if a.weak and not a.expr.dtype.is_float:
            expr = (ir.Const(float(a.expr.value), F32) if isinstance(a.expr, ir.Const)
                    else ir.Cast(F32, a.expr))
            out.append(Typed(expr, weak=True))
        else:
            out.append(a)
    return out


# -- affine index expressions ----------------------------------------------------------------------

class NotAffine(Exception):
    """Raised inside `affine()`; the caller turns it into a DSLTypeError naming the context."""


def _const_value(e: ir.Expr) -> int | None:
    return int(e.value) if isinstance(e, ir.Const) else None


def affine(e: ast.Expr, name_kind: Callable[[str, SourcePos], ir.Expr]) -> ir.Expr:
    """A quasi-affine integer expression (index, range bound, shape) as `ir.expr`.

    `name_kind(name, pos)` maps a name to `ir.Var` or `ir.Param` (or raises DSLTypeError).
    Products need a constant factor; `/` and `%` need a positive constant divisor.
    """
    result = _affine(e, name_kind)
    if result.dtype == BOOL:
        raise NotAffine("a condition is not an integer value")
    return result


def affine_condition(e: ast.Expr, name_kind: Callable[[str, SourcePos], ir.Expr]) -> ir.Expr:
    """An affine condition (comparisons joined by and/or/not), as for `where` and `assume`."""
    result = _affine(e, name_kind)
    if result.dtype != BOOL:
        raise NotAffine("a condition must be a comparison, e.g. N > 0")
    return result


def _affine(e: ast.Expr, name_kind: Callable[[str, SourcePos], ir.Expr]) -> ir.Expr:
    """`affine` or `affine_condition` without the check of the result's kind."""
    match e:
        case ast.Num(value=v, is_float=False):
            if not _fits(v, INDEX):
                raise NotAffine(f"integer literal {v} does not fit in 64 bits")
            return ir.Const(v, INDEX)
        case ast.Num():
            raise NotAffine("a float literal is not an index")
        case ast.Name(id=name):
            return name_kind(name, e.pos)
        case ast.Unary(op="-", operand=x):
            inner = affine(x, name_kind)
            c = _const_value(inner)
            return ir.Const(-c, INDEX) if c is not None else ir.Unary("neg", inner, INDEX)
        case ast.Binary(op=op, left=a, right=b) if op in _ARITH:
            ea, eb = affine(a, name_kind), affine(b, name_kind)
            ca, cb = _const_value(ea), _const_value(eb)
            if ca is not None and cb is not None and op in ("+", "-", "*"):
                value = {"+": ca + cb, "-": ca - cb, "*": ca * cb}[op]
                if not _fits(value, INDEX):  # the generated C computes indices in 64 bits
                    raise NotAffine(f"the constant {value} does not fit in 64 bits")
                return ir.Const(value, INDEX)
            if op == "*" and ca is None and cb is None:
                raise NotAffine("a product of two variables is not affine")
            if op in ("/", "%") and (cb is None or cb <= 0):
                raise NotAffine(f"'{op}' needs a positive integer constant on its right")
            return ir.Binary(op, ea, eb, INDEX)
        case ast.Compare(op=op, left=a, right=b):
            return ir.Binary(op, affine(a, name_kind), affine(b, name_kind), BOOL)
        case ast.Binary(op=op, left=a, right=b) if op in ("and", "or"):
            return ir.Binary(op, affine_condition(a, name_kind), affine_condition(b, name_kind),
                             BOOL)
        case ast.Unary(op="not", operand=x):
            return negate(affine_condition(x, name_kind))
        case ast.Access(tensor=t):
            raise NotAffine(f"a tensor value ({t}[...]) may only be a whole index of a read, "
                            f"as in table[{t}[i], d]")
        case ast.Call(func=f):
            raise NotAffine(f"an index cannot call {f}()")
    raise NotAffine("only +, -, * by a constant, / and % by a constant are allowed")


def tidy(e: ir.Expr) -> ir.Expr:
    """A sum of variables and parameters times constants, with like terms collected and the
    constant last (`N - 1 - i + 1` -> `N - i`); anything else as it is."""
    form = linear(e)
    if any(k is not None and not isinstance(k, ir.Var | ir.Param) for k in form):
        return e
    const = form.pop(None, 0)
    result = None
    for term, c in sorted(((k, c) for k, c in form.items() if c), key=lambda kc: kc[1] < 0):
        part = term if abs(c) == 1 else ir.Binary("*", ir.Const(abs(c)), term, INDEX)
        if result is None:
            result = part if c > 0 else ir.Unary("neg", part, INDEX)
        else:
            result = ir.Binary("+" if c > 0 else "-", result, part, INDEX)
    if result is None or not const:
        return result if result is not None else ir.Const(const, INDEX)
    return ir.Binary("+" if const > 0 else "-", result, ir.Const(abs(const), INDEX), INDEX)


_NEGATED = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}


def negate(c: ir.Expr) -> ir.Expr:
    """The negation of an affine condition, without `not` (isl has none)."""
    if not isinstance(c, ir.Binary) or c.dtype != BOOL:
        raise NotAffine("'not' applies to conditions")
    if c.op in _NEGATED:
        return ir.Binary(_NEGATED[c.op], c.left, c.right, BOOL)
    flipped = {"and": "or", "or": "and"}[c.op]
    return ir.Binary(flipped, negate(c.left), negate(c.right), BOOL)
