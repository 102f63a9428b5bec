"""Legality of a schedule: no dependence reversed, no dependence carried by a parallel or
vector loop. Errors name the dependence, the tensor and two instances with their DSL lines.

Whether a loop carries a dependence is `ir.dependences.carried_by` (the one query the GPU
planners ask too); it is re-exported here for the passes that import it from this module."""

from __future__ import annotations

import islpy as isl

from loopweave.errors import ScheduleError
from loopweave.ir import argreduce, isl_helpers
from loopweave.ir import expr as ir
from loopweave.ir.dependences import Dependences, carried_by, reads_its_element, violations
from loopweave.ir.kernel import KernelIR
from loopweave.ir.loops import GPU_AXES, THREAD_AXES
from loopweave.passes.storage import private_dependences


def instance_text(kernel: KernelIR, stmt: str, values: dict[str, int]) -> str:
    s = kernel.statement[stmt]
    its = ", ".join(f"{k}={v}" for k, v in values.items())
    return f"{stmt}({its}) (line {s.pos.line})"


def check_dependences(kernel: KernelIR, schedule: isl.Schedule, what: str = "the schedule",
                      reassociable: frozenset[str] = frozenset()) -> None:
    """Raise ScheduleError if `schedule` runs some dependence's sink before its source (the
    reductions of `reassociable` statements excepted, see `violations`)."""
    for v in violations(kernel, schedule, reassociable=reassociable):
        d = v.dependence
        sizes = ", ".join(f"{k}={n}" for k, n in v.sizes.items())
        raise ScheduleError(
            f"{what} breaks the {d.kind} dependence on {d.tensor} from "
            f"{d.source} to {d.sink}: {instance_text(kernel, d.source, v.source_instance)} must "
            f"run before {instance_text(kernel, d.sink, v.sink_instance)} (sizes {sizes})")


REDUCTIONS = ("+=", "max=", "min=", "*=")


def check_loop_kinds(kernel: KernelIR, schedule: isl.Schedule, placements=None,
                     reassociable: frozenset[str] = frozenset()) -> None:
    """A loop bound to blockIdx may carry no dependence; a vector, dot or threadIdx loop none
    but the chain of a reduction over it (`s += x[j]` over j: the SIMD code keeps partial
    results per lane; a dot sums a tile's products in one matrix product; the threads of a
    block combine their partial results, see ir/launches.ThreadReduce); a parallel loop none
    but the chain of a `reassociable` statement's reduction (each iteration reduces into a
    partial result of its own, combined in loop order afterwards, see ir/privatize.py) and
    the dependences on a temporary private to each of its iterations
    (passes/storage.private_depth)."""
    deps = None
    for mark in marks(schedule.get_root()):
        name = mark.mark_get_id().get_name()
        kind, stmt, loop = (name.split(":") + ["", ""])[:3]
        if kind == "vector":
            _no_parallel_loop_inside(mark, stmt, loop)
        if kind not in ("parallel", "vector", "dot", *GPU_AXES):
            continue
        deps = deps or Dependences.of(kernel).union()
        band = mark.child(0)
        carried = carried_by(band, deps).intersect_params(kernel.context)
        if kind in ("vector", "dot", *THREAD_AXES) and placements is not None:
            carried = carried.subtract(
                reduction_chains(kernel, placements, band.get_schedule_depth()))
            if kind == "vector":  # an arg-reduction's pair: backends/simd_arg.py
                carried = carried.subtract(
                    arg_chains(kernel, placements, band.get_schedule_depth()))
        elif kind == "parallel" and placements is not None:
            carried = carried.subtract(private_dependences(
                kernel, placements, band.get_schedule_depth()))
            if reassociable:
                carried = carried.subtract(reduction_chains(
                    kernel, placements, band.get_schedule_depth(), reassociable, inside=True))
        if not carried.is_empty():
            m = isl_helpers.maps_of(carried)[0]
            point = m.wrap().sample_point()
            sizes, coords = isl_helpers.point_values(point, m.wrap())
            src = m.get_tuple_name(isl.dim_type.in_)
            snk = m.get_tuple_name(isl.dim_type.out)
            n = len(kernel.statement[src].iterators)
            a = dict(zip(kernel.statement[src].iterators, coords[:n], strict=True))
            b = dict(zip(kernel.statement[snk].iterators, coords[n:], strict=True))
            what = f"bound to {kind}" if kind in GPU_AXES else kind
            raise ScheduleError(
                f"loop {loop} of {stmt} cannot be {what}: it carries a dependence from "
                f"{instance_text(kernel, src, a)} to {instance_text(kernel, snk, b)}"
                + reduction_hint(kernel, src, snk, {**sizes, **a}, {**sizes, **b}, loop))


def _no_parallel_loop_inside(mark: isl.ScheduleNode, stmt: str, loop: str) -> None:
    """One thread runs a vector loop's lanes: a parallel loop inside it has no threads to
    share (C: `omp parallel for` may not nest in `omp simd`)."""
    for inner in marks(mark.child(0)):
        kind, inner_stmt, inner_loop = (inner.mark_get_id().get_name().split(":") + ["", ""])[:3]
        if kind == "parallel":
            raise ScheduleError(
                f"loop {loop} of {stmt} cannot be vectorized: it encloses loop {inner_loop} of "
                f"{inner_stmt}, which is parallel; vectorize a loop inside {inner_loop}, or "
                f"make a loop outside {loop} parallel instead")


def reduction_hint(kernel: KernelIR, src: str, snk: str, a: dict[str, int], b: dict[str, int],
                   loop: str) -> str:
    """When two instances of one reduction update the same element (the loop runs a
    reduction), what to do instead: run a loop over the reduced tensor's indices in parallel
    (`reassociate` lets reduction loops change places to move it outward), or vectorize."""
    s = kernel.statement[src]
    if src != snk or s.op not in REDUCTIONS:
        return ""
    element = [ir.evaluate(i, a) for i in s.lhs.indices]
    if element != [ir.evaluate(i, b) for i in s.lhs.indices]:
        return ""
    tensor = s.lhs.tensor
    return (f"; both update {tensor}[{', '.join(map(str, element))}]: {loop} runs a reduction "
            f"({s.op}), whose updates of one element cannot run at once. Run a loop over "
            f"{tensor}'s indices in parallel instead (`reorder` moves it outward; "
            f"`reassociate(\"{tensor}\")` first lets the reduction loops change places), "
            f"`vectorize` {loop}: SIMD code keeps one partial result per lane, or, where no "
            f"loop inside {loop} indexes {tensor}, `reassociate(\"{tensor}\")` and run {loop} "
            f"in parallel: each iteration reduces into a partial result of its own, combined "
            f"in a fixed order")


def reduction_chains(kernel: KernelIR, placements, depth: int,
                     statements: frozenset[str] | None = None, inside: bool = False
                     ) -> isl.UnionMap:
    """The dependences that only chain a reduction along the loop at `depth`: a statement
    `T[..] op= e` on itself (one of `statements`, if given), where the loop's variables (with
    `inside`, those of the loops inside it too: T's element is the same for the whole loop)
    index neither T nor any load of T."""
    result = isl.UnionMap.empty(kernel.context.get_space())
    for d in Dependences.of(kernel).all:
        s = kernel.statement[d.source]
        p = placements.get(s.name)
        if d.sink != d.source or s.op not in REDUCTIONS or d.tensor != s.lhs.tensor \
                or p is None or len(p.loops) <= depth or (statements is not None
                                                          and s.name not in statements):
            continue
        loop_vars = set().union(*(ir.variables(lp.expr)
                                  for lp in p.loops[depth:len(p.loops) if inside else depth + 1]))
        if loop_vars & set().union(*(ir.variables(x) for x in s.lhs.indices)):
            continue
        inner_vars = set().union(*(ir.variables(lp.expr) for lp in p.loops[depth:]))
        outer_vars = set().union(*(ir.variables(lp.expr) for lp in p.loops[:depth])) - inner_vars
        if reads_its_element(kernel, s, outer_vars):
            continue
        result = result.union(isl.UnionMap.from_map(d.relation))
    return result


def arg_pairs(kernel: KernelIR) -> dict[str, str]:
    """Each arg-reduction's index update (`idx[i] = select(...)`, ir/argreduce.py) by the
    statement that reduces its best value (`best[i] max= ...`), which follows it."""
    result = {}
    for s in kernel.statements:
        if s.op not in ("max=", "min=") or s.is_init:
            continue
        for u in kernel.statements:
            if u.op == "=" and u.iterators == s.iterators and u.lhs.indices == s.lhs.indices \
                    and argreduce.pair_of(
                    u.lhs.tensor, u.lhs.indices, u.rhs, s.lhs.tensor, s.lhs.indices, s.op,
                    s.rhs) is not None:
                result[s.name] = u.name
    return result


def arg_chains(kernel: KernelIR, placements, depth: int) -> isl.UnionMap:
    """The dependences between the two statements of an arg-reduction's pair, where the loop
    at `depth` is the innermost loop of both (one loop: they share it) and indexes neither
    target: SIMD code runs such a loop in chunks that keep the tie rule (backends/simd_arg.py),
    and any other lowering of it as the plain scalar loop."""
    result = isl.UnionMap.empty(kernel.context.get_space())
    pairs = arg_pairs(kernel)
    for value_stmt, update_stmt in pairs.items():
        pv, pu = placements.get(value_stmt), placements.get(update_stmt)
        if pv is None or pu is None or len(pv.loops) != depth + 1 or \
                len(pu.loops) != depth + 1 or pv.order[:depth + 1] != pu.order[:depth + 1]:
            continue
        s = kernel.statement[value_stmt]
        if ir.variables(pv.loops[depth].expr) & set().union(
                *(ir.variables(x) for x in s.lhs.indices)):
            continue
        names = {value_stmt, update_stmt}
        for d in Dependences.of(kernel).all:
            if d.source in names and d.sink in names:
                result = result.union(isl.UnionMap.from_map(d.relation))
    return result


def marks(node: isl.ScheduleNode):
    """Every mark node of a schedule tree, outer first."""
    if node.get_type() == isl.schedule_node_type.mark:
        yield node
    for i in range(node.n_children()):
        yield from marks(node.child(i))
