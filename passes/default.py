"""The default CPU schedule: what `compile()` uses when no schedule is given.

Each decision is tried on the kernel and kept only if `Schedule.apply` accepts it (so the
result is legal by construction), in this order:

1. fusion: consecutive top-level statements are fused over their outer loop when that makes a
   temporary local (softmax, layernorm: no full-size intermediate), except contractions
   (attention's Q @ K^T and P @ V run as matmuls; its softmax rows are fused between them);
2. contractions `C[.., i, j] += A[.., i, k] * B[.., k, j]`: a BLIS-like nest — B packed per
   (256-column, 256-deep) panel, an 8x32 (AVX-512) or 6x16 accumulator tile in vector registers
   over k; in the other statements, the loop that walks the most accesses with stride 1 goes
   innermost where that is legal;
3. the outermost loop of each nest is parallel (OpenMP) if it carries no dependence;
4. the innermost loop of each remaining statement is vectorized if it carries none.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import islpy as isl

from loopweave.errors import ScheduleError
from loopweave.ir import expr as ir
from loopweave.ir import isl_helpers
from loopweave.ir.affine import coefficient
from loopweave.ir.dependences import Dependences
from loopweave.ir.kernel import KernelIR, Statement
from loopweave.passes import placement as pl
from loopweave.passes.graph import consumed_temporaries, dataflow_graph
from loopweave.passes.legality import carried_by, reduction_chains
from loopweave.passes.schedule import Schedule

#: The micro-kernel: MR rows x NR columns of C in registers; KC deep, NC wide packed B panels.
MR, NR, KC, NC = 6, 16, 256, 256
#: The convolution micro-kernel: CONV_ROWS output channels x CONV_COLS output columns; for a
#: depthwise convolution DEPTHWISE_ROWS output rows x DEPTHWISE_COLS columns.
CONV_ROWS, CONV_COLS = 8, 8
DEPTHWISE_ROWS, DEPTHWISE_COLS = 4, 32
#: Fusion tries one `apply` per statement; beyond this many statements it is not attempted.
MAX_FUSION_STATEMENTS = 48


def default_schedule(kernel: KernelIR, vector_bytes: Callable[[], int] | None = None
                     ) -> Schedule:
    """A legal schedule for `kernel` chosen by the heuristics above. `vector_bytes()` (asked
    only for a contraction) is the target's SIMD width: 64 (AVX-512) gets 8x32 register tiles,
    narrower ones 6x16."""
    schedule = Schedule()
    if len(kernel.statements) <= MAX_FUSION_STATEMENTS:
        _fuse_for_locality(kernel, schedule)
    placements = schedule.placements(kernel)
    for s in kernel.statements:
        if _isolate_contraction(kernel, schedule, s, placements):
            placements = schedule.placements(kernel)
    tiled = set()
    for s in kernel.statements:
        if _group_size(placements, s) == 1:
            steps = contraction_steps(s, placements[s.name].names())
            if steps:  # the SIMD width is asked only now (it may run the compiler)
                steps = contraction_steps(s, placements[s.name].names(),
                                          *_register_tile(vector_bytes))
            else:
                steps = convolution_steps(s, placements[s.name].names())
            if steps and _try(kernel, schedule, steps):
                tiled.add(s.name)
    if len(kernel.statements) <= MAX_FUSION_STATEMENTS:
        for s in kernel.statements:
            if s.name not in tiled:
                _stride_one_innermost(kernel, schedule, s)
    placements = schedule.placements(kernel)
    candidates = []
    seen_groups = set()
    for s in kernel.statements:
        names = placements[s.name].names()
        group = placements[s.name].order[:1]
        if names and group not in seen_groups:
            seen_groups.add(group)
            candidates.append(("parallel", s.name, 0))
        if names and s.name not in tiled and len(names) > 1:
            candidates.append(("vectorize", s.name, len(names) - 1))
    free, vectors = _loops_carrying_nothing(kernel, placements,
                                            {(n, d) for _, n, d in candidates})
    for op, name, depth in candidates:
        if (name, depth) in free or (op == "vectorize" and (name, depth) in vectors):
            getattr(schedule, op)(name, placements[name].names()[depth])
    schedule.apply(kernel)  # legal by construction; a ScheduleError here is a bug
    return schedule


def _isolate_contraction(kernel: KernelIR, schedule: Schedule, s: Statement,
                         placements) -> bool:
    """A contraction written inside a loop with other statements (PolyBench's gemm: `C *= beta`
    and `C += alpha * A @ B` in one `for i`) gets a loop nest of its own by fission, where
    legal, so that the micro-kernel can take it. Returns whether the schedule changed."""
    names = placements[s.name].names()
    if _group_size(placements, s) == 1 or contraction_steps(s, names) is None:
        return False
    if not _try(kernel, schedule, [("distribute", s.name, names[0])]):
        return False
    placements = schedule.placements(kernel)
    later = sorted((p.order, n) for n, p in placements.items() if n != s.name
                   and p.order[:1] == placements[s.name].order[:1])
    if later and not _try(kernel, schedule, [("distribute", later[0][1],
                                              placements[later[0][1]].names()[0])]):
        schedule.steps.pop()  # the contraction would still share its loop
        return False
    return True


def _register_tile(vector_bytes: Callable[[], int] | None) -> tuple[int, int]:
    # f64 too: 8 x 32 f64 (32 zmm accumulators) measured faster than 8 x 16 (49 vs 46 GFLOP/s)
    return (8, 32) if vector_bytes is not None and vector_bytes() >= 64 else (MR, NR)


def _loops_carrying_nothing(kernel: KernelIR, placements, wanted: set[tuple[str, int]]):
    """Which (statement, loop depth) of `wanted` carry no dependence, and which carry only
    reduction chains (may be vector loops): one tree, one check per band (trying each mark
    with a full `apply` is quadratic in the number of statements)."""
    tree = pl.build_tree(kernel, placements)
    deps = Dependences.of(kernel).union()
    free, vectors = set(), set()

    def visit(node):
        if node.get_type() == isl.schedule_node_type.band:
            depth = node.get_schedule_depth()
            names = [m.get_tuple_name()
                     for m in isl_helpers.sets_of(node.get_domain())]
            hits = [n for n in names if (n, depth) in wanted]
            carried = carried_by(node, deps).intersect_params(kernel.context) if hits else None
            if hits and carried.is_empty():
                free.update((n, depth) for n in hits)
            elif hits:  # a vector loop may still carry a reduction chain
                rest = carried.subtract(reduction_chains(kernel, placements, depth))
                vectors.update((n, depth) for n in hits if rest.is_empty())
        for i in range(node.n_children()):
            visit(node.child(i))

    visit(tree.get_root())
    return free, vectors


def _stride_one_innermost(kernel: KernelIR, schedule: Schedule, s: Statement) -> None:
    """Move innermost the statement's loop that walks the most accesses with stride 1 and the
    fewest with a larger stride (`O[i, v] += p[j] * V[j, v]` runs j then v; a row reduction
    keeps its row loop inside), if that is legal."""
    placements = schedule.placements(kernel)
    mine = placements[s.name]
    shared = max((_shared_depth(mine, p) for n, p in placements.items() if n != s.name),
                 default=0)
    own = mine.names()[shared:]
    if len(own) < 2:
        return
    exprs = {lp.name: lp.expr for lp in mine.loops}
    plain = {n for n in own if isinstance(exprs[n], ir.Var)}

    def score(name: str) -> tuple[int, bool]:
        """(accesses walked with stride 1 - accesses walked with a larger stride, the store is
        one of the first): a loop that makes no access strided wins."""
        var = exprs[name].name
        walks = {id(a): _walk(a, var) for a in (s.lhs, *ir.loads(s.rhs))}
        unit = sum(w == "unit" for w in walks.values())
        strided = sum(w == "strided" for w in walks.values())
        return (unit - strided, walks[id(s.lhs)] == "unit")

    best = max(sorted(plain), key=score, default=None)
    if best is None or best == own[-1] or score(best) <= score(own[-1]):
        return
    _try(kernel, schedule, [("reorder", s.name, *[n for n in own if n != best], best)])


def _walk(access: ir.Load, var: str) -> str:
    """How a loop over `var` walks `access`: "invariant", "unit" (stride 1) or "strided"."""
    if not any(var in ir.variables(x) for x in access.indices):
        return "invariant"
    last = access.indices[-1]
    if coefficient(last, var) == 1 and not any(var in ir.variables(x)
                                               for x in access.indices[:-1]):
        return "unit"
    return "strided"


def _shared_depth(a, b) -> int:
    depth = 0
    while depth < min(len(a.loops), len(b.loops)) and a.order[depth] == b.order[depth]:
        depth += 1
    return depth


def _try(kernel: KernelIR, schedule: Schedule, steps: list[tuple]) -> bool:
    """Append `steps` if the schedule stays legal; otherwise leave it unchanged."""
    saved = list(schedule.steps)
    try:
        for op, *args in steps:
            kwargs = args.pop() if args and isinstance(args[-1], dict) else {}
            getattr(schedule, op)(*args, **kwargs)
        schedule.apply(kernel)
        return True
    except ScheduleError:
        schedule.steps = saved
        return False


def _group_size(placements, s: Statement) -> int:
    return sum(1 for p in placements.values() if p.order[:1] == placements[s.name].order[:1])


def _fuse_for_locality(kernel: KernelIR, schedule: Schedule) -> None:
    """Greedily grow runs of consecutive statements fused at depth 1 while each step makes
    more temporaries local. A reduction's initialisation moves with it."""
    placements = schedule.placements(kernel)
    units: list[list[str]] = []
    pending: list[str] = []
    for s in kernel.statements:
        pending.append(s.name)
        if not s.is_init:
            units.append(pending)
            pending = []
    graph = dataflow_graph(kernel)
    run: list[str] = []
    best_locals = 0
    for unit in units:
        # A contraction stays on its own: its micro-kernel (compute-bound, near peak) is worth
        # more than the temporaries fusion would keep local (attention's Q @ K^T and P @ V).
        main = kernel.statement[unit[-1]]
        if any(not placements[n].loops for n in unit) or contraction_steps(
                main, placements[main.name].names()) is not None:
            run, best_locals = [], 0
            continue
        if not run:
            run = list(unit)
            continue
        trial = Schedule(list(schedule.steps))
        trial.fuse(*run, *unit, depth=1)
        try:
            locals_after = len(trial.apply(kernel).locals)
        except ScheduleError:
            locals_after = -1
        if locals_after > best_locals or (locals_after >= best_locals > -1 and
                                          consumed_temporaries(graph, run, unit)):
            schedule.steps = trial.steps
            best_locals = locals_after
            run += unit
        else:
            run, best_locals = list(unit), 0


def contraction_steps(s: Statement, loops: list[str], mr: int = MR, nr: int = NR,
                      kc: int = KC, nc: int = NC) -> list[tuple] | None:
    """The micro-kernel steps for `s` if it is `C[.., i, j] += A[.., i, k] * B[.., k, j]`
    (A and B may be transposed: A[.., k, i], B[.., j, k]; times factors that use none of i, j,
    k, like gemm's alpha) with its loops ending in i, j, k (any order), else None."""
    ij = _last_two(s.lhs)
    if s.op != "+=" or ij is None:
        return None
    factors = _factors(s.rhs)
    for a, b in itertools.permutations(factors, 2):
        ik, kj = _last_two(a), _last_two(b)
        if None in (ik, kj):
            continue
        (i, j), k = ij, (set(kj) - {ij[1]} or {""}).pop()
        others = [f for f in factors if f is not a and f is not b]
        if set(ik) == {i, k} and kj in ((k, j), (j, k)) and len({i, j, k}) == 3 \
                and sorted(loops[-3:]) == sorted([i, j, k]) \
                and not any(ir.variables(f) & {i, j, k} for f in others):
            order = [*loops[:-3], f"{j}_o_o", f"{k}_o", f"{i}_o", f"{j}_o", k, i, j]
            # B[.., j, k] (A @ B^T, attention's Q @ K^T) is packed transposed: rows along k.
            n = len(b.indices)
            layout = () if kj == (k, j) else ({"layout": (*range(n - 2), n - 1, n - 2)},)
            return [("tile", s.name, {i: mr, j: nr, k: kc}),
                    ("tile", s.name, {f"{j}_o": max(1, nc // nr)}),
                    ("reorder", s.name, *order),
                    ("cache_read", s.name, b.tensor, f"{i}_o", *layout),
                    ("cache_write", s.name, k)]
    return None


def convolution_steps(s: Statement, loops: list[str], rows: int | None = None,
                      cols: int | None = None) -> list[tuple] | None:
    """The micro-kernel steps for a convolution-like `Y[.., k, .., x] += X[.., x + s] *
    F[.., k, ..]` (x indexes the last dimension of Y and, with stride 1, of X; k indexes F but
    not X): a rows x cols tile of Y over (k, x) in vector registers while all of the reduction
    runs, its loops reassociated so that the plain ones (conv2d's channels c) go innermost
    (the spatial ones, r and s, stay outside). Without such a k (depthwise: `Y[c, y, x] +=
    X[c, y + r, x + s] * F[c, r, s]`) the tile's rows are output rows y. None if `s` is not
    of that shape."""
    if s.op != "+=" or not s.lhs.indices or not isinstance(s.lhs.indices[-1], ir.Var):
        return None
    x = s.lhs.indices[-1].name
    outputs = [ix.name for ix in s.lhs.indices if isinstance(ix, ir.Var)]
    factors = _factors(s.rhs)
    loads = [f for f in factors if isinstance(f, ir.Load)]
    for data, weights in itertools.permutations(loads, 2):
        if _walk(data, x) != "unit" or _walk(weights, x) != "invariant":
            continue
        reductions = [v for v in loops if v not in outputs]
        spatial = [v for v in reductions if any(
            v in ir.variables(ix) and len(ir.variables(ix)) > 1 for ix in data.indices)]
        kernels = [k for k in outputs if k != x and _walk(data, k) == "invariant"
                   and _walk(weights, k) != "invariant"]
        shape = (rows or CONV_ROWS, cols or CONV_COLS)
        if not kernels:  # depthwise: rows of the output that slide over rows of the input
            kernels = [y for y in outputs if y != x and _walk(weights, y) == "invariant"
                       and any(y in ir.variables(ix) and ir.variables(ix) & set(spatial)
                               for ix in data.indices)]
            shape = (rows or DEPTHWISE_ROWS, cols or DEPTHWISE_COLS)
        others = [f for f in factors if f is not data and f is not weights]
        if any(ir.variables(f) & set(outputs) for f in others):
            continue  # a factor computed per output element (int4 dequantization) stays
        if not kernels or not reductions or sorted(loops) != sorted({*outputs, *reductions}):
            continue
        k = kernels[-1]
        order = [f"{v}_o" if v in (k, x) else v for v in loops if v in outputs]
        order += spatial + [v for v in reductions if v not in spatial] + [k, x]
        return [("reassociate", s.name),
                ("tile", s.name, {k: shape[0], x: shape[1]}),
                ("reorder", s.name, *order),
                ("cache_write", s.name, order[len(outputs)])]
    return None


def _factors(e: ir.Expr) -> list[ir.Expr]:
    if isinstance(e, ir.Binary) and e.op == "*":
        return _factors(e.left) + _factors(e.right)
    return [e]


def _last_two(e: ir.Expr) -> tuple[str, str] | None:
    """The variables indexing the last two dimensions of a load, if both are plain variables."""
    if not isinstance(e, ir.Load) or len(e.indices) < 2:
        return None
    x, y = e.indices[-2:]
    if isinstance(x, ir.Var) and isinstance(y, ir.Var):
        return x.name, y.name
    return None
