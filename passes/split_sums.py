"""Normalization: a reduction whose right side is a sum of contractions becomes one reduction
per contraction, so that each gets the micro-kernel.

    for k in 0:M {                                     for k in 0:M {
        C[i, j] += A[j, k] * B[i, k]           ->          S1:      C[i, j] += A[j, k] * B[i, k]
                 + B[j, k] * A[i, k]                       S1_term: C[i, j] += B[j, k] * A[i, k]
    }                                                  }

(syr2k). The terms then accumulate one after the other instead of as one sum: a float result
changes by rounding. The new statements follow the first in its `for` loops; the default
schedule lets them all reassociate (`sum_terms`), which frees them from their order against
each other, so that each can leave the shared loops (fission) and run alone.

Only a `+=` statement that reads nothing of the tensor it writes, each term a contraction
(`passes/patterns.match_contraction`). Like `passes/normalize.py`, it adds statements, so it
runs only where no schedule names statements.
"""

from __future__ import annotations

from dataclasses import replace

from loopweave.ir import expr as ir
from loopweave.ir.kernel import KernelIR, Statement
from loopweave.passes import placement as pl
from loopweave.passes.patterns import match_contraction

#: The suffix of the statements of a sum's second and later terms.
TERM_SUFFIX = "_term"


def split_sums(kernel: KernelIR) -> KernelIR:
    """`kernel` with each `+=` of a sum of contractions written as one `+=` per term (module
    docstring); the same object when there is none."""
    statements = list(kernel.statements)
    placements = None
    for s in kernel.statements:
        terms = _contraction_terms(s)
        if terms is None:
            continue
        placements = placements or pl.initial_placements(kernel)
        taken = {t.name for t in statements}
        first = replace(s, rhs=terms[0])
        statements[statements.index(s)] = first
        before = first
        for term in terms[1:]:
            name = pl.fresh_name(f"{s.name}{TERM_SUFFIX}", taken)
            added = replace(s, name=name, rhs=term, domain=s.domain.set_tuple_name(name))
            statements.insert(statements.index(before) + 1, added)
            pl.place_after(placements, before.name, added, len(added.iterators))
            before = added
    if placements is None:
        return kernel
    result = replace(kernel, statements=tuple(statements))
    return result.with_schedule(pl.build_tree(result, placements))


def sum_terms(kernel: KernelIR) -> list[list[str]]:
    """The statements `split_sums` made of each sum, the first term's statement first: `+=`
    statements into one element, named after the first, none reading what it updates."""
    groups = []
    for s in kernel.statements:
        terms = [s, *(t for t in kernel.statements if t.name.startswith(s.name + TERM_SUFFIX))]
        if len(terms) > 1 and all(t.op == "+=" and t.lhs == s.lhs and not any(
                load.tensor == s.lhs.tensor for load in ir.loads(t.rhs)) for t in terms):
            groups.append([t.name for t in terms])
    return groups


def _contraction_terms(s: Statement) -> list[ir.Expr] | None:
    """The terms of `s`'s right side (times -1 where subtracted) if `s` is a `+=` whose right
    side is a sum of two or more contractions reading nothing of its tensor, else None."""
    if s.op != "+=" or s.lhs.dtype.is_storage_only or \
            any(load.tensor == s.lhs.tensor for load in ir.loads(s.rhs)):
        return None
    terms = _terms(s.rhs, negated=False)
    if len(terms) < 2 or any(match_contraction(replace(s, rhs=t)) is None for t in terms):
        return None
    return terms


def _terms(e: ir.Expr, negated: bool) -> list[ir.Expr]:
    if isinstance(e, ir.Binary) and e.op in ("+", "-"):
        return _terms(e.left, negated) + _terms(e.right, negated != (e.op == "-"))
    # A subtracted term as a factor -1, which the contraction matcher takes as it takes alpha.
    return [ir.Binary("*", ir.Const(-1 if e.dtype.kind in ("int", "uint") else -1.0, e.dtype),
                      e, e.dtype) if negated else e]
