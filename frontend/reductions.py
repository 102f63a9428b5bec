"""The identity initialisation in front of a reduction into a fresh output or temporary."""

from __future__ import annotations

import islpy as isl

from loopweave.ir import expr as ir
from loopweave.ir import isl_helpers
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
