"""Block-level buffers that live in registers: a tile each of whose elements one thread owns.

A `cache_write` around a block-level loop (a contraction's k steps over shared-memory stages)
keeps the output tile in a block-level buffer. Where every access to it inside the thread loops
touches only elements of the accessing thread, by one rule per dimension d,

    element e  belongs to  thread e mod T_d  of the threadIdx axis that indexes d (T_d threads)

(an index `t + T_d * r + c` with t that axis's loop variable and every other coefficient a
multiple of T_d, as `interleave` writes it), the tile needs no shared memory: each thread keeps
its elements `r = e div T_d` in an array of ceil(E_d / T_d) per dimension, indexed by
constants once the loops over r are unrolled (registers). Its fills and write-backs at block
level (one copy nest over the tile's elements, spread over the block or run by one thread)
become thread loops over each thread's own elements, by the same rule.

    for k_o:                                 per thread (ty, tx), acc[4][4] in registers:
      for ty, tx, k, r, c:                     for k_o: for k, r, c:
        C_t[ty + 16 r, tx + 16 c] += ...         acc[r][c] += ...
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from loopweave.ir import expr as ir
from loopweave.ir.affine import constant_value, from_linear, linear
from loopweave.ir.launch_nodes import KernelNode, OneThread, Spread, ThreadReduce
from loopweave.ir.loops import (
    THREAD_AXES,
    Block,
    Buffer,
    For,
    If,
    Scope,
    Store,
)
from loopweave.ir.types import BOOL, INDEX


@dataclass(frozen=True, slots=True)
class _Owner:
    """Dimension d of a tile belongs to the threads of `axis`, `threads[d]` of them."""

    axes: tuple[str | None, ...]  # None: a dimension of one element
    threads: tuple[int, ...]


def register_fragments(body: KernelNode, threads: dict[str, int]
                       ) -> tuple[KernelNode, tuple[Buffer, ...]]:
    """`body` (a launch body of `ir/launches`, block shape `threads`) with each block-level
    buffer that its threads own element by element (see the module docstring) turned into a
    per-thread array, and those arrays (declared once per thread for the whole launch)."""
    registers = []
    for buffer in _block_buffers(body):
        owner = _ownership(body, buffer, threads)
        if owner is None:
            continue
        local = Buffer(f"{buffer.name}_reg", buffer.dtype, tuple(
            ir.Const(math.ceil(constant_value(e) / t), INDEX)
            for e, t in zip(buffer.shape, owner.threads, strict=True)))
        body = _privatize(body, buffer, local, owner)
        registers.append(local)
    return body, tuple(registers)


def _block_buffers(node: KernelNode) -> list[Buffer]:
    """The buffers of the block-level scopes of `node` with a constant shape, once each."""
    found: dict[str, Buffer] = {}
    for scope in _block_level(node):
        if isinstance(scope, Scope):
            found.update((b.name, b) for b in scope.buffers
                         if b.shape and all(constant_value(d) is not None for d in b.shape))
    return list(found.values())


def _block_level(node: KernelNode):
    yield node
    if isinstance(node, For) and node.kind in THREAD_AXES or isinstance(
            node, Spread | OneThread | ThreadReduce):
        return
    for child in _children(node):
        yield from _block_level(child)


def _children(node) -> tuple:
    match node:
        case For(body=b) | Scope(body=b) | OneThread(body=b):
            return (b,)
        case If(then=t, orelse=e):
            return (t,) if e is None else (t, e)
        case Block(body=body):
            return body
        case Spread(nest=n):
            return (n,)
        case ThreadReduce(loop=lp):
            return (lp,)
    return ()


# -- which thread owns which element ----------------------------------------------------------

def _ownership(body: KernelNode, buffer: Buffer, threads: dict[str, int]) -> _Owner | None:
    """The rule by which the threads own `buffer`'s elements, if every access follows one."""
    axes: list[str | None] = [None] * len(buffer.shape)
    seen = False

    single = [constant_value(e) == 1 for e in buffer.shape]  # one element: nobody's own

    def agree(indices, thread_vars: dict[str, tuple[str, ir.Expr]]) -> bool:
        for d, e in enumerate(indices):
            if single[d]:
                continue
            axis = _owning_axis(e, thread_vars, threads)
            if axis is None or axes[d] not in (None, axis):
                return False
            axes[d] = axis
        return True

    def visit(node, thread_vars) -> bool:
        nonlocal seen
        if isinstance(node, Spread | OneThread) and not thread_vars:
            nest = node.nest if isinstance(node, Spread) else node.body
            touched = _accesses(nest, buffer.name)
            if touched:
                seen = True
                return _copy_nest(nest, buffer.name) is not None
            return True
        if isinstance(node, ThreadReduce):
            return not _accesses(node.loop, buffer.name)
        if isinstance(node, For) and node.kind in THREAD_AXES:
            thread_vars = {**thread_vars, node.var: (node.kind, node.init)}
        if thread_vars and isinstance(node, For | If) and _own_accesses(node, buffer.name):
            return False  # read in a loop bound or a condition: left in shared memory
        if thread_vars and isinstance(node, Store):
            for indices in _own_accesses(node, buffer.name):
                seen = True
                if not agree(indices, thread_vars):
                    return False
        return all(visit(c, thread_vars) for c in _children(node))

    if not visit(body, {}):
        return None
    owners = [a for a in axes if a is not None]
    if not seen or any(a is None and not one for a, one in zip(
            axes, single, strict=True)) or sorted(owners) != sorted(threads):
        return None  # every axis owns one dimension: no two threads share an element
    return _Owner(tuple(axes), tuple(1 if a is None else threads[a] for a in axes))


def _owning_axis(index: ir.Expr, thread_vars: dict[str, tuple[str, ir.Expr]],
                 threads: dict[str, int]) -> str | None:
    """The axis whose threads own `index` by the rule, or None."""
    form = linear(index)
    mine = [v for v in thread_vars if form.get(ir.Var(v, INDEX), 0)]
    if len(mine) != 1 or form[ir.Var(mine[0], INDEX)] != 1:
        return None
    axis, init = thread_vars[mine[0]]
    count = threads[axis]
    rest = {k: c for k, c in form.items() if k != ir.Var(mine[0], INDEX)}
    if any(k is not None and ir.variables(k) & set(thread_vars) for k in rest):
        return None
    if any(c % count for c in [*rest.values(), *linear(init).values()]):
        return None
    return axis


def _own_accesses(node, tensor: str) -> list[tuple[ir.Expr, ...]]:
    """The indices of accesses to `tensor` in `node` itself (not in nodes inside it)."""
    exprs = []
    match node:
        case Store(indices=ix, value=v):
            if node.tensor == tensor:
                exprs.append(ix)
            exprs += [ld.indices for e in (*ix, v) for ld in ir.loads(e) if ld.tensor == tensor]
        case For(init=a, cond=c) | If(cond=c, then=a):
            for e in (c, a) if isinstance(node, For) else (c,):
                exprs += [ld.indices for ld in ir.loads(e) if ld.tensor == tensor]
    return exprs


def _accesses(node, tensor: str) -> list[tuple[ir.Expr, ...]]:
    found = list(_own_accesses(node, tensor)) if isinstance(node, Store | For | If) else []
    for child in _children(node):
        found += _accesses(child, tensor)
    return found


def _copy_nest(node, tensor: str) -> tuple[list[For], Store] | None:
    """(loops, store) if `node` is a perfect nest whose store reads or writes `tensor` at
    exactly its loop variables, one per dimension, in order (a cache's fill or write-back)."""
    loops = []
    while isinstance(node, For):
        loops.append(node)
        node = node.body
    if not isinstance(node, Store) or not loops or any(lp.step != 1 for lp in loops):
        return None
    names = tuple(ir.Var(lp.var, INDEX) for lp in loops)
    uses = _own_accesses(node, tensor)
    if not uses or any(tuple(ix) != names for ix in uses):
        return None
    return loops, node


# -- the rewrite ------------------------------------------------------------------------------

def _privatize(body: KernelNode, buffer: Buffer, local: Buffer, owner: _Owner) -> KernelNode:
    def visit(node, thread_vars):
        match node:
            case Scope(buffers=bufs, body=b) if any(x.name == buffer.name for x in bufs):
                rest = tuple(x for x in bufs if x.name != buffer.name)
                inner = visit(b, thread_vars)
                return Scope(rest, inner) if rest else inner
            case Spread(nest=n) | OneThread(body=n) if not thread_vars and _accesses(
                    n, buffer.name):
                return _owned_copy(n, buffer, local, owner)
            case For(kind=kind) if kind in THREAD_AXES:
                inner = {**thread_vars, node.var: node.init}
                return replace(node, body=visit(node.body, inner))
            case Store() if thread_vars:
                return _to_local(node, buffer, local, thread_vars, owner)
            case For(body=b) | Scope(body=b) | OneThread(body=b):
                return replace(node, body=visit(b, thread_vars))
            case If(cond=c, then=t, orelse=e):
                return If(c, visit(t, thread_vars), None if e is None else visit(e, thread_vars))
            case Block(body=parts):
                return Block(tuple(visit(x, thread_vars) for x in parts))
        return node
    return visit(body, {})


def _to_local(store: Store, buffer: Buffer, local: Buffer, thread_vars: dict[str, ir.Expr],
              owner: _Owner) -> Store:
    """`store` with its accesses to `buffer` made to the thread's own array `local`: element
    e = var + rest of a thread whose loop variable is var = init + t is its (init + rest) / T."""
    def index(indices):
        out = []
        for e, axis, count in zip(indices, owner.axes, owner.threads, strict=True):
            if axis is None:
                out.append(ir.Const(0, INDEX))
                continue
            form = linear(e)
            var = next(k for k in form if isinstance(k, ir.Var) and k.name in thread_vars)
            del form[var]
            for k, c in linear(thread_vars[var.name]).items():
                form[k] = form.get(k, 0) + c
            out.append(from_linear({k: c // count for k, c in form.items()}))
        return tuple(out)

    def expr(e):
        return ir.rewrite(e, lambda x: ir.Load(local.name, index(x.indices), x.dtype)
                          if isinstance(x, ir.Load) and x.tensor == buffer.name else None)

    target = (local.name, index(store.indices)) if store.tensor == buffer.name else (
        store.tensor, tuple(expr(i) for i in store.indices))
    return replace(store, tensor=target[0], indices=target[1], value=expr(store.value))


def _owned_copy(nest, buffer: Buffer, local: Buffer, owner: _Owner):
    """The copy nest over `buffer`'s elements as thread loops over each thread's own ones:
    element e_d = t_d + T_d * r_d of dimension d, where the original loop covered it."""
    loops, store = _copy_nest(nest, buffer.name)
    thread_var = {axis: f"lw_own_{axis[-1]}" for axis in owner.axes if axis is not None}
    mapping, conds = {}, []
    for d, (lp, axis, count) in enumerate(zip(loops, owner.axes, owner.threads, strict=True)):
        start = ir.substitute(lp.init, mapping)
        element = start if axis is None else ir.add(
            ir.Var(thread_var[axis], INDEX),
            ir.mul(ir.Const(count, INDEX), ir.Var(f"lw_own_r{d}", INDEX)))
        mapping[lp.var] = element
        conds += [ir.Binary(">=", element, start, BOOL), ir.substitute(lp.cond, mapping)]
    registers = {buffer.name: local.name}

    def expr(e):
        e = ir.substitute(e, mapping)
        return ir.rewrite(e, lambda x: ir.Load(local.name, _rounds(owner), x.dtype)
                          if isinstance(x, ir.Load) and x.tensor == buffer.name else None)

    inner = replace(store, tensor=registers.get(store.tensor, store.tensor),
                    indices=_rounds(owner) if store.tensor == buffer.name else tuple(
                        expr(i) for i in store.indices), value=expr(store.value))
    cond = conds[0]
    for c in conds[1:]:
        cond = ir.Binary("and", cond, c, BOOL)
    node = If(cond, inner)
    for d in reversed(range(len(loops))):
        if owner.axes[d] is None:
            continue
        rounds = constant_value(local.shape[d])
        node = For(f"lw_own_r{d}", ir.Const(0, INDEX), ir.Binary(
            "<", ir.Var(f"lw_own_r{d}", INDEX), ir.Const(rounds, INDEX), BOOL), 1, node)
    for axis in sorted(thread_var, key=THREAD_AXES.index):  # z outside y outside x
        var = ir.Var(thread_var[axis], INDEX)
        count = owner.threads[owner.axes.index(axis)]
        node = For(thread_var[axis], ir.Const(0, INDEX),
                   ir.Binary("<", var, ir.Const(count, INDEX), BOOL), 1, node, axis)
    return node


def _rounds(owner: _Owner) -> tuple[ir.Expr, ...]:
    return tuple(ir.Const(0, INDEX) if axis is None else ir.Var(f"lw_own_r{d}", INDEX)
                 for d, axis in enumerate(owner.axes))
