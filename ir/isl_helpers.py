"""All glue between loopweave expressions and isl (islpy) lives here.

isl objects are built from isl's text syntax, produced from `ir.expr` index expressions, so that
`print()` of any set or map in the IR reads like the DSL. Names that collide with isl's keywords
are renamed on the way in (see `isl_name`).
"""

from __future__ import annotations

import islpy as isl

from loopweave.ir.expr import Binary, Call, Const, Expr, Param, Unary, Var
from loopweave.ir.types import INDEX

# Words isl's parser treats specially; a DSL name equal to one of them gets a prefix in isl text.
_ISL_KEYWORDS = frozenset({
    "and", "or", "not", "implies", "exists", "mod", "floor", "ceil", "floord", "ceild", "min",
    "max", "infty", "NaN", "rat", "true", "false", "domain", "schedule", "child", "to", "cond",
})


def isl_name(name: str) -> str:
    """The name isl sees for a DSL identifier (unchanged unless it is an isl keyword)."""
    return f"lw_{name}" if name in _ISL_KEYWORDS or name.startswith("lw_") else name


def dsl_name(name: str) -> str:
    """Inverse of `isl_name`."""
    return name[3:] if name.startswith("lw_") else name


_CMP_TEXT = {"<": "<", "<=": "<=", ">": ">", ">=": ">=", "==": "=", "!=": "!="}


def to_isl(e: Expr) -> str:
    """isl text of a quasi-affine index expression or a condition (`and`/`or` of comparisons)."""
    match e:
        case Const(value=v):
            return str(int(v))
        case Var(name=n) | Param(name=n):
            return isl_name(n)
        case Unary(op="neg", operand=x):
            return f"(-{to_isl(x)})"
        case Binary(op="/", left=a, right=b):
            return f"floor(({to_isl(a)})/{to_isl(b)})"
        case Binary(op="%", left=a, right=b):
            return f"(({to_isl(a)}) mod {to_isl(b)})"
        case Binary(op=op, left=a, right=b) if op in ("+", "-", "*"):
            return f"({to_isl(a)} {op} {to_isl(b)})"
        case Binary(op=op, left=a, right=b) if op in _CMP_TEXT:
            return f"{to_isl(a)} {_CMP_TEXT[op]} {to_isl(b)}"
        case Binary(op=op, left=a, right=b) if op in ("and", "or"):
            return f"({to_isl(a)} {op} {to_isl(b)})"
        case Call(func=f, args=(a, b)) if f in ("min", "max"):
            return f"{f}({to_isl(a)}, {to_isl(b)})"
    raise ValueError(f"not a quasi-affine expression: {e}")


def param_prefix(params: tuple[str, ...]) -> str:
    return "[" + ", ".join(isl_name(p) for p in params) + "] -> "


def make_set(params: tuple[str, ...], tuple_name: str, dims: tuple[str, ...],
             conds: list[Expr]) -> isl.Set:
    """`[params] -> { name[dims] : cond and cond ... }`."""
    body = " and ".join(f"({to_isl(c)})" for c in conds) or "true"
    dims_text = ", ".join(isl_name(d) for d in dims)
    return isl.Set(f"{param_prefix(params)}{{ {tuple_name}[{dims_text}] : {body} }}")


def make_map(params: tuple[str, ...], src: str, src_dims: tuple[str, ...], dst: str,
             dst_exprs: tuple[Expr, ...]) -> isl.Map:
    """`[params] -> { src[dims] -> dst[exprs] }` (an access relation)."""
    src_text = ", ".join(isl_name(d) for d in src_dims)
    dst_text = ", ".join(to_isl(e) for e in dst_exprs)
    return isl.Map(f"{param_prefix(params)}{{ {src}[{src_text}] -> {dst}[{dst_text}] }}")


def band(params: tuple[str, ...],
         members: list[list[tuple[str, tuple[str, ...], Expr]]]) -> isl.MultiUnionPwAff:
    """A schedule band; each member maps every (statement, iterators) to an affine expression."""
    texts = []
    for member in members:
        pieces = "; ".join(f"{name}[{', '.join(isl_name(v) for v in its)}] -> [({to_isl(e)})]"
                           for name, its, e in member)
        texts.append(f"{{ {pieces} }}")
    return isl.MultiUnionPwAff(f"{param_prefix(params)}[{', '.join(texts)}]")


def params_set(params: tuple[str, ...], conds: list[Expr]) -> isl.Set:
    """A parameter-only set `[params] -> { : conds }`."""
    body = " and ".join(f"({to_isl(c)})" for c in conds) or "true"
    return isl.Set(f"{param_prefix(params)}{{ : {body} }}")


def box(params: tuple[str, ...], tensor: str, extents: tuple[isl.PwAff, ...]) -> isl.Set:
    """`{ tensor[a0, ...] : 0 <= a_d < extents[d] }` for extents given as parametric isl values."""
    n = len(extents)
    if n == 0:
        return isl.Set(f"{param_prefix(params)}{{ {tensor}[] }}")
    # An id parsed from text: islpy's isl.Id(name) would carry a user pointer and differ.
    tensor_id = isl.Set(f"{{ {tensor}[] }}").get_tuple_id()
    lifted = [ext.insert_dims(isl.dim_type.in_, 0, n).set_tuple_id(isl.dim_type.in_, tensor_id)
              for ext in extents]
    result = isl.Set.universe(lifted[0].get_domain_space())
    ls = isl.LocalSpace.from_space(result.get_space())
    zero = isl.PwAff.zero_on_domain(ls)
    for d, ext in enumerate(lifted):
        coord = isl.PwAff.var_on_domain(ls, isl.dim_type.set, d)
        result = result & coord.lt_set(ext) & coord.ge_set(zero)
    return result


def below(domain: isl.Set, dim: int, extent: isl.PwAff) -> isl.Set:
    """`domain` restricted to `0 <= x_dim < extent` (extent: a parametric isl value)."""
    n = domain.dim(isl.dim_type.set)
    lifted = extent.insert_dims(isl.dim_type.in_, 0, n).set_tuple_id(
        isl.dim_type.in_, domain.get_tuple_id())
    ls = isl.LocalSpace.from_space(domain.get_space())
    coord = isl.PwAff.var_on_domain(ls, isl.dim_type.set, dim)
    result = domain & coord.lt_set(lifted) & coord.ge_set(isl.PwAff.zero_on_domain(ls))
    for d in range(n):  # the intersection forgets the iterator names; keep them readable
        result = result.set_dim_name(isl.dim_type.set, d, domain.get_dim_name(isl.dim_type.set, d))
    return result.coalesce()


def pw_aff(params: tuple[str, ...], e: Expr) -> isl.PwAff:
    """A parametric expression (sizes only) as an isl piecewise affine function."""
    return isl.PwAff(f"{param_prefix(params)}{{ [({to_isl(e)})] }}")


def extent_of(written: isl.Set, dim: int) -> isl.PwAff:
    """`max(0, 1 + the largest index written along dim)`: the extent a temporary needs."""
    top = written.coalesce().dim_max(dim).add_constant_val(isl.Val(1))
    zero = isl.PwAff.zero_on_domain(isl.LocalSpace.from_space(top.get_domain_space()))
    return top.union_max(zero).coalesce()


def maps_of(umap: isl.UnionMap) -> list[isl.Map]:
    """The maps of a union map, as a Python list."""
    maps = umap.get_map_list()
    return [maps.get_at(i) for i in range(maps.n_map())]


def sets_of(uset: isl.UnionSet) -> list[isl.Set]:
    """The sets of a union set, as a Python list."""
    sets = uset.get_set_list()
    return [sets.get_at(i) for i in range(sets.n_set())]


def stable_text(domain: isl.Set) -> str:
    """isl's text of `domain` in one canonical form. isl simplifies the sets it is handed in
    place (redundant constraints dropped when a dependence analysis or the AST builder uses
    them), so `str()` of one statement's domain changed during a compilation: lu's tuning key
    (autotune/keys.py) differed before and after `compile()` built it, and records tuned at
    other sizes were never found."""
    return str(domain.remove_redundancies().coalesce().detect_equalities().remove_redundancies())


def point_values(point: isl.Point, space_set: isl.Set) -> tuple[dict[str, int], list[int]]:
    """(parameter values, coordinates) of an isl point."""
    space = point.get_space()
    params = {dsl_name(space.get_dim_name(isl.dim_type.param, i)):
              point.get_coordinate_val(isl.dim_type.param, i).to_python()
              for i in range(space.dim(isl.dim_type.param))}
    coords = [point.get_coordinate_val(isl.dim_type.set, i).to_python()
              for i in range(space.dim(isl.dim_type.set))]
    return params, coords


# -- isl AST expressions -> loopweave expressions -------------------------------------------------

_OPS = {
    isl.ast_expr_op_type.add: "+", isl.ast_expr_op_type.sub: "-", isl.ast_expr_op_type.mul: "*",
    isl.ast_expr_op_type.div: "cdiv", isl.ast_expr_op_type.fdiv_q: "/",
    isl.ast_expr_op_type.pdiv_q: "cdiv", isl.ast_expr_op_type.pdiv_r: "crem",
    isl.ast_expr_op_type.zdiv_r: "crem",
    isl.ast_expr_op_type.and_: "and", isl.ast_expr_op_type.and_then: "and",
    isl.ast_expr_op_type.or_: "or", isl.ast_expr_op_type.or_else: "or",
    isl.ast_expr_op_type.eq: "==", isl.ast_expr_op_type.le: "<=", isl.ast_expr_op_type.lt: "<",
    isl.ast_expr_op_type.ge: ">=", isl.ast_expr_op_type.gt: ">",
}


def from_ast_expr(e: isl.AstExpr, params: frozenset[str]) -> Expr:
    """Convert an isl AST expression (loop bounds, conditions, subscripts) to `ir.expr`."""
    kind = e.get_type()
    if kind == isl.ast_expr_type.int:
        return Const(e.int_get_val().to_python(), INDEX)
    if kind == isl.ast_expr_type.id:
        name = dsl_name(e.id_get_id().get_name())
        return Param(name) if name in params else Var(name)
    op = e.op_get_type()
    args = [from_ast_expr(e.op_get_arg(i), params) for i in range(e.op_get_n_arg())]
    if op == isl.ast_expr_op_type.minus:
        return Unary("neg", args[0], INDEX)
    if op in (isl.ast_expr_op_type.max, isl.ast_expr_op_type.min):
        func = "max" if op == isl.ast_expr_op_type.max else "min"
        result = args[0]
        for a in args[1:]:
            result = Call(func, (result, a), INDEX)
        return result
    if op in (isl.ast_expr_op_type.cond, isl.ast_expr_op_type.select):
        return Call("select", tuple(args), INDEX)
    if op in _OPS:
        return Binary(_OPS[op], args[0], args[1], INDEX)
    raise NotImplementedError(f"isl AST operation {op}")


def pw_aff_to_expr(pa: isl.PwAff, context: isl.Set, params: frozenset[str]) -> Expr:
    """A parametric isl value as an `ir.expr` expression, simplified under `context`."""
    build = isl.AstBuild.from_context(context)
    return from_ast_expr(build.expr_from_pw_aff(pa.gist_params(context)), params)


def iterator_range(domain: isl.Set, k: int) -> tuple[isl.PwAff, isl.PwAff]:
    """The least and greatest value of set dimension `k` of `domain` (a statement's iterator),
    as functions of the parameters: the other dimensions projected out."""
    dim = domain.project_out(isl.dim_type.set, k + 1, domain.dim(isl.dim_type.set) - k - 1) \
        .project_out(isl.dim_type.set, 0, k)
    return dim.dim_min(0), dim.dim_max(0)
