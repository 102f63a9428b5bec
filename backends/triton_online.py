"""Triton lowering, step 2c: algebra on reduction bodies.

`split_factors` writes a product as its factors (a divisor marked), so that factors that do not
depend on the reduction variable can be applied once after the loop (`alpha * sum(A * B)`), and
the rest can feed tl.dot.
"""

from __future__ import annotations

from loopweave.backends.triton_domains import extra_condition
from loopweave.backends.triton_expr import Layout, conjoin, conjuncts, loads, lt, var_names
from loopweave.ir import expr as ir


def split_factors(e: ir.Expr) -> list[tuple[ir.Expr, bool]]:
    """[(factor, is_divisor)] with `e` = product of factors / product of divisors."""
    if isinstance(e, ir.Binary) and e.op == "*" and e.dtype.is_float:
        return split_factors(e.left) + split_factors(e.right)
    if isinstance(e, ir.Binary) and e.op == "/" and e.dtype.is_float:
        return split_factors(e.left) + [(f, not d) for f, d in split_factors(e.right)]
    return [(e, False)]


# -- online softmax ------------------------------------------------------------------------------
#
# A max-reduction m[i] over j, followed by sums over the same j whose terms are
# exp(c * (x - m[i])) * rest, runs as one loop: when a block raises the running max from m to
# m_new, every such sum is rescaled by exp(c * (m - m_new)) before the block's terms are added.
# Factors of a term that do not depend on j (attention's 1 / z[i]) are applied after the loop.

def stabilizer(factor, m: str):
    """c (an expression, or None for 1) when `factor` is exp(c * (x - m[...])), else False."""
    if not (isinstance(factor, ir.Call) and factor.func == "exp"):
        return False
    arg = factor.args[0]
    coeff = None
    if isinstance(arg, ir.Binary) and arg.op == "*":
        for diff, c in ((arg.right, arg.left), (arg.left, arg.right)):
            if _is_minus_m(diff, m) and m not in _tensors(c):
                return c
        return False
    if _is_minus_m(arg, m):
        return coeff
    return False


def _is_minus_m(e, m: str) -> bool:
    return (isinstance(e, ir.Binary) and e.op == "-" and isinstance(e.right, ir.Load)
            and e.right.tensor == m and m not in _tensors(e.left))


def _tensors(e) -> set[str]:
    return {ld.tensor for ld in loads(e)}


def _follower(w, sec, first, raxis: str, in_pass: set[str]):
    """(stabilizer coefficient, factors applied after the loop) if `sec` can join the online
    loop of `first` (the max-reduction), else None."""
    m = first.tensor
    if sec.stmt.op != "+=" or sec.init is None or sec.seq:
        return None
    coeff, found, pulled = None, False, []
    for f, divide in split_factors(sec.stmt.rhs):
        touched = _tensors(f) & in_pass
        if not touched:
            continue
        if m in touched and not divide:
            c = stabilizer(f, m)
            if c is False or found:
                return None
            coeff, found = c, True
            if _tensors(f) & (in_pass - {m}):
                return None
        elif raxis in var_names(f):
            return None
        else:
            pulled.append((f, divide))
    return (coeff, pulled) if found else None


def passes(w, sections) -> list[list]:
    """Sections in loops: a max-reduction with the sums it stabilises share one loop."""
    out: list[list] = []
    i = 0
    while i < len(sections):
        sec = sections[i]
        group = [sec]
        if sec.stmt.op == "max=" and sec.register and sec.init is not None and \
                len(sec.reduce) == 1 and not sec.seq and not sec.inner:
            in_pass = {sec.tensor}
            bounds = w.bounds(sec.stmt, sec.reduce[0])
            while i + 1 < len(sections):
                nxt = sections[i + 1]
                if nxt.reduce != sec.reduce or w.bounds(nxt.stmt, nxt.reduce[0]) != bounds:
                    break
                if _follower(w, nxt, sec, sec.reduce[0], in_pass) is None:
                    break
                group.append(nxt)
                in_pass.add(nxt.tensor)
                i += 1
        out.append(group)
        i += 1
    return out


def online_pass(w, group) -> None:
    """One loop over j for a max-reduction and the sums it stabilises (see above)."""
    first = group[0]
    m = first.tensor
    in_pass = {s.tensor for s in group}
    tiled = list(w.tiled)
    w.emit(f"# online: {m} = running max; " + ", ".join(s.tensor for s in group[1:])
           + " rescaled when it grows")
    saved = (set(w.scalars), dict(w.axis_of), w.depth)
    for sec in group:
        w.grid_ranges(sec.stmt)
    layouts, accs = {}, {}
    for sec in group:
        layout = list(tiled)
        for v in sec.inner:
            lo, hi = w.bounds(sec.stmt, v)
            block = w.block(v, full=(lo, hi))
            w.tile(v, w.text(lo), block)
            w.ranges[v] = [lt(v, hi)]
            layout.append(v)
        layouts[sec.tensor] = Layout(layout)
        accs[sec.tensor] = w.accumulator(sec, Layout(layout))[0]
    rvar = first.reduce[0]
    outer = w.depth
    raxis, _ = w.reduction_axis(first.stmt, first.reduce)
    m_name = w.register_name.get(m, m)
    new = w.fresh(f"{m_name}_new")
    alphas: dict[str, str] = {}
    for k, sec in enumerate(group):
        layout = layouts[sec.tensor]
        full = Layout((*layout, raxis))
        w.conj = conjuncts(extra_condition(sec.stmt.domain, sec.stmt.iterators, w.scalars,
                                           w.kernel.context, w.kernel.params))
        mask = conjoin([c for a in full for c in w.ranges.get(a, [])] + w.conj)
        if k == 0:
            value = w.expr.render(sec.stmt.rhs, full)
            value = f"tl.where({w.text(mask, full)}, {value}, float(\"-inf\"))"
            w.emit(f"{new} = tl.maximum({accs[m]}, tl.max({value}, axis={len(full) - 1}))")
            w.register_name[m] = new
            continue
        coeff, pulled = _follower(w, sec, first, rvar, in_pass - {sec.tensor})
        scale = "" if coeff is None else f"{w.expr.render(coeff, Layout(tiled), 12)} * "
        if scale not in alphas:
            alphas[scale] = alpha = w.fresh("alpha")
            diff = f"({accs[m]} - {new})" if scale else f"{accs[m]} - {new}"
            # equal maxima (also both -inf, before any valid term) leave the sum as it is
            w.emit(f"{alpha} = tl.where({new} == {accs[m]}, 1.0, tl.exp({scale}{diff}))")
        alpha = alphas[scale]
        factors = [f for f, d in split_factors(sec.stmt.rhs) if (f, d) not in pulled]
        body = factors[0]
        for f in factors[1:]:
            body = ir.Binary("*", body, f, f.dtype)
        acc = accs[sec.tensor]
        scaled = f"{acc} * {alpha}{Layout(layout).index(set(tiled))}"  # alpha: grid axes
        saved_conj = w.conj
        dot = w.dot_of(body, layout, raxis) if len(layout) == 2 else None
        if dot is not None and not dot[2]:
            w.emit(f"{acc} = tl.dot({dot[0]}, {dot[1]}, {scaled}{w.precision(dot[0])})")
        else:
            w.conj = saved_conj
            value = w.expr.render(body, full)
            value = f"tl.where({w.text(mask, full)}, {value}, 0.0)"
            w.emit(f"{acc} = {scaled} + tl.sum({value}, axis={len(full) - 1})")
        sec.pulled = pulled
    w.emit(f"{accs[m]} = {new}")
    while w.depth > outer:
        w.close_loop()
    w.register_name.pop(m, None)
    for sec in group[1:]:
        result = accs[sec.tensor]
        layout = layouts[sec.tensor]
        for f, divide in sec.pulled:
            result = f"{result} {'/' if divide else '*'} {w.expr.render(f, layout, 13)}"
        if sec.register:
            if result != accs[sec.tensor]:
                w.emit(f"{accs[sec.tensor]} = {result}")
        else:
            w.finish(sec, result, layout, folded=True, op=sec.stmt.op)
    w.scalars, w.axis_of, w.depth = saved
    w.scope = {}
