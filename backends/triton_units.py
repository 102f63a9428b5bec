"""Triton lowering, step 1a: the statements to plan, each identity initialisation folded into
the update that follows it where that computes the same (see `fold_inits`).

A folded pair `O[i] = 0; O[i] += f(i, k)` stores the update's result, which starts from the
identity, over the initialisation's elements, without first storing the identity and loading it
back. That is not the same when the update reads its own target (`O[i] += O[M - 1 - i]` reads
the identity the initialisation stored; folded, it read the old values), nor when the update's
grid misses elements the initialisation writes (`O[i] min= A[j]  where j in 1:N, j <= i` starts
at i = 1: O[0] kept no identity), nor when the update combines into an element more than once
without a reduction variable of its own (`m[g / 16] max= a[g]`: sixteen g per element, each
combined in turn; folded, each stored over the last).
"""

from __future__ import annotations

from dataclasses import dataclass

import islpy as isl

from loopweave.ir import expr as ir
from loopweave.ir.kernel import Statement


@dataclass
class Unit:
    """A statement, with the identity initialisation folded into it when there is one."""

    stmt: Statement
    init: Statement | None

    @property
    def stmts(self) -> list[Statement]:
        return [self.init, self.stmt] if self.init is not None else [self.stmt]


def fold_inits(stmts: list[Statement], same_box, params: tuple[str, ...]) -> list[Unit]:
    """`stmts` as units, each initialisation folded into its update where that is the same;
    `same_box(init, update)`: whether the update's grid covers the initialisation's."""
    out: list[Unit] = []
    i = 0
    while i < len(stmts):
        s, nxt = stmts[i], (stmts[i + 1] if i + 1 < len(stmts) else None)
        if s.is_init and nxt is not None and nxt.lhs == s.lhs and nxt.op != "=" and \
                _same_result(s, nxt) and same_box(s, nxt) and _once_per_element(nxt, params):
            out.append(Unit(nxt, s))
            i += 2
        else:
            out.append(Unit(s, None))
            i += 1
    return out


def _same_result(init: Statement, update: Statement) -> bool:
    return not any(ld.tensor == init.lhs.tensor for ld in ir.loads(update.rhs))


def _once_per_element(update: Statement, params: tuple[str, ...]) -> bool:
    """Whether the variables of the update's left side reach each element once: its other
    variables are reduced before the store, so one store per element holds the whole result."""
    used = {x.name for ix in update.lhs.indices for x in ir.walk(ix) if isinstance(x, ir.Var)}
    access = update.access_map(params, update.lhs)
    for k in reversed(range(len(update.iterators))):
        if update.iterators[k] not in used:
            access = access.project_out(isl.dim_type.in_, k, 1)
    return access.is_injective()
