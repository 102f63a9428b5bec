"""Indirect reads (gathers): an integer input tensor as a whole index of a read.

Numbers against numpy at odd sizes (embedding, ELL SpMV, a lookup table, two gathered
dimensions, a partial range), the call-time check of the index values, the errors for what
stays refused (scatters, float indices, written or nested index tensors, expressions of a
tensor value), and the soundness of dependences through a gather.
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported: no GPU here

import shutil  # noqa: E402
import warnings  # noqa: E402

import islpy as isl  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import loopweave  # noqa: E402
from loopweave import Schedule  # noqa: E402
from loopweave.autotune.measure import make_problem  # noqa: E402
from loopweave.errors import ArgumentValueError, BoundsError, DSLTypeError, ScheduleError  # noqa: E402
from loopweave.ir import expr as ir  # noqa: E402
from loopweave.ir.dependences import Dependences  # noqa: E402
from loopweave.ir.kernel import type_keeps_within  # noqa: E402
from loopweave.pipeline import front_end  # noqa: E402
from loopweave.runtime import check_indices  # noqa: E402

EMBEDDING = """
kernel embedding(table: f32[V, D], ids: i32[N]) -> out: f32[N, D] {
    out[i, d] = table[ids[i], d]
}
"""

ELL = """
kernel ell(vals: f64[M, K], col: i64[M, K], x: f64[N]) -> y: f64[M] {
    y[i] += vals[i, k] * x[col[i, k]]
}
"""

LUT = """
kernel lut(T: f32[G, 16], w: u8[G, K]) -> y: f32[K] {
    y[k] += T[g, w[g, k]]
}
"""


def compile_cpu(source: str, **kwargs):
    return loopweave.compile(source, target="cpu", tuning_db=False, **kwargs)


@pytest.fixture(scope="module")
def embedding():
    return compile_cpu(EMBEDDING)


# -- numbers ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("v", "d", "n"), [(7, 5, 9), (50, 33, 17), (1, 3, 1), (13, 1, 40)])
def test_embedding_matches_np_take(embedding, v, d, n):
    r = np.random.default_rng(v * 100 + n)
    table = r.standard_normal((v, d)).astype(np.float32)
    ids = r.integers(0, v, size=n).astype(np.int32)
    np.testing.assert_array_equal(embedding(table, ids), np.take(table, ids, axis=0))


@pytest.mark.parametrize("index_type", ["u8", "i16", "i64"])
def test_every_integer_type_can_index(index_type):
    k = compile_cpu(EMBEDDING.replace("ids: i32", f"ids: {index_type}"))
    r = np.random.default_rng(1)
    table = r.standard_normal((11, 7)).astype(np.float32)
    ids = r.integers(0, 11, size=13).astype(np.dtype({"u8": "uint8", "i16": "int16",
                                                       "i64": "int64"}[index_type]))
    np.testing.assert_array_equal(k(table, ids), table[ids])


@pytest.mark.parametrize(("m", "k", "n"), [(13, 5, 11), (31, 7, 45), (1, 1, 1), (9, 3, 2)])
def test_ell_spmv_matches_numpy(m, k, n):
    r = np.random.default_rng(m + k + n)
    vals = r.standard_normal((m, k))
    col = r.integers(0, n, size=(m, k))
    x = r.standard_normal(n)
    np.testing.assert_allclose(compile_cpu(ELL)(vals, col, x), (vals * x[col]).sum(axis=1),
                               rtol=1e-12, atol=1e-12)


def test_lookup_table_gemv_matches_numpy():
    """T-MAC style: each weight is an index into a per-group table of 16 partial sums."""
    r = np.random.default_rng(3)
    g, k = 7, 29
    table = r.standard_normal((g, 16)).astype(np.float32)
    w = r.integers(0, 16, size=(g, k)).astype(np.uint8)
    want = table[np.arange(g)[:, None], w].astype(np.float64).sum(axis=0)
    np.testing.assert_allclose(compile_cpu(LUT)(table, w), want, rtol=1e-5, atol=1e-5)


def test_two_gathered_dimensions_and_a_scalar_bound_range():
    source = """
    kernel pick(A: f32[R, C], rows: i32[M], cols: i32[M, L], n: i32) -> B: f32[M, L] {
        assume n <= L
        B[i, j] = A[rows[i], cols[i, j]]   where j in 0:n
    }
    """
    r = np.random.default_rng(4)
    a = r.standard_normal((9, 13)).astype(np.float32)
    rows = r.integers(0, 9, size=5).astype(np.int32)
    cols = r.integers(0, 13, size=(5, 7)).astype(np.int32)
    cols[:, 4:] = -1  # never read: only cols[:, :n] is checked
    got = compile_cpu(source)(a, rows, cols, 4)
    want = np.zeros((5, 7), np.float32)
    want[:, :4] = a[rows[:, None], cols[:, :4]]
    np.testing.assert_array_equal(got, want)
    with pytest.raises(ArgumentValueError, match=r"cols\[0, 4\] = -1 is out of range 0\.\.12 "
                                                 r"for dimension 1 of A"):
        compile_cpu(source)(a, rows, cols, 5)


@pytest.mark.parametrize("target", ["triton", "cuda"])
def test_gathers_on_the_gpu_targets(target):
    """A load at a computed address: the lookup table (u8 indices) and two gathered
    dimensions, in Triton's interpreter and in CUDA's CPU emulation."""
    if target == "triton":
        pytest.importorskip("triton", reason="triton not installed")
        pytest.importorskip("torch", reason="torch not installed")
        if os.environ.get("TRITON_INTERPRET") != "1":
            pytest.skip("TRITON_INTERPRET was set to something else before the tests")
    elif shutil.which("g++") is None:
        pytest.skip("g++ not installed (CUDA emulation)")
    options = {"emulate": True} if target == "cuda" else {}
    r = np.random.default_rng(9)
    table = r.standard_normal((7, 16)).astype(np.float32)
    w = r.integers(0, 16, size=(7, 29)).astype(np.uint8)
    lut = loopweave.compile(LUT, target, tuning_db=False, **options)
    np.testing.assert_allclose(lut(table, w), table[np.arange(7)[:, None], w].sum(axis=0),
                               rtol=1e-5, atol=1e-5)
    pick = loopweave.compile("""
    kernel pick(A: f64[R, C], rows: i64[M], cols: i32[L]) -> B: f64[M, L] {
        B[i, j] = A[rows[i], cols[j]]
    }""", target, tuning_db=False, **options)
    a = r.standard_normal((9, 13))
    rows, cols = r.integers(0, 9, size=11), r.integers(0, 13, size=37).astype(np.int32)
    np.testing.assert_array_equal(pick(a, rows, cols), a[rows[:, None], cols[None, :]])


# -- the call-time check ------------------------------------------------------------------------

def test_an_out_of_range_index_is_an_error_before_anything_runs():
    source = """
    kernel acc(table: f32[V, D], ids: i32[N], out: inout f32[N, D]) {
        out[i, d] += table[ids[i], d]
    }
    """
    k = compile_cpu(source)
    table = np.ones((50, 3), np.float32)
    ids = np.arange(7, dtype=np.int32)
    ids[3] = 57
    out = np.zeros((7, 3), np.float32)
    with pytest.raises(ArgumentValueError) as info:
        k(table, ids, out)
    assert str(info.value) == ("ids[3] = 57 is out of range 0..49 for dimension 0 of table "
                               "(read as table[ids[i], d] at line 3)")
    assert not out.any()  # nothing ran
    ids[3], ids[5] = 2, -1
    with pytest.raises(ArgumentValueError, match=r"ids\[5\] = -1 is out of range 0\.\.49"):
        k(table, ids, out)
    ids[5] = 49
    k(table, ids, out)
    assert (out == 1).all()


def test_an_index_into_an_empty_dimension_is_reported(embedding):
    with pytest.raises(ArgumentValueError, match=r"ids\[0\] = 0 is out of range 0\.\.-1"):
        embedding(np.zeros((0, 4), np.float32), np.zeros(2, np.int32))
    assert embedding(np.zeros((0, 4), np.float32), np.zeros(0, np.int32)).shape == (0, 4)


def test_index_values_held_on_a_device_are_checked_there():
    """A triton call with CUDA tensors hands the runtime host stand-ins (never filled): the
    check reads the device tensor behind one (a CPU torch tensor stands in for it here)."""
    torch = pytest.importorskip("torch")
    kernel_ir = front_end(EMBEDDING)
    stand_in = np.full(5, 99, np.int32)  # what the check must not read
    arrays = {"table": np.empty((7, 3), np.float32), "ids": stand_in}
    sizes = {"V": 7, "D": 3, "N": 5}
    ids = torch.tensor([0, 1, 9, 2, 3], dtype=torch.int32)
    with pytest.raises(ArgumentValueError, match=r"ids\[2\] = 9 is out of range 0\.\.6"):
        check_indices(kernel_ir, arrays, sizes, {id(stand_in): ids})
    check_indices(kernel_ir, arrays, sizes, {id(stand_in): ids.clamp(max=6)})
    with pytest.raises(ArgumentValueError, match=r"ids\[0\] = 99"):
        check_indices(kernel_ir, arrays, sizes)


def test_a_0d_tensor_as_an_index():
    k = compile_cpu("kernel k(x: f32[N], s: i32[], z: f32[M]) -> y: f32[M] {\n"
                    "    y[i] = x[s[]] + z[i]\n}\n")
    x, z = np.arange(5, dtype=np.float32), np.ones(3, np.float32)
    np.testing.assert_array_equal(k(x, np.array(3, np.int32), z), x[3] + z)
    with pytest.raises(ArgumentValueError, match=r"s\[\] = 7 is out of range 0\.\.4 for "
                                                 r"dimension 0 of x \(read as x\[s\[\]\]"):
        k(x, np.array(7, np.int32), z)
    e = error_of("kernel k(x: f32[N], s: i32[], z: f32[M]) -> y: f32[M] {\n"
                 "    y[i] = x[s] + z[i]\n}\n")
    assert "a read may take a whole index from a tensor, as in x[s[...]]" in e.message


# -- what stays refused -------------------------------------------------------------------------

def error_of(source: str, cls=DSLTypeError):
    with pytest.raises(cls) as info:
        front_end(source)
    return info.value


def test_a_data_dependent_write_is_refused_naming_the_tensor_line_and_column():
    e = error_of("kernel k(x: f32[N], ids: i32[N]) -> y: f32[N] {\n"
                 "    y[ids[i]] = x[i]\n}\n")
    assert (e.line, e.column) == (2, 7)
    assert "index 0 of the write to 'y' reads tensor 'ids'" in e.message
    assert "scatter" in e.message


def test_a_float_tensor_as_an_index_is_refused():
    e = error_of("kernel k(x: f32[N], f: f32[M]) -> y: f32[M] {\n"
                 "    y[i] = x[f[i]]\n}\n")
    assert (e.line, e.column) == (2, 14)
    assert "'f' is f32 and cannot index a tensor: an index must be an integer tensor" in e.message


@pytest.mark.parametrize(("body", "params", "message"), [
    ("t[i] = ids[i]\n    y[i] = x[t[i]]", "x: f32[N], ids: i32[N]", "'t' is a temporary"),
    ("ids[i] = 0\n    y[i] = x[ids[i]]", "x: f32[N], ids: inout i32[N]", "'ids' is an inout"),
    ("y[i] = x[ids[jj[i]]]", "x: f32[N], ids: i32[N], jj: i32[N]", "no gather of a gather"),
    ("y[i] = x[ids[i] + 1]", "x: f32[N], ids: i32[N]", "may only be a whole index of a read"),
])
def test_what_an_index_tensor_may_not_be(body, params, message):
    e = error_of(f"kernel k({params}) -> y: f32[N] {{\n    {body}\n}}\n")
    assert message in str(e)


def test_the_affine_dimensions_of_a_gather_are_still_proved_in_bounds():
    e = error_of(EMBEDDING.replace("table[ids[i], d]", "table[ids[i], d + 1]"), BoundsError)
    assert "table" in e.message and "where d in 0:D - 1" in e.message


# -- dependences through a gather ---------------------------------------------------------------

WRITE_THEN_GATHER = """
kernel k(x: f32[N], ids: i32[N]) -> y: f32[N] {
    t[j] = 2.0 * x[j]
    y[i] = t[ids[i]]
}
"""


def test_the_access_relation_covers_the_whole_indexed_dimension():
    kernel_ir = front_end(EMBEDDING)
    s = kernel_ir.statements[0]
    gather = next(ld for ld in ir.loads(s.rhs) if ld.tensor == "table")
    relation = s.access_map(kernel_ir.params, gather, kernel_ir.tensors["table"].shape)
    want = isl.Map("[V, D, N] -> { S0[i, d] -> table[e, d] : 0 <= i < N and 0 <= d < D and "
                   "0 <= e < V }")
    assert relation.is_equal(want)


def test_a_write_then_a_gather_depends_on_every_element():
    kernel_ir = front_end(WRITE_THEN_GATHER)
    flow = [d for d in Dependences.of(kernel_ir).of_kind("flow") if d.tensor == "t"]
    assert len(flow) == 1
    every = isl.Map("[N] -> { S0[j] -> S1[i] : 0 <= j < N and 0 <= i < N }")
    assert flow[0].relation.intersect_params(kernel_ir.context).is_equal(
        every.intersect_params(kernel_ir.context))


def test_a_write_then_a_gather_stays_in_order():
    r = np.random.default_rng(6)
    x = r.standard_normal(23).astype(np.float32)
    ids = r.permutation(23).astype(np.int32)
    np.testing.assert_array_equal(compile_cpu(WRITE_THEN_GATHER)(x, ids), 2 * x[ids])
    # Fusing the two would read t[ids[i]] before it is written: refused.
    with pytest.raises(ScheduleError, match="flow dependence on t from S0 to S1"):
        compile_cpu(WRITE_THEN_GATHER, schedule=Schedule().fuse("S0", "S1"))


def test_an_in_place_gather_runs_in_program_order():
    source = """
    kernel k(A: inout f32[N], ids: i32[N]) {
        A[i] = A[ids[i]] + 1.0
    }
    """
    r = np.random.default_rng(7)
    a = r.standard_normal(31).astype(np.float32)
    ids = r.integers(0, 31, size=31).astype(np.int32)
    want = a.copy()
    for i in range(31):  # the DSL's order: each instance sees the earlier ones' writes
        want[i] = want[ids[i]] + np.float32(1)
    got = a.copy()
    compile_cpu(source)(got, ids)
    np.testing.assert_array_equal(got, want)
    with pytest.raises(ScheduleError, match="cannot be parallel"):
        compile_cpu(source, schedule=Schedule().parallel("S0", "i"))


def test_the_default_schedule_keeps_the_gathered_row_contiguous(embedding):
    """Parallel over tokens, vector over the row: the row load stays one contiguous load."""
    source = embedding.source
    assert "#pragma omp parallel for" in source
    assert "table[((int64_t)(ids[c0])) * D + c1]" in source


def test_schedules_of_a_gather_are_correct_or_refused():
    """Tiles, reorders, parallel and vector loops and local copies of a gathered kernel match
    numpy; a local copy of the gathered tensor is refused (its footprint is no box of fixed
    size)."""
    r = np.random.default_rng(8)
    vals, col, x = r.standard_normal((13, 5)), r.integers(0, 11, (13, 5)), r.standard_normal(11)
    want = (vals * x[col]).sum(axis=1)
    schedules = [Schedule().tile("S1", i=4, k=2), Schedule().parallel("S1", "i"),
                 Schedule().reorder("S1", "k", "i").vectorize("S1", "i"),
                 Schedule().tile("S1", i=4, k=2).cache_read("S1", "vals", at="i"),
                 Schedule().tile("S1", i=4, k=2).cache_read("S1", "col", at="i"),
                 Schedule().tile("S1", i=4, k=2).cache_write("S1", at="k_o")]
    for s in schedules:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            np.testing.assert_allclose(compile_cpu(ELL, schedule=s)(vals, col, x), want,
                                       rtol=1e-12, atol=1e-12)
    with pytest.raises(ScheduleError, match="footprint of x in the loop is not a box"):
        compile_cpu(ELL, schedule=Schedule().tile("S1", i=4, k=2).cache_read("S1", "x", at="i"))


def test_tuning_inputs_draw_gather_indices_in_range(tmp_path):
    """A sweep over a gather that is not an example draws its index tensor within the extent
    it indexes (else every candidate would fail the call-time index check)."""
    source = """kernel pick(table: f32[V, D], ids: i32[T]) -> out: f32[T, D] {
    out[t, d] = table[ids[t], d]
}"""
    problem = make_problem(source, {"V": 5, "D": 3, "T": 41}, "cpu", tmp_path)
    with np.load(problem.data_path) as data:
        ids, table, out = data["in:ids"], data["in:table"], data["out:out"]
    assert ids.min() >= 0 and ids.max() < 5 and len(set(ids.tolist())) > 1
    np.testing.assert_array_equal(out, table[ids])


def test_an_index_whose_type_cannot_leave_the_dimension_is_not_checked():
    """u8 values index a dimension of 256 (a LUT GEMM's table): no value can be out of range,
    so no call pays for the check; into 255 entries the same read is checked."""
    source = "kernel lut(T: f32[{n}], w: u8[N]) -> y: f32[N] {{ y[i] = T[w[i]] }}"
    fits = loopweave.compile(source.format(n=256), tuning_db=False)
    table = np.arange(256, dtype=np.float32)
    codes = np.array([0, 255, 7], np.uint8)
    np.testing.assert_array_equal(fits(table, codes), [0, 255, 7])
    assert fits.ir.index_checks  # the check exists, but the type keeps it true
    assert all(type_keeps_within(fits.ir, c, 0, 255) for c in fits.ir.index_checks)
    short = loopweave.compile(source.format(n=255), tuning_db=False)
    with pytest.raises(loopweave.ArgumentValueError, match=r"w\[1\] = 255 is out of range"):
        short(table[:255], codes)
    signed = loopweave.compile(source.replace("u8", "i8").format(n=256), tuning_db=False)
    with pytest.raises(loopweave.ArgumentValueError, match="out of range"):
        signed(table, np.array([-1], np.int8))
