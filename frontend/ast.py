"""Syntax tree of the DSL, as the parser produces it (before any checking).

    kernel     := KernelDef(name, params, outputs, body)
    param      := Param(name, dtype, shape | None, inout)        shape None: a scalar
    body item  := Statement(lhs: Access, op, rhs, where) | ForLoop(var, lo, hi, body, reverse)
                | Assume(conds)
    where item := WhereRange(var, lo, hi) | WhereCond(cond)
    expr       := Num | Name | Access | Call | Unary | Binary | Compare

Every node carries the `SourcePos` of its first token, so that any later error can point at it.
"""

from __future__ import annotations

from dataclasses import dataclass

from loopweave.errors import SourcePos


@dataclass(frozen=True, slots=True)
class Num:
    value: int | float
    is_float: bool
    pos: SourcePos


@dataclass(frozen=True, slots=True)
class Name:
    id: str
    pos: SourcePos


@dataclass(frozen=True, slots=True)
class Access:
    tensor: str
    indices: tuple[Expr, ...]
    pos: SourcePos


@dataclass(frozen=True, slots=True)
class Call:
    func: str
    args: tuple[Expr, ...]
    pos: SourcePos


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "-", "~", "not"
    operand: Expr
    pos: SourcePos


@dataclass(frozen=True, slots=True)
class Binary:
    op: str  # + - * / % << >> & | ^ and or
    left: Expr
    right: Expr
    pos: SourcePos


@dataclass(frozen=True, slots=True)
class Compare:
    op: str  # < <= > >= == !=
    left: Expr
    right: Expr
    pos: SourcePos


Expr = Num | Name | Access | Call | Unary | Binary | Compare


@dataclass(frozen=True, slots=True)
class WhereRange:
    var: str
    lo: Expr
    hi: Expr
    pos: SourcePos


@dataclass(frozen=True, slots=True)
class WhereCond:
    cond: Expr
    pos: SourcePos


@dataclass(frozen=True, slots=True)
class Statement:
    lhs: Access
    op: str  # "=", "+=", "-=", "*=", "max=", "min=", "argmax=", "argmin="
    rhs: Expr
    where: tuple[WhereRange | WhereCond, ...]
    pos: SourcePos


@dataclass(frozen=True, slots=True)
class ForLoop:
    var: str
    lo: Expr
    hi: Expr
    body: tuple[BodyItem, ...]
    pos: SourcePos
    reverse: bool = False  # `for v in reversed(lo:hi)`: v runs from hi-1 down to lo


@dataclass(frozen=True, slots=True)
class Assume:
    conds: tuple[Expr, ...]
    pos: SourcePos


BodyItem = Statement | ForLoop | Assume


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    dtype: str
    shape: tuple[Expr, ...] | None
    inout: bool
    pos: SourcePos
    dtype_pos: SourcePos


@dataclass(frozen=True, slots=True)
class KernelDef:
    name: str
    params: tuple[Param, ...]
    outputs: tuple[Param, ...]
    body: tuple[BodyItem, ...]
    pos: SourcePos
