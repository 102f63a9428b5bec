"""Schedules from isl's own scheduler (the Pluto-style algorithm built into isl), a candidate
next to the pattern defaults of passes/default.py.

    kernel = loopweave.compile(src, schedule=isl_schedule)                  # tiles of 32
    kernel = loopweave.compile(src, schedule=functools.partial(isl_schedule, tile=None))

`isl_schedule(kernel_ir)` hands the kernel's dependences (ir/dependences.py) to
`isl.ScheduleConstraints`: validity = every dependence (flow, anti, output), proximity = every
dependence (isl keeps their distances small: locality), coincidence = every dependence (a band
member that isl marks coincident carries none, so it may run in parallel). Then, on isl's tree:

1. in the innermost permutable band of a nest, a member that carries no dependence and walks
   the statements' stores with stride 1 moves innermost (legal: the band is permutable), so
   that it can become the vector loop;
2. with `tile`, each permutable band of two or more members is tiled (`band_tile`; the
   innermost member, the vector loop, by INNER_TILE_FACTOR * tile); a tile
   band of which no member is coincident (a skewed stencil's time tiles) is turned into a
   wavefront, tile loop 0 := tile 0 + tile 1, after which tile loop 1 carries no dependence;
3. every band is split into single loops; an innermost loop that runs several statements and
   carries a dependence is split into one loop per statement where some order of them is legal
   (`distribute_innermost`: a skewed stencil's fused statements become vector loops);
4. the loops get the marks the rest of the compiler reads ("parallel:S1:c0", "vector:S1:c3":
   kind, first statement, isl's loop name c<depth>): the outermost loop of each nest that
   carries no dependence is parallel, the innermost loop of a statement, if it carries none
   and stores with stride 1, vector.

The result is checked like any schedule (passes/legality.py); an isl failure or an illegal
result is a `ScheduleError`.
"""

from __future__ import annotations

import itertools
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import islpy as isl

from loopweave.errors import ScheduleError
from loopweave.ir import isl_deadline, isl_helpers
from loopweave.ir.dependences import Dependences, carried_by
from loopweave.ir.kernel import KernelIR
from loopweave.passes.legality import check_dependences, check_loop_kinds

#: isl options while scheduling (restored afterwards: the context is shared by every pass).
#: Outer coincidence off and no forced band depth: isl builds deep permutable bands (skewed
#: time loops of stencils included), which tiling and the wavefront then parallelize. Point
#: loops unshifted: a point loop runs over the original iterator, so its stride is the
#: iterator's (what the vector check and the C renderer's intrinsics look at).
ISL_OPTIONS = {
    "schedule_outer_coincidence": 0,
    "schedule_maximize_band_depth": 0,
    "schedule_serialize_sccs": 0,
    "tile_scale_tile_loops": 1,
    "tile_shift_point_loops": 0,
}
#: The innermost member of a tiled band gets tiles this many times longer than the others: it
#: is the vector loop, whose short rows would cost more in loop bounds and vector tails than
#: they save (jacobi-2d LARGE, time-tiled, one thread: 1.25x faster with 32 x 32 x 128 tiles
#: than with 32 x 32 x 32).
INNER_TILE_FACTOR = 4
#: Wall-clock bound on isl's scheduler (ir/isl_deadline.py). PolyBench's slowest, heat-3d,
#: takes 1-2 s; some random kernels (reversed indices, strides) take minutes.
SCHEDULER_SECONDS = 10.0
#: An earlier end (time.monotonic()) for the scheduler's calls in this context: the cost model's
#: ranking budget inside compile() (`scheduler_deadline`).
_DEADLINE: ContextVar[float | None] = ContextVar("isl_scheduler_deadline", default=None)


@contextmanager
def scheduler_deadline(seconds: float) -> Iterator[None]:
    """Inside the block isl's scheduler gives up (a ScheduleError) after at most `seconds` from
    now in all, and at most SCHEDULER_SECONDS a call."""
    token = _DEADLINE.set(time.monotonic() + max(0.0, seconds))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def scheduler_seconds() -> float:
    """The wall-clock limit of the next scheduler call (SCHEDULER_SECONDS, or less inside
    `scheduler_deadline`)."""
    end = _DEADLINE.get()
    if end is None:
        return SCHEDULER_SECONDS
    return max(0.01, min(SCHEDULER_SECONDS, end - time.monotonic()))


def isl_schedule(kernel: KernelIR, tile: int | None = 32, rows: bool = False) -> KernelIR:
    """`kernel` under the schedule isl's scheduler computes from its dependences, permutable
    bands tiled by `tile` (None: not tiled), loops marked parallel and vector where legal.
    With `rows`, a skewed band of three or more members keeps each statement's innermost loop
    whole and unskewed, one loop per statement, under tiles of the other members
    (`_row_bands`: heat-3d). Memoized per kernel object: the default asks for it to decide
    (passes/isl_choice.py), then the pipeline applies it (0.1-2 s a time: adi, heat-3d)."""
    if tile is not None and (not isinstance(tile, int) or isinstance(tile, bool) or tile < 1):
        raise ScheduleError(f"isl_schedule tile size must be a positive integer or None, "
                            f"not {tile!r}")
    if not isinstance(rows, bool):
        raise ScheduleError(f"isl_schedule rows must be True or False, not {rows!r}")
    done = _MEMO.setdefault(kernel, {})
    if (tile, rows) not in done:
        done[tile, rows] = _isl_schedule(kernel, tile, rows)
    return done[tile, rows]


#: kernel -> {(tile, rows): scheduled kernel}
_MEMO: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _isl_schedule(kernel: KernelIR, tile: int | None, rows: bool) -> KernelIR:
    deps = Dependences.of(kernel).union().intersect_params(kernel.context)
    order = [s.name for s in kernel.statements] if rows else None
    try:
        with isl_options(kernel.context.get_ctx(), ISL_OPTIONS):
            writes = kernel.access_relations()[1].intersect_params(kernel.context)
            schedule = compute(kernel, deps)
            schedule = schedule.map_schedule_node_bottom_up(
                lambda node: _reshape_band(node, writes, tile, order))
            schedule = distribute_innermost(kernel, schedule, deps)
            schedule = mark_loops(schedule, deps, writes)
    except isl.Error as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ScheduleError(f"isl's scheduler failed on kernel {kernel.name}: {first}") from None
    _check(kernel, schedule)
    return kernel.with_schedule(schedule)


def compute(kernel: KernelIR, deps: isl.UnionMap) -> isl.Schedule:
    """isl's schedule of `kernel`'s statements respecting `deps` (bands, no marks); a
    `ScheduleError` if isl fails or takes over `scheduler_seconds()`."""
    constraints = (isl.ScheduleConstraints.on_domain(kernel.domains())
                   .set_context(kernel.context)
                   .set_validity(deps).set_proximity(deps).set_coincidence(deps))
    options = {name: v for name, v in ISL_OPTIONS.items() if name.startswith("schedule_")}
    seconds = scheduler_seconds()
    try:
        return isl_deadline.compute_schedule(constraints, options, seconds)
    except isl_deadline.SchedulerTimeout:
        raise ScheduleError(f"isl's scheduler gave up on kernel {kernel.name} after "
                            f"{seconds:.3g} s") from None
    except isl_deadline.SchedulerFailed as e:
        raise ScheduleError(f"isl's scheduler failed on kernel {kernel.name}: {e}") from None


@contextmanager
def isl_options(ctx: isl.Context, options: dict[str, int]) -> Iterator[None]:
    """`ctx` with `options` set (by isl's option names), restored on the way out."""
    saved = {name: getattr(ctx, f"get_{name}")() for name in options}
    try:
        for name, value in options.items():
            getattr(ctx, f"set_{name}")(value)
        yield
    finally:
        for name, value in saved.items():
            getattr(ctx, f"set_{name}")(value)


def _check(kernel: KernelIR, schedule: isl.Schedule) -> None:
    """The project's legality checks, with messages that say the schedule was isl's."""
    what = f"isl's schedule of {kernel.name}"
    check_dependences(kernel, schedule, what=what)
    try:
        check_loop_kinds(kernel, schedule)
    except ScheduleError as e:
        raise ScheduleError(f"{what}: {e}") from None


# -- bands: vector member innermost, tiles, wavefront, one loop per band -------------------------

def _reshape_band(node: isl.ScheduleNode, writes: isl.UnionMap, tile: int | None,
                  row_order: list[str] | None = None) -> isl.ScheduleNode:
    """A band of isl's tree as loops for the C renderer (called bottom-up on every node);
    `row_order` (statement names in program order): `_row_bands` where it applies."""
    if node.get_type() != isl.schedule_node_type.band:
        return node
    permutable = node.band_get_permutable() and node.band_n_member() >= 2
    if (row_order and permutable and node.band_n_member() >= 3
            and not _has_band_below(node.child(0))
            and not any(node.band_member_get_coincident(i)
                        for i in range(node.band_n_member()))):
        return _row_bands(node, tile, row_order)
    if permutable and not _has_band_below(node.child(0)):
        node = _sink_vector_member(node, writes)
    if permutable and tile:
        sizes = isl.MultiVal.zero(node.band_get_space())
        for i in range(node.band_n_member()):
            last = i == node.band_n_member() - 1
            sizes = sizes.set_val(i, isl.Val(tile * (INNER_TILE_FACTOR if last else 1)))
        node = node.band_tile(sizes)
        if not any(node.band_member_get_coincident(i) for i in range(node.band_n_member())):
            node = _wavefront(node)
        node = _split(node.child(0)).parent()
    return _split(node)


#: With `rows`, the tiles of the first member (time, in a skewed stencil's band) are this many
#: times shorter than the others'. heat-3d LARGE, one thread, the same tiles written as
#: schedule steps (shift, fuse, skew, tile), against the heuristics' sweeps: (t, i, j) tiles
#: of 4 x 16 x 16 1.15-1.18x, 2 x 8 x 8 1.08x, 8 x 16 x 16 1.09x, 4 x 32 x 32 1.14x.
ROW_TIME_TILE_DIVISOR = 4


def _row_bands(node: isl.ScheduleNode, tile: int | None,
               row_order: list[str]) -> isl.ScheduleNode:
    """The skewed permutable band `node` (n >= 3 members, no coincident one, no band below)
    as its first n - 1 members, tiled (the first by tile / ROW_TIME_TILE_DIVISOR) and
    wavefronted, over a sequence of one loop per statement, in `row_order`, along its own
    innermost iterator, unskewed.

    isl skews every member of a 3-D stencil's band by time; tiled, the innermost loop runs
    both statements with guards and shifts (heat-3d: no vector loop, 0.65x at LARGE). Whole
    rows inside (t, i, j) tiles keep both: a tile's rows stay in L2 across its time steps,
    and each statement's row is a vector loop. Legal where every dependence between the
    statements inside one (t, i, j) point goes forward in `row_order` (checked with the whole
    schedule: `_check`)."""
    n = node.band_n_member()
    below = node.band_split(n - 1).child(0).delete()
    domain = below.get_domain()
    statements = sorted(isl_helpers.sets_of(domain),
                        key=lambda s: row_order.index(s.get_tuple_name()))
    filters = isl.UnionSetList.alloc(domain.get_ctx(), len(statements))
    for s in statements:
        filters = filters.add(isl.UnionSet.from_set(s))
    sequence = below.insert_sequence(filters)
    for i, s in enumerate(statements):
        innermost = isl.PwAff.var_on_domain(isl.LocalSpace.from_space(s.get_space()),
                                            isl.dim_type.set, s.dim(isl.dim_type.set) - 1)
        row = isl.MultiUnionPwAff.from_union_pw_aff(isl.UnionPwAff.from_pw_aff(innermost))
        sequence = sequence.child(i).child(0).insert_partial_schedule(row).parent().parent()
    node = sequence.parent()
    if tile:
        sizes = isl.MultiVal.zero(node.band_get_space())
        for i in range(n - 1):
            size = max(1, tile // ROW_TIME_TILE_DIVISOR) if i == 0 else tile
            sizes = sizes.set_val(i, isl.Val(size))
        node = _wavefront(node.band_tile(sizes))
        node = _split(node.child(0)).parent()
    return _split(node)


def _split(node: isl.ScheduleNode) -> isl.ScheduleNode:
    """A band of n members as n nested bands of one member (one loop each: marks name loops)."""
    if node.band_n_member() > 1:
        node = node.band_split(1)
        node = _split(node.child(0)).parent()
    return node


def _replace_members(node: isl.ScheduleNode, members: list[isl.UnionPwAff],
                     coincident: list[bool]) -> isl.ScheduleNode:
    """The permutable band `node` with its members replaced (same count, same domain)."""
    mupa = node.band_get_partial_schedule()
    for i, upa in enumerate(members):
        mupa = mupa.set_at(i, upa)
    node = node.delete().insert_partial_schedule(mupa)
    node = node.band_set_permutable(1)
    for i, flag in enumerate(coincident):
        node = node.band_member_set_coincident(i, int(flag))
    return node


def _sink_vector_member(node: isl.ScheduleNode, writes: isl.UnionMap) -> isl.ScheduleNode:
    """Move a coincident member with stride-1 stores to the end of the permutable band (the
    innermost loop), unless the last member already is one."""
    n = node.band_n_member()
    mupa = node.band_get_partial_schedule()
    members = [mupa.get_at(i) for i in range(n)]
    coincident = [bool(node.band_member_get_coincident(i)) for i in range(n)]
    prefix = node.get_prefix_schedule_union_map()
    writes = writes.intersect_domain(node.get_domain())

    def stride_one_last(order: list[int]) -> bool:
        times = prefix
        for i in order:
            times = times.flat_range_product(isl.UnionMap.from_union_pw_aff(members[i]))
        return stores_with_stride_one(times, writes)

    if coincident[-1] and stride_one_last(list(range(n))):
        return node
    for p in reversed(range(n - 1)):
        order = [i for i in range(n) if i != p] + [p]
        if coincident[p] and stride_one_last(order):
            return _replace_members(node, [members[i] for i in order],
                                    [coincident[i] for i in order])
    return node


def _wavefront(node: isl.ScheduleNode) -> isl.ScheduleNode:
    """Tile loop 0 := tile 0 + tile 1 in a permutable tile band: every dependence has
    non-negative tile distances, so two tiles with one sum are independent and tile loop 1
    runs in parallel (checked again when the loops are marked)."""
    n = node.band_n_member()
    mupa = node.band_get_partial_schedule()
    members = [mupa.get_at(i) for i in range(n)]
    members[0] = members[0].add(members[1])
    return _replace_members(node, members, [False] * n)


def _has_band_below(node: isl.ScheduleNode) -> bool:
    if node.get_type() == isl.schedule_node_type.band:
        return True
    return any(_has_band_below(node.child(i)) for i in range(node.n_children()))


def stores_with_stride_one(times: isl.UnionMap, writes: isl.UnionMap) -> bool:
    """Whether the last dimension of `times` (instance -> time) moves every store it schedules
    by exactly one element along the tensor's last dimension when it steps by one, the outer
    dimensions fixed: a vector loop whose stores are contiguous."""
    n = _range_dims(times)
    if n == 0 or writes.is_empty():
        return False
    names = [f"c{i}" for i in range(n)]
    stepped = [*names[:-1], f"{names[-1]} + 1"]
    step = isl.UnionMap(f"{{ [{', '.join(names)}] -> [{', '.join(stepped)}] }}")
    next_instance = times.apply_range(step).apply_range(times.reverse())
    for m in isl_helpers.maps_of(next_instance):
        if m.get_tuple_name(isl.dim_type.in_) != m.get_tuple_name(isl.dim_type.out):
            continue  # another statement at the next time: not this loop's step
        moved = isl.UnionMap.from_map(m).apply_domain(writes).apply_range(writes).deltas()
        for delta in isl_helpers.sets_of(moved):
            rank = delta.dim(isl.dim_type.set)
            unit = ", ".join(["0"] * (rank - 1) + ["1"])
            tensor = delta.get_tuple_name()
            if rank == 0 or not delta.is_subset(isl.Set(f"{{ {tensor}[{unit}] }}")):
                return False
    return not next_instance.is_empty()


def _range_dims(umap: isl.UnionMap) -> int:
    maps = isl_helpers.maps_of(umap)
    return maps[0].dim(isl.dim_type.out) if maps else 0


# -- inside a tile: one innermost loop per statement where that frees it -----------------------

#: Statements fused in an innermost loop beyond this many are not reordered (n! orders).
MAX_DISTRIBUTED = 4


def distribute_innermost(kernel: KernelIR, schedule: isl.Schedule,
                         deps: isl.UnionMap) -> isl.Schedule:
    """Each innermost loop that runs several statements and carries a dependence is split into
    one loop per statement, in the first order (program order first) that keeps every
    dependence and leaves each new loop free of carried ones.

    isl fuses a skewed stencil's statements in one loop with shifts (jacobi-2d: `A[.., x - 1]`
    from B in the same iteration that writes `B[.., x]`), so the fused loop carries a
    dependence of distance 1 and cannot be a vector loop; one loop per statement, in the right
    order, can (the inter-tile schedule, which gives the locality, is unchanged)."""
    for path in _fused_innermost_paths(schedule.get_root(), []):
        band = _node_at(schedule, path)
        if carried_by(band, deps).is_empty():
            continue
        groups = _statement_groups(band)
        for order in itertools.permutations(range(len(groups))):
            node = band
            for g in order[:-1]:
                node = node.order_before(groups[g])
            trial = node.get_schedule()
            if _loops_free(_node_at(trial, path), deps) and _keeps_dependences(kernel, trial):
                schedule = trial
                break
    return schedule


def _statement_groups(band: isl.ScheduleNode) -> list[isl.UnionSet]:
    """The instances that an innermost band runs, in the groups that may get loops of their
    own: the filters of the sequence below it, or else (isl orders fused statements by the
    band's own dimensions, with no sequence) its statements."""
    below = band.child(0)
    if below.get_type() == isl.schedule_node_type.sequence:
        return [below.child(i).filter_get_filter() for i in range(below.n_children())]
    return [isl.UnionSet.from_set(s) for s in isl_helpers.sets_of(band.get_domain())]


def _fused_innermost_paths(node: isl.ScheduleNode, path: list[int]) -> list[list[int]]:
    """Child-index paths of the one-member bands with no band below that run 2 to
    MAX_DISTRIBUTED groups of statements (`_statement_groups`)."""
    if node.get_type() == isl.schedule_node_type.band:
        if (node.band_n_member() == 1 and not _has_band_below(node.child(0))
                and 2 <= len(_statement_groups(node)) <= MAX_DISTRIBUTED):
            return [path]
    found = []
    for i in range(node.n_children()):
        found += _fused_innermost_paths(node.child(i), [*path, i])
    return found


def _node_at(schedule: isl.Schedule, path: list[int]) -> isl.ScheduleNode:
    node = schedule.get_root()
    for i in path:
        node = node.child(i)
    return node


def _loops_free(node: isl.ScheduleNode, deps: isl.UnionMap) -> bool:
    """Whether every band at or below `node` carries no dependence."""
    if node.get_type() == isl.schedule_node_type.band and not carried_by(node, deps).is_empty():
        return False
    return all(_loops_free(node.child(i), deps) for i in range(node.n_children()))


def _keeps_dependences(kernel: KernelIR, schedule: isl.Schedule) -> bool:
    try:
        check_dependences(kernel, schedule)
    except ScheduleError:
        return False
    return True


# -- marks: parallel and vector loops ------------------------------------------------------------

def mark_loops(schedule: isl.Schedule, deps: isl.UnionMap,
               writes: isl.UnionMap) -> isl.Schedule:
    """Marks on the single-loop bands of `schedule`: the outermost loop of each nest that
    carries no dependence "parallel" (an innermost one only if no loop encloses it), an
    innermost loop that carries none and stores with stride 1 (`writes`) "vector"."""
    return _mark(schedule.get_root(), deps, writes, False).get_schedule()


def _mark(node: isl.ScheduleNode, deps: isl.UnionMap, writes: isl.UnionMap,
          parallel_above: bool) -> isl.ScheduleNode:
    """`node` and its subtree with loop marks; returns the node at the same position (a mark
    inserted above a band takes the band's place)."""
    kind = None
    if node.get_type() == isl.schedule_node_type.band:
        kind = _loop_kind(node, deps, writes, parallel_above)
        parallel_above = parallel_above or kind == "parallel"
    for i in range(node.n_children()):
        node = _mark(node.child(i), deps, writes, parallel_above).parent()
    if kind == "vector" and len(isl_helpers.sets_of(node.get_domain())) > 1:
        # Statements fused into one vector loop over shifted ranges (a time-tiled stencil)
        # would each sit under a guard on the loop's variable at every iteration; separate
        # loops for the parts where the same statements run give guard-free SIMD bodies.
        node = node.band_member_set_ast_loop_type(0, isl.ast_loop_type.separate)
    if kind is not None:
        stmt = sorted(s.get_tuple_name() for s in isl_helpers.sets_of(node.get_domain()))[0]
        name = f"{kind}:{stmt}:c{node.get_schedule_depth()}"
        node = node.insert_mark(isl.Id(name))
    return node


def _loop_kind(band: isl.ScheduleNode, deps: isl.UnionMap, writes: isl.UnionMap,
               parallel_above: bool) -> str | None:
    """"parallel", "vector" or None for a one-member band."""
    if band.band_n_member() != 1 or band.get_domain().is_empty():
        return None
    if not carried_by(band, deps).is_empty():
        return None
    innermost = not _has_band_below(band.child(0))
    # A parallel loop inside serial ones forks threads once per outer iteration: for an
    # innermost loop, SIMD is worth more where its stores allow it.
    if innermost and (parallel_above or band.get_schedule_depth() > 0):
        times = band.get_prefix_schedule_union_map().flat_range_product(
            band.band_get_partial_schedule_union_map())
        if stores_with_stride_one(times, writes.intersect_domain(band.get_domain())):
            return "vector"
    return None if parallel_above else "parallel"
