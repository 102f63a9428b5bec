"""The one carried-dependence query (`ir.dependences`): a loop carries a dependence when the
dependence relates two instances in one iteration of the outer loops and in different
iterations of the loop. Asked of a schedule tree's band (`carried_by`, for parallel and vector
loops) and of loops named by iterator (`carries`, for the GPU planners); both must agree."""

from __future__ import annotations

import islpy as isl
import pytest

from loopweave.ir.dependences import (
    Dependences,
    carried_by,
    carries,
    iteration_map,
    same_time,
    within_one_iteration,
)
from loopweave.pipeline import front_end

MATMUL = """kernel matmul(A: f32[M, K], B: f32[K, N]) -> C: f32[M, N] {
    C[i, j] += A[i, k] * B[k, j]
}"""

# A recurrence along t (a host loop), each step a row that is independent along i.
SCAN = """kernel scan(X: f32[T, N], Y: inout f32[T, N]) {
    for t in 1:T {
        Y[t, i] = Y[t - 1, i] + X[t, i]
    }
}"""


def self_dependences(kernel, stmt: str):
    return [d for d in Dependences.of(kernel).all if d.source == d.sink == stmt]


def reduction(kernel):
    (stmt,) = [s for s in kernel.statements if s.op == "+="]
    return stmt


def test_a_reduction_loop_carries_its_dependence_and_the_others_do_not():
    kernel = front_end(MATMUL)
    s = reduction(kernel)
    deps = self_dependences(kernel, s.name)
    assert deps
    assert any(carries(kernel, d, ["k"], ["i", "j"]) for d in deps)
    assert not any(carries(kernel, d, ["i"]) or carries(kernel, d, ["j"], ["i"]) for d in deps)
    # Several loops together: carried when the pair differs on any of them.
    assert any(carries(kernel, d, ["j", "k"], ["i"]) for d in deps)


def test_a_host_loop_carries_a_recurrence_and_the_row_inside_it_does_not():
    kernel = front_end(SCAN)
    (s,) = [s for s in kernel.statements if s.lhs.tensor == "Y" and s.op == "="]
    deps = [d for d in Dependences.of(kernel).all if d.source == d.sink == s.name]
    assert any(carries(kernel, d, ["t"]) for d in deps)
    assert not any(carries(kernel, d, ["i"], ["t"]) for d in deps)
    # Inside one iteration of t, no instance depends on another.
    assert all(within_one_iteration(kernel, d, ["t"]).is_empty() for d in deps)
    assert not all(within_one_iteration(kernel, d, []).is_empty() for d in deps)


@pytest.mark.parametrize("source", [MATMUL, SCAN])
def test_the_band_query_and_the_named_query_agree(source):
    """In program order a statement's schedule is its iterators in order, so a band at depth d
    with n members carries a statement's dependences on itself exactly when its iterators
    d..d+n-1 do inside the ones before d."""
    kernel = front_end(source)
    checked = 0
    for band in bands(kernel.schedule.get_root()):
        depth, width = band.get_schedule_depth(), band.band_n_member()
        for s in kernel.statements:
            deps = self_dependences(kernel, s.name)
            if not deps or band.get_domain().intersect(
                    isl.UnionSet.from_set(s.domain)).is_empty():
                continue
            by_band = carried_by(band, union(kernel, deps))
            by_name = any(carries(kernel, d, s.iterators[depth:depth + width],
                                  s.iterators[:depth]) for d in deps)
            assert by_band.is_empty() != by_name, (s.name, depth, width)
            checked += 1
    assert checked


def test_same_time_pairs_instances_with_equal_times():
    kernel = front_end(MATMUL)
    s = reduction(kernel)
    pairs = same_time(iteration_map(kernel, {s.name: ["i", "j"]}))
    m = isl.UnionMap(f"[M, K, N] -> {{ {s.name}[1, 2, 3] -> {s.name}[1, 2, 5] }}")
    assert m.is_subset(pairs)
    other = isl.UnionMap(f"[M, K, N] -> {{ {s.name}[1, 2, 3] -> {s.name}[1, 4, 3] }}")
    assert not other.is_subset(pairs)


def bands(node: isl.ScheduleNode):
    if node.get_type() == isl.schedule_node_type.band:
        yield node
    for i in range(node.n_children()):
        yield from bands(node.child(i))


def union(kernel, deps) -> isl.UnionMap:
    result = isl.UnionMap.empty(kernel.context.get_space())
    for d in deps:
        result = result.union(isl.UnionMap.from_map(d.relation))
    return result
