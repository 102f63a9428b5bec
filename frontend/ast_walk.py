"""Questions about syntax trees that need no declarations: which names and tensors an expression
mentions, where a variable is first used, every write of each name."""

from __future__ import annotations

from loopweave.errors import SourcePos
from loopweave.frontend import ast


def names_in(e: ast.Expr) -> set[str]:
    """The bare names in `e`, inside indices too (not the tensors it accesses)."""
    match e:
        case ast.Name(id=n):
            return {n}
        case ast.Access(indices=ix) | ast.Call(args=ix):
            return set().union(*(names_in(i) for i in ix))
        case ast.Unary(operand=x):
            return names_in(x)
        case ast.Binary(left=a, right=b) | ast.Compare(left=a, right=b):
            return names_in(a) | names_in(b)
    return set()


def accessed(e: ast.Expr) -> set[str]:
    """The tensors `e` reads with brackets."""
    match e:
        case ast.Access(tensor=t, indices=ix):
            return {t}.union(*(accessed(i) for i in ix))
        case ast.Call(args=ix):
            return set().union(*(accessed(i) for i in ix))
        case ast.Unary(operand=x):
            return accessed(x)
        case ast.Binary(left=a, right=b) | ast.Compare(left=a, right=b):
            return accessed(a) | accessed(b)
    return set()


def first_use(st: ast.Statement, var: str) -> SourcePos:
    """Where `var` first appears on the right side of `st` (else the statement)."""
    def find(e: ast.Expr) -> SourcePos | None:
        match e:
            case ast.Name(id=n, pos=pos) if n == var:
                return pos
            case ast.Access(indices=ix) | ast.Call(args=ix):
                return next((p for p in map(find, ix) if p), None)
            case ast.Unary(operand=x):
                return find(x)
            case ast.Binary(left=a, right=b) | ast.Compare(left=a, right=b):
                return find(a) or find(b)
        return None
    return find(st.rhs) or st.pos


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
