"""Triton lowering's isl helpers: a statement's domain over its iterators as bounds, boxes,
masks and program-id conditions, in DSL expressions (for backends/triton_plan.py and
triton_emit.py)."""

from __future__ import annotations

import islpy as isl

from loopweave.ir import expr as ir
from loopweave.ir import isl_helpers


def names_of(s: isl.Set) -> list[str]:
    return [isl_helpers.dsl_name(s.get_dim_name(isl.dim_type.set, d))
            for d in range(s.dim(isl.dim_type.set))]


def to_params(domain: isl.Set, iterators: tuple[str, ...], scalars) -> isl.Set:
    """`domain` with the iterators in `scalars` moved to parameters (known inside the program)."""
    for name in iterators:
        if name in scalars:
            names = [isl_helpers.dsl_name(domain.get_dim_name(isl.dim_type.set, d))
                     for d in range(domain.dim(isl.dim_type.set))]
            pos = names.index(name)
            n = domain.dim(isl.dim_type.param)
            domain = domain.move_dims(isl.dim_type.param, n, isl.dim_type.set, pos, 1)
    return domain


def _named(domain: isl.Set, iterators: tuple[str, ...]) -> isl.Set:
    for d, name in enumerate(iterators):
        domain = domain.set_dim_name(isl.dim_type.set, d, isl_helpers.isl_name(name))
    return domain


def bounds(domain: isl.Set, iterators: tuple[str, ...], var: str, scalars,
           context: isl.Set, params: tuple[str, ...]) -> tuple[ir.Expr, ir.Expr]:
    """Inclusive (lower, upper) of `var` over the domain's hull, in parameters and `scalars`."""
    d = to_params(_named(domain, iterators), iterators, scalars)
    pos = names_of(d).index(var)
    ctx = isl.Set.universe(d.get_space().params()).intersect_params(context)
    known = frozenset(params) | frozenset(scalars)
    lo = isl_helpers.pw_aff_to_expr(d.dim_min(pos).coalesce(), ctx, known)
    hi = isl_helpers.pw_aff_to_expr(d.dim_max(pos).coalesce(), ctx, known)
    return lo, hi


def box_of(domain: isl.Set, iterators, scalars) -> isl.Set:
    """The rectangular hull of `domain` over its non-scalar iterators."""
    d = to_params(_named(domain, iterators), iterators, scalars)
    n = d.dim(isl.dim_type.set)
    result = isl.Set.universe(d.get_space())
    ls = isl.LocalSpace.from_space(d.get_space())

    def lift(pa: isl.PwAff) -> isl.PwAff:
        pa = pa.insert_dims(isl.dim_type.in_, 0, n)
        return pa.set_tuple_id(isl.dim_type.in_, d.get_tuple_id()) if d.has_tuple_id() else pa
    for pos in range(n):
        coord = isl.PwAff.var_on_domain(ls, isl.dim_type.set, pos)
        result = result & coord.ge_set(lift(d.dim_min(pos).coalesce())) \
            & coord.le_set(lift(d.dim_max(pos).coalesce()))
    return result


def extra_condition(domain: isl.Set, iterators, scalars, context: isl.Set,
                    params: tuple[str, ...]) -> ir.Expr | None:
    """The constraints of `domain` its hull does not imply (a mask), or None."""
    d = to_params(_named(domain, iterators), iterators, scalars)
    hull = box_of(domain, iterators, scalars)
    gist = d.gist(hull).coalesce()
    if gist.plain_is_universe():
        return None
    names = names_of(d)
    n = d.dim(isl.dim_type.param)
    as_params = gist.move_dims(isl.dim_type.param, n, isl.dim_type.set, 0, len(names))
    for k, name in enumerate(names):
        as_params = as_params.set_dim_name(isl.dim_type.param, n + k, isl_helpers.isl_name(name))
    build = isl.AstBuild.from_context(isl.Set.universe(as_params.get_space().params()))
    known = frozenset(params) | frozenset(scalars)
    return isl_helpers.from_ast_expr(build.expr_from_set(as_params.params()), known)


def pid_condition(domain: isl.Set, iterators, pids, host, params, boxed: bool = False):
    """The condition on the program ids `pids` (and `host` loop variables) under which the
    domain has points: whole, or (`boxed`) what their box does not imply (0 <= i - j < 3)."""
    dom, its = project_onto(domain, iterators, tuple(pids) + tuple(host))
    if boxed:
        return extra_condition(dom, its, set(host), isl.Set("{ : }"), params)
    d = to_params(dom, its, set(its))
    build = isl.AstBuild.from_context(isl.Set.universe(d.get_space().params()))
    if d.params().plain_is_universe():
        return None
    known = frozenset(params) | frozenset(its)
    return isl_helpers.from_ast_expr(build.expr_from_set(d.params()), known)


def project_onto(domain: isl.Set, iterators: tuple[str, ...],
                 keep: tuple[str, ...]) -> tuple[isl.Set, tuple[str, ...]]:
    """`domain` projected onto the iterators in `keep` (in iterator order)."""
    d = _named(domain, iterators)
    kept = tuple(v for v in iterators if v in keep)
    for pos in reversed(range(len(iterators))):
        if iterators[pos] not in keep:
            d = d.project_out(isl.dim_type.set, pos, 1)
    return _named(d, kept), kept
