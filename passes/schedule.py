"""A user-facing schedule: a replayable list of steps applied to a kernel's isl schedule tree.

    s = loopweave.Schedule()
    s.tile("C", i=32, j=32)           # every statement writing C: loops i, j in 32x32 tiles
    s.reorder("C", "i_o", "j_o", "i", "k", "j")
    s.parallel("C", "i_o")
    kernel = loopweave.compile(src, schedule=s)

Each statement carries a loop plan: its loops from outer to inner, each an affine function of its
iterators (`i_o` = floor(i / 32), `i` itself). `apply()` replaces the statement's band in the
initial (program-order) schedule tree by one band per planned loop, checks the new schedule
against every dependence, and checks that loops marked parallel or vector carry none.
Steps are frozen records; `to_json()`/`from_json()` round-trip them.

Before `s.tile("C", i=32)` on `C[i, j] += ...`:        after:
    for i: for j: for k: S1                           for i_o: for j: for k: for i: S1
(the point loop `i` keeps its place; reorder to put it elsewhere).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import islpy as isl

from loopweave.errors import ScheduleError
from loopweave.ir import expr as ir
from loopweave.ir import isl_helpers
from loopweave.ir.dependences import Dependences, violations
from loopweave.ir.kernel import KernelIR, Statement

LOOP_KINDS = ("parallel", "vector", "unroll")


@dataclass(frozen=True, slots=True)
class Step:
    """One scheduling decision: `op` on the statements that `target` names."""

    op: str  # "tile", "reorder" or a loop kind from LOOP_KINDS
    target: str  # a tensor (every statement writing it) or a statement name "S3"
    args: tuple  # tile: ((var, size), ...); reorder: loop names; kinds: (loop name,)


@dataclass(frozen=True, slots=True)
class Loop:
    name: str
    expr: ir.Expr  # affine in the statement's iterators
    kind: str = "serial"


class Schedule:
    """Scheduling steps, applied in order by `apply(kernel)`."""

    def __init__(self, steps: list[Step] | None = None):
        self.steps: list[Step] = list(steps or [])

    def tile(self, target: str, **sizes: int) -> Schedule:
        """Split each named loop v into v_o = floor(v / size) (placed before the first tiled
        loop) and v (the point loop, which keeps its place)."""
        for var, size in sizes.items():
            if not isinstance(size, int) or size < 1:
                raise ScheduleError(f"tile size for {var} must be a positive integer, not {size!r}")
        self.steps.append(Step("tile", target, tuple(sizes.items())))
        return self

    def reorder(self, target: str, *loops: str) -> Schedule:
        """Put the named loops in this order, in the positions they occupy now."""
        self.steps.append(Step("reorder", target, loops))
        return self

    def parallel(self, target: str, loop: str) -> Schedule:
        """Run the iterations of `loop` in parallel (legal only if it carries no dependence)."""
        self.steps.append(Step("parallel", target, (loop,)))
        return self

    def vectorize(self, target: str, loop: str) -> Schedule:
        """Mark `loop` for SIMD execution (legal only if it carries no dependence)."""
        self.steps.append(Step("vector", target, (loop,)))
        return self

    def unroll(self, target: str, loop: str) -> Schedule:
        """Ask the backend to unroll `loop`."""
        self.steps.append(Step("unroll", target, (loop,)))
        return self

    def to_json(self) -> str:
        return json.dumps([{"op": s.op, "target": s.target, "args": list(s.args)}
                           for s in self.steps])

    @classmethod
    def from_json(cls, text: str) -> Schedule:
        steps = []
        for d in json.loads(text):
            args = tuple(tuple(a) if isinstance(a, list) else a for a in d["args"])
            steps.append(Step(d["op"], d["target"], args))
        return cls(steps)

    def apply(self, kernel: KernelIR) -> KernelIR:
        """`kernel` with this schedule; raises ScheduleError for a malformed or illegal step."""
        plans = {s.name: [Loop(v, ir.Var(v)) for v in
                          s.iterators[len(s.iterators) - _own_loops(kernel, s):]]
                 for s in kernel.statements}
        for step in self.steps:
            stmts = _targets(kernel, step.target)
            for s in stmts:
                plans[s.name] = _apply_step(step, plans[s.name], s)
            _check_names_exist(step, [plans[s.name] for s in stmts])
        schedule = _build(kernel, plans)
        _check_dependences(kernel, schedule)
        _check_loop_kinds(kernel, schedule)
        return kernel.with_schedule(schedule)


# -- plans ----------------------------------------------------------------------------------------

def _own_loops(kernel: KernelIR, s: Statement) -> int:
    """How many of the statement's iterators are its own (not enclosing `for` loops)."""
    band = _find_leaf_band(kernel.schedule, s)
    return 0 if band is None else band.band_n_member()


def _child_towards(node: isl.ScheduleNode, s: Statement) -> isl.ScheduleNode | None:
    target = isl.UnionSet.from_set(s.domain)
    for i in range(node.n_children()):
        child = node.child(i)
        # A filter's get_domain() is what reaches it, before filtering: test the filter itself.
        reach = child.filter_get_filter() if child.get_type() == isl.schedule_node_type.filter \
            else child.get_domain()
        if target.is_subset(reach):
            return child
    return None


def _targets(kernel: KernelIR, target: str) -> list[Statement]:
    if target in kernel.statement:
        return [kernel.statement[target]]
    stmts = [s for s in kernel.statements if s.lhs.tensor == target]
    if not stmts:
        raise ScheduleError(f"no statement writes {target!r}; name a tensor written by the kernel "
                            f"or a statement ({', '.join(kernel.statement)})")
    return stmts


def _apply_step(step: Step, plan: list[Loop], s: Statement) -> list[Loop]:
    names = [lp.name for lp in plan]
    if step.op == "tile":
        sizes = {v: n for v, n in step.args if v in names}
        if not sizes:
            return plan
        outer = [Loop(_fresh(f"{lp.name}_o", names), ir.Binary(
                     "/", lp.expr, ir.Const(sizes[lp.name]), lp.expr.dtype))
                 for lp in plan if lp.name in sizes]
        first = min(names.index(v) for v in sizes)
        return [*plan[:first], *outer, *plan[first:]]
    if step.op == "reorder":
        wanted = [n for n in step.args if n in names]
        slots = sorted(names.index(n) for n in wanted)
        new = list(plan)
        for slot, name in zip(slots, wanted, strict=True):
            new[slot] = plan[names.index(name)]
        return new
    if step.op in LOOP_KINDS:
        (loop,) = step.args
        return [Loop(lp.name, lp.expr, step.op) if lp.name == loop else lp for lp in plan]
    raise ScheduleError(f"unknown schedule step {step.op!r}")


def _fresh(name: str, taken: list[str]) -> str:
    """`name`, or `name` with more `o`s if a loop already has it (tiling a tile loop)."""
    while name in taken:
        name += "o"
    return name


def _check_names_exist(step: Step, plans: list[list[Loop]]) -> None:
    names = {lp.name for plan in plans for lp in plan}
    wanted = [a[0] if isinstance(a, tuple) else a for a in step.args]
    missing = [n for n in wanted if n not in names]
    if missing:
        raise ScheduleError(f"{step.op} on {step.target!r}: no loop named {missing[0]!r}; "
                            f"its loops are {', '.join(sorted(names))}")


# -- the isl schedule tree -------------------------------------------------------------------------

def _find_leaf_band(schedule: isl.Schedule, s: Statement) -> isl.ScheduleNode | None:
    """The innermost band over the statement alone (its own loops in the initial tree)."""
    node, found = schedule.get_root(), None
    while node is not None:
        if node.get_type() == isl.schedule_node_type.band and \
                node.get_domain().is_equal(isl.UnionSet.from_set(s.domain)):
            found = node
            break
        node = _child_towards(node, s) if node.n_children() else None
    return found


def _build(kernel: KernelIR, plans: dict[str, list[Loop]]) -> isl.Schedule:
    schedule = kernel.schedule
    for s in kernel.statements:
        plan = plans[s.name]
        initial = [Loop(v, ir.Var(v)) for v in s.iterators[len(s.iterators) - len(plan):]]
        if plan == initial:
            continue
        node = _find_leaf_band(schedule, s)
        if node is None:
            continue
        node = node.delete()
        for loop in reversed(plan):  # insert innermost first: each insert goes above
            node = node.insert_partial_schedule(
                isl_helpers.band(kernel.params, [[(s.name, s.iterators, loop.expr)]]))
            if loop.kind != "serial":
                node = node.insert_mark(isl.Id(f"{loop.kind}:{s.name}:{loop.name}"))
        schedule = node.get_schedule()
    return schedule


# -- legality -------------------------------------------------------------------------------------

def _instance(kernel: KernelIR, stmt: str, values: dict[str, int]) -> str:
    s = kernel.statement[stmt]
    its = ", ".join(f"{k}={v}" for k, v in values.items())
    return f"{stmt}({its}) (line {s.pos.line})"


def _check_dependences(kernel: KernelIR, schedule: isl.Schedule) -> None:
    for v in violations(kernel, schedule):
        d = v.dependence
        sizes = ", ".join(f"{k}={n}" for k, n in v.sizes.items())
        raise ScheduleError(
            f"the schedule breaks the {d.kind} dependence on {d.tensor} from "
            f"{d.source} to {d.sink}: {_instance(kernel, d.source, v.source_instance)} must run "
            f"before {_instance(kernel, d.sink, v.sink_instance)} (sizes {sizes})")


def _check_loop_kinds(kernel: KernelIR, schedule: isl.Schedule) -> None:
    """A parallel or vector loop may carry no dependence."""
    deps = None
    for mark in _marks(schedule.get_root()):
        kind, stmt, loop = mark.mark_get_id().get_name().split(":")
        if kind == "unroll":
            continue
        deps = deps or Dependences(kernel).union()
        band = mark.child(0)
        outer = band.get_prefix_schedule_union_map()
        inner = outer.flat_range_product(band.band_get_partial_schedule_union_map())
        same_outer = outer.apply_range(outer.reverse())
        same_inner = inner.apply_range(inner.reverse())
        carried = deps.intersect(same_outer).subtract(same_inner)
        carried = carried.intersect_params(kernel.context)
        if not carried.is_empty():
            m = isl_helpers.maps_of(carried)[0]
            point = m.wrap().sample_point()
            _, coords = isl_helpers.point_values(point, m.wrap())
            src = m.get_tuple_name(isl.dim_type.in_)
            snk = m.get_tuple_name(isl.dim_type.out)
            n = len(kernel.statement[src].iterators)
            a = dict(zip(kernel.statement[src].iterators, coords[:n], strict=True))
            b = dict(zip(kernel.statement[snk].iterators, coords[n:], strict=True))
            raise ScheduleError(f"loop {loop} of {stmt} cannot be {kind}: it carries a dependence"
                                f" from {_instance(kernel, src, a)} to {_instance(kernel, snk, b)}")


def _marks(node: isl.ScheduleNode):
    if node.get_type() == isl.schedule_node_type.mark:
        yield node
    for i in range(node.n_children()):
        yield from _marks(node.child(i))
