"""The identity initialisation in front of a reduction into a fresh output or temporary, and
the statements an arg-reduction (`idx[i] argmax= X[i, j]`) stands for:

    idx_best[i] = -inf; idx[i] = -1                    (initialisations)
    for i, j:                                          (one band, both statements inside)
        idx[i] = select(X[i, j] > idx_best[i] or <NaN rule> or idx[i] < 0, j, idx[i])
        idx_best[i] max= X[i, j]

The index update reads the best value before the step, so it runs first.
"""

from __future__ import annotations

from dataclasses import replace

import islpy as isl

from loopweave.ir import expr as ir
from loopweave.ir import isl_helpers
from loopweave.ir.argreduce import ARG_REDUCTIONS, arg_update
from loopweave.ir.kernel import Statement, Tensor
from loopweave.ir.types import identity


def init_statement(stmt: Statement, keep: list[str], params: tuple[str, ...],
                   target_extents: tuple[isl.PwAff, ...] | None) -> Statement:
    """`lhs = identity` over the iterators `keep` (enclosing loops and the left side's
    variables): the start of a fresh reduction. `target_extents`: the written tensor's, None
    for a temporary that this reduction declares."""
    positions = [stmt.iterators.index(v) for v in keep]
    # Keep the constraints on the kept variables only: an (i, j) whose reduction range is
    # empty still starts from the identity (a sum over nothing is 0).
    domain, projected = stmt.domain, stmt.domain
    for p in reversed(range(len(stmt.iterators))):
        if p not in positions:
            domain = domain.drop_constraints_involving_dims(isl.dim_type.set, p, 1)
            domain = domain.project_out(isl.dim_type.set, p, 1)
            projected = projected.project_out(isl.dim_type.set, p, 1)
    name = stmt.name + "_init"
    domain, projected = domain.set_tuple_name(name), projected.set_tuple_name(name)
    if not domain.is_bounded():
        # A kept variable was bounded through a reduction variable (`i in 0:k`): an output
        # starts from the identity on its whole box, a temporary where it is written.
        if target_extents is None:
            domain = projected
        else:
            tensor = stmt.lhs.tensor
            inside = isl_helpers.box(params, tensor, target_extents)
            access = isl_helpers.make_map(params, name, tuple(keep), tensor, stmt.lhs.indices)
            domain = domain & access.intersect_range(inside).domain()
    return Statement(name, tuple(keep), domain, stmt.lhs, "=", stmt.rhs, stmt.pos, is_init=True,
                     enclosing=stmt.enclosing)


def init_value(op: str, target: Tensor) -> ir.Expr:
    """The identity of reduction `op` as a value stored into `target`."""
    compute = target.dtype.compute  # the stored type's identity: f8e4m3 has no -inf
    value = ir.Const(identity(op, target.dtype), compute)
    return ir.Cast(target.dtype, value) if target.dtype.is_storage_only else value


def best_value(lhs: str) -> str:
    """The name of the hidden temporary holding an arg-reduction's best value so far."""
    return f"{lhs}_best"


def arg_reduction_error(op: str, name: str, reduced: tuple[str, ...], target: Tensor | None
                        ) -> str | None:
    """Why `name[..] argmax= value` (reducing the index variables `reduced`) is refused, if it
    is: one variable is reduced, into an integer tensor."""
    if len(reduced) != 1:
        return (f"{op} needs exactly one reduced index variable (an index of the right side "
                f"that is not on the left), here {', '.join(map(repr, reduced)) or 'none'}")
    if target is not None and not target.dtype.is_int:
        return f"{op} writes an index, but '{name}' is {target.dtype}; declare it i32 or i64"
    return None


def arg_statements(op: str, stmt: Statement, init: Statement, index: ir.Load, kept: ir.Load
                   ) -> list[Statement]:
    """The four statements of `index argmax= value` (`stmt`, whose last iterator is the reduced
    one; `init` its initialisation's domain), `kept` the hidden best value: see the module
    docstring."""
    value_op = ARG_REDUCTIONS[op]
    update = arg_update(op, stmt.rhs, kept, ir.Var(stmt.iterators[-1]), index)
    return [replace(init, lhs=kept, rhs=ir.Const(identity(value_op, kept.dtype), kept.dtype)),
            replace(init, lhs=index, rhs=ir.Const(-1, index.dtype)),
            replace(stmt, lhs=index, op="=", rhs=update),
            replace(stmt, lhs=kept, op=value_op)]

