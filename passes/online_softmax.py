"""The online-softmax rewrite (FlashAttention-2's algebra) of a max-then-exp-sum chain.

A row maximum whose only readers are exponentials `exp(c * (t - m))`, summed (and contracted)
over the same loop j, is computed one block of `block` j's at a time: the running maximum rises
block by block, and every sum of exponentials is rescaled by `exp(c * (m_old - m_new))` before
the block's terms are added. The blocked temporaries (scores, exponentials) shrink to one block;
a division by a completed sum (`p = e / z`) moves after the loop, where the sum is complete.

    s[i, j] = 0; s[i, j] += Q[i, d] * K[j, d]        m[i] = -inf; z[i] = 0; O[i, v] = 0
    m[i] = -inf; m[i] max= s[i, j]                   for j_o:   (j = block * j_o + j_in)
    e[i, j] = exp(c * (s[i, j] - m[i]))         ->     s[i, j_in] = 0; s[i, j_in] += Q * K[j, d]
    z[i] = 0; z[i] += e[i, j]                          m_old[i] = m[i]; m[i] max= s[i, j_in]
    p[i, j] = e[i, j] / z[i]                           m_alpha[i] = exp(c * (m_old - m)), 1 if equal
    O[i, v] = 0; O[i, v] += p[i, j] * V[j, v]          e[i, j_in] = exp(c * (s[i, j_in] - m[i]))
                                                       z[i] *= m_alpha[i]; z[i] += e[i, j_in]
                                                       O[i, v] *= m_alpha[i]; O[i, v] += e * V[j, v]
                                                     O[i, v] = O[i, v] / z[i]

Legal where (checked here; otherwise `online_softmax` returns None and the kernel is unchanged):
the maximum starts from -inf right before it and reduces over one loop j; every reader of it is
an `=` statement over the same instances whose right side is `exp(c * (t - m))` or `exp(t - m)`
(one coefficient c for all, none of it reading what the chain accumulates); every reader of an
exponential is a `+=` reduction over j, from a zero initialisation right before it, over the
same (row, j) instances as the maximum for each of its other loops, with the exponential one
factor of its product, or a division `p = e / z` by such a sum z of e alone whose readers are
such reductions; the chain's statements are consecutive, outside any DSL `for`, share their
first loops (the rows) with the maximum's initialisation, and its j-indexed temporaries (the
scores and exponentials) are read and written only in it, always with j itself as one index.
The result is the same sums up to rounding (each term is multiplied by exp(c * (m_j - m)) in
pieces instead of once), and the same maxima exactly.

The rewritten kernel is plain statements in program order, so every target runs it; the
row-fused nest keeps one block of scores per row (storage reduction makes them a local buffer).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import islpy as isl

from loopweave.errors import ScheduleError
from loopweave.ir import expr as ir
from loopweave.ir import isl_helpers
from loopweave.ir.kernel import KernelIR, Statement, Tensor
from loopweave.ir.types import BOOL
from loopweave.passes import placement as pl
from loopweave.passes.patterns import factors as product_factors


@dataclass(frozen=True)
class _Sum:
    """A `+=` reduction over j of the chain, with its zero initialisation; `divisor`: the sum
    it is divided by after the loop (read through `p = e / z`), or None."""

    init: Statement
    reduction: Statement
    divisor: ir.Load | None


@dataclass(frozen=True)
class _Chain:
    start: int  # index of the chain's first statement in kernel.statements
    stop: int  # one past its last
    rows: tuple[str, ...]  # the maximum's own loops outside j (its initialisation's iterators)
    j: str
    init: Statement  # m = -inf
    maximum: Statement  # m max= X
    exps: tuple[Statement, ...]
    coeff: tuple  # (c,) of exp(c * (t - m)); (None,): exp(t - m)
    sums: tuple[_Sum, ...]
    divisions: tuple[Statement, ...]  # p = e / z, dropped
    local: dict[str, int]  # j-indexed temporaries -> the dimension j indexes


@dataclass(frozen=True)
class OnlineRewrite:
    """The rewritten kernel and where its pieces are (statement and loop names)."""

    kernel: KernelIR
    rows: tuple[str, ...]  # the loops outside the reduction (attention's query rows i)
    reduced: str  # the reduction loop j of the original kernel
    block_loop: str  # j_o: the blocks, in order
    inner: str  # j_in: the reduction loop inside a block
    before: tuple[str, ...]  # the initialisations, each its own nest before the block loop
    blocked: tuple[str, ...]  # the statements inside the block loop, in program order
    after: tuple[str, ...]  # the divisions by the completed sums, after it


def online_softmax(kernel: KernelIR, block: int = 64) -> KernelIR | None:
    """`kernel` with its first legal max-exp-sum chain computed online over blocks of `block`
    iterations of its reduction loop (see the module docstring), or None where it has none."""
    found = rewrite_online(kernel, block)
    return None if found is None else found.kernel


def rewrite_online(kernel: KernelIR, block: int = 64) -> OnlineRewrite | None:
    """`online_softmax`, with the names of the rewritten kernel's pieces."""
    if isinstance(block, bool) or not isinstance(block, int) or block < 1:
        raise ScheduleError(f"online softmax: the block must be a positive integer, not "
                            f"{block!r}")
    if any(s.data_ranges for s in kernel.statements):
        return None  # its new statements would lose the ranges read from tensors
    for k, s in enumerate(kernel.statements):
        if s.op == "max=" and k:
            chain = _match(kernel, k)
            if chain is not None:
                return _rewrite(kernel, chain, block)
    return None


# -- matching ------------------------------------------------------------------------------------

def _match(kernel: KernelIR, k: int) -> _Chain | None:
    stmts = kernel.statements
    maximum, init = stmts[k], stmts[k - 1]
    if not (init.is_init and init.lhs == maximum.lhs and _const(init.rhs, float("-inf"))):
        return None
    rows = init.iterators
    extra = [v for v in maximum.iterators if v not in rows]
    if len(extra) != 1 or maximum.iterators != (*rows, extra[0]) or maximum.enclosing:
        return None
    j, m = extra[0], maximum.lhs.tensor
    if kernel.tensors[m].role != "temp":
        return None
    readers = [s for s in stmts if s is not maximum and _reads(s, m)]
    exps, coeffs = [], []
    for s in readers:
        match = _exp_of(s, m)
        if match is None or s.iterators != maximum.iterators or not _same(s, maximum):
            return None
        exps.append(s)
        coeffs.append(match)
    if not exps or any(c != coeffs[0] for c in coeffs) or any(
            stmts.index(s) < k for s in exps):
        return None
    sums, divisions = [], []
    for e in exps:
        for s in stmts:
            if not _reads(s, e.lhs.tensor):
                continue
            found = _sum_over(kernel, s, e.lhs, j, maximum)
            if found is not None:
                sums.append(found)
                continue
            if s.op != "=" or s.iterators != maximum.iterators or not _same(s, maximum) or not (
                    isinstance(s.rhs, ir.Binary) and s.rhs.op == "/" and s.rhs.left == e.lhs
                    and isinstance(s.rhs.right, ir.Load)):
                return None
            divisions.append(s)
    for d in divisions:
        divisor = d.rhs.right
        if not any(x.reduction.lhs.tensor == divisor.tensor and x.reduction.rhs == d.rhs.left
                   and x.divisor is None for x in sums):
            return None
        for s in stmts:
            if _reads(s, d.lhs.tensor):
                found = _sum_over(kernel, s, d.lhs, j, maximum)
                if found is None:
                    return None
                sums.append(replace(found, divisor=divisor))
    chain_stmts = {maximum.name, init.name, *(s.name for s in exps),
                   *(s.name for s in divisions)}
    for x in sums:
        chain_stmts |= {x.init.name, x.reduction.name}
    local = _local_temporaries(kernel, [maximum, *exps], j, divisions)
    if local is None:
        return None
    producers = [s for s in stmts if s.lhs.tensor in local and s.name not in chain_stmts]
    chain_stmts |= {s.name for s in producers}
    positions = sorted(stmts.index(kernel.statement[n]) for n in chain_stmts)
    start, stop = positions[0], positions[-1] + 1
    if positions != list(range(start, stop)):
        return None  # another statement in between
    chain = [stmts[p] for p in positions]
    if any(s.enclosing or s.iterators[:len(rows)] != rows for s in chain):
        return None
    if any(s.lhs.tensor in local and j not in s.iterators for s in chain):
        return None
    if not _locals_ok(kernel, chain, local, j, start, stop):
        return None
    accumulated = {m} | {x.reduction.lhs.tensor for x in sums}
    for s in (maximum, *exps):  # what the block's terms read must be known at the block
        reads = {ld.tensor for ld in ir.loads(s.rhs)} - {m}
        if reads & accumulated:
            return None
    for x in sums:
        other = [f for f in product_factors(x.reduction.rhs) if not (
            isinstance(f, ir.Load) and f.tensor in local)]
        if any(ld.tensor in accumulated for f in other for ld in ir.loads(f)):
            return None
    return _Chain(start, stop, rows, j, init, maximum, tuple(exps), coeffs[0], tuple(sums),
                  tuple(divisions), local)


def _const(e: ir.Expr, value: float) -> bool:
    e = e.operand if isinstance(e, ir.Cast) else e
    return isinstance(e, ir.Const) and e.value == value


def _reads(s: Statement, tensor: str) -> bool:
    return any(ld.tensor == tensor for ld in ir.loads(s.rhs)) or any(
        ld.tensor == tensor for x in s.lhs.indices for ld in ir.loads(x))


def _same(s: Statement, t: Statement) -> bool:
    """Do `s` and `t` (with the same iterators) run over the same instances?"""
    return s.domain.set_tuple_name(t.name).is_equal(t.domain)


def _exp_of(s: Statement, m: str):
    """(c,) where `s` is `x = exp(c * (t - m[..]))` with m only there (c None: `exp(t - m)`),
    else None."""
    if s.op != "=" or not isinstance(s.rhs, ir.Call) or s.rhs.func != "exp":
        return None
    arg = s.rhs.args[0]
    coeff = None
    if isinstance(arg, ir.Binary) and arg.op == "*":
        for diff, c in ((arg.right, arg.left), (arg.left, arg.right)):
            if _minus_m(diff, m) and not _mentions(c, m):
                return (c,)
        return None
    if _minus_m(arg, m):
        return (coeff,)
    return None


def _minus_m(e: ir.Expr, m: str) -> bool:
    return (isinstance(e, ir.Binary) and e.op == "-" and isinstance(e.right, ir.Load)
            and e.right.tensor == m and not _mentions(e.left, m))


def _mentions(e: ir.Expr, tensor: str) -> bool:
    return any(ld.tensor == tensor for ld in ir.loads(e))


def _sum_over(kernel: KernelIR, s: Statement, term: ir.Load, j: str,
              maximum: Statement) -> _Sum | None:
    """`s` as a `+=` reduction over j from zero with `term` one factor of its product, over
    the maximum's (rows, j) for each of its other loops; else None."""
    stmts = kernel.statements
    k = stmts.index(s)
    init = stmts[k - 1] if k else None
    if s.op != "+=" or init is None or not init.is_init or init.lhs != s.lhs or not _const(
            init.rhs, 0) or s.lhs.dtype.is_storage_only or not s.lhs.dtype.is_float:
        return None
    if [v for v in s.iterators if v not in init.iterators] != [j] or s.enclosing:
        return None
    factors = product_factors(s.rhs)
    if factors.count(term) != 1 or any(_mentions(f, term.tensor) for f in factors
                                       if f != term) or _mentions(s.rhs, s.lhs.tensor):
        return None
    rows = maximum.iterators[:-1]
    if init.iterators[:len(rows)] != rows:
        return None
    expected = _preimage(kernel, s, maximum, (*rows, j)).intersect(
        _preimage(kernel, s, init, init.iterators))
    if not expected.is_equal(s.domain.intersect_params(kernel.context)):
        return None
    return _Sum(init, s, None)


def _preimage(kernel: KernelIR, s: Statement, t: Statement, dims: tuple[str, ...]) -> isl.Set:
    """The instances of `s` whose iterators `dims` are an instance of `t` (dims: t's)."""
    src = ", ".join(isl_helpers.isl_name(v) for v in s.iterators)
    dst = ", ".join(isl_helpers.isl_name(v) for v in dims)
    m = isl.Map(f"{isl_helpers.param_prefix(kernel.params)}{{ {s.name}[{src}] -> "
                f"{t.name}[{dst}] }}")
    return t.domain.apply(m.reverse()).intersect_params(kernel.context)


def _local_temporaries(kernel: KernelIR, seeds: list[Statement], j: str,
                       divisions: list[Statement]) -> dict[str, int] | None:
    """The temporaries the maximum and the exponentials read or write that j indexes,
    transitively through their writers (the scores), and the divisions' results: {name: the
    dimension j indexes}; None where one is no temporary or j is not one plain index of it."""
    found: dict[str, int] = {}
    todo = [*seeds, *divisions]
    while todo:
        s = todo.pop()
        for acc in (s.lhs, *ir.loads(s.rhs)):
            if acc.tensor in found or not any(j in ir.variables(x) for x in acc.indices):
                continue
            if acc.tensor in kernel.tensors and kernel.tensors[acc.tensor].role != "temp":
                if acc is s.lhs:
                    return None  # an output indexed by j: no block-local value
                continue  # an input read along j (K, V): stays as it is
            where = [n for n, x in enumerate(acc.indices) if x == ir.Var(j)]
            if len(where) != 1:
                return None
            found[acc.tensor] = where[0]
            todo += [t for t in kernel.statements if t.lhs.tensor == acc.tensor]
    return found


def _locals_ok(kernel: KernelIR, chain: list[Statement], local: dict[str, int], j: str,
               start: int, stop: int) -> bool:
    """Are the local temporaries accessed only in the chain, with j itself at their dimension
    and nowhere else in their indices?"""
    inside = set(range(start, stop))
    for n, s in enumerate(kernel.statements):
        accesses = [s.lhs, *ir.loads(s.rhs)]
        mine = [a for a in accesses if a.tensor in local]
        if mine and n not in inside:
            return False
        for a in mine:
            dim = local[a.tensor]
            if a.indices[dim] != ir.Var(j) or any(
                    j in ir.variables(x) for q, x in enumerate(a.indices) if q != dim):
                return False
    return all(s.lhs.tensor not in local or j in s.iterators for s in chain)


# -- rewriting -----------------------------------------------------------------------------------

def _rewrite(kernel: KernelIR, c: _Chain, block: int) -> OnlineRewrite:
    stmts = list(kernel.statements)
    names = {v for s in stmts for v in s.iterators}
    jb, jj = _fresh(f"{c.j}_o", names), _fresh(f"{c.j}_in", names)
    taken = set(kernel.tensors) | {s.name for s in stmts}
    m = c.maximum.lhs
    mtensor = kernel.tensors[m.tensor]
    old = Tensor(_fresh(f"{m.tensor}_old", taken), mtensor.dtype, mtensor.shape, "temp")
    alpha = Tensor(_fresh(f"{m.tensor}_alpha", taken | {old.name}), mtensor.dtype,
                   mtensor.shape, "temp")
    old_load = ir.Load(old.name, m.indices, m.dtype)
    alpha_load = ir.Load(alpha.name, m.indices, m.dtype)
    chain = stmts[c.start:c.stop]
    dropped = {s.name for s in c.divisions}
    sum_of = {x.reduction.name: x for x in c.sums}

    def blocked(s: Statement, rhs: ir.Expr | None = None) -> Statement:
        """`s` inside the block loop: iterators (rows, j_o, .. j_in ..), j = block j_o + j_in,
        the local temporaries indexed by j_in."""
        its = tuple(jj if v == c.j else v for v in s.iterators)
        its = (jb, *its)
        j_is = ir.add(ir.mul(ir.Const(block), ir.Var(jb)), ir.Var(jj))

        def fix(e: ir.Expr) -> ir.Expr | None:
            if isinstance(e, ir.Load) and e.tensor in c.local:
                dim = c.local[e.tensor]
                return replace(e, indices=tuple(
                    ir.Var(jj) if q == dim else ir.substitute(x, {c.j: j_is})
                    for q, x in enumerate(e.indices)))
            return None
        value = s.rhs if rhs is None else rhs
        lhs = fix(s.lhs) or ir.Load(s.lhs.tensor, tuple(
            ir.substitute(x, {c.j: j_is}) for x in s.lhs.indices), s.lhs.dtype)
        new_rhs = ir.substitute(ir.rewrite(value, fix), {c.j: j_is})
        domain = _block_domain(kernel, s, its, c.j, jb, jj, block)
        return replace(s, iterators=its, domain=domain, lhs=lhs, rhs=new_rhs)

    def row_level(name: str, template: Statement, lhs: ir.Load, op: str, rhs: ir.Expr,
                  its_from: Statement) -> Statement:
        """A statement over `its_from`'s (blocked) instances without j_in."""
        at = its_from.iterators.index(jj)
        its = tuple(v for v in its_from.iterators if v != jj)
        domain = _named(its_from.domain.project_out(isl.dim_type.set, at, 1), its)
        domain = domain.set_tuple_name(name)
        return Statement(name, its, domain, lhs, op, rhs, template.pos)

    before_max = [s for s in chain[:chain.index(c.maximum)] if c.j in s.iterators]
    after_max = [s for s in chain[chain.index(c.maximum) + 1:]
                 if c.j in s.iterators and s.name not in dropped]
    row_inits = [s for s in chain if c.j not in s.iterators]
    new_max = blocked(c.maximum)
    m_old = row_level(_fresh(f"{c.maximum.name}_old", taken), c.maximum, old_load, "=",
                      c.maximum.lhs, new_max)
    diff = ir.Binary("-", old_load, m, m.dtype)
    arg = diff if c.coeff[0] is None else ir.Binary("*", c.coeff[0], diff, m.dtype)
    factor = ir.Call("select", (ir.Binary("==", old_load, m, BOOL), ir.Const(1.0, m.dtype),
                                ir.Call("exp", (arg,), m.dtype)), m.dtype)
    m_alpha = row_level(_fresh(f"{c.maximum.name}_alpha", taken), c.maximum, alpha_load, "=",
                        factor, new_max)
    in_block = [*(blocked(s) for s in before_max), m_old, new_max, m_alpha]
    finals = []
    for s in after_max:  # each sum right after its rescaling (they may share loops)
        x = sum_of.get(s.name)
        if x is None:
            in_block.append(blocked(s))
            continue
        acc = x.reduction.lhs
        new = blocked(s, _undivided(s.rhs, c.divisions))
        in_block += [row_level(_fresh(f"{s.name}_rescale", taken), s, acc, "*=", alpha_load,
                               new), new]
        if x.divisor is not None:
            final_dom = new.domain
            for v in reversed(new.iterators):
                if v not in x.init.iterators:
                    final_dom = final_dom.project_out(
                        isl.dim_type.set, new.iterators.index(v), 1)
            name = _fresh(f"{s.name}_scale", taken)
            final_dom = _named(final_dom, x.init.iterators).set_tuple_name(name)
            finals.append(Statement(name, x.init.iterators, final_dom,
                                    acc, "=", ir.Binary("/", acc, x.divisor, acc.dtype),
                                    c.divisions[0].pos))
    # row-level statements right after the chain (normalize's `O = O / z`) join its nest
    stop = c.stop
    while stop < len(stmts) and _epilogue(stmts[stop], c):
        finals.append(stmts[stop])
        stop += 1
    chain = stmts[c.start:stop]
    new_chain = [*row_inits, *in_block, *finals]
    # placements: each initialisation its own nest, then the block loop around the blocked
    # statements (each with its own loops inside it), then the divisions
    placements = {}
    top = pl.initial_placements(kernel)
    first_top = top[chain[0].name].order[0]
    last_top = max(top[s.name].order[0] for s in chain)
    nests = len(row_inits) + 1 + len(finals)
    for s in stmts:
        if s in chain:
            continue
        p = top[s.name]
        shift = nests - 1 - (last_top - first_top) if p.order[0] > last_top else 0
        placements[s.name] = pl.Placement(p.loops, (p.order[0] + shift, *p.order[1:]))
    for n, s in enumerate(row_inits):
        placements[s.name] = _placement(s.iterators, (first_top + n,))
    for n, s in enumerate(in_block):
        placements[s.name] = _placement(s.iterators, (first_top + len(row_inits), n))
    for n, s in enumerate(finals):
        placements[s.name] = _placement(s.iterators, (first_top + len(row_inits) + 1 + n,))
    statements = (*stmts[:c.start], *new_chain, *stmts[stop:])
    used = {a.tensor for s in statements for a in (s.lhs, *ir.loads(s.rhs))}
    temporaries = []
    for t in kernel.temporaries:
        if t.name not in used:
            continue
        if t.name in c.local:
            dim = c.local[t.name]
            t = replace(t, shape=(*t.shape[:dim], ir.Const(block), *t.shape[dim + 1:]))
        temporaries.append(t)
    result = replace(kernel, statements=statements,
                     temporaries=(*temporaries, old, alpha))
    result = result.with_schedule(pl.build_tree(result, placements))
    return OnlineRewrite(result, c.rows, c.j, jb, jj, tuple(s.name for s in row_inits),
                         tuple(s.name for s in in_block), tuple(s.name for s in finals))


def _epilogue(s: Statement, c: _Chain) -> bool:
    """Is `s` an `=` statement over the chain's rows (and other loops, not j) outside any DSL
    `for`, reading no block-local temporary: it runs after the block loop unchanged."""
    return (s.op == "=" and not s.enclosing and s.iterators[:len(c.rows)] == c.rows
            and c.j not in s.iterators and s.lhs.tensor not in c.local
            and not any(ld.tensor in c.local for ld in ir.loads(s.rhs)))


def _undivided(rhs: ir.Expr, divisions: tuple[Statement, ...]) -> ir.Expr:
    """`rhs` with each read of a division's result `p = e / z` read as `e` (the division
    moves after the loop)."""
    by = {d.lhs: d.rhs.left for d in divisions}
    return ir.rewrite(rhs, lambda e: by.get(e) if isinstance(e, ir.Load) else None)


def _block_domain(kernel: KernelIR, s: Statement, its: tuple[str, ...], j: str, jb: str,
                  jj: str, block: int) -> isl.Set:
    """`s`'s instances with j = block * jb + jj, 0 <= jj < block, over the iterators `its`."""
    name = isl_helpers.isl_name
    src = ", ".join(name(v) for v in s.iterators)
    dst = ", ".join(name(v) for v in its)
    m = isl.Map(f"{isl_helpers.param_prefix(kernel.params)}{{ {s.name}[{src}] -> "
                f"{s.name}[{dst}] : {name(j)} = {block} * {name(jb)} + {name(jj)} and "
                f"0 <= {name(jj)} < {block} }}")
    return _named(s.domain.apply(m).intersect_params(kernel.context).coalesce(), its)


def _named(domain: isl.Set, its: tuple[str, ...]) -> isl.Set:
    """`domain` with its dimensions named `its` (isl drops the names of an image)."""
    for k, v in enumerate(its):
        domain = domain.set_dim_name(isl.dim_type.set, k, isl_helpers.isl_name(v))
    return domain


def _placement(iterators: tuple[str, ...], order: tuple[int, ...]) -> pl.Placement:
    """Loops over `iterators` in their order; `order`: the sibling positions down to the
    last shared loop (the positions inside the statement's own loops are 0)."""
    loops = tuple(pl.Loop(v, ir.Var(v)) for v in iterators)
    return pl.Placement(loops, (*order, *[0] * (len(loops) + 1 - len(order))))


def _fresh(name: str, taken) -> str:
    while name in taken:
        name += "_"
    return name
