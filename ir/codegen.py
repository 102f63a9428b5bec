"""Scheduled `KernelIR` -> loop AST (`ir.loops`), by isl's AST builder.

isl decides the loops, bounds and guards from the schedule tree; this module only translates
isl's AST into ours and substitutes each statement's iterators into its body. Its translator
(`AstTranslator`) is the only one: the CUDA planner's isl ASTs go through it too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import islpy as isl

from loopweave.ir import expr as ir
from loopweave.ir import isl_helpers
from loopweave.ir.data_ranges import guarded, into_bounds
from loopweave.ir.expr import Expr, Load, substitute
from loopweave.ir.kernel import FoldedInit, KernelIR, Statement
from loopweave.ir.localize import lower_cache
from loopweave.ir.loops import (
    Block,
    Buffer,
    For,
    If,
    Node,
    Scope,
    Store,
    map_stores,
    statements_in,
    stores_where,
    without_statements,
)
from loopweave.ir.privatize import privatize, reduced_across
from loopweave.ir.types import BOOL


def statement_store(stmt: Statement, values: list[Expr],
                    iterators: tuple[str, ...] | list[str] | None = None) -> Store | If:
    """The store of one instance of `stmt`: its `iterators` (default: all of them, in order)
    replaced by `values`, the others left as variables; under the guard of its ranges read
    from tensors, if it has any (ir/data_ranges.py)."""
    names = stmt.iterators if iterators is None else iterators
    mapping = dict(zip(names, values, strict=True))
    lhs: Load = substitute(stmt.lhs, mapping)
    value = substitute(stmt.rhs, mapping)
    reduce = None if stmt.op == "=" else stmt.op
    return guarded(stmt, Store(lhs.tensor, lhs.indices, value, reduce, stmt.name), mapping)


class AstTranslator:
    """isl's AST -> our loop AST: `for`, `if` and blocks as `For`, `If` and `Block`, isl's
    expressions as ours (the names in `params` as parameters). What a statement call becomes is
    `call(name, args)`; what a mark becomes, `mark(name, child, enclosing)` with the child
    translated and the iterators of the loops around the mark, outermost first (None: a mark
    is an error). One translator serves every lowering: the scheduled kernel
    (`loop_ast`) and the CUDA planner's per-thread nests and host programs."""

    def __init__(self, params: frozenset[str], call: Callable[[str, list[Expr]], Node],
                 mark: Callable[[str, Node, tuple[str, ...]], Node] | None = None):
        self.params = params
        self.call = call
        self.mark = mark
        self._enclosing: list[str] = []  # the iterators of the for nodes being translated

    def expr(self, e: isl.AstExpr) -> Expr:
        return isl_helpers.from_ast_expr(e, self.params)

    def node(self, n: isl.AstNode) -> Node:
        """The loop AST of isl AST node `n`."""
        kind = n.get_type()
        if kind == isl.ast_node_type.for_:
            var = self.expr(n.for_get_iterator()).name
            step = n.for_get_inc().int_get_val().to_python()
            self._enclosing.append(var)
            try:
                body = self.node(n.for_get_body())
            finally:
                self._enclosing.pop()
            # A guard read from tensors in the body becomes this loop's bounds (or moves above).
            return into_bounds(For(var, self.expr(n.for_get_init()),
                                   self.expr(n.for_get_cond()), step, body))
        if kind == isl.ast_node_type.if_:
            orelse = self.node(n.if_get_else_node()) if n.if_has_else_node() else None
            return If(self.expr(n.if_get_cond()), self.node(n.if_get_then_node()), orelse)
        if kind == isl.ast_node_type.block:
            children = n.block_get_children()
            return Block(tuple(self.node(children.get_at(i)) for i in range(children.n_ast_node())))
        if kind == isl.ast_node_type.mark and self.mark is not None:
            return self.mark(n.mark_get_id().get_name(), self.node(n.mark_get_node()),
                             tuple(self._enclosing))
        if kind == isl.ast_node_type.user:
            call = n.user_get_expr()
            name = call.op_get_arg(0).id_get_id().get_name()
            return self.call(name, [self.expr(call.op_get_arg(i))
                                    for i in range(1, call.op_get_n_arg())])
        raise NotImplementedError(f"isl AST node {kind}")


class _Marks:
    """What the marks of a scheduled kernel become in its loop AST."""

    def __init__(self, kernel: KernelIR):
        self.kernel = kernel
        self.bands: dict[str, isl.ScheduleNode] = {}
        self.mark_depth = _mark_depths(kernel.schedule.get_root(), self.bands)
        self.enclosing = _enclosing_caches(kernel.schedule.get_root())
        self.unbuffered: set[str] = set()  # tags of caches with a piece left without buffer

    def folded(self) -> dict[str, Expr | None]:
        """The statements whose stores the buffers' fills replace (`CacheSpec.folds`), once
        every piece of their loops has its buffer: name -> the sizes where they do (None:
        all; `CacheSpec.fill_when`)."""
        caches = self.kernel.caches
        skipped = {c.folds for c in caches if c.tag in self.unbuffered}
        return {c.folds: c.fill_when for c in caches if c.folds and c.folds not in skipped}

    def __call__(self, name: str, child: Node, enclosing: tuple[str, ...] = ()) -> Node:
        # Passes mark a loop "kind:statement:loop" (the for node below takes the kind) and
        # the body of a loop that declares local buffers "local:name,name".
        label, _, rest = name.partition(":")
        if label == "cache":
            spec = next(c for c in self.kernel.caches if c.tag == rest)
            if not {f"c{k}" for k in range(spec.depth)} <= set(enclosing):
                # isl dropped an outer loop here (one iteration: its value is folded into the
                # statements), so the buffer's offsets would name a variable nothing binds
                # (fuzz seed 16153). This piece reads and writes the tensor itself (after the
                # statement the buffer would fold: it stays).
                self.unbuffered.add(spec.tag)
                return child
            # Micro-panels around an accumulator tile are read through their buffer before
            # the tile's edge strips rename its column loop (see localize.lower_cache).
            around = [c for c in self.kernel.caches if c.tag in self.enclosing.get(rest, ())]
            panels = [c for c in around if c.panel]
            # (an edge tile pulled back must not move the reads of a buffer: its box is fixed)
            boxed = {c.tensor for c in around} | {c.buffer.name for c in around} | {
                t.name for t in self.kernel.tensors.values() if t.role == "local"}
            return lower_cache(spec, child, self.kernel.tensors[spec.tensor], panels, boxed)
        if label == "local":
            tensors = [self.kernel.tensors[t] for t in rest.split(",")]
            return Scope(tuple(Buffer(t.name, t.dtype, t.shape) for t in tensors), child)
        # isl drops a loop with one iteration; then the for below is another loop (isl
        # names loop iterators c<schedule depth>), which must not take the kind. isl may also
        # split the marked loop into pieces (a block of loops over parts of its range, under
        # guards, where the statements of a fused band have different ranges): every piece
        # takes the kind, as every piece iterates over values of the marked loop.
        var = f"c{self.mark_depth.get(name)}"

        def kind_of(node: Node) -> Node:
            match node:
                case For(var=v) if v == var:
                    if label == "parallel":  # it may carry a reduction (ir/privatize.py)
                        return privatize(replace(node, kind=label),
                                         reduced_across(self.kernel, self.bands[name]))
                    return replace(node, kind=label)
                case Block(body=parts):
                    return Block(tuple(kind_of(p) for p in parts))
                case If(cond=c, then=t, orelse=e):
                    return If(c, kind_of(t), None if e is None else kind_of(e))
            return node

        return kind_of(child)


def _mark_depths(node: isl.ScheduleNode, bands: dict[str, isl.ScheduleNode],
                 found: dict[str, int] | None = None) -> dict[str, int]:
    """mark name -> schedule depth of the band it marks (and in `bands`, that band)."""
    found = {} if found is None else found
    if node.get_type() == isl.schedule_node_type.mark:
        below = node.child(0)
        while below.get_type() == isl.schedule_node_type.mark:
            below = below.child(0)
        found[node.mark_get_id().get_name()] = below.get_schedule_depth()
        bands[node.mark_get_id().get_name()] = below
    for i in range(node.n_children()):
        _mark_depths(node.child(i), bands, found)
    return found


def _enclosing_caches(node: isl.ScheduleNode, outer: tuple[str, ...] = (),
                      found: dict[str, tuple[str, ...]] | None = None
                      ) -> dict[str, tuple[str, ...]]:
    """cache tag -> the tags of the cache marks around it."""
    found = {} if found is None else found
    if node.get_type() == isl.schedule_node_type.mark:
        label, _, tag = node.mark_get_id().get_name().partition(":")
        if label == "cache":
            found[tag] = outer
            outer = (*outer, tag)
    for i in range(node.n_children()):
        _enclosing_caches(node.child(i), outer, found)
    return found


def loop_ast(kernel: KernelIR, fold_inits: bool = False) -> Node:
    """The loop nest that executes `kernel` in the order of its schedule. `fold_inits`:
    accumulator tiles start from their reduction's constant where their caches say they may
    (`CacheSpec.fill`), and the initialisation they fold runs only where they do not; else
    every cache copies in (the GPU planners stage buffers themselves)."""
    build = isl.AstBuild.from_context(kernel.context)
    root = build.node_from_schedule(kernel.schedule)
    if not fold_inits:
        kernel = replace(kernel, caches=tuple(replace(c, fill=None, folds="", fill_when=None)
                                              for c in kernel.caches), folded_inits=())
    marks = _Marks(kernel)
    translator = AstTranslator(frozenset(kernel.params),
                               lambda name, args: statement_store(kernel.statement[name], args),
                               marks)
    ast = translator.node(root)
    folded = marks.folded()
    # A GEMM call's initialisation moves to just before the call (`_moved_init`).
    moved = [(f, stores_where(ast, lambda name, f=f: name == f.init))
             for f in kernel.folded_inits
             if _top_level_node(ast, f.statement, f.init) is not None]
    folded.update({f.init: f.when for f, init in moved if init is not None})
    always = {name for name, when in folded.items() if when is None}
    if always:
        ast = without_statements(ast, always) or Block(())
    sometimes = {name: when for name, when in folded.items() if when is not None}
    if sometimes:
        ast = _run_unless(ast, sometimes)
    for fold, init in moved:
        if init is not None:
            ast = _moved_init(ast, fold, init)
    return ast


def _moved_init(ast: Node, fold: FoldedInit, init: Node) -> Node:
    """`ast` with `init` (the stores of `fold.init`) run right before the top-level node that
    runs `fold.statement`, where `fold.when` holds: the renderer that calls a GEMM micro-kernel
    for that node writes the constant with the products instead (backends/x86_gemm.py), and
    any other runs the initialisation there. Valid where `folded_gemm_init` allows it: nothing
    between the two places reads or writes the initialised tensor."""
    body = ast.body if isinstance(ast, Block) else (ast,)
    at = _top_level_node(ast, fold.statement)
    if fold.when is not None:
        init = If(fold.when, init)
    return Block((*body[:at], init, *body[at:]))


def _top_level_node(ast: Node, statement: str, also: str = "") -> int | None:
    """The index of the top-level node of `ast` that runs `statement` (None where it also
    runs `also`: an initialisation in the call's own nest stays where it is, since moving it
    to the front could precede a read of the tensor's old values there)."""
    body = ast.body if isinstance(ast, Block) else (ast,)
    for n, node in enumerate(body):
        names = statements_in(node)
        if statement in names:
            return None if also in names else n
    return None


def _run_unless(ast: Node, sizes: dict[str, Expr]) -> Node:
    """`ast` with the stores of each statement in `sizes` run only where its buffers do not
    start from its constant (`CacheSpec.fill_when`: a reduction in several blocks): a whole
    top-level nest under one guard where it holds one such statement alone."""
    def unless(name: str, node: Node) -> Node:
        return If(ir.Unary("not", sizes[name], BOOL), node)

    def guarded(node: Node) -> Node:
        names = statements_in(node)
        if len(names) == 1 and names <= sizes.keys():
            return unless(names.pop(), node)
        return map_stores(node, lambda st: unless(st.stmt, st) if st.stmt in sizes else st)

    return Block(tuple(map(guarded, ast.body))) if isinstance(ast, Block) else guarded(ast)
