"""Arg-reductions: `idx[i] argmax= X[i, j]` (the index of the largest value) and `argmin=`.

The front end (frontend/reductions.py) writes one as a pair of ordinary statements that share
one band, the index update first (it reads the best value before the step):

    idx[i] = select(X[i, j] > best[i] or (X[i, j] != X[i, j] and best[i] == best[i])
                    or idx[i] < 0, j, idx[i])
    best[i] max= X[i, j]

so every target runs it as it runs any statement. What is special is only what a schedule
may do with it: a loop over j may be a vector loop though it carries the pair's dependences
(passes/legality.py `arg_chains`), which SIMD code runs in chunks that keep the tie rule
(backends/simd_arg.py). The pair is recognized by its shape (`pair_of`), so no statement kind
is added.

Top-k (a rank variable on the left) is an insertion step of three statements per rank
(`topk_step`, `topk_choose`); C renderers skip the step for a value that does not enter the
last rank (`guard_topk`).

The tie rule is numpy's: a value replaces the best only if strictly better, so the first
(smallest) index wins; a NaN is better than every number, the first NaN wins; `idx` is -1 before
the first step, which always wins (a range of only -inf gives its first index, an empty range
-1).
"""

from __future__ import annotations

from dataclasses import replace

from loopweave.ir.expr import Binary, Call, Cast, Const, Expr, Load, Var, substitute
from loopweave.ir.loops import Block, For, If, Store
from loopweave.ir.types import BOOL, I64

#: The arg-reductions and the reduction of the best value each carries along.
ARG_REDUCTIONS = {"argmax=": "max=", "argmin=": "min="}
#: An arg-reduction by its value reduction.
BY_VALUE_OP = {v: k for k, v in ARG_REDUCTIONS.items()}


def better(op: str, value: Expr, best: Expr) -> Expr:
    """Whether `value` replaces `best` in `op` ("argmax=" or "argmin="): strictly larger
    (smaller), or a NaN where the best is a number."""
    result = Binary(">" if op == "argmax=" else "<", value, best, BOOL)
    if value.dtype.is_float:
        nan = Binary("and", Binary("!=", value, value, BOOL), Binary("==", best, best, BOOL),
                     BOOL)
        result = Binary("or", result, nan, BOOL)
    return result


def arg_update(op: str, value: Expr, best: Load, index: Expr, current: Load) -> Expr:
    """The new index of `current argmax= value` at reduced index `index`, `best` the best value
    before this step (see the module docstring for the rule)."""
    first = Binary("<", current, Const(0, current.dtype), BOOL)
    taken = Binary("or", better(op, value, best), first, BOOL)
    if index.dtype != current.dtype:
        index = Cast(current.dtype, index)
    return Call("select", (taken, index, current), current.dtype)


def pair_of(update_tensor: str, update_indices: tuple[Expr, ...], update_value: Expr,
            value_tensor: str, value_indices: tuple[Expr, ...], value_op: str | None,
            value: Expr) -> tuple[str, Expr] | None:
    """(the arg-reduction, the reduced index expression) if `update_tensor[update_indices] =
    update_value` followed by `value_tensor[value_indices] value_op= value` is an
    arg-reduction's pair, else None. Works on statements and on the loop AST's stores alike
    (where the best value may have become a local of other indices)."""
    op = BY_VALUE_OP.get(value_op or "")
    if op is None or not isinstance(update_value, Call) or update_value.func != "select":
        return None
    index = update_value.args[1]
    current = Load(update_tensor, update_indices, update_value.dtype)
    best = Load(value_tensor, value_indices, value.dtype)
    raw = index.operand if isinstance(index, Cast) else index
    if update_value != arg_update(op, value, best, raw, current):
        return None
    return op, raw


def reduced_var(index: Expr) -> str | None:
    """The variable of a reduced index expression (a bare variable), or None."""
    return index.name if isinstance(index, Var) else None


# -- top-k (frontend/arg_reductions.py writes the statements) -------------------------------------

def topk_step(op: str, value: Expr, here: Load, mine: Load, above: Load, above_index: Load,
              first: Expr) -> Expr:
    """The decision of a top-k step at one slot (`here`, index `mine`; the slot before it
    `above`, `above_index`; `first`: whether there is one): 2 takes the slot above (the value
    beats it), 1 takes the value (it beats this slot), 0 keeps the slot. An empty slot (index
    -1) is beaten by anything."""
    def beats(best: Expr, index: Expr) -> Expr:
        return Binary("or", better(op, value, best),
                      Binary("<", index, Const(0, index.dtype), BOOL), BOOL)

    keep_or_take = Call("select", (beats(here, mine), Const(1, I64), Const(0, I64)), I64)
    shift = Binary("and", first, beats(above, above_index), BOOL)
    return Call("select", (shift, Const(2, I64), keep_or_take), I64)


def topk_choose(decision: Expr, shifted: Expr, new: Expr, old: Expr) -> Expr:
    """A slot's new content after the decision `topk_step` made."""
    inner = Call("select", (Binary("==", decision, Const(1, I64), BOOL), new, old), old.dtype)
    return Call("select", (Binary("==", decision, Const(2, I64), BOOL), shifted, inner),
                old.dtype)


def guard_topk(loop: For) -> For:
    """`loop` (the reduced loop j of a top-k) with the loop over its slots skipped when the
    value does not enter the last slot, the first the slot loop visits: the slots are sorted,
    so then it enters none (the decision is 0 at every slot). Any other loop unchanged."""
    inner = loop.body
    if not isinstance(inner, For) or not isinstance(inner.body, Block) or \
            len(inner.body.body) != 3 or not all(isinstance(s, Store) for s in inner.body.body):
        return loop
    step, index, kept = inner.body.body
    try:
        above_index, (_, j_value, _) = index.value.args[1], index.value.args[2].args
        above, (_, value, _) = kept.value.args[1], kept.value.args[2].args
        first = step.value.args[0].left
    except (AttributeError, IndexError, ValueError):
        return loop
    decision = Load(step.tensor, step.indices, I64)
    mine = Load(index.tensor, index.indices, index.value.dtype)
    here = Load(kept.tensor, kept.indices, kept.value.dtype)
    if index.value != topk_choose(decision, above_index, j_value, mine) or \
            kept.value != topk_choose(decision, above, value, here) or \
            not any(step.value == topk_step(op, value, here, mine, above, above_index, first)
                    for op in ARG_REDUCTIONS):
        return loop
    # it beats the last rank (then the decision there is not 0: the ranks are sorted, so a
    # value that beats the rank above the last beats the last too)
    enters = substitute(step.value.args[2].args[0], {inner.var: inner.init})
    return replace(loop, body=If(enters, inner, None))

