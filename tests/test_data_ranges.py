"""Ranges read from tensors: `where p in row_ptr[i]:row_ptr[i + 1]` (CSR rows, ragged batches).

Numbers against numpy at odd sizes (SpMV, SpMM, ragged lengths, a lower bound only, empty rows,
an all-empty matrix, decreasing bounds), the generated loop (bounds read from the tensor, rows
in parallel), the call-time check of the bound values (both call paths), the errors for what
stays refused, schedule steps on such a loop, the soundness of dependences, and every target.
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported: no GPU here

import shutil  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import loopweave  # noqa: E402
from loopweave import Schedule  # noqa: E402
from loopweave.errors import ArgumentValueError, BoundsError, DSLTypeError, ScheduleError  # noqa: E402
from loopweave.examples import load_references  # noqa: E402
from loopweave.ir.dependences import written_before_read  # noqa: E402
from loopweave.pipeline import front_end  # noqa: E402

refs = load_references()
SPMV = refs.KERNELS["csr_spmv"].source()
SPMM = refs.KERNELS["csr_spmm"].source()

RAGGED = """
kernel ragged_sum(X: f64[B, T], lengths: i64[B]) -> s: f64[B] {
    s[b] += X[b, t] where t in 0:lengths[b]
}
"""

TAIL = """
kernel tail(start: i32[M], v: f32[N]) -> s: f32[M] {
    s[i] += v[p] where p in start[i]:N
}
"""


def compile_cpu(source: str, **kwargs):
    return loopweave.compile(source, target="cpu", tuning_db=False, **kwargs)


def csr(r: np.random.Generator, rows: int, cols: int, density: float, dtype=np.float32):
    """A random CSR matrix (row_ptr, col, vals) with rows 0 and 3 empty, and its dense form."""
    dense = (r.random((rows, cols)) < density) * r.uniform(-1, 1, (rows, cols))
    dense[[k for k in (0, 3) if k < rows]] = 0
    mask = dense != 0
    row_ptr = np.concatenate([[0], np.cumsum(mask.sum(axis=1))]).astype(np.int32)
    return row_ptr, np.nonzero(mask)[1].astype(np.int32), dense[mask].astype(dtype), dense


@pytest.fixture(scope="module")
def spmv():
    return compile_cpu(SPMV)


# -- numbers ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("m", "n", "density"), [(7, 5, 0.4), (33, 17, 0.3), (1, 9, 0.9),
                                                  (13, 1, 0.5), (6, 6, 0.0)])
def test_spmv_matches_numpy(spmv, m, n, density):
    r = np.random.default_rng(m * 31 + n)
    row_ptr, col, vals, dense = csr(r, m, n, density)
    x = r.uniform(-1, 1, n).astype(np.float32)
    y = spmv(row_ptr, col, vals, x)
    assert y.shape == (m,) and y.dtype == np.float32
    np.testing.assert_allclose(y, dense @ x, rtol=1e-5, atol=1e-6)
    assert not y[0] and (m <= 3 or not y[3])  # empty rows sum nothing


def test_an_all_empty_matrix_and_no_rows(spmv):
    x = np.ones(4, np.float32)
    empty = np.zeros(0, np.int32)
    y = spmv(np.zeros(6, np.int32), empty, empty.astype(np.float32), x)
    np.testing.assert_array_equal(y, np.zeros(5, np.float32))
    assert spmv(np.zeros(1, np.int32), empty, empty.astype(np.float32), x).shape == (0,)


def test_spmm_matches_numpy():
    r = np.random.default_rng(5)
    row_ptr, col, vals, dense = csr(r, 19, 23, 0.25)
    b = r.uniform(-1, 1, (23, 13)).astype(np.float32)
    got = compile_cpu(SPMM)(row_ptr, col, vals, b)
    np.testing.assert_allclose(got, dense @ b, rtol=1e-5, atol=1e-5)


def test_ragged_lengths_lower_bound_only_and_decreasing_bounds():
    r = np.random.default_rng(2)
    x = r.standard_normal((6, 9))
    lengths = np.array([0, 9, 3, 1, 0, 7])
    want = np.array([x[b, :n].sum() for b, n in enumerate(lengths)])
    np.testing.assert_allclose(compile_cpu(RAGGED)(x, lengths), want, rtol=1e-12)
    v = r.standard_normal(11).astype(np.float32)
    start = np.array([0, 11, 4, 10], np.int32)  # 11: an empty tail
    np.testing.assert_allclose(compile_cpu(TAIL)(start, v), [v[s:].sum() for s in start],
                               rtol=1e-5, atol=1e-6)
    # lo > hi is an empty range, not an error (as Python's range)
    row_ptr = np.array([0, 3, 1, 4], np.int32)
    vals = np.arange(1, 5, dtype=np.float32)
    y = compile_cpu(SPMV)(row_ptr, np.zeros(4, np.int32), vals, np.ones(1, np.float32))
    np.testing.assert_array_equal(y, [1 + 2 + 3, 0, 2 + 3 + 4])


def test_the_loop_reads_its_bounds_from_the_tensor_and_rows_run_in_parallel(spmv):
    src = spmv.source
    body = src[src.index("void lw_csr_spmv"):]
    assert "row_ptr[c0 + 1]" in body.split("for (int64_t c1 = ")[1].split("{")[0]
    assert "#pragma omp parallel for\n  for (int64_t c0 = 0; c0 < R - 1;" in body
    assert "if (" not in body  # no guard left: the range is the loop's


# -- the call-time check ------------------------------------------------------------------------

def test_a_bound_outside_the_tensor_is_an_error_before_anything_runs():
    source = SPMV.replace(") -> y: f32[R - 1]", ", y: inout f32[R - 1])")
    k = compile_cpu(source)
    row_ptr = np.array([0, 2, 9, 4], np.int32)
    vals, col = np.ones(4, np.float32), np.zeros(4, np.int32)
    y = np.zeros(3, np.float32)
    with pytest.raises(ArgumentValueError) as info:
        k(row_ptr, col, vals, np.ones(1, np.float32), y)
    assert str(info.value) == (
        "row_ptr[2] = 9 is out of range 0..4 for a range bound over dimension 0 of vals "
        "(where p in row_ptr[i]:row_ptr[i + 1] at line 6)")
    assert not y.any()  # nothing ran
    row_ptr[2] = -1
    with pytest.raises(ArgumentValueError, match=r"row_ptr\[2\] = -1 is out of range 0\.\.4"):
        k(row_ptr, col, vals, np.ones(1, np.float32), y)
    row_ptr[2] = 4  # the end of vals is a valid bound
    k(row_ptr, col, vals, np.ones(1, np.float32), y)
    np.testing.assert_array_equal(y, [2, 2, 0])


def test_the_fast_call_path_checks_the_bounds_too(spmv):
    row_ptr, col = np.array([0, 1, 2], np.int32), np.zeros(2, np.int32)
    vals = np.ones(2, np.float32)
    x = np.ones(3, np.float32)
    for _ in range(3):  # the same shapes: later calls take the call plan
        np.testing.assert_array_equal(spmv(row_ptr, col, vals, x), [1, 1])
    with pytest.raises(ArgumentValueError, match=r"row_ptr\[2\] = 3 is out of range 0\.\.2"):
        spmv(np.array([0, 1, 3], np.int32), col, vals, x)
    with pytest.raises(ArgumentValueError, match=r"col\[1\] = 3 is out of range 0\.\.2 for "
                                                 r"dimension 0 of x"):
        spmv(row_ptr, np.array([0, 3], np.int32), vals, x)


# -- what stays refused -------------------------------------------------------------------------

@pytest.mark.parametrize(("where", "sig", "message"), [
    ("p in row_ptr[i] + 1:row_ptr[i + 1]", "", r"must be the whole read"),
    ("p in fptr[i]:row_ptr[i + 1]", ", fptr: f32[R]", r"'fptr' is f32 and cannot bound a range"),
    ("p in row_ptr[col[i]]:row_ptr[i + 1]", "", r"the indices of 'row_ptr' read a tensor"),
    ("p in row_ptr[p]:row_ptr[i + 1]", "", r"depends on 'p' itself"),
    ("p in row_ptr[i, 0]:row_ptr[i + 1]", "", r"'row_ptr' has rank 1"),
])
def test_refused_bounds(where, sig, message):
    source = f"""
    kernel k(row_ptr: i32[R], col: i32[NNZ], vals: f32[NNZ], x: f32[N]{sig}) -> y: f32[R - 1] {{
        assume R >= 1
        y[i] += vals[p] * x[col[p]] where {where}
    }}"""
    with pytest.raises(DSLTypeError, match=message):
        compile_cpu(source)


def test_a_variable_that_indexes_nothing_directly_and_a_written_bound_are_refused():
    with pytest.raises(DSLTypeError, match=r"'p' has a range read from tensors \(where p in "
                                           r"row_ptr\[i\]:row_ptr\[i \+ 1\]\).*indexes none"):
        compile_cpu("""
        kernel k(row_ptr: i32[R], col: i32[NNZ], x: f32[N]) -> y: f32[R - 1] {
            y[i] += x[col[p + 1]] where p in row_ptr[i]:row_ptr[i + 1]
        }""")
    with pytest.raises(DSLTypeError, match=r"'ptr' is not a read-only input"):
        compile_cpu("""
        kernel k(ptr: inout i32[R], v: f32[N]) -> y: f32[R - 1] {
            y[i] += v[p] where p in ptr[i]:ptr[i + 1]
        }""")


def test_a_bound_read_outside_its_tensor_is_a_bounds_error():
    with pytest.raises(BoundsError, match=r"row_ptr\[i \+ 2\]"):
        compile_cpu("""
        kernel k(row_ptr: i32[R], v: f32[N]) -> y: f32[R - 1] {
            assume R >= 1
            y[i] += v[p] where p in row_ptr[i]:row_ptr[i + 2]
        }""")


# -- schedules ----------------------------------------------------------------------------------

@pytest.mark.parametrize("step", [
    lambda s: s.tile("y", p=4), lambda s: s.interleave("y", "p", 8),
    lambda s: s.split("y", "p", 4), lambda s: s.bind("y", "p", "threadIdx.x")])
def test_a_loop_with_data_bounds_cannot_be_tiled_split_or_bound(step):
    with pytest.raises(ScheduleError, match=r"on loop 'p' of S1 \(line 6\): its range is read "
                                            r"from tensors \(where p in row_ptr\[i\]"):
        compile_cpu(SPMV, schedule=step(Schedule()))


def test_a_loop_with_data_bounds_can_be_vectorized():
    """The SIMD code reads the end once (lw_min_i64(T, lengths[c0])), then whole vectors."""
    source = RAGGED.replace("f64", "f32")
    k = compile_cpu(source, schedule=Schedule().parallel("s", "b").vectorize("s", "t")
                    .reassociate("s"))
    r = np.random.default_rng(6)
    x = r.standard_normal((9, 77)).astype(np.float32)
    lengths = np.array([77, 0, 1, 8, 31, 32, 33, 76, 5])
    np.testing.assert_allclose(k(x, lengths), [x[b, :n].sum() for b, n in enumerate(lengths)],
                               rtol=1e-5, atol=1e-5)
    assert "lengths[c0]" in k.source


def test_the_loop_stays_inside_the_loops_its_bounds_read():
    with pytest.raises(ScheduleError, match=r"loop 'p' of S1 \(line 6\) has its range read from "
                                            r"tensors .* must stay inside loop 'i'"):
        compile_cpu(SPMV, schedule=Schedule().reorder("y", "p", "i"))


def test_outer_loops_can_be_parallel_and_tiled():
    r = np.random.default_rng(8)
    row_ptr, col, vals, dense = csr(r, 37, 21, 0.3)
    b = r.uniform(-1, 1, (21, 19)).astype(np.float32)
    schedule = Schedule().tile("Y", i=8, j=8).parallel("Y", "i_o")
    got = compile_cpu(SPMM, schedule=schedule)(row_ptr, col, vals, b)
    np.testing.assert_allclose(got, dense @ b, rtol=1e-5, atol=1e-5)


def test_dependences_through_a_data_range_stay_conservative():
    """A[p] for p in ptr[i]:ptr[i+1] may be any element of A: the i loop that writes A[i] and
    reads it cannot run in parallel, and the result is program order's."""
    source = """
    kernel prefix(A: inout f64[N], ptr: i32[M]) {
        assume M == N + 1
        A[i] += A[p] where p in ptr[i]:ptr[i + 1]
    }"""
    with pytest.raises(ScheduleError):
        compile_cpu(source, schedule=Schedule().parallel("A", "i"))
    a = np.arange(1.0, 6.0)
    ptr = np.array([0, 0, 0, 1, 0, 5], np.int32)
    want = a.copy()
    for i in range(5):
        for p in range(ptr[i], ptr[i + 1]):
            want[i] += want[p]
    got = a.copy()
    compile_cpu(source)(got, ptr)
    np.testing.assert_array_equal(got, want)


# -- every target -------------------------------------------------------------------------------

TARGET_TOOLS = {"aarch64": ("aarch64-linux-gnu-gcc", "qemu-aarch64"),
                "cortex-m4": ("arm-none-eabi-gcc", "qemu-system-arm"), "cuda": ("g++",)}


@pytest.mark.parametrize("target", ["aarch64", "cortex-m4", "cuda", "triton"])
def test_every_target_runs_csr_and_ragged_loops(target):
    if target == "triton":
        pytest.importorskip("triton", reason="triton not installed")
        pytest.importorskip("torch", reason="torch not installed")
        if os.environ.get("TRITON_INTERPRET") != "1":
            pytest.skip("TRITON_INTERPRET was set to something else before the tests")
    for tool in TARGET_TOOLS.get(target, ()):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed")
    options = {"emulate": True} if target == "cuda" else {}
    r = np.random.default_rng(11)
    spmv = loopweave.compile(SPMV, target, tuning_db=False, **options)
    for m, n, density in [(23, 9, 0.3), (5, 3, 0.0)]:
        row_ptr, col, vals, dense = csr(r, m, n, density)
        x = r.uniform(-1, 1, n).astype(np.float32)
        np.testing.assert_allclose(spmv(row_ptr, col, vals, x), dense @ x, rtol=1e-5,
                                   atol=1e-6)
    x = r.standard_normal((5, 7))
    lengths = np.array([7, 0, 2, 5, 1])
    got = loopweave.compile(RAGGED, target, tuning_db=False, **options)(x, lengths)
    np.testing.assert_allclose(got, [x[b, :n].sum() for b, n in enumerate(lengths)],
                               rtol=1e-12)


# -- values declared by `assume` ----------------------------------------------------------------

PAIRS = """
kernel pairs(ptr: i32[R], v: f32[N]) -> y: f32[R - 1] {
    assume R >= 1
    assume 0 <= ptr <= N / 2
    y[i] += v[2 * p] * v[2 * p + 1] where p in ptr[i]:ptr[i + 1]
}
"""


def test_assume_declares_the_values_of_a_bound_tensor():
    """p indexes no tensor directly: the `assume` gives its range, and the call checks it."""
    k = compile_cpu(PAIRS)
    v = np.arange(1, 8, dtype=np.float32)
    np.testing.assert_array_equal(k(np.array([0, 2, 2, 3], np.int32), v), [1 * 2 + 3 * 4, 0, 30])
    with pytest.raises(ArgumentValueError, match=r"^ptr\[2\] = 4 is out of range 0\.\.3 that an "
                                                 r"`assume` declares \(where p in "
                                                 r"ptr\[i\]:ptr\[i \+ 1\] at line 5\)$"):
        k(np.array([0, 2, 4, 3], np.int32), v)
    with pytest.raises(DSLTypeError, match=r"indexes none; or declare the values of 'ptr' with "
                                           r"`assume 0 <= ptr <= \.\.\.`"):
        compile_cpu(PAIRS.replace("    assume 0 <= ptr <= N / 2\n", ""))
    with pytest.raises(BoundsError, match=r"v\[2 \* p\] may be out of bounds"):
        compile_cpu(PAIRS.replace("N / 2", "N"))  # a declaration too wide for the reads


@pytest.mark.parametrize(("assume", "message"), [
    ("0 <= ptr + 1 <= N", r"may only mention sizes and integer scalars, not 'ptr'"),
    ("0 <= v <= N", r"bounds the values of integer inputs only, not 'v'"),
    ("0 <= ptr <= v", r"compares one tensor name with sizes"),
])
def test_refused_value_assumptions(assume, message):
    with pytest.raises(DSLTypeError, match=message):
        compile_cpu(PAIRS.replace("0 <= ptr <= N / 2", assume))


RAGGED_SOFTMAX = """
kernel rsoftmax(X: f32[B, T], lengths: i32[B]) -> Y: f32[B, T] {
    m[b] max= X[b, t] where t in 0:lengths[b]
    e[b, t] = exp(X[b, t] - m[b]) where t in 0:lengths[b]
    s[b] += e[b, t] where t in 0:lengths[b]
    Y[b, t] = e[b, t] / s[b] where t in 0:lengths[b]
}
"""


@pytest.mark.parametrize("target", ["cpu", "cuda", "triton"])
def test_a_ragged_softmax_keeps_its_ranges_through_every_rewrite(target):
    """Temporaries shrunk by the schedule (the checks keep the extent they had), the online
    softmax rewrite and Triton's planner (both render from statements: they step aside)."""
    if target == "triton":
        pytest.importorskip("triton", reason="triton not installed")
        pytest.importorskip("torch", reason="torch not installed")
    elif target == "cuda" and shutil.which("g++") is None:
        pytest.skip("g++ not installed (CUDA emulation)")
    r = np.random.default_rng(0)
    x = r.standard_normal((5, 9)).astype(np.float32)
    lengths = np.array([9, 0, 1, 4, 7], np.int32)
    want = np.zeros_like(x)
    for b, n in enumerate(lengths):
        if n:
            z = np.exp(x[b, :n] - x[b, :n].max())
            want[b, :n] = z / z.sum()
    options = {"emulate": True} if target == "cuda" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # triton: one program (SequentialLoopWarning)
        k = loopweave.compile(RAGGED_SOFTMAX, target, tuning_db=False, **options)
        np.testing.assert_allclose(k(x, lengths), want, rtol=1e-5, atol=1e-6)


def test_an_output_written_only_inside_data_ranges_is_zeroed_before_a_call():
    """The domain over-approximates a range read from tensors, so its writes may cover nothing
    at run time (an empty row): such an output is zeroed, never left as `np.empty` garbage
    (ir/dependences.written_before_read; seen as NaN in an empty row of a ragged softmax)."""
    assert not written_before_read(front_end(RAGGED_SOFTMAX), "Y")
    k = loopweave.compile(RAGGED_SOFTMAX, tuning_db=False)
    x = np.ones((3, 4), np.float32)
    lengths = np.array([0, 4, 0], np.int32)
    garbage = np.full((3, 4), np.nan, np.float32)
    got = k(x, lengths, out=garbage)
    assert not np.isnan(got).any()
    np.testing.assert_array_equal(got[[0, 2]], 0)
