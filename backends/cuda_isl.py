"""isl queries the CUDA lowering needs: fixing dimensions as parameters, bounding boxes,
conditions and per-thread loop nests. (Whether a loop carries a dependence is asked of
`ir.dependences`, like every other target does.)

A dimension mapped to the grid (a block or thread coordinate) or to a host loop is *fixed*: it
becomes an isl parameter of the same name, so that isl generates the remaining loops, and the
guards a grid point needs, as functions of it.
"""

from __future__ import annotations

import islpy as isl

from loopweave.errors import TargetError
from loopweave.ir import isl_helpers
from loopweave.ir.codegen import AstTranslator, statement_store
from loopweave.ir.expr import Expr
from loopweave.ir.kernel import KernelIR, Statement
from loopweave.ir.loops import Node


def fix(s: isl.Set, names) -> isl.Set:
    """`s` with its dimensions called `names` moved to parameters (of the same names)."""
    tuple_name = s.get_tuple_name()
    for name in names:
        pos = s.find_dim_by_name(isl.dim_type.set, isl_helpers.isl_name(name))
        if pos >= 0:
            s = s.move_dims(isl.dim_type.param, s.dim(isl.dim_type.param), isl.dim_type.set,
                            pos, 1)
    return s.set_tuple_name(tuple_name) if tuple_name else s


def keep_only(s: isl.Set, names) -> isl.Set:
    """The projection of `s` onto its dimensions called `names` (in the set's order)."""
    wanted = {isl_helpers.isl_name(n) for n in names}
    tuple_name = s.get_tuple_name()
    for pos in reversed(range(s.dim(isl.dim_type.set))):
        if s.get_dim_name(isl.dim_type.set, pos) not in wanted:
            s = s.project_out(isl.dim_type.set, pos, 1)
    return s.set_tuple_name(tuple_name) if tuple_name else s


def _aligned_context(kernel: KernelIR, space: isl.Space) -> isl.Set:
    return kernel.context.align_params(space)


def is_empty(kernel: KernelIR, s: isl.Set) -> bool:
    return s.intersect_params(_aligned_context(kernel, s.get_space())).is_empty()


def bounds(kernel: KernelIR, s: isl.Set, dim: int) -> tuple[Expr, Expr]:
    """(lowest, highest) value of dimension `dim` of `s`, as expressions in the parameters."""
    ctx = _aligned_context(kernel, s.get_space())
    params = frozenset(kernel.params)
    try:
        low, high = s.dim_min(dim), s.dim_max(dim)
    except isl.Error as e:  # unbounded: a planner bug, said in loopweave's words
        name = s.get_dim_name(isl.dim_type.set, dim)
        raise TargetError(f"kernel {kernel.name!r}: the CUDA target found no bound of {name} "
                          f"over {s} ({str(e).split(' in /')[0]})") from e
    lo = isl_helpers.pw_aff_to_expr(low, ctx, params)
    hi = isl_helpers.pw_aff_to_expr(high, ctx, params)
    return lo, hi


def has_constant_extent(kernel: KernelIR, s: isl.Set, dim: int, limit: int) -> bool:
    """True if dimension `dim` of `s` spans at most `limit` values for every parameter value."""
    ext = s.dim_max(dim).sub(s.dim_min(dim))
    ctx = _aligned_context(kernel, ext.get_domain_space())
    ext = ext.intersect_params(ctx)
    if not ext.is_cst():
        return False
    bound = isl.PwAff.zero_on_domain(isl.LocalSpace.from_space(ext.get_domain_space()))
    bound = bound.add_constant_val(isl.Val(limit - 1))
    return ext.le_set(bound).is_equal(ext.domain())


def condition(kernel: KernelIR, s: isl.Set, within: isl.Set | None = None) -> Expr:
    """The condition, on the parameters, under which the parameter-only set `s` holds, where
    the parameters are known to lie `within` a parameter set."""
    s = s.params()
    ctx = _aligned_context(kernel, s.get_space())
    if within is not None:
        ctx = ctx.intersect(within.align_params(ctx.get_space()))
        s = s.align_params(ctx.get_space())
    build = isl.AstBuild.from_context(ctx)
    return isl_helpers.from_ast_expr(build.expr_from_set(s.gist_params(ctx)),
                                     frozenset(kernel.params))


def point_code(kernel: KernelIR, stmts: list[Statement], fixed: set[str],
               within: isl.Set | None = None) -> Node:
    """The loops that run `stmts` (in this order) for one value of the `fixed` dimensions,
    known to lie `within` a parameter set (the grid's range: isl leaves out guards it implies).

    isl's loop iterators are named c<k> by schedule position: with one statement, c<k> is the
    k-th of its dimensions that are not fixed (see `free_dims`)."""
    names = tuple(kernel.params) + tuple(sorted(fixed))
    prefix = isl_helpers.param_prefix(names)
    width = max(len(free_dims(s, fixed)) for s in stmts)
    umap = None
    for m, s in enumerate(stmts):
        free = free_dims(s, fixed)
        dims = ", ".join(isl_helpers.isl_name(v) for v in free)
        pos = [*([str(m)] if len(stmts) > 1 else []),
               *(isl_helpers.isl_name(v) for v in free), *(["0"] * (width - len(free)))]
        piece = isl.Map(f"{prefix}{{ {s.name}[{dims}] -> [{', '.join(pos) or '0'}] }}")
        piece = piece.intersect_domain(fix(s.domain, fixed))
        piece = isl.UnionMap.from_map(piece)
        umap = piece if umap is None else umap.union(piece)
    ctx = _aligned_context(kernel, umap.get_space())
    if within is not None:
        ctx = ctx.intersect(within.align_params(ctx.get_space()))
    build = isl.AstBuild.from_context(ctx)
    root = build.node_from_schedule_map(umap)
    # A call's arguments are the statement's free dimensions; the fixed ones stay variables.
    return AstTranslator(frozenset(kernel.params), lambda name, args: statement_store(
        kernel.statement[name], args, free_dims(kernel.statement[name], fixed))).node(root)


def free_dims(s: Statement, fixed: set[str]) -> list[str]:
    return [v for v in s.iterators if v not in fixed]
