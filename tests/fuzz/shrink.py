"""The shrinker of the backend fuzzer (tests/fuzz/differential.py): a failing kernel made as
small as it can be while it still fails the same way.

Greedy, first improvement restarts the candidates: the random schedule's steps first (for
`cpu-random`), then the kernel — drop statements, the time loop, tensor dimensions (from every
access), `where` clauses, `assume` lines; replace subexpressions by an operand or a literal;
lower sizes and scalar values; narrow types to f32/i32. A candidate that is no longer a valid
kernel is skipped. The runner is `differential.Runner` (anything with its `check`); cases and
outcomes are its `Case` and `Outcome`.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING

import loopweave
from loopweave.driver import front_end
from loopweave.errors import LoopweaveError

from . import random_kernels as rk

if TYPE_CHECKING:  # annotations only: differential imports this module
    from .differential import Case, Outcome, Runner

def _same_failure(a: Outcome, b: Outcome) -> bool:
    """Whether `b` fails the way `a` did: a mismatch, or a crash with the same exception."""
    if a.status != b.status:
        return False
    return a.status == "mismatch" or a.message.split(":")[0] == b.message.split(":")[0]


def shrink(spec: rk.KernelSpec, case: Case, failure: Outcome, runner: Runner,
           budget_s: float = 300.0, log=None) -> tuple[rk.KernelSpec, Case, Outcome]:
    """The smallest variant of `spec` found within `budget_s` that still fails on
    `failure.target` the same way: greedy, first improvement restarts the candidates."""
    deadline = time.monotonic() + budget_s
    if failure.schedule:
        case = replace(case, schedule_json=failure.schedule)
        case, failure = _shrink_schedule(case, failure, runner, deadline)
    improved = True
    while improved and time.monotonic() < deadline:
        improved = False
        for candidate in _candidates(spec):
            if time.monotonic() > deadline:
                break
            trial = replace(case, source=candidate.source(), sizes=dict(candidate.sizes),
                            scalars=dict(candidate.scalar_values))
            if trial.source == case.source and trial.sizes == case.sizes and \
                    trial.scalars == case.scalars:
                continue
            try:
                front_end(trial.source)
            except LoopweaveError:
                continue  # not a valid kernel any more
            outcome = _outcome_on(runner, trial, failure.target)
            if outcome is not None and _same_failure(failure, outcome):
                spec, case, failure, improved = candidate, trial, outcome, True
                if log:
                    log(f"  shrunk to {len(spec.statements)} statement(s), "
                        f"{len(case.source)} characters")
                break
    return spec, case, failure


def _shrink_schedule(case: Case, failure: Outcome, runner: Runner, deadline: float):
    """Drop schedule steps one at a time while the failure stays."""
    sched = loopweave.Schedule.from_json(case.schedule_json)
    at = 0
    while at < len(sched.steps) and time.monotonic() < deadline:
        fewer = loopweave.Schedule(sched.steps[:at] + sched.steps[at + 1:])
        trial = replace(case, schedule_json=fewer.to_json())
        outcome = _outcome_on(runner, trial, failure.target)
        if outcome is not None and _same_failure(failure, outcome):
            sched, case, failure = fewer, trial, outcome
        else:
            at += 1
    return case, failure


def _outcome_on(runner: Runner, case: Case, target: str) -> Outcome | None:
    outcomes = runner.check(case, (target,))
    return outcomes[-1] if outcomes[-1].target == target else None


def _candidates(spec: rk.KernelSpec):
    """Smaller variants of `spec`, the biggest cuts first."""
    stmts = spec.statements
    for k in range(len(stmts)):
        yield replace(spec, statements=stmts[:k] + stmts[k + 1:])
    if spec.loop and any(s.in_loop for s in stmts):
        yield replace(spec, statements=tuple(replace(s, in_loop=False) for s in stmts))
    yield from _fewer_dimensions(spec)
    for k, s in enumerate(stmts):
        for w in range(len(s.where)):
            yield _with_stmt(spec, k, replace(s, where=s.where[:w] + s.where[w + 1:]))
    for k, s in enumerate(stmts):
        for simpler in _simpler_exprs(s.rhs, s.lhs.tensor in _int_tensors(spec)):
            yield _with_stmt(spec, k, replace(s, rhs=simpler))
        if s.op not in ("=", "+="):
            yield _with_stmt(spec, k, replace(s, op="+="))
    for a in range(len(spec.assumes)):
        yield replace(spec, assumes=spec.assumes[:a] + spec.assumes[a + 1:])
    for name, value in spec.sizes.items():
        for smaller in sorted({1, 2, value // 2, value - 1}):
            if 0 < smaller < value:
                yield replace(spec, sizes={**spec.sizes, name: smaller})
    for name, value in spec.scalar_values.items():
        if isinstance(value, int) and value > 1:
            yield replace(spec, scalar_values={**spec.scalar_values, name: 1})
    for t in spec.tensors:
        if t.dtype not in ("f32", "i32") and t.role != "temp":
            simpler = "i32" if t.dtype in rk.INT_TYPES else "f32"
            yield _retyped(spec, t.name, simpler)


def _int_tensors(spec: rk.KernelSpec) -> set[str]:
    return {t.name for t in spec.tensors if t.dtype in rk.INT_TYPES}


def _with_stmt(spec: rk.KernelSpec, k: int, stmt: rk.Stmt) -> rk.KernelSpec:
    return replace(spec, statements=spec.statements[:k] + (stmt,) + spec.statements[k + 1:])


def _fewer_dimensions(spec: rk.KernelSpec):
    """Each tensor without one of its dimensions (the index dropped from every access)."""
    for t in spec.tensors:
        for d in range(len(t.dims)):
            def drop(acc: rk.Access, d=d, name=t.name) -> rk.Access:
                if acc.tensor != name:
                    return acc
                return replace(acc, indices=acc.indices[:d] + acc.indices[d + 1:])
            tensors = tuple(replace(x, dims=x.dims[:d] + x.dims[d + 1:]) if x is t else x
                            for x in spec.tensors)
            stmts = tuple(replace(s, lhs=drop(s.lhs), rhs=_map_loads(s.rhs, drop))
                          for s in spec.statements)
            yield replace(spec, tensors=tensors, statements=stmts)


def _map_loads(node: rk.Node, f) -> rk.Node:
    if node.load is not None:
        return replace(node, load=f(node.load))
    return replace(node, args=tuple(_map_loads(a, f) for a in node.args))


def _simpler_exprs(node: rk.Node, is_int: bool):
    """`node` with one subexpression replaced by one of its operands or by a literal."""
    if node.args:
        for a in node.args:
            yield a
        for i, a in enumerate(node.args):
            for simpler in _simpler_exprs(a, is_int):
                yield replace(node, args=node.args[:i] + (simpler,) + node.args[i + 1:])
    if node.load is not None or node.args:
        yield rk.Node("1" if is_int else "1.0")


def _retyped(spec: rk.KernelSpec, name: str, dtype: str) -> rk.KernelSpec:
    """`name` declared as `dtype`; casts to its old type read it as before."""
    return replace(spec, tensors=tuple(replace(t, dtype=dtype) if t.name == name else t
                                       for t in spec.tensors))
