"""Checked syntax tree -> polyhedral `KernelIR`.

What it establishes, in this order, collecting every error before raising one `DSLTypeError`:
1. Signature: dtypes, distinct names, which size symbols the argument shapes bind.
2. Per statement: which names are index variables, the range of each (from `where v in lo:hi`
   or from the extents of the dimensions it indexes directly, which must agree), its isl domain,
   the typed right side, the reduction variables, and an identity initialisation in front of a
   reduction into a fresh output or temporary. Temporaries (frontend/temporaries.py) are
   declared by their first write and grow with later ones. Sugar is removed here: `x -= e` is
   `x += -(e)`, a bare name `s` is the 0-d tensor `s[]`, and a reversed loop's variable is an
   expression of an upward iterator (frontend/program_order.py `Loop.value`).
3. Every access is in bounds for every size allowed by the `assume` lines (frontend/bounds.py:
   proved with isl once all shapes are known; a counterexample is reported otherwise).
4. The initial schedule tree (frontend/program_order.py): program order, each statement's
   iterations in lexicographic order.
Warnings (frontend/lint.py: a reduced index one edit away from a free one, a likely typo) are
issued as `DSLWarning`s once the kernel has checked without errors.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import islpy as isl

from loopweave.errors import BoundsError, DSLTypeError, DSLWarning, SourcePos
from loopweave.frontend import ast
from loopweave.frontend import temporaries as temps
from loopweave.frontend.arg_reductions import check_arg_reduction
from loopweave.frontend.ast_walk import first_use, names_in, writes_by_name
from loopweave.frontend.bounds import out_of_bounds
from loopweave.frontend.data_ranges import (
    data_range,
    declared_values,
    is_data_range,
    range_checks,
)
from loopweave.frontend.gathers import gather_index, index_checks, scatter_error, tensor_read
from loopweave.frontend.index_vars import find_index_vars, implicit_range
from loopweave.frontend.lint import near_miss_indices
from loopweave.frontend.program_order import Loop, Node, program_order
from loopweave.frontend.reductions import init_statement, init_value
from loopweave.frontend.values import (
    FLOAT_WORDS,
    NotAffine,
    Typed,
    ValueTyper,
    affine,
    affine_condition,
    coerce,
    negated,
    tidy,
)
from loopweave.ir import expr as ir
from loopweave.ir import isl_helpers
from loopweave.ir.argreduce import ARG_REDUCTIONS
from loopweave.ir.kernel import DataRange, KernelIR, ScalarArg, Statement, Tensor
from loopweave.ir.types import DTYPES, INDEX

# The most loops around one statement: more is surely a mistake, and isl's time grows
# steeply with the dimension (80 nested loops take a minute).
MAX_LOOPS = 32

# Which lint warnings were shown already (as `warnings.warn` keeps one per calling module): a
# kernel compiled again in a loop warns once, under Python's default warning filter.
_WARNED: dict = {}


class _Abort(Exception):
    """Stops checking the current statement after an error was recorded."""


class Checker:
    def __init__(self, kdef: ast.KernelDef, source: str):
        self.kdef = kdef
        self.source = source
        self.errors: list[DSLTypeError] = []
        self.warnings: list[DSLWarning] = []  # issued only if the kernel checks
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
        self.writes: dict[str, list[ast.Statement]] = {}  # every write of a name, in order
        self.untyped: dict[str, SourcePos] = {}  # temporaries whose type is a default
        self.to_prove: list[tuple[Statement, dict[str, ir.Expr]]] = []  # bounds, at the end
        self.declared: dict[str, dict[str, ir.Expr]] = {}  # `assume 0 <= T <= N`: T's values

    # -- error handling ----------------------------------------------------------------------------

    def error(self, message: str, pos: SourcePos | None, cls=DSLTypeError) -> _Abort:
        self.errors.append(cls(message, pos, self.source))
        return _Abort()

    def warn(self, message: str, pos: SourcePos) -> None:
        self.warnings.append(DSLWarning(message, pos, self.source))

    def issue_warnings(self) -> None:
        """The collected warnings, shown at their DSL line (as `<kernel name>:line`)."""
        for w in self.warnings:
            warnings.warn_explicit(w, DSLWarning, f"<kernel {self.kdef.name}>", w.line or 0,
                                   registry=_WARNED)

    def raise_collected(self) -> None:
        if not self.errors:
            return
        self.errors.sort(key=lambda e: e.line or 0)  # bounds are proved last; show in text order
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
        self.float_type = temps.kernel_float_type(
            DTYPES[p.dtype] for p in (*self.kdef.params, *self.kdef.outputs))
        self.context = isl_helpers.params_set(
            self.params, [ir.Binary(">=", ir.Param(s), ir.Const(0), INDEX) for s in self.sizes])
        for p in self.kdef.params:
            if p.shape is not None:
                self.declare(p, "inout" if p.inout else "in")
        self.args = [self.scalars.get(p.name) or self.tensors.get(p.name)
                     for p in self.kdef.params]
        for p in self.kdef.outputs:
            if p.shape is None:
                self.error(f"output '{p.name}' needs a shape, e.g. {p.name}: {p.dtype}[N], or "
                           f"{p.name}: {p.dtype}[] for a single value", p.pos)
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
            try:  # `assume 0 <= row_ptr <= NNZ`: values of a range bound (data_ranges.py)
                values = declared_values(cond, self.tensors, lambda e: affine(e, param_only))
            except (DSLTypeError, NotAffine) as e:
                raise self.error(str(getattr(e, "message", e)), cond.pos) from None
            for name, side, value in values or ():
                self.declared.setdefault(name, {})[side] = value
            if values is not None:
                continue
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
        # `inf`, `nan` and type names (bitcast's second argument) are no index variables
        return (name not in self.tensors and name not in self.scalars
                and name not in self.params and all(lp.var != name for lp in loops)
                and name not in FLOAT_WORDS and name not in DTYPES)

    def check_for(self, item: ast.ForLoop, loops: list[Loop], node: Node) -> None:
        if not self.name_is_free(item.var, loops):
            raise self.error(f"loop variable '{item.var}' is already the name of something else",
                             item.pos)
        outer = {lp.var: lp.value for lp in loops}

        def bound_name(name: str, pos: SourcePos) -> ir.Expr:
            if name in self.params:
                return ir.Param(name)
            if name in outer:
                return outer[name]
            raise self.error(f"loop bound uses '{name}', which is not a size, an integer scalar "
                             "or an outer loop variable", pos)
        try:
            lo, hi = (tidy(affine(b, bound_name)) for b in (item.lo, item.hi))
        except NotAffine as e:
            raise self.error(f"bounds of loop '{item.var}' are not affine: {e}",
                             item.pos) from None
        child = Node(Loop(item.var, lo, hi, item.reverse))
        self.check_body(item.body, [*loops, child.loop], child)
        if child.children:
            node.children.append(child)

    def check_target(self, st: ast.Statement, outer: list[str]) -> Tensor | None:
        """The tensor a statement writes (None: a new temporary), or an error if it cannot."""
        name, pos = st.lhs.tensor, st.lhs.pos
        if name in self.scalars:
            raise self.error(f"cannot assign to '{name}': it is a scalar parameter, which is "
                             "read-only; a new name makes a scalar temporary (`s = ...`)", pos)
        if name in self.sizes:
            raise self.error(f"cannot assign to '{name}': it is a size, bound from the argument "
                             "shapes", pos)
        if name in outer:
            raise self.error(f"cannot assign to '{name}': it is the variable of an enclosing "
                             "`for` loop", pos)
        target = self.tensors.get(name)
        if target is not None and target.role == "in":
            raise self.error(f"cannot write input '{name}'; declare it `inout` to update it "
                             "in place", pos)
        if target is not None and len(st.lhs.indices) != len(target.shape):
            written = f"{len(st.lhs.indices)} index(es)" if st.lhs.indices else "no indices"
            raise self.error(f"'{name}' has rank {len(target.shape)} but is written with "
                             f"{written}", pos)
        return target

    def check_statement(self, st: ast.Statement, loops: list[Loop]) -> list[Statement]:
        outer = [lp.var for lp in loops]
        values = {lp.var: lp.value for lp in loops}  # what a loop variable stands for
        reversed_vars = {lp.var for lp in loops if lp.reverse}
        lhs_name = st.lhs.tensor
        target = self.check_target(st, outer)

        index_vars = self.find_index_vars(st, loops)
        var_set = set(index_vars)
        lhs_vars = [v for v in index_vars if v in names_in(st.lhs)]

        def index_name(name: str, pos: SourcePos) -> ir.Expr:
            if name in var_set:
                return ir.Var(name)
            if name in outer:
                return values[name]
            if name in self.params:
                return ir.Param(name)
            what = f"a tensor; a read may take a whole index from a tensor, as in x[{name}[...]]" \
                if name in self.tensors else "not an index variable, a size or an integer scalar"
            raise self.error(f"'{name}' cannot appear in an index: it is {what}", pos)

        def to_affine(e: ast.Expr, what: str, convert=affine) -> ir.Expr:
            try:
                result = convert(e, index_name)
            except NotAffine as ex:
                raise self.error(f"{what} is not affine: {ex}", e.pos) from None
            # `i + 1` of a reversed loop's i reads `N - 1 - i + 1` unless collected: `N - i`.
            return tidy(result) if convert is affine and names_in(e) & reversed_vars else result

        # Ranges: explicit `where v in lo:hi`, else the extents of the dims v indexes directly.
        conds: list[ir.Expr] = []
        for lp in loops:
            conds += [ir.Binary("<=", lp.lo, ir.Var(lp.var), INDEX),
                      ir.Binary("<", ir.Var(lp.var), lp.hi, INDEX)]
        explicit = set()
        data: dict[str, DataRange] = {}  # ranges read from tensors (frontend/data_ranges.py)
        for w in st.where:
            if isinstance(w, ast.WhereRange) and is_data_range(w):
                explicit.add(w.var)
                try:
                    data[w.var], affine_sides = data_range(w, st, self.tensors, to_affine,
                                                           self.declared)
                except DSLTypeError as e:
                    raise self.error(e.message, e.pos) from None
                conds += affine_sides
            elif isinstance(w, ast.WhereRange):
                explicit.add(w.var)
                lo = to_affine(w.lo, f"lower bound of '{w.var}'")
                hi = to_affine(w.hi, f"upper bound of '{w.var}'")
                conds += [ir.Binary("<=", lo, ir.Var(w.var), INDEX),
                          ir.Binary("<", ir.Var(w.var), hi, INDEX)]
            else:
                conds.append(to_affine(w.cond, "the `where` condition", affine_condition))
        implicit = {v: self.implicit_range(v, st) for v in index_vars
                    if v not in explicit or (v in data and data[v].tensor)}
        # Extents a temporary declared here takes along a dimension indexed by a bare variable.
        extents = dict(implicit)
        for w in st.where:
            if isinstance(w, ast.WhereRange) and w.var not in data \
                    and not (names_in(w.hi) - set(self.params)):
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
        for k, i in enumerate(st.lhs.indices):
            if (read := tensor_read(i)) is not None:
                e = scatter_error(lhs_name, k, read)
                raise self.error(e.message, e.pos)
        lhs_indices = tuple(to_affine(i, f"index {k} of '{lhs_name}'")
                            for k, i in enumerate(st.lhs.indices))

        # The right side, typed.
        def resolve(n: str, pos: SourcePos) -> Typed:
            if n in self.scalars:
                sc = ir.Scalar(n, self.scalars[n].dtype)
                return Typed(ir.Cast(sc.dtype.compute, sc) if sc.dtype.is_storage_only else sc)
            if n in self.params:
                return Typed(ir.Param(n), weak=True)
            if n in var_set:
                return Typed(ir.Var(n), weak=True)
            if n in outer:
                return Typed(values[n], weak=True)
            if n in self.tensors:
                if not self.tensors[n].shape:  # a 0-d tensor reads as its bare name
                    return typer(ast.Access(n, (), pos))
                raise DSLTypeError(f"tensor '{n}' is used without indices", pos)
            if n == lhs_name:
                raise DSLTypeError(f"'{n}' is read before it is first written", pos)
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
            # An index that is a read of a tensor makes a gather (frontend/gathers.py).
            return ir.Load(a.tensor, tuple(
                gather_index(i, self.tensors, load) if isinstance(i, ast.Access)
                else to_affine(i, f"index {k} of '{a.tensor}'") for k, i in enumerate(a.indices)),
                t.dtype)
        typer = ValueTyper(resolve, load)
        try:
            rhs = typer(st.rhs)
        except DSLTypeError as ex:
            if ex.message.startswith("unknown tensor") and ex.message.split("'")[1] in self.failed:
                raise _Abort() from None  # already reported where it was declared
            raise self.error(ex.message + self.untyped_hints(st), ex.pos) from None
        if rhs.expr.dtype.name == "bool":
            raise self.error("the right side is a condition; use select(c, a, b) to make a value",
                             st.rhs.pos)
        op = st.op
        if op == "-=":  # a - b == a + (-b), in IEEE floats and in wrapping integers alike
            op, rhs = "+=", negated(rhs)

        if op == "=":
            free = [v for v in index_vars if v not in lhs_vars]
            if free:
                raise self.error(
                    f"index '{free[0]}' is free on the right of '=': it does not appear on the "
                    f"left; use a reduction (+=, max=, ...) or index the left side with it",
                    first_use(st, free[0]))

        for miss in near_miss_indices(st, lhs_vars, [v for v in index_vars if v not in lhs_vars]):
            self.warn(miss.message(lhs_name), miss.pos)

        lhs = ir.Load(lhs_name, lhs_indices, rhs.expr.dtype)
        stmt = Statement(name, iterators, domain, lhs, op, rhs.expr, st.pos,
                         enclosing=len(outer), data_ranges=tuple(data.values()))
        if op in ARG_REDUCTIONS and data:
            raise self.error(f"{st.op} over a range read from tensors is not supported", st.pos)
        if op in ARG_REDUCTIONS:
            return check_arg_reduction(self, st, stmt, target, lhs_vars, extents, loops)
        result = [stmt]
        if op != "=" and lhs_name not in self.written:
            result.insert(0, init_statement(stmt, [*outer, *lhs_vars], self.params,
                                            self.extents.get(lhs_name)))
            indexed = set().union(*(ir.variables(x) for x in lhs_indices))
            restarted = [v for v in outer if v not in indexed]
            if restarted and target is not None and target.role == "out":
                # each iteration starts over: only the last one's sum is returned
                self.warn(f"'{lhs_name}' starts from the identity in every iteration of loop "
                          f"'{restarted[-1]}', which does not index it, so only the last "
                          f"iteration's {st.op} remains; to accumulate across the loop, write "
                          f"{lhs_name} before it (e.g. {lhs_name}[..] = 0), or make "
                          f"'{restarted[-1]}' a reduction variable with a `where` range "
                          f"instead of a loop", st.pos)
        if target is None:
            target = self.declare_temporary(st, result, self.temporary_type(st, rhs), extents)
        elif target.role == "temp":
            target = self.grow_temporary(st, result, extents)
        value = self.store_value(rhs, target, st)
        lhs = ir.Load(lhs_name, lhs_indices, target.dtype)
        result = [replace(s, lhs=lhs, rhs=init_value(op, target) if s.is_init else value)
                  for s in result]
        self.written.add(lhs_name)
        named = self.append(result)
        shown = {lp.var: lp.value for lp in loops if lp.reverse}
        self.to_prove += [(s, shown) for s in named]
        return named

    def append(self, stmts: list[Statement]) -> list[Statement]:
        """Append statements, naming them S<n> in program order (an init before its update)."""
        named = []
        for s in stmts:
            new = f"S{len(self.statements)}"
            if s.name != new:
                s = replace(s, name=new, domain=s.domain.set_tuple_name(new))
            self.statements.append(s)
            named.append(s)
        return named

    def find_index_vars(self, st: ast.Statement, loops: list[Loop]) -> list[str]:
        """Index variables in order of first appearance (frontend/index_vars.py)."""
        try:
            return find_index_vars(st, lambda n: self.name_is_free(n, loops))
        except DSLTypeError as e:
            raise self.error(e.message, e.pos) from None

    def implicit_range(self, var: str, st: ast.Statement) -> isl.PwAff:
        """The extent of `var`, from the dimensions it indexes directly; they must agree."""
        try:
            return implicit_range(var, st, self.tensors, self.extents, self.context)
        except DSLTypeError as e:
            raise self.error(e.message, e.pos) from None

    def write_extents(self, st: ast.Statement, stmts: list[Statement],
                      implicit: dict[str, isl.PwAff]) -> tuple[isl.PwAff, ...]:
        """The extents a write needs: along a dimension indexed by a variable whose range came
        from tensor extents, that extent; otherwise the bounding box (from 0) of what is
        written."""
        written = None
        for s in stmts:
            elements = s.access_map(self.params, s.lhs).range()
            written = elements if written is None else written | elements
        return tuple(
            implicit[i.id] if isinstance(i, ast.Name) and i.id in implicit
            else isl_helpers.extent_of(written, d) for d, i in enumerate(st.lhs.indices))

    def set_temporary(self, tensor: Tensor, extents: tuple[isl.PwAff, ...]) -> Tensor:
        """Declare or reshape a temporary to `extents`."""
        names = frozenset(self.params)
        shape = tuple(isl_helpers.pw_aff_to_expr(e, self.context, names) for e in extents)
        tensor = replace(tensor, shape=shape)
        old = self.tensors.get(tensor.name)
        self.temporaries = [tensor if t is old else t for t in self.temporaries]
        if old is None:
            self.temporaries.append(tensor)
        self.tensors[tensor.name] = tensor
        self.extents[tensor.name] = extents
        return tensor

    def declare_temporary(self, st: ast.Statement, stmts: list[Statement], dtype,
                          implicit: dict[str, isl.PwAff]) -> Tensor:
        """A new temporary, shaped by its first write."""
        if not self.name_is_free(st.lhs.tensor, []):
            raise self.error(f"'{st.lhs.tensor}' is not a tensor", st.lhs.pos)
        self.tensor_pos[st.lhs.tensor] = st.lhs.pos
        extents = self.write_extents(st, stmts, implicit)
        return self.set_temporary(Tensor(st.lhs.tensor, dtype, (), "temp"), extents)

    def grow_temporary(self, st: ast.Statement, stmts: list[Statement],
                       implicit: dict[str, isl.PwAff]) -> Tensor:
        """A temporary's shape is the bounding box of all its writes: a later write that
        reaches further grows it."""
        tensor = self.tensors[st.lhs.tensor]
        grown = temps.grown_extents(self.extents[tensor.name],
                                    self.write_extents(st, stmts, implicit), self.context)
        return tensor if grown is None else self.set_temporary(tensor, grown)

    def temporary_type(self, st: ast.Statement, rhs: Typed):
        """The type of the temporary `st` declares (see frontend/temporaries.py)."""
        dtype, guessed = temps.temporary_type(st, rhs, self.writes[st.lhs.tensor], self.tensors,
                                              self.scalars, self.float_type)
        if guessed:
            self.untyped[st.lhs.tensor] = st.pos
        return dtype

    def untyped_hints(self, st: ast.Statement) -> str:
        """For a type error in `st`: why the temporaries it reads have the type they have."""
        return temps.untyped_hints(st, self.untyped, self.tensors, self.float_type)

    def store_value(self, rhs: Typed, target: Tensor, st: ast.Statement) -> ir.Expr:
        compute = target.dtype.compute
        try:
            value = coerce(rhs, compute, st.rhs.pos, "the right side")
        except DSLTypeError as ex:
            raise self.error(f"{ex.message} (assigned to '{target.name}': {target.dtype})"
                             + self.untyped_hints(st), ex.pos) from None
        return ir.Cast(target.dtype, value) if target.dtype.is_storage_only else value

    # -- 3. bounds ---------------------------------------------------------------------------------

    def prove_in_bounds(self) -> None:
        """Every access of every statement inside its tensor, now that temporaries have their
        final shapes."""
        for stmt, shown in self.to_prove:
            message = out_of_bounds(stmt, self.tensors, self.extents, self.params, self.context,
                                    shown)
            if message:
                self.error(message, stmt.pos, BoundsError)

    # -- driver ------------------------------------------------------------------------------------

    def run(self) -> KernelIR:
        self.check_signature()
        self.raise_collected()
        root = Node()
        self.writes = writes_by_name(self.kdef.body)
        self.check_body(self.kdef.body, [], root)
        self.prove_in_bounds()
        self.raise_collected()
        if not self.statements:
            raise DSLTypeError(f"kernel '{self.kdef.name}' has no statements", self.kdef.pos,
                               self.source)
        missing = [t.name for t in self.outputs if t.name not in self.written]
        if missing:
            raise DSLTypeError(f"output '{missing[0]}' is never written",
                               self.tensor_pos[missing[0]], self.source)
        self.issue_warnings()
        return KernelIR(self.kdef.name, tuple(self.args), tuple(self.outputs),
                        tuple(self.temporaries), self.params, tuple(self.sizes),
                        tuple(self.assumptions), self.context, tuple(self.statements),
                        program_order(self.params, root), self.source,
                        index_checks=index_checks(self.statements, self.params, self.context)
                        + range_checks(self.statements, self.params, self.context,
                                       self.tensors))


def check(kdef: ast.KernelDef, source: str) -> KernelIR:
    """Check a parsed kernel and build its polyhedral IR.

    Raises one `DSLTypeError` listing all errors found."""
    return Checker(kdef, source).run()
