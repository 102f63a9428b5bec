"""The default schedule where loops carry dependences (issue [polyhedral]):

- inside a time-tiled stencil (isl's schedule), each statement gets an innermost loop of its
  own, so that loop is a vector loop (isl fuses them with shifts, which carries a dependence);
- a nest whose outermost loop carries a dependence (a time loop) runs an inner loop with work
  inside it in parallel;
- a kernel in which the heuristics find no parallel and no vector loop in its deepest nests
  gets isl's schedule.

Each is checked on the schedule and numerically against the references at odd sizes."""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import pytest

import loopweave
from loopweave.examples import load_polybench_references
from loopweave.ir import isl_helpers
from loopweave.ir.affine import constant_value
from loopweave.ir.codegen import loop_ast
from loopweave.ir.dependences import Dependences
from loopweave.ir.kernel import KernelIR
from loopweave.ir.loops import For, walk
from loopweave.passes import default as default_pass
from loopweave.passes import isl_choice, isl_scheduler, wavefront
from loopweave.passes.interchange import interchange_candidates
from loopweave.passes.isl_scheduler import distribute_innermost, isl_schedule
from loopweave.passes.legality import marks
from loopweave.passes.loop_kinds import loops_carrying_nothing
from loopweave.passes.normalize import normalize
from loopweave.passes.schedule import Schedule
from loopweave.pipeline import front_end

poly = load_polybench_references()
CFLAGS = "-O1 -march=native"


def mark_names(kernel: KernelIR) -> list[str]:
    return [m.mark_get_id().get_name() for m in marks(kernel.schedule.get_root())]


def check_numerics(name: str, kernel, seed: int = 5, sizes: dict[str, int] | None = None
                   ) -> None:
    """`kernel` against the numpy reference of PolyBench `name` at `sizes` (default: the
    case's first test sizes made odd)."""
    case = poly.POLYBENCH[name]
    if sizes is None:
        sizes = {k: v if v % 2 else v - 1 for k, v in case.sizes[0].items()}
    args = case.make_inputs(sizes, seed)
    expected = case.expected(args)
    got = poly.results_of(case, args, kernel(*args.values()))
    for out, want in expected.items():
        err, ok = poly.compare(np.asarray(got[out]), want, case.tol_scale)
        assert ok, f"{name}[{out}] at {sizes}: differs by {err:g}"


def vectorized_statements(kernel: KernelIR) -> set[str]:
    """The statements that run inside a vector loop of `kernel`'s schedule."""
    return {s.get_tuple_name() for m in marks(kernel.schedule.get_root())
            if m.mark_get_id().get_name().startswith("vector:")
            for s in isl_helpers.sets_of(m.get_domain())}


@pytest.mark.parametrize("name", ["jacobi-2d", "fdtd-2d", "heat-3d"])
def test_every_statement_of_a_time_tiled_stencil_runs_in_a_vector_loop(name):
    kernel = front_end(poly.POLYBENCH[name].source())
    assert vectorized_statements(isl_schedule(kernel, tile=4)) == {
        s.name for s in kernel.statements}


@pytest.mark.parametrize("name", ["jacobi-2d", "fdtd-2d"])
def test_without_the_distribution_the_fused_loop_is_no_vector_loop(name, monkeypatch):
    """isl fuses these stencils' statements with shifts: the loop carries a dependence."""
    monkeypatch.setattr("loopweave.passes.isl_scheduler.distribute_innermost",
                        lambda kernel, schedule, deps: schedule)
    kernel = front_end(poly.POLYBENCH[name].source())
    assert not vectorized_statements(isl_schedule(kernel, tile=4))


@pytest.mark.parametrize("tile", [2, 3])
@pytest.mark.parametrize("name", ["jacobi-2d", "fdtd-2d", "heat-3d", "jacobi-1d", "adi"])
def test_distributed_tiles_compute_the_reference(name, tile):
    """Tiles of 2 and 3 (vector members 8 and 12) give full and partial tiles at odd sizes."""
    kernel = loopweave.compile(poly.POLYBENCH[name].source(), cflags=CFLAGS,
                               schedule=lambda k: isl_schedule(k, tile=tile))
    check_numerics(name, kernel)


@pytest.mark.parametrize("tile", [2, 3, 16])
@pytest.mark.parametrize("name", ["heat-3d", "jacobi-2d", "fdtd-2d", "seidel-2d"])
def test_row_tiles_compute_the_reference(name, tile):
    """`isl(tile, rows=True)`: whole innermost rows, one loop per statement, under tiles of
    the other loops (time tiles 1, 1 and 4 long), full and partial at odd sizes."""
    kernel = loopweave.compile(poly.POLYBENCH[name].source(), cflags=CFLAGS,
                               schedule=Schedule().isl(tile, rows=True), tuning_db=False)
    check_numerics(name, kernel)


@pytest.mark.parametrize("name", ["heat-3d", "jacobi-2d"])
def test_row_tiles_give_each_statement_an_unskewed_vector_row(name):
    """Each statement's innermost loop is a vector loop of its own, and it runs over the
    statement's own innermost iterator (isl's band skews it by time: 2t + k)."""
    kernel = front_end(poly.POLYBENCH[name].source())
    scheduled = isl_schedule(kernel, tile=4, rows=True)
    vector = [{s.get_tuple_name() for s in isl_helpers.sets_of(m.get_domain())}
              for m in marks(scheduled.schedule.get_root())
              if m.mark_get_id().get_name().startswith("vector:")]
    assert sorted(map(sorted, vector)) == [[s.name] for s in kernel.statements]
    assert vectorized_statements(isl_schedule(kernel, tile=4)) == {
        s.name for s in kernel.statements}
    rows = [n for n in walk(loop_ast(scheduled)) if isinstance(n, For) and n.kind == "vector"]
    assert rows and all(constant_value(loop.init) == 1 for loop in rows), rows


def test_a_fused_loop_that_no_split_order_allows_stays_fused():
    """Each statement reads what the other wrote one iteration before: either loop first
    would break a dependence, so isl's fused loop stays (and is no vector loop)."""
    crossed = front_end("""
kernel crossed(A: inout f64[N], B: inout f64[N]) {
    for i in 1:N {
        A[i] = B[i - 1] + 1.0
        B[i] = A[i - 1] * 2.0
    }
}""")
    scheduled = isl_schedule(crossed, tile=4)
    assert isl_scheduler._fused_innermost_paths(scheduled.schedule.get_root(), []) == [[0]]
    assert not vectorized_statements(scheduled)
    deps = Dependences.of(crossed).union().intersect_params(crossed.context)
    assert distribute_innermost(crossed, scheduled.schedule, deps).plain_is_equal(
        scheduled.schedule)


PAIR = """
kernel pair(A: inout f64[N], B: inout f64[N], T: i32) {
    for t in 0:T {
        A[i] = A[i] + B[i - 1]      where i in 1:N
        B[i] = B[i] + A[i]          where i in 1:N
    }
}"""


def test_a_time_loop_pair_is_split_in_the_order_its_dependences_allow():
    assert vectorized_statements(isl_schedule(front_end(PAIR), tile=4)) == {"S0", "S1"}
    kernel = loopweave.compile(PAIR, cflags=CFLAGS, schedule=lambda k: isl_schedule(k, tile=3))
    rng = np.random.default_rng(1)
    a, b = rng.random(23), rng.random(23)
    want_a, want_b = a.copy(), b.copy()
    for _ in range(5):
        for i in range(1, 23):
            want_a[i] += want_b[i - 1]
        for i in range(1, 23):
            want_b[i] += want_a[i]
    kernel(a, b, 5)
    np.testing.assert_allclose(a, want_a)
    np.testing.assert_allclose(b, want_b)


def _steps(name: str):
    kernel = front_end(poly.POLYBENCH[name].source())
    return kernel, default_pass.default_schedule(kernel).steps


@pytest.mark.parametrize("name", ["jacobi-2d", "heat-3d", "fdtd-2d"])
def test_time_loop_nests_get_an_inner_parallel_loop(name):
    kernel, steps = _steps(name)
    parallel = [s for s in steps if s.op == "parallel"]
    assert parallel, steps
    sched = default_pass.default_schedule(kernel).apply(kernel)
    text = str(sched.schedule)
    assert "parallel:" in text
    check_numerics(name, loopweave.compile(poly.POLYBENCH[name].source(), cflags=CFLAGS,
                                           tuning_db=False))


def test_a_single_row_per_time_step_is_not_worth_forking_threads():
    _, steps = _steps("jacobi-1d")
    assert not any(s.op == "parallel" for s in steps)


def test_sweeps_without_parallel_or_vector_loops_take_isl_schedule():
    """adi: the heuristics mark none of its sweeps (only the boundary statements beside
    them), and no wavefront fits them (they share their loops with those statements). isl's
    tiles are the fallback's small ones (`FALLBACK_TILE`: short chains, so that the lines'
    recurrences overlap), not the time tiles' (`ISL_TILE`)."""
    _, steps = _steps("adi")
    assert steps == Schedule().isl(isl_choice.FALLBACK_TILE).steps
    kernel = loopweave.compile(poly.POLYBENCH["adi"].source(), cflags=CFLAGS, tuning_db=False)
    for sizes in (None, {"N": 37, "T": 5}, {"N": 4, "T": 2}):  # partial tiles, one tile
        check_numerics("adi", kernel, sizes=sizes)


@pytest.mark.parametrize("name, factor", [("seidel-2d", 2), ("floyd-warshall", 1)])
def test_a_recurrence_along_the_innermost_loop_runs_as_a_latency_wavefront(name, factor):
    """seidel-2d (and floyd-warshall before its index sets are split): the heuristics mark no
    loop; skewed by the least factor that works, a strip of rows runs innermost, carrying
    nothing, and the kernel still computes the reference."""
    kernel, steps = _steps(name)
    wave = [(s.op, s.args) for s in steps]
    inner, outer = wave[0][1][:2]
    assert wave == [("skew", (inner, outer, factor, 0)),
                    ("tile", ((outer, wavefront.WAVEFRONT_ROWS),)),
                    ("reorder", (f"{outer}_o", inner, outer))]
    placements = default_pass.default_schedule(kernel).placements(kernel)
    depth = len(placements["S0"].loops) - 1
    free, _, _ = loops_carrying_nothing(kernel, placements, {("S0", depth)})
    assert ("S0", depth) in free
    check_numerics(name, loopweave.compile(poly.POLYBENCH[name].source(), cflags=CFLAGS,
                                           tuning_db=False))


def test_a_recurrence_no_small_skew_frees_goes_to_isl():
    """Row i reads row i - 1 up to column j + 3: skews of 1 and 2 leave the strip carrying a
    dependence, so there is no wavefront (and isl's schedule is asked instead)."""
    kernel = front_end("""
kernel far(A: inout f64[N, N]) {
    A[i, j] = A[i - 1, j + 3] + A[i, j - 1]      where i in 1:N, j in 1:N-3
}""")
    assert wavefront.latency_wavefront(kernel, Schedule()) is None
    assert "skew" not in [s.op for s in default_pass.default_schedule(kernel).steps]


@pytest.mark.parametrize("name", ["gemm", "jacobi-2d", "lu", "ludcmp", "doitgen",
                                  "gramschmidt", "symm", "trmm"])
def test_kernels_the_heuristics_handle_keep_them(name):
    _, steps = _steps(name)
    assert "isl" not in [s.op for s in steps]


def test_a_nest_fused_into_a_parallel_loop_keeps_the_heuristics():
    """top-k: the parallel mark names an initialisation, but the rows' loop runs the argmax
    chain too; isl's schedule of it flattened the rank and value loops (8-17x slower)."""
    source = (Path(__file__).resolve().parents[1] / "examples/kernels/topk.lw").read_text()
    assert "isl" not in [s.op for s in default_pass.default_schedule(
        normalize(front_end(source))).steps]


def test_a_one_loop_recurrence_is_not_given_to_isl():
    kernel = front_end("""
kernel prefix(x: f32[N], y: inout f32[N]) {
    y[i] = y[i - 1] + x[i]      where i in 1:N
}""")
    assert "isl" not in [s.op for s in default_pass.default_schedule(kernel).steps]


@pytest.mark.parametrize("name", ["trisolv", "cholesky", "nussinov"])
def test_a_reduction_reading_other_elements_of_its_tensor_is_a_vector_loop(name):
    """`x[i] -= L[i, j] * x[j]` over j < i reads x, but never the x[i] that the j loop
    reduces into: the j loop carries only the reduction's chain and is vectorized."""
    kernel, steps = _steps(name)
    assert "vector" in [s.op for s in steps]
    check_numerics(name, loopweave.compile(poly.POLYBENCH[name].source(), tuning_db=False),
                   seed=11)


def test_a_reduction_reading_its_own_element_is_no_vector_loop():
    source = """
kernel own(y: f64[N], x: inout f64[M]) {
    x[i] += x[i] * y[j]
}"""
    kernel = front_end(source)
    reduction = kernel.statements[0].name
    with pytest.raises(loopweave.ScheduleError, match="vector|carries|dependence"):
        loopweave.Schedule().vectorize(reduction, "j").apply(kernel)
    # the default runs i innermost instead (each x[i] on its own): a legal vector loop
    assert ("vector", ("j",)) not in [(s.op, s.args) for s in
                                      default_pass.default_schedule(kernel).steps]
    compiled = loopweave.compile(source, tuning_db=False)
    y = np.linspace(0.1, 0.9, 7)
    x = np.linspace(1.0, 2.0, 5)
    want = x.copy()
    for j in range(7):
        want += want * y[j]
    compiled(y, x)
    np.testing.assert_allclose(x, want)


def test_an_outer_vector_loop_is_not_traded_for_threads():
    """trmm's j loop (around k) is its vector loop: it stays one, not an inner parallel loop."""
    kernel = front_end(poly.POLYBENCH["trmm"].source())
    steps = default_pass.schedule_for(kernel, default_pass.CPU).steps
    assert ("vector", ("j",)) in [(s.op, s.args) for s in steps]
    assert not any(s.op == "parallel" and s.args == ("j",) for s in steps)


@pytest.fixture
def one_openmp_thread():
    """OpenMP's thread count for the calling thread set to 1 (then restored), so that a
    parallel loop's serial twin runs (`omp_get_max_threads() > 1` is false)."""
    gomp = ctypes.CDLL("libgomp.so.1")
    before = gomp.omp_get_max_threads()
    gomp.omp_set_num_threads(1)
    yield
    gomp.omp_set_num_threads(before)


@pytest.mark.parametrize("name", ["jacobi-2d", "heat-3d"])
def test_an_inner_parallel_loop_has_a_serial_twin_for_one_thread(name, one_openmp_thread):
    """gcc moves an OpenMP loop's body into a function where its pointers lose `restrict`;
    with one thread the plain twin runs instead. Both compute the reference."""
    kernel = loopweave.compile(poly.POLYBENCH[name].source(), cflags=CFLAGS, tuning_db=False)
    assert "if (omp_get_max_threads() > 1)" in kernel.source
    check_numerics(name, kernel, seed=3)


def test_a_register_tiled_parallel_loop_is_not_duplicated():
    kernel = loopweave.compile(poly.POLYBENCH["gemm"].source(), tuning_db=False)
    # Only the B panel's copy (a parallel loop of a few lines) gets a serial twin.
    lines = kernel.source.splitlines()
    twins = [n for n, line in enumerate(lines) if "omp_get_max_threads() > 1" in line]
    assert all("_pack[" in "\n".join(lines[n:n + 6]) for n in twins), twins


@pytest.mark.parametrize("name, statement", [("trmm", "S0")])
def test_a_statement_leaves_a_shared_loop_to_run_its_stride_one_loop_innermost(name, statement):
    """trmm's `B[i, j] += A[k, i] * B[k, j]` shares its j loop with `B[i, j] *= alpha`; with
    k innermost every access is strided. Split off (fission at j), it runs k then j, and j is
    a vector loop over rows of B."""
    _, steps = _steps(name)
    assert any(s.op == "reorder" and s.target == statement and s.args[-1] == "j" for s in steps)
    assert ("vector", statement, ("j",)) in [(s.op, s.target, tuple(s.args)) for s in steps]
    check_numerics(name, loopweave.compile(poly.POLYBENCH[name].source(), cflags=CFLAGS,
                                           tuning_db=False))


def test_a_contraction_that_must_follow_its_loop_mates_leaves_their_loops_after_them():
    """symm's `C[k, j] += alpha * B[i, j] * A[i, k]` (k < i) updates the rows above row i, and
    row i's own statements (`C[i, j] = beta * C[i, j] + ...`) must run before the rows below
    update it: split off first, it would run before them. Split off after them (fission, then
    `order`), it is a contraction of its own, in register tiles."""
    _, steps = _steps("symm")
    ops = [(s.op, s.target, tuple(s.args)) for s in steps]
    assert ("order", "S1,S0", ("S1", "S0")) in ops
    assert any(op == "cache_write" and target == "S0" for op, target, _ in ops)
    check_numerics("symm", loopweave.compile(poly.POLYBENCH["symm"].source(), cflags=CFLAGS,
                                             tuning_db=False))


@pytest.mark.parametrize("name", ["lu", "ludcmp"])
def test_a_reduction_moves_out_past_the_statement_that_consumes_it(name):
    """lu's `A[i, j] -= A[i, k] * A[k, j]` (k < j) shares its j loop with `A[i, j] /= A[j, j]`,
    and neither can be split off the other. Interchanged, k runs outside j (a vector loop
    along rows of A) and the division runs at the end of iteration j - 1 (passes/
    interchange.py); each element is reduced in the same order of k, so it stays within
    rounding of program order (where the compiler fuses a multiply-add in one and not the
    other). The heuristics' schedule: the default takes the right-looking one
    (tests/test_right_looking.py)."""
    source = poly.POLYBENCH[name].source()
    heuristics = default_pass.schedule_for(front_end(source), default_pass.CPU)
    ops = [(s.op, s.target, tuple(s.args)) for s in heuristics.steps]
    assert ("reorder", "S0", ("k", "j")) in ops and ("skew", "S1", ("j", "j", 0, -1)) in ops
    assert ("vector", "S0", ("j",)) in ops
    kernel = loopweave.compile(source, schedule=heuristics, cflags=CFLAGS, tuning_db=False)
    check_numerics(name, kernel)
    naive = loopweave.compile(source, schedule=loopweave.Schedule(), cflags=CFLAGS)
    args = poly.POLYBENCH[name].make_inputs({"N": 37}, 2)
    a, b = ({k: np.copy(v) for k, v in args.items()} for _ in range(2))
    kernel(*a.values())
    naive(*b.values())
    np.testing.assert_allclose(a["A"], b["A"], rtol=1e-12, atol=1e-12)


def test_the_interchange_is_not_taken_where_it_is_illegal():
    """Without the shift the division would run before the last update of its element."""
    kernel = front_end(poly.POLYBENCH["lu"].source())
    with pytest.raises(loopweave.ScheduleError, match="breaks"):
        loopweave.Schedule().reorder("S0", "k", "j").apply(kernel)
    candidates = interchange_candidates(
        loopweave.Schedule().placements(kernel), "S0", "j")
    assert [c[1:] for c in candidates] == [[], [("shift", "S1", "j", -1)]]


def test_no_statement_leaves_a_loop_inside_a_time_loop():
    """adi: splitting its back substitution off the line loop vectorizes it, but isl's tiles
    of the whole sweep measured faster (2.05x against 1.13x): the kernel stays isl's."""
    _, steps = _steps("adi")
    assert [s.op for s in steps] == ["isl"]
