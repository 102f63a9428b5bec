"""Schedules from isl's own scheduler (passes/isl_scheduler.py): every PolyBench kernel under
`isl_schedule` matches its numpy reference at small odd sizes (tiles of 8, so that the sizes
make full and partial tiles); loops isl finds parallel become OpenMP loops; a failure of isl or
an illegal result is a ScheduleError."""

from __future__ import annotations

import functools
import time

import islpy as isl
import numpy as np
import pytest

import loopweave
from loopweave.autotune.space import SearchSpace
from loopweave.errors import ScheduleError
from loopweave.examples import load_polybench_references
from loopweave.ir.codegen import loop_ast
from loopweave.ir.loops import For, If, Store, walk
from loopweave.passes import isl_scheduler
from loopweave.passes.isl_scheduler import isl_schedule, stores_with_stride_one
from loopweave.passes.schedule import Schedule
from loopweave.pipeline import front_end, get_target

poly = load_polybench_references()
TILED = functools.partial(isl_schedule, tile=8)
# -O1 builds: the test checks the schedule, not gcc, and 30 builds at -O3 take a minute.
CFLAGS = "-O1 -march=native"
_compiled: dict[str, object] = {}

# Kernels where isl's schedule has a parallel loop (the wavefront of the tiled stencils too).
PARALLEL = ["gemm", "2mm", "atax", "mvt", "syrk", "jacobi-1d", "jacobi-2d", "seidel-2d",
            "heat-3d", "fdtd-2d", "lu"]


def compiled(name: str):
    """The kernel under isl's schedule, compiled once per session."""
    if name not in _compiled:
        _compiled[name] = loopweave.compile(poly.POLYBENCH[name].source(), schedule=TILED,
                                            cflags=CFLAGS)
    return _compiled[name]


def odd_sizes(name: str) -> dict[str, int]:
    """The kernel's first test sizes, each made odd (one less where even)."""
    return {k: v if v % 2 else v - 1 for k, v in poly.POLYBENCH[name].sizes[0].items()}


@pytest.mark.parametrize("name", sorted(poly.POLYBENCH))
def test_polybench_kernel_under_isl_schedule_matches_reference(name):
    case = poly.POLYBENCH[name]
    sizes = odd_sizes(name)
    args = case.make_inputs(sizes, 7)
    expected = case.expected(args)
    got = poly.results_of(case, args, compiled(name)(*args.values()))
    for out, want in expected.items():
        err, ok = poly.compare(np.asarray(got[out]), want, case.tol_scale)
        assert ok, f"{name}[{out}] at {sizes}: differs by {err:g}"


@pytest.mark.parametrize("name", PARALLEL)
def test_parallel_loops_become_openmp_loops(name):
    assert "#pragma omp parallel for" in compiled(name).source


def test_gemm_gets_a_stride_one_vector_loop_and_time_tiles_of_jacobi_a_wavefront():
    gemm = str(isl_schedule(front_end(poly.POLYBENCH["gemm"].source())).schedule)
    assert "vector:S" in gemm and "parallel:S0:c0" in gemm
    jacobi = isl_schedule(front_end(poly.POLYBENCH["jacobi-2d"].source()), tile=16).schedule
    # tile loop 0 is the wavefront t_o + i_o: it runs in sequence, tile loop 1 in parallel
    assert "parallel:S0:c1" in str(jacobi)


def test_untiled_schedule_is_legal_and_correct():
    case = poly.POLYBENCH["seidel-2d"]
    kernel = loopweave.compile(case.source(), schedule=functools.partial(isl_schedule, tile=None),
                               cflags=CFLAGS)
    args = case.make_inputs(odd_sizes("seidel-2d"), 3)
    expected = case.expected(args)
    got = poly.results_of(case, args, kernel(*args.values()))
    for out, want in expected.items():
        assert poly.compare(np.asarray(got[out]), want, case.tol_scale)[1], out


def test_isl_options_are_restored():
    ctx = isl.DEFAULT_CONTEXT
    before = {name: getattr(ctx, f"get_{name}")() for name in isl_scheduler.ISL_OPTIONS}
    isl_schedule(front_end(poly.POLYBENCH["jacobi-1d"].source()))
    assert {name: getattr(ctx, f"get_{name}")() for name in before} == before


@pytest.mark.parametrize("tile", [0, -4, 2.5, True])
def test_bad_tile_size_is_a_schedule_error(tile):
    with pytest.raises(ScheduleError, match="tile size"):
        isl_schedule(front_end(poly.POLYBENCH["gemm"].source()), tile=tile)


def test_isl_failure_is_a_schedule_error_without_isl_traceback(monkeypatch):
    def failing(kernel, deps):
        raise isl.Error("isl_scheduler.c:123: some internal failure")

    monkeypatch.setattr(isl_scheduler, "compute", failing)
    with pytest.raises(ScheduleError, match="isl's scheduler failed on kernel gemm") as info:
        isl_schedule(front_end(poly.POLYBENCH["gemm"].source()))
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_illegal_result_is_refused(monkeypatch):
    """A schedule that runs jacobi-1d's time steps backwards breaks its dependences."""
    def reversed_time(kernel, deps):
        band = isl.MultiUnionPwAff("[N, T] -> [{ S0[t, i] -> [(-t)]; S1[t, i] -> [(-t)] }]")
        return isl.Schedule.from_domain(kernel.domains()).insert_partial_schedule(band)

    monkeypatch.setattr(isl_scheduler, "compute", reversed_time)
    with pytest.raises(ScheduleError, match="isl's schedule of jacobi_1d breaks"):
        isl_schedule(front_end(poly.POLYBENCH["jacobi-1d"].source()))


def test_stride_one_means_the_store_moves_by_one_element():
    writes = isl.UnionMap("[N] -> { S[i, j] -> C[i, j] : 0 <= i, j < N }")
    along_j = isl.UnionMap("[N] -> { S[i, j] -> [i, j] : 0 <= i, j < N }")
    along_i = isl.UnionMap("[N] -> { S[i, j] -> [j, i] : 0 <= i, j < N }")
    assert stores_with_stride_one(along_j, writes)
    assert not stores_with_stride_one(along_i, writes)


def test_the_tuner_space_offers_isl_schedule_on_cpu():
    """The knob decodes to a one-step schedule that replaces the other knobs' steps, survives
    the tuning database's JSON, and is what isl_schedule gives."""
    kernel = front_end(poly.POLYBENCH["gemm"].source())
    space = SearchSpace(kernel, {"NI": 40, "NJ": 40, "NK": 40}, get_target("cpu"))
    assert {"isl.scheduler", "isl.tile"} <= {k.name for k in space.knobs}
    assert {"isl.scheduler": True} in [{k: v for k, v in seed.items() if k == "isl.scheduler"
                                        and v} for seed in space.seeds()]
    config = {**space.default(), "C.unroll": "inner", "isl.scheduler": True, "isl.tile": 16}
    schedule, _ = space.decode(config)
    assert [step.op for step in schedule.steps] == ["isl"]
    assert space.is_legal(config)
    replayed = Schedule.from_json(schedule.to_json()).apply(kernel)
    assert str(replayed.schedule) == str(isl_schedule(kernel, tile=16).schedule)


def test_row_tiles_survive_a_tuning_record_and_reject_a_wrong_flag():
    kernel = front_end(poly.POLYBENCH["heat-3d"].source())
    schedule = Schedule().isl(8, rows=True)
    replayed = Schedule.from_json(schedule.to_json()).apply(kernel)
    assert str(replayed.schedule) == str(isl_schedule(kernel, tile=8, rows=True).schedule)
    assert str(replayed.schedule) != str(isl_schedule(kernel, tile=8).schedule)
    with pytest.raises(ScheduleError, match="rows must be True or False"):
        isl_schedule(kernel, 8, "yes")


def test_an_isl_step_takes_no_other_steps():
    kernel = front_end(poly.POLYBENCH["gemm"].source())
    with pytest.raises(ScheduleError, match="no other steps"):
        Schedule().isl().parallel("C", "i").apply(kernel)


def test_statements_fused_into_a_vector_loop_get_guard_free_pieces():
    # heat-3d's time tiles fuse both statements, shifted, into the innermost loop: isl
    # separates the loop into the parts where the same statements run, so no vector loop
    # tests its own variable at every iteration (the guarded loop ran at 0.66x program order).
    heat = isl_schedule(front_end(poly.POLYBENCH["heat-3d"].source()), tile=8)
    vector_loops = [n for n in walk(loop_ast(heat)) if isinstance(n, For) and n.kind == "vector"]
    fused = [loop for loop in vector_loops
             if len({s.tensor for s in walk(loop.body) if isinstance(s, Store)}) > 1]
    assert fused, "heat-3d's tiles should fuse both statements into one vector loop"
    for loop in vector_loops:
        guards = [n for n in walk(loop.body) if isinstance(n, If)]
        assert not guards, f"vector loop {loop.var} keeps {len(guards)} guards"


# Fuzz seed 10193: Farkas' lemma over these reversed, strided accesses keeps isl's scheduler
# busy for over ten minutes.
SLOW_FOR_ISL = (
    "kernel slow(A: i8[N, N, N, N], B: i8[N, N], T: i32) -> (O0: i8[N, N, N, N]) {\n"
    "  for t in 1:T {\n"
    "    O0[i, j, 2*k + 1, l] -= ((O0[m, m - 1, N - 1 - i, 3*n] + A[l, 2*k + 1, j, i])"
    " + B[3*n, N - 1 - m])"
    "  where i in 1:N, j in 1:N - 2, k in 0:N / 2, m in 1:N - 2, n in 0:N / 3, l <= j\n"
    "  }\n"
    "}\n")


def test_the_scheduler_gives_up_at_its_deadline_and_the_default_keeps_the_heuristics(
        monkeypatch):
    monkeypatch.setattr(isl_scheduler, "SCHEDULER_SECONDS", 0.5)
    with pytest.warns(loopweave.DSLWarning):
        kernel_ir = front_end(SLOW_FOR_ISL)
    with pytest.raises(ScheduleError, match="gave up on kernel slow after 0.5 s"):
        isl_schedule(kernel_ir)
    rng = np.random.default_rng(0)
    args = {"A": rng.integers(-9, 9, (5,) * 4, dtype=np.int8),
            "B": rng.integers(-9, 9, (5, 5), dtype=np.int8), "T": 3}
    with pytest.warns(loopweave.DSLWarning):
        default = loopweave.compile(SLOW_FOR_ISL, cflags=CFLAGS)
        naive = loopweave.compile(SLOW_FOR_ISL, schedule=Schedule(), cflags=CFLAGS)
    expected = naive(**args)
    assert expected.any() and np.array_equal(default(**args), expected)


def test_a_shorter_deadline_holds_inside_its_block():
    with pytest.warns(loopweave.DSLWarning):
        kernel_ir = front_end(SLOW_FOR_ISL)
    start = time.monotonic()
    with isl_scheduler.scheduler_deadline(0.3), \
            pytest.raises(ScheduleError, match=r"gave up on kernel slow after 0\.\d+ s"):
        isl_schedule(kernel_ir)
    assert time.monotonic() - start < 5  # not SCHEDULER_SECONDS
    assert isl_scheduler.scheduler_seconds() == isl_scheduler.SCHEDULER_SECONDS


def test_the_deadline_call_gives_islpys_own_schedule():
    kernel_ir = front_end(poly.POLYBENCH["jacobi-2d"].source())
    deps = isl_scheduler.Dependences.of(kernel_ir).union().intersect_params(kernel_ir.context)
    ctx = kernel_ir.context.get_ctx()
    with isl_scheduler.isl_options(ctx, isl_scheduler.ISL_OPTIONS):
        direct = (isl.ScheduleConstraints.on_domain(kernel_ir.domains())
                  .set_context(kernel_ir.context).set_validity(deps).set_proximity(deps)
                  .set_coincidence(deps).compute_schedule())
    assert isl_scheduler.compute(kernel_ir, deps).plain_is_equal(direct)
