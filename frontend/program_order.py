"""The nesting of a kernel's statements and `for` loops, and its initial schedule tree: program
order, each statement's iterations in lexicographic order of its iterators."""

from __future__ import annotations

from dataclasses import dataclass, field

import islpy as isl

from loopweave.frontend.values import tidy
from loopweave.ir import expr as ir
from loopweave.ir import isl_helpers
from loopweave.ir.kernel import Statement
from loopweave.ir.types import INDEX


@dataclass
class Loop:
    """A DSL `for var in lo:hi` loop, or `for var in reversed(lo:hi)`.

    The iterator `var` of the domain and schedule always counts up from lo to hi-1; a reversed
    loop's variable, as the statements see it, is `value` = lo + hi - 1 - var. So a downward
    loop is an upward loop over a substituted variable, and dependences, legality and every
    scheduling pass see the true order without knowing about it.
    """

    var: str
    lo: ir.Expr
    hi: ir.Expr
    reverse: bool = False

    @property
    def value(self) -> ir.Expr:
        """The loop variable's value in terms of the iterator."""
        if not self.reverse:
            return ir.Var(self.var)
        last = ir.Binary("-", ir.add(self.lo, self.hi), ir.Const(1), INDEX)
        return tidy(ir.Binary("-", last, ir.Var(self.var), INDEX))


@dataclass
class Node:
    """A loop (or the kernel body, with no loop) and what it contains, in program order. A
    node without a loop below the body is a group of statements updated together in one band
    (an arg-reduction's index and best value, frontend/reductions.py)."""

    loop: Loop | None = None
    children: list[Node | Statement] = field(default_factory=list)


def program_order(params: tuple[str, ...], node: Node, depth: int = 0) -> isl.Schedule | None:
    """The schedule tree of `node`: a sequence of its children; a `for` loop is a band over
    the statements inside it, a statement a band over its own iterators."""
    parts = []
    for child in node.children:
        if isinstance(child, Statement):
            parts.append(_statement_schedule(params, child, depth))
        elif child.loop is None:  # statements updated together (an arg-reduction's pair)
            parts.append(_group_schedule(params, _statements_in(child), depth))
        else:
            inner = program_order(params, child, depth + 1)
            if inner is not None:
                parts.append(inner.insert_partial_schedule(
                    _band(params, _statements_in(child), [depth])))
    if not parts:
        return None
    result = parts[0]
    for p in parts[1:]:
        result = result.sequence(p)
    return result


def _statements_in(node: Node) -> list[Statement]:
    out = []
    for c in node.children:
        out += [c] if isinstance(c, Statement) else _statements_in(c)
    return out


def _band(params: tuple[str, ...], stmts: list[Statement],
          positions: list[int]) -> isl.MultiUnionPwAff:
    """A band scheduling each statement by its iterators at `positions`."""
    return isl_helpers.band(params, [[(s.name, s.iterators, ir.Var(s.iterators[p])) for s in stmts]
                                     for p in positions])


def _statement_schedule(params: tuple[str, ...], s: Statement, depth: int) -> isl.Schedule:
    sched = isl.Schedule.from_domain(isl.UnionSet.from_set(s.domain))
    own = list(range(depth, len(s.iterators)))
    return sched.insert_partial_schedule(_band(params, [s], own)) if own else sched


def _group_schedule(params: tuple[str, ...], stmts: list[Statement], depth: int) -> isl.Schedule:
    """Statements with the same iterators in one band over them, in order inside it: each
    instance of the first, then of the second, before the next iteration."""
    sched = isl.Schedule.from_domain(isl.UnionSet.from_set(stmts[0].domain))
    for s in stmts[1:]:
        sched = sched.sequence(isl.Schedule.from_domain(isl.UnionSet.from_set(s.domain)))
    own = list(range(depth, len(stmts[0].iterators)))
    return sched.insert_partial_schedule(_band(params, stmts, own)) if own else sched
