"""The statements an arg-reduction stands for (ir/argreduce.py has the rule and the recognizer).

`idx[i] argmax= X[i, j]` (one reduced variable j):

    idx_best[i] = -inf; idx[i] = -1                    (initialisations)
    for i, j:                                          (one band, both statements inside)
        idx[i] = select(X[i, j] > idx_best[i] or <NaN rule> or idx[i] < 0, j, idx[i])
        idx_best[i] max= X[i, j]

The index update reads the best value before the step, so it runs first.

Top-k: a variable of the left side that the right side does not use is a rank, `idx[i, t]
argmax= X[i, j]` with t over 0..K-1 (K the constant extent of that dimension) keeps the K best
values in order, `idx_best[i, t]` their values. Each step inserts X[i, j] into the sorted slots,
the ranks from the last to the first (the iterator of t counts up; t stands for K - 1 - it):

    idx_best[i, t] = -inf; idx[i, t] = -1
    for i, j, t (downwards):                           (one band, three statements inside)
        idx_step[i] = select(t > 0 and <X beats slot t - 1>, 2, select(<X beats slot t>, 1, 0))
        idx[i, t] = select(idx_step[i] == 2, idx[i, t - 1], select(idx_step[i] == 1, j, idx[i, t]))
        idx_best[i, t] = (the same with idx_best, and X for j)

where X beats a slot if it is better by the tie rule or the slot is empty (index -1), and slot
t - 1 is read at (t + K - 1) % K (in bounds; unused at t = 0).
"""

from __future__ import annotations

from dataclasses import replace

import islpy as isl

from loopweave.frontend import ast
from loopweave.frontend.ast_walk import names_in
from loopweave.frontend.program_order import Node
from loopweave.frontend.reductions import init_statement
from loopweave.ir import expr as ir
from loopweave.ir import isl_helpers
from loopweave.ir.argreduce import ARG_REDUCTIONS, arg_update, topk_choose, topk_step
from loopweave.ir.kernel import Statement, Tensor
from loopweave.ir.types import BOOL, I64, INDEX, identity


def best_value(lhs: str) -> str:
    """The name of the temporary holding an arg-reduction's best values."""
    return f"{lhs}_best"


def check_arg_reduction(checker, st, stmt: Statement, target: Tensor | None,
                        lhs_vars: list[str], extents: dict, loops) -> list:
    """`idx[..] argmax= value` (`stmt` as checked, its last iterators the reduced ones) as
    the statements above, declared on `checker` (frontend/checker.py): the initialisations,
    then one group (`Node(None, ..)`: one band over their iterators, see program_order)."""
    name = st.lhs.tensor
    reduced = stmt.iterators[stmt.enclosing + len(lhs_vars):]
    ranks = _ranks(st, stmt, lhs_vars)
    if message := arg_reduction_error(st.op, name, reduced, ranks, target):
        raise checker.error(message, st.pos)
    best_name = best_value(name)
    if not checker.name_is_free(best_name, loops):
        raise checker.error(f"{st.op} keeps its best values in '{best_name}', which is "
                            "already declared; rename one of them", st.lhs.pos)
    init = init_statement(stmt, [*stmt.iterators[:stmt.enclosing], *lhs_vars],
                          checker.params, checker.extents.get(name))
    if target is None:
        target = checker.declare_temporary(st, [init], I64, extents)
    elif target.role == "temp":
        target = checker.grow_temporary(st, [init], extents)
    best = checker.set_temporary(Tensor(best_name, stmt.rhs.dtype, (), "temp"),
                                 checker.extents[name])
    index = ir.Load(name, stmt.lhs.indices, target.dtype)
    kept = ir.Load(best_name, stmt.lhs.indices, best.dtype)
    inits = [replace(init, lhs=kept, rhs=ir.Const(identity(ARG_REDUCTIONS[st.op], best.dtype),
                                                  best.dtype)),
             replace(init, lhs=index, rhs=ir.Const(-1, index.dtype))]
    if ranks:
        rank = ranks[0]
        k = _rank_count(checker, st, stmt, rank, target)
        step = _step_temporary(checker, st, stmt, rank, loops)
        group = topk_statements(st.op, stmt, rank, k, index, kept, step, checker.params)
    else:
        group = arg_statements(st.op, stmt, index, kept)
    named = checker.append([*inits, *group])
    checker.written |= {name, best_name}
    shown = {lp.var: lp.value for lp in loops if lp.reverse}
    # the first of the group reads all that the others do (one error, not two, for a bad read)
    checker.to_prove += [(s, shown) for s in named[:3]]
    return [*named[:2], Node(None, named[2:])]


def _ranks(st: ast.Statement, stmt: Statement, lhs_vars: list[str]) -> list[str]:
    """The left side's variables that neither the right side nor a `where` clause (other than
    the variable's own range) uses: top-k ranks."""
    used = set(ir.variables(stmt.rhs))
    for w in st.where:
        if isinstance(w, ast.WhereRange):
            used |= names_in(w.lo) | names_in(w.hi)
        else:
            used |= names_in(w.cond)
    return [v for v in lhs_vars if v not in used]


def arg_reduction_error(op: str, name: str, reduced: tuple[str, ...], ranks: list[str],
                        target: Tensor | None) -> str | None:
    """Why `name[..] argmax= value` (reducing the index variables `reduced`, with `ranks`
    the left side's variables that the right side does not use) is refused, if it is."""
    if len(reduced) != 1:
        return (f"{op} needs exactly one reduced index variable (an index of the right side "
                f"that is not on the left), here {', '.join(map(repr, reduced)) or 'none'}")
    if len(ranks) > 1:
        return (f"{op} takes at most one rank variable (an index of the left side that the "
                f"right side does not use: the top-k rank), here {', '.join(map(repr, ranks))}")
    if target is not None and not target.dtype.is_int:
        return f"{op} writes an index, but '{name}' is {target.dtype}; declare it i32 or i64"
    return None


def arg_statements(op: str, stmt: Statement, index: ir.Load, kept: ir.Load
                   ) -> list[Statement]:
    """The pair of `index argmax= value` (`stmt`, its last iterator the reduced one), `kept`
    the best value."""
    update = arg_update(op, stmt.rhs, kept, ir.Var(stmt.iterators[-1]), index)
    return [replace(stmt, lhs=index, op="=", rhs=update),
            replace(stmt, lhs=kept, op=ARG_REDUCTIONS[op])]


def topk_statements(op: str, stmt: Statement, rank: str, k: int, index: ir.Load,
                    kept: ir.Load, step: ir.Load, params: tuple[str, ...]) -> list[Statement]:
    """The three statements of a top-k step (see the module docstring): `stmt`'s iterators
    (.., rank, .., j) become (.., j, rank) with the rank counting down."""
    its = stmt.iterators
    j = its[-1]
    order = (*[v for v in its[:-1] if v != rank], j, rank)
    down = ir.Binary("-", ir.Const(k - 1), ir.Var(rank), INDEX)  # the rank's value
    moved = isl_helpers.make_map(params, stmt.name, its, stmt.name,
                                 tuple(down if v == rank else ir.Var(v) for v in order))
    domain = stmt.domain.apply(moved).set_tuple_name(stmt.name)
    value = ir.substitute(stmt.rhs, {rank: down})
    here = ir.substitute(kept, {rank: down})
    mine = ir.substitute(index, {rank: down})
    prev = ir.Binary("%", ir.Binary("+", down, ir.Const(k - 1), INDEX), ir.Const(k), INDEX)
    above, above_index = ir.substitute(kept, {rank: prev}), ir.substitute(index, {rank: prev})
    decision = ir.substitute(step, {rank: down})
    code = topk_step(op, value, here, mine, above, above_index,
                     ir.Binary(">", down, ir.Const(0), BOOL))
    j_value = ir.Var(j) if index.dtype == INDEX else ir.Cast(index.dtype, ir.Var(j))
    base = replace(stmt, iterators=order, domain=domain, op="=")
    return [replace(base, lhs=decision, rhs=code),
            replace(base, lhs=mine, rhs=topk_choose(decision, above_index, j_value, mine)),
            replace(base, lhs=here, rhs=topk_choose(decision, above, value, here))]


def _rank_position(stmt: Statement, rank: str) -> int:
    return next(p for p, i in enumerate(stmt.lhs.indices) if rank in ir.variables(i))


def _rank_count(checker, st, stmt: Statement, rank: str, target: Tensor) -> int:
    """K: the constant extent of the dimension the rank variable indexes (an error if it is
    not constant, or if the reduced loop never has K iterations)."""
    position = _rank_position(stmt, rank)
    extent = target.shape[position]
    if stmt.lhs.indices[position] != ir.Var(rank):
        raise checker.error(f"a top-k rank indexes its dimension alone: write "
                            f"{target.name}[.., {rank}, ..]", st.lhs.pos)
    if not isinstance(extent, ir.Const) or extent.value < 1:
        raise checker.error(f"{st.op} with the rank '{rank}' keeps as many values as "
                            f"dimension {position} of '{target.name}' is long, which must be a "
                            "constant (e.g. 8 for a top-8)", st.lhs.pos)
    k, last = int(extent.value), len(stmt.iterators) - 1
    dims = ", ".join(f"x{n}" for n in range(last + 1))
    reaching = stmt.domain & isl.Set(f"{isl_helpers.param_prefix(checker.params)}"
                                     f"{{ {stmt.name}[{dims}] : x{last} >= {k - 1} }}")
    if reaching.is_empty():
        raise checker.error(f"{st.op} keeps the {k} best values, but the loop over "
                            f"'{stmt.iterators[-1]}' never has {k} iterations", st.pos)
    return k


def _step_temporary(checker, st, stmt: Statement, rank: str, loops) -> ir.Load:
    """The hidden decision of a top-k step, one per element of the target without the rank."""
    name = stmt.lhs.tensor
    step = f"{name}_step"
    if not checker.name_is_free(step, loops):
        raise checker.error(f"top-k keeps its step in '{step}', which is already declared; "
                            "rename one of them", st.lhs.pos)
    keep = [p for p in range(len(stmt.lhs.indices)) if p != _rank_position(stmt, rank)]
    checker.set_temporary(Tensor(step, I64, (), "temp"),
                          tuple(checker.extents[name][p] for p in keep))
    checker.written.add(step)
    return ir.Load(step, tuple(stmt.lhs.indices[p] for p in keep), I64)
