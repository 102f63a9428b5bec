"""The default's choice by sizes (issue [polyhedral]): a stencil in time whose data exceed the
cache (`time_tile_bound`) runs isl's time tiles, a smaller one the heuristics' row-parallel
steps. The choice is made per call's sizes; `Kernel.source` shows what ran, and `emit_c` at the
same sizes emits the same schedule. Checked on the schedules and numerically at odd sizes."""

from __future__ import annotations

import pytest
from test_polyhedral_defaults import check_numerics as check_polybench

import loopweave
from loopweave.examples import load_polybench_references
from loopweave.passes import default as default_pass
from loopweave.passes import isl_choice
from loopweave.passes.normalize import normalize
from loopweave.passes.schedule import Schedule
from loopweave.pipeline import front_end
from loopweave.targets import host_cache_bytes

poly = load_polybench_references()
CFLAGS = "-O1 -march=native"
#: A bound small enough that odd test sizes fall on both sides of it (jacobi-2d's two N x N f64
#: grids: N = 31 is 15,376 bytes, N = 53 is 44,944).
SMALL_BOUND = 20_000


def ir_of(name: str):
    return normalize(front_end(poly.POLYBENCH[name].source()))


def check_numerics(name: str, kernel, sizes: dict[str, int]) -> None:
    check_polybench(name, kernel, seed=7, sizes=sizes)


def test_the_footprint_counts_every_tensor_the_statements_touch():
    assert isl_choice.footprint_bytes(ir_of("jacobi-2d"), {"N": 100, "T": 3}) == \
        2 * 100 * 100 * 8
    assert isl_choice.footprint_bytes(ir_of("fdtd-2d"), {"NX": 10, "NY": 20, "TMAX": 4}) == \
        3 * 10 * 20 * 8 + 4 * 8  # ex, ey, hz and the source term _fict_


@pytest.mark.parametrize("name", ["jacobi-2d", "fdtd-2d", "jacobi-1d"])
def test_stencils_whose_statements_get_vector_loops_of_their_own_take_time_tiles(name):
    assert isl_choice.time_tiled_schedule(ir_of(name)).steps == Schedule().isl(
        isl_choice.ISL_TILE).steps


def test_a_stencil_whose_statements_share_a_guarded_vector_loop_takes_row_tiles():
    """heat-3d: isl fuses its two statements in one vector loop with guards (0.65x at LARGE);
    whole rows under (t, i, j) tiles give each its own."""
    assert isl_choice.time_tiled_schedule(ir_of("heat-3d")).steps == Schedule().isl(
        isl_choice.ROW_TILE, rows=True).steps


def test_a_stencil_that_neither_tiling_vectorizes_keeps_the_default():
    """seidel-2d updates its grid in place: no loop of isl's tiles is a vector loop."""
    assert isl_choice.time_tiled_schedule(ir_of("seidel-2d")) is None


@pytest.mark.parametrize("name", ["gemm", "doitgen", "lu", "gramschmidt", "correlation"])
def test_kernels_without_a_time_loop_have_no_rule_by_sizes(name):
    assert isl_choice.time_tiles(ir_of(name)) is None


def test_the_rule_chooses_by_the_data_size(monkeypatch):
    monkeypatch.setattr(isl_choice, "TIME_TILE_BYTES", SMALL_BOUND)
    monkeypatch.setattr(isl_choice, "TIME_TILE_PER_THREAD", False)
    rule = isl_choice.time_tiles(ir_of("jacobi-2d"))
    assert rule.at({"N": 31, "T": 4}) is None
    assert rule.at({"N": 53, "T": 4}).steps == Schedule().isl(isl_choice.ISL_TILE).steps


def test_row_tiles_only_where_the_parallel_loops_get_one_thread(monkeypatch):
    """Row tiles run in parallel only along their wavefront: with two threads heat-3d keeps
    the heuristics' plane-parallel sweeps, while jacobi-2d's tiles do not depend on it."""
    monkeypatch.setattr(isl_choice, "TIME_TILE_BYTES", SMALL_BOUND)
    monkeypatch.setattr(isl_choice, "TIME_TILE_PER_THREAD", False)
    heat, jacobi = (isl_choice.time_tiles(ir_of(n)) for n in ("heat-3d", "jacobi-2d"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert heat.at({"N": 20, "T": 4}).steps == Schedule().isl(
        isl_choice.ROW_TILE, rows=True).steps
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert heat.at({"N": 20, "T": 4}) is None
    assert jacobi.at({"N": 53, "T": 4}).steps == Schedule().isl(isl_choice.ISL_TILE).steps


def test_each_call_runs_the_default_choice_for_its_sizes(monkeypatch):
    monkeypatch.setattr(isl_choice, "TIME_TILE_BYTES", SMALL_BOUND)
    monkeypatch.setattr(isl_choice, "TIME_TILE_PER_THREAD", False)
    kernel = loopweave.compile(poly.POLYBENCH["jacobi-2d"].source(), cflags=CFLAGS,
                               tuning_db=False)
    default_source = kernel.source
    check_numerics("jacobi-2d", kernel, {"N": 31, "T": 5})
    assert kernel.source == default_source
    check_numerics("jacobi-2d", kernel, {"N": 53, "T": 5})
    tiled_source = kernel.source
    assert tiled_source != default_source
    tiled = loopweave.compile(poly.POLYBENCH["jacobi-2d"].source(), cflags=CFLAGS,
                              schedule=Schedule().isl(isl_choice.ISL_TILE))
    assert tiled_source == tiled.source  # what ran is isl's time tiles
    check_numerics("jacobi-2d", kernel, {"N": 31, "T": 3})
    assert kernel.source == default_source  # back to the default for the small sizes


def test_emit_c_at_sizes_emits_the_default_choice_for_them(monkeypatch, tmp_path):
    monkeypatch.setattr(isl_choice, "TIME_TILE_BYTES", SMALL_BOUND)
    monkeypatch.setattr(isl_choice, "TIME_TILE_PER_THREAD", False)
    source = poly.POLYBENCH["jacobi-2d"].source()

    def emitted(sizes, **kw) -> str:
        out = tmp_path / f"emit{len(list(tmp_path.iterdir()))}"
        return loopweave.emit_c(source, sizes, out_dir=out, **kw).source.read_text()

    big, small = {"N": 53}, {"N": 31}
    assert emitted(big) == emitted(big, schedule=Schedule().isl(isl_choice.ISL_TILE))
    default = default_pass.default_schedule(ir_of("jacobi-2d"))
    assert emitted(small) == emitted(small, schedule=default)


def test_an_explicit_schedule_is_never_replaced_by_the_rule(monkeypatch):
    monkeypatch.setattr(isl_choice, "TIME_TILE_BYTES", SMALL_BOUND)
    monkeypatch.setattr(isl_choice, "TIME_TILE_PER_THREAD", False)
    kernel = loopweave.compile(poly.POLYBENCH["jacobi-2d"].source(), cflags=CFLAGS,
                               schedule=Schedule())
    before = kernel.source
    check_numerics("jacobi-2d", kernel, {"N": 53, "T": 3})
    assert kernel.source == before


def test_the_cache_size_is_read_from_sysfs(tmp_path):
    """`host_cache_bytes` reads Linux's cache records (the bound is half the last level's)."""
    for index, (level, kind, size) in enumerate([(1, "Data", "32K"), (1, "Instruction", "32K"),
                                                 (2, "Unified", "512K"), (3, "Unified", "32M")]):
        entry = tmp_path / f"index{index}"
        entry.mkdir()
        (entry / "level").write_text(f"{level}\n")
        (entry / "type").write_text(f"{kind}\n")
        (entry / "size").write_text(f"{size}\n")
    assert host_cache_bytes(1, str(tmp_path)) == 32 << 10
    assert host_cache_bytes(3, str(tmp_path)) == 32 << 20
    assert host_cache_bytes(4, str(tmp_path)) is None
    assert host_cache_bytes(3, str(tmp_path / "missing")) is None


def test_the_bound_is_half_the_l3_or_the_l2_of_a_big_shared_l3_per_thread():
    """Zen 3's 32 MiB L3: 16 MiB; an unreported L3: 16 MiB; a 64 MiB one capped at 16; the
    Xeon VM's 480 MiB L3 (a server part's, shared far beyond the VM): its 2 MiB L2, per
    thread."""
    mib = 1 << 20
    assert isl_choice.time_tile_bytes(512 << 10, 32 * mib) == (16 * mib, False)
    assert isl_choice.time_tile_bytes(None, None) == (16 * mib, False)
    assert isl_choice.time_tile_bytes(mib, 64 * mib) == (16 * mib, False)
    assert isl_choice.time_tile_bytes(2 * mib, 480 * mib) == (2 * mib, True)
    assert isl_choice.time_tile_bytes(None, 480 * mib) == (16 * mib, False)


def test_a_per_thread_bound_grows_with_the_threads(monkeypatch):
    monkeypatch.setattr(isl_choice, "TIME_TILE_BYTES", SMALL_BOUND)
    monkeypatch.setattr(isl_choice, "TIME_TILE_PER_THREAD", True)
    assert isl_choice.time_tile_bound(2) == 2 * SMALL_BOUND
    monkeypatch.setattr(isl_choice, "TIME_TILE_PER_THREAD", False)
    assert isl_choice.time_tile_bound(2) == SMALL_BOUND
