"""Normalization before a default schedule: algebraically equal spellings of a kernel become one
form, so that the pattern matchers (`passes/patterns.py`) see the same contraction in each.

A factor of a `+=` reduction that is invariant in the reduction's loops moves out of it, into a
new statement right after the reduction that scales the accumulated result once:

    P[l, s] += Q[l, e] * K[s, e] * scale      ->   S1:       P[l, s] += Q[l, e] * K[s, e]
                                                   S1_scale: P[l, s] = P[l, s] * scale
    O[l, e] += W[l, s] * V[s, e] / z[l]       ->   S8:       O[l, e] += W[l, s] * V[s, e]
                                                   S8_scale: O[l, e] = O[l, e] / z[l]

`sum_k x_k * c == c * sum_k x_k` only if the sum starts from zero, so a reduction qualifies
only when the front end's identity initialisation (`is_init`, `= 0`) runs right before it:
an `inout` tensor, or a tensor written before (`acc + sum * c != (acc + sum) * c`), is left
alone. The factor may use only the variables that index the accumulator (and the enclosing
`for` loops'), and must not read the accumulator itself. Integer reductions move only
multiplications (exact in wrapping arithmetic), never divisions; `max=`, `min=` and `*=`
reductions, and a right side under a cast (a narrow accumulator), are left alone.

This renames nothing and adds statements, so it runs only where no schedule names statements:
on the default path of `loopweave.pipeline` (no schedule given, no tuning record used).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import islpy as isl

from loopweave.ir import expr as ir
from loopweave.ir.kernel import KernelIR, Statement
from loopweave.ir.types import DType
from loopweave.passes import placement as pl


@dataclass(frozen=True, slots=True)
class _Product:
    """A right side as sign * prod(numerators) / prod(denominators)."""

    numerators: tuple[ir.Expr, ...]
    denominators: tuple[ir.Expr, ...]
    negated: bool


def normalize(kernel: KernelIR) -> KernelIR:
    """`kernel` with the reduction-invariant factors of its `+=` reductions moved after them
    (see the module docstring); the same object when nothing moves. Statements keep their
    names; each new one is `<reduction>_scale`, placed right after its reduction."""
    statements: list[Statement] = []
    moved: list[tuple[Statement, Statement]] = []  # (reduction, its new scaling statement)
    for k, s in enumerate(kernel.statements):
        split = _hoist(kernel, s, kernel.statements[k - 1] if k else None)
        if split is None:
            statements.append(s)
            continue
        reduction, scaling = split
        statements += [reduction, scaling]
        moved.append((reduction, scaling))
    if not moved:
        return kernel
    placements = pl.initial_placements(kernel)
    for reduction, scaling in moved:
        _place_after(placements, reduction, scaling)
    result = replace(kernel, statements=tuple(statements))
    return result.with_schedule(pl.build_tree(result, placements))


def _hoist(kernel: KernelIR, s: Statement, before: Statement | None
           ) -> tuple[Statement, Statement] | None:
    """(the reduction without its invariant factors, the statement scaling its result after
    it), or None where nothing may or need move."""
    if s.op != "+=" or s.lhs.dtype.is_storage_only or not _starts_from_zero(s, before):
        return None
    kept = before.iterators  # the enclosing loops' and the accumulator's variables
    reduced = set(s.iterators) - set(kept)
    if not reduced:
        return None
    if any(load.tensor == s.lhs.tensor for load in ir.loads(s.rhs)):
        return None  # the partial sums are read: their values would change
    product = _split(s.rhs, s.lhs.dtype)

    def invariant(f: ir.Expr) -> bool:
        return not ir.variables(f) & reduced

    nums = [f for f in product.numerators if invariant(f)]
    dens = [f for f in product.denominators if invariant(f)]
    rest_nums = [f for f in product.numerators if not invariant(f)]
    rest_dens = [f for f in product.denominators if not invariant(f)]
    if not (nums or dens) or not (rest_nums or rest_dens):
        return None  # nothing invariant, or nothing else (a sum of a constant stays)
    dtype = s.lhs.dtype
    rhs = _build(rest_nums or [ir.Const(1.0, dtype)], rest_dens, dtype)  # floats only
    reduction = replace(s, rhs=ir.Unary("neg", rhs, dtype) if product.negated else rhs)
    name = _fresh(kernel, f"{s.name}_scale")
    domain = s.domain
    for p in reversed(range(len(s.iterators))):  # exact projection: where the sum has terms
        if s.iterators[p] not in kept:
            domain = domain.project_out(isl.dim_type.set, p, 1)
    scaling = Statement(name, kept, domain.set_tuple_name(name), s.lhs, "=",
                        _build([s.lhs, *nums], dens, dtype), s.pos, enclosing=s.enclosing)
    return reduction, scaling


def _starts_from_zero(s: Statement, before: Statement | None) -> bool:
    """Whether `before` is the front end's initialisation of `s`'s accumulator to zero (it is
    made only for a tensor's first write, over every element the reduction writes)."""
    if before is None or not before.is_init or before.lhs != s.lhs:
        return False
    value = before.rhs.operand if isinstance(before.rhs, ir.Cast) else before.rhs
    return isinstance(value, ir.Const) and value.value == 0


def _split(e: ir.Expr, dtype: DType) -> _Product:
    """`e` as a product of factors over `dtype` (one factor if it is no product). Divisions
    count only for floats (integer division does not distribute over a sum)."""
    if isinstance(e, ir.Unary) and e.op == "neg" and e.dtype == dtype:
        inner = _split(e.operand, dtype)
        return replace(inner, negated=not inner.negated)
    if not isinstance(e, ir.Binary) or e.dtype != dtype or e.op not in ("*", "/"):
        return _Product((e,), (), False)
    if e.op == "/" and not dtype.is_float:
        return _Product((e,), (), False)
    left, right = _split(e.left, dtype), _split(e.right, dtype)
    if e.op == "*":
        return _Product(left.numerators + right.numerators,
                        left.denominators + right.denominators, left.negated != right.negated)
    return _Product(left.numerators + right.denominators,
                    left.denominators + right.numerators, left.negated != right.negated)


def _build(nums: list[ir.Expr], dens: list[ir.Expr], dtype: DType) -> ir.Expr:
    """nums[0] * nums[1] * ... / dens[0] / dens[1] ..., associated left to right."""
    result = nums[0]
    for f in nums[1:]:
        result = ir.Binary("*", result, f, dtype)
    for f in dens:
        result = ir.Binary("/", result, f, dtype)
    return result


def _fresh(kernel: KernelIR, name: str) -> str:
    taken = set(kernel.statement)
    while name in taken:
        name += "_"
    return name


def _place_after(placements: dict[str, pl.Placement], reduction: Statement,
                 scaling: Statement) -> None:
    """Place `scaling` right after `reduction`, inside the same enclosing `for` loops (its own
    loops over its iterators), shifting the later siblings there (in place)."""
    p = placements[reduction.name]
    depth = reduction.enclosing
    prefix, here = p.order[:depth], p.order[depth]
    for name, q in list(placements.items()):
        if q.order[:depth] == prefix and len(q.order) > depth and q.order[depth] > here:
            order = list(q.order)
            order[depth] += 1
            placements[name] = pl.Placement(q.loops, tuple(order))
    own = [pl.Loop(v, ir.Var(v)) for v in scaling.iterators[depth:]]
    placements[scaling.name] = pl.Placement(
        (*p.loops[:depth], *own), (*prefix, here + 1, *[0] * len(own)))
