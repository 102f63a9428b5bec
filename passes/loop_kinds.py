"""The parallel and vector marks of the default schedule (passes/default.py): which loops of
a schedule carry no dependence (one isl tree, one check per band), the outermost such loop of
each nest in parallel, the innermost of each statement in SIMD, and a parallel loop inside a
time loop, shared by a step's element-wise statements (`fuse_step_statements`)."""

from __future__ import annotations

import islpy as isl

from loopweave.errors import ScheduleError
from loopweave.ir import expr as ir
from loopweave.ir import isl_helpers
from loopweave.ir.dependences import Dependences
from loopweave.ir.kernel import KernelIR, Statement
from loopweave.passes import placement as pl
from loopweave.passes.legality import arg_chains, carried_by, reduction_chains
from loopweave.passes.patterns import match_contraction
from loopweave.passes.schedule import Schedule
from loopweave.passes.storage import private_dependences
from loopweave.targets import openmp_threads


def loop_marks(kernel: KernelIR, schedule: Schedule, threads: bool, tiled: set[str],
               parallel_loop: dict[str, str | tuple[str, ...]]) -> list[tuple[str, str, str]]:
    """The parallel and vector marks for `schedule`'s loops (op, statement, loop name), legal
    each. `tiled` statements (their own steps mark their loops) get no vector mark;
    `parallel_loop` names a statement's parallel loop where it is not the outermost (or its
    parallel loops: nested, they run as one, `omp parallel for collapse`)."""
    kernel, placements = schedule.placed(kernel)  # with the pieces of `separate` steps
    candidates = []
    seen_groups = set()
    for s in kernel.statements:
        names = placements[s.name].names()
        group = placements[s.name].order[:1]
        if names and group not in seen_groups and threads:
            seen_groups.add(group)
            loops = parallel_loop.get(s.name) or (names[0],)
            candidates += [("parallel", s.name, names.index(loop))
                           for loop in ((loops,) if isinstance(loops, str) else loops)]
        if names and s.name not in tiled and len(names) > 1:
            candidates.append(("vectorize", s.name, len(names) - 1))
    inner = _inner_loops(placements, candidates) if threads else set()
    free, vectors, forks = loops_carrying_nothing(kernel, placements,
                                                   {(n, d) for _, n, d in candidates} | inner)
    vector_loops = {placements[n].order[:d + 1] for op, n, d in candidates
                    if op == "vectorize" and ((n, d) in free or (n, d) in vectors)}
    candidates += _inner_parallel(kernel, placements, candidates, forks, vector_loops)
    return [(op, name, placements[name].names()[depth]) for op, name, depth in candidates
            if (name, depth) in (forks if op == "parallel" else free)
            or (op == "vectorize" and (name, depth) in vectors)]


def _inner_loops(placements, candidates) -> set[tuple[str, int]]:
    """(statement, depth) of every loop that may run in parallel inside a serial outer loop
    (`_inner_parallel`): of the statements whose nest's outermost loop is a parallel
    candidate, every loop below the outermost with at least one loop inside it."""
    outer = {name for op, name, depth in candidates if op == "parallel" and depth == 0}
    groups = {placements[n].order[:1] for n in outer}
    return {(n, d) for n, p in placements.items() if p.order[:1] in groups
            for d in range(1, len(p.loops) - 1)}


def _inner_parallel(kernel: KernelIR, placements, candidates, free, vector_loops: set
                    ) -> list[tuple[str, str, int]]:
    """Parallel loops for the nests whose outermost loop is a time loop: it carries a
    dependence and indexes no element its statements store (each step rewrites the same
    grid). In each statement, the outermost loop that carries none, if a loop runs inside it,
    so that one fork of the threads does at least a plane of work (a stencil step's rows;
    jacobi-1d's single row per step would cost more to fork than it saves). A pivot loop
    (LU's, gramschmidt's k) indexes what it stores: a fork per pivot measured slower there
    (gramschmidt 1.4x on two threads), and its steps work on ranges that move with it; a loop
    whose steps all run the same instances, each a matrix product's work, is a time loop
    though it indexes a store (an RNN's outputs `y[t, ...]`: `_steps_of_products`).
    One mark per loop: statements fused in it share it. `vector_loops` (`order` prefixes) are
    vector loops already and stay so (trmm's j: a vector loop around the k loop is worth
    more than two threads), and no loop inside one runs in parallel."""
    serial = {placements[name].order[:1] for op, name, depth in candidates
              if op == "parallel" and depth == 0 and (name, depth) not in free}
    time_loops: dict[tuple, bool] = {}  # group -> `_steps_of_products`, asked once a group
    for s in kernel.statements:
        p = placements[s.name]
        group = p.order[:1]
        if not p.loops or group not in serial:
            continue
        stores = set().union(*(ir.variables(x) for x in s.lhs.indices))
        if ir.variables(p.loops[0].expr) & stores:
            if group not in time_loops:
                time_loops[group] = openmp_threads() > 1 and _steps_of_products(
                    kernel, placements, group)
            if not time_loops[group]:
                serial.discard(group)  # a pivot loop, not a time loop
    chosen, marks = set(), []
    for name, p in placements.items():
        if p.order[:1] not in serial:
            continue
        depth = next((d for d in range(1, len(p.loops) - 1) if (name, d) in free), None)
        if depth is not None and any(p.order[:e + 1] in vector_loops for e in range(depth + 1)):
            continue
        if depth is not None and p.order[:depth + 1] not in chosen:
            chosen.add(p.order[:depth + 1])
            marks.append(("parallel", name, depth))
    return marks


def fuse_step_statements(kernel: KernelIR, schedule: Schedule) -> None:
    """Inside a DSL `for` loop (a time loop's step), runs of consecutive element-wise
    statements share their next loop too, where the dependences allow: that loop is the
    one that runs in parallel in each step (`_inner_parallel`), and a run forks the threads
    once, not once a statement (LSTM's updates of c, h and y, three forks a step, each a few
    microseconds against 16 x 256 elements of work). Only statements with as many loops
    inside the step share it: a row's innermost loop shared with a block's outer one would be
    the row's vector loop around the block's loops."""
    placements = schedule.placements(kernel)
    run: list[str] = []
    for s in kernel.statements:
        loops = placements[s.name].order
        shared = bool(run) and placements[run[0]].order[:s.enclosing] == loops[:s.enclosing] \
            and kernel.statement[run[0]].enclosing == s.enclosing \
            and len(placements[run[0]].order) == len(loops)
        if s.enclosing == 0 or s.op != "=" or s.is_init or len(loops) <= s.enclosing:
            run = []
            continue
        if shared:
            trial = Schedule(list(schedule.steps))
            trial.fuse(*run, s.name, depth=s.enclosing + 1)
            try:
                trial.apply(kernel)
            except ScheduleError:
                run = [s.name]
                continue
            schedule.steps = trial.steps
            run.append(s.name)
        else:
            run = [s.name]


def _alike_steps(statement: Statement, steps: set[str]) -> bool:
    """Whether the statement runs the same instances at every value of the loop variables
    `steps`: its domain is the product of their range and the rest's (no bound of another
    iterator depends on them)."""
    domain = statement.domain
    positions = [statement.iterators.index(v) for v in steps if v in statement.iterators]
    if not positions:
        return True
    rest, time = domain, domain
    for i in range(len(statement.iterators)):
        if i in positions:
            rest = rest.eliminate(isl.dim_type.set, i, 1)
        else:
            time = time.eliminate(isl.dim_type.set, i, 1)
    return rest.intersect(time).is_equal(domain)


def _steps_of_products(kernel: KernelIR, placements, group: tuple) -> bool:
    """Whether the nest `group` (an `order` prefix) is a time loop over steps worth a fork
    each, though its variable indexes a store: every statement runs the same instances at
    every step (`_alike_steps`), and one is a contraction (`patterns.match_contraction`: three
    loops of its own inside the step; an RNN's recurrent product: LSTM 1.32-1.41x on two
    threads). Element-wise steps are not (the selective scan's 4096 states a step: 0.54x,
    forking cost more than it saved). Only where the process has threads (the caller asks):
    a register tile's loop is too big to keep a serial version beside the OpenMP one, and on
    one thread the outlined OpenMP body ran LSTM 0.92x."""
    statements = [s for s in kernel.statements
                  if placements[s.name].loops and placements[s.name].order[:1] == group]
    return all(_alike_steps(s, ir.variables(placements[s.name].loops[0].expr))
               for s in statements) and any(
        match_contraction(s, list(s.iterators[s.enclosing:])) is not None
        for s in statements)


def loops_carrying_nothing(kernel: KernelIR, placements, wanted: set[tuple[str, int]]):
    """Which (statement, loop depth) of `wanted` carry no dependence, which carry only
    reduction chains (may be vector loops), and which may run in parallel (carry nothing but
    dependences on temporaries private to their iterations, passes/storage.private_depth):
    one tree, one check per band (trying each mark with a full `apply` is quadratic in the
    number of statements)."""
    tree = pl.build_tree(kernel, placements)
    deps = Dependences.of(kernel).union()
    free, vectors, forks = set(), set(), set()

    def visit(node):
        if node.get_type() == isl.schedule_node_type.band:
            depth = node.get_schedule_depth()
            names = [m.get_tuple_name()
                     for m in isl_helpers.sets_of(node.get_domain())]
            hits = [n for n in names if (n, depth) in wanted]
            carried = carried_by(node, deps).intersect_params(kernel.context) if hits else None
            if hits and carried.is_empty():
                free.update((n, depth) for n in hits)
                forks.update((n, depth) for n in hits)
            elif hits:  # a vector loop may still carry a reduction chain
                rest = carried.subtract(reduction_chains(kernel, placements, depth)).subtract(
                    arg_chains(kernel, placements, depth))
                vectors.update((n, depth) for n in hits if rest.is_empty())
                if carried.subtract(private_dependences(kernel, placements, depth)).is_empty():
                    forks.update((n, depth) for n in hits)
        for i in range(node.n_children()):
            visit(node.child(i))

    visit(tree.get_root())
    return free, vectors, forks


def innermost_vector_marks(kernel: KernelIR, schedule: Schedule) -> list[tuple[str, str, str]]:
    """`loop_marks`' vector marks on loops with no loop inside, for a pass that drops the
    heuristics' steps on its statements (row_blocks, column_blocks): cholesky's division's
    row loop holds the products' dot over k (a vector loop in a vector loop), and across
    rows it would gather."""
    _, placements = schedule.placed(kernel)
    marks = []
    for op, name, loop in loop_marks(kernel, schedule, False, set(), {}):
        depth = placements[name].names().index(loop)
        prefix = placements[name].order[:depth + 1]
        if op == "vectorize" and not any(p.order[:depth + 1] == prefix and len(p.loops) > depth + 1
                                         for p in placements.values()):
            marks.append((op, name, loop))
    return marks
