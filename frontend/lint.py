"""Lint: statements that are legal but probably not what was meant. They give warnings
(`loopweave.errors.DSLWarning`), never errors.

A misspelt index changes the mathematics without any error: in `C[i, j] += A[i, k] * B[k, jj]`
the `jj` is a new index, so the statement sums over it. `near_miss_indices` finds an index of a
reduction that is summed over, appears in only one access (a real contraction index links two)
and is one edit away from an index of the left side.
"""

from __future__ import annotations

from dataclasses import dataclass

from loopweave.errors import SourcePos
from loopweave.frontend import ast
from loopweave.frontend.ast_walk import names_in, walk


@dataclass(frozen=True)
class NearMiss:
    """A reduced index `name` that looks like a misspelling of the free index `meant`."""

    name: str
    meant: str
    access: ast.Access  # the one access it appears in
    pos: SourcePos  # where it is written in that access

    def message(self, target: str) -> str:
        return (f"index '{self.name}' is summed over but appears in one access only (of "
                f"{self.access.tensor}); did you mean '{self.meant}', an index of {target}? (if "
                f"the sum over '{self.name}' is meant, give its range with "
                f"`where {self.name} in lo:hi`)")


def one_edit_apart(a: str, b: str) -> bool:
    """Whether `b` is `a` with one character inserted, deleted or replaced. Two one-letter
    names do not count: `k` and `j` are different indices, not a typo of each other."""
    if a == b or abs(len(a) - len(b)) > 1 or max(len(a), len(b)) < 2:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    short, long = sorted((a, b), key=len)
    return any(long[:k] + long[k + 1:] == short for k in range(len(long)))


def accesses_using(e: ast.Expr, name: str) -> list[ast.Access]:
    """The accesses in `e` whose indices mention `name`."""
    return [x for x in walk(e) if isinstance(x, ast.Access)
            and any(name in names_in(i) for i in x.indices)]


def near_miss_indices(st: ast.Statement, free: list[str], reduced: list[str]) -> list[NearMiss]:
    """The reduced indices of reduction `st` that look like misspellings of a free index (one
    of `free`, the left side's): each appears in only one access and has no `where` range of
    its own."""
    if st.op == "=":
        return []
    ranged = {w.var for w in st.where if isinstance(w, ast.WhereRange)}
    found = []
    for name in reduced:
        meant = [f for f in free if one_edit_apart(name, f)]
        uses = accesses_using(st.rhs, name)
        if not meant or name in ranged or len(uses) != 1:
            continue
        pos = next(x.pos for x in walk(uses[0]) if isinstance(x, ast.Name) and x.id == name)
        found.append(NearMiss(name, meant[0], uses[0], pos))
    return found
