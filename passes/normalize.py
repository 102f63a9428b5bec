"""Normalization before a default schedule: algebraically equal spellings of a kernel become one
form, so that the pattern matchers (`passes/patterns.py`) see the same contraction in each.

A factor of a `+=` reduction that is invariant in the reduction's loops moves out of it, and
scales the accumulated result once instead of every term. Where the accumulator is a temporary
that only `=`, `max=` and `min=` statements read afterwards, the factor moves into those reads
(as if the kernel had been written so); otherwise a new statement right after the reduction
scales the result in place:

    P[l, s] += Q[l, e] * K[s, e] * scale      ->   S1: P[l, s] += Q[l, e] * K[s, e]
    m[l] max= P[l, s]                              S3: m[l] max= P[l, s] * scale
    W[l, s] = exp(P[l, s] - m[l])                  S4: W[l, s] = exp(P[l, s] * scale - m[l])
    ...
    O[l, e] += W[l, s] * V[s, e] / z[l]       ->   S8:       O[l, e] += W[l, s] * V[s, e]
                                                   S8_scale: O[l, e] = O[l, e] / z[l]

(A scaling statement between a temporary's reduction and its readers would keep the default's
fusion from making the temporary local, as in layernorm's rows; a temporary read by another
`+=` gets one all the same, so that a factor never moves into a second contraction.)

`sum_k x_k * c == c * sum_k x_k` only if the sum starts from zero, so a reduction qualifies
only when the front end's identity initialisation (`is_init`, `= 0`) runs right before it:
an `inout` tensor, or a tensor written before (`acc + sum * c != (acc + sum) * c`), is left
alone. The factor may use only the variables that index the accumulator (and the enclosing
`for` loops'), and must not read the accumulator itself. Integer reductions move only
multiplications (exact in wrapping arithmetic), never divisions; `max=`, `min=` and `*=`
reductions, and a right side under a cast (a narrow accumulator), are left alone. Moving into
the reads needs the accumulator written by no later statement, indexed by plain variables, a
reduction outside any `for` loop, and the factor's tensors written by no later statement.

This adds statements, so it runs only where no schedule names statements: on the default path
of `loopweave.pipeline` (no schedule given, no tuning record used). Existing statements keep
their names; a new one is `<reduction>_scale`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import islpy as isl

from loopweave.ir import expr as ir
from loopweave.ir.kernel import KernelIR, Statement
from loopweave.ir.types import DType
from loopweave.passes import placement as pl
from loopweave.passes.expand_accumulators import expand_accumulators
from loopweave.passes.hoist_transpose import hoist_transposed_operands
from loopweave.passes.index_split import split_index_sets
from loopweave.passes.reciprocals import multiply_by_reciprocals
from loopweave.passes.split_sums import split_sums
from loopweave.passes.strided_conv import normalize_strided_convolutions


@dataclass(frozen=True, slots=True)
class _Product:
    """A right side as sign * prod(numerators) / prod(denominators)."""

    numerators: tuple[ir.Expr, ...]
    denominators: tuple[ir.Expr, ...]
    negated: bool


def normalize(kernel: KernelIR, split: bool = True) -> KernelIR:
    """`kernel` with the reduction-invariant factors of its `+=` reductions moved out of them
    (see the module docstring), then, with `split` (the C targets), its divisions by values
    its statements' innermost loops do not change made multiplications by their reciprocals
    (passes/reciprocals.py: the GPU targets' online softmax matches the division), its
    statements split where
    a write meets a read on one hyperplane of a loop (passes/index_split.py), accumulators of
    contractions restarted in every iteration of `for` loops expanded by those loops
    (passes/expand_accumulators.py), sums of
    contractions split into one reduction per term (passes/split_sums.py), transposed inputs
    of contractions in `for` loops copied before the loop (passes/hoist_transpose.py)
    and strided convolutions given channels-last, padded data (passes/strided_conv.py);
    the same object when nothing changes."""
    hoisted = _hoist_factors(kernel)
    if not split:
        return hoisted
    return normalize_strided_convolutions(hoist_transposed_operands(split_sums(
        split_index_sets(expand_accumulators(multiply_by_reciprocals(hoisted))))))


def _hoist_factors(kernel: KernelIR) -> KernelIR:
    statements = list(kernel.statements)
    scalings: list[tuple[Statement, Statement]] = []  # (reduction, the statement after it)
    changed = False
    for k in range(len(statements)):
        moved = _hoist(statements[k], statements[k - 1] if k else None)
        if moved is None:
            continue
        reduction, factors = moved
        statements[k], changed = reduction, True
        readers = _fold(kernel, statements, k, factors)
        if readers is not None:
            statements[k + 1:] = readers
        else:
            scalings.append((reduction, _scaling(kernel, reduction, statements[k - 1], factors)))
    if not changed:
        return kernel
    if not scalings:  # the same statements, in the same places
        return replace(kernel, statements=tuple(statements))
    placements = pl.initial_placements(kernel)
    for reduction, scaling in scalings:
        statements.insert(statements.index(reduction) + 1, scaling)
        pl.place_after(placements, reduction.name, scaling, reduction.enclosing)
    result = replace(kernel, statements=tuple(statements))
    return result.with_schedule(pl.build_tree(result, placements))


def _hoist(s: Statement, before: Statement | None) -> tuple[Statement, _Product] | None:
    """(the reduction without its invariant factors, those factors), or None where nothing
    may or need move. `before`: the statement in front of `s`."""
    if s.op != "+=" or s.lhs.dtype.is_storage_only or not _starts_from_zero(s, before):
        return None
    reduced = set(s.iterators) - set(before.iterators)  # the init's: enclosing and lhs vars
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
    return reduction, _Product(tuple(nums), tuple(dens), False)


def _fold(kernel: KernelIR, statements: list[Statement], k: int, factors: _Product
          ) -> list[Statement] | None:
    """The statements after `statements[k]` with each read of its accumulator times
    `factors`, or None where that is not allowed (see the module docstring)."""
    s = statements[k]
    names = [ix.name for ix in s.lhs.indices if isinstance(ix, ir.Var)]
    written = {t.lhs.tensor for t in statements[k + 1:]}
    read = {load.tensor for f in (*factors.numerators, *factors.denominators)
            for load in ir.loads(f)}
    if kernel.tensors[s.lhs.tensor].role != "temp" or s.enclosing \
            or len(set(names)) != len(s.lhs.indices) or s.lhs.tensor in written or read & written:
        return None
    later = statements[k + 1:]
    if any(t.op not in ("=", "max=", "min=") for t in later
           if any(load.tensor == s.lhs.tensor for load in ir.loads(t.rhs))):
        return None  # a sum over the accumulator: the factor would move into its terms

    def scaled(e: ir.Expr) -> ir.Expr | None:
        if not isinstance(e, ir.Load) or e.tensor != s.lhs.tensor:
            return None
        at = dict(zip(names, e.indices, strict=True))
        return _build([e, *(ir.substitute(f, at) for f in factors.numerators)],
                      [ir.substitute(f, at) for f in factors.denominators], s.lhs.dtype)
    return [replace(t, rhs=ir.rewrite(t.rhs, scaled)) for t in later]


def _scaling(kernel: KernelIR, s: Statement, init: Statement, factors: _Product) -> Statement:
    """`lhs = lhs * factors` over the accumulator's elements that `s` sums into."""
    name = pl.fresh_name(f"{s.name}_scale", set(kernel.statement))
    domain = s.domain
    for p in reversed(range(len(s.iterators))):  # exact projection: where the sum has terms
        if s.iterators[p] not in init.iterators:
            domain = domain.project_out(isl.dim_type.set, p, 1)
    rhs = _build([s.lhs, *factors.numerators], list(factors.denominators), s.lhs.dtype)
    return Statement(name, init.iterators, domain.set_tuple_name(name), s.lhs, "=", rhs, s.pos,
                     enclosing=s.enclosing)


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
