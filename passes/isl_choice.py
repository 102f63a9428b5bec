"""When the default schedule is isl's (passes/isl_scheduler.py) instead of the heuristics'
(passes/default.py): for kernels whose deepest nests the heuristics can run neither in
parallel nor in SIMD (`isl_fallback`, at every size), and for stencils in time whose data
exceed the cache (`TimeTiles`, the default's choice by sizes, which the pipeline asks per call's
sizes: isl's time tiles keep a tile of the grid in cache across time steps, while the
heuristics' row-parallel steps stream the whole grid once per step)."""

from __future__ import annotations

import math

from loopweave.errors import ScheduleError
from loopweave.ir import expr as ir
from loopweave.ir import isl_helpers
from loopweave.ir.kernel import KernelIR, Statement
from loopweave.passes.legality import marks
from loopweave.passes.schedule import Schedule, target_statements
from loopweave.targets import host_cache_bytes, openmp_threads

#: Tile size of isl's time tiles (`time_tiled_schedule`; passes/isl_scheduler.py: the vector
#: member's tiles are INNER_TILE_FACTOR times longer).
ISL_TILE = 32
#: Tile size of the isl fallback (`isl_fallback`): its kernels carry a recurrence along the
#: innermost loop (adi's sweeps: two divisions a step, each waiting on the step before), and a
#: tile of 4 lines x 16 steps is short enough for the out-of-order core to run the next
#: line's chain beside this one's, where a line of 128 steps (tile 32) runs its chain alone.
#: adi against tile 32, 2-core Xeon VM, each schedule timed interleaved in one process:
#: tiles 2 / 4 / 8 / 16 at LARGE (N 1000), one thread, 1.26x / 1.61x / 1.36x / 1.15x; two
#: threads, tile 4 1.42x, 8 1.29x; MEDIUM one thread 1.38x / 1.67x / 1.49x / 1.16x, two
#: threads 1.15x / 1.37x / 1.37x / 1.24x.
FALLBACK_TILE = 4


def isl_fallback(kernel: KernelIR, schedule: Schedule) -> Schedule | None:
    """`Schedule().isl(FALLBACK_TILE)` if `schedule` (the heuristics' result) asks for no parallel
    or vector loop of a statement of the kernel's deepest nests and runs none of them in a
    parallel loop of another (fused) statement, and isl's scheduler finds a legal schedule that
    marks one there; else None. The deepest nests hold the work: seidel-2d's wavefront gets
    isl's (the heuristics mark nothing), and so does adi, whose sweeps
    carry their dependence along the innermost loop while isl runs the lines in parallel and
    the back substitution across lines in SIMD (the heuristics mark only its boundary
    statements). (Taking isl's schedule also where it has an outer parallel loop and the
    heuristics have none measured 1.29x on symm but 0.83x on trmm and 0.67x on ludcmp, one
    thread.)"""
    if not idle_work(kernel, schedule):
        return None
    work = {s.name for s in deepest_statements(kernel)}
    fallback = Schedule().isl(FALLBACK_TILE)
    scheduled = _scheduled(kernel, fallback)
    return fallback if scheduled is not None and any(
        work & names for names in _marked_statements(scheduled, ("parallel", "vector"))
    ) else None


def idle_work(kernel: KernelIR, schedule: Schedule,
              kinds: tuple[str, ...] = ("parallel", "vector")) -> bool:
    """Whether `schedule` (the heuristics' result) asks for no loop of `kinds` (parallel or
    vector) of a statement of the kernel's deepest nests (two or more loops deep) and runs none
    of them in a parallel loop of another (fused) statement."""
    work = {s.name for s in deepest_statements(kernel)}
    if not work or any(step.op in kinds and work & {
            s.name for s in target_statements(kernel, step.target)} for step in schedule.steps):
        return False
    # A parallel mark names one statement, but its loop runs every statement fused into it:
    # top-k's rows, whose parallel loop holds the argmax chain too (isl's schedule of it is
    # 8-17x slower). A vector loop shared that way is no reason to keep the heuristics: adi's
    # sweeps sit in its boundary statements' vector loops, and isl runs their lines in parallel.
    try:
        parallel = _marked_statements(schedule.apply(kernel), ("parallel",))
    except ScheduleError:
        parallel = []
    return not any(work & names for names in parallel)


def deepest_statements(kernel: KernelIR) -> list[Statement]:
    """The statements of the kernel's deepest nests (where its work is), if two or more loops
    deep; else none."""
    deepest = max((len(s.iterators) for s in kernel.statements), default=0)
    return [s for s in kernel.statements if len(s.iterators) == deepest] if deepest >= 2 else []


def _scheduled(kernel: KernelIR, schedule: Schedule) -> KernelIR | None:
    """`kernel` under `schedule`, or None where it fails (isl's scheduler, an illegal step)."""
    try:
        return schedule.apply(kernel)
    except ScheduleError:
        return None


def _marked_statements(kernel: KernelIR, kinds: tuple[str, ...]) -> list[set[str]]:
    """Per loop of `kernel`'s schedule marked one of `kinds`: the statements it runs."""
    return [{d.get_tuple_name() for d in isl_helpers.sets_of(m.get_domain())}
            for m in marks(kernel.schedule.get_root())
            if m.mark_get_id().get_name().split(":")[0] in kinds]


#: Bytes of data (every tensor a stencil's time loop touches) beyond which its steps run in
#: isl's time tiles (`time_tiled_schedule`, `time_tile_bound`): half the host's last-level
#: cache (32 MiB where it is not reported), at most TIME_TILE_MAX_BYTES; or the L2 per thread
#: (`time_tile_bytes`). Below it the heuristics' row-parallel
#: sweeps win, their rows streaming from L2 and L3; above it, from memory. Zen 3 (32 MiB L3),
#: one thread, 200 steps, tiles over rows: jacobi-2d 0.84-0.92x at 2-10 MiB, 0.94x at 15 MiB,
#: 1.28x at 20 MiB, 1.72x at 26 MiB; fdtd-2d 0.74-0.82x at 2-7 MiB, 1.37x at 18 MiB, 1.80x at
#: 27 MiB.
#: The cap: a virtual machine's share of a large shared L3 is far smaller than the L3 sysfs
#: reports. On a 2-core Intel Xeon VM that reports 480 MiB, tiles won from 3.8 MiB on
#: (jacobi-2d 1.68-1.76x at 3.8-26 MiB, fdtd-2d 2.43-2.64x at 5.5-28 MiB, 100 steps, one
#: thread); half the L3 would have kept them off at every size. (Such an L3 now gives the
#: L2 bound, `time_tile_bytes`; the cap stays for L3s of 32 to 64 MiB.)
TIME_TILE_MAX_BYTES = 16 << 20
#: A last-level cache reported larger than this is a server part's, shared by far more cores
#: than the process sees, and the bound is the L2 instead (`time_tile_bytes`).
SHARED_L3_BYTES = 64 << 20


def time_tile_bytes(l2: int | None, l3: int | None) -> tuple[int, bool]:
    """(TIME_TILE_BYTES, TIME_TILE_PER_THREAD) for a host with these cache sizes (None: not
    reported): half the L3, at most TIME_TILE_MAX_BYTES, for the process; where the L3 is a
    big shared one (above SHARED_L3_BYTES), the L2, per thread (each thread's rows stream
    from its own L2). The 2-core Xeon VM that reports a 480 MiB L3 and a 2 MiB L2, 100 steps
    (`benchmarks/time_tiles.py`), tiles against sweeps: one thread, 0.85x and 0.91x at
    1.0-1.2 MiB, 1.00x at 1.9 MiB, 1.44x-1.67x at 2.6-3.8 MiB, 1.8-2.2x at 10-27 MiB; two
    threads, 0.68x-0.83x up to 3.8 MiB, 1.25x-2.0x from 5.5 MiB."""
    if l3 is not None and l3 > SHARED_L3_BYTES and l2:
        return l2, True
    return min((l3 or 32 << 20) // 2, TIME_TILE_MAX_BYTES), False


TIME_TILE_BYTES, TIME_TILE_PER_THREAD = time_tile_bytes(host_cache_bytes(2), host_cache_bytes(3))


def time_tile_bound(threads: int) -> int:
    """The data size above which a stencil in time takes time tiles, for `threads` OpenMP
    threads."""
    return TIME_TILE_BYTES * (threads if TIME_TILE_PER_THREAD else 1)


def in_time_loop(kernel: KernelIR) -> bool:
    """Whether every statement of the kernel's deepest nests sits in a `for` loop that indexes
    nothing a statement in it stores (a time loop: each step rewrites the same grid). Cheap:
    no isl."""
    work = deepest_statements(kernel)
    if not work or any(s.enclosing < 1 for s in work):
        return False
    loops = {s.iterators[0] for s in work}
    return not any(
        s.enclosing >= 1 and s.iterators[0] in loops and s.iterators[0] in set().union(
            *(ir.variables(x) for x in s.lhs.indices)) for s in kernel.statements)


class TimeTiles:
    """The default's choice by sizes for a stencil in time: isl's time tiles
    (`time_tiled_schedule`, asked once per answer) where the data exceed `time_tile_bound`,
    else None (the default schedule)."""

    why = "isl's time tiles (the stencil's data exceed the cache)"

    def __init__(self, kernel: KernelIR):
        self.kernel = kernel
        self._tiled: dict[bool, Schedule | None] = {}  # rows allowed -> answer

    def at(self, sizes: dict[str, int]) -> Schedule | None:
        """The schedule for `sizes` (and the OpenMP threads of this process: row tiles only
        up to ROW_TILE_MAX_THREADS), or None for the default's."""
        threads = openmp_threads()
        if footprint_bytes(self.kernel, sizes) <= time_tile_bound(threads):
            return None
        rows = threads <= ROW_TILE_MAX_THREADS
        if rows not in self._tiled:
            self._tiled[rows] = time_tiled_schedule(self.kernel, rows)
        return self._tiled[rows]


def time_tiles(kernel: KernelIR) -> TimeTiles | None:
    """A `TimeTiles` for a kernel in a time loop (`in_time_loop`), else None."""
    return TimeTiles(kernel) if in_time_loop(kernel) else None


def time_tiled_schedule(kernel: KernelIR, rows: bool = True) -> Schedule | None:
    """isl's time tiles for a stencil in time (`in_time_loop`) where they give each statement
    of its deepest nests a vector loop of its own: `Schedule().isl(ISL_TILE)` where isl's
    scheduler distributes its fused innermost loops (jacobi-2d, fdtd-2d), else, with `rows`,
    `Schedule().isl(ROW_TILE, rows=True)` (whole rows under (t, i, j) tiles: heat-3d, whose
    statements share a guarded vector loop in the first, 0.65x at LARGE); None where neither
    does. For sizes whose data exceed `time_tile_bound` (see `footprint_bytes`): below, the
    heuristics' row-parallel steps win."""
    if not in_time_loop(kernel):
        return None
    candidates = [Schedule().isl(ISL_TILE)] + [Schedule().isl(ROW_TILE, rows=True)] * rows
    for schedule in candidates:
        if _own_vector_loops(kernel, _scheduled(kernel, schedule)):
            return schedule
    return None


#: Tile size of `Schedule().isl(ROW_TILE, rows=True)` (the time loop's tiles 4 times shorter:
#: passes/isl_scheduler.ROW_TIME_TILE_DIVISOR). heat-3d LARGE, one thread, against the
#: heuristics' sweeps: 1.17x at 16, 1.09x at 8, 1.04x at 32.
ROW_TILE = 16
#: Row tiles run in parallel only along their wavefront; the heuristics' sweeps run every
#: plane in parallel. heat-3d LARGE on two threads (2-core Xeon VM): sweeps 536-546 ms, row
#: tiles of 8, 16, 32: 611, 633, 844 ms (one thread: sweeps 1036 ms, row tiles 919 ms).
ROW_TILE_MAX_THREADS = 1


def _own_vector_loops(kernel: KernelIR, scheduled: KernelIR | None) -> bool:
    """Whether each statement of the kernel's deepest nests runs in a vector loop that runs
    no other statement, in `scheduled`."""
    if scheduled is None:
        return False
    vector_loops = _marked_statements(scheduled, ("vector",))
    work = {s.name for s in deepest_statements(kernel)}
    return work <= set().union(*vector_loops) and all(len(v) == 1 for v in vector_loops)


def footprint_bytes(kernel: KernelIR, sizes: dict[str, int]) -> int:
    """Bytes of every tensor the kernel's statements touch, at `sizes`."""
    names = {a.tensor for s in kernel.statements for a in (s.lhs, *s.reads)}
    total = 0
    for name in names:
        t = kernel.tensors[name]
        try:
            total += t.dtype.numpy.itemsize * math.prod(
                max(ir.evaluate(d, sizes), 0) for d in t.shape)
        except (KeyError, ValueError):  # a shape these sizes do not fix: not counted
            pass
    return total
