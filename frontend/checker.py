"""Checked syntax tree -> polyhedral `KernelIR`.

What it establishes, in this order, collecting every error before raising one `DSLTypeError`:
1. Signature: dtypes, distinct names, which size symbols the argument shapes bind.
2. Per statement: which names are index variables, the range of each (from `where v in lo:hi`
   or from the extents of the dimensions it indexes directly, which must agree), its isl domain,
   the typed right side, the reduction variables, and an identity initialisation in front of a
   reduction into a fresh output or temporary.
3. Every access is in bounds for every size allowed by the `assume` lines (proved with isl; a
   counterexample is reported otherwise).
4. The initial schedule tree (frontend/program_order.py): program order, each statement's
   iterations in lexicographic order.
"""

from __future__ import annotations

from dataclasses import replace

import islpy as isl

from loopweave.errors import BoundsError, DSLTypeError, SourcePos
from loopweave.frontend import ast
from loopweave.frontend.program_order import Loop, Node, program_order
from loopweave.frontend.values import (
    NotAffine,
    Typed,
    ValueTyper,
    affine,
    affine_condition,
    coerce,
    default_type,
)
from loopweave.ir import expr as ir
from loopweave.ir import isl_helpers
from loopweave.ir.kernel import KernelIR, ScalarArg, Statement, Tensor
from loopweave.ir.types import DTYPES, INDEX, identity

# The most loops around one statement: more is surely a mistake, and isl's time grows
# steeply with the dimension (80 nested loops take a minute).
MAX_LOOPS = 32


class _Abort(Exception):
    """Stops checking the current statement after an error was recorded."""


class Checker:
    def __init__(self, kdef: ast.KernelDef, source: str):
        self.kdef = kdef
        self.source = source
        self.errors: list[DSLTypeError] = []
        self.tensors: dict[str, Tensor] = {}
        self.tensor_pos: dict[str, SourcePos] = {}
        self.extents: dict[str, tuple[isl.PwAff, ...]] = {}
        self.scalars: dict[str, ScalarArg] = {}
        self.sizes: list[str] = []
        self.params: tuple[str, ...] = ()
        self.args: list[Tensor | ScalarArg] = []
        self.outputs: list[Tensor] = []
        self.temporaries: list[Tensor] = []
        self.assumptions: list[ir.Expr] = []
        self.context: isl.Set | None = None
        self.statements: list[Statement] = []
        self.written: set[str] = set()
        self.failed: set[str] = set()  # temporaries whose declaring statement had an error

    # -- error handling ----------------------------------------------------------------------------

    def error(self, message: str, pos: SourcePos | None, cls=DSLTypeError) -> _Abort:
        self.errors.append(cls(message, pos, self.source))
        return _Abort()

    def raise_collected(self) -> None:
        if not self.errors:
            return
        if len(self.errors) == 1:
            raise self.errors[0]
        first = self.errors[0]
        err = type(first) if all(type(e) is type(first) for e in self.errors) else DSLTypeError
        raise err(first.message, first.pos, self.source, errors=self.errors)

    # -- 1. signature ------------------------------------------------------------------------------

    def check_signature(self) -> None:
        seen: dict[str, SourcePos] = {}
        for p in (*self.kdef.params, *self.kdef.outputs):
            if p.name in seen:
                self.error(f"'{p.name}' is declared twice (first at {seen[p.name]})", p.pos)
            seen[p.name] = p.pos
            if p.dtype not in DTYPES:
                self.error(f"unknown type '{p.dtype}' for '{p.name}'; "
                           f"known types: {', '.join(DTYPES)}", p.dtype_pos)
        if self.errors:
            return
        int_scalars = []
        for p in self.kdef.params:
            dtype = DTYPES[p.dtype]
            if p.shape is None:
                if p.inout:
                    self.error(f"scalar '{p.name}' cannot be inout; use a tensor", p.pos)
                self.scalars[p.name] = ScalarArg(p.name, dtype)
                if dtype.is_int:
                    int_scalars.append(p.name)
            else:
                for d in p.shape:
                    if isinstance(d, ast.Name) and d.id not in self.sizes and d.id not in seen:
                        self.sizes.append(d.id)
        self.params = (*self.sizes, *int_scalars)
        self.context = isl_helpers.params_set(
            self.params, [ir.Binary(">=", ir.Param(s), ir.Const(0), INDEX) for s in self.sizes])
        for p in self.kdef.params:
            if p.shape is not None:
                self.declare(p, "inout" if p.inout else "in")
        self.args = [self.scalars.get(p.name) or self.tensors.get(p.name)
                     for p in self.kdef.params]
        for p in self.kdef.outputs:
            if p.shape is None:
                self.error(f"output '{p.name}' needs a shape, e.g. {p.name}: {p.dtype}[N]", p.pos)
                continue
            self.declare(p, "out")

    def declare(self, p: ast.Param, role: str) -> None:
        def shape_name(name: str, pos: SourcePos) -> ir.Expr:
            if name in self.params:
                return ir.Param(name)
            raise self.error(f"'{name}' in the shape of '{p.name}' is not a size: sizes are "
                             "bound by bare names in the input shapes", pos)
        try:
            shape = tuple(affine(d, shape_name) for d in p.shape)
        except NotAffine as e:
            self.error(f"shape of '{p.name}' is not affine: {e}", p.pos)
            return
        except _Abort:
            return
        tensor = Tensor(p.name, DTYPES[p.dtype], shape, role)
        self.tensors[p.name] = tensor
        self.tensor_pos[p.name] = p.pos
        self.extents[p.name] = tuple(isl_helpers.pw_aff(self.params, d) for d in shape)
        if role == "out":
            self.outputs.append(tensor)
        if role == "inout":
            self.written.add(p.name)

    # -- 2. body -----------------------------------------------------------------------------------

    def check_body(self, items: tuple[ast.BodyItem, ...], loops: list[Loop], node: Node) -> None:
        for item in items:
            try:
                if isinstance(item, ast.Assume):
                    self.check_assume(item)
                elif isinstance(item, ast.ForLoop):
                    self.check_for(item, loops, node)
                else:
                    node.children += self.check_statement(item, loops)
            except _Abort:
                if isinstance(item, ast.Statement) and item.lhs.tensor not in self.tensors:
                    self.failed.add(item.lhs.tensor)
                continue

    def check_assume(self, item: ast.Assume) -> None:
        def param_only(name: str, pos: SourcePos) -> ir.Expr:
            if name in self.params:
                return ir.Param(name)
            raise self.error(f"'assume' may only mention sizes and integer scalars, "
                             f"not '{name}'", pos)
        previous = self.context
        for cond in item.conds:
            try:
                c = affine_condition(cond, param_only)
            except NotAffine as e:
                raise self.error(f"'assume' needs an affine condition on sizes: {e}",
                                 cond.pos) from None
            self.assumptions.append(c)
            self.context = self.context & isl_helpers.params_set(self.params, [c])
        if self.context.is_empty():
            self.context = previous  # the statements after it are checked without it
            raise self.error("the assumptions contradict each other", item.pos)

    def name_is_free(self, name: str, loops: list[Loop]) -> bool:
        return (name not in self.tensors and name not in self.scalars
                and name not in self.params and all(lp.var != name for lp in loops))

    def check_for(self, item: ast.ForLoop, loops: list[Loop], node: Node) -> None:
        if not self.name_is_free(item.var, loops):
            raise self.error(f"loop variable '{item.var}' is already the name of something else",
                             item.pos)
        outer = {lp.var for lp in loops}

        def bound_name(name: str, pos: SourcePos) -> ir.Expr:
            if name in self.params:
                return ir.Param(name)
            if name in outer:
                return ir.Var(name)
            raise self.error(f"loop bound uses '{name}', which is not a size, an integer scalar "
                             "or an outer loop variable", pos)
        try:
            lo, hi = affine(item.lo, bound_name), affine(item.hi, bound_name)
        except NotAffine as e:
            raise self.error(f"bounds of loop '{item.var}' are not affine: {e}",
                             item.pos) from None
        child = Node(Loop(item.var, lo, hi))
        self.check_body(item.body, [*loops, child.loop], child)
        if child.children:
            node.children.append(child)

    def check_statement(self, st: ast.Statement, loops: list[Loop]) -> list[Statement]:
        outer = [lp.var for lp in loops]
        lhs_name = st.lhs.tensor
        if lhs_name in self.scalars or lhs_name in self.params or lhs_name in outer:
            raise self.error(f"cannot assign to '{lhs_name}': it is not a tensor", st.lhs.pos)
        target = self.tensors.get(lhs_name)
        if target is not None and target.role == "in":
            raise self.error(f"cannot write input '{lhs_name}'; declare it `inout` to update it "
                             "in place", st.lhs.pos)
        if target is not None and len(st.lhs.indices) != len(target.shape):
            raise self.error(f"'{lhs_name}' has rank {len(target.shape)} but is written with "
                             f"{len(st.lhs.indices)} index(es)", st.lhs.pos)

        index_vars = self.find_index_vars(st, loops)
        var_set = set(index_vars)
        lhs_vars = [v for v in index_vars if v in self.names_in(st.lhs)]

        def index_name(name: str, pos: SourcePos) -> ir.Expr:
            if name in var_set or name in outer:
                return ir.Var(name)
            if name in self.params:
                return ir.Param(name)
            raise self.error(f"'{name}' cannot appear in an index: it is not an index variable, "
                             "a size or an integer scalar", pos)

        def to_affine(e: ast.Expr, what: str, convert=affine) -> ir.Expr:
            try:
                return convert(e, index_name)
            except NotAffine as ex:
                raise self.error(f"{what} is not affine: {ex}", e.pos) from None

        # Ranges: explicit `where v in lo:hi`, else the extents of the dims v indexes directly.
        conds: list[ir.Expr] = []
        for lp in loops:
            conds += [ir.Binary("<=", lp.lo, ir.Var(lp.var), INDEX),
                      ir.Binary("<", ir.Var(lp.var), lp.hi, INDEX)]
        explicit = set()
        for w in st.where:
            if isinstance(w, ast.WhereRange):
                explicit.add(w.var)
                lo = to_affine(w.lo, f"lower bound of '{w.var}'")
                hi = to_affine(w.hi, f"upper bound of '{w.var}'")
                conds += [ir.Binary("<=", lo, ir.Var(w.var), INDEX),
                          ir.Binary("<", ir.Var(w.var), hi, INDEX)]
            else:
                conds.append(to_affine(w.cond, "the `where` condition", affine_condition))
        implicit = {v: self.implicit_range(v, st) for v in index_vars if v not in explicit}
        # Extents a temporary declared here takes along a dimension indexed by a bare variable.
        extents = dict(implicit)
        for w in st.where:
            if isinstance(w, ast.WhereRange) and not (self.names_in(w.hi) - set(self.params)):
                hi = isl_helpers.pw_aff(self.params, to_affine(w.hi, "upper bound"))
                extents[w.var] = hi.union_max(hi.sub(hi)).coalesce()  # max(hi, 0)

        iterators = (*outer, *index_vars)
        if len(iterators) > MAX_LOOPS:  # isl's cost grows steeply with the dimension
            raise self.error(f"this statement runs in {len(iterators)} nested loops "
                             f"({len(outer)} `for` loops, {len(index_vars)} index variables); at "
                             f"most {MAX_LOOPS} are supported", st.pos)
        name = f"S{len(self.statements)}"
        domain = isl_helpers.make_set(self.params, name, iterators, conds)
        for v, extent in implicit.items():
            domain = isl_helpers.below(domain, iterators.index(v), extent)
        # Ranges that refer to their own variable (`where j in j:N`) or to each other may leave
        # a variable unbounded; isl could not generate its loop.
        for k, v in enumerate(iterators):
            alone = domain.project_out(isl.dim_type.set, k + 1, len(iterators) - k - 1)
            if not alone.project_out(isl.dim_type.set, 0, k).is_bounded():
                where = next((w.pos for w in st.where
                              if isinstance(w, ast.WhereRange) and w.var == v), st.pos)
                raise self.error(f"the range of '{v}' has no finite bounds; give it with "
                                 f"`where {v} in lo:hi` in terms of sizes and other variables",
                                 where)
        lhs_indices = tuple(to_affine(i, f"index {k} of '{lhs_name}'")
                            for k, i in enumerate(st.lhs.indices))

        # The right side, typed.
        def resolve(n: str, pos: SourcePos) -> Typed:
            if n in self.scalars:
                sc = ir.Scalar(n, self.scalars[n].dtype)
                return Typed(ir.Cast(sc.dtype.compute, sc) if sc.dtype.is_storage_only else sc)
            if n in self.params:
                return Typed(ir.Param(n), weak=True)
            if n in var_set or n in outer:
                return Typed(ir.Var(n), weak=True)
            if n in self.tensors:
                raise DSLTypeError(f"tensor '{n}' is used without indices", pos)
            raise DSLTypeError(f"unknown name '{n}'", pos)

        def load(a: ast.Access) -> ir.Load:
            t = self.tensors.get(a.tensor)
            if t is None:
                if a.tensor == lhs_name:
                    raise DSLTypeError(f"'{a.tensor}' is read before it is first written", a.pos)
                raise DSLTypeError(f"unknown tensor '{a.tensor}'", a.pos)
            if len(a.indices) != len(t.shape):
                raise DSLTypeError(f"'{a.tensor}' has rank {len(t.shape)} but is indexed with "
                                   f"{len(a.indices)} index(es)", a.pos)
            return ir.Load(a.tensor, tuple(to_affine(i, f"index {k} of '{a.tensor}'")
                                           for k, i in enumerate(a.indices)), t.dtype)
        try:
            rhs = ValueTyper(resolve, load)(st.rhs)
        except DSLTypeError as ex:
            if ex.message.startswith("unknown tensor") and ex.message.split("'")[1] in self.failed:
                raise _Abort() from None  # already reported where it was declared
            raise self.error(ex.message, ex.pos) from None
        if rhs.expr.dtype.name == "bool":
            raise self.error("the right side is a condition; use select(c, a, b) to make a value",
                             st.rhs.pos)

        if st.op == "=":
            free = [v for v in index_vars if v not in lhs_vars]
            if free:
                raise self.error(
                    f"index '{free[0]}' is free on the right of '=': it does not appear on the "
                    f"left; use a reduction (+=, max=, ...) or index the left side with it",
                    self.first_use(st, free[0]))

        lhs = ir.Load(lhs_name, lhs_indices, rhs.expr.dtype)
        stmt = Statement(name, iterators, domain, lhs, st.op, rhs.expr, st.pos)
        result = [stmt]
        if st.op != "=" and lhs_name not in self.written:
            result.insert(0, self.init_statement(stmt, outer, lhs_vars))
        if target is None:
            target = self.declare_temporary(st, result, default_type(rhs).dtype, extents)
        value = self.store_value(rhs, target, st)
        lhs = ir.Load(lhs_name, lhs_indices, target.dtype)
        result = [replace(s, lhs=lhs, rhs=self.init_value(st.op, target) if s.is_init else value)
                  for s in result]
        self.written.add(lhs_name)
        named = self.append(result)
        for s in named:
            self.prove_in_bounds(s)
        return named

    def append(self, stmts: list[Statement]) -> list[Statement]:
        """Append statements, naming them S<n> in program order (an init before its update)."""
        named = []
        for s in stmts:
            new = f"S{len(self.statements)}"
            if s.name != new:
                s = Statement(new, s.iterators, s.domain.set_tuple_name(new), s.lhs, s.op,
                              s.rhs, s.pos, s.is_init)
            self.statements.append(s)
            named.append(s)
        return named

    def find_index_vars(self, st: ast.Statement, loops: list[Loop]) -> list[str]:
        """Index variables in order of first appearance: left side, right side, `where`."""
        order: list[str] = []
        in_index: set[str] = set()

        def visit(e: ast.Expr, index_position: bool) -> None:
            match e:
                case ast.Name(id=n):
                    if self.name_is_free(n, loops) and n != st.lhs.tensor:
                        if n not in order:
                            order.append(n)
                        if index_position:
                            in_index.add(n)
                case ast.Access(indices=ix):
                    for i in ix:
                        visit(i, True)
                case ast.Unary(operand=x):
                    visit(x, index_position)
                case ast.Binary(left=a, right=b) | ast.Compare(left=a, right=b):
                    visit(a, index_position)
                    visit(b, index_position)
                case ast.Call(args=args):
                    for a in args:
                        visit(a, index_position)

        visit(st.lhs, True)
        visit(st.rhs, False)
        for w in st.where:
            if isinstance(w, ast.WhereRange):
                if not self.name_is_free(w.var, loops):
                    raise self.error(f"'{w.var}' in `where {w.var} in ...` is not an index "
                                     "variable", w.pos)
                if w.var not in order:
                    order.append(w.var)
                in_index.add(w.var)
                visit(w.lo, True)
                visit(w.hi, True)
            else:
                visit(w.cond, True)
        # A name seen only as a value (never indexing anything) is a misspelling, not a variable.
        return [n for n in order if n in in_index]

    def names_in(self, e: ast.Expr) -> set[str]:
        match e:
            case ast.Name(id=n):
                return {n}
            case ast.Access(indices=ix) | ast.Call(args=ix):
                return set().union(*(self.names_in(i) for i in ix))
            case ast.Unary(operand=x):
                return self.names_in(x)
            case ast.Binary(left=a, right=b) | ast.Compare(left=a, right=b):
                return self.names_in(a) | self.names_in(b)
        return set()

    def first_use(self, st: ast.Statement, var: str) -> SourcePos:
        def find(e: ast.Expr) -> SourcePos | None:
            match e:
                case ast.Name(id=n, pos=pos) if n == var:
                    return pos
                case ast.Access(indices=ix) | ast.Call(args=ix):
                    return next((p for p in map(find, ix) if p), None)
                case ast.Unary(operand=x):
                    return find(x)
                case ast.Binary(left=a, right=b) | ast.Compare(left=a, right=b):
                    return find(a) or find(b)
            return None
        return find(st.rhs) or st.pos

    def implicit_range(self, var: str, st: ast.Statement) -> isl.PwAff:
        """The extent of `var`, from the dimensions it indexes directly; they must agree."""
        uses: list[tuple[str, int, SourcePos]] = []

        def visit(e: ast.Expr) -> None:
            match e:
                case ast.Access(tensor=t, indices=ix):
                    for d, i in enumerate(ix):
                        if isinstance(i, ast.Name) and i.id == var and t in self.tensors \
                                and len(ix) == len(self.tensors[t].shape):
                            uses.append((t, d, i.pos))
                        visit(i)
                case ast.Unary(operand=x):
                    visit(x)
                case ast.Binary(left=a, right=b) | ast.Compare(left=a, right=b):
                    visit(a)
                    visit(b)
                case ast.Call(args=args):
                    for a in args:
                        visit(a)
        visit(st.lhs)
        visit(st.rhs)
        if not uses:
            raise self.error(f"cannot infer the range of index '{var}': it never indexes a tensor "
                             f"dimension directly; give it with `where {var} in lo:hi`",
                             self.first_use(st, var) if var in self.names_in(st.rhs) else st.pos)
        t0, d0, _ = uses[0]
        for t, d, pos in uses[1:]:
            a, b = self.extents[t0][d0], self.extents[t][d]
            if not self.context.is_subset(a.eq_set(b)):
                ea, eb = ir.to_str(self.tensors[t0].shape[d0]), ir.to_str(self.tensors[t].shape[d])
                raise self.error(f"index '{var}' ranges over dimension {d0} of '{t0}' (extent "
                                 f"{ea}) and dimension {d} of '{t}' (extent {eb}), which may "
                                 f"differ; use `where {var} in lo:hi` or an `assume`", pos)
        return self.extents[t0][d0]

    def declare_temporary(self, st: ast.Statement, stmts: list[Statement], dtype,
                          implicit: dict[str, isl.PwAff]) -> Tensor:
        """A temporary's shape: along a dimension indexed by a variable whose range came from
        tensor extents, that extent; otherwise the bounding box (from 0) of what is written."""
        if not self.name_is_free(st.lhs.tensor, []):
            raise self.error(f"'{st.lhs.tensor}' is not a tensor", st.lhs.pos)
        written = None
        for s in stmts:
            elements = s.access_map(self.params, s.lhs).range()
            written = elements if written is None else written | elements
        extents = tuple(
            implicit[i.id] if isinstance(i, ast.Name) and i.id in implicit
            else isl_helpers.extent_of(written, d) for d, i in enumerate(st.lhs.indices))
        names = frozenset(self.params)
        shape = tuple(isl_helpers.pw_aff_to_expr(e, self.context, names) for e in extents)
        tensor = Tensor(st.lhs.tensor, dtype, shape, "temp")
        self.tensors[tensor.name] = tensor
        self.tensor_pos[tensor.name] = st.lhs.pos
        self.extents[tensor.name] = extents
        self.temporaries.append(tensor)
        return tensor

    def store_value(self, rhs: Typed, target: Tensor, st: ast.Statement) -> ir.Expr:
        compute = target.dtype.compute
        try:
            value = coerce(rhs, compute, st.rhs.pos, "the right side")
        except DSLTypeError as ex:
            raise self.error(f"{ex.message} (assigned to '{target.name}': {target.dtype})",
                             ex.pos) from None
        return ir.Cast(target.dtype, value) if target.dtype.is_storage_only else value

    def init_statement(self, stmt: Statement, outer: list[str], lhs_vars: list[str]) -> Statement:
        """`lhs = identity` over the left side's variables: the start of a fresh reduction."""
        keep = [*outer, *lhs_vars]
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
            target = self.tensors.get(stmt.lhs.tensor)
            if target is None:
                domain = projected
            else:
                inside = isl_helpers.box(self.params, target.name, self.extents[target.name])
                access = isl_helpers.make_map(self.params, name, tuple(keep), target.name,
                                              stmt.lhs.indices)
                domain = domain & access.intersect_range(inside).domain()
        return Statement(name, tuple(keep), domain, stmt.lhs, "=", stmt.rhs, stmt.pos,
                         is_init=True)

    def init_value(self, op: str, target: Tensor) -> ir.Expr:
        compute = target.dtype.compute
        value = ir.Const(identity(op, compute), compute)
        return ir.Cast(target.dtype, value) if target.dtype.is_storage_only else value

    # -- 3. bounds ---------------------------------------------------------------------------------

    def prove_in_bounds(self, s: Statement) -> None:
        for access in [s.lhs, *ir.loads(s.rhs)]:
            tensor = self.tensors[access.tensor]
            inside = isl_helpers.box(self.params, access.tensor, self.extents[access.tensor])
            m = s.access_map(self.params, access).intersect_params(self.context)
            outside = m.intersect_range(inside.complement())
            if outside.is_empty():
                continue
            point = outside.wrap().sample_point()
            params, coords = isl_helpers.point_values(point, outside.wrap())
            n = len(s.iterators)
            its = ", ".join(f"{v}={c}" for v, c in zip(s.iterators, coords[:n], strict=True))
            sizes = ", ".join(f"{k}={v}" for k, v in params.items())
            elem = ", ".join(str(c) for c in coords[n:])
            verb = "writes" if access is s.lhs else "reads"
            self.error(f"access {ir.to_str(access)} may be out of bounds: with "
                       f"{sizes or 'any sizes'}"
                       f", iteration ({its}) {verb} {access.tensor}[{elem}] outside {tensor}",
                       s.pos, BoundsError)
            return

    # -- driver ------------------------------------------------------------------------------------

    def run(self) -> KernelIR:
        self.check_signature()
        self.raise_collected()
        root = Node()
        self.check_body(self.kdef.body, [], root)
        self.raise_collected()
        if not self.statements:
            raise DSLTypeError(f"kernel '{self.kdef.name}' has no statements", self.kdef.pos,
                               self.source)
        missing = [t.name for t in self.outputs if t.name not in self.written]
        if missing:
            raise DSLTypeError(f"output '{missing[0]}' is never written",
                               self.tensor_pos[missing[0]], self.source)
        return KernelIR(self.kdef.name, tuple(self.args), tuple(self.outputs),
                        tuple(self.temporaries), self.params, tuple(self.sizes),
                        tuple(self.assumptions), self.context, tuple(self.statements),
                        program_order(self.params, root), self.source)


def check(kdef: ast.KernelDef, source: str) -> KernelIR:
    """Check a parsed kernel and build its polyhedral IR.

    Raises one `DSLTypeError` listing all errors found."""
    return Checker(kdef, source).run()
