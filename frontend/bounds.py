"""The proof that every access of a statement stays inside its tensor, for every size the
`assume` lines allow (isl), with a counterexample when it fails, and a fix when isl finds one
the user can write: an `assume` on the sizes, or a `where` range of an index variable."""

from __future__ import annotations

import islpy as isl

from loopweave.frontend.data_ranges import range_loads
from loopweave.ir import expr as ir
from loopweave.ir import isl_helpers
from loopweave.ir.kernel import Statement, Tensor
from loopweave.ir.types import INDEX

_LARGE = 1 << 20  # a size "large" for `_allows_large_sizes`


def out_of_bounds(s: Statement, tensors: dict[str, Tensor],
                  extents: dict[str, tuple[isl.PwAff, ...]], params: tuple[str, ...],
                  context: isl.Set, shown: dict[str, ir.Expr]) -> str | None:
    """A message for the first access of `s` that may leave its tensor, or None.

    `shown` maps iterators whose value the user sees differently (a reversed loop's) to that
    value, so that the counterexample names the iteration as the source does."""
    for access in [s.lhs, *ir.loads(s.rhs), *range_loads(s)]:
        inside = isl_helpers.box(params, access.tensor, extents[access.tensor])
        m = s.access_map(params, access).intersect_params(context)
        # A gather's indirect dimensions are checked at call time (KernelIR.index_checks):
        # here they range over the tensor, and only the affine ones are proved.
        indirect = [k for k, x in enumerate(access.indices) if ir.is_indirect(x)]
        if indirect:
            along = inside
            for k in range(len(access.indices)):
                if k not in indirect:
                    along = along.drop_constraints_involving_dims(isl.dim_type.set, k, 1)
            m = m.intersect_range(along)
        outside = m.intersect_range(inside.complement())
        if outside.is_empty():
            continue
        point = outside.wrap().sample_point()
        values, coords = isl_helpers.point_values(point, outside.wrap())
        n = len(s.iterators)
        env = {**values, **dict(zip(s.iterators, coords[:n], strict=True))}
        its = ", ".join(f"{v}={ir.evaluate(shown[v], env) if v in shown else env[v]}"
                        for v in s.iterators)
        sizes = ", ".join(f"{k}={v}" for k, v in values.items())
        elem = ", ".join(str(c) for c in coords[n:])
        verb = "writes" if access is s.lhs else "reads"
        # A reversed loop's index reads differently in the IR than in the source: name the tensor.
        what = f"an access to {access.tensor}" if ir.variables(access) & set(shown) \
            else f"access {ir.to_str(access)}"
        return (f"{what} may be out of bounds: with {sizes or 'any sizes'}"
                f", iteration ({its}) {verb} {access.tensor}[{elem}] outside "
                f"{tensors[access.tensor]}" + _fix_hint(s, m, inside, params, context))
    return None


def _fix_hint(s: Statement, access_map: isl.Map, inside: isl.Set, params: tuple[str, ...],
              context: isl.Set) -> str:
    """"; ..." with the fixes found for an access (its map `access_map`, which must stay in
    `inside`), each checked with isl; "" when there is none."""
    fixes = []
    try:
        assume = _assume_fix(access_map.intersect_range(inside.complement()).params(), params,
                             context)
        where = _where_fix(s, access_map, inside, params, context)
    except (isl.Error, NotImplementedError):  # a hint is a courtesy: never fail the error
        return ""
    if assume:
        fixes.append(f"if such sizes never occur, say so with `assume {assume}`")
    if where:
        fixes.append(f"to skip the iterations that leave it, give the range with `{where}`")
    return "; " + "; or ".join(fixes) if fixes else ""


def _assume_fix(bad: isl.Set, params: tuple[str, ...], context: isl.Set) -> str | None:
    """An assumption on the sizes (DSL text) under which no size in `bad` remains, that still
    allows every size to be positive; None if isl finds none that the DSL can write."""
    positive = isl_helpers.params_set(params, [ir.Binary(">=", ir.Param(p), ir.Const(1), INDEX)
                                               for p in params])
    usable = context & positive
    # Simplest first: one size at least 1 (an empty tensor is what most often breaks bounds).
    for p in params:
        candidate = isl_helpers.params_set(params, [ir.Binary(">=", ir.Param(p), ir.Const(1),
                                                              INDEX)])
        if (context & candidate & bad).is_empty() and not (usable & candidate).is_empty():
            return f"{p} >= 1"
    good = usable.subtract(bad).coalesce()
    if good.is_empty():
        return None
    for candidate in (good.gist(usable), good.gist(context)):
        universe = candidate.is_equal(isl.Set.universe(candidate.get_space()))
        if not universe and (context & candidate & bad).is_empty() \
                and _allows_large_sizes(usable & candidate, params):
            build = isl.AstBuild.from_context(context)
            return _conjunction(isl_helpers.from_ast_expr(build.expr_from_set(candidate),
                                                          frozenset(params)))
    return None


def _allows_large_sizes(sizes: isl.Set, params: tuple[str, ...]) -> bool:
    """Whether `sizes` lets each size be large: an assumption that pins one (`N == 1`,
    `N <= 3`) is no fix worth suggesting."""
    return all(not (sizes & isl_helpers.params_set(params, [
        ir.Binary(">=", ir.Param(p), ir.Const(_LARGE), INDEX)])).is_empty() for p in params)


def _where_fix(s: Statement, access_map: isl.Map, inside: isl.Set, params: tuple[str, ...],
               context: isl.Set) -> str | None:
    """`where v in lo:hi` for an index variable `v` of the statement (not a `for` variable)
    under which the access stays inside its tensor; None if no single range does."""
    kept = access_map.intersect_range(inside).domain()  # the iterations that stay inside
    if kept.intersect_params(context).is_empty():
        return None
    for v in s.iterators[s.enclosing:]:
        k = s.iterators.index(v)
        bounds = [_plain(isl_helpers.pw_aff_to_expr(b, context, frozenset(params)))
                  for b in (kept.dim_min(k), kept.dim_max(k).add_constant_val(isl.Val(1)))]
        if None in bounds:
            continue
        lo, hi = bounds
        ranged = s.domain & isl_helpers.make_set(params, s.name, s.iterators, [
            ir.Binary("<=", lo, ir.Var(v), INDEX), ir.Binary("<", ir.Var(v), hi, INDEX)])
        if access_map.intersect_domain(ranged).intersect_range(inside.complement()) \
                .intersect_params(context).is_empty():
            return f"where {v} in {ir.to_str(lo)}:{ir.to_str(hi)}"
    return None


def _plain(e: ir.Expr) -> ir.Expr | None:
    """`e` if the DSL can write it as a `where` bound (sums and products of sizes), else
    None (isl's min, max, divisions and selections read badly in a hint)."""
    for x in ir.walk(e):
        if isinstance(x, ir.Call) or (isinstance(x, ir.Binary) and x.op not in "+-*"):
            return None
    return e


def _conjunction(e: ir.Expr) -> str | None:
    """A condition as the text of an `assume` (comparisons joined by commas), or None when it
    is not a conjunction of plain comparisons."""
    if isinstance(e, ir.Binary) and e.op == "and":
        parts = [_conjunction(e.left), _conjunction(e.right)]
        return None if None in parts else ", ".join(parts)
    if isinstance(e, ir.Binary) and e.op in ("<", "<=", ">", ">=", "==") \
            and _plain(e.left) is not None and _plain(e.right) is not None:
        return ir.to_str(e)
    return None
