"""The proof that every access of a statement stays inside its tensor, for every size the
`assume` lines allow (isl), with a counterexample when it fails."""

from __future__ import annotations

import islpy as isl

from loopweave.ir import expr as ir
from loopweave.ir import isl_helpers
from loopweave.ir.kernel import Statement, Tensor


def out_of_bounds(s: Statement, tensors: dict[str, Tensor],
                  extents: dict[str, tuple[isl.PwAff, ...]], params: tuple[str, ...],
                  context: isl.Set, shown: dict[str, ir.Expr]) -> str | None:
    """A message for the first access of `s` that may leave its tensor, or None.

    `shown` maps iterators whose value the user sees differently (a reversed loop's) to that
    value, so that the counterexample names the iteration as the source does."""
    for access in [s.lhs, *ir.loads(s.rhs)]:
        inside = isl_helpers.box(params, access.tensor, extents[access.tensor])
        m = s.access_map(params, access).intersect_params(context)
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
                f"{tensors[access.tensor]}")
    return None
