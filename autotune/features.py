"""Features of a scheduled kernel for the cost model, read off its loop AST at given sizes.

Per `Store` of the loop AST (with the loops, guards and local buffers around it):
    work: log2 of its instances; loops: how many; ops per instance; element bytes
    innermost loop: extent, the share of accesses with stride 0, stride 1 and larger strides
    vector/parallel/unroll: the extent of the marked loop (0 if none), stride-1 share under it
    per loop level, from the innermost outwards (LEVELS of them): the bytes the accesses inside
        that loop touch (all arrays, and the largest single array), the cache level they fit in,
        reuse (iterations per element touched) and arithmetic intensity (ops per byte)
    fused: how many stores share its outermost loop; guards: `if`s around it; local_bytes: log2
        of the local buffers (packed copies, register tiles) in scope
    serial_run: for a floating-point reduction, log2 of the updates its innermost loops make to
        one accumulator in a row (a chain of dependent adds gcc must keep in order; 0 when the
        innermost loop moves the accumulator or is vector-marked); for another floating-point
        store, log2 of the chain its innermost loop makes where each iteration reads what an
        earlier one (k before) stored (a recurrence: extent / k)
A store's instances are the product of its loops' extents, each loop taken at the middle
iteration of the loops around it (a full tile, and the mean extent of a triangular loop), times
the share of those iterations its guards let through (`_Branch`; a guard inside another only
at the iterations that one lets through): the full-tile and edge
variants of a statement split its instances instead of each counting all of them. A store's
weight is its real share of the work: instances x operations (a copy or an initialisation
counts one operation per element). A kernel's vector is
    mean_*: the weighted mean over its stores,
    top_*: the weighted mean over the stores of its heaviest statement (the statement of the
        source, or a copy, with the largest summed weight; all its variants),
    statements (distinct), stores, top_share (the heaviest statement's share of the weight),
    total_work (log2 of the summed weight),
    nests (outermost loops, and stores outside any), traffic (log2 of the bytes the kernel
        moves: per nest, each array's footprint over the whole nest, summed over arrays and
        nests; local buffers left out: so an array read by three unfused nests counts three
        times, by one fused nest once), intensity (log2 of the weight per byte of traffic).
So an initialisation or epilogue (`C = 0` before a contraction) weighs what it costs: one
operation per element against the contraction's two per iteration. Bounds and guards that
cannot be evaluated count as 1 (a guard as half its iterations).
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import islpy as isl

from loopweave.autotune.space import loop_extents
from loopweave.ir import expr as ir
from loopweave.ir.kernel import KernelIR
from loopweave.ir.loops import Block, For, If, Node, Scope, Store

FEATURE_VERSION = 5
LEVELS = 6
_STMT_NAMES = (
    ["work", "loops", "ops", "elem_bytes", "inner_extent", "inner_stride0", "inner_stride1",
     "inner_strided", "vector_extent", "vector_stride1", "parallel_extent", "unroll_extent",
     "fused", "guards", "local_bytes", "serial_run"]
    + [f"L{lv}_{what}" for lv in range(LEVELS)
       for what in ("bytes", "max_array_bytes", "cache_level", "reuse", "intensity")])
KERNEL_NAMES = ["statements", "stores", "top_share", "total_work", "nests", "traffic",
                "intensity"]
FEATURE_NAMES = ([f"mean_{n}" for n in _STMT_NAMES] + [f"top_{n}" for n in _STMT_NAMES]
                 + KERNEL_NAMES)


@functools.cache
def cache_sizes() -> tuple[int, ...]:
    """Data cache sizes in bytes, L1 first (from sysfs; typical values where it is absent)."""
    sizes = {}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            if (index / "type").read_text().strip() == "Instruction":
                continue
            level = int((index / "level").read_text())
            text = (index / "size").read_text().strip()
        except (OSError, ValueError):
            continue
        scale = {"K": 1024, "M": 1024 ** 2}.get(text[-1:], 1)
        sizes[level] = int(text.rstrip("KM")) * scale
    return tuple(sizes[k] for k in sorted(sizes)) or (32 * 1024, 1024 ** 2, 32 * 1024 ** 2)


@dataclass(frozen=True, slots=True)
class _Loop:
    var: str
    first: int
    extent: int
    step: int
    kind: str

    def value(self, i: int) -> int:
        """The loop variable at iteration `i`."""
        return self.first + i * self.step


@dataclass(frozen=True, slots=True)
class _Branch:
    """How often a guard holds: `share` of the iterations of the loops around it (each loop
    varied alone, the others at their middle iteration, the shares multiplied: exact for a
    conjunction of tile-edge tests), and an environment in which it holds, for the bounds of
    the loops inside it (an edge tile's loops run the edge's extents)."""

    share: float
    env: dict


def _log2(x: float) -> float:
    return math.log2(x + 1.0)


def _bound(loop: For, env: dict[str, int]) -> tuple[int, int]:
    """(first value, extent) of a loop, the loops around it at the values in `env`."""
    try:
        lo = ir.evaluate(loop.init, env)
        cond = loop.cond
        if isinstance(cond, ir.Binary) and cond.op in ("<", "<="):
            hi = ir.evaluate(cond.right, env) - (1 if cond.op == "<" else 0)
            return lo, max(0, (hi - lo) // max(loop.step, 1) + 1)
        return lo, 1
    except (ValueError, KeyError, ZeroDivisionError):
        return 0, 1


def _holds(cond: ir.Expr, env: dict[str, int]) -> bool | None:
    try:
        return bool(ir.evaluate(cond, env))
    except (ValueError, KeyError, ZeroDivisionError):
        return None


def _true_share(truth: list[tuple[int, bool]], n: int) -> float:
    """The share of a loop's `n` iterations where a condition holds, from its truth at a few
    iterations: when the iterations inside agree, only the first or last differ (a tile edge)."""
    inside = [t for i, t in truth if 0 < i < n - 1]
    if inside and all(t == inside[0] for t in inside):
        edges = sum(t != inside[0] for i, t in truth if i in (0, n - 1))
        return (n - edges) / n if inside[0] else edges / n
    return sum(t for _, t in truth) / len(truth)


def branches(cond: ir.Expr, loops: list[_Loop], env: dict[str, int],
             given: tuple[tuple[ir.Expr, bool], ...] = ()) -> tuple[_Branch, _Branch]:
    """The then and else `_Branch` of a guard inside `loops` (env: their middle iterations)
    and inside the guards `given` ((condition, the branch taken) of each `if` around it): its
    share counts only the iterations those let through (an edge tile's strips of 32, 16, 8
    ... columns, each under the test for the last tile, hold only there)."""
    base = _holds(cond, env)
    if base is None:
        return _Branch(0.5, env), _Branch(0.5, env)
    shares, holds, fails = [], [], []  # holds, fails: (share, var, a value where it does)
    for lp in loops:
        n = lp.extent
        if n <= 1:
            continue
        samples = [(i, {**env, lp.var: lp.value(i)})
                   for i in sorted({0, 1, (n - 1) // 2, n - 2, n - 1})]
        through = [(i, at) for i, at in samples
                   if all(_holds(c, at) in (taken, None) for c, taken in given)]
        truth = [(i, _holds(cond, at)) for i, at in through]
        if not truth or any(t is None for _, t in truth) or all(t == base for _, t in truth):
            continue
        share = _true_share(truth, n) if len(through) == len(samples) else \
            sum(t for _, t in truth) / len(truth)
        shares.append(share)
        # An inside iteration where it holds (fails) first: the typical one.
        order = sorted(truth, key=lambda it: it[0] in (0, n - 1))
        where_true = next((lp.value(i) for i, t in order if t), None)
        where_false = next((lp.value(i) for i, t in order if not t), None)
        if where_true is not None:
            holds.append((share, lp.var, where_true))
        if where_false is not None:
            fails.append((share, lp.var, where_false))
    share = math.prod(shares) if shares else float(base)
    then_env, else_env = env, env
    if holds and not base:  # the loop where it holds most often, moved there
        _, var, value = max(holds)
        then_env = {**env, var: value}
    if fails and base:
        _, var, value = min(fails)
        else_env = {**env, var: value}
    return _Branch(share, then_env), _Branch(1.0 - share, else_env)


def _ops(e: ir.Expr) -> int:
    """Arithmetic operations on the values of `e`; the index arithmetic of its loads is address
    computation (a tiled or shifted access is no more work), so it does not count."""
    if isinstance(e, ir.Load):
        return 0
    own = 1 if isinstance(e, ir.Binary | ir.Call | ir.Unary) else 0
    return own + sum(_ops(c) for c in ir.children(e))


@dataclass(frozen=True, slots=True)
class _Where:
    """What surrounds a store: loops (outer to inner), the values of their variables (middle
    iterations), guards, the share of the iterations the guards let through, local bytes."""

    loops: tuple[_Loop, ...] = ()
    env: tuple = ()
    guards: int = 0
    reach: float = 1.0
    local_bytes: int = 0
    given: tuple[tuple[ir.Expr, bool], ...] = ()  # the guards around it, each with its branch


class _Extractor:
    def __init__(self, kernel: KernelIR, sizes: dict[str, int]):
        self.kernel = kernel
        self.env = {k: int(v) for k, v in sizes.items()}
        self.shapes: dict[str, list[int]] = {}
        self.elem: dict[str, int] = {}
        self.floats: set[str] = set()  # tensors and buffers of a floating-point type
        for name, t in kernel.tensors.items():
            self.shapes[name] = self.evaluate_shape(t.shape)
            self.elem[name] = max(t.dtype.bits // 8, 1)
            if t.dtype.is_float:
                self.floats.add(name)
        self.caches = cache_sizes()
        self.rows: list[list[float]] = []
        self.weights: list[float] = []  # instances x operations, per row
        self.stmts: list[str] = []
        self.nest = 0  # the outermost loop (or loop-less store) being walked
        self.nest_bytes: dict[int, dict[str, int]] = defaultdict(dict)  # per nest, per array
        self.locals: set[str] = set()  # local buffers: in cache, not traffic

    def evaluate_shape(self, shape) -> list[int]:
        try:
            return [ir.evaluate(d, self.env) for d in shape]
        except (ValueError, KeyError):
            return [1 for _ in shape]

    def walk(self, node: Node, where: _Where, top: list) -> None:
        env = dict(where.env)
        match node:
            case For():
                lo, extent = _bound(node, env)
                loop = _Loop(node.var, lo, extent, max(node.step, 1), node.kind)
                # The middle iteration: a full tile, and a triangular loop's mean extent.
                inside = {**env, node.var: loop.value(max(extent - 1, 0) // 2)}
                if not where.loops:
                    top = [0]  # stores under this outermost loop
                    self.nest += 1
                self.walk(node.body, _Where((*where.loops, loop), tuple(inside.items()),
                                            where.guards, where.reach, where.local_bytes,
                                            where.given), top)
                if not where.loops:
                    for row in self.rows[len(self.rows) - top[0]:]:
                        row[_STMT_NAMES.index("fused")] = top[0]
            case If(cond=cond, then=t, orelse=e):
                then, other = branches(cond, list(where.loops), env, where.given)
                for body, branch, taken in ((t, then, True), (e, other, False)):
                    if body is not None:
                        self.walk(body, _Where(where.loops, tuple(branch.env.items()),
                                               where.guards + 1, where.reach * branch.share,
                                               where.local_bytes,
                                               (*where.given, (cond, taken))), top)
            case Block(body=body):
                for b in body:
                    self.walk(b, where, top)
            case Scope(buffers=buffers, body=body):
                local = 0
                for b in buffers:
                    self.locals.add(b.name)
                    self.shapes[b.name] = self.evaluate_shape(b.shape)
                    self.elem[b.name] = max(b.dtype.bits // 8, 1)
                    if b.dtype.is_float:
                        self.floats.add(b.name)
                    local += math.prod(self.shapes[b.name]) * self.elem[b.name]
                self.walk(body, _Where(where.loops, where.env, where.guards, where.reach,
                                       where.local_bytes + local, where.given), top)
            case Store():
                if not where.loops:
                    self.nest += 1
                self.rows.append(self.statement(node, where, env))
                self.stmts.append(node.stmt)
                top[0] += 1

    def address(self, access: ir.Load | Store, env: dict[str, int]) -> int | None:
        """The element the access touches at `env`, row-major over its tensor's shape; None
        where an index cannot be evaluated."""
        try:
            idx = [ir.evaluate(x, env) for x in access.indices]
        except (ValueError, KeyError):
            return None
        flat = 0
        for i, n in zip(idx, self.shapes.get(access.tensor, []), strict=False):
            flat = flat * max(n, 1) + i
        return flat

    def coefficient(self, access: ir.Load | Store, var: str, env: dict[str, int]) -> int:
        """How far the access moves in memory (elements) when `var` grows by one."""
        here = self.address(access, env)
        there = self.address(access, {**env, var: env.get(var, 0) + 1})
        return 0 if here is None or there is None else there - here

    def footprint(self, access, loops, env) -> int:
        """Elements an access touches while `loops` run (a box estimate per dimension)."""
        shape = self.shapes.get(access.tensor, [])
        elements = 1
        for d, index in enumerate(access.indices):
            span = 1
            for lp in loops:
                try:
                    step = abs(ir.evaluate(index, {**env, lp.var: env.get(lp.var, 0) + 1})
                               - ir.evaluate(index, env))
                except (ValueError, KeyError):
                    step = 0
                span += step * max(lp.extent - 1, 0)
            elements *= min(span, shape[d]) if d < len(shape) and shape[d] > 0 else span
        return max(elements, 1)

    def serial_run(self, store: Store, loops, env) -> float:
        """log2 of how many consecutive updates of one accumulator a floating-point reduction
        makes before its innermost loops move on to another: gcc keeps such a chain in order
        (no -ffast-math), so a long run waits on the add's latency at every step, where short
        runs of independent accumulators (rows tiled inside the reduction) overlap. A loop
        marked vector ends the run: the renderer gives it several vector accumulators.
        A statement that is not a reduction has a run where its innermost loop is a
        recurrence (`_recurrence`)."""
        if store.tensor not in self.floats:
            return 0.0
        if not store.reduce:
            return self._recurrence(store, loops, env)
        run = 1
        for lp in reversed(loops):
            if lp.kind == "vector" or self.coefficient(store, lp.var, env) != 0:
                break
            run *= max(lp.extent, 1)
        return math.log2(run)

    def _recurrence(self, store: Store, loops, env) -> float:
        """log2 of the dependent chain along the innermost loop where each iteration reads what
        the one k iterations before wrote (seidel's `A[i, j - 1]` with j innermost: a chain as
        long as the loop, each step waiting on the last one's arithmetic): the loop's extent
        over k, the shortest such distance; 0 where no load of the stored tensor moves with
        the store in every loop at such a distance (a wavefront's strip reads rows that are
        done)."""
        if not loops or loops[-1].kind == "vector":
            return 0.0
        inner = loops[-1]
        moves = [self.coefficient(store, lp.var, env) for lp in loops]
        step = moves[-1] * inner.step
        written = self.address(store, env)
        if step == 0 or written is None:
            return 0.0
        distances = []
        for load in ir.loads(store.value):
            read = self.address(load, env) if load.tensor == store.tensor else None
            if read is None or [self.coefficient(load, lp.var, env) for lp in loops] != moves:
                continue
            behind, rest = divmod(written - read, step)
            if rest == 0 and 0 < behind < inner.extent:
                distances.append(behind)
        return math.log2(inner.extent / min(distances)) if distances else 0.0

    def statement(self, store: Store, where: _Where, env) -> list[float]:
        loops = where.loops
        accesses = [store, *ir.loads(store.value)]  # a reduction reads what it stores
        elem = self.elem.get(store.tensor, 4)
        ops = _ops(store.value) + (1 if store.reduce else 0) or 1
        instances = (math.prod(lp.extent for lp in loops) if loops else 1) * where.reach
        self.weights.append(instances * ops)

        def strides(var):
            return [abs(self.coefficient(a, var, env)) for a in accesses]

        moved = self.nest_bytes[self.nest]
        for a in accesses:
            if a.tensor not in self.locals:
                f = self.footprint(a, loops, env) * self.elem.get(a.tensor, elem)
                moved[a.tensor] = max(moved.get(a.tensor, 0), f)

        inner = strides(loops[-1].var) if loops else [0]
        row = [_log2(instances), len(loops), ops, elem,
               _log2(loops[-1].extent) if loops else 0,
               sum(s == 0 for s in inner) / len(inner), sum(s == 1 for s in inner) / len(inner),
               sum(s > 1 for s in inner) / len(inner)]
        marked = {k: next((lp for lp in loops if lp.kind == k), None)
                  for k in ("vector", "parallel", "unroll")}
        vec = marked["vector"]
        row += [_log2(vec.extent) if vec else 0,
                (sum(s == 1 for s in strides(vec.var)) / len(accesses)) if vec else 0,
                _log2(marked["parallel"].extent) if marked["parallel"] else 0,
                _log2(marked["unroll"].extent) if marked["unroll"] else 0,
                1, where.guards, _log2(where.local_bytes), self.serial_run(store, loops, env)]
        for level in range(LEVELS):
            inside = loops[max(len(loops) - 1 - level, 0):] if loops else ()
            per_array: dict[str, int] = {}
            for a in accesses:
                f = self.footprint(a, inside, env) * self.elem.get(a.tensor, elem)
                per_array[a.tensor] = max(per_array.get(a.tensor, 0), f)
            total = sum(per_array.values())
            iterations = math.prod(lp.extent for lp in inside) if inside else 1
            fits = next((i for i, c in enumerate(self.caches) if total <= c), len(self.caches))
            row += [_log2(total), _log2(max(per_array.values(), default=0)), fits,
                    _log2(iterations * len(accesses) * elem / max(total, 1)),
                    _log2(iterations * ops / max(total, 1))]
        return row


def features(kernel: KernelIR, loops: Node, sizes: dict[str, int]) -> list[float]:
    """The feature vector of a scheduled kernel (its loop AST) at `sizes` (FEATURE_NAMES)."""
    ex = _Extractor(kernel, sizes)
    ex.walk(loops, _Where(env=tuple(ex.env.items())), [0])
    if not ex.rows:
        return [0.0] * len(FEATURE_NAMES)
    per_stmt: dict[str, float] = defaultdict(float)
    for name, w in zip(ex.stmts, ex.weights, strict=True):
        per_stmt[name] += w
    total = sum(ex.weights)
    heaviest = max(per_stmt, key=lambda name: (per_stmt[name], name))

    def mean(rows: list[int]) -> list[float]:
        weight = sum(ex.weights[i] for i in rows)
        if weight <= 0:  # every store guarded away or of zero extent: count them alike
            return [sum(ex.rows[i][k] for i in rows) / len(rows) for k in range(len(_STMT_NAMES))]
        return [sum(ex.weights[i] * ex.rows[i][k] for i in rows) / weight
                for k in range(len(_STMT_NAMES))]

    everything = list(range(len(ex.rows)))
    top = [i for i in everything if ex.stmts[i] == heaviest]
    traffic = sum(sum(arrays.values()) for arrays in ex.nest_bytes.values())
    kernel_row = [len(per_stmt), len(ex.rows), per_stmt[heaviest] / total if total else 1.0,
                  _log2(total), ex.nest, _log2(traffic), _log2(total / max(traffic, 1))]
    return [float(x) for x in (*mean(everything), *mean(top), *kernel_row)]


def flop_count(kernel: KernelIR, sizes: dict[str, int]) -> float:
    """Arithmetic operations of one call at `sizes`: per statement, its instances (counted by
    isl for small domains, the bounding box for large ones) times the operations per instance."""
    extents = loop_extents(kernel, sizes)
    total = 0.0
    for s in kernel.statements:
        box = math.prod(extents[s.name].values()) if extents[s.name] else 1
        points = box
        if box <= 200_000:
            dom = s.domain
            for name, value in sizes.items():
                pos = dom.find_dim_by_name(isl.dim_type.param, name)
                if pos >= 0:
                    dom = dom.fix_val(isl.dim_type.param, pos, isl.Val(int(value)))
            try:
                points = dom.count_val().to_python()
            except (isl.Error, TypeError, ValueError):
                points = box
        total += points * (_ops(s.rhs) + (1 if s.op != "=" else 0))
    return float(total)
