"""Random schedules over the example kernel set (hypothesis).

Every schedule the legality check accepts must give the numpy answer; every one it rejects must
really break something, which is checked here without isl's dependence analysis: on the tiny
sizes of isl's counterexample, every statement instance is enumerated with the elements it
reads and writes, and two instances that touch one element (one of them writing) must be
found in the opposite order (or in different iterations of a loop marked parallel).
"""

from __future__ import annotations

import itertools

import islpy as isl
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_kernels import refs

import loopweave
from loopweave import Schedule, ScheduleError
from loopweave.driver import front_end
from loopweave.ir import expr as ir
from loopweave.ir import isl_helpers
from loopweave.ir.dependences import violations
from loopweave.ir.types import BOOL
from loopweave.passes import placement as pl
from loopweave.passes.legality import carried_by, marks

# Kernels whose small cases compile quickly; every one of the set takes part.
KERNELS = sorted(refs.KERNELS)
_IR = {}


def _ir(name: str):
    if name not in _IR:
        _IR[name] = front_end(refs.KERNELS[name].path.read_text())
    return _IR[name]


@st.composite
def random_schedules(draw):
    name = draw(st.sampled_from(KERNELS))
    kernel = _ir(name)
    placements = Schedule().placements(kernel)
    stmts = [s.name for s in kernel.statements if placements[s.name].loops]
    assume(stmts)
    s = Schedule()
    for _ in range(draw(st.integers(1, 4))):
        stmt = draw(st.sampled_from(stmts))
        try:
            loops = s.placements(kernel)[stmt].names()
        except ScheduleError:  # a step so far is refused (a CSR loop's tile): apply says so
            break
        op = draw(st.sampled_from(["tile", "reorder", "fuse", "parallel", "skew", "distribute",
                                   "reassociate", "separate", "order"]))
        if op == "tile":
            loop = draw(st.sampled_from(loops))
            s.tile(stmt, **{loop: draw(st.integers(1, 3))})
        elif op == "reorder":
            s.reorder(stmt, *draw(st.permutations(loops)))
        elif op == "fuse" and len(stmts) > 1:
            other = draw(st.sampled_from([x for x in stmts if x != stmt]))
            s.fuse(stmt, other, depth=1)
        elif op == "parallel":
            s.parallel(stmt, draw(st.sampled_from(loops)))
        elif op == "distribute":
            s.distribute(stmt, draw(st.sampled_from(loops)))
        elif op == "reassociate" and _reassociable(kernel.statement[stmt]):
            s.reassociate(stmt)  # then reorders of its reduction loops are accepted
        elif op == "separate" and len(loops) > 1:
            a, b = draw(st.permutations(loops))[:2]
            s.separate(stmt, a, b)
        elif op == "order" and len(stmts) > 1:
            s.order(draw(st.sampled_from([x for x in stmts if x != stmt])), stmt)
        elif op == "skew" and len(loops) > 1:
            a, b = draw(st.permutations(loops))[:2]
            s.skew(stmt, a, by=b, factor=draw(st.integers(-1, 2)))
    return name, s


def _reassociable(statement) -> bool:
    return statement.op in ("+=", "max=", "min=", "*=") and not any(
        load.tensor == statement.lhs.tensor for load in ir.loads(statement.rhs))


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(random_schedules())
def test_accepted_schedules_are_correct_and_rejected_ones_break_an_order(case):
    name, schedule = case
    kernel = _ir(name)
    try:
        schedule.apply(kernel)
    except ScheduleError as e:
        if any(why in str(e) for why in ("would be placed in the same slot",
                                         "share one sibling position", "are not one sibling",
                                         "range is read from tensors",
                                         "has its range read from tensors")):
            return  # a malformed request, or a step a CSR row's loop cannot take: no order
        confirmed = _brute_force_confirms(kernel, schedule)
        assume(confirmed is not None)  # isl's counterexample is too large to enumerate
        assert confirmed, f"{name}: {schedule} rejected: {e}"
        return
    ref = refs.KERNELS[name]
    sizes = ref.sizes[0]
    args = ref.make_inputs(sizes, 0)
    expected = ref.reference(**{k: (v.copy() if isinstance(v, np.ndarray) else v)
                                for k, v in args.items()})
    compiled = loopweave.compile(refs.KERNELS[name].path.read_text(), schedule=schedule)
    got = compiled(*args.values())
    outs = got if isinstance(got, tuple) else (got,) if got is not None else ()
    results = dict(zip(ref.outputs, outs, strict=False)) | {n: args[n] for n in ref.inouts}
    for out, want in expected.items():
        err, ok = refs.compare(results[out], want, ref.tol_scale)
        assert ok, f"{name} under {schedule}: {out} off by {err}"


# -- brute force -------------------------------------------------------------------------------

def _brute_force_confirms(kernel, schedule: Schedule) -> bool | None:
    """Does a brute-force enumeration find what the rejection claims? None: sizes too big."""
    kernel, placements = schedule.placed(kernel)  # with the pieces of `separate` steps
    tree = pl.build_tree(kernel, placements)
    found = violations(kernel, tree)
    if found:
        sizes = found[0].sizes
        if any(abs(v) > 12 for v in sizes.values()):
            return None  # too large to enumerate
        return _order_reversed(kernel, tree, sizes)
    for mark in marks(tree.get_root()):  # rejected for a parallel loop: find a race
        if not mark.mark_get_id().get_name().startswith("parallel"):
            continue
        band = mark.child(0)
        carried = carried_by(band, _all_pairs(kernel)).intersect_params(kernel.context)
        if carried.is_empty():
            continue
        m = isl_helpers.maps_of(carried)[0]
        sizes, _ = isl_helpers.point_values(m.wrap().sample_point(), m.wrap())
        if any(abs(v) > 12 for v in sizes.values()):
            return None
        return _race(kernel, band, sizes)
    return False


def _all_pairs(kernel) -> isl.UnionMap:
    """Every pair of instances with a common element, one writing (no dataflow analysis)."""
    reads, writes = kernel.access_relations()
    both = reads.union(writes)
    return writes.apply_range(both.reverse()).union(both.apply_range(writes.reverse()))


def _instances(kernel, schedule: isl.Schedule, sizes: dict[str, int]):
    """(statement, iterator values, time vector) of every instance under `schedule`."""
    return _points(kernel, schedule.get_map(), sizes)


def _points(kernel, umap: isl.UnionMap, sizes: dict[str, int]):
    """(statement, iterator values, image) of every instance in `umap` at `sizes`."""
    fixed = isl_helpers.params_set(kernel.params, [
        ir.Binary("==", ir.Param(p), ir.Const(sizes.get(p, 0)), BOOL) for p in kernel.params])
    result = []
    umap = umap.intersect_domain(kernel.domains())
    for m in isl_helpers.maps_of(umap.intersect_params(fixed)):
        stmt = kernel.statement[m.get_tuple_name(isl.dim_type.in_)]
        m = m.project_out(isl.dim_type.param, 0, m.dim(isl.dim_type.param))  # all fixed
        points = []
        m.domain().foreach_point(points.append)
        for point in points:
            _, coords = isl_helpers.point_values(point, m.domain())
            image = m.intersect_domain(isl.Set.from_point(point)).range().sample_point()
            _, time = isl_helpers.point_values(image, m.range())
            result.append((stmt, tuple(coords), tuple(time)))
    return result


def _touches(stmt, coords, sizes):
    # A gather (`T[g, w[n, g]]`) reads an element that depends on data: it stands for every
    # element of its tensor (index "*"), as isl's dependences take it (mxfp4's table `Lo`,
    # written by the kernel before the lookups).
    env = dict(sizes) | dict(zip(stmt.iterators, coords, strict=True))
    out = [(a.tensor, "*" if any(ir.is_indirect(x) for x in a.indices)
            else tuple(ir.evaluate(x, env) for x in a.indices), False)
           for a in ir.loads(stmt.rhs)]
    out.append((stmt.lhs.tensor, tuple(ir.evaluate(x, env) for x in stmt.lhs.indices), True))
    return out


def _by_element(kernel, schedule, sizes):
    elements: dict = {}
    for stmt, coords, time in _instances(kernel, schedule, sizes):
        for tensor, index, write in _touches(stmt, coords, sizes):
            elements.setdefault((tensor, index), []).append(((stmt.name, coords), time, write))
    return _spread_gathers(elements)


def _spread_gathers(elements: dict) -> dict:
    """`elements` with each gather's accesses (index "*") added to every element of its
    tensor that something else touches."""
    for (tensor, index), gathers in [(k, v) for k, v in elements.items() if k[1] == "*"]:
        del elements[(tensor, index)]
        for key in [k for k in elements if k[0] == tensor]:
            elements[key] = elements[key] + gathers
    return elements


def _order_reversed(kernel, new: isl.Schedule, sizes) -> bool:
    old_time = {inst: t for inst_list in _by_element(kernel, kernel.schedule, sizes).values()
                for inst, t, _ in inst_list}
    for accesses in _by_element(kernel, new, sizes).values():
        for (a, ta, wa), (b, tb, wb) in itertools.combinations(accesses, 2):
            if a != b and (wa or wb) and (old_time[a] < old_time[b]) != (ta < tb):
                return True
    return False


def _race(kernel, band: isl.ScheduleNode, sizes) -> bool:
    """Two instances in different iterations of `band` (same outer iteration) touching one
    element, one of them writing."""
    outer = band.get_prefix_schedule_union_map()
    loop = outer.flat_range_product(band.band_get_partial_schedule_union_map())
    where = {(stmt.name, coords): t for stmt, coords, t in _points(kernel, loop, sizes)}
    elements: dict = {}
    for stmt, coords, _ in _points(kernel, loop, sizes):
        for tensor, index, write in _touches(stmt, coords, sizes):
            elements.setdefault((tensor, index), []).append(((stmt.name, coords), write))
    for accesses in _spread_gathers(elements).values():
        for (a, wa), (b, wb) in itertools.combinations(accesses, 2):
            ta, tb = where[a], where[b]
            if a != b and (wa or wb) and ta[:-1] == tb[:-1] and ta[-1] != tb[-1]:
                return True
    return False


def test_brute_force_finds_the_reversal_of_a_known_illegal_interchange():
    src = """
    kernel gs(A: inout f32[N, N]) {
        A[i, j] = (A[i - 1, j + 1] + A[i, j]) / 2.0   where i in 1:N, j in 0:N-1
    }"""
    kernel = front_end(src)
    bad = Schedule().reorder("A", "j", "i")
    with pytest.raises(ScheduleError):
        bad.apply(kernel)
    assert _brute_force_confirms(kernel, bad)
    assert not _order_reversed(kernel, pl.build_tree(kernel, Schedule().placements(kernel)),
                               {"N": 5})
