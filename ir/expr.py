"""Expressions: one closed set of nodes for element values and for index arithmetic.

    expr := Const(value, dtype)
          | Var(name)                 an index variable: a statement iterator or a loop iterator
          | Param(name)               a size symbol or an integer scalar used in index arithmetic
          | Scalar(name, dtype)       a scalar argument used as a value
          | Load(tensor, indices, dtype)   an index may itself read an integer tensor (a gather:
                                       `table[ids[i], d]`, the index `i64(ids[i])`)
          | Cast(dtype, operand)
          | Unary(op, operand, dtype)             op: neg, not, invert
          | Binary(op, left, right, dtype)        op: + - * / % << >> & | ^ and or < <= > >= == !=
          | Call(func, args, dtype)               func: select min max abs exp log sqrt tanh
                                                        sigmoid erf pow

Integer `/` and `%` are floor division and floor modulo (as numpy and isl define them). The ops
`cdiv` and `crem` are C's truncating division and remainder; code generation uses them only where
isl proved the dividend non-negative. Index expressions have dtype `INDEX` (i64).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from loopweave.ir.types import BOOL, INDEX, DType


@dataclass(frozen=True, slots=True)
class Const:
    value: int | float
    dtype: DType = INDEX


@dataclass(frozen=True, slots=True)
class Var:
    name: str
    dtype: DType = INDEX


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    dtype: DType = INDEX


@dataclass(frozen=True, slots=True)
class Scalar:
    name: str
    dtype: DType


@dataclass(frozen=True, slots=True)
class Load:
    tensor: str
    indices: tuple[Expr, ...]
    dtype: DType


@dataclass(frozen=True, slots=True)
class Cast:
    dtype: DType
    operand: Expr


@dataclass(frozen=True, slots=True)
class Unary:
    op: str
    operand: Expr
    dtype: DType


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    left: Expr
    right: Expr
    dtype: DType


@dataclass(frozen=True, slots=True)
class Call:
    func: str
    args: tuple[Expr, ...]
    dtype: DType


Expr = Const | Var | Param | Scalar | Load | Cast | Unary | Binary | Call

COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")


def children(e: Expr) -> tuple[Expr, ...]:
    """The direct sub-expressions of `e`, in order."""
    match e:
        case Load(indices=ix):
            return ix
        case Cast(operand=x) | Unary(operand=x):
            return (x,)
        case Binary(left=a, right=b):
            return (a, b)
        case Call(args=args):
            return args
    return ()


def with_children(e: Expr, kids: tuple[Expr, ...]) -> Expr:
    """`e` with its sub-expressions replaced (the same object when nothing changed)."""
    if kids == children(e):
        return e
    match e:
        case Load():
            return replace(e, indices=kids)
        case Cast() | Unary():
            return replace(e, operand=kids[0])
        case Binary():
            return replace(e, left=kids[0], right=kids[1])
        case Call():
            return replace(e, args=kids)
    raise AssertionError(f"{type(e).__name__} has no children")


def rewrite(e: Expr, fn: Callable[[Expr], Expr | None]) -> Expr:
    """Rebuild `e` bottom-up; `fn` returns a replacement for a node, or None to keep it."""
    e = with_children(e, tuple(rewrite(c, fn) for c in children(e)))
    new = fn(e)
    return e if new is None else new


def walk(e: Expr) -> Iterator[Expr]:
    """All nodes of `e`, parents before children."""
    yield e
    for c in children(e):
        yield from walk(c)


def variables(e: Expr) -> set[str]:
    """The index variables occurring in `e`."""
    return {x.name for x in walk(e) if isinstance(x, Var)}


def substitute(e: Expr, mapping: dict[str, Expr]) -> Expr:
    """Replace index variables by expressions."""
    return rewrite(e, lambda x: mapping.get(x.name) if isinstance(x, Var) else None)


def loads(e: Expr) -> list[Load]:
    return [x for x in walk(e) if isinstance(x, Load)]


def is_indirect(index: Expr) -> bool:
    """Whether an index expression reads a tensor: the first index of a gather
    `table[ids[i], d]`, whose value the polyhedral model cannot know."""
    return any(isinstance(x, Load) for x in walk(index))


# -- constructors that fold constants, so that generated index arithmetic stays readable ----------

def add(a: Expr, b: Expr) -> Expr:
    if isinstance(a, Const) and a.value == 0:
        return b
    if isinstance(b, Const) and b.value == 0:
        return a
    if isinstance(a, Const) and isinstance(b, Const):
        return Const(a.value + b.value, a.dtype)
    return Binary("+", a, b, a.dtype)


def mul(a: Expr, b: Expr) -> Expr:
    if isinstance(a, Const) and a.value == 1:
        return b
    if isinstance(b, Const) and b.value == 1:
        return a
    if isinstance(a, Const) and isinstance(b, Const):
        return Const(a.value * b.value, a.dtype)
    return Binary("*", a, b, a.dtype)


# -- evaluation of index arithmetic in Python (shapes at call time) -------------------------------

def evaluate(e: Expr, env: dict[str, int]) -> int:
    """Evaluate an integer index expression with parameters/variables bound by `env`."""
    match e:
        case Const(value=v):
            return int(v)
        case Var(name=n) | Param(name=n) | Scalar(name=n):
            return int(env[n])
        case Unary(op="neg", operand=x):
            return -evaluate(x, env)
        case Binary(op=op, left=a, right=b):
            x, y = evaluate(a, env), evaluate(b, env)
            return _INT_OPS[op](x, y)
        case Call(func="min", args=args):
            return min(evaluate(a, env) for a in args)
        case Call(func="max", args=args):
            return max(evaluate(a, env) for a in args)
        case Call(func="select", args=(c, a, b)):
            return evaluate(a, env) if evaluate(c, env) else evaluate(b, env)
    raise ValueError(f"cannot evaluate {to_str(e)} as an index expression")


def _cdiv(x: int, y: int) -> int:
    q = abs(x) // abs(y)
    return q if (x >= 0) == (y >= 0) else -q


_INT_OPS: dict[str, Callable[[int, int], int]] = {
    "+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y,
    "/": lambda x, y: x // y, "%": lambda x, y: x % y,
    "cdiv": _cdiv, "crem": lambda x, y: x - _cdiv(x, y) * y,
    "<": lambda x, y: int(x < y), "<=": lambda x, y: int(x <= y), ">": lambda x, y: int(x > y),
    ">=": lambda x, y: int(x >= y), "==": lambda x, y: int(x == y), "!=": lambda x, y: int(x != y),
    "and": lambda x, y: int(bool(x) and bool(y)), "or": lambda x, y: int(bool(x) or bool(y)),
}


# -- printing --------------------------------------------------------------------------------------

_PREC = {"or": 1, "and": 2, "<": 4, "<=": 4, ">": 4, ">=": 4, "==": 4, "!=": 4, "|": 5, "^": 6,
         "&": 7, "<<": 8, ">>": 8, "+": 9, "-": 9, "*": 10, "/": 10, "%": 10, "cdiv": 10,
         "crem": 10}
_UNARY_TEXT = {"neg": "-", "not": "not ", "invert": "~"}


def to_str(e: Expr, parent_prec: int = 0) -> str:
    """DSL-like text of an expression (for `print(kernel.ir)` and error messages)."""
    match e:
        case Const(value=v, dtype=t):
            return repr(v) if t.is_float or t == BOOL else str(v)
        case Var(name=n) | Param(name=n) | Scalar(name=n):
            return n
        case Load(tensor=t, indices=ix):
            return f"{t}[{', '.join(to_str(i) for i in ix)}]"
        case Cast(dtype=t, operand=x):
            return f"{t}({to_str(x)})"
        case Unary(op=op, operand=x):
            return f"{_UNARY_TEXT[op]}{to_str(x, 11)}"
        case Binary(op=op, left=a, right=b):
            p = _PREC[op]
            op_text = {"cdiv": "/", "crem": "%"}.get(op, op)
            text = f"{to_str(a, p)} {op_text} {to_str(b, p + 1)}"
            return f"({text})" if p < parent_prec else text
        case Call(func=f, args=args):
            return f"{f}({', '.join(to_str(a) for a in args)})"
    raise AssertionError(type(e).__name__)

