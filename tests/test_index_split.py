"""Index-set splitting (passes/index_split.py): a statement whose write meets one of its reads on
one hyperplane of a loop runs as the pieces before, on and after it, in program order; the
default then vectorizes and parallelizes the pieces (floyd-warshall). Checked on the pieces, the
marks, and numerically against program order and the numpy reference at odd sizes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import loopweave
from loopweave.examples import load_polybench_references
from loopweave.passes.default import default_schedule
from loopweave.passes.index_split import split_index_sets
from loopweave.pipeline import front_end, get_target, splits_index_sets

poly = load_polybench_references()
CFLAGS = "-O1 -march=native"


def test_floyd_warshall_splits_at_i_and_j_equal_k_into_vector_and_parallel_pieces():
    kernel = front_end(poly.POLYBENCH["floyd-warshall"].source())
    split = split_index_sets(kernel)
    assert [s.name for s in split.statements] == [
        "S0", "S0_j_at", "S0_j_after", "S0_i_at", "S0_i_at_j_at", "S0_i_at_j_after",
        "S0_i_after", "S0_i_after_j_at", "S0_i_after_j_after"]
    # The pieces hold every instance of the statement, each once.
    pieces = [s.domain.set_tuple_name("S0") for s in split.statements]
    union = pieces[0]
    for p in pieces[1:]:
        union = union.union(p)
    assert union.is_equal(kernel.statements[0].domain)
    assert all(a.intersect(b).is_empty() for a, b in itertools.combinations(pieces, 2))
    steps = [(s.op, s.target, tuple(s.args)) for s in default_schedule(split).steps]
    assert ("parallel", "S0_i_after", ("i",)) in steps
    assert ("vector", "S0_i_after_j_after", ("j",)) in steps


def test_floyd_warshall_split_matches_program_order_and_reference():
    source = poly.POLYBENCH["floyd-warshall"].source()
    kernel = loopweave.compile(source, cflags=CFLAGS, tuning_db=False)
    naive = loopweave.compile(source, schedule=loopweave.Schedule(), cflags=CFLAGS)
    case = poly.POLYBENCH["floyd-warshall"]
    for n in (1, 2, 37):
        args = case.make_inputs({"N": n}, 4)
        a, b = (np.copy(args["path"]) for _ in range(2))
        kernel(path=a)
        naive(path=b)
        assert np.array_equal(a, b), n
        assert np.array_equal(a, case.expected({"path": np.copy(args["path"])})["path"])


@pytest.mark.parametrize("source", [
    # Another statement shares the j loop: splitting would move it relative to the pieces.
    """kernel k(p: inout i32[N, N]) -> q: i32[N, N] {
        for k in 0:N {
            for i in 0:N {
                for j in 0:N {
                    p[i, j] min= p[i, k] + p[k, j]
                    q[i, j] = p[i, j]
                }
            }
        }
    }""",
    # The write meets the read only along the DSL `for` loop k.
    """kernel k(a: inout f32[N]) {
        for k in 0:N {
            a[k] = a[k] + a[N - 1]
        }
    }""",
    # lu: the read A[i, k] meets the write A[i, j] at j == k, outside the domain (k < j).
    None,
])
def test_no_split_where_it_would_reorder_or_holds_one_piece(source):
    kernel = front_end(source or poly.POLYBENCH["lu"].source())
    assert split_index_sets(kernel) is kernel


def test_only_the_c_targets_split():
    """The GPU planners plan their own launches (the CUDA planner computed fuzz seed 17889's
    pieces wrong); the C targets' defaults vectorize the pieces."""
    assert splits_index_sets(get_target("cpu")) and splits_index_sets(get_target("aarch64"))
    assert not splits_index_sets(get_target("cuda"))
    assert not splits_index_sets(get_target("triton"))
