"""Lowering a kernel to CUDA launches: which statements share a `__global__` kernel, how their
dimensions map onto blocks and threads, and which loops stay sequential.

Statements run in program order. Consecutive statements under the same host loops form a group
that becomes one kernel when their dependences allow it; each group is one of

* **contraction** (`C[i, j] += f(A[i, k], B[k, j])`, with its identity initialisation): two
  output dimensions tiled into blocks and per-thread register tiles, the innermost reduction
  dimension tiled through `__shared__` memory, other output dimensions on `blockIdx.z`;
* **rows**: the dimensions Q shared by every statement (a row of softmax) map to blocks; each
  statement spreads one of its other parallel loops over the block's threads, or reduces over the
  block (warp shuffles, then shared memory between warps); `__syncthreads()` separates
  statements that depend on each other;
* **pointwise**: the shared parallel dimensions map to threads; each thread runs the rest of
  every statement sequentially (the generic case, also for statements without parallel loops,
  which run in a single thread).

Dimensions are matched across statements by iterator name and mapped only if every dependence
inside the group keeps them equal (so no two threads of different grid points communicate).
`for` loops of the DSL stay on the host: a sequence of launches.

The planner runs where a schedule binds no loop to the GPU (`Schedule()`) and where the default
schedule (passes/gpu_default) leaves it the kernel: contractions the arch's tensor cores cannot
take as WMMA steps (int8 before sm_72, bf16 before sm_80, an f16 accumulator: dp4a, half2 here),
attention the online-softmax rewrite does not take, triangles of tiles (syrk), kernels with a
statement on one thread.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import islpy as isl

from loopweave.backends import cuda_isl
from loopweave.errors import ScheduleError
from loopweave.ir import expr as ir
from loopweave.ir import isl_helpers
from loopweave.ir.codegen import AstTranslator
from loopweave.ir.dependences import (
    Dependence,
    Dependences,
    carried,
    carries,
    iteration_map,
    within_one_iteration,
)
from loopweave.ir.kernel import KernelIR, Statement
from loopweave.ir.loops import For, Node, walk
from loopweave.ir.types import I8, I32
from loopweave.passes.legality import instance_text

#: A reduction over a range of at most this many values (a pooling window) is not worth a block.
SMALL_REDUCTION = 32


@dataclass(frozen=True)
class Item:
    """A statement with the host loops around it and its position in the schedule tree."""

    stmt: Statement
    outer: tuple[str, ...]
    path: tuple  # sequence positions (int) and host loop variables (str), outermost first


@dataclass(frozen=True)
class Info:
    """What the lowering needs to know about one statement."""

    stmt: Statement
    outer: tuple[str, ...]
    path: tuple
    lhs_dims: tuple[str, ...]  # own dimensions indexing the left side
    red: tuple[str, ...]  # own dimensions that do not (reduction dimensions)
    par: tuple[str, ...]  # left-side dimensions that carry no dependence of the statement


@dataclass(frozen=True)
class GridDim:
    """A dimension mapped onto the grid: its variable and its range [lo, hi]."""

    name: str
    lo: ir.Expr
    hi: ir.Expr


@dataclass(frozen=True)
class Work:
    """One statement's part of a rows or pointwise kernel."""

    stmt: Statement
    mode: str  # "all" (each thread), "split" (loop `loop` over threads), "reduce", "single"
    code: Node
    loop: str | None = None
    guard: ir.Expr | None = None  # reduce: the block's grid point has instances
    barrier_before: bool = False


@dataclass(frozen=True)
class Staged:
    """An operand of a contraction copied tile by tile into shared memory."""

    load: ir.Load
    along: str  # the tiled output dimension it depends on


@dataclass(frozen=True)
class Contraction:
    init: Statement | None
    stmt: Statement
    tile_i: str
    tile_j: str
    red_outer: tuple[GridDim, ...]  # reduction loops around the shared-memory K tiles
    red_inner: GridDim  # the reduction dimension tiled by block_k
    staged: tuple[Staged, ...]
    guard_init: ir.Expr | None  # the output point has an initialisation
    guard_red: ir.Expr  # the output point has reduction instances
    dp4a: bool


@dataclass(frozen=True)
class KernelPlan:
    name: str
    kind: str  # "contraction", "rows" or "pointwise"
    outer: tuple[str, ...]
    dims: tuple[GridDim, ...]  # mapped dimensions, outermost first
    works: tuple[Work, ...] = ()
    contraction: Contraction | None = None


@dataclass(frozen=True)
class Tiles:
    """Tile sizes of contraction kernels and the block size of the others."""

    block_m: int
    block_n: int
    block_k: int
    thread_m: int
    thread_n: int
    block_threads: int


#: Shared memory a block may declare statically (bytes).
SHARED_LIMIT = 48 * 1024


def shared_bytes(spec: Contraction, tiles: Tiles) -> int:
    """Bytes of shared memory the staged tiles of a contraction take."""
    total = 0
    for st in spec.staged:
        rows = tiles.block_m if st.along == spec.tile_i else tiles.block_n
        cells = rows * (tiles.block_k + 4) if spec.dp4a else tiles.block_k * (rows + 1)
        total += cells * st.load.dtype.bits // 8
    return total


@dataclass(frozen=True)
class Launch:
    """A host AST leaf: launch kernel `kernel` with the host loop variables bound to `args`."""

    kernel: int
    args: tuple[ir.Expr, ...]


@dataclass(frozen=True)
class Program:
    kernels: tuple[KernelPlan, ...]
    host: Node  # For / If / Block / Launch
    warnings: tuple[str, ...]


# -- statements in program order -------------------------------------------------------------

def _stmts_of(kernel: KernelIR, domain: isl.UnionSet) -> list[Statement]:
    sets = domain.get_set_list()
    names = {sets.get_at(i).get_tuple_name() for i in range(sets.n_set())}
    return [s for s in kernel.statements if s.name in names]


def _is_host_loop(kernel: KernelIR, node: isl.ScheduleNode, stmts: list[Statement],
                  depth: int) -> bool:
    if node.band_n_member() != 1 or node.child(0).get_type() == isl.schedule_node_type.leaf:
        return False
    if any(len(s.iterators) <= depth or s.enclosing <= depth for s in stmts):
        return False  # a statement's own loop, even as a band of its own (a scheduled tree)
    want = isl_helpers.band(kernel.params, [[(s.name, s.iterators, ir.Var(s.iterators[depth]))
                                             for s in stmts]])
    dom = node.get_domain()
    got = node.band_get_partial_schedule_union_map().intersect_domain(dom)
    return got.is_equal(isl.UnionMap.from_multi_union_pw_aff(want).intersect_domain(dom))


def program_items(kernel: KernelIR) -> list[Item]:
    """Every statement in program order, with the `for` loops (host loops) around it."""
    items: list[Item] = []

    def visit(node: isl.ScheduleNode, path: tuple, outer: tuple[str, ...]) -> None:
        kind = node.get_type()
        if kind in (isl.schedule_node_type.sequence, isl.schedule_node_type.set):
            for i in range(node.n_children()):
                visit(node.child(i), (*path, i), outer)
            return
        if kind == isl.schedule_node_type.band:
            stmts = _stmts_of(kernel, node.get_domain())
            if _is_host_loop(kernel, node, stmts, len(outer)):
                var = stmts[0].iterators[len(outer)]
                visit(node.child(0), (*path, var), (*outer, var))
                return
        elif kind not in (isl.schedule_node_type.leaf, isl.schedule_node_type.band) \
                and node.n_children():
            visit(node.child(0), path, outer)
            return
        items.extend(Item(s, outer, path) for s in _stmts_of(kernel, node.get_domain()))

    visit(kernel.schedule.get_root(), (), ())
    return items


def statement_info(kernel: KernelIR, item: Item, deps: list[Dependence]) -> Info:
    s, outer = item.stmt, item.outer
    own = s.iterators[len(outer):]
    used = {v.name for ix in s.lhs.indices for v in ir.walk(ix) if isinstance(v, ir.Var)}
    lhs_dims = tuple(v for v in own if v in used)
    red = tuple(v for v in own if v not in used)
    self_deps = [d for d in deps if d.source == s.name and d.sink == s.name]
    par = tuple(v for v in lhs_dims if not any(carries(kernel, d, [v], outer) for d in self_deps))
    return Info(s, outer, item.path, lhs_dims, red, par)


# -- grouping ---------------------------------------------------------------------------------

class Lowering:
    """Decides the kernels of one KernelIR (see the module docstring)."""

    def __init__(self, kernel: KernelIR, tiles: Tiles):
        self.kernel = kernel
        self.tiles = tiles
        self.deps = Dependences(kernel).all
        self.items = [statement_info(kernel, it, self.deps) for it in program_items(kernel)]
        self.warnings: list[str] = []

    def aligned(self, group: list[Info], dims: list[str]) -> bool:
        """Every dependence between two statements of `group` keeps `dims` equal."""
        names = {g.stmt.name: g for g in group}
        for d in self.deps:
            if d.source == d.sink or d.source not in names or d.sink not in names:
                continue
            if carries(self.kernel, d, dims, group[0].outer):
                return False
        return True

    def depends(self, sources: list[Statement], sink: Statement, outer: tuple[str, ...]) -> bool:
        """Whether `sink` depends on one of `sources` inside one iteration of the host loops
        `outer` around them all."""
        names = {s.name for s in sources}
        return any(d.source in names and d.sink == sink.name
                   and not within_one_iteration(self.kernel, d, outer).is_empty()
                   for d in self.deps)

    def is_row_reduction(self, info: Info, dims: list[str]) -> bool:
        if info.stmt.op == "=" or not info.red or not set(info.lhs_dims) <= set(dims):
            return False
        if any(load.tensor == info.stmt.lhs.tensor for load in ir.loads(info.stmt.rhs)):
            return False  # `B += C[i] - B` reads what it reduces into: its order matters
        red = cuda_isl.keep_only(cuda_isl.fix(info.stmt.domain, info.outer), info.red)
        return not all(cuda_isl.has_constant_extent(self.kernel, red, d, SMALL_REDUCTION)
                       for d in range(len(info.red)))

    def grow(self, run: list[Info], start: int, shrink: bool) -> tuple[list[Info], list[str]]:
        group, dims = [run[start]], list(run[start].par)
        for nxt in run[start + 1:]:
            if self.contraction_at(run, run.index(nxt)) is not None:
                break
            new = [q for q in dims if q in nxt.par]
            if not new or (not shrink and set(nxt.par) != set(dims)):
                break
            if not self.aligned([*group, nxt], new):
                break
            group.append(nxt)
            dims = new
        return group, dims

    def contraction_at(self, run: list[Info], i: int) -> tuple[list[Info], Contraction] | None:
        info = run[i]
        if info.stmt.is_init and i + 1 < len(run) \
                and run[i + 1].stmt.lhs.tensor == info.stmt.lhs.tensor:
            found = self.contraction(run[i + 1], info)
            return ([info, run[i + 1]], found) if found else None
        found = None if info.stmt.is_init else self.contraction(info, None)
        return ([info], found) if found else None

    def runs(self) -> list[list[Info]]:
        """Maximal sequences of sibling statements (same host loops, same sequence)."""
        out: list[list[Info]] = []
        for info in self.items:
            if out and out[-1][-1].outer == info.outer \
                    and out[-1][-1].path[:-1] == info.path[:-1] and info.path:
                out[-1].append(info)
            else:
                out.append([info])
        return out

    # -- plans -----------------------------------------------------------------------------------

    def lower(self) -> Program:
        plans: list[tuple[KernelPlan, list[Info]]] = []
        for run in self.runs():
            i = 0
            while i < len(run):
                found = self.contraction_at(run, i)
                if found is not None:
                    group, spec = found
                    plans.append((self.contraction_plan(len(plans), group, spec), group))
                    i += len(group)
                    continue
                group, dims = self.grow(run, i, shrink=True)
                if any(self.is_row_reduction(g, dims) for g in group):
                    plans.append((self.rows_plan(len(plans), group, dims), group))
                else:
                    group, dims = self.grow(run, i, shrink=False)
                    plans.append((self.pointwise_plan(len(plans), group, dims), group))
                i += len(group)
        self.warn_host_loops()
        self.check_launch_order([g for _, g in plans])
        host = self.host_program([g for _, g in plans])
        return Program(tuple(p for p, _ in plans), host, tuple(self.warnings))

    def kernel_name(self, index: int) -> str:
        return f"lw_{self.kernel.name}_k{index}"

    def hull(self, group: list[Info], q: str) -> isl.Set:
        """The range of dimension `q` over the group's instances (one interval)."""
        hull = None
        for g in group:
            one = cuda_isl.keep_only(cuda_isl.fix(g.stmt.domain, g.outer), [q])
            one = one.set_tuple_name("lwq")
            hull = one if hull is None else hull.union(one)
        # From the lowest to the highest value: the convex hull of {0 <= q < M} and
        # {0 <= q < N} has no upper bound (max(M, N) is not affine), this is exact.
        space = hull.get_space()
        up = isl.Map.lex_le(space)  # a -> q with a <= q
        hull = hull.apply(up).intersect(hull.apply(up.reverse())).coalesce()
        return hull.set_dim_name(isl.dim_type.set, 0, isl_helpers.isl_name(q))

    def grid_dims(self, group: list[Info], dims: list[str]) -> tuple[GridDim, ...]:
        """The bounding box of the group's instances along each mapped dimension."""
        return tuple(GridDim(q, *cuda_isl.bounds(self.kernel, self.hull(group, q), 0))
                     for q in dims)

    def grid_box(self, group: list[Info], dims: list[str]) -> isl.Set | None:
        """The grid's range as a parameter set: what every thread may assume of `dims`."""
        box = None
        for q in dims:
            one = cuda_isl.fix(self.hull(group, q), [q]).params()
            box = one if box is None else box.intersect(one.align_params(box.get_space()))
        return box

    def domain_guard(self, info: Info, dims: list[str], box: isl.Set | None) -> ir.Expr:
        """The condition that the grid point `dims` has instances of the statement."""
        proj = cuda_isl.keep_only(cuda_isl.fix(info.stmt.domain, info.outer), dims)
        return cuda_isl.condition(self.kernel, cuda_isl.fix(proj, dims), box)

    def warn_sequential(self, group: list[Info], dims: list[str], where: str) -> None:
        for g in group:
            serial = [d for d in g.lhs_dims if d not in g.par]
            if serial:
                self.warnings.append(
                    f"{self.kernel.name}: loop(s) {', '.join(serial)} of the statement at line "
                    f"{g.stmt.pos.line} carry a dependence; they run sequentially {where}")
        if not dims:
            self.warnings.append(f"{self.kernel.name}: the statement at line "
                                 f"{group[0].stmt.pos.line} has no parallel loop; it runs in "
                                 "a single CUDA thread")

    def pointwise_plan(self, index: int, group: list[Info], dims: list[str]) -> KernelPlan:
        fixed = set(group[0].outer) | set(dims)
        code = cuda_isl.point_code(self.kernel, [g.stmt for g in group], fixed,
                                   self.grid_box(group, dims))
        self.warn_sequential(group, dims, "within each CUDA thread")
        return KernelPlan(self.kernel_name(index), "pointwise", group[0].outer,
                          self.grid_dims(group, dims), (Work(group[0].stmt, "all", code),))

    def rows_plan(self, index: int, group: list[Info], dims: list[str]) -> KernelPlan:
        fixed = set(group[0].outer) | set(dims)
        box = self.grid_box(group, dims)
        works, since = [], []
        outer = group[0].outer
        for g in group:
            barrier = bool(since) and self.depends(since, g.stmt, outer)
            if barrier:
                since = []
            since.append(g.stmt)
            code = cuda_isl.point_code(self.kernel, [g.stmt], fixed, box)
            free = cuda_isl.free_dims(g.stmt, fixed)
            extra = [d for d in g.lhs_dims if d not in dims]
            loops = {n.var for n in walk(code) if isinstance(n, For)}
            if self.is_row_reduction(g, dims):
                loop = _innermost_loop(code)
                works.append(Work(g.stmt, "reduce", code, loop,
                                  self.domain_guard(g, dims, box), barrier))
                continue
            split = [f"c{free.index(d)}" for d in extra if d in g.par]
            split = [c for c in split if c in loops]
            if extra and all(d in g.par for d in extra) and split:
                works.append(Work(g.stmt, "split", code, split[-1], None, barrier))
            else:
                works.append(Work(g.stmt, "single", code, None, None, barrier))
        self.warn_sequential(group, dims, "within each CUDA block")
        return KernelPlan(self.kernel_name(index), "rows", group[0].outer,
                          self.grid_dims(group, dims), tuple(works))

    # -- contractions ----------------------------------------------------------------------------

    def contraction(self, info: Info, init: Info | None) -> Contraction | None:
        s = info.stmt
        if s.op == "=" or not info.red or len(info.lhs_dims) < 2:
            return None
        if set(info.par) != set(info.lhs_dims) or s.lhs.dtype.is_storage_only:
            return None
        names = [ix.name if isinstance(ix, ir.Var) else None for ix in s.lhs.indices]
        if None in names or len(set(names)) != len(names) or set(names) != set(info.lhs_dims):
            return None
        own = s.iterators[len(info.outer):]
        if own[:len(info.lhs_dims)] != info.lhs_dims:
            return None
        if any(ld.tensor == s.lhs.tensor for ld in ir.loads(s.rhs)):
            return None
        dom = cuda_isl.fix(s.domain, info.outer)
        points = cuda_isl.keep_only(dom, info.lhs_dims)
        red = cuda_isl.keep_only(dom, info.red)
        box = None
        for r in info.red:
            one = cuda_isl.keep_only(red, [r])
            box = one if box is None else box.flat_product(one)
        if not red.reset_tuple_id().is_equal(box.reset_tuple_id()) \
                or not dom.reset_tuple_id().is_equal(points.flat_product(red).reset_tuple_id()):
            return None
        pair = _choose_tiles(s, info)
        if pair is None:
            return None
        tile_i, tile_j = pair
        staged = _staged_loads(s, info, tile_i, tile_j)
        red_dims = [GridDim(r, *cuda_isl.bounds(self.kernel, red, k))
                    for k, r in enumerate(info.red)]
        lhs = list(info.lhs_dims)
        box = self.grid_box([info] + ([init] if init else []), lhs)
        guard_init = self.domain_guard(init, lhs, box) if init is not None else None
        spec = Contraction(init.stmt if init else None, s, tile_i, tile_j,
                           tuple(red_dims[:-1]), red_dims[-1], staged, guard_init,
                           self.domain_guard(info, lhs, box),
                           _is_dp4a(s, staged, info.red[-1]))
        return spec if shared_bytes(spec, self.tiles) <= SHARED_LIMIT else None

    def contraction_plan(self, index: int, group: list[Info], spec: Contraction) -> KernelPlan:
        info = group[-1]
        z = [d for d in info.lhs_dims if d not in (spec.tile_i, spec.tile_j)]
        dims = self.grid_dims(group, [*z, spec.tile_i, spec.tile_j])
        return KernelPlan(self.kernel_name(index), "contraction", info.outer, dims,
                          contraction=spec)

    # -- the host program ------------------------------------------------------------------------

    def warn_host_loops(self) -> None:
        seen = set()
        for info in self.items:
            for depth, var in enumerate(info.outer):
                if (info.path[:info.path.index(var)], var) in seen:
                    continue
                seen.add((info.path[:info.path.index(var)], var))
                inside = {i.stmt.name: i.stmt for i in self.items if var in i.outer}
                carried = any(d.source in inside and d.sink in inside
                              and self.carries_at(d, inside, depth) for d in self.deps)
                if carried:
                    self.warnings.append(
                        f"{self.kernel.name}: loop {var} carries a dependence; it runs on the "
                        "host, one sequence of kernel launches per iteration")

    def carries_at(self, d: Dependence, stmts: dict[str, Statement], depth: int) -> bool:
        """Whether the host loop at `depth` carries `d` inside the host loops around it (each
        statement's own dimensions by position: the loops of one nest)."""
        its = {name: stmts[name].iterators for name in (d.source, d.sink)}
        outer = iteration_map(self.kernel, {n: v[:depth] for n, v in its.items()})
        loop = iteration_map(self.kernel, {n: v[depth:depth + 1] for n, v in its.items()})
        return not carried(isl.UnionMap.from_map(d.relation), outer, loop).is_empty()

    def check_launch_order(self, groups: list[list[Info]]) -> None:
        """Launches at one point of the host loops run in the order of `groups`. Statements
        that share an implicit loop (`separate`'s pieces) interleave in program order: refuse,
        naming it, a dependence from a later launch to an earlier one in one host iteration."""
        launch = {info.stmt.name: k for k, group in enumerate(groups) for info in group}
        for d in self.deps:
            first, then = launch.get(d.source), launch.get(d.sink)
            if first is None or then is None or first <= then:
                continue
            outer = _common_prefix(groups[first][0].outer, groups[then][0].outer)
            pairs = within_one_iteration(self.kernel, d, outer).intersect_params(
                self.kernel.context)
            if pairs.is_empty():
                continue
            pair = isl_helpers.maps_of(pairs)[0].wrap()
            sizes, coords = isl_helpers.point_values(pair.sample_point(), pair)
            src, snk = (self.kernel.statement[n].iterators for n in (d.source, d.sink))
            source = instance_text(self.kernel, d.source, dict(zip(src, coords, strict=False)))
            sink = instance_text(self.kernel, d.sink,
                                 dict(zip(snk, coords[len(src):], strict=True)))
            shown = ", ".join(f"{k}={n}" for k, n in sizes.items())
            raise ScheduleError(
                f"CUDA's planner launches {d.sink} before {d.source} (they share a loop that it "
                f"does not run on the host), which breaks the {d.kind} dependence on {d.tensor}: "
                f"{source} must run before {sink} (sizes {shown}); bind their shared loops "
                f"(Schedule.bind) or leave the statements whole")

    def host_program(self, groups: list[list[Info]]) -> Node:
        """isl generates the host loops around the launches (each group a pseudo-statement);
        launches at one point of the host loops run in the order of `groups`."""
        width = max(len(g[0].path) for g in groups) or 1
        names = tuple(self.kernel.params)
        umap = None
        for k, group in enumerate(groups):
            outer = group[0].outer
            dom = None
            for g in group:
                one = cuda_isl.keep_only(g.stmt.domain, outer).set_tuple_name(f"G{k}")
                dom = one if dom is None else dom.union(one)
            dims = ", ".join(isl_helpers.isl_name(v) for v in outer)
            pos = [isl_helpers.isl_name(p) if isinstance(p, str) else str(p)
                   for p in group[0].path]
            pos += ["0"] * (width - len(pos)) + [str(k)]
            piece = isl.Map(f"{isl_helpers.param_prefix(names)}{{ G{k}[{dims}] -> "
                            f"[{', '.join(pos)}] }}").intersect_domain(dom.coalesce())
            piece = isl.UnionMap.from_map(piece)
            umap = piece if umap is None else umap.union(piece)
        build = isl.AstBuild.from_context(self.kernel.context)
        root = build.node_from_schedule_map(umap)
        # Group k is the pseudo-statement G<k>: a call of it is launch k.
        return AstTranslator(frozenset(self.kernel.params), lambda name, args: Launch(
            int(name[1:]), tuple(args))).node(root)


def _common_prefix(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(x for x, _ in itertools.takewhile(lambda p: p[0] == p[1],
                                                   zip(a, b, strict=False)))


def _innermost_loop(code: Node) -> str | None:
    loops = [n.var for n in walk(code) if isinstance(n, For)]
    return loops[-1] if loops else None


def _vars(e: ir.Expr) -> set[str]:
    return ir.variables(e)


def _staged_loads(s: Statement, info: Info, tile_i: str, tile_j: str) -> tuple[Staged, ...]:
    out: list[Staged] = []
    for ld in ir.loads(s.rhs):
        used = set().union(*(_vars(ix) for ix in ld.indices)) if ld.indices else set()
        tiles = used & {tile_i, tile_j}
        if len(tiles) == 1 and used & set(info.red) and all(st.load != ld for st in out):
            out.append(Staged(ld, tiles.pop()))
    return tuple(out)


def _choose_tiles(s: Statement, info: Info) -> tuple[str, str] | None:
    """The two output dimensions to tile: most operands reusable in shared memory, then the
    innermost ones (coalesced stores)."""
    best, best_key = None, None
    dims = info.lhs_dims
    for a in range(len(dims)):
        for b in range(a + 1, len(dims)):
            score = len(_staged_loads(s, info, dims[a], dims[b]))
            key = (score, b, a)
            if score and (best_key is None or key > best_key):
                best, best_key = (dims[a], dims[b]), key
    return best


def _is_dp4a(s: Statement, staged: tuple[Staged, ...], inner: str) -> bool:
    """`C[i, j] += i32(A[i, k]) * i32(B[k, j])` on int8: four products per __dp4a."""
    v = s.rhs
    if s.op != "+=" or v.dtype != I32 or not isinstance(v, ir.Binary) or v.op != "*":
        return False
    operands = [v.left, v.right]
    if not all(isinstance(o, ir.Cast) and isinstance(o.operand, ir.Load)
               and o.operand.dtype == I8 for o in operands):
        return False
    loads = [o.operand for o in operands]
    along = {st.load: st.along for st in staged}
    return all(ld in along and inner in _vars_of_load(ld) for ld in loads) \
        and len({along[ld] for ld in loads}) == 2 and len(staged) == 2


def _vars_of_load(ld: ir.Load) -> set[str]:
    return set().union(*(_vars(ix) for ix in ld.indices))


def lower(kernel: KernelIR, tiles: Tiles) -> Program:
    """The CUDA kernels and host launches of a kernel."""
    return Lowering(kernel, tiles).lower()
