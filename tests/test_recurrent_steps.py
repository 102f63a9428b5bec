"""Contractions in the steps of a recurrence (an LSTM's `h @ W_hh^T` inside `for t`):

- normalize copies a loop-invariant input that a step reads transposed, once, before the loop
  (passes/hoist_transpose.py), and leaves the cases it must alone;
- the default gives the step's contraction a register tile without a packed panel
  (`passes/default.step_contraction_steps`), and a batched contraction whose B the batch shares
  (the input projection of every step) packs each panel once, outside the batch loops;
- the generated code matches numpy at odd sizes, and equals program order's result;
- temporaries are kept from call to call (`CallPlan.scratch`), one set per thread, and results
  do not depend on what a previous call left in them.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

import loopweave
from loopweave.driver import stages
from loopweave.ir.expr import to_str
from loopweave.passes.hoist_transpose import hoist_transposed_operands
from loopweave.passes.loop_kinds import loop_marks
from loopweave.pipeline import front_end

ROOT = Path(__file__).resolve().parent.parent
LSTM = (ROOT / "examples/kernels/lstm.lw").read_text()
S = loopweave.Schedule

# A recurrence whose step reads W transposed and then rewrites what the step read (h).
STEP = """
kernel step(x: f32[T, B, N], W: f32[N, N], h0: f32[B, N]) -> (h: f32[B, N], y: f32[T, B, N]) {
    h[b, j] = h0[b, j]
    for t in 0:T {
        z[b, g] += h[b, j] * W[g, j]
        y[t, b, g] = z[b, g]
        h[b, j] = x[t, b, j] + z[b, j] * 0.001
    }
}
"""


def lstm_inputs(t, b, i, h, seed=0):
    r = np.random.default_rng(seed)
    k = 1 / np.sqrt(h)

    def u(*shape, s=1.0):
        return r.uniform(-s, s, shape).astype(np.float32)
    return (u(t, b, i), u(4 * h, i, s=k), u(4 * h, h, s=k), u(4 * h, s=k), u(b, h), u(b, h))


def lstm_numpy(x, w_ih, w_hh, bias, h, c):
    def sigmoid(v):
        return 1 / (1 + np.exp(-v))
    h, c = h.astype(np.float64), c.astype(np.float64)
    ys = []
    for xt in x.astype(np.float64):
        zi, zf, zg, zo = np.split(xt @ w_ih.T + h @ w_hh.T + bias, 4, axis=1)
        c = sigmoid(zf) * c + sigmoid(zi) * np.tanh(zg)
        h = sigmoid(zo) * np.tanh(c)
        ys.append(h)
    return np.stack(ys), h, c


def test_a_transposed_loop_invariant_input_is_copied_before_the_loop():
    kernel = hoist_transposed_operands(front_end(LSTM, None))
    copy = kernel.tensors["W_hh_t"]
    # rows a cache line longer (passes/placement.line_padded)
    assert copy.role == "temp" and [to_str(d) for d in copy.shape] == ["H", "4 * H + 16"]
    names = [s.name for s in kernel.statements]
    transpose = next(s for s in kernel.statements if s.name.endswith("_transpose"))
    step = next(s for s in kernel.statements if "W_hh" in to_str(s.rhs) and s is not transpose)
    assert transpose.enclosing == 0 and names.index(transpose.name) < names.index(step.name)
    assert "W_hh_t[j, g]" in to_str(step.rhs) and "W_hh[" not in to_str(step.rhs)
    # W_ih, read transposed by a contraction outside any loop, is packed by the default instead
    assert "W_ih_t" not in kernel.tensors


@pytest.mark.parametrize("source", [
    # B written by the kernel
    """kernel k(A: f32[N, K], W: inout f32[M, K], T: i32) -> C: f32[T, N, M] {
        for t in 0:T { C[t, i, j] += A[i, k] * W[j, k]
                       W[j, k] = W[j, k] * 0.5 } }""",
    # B indexed by the enclosing loop: not invariant
    """kernel k(A: f32[N, K], W: f32[T, M, K]) -> C: f32[T, N, M] {
        for t in 0:T { C[t, i, j] += A[i, k] * W[t, j, k] } }""",
    # no enclosing loop
    """kernel k(A: f32[N, K], W: f32[M, K]) -> C: f32[N, M] { C[i, j] += A[i, k] * W[j, k] }""",
    # B not transposed
    """kernel k(A: f32[N, K], W: f32[K, M], T: i32) -> C: f32[T, N, M] {
        for t in 0:T { C[t, i, j] += A[i, k] * W[k, j] } }""",
], ids=["written", "indexed-by-t", "no-loop", "not-transposed"])
def test_what_stays_untouched(source):
    kernel = front_end(source, None)
    assert hoist_transposed_operands(kernel) is kernel


def test_lstm_default_schedule_tiles_the_step_and_packs_the_projection_once():
    st = stages(LSTM)
    steps = {(step.op, step.target): step.args for step in st.schedule.steps}
    step_reorder = next(args for (op, target), args in steps.items()
                        if op == "reorder" and "t" in args)
    assert step_reorder[:1] == ("t",) or list(step_reorder)[:1] == ["t"]
    projection = next(args for (op, target), args in steps.items()
                      if op == "cache_read" and args[0] == "W_ih")
    assert projection[1] == "s"  # packed at the batch loop: once per panel, for every step s
    source = loopweave.compile(LSTM, tuning_db=False, cost_model=False)
    generic = source.source.split("void lw_lstm")[1]  # before a call: symbolic strides,
    assert "lw_r0_0" in generic and "W_hh_t" in generic and "__builtin_prefetch" in generic
    args = lstm_inputs(3, 5, 7, 9)
    source(*[a.copy() for a in args])
    body = source.source.split("void lw_lstm")[1]  # built for them: rows 36 bytes apart are
    assert "lw_r0_0" in body and "W_hh_t" in body and "__builtin_prefetch" not in body  # left
    # to the hardware (`register_tile.PREFETCH_MIN_STRIDE`)


@pytest.mark.parametrize("sizes", [(3, 5, 7, 9), (6, 16, 33, 40), (2, 17, 16, 64)])
def test_lstm_matches_numpy_and_program_order(sizes):
    k = loopweave.compile(LSTM, tuning_db=False, cost_model=False)
    plain = loopweave.compile(LSTM, schedule=S(), tuning_db=False, cost_model=False)
    args = lstm_inputs(*sizes)
    y_ref, h_ref, c_ref = lstm_numpy(*args)
    for kernel in (k, plain):
        x, w_ih, w_hh, bias, h, c = (a.copy() for a in args)
        y = kernel(x, w_ih, w_hh, bias, h, c)
        np.testing.assert_allclose(y, y_ref, rtol=2e-5, atol=2e-6)
        np.testing.assert_allclose(h, h_ref, rtol=2e-5, atol=2e-6)
        np.testing.assert_allclose(c, c_ref, rtol=2e-5, atol=2e-6)


def test_a_step_that_also_writes_what_it_reads_is_exact():
    k = loopweave.compile(STEP, tuning_db=False, cost_model=False)
    r = np.random.default_rng(1)
    x, w, h0 = (r.standard_normal(s).astype(np.float32) for s in ((5, 3, 13), (13, 13), (3, 13)))
    h, y = k(x, w, h0)
    assert "W_t" in k.source.split("void lw_step")[1]
    hh, ys = h0.astype(np.float64), []
    for t in range(5):
        z = hh @ w.astype(np.float64).T
        ys.append(z)
        hh = x[t] + z * 0.001
    np.testing.assert_allclose(y, np.stack(ys), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(h, hh, rtol=1e-5, atol=1e-5)


def test_temporaries_are_kept_per_thread_and_never_read_stale():
    src = """kernel rows(X: f32[N, D]) -> Y: f32[N, D] {
        t[i] += X[i, j]
        Y[i, j] = X[i, j] - t[i]
    }"""
    k = loopweave.compile(src, schedule=S(), tuning_db=False, cost_model=False)
    r = np.random.default_rng(2)
    for _ in range(3):  # each call's sums start from zero whatever the last one left
        x = r.standard_normal((9, 7)).astype(np.float32)
        np.testing.assert_allclose(k(x), x - x.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-5)
    plan = next(iter(k._plans.values()))
    kept = plan.scratch.temporaries[1]
    k(x)
    assert plan.scratch.temporaries[1] is kept  # the same arrays on the next call
    seen = []
    thread = threading.Thread(target=lambda: (k(x), seen.append(plan.scratch.temporaries[1])))
    thread.start()
    thread.join()
    assert seen and seen[0] is not kept and seen[0][0] is not kept[0]
    # a call that converts its argument (a strided view: copied) takes the full path, which
    # keeps its own temporaries per thread the same way
    with pytest.warns(loopweave.StridedCopyWarning):
        y = k(np.asfortranarray(x))
    np.testing.assert_allclose(y, x - x.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-5)
    first = k._scratch.temporaries[1][0]
    k(np.asfortranarray(x))
    assert k._scratch.temporaries[1][0] is first


def test_gpu_targets_keep_zeroed_temporaries():
    src = """kernel rows(X: f32[N, D]) -> Y: f32[N, D] {
        t[i] += X[i, j]
        Y[i, j] = X[i, j] - t[i]
    }"""
    k = loopweave.compile(src, target="triton", tuning_db=False)
    assert not k._reuses_temporaries
    x = np.ones((3, 5), np.float32)
    for _ in range(2):
        np.testing.assert_allclose(k(x), x - 5.0)


def test_a_temporary_read_before_any_write_still_reads_zeros():
    # With T = 0 the loop never writes t0, and O0 reads it: the kept arrays are zeroed in
    # place for such a temporary, as fresh ones were (fuzz seed 14386: the reference and
    # the default read what an earlier call had left).
    src = """kernel k(A: i32[K], T: i32) -> O0: i32[K] {
        for t in 0:T {
            t0[i] += A[K - 1 - i]  where i in 0:K
        }
        O0[i] = t0[i]
    }"""
    for schedule in (None, S()):
        k = loopweave.compile(src, schedule=schedule, tuning_db=False, cost_model=False)
        a = np.arange(1, 6, dtype=np.int32)
        for _ in range(2):  # the full path, then the call plan's
            np.testing.assert_array_equal(k(a, 1), a[::-1])
            np.testing.assert_array_equal(k(a, 0), np.zeros(5, np.int32))
        with pytest.warns(loopweave.StridedCopyWarning):
            np.testing.assert_array_equal(k(np.arange(10, dtype=np.int32)[::2], 0), 0)


def _parallel_targets(source: str) -> set[str]:
    return {step.target for step in stages(source).schedule.steps if step.op == "parallel"}


def test_lstm_steps_run_their_recurrent_product_in_parallel_where_threads_are(monkeypatch):
    """`for t` indexes the output it stores (y[t, b, k]), yet every step runs the same
    instances and a contraction over three loops: a time loop, not a pivot loop, its step's
    statements parallel inside it on two threads (passes/loop_kinds._steps_of_products);
    on one thread only the input projection before the loop."""
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    two = _parallel_targets(LSTM)
    assert {"S2", "S3", "S4"} <= two
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert not {"S2", "S3", "S4"} & _parallel_targets(LSTM)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    k = loopweave.compile(LSTM, tuning_db=False, cost_model=False)
    args = lstm_inputs(5, 17, 16, 40)
    y_ref, h_ref, c_ref = lstm_numpy(*args)
    x, w_ih, w_hh, bias, h, c = (a.copy() for a in args)
    np.testing.assert_allclose(k(x, w_ih, w_hh, bias, h, c), y_ref, rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(h, h_ref, rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(c, c_ref, rtol=2e-5, atol=2e-6)


def test_element_wise_steps_that_index_their_outputs_stay_serial(monkeypatch):
    """The selective scan's steps are element-wise (D x NS states): a fork a step cost more
    than it saved (0.54x on two threads)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    scan = (ROOT / "examples/kernels/selective_scan.lw").read_text()
    assert _parallel_targets(scan) == set()


def test_a_steps_element_wise_statements_share_their_row_loop():
    """c, h and y are updated row by row in one loop (passes/loop_kinds.fuse_step_statements):
    one fork of the threads a step for the three, where the dependences allow it; jacobi-2d's
    second sweep reads its first's next row, so its sweeps keep loops of their own."""
    fused = [step for step in stages(LSTM).schedule.steps if step.op == "fuse"]
    assert any(step.target == "S4,S5,S6" and step.args == (2,) for step in fused)
    jacobi = (ROOT / "examples/kernels/jacobi_2d.lw").read_text()
    assert not [step for step in stages(jacobi).schedule.steps if step.op == "fuse"]


# A step whose first statement is a row and whose second a 3-d block (fuzzer seed 23588): fused
# in their row loop, the row's vector loop enclosed the block's parallel loop, and the default
# schedule failed its own legality check.
ROW_THEN_BLOCK = """
kernel row_then_block(A: f32[K], B: f32[K, M], T: i32) -> (O: f32[K, K, M]) {
    for t in 1:T {
        r[i] = A[i] * 2.0
        s[i, j, k] = 1.0 - B[K - 1 - j, k] + r[i]  where j in 0:K
    }
    O[i, j, k] = s[i, j, k]
}
"""


@pytest.mark.parametrize("threads", ["1", "2"])
def test_only_statements_of_one_depth_share_a_steps_row_loop(monkeypatch, threads):
    """A step's statements share their row loop only where they have as many loops inside
    the step (element-wise rows of one shape: LSTM's c, h, y); and no loop runs in parallel
    inside a vector loop."""
    monkeypatch.setenv("OMP_NUM_THREADS", threads)
    steps = stages(ROW_THEN_BLOCK).schedule.steps
    assert not [step for step in steps if step.op == "fuse" and step.args[0] > 1]
    k = loopweave.compile(ROW_THEN_BLOCK, tuning_db=False, cost_model=False)
    a = np.arange(3, dtype=np.float32)
    b = np.arange(21, dtype=np.float32).reshape(3, 7)
    want = 1.0 - b[::-1][None] + 2 * a[:, None, None]
    np.testing.assert_array_equal(k(a, b, 3), want)


def test_no_loop_runs_in_parallel_inside_a_vector_loop(monkeypatch):
    """Where a row's statement shares its innermost loop with a block's outer loop (a fusion
    by hand), that loop is the row's vector loop: the block's loops inside it stay serial, and
    the marks pass the legality check."""
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    kernel = front_end(ROW_THEN_BLOCK, None)
    schedule = S().fuse("S0", "S1", depth=2)
    marks = loop_marks(kernel, schedule, True, set(), {})
    assert ("vectorize", "S0", "i") in marks
    assert not [m for m in marks if m[0] == "parallel" and m[1] == "S1"]
    for op, name, loop in marks:
        getattr(schedule, op)(name, loop)
    schedule.apply(kernel)
