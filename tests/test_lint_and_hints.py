"""The front end's lint (a reduced index one edit from a free index: a likely typo) and errors
that suggest their fix: bounds errors an `assume` or a `where` range, the parallel-reduction
error `reassociate` and `vectorize`. Each suggested fix is applied and must then compile."""

from __future__ import annotations

import re
import warnings

import pytest

import loopweave
from loopweave.driver import front_end, stages
from loopweave.errors import BoundsError, DSLWarning, LoopweaveWarning, ScheduleError
from loopweave.frontend.lint import one_edit_apart


def _lint(source: str) -> list[DSLWarning]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        front_end(source)
    return [w.message for w in caught if issubclass(w.category, DSLWarning)]


TYPO = """kernel matmul(A: f32[M, K], B: f32[K, N]) -> C: f32[M, N] {
    C[i, j] += A[i, k] * B[k, jj]
}"""


def test_a_reduced_index_one_edit_from_a_free_one_warns_at_its_position():
    with pytest.warns(LoopweaveWarning) as record:
        front_end(TYPO)
    [w] = [r.message for r in record]
    assert isinstance(w, DSLWarning)
    assert (w.line, w.column) == (2, 31)  # the jj of B[k, jj]
    for part in ("'jj'", "did you mean 'j'", "index of C", "where jj in lo:hi"):
        assert part in w.message
    assert "    C[i, j] += A[i, k] * B[k, jj]\n" in str(w)  # the line, with a caret under it


@pytest.mark.parametrize("body", [
    "C[i, j] += A[i, k] * B[k, j]",  # the matmul
    "C[i, j] += A[i, jj] * B[jj, j]",  # jj links two accesses: a contraction index
    "C[i, j] += A[i, k] * B[k, jj] where jj in 0:N",  # a range of its own: meant
    "C[i, j] max= A[i, k] + B[k, j]",
], ids=["matmul", "contraction", "ranged", "max-plus"])
def test_no_warning_for_meant_reductions(body):
    source = f"kernel f(A: f32[M, K], B: f32[K, N]) -> C: f32[M, N] {{ {body} }}"
    assert _lint(source) == []


def test_a_row_sum_over_another_one_letter_index_is_no_typo():
    assert _lint("kernel rs(A: f32[N, M]) -> s: f32[N] { s[i] += A[i, j] }") == []


RESTARTED = """kernel trmv(A: f32[N, N], x: f32[N]) -> y: f32[N] {
    for i in 0:N {
        for j in 0:i + 1 {
            y[i] += A[i, j] * x[j]
        }
    }
}"""


def test_an_output_reduction_restarted_by_a_loop_warns():
    # y[i] starts from 0 in every iteration of j: only A[i, i] * x[i] would be returned.
    [w] = _lint(RESTARTED)
    assert (w.line, w.column) == (4, 13)
    assert "every iteration of loop 'j'" in w.message and "where" in w.message
    fixed = RESTARTED.replace("for j in 0:i + 1 {", "{").replace(
        "y[i] += A[i, j] * x[j]", "y[i] += A[i, j] * x[j] where j in 0:i + 1")
    fixed = fixed.replace("        {\n", "").replace("        }\n    }", "    }")
    assert _lint(fixed) == []


def test_a_temporary_restarted_per_iteration_or_an_indexed_output_does_not_warn():
    doitgen_like = """kernel f(A: f32[R, P], C4: f32[P, P]) -> Y: f32[R, P] {
    for r in 0:R {
        s[p] += A[r, q] * C4[q, p]
        Y[r, p] = s[p]
    }
}"""
    scan_like = """kernel g(x: f32[T, D]) -> y: f32[T, D] {
    for t in 0:T {
        y[t, d] += x[t, d] * x[t, e] where e in 0:D
    }
}"""
    assert _lint(doitgen_like) == [] and _lint(scan_like) == []


def test_a_reduction_over_a_near_name_in_a_loop_nest_warns():
    source = "kernel rs(A: f32[N, M]) -> s: f32[N] { s[row] += A[row, rows] }"
    [w] = _lint(source)
    assert "'rows'" in w.message and "did you mean 'row'" in w.message


@pytest.mark.parametrize("a, b, near", [
    ("j", "jj", True), ("jj", "j", True), ("row", "rows", True), ("col", "cal", True),
    ("j", "k", False), ("i", "i", False), ("row", "col", False), ("j", "jjj", False),
])
def test_one_edit_apart(a, b, near):
    assert one_edit_apart(a, b) is near


# -- bounds errors suggest their fix -----------------------------------------------------------

def _bounds_error(source: str) -> BoundsError:
    with pytest.raises(BoundsError) as e:
        front_end(source)
    return e.value


def _suggested(message: str, keyword: str) -> str:
    """The `assume ...` or `where ...` text a message suggests."""
    found = re.search(rf"`({keyword} [^`]*)`", message)
    assert found, f"no {keyword} suggested in: {message}"
    return found.group(1)


def test_an_empty_tensor_suggests_assume_at_least_one():
    source = "kernel first(A: f32[N]) -> s: f32[] {\n    s[] = A[0]\n}"
    assume = _suggested(_bounds_error(source).message, "assume")
    assert assume == "assume N >= 1"
    front_end(source.replace("{\n", "{\n    " + assume + "\n"))


def test_a_shifted_read_suggests_a_where_range():
    source = "kernel shift(A: f32[N]) -> B: f32[N] {\n    B[i] = A[i + 1]\n}"
    where = _suggested(_bounds_error(source).message, "where")
    assert where == "where i in 0:N - 1"
    front_end(source.replace("A[i + 1]", "A[i + 1] " + where))


def test_sizes_that_must_relate_suggest_an_assume_between_them():
    source = ("kernel pick(A: f32[N], Z: f32[M]) -> B: f32[M] {\n"
              "    B[i] = A[i + 1]\n}")
    assume = _suggested(_bounds_error(source).message, "assume")
    front_end(source.replace("{\n", "{\n    " + assume + "\n"))


def test_no_fix_is_suggested_where_none_exists_that_the_dsl_can_write():
    message = _bounds_error("kernel even(A: f32[N]) -> B: f32[N] { B[i] = A[2 * i] }").message
    assert "out of bounds" in message and "assume" not in message and "where" not in message


# -- the parallel-reduction error suggests reassociate -----------------------------------------

MATMUL = """kernel matmul(A: f32[M, K], B: f32[K, N]) -> C: f32[M, N] {
    C[i, j] += A[i, k] * B[k, j]
}"""


def test_a_parallel_reduction_loop_suggests_reassociate_and_vectorize():
    with pytest.raises(ScheduleError) as e:
        loopweave.compile(MATMUL, schedule=loopweave.Schedule().parallel("S1", "k"))
    text = str(e.value)
    assert text.startswith("loop k of S1 cannot be parallel")
    for part in ("both update C[0, 0]", "reduction (+=)", "in parallel instead",
                 'reassociate("C")', "`vectorize` k"):
        assert part in text
    # Both suggestions are legal.
    stages(MATMUL, schedule=loopweave.Schedule().parallel("S1", "i"))
    stages(MATMUL, schedule=loopweave.Schedule().vectorize("S1", "k"))


def test_a_recurrence_gets_no_reduction_hint():
    scan = "kernel scan(A: inout f32[N]) { A[i] += A[i - 1] where i in 1:N }"
    with pytest.raises(ScheduleError) as e:
        loopweave.compile(scan, schedule=loopweave.Schedule().parallel("A", "i"))
    assert "cannot be parallel" in str(e.value) and "reassociate" not in str(e.value)
