"""Questions about syntax trees that need no declarations: which names and tensors an expression
mentions, where a variable is first used, every write of each name."""

from __future__ import annotations

from collections.abc import Iterator

from loopweave.errors import SourcePos
from loopweave.frontend import ast


def walk(e: ast.Expr) -> Iterator[ast.Expr]:
    """`e` and every expression inside it, in source order (pre-order, left to right)."""
    yield e
    match e:
        case ast.Access(indices=kids) | ast.Call(args=kids):
            for k in kids:
                yield from walk(k)
        case ast.Unary(operand=x):
            yield from walk(x)
        case ast.Binary(left=a, right=b) | ast.Compare(left=a, right=b):
            yield from walk(a)
            yield from walk(b)


def names_in(e: ast.Expr) -> set[str]:
    """The bare names in `e`, inside indices too (not the tensors it accesses)."""
    return {x.id for x in walk(e) if isinstance(x, ast.Name)}


def accessed(e: ast.Expr) -> set[str]:
    """The tensors `e` reads with brackets."""
    return {x.tensor for x in walk(e) if isinstance(x, ast.Access)}


def first_use(st: ast.Statement, var: str) -> SourcePos:
    """Where `var` first appears on the right side of `st` (else the statement)."""
    return next((x.pos for x in walk(st.rhs) if isinstance(x, ast.Name) and x.id == var), st.pos)


def writes_by_name(items: tuple[ast.BodyItem, ...],
                   found: dict[str, list[ast.Statement]] | None = None
                   ) -> dict[str, list[ast.Statement]]:
    """Every statement of a body, `for` loops included, by the name it writes, in text order."""
    found = {} if found is None else found
    for item in items:
        if isinstance(item, ast.ForLoop):
            writes_by_name(item.body, found)
        elif isinstance(item, ast.Statement):
            found.setdefault(item.lhs.tensor, []).append(item)
    return found
