"""Schedules that bind loops to GPU axes drive the cuda and triton targets (`Schedule.bind`).

For matmul, conv2d, softmax and attention, two different legal schedules give different CUDA
and Triton sources, and both match numpy on odd sizes: CUDA through the emulation header (fiber
threads, real barriers: a missing `__syncthreads` gives a wrong answer), Triton through its
interpreter. Illegal binds name the dependence; shared memory over budget is refused; nvcc and
Triton's own compiler (ahead of time for sm_90) accept the generated code.
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported: no GPU here

import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from test_kernels import refs  # noqa: E402

import loopweave  # noqa: E402
from loopweave.backends import cuda  # noqa: E402
from loopweave.driver import stages  # noqa: E402
from loopweave.errors import ScheduleError  # noqa: E402
from loopweave.examples import load_polybench_references  # noqa: E402
from loopweave.passes.gpu_default import GpuTiles, gpu_schedule  # noqa: E402
from loopweave.pipeline import front_end  # noqa: E402
from loopweave.targets import GPU_FACTS  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
needs_nvcc = pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
needs_triton = pytest.mark.skipif(
    os.environ.get("TRITON_INTERPRET") != "1" or not all(
        __import__("importlib").util.find_spec(p) for p in ("triton", "torch")),
    reason="triton and torch (with TRITON_INTERPRET=1) are needed")

MATMUL = refs.KERNELS["matmul"].source()


def threads_2d(tensor: str, rows: str, cols: str, tile: int = 8) -> list[tuple]:
    """Tiles of rows x cols: tiles over the blocks, their points over the threads."""
    return [("tile", tensor, {rows: tile, cols: tile}),
            ("reorder", tensor, (f"{rows}_o", f"{cols}_o", rows, cols)),
            ("bind", tensor, f"{rows}_o", "blockIdx.y"),
            ("bind", tensor, f"{cols}_o", "blockIdx.x"),
            ("bind", tensor, rows, "threadIdx.y"), ("bind", tensor, cols, "threadIdx.x")]


def rows_on_threads(tensor: str, rows: str, tile: int = 32) -> list[tuple]:
    """One thread per row, `tile` rows per block; everything else serial in the thread."""
    return [("tile", tensor, {rows: tile}), ("bind", tensor, f"{rows}_o", "blockIdx.x"),
            ("bind", tensor, rows, "threadIdx.x")]


def rows_on_blocks(tensor: str, rows: str, cols: str | None, tile: int = 16) -> list[tuple]:
    """One block per row; the columns `cols` (if any) over the threads, `tile` at a time."""
    steps: list[tuple] = [("bind", tensor, rows, "blockIdx.x")]
    if cols:
        steps = [("tile", tensor, {cols: tile}), *steps, ("bind", tensor, cols, "threadIdx.x")]
    return steps


def schedule_of(steps: list[tuple]) -> loopweave.Schedule:
    s = loopweave.Schedule()
    for op, *args in steps:
        if op == "tile":
            s.tile(args[0], **args[1])
        elif op == "reorder":
            s.reorder(args[0], *args[1])
        else:
            getattr(s, op)(*args)
    return s


def conv_schedule(variant: int) -> list[tuple]:
    if variant == 0:  # images and channels over the grid, an output tile over the threads
        return [("bind", "Y", "n", "blockIdx.y"), ("bind", "Y", "k", "blockIdx.x"),
                ("tile", "Y", {"y": 4, "x": 8}), ("bind", "Y", "y", "threadIdx.y"),
                ("bind", "Y", "x", "threadIdx.x")]
    return [("bind", "Y", "n", "blockIdx.z"), ("bind", "Y", "k", "blockIdx.y"),
            ("bind", "Y", "y", "blockIdx.x"), ("tile", "Y", {"x": 16}),
            ("bind", "Y", "x", "threadIdx.x")]


CASES = {
    "matmul": (MATMUL, [threads_2d("C", "i", "j"), rows_on_threads("C", "i")]),
    "conv2d": (refs.KERNELS["conv2d"].source(), [conv_schedule(0), conv_schedule(1)]),
    "softmax": (refs.KERNELS["softmax"].source(),
                [[x for t in ("m", "e", "s", "Y") for x in rows_on_threads(t, "i", 8)],
                 [*rows_on_blocks("m", "i", None), *rows_on_blocks("e", "i", "j"),
                  *rows_on_blocks("s", "i", None), *rows_on_blocks("Y", "i", "j")]]),
    "attention": (refs.KERNELS["attention"].source(),
                  [[x for t in ("s", "m", "e", "z", "p", "O") for x in rows_on_threads(t, "i", 4)],
                   [*rows_on_blocks("s", "i", "j", 8), *rows_on_blocks("m", "i", None),
                    *rows_on_blocks("e", "i", "j", 8), *rows_on_blocks("z", "i", None),
                    *rows_on_blocks("p", "i", "j", 8), *rows_on_blocks("O", "i", "v", 4)]]),
}
SIZES = {"matmul": {"M": 37, "K": 21, "N": 29},
         "conv2d": {"N": 2, "C": 3, "H": 9, "W": 11, "K": 5, "R": 3, "S": 2},
         "softmax": {"N": 19, "D": 23},
         "attention": {"LQ": 13, "LK": 11, "D": 7, "DV": 5}}


def compiled(name: str, variant: int, target: str):
    source, schedules = CASES[name]
    options = {"emulate": True} if target == "cuda" else {}
    return loopweave.compile(source, target, schedule=schedule_of(schedules[variant]),
                             tuning_db=False, **options)


def assert_matches_reference(suite, case, sizes: dict, seed: int, kernel, what: str) -> None:
    """`kernel` on `case`'s inputs at `sizes` against its numpy reference; `suite` is the
    reference module (example kernels or PolyBench) with `results_of` and `compare`."""
    args = case.make_inputs(sizes, seed)
    expected = case.expected(args)  # before the call: it updates inout arrays in place
    got = suite.results_of(case, args, kernel(*args.values()))
    for out, want in expected.items():
        err, ok = suite.compare(got[out], want, case.tol_scale)
        assert ok, f"{what}: {out} differs from the reference by {err:g}"


def check_numerics(name: str, kernel) -> None:
    assert_matches_reference(refs, refs.KERNELS[name], SIZES[name], 7, kernel, name)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("target", ["cuda", pytest.param("triton", marks=needs_triton)])
def test_two_schedules_two_sources_both_right(name, target):
    kernels = [compiled(name, v, target) for v in (0, 1)]
    assert kernels[0].source != kernels[1].source
    for k in kernels:
        assert "lowered from its schedule" in k.source
        check_numerics(name, k)


def test_the_bound_axes_reach_the_cuda_source():
    source = compiled("matmul", 0, "cuda").source
    assert "blockIdx.y" in source and "threadIdx.x" in source
    assert "dim3(8, 8, 1)" in source  # the 8x8 point tile is the block shape


def test_block_level_work_waits_at_barriers():
    """softmax, rows on blocks: the row max runs on one thread, then the threads read it."""
    source = compiled("softmax", 1, "cuda").source
    assert "__syncthreads();" in source and "threadIdx.x == 0" in source


def test_a_bind_that_carries_a_dependence_is_refused_with_its_instances():
    """A reduction's loop may go to the threads of a block (they combine partial results), not
    to blockIdx: blocks do not communicate."""
    with pytest.raises(ScheduleError, match=r"loop k of S1 cannot be bound to blockIdx.x: it "
                       r"carries a dependence from S1\(i=0, j=0, k=0\) \(line 3\) to "
                       r"S1\(i=0, j=0, k=1\)"):
        stages(MATMUL, "cuda", schedule=loopweave.Schedule().bind("C", "k", "blockIdx.x"))


def test_an_unknown_axis_is_refused():
    with pytest.raises(ScheduleError, match="unknown GPU axis 'thread.x'"):
        loopweave.Schedule().bind("C", "i", "thread.x")


def test_a_thread_loop_needs_a_constant_trip_count():
    with pytest.raises(ScheduleError, match="no constant trip count; tile it"):
        stages(MATMUL, "cuda", schedule=loopweave.Schedule().bind("C", "i", "threadIdx.x"))


def test_too_many_threads_are_refused():
    s = schedule_of(threads_2d("C", "i", "j", tile=64))
    with pytest.raises(ScheduleError, match="4096 threads per block"):
        stages(MATMUL, "cuda", schedule=s)


def test_shared_memory_over_budget_is_refused():
    """A 128 x 128 f32 tile of A (rows padded to 144) and a 128 x 8 one of B: 76 KiB per block;
    CUDA allows 48 KiB."""
    s = staged_matmul(rows=128, cols=8, depth=128)
    with pytest.raises(ScheduleError, match="shared memory over budget: B_pack, A_pack take 77824 "
                       "bytes per block, the target allows 49152"):
        stages(MATMUL, "cuda", schedule=s)


def staged_matmul(rows: int = 8, cols: int = 8, depth: int = 4) -> loopweave.Schedule:
    """C in rows x cols tiles (S0 its initialisation, S1 the update); the update walks k in
    `depth` steps and copies the tiles of A and B it needs before each (cache_read at the first
    point loop: the footprint of one k_o iteration)."""
    s = schedule_of([("tile", "S0", {"i": rows, "j": cols}),
                     ("tile", "S1", {"i": rows, "j": cols, "k": depth}),
                     ("reorder", "S1", ("i_o", "j_o", "k_o", "i", "j", "k"))])
    for stmt in ("S0", "S1"):
        s.bind(stmt, "i_o", "blockIdx.y").bind(stmt, "j_o", "blockIdx.x")
        s.bind(stmt, "i", "threadIdx.y").bind(stmt, "j", "threadIdx.x")
    return s.cache_read("S1", "A", "i").cache_read("S1", "B", "i")


def test_tiles_staged_in_shared_memory_match_numpy():
    """cache_read at a block-level loop: the tiles of A and B are __shared__, copied by all
    threads of the block together (one flattened loop each), between barriers."""
    kernel = loopweave.compile(MATMUL, "cuda", schedule=staged_matmul(), emulate=True,
                               tuning_db=False)
    assert kernel.source.count("__shared__ float") == 2
    update = kernel.source[kernel.source.index("matmul_k1("):]
    assert update.count("lw_f += (int64_t)blockDim.x * blockDim.y * blockDim.z") == 2
    assert "threadIdx.x == 0" not in update
    check_numerics("matmul", kernel)


@needs_triton
def test_triton_refuses_block_level_arrays():
    with pytest.raises(ScheduleError, match="local to a block; the triton target keeps only "
                       "scalars"):
        stages(MATMUL, "triton", schedule=staged_matmul())


TIME_LOOP = """
kernel smooth(X: inout f32[T, N]) -> Y: f32[T, N] {
    for t in 1:T {
        X[t, i] = X[t - 1, i] * 0.5 + 1.0 where 0 <= i < N
    }
    Y[t, i] = X[t, i]
}"""


@pytest.mark.parametrize("target", ["cuda", pytest.param("triton", marks=needs_triton)])
def test_a_carried_time_loop_stays_on_the_host_with_one_launch_per_step(target):
    s = schedule_of([("tile", "X", {"i": 16}), ("bind", "X", "i_o", "blockIdx.x"),
                     ("bind", "X", "i", "threadIdx.x"), ("tile", "Y", {"i": 16}),
                     ("bind", "Y", "t", "blockIdx.y"), ("bind", "Y", "i_o", "blockIdx.x"),
                     ("bind", "Y", "i", "threadIdx.x")])
    options = {"emulate": True} if target == "cuda" else {}
    kernel = loopweave.compile(TIME_LOOP, target, schedule=s, tuning_db=False, **options)
    X = np.random.default_rng(1).random((6, 37), dtype=np.float32)
    want = X.copy()
    for t in range(1, 6):
        want[t] = want[t - 1] * 0.5 + 1.0
    np.testing.assert_allclose(kernel(X), want, rtol=1e-6)
    np.testing.assert_allclose(X, want, rtol=1e-6)


TRIANGLE = """
kernel lower_sums(A: f32[N, N]) -> r: f32[N] {
    r[i] += A[i, j] where 0 <= j <= i
}"""


@pytest.mark.parametrize("target", ["cuda", pytest.param("triton", marks=needs_triton)])
def test_per_thread_loop_bounds_that_differ_between_threads(target):
    """Each row sums its own triangle: the serial j loop's bounds depend on the thread's row."""
    s = schedule_of(rows_on_threads("r", "i", 8))
    options = {"emulate": True} if target == "cuda" else {}
    kernel = loopweave.compile(TRIANGLE, target, schedule=s, tuning_db=False, **options)
    A = np.random.default_rng(2).random((21, 21), dtype=np.float32)
    np.testing.assert_allclose(kernel(A), np.tril(A).sum(axis=1), rtol=1e-5)


@pytest.mark.parametrize("target", ["cuda", pytest.param("triton", marks=needs_triton)])
def test_statements_left_unbound_run_on_one_thread_with_a_warning(target):
    s = schedule_of(rows_on_threads("Y", "i", 8))  # m, e and s left unbound
    warning = cuda.SequentialLoopWarning if target == "cuda" else \
        __import__("loopweave.backends.triton", fromlist=["x"]).SequentialLoopWarning
    options = {"emulate": True} if target == "cuda" else {}
    with pytest.warns(warning, match="run.* on one GPU thread"):
        kernel = loopweave.compile(refs.KERNELS["softmax"].source(), target, schedule=s,
                                   tuning_db=False, **options)
    check_numerics("softmax", kernel)


@needs_nvcc
@pytest.mark.parametrize("name", ["matmul", "attention"])
def test_nvcc_builds_the_scheduled_source_and_reports_its_resources(name):
    kernel = compiled(name, 0, "cuda")
    usage = cuda.parse_ptxas(cuda.nvcc_check(kernel.source, "sm_90"))
    assert usage and all(u["registers"] > 0 and u["spill_stores"] == 0 for u in usage.values())


AOT = """
import sys
sys.path.insert(0, "tests")
from test_gpu_schedule import CASES, schedule_of
from loopweave.backends.triton import aot_compile
from loopweave.driver import stages
for name in sys.argv[1:]:
    st = stages(CASES[name][0], target="triton", schedule=schedule_of(CASES[name][1][0]))
    for fn, ptx in aot_compile(st.ir, st.source, arch=90).items():
        assert ".target sm_90" in ptx and ".entry " + fn in ptx, fn
        print(name, fn, len(ptx))
"""


@needs_triton
def test_triton_compiles_the_scheduled_module_for_a_real_gpu_ahead_of_time():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_INTERPRET"] = "0"
    result = subprocess.run([sys.executable, "-c", AOT, "matmul", "softmax"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "matmul lw_matmul_k1" in result.stdout and "softmax lw_softmax_k" in result.stdout


def test_without_binds_the_planner_still_decides():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        source = stages(MATMUL, "cuda", schedule=loopweave.Schedule()).source
    assert "lowered from its schedule" not in source


@pytest.mark.parametrize("target", ["cpu", "aarch64"])
def test_c_targets_refuse_loops_bound_to_gpu_axes(target):
    s = schedule_of(rows_on_threads("C", "i"))
    with pytest.raises(ScheduleError, match="is bound to blockIdx.x .* only the cuda and triton"):
        stages(MATMUL, target, schedule=s)


def gpu_steps(name: str, target: str, tiles: GpuTiles | None = None):
    tiles = tiles or GpuTiles(threads_y=16, stage=True)
    return gpu_schedule(front_end(refs.KERNELS[name].source()), tiles, GPU_FACTS[target])


@pytest.mark.parametrize("name", sorted(refs.KERNELS))
@pytest.mark.parametrize("target", ["cuda", pytest.param("triton", marks=needs_triton)])
def test_every_example_runs_under_the_step_written_gpu_schedule(name, target):
    """passes/gpu_default binds each statement's parallel loops; the result matches numpy."""
    case = refs.KERNELS[name]
    schedule = gpu_steps(name, target)
    options = {"emulate": True} if target == "cuda" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seidel_2d has no parallel loop: one thread
        kernel = loopweave.compile(case.source(), target, schedule=schedule, tuning_db=False,
                                   **options)
    assert_matches_reference(refs, case, case.sizes[0], 11, kernel, name)


def test_the_gpu_schedule_binds_what_it_can_and_stages_contractions_on_cuda():
    cuda_steps = gpu_steps("matmul", "cuda").steps  # the init C = 0 shares the block loops
    assert {(s.target, s.args) for s in cuda_steps if s.op == "bind"} >= {
        ("S0,S1", ("i_o", "blockIdx.y")), ("S0,S1", ("j_o", "blockIdx.x")),
        ("S0,S1", ("i", "threadIdx.y")), ("S0,S1", ("j", "threadIdx.x"))}
    assert [(s.target, s.args) for s in cuda_steps if s.op == "fuse"] == [("S0,S1", (2,))]
    assert [s.args[0] for s in cuda_steps if s.op == "cache_read"] == ["A", "B"]
    assert not [s for s in gpu_steps("matmul", "triton").steps if s.op == "cache_read"]
    stencil = gpu_steps("jacobi_1d", "cuda").steps  # t carries: it stays a host loop
    assert all(s.args[0] != "t" for s in stencil if s.op == "bind") and stencil
    assert not gpu_steps("seidel_2d", "cuda").steps  # every loop carries a dependence


def test_gpu_schedule_knobs_change_the_source():
    small = stages(MATMUL, "cuda", schedule=gpu_steps("matmul", "cuda", GpuTiles(16, 4)))
    large = stages(MATMUL, "cuda", schedule=gpu_steps("matmul", "cuda", GpuTiles(64, 4)))
    assert "dim3(16, 4, 1)" in small.source and "dim3(64, 4, 1)" in large.source


@needs_triton
@pytest.mark.parametrize("name", ["matmul", "linear_f16", "qmm", "attention", "bmm"])
def test_contractions_multiply_tiles_with_tl_dot(name):
    """The step-written schedule on triton: C's tile in registers, one tl.dot per k step
    (f16 tiles stay f16, int8 ones accumulate in int32), matching numpy on odd sizes."""
    case = refs.KERNELS[name]
    kernel = loopweave.compile(case.source(), "triton", schedule=gpu_steps(name, "triton"),
                               tuning_db=False)
    assert "tl.dot(" in kernel.source
    if name == "qmm":
        assert "out_dtype=tl.int32" in kernel.source
    assert_matches_reference(refs, case, case.sizes[-1], 5, kernel, name)


def test_dot_names_a_statement_that_is_no_contraction():
    with pytest.raises(ScheduleError, match=r"dot on S1 \(line 3\): the statement reduces "
                       r"over k, not j"):
        stages(MATMUL, "cuda", schedule=loopweave.Schedule().dot("S1", "j"))
    with pytest.raises(ScheduleError, match="is not a contraction"):
        stages(refs.KERNELS["softmax"].source(), "cuda",
               schedule=loopweave.Schedule().dot("s", "j"))


@needs_triton
def test_triton_refuses_a_dot_on_tiles_smaller_than_16():
    s = loopweave.Schedule().tile("S1", i=8, j=8, k=16).reorder("S1", "i_o", "j_o", "i", "j",
                                                              "k_o", "k")
    s.bind("S1", "i_o", "blockIdx.y").bind("S1", "j_o", "blockIdx.x")
    s.bind("S1", "i", "threadIdx.y").bind("S1", "j", "threadIdx.x").dot("S1", "k")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ScheduleError, match="tl.dot needs tiles of at least 16 x 16"):
            stages(MATMUL, "triton", schedule=s)


@pytest.mark.parametrize("target", ["cuda", pytest.param("triton", marks=needs_triton)])
def test_a_temporary_local_to_a_host_loop_lives_in_device_memory(target):
    """atax: `tmp[i]` is local to an iteration of the host loop over i (storage reduction
    made it a scalar), written by one launch and read by the next: a device buffer."""
    poly = load_polybench_references()
    case = poly.POLYBENCH["atax"]
    schedule = gpu_schedule(front_end(case.source()), GpuTiles(), GPU_FACTS[target])
    assert sum(s.op == "bind" for s in schedule.steps) >= 4  # both statements in the i loop
    options = {"emulate": True} if target == "cuda" else {}
    kernel = loopweave.compile(case.source(), target, schedule=schedule, tuning_db=False,
                               **options)
    assert ("cudaMalloc((void **)&tmp" if target == "cuda" else "tmp = torch.empty") \
        in kernel.source
    args = case.make_inputs({"M": 13, "N": 17}, 4)
    expected = case.expected(args)
    got = poly.results_of(case, args, kernel(*args.values()))
    for out, want in expected.items():
        err, ok = poly.compare(got[out], want, case.tol_scale)
        assert ok, f"atax: {out} differs from the reference by {err:g}"


POW = """
kernel power(x: f32[N], e: f32[N]) -> y: f32[N] {
    y[i] = pow(x[i], e[i])
}"""


@needs_triton
@pytest.mark.parametrize("bound", [False, True])
def test_pow_on_triton_follows_numpy(bound):
    """libdevice.pow returns None in Triton's interpreter: both Triton paths use a helper with
    numpy's signs, nan and 0 ** 0."""
    x = np.array([2.0, -2.0, -2.0, 0.0, 0.0, 3.5, -1.5, 9.0, 0.0], dtype=np.float32)
    e = np.array([0.5, 3.0, 2.0, 0.0, 2.0, -1.0, 0.5, -0.5, -1.0], dtype=np.float32)
    schedule = schedule_of(rows_on_threads("y", "i", 4)) if bound else None
    kernel = loopweave.compile(POW, "triton", schedule=schedule, tuning_db=False)
    with np.errstate(all="ignore"):
        want = np.power(x, e)
    np.testing.assert_allclose(kernel(x, e), want, rtol=1e-5, equal_nan=True)


def _block_accumulator(layout):
    """matmul in 8 x 8 blocks of C on the grid, each block's C tile accumulated in a local
    buffer over k (`cache_write` at k, in `layout`)."""
    s = schedule_of([("tile", "S0", {"i": 8, "j": 8}), ("tile", "S1", {"i": 8, "j": 8}),
                     ("reorder", "S1", ("i_o", "j_o", "k", "i", "j"))])
    for stmt in ("S0", "S1"):
        s.bind(stmt, "i_o", "blockIdx.y").bind(stmt, "j_o", "blockIdx.x")
    return s.cache_write("S1", "k", layout)


@pytest.mark.parametrize("layout", [None, (1, 0)])
def test_an_accumulator_tile_in_either_layout_on_cuda(layout):
    """cache_write's layout (the CPU's transposed accumulator tiles) on the CUDA lowering: the
    buffer is declared in that order and the result is the same at odd sizes."""
    kernel = loopweave.compile(MATMUL, "cuda", schedule=_block_accumulator(layout),
                               tuning_db=False, emulate=True)
    transposed = "C_acc[c2_1 * 8 + c2_0] = C[" in kernel.source  # acc[j][i] = C[i, j]
    assert transposed == (layout == (1, 0)), kernel.source
    rng = np.random.default_rng(3)
    for m, k, n in ((13, 7, 11), (1, 1, 1), (17, 9, 8)):
        a, b = rng.random((m, k), dtype=np.float32), rng.random((k, n), dtype=np.float32)
        np.testing.assert_allclose(kernel(a, b), a @ b, rtol=1e-5)


@needs_triton
def test_an_accumulator_tile_is_refused_on_triton_with_the_reason():
    with pytest.raises(ScheduleError, match=r"buffer C_acc \[8, 8\] is local to a block; the "
                       r"triton target keeps only scalars per lane"):
        loopweave.compile(MATMUL, "triton", schedule=_block_accumulator((1, 0)),
                          tuning_db=False)
