"""The `align` step (passes/schedule.py) and the line copies that carry it out
(backends/lines.py): argument arrays that start off a 64-byte line run as line-aligned copies,
and the ones the kernel writes come back.

Checked on the step's records and errors, on the copies themselves (addresses, contents,
buffers kept per thread), numerically at every offset of a line on the first call's path, the
planned path and the invoker's call by name, from two threads at once, and that the schedules
of lu, ludcmp and cholesky ask for their matrix on lines."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import loopweave
from loopweave.backends.c import address
from loopweave.backends.lines import LINE, LineCopies
from loopweave.errors import ScheduleError
from loopweave.examples import load_polybench_references
from loopweave.passes import default as default_pass
from loopweave.passes.schedule import Schedule
from loopweave.pipeline import front_end

AXPY = """
kernel axpy(a: f64, x: f64[N, M], acc: inout f64[N, M]) -> y: f64[N, M] {
    acc[i, j] += x[i, j] * a
    y[i, j] = x[i, j] + acc[i, j]
}
"""


def at_offset(array: np.ndarray, offset: int) -> np.ndarray:
    """A copy of `array` whose data starts `offset` bytes past a line."""
    raw = np.empty(array.nbytes + 2 * LINE, np.uint8)
    start = -address(raw) % LINE + offset
    copy = np.ndarray(array.shape, array.dtype, raw, start)
    copy[...] = array
    return copy


def test_the_step_records_argument_tensors_and_refuses_the_others():
    kernel = front_end(AXPY)
    schedule = Schedule().align("x").align("acc").align("x")
    assert schedule.apply(kernel).aligned == ("x", "acc")
    assert Schedule.from_json(schedule.to_json()).apply(kernel).aligned == ("x", "acc")
    assert Schedule().apply(kernel).aligned == ()
    with pytest.raises(ScheduleError, match="align 'y': it is not an argument.*x, acc"):
        Schedule().align("y").apply(kernel)
    with pytest.raises(ScheduleError, match="align 'z': it is not a tensor of the kernel"):
        Schedule().align("z").apply(kernel)


def test_the_copies_start_on_lines_hold_the_data_and_are_kept_per_thread():
    copies = LineCopies((0, 2), (False, True), address)
    base = np.arange(35, dtype=np.float64).reshape(5, 7)
    off, on = at_offset(base, 8), at_offset(base, 0)
    values = [off, 3, on]
    assert copies.move(values) == []  # only `off` moves, and it is read-only
    assert values[2] is on and values[0] is not off and address(values[0]) % LINE == 0
    np.testing.assert_array_equal(values[0], base)
    first = values[0]
    values = [at_offset(base, 16), 3, at_offset(base, 40)]
    given = values[2]
    back = copies.move(values)
    assert address(values[0]) == address(first)  # the buffer of the call before
    assert len(back) == 1 and back[0][0] is given and back[0][1] is values[2]
    seen = []
    worker = threading.Thread(target=lambda: seen.append(address(
        (v := [at_offset(base, 8), 0, on], copies.move(v))[0][0])))
    worker.start()
    worker.join()
    assert seen[0] % LINE == 0 and seen[0] != address(first)  # its own buffer


@pytest.mark.parametrize("offset", [0, 8, 16, 24, 48, 56])
def test_arrays_off_a_line_give_the_results_and_inouts_come_back(offset):
    """Every path of a call: the first call's (the invoker by name), the planned one (the C
    entry for numpy objects) and the invoker's call by name with a plan taken."""
    kernel = loopweave.compile(AXPY, schedule=Schedule().align("x").align("acc"),
                               tuning_db=False)
    rng = np.random.default_rng(offset)
    for n, m in [(5, 3), (9, 17), (9, 17), (9, 17)]:
        x, start = rng.random((n, m)), rng.random((n, m))
        x_off, acc = at_offset(x, offset), at_offset(start, offset)
        y = kernel(2.5, x_off, acc)
        np.testing.assert_allclose(acc, start + 2.5 * x, rtol=1e-14)
        np.testing.assert_allclose(y, x + start + 2.5 * x, rtol=1e-14)
        np.testing.assert_array_equal(x_off, x)  # read-only: not written back
    acc = at_offset(start, offset)
    kernel.invoke({"x": at_offset(x, offset), "acc": acc, "y": np.zeros((n, m))},
                  {"a": 2.0}, {"N": n, "M": m})
    np.testing.assert_allclose(acc, start + 2.0 * x, rtol=1e-14)


def test_calls_from_two_threads_keep_their_copies_apart():
    kernel = loopweave.compile(AXPY, schedule=Schedule().align("x").align("acc"),
                               tuning_db=False)
    failures = []

    def calls(seed: int) -> None:
        rng = np.random.default_rng(seed)
        for _ in range(40):
            x, start = rng.random((33, 31)), rng.random((33, 31))
            acc = at_offset(start, 8 * seed)
            kernel(1.5, at_offset(x, 16), acc)
            if not np.allclose(acc, start + 1.5 * x, rtol=1e-14):
                failures.append(seed)
    workers = [threading.Thread(target=calls, args=(seed,)) for seed in (1, 2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert failures == []


@pytest.mark.parametrize("name", ["lu", "ludcmp", "cholesky"])
def test_the_eliminations_ask_for_their_matrix_on_lines(name):
    """right_looking's (lu, ludcmp) and row_blocks' (cholesky) vector loops re-read rows of A
    (1.45-1.6x off a line, LARGE): their schedules align it, and only it."""
    source = load_polybench_references().POLYBENCH[name].source()
    steps = default_pass.default_schedule(front_end(source)).steps
    assert [(s.op, s.target) for s in steps if s.op == "align"] == [("align", "A")]
