"""GPU lowering of a scheduled loop AST: which code runs on the host, which in kernel launches.

Every GPU renderer (CUDA C, Triton) reads the result; none decides anything of its own:

    host := For | If | Block | Launch                  (loops that carry dependences stay here)
    Launch(name, blocks, threads, body)                 one kernel launch
      blocks: the loops bound to blockIdx.*, outermost first, perfectly nested
      body  := For | If | Block | Scope | Barrier | OneThread     (block level: every thread)
               For(kind=threadIdx.*) ... its body per thread (thread level)

Rules, each checked here with an error that names the loop:
- `blockIdx.*` loops come first in their nest, one axis at most once; their iterations are
  independent (the legality check of `Schedule.bind`), so a renderer may spread them over any
  number of blocks (a grid-stride loop): `grid_extent` is only the trip count it aims for.
- A `threadIdx.*` loop needs a constant trip count (tile it first); inside it, every thread runs
  its own iteration. Another thread loop inside it must be the whole of its body (so no thread
  runs code meant for a single (x, y) pair twice).
- Between thread loops, at block level, threads of a block wait at a `Barrier`: after each
  block-level sibling that has thread work, and at the end of each iteration of a block-level
  loop around thread work. Block-level stores outside every thread loop run in `OneThread`.
- A `threadIdx.x` loop whose stores all update one element, the same for every thread (a
  reduction over the loop: `s[i] += x[i, j]` with j on the threads; `Schedule.bind` accepts
  such a loop where its only carried dependence is the reduction's own chain) becomes a
  `ThreadReduce`: partial results per thread, combined across the block. It needs a 1-D block.
- A nest without any bound loop becomes a launch of one block of one thread (and a warning).
- `Scope` buffers in the host code (a temporary local to a host loop's iteration, used by
  several launches) live in device memory (`device_buffers`), allocated by the launcher.
- `Scope` buffers at block level are shared by the block's threads (CUDA `__shared__`), so
  their total must be within `shared_limit` bytes. One whose shape is not constant (softmax's
  row `e[j]` of a fused row loop) lives in device memory instead, one copy per iteration of the
  launch's block loops (`e[c0, j]`: the temporary the statements would have used unfused).
  A copy into a shared buffer (`cache_read` at a block-level loop) is a `Spread`: all threads
  of the block share its work.
- One array per name (the renderers declare buffers by name): where isl split a bound loop
  into pieces, a local may be per block in some launches and at host level in another; it
  is then in device memory in all of them, in the largest shape of each dimension, and a use
  with fewer dimensions than the array indexes the leading ones at 0.
"""

from __future__ import annotations

from dataclasses import replace

from loopweave.errors import ScheduleError
from loopweave.ir import expr as ir
from loopweave.ir.affine import constant_value
from loopweave.ir.fragments import register_fragments
from loopweave.ir.launch_nodes import (
    Barrier,
    GpuProgram,
    KernelNode,
    Launch,
    OneThread,
    Spread,
    ThreadReduce,
    walk_kernel,
)
from loopweave.ir.loops import (
    BLOCK_AXES,
    GPU_AXES,
    THREAD_AXES,
    Block,
    Buffer,
    For,
    If,
    Node,
    Scope,
    Store,
    bound_loops,
    children,
    full_extent,
    invariant_reductions,
    loop_end,
    map_stores,
    node_loads,
    prepend_indices,
    statements_in,
    upper_bounds,
    walk,
)
from loopweave.ir.types import BOOL, INDEX

#: Per-block limits of CUDA: threads per axis and in all (a target may allow more in all:
#: Triton's lanes, `lower_launches`'s `thread_limit`).
MAX_THREADS = {"threadIdx.x": 1024, "threadIdx.y": 1024, "threadIdx.z": 64}
MAX_BLOCK_THREADS = 1024


def has_gpu_binding(loops: Node) -> bool:
    """Does the schedule bind any loop to a GPU axis (so the GPU lowering applies)?"""
    return bool(bound_loops(loops))


def lower_launches(loops: Node, kernel_name: str, shared_limit: int | None,
                   thread_limit: int = MAX_BLOCK_THREADS) -> GpuProgram:
    """Split the scheduled loop AST into host code and launches (see the module docstring).
    `shared_limit`: the bytes of shared memory a block may use (None: the target has none to
    budget, its renderer decides what block-level buffers it can keep); `thread_limit`: the
    threads a block may have (loopweave.targets.GpuFacts.block_threads)."""
    # isl may split a bound loop into pieces (statements of different ranges fused): some
    # launched with a local kept per block (in shared memory, or per-block copies in device
    # memory: [blocks, M]), one perhaps without the loop (a single iteration, at host level:
    # a device buffer [M]). The renderers keep one array per name, so where the first
    # lowering finds a name both in shared memory and in device memory, another spills it
    # in every launch; where device buffers of one name differ in rank, another knows the
    # final shapes and indexes the leading dimensions a use lacks at 0 (the pieces run one
    # after the other, so one array serves all).
    spill: frozenset[str] = frozenset()
    final: dict[str, Buffer] = {}
    while True:
        lowering = _Lowering(kernel_name, shared_limit, thread_limit, spill, final)
        program = lowering.program(loops)
        both = lowering.kept_names & lowering.device_buffers.keys()
        if both:
            spill, final = spill | both, {}
        elif lowering.ranks_differ and not final:
            final = lowering.device_buffers
        else:
            return program


class _Lowering:
    def __init__(self, kernel_name: str, shared_limit: int | None, thread_limit: int,
                 spill: frozenset[str] = frozenset(), final: dict[str, Buffer] | None = None):
        self.kernel_name = kernel_name
        self.shared_limit = shared_limit
        self.thread_limit = thread_limit
        self.launches: list[Launch] = []
        self.warnings: list[str] = []
        self.device_buffers: dict[str, Buffer] = {}
        self.final = final or {}  # device buffers' shapes from a first lowering
        self.ranks_differ = False  # a name used as device buffers of different ranks
        self.spill = spill  # block-level buffers kept in device memory even if constant
        self.kept_names: set[str] = set()  # block-level buffers left to the launch

    def program(self, loops: Node) -> GpuProgram:
        host = self.host(loops, [])
        return GpuProgram(host, tuple(self.launches), tuple(self.warnings),
                          tuple(self.device_buffers.values()))

    # -- host level ----------------------------------------------------------------------------

    def host(self, node: Node, host_vars: list[str]) -> Node:
        if not bound_loops(node):
            return self.sequential_launch(node, host_vars)
        match node:
            case Block(body=body):
                out: list[Node] = []
                pending: list[Node] = []  # unbound siblings, launched together
                for child in body:
                    if bound_loops(child):
                        if pending:
                            out.append(self.sequential_launch(Block(tuple(pending)), host_vars))
                            pending = []
                        out.append(self.host(child, host_vars))
                    else:
                        pending.append(child)
                if pending:
                    out.append(self.sequential_launch(Block(tuple(pending)), host_vars))
                return Block(tuple(out))
            case For(kind=kind) if kind in BLOCK_AXES:
                return self.launch(node, host_vars)
            case For(kind=kind) if kind in THREAD_AXES:
                return self.launch(node, host_vars)
            case For():
                # A host loop: its iterations run one after the other, each with its launches.
                stores = sorted(statements_in(node))
                self.warnings.append(
                    f"host loop {node.var} around {', '.join(stores)} of kernel "
                    f"'{self.kernel_name}': one launch per iteration (it is bound to no GPU "
                    f"axis; a loop that carries a dependence cannot be)")
                return replace(node, body=self.host(node.body, [*host_vars, node.var]),
                               kind="serial")
            case If(cond=c, then=t, orelse=e):
                return If(c, self.host(t, host_vars),
                          None if e is None else self.host(e, host_vars))
            case Scope(buffers=b, body=body):
                # Used by several launches: one device array, written before it is read in
                # each execution of the scope (a scope's buffers start uninitialised).
                for x in b:
                    body = self.device_buffer(x, body)
                return self.host(body, host_vars)
        raise AssertionError(type(node).__name__)

    def sequential_launch(self, node: Node, host_vars: list[str]) -> Node:
        stores = sorted(statements_in(node))
        if not any(isinstance(n, For) for n in walk(node)):
            return self.launch_of((), node, host_vars)  # a few stores: nothing to spread
        self.warnings.append(f"{', '.join(stores)} of kernel '{self.kernel_name}' run(s) on one "
                             f"GPU thread: no loop of it is bound to a GPU axis (Schedule.bind)")
        return self.launch_of((), node, host_vars)

    def launch(self, loop: For, host_vars: list[str]) -> Node:
        blocks: list[For] = []
        node: Node = loop
        while isinstance(node, For) and node.kind in BLOCK_AXES:
            if any(b.kind == node.kind for b in blocks):
                raise ScheduleError(f"loop {node.var} is bound to {node.kind}, which an outer "
                                    f"loop ({blocks[0].var}) already uses")
            blocks.append(node)
            node = node.body
        return self.launch_of(tuple(blocks), node, host_vars)

    def launch_of(self, blocks: tuple[For, ...], body: Node, host_vars: list[str]) -> Node:
        body = self.spill_unbounded_buffers(_with_tile_origins(body), blocks, host_vars)
        inner = self.block_level(body)
        for n in walk_kernel(inner):
            if isinstance(n, For) and n.kind in BLOCK_AXES:
                raise ScheduleError(f"loop {n.var} is bound to {n.kind} but is not among the "
                                    f"outermost loops of its nest; only loops outside every "
                                    f"other loop of a launch can be bound to blockIdx")
        threads = self.block_shape(inner)
        reductions = [n for n in walk_kernel(inner) if isinstance(n, ThreadReduce)]
        if reductions and [a for a, _ in threads] != ["threadIdx.x"]:
            raise ScheduleError(
                f"loop {reductions[0].loop.var} reduces into {reductions[0].update.tensor} "
                f"across the threads of a block, which needs a 1-D block (threadIdx.x only), "
                f"not {_shape_text(dict(threads))}")
        registers: tuple = ()
        if self.shared_limit is not None:  # a target with shared memory has per-thread arrays
            inner, registers = register_fragments(inner, dict(threads))
        shared = self.shared_buffers(inner)
        name = f"lw_{self.kernel_name}_k{len(self.launches)}"  # as the planners name theirs
        extents = tuple(self.grid_extent(b, host_vars) for b in blocks)
        launch = Launch(name, blocks, extents, threads, inner, shared, tuple(host_vars),
                        registers)
        self.launches.append(launch)
        return launch

    def spill_unbounded_buffers(self, body: Node, blocks: tuple[For, ...],
                                host_vars: list[str]) -> Node:
        """Block-level buffers without a constant shape become device buffers with one copy
        per iteration of the block loops (a dimension in front per block loop)."""
        def visit(node: Node) -> Node:
            match node:
                case Scope(buffers=bufs, body=b):
                    keep = tuple(x for x in bufs if x.name not in self.spill and all(
                        constant_value(d) is not None for d in x.shape))
                    self.kept_names.update(x.name for x in keep)
                    moved = [x for x in bufs if x not in keep]
                    b = visit(b)
                    for x in moved:
                        b = self.per_block_copies(b, x, blocks, host_vars)
                    return Scope(keep, b) if keep else b
                case For(kind=kind) if kind in THREAD_AXES:
                    return node  # a thread's own buffers: the renderer's concern
                case For() :
                    return replace(node, body=visit(node.body))
                case If(cond=c, then=t, orelse=e):
                    return If(c, visit(t), None if e is None else visit(e))
                case Block(body=parts):
                    return Block(tuple(visit(x) for x in parts))
            return node
        return visit(body)

    def per_block_copies(self, body: Node, buffer: Buffer, blocks: tuple[For, ...],
                         host_vars: list[str]) -> Node:
        extents = [_trip_count(b, host_vars) for b in blocks]
        sizes = set().union(*(ir.variables(x) for x in (*extents, *buffer.shape)
                              if x is not None))
        if (not blocks and buffer.name not in self.spill) or None in extents \
                or sizes & set(host_vars):
            shape = ", ".join(map(ir.to_str, buffer.shape))
            raise ScheduleError(f"buffer {buffer.name} is local to the blocks of a launch but "
                                f"has no constant shape ([{shape}]); bind an outer loop to "
                                f"blockIdx so that each block's copy can live in device "
                                f"memory, or tile it to a constant size")
        slots = tuple(ir.Binary("/", ir.Binary("-", ir.Var(b.var, INDEX), b.init, INDEX),
                                ir.Const(b.step), INDEX) if b.step != 1 else
                      ir.Binary("-", ir.Var(b.var, INDEX), b.init, INDEX) for b in blocks)
        spilled = Buffer(buffer.name, buffer.dtype, (*extents, *buffer.shape))
        return self.device_buffer(spilled, prepend_indices(body, buffer.name, slots))

    def device_buffer(self, buffer: Buffer, body: Node) -> Node:
        """Record `buffer` (used in `body`) as a device buffer; `body` with its uses indexed
        at 0 in the leading dimensions it lacks of the buffer's final shape."""
        final = self.final.get(buffer.name)
        if final is not None:
            self.device_buffers[buffer.name] = final
            pad = (ir.Const(0),) * (len(final.shape) - len(buffer.shape))
            return prepend_indices(body, buffer.name, pad) if pad else body
        earlier = self.device_buffers.get(buffer.name)
        if earlier is not None and earlier.shape != buffer.shape:
            # isl split the bound loop into pieces (statements of different ranges fused),
            # each a launch with its copies of the buffer (or one at host level); the
            # launches run one after the other, so one array serves all.
            self.ranks_differ |= len(earlier.shape) != len(buffer.shape)
            buffer = replace(buffer, shape=_merged_shape(earlier.shape, buffer.shape))
        self.device_buffers[buffer.name] = buffer
        return body

    def grid_extent(self, loop: For, host_vars: list[str]) -> ir.Expr:
        """The trip count of a block loop, computed on the host (1 when its bounds depend on
        another block loop: the blocks then stride over it)."""
        count = _trip_count(loop, host_vars)
        if count is None:
            self.warnings.append(f"loop {loop.var} on {loop.kind}: its bounds depend on another "
                                 f"bound loop, so one block strides over all of it")
            return ir.Const(1)
        return count

    # -- block level ---------------------------------------------------------------------------

    def block_level(self, node: Node, shared: frozenset[str] = frozenset()) -> KernelNode:
        """`node` run by every thread of a block, with barriers between parallel parts;
        `shared`: the block-level buffers declared around it."""
        if not _has_threads(node):
            return _copy_into_shared(node, shared) or OneThread(node)
        match node:
            case For(kind=kind) if kind in THREAD_AXES:
                self.check_thread_loop(node, ())
                return _thread_reduction(node) or node
            case For():
                body = self.block_level(node.body, shared)
                return replace(node, body=Block((body, Barrier())), kind="serial")
            case Block(body=body):
                parts: list[KernelNode] = []
                for i, child in enumerate(body):
                    parts.append(self.block_level(child, shared))
                    if i + 1 < len(body):
                        parts.append(Barrier())
                return Block(tuple(parts))
            case If(cond=c, then=t, orelse=e):
                return If(c, self.block_level(t, shared),
                          None if e is None else self.block_level(e, shared))
            case Scope(buffers=b, body=body):
                return Scope(b, self.block_level(body, shared | {x.name for x in b}))
        raise AssertionError(type(node).__name__)

    def check_thread_loop(self, loop: For, outer: tuple[For, ...]) -> None:
        if any(o.kind == loop.kind for o in outer):
            raise ScheduleError(f"loop {loop.var} is bound to {loop.kind} inside loop "
                                f"{outer[-1].var}, which is bound to the same axis")
        if full_extent(loop) is None:
            raise ScheduleError(f"loop {loop.var} is bound to {loop.kind} but has no constant "
                                f"trip count; tile it (Schedule.tile) and bind the point loop")
        inner = _thread_loops_below(loop.body)
        if not inner:
            return
        path = _single_path(loop.body)
        if path is None or len(inner) != 1:
            raise ScheduleError(
                f"loop {inner[0].var} is bound to {inner[0].kind} inside loop {loop.var} "
                f"({loop.kind}), which has other code around it; bind loops that are directly "
                f"nested, or leave the inner one serial")
        self.check_thread_loop(path, (*outer, loop))

    def block_shape(self, body: KernelNode) -> tuple[tuple[str, int], ...]:
        shape: dict[str, int] = {}
        for n in walk_kernel(body):
            if isinstance(n, For) and n.kind in THREAD_AXES:
                shape[n.kind] = max(shape.get(n.kind, 1), full_extent(n))
        for axis, count in shape.items():
            limit = MAX_THREADS[axis] if axis == "threadIdx.z" else max(MAX_THREADS[axis],
                                                                         self.thread_limit)
            if count > limit:
                raise ScheduleError(f"{count} threads on {axis}; at most {limit}: "
                                    f"tile the loop bound to it smaller")
        total = 1
        for count in shape.values():
            total *= count
        if total > self.thread_limit:
            raise ScheduleError(f"{total} threads per block ({_shape_text(shape)}); at most "
                                f"{self.thread_limit}: tile the loops bound to threadIdx smaller")
        return tuple((a, shape[a]) for a in THREAD_AXES if a in shape)

    def shared_buffers(self, body: KernelNode) -> tuple[Buffer, ...]:
        found: dict[str, Buffer] = {}  # isl may repeat a scope (full and partial tiles)
        for n in _block_level_nodes(body):
            if isinstance(n, Scope):
                found.update((b.name, b) for b in n.buffers)
        buffers = list(found.values())
        total = 0
        for b in buffers:
            size = b.dtype.bits // 8
            for d in b.shape:
                value = constant_value(d)
                if value is None:
                    raise ScheduleError(f"buffer {b.name} is shared by the threads of a block, "
                                        f"so its shape must be constant, not "
                                        f"[{', '.join(ir.to_str(x) for x in b.shape)}]")
                size *= value
            total += size
        if self.shared_limit is not None and total > self.shared_limit:
            raise ScheduleError(
                f"shared memory over budget: {', '.join(b.name for b in buffers)} take {total} "
                f"bytes per block, the target allows {self.shared_limit}; cache smaller tiles")
        return tuple(buffers)


def _merged_shape(a: tuple[ir.Expr, ...], b: tuple[ir.Expr, ...]) -> tuple[ir.Expr, ...]:
    """The shape of one array serving buffers of shapes `a` and `b`, aligned at their last
    dimensions: the largest extent of each dimension (the strides follow the array's shape, the
    same in every launch); a leading dimension only one of them has holds at least the element
    0 the other's uses read (a piece's block loop may run no iteration: an extent of 0)."""
    long, short = (a, b) if len(a) >= len(b) else (b, a)
    lead = len(long) - len(short)
    head = tuple(d if (constant_value(d) or 0) >= 1 else ir.Call("max", (d, ir.Const(1)), INDEX)
                 for d in long[:lead])
    return (*head, *(x if x == y else ir.Call("max", (x, y), INDEX)
                     for x, y in zip(long[lead:], short, strict=True)))


def _trip_count(loop: For, host_vars: list[str]) -> ir.Expr | None:
    """The trip count of a loop as a host expression (sizes and `host_vars`), or None if its
    bounds depend on other loops."""
    known = set(host_vars)
    bounds = [b for b in upper_bounds(loop.cond, loop.var)
              if ir.variables(b) <= known and ir.variables(loop.init) <= known]
    if not bounds:
        return None
    upper = bounds[0]
    for b in bounds[1:]:
        upper = ir.Call("min", (upper, b), INDEX)
    count = ir.Binary("-", upper, loop.init, INDEX)
    if loop.step != 1:
        count = ir.Binary("cdiv", count, ir.Const(loop.step), INDEX)
    return count


def _with_tile_origins(node: Node) -> Node:
    """Thread loops that start at the origin of their tile: isl writes the first point of a
    tile cut by the domain as `max(1, 32 * c1)`; the thread's index counts from `32 * c1` (the
    lower bound that is a constant distance from an upper one) and the other lower bounds
    become part of the condition, so the loop has a constant trip count."""
    match node:
        case For(kind=kind) if kind in THREAD_AXES and full_extent(node) is None:
            body = _with_tile_origins(node.body)
            for origin in _max_terms(node.init):
                moved = replace(node, init=origin, body=body, cond=ir.Binary(
                    "and", node.cond, ir.Binary(">=", ir.Var(node.var, INDEX), node.init,
                                                BOOL), BOOL))
                if full_extent(moved) is not None:
                    return moved
            return replace(node, body=body)
        case For(body=b) | Scope(body=b):
            return replace(node, body=_with_tile_origins(b))
        case If(cond=c, then=t, orelse=e):
            return If(c, _with_tile_origins(t), None if e is None else _with_tile_origins(e))
        case Block(body=body):
            return Block(tuple(_with_tile_origins(b) for b in body))
    return node


def _max_terms(e: ir.Expr) -> list[ir.Expr]:
    if isinstance(e, ir.Call) and e.func == "max":
        return [t for a in e.args for t in _max_terms(a)]
    return [e]


def _copy_into_shared(node: Node, shared: frozenset[str]) -> Spread | None:
    """`node` as a `Spread` if it copies other tensors into a shared buffer, element by element,
    over a rectangular nest (what `cache_read` at a block-level loop produces); else None."""
    nest, loops = node, []
    while isinstance(nest, For):
        loops.append(nest)
        nest = nest.body
    if not loops or not isinstance(nest, Store) or nest.tensor not in shared \
            or nest.reduce is not None:
        return None
    loop_vars = [lp.var for lp in loops]
    if sorted(ir.to_str(x) for x in nest.indices) != sorted(loop_vars) or any(
            ld.tensor in shared for ld in ir.loads(nest.value)):
        return None  # not one element per iteration, or reads what the copy writes
    extents = []
    for lp in loops:
        end = loop_end(lp)
        others = set(loop_vars) - {lp.var}
        if end is None or lp.step != 1 or (ir.variables(end) | ir.variables(lp.init)) & others:
            return None
        extents.append(ir.Binary("-", end, lp.init, INDEX))
    return Spread(loops[0], tuple(extents))


def _thread_reduction(loop: For) -> ThreadReduce | None:
    """`loop` as a `ThreadReduce` if its stores update one element, the same for every
    iteration of it and of the loops inside (see ThreadReduce); None if no store does that."""
    for inner in walk(loop.body):
        shared = invariant_reductions(inner) if _is_thread_loop(inner) else []
        if shared:
            raise ScheduleError(
                f"loop {inner.var} ({inner.kind}) reduces into {_element(shared[0])} "
                f"across threads inside loop {loop.var} ({loop.kind}); a reduction across "
                f"threads needs a 1-D block: bind only the reduction's loop, to threadIdx.x")
    shared = invariant_reductions(loop)
    if not shared:
        return None
    first = shared[0]
    others = [st for st in walk(loop) if isinstance(st, Store) and (st.tensor, st.indices,
              st.reduce) != (first.tensor, first.indices, first.reduce)]
    if loop.kind != "threadIdx.x" or _thread_loops_below(loop.body) or others or any(
            ld.tensor == first.tensor for n in walk(loop) for ld in node_loads(n)):
        raise ScheduleError(
            f"loop {loop.var} ({loop.kind}) reduces into {_element(first)} across threads; "
            f"that needs the reduction alone in a threadIdx.x loop, a 1-D block")
    value_type = first.value.dtype
    compute = value_type.compute
    partial = Buffer(f"lw_part_{first.stmt}", compute, ())

    def to_partial(st: Store) -> Store:
        value = st.value.operand if value_type.is_storage_only else st.value
        return replace(st, tensor=partial.name, indices=(), value=value)

    total: ir.Expr = ir.Load(partial.name, (), compute)
    if value_type.is_storage_only:
        total = ir.Cast(value_type, total)
    return ThreadReduce(map_stores(loop, to_partial), partial, replace(first, value=total))


def _element(st: Store) -> str:
    return f"{st.tensor}[{', '.join(ir.to_str(x) for x in st.indices)}]"


def _has_threads(node: Node) -> bool:
    return any(_is_thread_loop(n) for n in walk(node))


def _is_thread_loop(node) -> bool:
    return isinstance(node, For) and node.kind in THREAD_AXES


def _thread_loops_below(node: Node) -> list[For]:
    """The outermost thread-bound loops inside `node` (or `node` itself)."""
    outside = walk(node, lambda n: () if _is_thread_loop(n) else children(n))
    return [n for n in outside if _is_thread_loop(n)]


def _single_path(node: Node) -> For | None:
    """The thread loop that `node` consists of, through guards and one-child blocks."""
    match node:
        case For(kind=kind) if kind in THREAD_AXES:
            return node
        case If(then=t, orelse=None):
            return _single_path(t)
        case Block(body=(only,)):
            return _single_path(only)
    return None


def _block_level_nodes(node: KernelNode):
    """The nodes of a launch body outside every thread loop and one-thread part."""
    return walk(node, lambda n: () if isinstance(n, For) and n.kind in GPU_AXES
                else children(n))


def _shape_text(shape: dict[str, int]) -> str:
    return " x ".join(f"{n} on {a}" for a, n in shape.items())
