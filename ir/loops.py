"""The loop AST that backends render: what isl's AST builder produced, with statement bodies in.

    node := For(var, init, cond, step, body, kind) | If(cond, then, orelse) | Block(body)
          | Store(tensor, indices, value, reduce, stmt) | Scope(buffers, body)

`kind` is "serial", or what a schedule step asked for: "parallel", "vector", "unroll", or a GPU
axis from `GPU_AXES` (`Schedule.bind`; see ir/launches.py). A `Store` with a
reduce op ("+=", "*=", "max=", "min=") means `tensor[indices] = tensor[indices] <op> value`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from loopweave.ir.affine import constant_value
from loopweave.ir.expr import (
    Binary,
    Call,
    Const,
    Expr,
    Load,
    Var,
    add,
    loads,
    rewrite,
    to_str,
    variables,
)
from loopweave.ir.expr import walk as walk_expr
from loopweave.ir.types import BOOL, INDEX, DType

#: The GPU axes a loop can be bound to (`Schedule.bind`), named as in CUDA and TVM. A loop on
#: `blockIdx.*` spreads its iterations over the blocks of a launch (Triton: its programs), a
#: loop on `threadIdx.*` over the threads of a block (Triton: the lanes of a block's tensors).
BLOCK_AXES = ("blockIdx.x", "blockIdx.y", "blockIdx.z")
THREAD_AXES = ("threadIdx.x", "threadIdx.y", "threadIdx.z")
GPU_AXES = BLOCK_AXES + THREAD_AXES


@dataclass(frozen=True, slots=True)
class Store:
    tensor: str
    indices: tuple[Expr, ...]
    value: Expr
    reduce: str | None
    stmt: str


@dataclass(frozen=True, slots=True)
class For:
    var: str
    init: Expr
    cond: Expr
    step: int
    body: Node
    kind: str = "serial"


@dataclass(frozen=True, slots=True)
class If:
    cond: Expr
    then: Node
    orelse: Node | None = None


@dataclass(frozen=True, slots=True)
class Block:
    body: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Buffer:
    """A local array (shape: constants or size expressions; () for a scalar)."""

    name: str
    dtype: DType
    shape: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Scope:
    """`body` with local buffers, uninitialised, private to each execution of the scope."""

    buffers: tuple[Buffer, ...]
    body: Node


Node = For | If | Block | Store | Scope


def children(node) -> tuple:
    """The nodes directly inside `node` (none for a store, or a node kind this module does
    not define)."""
    match node:
        case For(body=b) | Scope(body=b):
            return (b,)
        case If(then=t, orelse=e):
            return (t,) if e is None else (t, e)
        case Block(body=body):
            return body
    return ()


def walk(node: Node, inside: Callable[[Node], tuple] = children) -> Iterator[Node]:
    """All nodes, parents before children; `inside(node)` says which nodes to enter (a lowering
    that adds node kinds, or one that stops at some, passes its own)."""
    yield node
    for child in inside(node):
        yield from walk(child, inside)


def statements_in(node: Node) -> set[str]:
    """The names of the statements whose stores `node` holds."""
    return {n.stmt for n in walk(node) if isinstance(n, Store)}


def to_text(node: Node, indent: str = "") -> str:
    """Readable pseudo-code of a loop nest (for dumps and error messages)."""
    match node:
        case For(var=v, init=i, cond=c, step=s, body=b, kind=k):
            tag = "" if k == "serial" else f"  # {k}"
            step = "" if s == 1 else f" step {s}"
            head = f"{indent}for {v} = {to_str(i)} while {to_str(c)}{step}:{tag}\n"
            return head + to_text(b, indent + "  ")
        case If(cond=c, then=t, orelse=e):
            text = f"{indent}if {to_str(c)}:\n" + to_text(t, indent + "  ")
            if e is not None:
                text += f"{indent}else:\n" + to_text(e, indent + "  ")
            return text
        case Block(body=body):
            return "".join(to_text(b, indent) for b in body)
        case Scope(buffers=bufs, body=b):
            decls = ", ".join(f"{x.name}: {x.dtype}[{', '.join(to_str(d) for d in x.shape)}]"
                              for x in bufs)
            return f"{indent}local {decls}\n" + to_text(b, indent)
        case Store(tensor=t, indices=ix, value=v, reduce=r):
            return f"{indent}{t}[{', '.join(to_str(x) for x in ix)}] {r or '='} {to_str(v)}\n"
    raise AssertionError(type(node).__name__)


def upper_bounds(cond: Expr, var: str) -> list[Expr]:
    """Exclusive upper bounds on `var` that `cond` states (a conjunction of `var < e`)."""
    match cond:
        case Binary(op="and", left=a, right=b):
            return upper_bounds(a, var) + upper_bounds(b, var)
        case Binary(op="<" | "<=", left=Var(name=v), right=rhs) if v == var:
            terms = min_terms(rhs)
            if cond.op == "<=":
                terms = [Binary("+", t, Const(1), INDEX) for t in terms]
            return terms
    return []


def only_upper_bounds(cond: Expr, var: str) -> bool:
    """Is `cond` a conjunction of `var < e` and `var <= e` (all that `upper_bounds` reads)?"""
    if isinstance(cond, Binary) and cond.op == "and":
        return only_upper_bounds(cond.left, var) and only_upper_bounds(cond.right, var)
    return isinstance(cond, Binary) and cond.op in ("<", "<=") and \
        isinstance(cond.left, Var) and cond.left.name == var


def upper_bound(cond: Expr, var: str) -> Expr | None:
    """The exclusive upper bound on `var` that `cond` states (the min of `upper_bounds`), or
    None if it states none."""
    bounds = upper_bounds(cond, var)
    if not bounds:
        return None
    end = bounds[0]
    for b in bounds[1:]:
        end = Call("min", (end, b), INDEX)
    return end


def single_upper_bound(cond: Expr, var: str) -> Expr | None:
    """The exclusive end when `cond` is exactly `var < e` (e) or `var <= h` (h + 1), the bound
    free of `var` (the loop shape a vector loop takes); else None."""
    match cond:
        case Binary(op="<" | "<=", left=Var(name=v), right=hi) if v == var and \
                var not in variables(hi):
            return hi if cond.op == "<" else add(hi, Const(1))
    return None


def loop_end(loop: For) -> Expr | None:
    """The exclusive end of `loop` when its condition is only upper bounds (their min)."""
    if not only_upper_bounds(loop.cond, loop.var):
        return None
    return upper_bound(loop.cond, loop.var)


def min_terms(e: Expr) -> list[Expr]:
    if isinstance(e, Call) and e.func == "min":
        return [t for a in e.args for t in min_terms(a)]
    return [e]


def max_terms(e: Expr) -> list[Expr]:
    if isinstance(e, Call) and e.func == "max":
        return [t for a in e.args for t in max_terms(a)]
    return [e]


def tile_extent(loop: For, inner: set[str]) -> int | None:
    """`full_extent` of `loop` where its start is a max of terms, one of them free of the
    variables `inner` (an upper triangle's columns start at the tile's first column or at
    the row): the extent from that one."""
    extent = full_extent(loop)
    if extent is None and variables(loop.init) & inner:
        base = [t for t in max_terms(loop.init) if not variables(t) & inner]
        if len(base) == 1:
            extent = full_extent(replace(loop, init=base[0]))
    return extent


def full_extent(loop: For) -> int | None:
    """The trip count of `loop` when no other bound cuts it: `v < min(..., init + E)`."""
    extents = [constant_value(Binary("-", b, loop.init, INDEX))
               for b in upper_bounds(loop.cond, loop.var)]
    extents = [e for e in extents if e is not None and e > 0]
    return min(extents) if extents else None


def accumulator_nest(node: Node) -> tuple[list[For], For, For, Store] | None:
    """(outer loops, rows loop, columns loop, store) of a perfect nest ending in a store that
    reads nothing of the tensor it writes (each element is then its own accumulator: a register
    tile's shape), with at least one outer (reduction) loop, or None. Where the loop around the
    columns does not index the store, it is a reduction and the rows loop is one of a single
    row, made up here: isl drops a rows loop of extent 1 (a GEMV's tile of one row of C)."""
    nest = []
    while isinstance(node, For):
        nest.append(node)
        node = node.body
    if len(nest) < 2 or not isinstance(node, Store) or any(
            load.tensor == node.tensor for load in loads(node.value)):
        return None
    *outer, rows, cols = nest
    if rows.var not in set().union(*(variables(i) for i in node.indices)):
        row = f"{cols.var}_row"
        one = For(row, Const(0), Binary("<", Var(row), Const(1), BOOL), 1, cols)
        return [*outer, rows], one, cols, node
    if not outer:
        return None
    return outer, rows, cols, node


def bound_loops(node: Node) -> list[For]:
    """The loops of `node` bound to a GPU axis, outer first."""
    return [n for n in walk(node) if isinstance(n, For) and n.kind in GPU_AXES]


def loop_vars_inside(loop: For) -> set[str]:
    """The variables of `loop` and of every loop inside it."""
    return {n.var for n in walk(loop) if isinstance(n, For)}


def invariant_reductions(loop: For) -> list[Store]:
    """The reducing stores inside `loop` whose element is the same for all its iterations (and
    those of the loops inside it): a reduction over `loop`, as `s[i] += x[i, j]` over j.
    A buffer declared inside `loop` is each iteration's own, so no reduction over it."""
    inside = loop_vars_inside(loop)
    local = {b.name for n in walk(loop) if isinstance(n, Scope) for b in n.buffers}
    return [st for st in walk(loop) if isinstance(st, Store) and st.reduce is not None
            and st.tensor not in local
            and not set().union(*(variables(x) for x in st.indices)) & inside]


def node_loads(node: Node) -> list[Load]:
    """The loads of one node's own expressions (not of its children)."""
    match node:
        case Store(indices=ix, value=v):
            return [ld for e in (*ix, v) for ld in loads(e)]
        case For(init=a, cond=b):
            return loads(a) + loads(b)
        case If(cond=c):
            return loads(c)
    return []


def invariant_target(loop: For) -> tuple[str, tuple[Expr, ...]] | None:
    """A (tensor, indices) that `loop` stores to at indices fixed during the loop and accesses
    nowhere else: an accumulator a renderer may keep in a register while the loop runs."""
    inner = loop_vars_inside(loop)
    nodes = list(walk(loop))
    local = {b.name for n in nodes if isinstance(n, Scope) for b in n.buffers}
    for st in (n for n in nodes if isinstance(n, Store)):
        used = {x.name for ix in st.indices for x in walk_expr(ix) if isinstance(x, Var)}
        if used & inner or st.tensor in local:  # a buffer declared inside lives only there
            continue
        accesses = [ld for n in nodes for ld in node_loads(n) if ld.tensor == st.tensor]
        stores = [n for n in nodes if isinstance(n, Store) and n.tensor == st.tensor]
        if all(a.indices == st.indices for a in accesses) \
                and all(s.indices == st.indices for s in stores):
            return st.tensor, st.indices
    return None


def map_stores(node: Node, fn: Callable[[Store], Node]) -> Node:
    """`node` with each store replaced by `fn(store)`."""
    match node:
        case Store():
            return fn(node)
        case Block(body=body):
            return Block(tuple(map_stores(b, fn) for b in body))
        case For() | Scope():
            return replace(node, body=map_stores(node.body, fn))
        case If(cond=c, then=t, orelse=e):
            return If(c, map_stores(t, fn), None if e is None else map_stores(e, fn))
    return node


def without_statements(node: Node, names: set[str]) -> Node | None:
    """`node` without the stores of statements `names`, and without the loops, guards and
    blocks left empty (None where nothing is left)."""
    return stores_where(node, lambda name: name not in names)


def stores_where(node: Node, keep: Callable[[str], bool]) -> Node | None:
    """`node` with only the stores whose statement's name `keep` accepts, and without the
    loops, guards and blocks left empty (None where nothing is left)."""
    match node:
        case Store(stmt=name):
            return node if keep(name) else None
        case Block(body=body):
            kept = tuple(k for k in (stores_where(b, keep) for b in body) if k is not None)
            return Block(kept) if kept else None
        case For() | Scope():
            body = stores_where(node.body, keep)
            return None if body is None else replace(node, body=body)
        case If(cond=c, then=t, orelse=e):
            then = stores_where(t, keep)
            orelse = None if e is None else stores_where(e, keep)
            if then is None and orelse is None:
                return None
            return If(c, Block(()) if then is None else then, orelse)
    return node


def prepend_indices(node: Node, tensor: str, first: tuple[Expr, ...]) -> Node:
    """`node` with every access to `tensor` indexed by `first` in front of its own indices."""
    def expr(e: Expr) -> Expr:
        return rewrite(e, lambda x: Load(x.tensor, (*first, *x.indices), x.dtype)
                       if isinstance(x, Load) and x.tensor == tensor else None)

    def visit(n: Node) -> Node:
        match n:
            case Store(tensor=t, indices=ix, value=v):
                ix = tuple(expr(i) for i in ix)
                return replace(n, indices=(*first, *ix) if t == tensor else ix, value=expr(v))
            case Block(body=body):
                return Block(tuple(visit(b) for b in body))
            case For(init=a, cond=c, body=b):
                return replace(n, init=expr(a), cond=expr(c), body=visit(b))
            case Scope(body=b):
                return replace(n, body=visit(b))
            case If(cond=c, then=t, orelse=e):
                return If(expr(c), visit(t), None if e is None else visit(e))
        return n
    return visit(node)


def rename_element(node: Node, tensor: str, indices: tuple[Expr, ...], reg: str) -> Node:
    """`node` with every access to `tensor[indices]` turned into one to the scalar `reg`."""
    def expr(e: Expr) -> Expr:
        return rewrite(e, lambda x: Load(reg, (), x.dtype)
                       if isinstance(x, Load) and x.tensor == tensor
                       and x.indices == indices else None)

    match node:
        case Store():
            target = (reg, ()) if node.tensor == tensor else (node.tensor, node.indices)
            return Store(target[0], target[1], expr(node.value), node.reduce, node.stmt)
        case Block(body=body):
            return Block(tuple(rename_element(b, tensor, indices, reg) for b in body))
        case For():
            return For(node.var, node.init, node.cond, node.step,
                       rename_element(node.body, tensor, indices, reg), node.kind)
        case If(cond=c, then=t, orelse=e):
            return If(expr(c), rename_element(t, tensor, indices, reg),
                      None if e is None else rename_element(e, tensor, indices, reg))
        case Scope(buffers=b, body=body):
            return Scope(b, rename_element(body, tensor, indices, reg))
    return node
